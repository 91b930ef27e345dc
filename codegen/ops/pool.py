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
from tinyml.codegen.lower import (KernelCall, LowerContext, act_tensor, const_tensor, expect_inputs, lowering,
                                  shape4, tensor_arg, unsupported)
from tinyml.codegen.ops.common import INT8_FUSED_ACTIVATIONS
from tinyml.codegen.qmath import activation_range, out_size, padding_before, quantize_multiplier
from tinyml.graph.ir import Op, Tensor

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("avgpool_s8", per_mac=10.0),
    portable("maxpool_s8", per_mac=8.0),
    portable("mean_s8", per_mac=8.0),
)



def _same_quant(op: Op, inp: Tensor, out: Tensor) -> None:
    """TFLM PoolingPrepare: |in_scale - out_scale| <= 1e-6 (in double) and equal zero points."""
    assert inp.quant is not None and out.quant is not None
    if abs(float(inp.quant.s) - float(out.quant.s)) > 1.0e-6 or inp.quant.zp != out.quant.zp:
        raise unsupported(
            op, f"input '{inp.name}' (scale {inp.quant.s:.6g}, zero point {inp.quant.zp}) and output "
                f"'{out.name}' (scale {out.quant.s:.6g}, zero point {out.quant.zp}) are quantized differently; "
                "int8 pooling needs equal input and output quantization (as TFLM requires)")


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D")
def lower_pool(ctx: LowerContext, op: Op) -> KernelCall:
    expect_inputs(op, 1)
    inp = act_tensor(ctx, op, 0)
    out = act_tensor(ctx, op, 0, output=True)
    n, in_h, in_w, ch = shape4(op, inp)
    on, out_h, out_w, oc = shape4(op, out)
    if on != n or oc != ch:
        raise unsupported(op, f"shapes do not agree: input {list(inp.shape)}, output {list(out.shape)}")
    if min(n, in_h, in_w, ch, out_h, out_w) < 1:
        raise unsupported(op, f"empty tensor: input {list(inp.shape)}, output {list(out.shape)}")
    o = op.options
    fh, fw = int(o.get("filter_h", 0)), int(o.get("filter_w", 0))
    sh, sw = int(o.get("stride_h", 0)), int(o.get("stride_w", 0))
    if fh < 1 or fw < 1 or sh < 1 or sw < 1:
        raise unsupported(op, f"filter {fh}x{fw} and stride {sh}x{sw} must be at least 1")
    padding = o.get("padding", "VALID")
    exp_h, exp_w = out_size(padding, in_h, fh, sh, 1), out_size(padding, in_w, fw, sw, 1)
    if (exp_h, exp_w) != (out_h, out_w):
        raise unsupported(op, f"output is {out_h}x{out_w} but {padding} padding of a {in_h}x{in_w} input "
                              f"with a {fh}x{fw} window and stride {sh}x{sw} gives {exp_h}x{exp_w}")
    act = o.get("activation", "NONE")
    if act not in INT8_FUSED_ACTIVATIONS:
        raise unsupported(op, f"fused activation {act} is not supported for int8 pooling")
    _same_quant(op, inp, out)
    assert out.quant is not None
    act_min, act_max = activation_range(act, out.quant.s, out.quant.zp)
    params = dict(
        batches=n, in_h=in_h, in_w=in_w, channels=ch, out_h=out_h, out_w=out_w,
        filter_h=fh, filter_w=fw, stride_h=sh, stride_w=sw,
        pad_h=padding_before(sh, 1, in_h, fh, out_h) if padding == "SAME" else 0,
        pad_w=padding_before(sw, 1, in_w, fw, out_w) if padding == "SAME" else 0,
        act_min=act_min, act_max=act_max,
    )
    kernel = "avgpool_s8" if op.kind == "AVERAGE_POOL_2D" else "maxpool_s8"
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel=kernel, spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
        macs=n * out_h * out_w * ch * fh * fw,
    )


def _resolve_axes(op: Op, axis_t: Tensor, rank: int) -> list[int]:
    """TFLite ResolveAxis: negative axes count from the end, duplicates are dropped."""
    assert axis_t.data is not None
    axes: list[int] = []
    for a in np.asarray(axis_t.data).reshape(-1).tolist():
        r = int(a) + rank if int(a) < 0 else int(a)
        if not 0 <= r < rank:
            raise unsupported(op, f"axis {int(a)} is out of range for a {rank}-D input")
        if r not in axes:
            axes.append(r)
    return axes


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM PrepareMeanOrSum + QuantizedMeanOrSum: QuantizeMultiplier(double(in)/double(out)),
    then 1/count folded into the multiplier with an integer division."""
    mult, shift = quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    extra = count.bit_length() - 1  # 63 - CountLeadingZeros(count)
    extra = min(extra, 32, 31 + shift)
    mult = (mult << extra) // count  # positive operands: floor == C++ truncation
    return int(mult), int(shift - extra)


@lowering("MEAN")
def lower_mean(ctx: LowerContext, op: Op) -> KernelCall:
    expect_inputs(op, 2)
    inp = act_tensor(ctx, op, 0)
    out = act_tensor(ctx, op, 0, output=True)
    axis_t = const_tensor(ctx, op, 1, ("int32",), "axis")
    if axis_t is None:
        raise unsupported(op, "the axis input is missing")
    rank = len(inp.shape)
    if not 1 <= rank <= 4:
        raise unsupported(op, f"input '{inp.name}' has shape {list(inp.shape)}; MEAN supports 1-D to 4-D inputs")
    if inp.size == 0 or inp.size > (1 << 23):
        raise unsupported(op, f"input '{inp.name}' has {inp.size} values (shape {list(inp.shape)}); "
                              "MEAN supports 1 to 2^23 values")
    axes = _resolve_axes(op, axis_t, rank)
    if not axes:
        raise unsupported(op, "the axis tensor is empty; a MEAN over no axis is not supported")
    kept = [d for i, d in enumerate(inp.shape) if i not in axes]
    expect = int(np.prod(kept)) if kept else 1
    if out.size != expect:
        raise unsupported(op, f"output '{out.name}' has shape {list(out.shape)}, but reducing {list(inp.shape)} "
                              f"over axes {axes} leaves {expect} values")
    # Extend to 4-D with leading ones (the axes move along).
    lead = 4 - rank
    dims = [1] * lead + list(inp.shape)
    red = [0] * 4
    for a in axes:
        red[a + lead] = 1
    count = int(np.prod([inp.shape[a] for a in axes]))
    assert inp.quant is not None and out.quant is not None
    if out.quant.s == 0.0:
        raise unsupported(op, f"output '{out.name}' has scale 0")
    mult, shift = mean_multiplier(inp.quant.s, out.quant.s, count)
    params = dict(
        d0=dims[0], d1=dims[1], d2=dims[2], d3=dims[3],
        r0=red[0], r1=red[1], r2=red[2], r3=red[3],
        count=count, input_zp=inp.quant.zp, output_zp=out.quant.zp, mult=mult, shift=shift,
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="mean_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
        macs=inp.size,
    )
