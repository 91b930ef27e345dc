"""The command line: inspect, compile, run, verify, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.modelgen import build, op_cases, zoo_cases
from tests.tflite_edit import replace_operator
from tinyml.graph import parse_tflite

REPO = Path(__file__).resolve().parent.parent


def tinyml(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def dscnn(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("m") / "ds_cnn.tflite"
    p.write_bytes(build(zoo_cases("ds_cnn")[0]))
    return p


def test_inspect_text_and_json(dscnn: Path) -> None:
    r = tinyml("inspect", str(dscnn))
    assert r.returncode == 0, r.stderr
    assert "CONV_2D" in r.stdout and "DEPTHWISE_CONV_2D" in r.stdout and "MACs" in r.stdout
    r = tinyml("inspect", str(dscnn), "--json")
    info = json.loads(r.stdout)
    t = info["totals"]
    assert t["macs"] > 2_000_000 and t["constant_bytes"] > 20_000 and t["arena_bytes"] > 0
    assert f"model constants {t['constant_bytes']:,} bytes (the .tflite's constant tensors)" in \
        tinyml("inspect", str(dscnn)).stdout
    assert info["inputs"][0]["shape"] == [1, 49, 10, 1]
    assert all(o["supported"] for o in info["operators"])
    conv = next(o for o in info["operators"] if o["op"] == "CONV_2D")
    assert conv["weights"][0]["quant"]["per_channel"] is True


def test_compile_run_and_verify(dscnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "proj"
    r = tinyml("compile", str(dscnn), "--board", "host", "-o", str(out))
    assert r.returncode == 0, r.stderr
    for f in ("model.h", "model.c", "Makefile", "main.c", "project.json"):
        assert (out / f).is_file()
    header = (out / "model.h").read_text()
    assert "DS_CNN_ARENA_BYTES" in header and "int ds_cnn_invoke(void);" in header
    x = np.random.default_rng(0).integers(-128, 128, size=(3, 1, 49, 10, 1), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    r = tinyml("run", str(out), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert r.returncode == 0, r.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (3, 1, 12) and y.dtype == np.int8
    from tinyml.tools.reference import run_tflm_batch

    ref = run_tflm_batch(dscnn.read_bytes(), [[s] for s in x])
    assert all(np.array_equal(y[i], ref[i][0]) for i in range(3))
    r = tinyml("verify", str(dscnn), "--board", "host", "--samples", "4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("4/4 bit-exact")


def test_missing_and_malformed_model(tmp_path: Path) -> None:
    msg = one_line_error(tinyml("compile", str(tmp_path / "nope.tflite"), "--board", "host", "-o",
                                str(tmp_path / "o")))
    assert "no such file" in msg
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(build(op_cases("CONV_2D")[0])[:300])
    msg = one_line_error(tinyml("compile", str(bad), "--board", "host", "-o", str(tmp_path / "o")))
    assert "bad.tflite" in msg and ("malformed" in msg or "truncated" in msg)
    assert not (tmp_path / "o").exists()


def test_unsupported_operator_leaves_nothing(tmp_path: Path) -> None:
    model = build(op_cases("CONV_2D")[0])
    idx = [o.kind for o in parse_tflite(model).ops].index("CONV_2D")
    p = tmp_path / "div.tflite"
    p.write_bytes(replace_operator(model, idx, "DIV"))
    out = tmp_path / "out"
    msg = one_line_error(tinyml("compile", str(p), "--board", "mps2-an386", "-o", str(out)))
    assert f"operator {idx} is DIV" in msg and "supported operators" in msg
    assert not out.exists()
    assert not [x for x in tmp_path.iterdir() if x.name.startswith(".out")]


def test_model_too_big_for_board(dscnn: Path, tmp_path: Path) -> None:
    from tinyml.resources import resource_dir

    text = (resource_dir("boards") / "mps2-an386.toml").read_text()
    text = re.sub(r"(?m)^ram = \{ origin = 0x20000000, size = 0x[0-9a-fA-F]+ \}",
                  "ram = { origin = 0x20000000, size = 0x00009000 }", text)
    assert "0x00009000" in text
    text = text.replace('name = "mps2-an386"', 'name = "tiny-board"')
    board = tmp_path / "tiny-board.toml"
    board.write_text(text)
    out = tmp_path / "out"
    msg = one_line_error(tinyml("compile", str(dscnn), "--board", str(board), "-o", str(out)))
    assert "RAM" in msg and "too many" in msg
    assert not out.exists()


def test_non_empty_foreign_output_dir_is_refused(dscnn: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    msg = one_line_error(tinyml("compile", str(dscnn), "--board", "host", "-o", str(out)))
    assert "not a tinyml project" in msg
    assert (out / "notes.txt").read_text() == "keep me"


def test_bad_board_and_bad_input(dscnn: Path, tmp_path: Path) -> None:
    msg = one_line_error(tinyml("compile", str(dscnn), "--board", "no-such-board", "-o", str(tmp_path / "o")))
    assert "no-such-board" in msg
    out = tmp_path / "p"
    assert tinyml("compile", str(dscnn), "--board", "host", "-o", str(out)).returncode == 0
    np.save(tmp_path / "wrong.npy", np.zeros((7, 3), np.int8))
    msg = one_line_error(tinyml("run", str(out), "--input", str(tmp_path / "wrong.npy")))
    assert "shape" in msg
    (tmp_path / "junk.npy").write_bytes(b"junk")
    one_line_error(tinyml("run", str(out), "--input", str(tmp_path / "junk.npy")))


def test_usage_errors_exit_2() -> None:
    r = tinyml("compile")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


def test_compile_choices_are_the_code_generators() -> None:
    """The parser lists --format and --arena choices as literals (it does not import the code generator, to
    start fast); they must be the ones export and render accept."""
    from tinyml.cli import build_parser
    from tinyml.codegen.render import ARENA_KINDS
    from tinyml.targets.export import FORMATS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    compile_parser = sub.choices["compile"]
    choices = {a.dest: tuple(a.choices) for a in compile_parser._actions if a.choices}
    assert choices["format"] == FORMATS and choices["arena"] == ARENA_KINDS
