"""QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32).

Follows TFLM quantize_common.cc (PrepareQuantizeReference / EvalQuantizeReference)
and dequantize_common.cc: float -> int8 is reference_ops::AffineQuantize,
int8 -> int8 is reference_ops::Requantize (lowered to a 256-entry table),
int8 -> float32 is reference_ops::Dequantize.
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import (ConstArray, KernelCall, LowerContext, act_tensor, expect_inputs, lowering,
                                  tensor_arg, unsupported)
from tinyml.codegen.ops.elementwise import int8_table, lut_call
from tinyml.codegen.qmath import INT8_MAX, INT8_MIN, multiply_by_quantized_multiplier, quantize_multiplier
from tinyml.graph.ir import Op, Tensor

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("quantize_f32_s8", per_mac=30.0),
    portable("dequantize_s8_f32", per_mac=10.0),
)


def _scale(op: Op, t: Tensor) -> float:
    if t.quant is None:
        raise unsupported(op, f"tensor '{t.name}' is not quantized")
    if t.quant.per_channel:
        raise unsupported(op, f"tensor '{t.name}' is quantized per channel; only per-tensor is supported")
    s = float(np.float32(t.quant.s))
    if not s > 0.0 or not np.isfinite(s):
        raise unsupported(op, f"tensor '{t.name}' has scale {s}; a positive finite scale is required")
    return s


def _same_size(op: Op, inp: Tensor, out: Tensor) -> None:
    if inp.size != out.size:
        raise unsupported(op, f"input '{inp.name}' has {inp.size} values but output '{out.name}' has {out.size}")


def requantize_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """TFLM int8 -> int8 QUANTIZE: QuantizeMultiplier(double(in_s) / double(out_s)), then
    reference_ops::Requantize."""
    m, shift = quantize_multiplier(in_s / out_s)

    def f(x: int) -> int:
        v = multiply_by_quantized_multiplier(x - in_zp, m, shift) + out_zp
        return min(INT8_MAX, max(INT8_MIN, v))

    return int8_table(f)


@lowering("QUANTIZE")
def lower_quantize(ctx: LowerContext, op: Op) -> KernelCall:
    expect_inputs(op, 1)
    if op.inputs[0] < 0:
        raise unsupported(op, "input 0 is missing")
    src = ctx.t(op.inputs[0])
    if src.dtype == "float32":
        inp = act_tensor(ctx, op, 0, dtypes=("float32",))
        out = act_tensor(ctx, op, 0, output=True)
        _same_size(op, inp, out)
        scale = _scale(op, out)
        arr = ConstArray("scale", "float", np.asarray([scale], dtype=np.float32))
        return KernelCall(
            op_index=op.index, op_kind=op.kind, kernel="quantize_f32_s8", spec={},
            params=dict(size=out.size, zero_point=out.quant.zp, scale="scale"),
            args=[tensor_arg(inp), tensor_arg(out, writable=True)],
            consts=[arr], inputs=[inp.index], outputs=[out.index],
        )
    if src.dtype == "int8":
        inp = act_tensor(ctx, op, 0)
        out = act_tensor(ctx, op, 0, output=True)
        _same_size(op, inp, out)
        table = requantize_table(_scale(op, inp), inp.quant.zp, _scale(op, out), out.quant.zp)
        return lut_call(op, inp, out, table)
    out_t = ctx.t(op.outputs[0])
    raise unsupported(op, f"quantizing {src.dtype} to {out_t.dtype} is not supported; supported are "
                          "float32 -> int8 and int8 -> int8")


@lowering("DEQUANTIZE")
def lower_dequantize(ctx: LowerContext, op: Op) -> KernelCall:
    expect_inputs(op, 1)
    inp = act_tensor(ctx, op, 0)
    out = act_tensor(ctx, op, 0, dtypes=("float32",), output=True)
    _same_size(op, inp, out)
    scale = _scale(op, inp)
    arr = ConstArray("scale", "float", np.asarray([scale], dtype=np.float32))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="dequantize_s8_f32", spec={},
        params=dict(size=out.size, zero_point=inp.quant.zp, scale="scale"),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        consts=[arr], inputs=[inp.index], outputs=[out.index],
    )
