"""Target side: boards, project rendering, build and run on host and QEMU.

The model is the hand-written fixture in fixtures/dummy_model (see its
model.h); the generated code's API is the same.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tinyml.boards import Board, list_boards, load_board
from tinyml.errors import BoardError, BuildError, RunError
from tinyml.targets import render_project_files, run_project, write_project_files
from tinyml.targets.build import build_project
from tinyml.targets.qemu import qemu_command

FIXTURE = Path(__file__).parent / "fixtures" / "dummy_model"
QEMU_BOARDS = ["mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547"]
ALL_BOARDS = [pytest.param("host", id="host")] + [
    pytest.param(name, id=name, marks=pytest.mark.qemu) for name in QEMU_BOARDS
]
IN0, IN1 = 16, 3  # the dummy model's input sizes
KEY = bytes([0x5A, 0xA5, 0x3C])


def expected_outputs(sample: bytes) -> bytes:
    in0, in1 = sample[:IN0], sample[IN0:]
    return bytes((b + 1) & 0xFF for b in in0) + bytes(in1[2 - i] ^ KEY[i] for i in range(3))


def magic_sample(code: int) -> bytes:
    return bytes([0x7E, code]) + bytes(IN0 - 2 + IN1)


def make_project(directory: Path, board: Board | str, model_dir: Path = FIXTURE) -> Path:
    board = load_board(board) if isinstance(board, str) else board
    write_project_files(directory, render_project_files(board, "dummy"))
    for source in model_dir.iterdir():
        shutil.copy(source, directory / source.name)
    return directory


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {}


@pytest.fixture
def project(request: pytest.FixtureRequest, projects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dummy-model project for the parametrized board, shared by the session."""
    name = request.param
    if name not in projects:
        projects[name] = make_project(tmp_path_factory.mktemp(name), name)
    return projects[name]


def board_params(argnames: str = "project"):
    return pytest.mark.parametrize(argnames, ALL_BOARDS, indirect=True)


# ---------------------------------------------------------------- boards


def test_packaged_boards() -> None:
    boards = {b.name: b for b in list_boards()}
    assert {"host", *QEMU_BOARDS} <= set(boards)  # and the UART boards (tests/test_boards.py)
    assert boards["host"].kind == "host" and boards["host"].ram_bytes is None
    assert boards["mps3-an547"].has("mve") and boards["mps3-an547"].has("dsp")
    assert not boards["mps2-an385"].has("dsp") and not boards["mps2-an385"].has("fpu")
    assert boards["mps2-an386"].has("fpu") and not boards["mps2-an386"].has("mve")
    for board in boards.values():
        if board.name in QEMU_BOARDS:
            assert board.ram_bytes >= 2 << 20 and board.flash_bytes >= 2 << 20
            assert board.qemu_machine == board.name
    assert load_board(str(boards["mps2-an505"].path)) == boards["mps2-an505"]
    with pytest.raises(ValueError):
        boards["host"].has("neon")


def test_unknown_board_lists_known_ones() -> None:
    with pytest.raises(BoardError, match="mps2-an385"):
        load_board("no-such-board")


BROKEN = [
    # (description, edit of mps2-an385.toml, key expected in the message)
    ("missing ram", lambda t: t.replace('ram = { origin = 0x20000000, size = 0x00400000 }', ""), "memory.ram"),
    ("size not int", lambda t: t.replace("size = 0x00400000 }    #", 'size = "4M" }    #'), "memory.ram.size"),
    ("bad feature", lambda t: t.replace("features = []", 'features = ["neon"]'), "features"),
    ("dsp on m3", lambda t: t.replace("features = []", 'features = ["dsp"]'), "features"),
    ("unknown key", lambda t: t.replace("[qemu]", "[qemu]\nmachin = 1"), "qemu.machin"),
    ("bad kind", lambda t: t.replace('kind = "qemu"', 'kind = "simulator"'), "kind"),
    ("overlap", lambda t: t.replace("origin = 0x20000000", "origin = 0x00100000"), "memory.ram"),
    ("stack too big", lambda t: t.replace("stack_bytes = 0x8000", "stack_bytes = 0x10000000"), "stack_bytes"),
    ("no qemu table", lambda t: t.split("[qemu]")[0], "qemu"),
    ("flags one string", lambda t: t.replace('"-mcpu=cortex-m3", "-mthumb"', '"-mcpu=cortex-m3 -mthumb"'), "compiler.cflags"),
    ("toml syntax", lambda t: t.replace("stack_bytes = 0x8000", "stack_bytes = = 0x8000"), "TOML"),
]


