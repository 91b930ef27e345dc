"""The board catalogue: UART boards under QEMU and real boards.

Every real board's firmware (the DS-CNN with the host link) builds with
arm-none-eabi-gcc under -Wall -Wextra -Werror and fits the board; the
RP2040 boot loader's bytes and CRC; the fit check; Renode files.
"""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path

import pytest

from tests.modelgen import build, cache_path, zoo_cases
from tinyml.boards import list_boards, load_board
from tinyml.cli import main as cli_main
from tinyml.compiler import build_model, compile_model, fit_of
from tinyml.errors import BoardError, FitError
from tinyml.resources import resource_dir
from tinyml.targets.build import LinkFitError, build_project

HARDWARE = ["nucleo-l4r5zi", "stm32f746g-disco", "nucleo-h743zi2", "nrf52840-dk", "rp2040-pico"]
UART_QEMU = ["netduinoplus2", "microbit"]


def ds_cnn() -> Path:
    c = zoo_cases("ds_cnn")[0]
    build(c)
    return cache_path(c)


def test_catalogue() -> None:
    boards = {b.name: b for b in list_boards()}
    assert set(HARDWARE + UART_QEMU) <= set(boards)
    for name in HARDWARE:
        b = boards[name]
        assert b.kind == "hardware" and b.host_io == "uart" and b.uart_driver and b.clock_driver
        assert b.cpu_hz and b.pyocd_target and b.openocd
    micro = boards["microbit"]
    assert (micro.cpu, micro.arch, micro.ram_bytes, micro.flash_bytes) == ("cortex-m0", "armv6-m", 16384, 262144)
    assert boards["netduinoplus2"].uart_base == 0x40011000 and boards["netduinoplus2"].qemu_machine == "netduinoplus2"
    assert boards["rp2040-pico"].boot2_origin == 0x10000000 and boards["rp2040-pico"].flash_origin == 0x10000100
    assert boards["nucleo-h743zi2"].has("fpu") and not boards["rp2040-pico"].has("dsp")
    renode = {n for n, b in boards.items() if b.renode_platform}
    assert {"netduinoplus2", "stm32f746g-disco", "nucleo-h743zi2", "nrf52840-dk"} <= renode


def test_boards_command_lists_everything(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in HARDWARE + UART_QEMU:
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        b = load_board(name)
        assert f"{b.ram_bytes // 1024}KB" in line and b.cpu in line
    assert "16KB" in out and "cortex-m0plus" in out


BROKEN = [
    ("uart without clock", lambda t: t.split("[clock]")[0] + "[uart]" + t.split("[uart]")[1], "clock"),
    ("bad uart driver", lambda t: t.replace('driver = "nrf-uart"', 'driver = "usb"'), "driver"),
    ("uart without base", lambda t: "\n".join(x for x in t.splitlines() if not x.startswith("base =")), "uart.base"),
    ("string in uart", lambda t: t.replace("tx_pin = 6", 'tx_pin = "P0.06"'), "uart.tx_pin"),
    ("no flash method", lambda t: t.split("[flash]")[0] + "[renode]" + t.split("[renode]")[1], "flash"),
    ("semihosting on hardware", lambda t: t.replace('kind = "hardware"', 'kind = "hardware"\nhost_io = "semihosting"'),
     "host_io"),
]


def _refused(tmp_path: Path, board: str, edit) -> str:
    """The one-line error of loading ``board``'s file after ``edit``."""
    text = load_board(board).path.read_text()
    broken = edit(text)
    assert broken != text
    path = tmp_path / "b.toml"
    path.write_text(broken)
    with pytest.raises(BoardError) as info:
        load_board(str(path))
    return str(info.value)


@pytest.mark.parametrize("edit,key", [pytest.param(e, k, id=d) for d, e, k in BROKEN])
def test_broken_board_file(tmp_path: Path, edit, key: str) -> None:
    message = _refused(tmp_path, "nrf52840-dk", edit)
    assert key in message and "\n" not in message


def test_fit_check_says_by_how_much(tmp_path: Path) -> None:
    text = load_board("microbit").path.read_text().replace("size = 0x00004000 }", "size = 0x00002000 }")
    (tmp_path / "tiny.toml").write_text(text)
    with pytest.raises(FitError, match=r"board microbit has 8192, \d+ bytes too many"):
        build_model(ds_cnn(), str(tmp_path / "tiny.toml"))


@pytest.mark.qemu
def test_link_overflow_is_a_fit_error(tmp_path: Path) -> None:
    """RAM that passes the estimate (arena + stacks + host-link buffers + the runtime statics, estimated
    low) but not the linker, which counts the runtime's statics exactly."""
    board = load_board("netduinoplus2")
    estimate = fit_of(build_model(ds_cnn(), board)).ram_bytes
    size = (estimate + 3) // 4 * 4
    text = board.path.read_text().replace("size = 0x00020000 }", f"size = {size:#x} }}")
    (tmp_path / "small.toml").write_text(text)
    compile_model(ds_cnn(), str(tmp_path / "small.toml"), tmp_path / "p")
    with pytest.raises(LinkFitError, match=rf"region `RAM' overflowed by \d+ bytes \(board netduinoplus2 has {size}"):
        build_project(tmp_path / "p")


def _region_use(elf: Path) -> dict[str, tuple[int, int]]:
    """Section name -> (address, size) of every allocated section."""
    out = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], check=True, capture_output=True, text=True).stdout
    sections = {}
    lines = out.splitlines()
    for line, flags in zip(lines, lines[1:]):
        parts = line.split()
        if len(parts) >= 7 and parts[0].isdigit() and "ALLOC" in flags:
            sections[parts[1]] = (int(parts[3], 16), int(parts[2], 16))
    return sections


