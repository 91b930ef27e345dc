"""Layout folding, a rewrite of the lowered calls before planning (issue 17): a TRANSPOSE costs no copy
when the one operator reading its output can address the TRANSPOSE's input in its own layout.

A PyTorch export starts with TRANSPOSE (NCHW to NHWC), on the model input or, with float I/O, on the
QUANTIZE of it.  Lowered on its own, the TRANSPOSE is a strided gather (``copy_nd_s8``) into a second
buffer.  Folded, it becomes an :class:`Alias` with ``folded_into`` set: its output is its input's bytes
(the planner gives both one buffer, ``OpFacts.alias``), and its consumer's call carries
``input_strides``: for each dimension of the tensor it reads (the TRANSPOSE's output), the step in
elements through the TRANSPOSE's input, so that the consumer reads element ``[n][h][w][c]`` where the
TRANSPOSE would have copied it from.  The model's API still takes the input in the .tflite's layout.

It folds where the TRANSPOSE's input is an activation (not a constant), its output is not a model output
and has one reader, whose kernel has a variant that declares ``strided_input``; only those variants then
compute the call (``Variant.applies``), not in place (the ring geometry assumes a row-major input), and in
a patch stage without the stage's output overlapping its input (``OpFacts.strided_input``).  Anywhere
else the TRANSPOSE stays a copy; so does a TRANSPOSE into a model output (that needs kernels writing
through strides).  The compiler plans a model both ways, folded and copying, and its objective chooses
(tinyml/compiler.py: plan_graph).
"""

from __future__ import annotations

from dataclasses import replace

from tinyml.codegen.lower import Alias, KernelCall, LowerContext, Lowered
from tinyml.codegen.ops.movement import pitches
from tinyml.codegen.variants import VARIANTS
from tinyml.graph.ir import Graph
from tinyml.graph.validate import transpose_perm

STRIDED_KERNELS = frozenset(v.implements for v in VARIANTS if v.strided_input)  # kernels that can take a fold


def fold_transposes(ctx: LowerContext, calls: list[Lowered]) -> list[Lowered]:
    """``calls`` (in graph order) with every TRANSPOSE that can fold folded into its consumer (see the module
    docstring)."""
    graph = ctx.graph
    readers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(op.index)
    out = list(calls)
    by_op = {c.op_index: k for k, c in enumerate(out)}
    for k, call in enumerate(out):
        if not (isinstance(call, KernelCall) and call.op_kind == "TRANSPOSE"):
            continue
        op = graph.ops[call.op_index]
        src, dst = op.inputs[0], op.outputs[0]
        if graph.tensors[src].is_const or dst in graph.outputs or len(readers.get(dst, [])) != 1:
            continue
        j = by_op[readers[dst][0]]
        consumer = out[j]
        if not isinstance(consumer, KernelCall) or consumer.kernel not in STRIDED_KERNELS \
                or consumer.input_strides or [a.tensor for a in consumer.args if a.kind == "tensor"].count(dst) != 1 \
                or graph.ops[consumer.op_index].inputs[0] != dst:
            continue
        pitch = pitches(graph.tensors[src].shape)
        strides = tuple(pitch[p] for p in transpose_perm(graph, op))
        out[j] = replace(consumer, input_strides=strides, spec=dict(consumer.spec, in_strides=list(strides)),
                         inplace_inputs=[])
        out[k] = Alias(op_index=op.index, op_kind=op.kind, source=src, target=dst, folded_into=consumer.op_index)
    return out


def folded(calls: list[Lowered]) -> list[Alias]:
    """The TRANSPOSEs folded into their consumers."""
    return [c for c in calls if isinstance(c, Alias) and c.folded_into >= 0]


def fold_note(graph: Graph, folds: list[Alias], taken: bool, folded: tuple[int, int] = (0, 0),
              chosen: tuple[int, int] = (0, 0)) -> str:
    """The line compile and inspect print about ``folds``: taken, or left as copies because the objective took
    a plan that copies; ``folded``: the smallest arena and the lowest estimated cost (instructions) among the
    folded plans, ``chosen``: the arena and cost of the plan taken."""
    if not folds:
        return ""
    which = ", ".join(f"TRANSPOSE op {a.op_index} into op {a.folded_into} ({graph.ops[a.folded_into].kind})"
                      for a in folds)
    if taken:
        return f"folded {which}: it reads the TRANSPOSE's input in that input's layout (no copy, no arena bytes)"
    return (f"not folded: {which} could fold, but the objective took a plan that copies: folded, the smallest "
            f"arena is {folded[0]:,} bytes and the fastest plan {folded[1]:,} instructions (estimated), against "
            f"this plan's {chosen[0]:,} bytes and {chosen[1]:,} (the folded reader has portable C only and does "
            "not run in place)")