@pytest.mark.parametrize("edit,key", [pytest.param(e, k, id=d) for d, e, k in BROKEN])
def test_broken_board_file(tmp_path: Path, edit, key: str) -> None:
    text = load_board("mps2-an385").path.read_text()
    broken = edit(text)
    assert broken != text
    path = tmp_path / "mps2-an385.toml"
    path.write_text(broken)
    with pytest.raises(BoardError) as info:
        load_board(str(path))
    message = str(info.value)
    assert str(path) in message and key in message
    assert "\n" not in message


# ---------------------------------------------------------------- projects


def test_render_project_files() -> None:
    host = render_project_files(load_board("host"), "kws")
    assert set(host) == {"Makefile", "main.c", "board.toml", "runtime/tml_runtime.h", "runtime/io_host.c"}
    assert "kws_invoke()" in host["main.c"] and "KWS_NUM_INPUTS" in host["main.c"]
    arm = render_project_files(load_board("mps3-an547"), "kws")
    assert {f for f in arm if not f.startswith("hostlink/")} == {  # hostlink/: make HOSTLINK=1
        "Makefile", "main.c", "board.toml", "linker.ld",
        "runtime/tml_runtime.h", "runtime/startup.c", "runtime/semihost.c", "runtime/profile.c",
    }
    assert "0x28000000" in arm["linker.ld"] and "VECTORS" in arm["linker.ld"]
    assert "-mcpu=cortex-m55" in arm["Makefile"] and "mps3-an547" in arm["Makefile"]
    with pytest.raises(ValueError):
        render_project_files(load_board("host"), "Bad-Name")


def test_qemu_command() -> None:
    command = qemu_command(load_board("mps2-an505"), "fw.elf")
    assert command[0] == "qemu-system-arm"
    assert command[command.index("-machine") + 1] == "mps2-an505"
    assert "enable=on,target=native" in command and command[-2:] == ["-kernel", "fw.elf"]


# ---------------------------------------------------------------- build and run


@board_params()
def test_runs_bit_exact(project: Path) -> None:
    rng = random.Random(1)
    samples = [bytes(rng.randrange(256) for _ in range(IN0 + IN1)) for _ in range(5)]
    samples[0] = bytes([0xFF]) * (IN0 + IN1)  # wraps around
    result = run_project(project, b"".join(samples), timeout=30)
    assert result.exit_code == 0
    assert result.output == b"".join(expected_outputs(s) for s in samples)
    assert result.trace is None
    assert "dummy: 5 samples" in result.console
    assert result.seconds < 30


@board_params()
def test_empty_input(project: Path) -> None:
    result = run_project(project, b"", timeout=30)
    assert result.output == b"" and "dummy: 0 samples" in result.console


@board_params()
def test_trace(project: Path) -> None:
    samples = [bytes(range(i, i + IN0 + IN1)) for i in range(3)]
    result = run_project(project, b"".join(samples), trace=True, timeout=30)
    assert result.output == b"".join(expected_outputs(s) for s in samples)
    records = []
    trace = result.trace
    assert trace is not None
    while trace:
        op, size = struct.unpack_from("<iI", trace)
        records.append((op, trace[8:8 + size]))
        trace = trace[8 + size:]
    expected = []
    for sample in samples:
        out = expected_outputs(sample)
        expected += [(0, out[:IN0]), (1, out[IN0:])]
    assert records == expected
    assert (project / "build-trace").is_dir()


@board_params()
def test_partial_sample(project: Path) -> None:
    data = bytes(IN0 + IN1) + bytes(IN0)  # one sample and a half
    result = run_project(project, data, timeout=30, check=False)
    assert result.exit_code == 4
    assert result.output == expected_outputs(bytes(IN0 + IN1))
    with pytest.raises(RunError, match="exit code 4"):
        run_project(project, data, timeout=30)


@board_params()
def test_invoke_failure(project: Path) -> None:
    result = run_project(project, magic_sample(1), timeout=30, check=False)
    assert result.exit_code == 5
    assert "dummy_invoke failed" in result.console
    with pytest.raises(RunError, match=r"exit code 5 .*invoke"):
        run_project(project, magic_sample(1), timeout=30)


