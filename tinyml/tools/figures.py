"""Writing plots without losing anyone's files.

Every plot tinyml writes carries a mark in its metadata (PNG text chunk, PDF Info dictionary, SVG metadata). A
plot file that already exists is replaced only when it carries that mark, that is when tinyml wrote it (so that
running ``tinyml plan`` or ``tinyml profile`` again refreshes its plots), or with ``--force``.  The figure is
written to a temporary file beside the target and renamed over it, so a failed write leaves nothing half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from tinyml.errors import InputError

MARK = "tinyml plot"  # the metadata value that says tinyml wrote the file
_MAX_SCAN = 64 << 20  # a plot larger than this is not one of ours


def written_by_tinyml(path: Path) -> bool:
    """Whether ``path`` is a plot tinyml wrote (it carries MARK)."""
    try:
        if path.stat().st_size > _MAX_SCAN:
            return False
        return MARK.encode() in path.read_bytes()
    except OSError:
        return False


def check_plot_path(path: str | os.PathLike[str], *, force: bool = False, option: str = "--plot") -> Path:
    """Refuse a plot path whose file would be lost: an existing file tinyml did not write (unless ``force``) or a
    directory. Called before any long work, so that a refusal is immediate."""
    out = Path(path)
    if out.is_dir():
        raise InputError(f"{out}: is a directory; give a plot file name with {option}")
    folder = next((p for p in out.absolute().parents if p.exists()), None)
    if folder is not None and not folder.is_dir():  # the folder it would be written in cannot be made
        raise InputError(f"{out}: {folder} is a file, not a directory; give another plot file with {option}")
    if out.exists() and not force and not written_by_tinyml(out):
        raise InputError(f"{out}: exists and was not written by tinyml; give another file with {option}, "
                         "or --force to replace it")
    return out


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 100, force: bool = False,
                option: str = "--plot") -> Path:
    """Write a matplotlib figure (and close it) with tinyml's mark, all or nothing; an unwritable path or a file
    tinyml must not replace is the user's one-line error."""
    import matplotlib.pyplot as plt

    try:
        out = check_plot_path(path, force=force, option=option)
        suffix = out.suffix.lower()
        meta = {"Software": MARK} if suffix == ".png" else {"Creator": MARK}
        fig.tight_layout()
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=suffix, dir=out.parent)
        except OSError as e:
            raise InputError(f"{out}: cannot write the plot ({e.strerror}); choose another {option} path") from None
        try:
            with os.fdopen(fd, "wb") as f:
                fig.savefig(f, dpi=dpi, format=suffix.lstrip(".") or "png", metadata=meta)
            os.replace(tmp, out)
        except OSError as e:
            raise InputError(f"{out}: cannot write the plot ({e.strerror}); choose another {option} path") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    finally:
        plt.close(fig)
    return out
