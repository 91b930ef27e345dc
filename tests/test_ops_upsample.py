"""TRANSPOSE_CONV (int8): bit-exact with TFLM.

* the converter-made cases of tests/modelgen.py (_conv_like_cases: kernels smaller than, equal to and larger
  than the strides, SAME and VALID, odd sizes, fused activations, with and without bias, per-channel and
  per-tensor weights) on the host (gcc + ASan/UBSan), a few on QEMU (mps2-an386);
* edits of a converter-made model for what the converter does not make: an absent bias (-1), fused
  RELU_N1_TO_1, an input smaller and larger than the output's (TFLM drops the taps outside the output);
* validation's refusals are in tests/test_validate.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases

CASES = op_cases("TRANSPOSE_CONV")
QEMU_BOARD = "mps2-an386"
QEMU_CASES = [c for c in CASES if c.id in ("transpose_conv-5x4x3-k3x3-s2x2-same-f4-bias-pc",
                                           "transpose_conv-3x7x5-k5x3-s3x2-same-f6-relu-bias-pt")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES, ids=lambda c: c.id)
def test_case_qemu(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board=QEMU_BOARD, samples=2)


# ---------------------------------------------------------------------------
# edits of converter-made models: what the converter does not make, and TFLM runs


def _edited(case_id: str, edit) -> bytes:
    """The model of case ``case_id`` after ``edit(operator, subgraph)`` of its TRANSPOSE_CONV."""
    import numpy as np

    from tests.tflite_edit import edit_model

    def fn(m, s) -> None:
        sg = m.subgraphs[0]
        for t in sg.tensors:
            t.shapeSignature = None
        edit(sg.operators[0], sg)
        sg.inputs = np.asarray(sg.inputs, dtype=np.int32)

    return edit_model(build(next(c for c in CASES if c.id == case_id)), fn)


def _shape(sg, index: int, shape: list[int]) -> None:
    import numpy as np

    sg.tensors[index].shape = np.asarray(shape, dtype=np.int32)


SAME = "transpose_conv-5x4x3-k3x3-s2x2-same-f4-bias-pc"  # input [1, 5, 4, 3], output [1, 10, 8, 4]
VALID = "transpose_conv-5x4x3-k3x3-s2x2-valid-f4-bias-pt"  # output [1, 11, 9, 4]


@pytest.mark.parametrize("case_id, edit", [
    # an absent optional bias (-1), as TFLM reads it (no bias added)
    (SAME, lambda op, sg: setattr(op, "inputs", [*op.inputs[:3], -1])),
    # fused RELU_N1_TO_1 (the converter fuses RELU and RELU6 only)
    (SAME, lambda op, sg: setattr(op.builtinOptions, "fusedActivationFunction", 2)),
    # an input smaller and one larger than the output's: TFLM drops the taps outside the output
    (SAME, lambda op, sg: _shape(sg, op.inputs[2], [1, 3, 2, 3])),
    (VALID, lambda op, sg: _shape(sg, op.inputs[2], [1, 7, 6, 3])),
    # an output smaller than the input gives (output_shape, which TFLM does not read, left as it was)
    (VALID, lambda op, sg: _shape(sg, op.outputs[0], [1, 6, 4, 4])),
], ids=["absent-bias", "relu-n1-to-1", "small-input", "large-input", "small-output"])
def test_edited_host(case_id: str, edit, tmp_path: Path) -> None:
    assert_bitexact(_edited(case_id, edit), tmp_path, board="host", samples=3)


# ---------------------------------------------------------------------------
# RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR

RESIZE_CASES = op_cases("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")


@pytest.mark.parametrize("case", RESIZE_CASES, ids=lambda c: c.id)
def test_resize_host(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", [c for c in RESIZE_CASES if c.id in (
    "resize_nearest-4x5x3-size7x9-align1-half0", "resize_bilinear-4x5x3-size8x10-align0-half1",
    "resize_bilinear-5x3x2-size11x7-align1-half0")], ids=lambda c: c.id)
def test_resize_qemu(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board=QEMU_BOARD, samples=2)
