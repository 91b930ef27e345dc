"""The `tinyml` command: argument parsing only; each command calls one library function."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from tinyml.errors import InputError, TinymlError
from tinyml.limits import MAX_SAMPLES, SEED_MAX, check_model_name

PLOT_FORMATS = ("png", "pdf", "svg")  # the suffixes matplotlib decides the format by


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_inspect(a: argparse.Namespace) -> int:
    from tinyml.tools.api import inspect

    info = inspect(a.model, board=a.board, stream_input=a.stream_input)
    print(json.dumps(info.to_json(), indent=2) if a.json else info.format(), flush=True)
    if info.error is not None:  # the table first, then why the model cannot be compiled (exit 2)
        raise info.error
    return 0


def cmd_profile(a: argparse.Namespace) -> int:
    from tinyml.tools.api import profile
    from tinyml.tools.profile import default_chart

    chart = None if a.no_chart else a.chart or default_chart(a.model, a.board)
    report = profile(a.model, a.board, chart=chart, seed=a.seed, kernels=a.kernels,
                     progress=_say, port=a.port, baudrate=a.baud, sram=a.sram, clock_mhz=a.clock, force=a.force,
                     stream_input=a.stream_input)
    print(json.dumps(report.to_json(), indent=2) if a.json else report.format())
    return 0


def cmd_bench_kernels(a: argparse.Namespace) -> int:
    from tinyml.tools.bench import NETWORKS, bench_kernels

    networks = () if a.no_networks else tuple(a.network or NETWORKS)
    result = bench_kernels(a.board, networks=networks, shapes=() if a.no_shapes else None, progress=_say)
    print(json.dumps(result.to_json(), indent=2) if a.json else result.format())
    return 0


def cmd_plan(a: argparse.Namespace) -> int:
    from pathlib import Path

    from tinyml.tools.api import plan
    from tinyml.tools.figures import check_plot_path
    from tinyml.tools.plan import format_plan, plot_frontier, plot_plan, tflm_arena

    plot = Path(a.plot or f"{Path(a.model).stem}-memory.png")
    frontier_plot = plot.with_name(plot.stem + "-frontier" + plot.suffix)
    if not a.no_plot:  # refused before the work
        for p in (plot, frontier_plot):
            check_plot_path(p, force=a.force)
    report = plan(a.model, a.sram, a.board, stream_input=a.stream_input).to_json()
    if not a.no_plot:
        report["plot"] = str(plot_plan(report, plot, force=a.force))
        report["frontier_plot"] = str(plot_frontier(report, frontier_plot, tflm_arena(a.model), force=a.force))
    print(json.dumps(report, indent=2) if a.json else format_plan(report)
          + "".join(f"\nwrote {report[k]}" for k in ("plot", "frontier_plot") if k in report))
    return 0


def cmd_bench_memory(a: argparse.Namespace) -> int:
    from pathlib import Path

    from tinyml.graph.tflite_import import read_model_file
    from tinyml.resources import require_extras
    from tinyml.tools.plan import bench_json, bench_memory, format_bench, zoo_models

    if a.smallest and not a.board:
        raise InputError("--smallest counts instructions under QEMU: give a board too (e.g. --board mps2-an386)")
    require_extras("tinyml bench memory", "reference")  # TFLM's arena is measured in every row
    models = [(Path(m).stem, read_model_file(m)) for m in a.models] if a.models else zoo_models(progress=_say)
    rows = bench_memory(models, max_extra=a.max_extra, progress=_say, board=a.board, smallest=a.smallest,
                        stream_input=a.stream_input)
    print(json.dumps([bench_json(r) for r in rows], indent=2) if a.json else format_bench(rows))
    return 0


def _bytes(text: str) -> int:
    """A byte count: 65536, 64k / 64K (x1024), 1M."""
    t = text.strip().lower().removesuffix("b")
    mult = {"k": 1024, "m": 1024 * 1024}.get(t[-1:], 1)
    try:
        n = int(t[:-1] if mult != 1 else t) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a byte count (e.g. 65536 or 64k)") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be positive")
    return n


def _seed(text: str) -> int:
    """A random seed: 0 to 2**32 - 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a seed; give a whole number from 0 to {SEED_MAX}") from None
    if not 0 <= n <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{text} is out of range; give a seed from 0 to {SEED_MAX}")
    return n


