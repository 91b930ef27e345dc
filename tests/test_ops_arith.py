"""SUB, MAXIMUM, MINIMUM, PADV2, SQUARED_DIFFERENCE, PRELU, ARG_MAX, ARG_MIN, RSQRT (int8): bit-exact with TFLM.

* the converter-made cases of tests/modelgen.py on the host (gcc + ASan/UBSan), a few on QEMU (mps2-an386);
* hand-built one-operator models (tests/test_ops_elementwise.py: tiny_model) that sweep what the converter
  does not make: every pair of int8 values under quantizations that give the extreme multipliers, fused
  activations, broadcasting in every position (scalars, odd sizes, constant inputs), every axis of ARG_MAX
  and ARG_MIN with ties, PADV2's padding values, every int8 input of RSQRT;
* validation's refusals of these operators are in tests/test_validate.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tests.test_ops_elementwise import _q, _schema, _verify, tiny_model

OPS = ("SUB", "MAXIMUM", "MINIMUM", "PADV2", "SQUARED_DIFFERENCE", "PRELU", "ARG_MAX", "ARG_MIN", "RSQRT")
CASES = op_cases(*OPS)
QEMU_BOARD = "mps2-an386"
QEMU_CASES = [c for c in CASES if c.id in ("sub-4x4x8+1x1x8-range2x0.5", "squared_difference-15+15-range1x1",
                                           "prelu-6x5x8-shared1x2", "argmax-4x4x10-ax-1",
                                           "padv2-5x4x3-pad1x2_0x1_2x0-value0.7", "rsqrt-33-relu-range5")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=4)


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES, ids=lambda c: c.id)
def test_case_qemu(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board=QEMU_BOARD, samples=2)


# ---------------------------------------------------------------------------
# hand-built models


def _sub_options(act: int) -> tuple[str, object]:
    t = _schema().SubOptionsT()
    t.fusedActivationFunction = act
    return "SubOptions", t


def _pairs() -> list[np.ndarray]:
    """(256, 1) and (1, 256): broadcast against each other, every pair of int8 values in one sample."""
    a = np.arange(-128, 128, dtype=np.int8).reshape(256, 1)
    b = np.roll(np.arange(-128, 128, dtype=np.int8), 37).reshape(1, 256)
    return [a, b]


# (s1, zp1, s2, zp2, s_out, zp_out, fused activation code (SUB only)) per operator: the converter's kind of
# scales, then the extremes of each multiplier validation allows.
PAIR_QUANT = {
    "SUB": [
        (0.0078125, -128, 0.5, 127, 0.25, -10, 1),  # RELU
        (0.3, 20, 0.002, -100, 0.02, 0, 3),  # RELU6
        (1.7, 0, 0.9, -1, 3.1, 5, 2),  # RELU_N1_TO_1
        (1e-6, 64, 1.0, -64, 2.0 ** -19 * 1.0000001, -128, 0),  # input 1 multiplier 2^-21; output just below 1
        (0.011, 127, 0.013, -128, 900.0, 0, 0),  # a tiny output multiplier (every output the zero point)
        (1e-12, 5, 1.0, -3, 0.01, 0, 0),  # input 1's multiplier below 2^-31: flushed to 0, as TFLM does
    ],
    "SQUARED_DIFFERENCE": [
        (0.05, -3, 0.05, 7, 0.1, -128, 0),
        (0.3, 20, 0.002, -100, 0.004, 0, 0),
        (1e-3, 127, 1e-3, -128, 1e-8, -50, 0),  # output multiplier above 1 (left shift 8)
        (0.02, 0, 7e-5, 3, 300.0, 77, 0),
    ],
    # (input, alpha, output)
    "PRELU": [
        (0.05, -3, 0.02, 7, 0.1, 2, 0),
        (0.1, 127, 0.5, -128, 0.004, -20, 0),  # mult1 25 (shift 5), mult2 12.5
        (0.002, -128, 0.004, 0, 0.3, 100, 0),
        (1.0, 0, 1e-3, -1, 2.0 ** -20, 0, 0),  # mult1 2^20, the largest left shift |x - zp| <= 128 allows
    ],
}


@pytest.mark.parametrize("op,quant", [(op, q) for op, qs in PAIR_QUANT.items() for q in qs],
                         ids=lambda v: v if isinstance(v, str) else "s{}z{}-s{}z{}-o{}z{}-act{}".format(*v))
def test_every_pair_of_values(op: str, quant, tmp_path: Path) -> None:
    s1, z1, s2, z2, so, zo, act = quant
    model = tiny_model(op, [_q([256, 1], s1, z1), _q([1, 256], s2, z2)], _q([256, 256], so, zo),
                       _sub_options(act) if op == "SUB" else None)
    _verify(model, tmp_path, [_pairs()])


@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
def test_minmax_every_pair_of_values(op: str, tmp_path: Path) -> None:
    """The quantization is not read: different scales and zero points compare the raw values (as TFLM)."""
    model = tiny_model(op, [_q([256, 1], 0.05, -3), _q([1, 256], 0.5, 100)], _q([256, 256], 0.1, 7))
    _verify(model, tmp_path, [_pairs()])


SHAPES = [  # input 0, input 1, output
    ([1, 4, 4, 1], [1, 4, 4, 8], [1, 4, 4, 8]),
    ([2, 1, 3, 1], [1, 5, 1, 7], [2, 5, 3, 7]),
    ([7], [1], [7]),
    ([1], [3, 1, 9], [3, 1, 9]),
    ([2, 3, 5], [1, 1, 1, 5], [1, 2, 3, 5]),
]


def _shape_id(s) -> str:
    return "-".join("x".join(map(str, t)) or "scalar" for t in s[:2])


@pytest.mark.parametrize("shapes", SHAPES, ids=_shape_id)
def test_broadcast_shapes(shapes, tmp_path: Path) -> None:
    """The broadcast layout and loop nest the binary kernels share (tml_broadcast.j2), through SUB; the other
    operators broadcast both inputs in the pair tests above and one in the converter-made cases."""
    sa, sb, so = shapes
    model = tiny_model("SUB", [_q(sa, 0.04, 5), _q(sb, 0.07, -9)], _q(so, 0.08, -3), _sub_options(0))
    rng = np.random.default_rng(3)
    xs = [[rng.integers(-128, 128, size=sa).astype(np.int8), rng.integers(-128, 128, size=sb).astype(np.int8)]
          for _ in range(3)]
    _verify(model, tmp_path, xs)


@pytest.mark.parametrize("op,const_pos,const_shape", [
    ("SUB", 0, [1, 1, 1, 8]), ("SUB", 1, []), ("MINIMUM", 1, [1, 4, 1, 1]), ("PRELU", 1, []),
])
def test_constant_input(op: str, const_pos: int, const_shape: list[int], tmp_path: Path) -> None:
    """One input a constant (emitted into flash): a broadcast row, or a scalar of shape []."""
    rng = np.random.default_rng(11 + const_pos)
    data = rng.integers(-128, 128, size=const_shape).astype(np.int8)
    const = dict(_q(const_shape, 0.02, -7), data=data)
    act = _q([1, 4, 4, 8], 0.05, 3)
    ins = [const, act] if const_pos == 0 else [act, const]
    model = tiny_model(op, ins, _q([1, 4, 4, 8], 0.06, -2), _sub_options(0) if op == "SUB" else None)
    xs = [[rng.integers(-128, 128, size=(1, 4, 4, 8)).astype(np.int8)] for _ in range(3)]
    _verify(model, tmp_path, xs)


def _axis(value: int) -> dict:
    return dict(shape=[1], dtype="int32", data=np.asarray([value], dtype=np.int32))


@pytest.mark.parametrize("op,shape,axis", [("ARG_MAX", [3, 4, 5, 6], 0), ("ARG_MAX", [3, 4, 5, 6], -1),
                                           ("ARG_MAX", [3, 4, 5, 6], -3), ("ARG_MAX", [9], 0),
                                           ("ARG_MAX", [2, 1, 7], 1), ("ARG_MIN", [3, 4, 5, 6], 2),
                                           ("ARG_MIN", [9], -1)])
def test_arg_min_max_axes(op: str, shape: list[int], axis: int, tmp_path: Path) -> None:
    """Every axis, ties (the first index wins), all-equal rows, -128 and 127 at both ends."""
    pos = axis % len(shape)
    out = [n for i, n in enumerate(shape) if i != pos]
    model = tiny_model(op, [_q(shape, 0.05, 3), _axis(axis)], dict(shape=out, dtype="int32"))
    rng = np.random.default_rng(pos)
    xs = [[rng.integers(-128, 128, size=shape).astype(np.int8)],
          [rng.integers(-2, 3, size=shape).astype(np.int8)],  # many ties
          [np.full(shape, -128, dtype=np.int8)], [np.full(shape, 127, dtype=np.int8)]]
    _verify(model, tmp_path, xs)


@pytest.mark.parametrize("op,shape,pads,value,zp", [
    ("PADV2", [2, 3, 4, 5], [[0, 0], [1, 2], [2, 1], [0, 0]], -128, -5),  # TFLM's image-style path
    ("PADV2", [1, 2, 3, 2, 3], [[1, 0], [0, 1], [2, 2], [0, 0], [1, 3]], 127, 127),  # 5-D
    ("PAD", [5], [[3, 4]], 0, -128),  # PAD takes the value operand too (one kernel in TFLM)
])
def test_padv2_values(op: str, shape: list[int], pads: list[list[int]], value: int, zp: int,
                      tmp_path: Path) -> None:
    out = [n + a + b for n, (a, b) in zip(shape, pads)]
    model = tiny_model(op, [_q(shape, 0.07, zp), dict(shape=[len(shape), 2], dtype="int32",
                                                            data=np.asarray(pads, dtype=np.int32)),
                                 dict(_q([], 0.07, zp), data=np.asarray(value, dtype=np.int8))], _q(out, 0.07, zp))
    rng = np.random.default_rng(5)
    _verify(model, tmp_path, [[rng.integers(-128, 128, size=shape).astype(np.int8)] for _ in range(2)])


@pytest.mark.parametrize("s_in,s_out,zp_out", [
    (0.05, 0.1, -128), (0.5, 0.003, -20), (1e-4, 1.0, 5), (3.0, 0.02, 100),
    (2.0 ** -20, 1.38e-6, 0),  # the output multiplier over 2^20 is 2^9.5: the largest left shift, 10
    (1.0, 3000.0, -1),  # and its right shift of 31 (20 more than the multiplier's 11)
])
def test_rsqrt_every_value(s_in: float, s_out: float, zp_out: int, tmp_path: Path) -> None:
    """Every int8 input (the zero point -128 gives 127, as in TFLM)."""
    model = tiny_model("RSQRT", [_q([256], s_in, -128)], _q([256], s_out, zp_out))
    _verify(model, tmp_path, [[np.arange(-128, 128, dtype=np.int8)]])


@pytest.mark.qemu
def test_hand_built_qemu(tmp_path: Path) -> None:
    """Every pair of values for SUB (with RELU6) and PRELU (a left-shifting multiplier) on the Cortex-M target."""
    s1, z1, s2, z2, so, zo, act = PAIR_QUANT["SUB"][2]
    model = tiny_model("SUB", [_q([256, 1], s1, z1), _q([1, 256], s2, z2)], _q([256, 256], so, zo),
                       _sub_options(act))
    _verify(model, tmp_path / "sub", [_pairs()], board=QEMU_BOARD)
    s1, z1, s2, z2, so, zo, _ = PAIR_QUANT["PRELU"][1]
    model = tiny_model("PRELU", [_q([256, 1], s1, z1), _q([1, 256], s2, z2)], _q([256, 256], so, zo))
    _verify(model, tmp_path / "prelu", [_pairs()], board=QEMU_BOARD)
