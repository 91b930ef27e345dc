"""BATCH_MATMUL on 16-bit activations (int16x8: int16 inputs and output, zero points 0): bit-exact with TFLM's
BatchMatMul<int16_t, int64_t> (batch_matmul.cc EvalInt16: int64 sums, the int64 requantization).

One crafted model of several BATCH_MATMULs, on the host (gcc with ASan/UBSan): adj_x, adj_y and both, batch
dimensions that broadcast both ways (rank 5 among them), a constant rhs and a constant lhs, odd sizes, a
matrix-vector product, scale triples with right and left output shifts and outputs that clamp at the int16
limits; the same model under QEMU on mps2-an386.  A multiplier beyond the int64 requantization's range is
refused in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.tflite_edit import craft_model
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.errors import ModelError
from tinyml.graph import parse_tflite


def _t(name: str, shape: list[int], scale: float, data: np.ndarray | None = None) -> dict[str, Any]:
    return dict(name=name, shape=shape, type="INT16", scale=[scale], zero_point=[0], data=data)


# lhs shape, rhs shape, adj_x, adj_y, which input is constant (None, 0 or 1), (lhs, rhs, output) scales
CASES = [
    ([3, 4, 5], [3, 5, 6], False, False, None, (1e-3, 2e-3, 0.02)),
    ([2, 3, 5, 4], [1, 5, 6], True, False, None, (1e-3, 1e-3, 0.05)),
    ([2, 5, 3], [2, 7, 5], True, True, None, (3e-3, 5e-4, 0.01)),
    ([2, 1, 4, 5], [3, 5, 6], False, False, None, (1e-3, 1e-3, 1e-3)),  # clamps at both ends
    ([1, 2, 1, 3, 4], [2, 1, 3, 4, 2], False, False, None, (2e-3, 2e-3, 0.1)),  # rank 5, broadcast both ways
    ([3, 4, 5], [3, 5, 6], False, False, 1, (1e-3, 1e-3, 0.04)),  # constant rhs
    ([2, 7, 5], [2, 6, 5], False, True, 1, (1e-3, 1e-3, 0.04)),  # constant rhs, adj_y
    ([6, 9], [2, 9, 1], False, False, 0, (1e-2, 1e-2, 20.0)),  # constant lhs, matrix-vector
    ([1, 1, 33], [1, 33, 3], False, False, None, (1.0, 1.0, 0.05)),  # multiplier 20 (left shift 5)
]


def _out_shape(ls: list[int], rs: list[int], adj_x: bool, adj_y: bool) -> list[int]:
    rank = max(len(ls), len(rs))
    le, re = [1] * (rank - len(ls)) + ls, [1] * (rank - len(rs)) + rs
    rows = le[-1] if adj_x else le[-2]
    cols = re[-2] if adj_y else re[-1]
    return [max(a, b) for a, b in zip(le[:-2], re[:-2])] + [rows, cols]


def _model(cases: list[tuple[Any, ...]]) -> bytes:
    rng = np.random.default_rng(7)
    tensors: list[dict[str, Any]] = []
    ops, inputs, outputs = [], [], []
    for k, (ls, rs, adj_x, adj_y, const, (s_l, s_r, s_o)) in enumerate(cases):
        base = len(tensors)
        data = [rng.integers(-32768, 32768, size=s).astype(np.int16) if const == i else None
                for i, s in enumerate((ls, rs))]
        tensors += [_t(f"lhs{k}", ls, s_l, data[0]), _t(f"rhs{k}", rs, s_r, data[1]),
                    _t(f"out{k}", _out_shape(ls, rs, adj_x, adj_y), s_o)]
        ops.append(("BATCH_MATMUL", [base, base + 1], [base + 2], ("BatchMatMulOptions", {"adjX": adj_x,
                                                                                           "adjY": adj_y})))
        inputs += [base + i for i in (0, 1) if const != i]
        outputs.append(base + 2)
    return craft_model(tensors, ops, inputs=inputs, outputs=outputs)


def test_int16_batch_matmul_lowers_to_the_int16_kernel() -> None:
    g = parse_tflite(_model(CASES))
    calls = [lower_op(LowerContext(graph=g), op) for op in g.ops]
    assert all(isinstance(c, KernelCall) and c.kernel == "batch_matmul_s16" for c in calls)


def test_int16_batch_matmul_host(tmp_path: Path) -> None:
    assert_bitexact(_model(CASES), tmp_path, board="host", samples=3)


@pytest.mark.qemu
def test_int16_batch_matmul_cortex_m4(tmp_path: Path) -> None:
    assert_bitexact(_model(CASES[:6]), tmp_path, board="mps2-an386", samples=1)


@pytest.mark.parametrize("s_out", [1e-9, 4e-3])  # multipliers 1e9 and 250: shifts 30 and 8
def test_int16_batch_matmul_multiplier_out_of_range_is_refused(s_out: float) -> None:
    msg = refusal(_model([([2, 3], [3, 2], False, False, None, (1.0, 1.0, s_out))]), ModelError)
    assert "operator 0 (BATCH_MATMUL): the multiplier lhs scale x rhs scale / output scale is" in msg, msg


def test_int16_batch_matmul_accumulator_too_deep_is_refused() -> None:
    """An inner dimension whose int64 sums could overflow TFLM's requantization: the line names the inner
    dimension (not a convolution's weights and bias) and the largest it may be."""
    depth = (1 << 18) + 1
    msg = refusal(_model([([1, depth], [depth, 1], False, False, None, (1e-3, 1e-3, 0.05))]), ModelError)
    assert msg.startswith("m.tflite: operator 0 (BATCH_MATMUL): the accumulator reaches "), msg
    assert f"(the inner dimension {depth} x 32768 x 32768)" in msg and "weights" not in msg, msg
    assert msg.endswith("; the inner dimension may be at most 262142"), msg
