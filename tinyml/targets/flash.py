"""`tinyml flash`: write a built firmware project to a board.

Three ways, all ending with the board running the new firmware:

* ``gdb="HOST:PORT"``: any GDB remote stub (QEMU's -gdb, OpenOCD, pyOCD
  gdbserver, J-Link GDB server, Black Magic Probe): GDB loads the ELF,
  compares every loaded section with the target's memory, then resets the
  target (the reset command is detected from the stub's ``monitor help``, or
  the board file's flash.gdb_reset) and detaches.
* ``probe="pyocd"``: ``pyocd load`` with the board's flash.pyocd_target.
* ``probe="openocd"``: ``openocd -f ... -c "program ELF verify reset exit"``
  with the board's flash.openocd configuration.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyml.boards import Board, load_board
from tinyml.errors import InputError, RunError
from tinyml.targets.build import build_project, project_board
from tinyml.targets.process import run_process

GDB_CANDIDATES = ("gdb-multiarch", "arm-none-eabi-gdb", "gdb")
GDB_PACKAGE = "gdb-multiarch"
# `monitor help` text -> the reset command of that stub.
_RESET_BY_STUB = (
    ("system_reset", "monitor system_reset"),  # QEMU (HMP)
    ("reset [run|halt|init]", "monitor reset run"),  # OpenOCD
    ("reset", "monitor reset"),  # pyOCD gdbserver, J-Link
)


class FlashError(RunError):
    """Flashing failed or the written firmware does not match the ELF."""


@dataclass
class FlashResult:
    method: str
    elf: Path
    sections: int  # sections compared (GDB) or 0
    log: str


def flash_project(project_dir: str | Path, board: str | None = None, *, gdb: str | None = None,
                  probe: str | None = None, timeout: float = 300) -> FlashResult:
    """Builds the project (if needed) and flashes it; see the module doc."""
    project = Path(project_dir).resolve()
    brd = project_board(project)
    if board is not None and load_board(board).name != brd.name:
        raise InputError(f"{project} was compiled for board {brd.name}, not {board}; "
                         f"compile it again with --board {board}")
    if not brd.is_arm:
        raise InputError(f"{project} is a host build; there is nothing to flash")
    elf = build_project(project)
    if gdb is not None:
        return flash_gdb(elf, gdb, brd, timeout=timeout)
    method = probe or ("pyocd" if brd.pyocd_target else "openocd" if brd.openocd else None)
    if method == "pyocd":
        return _flash_pyocd(elf, brd, timeout)
    if method == "openocd":
        return _flash_openocd(elf, brd, timeout)
    if method is None:
        raise InputError(f"board {brd.name} has no flash method (no [flash] table); use --gdb HOST:PORT "
                         "with the GDB server of your probe")
    raise InputError(f"unknown probe {method!r}; use pyocd or openocd (or --gdb HOST:PORT)")


def _gdb_binary() -> str:
    for name in GDB_CANDIDATES:
        path = shutil.which(name)
        if path is not None:
            return path
    raise FlashError(f"no GDB found (tried {', '.join(GDB_CANDIDATES)}); install one "
                     f"(Debian: apt-get install {GDB_PACKAGE})")


def _run_gdb(elf: Path, remote: str, commands: list[str], timeout: float) -> str:
    args = [_gdb_binary(), "-nx", "-batch", "-ex", "set confirm off", "-ex", "set pagination off",
            "-ex", "set remotetimeout 30", "-ex", f"target remote {remote}"]
    for command in commands:
        args += ["-ex", command]
    args.append(str(elf))
    try:
        proc = run_process(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"GDB did not finish within {timeout:g}s talking to {remote}") from None
    output = proc.stdout + proc.stderr
    if re.search(r"(Connection refused|Connection timed out|could not connect|Remote communication error)",
                 output, re.IGNORECASE):
        raise FlashError(f"cannot reach a GDB stub at {remote} ({_last_line(output)}); start the probe's GDB "
                         "server (or QEMU with -gdb tcp::PORT) and check host and port")
    return output


def flash_gdb(elf: Path, remote: str, board: Board, *, timeout: float = 300) -> FlashResult:
    """Load, verify (compare-sections) and reset through a GDB remote stub."""
    if not re.match(r"^[^\s:]*:\d+$", remote):
        raise InputError(f"--gdb {remote!r} is not HOST:PORT (e.g. localhost:3333)")
    output = _run_gdb(elf, remote, ["load", "compare-sections", "monitor help", "detach"], timeout)
    if "Transfer rate" not in output and "Start address" not in output:
        raise FlashError(f"GDB could not load {elf} through {remote}: {_last_line(output)}")
    matched = len(re.findall(r"matched\.", output)) - len(re.findall(r"MIS-MATCHED", output))
    if "MIS-MATCHED" in output:
        bad = re.findall(r"Section (\S+), range \S+ -- \S+: MIS-MATCHED", output)
        raise FlashError(f"verify failed after loading {elf} through {remote}: sections {', '.join(bad)} "
                         "differ from the ELF (flash not erased, write-protected, or the wrong target)")
    if matched <= 0:
        raise FlashError(f"GDB loaded {elf} but could not verify it through {remote}: {_last_line(output)}")
    reset = board.gdb_reset or _reset_command(output)
    if reset is None:
        raise FlashError(f"loaded and verified {elf}, but the GDB stub at {remote} has no known reset "
                         "command; set flash.gdb_reset in the board file")
    output += _run_gdb(elf, remote, [reset, "detach"], timeout)
    return FlashResult(method=f"gdb {remote}", elf=elf, sections=matched, log=output)


def _reset_command(monitor_help: str) -> str | None:
    for marker, command in _RESET_BY_STUB:
        if marker in monitor_help:
            return command
    return None


def _flash_pyocd(elf: Path, board: Board, timeout: float) -> FlashResult:
    pyocd = shutil.which("pyocd")
    if pyocd is None:
        raise FlashError("pyocd not found on PATH; install it (pip install pyocd), or use --probe openocd "
                         "or --gdb HOST:PORT")
    if not board.pyocd_target:
        raise InputError(f"board {board.name} has no flash.pyocd_target; use --probe openocd or --gdb")
    log = _run_tool([pyocd, "load", "--target", board.pyocd_target, "--format", "elf", str(elf)], timeout)
    log += _run_tool([pyocd, "reset", "--target", board.pyocd_target], timeout)
    return FlashResult(method="pyocd", elf=elf, sections=0, log=log)


def _flash_openocd(elf: Path, board: Board, timeout: float) -> FlashResult:
    openocd = shutil.which("openocd")
    if openocd is None:
        raise FlashError("openocd not found on PATH; install it (Debian: apt-get install openocd), or use "
                         "--probe pyocd or --gdb HOST:PORT")
    if not board.openocd:
        raise InputError(f"board {board.name} has no flash.openocd configuration; use --probe pyocd or --gdb")
    log = _run_tool([openocd, *openocd_args(board), "-c", f"program {elf.as_posix()} verify reset exit"], timeout)
    return FlashResult(method="openocd", elf=elf, sections=0, log=log)


def openocd_args(board: Board) -> list[str]:
    """-f FILE for each configuration file, -c COMMAND for entries "-c ..."."""
    args: list[str] = []
    for entry in board.openocd:
        if entry.startswith("-c "):
            args += ["-c", entry[3:]]
        else:
            args += ["-f", entry]
    return args


def _run_tool(command: list[str], timeout: float) -> str:
    try:
        proc = run_process(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"{Path(command[0]).name} did not finish within {timeout:g}s") from None
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise FlashError(f"{Path(command[0]).name} failed (exit code {proc.returncode}): {_last_line(output)}; "
                         "check the probe connection and the board's power")
    return output


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
