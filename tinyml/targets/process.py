"""Child processes that never outlive tinyml: make, the compilers, QEMU, a host firmware, Renode, the TFLM
probes.

Each child starts in a session (and so a process group) of its own, so that one signal reaches it and
everything it started (make's compilers).  The group is killed when the call times out or raises (a
KeyboardInterrupt too); on Linux the child is also told to die with
tinyml (PR_SET_PDEATHSIG), which covers a parent killed outright (SIGKILL, an xdist worker's death,
SIGTERM from a test timeout), where no Python code runs.  A child in its own session does not see the
terminal's Ctrl-C: tinyml gets it and kills the group.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
from typing import Any, Callable, Iterator, Sequence

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _death_signal_setter() -> Callable[[], None] | None:
    """A preexec_fn that asks Linux to SIGKILL the child when its parent dies (None elsewhere). The libc
    function is looked up here, in the parent, so that the forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def spawn_process(command: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """subprocess.Popen in a new session whose child dies with tinyml (stdin: /dev/null unless given)."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(list(command), start_new_session=True, preexec_fn=_death_signal_setter(), **kwargs)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the child's process group (the child and what it started) and reap the child.  Only while the
    child is not reaped: until then its pid, the group's id, cannot belong to another process."""
    if proc.returncode is None:  # not reaped yet (running, or a zombie): the group id is still the child's
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the group is gone (PermissionError: macOS, for a group of zombies)
    proc.wait()


@contextlib.contextmanager
def process_group(command: Sequence[str], **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """``spawn_process`` for the duration of a with block: the group is killed when the block ends, however it
    ends."""
    proc = spawn_process(command, **kwargs)
    try:
        yield proc
    finally:
        kill_group(proc)


def run_process(command: Sequence[str], *, timeout: float | None = None, input: Any = None,
                capture_output: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """subprocess.run through ``spawn_process``: on timeout the group is killed and subprocess.TimeoutExpired raised
    (with what the child wrote), on any other exception the group is killed and the exception goes on."""
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with process_group(command, **kwargs) as proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout or 0.0, output=out, stderr=err) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
