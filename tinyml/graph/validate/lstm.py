"""The row of UNIDIRECTIONAL_SEQUENCE_LSTM (codegen/ops/lstm.py): TFLM's integer LSTM with int8 input, output and
hidden state, int8 weights, int32 biases and an int16 cell state (what the converter makes of a Keras LSTM layer
with int8 post-training quantization), and the arithmetic its Prepare derives, shared with the lowering.

TFLM (unidirectional_sequence_lstm.cc, lstm_eval_common.cc) runs the standard LSTM only: all 24 inputs, the
input gate's weights present (no CIFG), no peephole, projection or layer-norm tensors; the hidden state is a
variable tensor of the input's type and [batch, state] shape, the cell state a variable tensor of batch x state
values.  Each gate is two fully connected layers into int16 with scale 2^-12 (the input one with the gate's bias,
the recurrent one on the hidden state without), their saturating sum, then sigmoid (the cell gate: tanh); the cell
state is forget x cell + input x cell gate (int16, optionally clipped) and the hidden state output x tanh(cell),
requantized to the hidden state's scale and zero point.  The cell state's scale must be a power of two 2^p (TFLM
takes its log2 for the tanh's input shift).

The float32 row (FLOAT_RULES; codegen/ops/lstm_f32.py) takes the same structure and shapes with float32
operands; the int16x8 row (INT16_RULES, validate/int16.py; codegen/ops/lstm_s16.py) int16 activations and states,
int64 biases and this arithmetic with the gates' sums in int64 (:func:`lstm_arithmetic`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from tinyml.graph.ir import Graph, Op, Tensor
from tinyml.graph.validate.base import (Operand, Rule, _check_multiplier, _f32, _fail, _max_offset, _op, _ten,
                                        _unsupported)
from tinyml.graph.validate.core import _shape_error, _t

LSTM_INPUTS = 24  # TFLM requires every input position (absent optional ones as -1)
HIDDEN_STATE, CELL_STATE = 18, 19  # the variable tensors TFLM keeps between invocations
INPUT_WEIGHTS = (1, 2, 3, 4)  # input-to-input, -forget, -cell, -output weights
RECURRENT_WEIGHTS = (5, 6, 7, 8)
BIASES = (12, 13, 14, 15)  # input, forget, cell and output gate biases
VARIANT_INPUTS = {9: "cell-to-input (peephole) weights", 10: "cell-to-forget (peephole) weights",
                  11: "cell-to-output (peephole) weights", 16: "projection weights", 17: "projection bias",
                  20: "input layer-norm coefficients", 21: "forget layer-norm coefficients",
                  22: "cell layer-norm coefficients", 23: "output layer-norm coefficients"}
GATE_SCALE = 2.0 ** -12  # the gates' fully connected outputs: Q3.12
GATE_OUTPUT_SCALE = 2.0 ** -15  # sigmoid and tanh outputs: Q0.15
# Cell state scales 2^p the int16 tanh takes: its input is multiplied by 3 << (12 + p) (within int32 for
# p <= 2) or shifted right by -(12 + p) (a shift below 32 for p >= -43).
CELL_POWER_RANGE = (-43, 2)
INT16_PRODUCT = 1 << 30  # the largest |product| of two int16 values


@dataclass(frozen=True)
class LstmShape:
    """The sizes TFLM's CreateLstmSizeInfo reads: batches, time steps, input and state dimensions."""

    batch: int
    time: int
    input_dim: int
    state_dim: int
    time_major: bool


@dataclass(frozen=True)
class LstmReals:
    """The real multipliers of TFLM's PrepareGateParametersInteger, gates in the order input, forget, cell,
    output: each gate's input and recurrent fully connected layers, and the three element-wise products."""

    input_fc: tuple[float, float, float, float]
    recurrent_fc: tuple[float, float, float, float]
    forget_cell: float  # forget gate x cell state -> cell state
    input_cell: float  # input gate x cell gate -> cell state
    hidden: float  # output gate x tanh(cell state) -> hidden state
    cell_power: int  # the cell state's scale is 2^cell_power
    cell_clip: int  # the quantized cell clip (-1: none)


