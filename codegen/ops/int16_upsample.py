"""TRANSPOSE_CONV on 16-bit activations (validation's INT16_RULES row): TFLM transpose_conv.cc with an int16
input, reference_integer_ops::TransposeConv for int16 input and int8 weights.  TFLM scatters the products into
an int64 scratch tensor of the output's size and adds the bias there (an int64 one, or an int16 one it widens);
it then requantizes with the int64 MultiplyByQuantizedMultiplier, without input or output offsets (zero
points 0).  Our kernel gathers each output value's products in an int64 accumulator instead (the same sum:
validation bounds it), so it needs no scratch.  The geometry, padding and multipliers are the int8 lowering's
(codegen/ops/upsample.py); the activation range is int16's.
"""

from __future__ import annotations

import dataclasses

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, null_arg, tensor_arg
from tinyml.codegen.ops.int16 import _range16
from tinyml.codegen.ops.upsample import lower_transpose_conv
from tinyml.graph.ir import C_TYPES, Op

# Instructions per MAC: estimated from transpose_conv_s8's 20 (the same gather, with int64 sums).
VARIANTS = (
    portable("transpose_conv_s16", per_mac=24.0),
)


@lowering("TRANSPOSE_CONV", dtype="int16")
def lower_transpose_conv_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: the int8 row's shapes, strides and padding; int16 input and output (zero points 0), an
    # optional int64 or int16 bias, each channel's multiplier within the int64 requantization's range.
    call = lower_transpose_conv(ctx, op)
    b = ctx.t(op.inputs[3]) if len(op.inputs) > 3 and op.inputs[3] >= 0 else None
    bias_ctype = C_TYPES[b.dtype] if b is not None else "int64_t"
    args = list(call.args)
    args[2] = tensor_arg(b) if b is not None else null_arg(bias_ctype)
    params = {**call.params, **_range16(op, ctx.t(op.outputs[0]))}
    return dataclasses.replace(call, kernel="transpose_conv_s16", params_kernel="transpose_conv_s8",
                               spec={"bias": bias_ctype}, params=params, args=args)
