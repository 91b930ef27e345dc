"""Bounds on untrusted input, each defined once: checked where the input
enters (the command line, tinyml.graph's importer, tinyml run's .npy
reader, the board loader) so that nothing downstream reads, allocates or
loops without a limit."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from tinyml.errors import InputError, TinymlError

MAX_MODEL_BYTES = 256 * 1024 * 1024  # a .tflite file
MAX_INPUT_BYTES = 1024 * 1024 * 1024  # a .npy/.npz of inputs for tinyml run
MAX_BOARD_FILE_BYTES = 1024 * 1024  # a board .toml
MAX_SAMPLES = 100_000  # random inputs of verify/validate/demo, samples of tinyml run
SEED_MAX = 2**32 - 1  # --seed
MAX_NAME_CHARS = 64  # --name (the host link reports at most 64 characters)

_C_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


def check_model_name(name: str) -> str:
    """A model's C name: a lowercase C identifier every generated symbol starts with."""
    if not _C_NAME_RE.match(name) or len(name) > MAX_NAME_CHARS:
        suggestion = re.sub(r"[^a-z0-9_]", "_", name.lower())[:MAX_NAME_CHARS] or "model"
        if suggestion[0].isdigit():
            suggestion = "m_" + suggestion
        raise InputError(f"model name {name!r} is not a lowercase C identifier; use lowercase letters, digits "
                         f"and '_', starting with a letter or '_', at most {MAX_NAME_CHARS} characters "
                         f"(e.g. {suggestion[:MAX_NAME_CHARS]!r})")
    return name


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise InputError(f"seed {seed!r} is out of range; give a seed from 0 to {SEED_MAX}")
    return seed


def check_samples(samples: int) -> int:
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise InputError(f"--samples {samples!r} is out of range; give 1 to {MAX_SAMPLES:,} samples")
    return samples


def stat_regular_file(p: Path, limit: int, *, give: str, too_big: str,
                      error: type[TinymlError] = InputError) -> os.stat_result:
    """``p`` checked before anything is read: it exists, is a regular file (never a directory, device,
    FIFO or socket) and has at most ``limit`` bytes.  ``give`` says what to give instead ("the path of a
    .tflite model"); ``too_big`` what to do about a file over the limit."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{p}: no such file; give {give}") from None
    except OSError as e:
        raise error(f"{p}: cannot read the file ({e.strerror}); check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p}: is a directory; give {give}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: is not a regular file (a device, FIFO or socket); give {give}")
    if st.st_size > limit:
        raise error(f"{p}: is {st.st_size:,} bytes, more than the {limit // 2**20} MiB {too_big}")
    return st
