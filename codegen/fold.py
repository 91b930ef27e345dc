"""Layout folding, a rewrite of the lowered calls before planning (issue 17): a TRANSPOSE costs no copy
when the operator reading its output can address its input's layout, or the operator writing its input
can write its output's layout.

A PyTorch export starts with TRANSPOSE (NCHW to NHWC), on the model input or, with float I/O, on the
QUANTIZE of it, and a dense-prediction one may end with the TRANSPOSE back.  Lowered on its own, the
TRANSPOSE is a strided gather (``copy_nd_s8``) into a second buffer.  Folded, it becomes an
:class:`Alias` with ``folded_into`` set: its output is its input's bytes (the planner gives both one
buffer, ``OpFacts.alias``), and either

* its reader's call carries ``input_strides``: for each dimension of the tensor it reads (the TRANSPOSE's
  output), the step in elements through the TRANSPOSE's input, so that it reads element ``[n][h][w][c]``
  where the TRANSPOSE would have copied it from; or
* its input's writer's call carries ``output_strides``: for each dimension of the tensor it writes (the
  TRANSPOSE's input), the step in elements through the TRANSPOSE's output, so that each element lands
  where the TRANSPOSE would have copied it to.

The model's API keeps the .tflite's layouts.  It folds where the TRANSPOSE's input is an activation (not
a constant) and the reader (preferred: the one reader of a TRANSPOSE output that is not a model output)
or the writer (of a TRANSPOSE input that is neither a model input nor output, read by the TRANSPOSE
alone) has a variant declaring ``strided_input`` or ``strided_output`` (the portable, DSP and MVE int8
CONV_2D: the DSP and MVE ones gather a strided input in their im2col and store a strided output out of a
pixel pair's buffer, at the cost their declarations add, codegen/families.py: FOLDED_RATES; and the
portable int8 DEPTHWISE_CONV_2D); only those
variants then compute the call (``Variant.applies``), not in place (the ring geometry assumes row-major
tensors); a strided
reader may run in a patch stage without the stage's output overlapping its input
(``OpFacts.strided_input``), a strided writer not in one.  Anywhere else the TRANSPOSE stays a copy.  The
compiler plans a model both ways, folded and copying, and its objective chooses (tinyml/compiler.py:
plan_graph).
"""

from __future__ import annotations

from dataclasses import replace

from tinyml.codegen.lower import Alias, KernelCall, LowerContext, Lowered
from tinyml.codegen.ops.movement import pitches
from tinyml.codegen.variants import VARIANTS
from tinyml.graph.ir import Graph
from tinyml.graph.validate import transpose_perm

STRIDED_KERNELS = frozenset(v.implements for v in VARIANTS if v.strided_input)  # can read a folded input
STRIDED_OUT_KERNELS = frozenset(v.implements for v in VARIANTS if v.strided_output)  # can write a folded output


def fold_transposes(ctx: LowerContext, calls: list[Lowered]) -> list[Lowered]:
    """``calls`` (in graph order) with every TRANSPOSE that can fold folded into its consumer (see the module
    docstring)."""
    graph = ctx.graph
    readers: dict[int, list[int]] = {}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0:
                readers.setdefault(t, []).append(op.index)
    producer = {t: op.index for op in graph.ops for t in op.outputs if t >= 0}
    out = list(calls)
    by_op = {c.op_index: k for k, c in enumerate(out)}
    for k, call in enumerate(out):
        if not (isinstance(call, KernelCall) and call.op_kind == "TRANSPOSE"):
            continue
        op = graph.ops[call.op_index]
        src, dst = op.inputs[0], op.outputs[0]
        if graph.tensors[src].is_const:
            continue
        perm = transpose_perm(graph, op)
        j = _reader(graph, out, by_op, readers, dst)
        if j is not None:  # the reader takes the TRANSPOSE's input through strides
            pitch = pitches(graph.tensors[src].shape)
            strides = tuple(pitch[p] for p in perm)
            consumer = out[j]
            out[j] = replace(consumer, input_strides=strides, spec=dict(consumer.spec, in_strides=list(strides)),
                             inplace_inputs=[])
        else:  # the writer of its input puts each element where the TRANSPOSE would have copied it
            j = _writer(graph, out, by_op, readers, producer, src)
            if j is None:
                continue
            pitch = pitches(graph.tensors[dst].shape)
            strides = tuple(pitch[perm.index(d)] for d in range(len(perm)))
            writer = out[j]
            out[j] = replace(writer, output_strides=strides, spec=dict(writer.spec, out_strides=list(strides)),
                             inplace_inputs=[], patchable=False)
        out[k] = Alias(op_index=op.index, op_kind=op.kind, source=src, target=dst, folded_into=out[j].op_index)
    return out


def _reader(graph: Graph, calls: list[Lowered], by_op: dict[int, int], readers: dict[int, list[int]],
            t: int) -> int | None:
    """The position in ``calls`` of the one reader of ``t`` if it can read it through strides (as its input 0,
    its only argument that is ``t``), else None."""
    if t in graph.outputs or len(readers.get(t, [])) != 1:
        return None
    j = by_op[readers[t][0]]
    c = calls[j]
    if not isinstance(c, KernelCall) or c.kernel not in STRIDED_KERNELS or c.input_strides \
            or [a.tensor for a in c.args if a.kind == "tensor"].count(t) != 1 or graph.ops[c.op_index].inputs[0] != t:
        return None
    return j


def _writer(graph: Graph, calls: list[Lowered], by_op: dict[int, int], readers: dict[int, list[int]],
            producer: dict[int, int], t: int) -> int | None:
    """The position in ``calls`` of the writer of ``t`` if it can write it through strides (its only output,
    read by the TRANSPOSE alone), else None."""
    if t in graph.outputs or t in graph.inputs or len(readers.get(t, [])) != 1 or t not in producer:
        return None
    j = by_op[producer[t]]
    c = calls[j]
    if not isinstance(c, KernelCall) or c.kernel not in STRIDED_OUT_KERNELS or c.output_strides \
            or c.outputs != [t] or [a.tensor for a in c.args if a.kind == "tensor"].count(t) != 1:
        return None
    return j


def folded(calls: list[Lowered]) -> list[Alias]:
    """The TRANSPOSEs folded into their consumers."""
    return [c for c in calls if isinstance(c, Alias) and c.folded_into >= 0]


def fold_note(graph: Graph, folds: list[Alias], taken: bool, folded: tuple[int, int] | None = None,
              chosen: tuple[int, int] = (0, 0)) -> str:
    """The line compile and inspect print about ``folds``: taken, or left as copies because the objective took
    a plan that copies; ``folded``: the arena and estimated cost (instructions) of the plan the objective
    takes among the folded plans alone (None: none fits the budget), ``chosen``: those of the plan taken."""
    if not folds:
        return ""
    which = ", ".join(f"TRANSPOSE op {a.op_index} into op {a.folded_into} ({graph.ops[a.folded_into].kind})"
                      for a in folds)
    if taken:
        return f"folded {which}: its kernel addresses the other layout through strides (no copy, no arena bytes)"
    why = (f"its best folded plan needs {folded[0]:,} bytes of arena and {folded[1]:,} instructions (estimated)"
           if folded is not None else "no folded plan fits the budget")
    return (f"not folded: {which} could fold, but the objective took a plan that copies ({chosen[0]:,} bytes, "
            f"{chosen[1]:,} instructions): {why}; a folded kernel does not run in place, and its gather or "
            f"strided stores cost instructions")
