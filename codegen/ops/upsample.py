"""Convolution-like operators of issue 17: TRANSPOSE_CONV (int8 activations, int8 weights per channel or per
tensor, optional int32 bias), RESIZE_NEAREST_NEIGHBOR (int8 and int16) and RESIZE_BILINEAR
(int8).

TRANSPOSE_CONV follows TFLM transpose_conv.cc (Prepare: PopulateConvolutionQuantizationParams with one
multiplier per output channel, the padding ComputePaddingHeightWidth gives over the output's size) and
reference_integer_ops::TransposeConv.  TFLM scatters every input value into an int32 scratch tensor of the
output's size; our kernel gathers, for each output value, the input values that reach it (the same int32
sum in another order: validation bounds every partial sum), so it needs no scratch.

RESIZE_NEAREST_NEIGHBOR follows reference_ops::ResizeNearestNeighbor (GetNearestNeighbor's float32
arithmetic, done here: the kernel copies pixels through a table of input rows and one of input columns);
RESIZE_BILINEAR the int8 path of TFLM resize_bilinear.cc, reference_ops::ResizeBilinearInteger (positions in
1/1024ths computed here into tables, the blend and its rounding in the kernel).
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, bytes_arg, lowering, shape4, tensor_arg
from tinyml.codegen.ops.common import bias_arg, fused_activation, per_channel_multipliers
from tinyml.codegen.qmath import activation_range
from tinyml.graph.ir import DTYPE_BYTES, Op
from tinyml.graph.validate import bilinear_axis, transpose_conv_padding

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.  Instructions per
# MAC (the products that land inside the output): QEMU's counts on mps2-an386 (`tinyml profile --kernels
# portable`) for the modelgen cases 4x4x8-k2x2-s2x2 (23.5: one tap per output, the requantization dominates),
# 6x5x3-k4x3-s1x1 (16.1) and 5x5x6-k5x5-s2x2 (26.3); 20 is their total instructions over their total MACs.
# RESIZE_*: instructions per output element, the same way, for 5x3x2 -> 11x7 with align_corners (depth 2)
# and 8x8x16 -> 16x16 with half_pixel_centers (depth 16): nearest 17.3 and 2.4 (a copy per pixel), bilinear
# 41.4 and 26.1; the figures are again total over total.  None of these runs in place (the output is
# larger than the input, or each output value reads several input pixels), needs scratch (TFLM's int32
# scratch of TRANSPOSE_CONV's output is not needed by the gather) or an on-stack buffer.
RESIZE_NEAREST_PER_ELEMENT = 3.0
RESIZE_BILINEAR_PER_ELEMENT = 27.0
VARIANTS = (
    portable("transpose_conv_s8", per_mac=20.0),
    portable("resize_nearest_s8", per_mac=RESIZE_NEAREST_PER_ELEMENT),
    portable("resize_bilinear_s8", per_mac=RESIZE_BILINEAR_PER_ELEMENT),
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


def nearest_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLM GetNearestNeighbor for every output index of one axis, in float32 as TFLM computes it (the index
    converted to float, plus the offset, times the scale), then floored, or rounded half away from zero with
    align_corners (TfLiteRound), and clamped."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel_centers else f32(0.0)
    pos = ((np.arange(out_size).astype(f32) + offset) * scale).astype(np.float64)  # float32 values, exactly
    index = np.sign(pos) * np.floor(np.abs(pos) + 0.5) if align_corners else np.floor(pos)
    index = np.minimum(index.astype(np.int64), in_size - 1)
    return (np.maximum(index, 0) if half_pixel_centers else index).astype(np.int32)


@lowering("RESIZE_NEAREST_NEIGHBOR", dtype=("int8", "int16"))
def lower_resize_nearest(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 4-D input and output, the output [batches, size[0], size[1], channels].  The kernel copies
    # pixels as bytes (an int16 pixel is depth x 2 of them; TFLM's int16 kernel copies the values as they are).
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    n, in_h, in_w, c = shape4(op, inp)
    _, out_h, out_w, _ = shape4(op, out)
    align, half = op.options["align_corners"], op.options["half_pixel_centers"]
    params = dict(batches=n, in_h=in_h, in_w=in_w, depth=c * DTYPE_BYTES[inp.dtype], out_h=out_h, out_w=out_w,
                  ytab="y", xtab="x")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="resize_nearest_s8", spec={}, params=params,
        args=[bytes_arg(inp), bytes_arg(out, writable=True)],
        consts=[ConstArray("y", "int32_t", nearest_axis(in_h, out_h, align, half)),
                ConstArray("x", "int32_t", nearest_axis(in_w, out_w, align, half))],
        inputs=[inp.index], outputs=[out.index],
    )


@lowering("RESIZE_BILINEAR")
def lower_resize_bilinear(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 4-D input and output, the output [batches, size[0], size[1], channels]; not both flags, TFLM's
    # int32 positions in range and every lower index inside the input.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    n, in_h, in_w, c = shape4(op, inp)
    _, out_h, out_w, _ = shape4(op, out)
    align, half = op.options["align_corners"], op.options["half_pixel_centers"]

    def table(name: str, in_size: int, out_size: int) -> ConstArray:
        """Per output index: the lower and upper input index and the distance past the lower one."""
        return ConstArray(name, "int32_t", bilinear_axis(in_size, out_size, align, half).astype(np.int32).reshape(-1))

    params = dict(batches=n, in_h=in_h, in_w=in_w, depth=c, out_h=out_h, out_w=out_w, ytab="y", xtab="x")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="resize_bilinear_s8",
        spec={}, params=params, args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        consts=[table("y", in_h, out_h), table("x", in_w, out_w)], inputs=[inp.index], outputs=[out.index],
    )
