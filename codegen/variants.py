"""All kernel variants, gathered from where they are declared (see ``declare.py``), and the choice
among them for one call: :func:`options` lists the variants that can compute a portable call on a
board, fastest first, with the facts the memory planner (``tinyml.schedule``) chooses among;
``specialize.py`` then builds the chosen variant's call."""

from __future__ import annotations

from tinyml.codegen import families, ops
from tinyml.codegen.declare import FAMILY_RANK, Variant
from tinyml.codegen.lower import KernelCall, LowerContext

VARIANTS: tuple[Variant, ...] = tuple(sorted(
    [v for m in ops.MODULES for v in getattr(m, "VARIANTS", ())] + list(families.VARIANTS),
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
