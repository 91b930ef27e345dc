"""Specialization, after planning: each operator's call becomes the call of the variant the plan chose.

A DSP or MVE variant gets its weights rearranged and its shapes baked in
(its ``build`` in ``families.py``).  A portable kernel with window and ring
parameters (conv_s8.c.j2) gets them from the plan: the whole layer, or one
set of window parameters per patch for the operators of a patch stage, and
the ring buffer and lag of an operator that runs in place.  The calls come
out in the plan's execution order.

Where the board's flash is short, :func:`flash_fallbacks` names the
operators to move onto a variant that declares it saves flash over the one
the plan chose (``Variant.saves_flash_of``), largest saving first; the
compiler plans again without the chosen variants for them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tinyml.codegen.declare import STRIP_KEYS, strip_bounds, strip_view
from tinyml.codegen.lower import Alias, Arg, KernelCall, LowerContext, Lowered
from tinyml.codegen.variants import VARIANTS, Variant, options, variant
from tinyml.graph.ir import Graph
from tinyml.schedule.choose import Options
from tinyml.schedule.plan import OpFacts, PatchStage, PatchWindow, Plan

FOLDED = "folded"  # the planner's variant name of a TRANSPOSE folded into its consumer (no kernel)


def variant_options(ctx: LowerContext, calls: list[Lowered]) -> Options:
    """The planner's view of ``calls``: per operator, the facts of every variant that computes it on the
    board of ``ctx``, fastest first; a TRANSPOSE folded into its consumer runs none (an alias to the planner)."""
    out: Options = {}
    for c in calls:
        if isinstance(c, Alias) and c.folded_into >= 0:
            out[c.op_index] = (OpFacts(alias=True, variant=FOLDED),)
        elif isinstance(c, KernelCall):
            elements = sum(ctx.t(t).size for t in c.outputs)  # every output (SPLIT has several)
            nbytes = sum(ctx.t(t).nbytes for t in c.outputs)
            out[c.op_index] = tuple(v.facts(ctx, c, nbytes if v.per_byte else elements) for v in options(ctx, c))
    return out


def _whole_window(v: Variant, call: KernelCall) -> dict[str, int]:
    p = call.params
    if not v.window:
        return {}
    return dict(in_y0=0, in_x0=0, img_h=p["in_h"], img_w=p["in_w"], oy0=0, ox0=0, out_y0=0, out_x0=0,
                out_pitch=p["out_w"])


def _patch_window(call: KernelCall, w: PatchWindow) -> dict[str, Any]:
    p = dict(call.params)
    p.update(in_h=w.in_h, in_w=w.in_w, in_y0=w.in_y0, in_x0=w.in_x0, out_h=w.out_h, out_w=w.out_w, oy0=w.oy0,
             ox0=w.ox0, out_y0=w.out_y0, out_x0=w.out_x0, out_pitch=w.out_pitch)
    return p


def _ring_form(v: Variant, call: KernelCall, plan: Plan, strips: bool = False, rows: bool = False) -> KernelCall:
    """Whole-layer window params and the ring (or none).  A portable kernel always takes them; a
    specialized variant only in the form the plan uses (its spec says which, so its whole-layer code
    stays as it is; in place without a ring, its whole-layer form unless it declares its own); ``strips``:
    its window form, for column strips; ``rows``: in place with its buffers in the op's scratch (before
    the ring, which the scratch argument then points to even without a ring: spec.scratch_rows)."""
    ip = plan.inplace.get(call.op_index)
    ring_used = ip is not None and ip.ring > 0
    in_stage = plan.stage_of(call.op_index) is not None or strips
    if v.family != "portable":
        if ip is not None and ip.direct and v.direct_stack(call) > 0:
            return replace(call, spec=dict(call.spec, over_input=True))  # its form in place without a ring
        if not ring_used and not in_stage and not rows:
            return call
        extra = {"scratch_rows": True} if rows else {}  # (other calls' specs, and so their code, unchanged)
        call = replace(call, spec=dict(call.spec, ring=ring_used, window=in_stage, **extra))
    params = dict(call.params)
    params.update(_whole_window(v, call))
    params.setdefault("ring_len", 0)
    params.setdefault("lag", 0)
    ring = Arg(kind="null", ctype="int8_t", writable=True)
    if ring_used:
        assert ip is not None
        params.update(ring_len=ip.ring, lag=ip.lag)
    if ring_used or rows:
        ring = Arg(kind="scratch", ctype="int8_t", writable=True)
    args = list(call.args)
    if len(args) == 4:
        args.append(ring)
    else:
        args[4] = ring
    return replace(call, params=params, args=args)


def _patch_form(call: KernelCall, st: PatchStage) -> KernelCall:
    j = st.ops.index(call.op_index)
    loop = "only" if len(st.ops) == 1 else ("first" if j == 0 else "last" if j == len(st.ops) - 1 else "middle")
    return replace(call, patch_params=[_patch_window(call, w) for w in st.windows[j]], patch_loop=loop)


def _narrow_build(ctx: LowerContext, v: Variant, call: KernelCall, cols: int) -> KernelCall:
    """``v``'s specialization sized for windows of at most ``cols`` output columns (declare.strip_view), with
    the layer's own params."""
    assert v.build is not None
    built = v.build(ctx, strip_view(call, cols))
    return replace(built, params={**built.params, **{k: call.params[k] for k in STRIP_KEYS}})


