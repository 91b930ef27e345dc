"""QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32).

Follows TFLM quantize_common.cc (PrepareQuantizeReference / EvalQuantizeReference)
and dequantize_common.cc: float -> int8 is reference_ops::AffineQuantize,
int8 -> int8 is reference_ops::Requantize (lowered to a 256-entry table),
int8 -> float32 is reference_ops::Dequantize.

Float -> int8 out of range: TFLM computes clamp(static_cast<int32>(round(x / scale)) + zero_point),
which is defined wherever round(x / scale) + zero_point fits an int32.  Our kernel
(quantize_f32_s8) saturates x / scale to +-1000 steps first; with |zero point| <= 128 both give
-128 or 127 beyond 255 steps, so the two agree on every input TFLM defines (tested up to 2e9 steps
and around +-1000).  Where TFLM is undefined (NaN, infinities, beyond int32) we choose saturation,
NaN giving -128.  The input is run-time data, so validation has nothing to refuse.
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.elementwise import int8_table, lut_call, tensor_scale
from tinyml.codegen.qmath import INT8_MAX, INT8_MIN, multiply_by_quantized_multiplier, quantize_multiplier
from tinyml.graph.ir import Op, Tensor

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("quantize_f32_s8", per_mac=30.0),
    portable("dequantize_s8_f32", per_mac=10.0),
)


def requantize_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """TFLM int8 -> int8 QUANTIZE: QuantizeMultiplier(double(in_s) / double(out_s)), then
    reference_ops::Requantize."""
    m, shift = quantize_multiplier(in_s / out_s)

    def f(x: int) -> int:
        v = multiply_by_quantized_multiplier(x - in_zp, m, shift) + out_zp
        return min(INT8_MAX, max(INT8_MIN, v))

    return int8_table(f)


def scaled_call(op: Op, kernel: str, inp: Tensor, out: Tensor, q: Tensor) -> KernelCall:
    """The call of an element-wise conversion between float32 and a quantized type (``kernel``): its size,
    the zero point and, as a one-value float array, the scale of ``q`` (the quantized side)."""
    arr = ConstArray("scale", "float", np.asarray([tensor_scale(q)], dtype=np.float32))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel=kernel, spec={},
        params=dict(size=out.size, zero_point=q.quant.zp, scale="scale"),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        consts=[arr], inputs=[inp.index], outputs=[out.index],
    )


@lowering("QUANTIZE")
def lower_quantize(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: a float32 or int8 (per-tensor) input, an int8 output of the same size.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    if inp.dtype == "float32":
        return scaled_call(op, "quantize_f32_s8", inp, out, out)
    table = requantize_table(tensor_scale(inp), inp.quant.zp, tensor_scale(out), out.quant.zp)
    return lut_call(op, inp, out, table)


@lowering("DEQUANTIZE")
def lower_dequantize(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: an int8 per-tensor input, a float32 output of the same size.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    return scaled_call(op, "dequantize_s8_f32", inp, out, inp)
