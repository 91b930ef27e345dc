"""float32 UNIDIRECTIONAL_SEQUENCE_LSTM (TFLM's EvalLstm<float, float, float, float>; codegen/ops/lstm_f32.py,
templates/kernels/lstm_f32.c.j2) against TFLM within verify's float tolerance.

tests/modelgen.py's lstm_float_cases (tf_keras LSTM layers converted without quantization: units, feature
counts, sequence lengths, the whole sequence or its last step, saturating gates, the LSTM keyword spotter) on the
host (gcc with ASan/UBSan), each as one stream of invokes with the hidden and cell states carried and a reset in
the middle; the time-major layout, two batch rows and the cell clip on edited models; the keyword spotter and
the saturating case under QEMU on mps2-an386 over a stream with a reset; the refusals in one line.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import assert_bitexact, refusal
from tests.modelgen import build, lstm_float_cases
from tests.test_lstm import _edit_lstm, two_batches
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph import parse_tflite

CASES = lstm_float_cases()
KWS = next(c for c in CASES if c.id == "lstm_kws_f32")
SATURATING = next(c for c in CASES if "gain3" in c.id)


def _check(model: bytes, tmp_path: Any, board: str = "host", samples: int = 4, resets: tuple[int, ...] = (2,)) -> None:
    report = assert_bitexact(model, tmp_path, board=board, samples=samples, resets=resets)
    assert report.float_outputs and "within tolerance" in report.summary(), report.summary()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_lstm_f32_host(case, tmp_path) -> None:
    """Four invokes with state carried, the third after a reset (as from the model's init)."""
    _check(build(case), tmp_path)


@pytest.mark.qemu
@pytest.mark.parametrize("case", [KWS, SATURATING], ids=lambda c: c.id)
def test_lstm_f32_cortex_m4(case, tmp_path) -> None:
    _check(build(case), tmp_path, board="mps2-an386", samples=3, resets=(1,))


def test_the_float_keyword_spotter_keeps_its_state_in_the_arena() -> None:
    g = parse_tflite(build(KWS))
    lstm = next(op for op in g.ops if op.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert g.state_tensors() == sorted(lstm.inputs[18:20])
    assert all(g.tensors[t].dtype == "float32" for t in lstm.inputs + lstm.outputs if t >= 0)


@pytest.mark.parametrize("major", [False, True], ids=["batch-major", "time-major"])
def test_two_batches(major, tmp_path) -> None:
    """Two batch rows, each with its own hidden and cell state, in either layout."""
    model = _edit_lstm(build(SATURATING), two_batches(major))
    assert parse_tflite(model).ops[0].options["time_major"] == major
    _check(model, tmp_path, samples=3)


def _clip(value: float) -> Any:
    def edit(m: Any, s: Any, op: Any) -> None:
        op.builtinOptions.cellClip = value

    return edit


def test_cell_clip(tmp_path) -> None:
    """A cell clip of 0.4 (the saturating case's cell values pass it), applied as TFLM's Clipping."""
    model = _edit_lstm(build(SATURATING), _clip(0.4))
    assert parse_tflite(model).ops[0].options["cell_clip"] > 0
    _check(model, tmp_path, samples=3)


def _peephole(m: Any, s: Any, op: Any) -> None:
    op.inputs[10] = op.inputs[13]


@pytest.mark.parametrize("edit, error, words", [
    (_peephole, ModelError, "peephole"),
    (_clip(float("inf")), UnsupportedError, "cell_clip is inf"),
], ids=["peephole", "infinite-clip"])
def test_refusals(edit, error, words) -> None:
    msg = refusal(_edit_lstm(build(CASES[0]), edit), error)
    assert words in msg and "UNIDIRECTIONAL_SEQUENCE_LSTM" in msg, msg