def _strip_form(call: KernelCall, cols: int) -> KernelCall:
    """A layer computed as column strips of at most ``cols`` columns (Variant.strip_columns): one window-form
    call per strip, full height, from the whole input into the whole output (a patch loop of its own)."""
    p = call.params
    bounds = strip_bounds(call, cols)
    windows = [PatchWindow(in_y0=0, in_x0=0, in_h=p["in_h"], in_w=p["in_w"], oy0=0, ox0=x0, out_h=p["out_h"],
                           out_w=x1 - x0, out_y0=0, out_x0=0, out_pitch=p["out_w"])
               for x0, x1 in zip(bounds, bounds[1:])]
    return replace(call, patch_params=[_patch_window(call, w) for w in windows], patch_loop="only")


def specialize_calls(ctx: LowerContext, calls: list[Lowered], plan: Plan) -> list[Lowered]:
    """The calls of the variants ``plan`` chose, in its execution order."""
    by_op = {c.op_index: c for c in calls}
    out: list[Lowered] = []
    for pos in plan.order:
        call = by_op[pos]
        if not isinstance(call, KernelCall):
            out.append(call)
            continue
        v = variant(plan.choice[pos].variant)
        st = plan.stage_of(pos)
        rows = pos in plan.inplace and v.rows_in_scratch(ctx, call)  # whole, in place, buffers in scratch
        # > 0: too wide for it whole, in strips or in a stage's windows
        cols = 0 if rows else v.strip_columns(ctx, call)
        if cols:
            call = _narrow_build(ctx, v, call, st.widest(pos) if st is not None else cols)
        elif v.build is not None:
            call = v.build(ctx, call)
        if v.ring or v.window:
            call = _ring_form(v, call, plan, strips=cols > 0, rows=rows)
        if st is not None:
            call = _patch_form(call, st)
        elif cols:
            call = _strip_form(call, cols)
        out.append(call)
    return out


def weight_bytes(graph: Graph, calls: list[Lowered]) -> int:
    """Compiled weights: bytes of constant data the calls hold in flash, the constant tensors they still
    reference (each once) plus the arrays lowering and specialization derived (rearranged and padded
    weights, folded biases, multipliers, shifts, tables)."""
    kernels = [k for k in calls if isinstance(k, KernelCall)]
    tensors = {a.tensor for k in kernels for a in k.args if a.kind == "tensor" and graph.tensors[a.tensor].is_const}
    return sum(graph.tensors[t].nbytes for t in tensors) + sum(c.nbytes for k in kernels for c in k.consts)


@dataclass(frozen=True)
class FlashFallback:
    """Operators moved off their fastest variant onto one over fewer weight bytes (saves_flash_of)."""

    ops: dict[int, tuple[str, str]]  # op index -> (the variant left out, the one that saves flash)
    saved: int  # weight bytes fewer, over all of them


def flash_fallbacks(ctx: LowerContext, calls: list[Lowered], plan: Plan, excess: int) -> FlashFallback:
    """Which operators of ``plan`` to move onto a variant declaring it saves flash over the one the plan
    chose, largest saving first, until ``excess`` weight bytes are saved (all of them where that is not
    enough)."""
    savers = {v.saves_flash_of: v for v in VARIANTS if v.saves_flash_of is not None}
    saving: list[tuple[int, int, str, str]] = []
    for c in calls:
        if not isinstance(c, KernelCall) or c.op_index not in plan.choice:
            continue
        wide = variant(plan.choice[c.op_index].variant)
        narrow = savers.get(wide.template)
        if narrow is None or not narrow.applies(ctx, c):
            continue
        assert wide.build is not None and narrow.build is not None
        n = weight_bytes(ctx.graph, [wide.build(ctx, c)]) - weight_bytes(ctx.graph, [narrow.build(ctx, c)])
        if n > 0:
            saving.append((n, c.op_index, wide.template, narrow.template))
    ops: dict[int, tuple[str, str]] = {}
    saved = 0
    for n, op, wide_t, narrow_t in sorted(saving, key=lambda s: (-s[0], s[1])):
        if saved >= excess:
            break
        ops[op] = (wide_t, narrow_t)
        saved += n
    return FlashFallback(ops=ops, saved=saved)


def without_variants(options: Options, left_out: dict[int, tuple[str, str]]) -> Options:
    """``options`` without the variant ``left_out`` names for each of its operators."""
    return {op: tuple(f for f in opts if op not in left_out or f.variant != left_out[op][0])
            for op, opts in options.items()}
