"""The pipeline: .tflite -> Graph -> Plan -> kernel calls -> C project on disk."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tinyml.boards import Board, list_boards, load_board
from tinyml.codegen.fold import fold_note, fold_transposes, folded
from tinyml.codegen.lower import Alias, KernelCall, LowerContext, Lowered
from tinyml.codegen.ops import lower_op
from tinyml.codegen.ops.floats import LIBM_KERNELS
from tinyml.codegen.render import ARENA_KINDS, Storage, render_model
from tinyml.codegen.specialize import flash_fallbacks, specialize_calls, variant_options, weight_bytes, without_variants
from tinyml.codegen.variants import estimate_cycles, variant
from tinyml.errors import FitError, InputError
from tinyml.graph import Graph, load_tflite
from tinyml.graph.validate import validate_graph
from tinyml.schedule.choose import TOLERANCE, Options, candidates, pick
from tinyml.schedule.plan import Plan
from tinyml.targets.export import FORMATS, check_static_lib_tools, library_files, model_header, static_lib_files
from tinyml.targets.project import Application, render_project_files, reserved_ram_bytes, runtime_statics_estimate

PROJECT_MARKER = "project.json"


@dataclass
class Compiled:
    graph: Graph
    board: Board
    plan: Plan
    calls: list[Lowered]
    files: dict[str, str | bytes]  # relative path -> content (bytes: a static library)
    fold_note: str = ""  # TRANSPOSEs folded into their readers, or why not (codegen/fold.py)
    flash_note: str = ""  # layers on slower variants over fewer weight bytes, for the board's flash

    @property
    def kernel_families(self) -> list[str]:
        """The kernel families besides portable C that the model runs ("dsp", "mve")."""
        return sorted({variant(k.kernel).family for k in self.calls if isinstance(k, KernelCall)} - {"portable"})

    @property
    def weight_bytes(self) -> int:
        """Compiled weights: bytes of constant data the generated code holds in flash, the constant tensors
        the kernel calls still reference plus the arrays lowering derived (rearranged and padded weights,
        folded biases, multipliers, shifts, tables); the linked ELF's SizeReport.weight_bytes measures the
        same.  Not the .tflite's constant tensors (`tinyml inspect`'s model constants)."""
        return weight_bytes(self.graph, self.calls)

    @property
    def code_estimate_bytes(self) -> int:
        """Estimated flash besides the compiled weights (code_estimate_bytes), before a build measures it."""
        return code_estimate_bytes(self.calls)

    @property
    def uses_libm(self) -> bool:
        """Whether the generated C calls the C math library (expf, tanhf: float32 SOFTMAX, LOGISTIC, TANH), so
        that a build links it (-lm)."""
        return any(isinstance(k, KernelCall) and k.kernel in LIBM_KERNELS for k in self.calls)

    @property
    def macs(self) -> int:
        return sum(k.macs for k in self.calls if isinstance(k, KernelCall))


def lower_graph(graph: Graph, *, fold: bool = False) -> list[Lowered]:
    """Every operator validated (tinyml.graph.validate), then lowered once, to its portable kernel call
    (or an alias); ``fold``: each TRANSPOSE that can fold folded into its consumer
    (codegen/fold.py), else every TRANSPOSE a copy."""
    validate_graph(graph)
    ctx = LowerContext(graph=graph)
    calls = [lower_op(ctx, op) for op in graph.ops]
    return fold_transposes(ctx, calls) if fold else calls


@dataclass
class Planned:
    """A graph lowered and planned for a board: what compile, plan, inspect and profile all report from."""

    ctx: LowerContext
    calls: list[Lowered]  # portable, in graph order
    options: Options
    candidates: list[Plan]
    plan: Plan  # the one the objective picks
    fold_note: str = ""  # what became of the TRANSPOSEs that can fold (codegen/fold.fold_note)
    flash_note: str = ""  # the layers on slower variants over fewer weight bytes (fit_flash), or ""


def plan_graph(graph: Graph, board: Board | None, sram: int | None = None, *,
               tolerance: float = TOLERANCE, fold: bool | None = None, stream_input: bool = False) -> Planned:
    """Lower once, list every operator's variants on ``board`` (portable kernels without one), and plan
    (``tolerance``: how much slower than the fastest plan, by estimate, a default build may be to save
    memory; 0 gives the fast build).  ``fold``: None plans a model with a foldable TRANSPOSE at an input
    both ways, folded (codegen/fold.py) and copying, and the objective picks among all their candidate
    plans; True folds wherever it can, False never.  ``stream_input``: the model's input is streamed row by row
    (a callback fills it band by band, ``NAME_invoke_rows``), never held whole; only plans that can do so."""
    ctx = LowerContext(graph=graph, features=board.features if board else (),
                       stack_bytes=(board.stack_bytes or 0) if board else 0)
    calls = lower_graph(graph)
    ways = [calls]
    if fold is not False:
        folded_calls = fold_transposes(ctx, calls)
        if any(a is not b for a, b in zip(folded_calls, calls)):
            ways = [folded_calls] if fold else [folded_calls, calls]
    planned = []
    for way in ways:
        options = variant_options(ctx, way)
        planned.append((way, options, candidates(graph, options, sram=sram, stream=stream_input)))
    every = [p for _, _, plans in planned for p in plans]
    plan = pick(graph, every, sram, tolerance=tolerance)
    way, options, plans = next(w for w in planned if any(p is plan for p in w[2]))
    folds = folded(planned[0][0])
    best_folded = None
    if folds and way is not planned[0][0]:  # what the objective takes among the folded plans alone
        try:
            best_folded = pick(graph, planned[0][2], sram, tolerance=tolerance)
        except FitError:
            pass
    note = fold_note(graph, folds, taken=way is planned[0][0],
                     folded=(best_folded.arena_bytes, int(best_folded.cost)) if best_folded else None,
                     chosen=(plan.arena_bytes, int(plan.cost)))
    planned_way = Planned(ctx=ctx, calls=way, options=options, candidates=plans, plan=plan, fold_note=note)
    return fit_flash(planned_way, board, sram, tolerance, stream_input) if board is not None else planned_way


def fit_flash(planned: Planned, board: Board, sram: int | None, tolerance: float, stream: bool = False) -> Planned:
    """Where the plan's compiled weights would not fit the board's flash (with code_estimate_bytes of code),
    the operators whose variant has a slower one over fewer weight bytes (Variant.saves_flash_of) move onto
    it, largest saving first, until they fit (or every one has), and the model is planned again without the
    variants they left; ``flash_note`` says which.  A board without a flash size is left as planned."""
    if board.kind == "host" or not board.flash_bytes:
        return planned
    graph, ctx = planned.ctx.graph, planned.ctx
    left_out: dict[int, tuple[str, str]] = {}
    options, plans, plan = planned.options, planned.candidates, planned.plan
    calls = specialize_calls(ctx, planned.calls, plan)
    before = weights = weight_bytes(graph, calls)
    code = code_estimate_bytes(calls)
    while weights > board.flash_bytes - code:
        more = flash_fallbacks(ctx, planned.calls, plan, weights - (board.flash_bytes - code))
        if not more.ops:
            break  # nothing more to save: check_fit says by how much it is too big
        left_out.update(more.ops)
        options = without_variants(planned.options, left_out)
        plans = candidates(graph, options, sram=sram, stream=stream)
        plan = pick(graph, plans, sram, tolerance=tolerance)
        calls = specialize_calls(ctx, planned.calls, plan)
        weights, code = weight_bytes(graph, calls), code_estimate_bytes(calls)
    if not left_out:
        return planned
    kinds = sorted({f"{narrow} for {wide}" for wide, narrow in left_out.values()})
    ops = ", ".join(str(op) for op in left_out)
    note = (f"flash: {len(left_out)} layer(s) (ops {ops}, largest first) on {', '.join(kinds)}, compiled weights "
            f"{before:,} -> {weights:,} bytes, to fit the {board.flash_bytes:,}-byte flash of {board.name} "
            f"(with {code:,} of code, estimated)")
    return replace(planned, options=options, candidates=plans, plan=plan, flash_note=note)


# A linker section name: C-identifier characters and dots, as GNU ld and every linker script take it
# unquoted; the compiler's own sections (code, constants, initialized and zeroed data) are not names
# to choose.
_SECTION_RE = re.compile(r"^\.?[A-Za-z_][A-Za-z0-9_.]{0,62}$")
_TOOLCHAIN_SECTIONS = re.compile(r"^\.(text|rodata|data|bss|init|fini|ARM|vectors|stack|heap)(\.|$)")


def check_storage(storage: Storage) -> Storage:
    """Refuse an arena kind or a section name that the C or the linker would reject or misplace."""
    if storage.arena not in ARENA_KINDS:
        raise InputError(f"arena '{storage.arena}' is not one of {', '.join(ARENA_KINDS)}")
    for option, section in (("--weights-section", storage.weights_section),
                            ("--arena-section", storage.arena_section)):
        if section is None:
            continue
        if not _SECTION_RE.match(section):
            raise InputError(f"{option} '{section}' is not a section name: use letters, digits, '_' and '.' "
                             "(at most 63), not starting with a digit, e.g. .dtcm_bss or .ext_flash")
        if _TOOLCHAIN_SECTIONS.match(section):
            raise InputError(f"{option} '{section}' is one of the toolchain's own sections; choose a name of "
                             "your own (e.g. .model_weights, .model_arena) and place it in your linker script")
    if storage.arena_section is not None and storage.arena == "caller":
        raise InputError("--arena-section places the static arena, but with --arena caller the firmware owns "
                         "the arena: put your buffer in a section yourself")
    if storage.weights_section is not None and storage.weights_section == storage.arena_section:
        raise InputError(f"--weights-section and --arena-section are both '{storage.weights_section}'; "
                         "constants and the arena need sections of their own")
    return storage


def check_format(fmt: str, app: Application | None = None) -> str:
    if fmt not in FORMATS:
        raise InputError(f"format '{fmt}' is not one of {', '.join(FORMATS)}")
    if app is not None and fmt != "project":
        raise InputError(f"the {app.name} application is a firmware project; leave out --format {fmt}")
    return fmt


def build_model(model: str | os.PathLike[str] | Graph, board: str | Board, *, name: str | None = None,
                sram: int | None = None, app: Application | None = None,
                tolerance: float = TOLERANCE, storage: Storage = Storage(), fmt: str = "project",
                fold: bool | None = None, stream_input: bool = False) -> Compiled:
    """Everything up to the file contents, without touching the disk.

    graph -> lower (once per operator) -> the variants each operator may run
    on the board -> plan (order, variant per operator, in place, patches,
    arena offsets) -> specialize the chosen variants -> render.
    ``sram``: arena budget in bytes; the plan that fits it with the lowest
    estimated cost is used (patch-based if needed), see tinyml.schedule.choose;
    without one, the smallest arena within 2% of the fastest plan.
    ``model``: a .tflite path or an imported Graph (``name`` then unused).
    ``app``: an application's main, sources and metadata for the project.
    ``storage``: the arena static or the caller's, and the linker sections of weights and arena.
    ``fmt``: "project" (a firmware project) or a library layout ("library", "cmake"; "static-lib"
    is laid out as "library" here, and compile_model builds its archive).
    ``fold``: a TRANSPOSE folded into its consumer (codegen/fold.py) where the objective
    prefers it (None), wherever it can (True), or never (False; a copy).
    ``stream_input``: the model pulls its input row by row from a caller's callback
    (``NAME_invoke_rows``, see model.h) and never holds it whole.
    """
    check_storage(storage)
    check_format(fmt, app)
    if app is not None and storage.arena != "static":
        raise InputError(f"the {app.name} application needs the model's static arena; leave out --arena caller")
    brd = board if isinstance(board, Board) else load_board(board)
    if stream_input and fmt == "project" and brd.host_io == "uart":
        raise InputError(f"board {brd.name} runs the host-link firmware over its UART, which writes input 0 "
                         "whole: for --stream-input give --format library, cmake or static-lib (your firmware "
                         "calls NAME_invoke_rows), or a semihosting board")
    graph = model if isinstance(model, Graph) else load_tflite(model, name=name)
    planned = plan_graph(graph, brd, sram, tolerance=tolerance, fold=fold, stream_input=stream_input)
    plan = planned.plan
    calls = specialize_calls(planned.ctx, planned.calls, plan)
    model_files = render_model(graph, calls, plan, storage=storage, header=model_header(graph.name, fmt))
    compiled = Compiled(graph=graph, board=brd, plan=plan, calls=calls, files=dict(model_files),
                        fold_note=planned.fold_note, flash_note=planned.flash_note)
    check_fit(compiled, smallest_arena=min(p.arena_bytes for p in planned.candidates))
    if fmt == "project":
        compiled.files.update(render_project_files(brd, graph.name, app, storage))
    else:
        compiled.files = dict(library_files(brd, graph.name, model_files, fmt, storage,
                                            families=compiled.kernel_families, arena_bytes=plan.arena_bytes,
                                            source=graph.source, libm=compiled.uses_libm))
    files = compiled.files
    meta = project_metadata(compiled)
    meta.update(format=fmt, arena=storage.arena, weights_section=storage.weights_section,
                arena_section=storage.arena_section)
    if app is not None:
        meta["application"] = dict(name=app.name, **app.metadata)
    files[PROJECT_MARKER] = json.dumps(meta, indent=2) + "\n"
    return compiled


# Flash for code and constants besides the weights, before a build measures it (code_estimate_bytes): each
# specialized kernel function's declared machine code (Variant.code_bytes: the mean of that kernel's functions
# over the builds below), a fixed part (start-up, drivers, the model API), each kernel family's shared helpers
# and each kernel call (its parameters, the call), fitted (least squares on relative error) to the linked
# ELFs' code and other bytes (arm-none-eabi, `tinyml profile --json` sizes.code_bytes, December 2026) of 32
# builds: the zoo's DS-CNN, DS-CNN-M, MobileNetV1-0.25, ResNet-8, MobileNetV2-0.35-144 and MLPerf AD
# autoencoder and a model of ten TRANSPOSEs, default, fast and portable-only, on mps2-an386 and mps3-an547
# (4.4 to 81 KB): from -14% (patch stages' loops, the largest specialized functions) to +18% of them, so
# CODE_ESTIMATE_MARGIN on top: the estimate is then from +1% (ResNet-8 on mps3-an547) to +22%
# (MobileNetV1-0.25 on mps2-an386 +9.7 KB; the autoencoder's 6 KB +38%) of the zoo's default builds.  A flat 16 KiB was 29 KB short of MobileNetV1-0.25's 45 KB on mps2-an386
# (a 300 KB flash passed the estimate and failed at link by 6,420 bytes).
CODE_ESTIMATE_BASE = 2396
CODE_ESTIMATE_PER_CALL = 183
CODE_ESTIMATE_HELPERS = {"dsp": 1052, "mve": 281}  # a family's shared helpers, once per model that uses it
CODE_ESTIMATE_MARGIN = 1.17


def code_estimate_bytes(calls: list[Lowered], more_functions: tuple[str, ...] = ()) -> int:
    """Estimated flash bytes of everything but the compiled weights for a model of these specialized calls
    (``more_functions``: the variants, by template, of kernel functions it would have besides theirs)."""
    functions = {k.function: k.kernel for k in calls if isinstance(k, KernelCall)}
    kinds = [variant(t) for t in (*functions.values(), *more_functions)]
    fit = (CODE_ESTIMATE_BASE + sum(v.code_bytes for v in kinds)
           + sum(CODE_ESTIMATE_HELPERS.get(f, 0) for f in {v.family for v in kinds})
           + CODE_ESTIMATE_PER_CALL * sum(isinstance(k, KernelCall) for k in calls))
    return int(round(fit * CODE_ESTIMATE_MARGIN))


@dataclass(frozen=True)
class Fit:
    """Will it fit: a compiled model's RAM and flash against the board's memories, as far as they are
    known before a build (estimated: flash as weights plus code_estimate_bytes of code, the runtime's static
    data as runtime_statics_estimate) or measured in the linked ELF (flash_measured, ram_measured)."""

    board: str
    arena_bytes: int  # activations, inputs, outputs and kernel scratch
    scratch_bytes: int  # kernel scratch, part of the arena
    stack_bytes: int  # the deepest kernel's stack (part of the board's stack, in reserved_bytes)
    reserved_bytes: int  # the runtime's stacks and guard (and host-link buffers), besides the arena
    statics_bytes: int  # the runtime's static data: estimated (runtime_statics_estimate), or the ELF's
    ram_bytes: int  # arena + reserved + statics
    board_ram_bytes: int | None  # None: a host board, no limit
    weight_bytes: int  # compiled weights (Compiled.weight_bytes), or the linked ELF's (flash_measured)
    flash_bytes: int  # weights + the code estimate, or measured in the linked ELF (flash_measured)
    board_flash_bytes: int | None
    flash_measured: bool = False  # flash_bytes and weight_bytes are the linked ELF's
    ram_measured: bool = False  # ram_bytes is the linked ELF's RAM, and statics_bytes what it holds besides
    stack_high_water_bytes: int | None = None  # measured under QEMU: the stack one inference used
    estimated_cycles: int | None = None  # one inference, from the plan's cost (None: no factors for the core)
    clock_hz: int | None = None  # the board's clock
    state_bytes: int = 0  # state kept between invocations (variable tensors), part of the arena

    @property
    def estimated_ms(self) -> float | None:
        """Estimated milliseconds of one inference at the board's clock (zero-wait-state)."""
        return 1e3 * self.estimated_cycles / self.clock_hz if self.estimated_cycles and self.clock_hz else None

    @property
    def ram_fits(self) -> bool:
        return self.board_ram_bytes is None or self.ram_bytes <= self.board_ram_bytes

    @property
    def flash_fits(self) -> bool:
        return self.board_flash_bytes is None or self.flash_bytes <= self.board_flash_bytes

    @property
    def fits(self) -> bool:
        return self.ram_fits and self.flash_fits

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        return dict(asdict(self), fits=self.fits, estimated_ms=self.estimated_ms)

    def format(self) -> str:
        def of(n: int, limit: int | None) -> str:
            return f"{n:,} bytes" + (f" of {limit:,} ({100 * n / limit:.0f}%)" if limit else "")

        flash = (f"flash {of(self.flash_bytes, self.board_flash_bytes)} in the linked ELF: compiled weights "
                 f"{self.weight_bytes:,} + code and other {self.flash_bytes - self.weight_bytes:,}"
                 if self.flash_measured else
                 f"flash about {of(self.flash_bytes, self.board_flash_bytes)}: compiled weights "
                 f"{self.weight_bytes:,} + code (estimated {self.flash_bytes - self.weight_bytes:,})")
        high = (f"; high-water {self.stack_high_water_bytes:,} measured under QEMU"
                if self.stack_high_water_bytes is not None else "")
        where, statics = ((" in the linked ELF", f" + runtime statics {self.statics_bytes:,}") if self.ram_measured
                          else ("", f" + runtime statics {self.statics_bytes:,} (estimated)"
                                if self.statics_bytes else ""))
        state = f", state {self.state_bytes:,}" if self.state_bytes else ""
        return (f"RAM {of(self.ram_bytes, self.board_ram_bytes)}{where}: arena {self.arena_bytes:,} (kernel scratch "
                f"{self.scratch_bytes:,}{state} of it) + stacks and runtime {self.reserved_bytes:,} (kernel stack "
                f"{self.stack_bytes:,}{high}){statics}; {flash} on {self.board}{self.format_latency()}")

    def format_latency(self) -> str:
        """"; latency about N cycles = M ms (estimated, zero-wait-state, F MHz)", or "" without an estimate."""
        if self.estimated_cycles is None:
            return ""
        ms = self.estimated_ms
        clock = (f" = {ms:.2f} ms (estimated from the plan's cost, zero-wait-state, {self.clock_hz / 1e6:g} MHz)"
                 if ms is not None and self.clock_hz else " (estimated from the plan's cost, zero-wait-state)")
        return f"; latency about {self.estimated_cycles:,} cycles{clock}"


