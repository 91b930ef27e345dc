"""Connect the memory planner to code generation.

``planner_facts`` tells the planner (tinyml.schedule, which knows nothing of
kernels) what each lowered kernel allows; ``apply_plan`` turns the plan's
decisions into kernel parameters: the ring buffer and lag of operators that
run in place, and one set of window parameters per patch for the operators
of a patch stage.  Specialized kernel families (DSP, MVE) do not take these
parameters, so an operator the plan runs in place or patch by patch is
lowered again as the portable kernel.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tinyml.codegen.lower import Arg, KernelCall, LowerContext, Lowered, lower_op
from tinyml.graph.ir import Graph
from tinyml.schedule.plan import OpFacts, PatchStage, PatchWindow, Plan

# Portable kernels with window and ring parameters (see templates/kernels/conv_s8.c.j2).
RING_KERNELS = ("conv_s8", "dwconv_s8", "fc_s8")
WINDOW_KERNELS = ("conv_s8", "dwconv_s8")


def planner_facts(calls: list[Lowered], graph: Graph | None = None) -> dict[int, OpFacts]:
    """What each kernel allows.  With ``graph``: what the portable kernel allows
    for calls that were specialized (DSP, MVE), so that the planner may trade
    their speed for memory (apply_plan then lowers them again as portable)."""
    facts: dict[int, OpFacts] = {}
    portable = LowerContext(graph=graph, features=()) if graph is not None else None
    for c in calls:
        if not isinstance(c, KernelCall):
            continue
        if portable is not None and c.kernel not in RING_KERNELS and c.params_kernel in RING_KERNELS:
            again = lower_op(portable, graph.ops[c.op_index])  # type: ignore[union-attr]
            if isinstance(again, KernelCall):
                c = again
        facts[c.op_index] = OpFacts(inplace_inputs=tuple(c.inplace_inputs), inplace_kind=c.inplace_kind,
                                    scratch_bytes=c.scratch_bytes, patchable=c.patchable, macs=c.macs)
    return facts


def _whole_window(call: KernelCall) -> dict[str, int]:
    p = call.params
    if call.kernel not in WINDOW_KERNELS:
        return {}
    return dict(in_y0=0, in_x0=0, img_h=p["in_h"], img_w=p["in_w"], oy0=0, ox0=0, out_y0=0, out_x0=0,
                out_pitch=p["out_w"])


def _patch_window(call: KernelCall, w: PatchWindow) -> dict[str, Any]:
    p = dict(call.params)
    p.update(in_h=w.in_h, in_w=w.in_w, in_y0=w.in_y0, in_x0=w.in_x0, out_h=w.out_h, out_w=w.out_w, oy0=w.oy0,
             ox0=w.ox0, out_y0=w.out_y0, out_x0=w.out_x0, out_pitch=w.out_pitch)
    return p


def apply_plan(graph: Graph, calls: list[Lowered], plan: Plan) -> list[Lowered]:
    """The calls with the plan's in-place and patch decisions in their parameters."""
    portable = LowerContext(graph=graph, features=())
    stages: dict[int, PatchStage] = {o: s for s in plan.stages for o in s.ops}
    out: list[Lowered] = []
    by_op = {c.op_index: c for c in calls}
    for pos in plan.order:
        call = by_op[pos]
        if not isinstance(call, KernelCall):
            out.append(call)
            continue
        ip = plan.inplace.get(pos)
        st = stages.get(pos)
        if (ip is not None and ip.ring) or st is not None:
            if call.kernel not in RING_KERNELS:
                again = lower_op(portable, graph.ops[pos])
                assert isinstance(again, KernelCall) and again.kernel in RING_KERNELS, again
                call = again
        if call.kernel in RING_KERNELS:
            params = dict(call.params)
            params.update(_whole_window(call))
            params.setdefault("ring_len", 0)
            params.setdefault("lag", 0)
            ring = Arg(kind="null", ctype="int8_t", writable=True)
            if ip is not None and ip.ring:
                params.update(ring_len=ip.ring, lag=ip.lag)
                ring = Arg(kind="scratch", ctype="int8_t", writable=True)
            args = list(call.args)
            if len(args) == 4:
                args.append(ring)
            else:
                args[4] = ring
            call = replace(call, params=params, args=args)
        if st is not None:
            j = st.ops.index(pos)
            loop = "only" if len(st.ops) == 1 else ("first" if j == 0 else "last" if j == len(st.ops) - 1 else "middle")
            call = replace(call, patch_params=[_patch_window(call, w) for w in st.windows[j]], patch_loop=loop)
        out.append(call)
    return out
