"""The model without a firmware around it: ``tinyml compile --format library|cmake|static-lib``.

Each format lays the model out the same way, so that a user's build names it the same way:
``include/NAME/model.h`` (the API, included as ``"NAME/model.h"``) and ``src/`` (``model.c``
and the headers only it includes), plus a README that states the compiler flags the kernels
need.  ``cmake`` adds a CMakeLists.txt with a library target and an example that builds it for
the board; ``static-lib`` replaces ``src/`` with ``libNAME.a`` built here with the board's compiler.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tinyml.boards import Board
from tinyml.codegen.render import Storage, environment, text_line
from tinyml.errors import BuildError
from tinyml.schedule.place import ALIGN
from tinyml.targets.build import BUILD_TIMEOUT_SECONDS, missing_tool_hint
from tinyml.targets.process import run_process
import tinyml

FORMATS = ("project", "library", "cmake", "static-lib")
# What render_model writes, and where a library puts it.
MODEL_FILES = {"model.h": "include/{name}/model.h", "model.c": "src/model.c", "tml_kernels.h": "src/tml_kernels.h",
               "tml_qmath.h": "src/tml_qmath.h", "tml_fixedpoint.h": "src/tml_fixedpoint.h"}
TOOLCHAIN_FILE = "arm-none-eabi.cmake"


def model_header(name: str, fmt: str) -> str:
    """How model.c includes the API header: beside it in a project, through include/ in a library."""
    return "model.h" if fmt == "project" else f"{name}/model.h"


def library_cflags(board: Board) -> list[str]:
    """The flags the model's C is compiled with for ``board`` (the generated Makefile's, without warnings)."""
    return ["-std=c99", "-O2", "-ffunction-sections", "-fdata-sections", *board.cflags]


def library_files(board: Board, name: str, model_files: dict[str, str], fmt: str, storage: Storage, *,
                  families: list[str], arena_bytes: int, source: str, libm: bool = False) -> dict[str, str]:
    """The files of a ``library`` or ``cmake`` export (``static-lib`` starts from a ``library``); ``libm``: the
    model calls the C math library (float32 kernels), which a build must link."""
    files = {MODEL_FILES[f].format(name=name): content for f, content in model_files.items()}
    toolchain = TOOLCHAIN_FILE if board.is_arm and fmt == "cmake" else None
    values = dict(
        name=name, NAME=name.upper(), format=fmt, version=tinyml.__version__, source=text_line(source),
        board_name=board.name, board_description=board.description, cpu=board.cpu, arch=board.arch,
        cc=board.cc, cflags=library_cflags(board), abi_flags=list(board.cflags), families=families,
        caller_arena=storage.arena == "caller", arena_bytes=arena_bytes, arena_align=ALIGN,
        weights_section=storage.weights_section, arena_section=storage.arena_section, toolchain_file=toolchain,
        libm=libm,
    )
    env = environment()
    files["README.md"] = env.get_template("export/README.md.j2").render(values)
    if fmt == "cmake":
        files["CMakeLists.txt"] = env.get_template("export/CMakeLists.txt.j2").render(values)
        files["example/CMakeLists.txt"] = env.get_template("export/example_CMakeLists.txt.j2").render(values)
        if toolchain:
            files[f"example/{toolchain}"] = env.get_template("export/toolchain.cmake.j2").render(values)
    return files


def check_static_lib_tools(board: Board) -> None:
    """The compiler and archiver a static-lib export needs, named with their package when missing."""
    for tool in (board.cc, board.binutil("ar")):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found on PATH, needed to build a static library for board {board.name}; "
                             f"{missing_tool_hint(tool)}")


def static_lib_files(board: Board, name: str, files: dict[str, str | bytes]) -> dict[str, str | bytes]:
    """A ``library`` export's files with ``src/`` compiled into ``libNAME.a`` (for the board's core)."""
    check_static_lib_tools(board)
    with tempfile.TemporaryDirectory(prefix="tinyml-lib-") as tmp:
        work = Path(tmp)
        for rel, content in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(str(content), encoding="utf-8")
        steps = [[board.cc, *library_cflags(board), "-Wall", "-Wextra", "-Werror", f"-I{work / 'include'}", "-c",
                  str(work / "src" / "model.c"), "-o", str(work / "model.o")],
                 [board.binutil("ar"), "rcs", str(work / f"lib{name}.a"), str(work / "model.o")]]
        for step in steps:
            proc = run_process(step, capture_output=True, text=True, errors="replace",
                               timeout=BUILD_TIMEOUT_SECONDS)
            if proc.returncode != 0:
                first = next((line for line in proc.stderr.splitlines() if "error" in line.lower()),
                             proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output")
                raise BuildError(f"building lib{name}.a for board {board.name} failed: {first}")
        archive = (work / f"lib{name}.a").read_bytes()
    out: dict[str, str | bytes] = {rel: c for rel, c in files.items() if not rel.startswith("src/")}
    out[f"lib{name}.a"] = archive
    return out
