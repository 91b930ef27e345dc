"""UNIDIRECTIONAL_SEQUENCE_LSTM (TFLM's integer LSTM: int8 input, output and hidden state, int8 weights, int32
biases, int16 cell state; codegen/ops/lstm.py, templates/kernels/lstm_s8.c.j2) bit-exact against TFLM.

tests/modelgen.py's lstm_cases (units, feature counts, sequence lengths, the whole sequence or its last step,
saturating gates, the LSTM keyword spotter) on the host (gcc with ASan/UBSan), each as one sequence of invokes
with the hidden and cell states carried from one to the next and a reset in the middle; the time-major layout, two
batch rows (in both layouts) and the cell clip on edited models; a subset under QEMU on mps2-an386; and the refusals of what TFLM does not run or we
do not cover (one line; exit 2 from the CLI).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.modelgen import build, lstm_cases
from tests.tflite_edit import edit_model
from tinyml.cli import main as cli_main
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph import parse_tflite

CASES = lstm_cases()
KWS = next(c for c in CASES if c.id == "lstm_kws")
SMALL = next(c for c in CASES if c.id == "lstm-5x3-u4-seq1")
SATURATING = next(c for c in CASES if "gain3" in c.id)
QEMU_CASES = [KWS, SATURATING]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_lstm_host(case, tmp_path) -> None:
    """Four invokes with state carried, the third after a reset (as from the model's init)."""
    assert_bitexact(build(case), tmp_path, board="host", samples=4, resets=(2,))


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES, ids=lambda c: c.id)
def test_lstm_cortex_m4(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=3)


def test_the_keyword_spotter_keeps_its_state_in_the_arena() -> None:
    g = parse_tflite(build(KWS))
    assert [op.kind for op in g.ops] == ["UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED",
                                         "SOFTMAX"]
    lstm = g.ops[0]
    assert g.state_tensors() == sorted(lstm.inputs[18:20])
    assert [g.tensors[t].dtype for t in lstm.inputs[18:20]] == ["int8", "int16"]


# ---------------------------------------------------------------------------
# converter options on edited models


def _edit_lstm(model: bytes, fn: Any) -> bytes:
    """``model`` with ``fn(model object, schema, LSTM operator)`` applied to its LSTM operator."""
    def edit(m: Any, s: Any) -> None:
        codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in m.operatorCodes]
        for op in m.subgraphs[0].operators:
            if codes[op.opcodeIndex] == s.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM:
                fn(m, s, op)

    return edit_model(model, edit)


def _time_major(m: Any, s: Any, op: Any) -> None:
    """[1, T, F] input and [1, T, S] output as [T, 1, F] and [T, 1, S] with time_major (the same bytes)."""
    op.builtinOptions.timeMajor = True
    for t in (op.inputs[0], op.outputs[0]):
        shape = list(m.subgraphs[0].tensors[t].shape)
        m.subgraphs[0].tensors[t].shape = [shape[1], shape[0], shape[2]]
        m.subgraphs[0].tensors[t].shapeSignature = None


def test_time_major(tmp_path) -> None:
    model = _edit_lstm(build(SATURATING), _time_major)
    g = parse_tflite(model)
    assert g.ops[0].options["time_major"] and g.tensors[g.inputs[0]].shape[1] == 1
    assert_bitexact(model, tmp_path, board="host", samples=3)


def two_batches(major: bool) -> Any:
    """An _edit_lstm edit: a [1, T, F] LSTM made two batch rows, batch-major or (``major``) time-major, each with
    its own hidden and cell state (also tests/test_lstm_f32.py and test_lstm_int16.py)."""
    def edit(m: Any, s: Any, op: Any) -> None:
        ts = m.subgraphs[0].tensors
        op.builtinOptions.timeMajor = major
        for t in (op.inputs[0], op.outputs[0]):
            _, steps, depth = ts[t].shape
            ts[t].shape = [steps, 2, depth] if major else [2, steps, depth]
        for t in (op.inputs[18], op.inputs[19]):
            ts[t].shape = [2, ts[t].shape[1]]
        for t in ts:
            t.shapeSignature = None

    return edit


