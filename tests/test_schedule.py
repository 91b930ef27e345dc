"""The memory planner: safety over random graphs and budgets, bit-exactness of in-place and
patch-based plans on the host and QEMU, the device memory report, ratios against TFLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.modelgen import build, zoo_cases
from tinyml.cli import main as cli_main
from tinyml.boards import load_board
from tinyml.compiler import build_model, plan_graph, write_project
from tinyml.errors import FitError
from tinyml.graph import parse_tflite
from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.schedule.choose import frontier
from tinyml.schedule.geometry import window_of
from tinyml.schedule.patch import plan_for_budget, smallest_plan
from tinyml.schedule.plan import OpFacts, Plan, plan_memory

# ---------------------------------------------------------------------------
# random graphs


def _q() -> Quant:
    return Quant(scale=np.array([0.1], np.float32), zero_point=np.array([0], np.int64))


class _Builder:
    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Op] = []

    def tensor(self, shape: tuple[int, ...], const: bool = False, dtype: str = "int8") -> int:
        i = len(self.tensors)
        data = np.zeros(shape, dtype=np.int8 if dtype == "int8" else np.int32) if const else None
        self.tensors.append(Tensor(i, f"t{i}", tuple(shape), dtype, _q(), data))
        return i

    def op(self, kind: str, inputs: list[int], out_shape: tuple[int, ...], **options: object) -> int:
        out = self.tensor(out_shape)
        self.ops.append(Op(len(self.ops), kind, inputs, [out], dict(options)))
        return out


def _out(n: int, k: int, s: int, same: bool) -> int:
    return (n + s - 1) // s if same else (n - k + s) // s


@st.composite
def graphs(draw: st.DrawFn) -> tuple[Graph, dict[int, OpFacts]]:
    b = _Builder()
    h, w, c = draw(st.integers(3, 12)), draw(st.integers(3, 12)), draw(st.integers(1, 6))
    x = b.tensor((1, h, w, c))
    inputs = [x]
    cur = x
    shapes = {x: (1, h, w, c)}
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["conv", "conv", "dw", "dw", "add", "branch", "reshape"]))
        _, h, w, c = shapes[cur]
        if kind in ("conv", "dw", "branch"):
            k = draw(st.sampled_from([1, 1, 3]))
            s = draw(st.sampled_from([1, 1, 2]))
            same = draw(st.booleans())
            oh, ow = _out(h, k, s, same), _out(w, k, s, same)
            if oh < 1 or ow < 1:
                continue
            src = cur
            if kind == "branch":  # a second path from an earlier tensor, joined by ADD below
                src = draw(st.sampled_from([t for t in shapes if len(shapes[t]) == 4]))
                _, h, w, c = shapes[src]
                oh, ow = _out(h, k, s, same), _out(w, k, s, same)
                if oh < 1 or ow < 1:
                    continue
            oc = draw(st.integers(1, 8)) if kind != "dw" else c
            opts = dict(stride_h=s, stride_w=s, padding="SAME" if same else "VALID", activation="NONE")
            if kind == "dw":
                wt = b.tensor((1, k, k, c), const=True)
                t = b.op("DEPTHWISE_CONV_2D", [src, wt, -1], (1, oh, ow, c), depth_multiplier=1, **opts)
            else:
                wt = b.tensor((oc, k, k, c), const=True)
                t = b.op("CONV_2D", [src, wt, -1], (1, oh, ow, oc), **opts)
            shapes[t] = (1, oh, ow, oc)
            if kind == "branch":
                same_shape = [u for u in shapes if shapes[u] == shapes[t] and u != t]
                if same_shape:
                    other = draw(st.sampled_from(same_shape))
                    t2 = b.op("ADD", [other, t], shapes[t])
                    shapes[t2] = shapes[t]
                    t = t2
            cur = t
        elif kind == "add":
            same_shape = [u for u in shapes if shapes[u] == shapes[cur] and u != cur]
            if not same_shape:
                continue
            t = b.op("ADD", [draw(st.sampled_from(same_shape)), cur], shapes[cur])
            shapes[t] = shapes[cur]
            cur = t
        else:
            t = b.op("RESHAPE", [cur], (1, h * w, 1, c))
            shapes[t] = (1, h * w, 1, c)
            cur = t
    n = int(np.prod(shapes[cur]))
    units = draw(st.integers(1, 16))
    wt = b.tensor((units, n), const=True)
    flat = b.op("RESHAPE", [cur], (1, n))
    out = b.op("FULLY_CONNECTED", [flat, wt, -1], (1, units), activation="NONE")
    g = Graph("rand", b.tensors, b.ops, inputs, [out], source="random")
    facts: dict[int, OpFacts] = {}
    for op in g.ops:
        declare = draw(st.booleans()) or draw(st.booleans())
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            facts[op.index] = OpFacts((0,) if declare else (), "ring", patchable=True, macs=10)
        elif op.kind == "FULLY_CONNECTED":
            facts[op.index] = OpFacts((0,) if declare else (), "ring", macs=10)
        elif op.kind == "ADD":
            facts[op.index] = OpFacts((0, 1) if declare else (), "elementwise")
    return g, facts


# ---------------------------------------------------------------------------
# an independent check of a plan


def _reads(win, q: int) -> list[int]:  # type: ignore[no-untyped-def]
    """Input pixels (raster) read by output pixel q."""
    oy, ox = divmod(q, win.out_w)
    out = []
    for ky in range(win.k_h):
        iy = oy * win.s_h - win.pad_h + ky * win.d_h
        for kx in range(win.k_w):
            ix = ox * win.s_w - win.pad_w + kx * win.d_w
            if 0 <= iy < win.in_h and 0 <= ix < win.in_w:
                out.append(iy * win.in_w + ix)
    return out


def _simulate_ring(g: Graph, plan: Plan, ip, extra: int) -> None:  # type: ignore[no-untyped-def]
    """Run the ring kernel's store schedule on byte addresses: no input byte is read after it is overwritten
    (in place without a ring: each pixel stored as soon as it is computed, lag 0)."""
    op = g.ops[ip.op]
    t_in, t_out = g.tensors[ip.tensor], g.tensors[op.outputs[0]]
    in_off, out_off = plan.offset(ip.tensor), plan.offset(t_out.index)
    assert out_off - in_off == ip.delta
    win = window_of(g, op)
    if win is not None:
        n_out, in_unit, out_unit = win.out_h * win.out_w, win.in_c, win.out_c
        reads = lambda q: _reads(win, q)  # noqa: E731
    else:  # fully connected: row q reads input row q
        n_out, out_unit = t_out.size // ip.unit_bytes, ip.unit_bytes
        in_unit = t_in.nbytes // n_out
        reads = lambda q: [q]  # noqa: E731
    clobbered = np.zeros(t_in.nbytes, dtype=bool)

    def store(q: int) -> None:
        lo, hi = out_off + q * out_unit - in_off, out_off + (q + 1) * out_unit - in_off
        clobbered[max(lo, 0):max(min(hi, t_in.nbytes), 0)] = True

    for q in range(n_out):
        for p in reads(q):
            assert not clobbered[p * in_unit:(p + 1) * in_unit].any(), f"op {ip.op} pixel {q} reads overwritten input"
        if q >= ip.lag:
            store(q - ip.lag)
    assert (ip.ring, ip.lag) == (0, 0) if ip.direct else ip.ring == ip.lag + 1 + extra


def _simulate_stage(g: Graph, plan: Plan, stg) -> None:  # type: ignore[no-untyped-def]
    """Patches in raster order: the first op never reads a source row some earlier patch overwrote."""
    src, split = g.tensors[stg.source], g.tensors[stg.split]
    delta = plan.offset(split.index) - plan.offset(src.index)
    _, h, w, c = src.shape
    _, oh, ow, oc = split.shape
    clobbered = np.zeros(src.nbytes, dtype=bool)
    first, last = stg.windows[0], stg.windows[-1]
    for p in range(stg.patches):
        win = window_of(g, g.ops[stg.ops[0]])
        rows = win.in_rows(first[p].oy0, first[p].oy0 + first[p].out_h)
        cols = win.in_cols(first[p].ox0, first[p].ox0 + first[p].out_w)
        for y in range(*rows):
            a = (y * w + cols[0]) * c
            assert not clobbered[a:(y * w + cols[1]) * c].any(), f"patch {p} reads overwritten source row {y}"
        lw = last[p]
        for y in range(lw.oy0, lw.oy0 + lw.out_h):
            lo = delta + (y * ow + lw.ox0) * oc
            hi = delta + (y * ow + lw.ox0 + lw.out_w) * oc
            clobbered[max(lo, 0):max(min(hi, src.nbytes), 0)] = True


def check_plan(g: Graph, facts: dict[int, OpFacts], plan: Plan) -> None:
    step_of = {pos: s for s, pos in enumerate(plan.order)}
    # every op after its producers
    produced = set(g.inputs)
    for pos in plan.order:
        op = g.ops[pos]
        assert all(t < 0 or g.tensors[t].is_const or t in produced for t in op.inputs)
        produced.update(op.outputs)
    allowed = set()
    for ip in plan.inplace.values():
        f = facts[ip.op]
        pos_in = g.ops[ip.op].inputs.index(ip.tensor)
        assert pos_in in f.inplace_inputs, "in place on an input the kernel did not declare"
        a, b = plan.tensor_buffer[ip.tensor], plan.tensor_buffer[g.ops[ip.op].outputs[0]]
        if f.inplace_kind == "ring":
            _simulate_ring(g, plan, ip, f.ring_extra)
        else:
            assert ip.delta <= 0 and plan.buffers[a].size == plan.buffers[b].size
        allowed.add((step_of[ip.op], frozenset((a, b))))
    for stg in plan.stages:
        assert all(facts[o].patchable for o in stg.ops)
        a, b = plan.tensor_buffer[stg.source], plan.tensor_buffer[stg.split]
        _simulate_stage(g, plan, stg)
        allowed.update((step_of[o], frozenset((a, b))) for o in stg.ops)
    bufs = plan.buffers
    for i in range(len(bufs)):
        for j in range(i + 1, len(bufs)):
            x, y = bufs[i], bufs[j]
            if x.size == 0 or y.size == 0 or x.offset >= y.offset + y.size or y.offset >= x.offset + x.size:
                continue
            for s in range(max(x.first, y.first), min(x.last, y.last) + 1):
                assert (s, frozenset((i, j))) in allowed, f"buffers {i} and {j} overlap at step {s}"
    assert all(b.offset >= 0 and b.offset + b.size <= plan.arena_bytes for b in bufs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.floats(0.2, 1.2))
def test_random_graphs_and_budgets_never_overlap_unplanned(gf, budget_fraction: float) -> None:
    g, facts = gf
    base = plan_memory(g, facts)
    check_plan(g, facts, base)
    check_plan(g, {}, plan_memory(g))
    budget = max(16, int(base.arena_bytes * budget_fraction))
    try:
        plan = plan_for_budget(g, facts, budget)
    except FitError as e:
        assert f"cannot run in {budget} bytes" in str(e)
        plan = smallest_plan(g, facts)
        assert plan.arena_bytes > budget
    else:
        assert plan.arena_bytes <= budget
    check_plan(g, facts, plan)


# ---------------------------------------------------------------------------
# real models


def _model(tmp_path: Path, name: str) -> Path:
    p = tmp_path / f"{name}.tflite"
    p.write_bytes(build(zoo_cases(name)[0]))
    return p


def test_dsp_frontier_plans_are_safe() -> None:
    """With the DSP kernels (in place through a ring, or without one), every plan on the frontier of
    MobileNetV1 and DS-CNN is safe, and MobileNetV1's default fits 32,000 bytes."""
    board = load_board("mps2-an386")
    for name in ("mobilenet_v1", "ds_cnn"):
        g = parse_tflite(build(zoo_cases(name)[0]), source=name)
        planned = plan_graph(g, board)
        plans = frontier(planned.candidates)
        assert any(ip.direct for p in plans for ip in p.inplace.values())
        for p in plans:
            check_plan(g, p.choice, p)
        if name == "mobilenet_v1":
            assert planned.plan.arena_bytes <= 32000 and planned.plan.stages


