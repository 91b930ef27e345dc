"""All kernel variants, gathered from where they are declared (see ``declare.py``), and the choice
among them for one call: :func:`options` lists the variants that can compute a portable call on a
board, fastest first, with the facts the memory planner (``tinyml.schedule``) chooses among;
``specialize.py`` then builds the chosen variant's call."""

from __future__ import annotations

from tinyml.codegen import families, families_s16, ops
from tinyml.codegen.declare import CYCLES_PER_INSTRUCTION, FAMILY_RANK, Variant
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.schedule.plan import Plan

VARIANTS: tuple[Variant, ...] = tuple(sorted(
    [v for m in ops.MODULES for v in getattr(m, "VARIANTS", ())] + list(families.VARIANTS) + list(families_s16.VARIANTS),
    key=lambda v: (v.implements, FAMILY_RANK[v.family])))

_BY_TEMPLATE = {v.template: v for v in VARIANTS}


def variant(template: str) -> Variant:
    return _BY_TEMPLATE[template]


def options(ctx: LowerContext, call: KernelCall) -> list[Variant]:
    """The variants that compute ``call`` on the board of ``ctx``, fastest first (the portable one last)."""
    found = [v for v in VARIANTS if v.applies(ctx, call)]
    if not found:
        raise ValueError(f"no kernel variant declared for {call.kernel} (op {call.op_index}); this is a bug")
    return found


def fastest(ctx: LowerContext, call: KernelCall) -> Variant:
    return options(ctx, call)[0]


def estimate_cycles(plan: Plan, cpu: str) -> int | None:
    """Estimated cycles of one inference of ``plan`` on core ``cpu`` (zero-wait-state): each chosen kernel's
    estimated instructions (``Plan.op_cost``) times its family's CYCLES_PER_INSTRUCTION on that core; None
    when a family used has no factor for the core."""
    total = 0.0
    for op, f in plan.choice.items():
        if f.alias:
            continue  # no kernel runs
        cpi = CYCLES_PER_INSTRUCTION.get((cpu, variant(f.variant).family))
        if cpi is None:
            return None
        total += plan.op_cost(op) * cpi
    return int(round(total))
