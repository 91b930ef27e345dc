"""L2_NORMALIZATION (int8): bit-exact with TFLM.

The converter-made cases of tests/modelgen.py (ranks 2 to 4, inputs centred and not, narrow and wide rows)
on the host (gcc + ASan/UBSan), one on QEMU (mps2-an386), and chosen rows under several input zero points
(sums of squares 0, 1, 2, ... and the largest: the inverse square root's edge cases); validation's refusals
are in tests/test_validate.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, op_cases
from tests.tflite_edit import edit_model

CASES = op_cases("L2_NORMALIZATION")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
def test_case_qemu(tmp_path: Path) -> None:
    assert_bitexact(build(CASES[0]), tmp_path, board="mps2-an386", samples=2)


def _rows(zp: int) -> np.ndarray:
    """64 rows of 4 values: every sum of squares from 0 up (small offsets from the zero point, one or two of
    them non-zero), then the extremes (every value at -128 or at 127), then random rows."""
    rng = np.random.default_rng(5)
    rows = [[a, b, 0, 0] for a in range(-3, 4) for b in range(0, 4)]  # 28 rows, sums 0 to 18
    rows += [[-128 - zp] * 4, [127 - zp] * 4, [-128 - zp, 127 - zp, 0, 1]]
    rows += [list(r) for r in rng.integers(-128, 128, size=(64 - len(rows), 4)) - zp]
    return np.clip(np.asarray(rows) + zp, -128, 127).astype(np.int8).reshape(1, 64, 4)


@pytest.mark.parametrize("zp", [0, -128, 5])
def test_small_sums_of_squares_host(zp: int, tmp_path: Path) -> None:
    """Rows whose sums of squares are 0, 1, 2, ... (GetInvSqrtQuantizedMultiplierExp's special cases and its
    largest left shifts) and the largest ones, under the input zero point ``zp``."""
    from tinyml.tools.verify import verify_model

    def fn(m, s) -> None:
        sg = m.subgraphs[0]
        op = sg.operators[0]
        for i in (op.inputs[0], op.outputs[0]):
            sg.tensors[i].shape = np.asarray([1, 64, 4], dtype=np.int32)
            sg.tensors[i].shapeSignature = None
        sg.tensors[op.inputs[0]].quantization.zeroPoint = np.asarray([zp], dtype=np.int64)

    path = tmp_path / "model.tflite"
    path.write_bytes(edit_model(build(CASES[0]), fn))
    report = verify_model(path, "host", inputs=[[_rows(zp)]], work_dir=tmp_path / "proj")
    assert report.ok, report.summary()
