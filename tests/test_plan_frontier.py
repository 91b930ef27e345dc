"""The memory/cost trade-off: candidate plans, the frontier `tinyml plan` shows, the objective compile uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.modelgen import build, zoo_cases
from tinyml.compiler import build_model
from tinyml.errors import FitError
from tinyml.tools.plan import plan_model


def _model(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(build(zoo_cases(name)[0]))
    return path


@pytest.mark.parametrize("board, sram", [("mps2-an386", None), ("mps2-an386", 12000), ("mps2-an385", None)])
def test_plan_and_compile_agree(tmp_path, board, sram) -> None:
    model = _model(tmp_path, "ds_cnn")
    r = plan_model(model, sram, board).to_json()
    c = build_model(model, board, sram=sram)
    assert (r["arena_bytes"], r["peak_sram_bytes"], r["estimated_instructions"]) == \
        (c.plan.arena_bytes, c.plan.peak_bytes, c.plan.cost)
    front = r["frontier"]
    assert [f["arena_bytes"] for f in front] == sorted(f["arena_bytes"] for f in front)
    costs = [f["estimated_instructions"] for f in front]
    assert all(a > b for a, b in zip(costs, costs[1:])), costs  # more memory buys fewer instructions
    assert sum(f["chosen"] for f in front) == 1
    if sram is None:
        # the smallest arena within 2% of the fastest plan's estimated cost
        assert r["estimated_instructions"] <= 1.02 * r["fastest_instructions"]
        assert all(f["arena_bytes"] >= r["arena_bytes"] for f in front
                   if f["estimated_instructions"] <= 1.02 * r["fastest_instructions"])
    else:
        # the lowest estimated cost that fits
        assert r["arena_bytes"] <= sram
        assert all(f["estimated_instructions"] >= r["estimated_instructions"] for f in front
                   if f["arena_bytes"] <= sram)


def test_budget_forces_slower_kernels_and_says_so(tmp_path) -> None:
    # On the M55 the MVE kernels in place through rings cost more (their ring copies against very fast
    # MACs): the fastest build runs them in place without rings only, and a budget below its arena pays
    # the estimated price.
    model = _model(tmp_path, "ds_cnn")
    fast = build_model(model, "mps3-an547", sram=10 ** 6)
    assert not fast.plan.inplace or not any(ip.ring for ip in fast.plan.inplace.values())
    small = build_model(model, "mps3-an547", sram=fast.plan.arena_bytes - 1)
    assert small.plan.cost > fast.plan.cost and small.plan.arena_bytes < fast.plan.arena_bytes
    assert small.plan.fastest_cost == fast.plan.cost
    with pytest.raises(FitError, match="cannot run in 1000 bytes of arena: the smallest plan found needs"):
        build_model(model, "mps3-an547", sram=1000)
    out = tmp_path / "p"
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "compile", str(model), "-b", "mps3-an547", "-o", str(out),
                        "--sram", str(fast.plan.arena_bytes - 1)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    note = [line for line in r.stdout.splitlines() if line.startswith("note:")]
    assert len(note) == 1 and "x the instructions of the fastest" in note[0] and "operators on slower kernels" in note[0]


def test_plan_cli_frontier_json_and_plots(tmp_path) -> None:
    model = _model(tmp_path, "ds_cnn")
    png = tmp_path / "m.png"
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "plan", str(model), "--board", "mps2-an386", "--json",
                        "--plot", str(png)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["board"] == "mps2-an386" and len(report["frontier"]) >= 2
    assert png.is_file() and Path(report["frontier_plot"]).is_file()
    assert Path(report["frontier_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.qemu
@pytest.mark.slow
def test_bench_memory_board_ds_cnn_small_and_fast_on_m4() -> None:
    """Issue 15's DS-CNN row on the Cortex-M4: the default build at most 8,900 bytes of arena (TFLM's
    activations: 16,000) and at most 1.02x the fast build's exact instructions, measured in one run."""
    from tinyml.tools.plan import bench_memory

    (row,) = bench_memory([("ds_cnn", build(zoo_cases("ds_cnn")[0]))], board="mps2-an386")
    assert row.tflm_activations == 16000 and row.ours <= 8900 < row.fast_arena
    assert row.instructions is not None and row.fast_instructions is not None
    assert row.instructions <= 1.02 * row.fast_instructions


@pytest.mark.qemu
@pytest.mark.slow
def test_profile_sums_each_operator_of_a_patch_stage(tmp_path) -> None:
    """A plan with a patch stage marks after every window (its loop runs the stage's operators patch by
    patch): the profile has one row per operator of the stage, its windows' instructions summed, with the
    MACs its windows compute (the halos included); the text shows the stage and its total."""
    from tinyml.tools.profile import profile_model

    model = _model(tmp_path, "mobilenet_v1")
    c = build_model(model, "mps2-an386", sram=32000)
    (stage,) = c.plan.stages
    report = profile_model(model, "mps2-an386", sizes=False, sram=32000)
    rows = [layer for layer in report.layers if layer.stage is not None]
    assert [r.index for r in rows] == stage.ops and all(r.stage == 0 and r.instructions > 0 for r in rows)
    assert sum(r.macs for r in rows) == stage.macs
    # a window of a convolution costs its MACs at the kernel's rate: no row holds another's instructions
    assert all(0.3 < r.per_mac < 20 for r in rows if r.macs), [(r.index, r.per_mac) for r in rows]
    assert len(report.layers) == len(c.calls)
    assert report.macs == c.macs + c.plan.extra_macs
    text = report.format()
    assert f"patch stage 0: ops {stage.ops[0]}..{stage.ops[-1]} in {stage.grid[0]}x{stage.grid[1]} patches" in text
    assert "stage 0 total" in text
    assert report.to_json()["layers"][rows[0].index]["stage"] == 0
