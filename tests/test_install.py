"""`pip install .` (not editable) gives a working tinyml with its data files inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.modelgen import build, op_cases

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_non_editable_install_compiles_and_runs(tmp_path: Path) -> None:
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(target), str(REPO)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    pkg = target / "tinyml"
    for rel in ("data/templates/model.c.j2", "data/templates/kernels/conv_s8.c.j2", "data/boards/mps2-an386.toml",
                "data/firmware/tml_runtime.h", "codegen/lower.py", "cli.py"):
        assert (pkg / rel).is_file(), rel
    model = tmp_path / "conv.tflite"
    model.write_bytes(build(op_cases("CONV_2D")[0]))
    # Run from an unrelated directory with only the installed copy (and the venv's dependencies).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)
    work = tmp_path / "work"
    work.mkdir()
    code = ("import tinyml, tinyml.codegen, sys; "
            "assert str(tinyml.__file__).startswith(sys.argv[1]), tinyml.__file__; "
            "from tinyml.cli import main; sys.exit(main(sys.argv[2:]))")
    r = subprocess.run([sys.executable, "-c", code, str(target), "verify", str(model), "--board", "mps2-an386",
                        "--samples", "2"], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2/2 bit-exact" in r.stdout
