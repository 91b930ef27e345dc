"""TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL and L2_NORMALIZATION (int8): bit-exact
with TFLM.

* the converter-made cases of tests/modelgen.py (_conv_like_cases) on the host (gcc + ASan/UBSan), a few on
  QEMU (mps2-an386): TRANSPOSE_CONV with kernels smaller than, equal to and larger than the strides, SAME and
  VALID, odd sizes, fused activations, with and without bias, per-channel and per-tensor weights; the resizes
  up and down to odd sizes under each of align_corners and half_pixel_centers; BATCH_MATMUL with adj_x and
  adj_y, batch dimensions that broadcast either way up to rank 5, inputs of different ranks, a constant rhs;
  L2_NORMALIZATION of ranks 3 and 4, narrow and wide rows (one case per edge: make test's time);
* edits of converter-made models for what the converter does not make: TRANSPOSE_CONV with an absent bias
  (-1), fused RELU_N1_TO_1, an input smaller or larger than the output's (TFLM drops the taps outside the
  output), in two models; L2_NORMALIZATION of chosen rows (sums of squares 0, 1, 2, ... and the largest);
* validation's refusals are in tests/test_validate.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tests.tflite_edit import edit_model
from tinyml.tools.verify import verify_model

CASES = op_cases("TRANSPOSE_CONV", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "BATCH_MATMUL", "L2_NORMALIZATION")
QEMU_BOARD = "mps2-an386"
QEMU_CASES = [c for c in CASES if c.id in (
    "transpose_conv-3x7x5-k5x3-s3x2-same-f6-relu-bias-pt", "resize_bilinear-9x7x4-size4x3-align0-half1",
    "batch_matmul-2x5x3+2x7x5-range3x0.5-adj_x1-adj_y1", "l2norm-6x10")]


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
    def fn(m, s) -> None:
        sg = m.subgraphs[0]
        for t in sg.tensors:
            t.shapeSignature = None
        edit(sg.operators[0], sg)
        sg.inputs = np.asarray(sg.inputs, dtype=np.int32)

    return edit_model(build(next(c for c in CASES if c.id == case_id)), fn)


def _shape(sg, index: int, shape: list[int]) -> None:
    sg.tensors[index].shape = np.asarray(shape, dtype=np.int32)


SAME = "transpose_conv-5x4x3-k3x3-s2x2-same-f4-bias-pc"  # input [1, 5, 4, 3], output [1, 10, 8, 4]
VALID = "transpose_conv-5x4x3-k3x3-s2x2-valid-f4-bias-pt"  # output [1, 11, 9, 4]


def _absent_bias_relu_n1_small_input(op, sg) -> None:
    op.inputs = [*op.inputs[:3], -1]  # an absent optional bias (-1), as TFLM reads it (no bias added)
    op.builtinOptions.fusedActivationFunction = 2  # RELU_N1_TO_1 (the converter fuses RELU and RELU6 only)
    _shape(sg, op.inputs[2], [1, 3, 2, 3])  # an input smaller than the output's


def _large_input_small_output(op, sg) -> None:
    # TFLM drops the taps outside the output (output_shape, which TFLM does not read, is left as it was)
    _shape(sg, op.inputs[2], [1, 7, 6, 3])
    _shape(sg, op.outputs[0], [1, 6, 4, 4])


@pytest.mark.parametrize("case_id, edit", [(SAME, _absent_bias_relu_n1_small_input),
                                           (VALID, _large_input_small_output)],
                         ids=["absent-bias-relu-n1-to-1-small-input", "large-input-small-output"])
def test_transpose_conv_edited_host(case_id: str, edit, tmp_path: Path) -> None:
    assert_bitexact(_edited(case_id, edit), tmp_path, board="host", samples=3)


# ---------------------------------------------------------------------------
# L2_NORMALIZATION of chosen rows


def _rows(zp: int) -> np.ndarray:
    """64 rows of 4 values: every sum of squares from 0 up (small offsets from the zero point, one or two of
    them non-zero), then the extremes (every value at -128 or at 127), then random rows."""
    rng = np.random.default_rng(5)
    rows = [[a, b, 0, 0] for a in range(-3, 4) for b in range(0, 4)]  # 28 rows, sums 0 to 18
    rows += [[-128 - zp] * 4, [127 - zp] * 4, [-128 - zp, 127 - zp, 0, 1]]
    rows += [list(r) for r in rng.integers(-128, 128, size=(64 - len(rows), 4)) - zp]
    return np.clip(np.asarray(rows) + zp, -128, 127).astype(np.int8).reshape(1, 64, 4)


def test_l2_normalization_small_sums_host(tmp_path: Path) -> None:
    """Rows whose sums of squares are 0, 1, 2, ... (GetInvSqrtQuantizedMultiplierExp's special cases and its
    largest left shifts) and the largest ones (4 x 255^2), under the input zero point -128."""
    zp = -128

    def fn(m, s) -> None:
        sg = m.subgraphs[0]
        op = sg.operators[0]
        for i in (op.inputs[0], op.outputs[0]):
            sg.tensors[i].shape = np.asarray([1, 64, 4], dtype=np.int32)
            sg.tensors[i].shapeSignature = None
        sg.tensors[op.inputs[0]].quantization.zeroPoint = np.asarray([zp], dtype=np.int64)

    path = tmp_path / "model.tflite"
    path.write_bytes(edit_model(build(op_cases("L2_NORMALIZATION")[0]), fn))
    report = verify_model(path, "host", inputs=[[_rows(zp)]], work_dir=tmp_path / "proj")
    assert report.ok, report.summary()
