"""RELU, RELU6, MAXIMUM and MINIMUM on int16 (int16x8 models), bit-exact with TFLM's int16 kernels.

- RELU (``relu_s16``): TFLM activations_common.cc CalculateReluOpData<int16_t> + ReluQuantized<int16_t>: each
  value (zero points 0) rescaled by QuantizeMultiplier(input scale / output scale) in the int32
  MultiplyByQuantizedMultiplier, clamped to [quantized 0, 32767] (computed per element: a table would have
  65,536 entries).
- RELU6 (``relu6_s16``): Relu6Prepare + Relu6Quantized<int16_t>: the raw values clamped to [input zero point,
  FloatToQuantizedType<int16_t>(6, input scale)] (the output's quantization is not read).
- MAXIMUM and MINIMUM (``minmax_s16``): maximum_minimum.cc, the int16 values compared as they are, with
  broadcasting (the params of minmax_s8).

The kernels are portable C; each writes element i right after reading element i of its inputs, so they may run
in place over a same-sized dying input.
"""

from __future__ import annotations

import dataclasses

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.arith import lower_minmax
from tinyml.codegen.ops.elementwise import tensor_scale
from tinyml.codegen.qmath import quantize_float, quantize_multiplier
from tinyml.graph.ir import Op, Tensor

INT16_MIN, INT16_MAX = -32768, 32767

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them: instructions per
# output element, estimated from their int8 counterparts (relu6_s8, minmax_s8) and leaky_relu_s16.
VARIANTS = (
    portable("relu_s16", inplace=True, per_mac=20.0),
    portable("relu6_s16", inplace=True, per_mac=6.0),
    portable("minmax_s16", inplace=True, per_mac=15.0),
)


def _clamp16(v: int) -> int:
    return min(INT16_MAX, max(INT16_MIN, v))


def _unary_call(op: Op, kernel: str, inp: Tensor, out: Tensor, params: dict[str, int]) -> KernelCall:
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel=kernel, spec={}, params=dict(size=out.size, **params),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)], inputs=[inp.index], outputs=[out.index],
        inplace_inputs=[0],
    )


@lowering("RELU", dtype="int16")
def lower_relu_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int16 input and output of one size (zero points 0), the multiplier in range.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    mult, shift = quantize_multiplier(tensor_scale(inp) / tensor_scale(out))
    lower = _clamp16(out.quant.zp + quantize_float(0.0, out.quant.s, 0))
    return _unary_call(op, "relu_s16", inp, out, dict(mult=mult, shift=shift, lower=lower, upper=INT16_MAX))


@lowering("RELU6", dtype="int16")
def lower_relu6_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int16 input and output of one size, 6 / input scale below 2^30 (FloatToQuantizedType's int32).
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    six = _clamp16(quantize_float(6.0, tensor_scale(inp), inp.quant.zp))
    return _unary_call(op, "relu6_s16", inp, out, dict(lower=inp.quant.zp, upper=six))


@lowering("MAXIMUM", "MINIMUM", dtype="int16")
def lower_minmax_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 rows (two int16 inputs, at most one constant, broadcasting up to 4-D).
    return dataclasses.replace(lower_minmax(ctx, op), kernel="minmax_s16", params_kernel="minmax_s8")
