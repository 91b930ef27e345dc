"""Operator lowerings: every module in this package registers its own with
``@lowering`` and declares the portable kernel variants it produces
(``VARIANTS``); importing the package imports them all (``MODULES``)."""

import importlib
import pkgutil

MODULES = tuple(importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__))