@pytest.mark.qemu
@pytest.mark.parametrize("board", HARDWARE + UART_QEMU)
def test_firmware_builds_warning_free_and_fits(tmp_path: Path, board: str) -> None:
    model = ds_cnn()
    if board == "microbit":
        from tests.test_hostlink import small_ds_cnn

        model = small_ds_cnn()
    compile_model(model, board, tmp_path / "p")
    elf = build_project(tmp_path / "p")  # -Wall -Wextra -Werror
    log = (tmp_path / "p" / "build" / "make.log").read_text()
    assert "warning:" not in log.lower()
    b = load_board(board)
    flash_end = b.flash_origin + b.flash_bytes
    ram_end = b.ram_origin + b.ram_bytes
    sections = _region_use(elf)
    for name, (address, size) in sections.items():
        if name in (".stack", ".bss", ".handler_stack"):
            assert b.ram_origin <= address and address + size <= ram_end, name
        elif name == ".boot2":
            assert (address, size) == (0x10000000, 256)
        elif name == ".data":
            assert b.ram_origin <= address and address + size <= ram_end
        else:
            assert b.flash_origin <= address and address + size <= flash_end, name
    assert ".bss" in sections and ".text" in sections


def _crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


@pytest.mark.qemu
def test_rp2040_boot2_matches_its_source_and_crc(tmp_path: Path) -> None:
    source = resource_dir("firmware") / "uart" / "rp2040_boot2.S"
    subprocess.run(["arm-none-eabi-as", "-o", str(tmp_path / "b.o"), str(source)], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".boot2", str(tmp_path / "b.o"),
                    str(tmp_path / "b.bin")], check=True)
    code = (tmp_path / "b.bin").read_bytes()
    assert len(code) == 252
    text = (resource_dir("firmware") / "uart" / "rp2040_boot2.c").read_text()
    array = bytes(int(v, 16) for v in text.split("{", 1)[1].split("}", 1)[0].replace(",", " ").split())
    assert array[:252] == code
    assert int.from_bytes(array[252:], "little") == _crc32_mpeg2(code) != zlib.crc32(code)


