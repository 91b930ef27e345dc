"""Arithmetic int8 operators of issue 17: MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, PRELU (with broadcasting, as
ADD's; see elementwise.py, where SUB shares ADD's kernel), ARG_MAX, ARG_MIN and RSQRT.

MAXIMUM/MINIMUM follow TFLM maximum_minimum.cc (no Prepare: the int8 values
are compared as they are); SQUARED_DIFFERENCE squared_difference.cc
(PrepareQuantized, SquaredDifference<int8_t>); PRELU prelu_common.cc
(CalculatePreluParams) and reference_ops::BroadcastPrelu4DSlow; ARG_MAX and
ARG_MIN arg_min_max.cc (reference_ops::ArgMinMax, int32 output); RSQRT elementwise.cc
(PrepareAbsRsqrt, RsqrtEvalQuantized), as a 256-entry table computed here with
TFLM's integer arithmetic (elementwise_lut_s8).  Each lowering bakes the
multipliers, offsets, the broadcast layout, the axis or the table in.
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.elementwise import binary_call, binary_operands, int8_table, lut_call, tensor_scale
from tinyml.codegen.qmath import (INT8_MAX, INT8_MIN, inv_sqrt_multiplier, multiply_by_quantized_multiplier,
                                  quantize_multiplier)
from tinyml.graph.ir import Op
from tinyml.graph.validate import (RSQRT_SHIFT, arg_min_max_axis, prelu_reals, rsqrt_real,
                                   squared_difference_left_shift, squared_difference_reals)

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.  The binary kernels
# run in place over a same-sized dying input, as add_s8.  Instructions per output element (per input element
# for argminmax_s8): QEMU's counts on mps2-an386 for the first modelgen case of each (`tinyml profile --kernels
# portable`: 15.4, 125.4, 60.6 on random inputs, 11.5).
VARIANTS = (
    portable("minmax_s8", inplace=True, per_mac=15.0),
    portable("squared_difference_s8", inplace=True, per_mac=125.0),
    portable("prelu_s8", inplace=True, per_mac=60.0),
    portable("argminmax_s8", per_mac=11.5),
)


@lowering("MAXIMUM", "MINIMUM")
def lower_minmax(ctx: LowerContext, op: Op) -> KernelCall:
    a, b, out, _, layout = binary_operands(ctx, op)
    return binary_call(op, "minmax_s8", a, b, out, layout, dict(op="max" if op.kind == "MAXIMUM" else "min"))


@lowering("SQUARED_DIFFERENCE")
def lower_squared_difference(ctx: LowerContext, op: Op) -> KernelCall:
    """int8 (squared_difference_s8), and int16 with the int16 kernel's name and left shift (int16_rest.py)."""
    a, b, out, _, layout = binary_operands(ctx, op)
    left_shift = squared_difference_left_shift(a.dtype)
    reals = squared_difference_reals(tensor_scale(a), tensor_scale(b), tensor_scale(out), left_shift)
    params = dict(**layout, in1_offset=-a.quant.zp, in2_offset=-b.quant.zp, left_shift=left_shift)
    for name, real in zip(("in1", "in2", "out"), reals):
        params[f"{name}_mult"], params[f"{name}_shift"] = quantize_multiplier(real)
    params["out_offset"] = out.quant.zp
    return binary_call(op, "squared_difference_s8", a, b, out, params)


@lowering("PRELU")
def lower_prelu(ctx: LowerContext, op: Op) -> KernelCall:
    inp, alpha, out, _, layout = binary_operands(ctx, op)
    real1, real2 = prelu_reals(tensor_scale(inp), tensor_scale(alpha), tensor_scale(out))
    (m1, s1), (m2, s2) = quantize_multiplier(real1), quantize_multiplier(real2)
    params = dict(**layout, in_offset=-inp.quant.zp, alpha_offset=-alpha.quant.zp, out_offset=out.quant.zp,
                  mult1=m1, shift1=s1, mult2=m2, shift2=s2)
    return binary_call(op, "prelu_s8", inp, alpha, out, params)


@lowering("ARG_MAX", "ARG_MIN")
def lower_arg_min_max(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: an int8 input of rank 1 or more, a constant int32 axis in range (its first value), the int32
    # output the input's shape without the axis.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    axis = arg_min_max_axis(ctx.graph, op)
    params = dict(outer=int(np.prod(inp.shape[:axis], dtype=np.int64)), axis_size=int(inp.shape[axis]),
                  inner=int(np.prod(inp.shape[axis + 1:], dtype=np.int64)))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="argminmax_s8",
        spec=dict(op="max" if op.kind == "ARG_MAX" else "min"), params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=inp.size,
    )


def rsqrt_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """TFLM RsqrtEvalQuantized for every int8 input: the zero point gives 127; above it 1 / sqrt(x - zero
    point) in fixed point (GetInvSqrtQuantizedMultiplierExp), scaled up by 2^20, then by the output
    multiplier and down by 2^20.  (Validation requires the zero point -128: TFLM's Eval fails on inputs below
    it.)"""
    m, shift = quantize_multiplier(rsqrt_real(in_s, out_s))

    def f(x: int) -> int:
        value = x - in_zp
        if value == 0:
            return INT8_MAX
        inv, inv_shift = inv_sqrt_multiplier(value)
        data = multiply_by_quantized_multiplier(1, inv, inv_shift + RSQRT_SHIFT)
        r = multiply_by_quantized_multiplier(data, m, shift - RSQRT_SHIFT) + out_zp
        return min(INT8_MAX, max(INT8_MIN, r))

    return int8_table(f)


@lowering("RSQRT")
def lower_rsqrt(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int8 per tensor in and out, as many values, the input zero point -128, the multipliers' range.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    table = rsqrt_table(tensor_scale(inp), inp.quant.zp, tensor_scale(out), out.quant.zp)
    return lut_call(op, inp, out, table)
