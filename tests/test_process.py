"""Child processes never outlive tinyml (tinyml/targets/process.py): a run that times out, is interrupted
(Ctrl-C) or whose Python process is killed outright (SIGKILL: an xdist worker's death, a CI timeout) leaves
no child and no grandchild running, QEMU included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tinyml.targets.process import run_process, spawn_process

REPO = Path(__file__).resolve().parent.parent
# A shell that starts a grandchild (in its process group), says the grandchild's pid, and waits.
FAMILY = ["sh", "-c", "sleep 300 & echo $!; wait"]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids a failing test would leave behind: killed at the end either way."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_timeout_kills_the_group(reaper: list[int]) -> None:
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as e:
        run_process(FAMILY, capture_output=True, text=True, timeout=0.5)
    grandchild = int(str(e.value.output).split()[0])
    reaper.append(grandchild)
    assert gone(grandchild) and time.monotonic() - start < 5


def test_ctrl_c_kills_the_group(reaper: list[int], tmp_path: Path) -> None:
    """A KeyboardInterrupt while the child runs (the child, in its own session, does not see the terminal's
    Ctrl-C itself) kills the child's group and goes on."""
    pidfile = tmp_path / "grandchild.pid"

    def interrupt(_sig: int, _frame: object) -> None:
        if not pidfile.is_file() or not pidfile.read_text().strip():
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # not yet started: ask again
            return
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_process(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], timeout=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    grandchild = int(pidfile.read_text())
    reaper.append(grandchild)
    assert gone(grandchild)


_KILLED_PARENT = """
import os, signal, sys
from tinyml.targets.process import spawn_process
proc = spawn_process(["sleep", "300"])
print(proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no finally, no atexit: as an xdist worker killed
"""


def orphan_of(script: str, reaper: list[int]) -> int:
    """Runs ``script`` (which prints its child's pid and SIGKILLs itself) in a Python process; the child's pid."""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == -signal.SIGKILL, r.stderr
    child = int(r.stdout.split()[0])
    reaper.append(child)
    return child


def test_a_killed_parent_takes_its_child_along(reaper: list[int]) -> None:
    assert gone(orphan_of(_KILLED_PARENT, reaper))


def test_spawn_gives_the_child_a_session_of_its_own(reaper: list[int]) -> None:
    proc = spawn_process(["sleep", "300"])
    reaper.append(proc.pid)
    try:
        assert os.getsid(proc.pid) == proc.pid and os.getpgid(proc.pid) == proc.pid
    finally:
        proc.kill()
        proc.wait()


_KILLED_QEMU_PARENT = """
import os, signal
from tinyml.targets.qemu import qemu_uart
with qemu_uart("mps2-an386", None, extra=["-S"], wait_for_client=False) as session:  # -S: CPU held, no lockup
    print(session.process.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.qemu
def test_a_killed_parent_takes_qemu_along(reaper: list[int]) -> None:
    """The orphaned qemu-system-arm of a killed test run: it now dies with the run."""
    assert gone(orphan_of(_KILLED_QEMU_PARENT, reaper))
