"""tinyml: compile int8 TensorFlow Lite CNNs into bit-exact C for Cortex-M."""

from pathlib import Path as _Path

__version__ = "0.1.0"

# In a source checkout the lowering package lives in the top-level folder
# ``codegen/``; installed, it is the subpackage ``tinyml.codegen``.  Let the
# checkout resolve ``tinyml.codegen`` the same way.
_root = _Path(__file__).resolve().parent.parent
if (_root / "pyproject.toml").is_file() and (_root / "codegen" / "lower.py").is_file():
    __path__.append(str(_root))  # type: ignore[name-defined]  # noqa: F821
