"""`tinyml inspect`: what a model contains and what it costs."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tinyml.boards import Board, load_board
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.compiler import Fit, build_model, fit_of, plan_graph
from tinyml.errors import InputError, TinymlError
from tinyml.graph import load_tflite
from tinyml.graph.ir import Graph, Tensor
from tinyml.graph.validate import op_problem
from tinyml.schedule.plan import plan_memory
from tinyml.targets.qemu import QEMU_BINARY
from tinyml.tools.profile import ProfileReport, SizeReport, cycle_core, profile_model, size_report


def _quant(t: Tensor) -> Any:
    if t.quant is None:
        return None
    if t.quant.per_channel:
        return dict(per_channel=True, axis=t.quant.axis, channels=int(t.quant.scale.size),
                    scale_min=float(t.quant.scale.min()), scale_max=float(t.quant.scale.max()))
    return dict(per_channel=False, scale=t.quant.s, zero_point=t.quant.zp)


@dataclass
class Totals:
    operators: int
    macs: int
    constant_bytes: int  # model constants: every constant tensor of the .tflite (weights, biases) as stored
    activation_bytes: int  # every activation tensor
    largest_activation_bytes: int
    arena_bytes: int  # of the plan tinyml compile makes (planned_for says for which kernels)
    peak_live_bytes: int
    planned_for: str
    unsupported: list[str]
    state_bytes: int = 0  # state kept between invocations (variable tensors): part of the arena, live throughout
    folds: str = ""  # TRANSPOSEs folded into their readers, or why not (codegen/fold.fold_note)
    flash_note: str = ""  # layers on slower variants over fewer weight bytes for the board's flash (fit_flash)


@dataclass
class Latency:
    """The estimated latency on a QEMU board (the cycle model), as tinyml profile prints it."""

    board: str
    what: str
    cycles: int
    ms: float | None
    clock_hz: int | None
    instructions: int


@dataclass
class Inspection:
    """What a model holds and costs (`tinyml inspect`); with a board, the firmware's sizes and latency."""

    model: str
    source: str
    inputs: list[dict[str, Any]]  # name, shape, dtype, quant
    outputs: list[dict[str, Any]]
    operators: list[dict[str, Any]]  # index, op, supported, macs, constant_bytes, [problem], inputs, outputs, ...
    totals: Totals
    board: str | None = None
    sizes: SizeReport | None = None  # from the linked ELF for ``board``
    latency: Latency | None = None
    fit: Fit | None = None  # for ``board``: RAM and flash of the linked ELF against the board's
    # Why the model cannot be compiled (the one line `tinyml compile` would give), or None; the CLI prints
    # the table, then this on stderr, and exits 2.
    error: TinymlError | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The JSON of `tinyml inspect --json`."""
        out: dict[str, Any] = dict(model=self.model, source=self.source, inputs=self.inputs, outputs=self.outputs,
                                   operators=self.operators, totals=asdict(self.totals),
                                   cannot_compile=str(self.error) if self.error is not None else None)
        if self.sizes is not None:
            out["sizes"] = dict(board=self.board, **asdict(self.sizes))
        if self.latency is not None:
            out["latency"] = asdict(self.latency)
        if self.fit is not None:
            out["fit"] = self.fit.to_json()
        return out

    def format(self) -> str:
        text = format_inspection(self.to_json())
        return text + f"\nfit: {self.fit.format()}" if self.fit is not None else text


def inspect_model(model: str | os.PathLike[str] | Graph, board: str | None = None, *,
                  stream_input: bool = False) -> Inspection:
    """``model``: a .tflite path or an imported Graph.  ``board``: also build the firmware for that Arm board
    and add ``sizes`` (code and weight bytes) and ``fit`` (RAM and flash against the board's); on a QEMU board
    that uses semihosting, also run it there once and add ``latency`` (estimated cycles and ms from the cycle
    model, as ``tinyml profile`` prints them).  A model that cannot be compiled is inspected all the same
    (without the board's figures), with the reason in ``error``.  ``stream_input``: the plan and build with
    the input streamed row by row (as tinyml compile --stream-input)."""
    if isinstance(model, Graph) and board is not None:
        raise InputError("inspecting a Graph for a board needs its .tflite file; give the path (or bytes)")
    graph = model if isinstance(model, Graph) else load_tflite(model)
    brd = load_board(board) if board is not None else None
    info = inspect_graph(graph, brd, stream_input=stream_input)
    if brd is not None and info.error is None:
        assert not isinstance(model, Graph)
        report = None
        if (brd.kind == "qemu" and brd.host_io == "semihosting" and cycle_core(brd) is not None
                and shutil.which(QEMU_BINARY) is not None):
            report = profile_model(model, str(board), sizes=True, stream_input=stream_input)
        info.board = board
        info.sizes = (report.sizes if isinstance(report, ProfileReport) and report.sizes
                      else size_report(model, str(board), stream_input=stream_input))
        fit = fit_of(build_model(graph, brd, stream_input=stream_input))
        info.fit = replace(fit, flash_bytes=info.sizes.flash_bytes, weight_bytes=info.sizes.weight_bytes,
                           flash_measured=True, ram_bytes=info.sizes.ram_bytes, ram_measured=True,
                           statics_bytes=info.sizes.ram_bytes - fit.arena_bytes - fit.reserved_bytes,
                           stack_high_water_bytes=report.stack_high_water if isinstance(report, ProfileReport)
                           else None)
        if isinstance(report, ProfileReport) and report.cycle_model is not None:
            m = report.cycle_model
            info.latency = Latency(board=str(board), what=m.label, cycles=report.cycles, ms=report.ms,
                                   clock_hz=m.clock_hz, instructions=report.instructions)
    return info


def inspect_graph(graph: Graph, board: Board | None = None, *, stream_input: bool = False) -> Inspection:
    """What ``graph`` holds, and the arena of the plan ``tinyml compile`` makes for ``board`` (the portable
    kernels without one); for a model that cannot be compiled, the arena of its activations alone, and the
    reason in ``error``.  Each operator says whether it compiles on its own, and if not, why."""
    ctx = LowerContext(graph=graph)
    ops = []
    for op in graph.ops:
        entry: dict[str, Any] = dict(index=op.index, op=op.kind, supported=True, macs=0, constant_bytes=0)
        problem = op_problem(graph, op)
        if problem is None:  # validated: lowering raises nothing (were it to, the row says so)
            try:
                lowered = lower_op(ctx, op)
                if isinstance(lowered, KernelCall):
                    entry["macs"] = lowered.macs
            except TinymlError as e:
                problem = str(e)
        if problem is not None:
            entry["supported"] = False
            entry["problem"] = problem
        consts = [graph.tensors[t] for t in op.inputs if t >= 0 and graph.tensors[t].is_const]
        acts = [graph.tensors[t] for t in op.inputs if t >= 0 and not graph.tensors[t].is_const]
        entry["constant_bytes"] = sum(t.nbytes for t in consts)
        entry["inputs"] = [dict(name=t.name, shape=list(t.shape), dtype=t.dtype, quant=_quant(t)) for t in acts]
        entry["outputs"] = [dict(name=graph.tensors[t].name, shape=list(graph.tensors[t].shape),
                                 dtype=graph.tensors[t].dtype, quant=_quant(graph.tensors[t])) for t in op.outputs]
        entry["weights"] = [dict(name=t.name, shape=list(t.shape), dtype=t.dtype, quant=_quant(t)) for t in consts]
        entry["options"] = {k: v for k, v in op.options.items()}
        ops.append(entry)
    error: TinymlError | None = None
    folds = flash_note = ""
    try:
        planned = plan_graph(graph, board, stream_input=stream_input)
        plan, folds, flash_note = planned.plan, planned.fold_note, planned.flash_note
        planned_for = (board.name if board is not None else "portable kernels") + (
            f", input streamed: {plan.stream_held()}" if plan.stream is not None else "")
    except TinymlError as e:
        error = e
        plan = plan_memory(graph)
        planned_for = "activations only: the model cannot be compiled"
    const_bytes = sum(t.nbytes for t in graph.tensors if t.is_const)
    acts = graph.activation_tensors()
    return Inspection(
        model=graph.name,
        source=graph.source,
        inputs=[dict(name=graph.tensors[t].name, shape=list(graph.tensors[t].shape), dtype=graph.tensors[t].dtype,
                     quant=_quant(graph.tensors[t])) for t in graph.inputs],
        outputs=[dict(name=graph.tensors[t].name, shape=list(graph.tensors[t].shape), dtype=graph.tensors[t].dtype,
                      quant=_quant(graph.tensors[t])) for t in graph.outputs],
        operators=ops,
        totals=Totals(
            operators=len(graph.ops),
            macs=sum(o["macs"] for o in ops),
            constant_bytes=const_bytes,
            activation_bytes=sum(graph.tensors[t].nbytes for t in acts),
            largest_activation_bytes=max((graph.tensors[t].nbytes for t in acts), default=0),
            arena_bytes=plan.arena_bytes,
            state_bytes=plan.state_bytes,
            peak_live_bytes=plan.peak_bytes,
            planned_for=planned_for,
            unsupported=[o["op"] for o in ops if not o["supported"]],
            folds=folds,
            flash_note=flash_note,
        ),
        error=error,
    )


def format_inspection(info: dict[str, Any]) -> str:
    lines = [f"model {info['model']} ({info['source']})"]
    for kind in ("inputs", "outputs"):
        for io in info[kind]:
            q = io["quant"]
            qs = f" scale {q['scale']:.6g} zero point {q['zero_point']}" if q and not q["per_channel"] else ""
            lines.append(f"  {kind[:-1]:6} {io['name']}: {io['dtype']} {io['shape']}{qs}")
    lines.append("")
    w = max([18] + [len(o["op"]) for o in info["operators"]])  # UNIDIRECTIONAL_SEQUENCE_LSTM, custom names
    head = f"{'#':>3}  {'operator':<{w}} {'output shape':<18} {'MACs':>10} {'consts':>8}  quantization"
    lines.append(head)
    lines.append("-" * len(head))
    for o in info["operators"]:
        out = o["outputs"][0] if o["outputs"] else dict(shape=[], quant=None)
        wq = o["weights"][0]["quant"] if o["weights"] and o["weights"][0]["quant"] else None
        qtext = ""
        if wq is not None:
            qtext = f"weights per-channel ({wq['channels']})" if wq["per_channel"] else "weights per-tensor"
        elif out.get("dtype") == "float32" and o["op"] != "DEQUANTIZE":
            qtext = "float32"  # a float operator (not quantized)
        if not o["supported"]:
            qtext = "UNSUPPORTED: " + o["problem"]
        lines.append(f"{o['index']:>3}  {o['op']:<{w}} {str(out['shape']):<18} {o['macs']:>10,} "
                     f"{o['constant_bytes']:>8,}  {qtext}")
    t = info["totals"]
    lines.append("")
    lines.append(f"operators {t['operators']}, MACs {t['macs']:,}, model constants {t['constant_bytes']:,} bytes "
                 "(the .tflite's constant tensors)")
    lines.append(f"activations: {t['activation_bytes']:,} bytes in all tensors, largest tensor "
                 f"{t['largest_activation_bytes']:,} bytes, arena {t['arena_bytes']:,} bytes "
                 + (f"(state kept between invocations {t['state_bytes']:,} of it; " if t.get("state_bytes") else "(")
                 + f"peak live {t['peak_live_bytes']:,}; planned for {t['planned_for']})")
    if t.get("folds"):
        lines.append(t["folds"])
    if t.get("flash_note"):
        lines.append(f"note: {t['flash_note']}")  # as compile prints it
    if info.get("sizes"):
        s = info["sizes"]
        lines.append(f"firmware for {s['board']}: flash {s['flash_bytes']:,} bytes, compiled weights "
                     f"{s['weight_bytes']:,}, "
                     f"code and other {s['code_bytes']:,} (machine code {s['text_bytes']:,}, "
                     f"of it kernels {s['kernel_text_bytes']:,})")
    if info.get("latency"):
        lat = info["latency"]
        clock = f" = {lat['ms']:.2f} ms at {lat['clock_hz'] / 1e6:g} MHz" if lat["ms"] is not None else ""
        lines.append(f"latency on {lat['board']}: {lat['cycles']:,} cycles{clock} ({lat['what']}; "
                     f"{lat['instructions']:,} instructions)")
    if t["unsupported"]:
        lines.append(f"unsupported operators: {', '.join(sorted(set(t['unsupported'])))}")
    return "\n".join(lines)