@pytest.mark.parametrize("major", [False, True], ids=["batch-major", "time-major"])
def test_two_batches(major, tmp_path) -> None:
    """Two batch rows, each with its own hidden and cell state, in either layout."""
    model = _edit_lstm(build(SATURATING), two_batches(major))
    assert parse_tflite(model).ops[0].options["time_major"] == major
    assert_bitexact(model, tmp_path, board="host", samples=3, resets=(2,))


@pytest.mark.parametrize("clip", [0.4, None], ids=["clip", "below-one-step"])
def test_cell_clip(clip, tmp_path) -> None:
    """The cell clip, quantized as TFLM does (truncated): a real clip (0.4), and one of half a cell step, which
    TFLM quantizes to 0 and so clips every cell value to 0."""
    def set_clip(m: Any, s: Any, op: Any) -> None:
        scale = float(m.subgraphs[0].tensors[op.inputs[19]].quantization.scale[0])
        op.builtinOptions.cellClip = clip if clip is not None else scale / 2

    model = _edit_lstm(build(SATURATING), set_clip)
    assert parse_tflite(model).ops[0].options["cell_clip"] > 0
    assert_bitexact(model, tmp_path, board="host", samples=3)


# ---------------------------------------------------------------------------
# refusals: one line, and exit 2 from the CLI


def _peephole(m: Any, s: Any, op: Any) -> None:
    op.inputs[10] = op.inputs[13]  # any tensor at the cell-to-forget position


def _cifg(m: Any, s: Any, op: Any) -> None:
    op.inputs[1] = -1


def _short(m: Any, s: Any, op: Any) -> None:
    op.inputs = list(op.inputs[:20])


def _relu(m: Any, s: Any, op: Any) -> None:
    op.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.RELU


def _cell_scale(m: Any, s: Any, op: Any) -> None:
    m.subgraphs[0].tensors[op.inputs[19]].quantization.scale = [3e-4]


def _huge_cell_scale(m: Any, s: Any, op: Any) -> None:
    m.subgraphs[0].tensors[op.inputs[19]].quantization.scale = [8.0]


def _per_channel(m: Any, s: Any, op: Any) -> None:
    q = m.subgraphs[0].tensors[op.inputs[2]].quantization
    n = m.subgraphs[0].tensors[op.inputs[2]].shape[0]
    q.scale, q.zeroPoint, q.quantizedDimension = [float(q.scale[0])] * n, [0] * n, 0


def _intermediate(m: Any, s: Any, op: Any) -> None:
    m.subgraphs[0].tensors[op.intermediates[0]].shape = [1]  # the converter's are empty: TFLM allocates no other


def _no_state(m: Any, s: Any, op: Any) -> None:
    m.subgraphs[0].tensors[op.inputs[18]].isVariable = False


@pytest.mark.parametrize("edit, error, words", [
    (_peephole, ModelError, "peephole"),
    (_cifg, ModelError, "input 1"),
    (_short, ModelError, "all 24"),
    (_relu, ModelError, "fused activation is RELU"),
    (_cell_scale, UnsupportedError, "not a power of two"),
    (_huge_cell_scale, ModelError, "2^3"),
    (_per_channel, UnsupportedError, "per tensor"),
    (_no_state, ModelError, "variable tensor"),
    (_intermediate, ModelError, "intermediate"),
], ids=lambda v: v.__name__.strip("_") if callable(v) else None)
def test_refusals(edit, error, words) -> None:
    msg = refusal(_edit_lstm(build(SMALL), edit), error)
    assert words in msg and "UNIDIRECTIONAL_SEQUENCE_LSTM" in msg, msg


def test_refusal_exits_2(tmp_path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_edit_lstm(build(SMALL), _peephole))
    assert cli_main(["compile", str(path), "--board", "host", "-o", str(tmp_path / "out")]) == 2


def test_overflowing_accumulator_is_refused() -> None:
    """Input weights scaled so that the input multiplier needs a left shift whose accumulator overflows int32."""
    def tiny_gate_scale(m: Any, s: Any, op: Any) -> None:
        q = m.subgraphs[0].tensors[op.inputs[2]].quantization
        q.scale = [float(np.float32(q.scale[0]) * 1e6)]

    msg = refusal(_edit_lstm(build(SMALL), tiny_gate_scale), ModelError)
    assert "forget gate's input multiplier" in msg, msg