def _lstm_rules() -> dict[str, Rule]:
    """The row of UNIDIRECTIONAL_SEQUENCE_LSTM."""
    weights = Operand("weights", kind="const", quant="weights")
    variant = Operand("variant tensor", ("int8", "int16", "int32", "float32"), kind="any", optional=True,
                      quant="none")
    inputs = (
        Operand("input"),
        *(weights,) * 8,
        *(variant,) * 3,
        *(Operand("bias", ("int32",), kind="const", quant="bias"),) * 4,
        variant, variant,
        Operand("hidden state"), Operand("cell state", ("int16",)),
        *(variant,) * 4,
    )
    return {
        # The cell gate's activation is the fused activation option (TFLM asserts it is tanh or sigmoid, and
        # the schema can only say tanh); the output's quantization is not read (TFLM copies the hidden state).
        "UNIDIRECTIONAL_SEQUENCE_LSTM": Rule(
            inputs=inputs, outputs=(Operand("output", quant="none"),), activations=("TANH",),
            checks=(_lstm_structure, _lstm_per_tensor, _lstm_shapes, _lstm_arithmetic),
            state_inputs=(HIDDEN_STATE, CELL_STATE)),
    }


def _float_lstm_rules() -> dict[str, Rule]:
    """The float32 row (FLOAT_RULES) of UNIDIRECTIONAL_SEQUENCE_LSTM: TFLM's EvalLstm<float, float, float,
    float>, every operand float32 (no quantization read), the standard LSTM's structure and shapes as the int8
    row's; a finite cell clip (TFLM clips when it is above 0)."""
    f32 = ("float32",)
    variant = Operand("variant tensor", ("int8", "int16", "int32", "float32"), kind="any", optional=True,
                      quant="none")
    inputs = (
        Operand("input", f32, quant="none"),
        *(Operand("weights", f32, kind="const", quant="none"),) * 8,
        *(variant,) * 3,
        *(Operand("bias", f32, kind="const", quant="none"),) * 4,
        variant, variant,
        Operand("hidden state", f32, quant="none"), Operand("cell state", f32, quant="none"),
        *(variant,) * 4,
    )
    return {
        "UNIDIRECTIONAL_SEQUENCE_LSTM": Rule(
            inputs=inputs, outputs=(Operand("output", f32, quant="none"),), activations=("TANH",),
            checks=(_lstm_structure, _lstm_shapes, _finite_cell_clip), state_inputs=(HIDDEN_STATE, CELL_STATE)),
    }


def _lstm_structure(graph: Graph, op: Op) -> None:
    """All 24 inputs, the input gate's weights present (the rows require them), no LSTM variant's tensors."""
    if len(op.inputs) != LSTM_INPUTS:
        raise _fail(graph, f"{_op(op)}: has {len(op.inputs)} inputs; TFLM requires all {LSTM_INPUTS} (absent "
                           "optional ones as -1); re-export the model")
    present = [p for p, what in VARIANT_INPUTS.items() if op.inputs[p] >= 0]
    if present:
        raise _fail(graph, f"{_op(op)}: input {present[0]} ({VARIANT_INPUTS[present[0]]}) is present; TFLM runs "
                           "the standard LSTM only (no peephole, projection or layer normalization), as Keras's "
                           "LSTM layer makes it")


def _lstm_per_tensor(graph: Graph, op: Op) -> None:
    """The integer LSTM's weights quantized per tensor."""
    for p in INPUT_WEIGHTS + RECURRENT_WEIGHTS:
        w = graph.tensors[op.inputs[p]]  # present: the row requires them (no CIFG in TFLM)
        if w.quant.per_channel:
            raise _unsupported(graph, op, f"weights {_ten(w)} (input {p}) have {w.quant.scale.size} per-channel "
                                          "scales; the LSTM's weights must be quantized per tensor, as the "
                                          "converter quantizes them")