def fit_of(c: Compiled) -> Fit:
    """The fit summary of ``c`` (a host board has no memory limits)."""
    b = c.board
    host = b.kind == "host"
    reserved = reserved_ram_bytes(b)
    statics = runtime_statics_estimate(b, _input_bytes(c.graph))
    cycles = None if host else estimate_cycles(c.plan, b.cpu)
    return Fit(board=b.name, arena_bytes=c.plan.arena_bytes, scratch_bytes=c.plan.scratch_bytes,
               stack_bytes=c.plan.stack_bytes, reserved_bytes=reserved, statics_bytes=statics,
               ram_bytes=c.plan.arena_bytes + reserved + statics,
               board_ram_bytes=None if host else b.ram_bytes, weight_bytes=c.weight_bytes,
               flash_bytes=c.weight_bytes + c.code_estimate_bytes, board_flash_bytes=None if host else b.flash_bytes,
               estimated_cycles=cycles, clock_hz=b.cpu_hz, state_bytes=c.plan.state_bytes)


def check_fit(c: Compiled, smallest_arena: int | None = None) -> None:
    """FitError when ``c`` does not fit its board, saying by how much and what would fit: an arena budget
    (``smallest_arena``: the smallest arena any plan of the model reaches) or a board with more memory."""
    f = fit_of(c)
    if not f.ram_fits:
        assert f.board_ram_bytes is not None
        room = f.board_ram_bytes - f.reserved_bytes - f.statics_bytes
        hint = (f"compile with --sram {room} (the arena this board leaves) for a slower plan that fits, or "
                if smallest_arena is not None and 0 < smallest_arena <= room else "")
        raise FitError(
            f"model '{c.graph.name}' needs {f.ram_bytes} bytes of RAM (arena {f.arena_bytes} + stack and "
            f"runtime {f.reserved_bytes} + runtime statics {f.statics_bytes}, estimated) but board {f.board} has "
            f"{f.board_ram_bytes}, "
            f"{f.ram_bytes - f.board_ram_bytes} bytes too many; {hint}choose a board with more SRAM"
            f"{_boards_that_hold(f, _input_bytes(c.graph))} or a smaller model"
        )
    if not f.flash_fits:
        assert f.board_flash_bytes is not None
        raise FitError(
            f"model '{c.graph.name}' needs about {f.flash_bytes} bytes of flash (compiled weights "
            f"{f.weight_bytes} + code) but board {f.board} has {f.board_flash_bytes}, "
            f"{f.flash_bytes - f.board_flash_bytes} bytes "
            f"too many; choose a board with more flash{_boards_that_hold(f, _input_bytes(c.graph))} or a smaller "
            "model"
        )


