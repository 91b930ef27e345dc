"""Where tinyml's packaged data lives (boards, templates, firmware, codegen),
and where it caches what it builds (``cache_root``).

Installed, the top-level folders ``boards/``, ``templates/``, ``firmware/``
and ``codegen/`` are the data packages ``tinyml.data.boards`` etc.; in a source
checkout they sit next to the ``tinyml/`` folder.
"""

from __future__ import annotations

import glob
import importlib.resources
import importlib.util
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Callable

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


def _scratch_prefix(path: Path) -> str:
    """The name cache_build's scratch folders for ``path`` start with: the key, this host and this process."""
    return f".{path.name}.{socket.gethostname()}.{os.getpid()}."


def _drop_orphans(path: Path) -> None:
    """Remove the scratch folders of ``path`` that a process of this host left when it was killed (SIGKILL,
    power loss) before its cleanup: those whose process no longer runs.  Another host's are left alone."""
    mine = f".{path.name}.{socket.gethostname()}."
    for entry in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        rest = entry.name[len(mine):] if entry.name.startswith(mine) else ""
        pid = rest.split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass  # alive (another user's process): not ours to remove


def cache_build(path: Path, build: Callable[[Path], object]) -> Path:
    """``path`` (a file or a folder in the cache), made by ``build(tmp)`` unless it exists.

    ``build`` writes its result at ``tmp``, a fresh name in a scratch folder beside ``path`` (so on the same
    filesystem), which then takes ``path``'s place in one rename: no one sees half a result.  When two processes
    build the same key at once, the first rename wins and the other drops its own result and returns the
    winner's.  A build that fails (or is interrupted) leaves nothing behind; the scratch of a process killed
    outright (SIGKILL) is removed by the next build of the same key on this host."""
    if path.exists():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_orphans(path)
        scratch = Path(tempfile.mkdtemp(prefix=_scratch_prefix(path), suffix=".tmp", dir=path.parent))
    except OSError as e:
        raise TinymlError(f"{path.parent}: cannot write tinyml's cache ({e.strerror}); make it writable or set "
                          "TINYML_CACHE to a writable folder") from None
    try:
        tmp = scratch / path.name
        build(tmp)
        if not tmp.exists():
            raise TinymlError(f"internal error (a bug): the cache build of {path} wrote nothing")
        try:
            if tmp.is_dir():
                os.rename(tmp, path)  # refused onto a folder another process filled first
            else:
                os.link(tmp, path)  # refused onto a file another process placed first
        except FileExistsError:
            pass  # the other process won: its result is as good
        except OSError:
            if tmp.is_dir() and path.exists():
                pass  # ENOTEMPTY: the same, for a folder
            elif not tmp.is_dir():
                os.replace(tmp, path)  # no hard links on this filesystem: an atomic replace of equal content
            else:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path


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
