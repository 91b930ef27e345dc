"""UNIDIRECTIONAL_SEQUENCE_LSTM on 16-bit activations (validation's INT16_RULES row): TFLM's
EvalLstm<int16_t, int8_t, int16_t, int64_t>, the integer LSTM of codegen/ops/lstm.py with int16 input, hidden
state and output (zero points 0), int8 per-tensor weights and int64 biases: each gate's two fully connected
layers sum their products in int64 (reference_integer_ops::FullyConnected on int16) and requantize with the int64
MultiplyByQuantizedMultiplier; the cell update and the sigmoid and tanh are the int8 LSTM's, and the hidden state
(output gate x tanh(cell)) is requantized as there and clamped to int16.  The multipliers and params are the
int8 lowering's (its offsets and hidden zero point are 0 here)."""

from __future__ import annotations

import dataclasses

from tinyml.codegen.declare import SIGMOID_S16, Variant, portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering
from tinyml.codegen.ops.lstm import lower_lstm
from tinyml.graph.ir import Op

# Whole layer only, scratch 4 x state int16 values.  Instructions per MAC: estimated from lstm_s8's 10 (the same
# loops with int64 sums).
VARIANTS: tuple[Variant, ...] = (
    dataclasses.replace(portable("lstm_s16", per_mac=12.0), helpers=(SIGMOID_S16,)),
)


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM", dtype="int16")
def lower_lstm_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: the int8 row's structure and shapes, int16 activations and states, int64 biases, a power-of-two
    # cell scale, the gates' multipliers within the int64 requantization's range for their largest sums.
    return dataclasses.replace(lower_lstm(ctx, op), kernel="lstm_s16", params_kernel="lstm_s8")