def _input_bytes(g: Graph) -> int:
    return sum(g.tensors[t].nbytes for t in g.inputs)


def _boards_that_hold(f: Fit, input_bytes: int) -> str:
    """" (e.g. A, B)": the boards with the least SRAM that hold this arena and these weights."""
    fitting = sorted((b for b in list_boards() if b.kind != "host" and b.name != f.board and b.ram_bytes
                      and b.flash_bytes and b.ram_bytes >= f.arena_bytes + reserved_ram_bytes(b)
                      + runtime_statics_estimate(b, input_bytes)
                      and b.flash_bytes >= f.flash_bytes), key=lambda b: (b.ram_bytes, b.name))
    return f" (e.g. {', '.join(b.name for b in fitting[:3])})" if fitting else ""


def project_metadata(c: Compiled) -> dict[str, object]:
    g = c.graph

    def io(t: int) -> dict[str, object]:
        ten = g.tensors[t]
        return dict(
            name=ten.name, shape=list(ten.shape), dtype=ten.dtype, bytes=ten.nbytes,
            scale=ten.quant.s if ten.quant else None, zero_point=ten.quant.zp if ten.quant else None,
        )

    return dict(
        tool="tinyml",
        model=g.name,
        source=g.source,
        board=c.board.name,
        inputs=[io(t) for t in g.inputs],
        outputs=[io(t) for t in g.outputs],
        arena_bytes=c.plan.arena_bytes,
        weight_bytes=c.weight_bytes,
        macs=c.macs,
        ops=[dict(index=k.op_index, kind=k.op_kind,
                  output=[g.tensors[t].name for t in (k.outputs if isinstance(k, KernelCall) else [k.target])])
             for k in c.calls],
    )