def _finite_cell_clip(graph: Graph, op: Op) -> None:
    clip = float(op.options.get("cell_clip", 0.0))
    if not math.isfinite(clip):
        raise _unsupported(graph, op, f"cell_clip is {clip}; supported is a finite clip (0 or below: none)")


def lstm_shape(graph: Graph, op: Op) -> LstmShape:
    """The sizes of an LSTM validation accepted (or _lstm_shapes is checking)."""
    inp, hidden = _t(graph, op, 0), _t(graph, op, HIDDEN_STATE)
    major = bool(op.options.get("time_major", False))
    b, t = (inp.shape[1], inp.shape[0]) if major else (inp.shape[0], inp.shape[1])
    return LstmShape(batch=b, time=t, input_dim=inp.shape[2], state_dim=hidden.shape[1], time_major=major)


def _lstm_shapes(graph: Graph, op: Op) -> None:
    """TFLM's ValidateTensorSize: a 3-D input, a [batch, state] hidden state, weights [state, input] and
    [state, state], biases [state], batch x state cell values, a 3-D output of state values per step."""
    inp, hidden, cell, out = _t(graph, op, 0), _t(graph, op, HIDDEN_STATE), _t(graph, op, CELL_STATE), \
        _t(graph, op, 0, True)
    if len(inp.shape) != 3:
        raise _shape_error(graph, op, f"input {_ten(inp)} has shape {list(inp.shape)}; a 3-D shape is required "
                                      "([batch, time, features], or [time, batch, features] with time_major)")
    if len(hidden.shape) != 2:
        raise _shape_error(graph, op, f"hidden state {_ten(hidden)} has shape {list(hidden.shape)}; allowed is "
                                      "[batch, state] (TFLM reads the state size from its second dimension)")
    s = lstm_shape(graph, op)
    want: list[tuple[Tensor, tuple[int, ...]]] = [(graph.tensors[op.inputs[p]], (s.state_dim, s.input_dim))
                                                  for p in INPUT_WEIGHTS]
    want += [(graph.tensors[op.inputs[p]], (s.state_dim, s.state_dim)) for p in RECURRENT_WEIGHTS]
    want += [(graph.tensors[op.inputs[p]], (s.state_dim,)) for p in BIASES]
    for t, shape in want:
        if tuple(t.shape) != shape:
            raise _shape_error(graph, op, f"{_ten(t)} has shape {list(t.shape)}; allowed is {list(shape)} (input "
                                          f"{list(inp.shape)}, {s.state_dim} state values per batch)")
    for t in (hidden, cell):
        if t.size != s.batch * s.state_dim:
            raise _shape_error(graph, op, f"state {_ten(t)} has {t.size} values; allowed is batch x state = "
                                          f"{s.batch * s.state_dim}")
    if len(out.shape) != 3 or tuple(out.shape) != (inp.shape[0], inp.shape[1], s.state_dim):
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}; allowed is "
                                      f"{[inp.shape[0], inp.shape[1], s.state_dim]}")


