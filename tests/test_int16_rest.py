"""int16 for the rest of issue 17's list: which of RSQRT, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR,
ARG_MAX/ARG_MIN and SQUARED_DIFFERENCE the installed TFLM runs on int16 (16-bit activations, zero point 0).

TFLM refuses RESIZE_BILINEAR (its Eval: float32 and int8 outputs only) and ARG_MAX/ARG_MIN (its Eval: float32,
uint8 and int8 inputs only) on int16: tinyml refuses them saying so (validation's TFLM_NO_INT16), checked here
against the installed TFLM.  It runs RSQRT, BATCH_MATMUL (tests/test_int16_matmul.py), RESIZE_NEAREST_NEIGHBOR and
SQUARED_DIFFERENCE.

RESIZE_NEAREST_NEIGHBOR on int16 (the int8 kernel copying 2-byte pixels), and RSQRT on int16 (TFLM's
RsqrtEvalQuantized<int16_t>, per element), bit-exact with TFLM on crafted models of several operators each: on the host (gcc with ASan/UBSan) up and down, odd sizes, two batches, each of
align_corners and half_pixel_centers and both; RSQRT on every non-negative int16 value (TFLM fails on a
negative one) at scale pairs with right and left output shifts and clamping at 32767; under QEMU on
mps2-an386 the same RESIZE model and an RSQRT chain.  SQUARED_DIFFERENCE on int16 (TFLM's
SquaredDifference<int16_t>, left shift 0) with broadcasting (odd sizes, a scalar, a constant input, inputs
quantized unlike each other, outputs that clamp at 32767), on the host and under QEMU.
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
from tinyml.compiler import build_model, write_project
from tinyml.errors import ModelError, TinymlError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.graph.validate.int16 import TFLM_NO_INT16
from tinyml.targets.run import run_project
from tinyml.tools.reference import run_tflm
from tinyml.tools.verify import pack_samples, unpack_outputs, verify_model


def _t(name: str, shape: list[int], scale: float = 1e-3) -> dict[str, Any]:
    return dict(name=name, shape=shape, type="INT16", scale=[scale], zero_point=[0])


def _i32(name: str, shape: list[int], data: list[int] | None = None) -> dict[str, Any]:
    return dict(name=name, shape=shape, type="INT32", data=None if data is None else np.array(data, np.int32))


REFUSED = {  # kind: (tensors: input, constant, output; options; what TFLM takes)
    "RESIZE_BILINEAR": ([_t("x", [1, 2, 3, 2]), _i32("size", [2], [4, 6]), _t("y", [1, 4, 6, 2])],
                        ("ResizeBilinearOptions", {}), "float32 and int8"),
    "ARG_MAX": ([_t("x", [1, 2, 5]), _i32("axis", [1], [2]), _i32("y", [1, 2])],
                ("ArgMaxOptions", {"outputType": 2}), "float32, uint8 and int8"),
    "ARG_MIN": ([_t("x", [1, 2, 5]), _i32("axis", [1], [2]), _i32("y", [1, 2])],
                ("ArgMinOptions", {"outputType": 2}), "float32, uint8 and int8"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_int16_kinds_tflm_does_not_run_are_refused_saying_so(kind: str) -> None:
    tensors, options, takes = REFUSED[kind]
    model = craft_model(tensors, [(kind, [0, 1], [2], options)], inputs=[0], outputs=[2])
    with pytest.raises(TinymlError):
        run_tflm(model, [np.arange(np.prod(tensors[0]["shape"]), dtype=np.int16).reshape(tensors[0]["shape"])])
    assert TFLM_NO_INT16[kind] == takes
    msg = refusal(model, UnsupportedError)
    assert f"operator 0 ({kind}) computes on int16, which TFLM does not run either (its {kind} takes {takes} " \
           "only)" in msg, msg


# ---------------------------------------------------------------------------
# RESIZE_NEAREST_NEIGHBOR

RESIZES = [  # input shape, output size, align_corners, half_pixel_centers
    ([1, 2, 3, 2], [4, 6], False, False),  # up, exact
    ([1, 5, 7, 3], [3, 4], True, False),  # down, align_corners
    ([2, 5, 3, 1], [11, 7], False, True),  # odd sizes, two batches, half_pixel_centers
    ([1, 4, 4, 5], [7, 9], True, True),  # both flags (TFLM runs nearest with both)
    ([1, 1, 1, 3], [2, 1], False, False),  # a single pixel
]


def _resize_model() -> bytes:
    tensors: list[dict[str, Any]] = []
    ops, inputs, outputs = [], [], []
    for k, (shape, size, align, half) in enumerate(RESIZES):
        base = len(tensors)
        tensors += [_t(f"x{k}", shape, 1e-3 * (k + 1)), _i32(f"size{k}", [2], size),
                    _t(f"y{k}", [shape[0], *size, shape[3]], 1e-3 * (k + 1))]
        ops.append(("RESIZE_NEAREST_NEIGHBOR", [base, base + 1], [base + 2],
                    ("ResizeNearestNeighborOptions", {"alignCorners": align, "halfPixelCenters": half})))
        inputs.append(base)
        outputs.append(base + 2)
    return craft_model(tensors, ops, inputs=inputs, outputs=outputs)


def test_resize_nearest_copies_two_byte_pixels() -> None:
    g = parse_tflite(_resize_model())
    calls = [lower_op(LowerContext(graph=g), op) for op in g.ops]
    assert all(isinstance(c, KernelCall) and c.kernel == "resize_nearest_s8" for c in calls)
    assert [c.params["depth"] for c in calls if isinstance(c, KernelCall)] == [2 * r[0][3] for r in RESIZES]


def test_resize_nearest_host(tmp_path: Path) -> None:
    assert_bitexact(_resize_model(), tmp_path, board="host", samples=3)


@pytest.mark.qemu
def test_resize_nearest_cortex_m4(tmp_path: Path) -> None:
    assert_bitexact(_resize_model(), tmp_path, board="mps2-an386", samples=2)


# ---------------------------------------------------------------------------
# RSQRT

RSQRT_SCALES = [(1e-3, 1e-3), (1.0, 1.0 / 32768), (4.0, 1e-2), (1e-4, 0.05), (0.25, 2e-5)]  # (input, output)


def _rsqrt_model(scales: list[tuple[float, float]], shape: list[int]) -> bytes:
    tensors: list[dict[str, Any]] = []
    for k, (s_in, s_out) in enumerate(scales):
        tensors += [_t(f"x{k}", shape, s_in), _t(f"y{k}", shape, s_out)]
    n = len(scales)
    return craft_model(tensors, [("RSQRT", [2 * k], [2 * k + 1]) for k in range(n)],
                       inputs=[2 * k for k in range(n)], outputs=[2 * k + 1 for k in range(n)])


def test_rsqrt_on_every_non_negative_int16_value(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_rsqrt_model(RSQRT_SCALES, [1, 32768]))
    every = np.arange(0, 32768, dtype=np.int16).reshape(1, 32768)
    report = verify_model(path, "host", work_dir=tmp_path / "proj", inputs=[[every] * len(RSQRT_SCALES)])
    assert report.ok, report.summary()


def test_rsqrt_negative_input_is_defined(tmp_path: Path) -> None:
    """TFLM fails on a negative input; the kernel gives what 1 gives (no undefined behaviour: the host
    build runs under ASan/UBSan)."""
    model = _rsqrt_model(RSQRT_SCALES[:1], [1, 4])
    x = np.array([[1, -1, -32768, 5]], np.int16)
    with pytest.raises(TinymlError):
        run_tflm(model, [x])
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    compiled = build_model(path, "host")
    write_project(compiled.files, tmp_path / "proj")
    raw = run_project(tmp_path / "proj", pack_samples(compiled.graph, [[x]])).output
    y = unpack_outputs(compiled.graph, raw, 1)[0][0]
    ref = run_tflm(model, [np.array([[1, 1, 1, 5]], np.int16)])[0]
    assert np.array_equal(y, ref), (y, ref)


@pytest.mark.qemu
def test_rsqrt_cortex_m4(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_rsqrt_model(RSQRT_SCALES, [1, 300]))
    rng = np.random.default_rng(3)
    xs = [[rng.integers(0, 32768, size=(1, 300)).astype(np.int16) for _ in RSQRT_SCALES] for _ in range(2)]
    report = verify_model(path, "mps2-an386", work_dir=tmp_path / "proj", inputs=xs)
    assert report.ok, report.summary()


@pytest.mark.parametrize("s_out", [1e-12, 1e9])
def test_rsqrt_multiplier_out_of_range_is_refused(s_out: float) -> None:
    msg = refusal(_rsqrt_model([(1.0, s_out)], [1, 4]), ModelError)
    assert "operator 0 (RSQRT): the output multiplier 1 / (sqrt(input scale) x output scale) / 2^20 is" in msg, msg


# ---------------------------------------------------------------------------
# SQUARED_DIFFERENCE

SQD = [  # input 1 shape, input 2 shape (None: a constant of input 1's shape), output shape, input 2 scale, output
    ([2, 3, 5], [5], [2, 3, 5], 1e-3, 0.2),
    ([1, 4, 1, 3], [2, 1, 7, 1], [2, 4, 7, 3], 2e-3, 0.5),
    ([7], [1], [7], 1e-3, 1e-3),  # clamps at 32767
    ([3, 1, 9], None, [3, 1, 9], 5e-4, 0.05),
    ([1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], 3e-3, 1.0),
    ([1, 33], [1, 33], [1, 33], 1e-5, 2e-5),  # the second input scale the smaller
]


def _sqd_model() -> bytes:
    rng = np.random.default_rng(4)
    tensors: list[dict[str, Any]] = []
    ops, inputs, outputs = [], [], []
    for k, (a, b, out, s2, s_out) in enumerate(SQD):
        base = len(tensors)
        tensors += [_t(f"a{k}", a), _t(f"b{k}", a if b is None else b, s2), _t(f"y{k}", out, s_out)]
        if b is None:
            tensors[base + 1]["data"] = rng.integers(-32768, 32768, size=a).astype(np.int16)
        ops.append(("SQUARED_DIFFERENCE", [base, base + 1], [base + 2]))
        inputs += [base] if b is None else [base, base + 1]
        outputs.append(base + 2)
    return craft_model(tensors, ops, inputs=inputs, outputs=outputs)


def test_squared_difference_host(tmp_path: Path) -> None:
    assert_bitexact(_sqd_model(), tmp_path, board="host", samples=3)


@pytest.mark.qemu
def test_squared_difference_cortex_m4(tmp_path: Path) -> None:
    assert_bitexact(_sqd_model(), tmp_path, board="mps2-an386", samples=2)


def test_squared_difference_multiplier_out_of_range_is_refused() -> None:
    tensors = [_t("a", [1, 4], 1.0), _t("b", [1, 4], 1.0), _t("y", [1, 4], 1e-12)]
    model = craft_model(tensors, [("SQUARED_DIFFERENCE", [0, 1], [2])], inputs=[0, 1], outputs=[2])
    msg = refusal(model, ModelError)
    assert "operator 0 (SQUARED_DIFFERENCE): the output multiplier (2 x the larger input scale)^2 / (2^0 x output " \
           "scale)" in msg, msg