def _samples(text: str) -> int:
    """A number of random inputs: 1 to MAX_SAMPLES."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of samples (e.g. 10)") from None
    if not 1 <= n <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"{text} is out of range; give 1 to {MAX_SAMPLES:,} samples")
    return n


def _baud(text: str) -> int:
    """A UART baud rate."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a baud rate (e.g. 115200)") from None
    if not 50 <= n <= 20_000_000:
        raise argparse.ArgumentTypeError(f"{text} is out of range; give a baud rate from 50 to 20000000")
    return n


def _clock_mhz(text: str) -> float:
    """--clock: the core clock in MHz, as a board's clock.cpu_hz allows (1 to 1000 MHz)."""
    from tinyml.tools.profile import MAX_CLOCK_HZ, MIN_CLOCK_HZ

    try:
        mhz = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a clock in MHz (e.g. 120)") from None
    if not MIN_CLOCK_HZ <= mhz * 1e6 <= MAX_CLOCK_HZ:
        raise argparse.ArgumentTypeError(f"{text} MHz is out of range; give a clock from "
                                         f"{MIN_CLOCK_HZ // 1_000_000} to {MAX_CLOCK_HZ // 1_000_000} MHz")
    return mhz


def _c_name(text: str) -> str:
    """--name: a lowercase C identifier."""
    try:
        return check_model_name(text)
    except TinymlError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _plot_file(text: str) -> str:
    """A plot file name whose suffix matplotlib writes: .png, .pdf or .svg (checked before any work)."""
    from pathlib import Path

    suffix = Path(text).suffix.lower().lstrip(".")
    if suffix not in PLOT_FORMATS:
        shown = f"unknown plot format '.{suffix}'" if suffix else "no suffix to choose the plot format by"
        raise argparse.ArgumentTypeError(f"'{text}': {shown}; give a file name ending in "
                                         + ", ".join(f".{f}" for f in PLOT_FORMATS[:-1]) + f" or .{PLOT_FORMATS[-1]}")
    parent = Path(text).parent
    if parent.exists() and not parent.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}': {parent} is a file, not a directory; give a file in a directory")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}': directory {parent} does not exist; create it first")
    return text


