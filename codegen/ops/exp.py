"""EXP, float32 (TFLM's exp.cc runs float32 only: its Prepare refuses int8 and int16 inputs, so an int8 or
int16 EXP has no lowering and is refused as unsupported).  An element-wise expf (``exp_f32``)."""

from __future__ import annotations

from tinyml.codegen.declare import Variant, portable_f32
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.graph.ir import Op

VARIANTS: tuple[Variant, ...] = (
    portable_f32("exp_f32", 60.0, 900.0),  # about LOGISTIC's expf (82 and 1290 with its division)
)


@lowering("EXP", dtype="float32")
def lower_exp_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])  # validated: float32, the same shape
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="exp_f32", spec={}, params=dict(size=inp.size),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )
