"""UNIDIRECTIONAL_SEQUENCE_LSTM in float32 (validation's FLOAT_RULES row): TFLM's EvalLstm<float, float, float,
float>, the float LSTM step of lstm_eval.h (each gate: the input fully connected layer with the gate's bias plus
the recurrent one, then sigmoid, the cell gate tanh; cell = forget x cell + input x cell gate, clipped when the
cell_clip option is above 0; hidden = tanh(cell) x output gate).  Within verify's float tolerance as the other
float kernels.  The hidden and cell states are variable tensors in the arena, kept between invocations and
refilled by the model's init and reset, as for the integer LSTM (codegen/ops/lstm.py)."""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable_f32
from tinyml.codegen.lower import Arg, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.lstm import GATES
from tinyml.graph.ir import Op
from tinyml.graph.validate import lstm_shape
from tinyml.graph.validate.lstm import BIASES, CELL_STATE, HIDDEN_STATE, INPUT_WEIGHTS, RECURRENT_WEIGHTS

# Whole layer only; scratch 4 x state floats.  Instructions per MAC: as fc_f32 (a multiply-add per MAC; the
# sigmoids and tanhs add a few hundred per state value and step, small against the MACs of a real layer).
VARIANTS = (
    portable_f32("lstm_f32", 8.0, 100.0),
)


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM", dtype="float32")
def lower_lstm_f32(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 24 inputs, the standard LSTM's (weights 1-8, biases 12-15, states 18-19), float32, shapes as
    # TFLM's ValidateTensorSize, a finite cell clip.
    shape = lstm_shape(ctx.graph, op)
    inp, hidden, cell, out = (ctx.t(op.inputs[0]), ctx.t(op.inputs[HIDDEN_STATE]), ctx.t(op.inputs[CELL_STATE]),
                              ctx.t(op.outputs[0]))
    clip = float(op.options.get("cell_clip", 0.0))
    params = dict(batch=shape.batch, time=shape.time, input_dim=shape.input_dim, state_dim=shape.state_dim,
                  time_major=int(shape.time_major), cell_clip=np.float32(clip if clip > 0.0 else 0.0))
    args = [tensor_arg(inp)]
    args += [tensor_arg(ctx.t(op.inputs[p])) for p in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS, *BIASES)]
    args += [tensor_arg(hidden, writable=True), tensor_arg(cell, writable=True), tensor_arg(out, writable=True),
             Arg(kind="scratch", ctype="float", writable=True)]
    steps = shape.batch * shape.time
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="lstm_f32", spec={}, params=params, args=args,
        inputs=[inp.index, hidden.index, cell.index], outputs=[out.index],
        scratch_bytes=GATES * shape.state_dim * 4,
        macs=steps * GATES * shape.state_dim * (shape.input_dim + shape.state_dim),
    )