def test_zoo_plans_are_safe() -> None:
    from tinyml.tools.plan import model_facts

    for c in zoo_cases():
        g = parse_tflite(build(c), source=c.id)
        facts = model_facts(g)
        check_plan(g, facts, plan_memory(g, facts))
        check_plan(g, facts, smallest_plan(g, facts, max_extra=0.15))


@pytest.mark.parametrize("name,sram", [
    ("ds_cnn", None),  # in place, layer by layer
    ("resnet8", None),  # branches: execution order chosen
    ("mobilenet_v1", 32000),  # patch stage
    ("mobilenet_v2-144", 77760),  # patch stage, 4x below TFLM
])
def test_bitexact_host(tmp_path: Path, name: str, sram: int | None) -> None:
    model = _model(tmp_path, name)
    c = build_model(model, "host", sram=sram)
    if sram is not None:
        assert c.plan.stages and c.plan.arena_bytes <= sram
    assert c.plan.inplace
    from tinyml.tools.verify import verify_model

    report = verify_model(model, "host", samples=2, work_dir=tmp_path / "p", sram=sram)
    assert report.ok, report.summary()


def test_smallest_patches_bitexact_host(tmp_path: Path) -> None:
    """The budget of the smallest plan forces the finest grid the search found."""
    from tinyml.tools.plan import model_facts
    from tinyml.tools.verify import verify_model

    model = _model(tmp_path, "mobilenet_v1")
    g = parse_tflite(model.read_bytes(), source="m")
    best = smallest_plan(g, model_facts(g))
    assert best.stages and best.stages[0].patches >= 16
    report = verify_model(model, "host", samples=2, work_dir=tmp_path / "p", sram=best.arena_bytes)
    assert report.ok, report.summary()


