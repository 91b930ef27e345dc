"""`tinyml flash` through a GDB remote stub, tested against QEMU's gdbstub:
QEMU starts with empty flash and halted; tinyml flash loads the firmware,
verifies every section and resets the machine; the firmware's banner then
arrives over the serial link, and it answers the host link.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from tests.test_boards import ds_cnn
from tinyml.boards import load_board
from tinyml.cli import main as cli_main
from tinyml.compiler import compile_model
from tinyml.errors import InputError
from tinyml.targets.flash import FlashError, flash_project, openocd_args
from tinyml.targets.hostlink import connect
from tinyml.targets.qemu import qemu_uart


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.qemu
@pytest.mark.parametrize("board", ["netduinoplus2", "mps2-an386"])
def test_flash_through_qemu_gdbstub(tmp_path: Path, board: str, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "kws"
    compile_model(ds_cnn(), board, project, name="kws")
    if load_board(board).host_io != "uart":
        # Semihosting boards: flash the host-link variant's ELF through the
        # same path (the project's default firmware talks over semihosting).
        from tinyml.targets.build import build_hostlink

        elf = build_hostlink(project)
    gdb_port = _free_port()
    with qemu_uart(board, None, extra=["-S", "-gdb", f"tcp:127.0.0.1:{gdb_port}"]) as session:
        link = connect(session.url)
        if load_board(board).host_io == "uart":
            assert cli_main(["flash", str(project), "--board", board, "--gdb", f"127.0.0.1:{gdb_port}"]) == 0
            out = capsys.readouterr().out
            assert "sections verified" in out and "reset" in out
        else:
            from tinyml.targets.flash import flash_gdb

            result = flash_gdb(elf, f"127.0.0.1:{gdb_port}", load_board(board))
            assert result.sections >= 3
        text = link.read_text_until("m-ready", timeout=30)
        assert f"tinyml hostlink 1: model kws on {board}" in text
        assert link.info().model == "kws"
        link.close()


@pytest.mark.qemu
def test_flash_verify_detects_wrong_memory(tmp_path: Path) -> None:
    """The ELF for netduinoplus2 loaded into an MPS2 machine, where there is
    no memory at 0x08000000: loading or verifying must fail loudly."""
    project = tmp_path / "kws"
    compile_model(ds_cnn(), "netduinoplus2", project)
    from tinyml.targets.flash import flash_gdb
    from tinyml.targets.build import build_project

    elf = build_project(project)
    gdb_port = _free_port()
    with qemu_uart("mps2-an386", None, extra=["-S", "-gdb", f"tcp:127.0.0.1:{gdb_port}"]) as session:
        link = connect(session.url)
        with pytest.raises(FlashError):
            flash_gdb(elf, f"127.0.0.1:{gdb_port}", load_board("netduinoplus2"))
        link.close()


def test_flash_errors(tmp_path: Path) -> None:
    project = tmp_path / "kws"
    compile_model(ds_cnn(), "nucleo-l4r5zi", project)
    with pytest.raises(InputError, match="compiled for board nucleo-l4r5zi, not microbit"):
        flash_project(project, "microbit", gdb="localhost:1")
    with pytest.raises(InputError, match="is not HOST:PORT"):
        flash_project(project, gdb="nowhere")
    if shutil.which("gdb-multiarch") or shutil.which("arm-none-eabi-gdb"):
        with pytest.raises(FlashError, match="cannot reach a GDB stub at 127.0.0.1:1"):
            flash_project(project, gdb="127.0.0.1:1", timeout=60)
    if shutil.which("pyocd") is None:
        with pytest.raises(FlashError, match="pyocd not found on PATH"):
            flash_project(project, probe="pyocd")


def test_openocd_arguments() -> None:
    assert openocd_args(load_board("nrf52840-dk")) == [
        "-f", "interface/jlink.cfg", "-c", "transport select swd", "-f", "target/nrf52.cfg"]
    assert openocd_args(load_board("nucleo-h743zi2")) == ["-f", "interface/stlink.cfg", "-f", "target/stm32h7x.cfg"]
