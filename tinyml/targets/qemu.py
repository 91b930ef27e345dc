"""QEMU: the qemu-system-arm command line for a board, and a QEMU session
whose board UART listens on a local TCP port (for the host link)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tinyml.boards import Board, load_board
from tinyml.errors import RunError
from tinyml.targets.process import kill_group, spawn_process

QEMU_BINARY = "qemu-system-arm"
QEMU_PACKAGE = "qemu-system-arm"
# Harmless lines QEMU prints for every run; run_project drops them.
QEMU_NOISE = ("qemu-system-arm: warning: nic lan9118.0 has no peer",)


def qemu_command(board: Board, kernel: str | Path | None, *, serial: str = "null",
                 extra: list[str] | None = None) -> list[str]:
    """Arguments that boot ``kernel`` (an ELF file) on ``board``.

    Semihosting with target=native lets the firmware read and write files in
    QEMU's working directory, print to QEMU's stderr (SYS_WRITE0) and set
    QEMU's exit status (SYS_EXIT_EXTENDED).  No display, monitor or serial
    port is attached, so nothing reads the terminal.  (The MPS2/MPS3
    machines always create their ethernet controller, so QEMU warns
    "nic lan9118.0 has no peer"; see ``QEMU_NOISE``.)
    ``serial`` is the chardev of the board's UART (``board.qemu_serial``
    picks which -serial that is), e.g. "tcp:127.0.0.1:4321,server=on" for the
    host link; ``kernel`` None boots nothing (for loading through the gdbstub).
    """
    if board.kind != "qemu" or board.qemu_machine is None:
        raise ValueError(f"board {board.name!r} is not a QEMU board")
    serials: list[str] = []
    for index in range(board.qemu_serial + 1):
        serials += ["-serial", serial if index == board.qemu_serial else "null"]
    return [
        QEMU_BINARY,
        "-machine",
        board.qemu_machine,
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        *serials,
        "-semihosting-config",
        "enable=on,target=native",
        *board.qemu_args,
        *(extra or []),
        *(["-kernel", str(kernel)] if kernel is not None else []),
    ]


# ---------------------------------------------------------------- a session with the UART on TCP


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class QemuSession:
    """A QEMU process whose board UART listens on ``port`` (TCP)."""

    process: subprocess.Popen[bytes]
    port: int
    url: str
    log: Path

    def stderr(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@contextlib.contextmanager
def qemu_uart(board_name_or_board: object, kernel: Path | None, *, extra: list[str] | None = None,
              wait_for_client: bool = True) -> Iterator[QemuSession]:
    """Starts QEMU for ``kernel`` with the board's UART on a local TCP port;
    kills it on exit."""
    board = board_name_or_board if isinstance(board_name_or_board, Board) else load_board(str(board_name_or_board))
    if shutil.which(QEMU_BINARY) is None:
        raise RunError(f"{QEMU_BINARY} not found on PATH; install it (Debian: apt-get install {QEMU_PACKAGE})")
    with tempfile.TemporaryDirectory(prefix="tinyml-qemu-") as tmp:
        log = Path(tmp) / "qemu.log"
        for _attempt in range(5):
            port = _free_port()
            serial = f"tcp:127.0.0.1:{port},server=on,wait={'on' if wait_for_client else 'off'}"
            command = qemu_command(board, kernel, serial=serial, extra=extra)
            with open(log, "wb") as out:
                proc = spawn_process(command, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
            try:
                listening = _wait_listening(proc, port, seconds=10)
            except BaseException:  # Ctrl-C while QEMU starts: no QEMU left behind
                kill_group(proc)
                raise
            if listening:
                break
            kill_group(proc)
            if "Address already in use" not in log.read_text(errors="replace"):
                raise RunError(f"QEMU did not start for board {board.name}: "
                               f"{log.read_text(errors='replace').strip()[-400:]}")
        else:
            raise RunError("QEMU could not get a free TCP port for the UART; try again")
        try:
            yield QemuSession(process=proc, port=port, url=f"socket://127.0.0.1:{port}", log=log)
        finally:
            kill_group(proc)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, *, seconds: float) -> bool:
    """Whether QEMU listens on ``port`` within ``seconds`` (False: it exited or is still not listening)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if _listening(port):
            return True
        time.sleep(0.02)
    return False


def _listening(port: int) -> bool:
    # QEMU with wait=on accepts exactly one client: probe with /proc instead
    # of connecting.
    try:
        with open("/proc/net/tcp") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return True  # not Linux: assume listening and let the connect retry
    want = f"0100007F:{port:04X}"
    return any(line.split()[1] == want and line.split()[3] == "0A" for line in lines if len(line.split()) > 3)

