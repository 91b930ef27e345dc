"""The user cache (tinyml.resources.cache_build): concurrent builds of one key (two `tinyml profile` runs
building the QEMU plugin, two `bench` runs quantizing one zoo network) never leave half a result; the first
to finish wins and the other uses its result; a failed or interrupted build leaves nothing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest

from tinyml.errors import TinymlError
from tinyml.resources import cache_build

REPO = Path(__file__).resolve().parent.parent


def _race(path: Path, write: Callable[[Path, str], object]) -> list[Path]:
    """Two threads build ``path`` at once: both have written their result before either places it."""
    both_built = threading.Barrier(2, timeout=30)
    got: list[Path] = []
    errors: list[BaseException] = []

    def build(tmp: Path, who: str) -> None:
        write(tmp, who)
        both_built.wait()

    def worker(who: str) -> None:
        try:
            got.append(cache_build(path, lambda tmp: build(tmp, who)))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(who,)) for who in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return got


def test_two_builds_of_one_file(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "model-123.tflite"
    got = _race(path, lambda tmp, who: tmp.write_text(who * 1000))
    assert got == [path, path]
    assert path.read_text() in ("a" * 1000, "b" * 1000)  # one whole result, the winner's
    assert os.listdir(path.parent) == [path.name]  # no scratch left


def test_two_builds_of_one_folder(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "synth-abc"

    def write(tmp: Path, who: str) -> None:
        tmp.mkdir()
        for i in range(20):
            (tmp / f"{i}.txt").write_text(who)

    got = _race(path, write)
    assert got == [path, path]
    owners = {p.read_text() for p in path.iterdir()}
    assert len(owners) == 1 and len(list(path.iterdir())) == 20  # one builder's whole folder
    assert os.listdir(path.parent) == [path.name]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_build_leaves_nothing(tmp_path: Path, error: type[BaseException]) -> None:
    path = tmp_path / "cache" / "x.so"

    def build(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise error

    with pytest.raises(error):
        cache_build(path, build)
    assert os.listdir(path.parent) == []


def test_scratch_of_a_killed_build_is_removed_by_the_next(tmp_path: Path) -> None:
    """A build killed outright (SIGKILL: no cleanup runs) leaves its scratch folder; the next build of the
    same key on this host removes it, and leaves a running process's and another host's alone."""
    path = tmp_path / "cache" / "m.tflite"
    host = socket.gethostname()
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.kill()
    killed.wait()
    orphan = path.parent / f".{path.name}.{host}.{killed.pid}.abc.tmp"
    running = path.parent / f".{path.name}.{host}.{os.getppid()}.def.tmp"
    elsewhere = path.parent / f".{path.name}.other-host.{killed.pid}.ghi.tmp"
    other_key = path.parent / f".n.tflite.{host}.{killed.pid}.jkl.tmp"
    for d in (orphan, running, elsewhere, other_key):
        (d / path.name).mkdir(parents=True)
    cache_build(path, lambda tmp: tmp.write_bytes(b"model"))
    assert path.read_bytes() == b"model"
    assert sorted(os.listdir(path.parent)) == sorted([path.name, running.name, elsewhere.name, other_key.name])


def test_unwritable_cache_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(TinymlError) as e:
        cache_build(blocker / "x" / "y.tflite", lambda tmp: tmp.write_bytes(b""))
    assert "cannot write tinyml's cache" in str(e.value) and "TINYML_CACHE" in str(e.value)
    assert "\n" not in str(e.value)


_BUILD_PLUGIN = "from tinyml.tools.profile import build_plugin; print(build_plugin())"


def test_two_processes_build_the_qemu_plugin_at_once(tmp_path: Path) -> None:
    """Two `tinyml profile` runs on a fresh cache both compile the QEMU plugin: each gets the one .so."""
    env = dict(os.environ, TINYML_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO))
    procs = [subprocess.Popen([sys.executable, "-c", _BUILD_PLUGIN], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {out.strip() for out, _ in outs}
    assert len(paths) == 1
    so = Path(paths.pop())
    assert so.read_bytes()[:4] == b"\x7fELF" and os.listdir(so.parent) == [so.name]
