"""int16 for the rest of issue 17's list: which of RSQRT, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR,
ARG_MAX/ARG_MIN and SQUARED_DIFFERENCE the installed TFLM runs on int16 (16-bit activations, zero point 0).

TFLM refuses RESIZE_BILINEAR (its Eval: float32 and int8 outputs only) and ARG_MAX/ARG_MIN (its Eval: float32,
uint8 and int8 inputs only) on int16: tinyml refuses them saying so (validation's TFLM_NO_INT16), checked here
against the installed TFLM.  It runs RSQRT, BATCH_MATMUL, RESIZE_NEAREST_NEIGHBOR and SQUARED_DIFFERENCE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.harness import refusal
from tests.tflite_edit import craft_model
from tinyml.errors import TinymlError, UnsupportedError
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
