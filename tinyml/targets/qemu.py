"""The qemu-system-arm command line for a board."""

from __future__ import annotations

from pathlib import Path

from tinyml.boards import Board

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
