"""int16 for the rest of issue 17's list: which of RSQRT, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR,
ARG_MAX/ARG_MIN and SQUARED_DIFFERENCE the installed TFLM runs on int16 (16-bit activations, zero point 0).

TFLM refuses RESIZE_BILINEAR (its Eval: float32 and int8 outputs only) and ARG_MAX/ARG_MIN (its Eval: float32,
uint8 and int8 inputs only) on int16: tinyml refuses them saying so (validation's TFLM_NO_INT16), checked here
against the installed TFLM.  It runs RSQRT, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR and SQUARED_DIFFERENCE.

RESIZE_NEAREST_NEIGHBOR on int16 (the int8 kernel copying 2-byte pixels), bit-exact with TFLM on crafted models
of several operators each: on the host (gcc with ASan/UBSan) up and down, odd sizes, two batches, each of
align_corners and half_pixel_centers and both; under QEMU on mps2-an386 the same model.
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
from tinyml.errors import TinymlError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.graph.validate.int16 import TFLM_NO_INT16
from tinyml.tools.reference import run_tflm


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
