"""`tinyml profile --port` (cycles per layer over the host link) and the host-link firmware's memory checks.

Everything runs against the real host-link firmware under QEMU through its
UART on a local socket (pyserial's socket://).  QEMU 7.2 does not model the
DWT, so there the firmware's cycle counter must fall back to SysTick (or
none); the tests assert the report's structure and that the layers add up,
not particular cycle counts (SysTick under QEMU follows the host's clock).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.modelgen import build, cache_path, case, zoo_cases
from tinyml.cli import main as cli_main
from tinyml.compiler import compile_model
from tinyml.errors import InputError
from tinyml.graph import load_tflite
from tinyml.targets.build import build_hostlink
from tinyml.targets.hostlink import LinkError, connect
from tinyml.targets.qemu import qemu_uart
from tinyml.tools.profile import BoardLayerProfile, BoardProfileReport, profile_device, profile_model
from tinyml.tools.verify import random_inputs

BOARDS = ["netduinoplus2", "mps2-an386"]
SMALL_DS_CNN = case("zoo", "DEPTHWISE_CONV_2D", (25, 10, 1), name="ds_cnn", id="ds_cnn-small")


def ds_cnn() -> Path:
    c = zoo_cases("ds_cnn")[0]
    build(c)
    return cache_path(c)


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, int]]:
    """board -> (model, host-link ELF, MACs) for the DS-CNN compiled as "kws"."""
    model = ds_cnn()
    out = {}
    for board in BOARDS:
        project = tmp_path_factory.mktemp(board) / "kws"
        compiled = compile_model(model, board, project, name="kws")
        out[board] = (model, build_hostlink(project), compiled.macs)
    return out


def _check_profile_json(data: dict, model: Path, board: str, macs: int) -> None:
    graph = load_tflite(model)
    layers = data["layers"]
    assert data["board"] == board and data["cycle_source"] in ("SysTick", "none")  # QEMU has no DWT
    assert [l["op"] for l in layers] == [op.kind for op in graph.ops]
    assert [l["name"] for l in layers] == [graph.tensors[op.outputs[0]].name for op in graph.ops]
    for l in layers:
        assert {"name", "op", "macs", "cycles"} <= set(l) and l["cycles"] >= 0
    totals = data["totals"]
    assert totals["cycles"] == sum(l["cycles"] for l in layers)
    assert totals["macs"] == sum(l["macs"] for l in layers) == macs
    assert totals["invoke_cycles"] >= totals["cycles"]  # the layers are disjoint parts of the inference
    if data["cycle_source"] == "SysTick":
        assert all(l["cycles"] > 0 for l in layers if l["macs"])
        assert abs(sum(l["share"] for l in layers) - 1.0) < 1e-9
    else:
        assert totals["invoke_cycles"] == totals["cycles"] == 0
    mem = data["memory"]
    assert 0 < mem["arena_used"] <= mem["arena_bytes"]
    assert 64 <= mem["stack_used"] < mem["stack_bytes"] and mem["canary_intact"] and mem["inferences"] == 1


@pytest.mark.qemu
@pytest.mark.parametrize("board", BOARDS)
def test_profile_over_port(firmware: dict, board: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, elf, macs = firmware[board]
    chart = tmp_path / "layers.png"
    with qemu_uart(board, elf) as session:
        code = cli_main(["profile", str(model), "--board", board, "--port", session.url, "--json",
                         "--chart", str(chart)])
        out = capsys.readouterr()
        assert code == 0, out.err
        data = json.loads(out.out)
        _check_profile_json(data, model, board, macs)
        assert data["port"] == session.url
        if data["cycle_source"] == "SysTick":
            assert data["chart"] == str(chart) and chart.stat().st_size > 1000
        # The text report of the same device, a second inference.
        code = cli_main(["profile", str(model), "--board", board, "--port", session.url, "--no-chart"])
        out = capsys.readouterr()
    assert code == 0, out.err
    text = out.out
    assert f"on {board} (" in text and "cycles/MAC" in text and "over the host link at socket://" in text
    assert ("cycles from SysTick" in text) == (data["cycle_source"] == "SysTick")
    rows = [line.split() for line in text.splitlines() if re.match(r"^\s*\d+\s+[A-Z_0-9]+\s", line)]
    total = next(line.split() for line in text.splitlines() if line.strip().startswith("total"))
    assert len(rows) == len(data["layers"])
    assert sum(int(r[4].replace(",", "")) for r in rows) == int(total[2].replace(",", ""))
    assert re.search(r"stack high-water [\d,]+ of [\d,]+ bytes, canaries intact after 2 inferences", text)


@pytest.mark.qemu
def test_profile_port_checks_board_and_model(firmware: dict, capsys: pytest.CaptureFixture[str]) -> None:
    model, elf, _ = firmware["netduinoplus2"]
    build(SMALL_DS_CNN)
    with qemu_uart("netduinoplus2", elf) as session:
        code = cli_main(["profile", str(model), "--board", "mps2-an386", "--port", session.url])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "runs firmware for board netduinoplus2, not mps2-an386" in err[-1]
        code = cli_main(["profile", str(cache_path(SMALL_DS_CNN)), "--board", "netduinoplus2", "--port", session.url])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err[-1].startswith("tinyml: error: the device runs model") and "flash" in err[-1]


@pytest.mark.qemu
def test_profile_uart_board_without_port() -> None:
    """microbit (Cortex-M0: no DWT) without --port: compiled, built and run
    here over QEMU's UART.  QEMU models a SysTick the real nRF51 lacks; the
    firmware finds out at run time which it has."""
    build(SMALL_DS_CNN)
    report = profile_model(cache_path(SMALL_DS_CNN), "microbit", chart=None)
    assert report.source in ("SysTick", "none") and report.emulated
    assert report.cycles == sum(l.cycles for l in report.layers) <= report.invoke_cycles
    assert report.macs > 1_000_000 and report.sizes is not None and report.sizes.weight_bytes > 20_000
    assert report.memory is not None and report.memory.canary_intact
    assert 0 < report.memory.stack_used < report.memory.stack_bytes == 2048
    assert "under QEMU the counter runs on the host's clock" in report.format()
    # SysTick under QEMU follows the host's clock: no milliseconds from it
    assert report.ms is None and report.to_json()["totals"]["ms"] is None and " ms at " not in report.format()


def test_report_without_counter() -> None:
    """What a board without a cycle counter (a real nRF51) gets: zeros, and a report that says so."""
    layers = [BoardLayerProfile(index=0, name="t", op="CONV_2D", kernel="tml_conv_s8", macs=1000, cycles=0)]
    report = BoardProfileReport(model="m", board="microbit", port="/dev/ttyACM0", source="none", cpu_hz=16_000_000,
                                layers=layers, cycles=0, macs=1000, invoke_cycles=0)
    text = report.format()
    assert "no cycle counter on this core" in text and "whole inference" not in text
    assert "0.00" not in text  # no cycles per MAC made up from zeros
    assert report.to_json()["totals"] == dict(macs=1000, cycles=0, cycles_per_mac=0.0, invoke_cycles=0, ms=None)


def test_profile_device_argument_errors() -> None:
    model = ds_cnn()
    with pytest.raises(InputError, match="is real hardware: .* --port"):
        profile_device(model, "nucleo-l4r5zi", None)
    with pytest.raises(InputError, match="no \\[uart\\] table"):
        profile_device(model, "host", "socket://127.0.0.1:9")


@pytest.mark.qemu
def test_validate_prints_memory(firmware: dict, capsys: pytest.CaptureFixture[str]) -> None:
    model, elf, _ = firmware["netduinoplus2"]
    with qemu_uart("netduinoplus2", elf) as session:
        code = cli_main(["validate", str(model), "--port", session.url, "--samples", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    m = re.search(r"memory on the device: arena used ([\d,]+) of ([\d,]+) bytes, stack high-water ([\d,]+) "
                  r"of ([\d,]+) bytes, canaries intact after 2 inferences", out.err)
    assert m, out.err
    used, arena, stack, stack_bytes = (int(g.replace(",", "")) for g in m.groups())
    assert 0 < used <= arena and 64 <= stack < stack_bytes == 8192


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.qemu
def test_overwritten_canary_fails_infer(firmware: dict) -> None:
    """A canary word overwritten (by GDB, through QEMU's stub) between two
    inferences: the next INFER answers with the canary status, MEM and the
    benchmark runner's infer report it too."""
    if shutil.which("gdb-multiarch") is None:
        pytest.fail("gdb-multiarch not found; install it (Debian: apt-get install gdb-multiarch)")
    model, elf, _ = firmware["netduinoplus2"]
    sample = [a.tobytes() for a in random_inputs(load_tflite(model), 1, seed=5)[0]]
    gdb_port = _free_port()
    with qemu_uart("netduinoplus2", elf, extra=["-gdb", f"tcp:127.0.0.1:{gdb_port}"]) as session, \
            connect(session.url) as link:
        link.run_bytes(sample)
        assert link.mem().canary_intact
        poke = subprocess.run(["gdb-multiarch", "-batch", "-nx", "-ex", f"target remote 127.0.0.1:{gdb_port}",
                               "-ex", "set var kws_memory.after[0] = 0", "-ex", "print/x kws_memory.after[0]",
                               "-ex", "detach", str(elf)], capture_output=True, text=True, timeout=60)
        assert "= 0x0" in poke.stdout, poke.stdout + poke.stderr
        with pytest.raises(LinkError, match="INFER request .* failed: a canary word around the arena was overwritten"):
            link.run_bytes(sample)
        mem = link.mem()
        assert not mem.canary_intact and mem.inferences == 2
        link.console = ""
        link.write(b"infer 1 0%")
        assert "e-[a canary word around the arena was overwritten]" in link.read_text_until("m-ready", 20)
    assert "fault" not in session.stderr()
