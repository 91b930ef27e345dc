"""`pip install .` (not editable) gives a working tinyml with its data files inside the package."""

from __future__ import annotations

import json
import os
import re
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


def _requirement_names(dist: str) -> list[str]:
    """The distributions ``dist`` requires, extras and other platforms' markers left out."""
    import importlib.metadata

    from packaging.requirements import Requirement

    names = []
    for text in importlib.metadata.distribution(dist).requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def _link_core_dependencies(site: Path) -> set[str]:
    """Symbolic links in ``site`` to the installed files of tinyml's core dependencies and theirs (not the
    extras): the fresh venv gets what `pip install .` would download, offline and in a second."""
    import importlib.metadata
    import tomllib

    from packaging.requirements import Requirement

    with open(REPO / "pyproject.toml", "rb") as f:
        todo = [Requirement(r).name for r in tomllib.load(f)["project"]["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        dist = importlib.metadata.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        todo += _requirement_names(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    return seen


@pytest.mark.slow
def test_fresh_venv_runs_the_core_commands_and_names_the_missing_extras(tmp_path: Path) -> None:
    """`pip install .` into a fresh venv with only the core dependencies: inspect, plan, compile and run work;
    verify, train, demo and bench memory each fail first, with one line naming the extra to install."""
    import numpy as np

    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    linked = _link_core_dependencies(site)
    assert {"numpy", "jinja2", "pyelftools", "platformdirs"} <= linked, linked
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                        str(wheels), str(REPO)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                        "--no-index", *map(str, wheels.glob("*.whl"))], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]

    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYML_CACHE", "XDG_CACHE_HOME",
                                                            "VIRTUAL_ENV")}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    def tinyml(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(venv / "bin" / "tinyml"), *args], capture_output=True, text=True, cwd=work,
                              env=env, timeout=600)

    # Nothing of the checkout, no extra: only the core.
    r = subprocess.run([str(python), "-c", "import importlib.util as u, json, tinyml.resources as r; print(json.dumps(["
                        "str(r.cache_root()), [m for m in ('tensorflow', 'tflite_micro', 'tests') if u.find_spec(m)], "
                        "r.__file__]))"], capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    cache, found, where = json.loads(r.stdout)
    assert cache == str(home / ".cache" / "tinyml") and found == [] and where.startswith(str(venv)), r.stdout

    model = work / "conv.tflite"
    model.write_bytes(build(op_cases("CONV_2D")[0]))
    r = tinyml("inspect", "conv.tflite", "--json")
    assert r.returncode == 0, r.stderr
    shape = json.loads(r.stdout)["inputs"][0]["shape"]
    r = tinyml("plan", "conv.tflite", "--no-plot")
    assert r.returncode == 0 and "peak SRAM" in r.stdout, r.stderr
    r = tinyml("compile", "conv.tflite", "--board", "host", "-o", "proj")
    assert r.returncode == 0 and "compiled conv for host" in r.stdout, r.stderr
    fit_line = r"^fit: RAM [\d,]+ bytes: arena [\d,]+ .*flash about [\d,]+ bytes: compiled weights"
    assert re.search(fit_line, r.stdout, re.M), r.stdout
    np.save(work / "x.npy", np.zeros(shape, np.int8))
    r = tinyml("run", "proj", "--input", "x.npy", "--output", "y.npy")
    assert r.returncode == 0 and "ran 1 sample(s) on host" in r.stdout, r.stdout + r.stderr
    assert re.search(r"^firmware memory: arena used \d+ of \d+ bytes$", r.stdout, re.M), r.stdout
    assert np.load(work / "y.npy").dtype == np.int8

    r = subprocess.run([str(python), "-c", "import tinyml; m = tinyml.compile('conv.tflite', board='mps2-an386'); "
                        "print(m.fit.fits, tinyml.plan('conv.tflite', board='mps2-an386').arena_bytes == m.plan.arena_bytes)"],
                       capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["True", "True"], r.stdout + r.stderr

    for args, extras in ((("verify", "conv.tflite"), "reference"), (("demo",), "train,reference"),
                         (("train", "kws", "--synthetic"), "train,reference"), (("demo", "dscnn"), "train,reference"),
                         (("bench", "memory"), "reference")):
        r = tinyml(*args)
        assert r.returncode == 2 and r.stdout == "", (args, r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and f"pip install 'tinyml-toolchain[{extras}]'" in r.stderr, (args, r.stderr)


@pytest.mark.qemu
def test_elf_sizes_and_symbols_match_binutils(tmp_path: Path) -> None:
    """pyelftools reads what nm and size print: every sized symbol (nm's address, size and kind) and every
    section's size; the model's weights in the ELF are the weight bytes the compiler counted."""
    from tinyml.compiler import compile_model
    from tinyml.targets.build import build_project
    from tinyml.targets.project import reserved_ram_bytes
    from tinyml.tools.profile import _symbols, elf_section_sizes, elf_sizes

    model = tmp_path / "conv.tflite"
    model.write_bytes(build(op_cases("CONV_2D")[0]))
    c = compile_model(model, "mps2-an386", tmp_path / "proj")
    elf = build_project(tmp_path / "proj")
    nm = subprocess.run(["arm-none-eabi-nm", "-S", "--defined-only", str(elf)], capture_output=True, text=True,
                        check=True).stdout
    ours = {name: (addr, size, kind) for name, addr, size, kind in _symbols(elf)}
    sized = [line.split() for line in nm.splitlines() if len(line.split()) == 4]
    assert len(sized) > 20
    for addr, size, letter, name in sized:
        kind = "w" if letter in "WV" else letter.lower()
        assert ours[name] == (int(addr, 16), int(size, 16), kind if kind in "trdw" else ours[name][2]), name
    size = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sections = {p[0]: int(p[1]) for p in map(str.split, size.splitlines()) if len(p) >= 3 and p[0].startswith(".")}
    assert sections and elf_section_sizes(elf).items() >= sections.items()
    sizes = elf_sizes(c.board, elf, c.graph.name)
    assert sizes.weight_bytes == c.weight_bytes and 0 < sizes.kernel_text_bytes < sizes.text_bytes
    # RAM: the stacks the board reserves, .data and .bss (the static arena in it), as readelf lists them.
    assert sizes.ram_bytes == sum(sections[s] for s in (".stack", ".handler_stack", ".data", ".bss"))
    assert sizes.ram_bytes >= c.plan.arena_bytes + reserved_ram_bytes(c.board)


@pytest.mark.slow
def test_bench_memory_builds_its_zoo_on_demand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without models, bench memory builds the zoo networks (TensorFlow, the train extra) into the user cache
    once, not from the tests folder."""
    from tinyml.errors import InputError
    from tinyml.graph import parse_tflite
    from tinyml.tools.plan import zoo_models

    monkeypatch.setenv("TINYML_CACHE", str(tmp_path))
    ((name, data),) = zoo_models(["fc_autoencoder"])
    graph = parse_tflite(data, source=name)
    assert name == "fc_autoencoder" and [graph.tensors[t].shape for t in graph.inputs] == [(1, 640)]
    (cached,) = (tmp_path / "zoo").glob("fc_autoencoder-*.tflite")
    stamp = cached.stat().st_mtime_ns
    assert zoo_models(["fc_autoencoder"]) == [(name, data)] and cached.stat().st_mtime_ns == stamp
    with pytest.raises(InputError, match="no zoo network resnet9"):
        zoo_models(["resnet9"])
