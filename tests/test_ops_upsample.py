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
