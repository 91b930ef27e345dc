"""Where tinyml's packaged data lives (boards, templates, firmware, codegen),
and where it caches what it builds (``cache_root``).

Installed, the top-level folders ``boards/``, ``templates/``, ``firmware/``
and ``codegen/`` are the data packages ``tinyml.data.boards`` etc.; in a source
checkout they sit next to the ``tinyml/`` folder.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from pathlib import Path

from tinyml.errors import TinymlError

RESOURCE_NAMES = ("boards", "templates", "firmware")


def resource_dir(name: str) -> Path:
    """Return the directory holding packaged data ``name`` ("boards", ...)."""
    if name not in RESOURCE_NAMES:
        raise ValueError(f"unknown resource {name!r}; expected one of {RESOURCE_NAMES}")
    package = f"tinyml.data.{name}"
    installed = _installed_dir(package)
    if installed is not None:
        return installed
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise TinymlError(
        f"tinyml data folder {name!r} not found (looked for package {package} and "
        f"{checkout}); reinstall tinyml"
    )


def _installed_dir(package: str) -> Path | None:
    """The folder of ``package`` if it is an installed data package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    # A plain module is not a data folder.
    if spec is None or spec.submodule_search_locations is None:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location)
        if path.is_dir():
            return path
    root = importlib.resources.files(package)
    return root if isinstance(root, Path) and root.is_dir() else None


def cache_root() -> Path:
    """The folder tinyml caches built models, datasets and tools in: ``$TINYML_CACHE``, else tinyml's
    folder in the user cache directory of the platform (``~/.cache/tinyml`` on Linux, see platformdirs)."""
    base = os.environ.get("TINYML_CACHE")
    if base:
        return Path(base)
    import platformdirs

    return Path(platformdirs.user_cache_dir("tinyml", appauthor=False))


PACKAGE = "tinyml-toolchain"
# The module each optional extra of pyproject.toml provides, by which tinyml tells whether it is installed.
EXTRA_MODULES = {"reference": "tflite_micro", "train": "tensorflow"}
EXTRA_WHAT = {"reference": "TFLM, the reference interpreter", "train": "TensorFlow"}


class MissingExtraError(TinymlError):
    """A command needs an optional extra that is not installed."""


def missing_extras(*extras: str) -> list[str]:
    """Those of ``extras`` whose module cannot be found (nothing is imported)."""
    return [e for e in extras if importlib.util.find_spec(EXTRA_MODULES[e]) is None]


def require_extras(what: str, *extras: str) -> None:
    """Raise MissingExtraError, naming the ``pip install`` line, if any of ``extras`` is missing; ``what``
    is what needs them ("tinyml verify")."""
    missing = missing_extras(*extras)
    if missing:
        names = " and ".join(f"{EXTRA_WHAT[e]} (the '{e}' extra)" for e in missing)
        raise MissingExtraError(f"{what} needs {names}; install it with: pip install '{PACKAGE}[{','.join(missing)}]'")
