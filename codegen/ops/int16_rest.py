"""RSQRT and SQUARED_DIFFERENCE on int16 (int16x8 models), bit-exact with TFLM's int16 kernels.

RSQRT (``rsqrt_s16``): TFLM elementwise.cc PrepareAbsRsqrt (zero points 0, QuantizeMultiplier of
1 / (sqrt(input scale) x output scale)) and RsqrtEvalQuantized<int16_t>: per element (a table would have 32,768
entries), 1 / sqrt(x) by GetInvSqrtQuantizedMultiplierExp applied to 1 shifted up by RSQRT_SHIFT, then the output
multiplier shifted RSQRT_SHIFT less, clamped to int16.  The kernel writes element i right after reading it, so
it may run in place.

SQUARED_DIFFERENCE (``squared_difference_s16``): squared_difference.cc on int16 (zero points 0, left shift 0),
the int8 lowering's params and broadcast layout (codegen/ops/arith.py), the int16 kernel.
"""

from __future__ import annotations

import dataclasses

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.arith import lower_squared_difference
from tinyml.codegen.ops.elementwise import tensor_scale
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate import RSQRT_SHIFT, rsqrt_real

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them: instructions per
# output element, estimated (five Newton-Raphson steps of a few fixed-point products each, two requantizations).
VARIANTS = (
    portable("rsqrt_s16", inplace=True, per_mac=150.0),
    portable("squared_difference_s16", inplace=True, per_mac=125.0),  # as squared_difference_s8
)


@lowering("RSQRT", dtype="int16")
def lower_rsqrt_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int16 input and output of one size (zero points 0), the multiplier and its shift in range.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    mult, shift = quantize_multiplier(rsqrt_real(tensor_scale(inp), tensor_scale(out)))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="rsqrt_s16", spec={},
        params=dict(size=out.size, mult=mult, shift=shift - RSQRT_SHIFT),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)], inputs=[inp.index], outputs=[out.index],
        inplace_inputs=[0],
    )


@lowering("SQUARED_DIFFERENCE", dtype="int16")
def lower_squared_difference_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 row (two int16 inputs, at most one constant, broadcasting up to 4-D), the output
    # multiplier against the int16 square.
    return dataclasses.replace(lower_squared_difference(ctx, op), kernel="squared_difference_s16",
                               params_kernel="squared_difference_s8")
