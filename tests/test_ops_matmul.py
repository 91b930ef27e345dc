"""BATCH_MATMUL (int8): bit-exact with TFLM.

The converter-made cases of tests/modelgen.py (_conv_like_cases: adj_x and adj_y in every combination,
batch dimensions that broadcast either way up to rank 5, inputs of different ranks, a constant rhs with and
without adj_y) on the host (gcc + ASan/UBSan) and two on QEMU (mps2-an386); validation's refusals are in
tests/test_validate.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases

CASES = op_cases("BATCH_MATMUL")
QEMU_CASES = [c for c in CASES if c.id in ("batch_matmul-2x5x3+2x7x5-range3x0.5-adj_x1-adj_y1",
                                           "batch_matmul-2x1x4x5+3x5x6")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES, ids=lambda c: c.id)
def test_case_qemu(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)
