"""Run a built firmware project on its board: a host process, QEMU (tensors in files
through semihosting, or over the board's UART and the host link), or its test in Renode."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tinyml.errors import RunError
from tinyml.targets.build import build_hostlink, build_project, project_board
from tinyml.targets.hostlink import connect
from tinyml.targets.process import kill_group, process_group, run_process
from tinyml.targets.qemu import QEMU_BINARY, QEMU_NOISE, QEMU_PACKAGE, qemu_command, qemu_uart
from tinyml.targets.renode import RENODE_HELP

# Exit codes of the firmware, as in firmware/tml_runtime.h.
EXIT_MEANINGS = {
    0: "success",
    3: "CPU fault (HardFault, UsageFault, ...)",
    4: "input.bin ends in the middle of a sample (wrong input size?)",
    5: "the model's invoke returned an error",
    6: "the firmware could not open, read or write a file",
}
_CONSOLE_TAIL_LINES = 8


@dataclass
class RunResult:
    exit_code: int
    output: bytes  # contents of output.bin
    trace: bytes | None  # contents of trace.bin (trace runs only)
    console: str  # what the firmware (and QEMU or the sanitizers) printed
    seconds: float  # wall time of the run, without the build


def run_project(
    project_dir: Path,
    input_bytes: bytes,
    *,
    trace: bool = False,
    timeout: float = 120,
    check: bool = True,
    resets: Sequence[int] = (),
) -> RunResult:
    """Build (if needed) and run a project on ``input_bytes``.

    The firmware runs in a fresh temporary directory holding ``input.bin``;
    its ``output.bin`` (and ``trace.bin`` when ``trace``) are returned.  A
    run that exceeds ``timeout`` seconds is killed and raises RunError; so
    does a nonzero exit code unless ``check`` is False.  A model with state keeps it from one sample to the
    next (one sequence of invocations) but before the sample indices ``resets`` (the firmware's reset.bin).
    """
    project_dir = Path(project_dir).resolve()
    board = project_board(project_dir)
    if board.kind == "qemu" and board.host_io == "uart":
        # Tensors move over the board's UART (tinyml.targets.hostlink), not files.
        if resets:
            raise RunError(f"board {board.name} exchanges tensors over its UART, whose host link has no reset; "
                           "run sequences with resets on an MPS2/MPS3 board or the host")
        if trace:
            raise RunError(f"board {board.name} exchanges tensors over its UART, which has no per-operator "
                           "trace; locate differences on an MPS2/MPS3 board with the same core")
        return run_project_over_uart(project_dir, input_bytes, timeout=timeout)
    binary = build_project(project_dir, trace=trace)
    if board.kind == "qemu":
        if shutil.which(QEMU_BINARY) is None:
            raise RunError(f"{QEMU_BINARY} not found on PATH; install it (Debian: apt-get install {QEMU_PACKAGE})")
        command = qemu_command(board, binary)
    elif board.kind == "host":
        command = [str(binary)]
    else:
        raise RunError(f"board {board.name} is real hardware; run_project supports host and QEMU boards only")

    with tempfile.TemporaryDirectory(prefix="tinyml-run-") as workdir:
        work = Path(workdir)
        (work / "input.bin").write_bytes(input_bytes)
        if resets:
            (work / "reset.bin").write_bytes(b"".join(struct.pack("<I", i) for i in sorted(resets)))
        env = dict(os.environ)
        # Sanitizer reports end the run with a nonzero code; keep them short.
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        start = time.monotonic()
        with process_group(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
            try:
                raw, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                raw, _ = proc.communicate()
                console = _clean_console(raw)
                raise RunError(
                    f"{project_dir.name} on {board.name} did not finish within {timeout:g}s "
                    f"(it hung or is too slow){_tail(console)}; raise the timeout or debug with "
                    f"'make run' in {project_dir}"
                ) from None
        seconds = time.monotonic() - start
        console = _clean_console(raw)
        output_path = work / "output.bin"
        trace_path = work / "trace.bin"
        result = RunResult(
            exit_code=proc.returncode,
            output=output_path.read_bytes() if output_path.is_file() else b"",
            trace=(trace_path.read_bytes() if trace_path.is_file() else b"") if trace else None,
            console=console,
            seconds=seconds,
        )
    if check and result.exit_code != 0:
        raise RunError(
            f"{project_dir.name} on {board.name} failed with exit code {result.exit_code} "
            f"({_meaning(result.exit_code)}){_tail(result.console)}; reproduce with 'make run' "
            f"in {project_dir} after copying the input there as input.bin"
        )
    return result


def run_project_over_uart(project_dir: Path, input_bytes: bytes, *, timeout: float = 120.0) -> RunResult:
    """``run_project`` for QEMU boards whose tensors move over the UART:
    boots the host-link firmware, runs every sample, returns a RunResult."""
    board = project_board(project_dir)
    binary = build_project(project_dir) if board.host_io == "uart" else build_hostlink(project_dir)
    start = time.monotonic()
    with qemu_uart(board, binary) as session:
        link = connect(session.url, timeout=min(timeout, 30.0))
        with link:
            # The banner may be lost while QEMU connects the socket; the
            # INFO request (with its retries) is the handshake.
            link.poll(0.1)
            info = link.info()
            per_sample = sum(t.bytes for t in info.inputs)
            if per_sample == 0 or len(input_bytes) % per_sample:
                raise RunError(f"the input is {len(input_bytes)} bytes, not a multiple of the model's "
                               f"{per_sample} bytes per sample")
            outputs = []
            deadline = start + timeout
            for pos in range(0, len(input_bytes), per_sample):
                if time.monotonic() > deadline:
                    raise RunError(f"{project_dir.name} on {board.name} did not finish within {timeout:g}s "
                                   "over the host link; raise the timeout")
                sample, offset = [], pos
                for spec in info.inputs:
                    sample.append(input_bytes[offset:offset + spec.bytes])
                    offset += spec.bytes
                outs, _cycles = link.run_bytes(sample)
                outputs.append(b"".join(outs))
            console = link.console
        console += session.stderr()
    return RunResult(exit_code=0, output=b"".join(outputs), trace=None, console=console,
                     seconds=time.monotonic() - start)


@dataclass
class RenodeResult:
    passed: bool
    output: str
    robot: Path


def run_renode(project_dir: str | Path, *, timeout: float = 600) -> RenodeResult:
    """Builds the project and runs its Robot Framework test in Renode."""
    project = Path(project_dir).resolve()
    board = project_board(project)
    robot = project / "renode" / f"{board.name}.robot"
    if not robot.is_file():
        raise RunError(f"{project} has no Renode test: Renode has no platform for board {board.name} "
                       "(no [renode] table in its board file); run it with tinyml run instead")
    runner = shutil.which("renode-test")
    if runner is None:
        raise RunError(f"Renode is not installed (renode-test not found on PATH); {RENODE_HELP}")
    build_project(project)
    try:
        proc = run_process([runner, str(robot)], cwd=robot.parent, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f"the Renode test {robot} did not finish within {timeout:g}s") from None
    return RenodeResult(passed=proc.returncode == 0, output=proc.stdout + proc.stderr, robot=robot)


def _clean_console(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return "".join(line for line in text.splitlines(keepends=True) if line.rstrip("\r\n") not in QEMU_NOISE)


def _meaning(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return EXIT_MEANINGS.get(code, "unexpected exit code; see the console output")


def _tail(console: str) -> str:
    lines = [line.strip() for line in console.splitlines() if line.strip()]
    if not lines:
        return "; no console output"
    return "; console: " + " | ".join(lines[-_CONSOLE_TAIL_LINES:])

