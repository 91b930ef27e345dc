"""FULLY_CONNECTED (int8 activations, int8 weights per tensor or per channel, optional int32 bias)."""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.common import bias_arg, fused_activation, per_channel_multipliers, weighted_operands
from tinyml.codegen.qmath import activation_range, quantize_multiplier
from tinyml.graph.ir import Op, Tensor

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
# Fitted as the convolutions' (ops/conv.py) over the 28 FULLY_CONNECTED layers of those builds and the
# MLPerf AD autoencoder's: 5.4 per MAC plus 67 per output (requantization), -10% to +9% (8 per MAC alone: up
# to +33%).
VARIANTS = (
    portable("fc_s8", ring=True, per_mac=5.4, per_output=67.0, code_bytes=550),
)


def fc_multipliers(op: Op, inp: Tensor, w: Tensor, out: Tensor) -> tuple[ConstArray, ConstArray]:
    """TFLM CalculateOpDataFullyConnected: one multiplier per output channel (per-channel weights) or one."""
    if w.quant.per_channel:
        return per_channel_multipliers(op, inp, w, out, w.shape[0], 0)
    # TFLM GetQuantizedConvolutionMultipler: the product of the two scales is
    # taken in float, then widened to double (this is where TFLM and TFLite differ).
    product = float(np.float32(inp.quant.scale[0]) * np.float32(w.quant.scale[0]))
    m, s = quantize_multiplier(product / float(out.quant.scale[0]))
    return (ConstArray("mult", "int32_t", np.asarray([m], dtype=np.int32)),
            ConstArray("shift", "int32_t", np.asarray([s], dtype=np.int32)))


@lowering("FULLY_CONNECTED")
def lower_fc(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)  # validated: weights [outputs, inputs], shapes, quantization
    act = fused_activation(op)
    out_depth, accum = w.shape
    batches = inp.size // accum
    wq = w.quant
    mult, shift = fc_multipliers(op, inp, w, out)
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