@board_params()
def test_fault(project: Path) -> None:
    result = run_project(project, magic_sample(3), timeout=30, check=False)
    if load_board(project / "board.toml").kind == "host":
        assert result.exit_code != 0  # SIGILL from the trap instruction
    else:
        assert result.exit_code == 3
        assert "tinyml: fault: HardFault pc=0x" in result.console


@board_params()
def test_stack_overflow(project: Path) -> None:
    result = run_project(project, magic_sample(4), timeout=30, check=False)
    if load_board(project / "board.toml").kind == "host":
        assert result.exit_code != 0 and "stack-overflow" in result.console
    else:  # caught by the MPU guard (Armv7-M) or the stack limit (Armv8-M)
        assert result.exit_code == 3
        assert "tinyml: fault: HardFault" in result.console


@board_params()
def test_hang_is_caught(project: Path) -> None:
    """A firmware that hangs is killed at the timeout: no process of it (the host binary or QEMU) is left."""
    binary = build_project(project)  # so the timeout measures the run only
    with pytest.raises(RunError, match="did not finish within 0.5s"):
        run_project(project, magic_sample(2), timeout=0.5)
    assert running_with(str(binary)) == []


def running_with(word: str) -> list[int]:
    """The running processes with ``word`` among their arguments (zombies do not count)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if word.encode() in args and state not in ("Z", "X"):
            pids.append(int(proc.name))
    return pids


@pytest.mark.parametrize("board", ["host", pytest.param("mps2-an386", marks=pytest.mark.qemu)])
def test_make_run_by_hand(tmp_path: Path, board: str) -> None:
    project = make_project(tmp_path, board)
    sample = bytes(range(IN0 + IN1))
    (project / "input.bin").write_bytes(sample)
    subprocess.run(["make", "-s", "run"], cwd=project, check=True, capture_output=True)
    assert (project / "output.bin").read_bytes() == expected_outputs(sample)
    subprocess.run(["make", "-s", "TRACE=1", "run"], cwd=project, check=True, capture_output=True)
    assert (project / "trace.bin").stat().st_size == 2 * 8 + IN0 + IN1
    subprocess.run(["make", "-s", "clean"], cwd=project, check=True)
    assert not (project / "build").exists() and not (project / "build-trace").exists()


@pytest.mark.parametrize("board", ["host", pytest.param("mps2-an385", marks=pytest.mark.qemu)])
def test_compile_error(tmp_path: Path, board: str) -> None:
    project = make_project(tmp_path, board)
    (project / "extra.c").write_text("int tml_extra(void) { int unused; return 0; }\n")
    with pytest.raises(BuildError, match=r"extra\.c.*unused"):  # -Werror
        build_project(project)


def test_missing_compiler(tmp_path: Path) -> None:
    text = load_board("mps2-an385").path.read_text().replace(
        "[compiler]", '[compiler]\ncc = "arm-none-eabi-gcc-missing"'
    )
    (tmp_path / "b.toml").write_text(text)
    project = make_project(tmp_path / "p", load_board(str(tmp_path / "b.toml")))
    with pytest.raises(BuildError, match="arm-none-eabi-gcc-missing not found"):
        build_project(project)


def test_missing_cross_compiler_names_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(tmp_path / "p", "mps2-an385")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "make").symlink_to(shutil.which("make"))  # make only, no compiler
    monkeypatch.setenv("PATH", str(tools))
    with pytest.raises(BuildError, match="gcc-arm-none-eabi"):
        build_project(project)


@pytest.mark.qemu
def test_model_too_big_for_flash(tmp_path: Path) -> None:
    text = load_board("mps2-an385").path.read_text().replace(
        "flash = { origin = 0x00000000, size = 0x00400000 }", "flash = { origin = 0x00000000, size = 0x00000200 }"
    )
    (tmp_path / "tiny.toml").write_text(text)
    project = make_project(tmp_path / "p", load_board(str(tmp_path / "tiny.toml")))
    with pytest.raises(BuildError, match="region `FLASH' overflowed"):
        build_project(project)


def test_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not a tinyml firmware project"):
        run_project(tmp_path, b"")
