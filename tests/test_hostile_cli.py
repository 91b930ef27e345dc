"""Issue 19, hostile input at the command line: every error user input can
cause is one line on stderr and exit code 2 (never a traceback), an internal
error says it is a bug (``--debug`` shows the traceback), and no command
deletes a user's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinyml
from tests.modelgen import build, cache_path, zoo_cases
from tinyml.cli import main as cli_main
from tinyml.compiler import write_project
from tinyml.errors import InputError
from tinyml.limits import MAX_SAMPLES

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dscnn() -> Path:
    c = zoo_cases("ds_cnn")[0]
    build(c)
    return cache_path(c)


@pytest.fixture(scope="module")
def host_project(dscnn: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "proj"
    assert cli_main(["compile", str(dscnn), "-b", "host", "-o", str(out)]) == 0
    return out


def one_line(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 2) -> str:
    """Runs the CLI in-process; returns its single stderr line (argparse's exits included)."""
    try:
        got = cli_main(list(argv))
    except SystemExit as e:
        got = e.code
    err = capsys.readouterr().err
    assert got == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def subprocess_line(*argv: str, timeout: float = 60) -> str:
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", *argv], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=timeout)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# ---------------------------------------------------------------- arguments


def test_name_must_be_a_c_identifier(dscnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = one_line(capsys, "compile", str(dscnn), "-b", "host", "-o", str(tmp_path / "o"), "--name", "Bad Name")
    assert "'Bad Name' is not a lowercase C identifier" in msg and "'bad_name'" in msg
    assert not (tmp_path / "o").exists()


def test_unknown_plot_format_is_refused_before_any_work(dscnn: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    msg = one_line(capsys, "plan", str(dscnn), "--plot", str(tmp_path / "p.xyz"))
    assert "unknown plot format '.xyz'" in msg and ".png, .pdf or .svg" in msg
    msg = one_line(capsys, "profile", str(dscnn), "-b", "mps2-an386", "--chart", str(tmp_path / "chart"))
    assert "no suffix" in msg
    assert time.monotonic() - start < 5 and not list(tmp_path.iterdir())


def test_plots_replace_only_what_tinyml_wrote(dscnn: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A user's file where a plot would go is refused (before any work) unless --force; a plot tinyml wrote is
    replaced by the next run; the plot's suffix (here .svg) is the frontier plot's too."""
    mine = tmp_path / "mine.svg"
    mine.write_text("<svg>my drawing</svg>")
    start = time.monotonic()
    msg = one_line(capsys, "plan", str(dscnn), "--plot", str(mine))
    assert f"{mine}: exists and was not written by tinyml" in msg and "--force" in msg
    assert mine.read_text() == "<svg>my drawing</svg>" and time.monotonic() - start < 5
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n not a tinyml chart")
    msg = one_line(capsys, "profile", str(dscnn), "-b", "mps2-an386", "--chart", str(chart))
    assert f"{chart}: exists and was not written by tinyml" in msg and "--chart" in msg
    assert time.monotonic() - start < 10
    plot = tmp_path / "p.svg"
    for _ in range(2):  # the second run replaces the first run's plots
        assert cli_main(["plan", str(dscnn), "--plot", str(plot)]) == 0
    frontier = tmp_path / "p-frontier.svg"
    assert b"tinyml plot" in plot.read_bytes() and frontier.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png", "mine.svg", "p-frontier.svg", "p.svg"]
    assert cli_main(["plan", str(dscnn), "--plot", str(mine), "--force"]) == 0
    assert b"my drawing" not in mine.read_bytes() and (tmp_path / "mine-frontier.svg").is_file()
    capsys.readouterr()


@pytest.mark.parametrize("command", [
    ["verify", "{model}"], ["profile", "{model}", "-b", "mps2-an386"], ["validate", "{model}", "-p", "/dev/null"],
    ["train", "kws", "--synthetic"]])
def test_negative_seed(command: list[str], dscnn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = one_line(capsys, *[a.format(model=dscnn) for a in command], "--seed", "-1")
    assert "argument --seed: -1 is out of range; give a seed from 0 to 4294967295" in msg


@pytest.mark.parametrize("command", [["verify", "{model}"], ["validate", "{model}", "-p", "/dev/null"],
                                     ["demo", "dscnn"]])
def test_sample_count_is_bounded(command: list[str], dscnn: Path, capsys: pytest.CaptureFixture[str]) -> None:
    msg = one_line(capsys, *[a.format(model=dscnn) for a in command], "-n", "1000000000")
    assert f"1000000000 is out of range; give 1 to {MAX_SAMPLES:,} samples" in msg


# ---------------------------------------------------------------- files


def test_run_refuses_pickled_inputs(host_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", np.array([{"x": 1}], dtype=object))
    for name in ("obj.npy", "obj.npz"):
        msg = one_line(capsys, "run", str(host_project), "-i", str(tmp_path / name))
        assert "holds object values" in msg and "not Python objects" in msg, msg


def test_run_checks_the_npy_header_before_reading(host_project: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The header claims 10^12 int8 elements (1 TB); the file holds 64 bytes."""
    huge = tmp_path / "huge.npy"
    with huge.open("wb") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": "|i1", "fortran_order": False, "shape": (10**12,)})
        f.write(bytes(64))
    start = time.monotonic()
    msg = one_line(capsys, "run", str(host_project), "-i", str(huge))
    assert "has shape [1000000000000]; expected [1, 49, 10, 1]" in msg and time.monotonic() - start < 5
    # A plausible shape whose data is missing: refused from the header and the file size.
    short = tmp_path / "short.npy"
    with short.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1000, 490)})
        f.write(bytes(64))
    msg = one_line(capsys, "run", str(host_project), "-i", str(short))
    assert "promises 1,960,000 bytes of data" in msg


def test_inspect_refuses_devices_and_fifos(tmp_path: Path) -> None:
    """Never read a device or wait on a FIFO (nobody writes to it: a read would hang)."""
    msg = subprocess_line("inspect", "/dev/zero")
    assert msg == "tinyml: error: /dev/zero: is not a regular file (a device, FIFO or socket); give the path of " \
                  "a .tflite model"
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    assert "is not a regular file" in subprocess_line("inspect", str(fifo), timeout=30)


def test_oversized_model_is_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.tflite"
    with big.open("wb") as f:  # sparse: 300 MiB that take no space
        f.truncate(300 * 1024 * 1024)
    msg = one_line(capsys, "inspect", str(big))
    assert "more than the 256 MiB a model may have" in msg


# ---------------------------------------------------------------- internal errors


def test_internal_error_is_one_line_and_debug_shows_it(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import tinyml.boards

    def broken() -> list:
        raise KeyError("no such thing")

    monkeypatch.setattr(tinyml.boards, "list_boards", broken)
    msg = one_line(capsys, "boards", code=3)
    assert msg == ("tinyml: internal error (a bug in tinyml): KeyError: 'no such thing'; rerun with --debug for "
                   "the traceback")
    for argv in (["--debug", "boards"], ["boards", "--debug"]):
        with pytest.raises(KeyError):
            cli_main(argv)


# ---------------------------------------------------------------- never lose a user's files


def test_output_may_not_be_cwd_or_a_parent(dscnn: Path, host_project: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (host_project / "notes.txt").write_text("mine")
    (host_project / "sub").mkdir(exist_ok=True)
    monkeypatch.chdir(host_project)
    msg = one_line(capsys, "compile", str(dscnn), "-b", "host", "-o", ".")
    assert "is the current directory" in msg and "--force" in msg
    monkeypatch.chdir(host_project / "sub")
    msg = one_line(capsys, "compile", str(dscnn), "-b", "host", "-o", "..")
    assert "is a parent of the current directory" in msg
    msg = one_line(capsys, "compile", str(dscnn), "-b", "host", "-o", str(host_project.parent))
    assert "is a parent of the current directory" in msg
    assert (host_project / "notes.txt").read_text() == "mine" and (host_project / "model.c").is_file()


def test_non_project_directory_needs_force(dscnn: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    msg = one_line(capsys, "compile", str(dscnn), "-b", "host", "-o", str(out))
    assert "is not empty and is not a tinyml project (no project.json)" in msg and "--force" in msg
    assert (out / "thesis.tex").read_text() == "keep me"
    assert cli_main(["compile", str(dscnn), "-b", "host", "-o", str(out), "--force"]) == 0
    capsys.readouterr()
    assert (out / "project.json").is_file() and not (out / "thesis.tex").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # nothing left beside it


def test_failed_write_keeps_the_old_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "proj"
    write_project({"project.json": "{}\n", "model.c": "old\n"}, out)
    # A file name that cannot be created, mid-way through the new tree.
    with pytest.raises(InputError, match="the previous contents are unchanged"):
        write_project({"project.json": "{}\n", "a.c": "new\n", "x" * 300 + ".c": "", "z.c": ""}, out)
    assert (out / "model.c").read_text() == "old\n" and not (out / "a.c").exists()
    # The rename of the new tree into place fails after the old one went aside: it comes back.
    import tinyml.compiler

    real = os.replace
    calls = []

    def flaky(src: object, dst: object) -> None:
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(dst))
        real(src, dst)

    monkeypatch.setattr(tinyml.compiler.os, "replace", flaky)
    with pytest.raises(InputError, match="No space left on device"):
        write_project({"project.json": json.dumps({"tool": "tinyml"}), "model.c": "new\n"}, out)
    assert len(calls) == 3 and Path(calls[2][1]) == out  # aside, (failed) in, back
    assert (out / "model.c").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]
    monkeypatch.setattr(tinyml.compiler.os, "replace", real)
    write_project({"project.json": "{}\n", "model.c": "new\n"}, out)
    assert (out / "model.c").read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_profile_default_chart_is_named_after_a_board_files_board(dscnn: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--board PATH: the default chart is MODEL-NAME-profile.png with the board file's name (not a path that made
    folders from the board file's path), and a user's file there is still refused without --force."""
    board = tmp_path / "cfg" / "board.toml"
    board.parent.mkdir()
    board.write_text((REPO / "boards" / "mps2-an386.toml").read_text().replace('name = "mps2-an386"',
                                                                                'name = "my-m4"'))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    mine = work / f"{dscnn.stem}-my-m4-profile.png"
    mine.write_bytes(b"\x89PNG\r\n\x1a\n the user's own picture")
    msg = one_line(capsys, "profile", str(dscnn), "--board", str(board))
    assert f"{mine.name}: exists and was not written by tinyml" in msg, msg
    assert "--force" in msg and mine.read_bytes().endswith(b"own picture")
    assert sorted(p.name for p in work.iterdir()) == [mine.name]  # no folder from the board file's path


@pytest.mark.parametrize("which", ["dscnn", "kws"])
def test_demo_refuses_an_unknown_board_before_the_work(which: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The board is checked first (not after quantizing a model or synthesizing and training for minutes)."""
    start = time.monotonic()
    msg = one_line(capsys, "demo", which, "--board", "no-such-board")
    assert "unknown board 'no-such-board'" in msg and time.monotonic() - start < 20, msg


def test_plot_below_a_file_is_refused_before_any_work(dscnn: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A plot or chart path through a file (not a directory) is refused at once, by the CLI and by the Python
    API (which makes missing directories), not after the profiling run with an OSError."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine")
    start = time.monotonic()
    for argv in (("plan", str(dscnn), "--plot", str(blocker / "p.png")),
                 ("profile", str(dscnn), "-b", "mps2-an386", "--chart", str(blocker / "c.svg"))):
        msg = one_line(capsys, *argv)
        assert f"{blocker} is a file, not a directory" in msg, msg
    with pytest.raises(InputError, match="notes.txt is a file, not a directory"):
        tinyml.profile(dscnn, "mps2-an386", chart=blocker / "sub" / "c.png")
    assert time.monotonic() - start < 10 and blocker.read_text() == "mine"


def test_run_output_replaces_a_file_only_with_force(host_project: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """tinyml run --output: an existing file (the input itself among them) is refused before the run unless
    --force; the outputs are written whole (a temporary file renamed), with numpy's suffix when missing."""
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 49, 10, 1), np.int8))
    mine = tmp_path / "y.npy"
    mine.write_bytes(b"my results")
    start = time.monotonic()
    for out in (mine, x, tmp_path / "y"):  # "y" is y.npy once numpy adds the suffix
        msg = one_line(capsys, "run", str(host_project), "-i", str(x), "-o", str(out))
        assert "exists; give another --output file, or --force to replace it" in msg, msg
    assert time.monotonic() - start < 5 and mine.read_bytes() == b"my results"
    assert cli_main(["run", str(host_project), "-i", str(x), "-o", str(tmp_path / "y"), "--force"]) == 0
    assert np.load(mine).shape == (1, 12) and sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]