def test_renode_files(tmp_path: Path) -> None:
    compiled = compile_model(ds_cnn(), "netduinoplus2", tmp_path / "p", name="kws")
    resc = (tmp_path / "p" / "renode" / "netduinoplus2.resc").read_text()
    robot = (tmp_path / "p" / "renode" / "netduinoplus2.robot").read_text()
    assert "LoadPlatformDescription @platforms/cpus/stm32f4.repl" in resc
    assert "sysbus LoadELF $bin" in resc and "$ORIGIN/../build/firmware.elf" in resc
    assert "showAnalyzer sysbus.usart1" in resc
    assert "Create Terminal Tester    ${UART}" in robot and "sysbus.usart1" in robot
    assert "tinyml hostlink 1: model kws on netduinoplus2" in robot and "m-name-dut-[tinyml]" in robot
    assert compiled.board.renode_platform
    compile_model(ds_cnn(), "mps2-an386", tmp_path / "q")
    assert not (tmp_path / "q" / "renode").exists()


def test_run_renode_without_renode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    compile_model(ds_cnn(), "stm32f746g-disco", tmp_path / "p")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code = cli_main(["run", str(tmp_path / "p"), "--renode"])
    err = capsys.readouterr().err
    assert code == 2 and "Renode is not installed" in err and "https://renode.io" in err


# ---------------------------------------------------------------- hostile board files (issue 19)

HOSTILE = [
    ("nested 3000 deep", lambda t: t + "\n[deep]\nx = " + "[" * 3000 + "]" * 3000 + "\n",
     "nests tables or arrays too deeply"),
    ("serial 2**32-1", lambda t: t.replace("args = []", "args = []\nserial = 4294967295"),
     "key 'qemu.serial': 4294967295 (0xffffffff) is out of range; use a value from 0 to 3"),
    ("baud 0", lambda t: t.replace("baud = 115200", "baud = 0"),
     "key 'uart.baud': 0 (0x0) is out of range; use a value from 300 to 12000000"),
    ("newline in description", lambda t: t.replace('under QEMU"', 'under QEMU\\nrm -rf ~"', 1),
     "key 'description': is not one printable line ('\\n' at character 39)"),
    ("cpu_hz 0", lambda t: t.replace("cpu_hz = 25000000", "cpu_hz = 0"), "key 'clock.cpu_hz': 0 (0x0) is out of range"),
    ("shell in a flag", lambda t: t.replace('"-mthumb"', '"-mthumb$(shell id)"'), "is not a single compiler flag"),
    ("space in machine", lambda t: t.replace('machine = "mps2-an386"', 'machine = "mps2 -s"'),
     "key 'qemu.machine'"),
    ("odd uart base", lambda t: t.replace("base = 0x40004000", "base = 0x40004001"), "key 'uart.base'"),
    ("16 wait states", lambda t: t + "\n[timing]\nflash_wait_states = 16\n",
     "key 'timing.flash_wait_states': 16 (0x10) is out of range; use a value from 0 to 15"),
    ("flash_cache a string", lambda t: t + '\n[timing]\nflash_cache = "yes"\n',
     "key 'timing.flash_cache': must be true or false"),
    ("unknown timing key", lambda t: t + "\n[timing]\nsram_wait_states = 1\n", "key 'timing.sram_wait_states'"),
]


@pytest.mark.parametrize("edit,expected", [pytest.param(e, x, id=d) for d, e, x in HOSTILE])
def test_hostile_board_file(tmp_path: Path, edit, expected: str) -> None:
    message = _refused(tmp_path, "mps2-an386", edit)
    assert expected in message and "\n" not in message, message


def test_hostile_board_file_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("name = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n")
    code = cli_main(["compile", str(ds_cnn()), "-b", str(path), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"tinyml: error: {path}: nests tables or arrays too deeply")
    assert not (tmp_path / "o").exists()


def test_every_packaged_board_is_within_the_ranges() -> None:
    for board in list_boards():
        assert board.description.isprintable() and 0 <= board.qemu_serial <= 3
        assert all(300 <= v <= 12_000_000 for k, v in board.uart if k == "baud")
