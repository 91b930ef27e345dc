"""int16x8 UNIDIRECTIONAL_SEQUENCE_LSTM (TFLM's EvalLstm<int16_t, int8_t, int16_t, int64_t>: int16 input, hidden
state and output with zero points 0, int8 per-tensor weights, int64 biases, an int16 cell state;
codegen/ops/lstm_s16.py, templates/kernels/lstm_s16.c.j2) bit-exact against TFLM.

The converter's 16x8 mode refuses UNIDIRECTIONAL_SEQUENCE_LSTM ("Quantization to 16x8-bit not yet supported"),
so tinyml.train.quantize.quantize_int16x8 cannot make one: the models here are tests/modelgen.py's int8 LSTM
cases (tf_keras layers, the keyword spotter among them) requantized to 16x8 by editing the flatbuffer (each
int8 activation int16 at 1/256 of its scale with zero point 0, each int32 bias int64 at 256 times its value,
the int16 SOFTMAX's output at 1/32768).  Each runs on the host (gcc with ASan/UBSan) as one stream of invokes
with the states carried and a reset in the middle; the time-major layout, two batch rows and the cell clip on
edited models; the keyword spotter and the saturating case under QEMU on mps2-an386; an int32 bias, which TFLM
would read as int64 past its end, is refused in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.modelgen import build, lstm_cases
from tests.tflite_edit import edit_model
from tests.test_lstm import _edit_lstm, two_batches
from tinyml.errors import ModelError
from tinyml.graph import parse_tflite

# lstm-5x3-u4-seq1 covers the smallest sizes, lstm_kws the last step only (lstm-12x16-u20-seq0), and the
# saturating case the large gate sums (lstm-16x2-u7-range4-seq1-gain0.3's large inputs)
CASES = [c for c in lstm_cases() if c.id not in ("lstm-1x1-u1-seq1", "lstm-12x16-u20-seq0",
                                                 "lstm-16x2-u7-range4-seq1-gain0.3")]
KWS = next(c for c in CASES if c.id == "lstm_kws")
SATURATING = next(c for c in CASES if "gain3" in c.id)
STEP = 256  # an int16 step is 1/256 of the int8 step it replaces


def as_16x8(model: bytes) -> bytes:
    """``model`` (int8) requantized to 16x8: int8 activations int16 at 1/256 of their scale with zero point 0,
    int32 biases int64 at 256 times their value (the same real values), the SOFTMAX output at 1/32768."""
    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in m.operatorCodes]
        softmax_out = {op.outputs[0] for op in sg.operators if codes[op.opcodeIndex] == s.BuiltinOperator.SOFTMAX}
        bias_at = {s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM: (12, 13, 14, 15),
                   s.BuiltinOperator.FULLY_CONNECTED: (2,)}
        biases = {op.inputs[p] for op in sg.operators for p in bias_at.get(codes[op.opcodeIndex], ())}
        for k, t in enumerate(sg.tensors):
            data = m.buffers[t.buffer].data
            const = data is not None and len(data) > 0
            if t.type == s.TensorType.INT8 and not const:
                t.type = s.TensorType.INT16
                scale = 1.0 / 32768 if k in softmax_out else float(t.quantization.scale[0]) / STEP
                t.quantization.scale, t.quantization.zeroPoint = [scale], [0]
            elif k in biases and t.type == s.TensorType.INT32:
                t.type = s.TensorType.INT64
                values = np.frombuffer(bytes(bytearray(data)), np.int32).astype(np.int64) * STEP
                m.buffers[t.buffer].data = list(values.tobytes())

    return edit_model(model, edit)


def _model(case: Any) -> bytes:
    return as_16x8(build(case))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_lstm_int16_host(case, tmp_path) -> None:
    """Four invokes with state carried, the third after a reset (as from the model's init)."""
    assert_bitexact(_model(case), tmp_path, board="host", samples=4, resets=(2,))


@pytest.mark.qemu
@pytest.mark.parametrize("case", [KWS, SATURATING], ids=lambda c: c.id)
def test_lstm_int16_cortex_m4(case, tmp_path) -> None:
    assert_bitexact(_model(case), tmp_path, board="mps2-an386", samples=3, resets=(1,))


def test_the_16x8_keyword_spotter() -> None:
    g = parse_tflite(_model(KWS))
    lstm = g.ops[0]
    assert [op.kind for op in g.ops] == ["UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED",
                                         "SOFTMAX"]
    assert g.state_tensors() == sorted(lstm.inputs[18:20])
    assert [g.tensors[t].dtype for t in (lstm.inputs[0], *lstm.inputs[18:20], lstm.inputs[12])] == \
        ["int16", "int16", "int16", "int64"]


@pytest.mark.parametrize("major", [False, True], ids=["batch-major", "time-major"])
def test_two_batches(major, tmp_path) -> None:
    """Two batch rows, each with its own hidden and cell state, in either layout."""
    model = _edit_lstm(_model(SATURATING), two_batches(major))
    assert parse_tflite(model).ops[0].options["time_major"] == major
    assert_bitexact(model, tmp_path, board="host", samples=3, resets=(2,))


def test_cell_clip(tmp_path) -> None:
    """The cell clip, quantized as TFLM does (truncated to the cell's scale)."""
    def set_clip(m: Any, s: Any, op: Any) -> None:
        op.builtinOptions.cellClip = 0.4

    model = _edit_lstm(_model(SATURATING), set_clip)
    assert parse_tflite(model).ops[0].options["cell_clip"] > 0
    assert_bitexact(model, tmp_path, board="host", samples=3)


def test_int32_bias_is_refused() -> None:
    """TFLM's 16x8 LSTM reads its biases as int64 whatever their type: an int32 bias it would read past its end."""
    def int32_bias(m: Any, s: Any, op: Any) -> None:
        t = m.subgraphs[0].tensors[op.inputs[13]]
        b = m.buffers[t.buffer]
        t.type = s.TensorType.INT32
        b.data = list(np.frombuffer(bytes(bytearray(b.data)), np.int64).astype(np.int32).tobytes())

    small = next(c for c in CASES if c.id == "lstm-5x3-u4-seq1")
    msg = refusal(_edit_lstm(_model(small), int32_bias), ModelError)
    assert "is int32; allowed is int64" in msg and "UNIDIRECTIONAL_SEQUENCE_LSTM" in msg, msg
