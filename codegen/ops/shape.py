"""RESHAPE and SQUEEZE: the output is the input's bytes under another shape."""

from __future__ import annotations

from tinyml.codegen.lower import Alias, LowerContext, lowering, unsupported
from tinyml.graph.ir import Op


@lowering("RESHAPE", "SQUEEZE")
def lower_reshape(ctx: LowerContext, op: Op) -> Alias:
    if not op.inputs or op.inputs[0] < 0 or len(op.outputs) != 1:
        raise unsupported(op, "needs one data input and one output")
    src, dst = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    if src.size != dst.size:
        raise unsupported(op, f"input has {src.size} values but output has {dst.size}")
    if src.dtype != dst.dtype:
        raise unsupported(op, f"input is {src.dtype} but output is {dst.dtype}")
    return Alias(op_index=op.index, op_kind=op.kind, source=src.index, target=dst.index)
