"""EXP: float32, the only type the installed TFLM runs it in (its exp.cc Prepare refuses int8 and int16), within
tolerance of TFLM's float kernel (tinyml/tools/verify.py: FLOAT_RTOL, FLOAT_ATOL) over 1-D to 4-D inputs on the
host and, one case, under QEMU (mps2-an386, hard float); an int8 EXP is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import refusal
from tests.modelgen import Case, build, exp_cases, inputs_for
from tinyml.errors import UnsupportedError
from tinyml.tools.verify import VerifyReport, verify_model

*FLOAT_CASES, INT8_CASE = exp_cases()
QEMU_BOARD = "mps2-an386"


def _verify(c: Case, tmp_path: Path, board: str, samples: int) -> VerifyReport:
    model = build(c)
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    report = verify_model(path, board, inputs=inputs_for(c, model, n=samples), work_dir=tmp_path / "proj")
    assert report.ok and report.float_outputs and "within tolerance" in report.summary(), report.summary()
    return report


@pytest.mark.parametrize("case", FLOAT_CASES, ids=lambda c: c.id)
def test_exp_host(case: Case, tmp_path: Path) -> None:
    _verify(case, tmp_path, "host", 3)


@pytest.mark.qemu
def test_exp_qemu(tmp_path: Path) -> None:
    _verify(FLOAT_CASES[1], tmp_path, QEMU_BOARD, 2)


def test_int8_exp_refused() -> None:
    msg = refusal(build(INT8_CASE), UnsupportedError)
    assert "EXP" in msg and "not supported" in msg, msg