@pytest.mark.slow
@pytest.mark.parametrize("board", ["host", "mps2-an386"])
def test_two_patch_stages_bitexact(tmp_path: Path, board: str) -> None:
    """Below what one patch stage reaches (74,400 bytes for MobileNetV2-0.35 at 144x144), the search adds a
    second stage over the chain where the one-stage plan peaks; both stages run patch by patch, bit-exact
    with TFLM (portable kernels on the host, DSP forms on the M4)."""
    from tinyml.tools.verify import random_inputs, verify_compiled

    model = _model(tmp_path, "mobilenet_v2-144")
    c = build_model(model, board, sram=74000)
    assert len(c.plan.stages) == 2 and c.plan.arena_bytes <= 74000
    first, second = c.plan.stages
    assert not set(first.ops) & set(second.ops)
    assert c.plan.extra_macs == first.extra_macs + second.extra_macs
    # and on the M4 the wide depthwise layers outside them each in a loop over column strips (test_widedw.py)
    strips = [k for k in c.calls if getattr(k, "patch_loop", "") == "only" and c.plan.stage_of(k.op_index) is None]
    assert str(c.files["model.c"]).count("for (int patch = 0;") == 2 + len(strips)
    check_plan(c.graph, c.plan.choice, c.plan)
    report = verify_compiled(c, model.read_bytes(), random_inputs(c.graph, 2, 0), work_dir=tmp_path / "p")
    assert report.ok, report.summary()


