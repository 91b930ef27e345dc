"""tinyml: compile int8 TensorFlow Lite CNNs into bit-exact C for Cortex-M.

The Python API (``tinyml.compile``, ``tinyml.inspect``, ``tinyml.plan``, ``tinyml.profile``; see
tinyml.tools.api) is loaded on first use, so that ``import tinyml`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["CompiledModel", "__version__", "compile", "inspect", "plan", "profile"]
_API = frozenset(("CompiledModel", "compile", "inspect", "plan", "profile"))


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("tinyml.tools.api"), name)
    raise AttributeError(f"module 'tinyml' has no attribute {name!r}")
