"""UNIDIRECTIONAL_SEQUENCE_LSTM: TFLM's integer LSTM (int8 input, output and hidden state, int8 weights per tensor,
int32 biases, int16 cell state; validation's lstm row).  The multipliers are the ones TFLM's Prepare computes
(validation's lstm_reals); the kernel (lstm_s8.c.j2) runs every batch row and time step and keeps the hidden and
cell states, variable tensors in the arena that the model's init and reset fill, for the next invocation."""

from __future__ import annotations

import dataclasses

import numpy as np

from tinyml.codegen.declare import SIGMOID_S16, Variant, portable
from tinyml.codegen.lower import Arg, ConstArray, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate import lstm_reals, lstm_shape

GATES = 4
TANH_SHIFT_BASE = 12  # TFLM: the cell state's tanh shifts its input left by 15 + p - 3 (cell scale 2^p)

# Whole layer only (the states are updated in place; no ring or patch form), scratch 4 x state int16 values.
# Instructions per MAC: `tinyml profile` counted 10.05 for tests/modelgen.py's lstm_kws on mps2-an386.
VARIANTS: tuple[Variant, ...] = (
    dataclasses.replace(portable("lstm_s8", per_mac=10.0), helpers=(SIGMOID_S16,)),
)


def _multipliers(name: str, reals: tuple[float, ...]) -> tuple[ConstArray, ConstArray]:
    pairs = [quantize_multiplier(r) for r in reals]
    return (ConstArray(f"{name}_mult", "int32_t", np.asarray([m for m, _ in pairs], dtype=np.int32)),
            ConstArray(f"{name}_shift", "int32_t", np.asarray([s for _, s in pairs], dtype=np.int32)))


@lowering("UNIDIRECTIONAL_SEQUENCE_LSTM")
def lower_lstm(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 24 inputs, the standard LSTM's (weights 1-8, biases 12-15, states 18-19), per-tensor weights,
    # shapes as TFLM's ValidateTensorSize, a power-of-two cell scale and no int32 overflow.
    shape, reals = lstm_shape(ctx.graph, op), lstm_reals(ctx.graph, op)
    inp, hidden, cell, out = (ctx.t(op.inputs[0]), ctx.t(op.inputs[18]), ctx.t(op.inputs[19]),
                              ctx.t(op.outputs[0]))
    in_mult, in_shift = _multipliers("in", reals.input_fc)
    rec_mult, rec_shift = _multipliers("rec", reals.recurrent_fc)
    fm, fs = quantize_multiplier(reals.forget_cell)
    im, is_ = quantize_multiplier(reals.input_cell)
    hm, hs = quantize_multiplier(reals.hidden)
    left = TANH_SHIFT_BASE + reals.cell_power  # TFLM: a left shift becomes the multiplier 3 << shift
    tanh_mult, tanh_shift = (3 << left, 0) if left >= 0 else (3, -left)
    params = dict(
        batch=shape.batch, time=shape.time, input_dim=shape.input_dim, state_dim=shape.state_dim,
        time_major=int(shape.time_major), input_offset=-inp.quant.zp, hidden_offset=-hidden.quant.zp,
        hidden_zero_point=hidden.quant.zp, in_mult="in_mult", in_shift="in_shift", rec_mult="rec_mult",
        rec_shift="rec_shift", forget_mult=fm, forget_shift=fs, input_mult=im, input_shift=is_, hidden_mult=hm,
        hidden_shift=hs, cell_clip=reals.cell_clip, tanh_mult=tanh_mult, tanh_shift=tanh_shift,
    )
    consts = [in_mult, in_shift, rec_mult, rec_shift]
    args = [tensor_arg(inp)] + [tensor_arg(ctx.t(op.inputs[p])) for p in (1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15)]
    args += [tensor_arg(hidden, writable=True), tensor_arg(cell, writable=True), tensor_arg(out, writable=True),
             Arg(kind="scratch", ctype="int16_t", writable=True)]
    steps = shape.batch * shape.time
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="lstm_s8", spec={}, params=params, args=args, consts=consts,
        inputs=[inp.index, hidden.index, cell.index], outputs=[out.index],
        scratch_bytes=GATES * shape.state_dim * 2,
        macs=steps * GATES * shape.state_dim * (shape.input_dim + shape.state_dim),
    )
