"""L2_NORMALIZATION (int8): TFLM l2norm.cc and reference_integer_ops::L2Normalization.

Per row of the last axis: the sum of the squared (x - input zero point) in int32, its inverse square root
by GetInvSqrtQuantizedMultiplierExp (gemmlowp fixed point, at run time: it depends on the data), and each
(x - zero point) times it, in 1/128ths (clamped to int8).  Only the input's zero point is read.
"""

from __future__ import annotations

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.graph.ir import Op

# Instructions per input element on mps2-an386 (`tinyml profile --kernels portable`, QEMU's counts), for the
# modelgen cases 6x10 (depth 10: 86.5, the inverse square root of each row weighs most), 3x4x16 (70.4) and
# 2x64 (53.4); 67 is their total instructions over their total elements.  Runs in place (element by element:
# a row is read whole before any of it is written), no scratch, no on-stack buffer.
L2_NORM_PER_ELEMENT = 67.0
VARIANTS = (
    portable("l2norm_s8", inplace=True, per_mac=L2_NORM_PER_ELEMENT),
)


@lowering("L2_NORMALIZATION")
def lower_l2_norm(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int8 per tensor, equal shapes of rank 1 to 4, no fused activation, the int32 sum of squares.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    depth = inp.shape[-1]
    params = dict(outer=inp.size // depth, depth=depth, input_offset=-inp.quant.zp)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="l2norm_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)], inputs=[inp.index], outputs=[out.index],
        inplace_inputs=[0],
    )
