"""`tinyml plan` and `tinyml bench memory`: the memory plan of a model, and our peak next to TFLM's.

Without a board the plan assumes the portable kernels (which can all run in
place or patch by patch where the planner wants); with one, the board's
kernel variants, as ``tinyml compile`` does.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from tinyml.boards import load_board
from tinyml.codegen.fold import fold_transposes
from tinyml.codegen.lower import LowerContext
from tinyml.codegen.specialize import variant_options
from tinyml.compiler import lower_graph, plan_graph
from tinyml.errors import InputError, TinymlError
from tinyml.graph import Graph, load_tflite, parse_tflite
from tinyml.resources import require_extras
from tinyml.schedule.choose import candidates, describe, fastest_facts, frontier
from tinyml.schedule.patch import smallest_plan
from tinyml.schedule.plan import OpFacts, Plan, plan_memory
from tinyml.targets.process import run_process
from tinyml.tools.bench import zoo_network, zoo_network_path
from tinyml.tools.figures import save_figure
from tinyml.tools.profile import profile_model
from tinyml.tools.reference import tflm_arena_bytes
from tinyml.train.zoo import BENCH_NETWORKS

MAX_EXTRA_MACS = 0.15  # `bench memory`: patch plans may add at most this fraction of MACs
SMALLEST_PER_MAC = 1.3  # issue 15: at the smallest budget, at most this many times the fast build's instructions per MAC


def model_facts(graph: Graph) -> dict[int, OpFacts]:
    """The facts of the portable kernels (the board-independent plan)."""
    return fastest_facts(variant_options(LowerContext(graph=graph), lower_graph(graph)))


def smallest_reach(graph: Graph, board: str | None, stream_input: bool = False) -> Plan:
    """The smallest plan ``tinyml compile --sram`` reaches for ``board`` (None: the portable kernels only), the
    one its error names for a budget nothing fits: the smallest arena among the candidates for a 1-byte
    budget, with the TRANSPOSEs that can fold folded and not (as compile plans both); ``stream_input``: with
    the input streamed row by row."""
    brd = load_board(board) if board is not None else None
    ctx = LowerContext(graph=graph, features=brd.features if brd else (),
                       stack_bytes=(brd.stack_bytes or 0) if brd else 0)
    calls = lower_graph(graph)
    ways = [calls, fold_transposes(ctx, calls)]
    plans = [p for way in ways for p in candidates(graph, variant_options(ctx, way), sram=1, stream=stream_input)]
    return min(plans, key=lambda p: (p.arena_bytes, p.cost))


def _step_rows(graph: Graph, plan: Plan, base: Plan) -> list[dict[str, Any]]:
    live = plan.live_bytes()
    base_live = dict(zip(base.order, base.live_bytes()))
    rows = []
    for s, pos in enumerate(plan.order):
        op = graph.ops[pos]
        st = plan.stage_of(pos)
        ip = plan.inplace.get(pos)
        out = graph.tensors[op.outputs[0]] if op.outputs else None
        rows.append(dict(
            step=s, op=pos, kind=op.kind, output_shape=list(out.shape) if out is not None else [],
            output_bytes=out.nbytes if out is not None else 0,
            live_bytes=live[s], layer_by_layer_live_bytes=base_live.get(pos, 0),
            inplace=ip is not None, ring_bytes=ip.ring * ip.unit_bytes if ip is not None else 0,
            patch_stage=plan.stages.index(st) if st is not None else None,
            folded=pos in plan.choice and plan.choice[pos].alias,
        ))
    return rows


def _frontier_row(graph: Graph, plan: Plan, chosen: Plan) -> dict[str, Any]:
    kernels: dict[str, int] = {}
    for f in plan.choice.values():
        if f.alias:
            continue  # a folded TRANSPOSE: no kernel
        kernels[f.variant] = kernels.get(f.variant, 0) + 1
    return dict(arena_bytes=plan.arena_bytes, peak_sram_bytes=plan.peak_bytes, scratch_bytes=plan.scratch_bytes,
                extra_macs=plan.extra_macs, estimated_instructions=plan.cost, schedule=describe(plan),
                inplace_ops=len(plan.inplace), kernels=kernels, chosen=plan is chosen)


@dataclass
class PlanReport:
    """The memory plan `tinyml plan` shows: per step, the live bytes of this plan and of the layer-by-layer
    one; the patch stages; and the memory/cost frontier.  Rows are plain dicts, as `--json` prints them."""

    model: str
    source: str
    board: str | None  # None: the portable kernels
    sram_budget: int | None
    peak_sram_bytes: int
    arena_bytes: int  # activations, inputs, outputs and kernel scratch
    scratch_bytes: int  # kernel scratch, part of the arena
    state_bytes: int  # state kept between invocations (variable tensors): part of the arena, live at every step
    stack_bytes: int  # the deepest kernel's stack
    estimated_instructions: int
    fastest_instructions: int
    peak_step: int
    peak_op: dict[str, Any] | None  # index, kind
    macs: int
    extra_macs: int  # recomputed by patch stages
    placement: str
    layer_by_layer: dict[str, int]  # peak_sram_bytes, arena_bytes
    stages: list[dict[str, Any]]
    schedule: list[dict[str, Any]]
    frontier: list[dict[str, Any]]
    input_streamed: str = ""  # "N rows of M bytes held" when the input is streamed row by row (part of the arena)
    flash_note: str = ""  # layers on slower variants over fewer weight bytes for the board's flash (fit_flash)

    def to_json(self) -> dict[str, Any]:
        """The JSON of `tinyml plan --json` (without the plot files the command adds)."""
        return asdict(self)

    def format(self) -> str:
        return format_plan(self.to_json())


def plan_model(model: str | os.PathLike[str] | Graph, sram: int | None = None,
               board: str | None = None, *, stream_input: bool = False) -> PlanReport:
    """The plan `tinyml plan` shows (FitError when nothing fits ``sram``), with the memory/cost frontier.

    ``model``: a .tflite path or an imported Graph.  ``board``: plan with the kernel variants of that
    board (its DSP or MVE kernels, its stack); without one, with the portable kernels.  The plan is the
    one `tinyml compile` makes for the same board and budget (``stream_input``: with the input streamed)."""
    brd = load_board(board) if board is not None else None
    graph = model if isinstance(model, Graph) else load_tflite(model)
    planned = plan_graph(graph, brd, sram, stream_input=stream_input)
    plans, plan = planned.candidates, planned.plan
    # layer by layer, in place where the fastest variants can (a streamed plan's candidates hold none)
    base = plan_memory(graph, fastest_facts(planned.options)) if stream_input else planned.candidates[1]
    rows = _step_rows(graph, plan, base)
    peak_step = plan.peak_step
    return PlanReport(
        model=graph.name,
        source=graph.source,
        board=brd.name if brd else None,
        sram_budget=sram,
        peak_sram_bytes=plan.peak_bytes,
        arena_bytes=plan.arena_bytes,
        scratch_bytes=plan.scratch_bytes,
        state_bytes=plan.state_bytes,
        stack_bytes=plan.stack_bytes,
        estimated_instructions=plan.cost,
        fastest_instructions=plan.fastest_cost,
        peak_step=peak_step,
        peak_op=dict(index=plan.order[peak_step], kind=graph.ops[plan.order[peak_step]].kind) if plan.order else None,
        macs=plan.macs,
        extra_macs=plan.extra_macs,
        placement=plan.strategy,
        layer_by_layer=dict(peak_sram_bytes=base.peak_bytes, arena_bytes=base.arena_bytes),
        stages=[dict(ops=s.ops, grid=list(s.grid), patches=s.patches, extra_macs=s.extra_macs,
                     split_tensor=s.split, split_shape=list(graph.tensors[s.split].shape), overlaps_source=s.delta is not None)
                for s in plan.stages],
        schedule=rows,
        frontier=[_frontier_row(graph, p, plan) for p in frontier(plans + [plan])],
        input_streamed=plan.stream_held(),
        flash_note=planned.flash_note,
    )


def format_plan(r: dict[str, Any]) -> str:
    lines = [f"memory plan of {r['model']} ({r['source']})"
             + (f" for an arena budget of {r['sram_budget']:,} bytes" if r["sram_budget"] else "")]
    lines.append(f"{'step':>4} {'op':>4} {'kind':<20} {'output':<18} {'out bytes':>10} {'layer-by-layer':>15} "
                 f"{'this plan':>10}  notes")
    for row in r["schedule"]:
        notes = []
        if row["inplace"]:
            notes.append(f"in place (ring {row['ring_bytes']} B)" if row["ring_bytes"] else "in place")
        if row["patch_stage"] is not None:
            notes.append(f"patch stage {row['patch_stage']}")
        if row.get("folded"):
            notes.append("folded into its neighbour (no copy, shares its input's buffer)")
        shape = "x".join(str(d) for d in row["output_shape"])
        lines.append(f"{row['step']:>4} {row['op']:>4} {row['kind']:<20} {shape:<18} {row['output_bytes']:>10,} "
                     f"{row['layer_by_layer_live_bytes']:>15,} {row['live_bytes']:>10,}  {', '.join(notes)}")
    for i, s in enumerate(r["stages"]):
        lines.append(f"patch stage {i}: ops {s['ops'][0]}..{s['ops'][-1]} in {s['grid'][0]}x{s['grid'][1]} patches "
                     f"of tensor {s['split_tensor']} ({'x'.join(map(str, s['split_shape']))}), "
                     f"{s['extra_macs']:,} extra MACs")
    if r.get("input_streamed"):
        lines.append(f"input streamed: {r['input_streamed']} (in the arena, while patch stage 0 runs)")
    lines.append(f"memory/cost frontier ({'kernels of ' + r['board'] if r['board'] else 'portable kernels'}; "
                 "estimated instructions; * = this plan):")
    lines.append(f"  {'arena':>9} {'peak':>9} {'extra MACs':>11} {'est. instructions':>18} {'vs fastest':>10}  schedule")
    fastest = max(r["fastest_instructions"], 1)
    for f in r["frontier"]:
        lines.append(f"{'*' if f['chosen'] else ' '} {f['arena_bytes']:>9,} {f['peak_sram_bytes']:>9,} "
                     f"{f['extra_macs']:>11,} {f['estimated_instructions']:>18,} "
                     f"{f['estimated_instructions'] / fastest:>9.3f}x  {f['schedule']}, {f['inplace_ops']} ops in place")
    lbl = r["layer_by_layer"]
    pct = 100.0 * r["extra_macs"] / max(r["macs"], 1)
    lines.append(f"peak SRAM {r['peak_sram_bytes']:,} bytes at step {r['peak_step']} (op {r['peak_op']['index']} "
                 f"{r['peak_op']['kind']}); arena {r['arena_bytes']:,} bytes ({r['placement']}; kernel scratch "
                 f"{r['scratch_bytes']:,}"
                 + (f", state kept between invocations {r['state_bytes']:,}" if r.get("state_bytes") else "")
                 + " of it); extra MACs "
                 f"{r['extra_macs']:,} ({pct:.1f}% of {r['macs']:,}); layer by layer: peak {lbl['peak_sram_bytes']:,}, "
                 f"arena {lbl['arena_bytes']:,}; kernel stack {r['stack_bytes']:,} bytes; estimated instructions "
                 f"{r['estimated_instructions']:,} ({r['estimated_instructions'] / fastest:.3f}x the fastest plan)")
    if r.get("flash_note"):
        lines.append(f"note: {r['flash_note']}")  # as compile prints it
    return "\n".join(lines)


def plot_plan(r: dict[str, Any], path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Live memory per step: layer by layer and the chosen schedule, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["schedule"]
    steps = [row["step"] for row in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    panels = (("layer by layer", "layer_by_layer_live_bytes", r["layer_by_layer"]["arena_bytes"]),
              ("this plan", "live_bytes", r["arena_bytes"]))
    for ax, (title, key, arena) in zip(axes, panels):
        colors = ["tab:orange" if row["patch_stage"] is not None else
                  "tab:green" if row["inplace"] else "tab:blue" for row in rows]
        ax.bar(steps, [row[key] / 1024 for row in rows], color=colors if key == "live_bytes" else "tab:blue")
        ax.axhline(arena / 1024, color="k", linestyle="--", linewidth=1, label=f"arena {arena / 1024:.1f} kB")
        if r["sram_budget"]:
            ax.axhline(r["sram_budget"] / 1024, color="r", linewidth=1, label="budget")
        ax.set_title(f"{r['model']}: {title}")
        ax.set_xlabel("step (operator in execution order)")
        ax.legend(loc="upper right")
    axes[0].set_ylabel("live activations (kB)")
    fig.text(0.5, 0.005, "green: in place, orange: patch stage", ha="center", fontsize=8)
    return save_figure(fig, path, force=force)


def tflm_arena(model: str | os.PathLike[str]) -> int | None:
    """TFLM's arena for ``model``, measured now; None where TFLM cannot be run (no reference extra)."""
    try:
        return tflm_arena_bytes(Path(model).read_bytes())
    except TinymlError:
        return None


