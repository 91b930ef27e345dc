"""FULLY_CONNECTED (int8 activations, int8 weights per tensor or per channel, optional int32 bias)."""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import (ConstArray, KernelCall, LowerContext, lowering, tensor_arg, unsupported)
from tinyml.codegen.ops.common import bias_arg, fused_activation, per_channel_multipliers, weighted_operands
from tinyml.codegen.qmath import activation_range, quantize_multiplier
from tinyml.graph.ir import Op

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("fc_s8", ring=True, per_mac=8.0),
)


@lowering("FULLY_CONNECTED")
def lower_fc(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    if op.options.get("weights_format", 0) != 0:
        raise unsupported(op, "shuffled weights format is not supported; reconvert with default options")
    act = fused_activation(op)
    if len(w.shape) != 2:
        raise unsupported(op, f"weights '{w.name}' have shape {list(w.shape)}; expected [outputs, inputs]")
    out_depth, accum = w.shape
    if accum == 0 or inp.size % accum != 0:
        raise unsupported(op, f"input of {inp.size} values is not a multiple of the weights' depth {accum}")
    batches = inp.size // accum
    if out.size != batches * out_depth:
        raise unsupported(op, f"output '{out.name}' has {out.size} values, expected {batches}x{out_depth}")
    if b is not None and b.size != out_depth:
        raise unsupported(op, f"bias '{b.name}' has {b.size} values for {out_depth} outputs")
    wq = w.quant
    if wq is None:
        raise unsupported(op, f"weights '{w.name}' are not quantized")
    if np.any(wq.zero_point != 0):
        raise unsupported(op, f"weights '{w.name}' have a non-zero zero point; int8 weights must be symmetric")
    if wq.per_channel:
        mult, shift = per_channel_multipliers(op, inp, w, out, out_depth, 0)
    else:
        # TFLM GetQuantizedConvolutionMultipler: the product of the two scales is
        # taken in float, then widened to double (this is where TFLM and TFLite differ).
        product = float(np.float32(inp.quant.scale[0]) * np.float32(wq.scale[0]))
        m, s = quantize_multiplier(product / float(out.quant.scale[0]))
        mult = ConstArray("mult", "int32_t", np.asarray([m], dtype=np.int32))
        shift = ConstArray("shift", "int32_t", np.asarray([s], dtype=np.int32))
    act_min, act_max = activation_range(act, out.quant.s, out.quant.zp)
    params = dict(
        batches=batches, accum_depth=accum, out_depth=out_depth, per_channel=int(wq.per_channel),
        input_offset=-inp.quant.zp, output_offset=out.quant.zp, act_min=act_min, act_max=act_max,
        mult="mult", shift="shift",
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="fc_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), bias_arg(b),
              tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index],
        macs=batches * out_depth * accum,
        inplace_inputs=[0], inplace_kind="ring",
    )
