"""RESHAPE and SQUEEZE: the output is the input's bytes under another shape."""

from __future__ import annotations

from tinyml.codegen.lower import Alias, LowerContext, lowering
from tinyml.graph.ir import Op


@lowering("RESHAPE", "SQUEEZE", dtype=("int8", "int16"))
def lower_reshape(ctx: LowerContext, op: Op) -> Alias:
    # Validated: one data input and one output, of the same type and size.
    src, dst = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    return Alias(op_index=op.index, op_kind=op.kind, source=src.index, target=dst.index)
