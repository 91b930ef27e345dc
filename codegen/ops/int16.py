"""The operators on 16-bit activations (int16x8 models, validation's INT16_RULES): FULLY_CONNECTED, CONV_2D and
DEPTHWISE_CONV_2D with int16 activations (zero point 0) and symmetric int8 weights, ADD, SUB, MUL,
AVERAGE_POOL_2D, MAX_POOL_2D, PAD, PADV2, LEAKY_RELU, QUANTIZE (float32 -> int16, int16 -> int16, int8 <-> int16) and DEQUANTIZE (int16 -> float32);
RESHAPE and SQUEEZE are the type-generic aliases of shape.py.

The weighted kernels follow TFLM's 16x8 reference kernels (reference_integer_ops::FullyConnected and
FullyConnectedPerChannel, ConvPerChannel, DepthwiseConvPerChannel for int16 input): no input or output offset,
the products summed in int64 with an int64 bias (TFLM's int64 MultiplyByQuantizedMultiplier then) or in int32
with an int32 bias or none (the int32 one, as for int8), the multipliers as the int8 lowerings compute them.
ADD and SUB are TFLM's general int16 path (the int8 arithmetic with left shift 15, computed per element: add_s8
reads its rescaled inputs from 256-entry tables, which 16-bit inputs would make 65,536 entries), MUL its MulElementwise on int16 (mul_s16 taking mul_s8's).  QUANTIZE and DEQUANTIZE follow TFLM quantize_common.cc and dequantize_common.cc: reference_ops::AffineQuantize,
Requantize and Dequantize.  The kernels are portable C, whole layer only (no in-place or patch form): the planner
never offers an int8 DSP or MVE variant for them (those implement the int8 kernels, not these); fc_s16 and
conv_s16 and dwconv_s16 have DSP and MVE variants of their own (codegen/families_s16.py), which the planner picks
by family.
"""

from __future__ import annotations

import dataclasses

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import Arg, KernelCall, LowerContext, lowering, null_arg, tensor_arg
from tinyml.codegen.ops.common import fused_activation, per_channel_multipliers, weighted_operands
from tinyml.codegen.ops.conv import conv_geometry, depthwise_geometry
from tinyml.codegen.ops.elementwise import (add_params, binary_call, binary_operands, leaky_relu_multipliers,
                                            mul_params, tensor_scale)
from tinyml.codegen.ops.fc import fc_multipliers
from tinyml.codegen.ops.pool import lower_pool
from tinyml.codegen.ops.quantize import scaled_call
from tinyml.codegen.ops.tensor_ops import lower_pad
from tinyml.codegen.qmath import activation_range, quantize_multiplier
from tinyml.graph.ir import Op, Tensor
from tinyml.graph.validate import ADD_LEFT_SHIFT_INT16, int64_accumulator

INT16_MIN, INT16_MAX = -32768, 32767
INT_RANGES = {"int8": (-128, 127), "int16": (INT16_MIN, INT16_MAX)}

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.  Instructions per
# MAC (per output element without MACs): fc_s16, conv_s16, dwconv_s16, the QUANTIZE and DEQUANTIZE ones as
# `tinyml profile` counted them for tests/modelgen.py's int16_conv1d_net on mps2-an386 (the depthwise 1x3
# layer's loop overhead per MAC is high); the others estimated from their int8 counterparts.
VARIANTS = (
    portable("fc_s16", per_mac=6.0),
    portable("conv_s16", per_mac=21.0),
    portable("dwconv_s16", per_mac=45.0),
    portable("quantize_f32_s16", per_mac=30.0),
    portable("dequantize_s16_f32", per_mac=10.0),
    portable("requantize_s16", per_mac=20.0),
    portable("add_s16", per_mac=30.0),
    portable("mul_s16", per_mac=25.0),
    portable("pad_s16", per_mac=6.0),
    portable("leaky_relu_s16", per_mac=20.0),
    portable("avgpool_s16", per_mac=10.0),
    portable("maxpool_s16", per_mac=8.0),
)


def _accumulator(ctx: LowerContext, op: Op, b: Tensor | None) -> tuple[dict[str, bool], str]:
    """The kernel spec (int64 or int32 accumulator, as validation's int64_accumulator says TFLM chooses) and
    the C type of the bias."""
    acc64 = int64_accumulator(ctx.graph, op)
    return {"acc64": acc64}, "int64_t" if acc64 else "int32_t"


def _bias(b: Tensor | None, ctype: str) -> Arg:
    return tensor_arg(b) if b is not None else null_arg(ctype)


def _range16(op: Op, out: Tensor) -> dict[str, int]:
    act_min, act_max = activation_range(fused_activation(op), out.quant.s, out.quant.zp, INT16_MIN, INT16_MAX)
    return dict(act_min=act_min, act_max=act_max)