def _epochs(text: str) -> int:
    """A number of epochs, 0 or more."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of epochs (e.g. 3)") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be 0 (off) or a positive number of epochs")
    return n


def cmd_compile(a: argparse.Namespace) -> int:
    from tinyml.compiler import check_output_dir, fit_of
    from tinyml.tools.api import compile

    start = time.monotonic()
    if a.kws:
        from tinyml.apps.kws import compile_kws

        if (a.arena, a.weights_section, a.arena_section, a.format, a.stream_input) != ("static", None, None,
                                                                                       "project", False):
            raise InputError("--kws firmware is a project with the model's static arena in its default sections, "
                             "its input written whole; leave out --format, --arena, --weights-section, "
                             "--arena-section and --stream-input")
        c = compile_kws(a.model, a.board, a.output, name=a.name or "kws", sram=a.sram, force=a.force)
    else:
        check_output_dir(a.output, force=a.force)  # before the work, so that a refusal is immediate
        c = compile(a.model, a.board, name=a.name, sram=a.sram, format=a.format, arena=a.arena,
                    weights_section=a.weights_section, arena_section=a.arena_section, stream_input=a.stream_input)
        c.write(a.output, force=a.force)
    then = {"project": f"build with 'make -C {a.output}'", "cmake": f"add it with add_subdirectory({a.output})"
            }.get(a.format, f"{a.output}/README.md says which files your build needs")
    print(f"compiled {c.graph.name} for {c.board.name} into {a.output}: {len(c.graph.ops)} operators, "
          f"{c.macs:,} MACs, compiled weights {c.weight_bytes:,} bytes, arena {c.plan.arena_bytes:,} bytes "
          f"(kernel scratch {c.plan.scratch_bytes:,}"
          + (f", state kept between invocations {c.plan.state_bytes:,}" if c.plan.state_bytes else "")
          + f" of it), kernel stack {c.plan.stack_bytes:,} bytes "
          f"({time.monotonic() - start:.1f}s); {then}")
    print(f"fit: {fit_of(c).format()}")
    if c.plan.stream is not None:
        print(f"input streamed: {c.plan.stream_held()} (part of the arena); run it with {c.graph.name}_invoke_rows "
              "(model.h)")
    if c.fold_note:
        print(f"note: {c.fold_note}")
    if c.flash_note:
        print(f"note: {c.flash_note}")
    p = c.plan
    if p.cost > p.fastest_cost * 1.001:
        print(f"note: this plan is estimated at {p.cost / p.fastest_cost:.2f}x the instructions of the fastest "
              f"one ({len(p.slower_ops)} operators on slower kernels, {p.extra_macs:,} extra MACs) to fit "
              + (f"--sram {a.sram:,}" if a.sram else "the smallest arena within 2% of it")
              + f"; 'tinyml plan {a.model} --board {c.board.name}' shows the trade-off")
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    import numpy as np

    from tinyml.tools.execute import project_info, run_files

    if a.renode:
        from tinyml.targets.run import run_renode

        result = run_renode(a.project)
        print(result.output.rstrip())
        print(f"Renode test {result.robot}: {'passed' if result.passed else 'FAILED'}")
        return 0 if result.passed else 1
    if not a.input:
        raise InputError("tinyml run needs --input FILE.npy (or --renode)")
    info = project_info(a.project)
    res = run_files(a.project, a.input, a.output, force=a.force)
    print(f"ran {res.samples} sample(s) on {res.board} in {res.seconds:.2f}s")
    if res.memory:
        print(f"firmware {res.memory}")
    for j, (o, spec) in enumerate(zip(res.outputs, info["outputs"])):
        with np.printoptions(threshold=64, linewidth=120):
            print(f"output {j} '{spec['name']}' {spec['dtype']} {spec['shape']}:")
            print(o[0] if res.samples == 1 else o)
            if spec.get("scale") is not None and spec["dtype"] != "float32":
                deq = (o.astype(np.float64) - spec["zero_point"]) * spec["scale"]
                print("dequantized:")
                print(deq[0] if res.samples == 1 else deq)
    if a.output:
        print(f"wrote {a.output}")
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    from tinyml.tools.verify import verify_model

    report = verify_model(a.model, a.board, samples=a.samples, seed=a.seed, progress=_say, sram=a.sram,
                          stream_input=a.stream_input)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_boards(a: argparse.Namespace) -> int:
    from tinyml.boards import list_boards

    boards = list_boards()
    if a.json:
        print(json.dumps([dict(name=b.name, kind=b.kind, cpu=b.cpu, features=list(b.features),
                               ram_bytes=b.ram_bytes, flash_bytes=b.flash_bytes, description=b.description,
                               host_io=b.host_io, uart=b.uart_driver, clock_hz=b.cpu_hz,
                               pyocd_target=b.pyocd_target, openocd=list(b.openocd),
                               renode_platform=b.renode_platform)
                          for b in boards], indent=2))
        return 0
    def kb(n: int | None) -> str:
        return "-" if n is None else f"{n // 1024}KB"

    print(f"{'board':<17} {'kind':<8} {'core':<14} {'SRAM':>7} {'flash':>7}  {'features':<12} {'I/O':<13} "
          f"{'flash with':<24} renode")
    for b in boards:
        flash_with = (f"pyocd:{b.pyocd_target}" if b.pyocd_target else "openocd" if b.openocd
                      else "qemu -kernel" if b.kind == "qemu" else "-")
        io = "-" if b.host_io is None else ("uart" if b.host_io == "uart" else
                                            "semihost+uart" if b.uart_driver else "semihosting")
        print(f"{b.name:<17} {b.kind:<8} {b.cpu:<14} {kb(b.ram_bytes):>7} {kb(b.flash_bytes):>7}  "
              f"{','.join(b.features) or '-':<12} {io:<13} {flash_with:<24} {'yes' if b.renode_platform else '-'}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from tinyml.resources import require_extras

    require_extras(f"tinyml demo {a.which}", "train", "reference")  # it trains or quantizes, and checks with TFLM
    if a.which == "kws":
        from tinyml.apps.kws import run_kws_demo

        report = run_kws_demo(board=a.board, retrain=a.retrain, say=_say)
        return 0 if report.ok else 1
    from tinyml.apps.demo import run_demo

    return 0 if run_demo(board=a.board, samples=a.samples, out_dir=a.output, force=a.force) else 1


def cmd_train(a: argparse.Namespace) -> int:
    from tinyml.resources import require_extras

    require_extras("tinyml train", "train", "reference")  # it trains, and measures the int8 model in TFLM
    from tinyml.apps.kws import train_and_report

    report = train_and_report(data=a.data, synthetic=a.synthetic, out_dir=a.output, board=a.board,
                              model=a.model, epochs=a.epochs, per_tensor=a.per_tensor,
                              dense_per_tensor=a.dense_per_tensor, force=a.force, seed=a.seed,
                              qat_epochs=a.qat, say=_say)
    return 0 if report.ok else 1


def cmd_kws_stream(a: argparse.Namespace) -> int:
    from tinyml.apps.kws_link import stream_audio

    def show(d) -> None:  # noqa: ANN001
        print(f"{d.time:8.2f} s  {d.label:<6} confidence {d.confidence:.3f}  window {d.window}", flush=True)

    r = stream_audio(a.audio, port=a.port, project=a.project, hop_ms=a.hop_ms, smoothing=a.smoothing,
                     threshold=a.threshold, baudrate=a.baud, on_detection=show, say=_say)
    _say(f"{r.model} on {r.board}: {len(r.scores)} windows, {len(r.detections)} detections; "
         f"{r.bytes_sent:,} bytes in {r.seconds:.1f}s ({r.bytes_sent / max(r.seconds, 1e-9) / 1000:.1f} kB/s)")
    return 0


def cmd_validate(a: argparse.Namespace) -> int:
    from tinyml.resources import require_extras
    from tinyml.tools.verify import validate_device

    require_extras("tinyml validate", "reference")

    report = validate_device(a.model, a.port, samples=a.samples, seed=a.seed, baudrate=a.baud, progress=_say)
    cycles = report.cycles
    if cycles:
        _say(f"cycles per inference on the device: {min(cycles):,} min, {sum(cycles) // len(cycles):,} mean")
    if report.memory is not None:
        _say(f"memory on the device: {report.memory.summary()}")
    print(report.summary())
    return 0 if report.ok else 1


def cmd_flash(a: argparse.Namespace) -> int:
    from tinyml.targets.flash import flash_project

    result = flash_project(a.project, a.board, gdb=a.gdb, probe=a.probe)
    verified = f", {result.sections} sections verified" if result.sections else ""
    print(f"flashed {result.elf} with {result.method}{verified}; the board was reset")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinyml", description="Compile int8 TensorFlow Lite models into bit-exact C for Cortex-M "
                "(float32 models: within a tolerance).")
    from tinyml import __version__

    p.add_argument("--version", action="version", version=f"tinyml {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("inspect", help="operators, shapes, quantization, MACs, weight and activation bytes")
    s.add_argument("model", help=".tflite file")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--board", "-b", help="also build for this Arm board and report code and weight bytes from the ELF, "
                                        "and on a QEMU board the estimated latency (cycle model)")
    s.add_argument("--stream-input", action="store_true", help="with --board: the build with the input streamed "
                   "row by row (as compile --stream-input)")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("profile", help="exact instructions and estimated cycles and ms per layer under QEMU, "
                                       "code and weight bytes")
    s.add_argument("model", help=".tflite file (int8)")
    s.add_argument("--board", "-b", required=True, help="QEMU board, e.g. mps2-an386")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--chart", type=_plot_file,
                   help="bar chart file (default MODEL-BOARD-profile.png, BOARD the board's name)")
    s.add_argument("--no-chart", action="store_true", help="do not write the bar chart")
    s.add_argument("--force", action="store_true", help="replace the chart file even if tinyml did not write it")
    s.add_argument("--kernels", choices=("auto", "portable"), default="auto",
                   help="kernel family: the board's fastest (auto, default) or portable C")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the random input (default 0)")
    s.add_argument("--sram", type=_bytes, help="profile the plan that fits this arena budget (as compile --sram)")
    s.add_argument("--stream-input", action="store_true", help="profile the model with its input streamed row by "
                   "row (as compile --stream-input)")
    s.add_argument("--port", "-p", help="profile the board at this serial port (or socket://HOST:PORT) running the "
                                        "host-link firmware of MODEL: cycles per layer from its cycle counter")
    s.add_argument("--baud", type=_baud, default=115200, help="baud rate with --port (default 115200)")
    s.add_argument("--clock", type=_clock_mhz, metavar="MHZ",
                   help="core clock for the estimated milliseconds (default: the board's clock)")
    s.set_defaults(func=cmd_profile)

    # `tinyml bench PART`: each part is a sub-subcommand of bench_sub.
    s = sub.add_parser("bench", help="benchmarks (see 'tinyml bench --help')")
    bench_sub = s.add_subparsers(dest="bench_part", metavar="PART", parser_class=_Parser)
    bench_sub.required = True
    s = bench_sub.add_parser("kernels", help="instructions per MAC: six layer shapes and the four MLPerf Tiny "
                                             "networks, fast kernels against portable C; the networks' estimated "
                                             "cycles against published MLPerf Tiny results")
    s.add_argument("--board", "-b", default="mps2-an386", help="QEMU board (default mps2-an386)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--no-networks", action="store_true", help="only the six layer shapes")
    s.add_argument("--no-shapes", action="store_true", help="only the networks")
    s.add_argument("--network", action="append", metavar="NAME",
                   help="this network only: ds_cnn, mobilenet_v1, resnet8 or fc_autoencoder (repeatable; "
                        "default: all four)")
    s.set_defaults(func=cmd_bench_kernels)
    s = bench_sub.add_parser("memory", help="peak activation SRAM: our plans next to TFLM's arena, measured now")
    s.add_argument("models", nargs="*", help=".tflite files (default: the zoo networks, built with TensorFlow on "
                                            "first use and cached)")
    s.add_argument("--board", "-b", help="QEMU board: our default build for it, with exact instructions next to "
                                        "the fast build's")
    s.add_argument("--max-extra", type=float, default=0.15,
                   help="patch plans may add at most this fraction of MACs (default 0.15)")
    s.add_argument("--smallest", action="store_true",
                   help="with --board: also the smallest arena --sram reaches with its kernels and with the portable "
                        "kernels only, and the exact instructions per MAC at those budgets against the fast build's")
    s.add_argument("--stream-input", action="store_true", help="with --board: our builds stream the input row by "
                   "row (compile --stream-input); the fast build holds it whole")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_bench_memory)

    s = sub.add_parser("plan", help="memory plan: per-layer live memory, peak, in-place ops, patch stages, "
                                    "and the memory/cost frontier")
    s.add_argument("model", help=".tflite file (int8)")
    s.add_argument("--board", "-b", help="plan with this board's kernels (default: the portable ones)")
    s.add_argument("--sram", type=_bytes, help="arena budget in bytes (e.g. 65536 or 64k): the plan that fits "
                                                "it with the lowest estimated cost")
    s.add_argument("--stream-input", action="store_true", help="plan the model with its input streamed row by row "
                   "(as compile --stream-input)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--plot", type=_plot_file, help="where to write the live-memory plot (default MODEL-memory.png)")
    s.add_argument("--no-plot", action="store_true", help="do not write the plot")
    s.add_argument("--force", action="store_true", help="replace the plot files even if tinyml did not write them")
    s.set_defaults(func=cmd_plan)

    s = sub.add_parser("compile", help="generate a self-contained firmware project (or a library: --format)")
    s.add_argument("model", help=".tflite file (int8)")
    s.add_argument("--board", "-b", required=True, help="board name (see 'tinyml boards') or a board .toml file")
    s.add_argument("-o", "--output", required=True, help="directory to create (the project or library)")
    s.add_argument("--name", type=_c_name, help="C name of the model, a lowercase C identifier (default: from the "
                                                 "file name)")
    s.add_argument("--force", action="store_true", help="replace OUTPUT even if it is the current directory, one of "
                                                         "its parents, or a non-empty directory that is not a "
                                                         "tinyml project")
    s.add_argument("--kws", action="store_true", help="keyword-spotting firmware: MFCC front end and streaming "
                                                      "main (audio in, detections out) instead of tensors in/out")
    s.add_argument("--sram", type=_bytes, help="arena budget in bytes: generate code from the plan that fits it "
                                                "(see 'tinyml plan')")
    s.add_argument("--stream-input", action="store_true", help="the model pulls its input row by row from a "
                   "callback (NAME_invoke_rows, see model.h) and never holds it whole")
    s.add_argument("--format", choices=("project", "library", "cmake", "static-lib"), default="project",
                   help="project: a firmware project (Makefile, start-up code; ELF, .bin, .hex; default); "
                        "library: the model's sources and headers with a README of the compiler flags; "
                        "cmake: the library as a CMake target (add_subdirectory) with an example build; "
                        "static-lib: libNAME.a built for the board's core, and the headers")
    s.add_argument("--arena", choices=("static", "caller"), default="static",
                   help="static: the arena is a static array in model.c (default); caller: NAME_init(arena, "
                        "bytes) takes a buffer the firmware owns (NAME_ARENA_BYTES, aligned to NAME_ARENA_ALIGN)")
    s.add_argument("--weights-section", metavar="SECTION", help="linker section of the weights (e.g. .ext_flash)")
    s.add_argument("--arena-section", metavar="SECTION", help="linker section of the static arena (e.g. .dtcm_bss)")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run", help="build a compiled project and run it on inputs from a .npy file")
    s.add_argument("project", help="directory made by 'tinyml compile'")
    s.add_argument("--input", "-i", help=".npy with the input (or N inputs), .npz for several")
    s.add_argument("--output", "-o", help="write the outputs to this .npy file (.npz for several outputs)")
    s.add_argument("--force", action="store_true", help="replace the --output file if it exists")
    s.add_argument("--renode", action="store_true",
                   help="instead: run the project's Renode test (renode/BOARD.robot; needs Renode)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("verify", help="compare the generated firmware with TFLM on random inputs (bit-exact; float32 outputs "
                                     "within 1e-5 relative)")
    s.add_argument("model", help=".tflite file (int8)")
    s.add_argument("--board", "-b", default="host", help="board to run on (default: host)")
    s.add_argument("--samples", "-n", type=_samples, default=10, help="number of random inputs (default 10)")
    s.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    s.add_argument("--sram", type=_bytes, help="arena budget in bytes: verify the plan that fits it")
    s.add_argument("--stream-input", action="store_true", help="verify the model with its input streamed row by "
                   "row (as compile --stream-input)")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("demo", help="kws: synthesize speech, train a keyword spotter, stream it through an "
                                    "emulated Cortex-M4; dscnn: a random DS-CNN checked against TFLM")
    s.add_argument("which", nargs="?", choices=("kws", "dscnn"), default="kws", help="which demo (default kws)")
    s.add_argument("--board", "-b", default="mps2-an386", help="QEMU board (default mps2-an386)")
    s.add_argument("--samples", "-n", type=_samples, default=5, help="dscnn: inputs to run (default 5)")
    s.add_argument("-o", "--output", help="dscnn: project directory (default: in ~/.cache/tinyml/demo)")
    s.add_argument("--force", action="store_true", help="dscnn: replace OUTPUT even if it is not a tinyml project "
                                                         "(see 'tinyml compile --help')")
    s.add_argument("--retrain", action="store_true", help="kws: train again instead of using the cached model")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("train", help="train, quantize and evaluate a model (see 'tinyml train kws --help')")
    train_sub = s.add_subparsers(dest="train_task", metavar="TASK", parser_class=_Parser)
    train_sub.required = True
    s = train_sub.add_parser("kws", help="keyword spotting (12 classes): float, int8 (TFLM) and on-device accuracy")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="DIR", help="dataset in the Speech Commands layout")
    src.add_argument("--synthetic", action="store_true",
                     help="offline synthetic speech (espeak-ng, flite, festival, piper)")
    s.add_argument("--model", "-m", default="ds_cnn_s",
                   help="ds_cnn_s (default), ds_cnn_m, ds_cnn_l, mobilenet_v1, mobilenet_v2, resnet8")
    s.add_argument("--epochs", type=int, help="maximum epochs (default 30; early stopping)")
    s.add_argument("--seed", type=_seed, default=0,
                   help="seed of the weights, augmentation and calibration (default 0); the held-out clips stay "
                        "the same, so seeds compare")
    s.add_argument("--board", "-b", default="mps2-an386",
                   help="board for the on-device accuracy (default mps2-an386; '' to skip)")
    s.add_argument("-o", "--output", help="output directory (default: in ~/.cache/tinyml/kws)")
    s.add_argument("--per-tensor", action="store_true", help="per-tensor weights everywhere (default per-channel)")
    s.add_argument("--dense-per-tensor", action="store_true", help="per-tensor weights for the dense layers only")
    s.add_argument("--qat", type=_epochs, default=0, metavar="EPOCHS",
                   help="then fine-tune with quantization-aware training for EPOCHS epochs (needs tf-keras and "
                        "tensorflow-model-optimization); model.tflite is the QAT model, model_ptq.tflite the "
                        "post-training one (default 0: off)")
    s.add_argument("--force", action="store_true", help="train again even if a cached result exists")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("kws", help="keyword spotting on a device (see 'tinyml kws stream --help')")
    kws_sub = s.add_subparsers(dest="kws_task", metavar="TASK", parser_class=_Parser)
    kws_sub.required = True
    s = kws_sub.add_parser("stream", help="stream a WAV file to KWS firmware over the serial host link and "
                                          "print its detections")
    s.add_argument("audio", help="16 kHz mono 16-bit WAV file (or raw int16 .raw)")
    dev = s.add_mutually_exclusive_group(required=True)
    dev.add_argument("--port", "-p", help="serial port of a board running KWS host-link firmware "
                                          "(/dev/ttyACM0, socket://HOST:PORT)")
    dev.add_argument("--project", metavar="DIR", help="a 'tinyml compile --kws' project: run it under QEMU "
                                                      "with its UART on a local socket")
    s.add_argument("--hop-ms", type=float, default=250.0, help="window hop in ms (default 250, at most 250)")
    s.add_argument("--smoothing", type=int, default=3, help="windows averaged (default 3)")
    s.add_argument("--threshold", type=float, default=0.6, help="detection confidence 0..1 (default 0.6)")
    s.add_argument("--baud", type=_baud, default=115200, help="baud rate (default 115200)")
    s.set_defaults(func=cmd_kws_stream)

    s = sub.add_parser("validate", help="run random inputs on an attached board (host-link firmware) and compare with TFLM")
    s.add_argument("model", help=".tflite file the board's firmware was compiled from")
    s.add_argument("--port", "-p", required=True, help="serial port (/dev/ttyACM0, COM3) or socket://HOST:PORT")
    s.add_argument("--samples", "-n", type=_samples, default=10, help="number of random inputs (default 10)")
    s.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    s.add_argument("--baud", type=_baud, default=115200, help="baud rate (default 115200)")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("flash", help="write a compiled project to a board (pyOCD, OpenOCD or any GDB stub)")
    s.add_argument("project", help="directory made by 'tinyml compile'")
    s.add_argument("--board", "-b", help="board the project is for (checked against the project)")
    s.add_argument("--gdb", metavar="HOST:PORT", help="load, verify and reset through this GDB remote stub")
    s.add_argument("--probe", choices=("pyocd", "openocd"), help="flash tool (default: from the board file)")
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("boards", help="list the boards")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_boards)
    return p


def _add_debug(parser: argparse.ArgumentParser, top: bool) -> None:
    """--debug on every (sub)command, before or after its name."""
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show the Python traceback of an internal error")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _add_debug(child, False)


def _os_error(e: OSError) -> str:
    where = e.filename if e.filename is not None else "a file"
    return f"{where}: {e.strerror or e}; check the path, its permissions and the free space"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _add_debug(parser, True)
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.func(args))
    except TinymlError as e:
        print(f"tinyml: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tinyml: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (OSError, MemoryError) as e:  # the environment: a path, permissions, a full disk, too little memory
        if debug:
            raise
        what = _os_error(e) if isinstance(e, OSError) else "out of memory; try a smaller input"
        print(f"tinyml: error: {' '.join(what.split())}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - anything else is our bug
        if debug:
            raise
        what = " ".join(f"{type(e).__name__}: {e}".split())
        if len(what) > 300:
            what = what[:297] + "..."
        print(f"tinyml: internal error (a bug in tinyml): {what}; rerun with --debug for the traceback",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
