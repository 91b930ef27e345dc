"""Convolution-like operators of issue 17: TRANSPOSE_CONV (int8 activations, int8 weights per channel or per
tensor, optional int32 bias).

TRANSPOSE_CONV follows TFLM transpose_conv.cc (Prepare: PopulateConvolutionQuantizationParams with one
multiplier per output channel, the padding ComputePaddingHeightWidth gives over the output's size) and
reference_integer_ops::TransposeConv.  TFLM scatters every input value into an int32 scratch tensor of the
output's size; our kernel gathers, for each output value, the input values that reach it (the same int32
sum in another order: validation bounds every partial sum), so it needs no scratch.
"""

from __future__ import annotations

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, shape4, tensor_arg
from tinyml.codegen.ops.common import bias_arg, fused_activation, per_channel_multipliers
from tinyml.codegen.qmath import activation_range
from tinyml.graph.ir import Op
from tinyml.graph.validate import transpose_conv_padding

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.  Instructions per
# MAC (the products that land inside the output): QEMU's counts on mps2-an386 (`tinyml profile --kernels
# portable`) for the modelgen cases 4x4x8-k2x2-s2x2 (23.5: one tap per output, the requantization dominates),
# 6x5x3-k4x3-s1x1 (16.1) and 5x5x6-k5x5-s2x2 (26.3); 20 is their total instructions over their total MACs.
# Not in place (the output is larger than the input and each output value reads several input pixels), no
# scratch (TFLM's int32 scratch of the output's size is not needed by the gather), no on-stack buffer.
VARIANTS = (
    portable("transpose_conv_s8", per_mac=20.0),
)


def _taps(in_size: int, out_size: int, k: int, stride: int, pad: int) -> int:
    """How many (input index, filter tap) pairs along one axis land inside the output."""
    total = 0
    for f in range(k):
        # input i lands on i * stride - pad + f, which must be in [0, out_size)
        lo = max(0, -((f - pad) // stride))  # ceil((pad - f) / stride)
        hi = min(in_size - 1, (out_size - 1 + pad - f) // stride)
        total += max(hi - lo + 1, 0)
    return total


@lowering("TRANSPOSE_CONV")
def lower_transpose_conv(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: output_shape constant (unread), weights [out_c, k_h, k_w, in_c], 4-D input and output with
    # equal batches, one bias per output channel, strides, paddings and the multipliers in range.
    w, inp, out = ctx.t(op.inputs[1]), ctx.t(op.inputs[2]), ctx.t(op.outputs[0])
    b = ctx.t(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    n, in_h, in_w, in_c = shape4(op, inp)
    _, out_h, out_w, out_c = shape4(op, out)
    _, k_h, k_w, _ = shape4(op, w)
    pad_h, pad_w = transpose_conv_padding(op, out_h, out_w, k_h, k_w)
    stride_h, stride_w = op.options["stride_h"], op.options["stride_w"]
    mult, shift = per_channel_multipliers(op, inp, w, out, out_c, 0)
    act_min, act_max = activation_range(fused_activation(op), out.quant.s, out.quant.zp)
    params = dict(
        batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c, k_h=k_h, k_w=k_w,
        stride_h=stride_h, stride_w=stride_w, pad_h=pad_h, pad_w=pad_w,
        input_offset=-inp.quant.zp, output_offset=out.quant.zp, act_min=act_min, act_max=act_max,
        mult="mult", shift="shift",
    )
    macs = (n * out_c * in_c * _taps(in_h, out_h, k_h, stride_h, pad_h) * _taps(in_w, out_w, k_w, stride_w, pad_w))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="transpose_conv_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), bias_arg(b), tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index], macs=macs,
    )
