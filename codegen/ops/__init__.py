"""Operator lowerings: every module in this package registers its own with
``@lowering`` and declares the portable kernel variants it produces
(``VARIANTS``); importing the package imports them all (``MODULES``)."""

import importlib
import pkgutil

from tinyml.codegen.lower import LowerContext, LowerFn, Lowered
from tinyml.errors import UnsupportedError
from tinyml.graph.ir import Op

MODULES = tuple(importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__))

# operator kind -> its lowering, from the functions the modules mark with @lowering
LOWERINGS: dict[str, LowerFn] = {kind: fn for m in MODULES for fn in vars(m).values()
                                 for kind in getattr(fn, "lowers", ())}


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def lower_op(ctx: LowerContext, op: Op) -> Lowered:
    """The portable kernel call (or alias) of ``op``; UnsupportedError names an operator we cannot lower."""
    fn = LOWERINGS.get(op.kind)
    if fn is None:
        raise UnsupportedError(
            f"operator {op.index} is {op.kind}, which is not supported; supported operators: "
            f"{', '.join(supported_ops())}"
        )
    return fn(ctx, op)
