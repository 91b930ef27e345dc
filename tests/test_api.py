"""The Python API (tinyml.compile, inspect, plan, profile) and the README's example of it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.modelgen import build, op_cases, zoo_cases
from tinyml.cli import main
from tinyml.errors import InputError, ModelError, TinymlError

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^### From Python\n.*?^```python\n(.*?)^```", text, re.S | re.M)
    assert m, "README.md has no python block under '### From Python'"
    return m.group(1)


def test_readme_python_example_runs(tmp_path: Path) -> None:
    (tmp_path / "ds_cnn.tflite").write_bytes(build(zoo_cases("ds_cnn")[0]))
    code = readme_example() + "\nimport sys\nassert 'tensorflow' not in sys.modules, 'the API imported TensorFlow'\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3 bit-exact (kws on host)" in r.stdout
    assert re.search(r"^RAM [\d,]+ bytes of [\d,]+ .*flash about", r.stdout, re.M), r.stdout
    assert (tmp_path / "fw" / "kws" / "CMakeLists.txt").is_file()
    assert (tmp_path / "fw" / "kws" / "include" / "kws" / "model.h").is_file()


def test_import_tinyml_is_cheap_and_the_api_loads_on_use() -> None:
    code = ("import sys, tinyml\n"
            "loaded = sorted(m for m in sys.modules if m.startswith(('tinyml.', 'numpy', 'jinja2')))\n"
            "assert not loaded, loaded\n"
            "from tinyml import compile, CompiledModel\n"
            "assert compile is tinyml.compile and tinyml.inspect and tinyml.plan and tinyml.profile\n"
            "assert not {'tensorflow', 'tflite_micro', 'matplotlib'} & set(sys.modules), sys.modules.keys()\n"
            "try:\n    tinyml.nothing\nexcept AttributeError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "has no attribute 'nothing'" in r.stdout


@pytest.fixture(scope="module")
def conv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("api") / "conv.tflite"
    p.write_bytes(build(op_cases("CONV_2D")[0]))
    return p


def test_compile_takes_a_path_bytes_or_a_graph(conv: Path, tmp_path: Path) -> None:
    import tinyml
    from tinyml.graph import load_tflite

    by_path = tinyml.compile(conv, board="mps2-an386")
    by_bytes = tinyml.compile(conv.read_bytes(), board="mps2-an386", name="conv")
    by_graph = tinyml.compile(load_tflite(conv), board="mps2-an386")
    assert by_path.name == by_bytes.name == by_graph.name == "conv"
    assert by_path.files == by_graph.files
    # The same C from the bytes, but for the source the comments name.
    assert {k: v.replace(str(conv), "<bytes>") for k, v in by_path.files.items() if isinstance(v, str)} == \
        by_bytes.files
    fit = by_path.fit
    assert fit.fits and fit.board_ram_bytes == by_path.board.ram_bytes
    assert fit.ram_bytes == fit.arena_bytes + fit.reserved_bytes + fit.statics_bytes
    assert fit.arena_bytes == by_path.plan.arena_bytes and fit.statics_bytes > 0 and not fit.ram_measured
    assert f"runtime statics {fit.statics_bytes} (estimated)" in fit.format()
    assert fit.flash_bytes > fit.weight_bytes == by_path.weight_bytes
    assert json.loads(json.dumps(fit.to_json()))["fits"] is True
    # the estimated latency at the board's clock, from the plan's cost: a core with fitted factors has one
    assert fit.estimated_cycles and fit.estimated_cycles > by_path.plan.cost  # an M4 takes >1 cycle per instruction
    assert fit.estimated_ms == pytest.approx(fit.estimated_cycles / 25e3)  # 25 MHz
    assert "(estimated from the plan's cost, zero-wait-state, 25 MHz)" in fit.format()
    m0 = tinyml.compile(conv, board="microbit").fit  # no factors for the Cortex-M0: no estimate, and no line
    assert m0.estimated_cycles is None and "latency" not in m0.format()
    assert "model.c" in by_path.files and not (tmp_path / "out").exists()  # nothing written yet

    # write: a library from the same compilation; a user's directory is replaced only with force.
    lib = by_path.write(tmp_path / "lib", format="library")
    assert (lib / "include" / "conv" / "model.h").is_file() and not (lib / "Makefile").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(InputError, match="not empty"):
        by_path.write(mine)
    assert (mine / "notes.txt").read_text() == "keep"
    by_path.write(mine, force=True)
    assert (mine / "Makefile").is_file() and not (mine / "notes.txt").exists()

    # a Graph has no .tflite bytes for TFLM; wrong inputs are one-line user errors.
    with pytest.raises(InputError, match="not a Graph"):
        by_graph.verify(samples=1)
    with pytest.raises(InputError, match="not int"):
        tinyml.compile(123)  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        tinyml.compile(b"not a model at all", name="junk")
    with pytest.raises(InputError, match="not one of"):
        tinyml.compile(conv, format="zip")
    with pytest.raises(TinymlError, match="C identifier"):
        tinyml.compile(conv.read_bytes(), name="Bad-Name")


def test_inspect_and_plan_are_typed_and_print_the_cli_json(conv: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import tinyml

    info = tinyml.inspect(conv)
    assert info.totals.operators == 1 and info.totals.macs > 0 and info.sizes is None
    assert main(["inspect", str(conv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == info.to_json()
    from_bytes = tinyml.inspect(conv.read_bytes(), name="conv").to_json()  # the source is a temporary file
    assert {k: v for k, v in from_bytes.items() if k != "source"} == \
        {k: v for k, v in info.to_json().items() if k != "source"}

    plan = tinyml.plan(conv, board="mps2-an386")
    assert plan.board == "mps2-an386" and plan.arena_bytes >= plan.scratch_bytes and plan.frontier
    assert main(["plan", str(conv), "--board", "mps2-an386", "--json", "--no-plot"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(plan.to_json()))
    assert plan.format().startswith(f"memory plan of conv ({conv})")


def test_a_fit_error_names_the_budget_and_the_boards_that_would_fit(tmp_path: Path) -> None:
    """A board whose SRAM holds MobileNet v1's smallest plan but not its default one: the error says by how
    much and which --sram fits; that budget then compiles, and fits."""
    import tinyml
    from tinyml.boards import load_board
    from tinyml.errors import FitError
    from tinyml.targets.project import reserved_ram_bytes, runtime_statics_estimate

    model = tmp_path / "mobilenet_v1.tflite"
    model.write_bytes(build(zoo_cases("mobilenet_v1")[0]))
    base = load_board("mps2-an386")
    ram = reserved_ram_bytes(base) + runtime_statics_estimate(base, 96 * 96 * 3) + 29_000
    text = re.sub(r"(?m)^ram = \{ origin = 0x20000000, size = 0x[0-9a-fA-F]+ \}",
                  f"ram = {{ origin = 0x20000000, size = {ram:#x} }}", base.path.read_text())
    board = tmp_path / "small.toml"
    board.write_text(text.replace('name = "mps2-an386"', 'name = "small"'))
    with pytest.raises(FitError) as info:
        tinyml.compile(model, board=str(board))
    msg = str(info.value)
    assert re.search(rf"board small has {ram}, \d+ bytes too many; compile with --sram 29000 ", msg), msg
    assert re.search(r"choose a board with more SRAM \(e\.g\. [\w-]+(, [\w-]+)*\)", msg), msg
    m = tinyml.compile(model, board=str(board), sram=29_000)
    assert m.fit.fits and m.plan.arena_bytes <= 29_000 and m.fit.board_ram_bytes == ram
