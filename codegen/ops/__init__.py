"""Operator lowerings: every module in this package registers its own with
``@lowering``; importing the package imports them all."""

import importlib
import pkgutil

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")
