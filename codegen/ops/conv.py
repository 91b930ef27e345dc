"""CONV_2D and DEPTHWISE_CONV_2D (int8 activations, int8 weights, int32 bias)."""

from __future__ import annotations

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import (KernelCall, LowerContext, lowering, shape4, tensor_arg, unsupported)
from tinyml.codegen.ops.common import bias_arg, fused_activation, per_channel_multipliers, weighted_operands
from tinyml.codegen.qmath import activation_range, out_size, padding_before
from tinyml.graph.ir import Op

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("conv_s8", ring=True, window=True, per_mac=12.0),
    portable("dwconv_s8", ring=True, window=True, per_mac=14.0),
)


def _window(op: Op, in_h: int, in_w: int, k_h: int, k_w: int, out_h: int, out_w: int) -> dict[str, int]:
    o = op.options
    sh, sw = o.get("stride_h", 0), o.get("stride_w", 0)
    dh, dw = o.get("dilation_h", 1), o.get("dilation_w", 1)
    if sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise unsupported(op, f"stride {sh}x{sw} and dilation {dh}x{dw} must be at least 1")
    padding = o.get("padding", "VALID")
    exp_h = out_size(padding, in_h, k_h, sh, dh)
    exp_w = out_size(padding, in_w, k_w, sw, dw)
    if (exp_h, exp_w) != (out_h, out_w):
        raise unsupported(op, f"output is {out_h}x{out_w} but {padding} padding gives {exp_h}x{exp_w}")
    return dict(
        stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
        pad_h=padding_before(sh, dh, in_h, k_h, out_h) if padding == "SAME" else 0,
        pad_w=padding_before(sw, dw, in_w, k_w, out_w) if padding == "SAME" else 0,
    )


@lowering("CONV_2D")
def lower_conv(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    n, in_h, in_w, in_c = shape4(op, inp)
    on, out_h, out_w, out_c = shape4(op, out)
    wo, k_h, k_w, w_c = shape4(op, w)
    if on != n or wo != out_c or w_c < 1 or in_c < w_c or in_c % w_c != 0 or out_c % (in_c // w_c) != 0:
        raise unsupported(op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                              f"output {list(out.shape)}")
    if b is not None and b.size != out_c:
        raise unsupported(op, f"bias '{b.name}' has {b.size} values for {out_c} output channels")
    mult, shift = per_channel_multipliers(op, inp, w, out, out_c, 0)
    act_min, act_max = activation_range(fused_activation(op), out.quant.s, out.quant.zp)
    params = dict(
        batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
        k_h=k_h, k_w=k_w, groups=in_c // w_c,
        **_window(op, in_h, in_w, k_h, k_w, out_h, out_w),
        input_offset=-inp.quant.zp, output_offset=out.quant.zp, act_min=act_min, act_max=act_max,
        mult="mult", shift="shift",
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="conv_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), bias_arg(b),
              tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index],
        macs=n * out_h * out_w * out_c * k_h * k_w * w_c,
        inplace_inputs=[0], inplace_kind="ring", patchable=n == 1,
    )


@lowering("DEPTHWISE_CONV_2D")
def lower_depthwise(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    n, in_h, in_w, in_c = shape4(op, inp)
    on, out_h, out_w, out_c = shape4(op, out)
    one, k_h, k_w, w_c = shape4(op, w)
    if in_c == 0 or out_c % in_c != 0:
        raise unsupported(op, f"output channels {out_c} are not a multiple of input channels {in_c}")
    mult_depth = out_c // in_c
    declared = op.options.get("depth_multiplier", mult_depth)
    if on != n or one != 1 or w_c != out_c or (declared not in (0, mult_depth) and declared != 0):
        raise unsupported(op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                              f"output {list(out.shape)}, depth multiplier {declared}")
    if b is not None and b.size != out_c:
        raise unsupported(op, f"bias '{b.name}' has {b.size} values for {out_c} output channels")
    mult, shift = per_channel_multipliers(op, inp, w, out, out_c, 3)
    act_min, act_max = activation_range(fused_activation(op), out.quant.s, out.quant.zp)
    params = dict(
        batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, depth_mult=mult_depth,
        k_h=k_h, k_w=k_w,
        **_window(op, in_h, in_w, k_h, k_w, out_h, out_w),
        input_offset=-inp.quant.zp, output_offset=out.quant.zp, act_min=act_min, act_max=act_max,
        mult="mult", shift="shift",
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="dwconv_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), bias_arg(b),
              tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index],
        macs=n * out_h * out_w * out_c * k_h * k_w,
        inplace_inputs=[0], inplace_kind="ring", patchable=n == 1,
    )

