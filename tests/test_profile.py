"""`tinyml profile` and `tinyml bench kernels`: exact instruction counts under QEMU, sizes from the ELF."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.modelgen import build, zoo_cases
from tinyml.compiler import build_model, fit_of
from tinyml.errors import InputError
from tinyml.graph import load_tflite
from tinyml.tools.profile import build_plugin, profile_model

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def ds_cnn(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "ds_cnn.tflite"
    path.write_bytes(build(zoo_cases("ds_cnn")[0]))
    return path


def test_plugin_builds_once() -> None:
    first = build_plugin()
    assert first.is_file() and first.suffix == ".so"
    assert build_plugin() == first


def test_profile_ds_cnn_m4(ds_cnn, tmp_path) -> None:
    chart = tmp_path / "chart.png"
    fast = profile_model(ds_cnn, "mps2-an386", chart=chart)
    assert chart.is_file() and chart.stat().st_size > 1000
    assert [l.op for l in fast.layers][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert sum(l.instructions for l in fast.layers) == fast.instructions
    assert abs(sum(l.share for l in fast.layers) - 1.0) < 1e-9
    assert all(2 * l.instructions > l.macs for l in fast.layers if l.macs)  # SMLAD: at most 2 MACs each
    assert 0 < fast.mark_cost < 10
    # the figure for a DS-CNN keyword spotter on Cortex-M4
    assert fast.per_mac <= 2.2, fast.format()
    # estimated cycles from the M4 cycle model, and ms at the board's 25 MHz
    assert fast.cycle_model is not None and fast.cycle_model.unknown == 0
    assert sum(l.cycles for l in fast.layers) == fast.cycles >= fast.instructions
    assert fast.ms == pytest.approx(1000 * fast.cycles / 25e6)
    assert "estimated, zero-wait-state" in fast.format() and " ms at 25 MHz" in fast.format()
    assert fast.sizes is not None and fast.sizes.weight_bytes > 20_000
    assert fast.sizes.code_bytes < 16 * 1024, fast.format()
    # the portable kernels, measured in the same test, are several times slower
    portable = profile_model(ds_cnn, "mps2-an386", families="portable", sizes=False)
    assert portable.macs == fast.macs
    assert portable.instructions > 3 * fast.instructions


def test_counts_are_deterministic(ds_cnn) -> None:
    a = profile_model(ds_cnn, "mps3-an547", sizes=False, seed=3)
    b = profile_model(ds_cnn, "mps3-an547", sizes=False, seed=3)
    assert [l.instructions for l in a.layers] == [l.instructions for l in b.layers]


def test_profile_cli_json(ds_cnn, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tinyml.cli", "profile", str(ds_cnn), "--board", "mps2-an386",
                           "--json", "--chart", str(tmp_path / "c.png"), "--clock", "120"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"name", "op", "macs", "instructions", "cycles", "ms"} <= set(data["layers"][0])
    totals = data["totals"]
    assert totals["cycles"] == sum(l["cycles"] for l in data["layers"]) >= totals["instructions"]
    assert totals["clock_hz"] == 120_000_000 and totals["ms"] == pytest.approx(totals["cycles"] / 120e3)
    assert data["cycle_model"]["what"].startswith("estimated, zero-wait-state")
    assert data["cycle_model"]["unknown_instructions"] == 0
    assert data["totals"]["instructions"] == sum(l["instructions"] for l in data["layers"])
    assert data["totals"]["macs"] == sum(l["macs"] for l in data["layers"])
    assert data["sizes"]["code_bytes"] + data["sizes"]["weight_bytes"] == data["sizes"]["flash_bytes"]


@pytest.mark.parametrize("clock", ["0", "1001", "fast", "nan"])
def test_profile_clock_out_of_range(ds_cnn, clock: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tinyml.cli", "profile", str(ds_cnn), "--board", "mps2-an386",
                           "--clock", clock], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--clock" in proc.stderr, proc.stderr


def test_profile_needs_a_qemu_board(ds_cnn) -> None:
    with pytest.raises(InputError, match="not a QEMU board"):
        profile_model(ds_cnn, "host")
    proc = subprocess.run([sys.executable, "-m", "tinyml.cli", "profile", str(ds_cnn), "--board", "host"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_inspect_size_report(ds_cnn) -> None:
    proc = subprocess.run([sys.executable, "-m", "tinyml.cli", "inspect", str(ds_cnn), "--board", "mps2-an386",
                           "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    sizes = json.loads(proc.stdout)["sizes"]
    assert sizes["weight_bytes"] > 20_000 and 0 < sizes["kernel_text_bytes"] < sizes["text_bytes"]
    latency = json.loads(proc.stdout)["latency"]
    assert latency["cycles"] >= latency["instructions"] > 0 and latency["clock_hz"] == 25_000_000
    assert latency["ms"] == pytest.approx(latency["cycles"] / 25e3)
    assert latency["what"].startswith("estimated, zero-wait-state")
    fit = json.loads(proc.stdout)["fit"]  # the fit summary, with the ELF's flash
    assert fit["flash_measured"] and (fit["flash_bytes"], fit["weight_bytes"]) == (sizes["flash_bytes"],
                                                                                  sizes["weight_bytes"])
    assert fit["ram_bytes"] == sizes["ram_bytes"] < fit["board_ram_bytes"] and fit["fits"]  # the ELF's RAM:
    assert fit["ram_bytes"] == fit["arena_bytes"] + fit["reserved_bytes"] + fit["statics_bytes"]
    assert 0 <= fit["statics_bytes"] < 1024 and fit["ram_measured"]  # the runtime's own static data is small
    # before a build, the fit estimates the runtime statics: on this board, exactly what the ELF holds
    compiled = build_model(load_tflite(ds_cnn), "mps2-an386")
    before = fit_of(compiled)
    assert not before.ram_measured and (before.statics_bytes, before.ram_bytes) == (fit["statics_bytes"],
                                                                                    fit["ram_bytes"])
    # one weights figure: the compiled weights before the build are the ELF's; the .tflite's constants differ
    assert compiled.weight_bytes == sizes["weight_bytes"] == before.weight_bytes
    assert json.loads(proc.stdout)["totals"]["constant_bytes"] < sizes["weight_bytes"]
    assert 0 < fit["stack_high_water_bytes"] < fit["reserved_bytes"]  # measured in the QEMU run
    # the latency estimated from the plan's cost (no QEMU) is within 15% of the cycle model's (5% when fitted)
    assert fit["estimated_cycles"] == pytest.approx(latency["cycles"], rel=0.15)
    assert fit["estimated_ms"] == pytest.approx(fit["estimated_cycles"] / 25e3)


@pytest.mark.slow
def test_layer_shapes_meet_targets_on_m4() -> None:
    from tinyml.tools.bench import bench_kernels

    result = bench_kernels("mps2-an386", networks=())
    text = result.format()
    for row in result.shapes:
        assert row.fast_per_mac <= row.target, text
        assert row.fast < row.portable, text


def test_bench_kernels_networks_cycles_measured_now(capsys: pytest.CaptureFixture[str]) -> None:
    """The network table's estimated cycles and ratio are this run's measurement of the MLPerf AD
    autoencoder (640-128x4-8-128x4-640), the same as profiling that model on its own gives."""
    from tinyml.cli import main as cli_main
    from tinyml.tools.bench import PUBLISHED, network_model

    assert cli_main(["bench", "kernels", "--no-shapes", "--network", "fc_autoencoder"]) == 0
    text = capsys.readouterr().out
    assert cli_main(["bench", "kernels", "--no-shapes", "--network", "fc_autoencoder", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["networks"]
    alone = profile_model(network_model("fc_autoencoder"), "mps2-an386", sizes=False)
    line = next(l for l in text.splitlines() if l.startswith("fc_autoencoder ") and "AD:" in l)
    assert line.split()[1:3] == [f"{alone.cycles:,}", f"{alone.cycles / alone.macs:.2f}"], text
    assert f"{alone.cycles / 486_000:.2f}x" in line and "zero-wait-state" in text, text
    assert row["name"] == "fc_autoencoder" and row["macs"] == alone.macs == 264_192
    assert row["cycles"] == alone.cycles > row["instructions"] == alone.instructions > 0
    published = PUBLISHED["mps2-an386"][1]["fc_autoencoder"]
    assert row["published"]["cycles"] == pytest.approx(486_000) == published.cycles
    assert row["ratio"] == pytest.approx(alone.cycles / 486_000)
    assert row["cycles_what"].startswith("estimated, zero-wait-state")
    assert cli_main(["bench", "kernels", "--no-shapes", "--network", "resnet9"]) == 2
