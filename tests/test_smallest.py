"""Issue 15's smallest-plan criterion: the smallest arena `--sram` reaches with a board's kernels is no larger
than with the portable kernels only, and `bench memory --smallest` reports it with the exact instructions per
MAC at that budget against the fast build's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case, zoo_cases
from tinyml.boards import load_board
from tinyml.codegen.lower import LowerContext
from tinyml.codegen.specialize import variant_options
from tinyml.compiler import build_model, lower_graph
from tinyml.graph import parse_tflite
from tinyml.schedule.choose import candidates, capabilities, lean_capabilities, with_choice
from tinyml.schedule.patch import _staged, make_stage
from tinyml.schedule.plan import conflicts, plan_memory
from tinyml.tools.plan import SMALLEST_PER_MAC, bench_memory, format_bench, model_facts, smallest_reach
from tinyml.tools.verify import random_inputs, verify_compiled

MOBILENET_SMALLEST = 27744  # MobileNetV1-0.25 (96x96x3): its 27,648-byte input and the first conv's output 94 B below


@pytest.fixture(scope="module")
def ds_cnn() -> bytes:
    return build(zoo_cases("ds_cnn")[0])


def test_board_reaches_the_portable_smallest(ds_cnn) -> None:
    """The MVE depthwise kernel computes pixels ahead into a longer ring: on the M55 the smallest plan runs
    a shorter-ring variant where the memory peaks (and only there), and every candidate runs each operator
    with a variant whose ring fits the ring its plan made."""
    graph = parse_tflite(ds_cnn, source="ds_cnn")
    brd = load_board("mps3-an547")
    options = variant_options(LowerContext(graph=graph, features=brd.features, stack_bytes=brd.stack_bytes or 0),
                              lower_graph(graph))
    plans = candidates(graph, options, sram=1)  # a budget nothing fits: the smallest plans the planner finds
    small = min(plans, key=lambda p: (p.arena_bytes, p.cost))
    assert small.arena_bytes <= smallest_reach(graph, None).arena_bytes
    assert small.arena_bytes < min(p.arena_bytes for p in candidates(graph, options))  # what the default sees
    for plan in plans:
        for op, ip in plan.inplace.items():
            if ip.ring:
                assert ip.lag + 1 + plan.choice[op].ring_extra <= ip.ring, (op, plan.choice[op].variant)
    lean = lean_capabilities(options)
    slower = [op for op in small.choice if small.choice[op].variant != options[op][0].variant]
    assert slower and all(small.choice[op].variant == lean[op].variant for op in slower)
    assert any(small.choice[op].variant == options[op][0].variant != lean[op].variant for op in small.choice)


@pytest.fixture(scope="module")
def mobilenet() -> bytes:
    return build(zoo_cases("mobilenet_v1")[0])


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_stage_with_a_direct_first_conv_and_a_ring(mobilenet, board: str) -> None:
    """Without rings, MobileNetV1's first conv writes its output 94 bytes below its input (27,744 B), but the
    depthwise conv after it so too shifts its output 392 bytes lower again (ops 2..7 in 6x6 patches: 28,144
    B), and with rings the first conv's ring costs 16 B more (27,760 B): within a budget the patch search
    also plans the stage with rings except where those plans peak above the ring-less peak, which reaches
    27,744 B with 21% extra MACs (the only other plan there is ops 1..7 in 12x12 patches, 70%)."""
    graph = parse_tflite(mobilenet, source="mobilenet_v1")
    brd = load_board(board)
    options = variant_options(LowerContext(graph=graph, features=brd.features, stack_bytes=brd.stack_bytes or 0),
                              lower_graph(graph))
    caps = capabilities(options)
    stage = make_stage(graph, [2, 3, 4, 5, 6, 7], (6, 6), caps)
    assert stage is not None
    order = plan_memory(graph, caps).order
    best, no_rings = [with_choice(graph, c.plan, options)
                      for c in _staged(graph, caps, (stage,), order, True, MOBILENET_SMALLEST)]
    assert (best.arena_bytes, no_rings.arena_bytes) == (MOBILENET_SMALLEST, 28144)
    assert best.peak_bytes == no_rings.peak_bytes == graph.tensors[graph.ops[0].inputs[0]].nbytes + 94
    first, dw = best.inplace[0], best.inplace[1]
    assert first.direct and first.delta == -94 and not first.ring
    assert dw.ring and not dw.direct and best.choice[1].variant == options[1][0].variant  # its fastest kernel
    assert no_rings.inplace[1].direct
    assert not conflicts(graph, best)
    assert best.extra_macs < 0.25 * best.macs and best.cost < no_rings.cost * 1.02  # the ring copies


def test_stage_with_rings_where_ringless_outputs_raise_the_peak() -> None:
    """A MobileNetV1-0.25 of three blocks at 48x48x3 on mps2-an386: ops 2..3 in 12x12 patches with the ring
    kernels in place without rings peak at 9,216 B (no gap above the peak: the outputs shifted below their
    inputs raise the peak itself); with rings they take 7,056 B, what the portable-only planner reaches.
    Within a budget the patch search plans the stage both ways (the board's smallest was 7,344 B)."""
    graph = parse_tflite(build(case("zoo", "DEPTHWISE_CONV_2D", (48, 48, 3), name="mobilenet_v1", blocks=3,
                                    in_dist="image", id="mobilenet_v1-48")), source="mobilenet_v1_48")
    brd = load_board("mps2-an386")
    options = variant_options(LowerContext(graph=graph, features=brd.features, stack_bytes=brd.stack_bytes or 0),
                              lower_graph(graph))
    caps = capabilities(options)
    order = plan_memory(graph, caps).order
    with_rings, without = _staged(graph, caps, (make_stage(graph, [2, 3], (12, 12), caps),), order, True, 1)
    assert without.arena == without.plan.peak_bytes == 9216 and with_rings.arena == 7056
    portable = model_facts(graph)
    alone = plan_memory(graph, portable, stages=(make_stage(graph, [2, 3], (12, 12), portable),), orders=[order])
    assert with_rings.arena <= alone.arena_bytes
    assert not conflicts(graph, with_choice(graph, with_rings.plan, options))


@pytest.mark.qemu
@pytest.mark.slow
def test_mobilenet_smallest_bitexact_qemu(mobilenet, tmp_path: Path) -> None:
    """The build at MobileNetV1's smallest budget on mps2-an386 runs that plan (ops 2..7 in 6x6 patches, the
    first conv without a ring, the depthwise after it through one) and is bit-exact with TFLM."""
    graph = parse_tflite(mobilenet, source="mobilenet_v1")
    c = build_model(graph, "mps2-an386", sram=MOBILENET_SMALLEST)
    assert c.plan.arena_bytes <= MOBILENET_SMALLEST
    assert [(st.ops, st.grid) for st in c.plan.stages] == [([2, 3, 4, 5, 6, 7], (6, 6))]
    assert c.plan.inplace[0].direct and c.plan.inplace[1].ring
    report = verify_compiled(c, mobilenet, random_inputs(c.graph, 2, 0), work_dir=tmp_path / "proj")
    assert report.ok, report.summary()


@pytest.mark.qemu
@pytest.mark.slow
def test_bench_memory_smallest_figures_agree(ds_cnn, tmp_path: Path) -> None:
    """`bench memory --board mps3-an547 --smallest` on DS-CNN: its figures agree with the planner and with
    each other, the criterion holds, and the build at the smallest budget is bit-exact with TFLM."""
    (row,) = bench_memory([("ds_cnn", ds_cnn)], board="mps3-an547", smallest=True)
    s = row.smallest
    assert s is not None
    graph = parse_tflite(ds_cnn, source="ds_cnn")
    assert s.smallest == smallest_reach(graph, "mps3-an547").arena_bytes
    assert s.portable == smallest_reach(graph, None).arena_bytes >= s.smallest
    assert s.at_smallest.arena <= s.smallest < row.ours  # smaller than the default build
    assert s.at_portable is s.at_smallest  # equal budgets: one build
    assert s.fast.instructions == row.fast_instructions and s.fast.arena == row.fast_arena
    c = build_model(graph, "mps3-an547", sram=s.smallest)
    assert s.at_smallest.macs == c.macs + c.plan.extra_macs and s.fast.macs == c.macs
    assert s.per_mac_ratio == pytest.approx((s.at_smallest.instructions / s.at_smallest.macs)
                                            / (s.fast.instructions / s.fast.macs))
    assert 1.0 < s.per_mac_ratio <= SMALLEST_PER_MAC and s.meets
    text = format_bench([row])
    assert f"{s.smallest:,}" in text and f"{s.per_mac_ratio:.3f}x" in text and "MISSED" not in text
    assert_bitexact(ds_cnn, tmp_path, board="mps3-an547", samples=2, sram=s.smallest)


def test_smallest_needs_a_board() -> None:
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "bench", "memory", "m.tflite", "--smallest"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "give a board too" in r.stderr and "Traceback" not in r.stderr
