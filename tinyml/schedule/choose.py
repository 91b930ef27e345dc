"""Which kernel variant each operator runs: the plan is made from the variants' declared facts.

Lowering declares, per operator, every kernel variant that can compute it
on the board (``tinyml.codegen.variants``), fastest first, as plain
:class:`~tinyml.schedule.plan.OpFacts`.  The objective:

* no budget: the fastest variant of every operator, and the smallest arena
  its forms allow (in place where the fastest variant itself runs in place);
* with an arena budget (``--sram``): memory first; an operator may use the
  in-place (ring) or patch-window form of a slower variant where the plan
  needs it, and keeps its fastest variant everywhere else.

The plan records the chosen variant of every operator (``Plan.choice``).
"""

from __future__ import annotations

from dataclasses import replace

from tinyml.graph.ir import Graph
from tinyml.schedule.patch import plan_for_budget
from tinyml.schedule.plan import OpFacts, Plan

Options = dict[int, tuple[OpFacts, ...]]  # op index -> its variants, fastest first


def fastest_facts(options: Options) -> dict[int, OpFacts]:
    return {op: opts[0] for op, opts in options.items()}


def capabilities(options: Options) -> dict[int, OpFacts]:
    """Per operator, the facts of the fastest variant that runs in place or patch by patch (the fastest
    variant where none does), with scratch enough for the fastest variant too (which the operator runs
    when the plan does neither)."""
    out = {}
    for op, opts in options.items():
        f = next((o for o in opts if o.inplace_inputs or o.patchable), opts[0])
        out[op] = replace(f, scratch_bytes=max(f.scratch_bytes, opts[0].scratch_bytes))
    return out


def _chosen(graph: Graph, plan: Plan, op: int, opts: tuple[OpFacts, ...]) -> OpFacts:
    """The fastest variant that can do what the plan asks of operator ``op``."""
    ip = plan.inplace.get(op)
    if ip is not None:
        pos = graph.ops[op].inputs.index(ip.tensor)
        kind = "ring" if ip.ring else "elementwise"
        ok = [o for o in opts if pos in o.inplace_inputs and o.inplace_kind == kind]
    elif plan.stage_of(op) is not None:
        ok = [o for o in opts if o.patchable]
    else:
        ok = list(opts)
    if not ok:
        raise AssertionError(f"plan asks op {op} for a form none of its variants declares; this is a bug")
    return ok[0]


def choose(graph: Graph, options: Options, sram: int | None = None) -> Plan:
    """The plan for ``options`` (see the module docstring), with the variant of every operator chosen.

    Raises FitError (from the patch search) when nothing fits ``sram``.
    """
    facts = fastest_facts(options) if sram is None else capabilities(options)
    plan = plan_for_budget(graph, facts, sram)
    plan.choice = {op: _chosen(graph, plan, op, opts) for op, opts in options.items()}
    return plan