def check_output_dir(out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Refuse an output directory whose replacement would lose a user's files.

    A project directory may be new, empty, or an earlier tinyml project
    (it has project.json).  The current directory, any of its parents, and
    a non-empty directory that is not a project are refused unless
    ``force``; a path that exists and is not a directory always is."""
    out = Path(os.path.abspath(out_dir))  # '.', '..' resolved; a symbolic link stays one
    if out.is_symlink():
        raise InputError(f"{out_dir}: is a symbolic link; give the directory itself (or a new path) with -o")
    if not out.exists():
        return out
    if not out.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory; choose another output directory")
    if force:
        return out
    real, cwd = out.resolve(), Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        which = "the current directory" if real == cwd else f"a parent of the current directory {cwd}"
        raise InputError(f"{out_dir}: is {which}, which tinyml would replace with the project; give a new "
                         "directory with -o (or --force to replace it)")
    if real.parent == real:
        raise InputError(f"{out_dir}: is the root directory; give a new directory with -o")
    if any(out.iterdir()) and not (out / PROJECT_MARKER).is_file():
        raise InputError(f"{out_dir}: directory is not empty and is not a tinyml project (no {PROJECT_MARKER}); "
                         "choose an empty or new directory (or --force to replace it)")
    return out


def write_project(files: dict[str, str | bytes], out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write all files or nothing, and lose no one's files.

    The output directory is checked first (check_output_dir).  The new tree
    is written into a temporary sibling; an existing directory is renamed
    aside, the new one renamed into its place, and only then is the old one
    deleted.  If anything fails before that, the old directory is back
    where it was and the temporary one is gone."""
    out = check_output_dir(out_dir, force=force)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".new", dir=parent))
    except OSError as e:
        raise InputError(f"{out_dir}: cannot create the output directory ({e.strerror}); check the path and "
                         "its permissions") from None
    aside: Path | None = None
    try:
        try:
            for rel, content in files.items():
                p = tmp / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, bytes):
                    p.write_bytes(content)
                else:
                    p.write_text(content)
            if out.exists():
                aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
                os.replace(out, aside)  # onto the empty directory mkdtemp made: atomic on POSIX
            os.replace(tmp, out)
        except OSError as e:
            raise InputError(f"{out_dir}: cannot write the project ({e.strerror}: {e.filename}); the previous "
                             "contents are unchanged; check the free space and permissions") from None
    except BaseException:
        if aside is not None and not out.exists():
            os.replace(aside, out)  # put the old project back
            aside = None
        shutil.rmtree(tmp, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return Path(out_dir)


def export_model(model: str | os.PathLike[str] | Graph, board: str | Board, *, name: str | None = None,
                 sram: int | None = None, storage: Storage = Storage(), fmt: str = "project",
                 tolerance: float = TOLERANCE, stream_input: bool = False) -> Compiled:
    """build_model for any ``fmt``, static-lib included (its tools checked first, then libNAME.a built)."""
    check_storage(storage)
    check_format(fmt)
    brd = board if isinstance(board, Board) else load_board(board)
    if fmt == "static-lib":
        check_static_lib_tools(brd)
    compiled = build_model(model, brd, name=name, sram=sram, storage=storage, fmt=fmt, tolerance=tolerance,
                           stream_input=stream_input)
    if fmt == "static-lib":
        compiled.files = static_lib_files(brd, compiled.graph.name, compiled.files)
    return compiled


def compile_model(model: str | os.PathLike[str], board: str | Board, out_dir: str | os.PathLike[str], *,
                  name: str | None = None, sram: int | None = None, force: bool = False,
                  storage: Storage = Storage(), fmt: str = "project", stream_input: bool = False) -> Compiled:
    """Compile ``model`` for ``board`` into the directory ``out_dir``, as a firmware project or a
    library (``fmt``, see tinyml.targets.export; static-lib builds libNAME.a here)
    (see write_project for which directories it replaces; ``force``: any)."""
    check_output_dir(out_dir, force=force)  # before the work, so that a refusal is immediate
    compiled = export_model(model, board, name=name, sram=sram, storage=storage, fmt=fmt, stream_input=stream_input)
    write_project(compiled.files, out_dir, force=force)
    return compiled


def alias_ops(calls: list[Lowered]) -> list[Alias]:
    return [c for c in calls if isinstance(c, Alias)]