def _memory_line(console: str) -> dict[str, int]:
    import re

    m = re.search(r"arena used (\d+) of (\d+) bytes(?:, stack high-water (\d+) of (\d+) bytes)?", console)
    assert m, console
    keys = ("arena_used", "arena", "stack_used", "stack")
    return {k: int(v) for k, v in zip(keys, m.groups()) if v is not None}


@pytest.mark.qemu
@pytest.mark.parametrize("name,sram", [("ds_cnn", 9000), ("mobilenet_v1", 32000)])
def test_qemu_bitexact_and_memory_within_plan(tmp_path: Path, name: str, sram: int) -> None:
    """mps2-an386: patched / in-place plans are bit-exact; the firmware's canaries hold and the
    arena and stack it reports stay within the plan."""
    from tinyml.targets.run import run_project
    from tinyml.tools.verify import pack_samples, random_inputs, verify_model

    model = _model(tmp_path, name)
    report = verify_model(model, "mps2-an386", samples=2, work_dir=tmp_path / "v", sram=sram)
    assert report.ok, report.summary()
    c = build_model(model, "mps2-an386", sram=sram)
    assert c.plan.arena_bytes <= sram
    write_project(c.files, tmp_path / "p")
    r = run_project(tmp_path / "p", pack_samples(c.graph, random_inputs(c.graph, 2, 1)))
    mem = _memory_line(r.console)
    assert mem["arena"] == c.plan.arena_bytes
    assert c.plan.peak_bytes // 2 < mem["arena_used"] <= c.plan.arena_bytes
    assert 0 < mem["stack_used"] < mem["stack"] == c.board.stack_bytes