def lstm_reals(graph: Graph, op: Op) -> LstmReals:
    """The multipliers TFLM's Prepare computes (CreateGateParams: the scale products in float, divided in
    double; CreateInterGateMulParams: in double), the cell state's scale power and the quantized cell clip."""
    inp, hidden, cell = _t(graph, op, 0), _t(graph, op, HIDDEN_STATE), _t(graph, op, CELL_STATE)

    def fc(x: Tensor, p: int) -> float:
        return _f32(np.float32(x.quant.s) * np.float32(graph.tensors[op.inputs[p]].quant.s)) / GATE_SCALE

    cell_s = _f32(cell.quant.s)
    _, exponent = math.frexp(cell_s)
    clip = float(op.options.get("cell_clip", 0.0))
    q_clip = int(min(max(clip / cell_s, -32768.0), 32767.0)) if clip > 0.0 else -1  # static_cast truncates
    return LstmReals(
        input_fc=tuple(fc(inp, p) for p in INPUT_WEIGHTS),  # type: ignore[arg-type]
        recurrent_fc=tuple(fc(hidden, p) for p in RECURRENT_WEIGHTS),  # type: ignore[arg-type]
        forget_cell=GATE_OUTPUT_SCALE * cell_s / cell_s,
        input_cell=GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / cell_s,
        hidden=GATE_OUTPUT_SCALE * GATE_OUTPUT_SCALE / _f32(hidden.quant.s),
        cell_power=exponent - 1, cell_clip=q_clip)


def _lstm_arithmetic(graph: Graph, op: Op) -> None:
    """The cell state's scale a power of two within what the int16 tanh can take, every multiplier
    representable and every int32 accumulator and product of TFLM's arithmetic free of overflow."""
    lstm_arithmetic(graph, op, _check_multiplier)


def lstm_arithmetic(graph: Graph, op: Op, gate_check: Callable[[Graph, Op, str, float, int], None]) -> None:
    """_lstm_arithmetic with ``gate_check`` for the gates' fully connected layers (the int16x8 LSTM's sums are
    int64, requantized by the int64 MultiplyByQuantizedMultiplier: validate/int16.py)."""
    inp, hidden, cell = _t(graph, op, 0), _t(graph, op, HIDDEN_STATE), _t(graph, op, CELL_STATE)
    mantissa, exponent = math.frexp(_f32(cell.quant.s))
    if mantissa != 0.5:
        raise _unsupported(graph, op, f"cell state {_ten(cell)} has scale {cell.quant.s:g}, not a power of two; "
                                      "TFLM rounds its log2, tinyml takes the power-of-two scales the converter "
                                      "gives")
    lo, hi = CELL_POWER_RANGE
    if not lo <= exponent - 1 <= hi:
        raise _fail(graph, f"{_op(op)}: cell state {_ten(cell)} has scale 2^{exponent - 1}; allowed is 2^{lo} to "
                           f"2^{hi} (beyond, TFLM's int16 tanh overflows or shifts by 32 or more)")
    reals = lstm_reals(graph, op)
    gates = ("input", "forget", "cell", "output")
    for g, p, b, real in zip(gates, INPUT_WEIGHTS, BIASES, reals.input_fc):
        acc = _row_bound(graph.tensors[op.inputs[p]], inp, graph.tensors[op.inputs[b]])
        gate_check(graph, op, f"the {g} gate's input multiplier (input scale x weight scale / 2^-12)", real, acc)
    for g, p, real in zip(gates, RECURRENT_WEIGHTS, reals.recurrent_fc):
        acc = _row_bound(graph.tensors[op.inputs[p]], hidden, None)
        gate_check(graph, op, f"the {g} gate's recurrent multiplier (hidden state scale x weight scale / 2^-12)",
                   real, acc)
    _check_multiplier(graph, op, "the multiplier input gate x cell gate -> cell state (2^-30 / cell state scale)",
                      reals.input_cell, INT16_PRODUCT)
    _check_multiplier(graph, op, "the multiplier output gate x tanh(cell state) -> hidden state (2^-30 / hidden "
                                 "state scale)", reals.hidden, INT16_PRODUCT)


def _row_bound(w: Tensor, x: Tensor, bias: Tensor | None) -> int:
    """The largest |accumulator| of a fully connected layer: per output row, sum |w| x max |x - zero point|
    plus |bias|."""
    sums = np.abs(w.data.astype(np.int64)).sum(axis=1) * _max_offset(x)
    if bias is not None:
        sums = sums + np.abs(bias.data.astype(np.int64)).reshape(-1)
    return int(sums.max())