def plot_frontier(r: dict[str, Any], path: str | os.PathLike[str], tflm: int | None, *,
                  force: bool = False) -> Path:
    """The memory/cost frontier: arena against estimated instructions, this plan marked, TFLM's arena as
    a vertical line (measured in the same run; left out, and said so, without the reference extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = r["frontier"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [p["arena_bytes"] / 1024 for p in pts]
    ys = [p["estimated_instructions"] / 1e6 for p in pts]
    ax.step(xs, ys, where="post", color="tab:blue", linewidth=1)
    ax.scatter(xs, ys, color=["tab:red" if p["chosen"] else "tab:blue" for p in pts], zorder=3)
    for p, x, y in zip(pts, xs, ys):
        ax.annotate(p["schedule"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if tflm is not None:
        ax.axvline(tflm / 1024, color="k", linestyle="--", linewidth=1, label=f"TFLM arena {tflm / 1024:.1f} kB")
    else:
        ax.text(0.99, 0.02, "TFLM arena not measured (pip install 'tinyml-toolchain[reference]')",
                transform=ax.transAxes, ha="right", fontsize=7)
    if r["sram_budget"]:
        ax.axvline(r["sram_budget"] / 1024, color="r", linewidth=1, label="budget")
    kernels = f"kernels of {r['board']}" if r["board"] else "portable kernels"
    ax.set_title(f"{r['model']}: memory against estimated cost ({kernels}); red: this plan")
    ax.set_xlabel("arena (kB; activations, inputs, outputs and kernel scratch)")
    ax.set_ylabel("estimated instructions (M)")
    if tflm is not None or r["sram_budget"]:
        ax.legend(loc="upper right")
    return save_figure(fig, path, force=force)


# ---------------------------------------------------------------------------
# bench memory

_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_RECORD = r"""
import sys
from tflite_micro import runtime as rt
model = open(sys.argv[1], "rb").read()
it = rt.Interpreter.from_bytes(model, arena_size=int(sys.argv[2]))
it.print_allocations()
"""


def tflm_activation_bytes(model: bytes, arena: int) -> int:
    """The activation ("head") part of TFLM's arena, as its recording allocator reports it."""
    with tempfile.TemporaryDirectory(prefix="tinyml-bench-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        proc = run_process([sys.executable, "-c", _RECORD, str(path), str(arena)], capture_output=True,
                           text=True, timeout=600)
    m = _HEAD.search(proc.stderr + proc.stdout)
    if m is None:
        raise InputError(f"TFLM did not report its allocations: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return int(m.group(1))


@dataclass
class MemoryRow:
    model: str
    tflm_arena: int  # smallest arena with which TFLM allocates and invokes
    tflm_activations: int  # the activation part of it
    ours_layer_by_layer: int
    ours: int  # without a board: arena of our smallest plan (patch plans within MAX_EXTRA_MACS); with one:
    #           the arena of the default build for it (what tinyml compile makes)
    extra_macs: int
    macs: int
    schedule: str
    board: str | None = None
    instructions: int | None = None  # with a board: exact instructions of one inference of our build (QEMU)
    fast_instructions: int | None = None  # ... and of the fast build (the fastest plan, nothing traded)
    fast_arena: int | None = None
    stream_rows: str = ""  # with the input streamed: "N rows of M bytes held" (the rows in the arena)

    smallest: SmallestRow | None = None  # with a board and smallest=True

    @property
    def ratio(self) -> float:
        return self.tflm_activations / max(self.ours, 1)


@dataclass
class Measured:
    """One build, counted exactly under QEMU: its arena, MACs (patch stages' recomputed ones included) and
    instructions of one inference."""

    arena: int
    macs: int
    instructions: int
    schedule: str

    @property
    def per_mac(self) -> float:
        return self.instructions / max(self.macs, 1)


@dataclass
class SmallestRow:
    """Issue 15's smallest-plan criterion for one model on one board: the smallest arena ``--sram`` reaches
    with the board's kernels and with the portable kernels only, and at those budgets the exact
    instructions per MAC (extra MACs included) against the fast build's."""

    smallest: int  # arena of the smallest plan --sram reaches on the board
    smallest_peak: int
    portable: int  # ... with the portable kernels only (tinyml plan/compile without a board's kernels)
    portable_peak: int
    at_smallest: Measured  # the build for --sram smallest
    at_portable: Measured  # the build for --sram portable (the same build when the budgets are equal)
    fast: Measured  # the fast build (the fastest plan, nothing traded)

    @property
    def per_mac_ratio(self) -> float:
        return self.at_smallest.per_mac / max(self.fast.per_mac, 1e-12)

    @property
    def portable_per_mac_ratio(self) -> float:
        return self.at_portable.per_mac / max(self.fast.per_mac, 1e-12)

    @property
    def meets(self) -> bool:
        """No larger than the portable-only planner's smallest, and at most SMALLEST_PER_MAC times the fast
        build's instructions per MAC at it and at the board's smallest (the strict reading)."""
        return (self.smallest <= self.portable
                and max(self.per_mac_ratio, self.portable_per_mac_ratio) <= SMALLEST_PER_MAC)


def _measure(path: Path, board: str, work: Path, **plan: Any) -> Measured:
    """The build of ``path`` for ``board`` with ``plan`` (sram=, tolerance= as tinyml compile takes them),
    counted under QEMU."""
    planned = plan_graph(load_tflite(path), load_board(board), plan.get("sram"),
                         **{k: v for k, v in plan.items() if k != "sram"}).plan
    report = profile_model(path, board, sizes=False, work_dir=work, **plan)
    return Measured(arena=planned.arena_bytes, macs=report.macs, instructions=report.instructions,
                    schedule=describe(planned))


def _smallest_row(name: str, path: Path, board: str, fast: Measured, work: Path,
                  say: Callable[[str], None], stream_input: bool = False) -> SmallestRow:
    graph = load_tflite(path)
    small, portable = smallest_reach(graph, board, stream_input), smallest_reach(graph, None, stream_input)
    say(f"{name}: smallest plan {small.arena_bytes} bytes on {board}, {portable.arena_bytes} with the portable "
        "kernels only; counting instructions at those budgets")
    at_small = _measure(path, board, work / "smallest", sram=small.arena_bytes, stream_input=stream_input)
    # the board's kernels cannot reach a smaller portable-only budget: the build at the board's smallest
    # stands for it there (and the row is not ok: its smallest is larger)
    at_portable = at_small if portable.arena_bytes <= small.arena_bytes else \
        _measure(path, board, work / "portable", sram=portable.arena_bytes, stream_input=stream_input)
    return SmallestRow(smallest=small.arena_bytes, smallest_peak=small.peak_bytes, portable=portable.arena_bytes,
                       portable_peak=portable.peak_bytes, at_smallest=at_small, at_portable=at_portable, fast=fast)


def _board_row(name: str, data: bytes, board: str, say: Callable[[str], None], smallest: bool = False,
               stream_input: bool = False) -> MemoryRow:
    """Our default build for ``board`` against the fast build, both counted exactly under QEMU (and with
    ``smallest``, the builds at the smallest budgets, :class:`SmallestRow`).  ``stream_input``: our builds
    stream the input row by row; the fast build holds it whole (the fast layer-by-layer build)."""
    with tempfile.TemporaryDirectory(prefix="tinyml-bench-") as tmp:
        path = Path(tmp) / f"{name.replace('-', '_')}.tflite"
        path.write_bytes(data)
        planned = plan_graph(load_tflite(path), load_board(board), stream_input=stream_input).plan
        say(f"{name}: ours {planned.arena_bytes} bytes; counting instructions on {board}")
        ours = profile_model(path, board, sizes=False, work_dir=Path(tmp) / "ours",
                             stream_input=stream_input).instructions
        fast = _measure(path, board, Path(tmp) / "fast", tolerance=0.0)
        small = _smallest_row(name, path, board, fast, Path(tmp), say, stream_input) if smallest else None
        say(f"{name}: measuring TFLM")
        arena = tflm_arena_bytes(data)
        head = tflm_activation_bytes(data, arena + 4096)
    p = planned
    return MemoryRow(model=name, tflm_arena=arena, tflm_activations=head, ours_layer_by_layer=fast.arena,
                     ours=p.arena_bytes, extra_macs=p.extra_macs, macs=p.macs, schedule=describe(p), board=board,
                     instructions=ours, fast_instructions=fast.instructions, fast_arena=fast.arena, smallest=small,
                     stream_rows=p.stream_held())


def bench_memory(models: list[tuple[str, bytes]], *, max_extra: float = MAX_EXTRA_MACS,
                 progress: Callable[[str], None] | None = None, board: str | None = None,
                 smallest: bool = False, stream_input: bool = False) -> list[MemoryRow]:
    """For each (name, .tflite bytes): TFLM's arena measured now, and our plans.  With ``board`` (a QEMU
    board): the default build for it, and its exact instructions next to the fast build's; with
    ``smallest`` too, issue 15's smallest-plan figures (:class:`SmallestRow`)."""
    say = progress or (lambda _m: None)
    if smallest and board is None:
        raise InputError("--smallest counts instructions under QEMU: give a board too (e.g. --board mps2-an386)")
    if stream_input and board is None:
        raise InputError("--stream-input counts instructions under QEMU: give a board too (e.g. --board mps2-an386)")
    if board is not None:
        return [_board_row(name, data, board, say, smallest, stream_input) for name, data in models]
    rows = []
    for name, data in models:
        graph = parse_tflite(data, source=name)
        facts = model_facts(graph)
        base = plan_memory(graph, facts)
        best = smallest_plan(graph, facts, max_extra=max_extra)
        say(f"{name}: ours {best.arena_bytes} bytes; measuring TFLM")
        arena = tflm_arena_bytes(data)
        head = tflm_activation_bytes(data, arena + 4096)
        sched = "layer by layer" if not best.stages else ", ".join(
            f"ops {s.ops[0]}..{s.ops[-1]} in {s.grid[0]}x{s.grid[1]} patches" for s in best.stages)
        rows.append(MemoryRow(model=name, tflm_arena=arena, tflm_activations=head, ours_layer_by_layer=base.arena_bytes,
                              ours=best.arena_bytes, extra_macs=best.extra_macs, macs=best.macs, schedule=sched))
    return rows


def bench_json(row: MemoryRow) -> dict[str, Any]:
    """A row of `tinyml bench memory --json`."""
    out = dict(asdict(row), ratio=row.ratio)
    if row.smallest is not None:
        out["smallest"].update(per_mac_ratio=row.smallest.per_mac_ratio,
                               portable_per_mac_ratio=row.smallest.portable_per_mac_ratio, meets=row.smallest.meets)
        for k in ("at_smallest", "at_portable", "fast"):
            out["smallest"][k]["per_mac"] = getattr(row.smallest, k).per_mac
    return out


def format_bench(rows: list[MemoryRow]) -> str:
    if rows and rows[0].board is not None:
        return _format_board_bench(rows)
    lines = [f"{'model':<20} {'TFLM arena':>11} {'TFLM activations':>17} {'ours layer-by-layer':>20} {'ours':>8} "
             f"{'ratio':>6} {'extra MACs':>10}  schedule"]
    for r in rows:
        lines.append(f"{r.model:<20} {r.tflm_arena:>11,} {r.tflm_activations:>17,} {r.ours_layer_by_layer:>20,} "
                     f"{r.ours:>8,} {r.ratio:>5.2f}x {100.0 * r.extra_macs / max(r.macs, 1):>9.1f}%  {r.schedule}")
    lines.append("ratio = TFLM activations / ours (arena bytes, inputs and outputs included); TFLM measured in this run")
    return "\n".join(lines)


def zoo_models(names: list[str] | None = None, progress: Callable[[str], None] | None = None
               ) -> list[tuple[str, bytes]]:
    """The zoo networks (tinyml.train.zoo.BENCH_NETWORKS, all of them without ``names``): built with random
    weights and quantized with TensorFlow (the train extra) on first use, then cached under the user cache."""
    say = progress or (lambda _m: None)
    unknown = sorted(set(names or ()) - set(BENCH_NETWORKS))
    if unknown:
        raise InputError(f"no zoo network {', '.join(unknown)}; choose from {', '.join(BENCH_NETWORKS)}")
    chosen = list(names) if names else list(BENCH_NETWORKS)
    if any(not zoo_network_path(n).is_file() for n in chosen):
        require_extras("building the zoo networks of tinyml bench memory (or give .tflite files)", "train")
    return [(n, zoo_network(n, say).read_bytes()) for n in chosen]


def _format_board_bench(rows: list[MemoryRow]) -> str:
    lines = [f"memory and instructions on {rows[0].board}: our default build (what tinyml compile makes) against "
             "TFLM and our fast build",
             f"{'model':<22} {'TFLM arena':>11} {'TFLM act.':>10} {'ours':>8} {'ratio':>6} {'fast build':>10} "
             f"{'instructions':>13} {'fast build':>12} {'x':>6}  schedule"]
    for r in rows:
        lines.append(f"{r.model:<22} {r.tflm_arena:>11,} {r.tflm_activations:>10,} {r.ours:>8,} {r.ratio:>5.2f}x "
                     f"{r.fast_arena or 0:>10,} {r.instructions or 0:>13,} {r.fast_instructions or 0:>12,} "
                     f"{(r.instructions or 0) / max(r.fast_instructions or 1, 1):>5.3f}x  {r.schedule}")
    for r in rows:
        if r.stream_rows:
            lines.append(f"{r.model}: input streamed: {r.stream_rows} (in the arena, counted in ours; the test "
                         "firmware reads the rows from its input file: those bytes are the test's, not the model's)")
    lines.append("ours / fast build: arena bytes (activations, inputs, outputs, kernel scratch); ratio = TFLM activations "
                 "/ ours; instructions: exact, one inference under QEMU; TFLM and both builds measured in this run")
    if any(r.smallest is not None for r in rows):
        lines += ["", *_format_smallest(rows)]
    return "\n".join(lines)


def _format_smallest(rows: list[MemoryRow]) -> list[str]:
    lines = [f"smallest plans on {rows[0].board}: the smallest arena --sram reaches with its kernels and with the "
             "portable kernels only; exact instructions per MAC (recomputed MACs included) of the build at each "
             "budget against the fast build's",
             f"{'model':<22} {'smallest':>9} {'portable':>9} {'fast/MAC':>8} {'at smallest':>12} {'x':>6} "
             f"{'at portable':>12} {'x':>6}  {'ok':<6} schedule at the smallest"]
    for r in rows:
        s = r.smallest
        if s is None:
            continue
        lines.append(f"{r.model:<22} {s.smallest:>9,} {s.portable:>9,} {s.fast.per_mac:>8.3f} "
                     f"{s.at_smallest.per_mac:>12.3f} {s.per_mac_ratio:>5.3f}x {s.at_portable.per_mac:>12.3f} "
                     f"{s.portable_per_mac_ratio:>5.3f}x  {'ok' if s.meets else 'MISSED':<6} {s.at_smallest.schedule}")
    for r in rows:
        if r.smallest is not None:
            a, f = r.smallest.at_smallest, r.smallest.fast
            lines.append(f"{r.model} at the smallest: {a.macs - f.macs:,} extra MACs ({100 * (a.macs - f.macs) / max(f.macs, 1):.1f}%), "
                         f"{a.instructions:,} instructions ({a.instructions / max(f.instructions, 1):.3f}x the fast build's "
                         f"{f.instructions:,}), {r.tflm_activations / max(r.smallest.smallest, 1):.2f}x below TFLM's activations")
    lines.append(f"smallest / portable: arena bytes; x: instructions per MAC over the fast build's; ok: the smallest is "
                 f"no larger than the portable-only one and x at both budgets <= {SMALLEST_PER_MAC} (issue 15); "
                 "all builds measured in this run")
    return lines
