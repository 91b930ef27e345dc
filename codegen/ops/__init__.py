"""Operator lowerings: every module in this package registers its own with
``@lowering`` and declares the portable kernel variants it produces
(``VARIANTS``); importing the package imports them all (``MODULES``)."""

import importlib
import pkgutil

from tinyml.codegen.lower import LowerContext, LowerFn, Lowered
from tinyml.errors import UnsupportedError
from tinyml.graph.ir import Op
from tinyml.graph.validate import float_operator, int16_operator

MODULES = tuple(importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__))

# operator kind -> its lowering, from the functions the modules mark with @lowering: the int8 operators
# (and the type-generic RESHAPE and SQUEEZE, QUANTIZE and DEQUANTIZE), and the float32 ones
LOWERINGS: dict[str, LowerFn] = {kind: fn for m in MODULES for fn in vars(m).values()
                                 for kind in getattr(fn, "lowers", ()) if "int8" in fn.lowers_dtypes}
FLOAT_LOWERINGS: dict[str, LowerFn] = {kind: fn for m in MODULES for fn in vars(m).values()
                                       for kind in getattr(fn, "lowers", ()) if "float32" in fn.lowers_dtypes}
# the operators on 16-bit activations (validation's INT16_RULES; RESHAPE and SQUEEZE are type-generic)
INT16_LOWERINGS: dict[str, LowerFn] = {kind: fn for m in MODULES for fn in vars(m).values()
                                       for kind in getattr(fn, "lowers", ()) if "int16" in fn.lowers_dtypes}


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


def supported_float_ops() -> list[str]:
    """The float32 operators (RESHAPE and SQUEEZE are type-generic: their int8 lowering moves any type)."""
    return sorted(set(FLOAT_LOWERINGS) | {"RESHAPE", "SQUEEZE"})


def lower_op(ctx: LowerContext, op: Op) -> Lowered:
    """The portable kernel call (or alias) of ``op``; UnsupportedError names an operator we cannot lower."""
    fn = LOWERINGS.get(op.kind)
    if float_operator(ctx.graph, op) and op.kind in FLOAT_LOWERINGS:
        fn = FLOAT_LOWERINGS[op.kind]
    elif int16_operator(ctx.graph, op) and op.kind in INT16_LOWERINGS:
        fn = INT16_LOWERINGS[op.kind]
    if fn is None:
        raise UnsupportedError(
            f"operator {op.index} is {op.kind}, which is not supported; supported operators: "
            f"{', '.join(supported_ops())}"
        )
    return fn(ctx, op)
