"""CONV_2D and DEPTHWISE_CONV_2D (int8 activations, int8 weights, int32 bias)."""

from __future__ import annotations

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, shape4, tensor_arg
from tinyml.codegen.ops.common import bias_arg, fused_activation, per_channel_multipliers, weighted_operands
from tinyml.codegen.qmath import activation_range, padding_before
from tinyml.graph.ir import Op, Tensor

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
# Estimated instructions fitted (least squares on relative error) to the QEMU counts of every layer of the
# portable-only fast builds of DS-CNN, MobileNetV1-0.25, ResNet-8 and MobileNetV2-0.35-144 on mps2-an386
# and mps3-an547 (`tinyml profile MODEL --board B --kernels portable --json`, December 2026; the two cores
# differ by under 15%).  The convolution pays per MAC, per tap of an output (its ky/kx loops and padding
# checks: 32, so that in_c 1 to 3 layers run 20 to 38 per MAC) and per output (requantization, 99): from
# -10% to +24% of the measured instructions over its 126 layers (12 per MAC alone: -58% to +211%).  The
# depthwise convolution 35 per MAC and 4 per output, -8% to +18% over its 68 (14 per MAC alone: -62%).
PORTABLE_CONV_RATES = (5.34, 31.6, 98.9)  # per MAC, per tap of an output, per output element


def portable_conv_rates(call: KernelCall) -> tuple[float, float]:
    """(per MAC, per output element) of the portable convolution: the per-tap term spread over in_c MACs."""
    per_mac, per_tap, per_output = PORTABLE_CONV_RATES
    return per_mac + per_tap / call.params["in_c"], per_output


VARIANTS = (
    portable("conv_s8", ring=True, window=True, rates=portable_conv_rates, strided_input=True, strided_output=True,
             code_bytes=930),
    portable("dwconv_s8", ring=True, window=True, per_mac=35.0, per_output=4.0, strided_input=True,
             strided_output=True, code_bytes=910),
)


def conv_window(op: Op, in_h: int, in_w: int, k_h: int, k_w: int, out_h: int, out_w: int) -> dict[str, int]:
    """Strides, dilations and padding (validation checked their ranges and the output size)."""
    o = op.options
    sh, sw = o["stride_h"], o["stride_w"]
    dh, dw = o["dilation_h"], o["dilation_w"]
    padding = o.get("padding", "VALID")
    return dict(
        stride_h=sh, stride_w=sw, dil_h=dh, dil_w=dw,
        pad_h=padding_before(sh, dh, in_h, k_h, out_h) if padding == "SAME" else 0,
        pad_w=padding_before(sw, dw, in_w, k_w, out_w) if padding == "SAME" else 0,
    )



def conv_geometry(op: Op, inp: Tensor, out: Tensor, w: Tensor) -> tuple[dict[str, int], int]:
    """CONV_2D's shapes and window as the kernel params of every type hold them, and its MACs (validated: the
    shapes agree, one bias per output channel)."""
    n, in_h, in_w, in_c = shape4(op, inp)
    _, out_h, out_w, out_c = shape4(op, out)
    _, k_h, k_w, w_c = shape4(op, w)
    params = dict(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                  k_h=k_h, k_w=k_w, groups=in_c // w_c, **conv_window(op, in_h, in_w, k_h, k_w, out_h, out_w))
    return params, n * out_h * out_w * out_c * k_h * k_w * w_c


def depthwise_geometry(op: Op, inp: Tensor, out: Tensor, w: Tensor) -> tuple[dict[str, int], int]:
    """DEPTHWISE_CONV_2D's shapes and window as the kernel params of every type hold them, and its MACs
    (validated: out_c = in_c * depth_multiplier, one bias per channel)."""
    n, in_h, in_w, in_c = shape4(op, inp)
    _, out_h, out_w, out_c = shape4(op, out)
    _, k_h, k_w, _ = shape4(op, w)
    params = dict(batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, depth_mult=out_c // in_c,
                  k_h=k_h, k_w=k_w, **conv_window(op, in_h, in_w, k_h, k_w, out_h, out_w))
    return params, n * out_h * out_w * out_c * k_h * k_w

@lowering("CONV_2D")
def lower_conv(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    geometry, macs = conv_geometry(op, inp, out, w)
    mult, shift = per_channel_multipliers(op, inp, w, out, geometry["out_c"], 0)
    act_min, act_max = activation_range(fused_activation(op), out.quant.s, out.quant.zp)
    params = dict(
        **geometry,
        input_offset=-inp.quant.zp, output_offset=out.quant.zp, act_min=act_min, act_max=act_max,
        mult="mult", shift="shift",
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="conv_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), bias_arg(b),
              tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index],
        macs=macs, inplace_inputs=[0], inplace_kind="ring", patchable=geometry["batches"] == 1,
    )


@lowering("DEPTHWISE_CONV_2D")
def lower_depthwise(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    geometry, macs = depthwise_geometry(op, inp, out, w)
    mult, shift = per_channel_multipliers(op, inp, w, out, out.shape[-1], 3)
    act_min, act_max = activation_range(fused_activation(op), out.quant.s, out.quant.zp)
    params = dict(
        **geometry,
        input_offset=-inp.quant.zp, output_offset=out.quant.zp, act_min=act_min, act_max=act_max,
        mult="mult", shift="shift",
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="dwconv_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), bias_arg(b),
              tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index],
        macs=macs, inplace_inputs=[0], inplace_kind="ring", patchable=geometry["batches"] == 1,
    )

