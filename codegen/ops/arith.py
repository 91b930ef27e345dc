"""Arithmetic int8 operators of issue 17: MAXIMUM, MINIMUM, SQUARED_DIFFERENCE, PRELU (with broadcasting, as
ADD's; see elementwise.py, where SUB shares ADD's kernel) and ARG_MAX.

MAXIMUM/MINIMUM follow TFLM maximum_minimum.cc (no Prepare: the int8 values
are compared as they are); SQUARED_DIFFERENCE squared_difference.cc
(PrepareQuantized, SquaredDifference<int8_t>); PRELU prelu_common.cc
(CalculatePreluParams) and reference_ops::BroadcastPrelu4DSlow; ARG_MAX
arg_min_max.cc (reference_ops::ArgMinMax, int32 output).  Each lowering bakes
the multipliers, offsets, the broadcast layout or the axis into the params.
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.elementwise import binary_call, binary_operands, tensor_scale
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate import SQUARED_DIFFERENCE_LEFT_SHIFT, prelu_reals, squared_difference_reals

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.  The binary kernels
# run in place over a same-sized dying input, as add_s8; estimated instructions per output element (per
# input element for argmax_s8) as the ADD and MUL figures scale by their arithmetic.
VARIANTS = (
    portable("minmax_s8", inplace=True, per_mac=12.0),
    portable("squared_difference_s8", inplace=True, per_mac=35.0),
    portable("prelu_s8", inplace=True, per_mac=22.0),
    portable("argmax_s8", per_mac=5.0),
)


@lowering("MAXIMUM", "MINIMUM")
def lower_minmax(ctx: LowerContext, op: Op) -> KernelCall:
    a, b, out, _, layout = binary_operands(ctx, op)
    return binary_call(op, "minmax_s8", a, b, out, layout, dict(op="max" if op.kind == "MAXIMUM" else "min"))


@lowering("SQUARED_DIFFERENCE")
def lower_squared_difference(ctx: LowerContext, op: Op) -> KernelCall:
    a, b, out, _, layout = binary_operands(ctx, op)
    reals = squared_difference_reals(tensor_scale(a), tensor_scale(b), tensor_scale(out))
    params = dict(**layout, in1_offset=-a.quant.zp, in2_offset=-b.quant.zp, left_shift=SQUARED_DIFFERENCE_LEFT_SHIFT)
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


@lowering("ARG_MAX")
def lower_arg_max(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: an int8 input of rank 1 or more, a constant int32 axis in range (its first value), the int32
    # output the input's shape without the axis.
    inp, axis_t, out = ctx.t(op.inputs[0]), ctx.t(op.inputs[1]), ctx.t(op.outputs[0])
    rank = len(inp.shape)
    axis = int(np.asarray(axis_t.data).reshape(-1)[0])
    axis = axis + rank if axis < 0 else axis
    params = dict(outer=int(np.prod(inp.shape[:axis], dtype=np.int64)), axis_size=int(inp.shape[axis]),
                  inner=int(np.prod(inp.shape[axis + 1:], dtype=np.int64)))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="argmax_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=inp.size,
    )
