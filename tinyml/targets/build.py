"""Build a firmware project with make (and its host-link firmware, ``make HOSTLINK=1``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from tinyml.boards import Board, load_board
from tinyml.errors import BuildError, FitError
from tinyml.targets.process import run_process
from tinyml.targets.project import BOARD_FILE

# Which Debian package provides a missing tool.
_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "arm-none-eabi-ar": "binutils-arm-none-eabi",
    "arm-none-eabi-objcopy": "binutils-arm-none-eabi",
    "ar": "binutils",
    "cc": "gcc",
    "gcc": "gcc",
    "make": "make",
}
_ERROR_RES = (
    re.compile(r"\berror\b", re.IGNORECASE),
    re.compile(r"undefined reference"),
    re.compile(r"region `\w+' overflowed"),
    re.compile(r"No rule to make target"),
)
BUILD_TIMEOUT_SECONDS = 900


def missing_tool_hint(tool: str) -> str:
    """What to do about a build tool that is not on PATH."""
    package = _PACKAGES.get(tool)
    return f"install it (Debian: apt-get install {package})" if package else "install it or fix compiler.cc in the board file"


def project_board(project_dir: Path) -> Board:
    """The board a project was generated for (its ``board.toml`` copy)."""
    path = Path(project_dir) / BOARD_FILE
    if not path.is_file():
        raise BuildError(
            f"{project_dir} is not a tinyml firmware project (no {BOARD_FILE}); "
            "generate it with tinyml compile"
        )
    return load_board(path)


def binary_path(project_dir: Path, board: Board, trace: bool = False) -> Path:
    """Where make puts the firmware: build[-trace]/firmware[.elf]."""
    build = "build-trace" if trace else "build"
    return Path(project_dir) / build / ("firmware.elf" if board.is_arm else "firmware")


def build_project(project_dir: Path, trace: bool = False) -> Path:
    """Run make in ``project_dir`` and return the firmware binary.

    ``trace`` builds the -DTML_TRACE variant into build-trace/.  The make
    output is kept in build[-trace]/make.log.
    """
    project_dir = Path(project_dir).resolve()
    board = project_board(project_dir)
    for tool in ("make", board.cc, *((board.binutil("objcopy"),) if board.is_arm else ())):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found on PATH, needed to build {project_dir}; {missing_tool_hint(tool)}")
    command = ["make", "-C", str(project_dir), f"-j{os.cpu_count() or 1}"]
    if trace:
        command.append("TRACE=1")
    binary = binary_path(project_dir, board, trace)
    log = binary.parent / "make.log"
    try:
        proc = run_process(
            command,
            env={**os.environ, "LC_ALL": "C"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=BUILD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as err:
        raise BuildError(f"building {project_dir} took over {BUILD_TIMEOUT_SECONDS}s; run make there to see why") from err
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(proc.stdout, encoding="utf-8")
    if proc.returncode != 0:
        overflow = _REGION_OVERFLOW.findall(proc.stdout)
        if overflow:
            raise LinkFitError(_fit_message(project_dir, board, overflow, log))
        raise BuildError(f"build of {project_dir} failed: {_first_error(proc.stdout, board.cc)} (full log: {log})")
    if not binary.is_file():
        raise BuildError(f"make succeeded but {binary} is missing; check the Makefile in {project_dir}")
    return binary


def build_hostlink(project_dir: Path) -> Path:
    """``make HOSTLINK=1``: the host-link firmware of a project whose board
    normally uses semihosting; returns build-hostlink/firmware.elf."""
    project_dir = Path(project_dir).resolve()
    board = project_board(project_dir)
    if board.host_io == "uart":
        return build_project(project_dir)
    if board.uart_driver is None:
        raise BuildError(f"board {board.name} has no [uart] table, so it has no host-link firmware")
    build_project(project_dir)  # checks the tools, names the first error
    proc = run_process(["make", "-C", str(project_dir), f"-j{os.cpu_count() or 1}", "HOSTLINK=1"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    elf = project_dir / "build-hostlink" / "firmware.elf"
    if proc.returncode != 0 or not elf.is_file():
        lines = [line for line in (proc.stdout + proc.stderr).splitlines() if "error" in line.lower()]
        raise BuildError(f"building the host-link firmware in {project_dir} failed: "
                         f"{lines[0] if lines else 'see make HOSTLINK=1 there'}")
    return elf


_REGION_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


class LinkFitError(BuildError, FitError):
    """The linked firmware (code, weights, arena, stacks) exceeds a memory region."""


def _fit_message(project_dir: Path, board: Board, overflow: list[tuple[str, str]], log: Path) -> str:
    sizes = {"FLASH": board.flash_bytes, "RAM": board.ram_bytes, "VECTORS": board.vectors_bytes}
    parts = []
    for region, extra in dict(overflow).items():
        size = sizes.get(region)
        parts.append(f"region `{region}' overflowed by {int(extra)} bytes"
                     + (f" (board {board.name} has {size} bytes of {region.lower()})" if size else ""))
    return (f"the firmware in {project_dir} does not fit board {board.name}: {'; '.join(parts)}; choose a board "
            f"with more memory or a smaller model (sizes per section in build/firmware.map; log: {log})")


def _first_error(output: str, cc: str) -> str:
    """The first diagnostic line of a failed make run (not a command echo)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    diagnostics = [line for line in lines if not line.startswith((cc + " ", "make"))]
    for line in diagnostics:
        if "spec file" in line and ("nano.specs" in line or "nosys.specs" in line):
            return f"{line}; install newlib (Debian: apt-get install libnewlib-arm-none-eabi)"
        if "overflowed" in line and "region" in line:
            return (f"{line}; the firmware does not fit the board's memory "
                    "(memory.* in board.toml; sizes in build/firmware.map)")
        if any(pattern.search(line) for pattern in _ERROR_RES):
            return line
    if diagnostics:
        return diagnostics[-1]
    return lines[-1] if lines else "make failed without output"