@lowering("FULLY_CONNECTED", dtype="int16")
def lower_fc_s16(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)  # validated: int16 in and out (zero point 0), int8 weights
    out_depth, accum = w.shape
    batches = inp.size // accum
    mult, shift = fc_multipliers(op, inp, w, out)
    spec, bias_ctype = _accumulator(ctx, op, b)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="fc_s16", spec=spec,
        params=dict(batches=batches, accum_depth=accum, out_depth=out_depth, per_channel=int(w.quant.per_channel),
                    **_range16(op, out), mult="mult", shift="shift"),
        args=[tensor_arg(inp), tensor_arg(w), _bias(b, bias_ctype), tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index], macs=batches * out_depth * accum,
    )


@lowering("CONV_2D", dtype="int16")
def lower_conv_s16(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    geometry, macs = conv_geometry(op, inp, out, w)
    mult, shift = per_channel_multipliers(op, inp, w, out, geometry["out_c"], 0)
    spec, bias_ctype = _accumulator(ctx, op, b)
    params = dict(**geometry, **_range16(op, out), mult="mult", shift="shift")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="conv_s16", spec=spec, params=params,
        args=[tensor_arg(inp), tensor_arg(w), _bias(b, bias_ctype), tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index], macs=macs,
    )


@lowering("DEPTHWISE_CONV_2D", dtype="int16")
def lower_depthwise_s16(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)  # validated: an int64 bias
    geometry, macs = depthwise_geometry(op, inp, out, w)
    mult, shift = per_channel_multipliers(op, inp, w, out, out.shape[-1], 3)
    params = dict(**geometry, **_range16(op, out), mult="mult", shift="shift")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="dwconv_s16", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(w), tensor_arg(b), tensor_arg(out, writable=True)],
        consts=[mult, shift], inputs=[inp.index], outputs=[out.index], macs=macs,
    )


@lowering("QUANTIZE", dtype="int16")
def lower_quantize_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: a float32, int8 or int16 (per-tensor) input, an int8 or int16 output of the same size, one of
    # them int16.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    if inp.dtype == "float32":
        return scaled_call(op, "quantize_f32_s16", inp, out, out)
    # TFLM PrepareQuantizeReference: QuantizeMultiplier(double(input scale) / double(output scale))
    m, s = quantize_multiplier(tensor_scale(inp) / tensor_scale(out))
    lo, hi = INT_RANGES[out.dtype]
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="requantize_s16", spec={"in": inp.dtype, "out": out.dtype},
        params=dict(size=out.size, input_zero_point=inp.quant.zp, output_zero_point=out.quant.zp, mult=m,
                    shift=s, out_min=lo, out_max=hi),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)], inputs=[inp.index], outputs=[out.index],
    )


@lowering("DEQUANTIZE", dtype="int16")
def lower_dequantize_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: an int16 per-tensor input, a float32 output of the same size.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    return scaled_call(op, "dequantize_s16_f32", inp, out, inp)


@lowering("ADD", "SUB", dtype="int16")
def lower_add_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: two int16 inputs (zero point 0), at most one a constant, that broadcast to the int16 output;
    # TFLM's general int16 scaling (not the power-of-two one); every rescaling factor below 1.
    a, b, out, act, layout = binary_operands(ctx, op)
    params = dict(**layout, **add_params(op, a, b, out, act, ADD_LEFT_SHIFT_INT16, (INT16_MIN, INT16_MAX)))
    return binary_call(op, "add_s16", a, b, out, params, dict(sub=True) if op.kind == "SUB" else None)


@lowering("MUL", dtype="int16")
def lower_mul_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 MUL, with int16 operands (zero points 0): the product fits int32.
    a, b, out, act, layout = binary_operands(ctx, op)
    params = dict(**layout, **mul_params(a, b, out, act, (INT16_MIN, INT16_MAX)))
    return dataclasses.replace(binary_call(op, "mul_s16", a, b, out, params), params_kernel="mul_s8")


@lowering("PAD", "PADV2", dtype="int16")
def lower_pad_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 PAD, with int16 data: the int8 lowering's parameters (the padding value is the
    # constant_values input or the output zero point), element by element over int16 values.
    return dataclasses.replace(lower_pad(ctx, op), kernel="pad_s16", params_kernel="pad_s8")


@lowering("LEAKY_RELU", dtype="int16")
def lower_leaky_relu_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int16 input and output of one size (zero points 0), a finite alpha, both multipliers in range.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    m_i, s_i, m_a, s_a = leaky_relu_multipliers(tensor_scale(inp), tensor_scale(out), float(op.options["alpha"]))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="leaky_relu_s16", spec={},
        params=dict(size=out.size, ident_mult=m_i, ident_shift=s_i, alpha_mult=m_a, alpha_shift=s_a),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)], inputs=[inp.index], outputs=[out.index],
    )


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D", dtype="int16")
def lower_pool_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 pooling, with int16 data (and a window whose sum fits int32): the int8 lowering's
    # window, the activation range within int16.
    call = lower_pool(ctx, op)
    return dataclasses.replace(call, kernel=call.kernel.replace("_s8", "_s16"), params_kernel=call.kernel,
                               params={**call.params, **_range16(op, ctx.t(op.outputs[0]))})
