"""Which kernel variant each operator runs, and which plan: memory against estimated cost.

Lowering declares, per operator, every kernel variant that can compute it
on the board (``tinyml.codegen.variants``), fastest first, as plain
:class:`~tinyml.schedule.plan.OpFacts` with an estimated cost.  The
candidate plans are:

* layer by layer with the fastest variants, nothing in place (the fastest
  plan, the cost anchor);
* layer by layer with the in-place forms the fastest variants declare
  (without a ring where a ring kernel can run so in as little memory,
  and with rings only: outputs placed below their inputs can leave gaps);
* layer by layer with the in-place forms of any variant (a slower variant
  where only it can run in place);
* patch stages (MCUNetV2) over chains of operators whose variants compute
  patch windows, found by ``tinyml.schedule.patch.search``;
* for a budget none of these reaches, the same with, per operator, the
  variant whose in-place ring is the shortest (a kernel that computes
  pixels ahead holds them in a longer ring: at a model's peak a slower
  variant can save those bytes), and patch stages searched so;
* each plan on the cost frontier without the rings its arena does not need
  (:func:`spare_rings`).

Each plan records the variant of every operator (``Plan.choice``: the
fastest one that can do what the plan asks of it) and so its estimated cost
(``Plan.cost``: kernels, ring copies, recomputed patch halos).  Objective:
without a budget, the smallest arena whose cost is within ``TOLERANCE`` of
the fastest plan; with ``sram``, the lowest cost that fits.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from tinyml.errors import FitError
from tinyml.graph.ir import Graph
from tinyml.schedule.patch import cheaper_fits, describe_stages, search
from tinyml.schedule.plan import DIRECT, OpFacts, Plan, plan_memory

Options = dict[int, tuple[OpFacts, ...]]  # op index -> its variants, fastest first
TOLERANCE = 0.02  # default builds: at most this much slower (estimated) than the fastest plan


def fastest_facts(options: Options) -> dict[int, OpFacts]:
    return {op: opts[0] for op, opts in options.items()}


def _forms(opts: tuple[OpFacts, ...], narrow: bool = False) -> list[OpFacts]:
    """The variants that run in place or patch by patch; one that computes only narrow windows (column strips
    of a wide layer: max_window_w) only where none runs in place or in any window, unless ``narrow``
    (with_choice still takes it for a plan's narrow windows, and where the plan runs the operator in
    neither form)."""
    forms = [o for o in opts if o.inplace_inputs or o.patchable]
    free = [o for o in forms if o.inplace_inputs or not o.max_window_w]
    return forms if narrow else free or forms


def capabilities(options: Options, narrow: bool = False) -> dict[int, OpFacts]:
    """Per operator, the facts of the fastest variant that runs in place or patch by patch (the fastest
    variant where none does; see _forms), with scratch enough for the fastest variant too (which the
    operator runs when the plan does neither)."""
    out = {}
    for op, opts in options.items():
        f = next(iter(_forms(opts, narrow)), opts[0])
        out[op] = replace(f, scratch_bytes=max(f.scratch_bytes, opts[0].scratch_bytes))
    return out


def lean_capabilities(options: Options) -> dict[int, OpFacts]:
    """As :func:`capabilities`, but per operator the variant that runs in place or patch by patch with the
    shortest ring (fewest units held beyond the lag; of those, fewest bytes of buffers held in scratch
    (OpFacts.form_scratch_bytes); the fastest among those): the plan with the smallest arena a board's
    kernels reach where its fastest in-place kernel computes ahead into a longer ring."""
    out = {}
    for op, opts in options.items():
        forms = _forms(opts)
        # min keeps the first (fastest) of equals; of equal rings, one without buffers in scratch
        f = min(forms, key=lambda o: (o.ring_extra, o.form_scratch_bytes)) if forms else opts[0]
        out[op] = replace(f, scratch_bytes=max(f.scratch_bytes, opts[0].scratch_bytes))
    return out


LEAN_ROUNDS = 4  # _lean_at_peak: re-plans


def _lean_at_peak(graph: Graph, caps: dict[int, OpFacts], lean: dict[int, OpFacts], arena: int,
                  direct: str, like: Plan | None = None) -> tuple[Plan | None, dict[int, OpFacts]]:
    """A plan with the fastest in-place variants except at the steps that hold more than ``arena`` bytes
    (the arena of a plan with the shortest rings everywhere: ``like``, whose patch stages and order it
    keeps, or layer by layer), which take the shortest rings; None when that does not reach ``arena`` in
    LEAN_ROUNDS plans."""
    facts = dict(caps)
    for _ in range(LEAN_ROUNDS):
        p = (plan_memory(graph, facts, direct=direct) if like is None else
             plan_memory(graph, facts, stages=like.stages, orders=[like.order], direct=direct))
        if p.arena_bytes <= arena:
            return p, facts
        live = p.live_bytes()
        over = {op for s, op in enumerate(p.order) if live[s] > arena and facts.get(op) != lean.get(op)}
        if not over:
            break
        facts.update({op: lean[op] for op in over})
    return None, facts


def _lean_plans(graph: Graph, caps: dict[int, OpFacts], lean: dict[int, OpFacts], sram: int,
                max_extra: float | None, stream: bool = False) -> list[tuple[Plan, dict[int, OpFacts], str]]:
    """The plans with the shortest rings, for a budget that the fastest in-place variants do not reach:
    layer by layer (with them everywhere, and only where the memory peaks), and patch stages searched
    with them (the peak, and so the chains worth cutting into patches, can move)."""
    made: list[tuple[Plan, dict[int, OpFacts], str]] = []
    for d in () if stream else DIRECT:  # (a streamed plan is never layer by layer)
        small = plan_memory(graph, lean, direct=d)
        made.append((small, lean, d))
        q, facts = _lean_at_peak(graph, caps, lean, small.arena_bytes, d)
        if q is not None:
            made.append((q, facts, d))
    if min((p.arena_bytes for p, _, _ in made), default=sram + 1) > sram:
        found = search(graph, lean, sram=sram, max_extra=max_extra, tight=True, stream=stream)
        if not any(c.arena <= sram for c in found):
            found = search(graph, lean, max_extra=max_extra, tight=True, stream=stream)
        found += cheaper_fits(graph, lean, found, sram)
        staged = [c.plan for c in found if c.stages]
        made += [(p, lean, "all") for p in staged]
        for p in frontier(staged, cost=lambda p: p.extra_macs):  # each also with the fastest variants where the memory does not peak
            q, facts = _lean_at_peak(graph, caps, lean, p.arena_bytes, "all", like=p)
            if q is not None:
                made.append((q, facts, "all"))
    return made


def _chosen(graph: Graph, plan: Plan, op: int, opts: tuple[OpFacts, ...]) -> OpFacts:
    """The fastest variant that can do what the plan asks of operator ``op`` (in place through a ring: one
    whose ring fits the ring the plan made; one that holds its buffers in scratch there: one they fit)."""
    ip = plan.inplace.get(op)
    if ip is not None:
        pos = graph.ops[op].inputs.index(ip.tensor)
        kind = "ring" if ip.ring or ip.direct else "elementwise"
        room = plan.buffers[plan.scratch[op]].size - ip.ring * ip.unit_bytes if op in plan.scratch else 0
        ok = [o for o in opts if pos in o.inplace_inputs and o.inplace_kind == kind
              and (o.ring_direct or not ip.direct) and (not ip.ring or ip.lag + 1 + o.ring_extra <= ip.ring)
              and o.form_scratch_bytes <= room]  # its buffers in scratch: the plan made room for them
    elif (st := plan.stage_of(op)) is not None:
        ok = [o for o in opts if o.patchable and (not o.max_window_w or st.widest(op) <= o.max_window_w)]
    else:
        ok = list(opts)
    if not ok:
        raise AssertionError(f"plan asks op {op} for a form none of its variants declares; this is a bug")
    return ok[0]


def with_choice(graph: Graph, plan: Plan, options: Options) -> Plan:
    plan.choice = {op: _chosen(graph, plan, op, opts) for op, opts in options.items()}
    plan.slower_ops = sorted(op for op, f in plan.choice.items() if f.variant != options[op][0].variant)
    return plan


def candidates(graph: Graph, options: Options, *, sram: int | None = None,
               max_extra: float | None = None, stream: bool = False) -> list[Plan]:
    """The candidate plans (see the module docstring), each with its variants chosen; the first is the
    fastest plan (nothing in place), the second layer by layer in place where the fastest variants can
    (without a ring where that needs no more memory), the third so with rings only.  With ``stream`` (the
    model's input streamed row by row, see ``tinyml.schedule.patch.stream_stages``) only plans with a
    streamed stage: none layer by layer."""
    fast, caps, lean = fastest_facts(options), capabilities(options), lean_capabilities(options)
    made: list[tuple[Plan, dict[int, OpFacts], str]] = []
    if not stream:
        made += [(plan_memory(graph, fast, inplace=False), fast, "none")]
        made += [(plan_memory(graph, fast, direct=d), fast, d) for d in DIRECT]
        if caps != fast:  # a slower variant can run some operator in place or patch by patch
            made += [(plan_memory(graph, caps, direct=d), caps, d) for d in DIRECT]
    if stream or sram is None or min(p.arena_bytes for p, _, _ in made) > sram:
        found = search(graph, caps, sram=sram, max_extra=max_extra, tight=sram is not None, stream=stream)
        if sram is not None and not any(c.arena <= sram for c in found):
            found = search(graph, caps, max_extra=max_extra, tight=True, stream=stream)
        if sram is not None:
            found += cheaper_fits(graph, caps, found, sram)
        made += [(c.plan, caps, "all") for c in found if c.stages]
        narrow = capabilities(options, narrow=True)
        if narrow != caps:  # stages over the fast kernels of wide layers (their narrow windows), not in place
            found = search(graph, narrow, sram=sram, max_extra=max_extra, tight=sram is not None, stream=stream)
            made += [(c.plan, narrow, "all") for c in found if c.stages]
    if lean != caps and sram is not None and min(p.arena_bytes for p, _, _ in made) > sram:
        made += _lean_plans(graph, caps, lean, sram, max_extra, stream)
    plans = [p for p, _, _ in made]
    for p in plans:
        with_choice(graph, p, options)
    # Running in place without a ring shifts the output below its input, which can leave gaps in the arena:
    # each patch plan on the cost frontier also so only where that shifts nothing, and with rings only.
    # Rings cost copies: each plan on the frontier also without the rings its arena does not need.
    on_frontier = {id(p) for p in frontier(plans)}
    for p, facts, d in list(made):
        if id(p) in on_frontier and p.stages and any(ip.direct for ip in p.inplace.values()):
            for d in DIRECT[1:]:
                q = plan_memory(graph, facts, stages=p.stages, orders=[p.order], direct=d)
                made.append((q, facts, d))
                plans.append(with_choice(graph, q, options))
    on_frontier = {id(p) for p in frontier(plans)}
    for p, facts, d in made:
        if id(p) not in on_frontier:
            continue
        spared = spare_rings(graph, p, facts, d)
        if spared is not None:
            plans.append(with_choice(graph, spared[0], options))
        # then the in-place forms without a ring that cost more than the whole layer, where not needed
        for q, out in ([spared, (p, frozenset())] if spared is not None else [(p, frozenset())]):
            more = spare_rings(graph, q, facts, d, without=out, costly_direct=True)
            if more is not None:
                plans.append(with_choice(graph, more[0], options))
    return plans


RING_DROP_FILL = (1.0, 0.9, 0.75)  # spare_rings: how full a step may get with a ring's output apart
SPARE_ONE_BY_ONE = 24  # spare_rings: the most operators it then tries one at a time


def spare_rings(graph: Graph, plan: Plan, facts: dict[int, OpFacts], direct: str,
                without: frozenset[int] = frozenset(), costly_direct: bool = False) -> tuple[Plan, frozenset[int]] | None:
    """``plan`` (made ``without`` in place for those operators) without the rings (in place through a
    ring: every output byte copied once more) that its arena does not need: the ring operators whose step
    stays within a fill of the arena with the output apart from the input are planned again without
    theirs (fullest fill first; ``direct`` as ``plan`` was made), then the others one at a time, costliest
    first (at most SPARE_ONE_BY_ONE), each kept out of place when the arena does not grow.  With
    ``costly_direct``, instead the operators in place without a ring whose form costs more than the whole
    layer (``OpFacts.direct_cost``, e.g. the narrow 1x1 convolution's tiles), their input apart from the
    output.  Returns the new plan and every operator it keeps out of place, or None when none can go without
    the arena growing."""
    if costly_direct:
        ops = [op for op, ip in plan.inplace.items()
               if ip.direct and op in plan.choice and plan.choice[op].direct_cost > 0]
    else:
        ops = [op for op, ip in plan.inplace.items() if ip.ring]
    if not ops:
        return None
    live = plan.live_bytes()
    step = {o: s for s, o in enumerate(plan.order)}
    apart = {op: live[step[op]] + graph.tensors[  # the op's step with its output apart from its input
        plan.inplace[op].tensor if costly_direct else graph.ops[op].outputs[0]].nbytes for op in ops}
    tried: set[frozenset[int]] = set()
    best: tuple[Plan, frozenset[int]] | None = None
    for fill in RING_DROP_FILL:
        drop = frozenset(op for op in ops if apart[op] <= fill * plan.arena_bytes)
        if not drop or drop in tried:
            continue
        tried.add(drop)
        q = plan_memory(graph, facts, stages=plan.stages, orders=[plan.order],
                        without=drop | without, direct=direct)
        if q.arena_bytes <= plan.arena_bytes:
            best = (q, drop | without)
            break
    # then one operator at a time, the costliest ring (or form) first: a drop set as a whole can move the
    # buffers so that the arena grows where most of its operators alone would not
    best_plan, best_out = best if best is not None else (plan, without)
    fits = {op for op in ops if apart[op] <= plan.arena_bytes}
    saved = (lambda op: plan.choice[op].direct_cost) if costly_direct else (lambda op: plan.choice[op].ring_cost)
    for op in sorted(fits - best_out, key=lambda op: (-saved(op), op))[:SPARE_ONE_BY_ONE]:
        out = best_out | {op}
        q = plan_memory(graph, facts, stages=plan.stages, orders=[plan.order], without=out, direct=direct)
        if q.arena_bytes <= plan.arena_bytes:
            best_plan, best_out = q, out
    return (best_plan, best_out) if best_out != without else None


def frontier(plans: list[Plan], cost: Callable[[Plan], float] = lambda p: p.cost) -> list[Plan]:
    """The plans no other plan beats in both arena and ``cost`` (estimated instructions), smallest arena
    first."""
    out: list[Plan] = []
    for p in sorted(plans, key=lambda p: (p.arena_bytes, cost(p))):
        if not out or cost(p) < cost(out[-1]):
            out.append(p)
    return out


def pick(graph: Graph, plans: list[Plan], sram: int | None = None, *, tolerance: float = TOLERANCE) -> Plan:
    """The plan the objective takes among ``plans`` (see the module docstring), with ``fastest_cost`` set
    to the fastest candidate's estimated cost.  Raises FitError naming the smallest arena found when
    nothing fits ``sram``."""
    fastest = min(p.cost for p in plans)
    if sram is None:
        ok = [p for p in plans if p.cost <= fastest * (1 + tolerance)]
        best = min(ok, key=lambda p: (p.arena_bytes, p.cost))
    else:
        fit = [p for p in plans if p.arena_bytes <= sram]
        if not fit:
            small = min(plans, key=lambda p: (p.arena_bytes, p.cost))
            raise FitError(
                f"model '{graph.name}' cannot run in {sram} bytes of arena: the smallest plan found needs "
                f"{small.arena_bytes} bytes ({describe(small)}); raise --sram to at least {small.arena_bytes}")
        best = min(fit, key=lambda p: (p.cost, p.arena_bytes))
    best.fastest_cost = fastest
    return best


def choose(graph: Graph, options: Options, sram: int | None = None, *, tolerance: float = TOLERANCE,
           stream: bool = False) -> Plan:
    """The plan for ``options``: :func:`pick` over :func:`candidates`."""
    return pick(graph, candidates(graph, options, sram=sram, stream=stream), sram, tolerance=tolerance)


def describe(plan: Plan) -> str:
    """"layer by layer" or its patch stages, in words."""
    return describe_stages(plan.stages)