def test_canary_catches_overflow(tmp_path: Path) -> None:
    """A kernel that writes one byte past the arena makes the firmware fail after invoke."""
    from tinyml.errors import RunError
    from tinyml.targets.run import run_project
    from tinyml.tools.verify import pack_samples, random_inputs

    c = build_model(_model(tmp_path, "ds_cnn"), "host")
    files = dict(c.files)
    head, tail = files["model.c"].rsplit("    return 0;\n}\n", 1)  # the end of ds_cnn_invoke()
    overflow = "    ((volatile uint8_t *)&ds_cnn_memory)[sizeof ds_cnn_memory.before + DS_CNN_ARENA_BYTES] = 0;\n"
    files["model.c"] = head + overflow + "    return 0;\n}\n" + tail
    assert files["model.c"] != c.files["model.c"]
    write_project(files, tmp_path / "p")
    with pytest.raises(RunError, match="canary"):
        run_project(tmp_path / "p", pack_samples(c.graph, random_inputs(c.graph, 1, 0)))


# ---------------------------------------------------------------------------
# CLI


def test_cli_plan_json_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model(tmp_path, "mobilenet_v1")
    plot = tmp_path / "m.png"
    assert cli_main(["plan", str(model), "--sram", "32000", "--json", "--plot", str(plot)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["arena_bytes"] <= 32000 <= r["layer_by_layer"]["arena_bytes"]
    assert r["peak_sram_bytes"] <= r["arena_bytes"]
    assert r["extra_macs"] > 0 and r["stages"] and len(r["schedule"]) == 30
    assert plot.stat().st_size > 10_000
    assert cli_main(["plan", str(model), "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "peak SRAM" in text and "in place" in text


def test_cli_plan_budget_too_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model(tmp_path, "ds_cnn")
    assert cli_main(["plan", str(model), "--sram", "1k", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot run in 1024 bytes" in err and "smallest plan found needs" in err and "\n" not in err


def test_cli_compile_sram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model(tmp_path, "mobilenet_v1")
    assert cli_main(["compile", str(model), "-b", "host", "-o", str(tmp_path / "p"), "--sram", "32000"]) == 0
    header = (tmp_path / "p" / "model.h").read_text()
    arena = int(header.split("_ARENA_BYTES ")[1].split("u")[0])
    assert arena <= 32000
    assert "for (int patch = 0;" in (tmp_path / "p" / "model.c").read_text()


@pytest.mark.slow
def test_bench_memory_against_tflm(capsys: pytest.CaptureFixture[str]) -> None:
    """The judged ratios: TFLM's activation area (measured now) over our arena."""
    from tinyml.tools.plan import bench_memory

    rows = {r.model: r for r in bench_memory([(c.id, build(c)) for c in zoo_cases(
        "ds_cnn", "mobilenet_v1", "resnet8", "mobilenet_v2-144", "fc_autoencoder")])}
    for r in rows.values():
        assert r.ours <= r.tflm_activations, r
        assert r.extra_macs <= 0.15 * r.macs
    assert rows["ds_cnn"].ratio >= 1.8
    assert rows["mobilenet_v1"].ratio >= 2.3
    assert rows["mobilenet_v2-144"].ratio >= 4.0


@pytest.mark.slow
def test_resnet8_ratio() -> None:
    from tinyml.tools.plan import bench_memory

    (r,) = bench_memory([(c.id, build(c)) for c in zoo_cases("resnet8")])
    assert r.ratio >= 1.4


def test_cli_bench_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model(tmp_path, "ds_cnn")
    assert cli_main(["bench", "memory", str(model)]) == 0
    out = capsys.readouterr().out
    assert "ds_cnn" in out and "TFLM" in out and "x " in out
