"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN (int8).

Pooling follows TFLM's PoolingPrepare (input and output quantization must be
equal, fused activation clamps the result) and reference_integer_ops
AveragePool / MaxPool.  MEAN follows TFLM's reduce PrepareMeanOrSum and
EvalIntegerMean as the installed TFLM runs it: the sum minus count times the
input zero point is requantized with QuantizeMultiplier(in/out) folded with
1/count (reference_ops::QuantizedMeanOrSum), also when input and output
share quantization (older TFLM sources had a truncating integer-mean branch
for that case; the oracle we test against does not take it).
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.qmath import activation_range, padding_before, quantize_multiplier
from tinyml.graph.ir import Op, Tensor
from tinyml.graph.validate import resolve_axes

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("avgpool_s8", per_mac=10.0, code_bytes=460),
    portable("maxpool_s8", per_mac=8.0),
    # MEAN: 21 per element averaged (MobileNetV2-0.35-144's global mean on mps3-an547: 675,955 instructions
    # for 32,000 elements; 8 was 0.38x that)
    portable("mean_s8", per_mac=21.0, code_bytes=720),
)



def pool_layout(op: Op, inp: Tensor, out: Tensor) -> dict[str, int]:
    """The shapes, window, strides and SAME padding of a pooling call (avgpool/maxpool, int8 and float32)."""
    n, in_h, in_w, ch = inp.shape
    _, out_h, out_w, _ = out.shape
    o = op.options
    fh, fw = int(o["filter_h"]), int(o["filter_w"])
    sh, sw = int(o["stride_h"]), int(o["stride_w"])
    same = o.get("padding", "VALID") == "SAME"
    return dict(
        batches=n, in_h=in_h, in_w=in_w, channels=ch, out_h=out_h, out_w=out_w,
        filter_h=fh, filter_w=fw, stride_h=sh, stride_w=sw,
        pad_h=padding_before(sh, 1, in_h, fh, out_h) if same else 0,
        pad_w=padding_before(sw, 1, in_w, fw, out_w) if same else 0,
    )


def pool_macs(p: dict[str, int]) -> int:
    """The window taps a pooling call (of pool_layout's params ``p``) reads."""
    return p["batches"] * p["out_h"] * p["out_w"] * p["channels"] * p["filter_h"] * p["filter_w"]


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 4-D shapes that agree, window and output size, activation, equal in/out quantization.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    act_min, act_max = activation_range(op.options.get("activation", "NONE"), out.quant.s, out.quant.zp)
    params = dict(**pool_layout(op, inp, out), act_min=act_min, act_max=act_max)
    kernel = "avgpool_s8" if op.kind == "AVERAGE_POOL_2D" else "maxpool_s8"
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel=kernel, spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
        macs=pool_macs(params),
    )


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM PrepareMeanOrSum + QuantizedMeanOrSum: QuantizeMultiplier(double(in)/double(out)),
    then 1/count folded into the multiplier with an integer division."""
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    extra = count.bit_length() - 1  # 63 - CountLeadingZeros(count)
    extra = min(extra, 32, 31 + shift)
    mult = (mult << extra) // count  # positive operands: floor == C++ truncation
    return int(mult), int(shift - extra)


def mean_layout(ctx: LowerContext, op: Op) -> dict[str, int]:
    """The input dimensions d0..d3 extended to 4-D with leading ones (the axes move along), r0..r3 1 where a
    dimension is reduced, and the count of values averaged into one output (of mean_s8 and mean_f32)."""
    inp, axis_t = ctx.t(op.inputs[0]), ctx.t(op.inputs[1])
    rank = len(inp.shape)
    axes = resolve_axes([int(a) for a in np.asarray(axis_t.data).reshape(-1)], rank)
    lead = 4 - rank
    dims = [1] * lead + list(inp.shape)
    red = [0] * 4
    for a in axes:
        red[a + lead] = 1
    count = int(np.prod([inp.shape[a] for a in axes]))
    return dict(d0=dims[0], d1=dims[1], d2=dims[2], d3=dims[3], r0=red[0], r1=red[1], r2=red[2], r3=red[3],
                count=count)


@lowering("MEAN")
def lower_mean(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: operands (a constant int32 axis), a 1-D to 4-D input of 1 to 2^23 values, at least one
    # axis, each in range, the output size the reduction leaves, the multiplier's range.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    layout = mean_layout(ctx, op)
    mult, shift = mean_multiplier(inp.quant.s, out.quant.s, layout["count"])
    params = dict(**layout, input_zp=inp.quant.zp, output_zp=out.quant.zp, mult=mult, shift=shift)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="mean_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
        macs=inp.size,
    )
