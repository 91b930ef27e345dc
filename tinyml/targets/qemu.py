"""The qemu-system-arm command line for a board."""

from __future__ import annotations

from pathlib import Path

from tinyml.boards import Board

QEMU_BINARY = "qemu-system-arm"
QEMU_PACKAGE = "qemu-system-arm"
# Harmless lines QEMU prints for every run; run_project drops them.
QEMU_NOISE = ("qemu-system-arm: warning: nic lan9118.0 has no peer",)


def qemu_command(board: Board, kernel: str | Path) -> list[str]:
    """Arguments that boot ``kernel`` (an ELF file) on ``board``.

    Semihosting with target=native lets the firmware read and write files in
    QEMU's working directory, print to QEMU's stderr (SYS_WRITE0) and set
    QEMU's exit status (SYS_EXIT_EXTENDED).  No display, monitor or serial
    port is attached, so nothing reads the terminal.  (The MPS2/MPS3
    machines always create their ethernet controller, so QEMU warns
    "nic lan9118.0 has no peer"; see ``QEMU_NOISE``.)
    """
    if board.kind != "qemu" or board.qemu_machine is None:
        raise ValueError(f"board {board.name!r} is not a QEMU board")
    return [
        QEMU_BINARY,
        "-machine",
        board.qemu_machine,
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "null",
        "-semihosting-config",
        "enable=on,target=native",
        *board.qemu_args,
        "-kernel",
        str(kernel),
    ]
