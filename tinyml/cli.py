"""The `tinyml` command: argument parsing only; each command calls one library function."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Sequence

from tinyml.errors import TinymlError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_inspect(a: argparse.Namespace) -> int:
    from tinyml.inspect import format_inspection, inspect_model

    info = inspect_model(a.model)
    print(json.dumps(info, indent=2) if a.json else format_inspection(info))
    return 0


def cmd_compile(a: argparse.Namespace) -> int:
    from tinyml.compiler import compile_model

    start = time.monotonic()
    c = compile_model(a.model, a.board, a.output, name=a.name)
    print(f"compiled {c.graph.name} for {c.board.name} into {a.output}: {len(c.graph.ops)} operators, "
          f"{c.macs:,} MACs, weights {c.weight_bytes:,} bytes, arena {c.plan.arena_bytes:,} bytes "
          f"({time.monotonic() - start:.1f}s); build with 'make -C {a.output}'")
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    import numpy as np

    from tinyml.execute import project_info, run_files

    info = project_info(a.project)
    res = run_files(a.project, a.input, a.output)
    print(f"ran {res.samples} sample(s) on {res.board} in {res.seconds:.2f}s")
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
    from tinyml.verify import verify_model

    report = verify_model(a.model, a.board, samples=a.samples, seed=a.seed, progress=_say)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_boards(a: argparse.Namespace) -> int:
    from tinyml.boards import list_boards

    boards = list_boards()
    if a.json:
        print(json.dumps([dict(name=b.name, kind=b.kind, cpu=b.cpu, features=list(b.features),
                               ram_bytes=b.ram_bytes, flash_bytes=b.flash_bytes, description=b.description)
                          for b in boards], indent=2))
        return 0
    print(f"{'board':<16} {'kind':<8} {'core':<12} {'SRAM':>10} {'flash':>10}  features")
    for b in boards:
        print(f"{b.name:<16} {b.kind:<8} {b.cpu:<12} {b.ram_bytes // 1024:>8}KB {b.flash_bytes // 1024:>8}KB  "
              f"{','.join(b.features) or '-'}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from tinyml.demo import run_demo

    return 0 if run_demo(board=a.board, samples=a.samples, out_dir=a.output) else 1


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinyml", description="Compile int8 TensorFlow Lite models into bit-exact C for Cortex-M.")
    from tinyml import __version__

    p.add_argument("--version", action="version", version=f"tinyml {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("inspect", help="operators, shapes, quantization, MACs, weight and activation bytes")
    s.add_argument("model", help=".tflite file")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("compile", help="generate a self-contained firmware project")
    s.add_argument("model", help=".tflite file (int8)")
    s.add_argument("--board", "-b", required=True, help="board name (see 'tinyml boards') or a board .toml file")
    s.add_argument("-o", "--output", required=True, help="project directory to create")
    s.add_argument("--name", help="C name of the model (default: from the file name)")
    s.set_defaults(func=cmd_compile)

    s = sub.add_parser("run", help="build a compiled project and run it on inputs from a .npy file")
    s.add_argument("project", help="directory made by 'tinyml compile'")
    s.add_argument("--input", "-i", required=True, help=".npy with the input (or N inputs), .npz for several")
    s.add_argument("--output", "-o", help="write the outputs to this .npy file")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("verify", help="compare the generated firmware with TFLM on random inputs")
    s.add_argument("model", help=".tflite file (int8)")
    s.add_argument("--board", "-b", default="host", help="board to run on (default: host)")
    s.add_argument("--samples", "-n", type=int, default=10, help="number of random inputs (default 10)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("demo", help="compile a DS-CNN, run it on an emulated Cortex-M4 and check it against TFLM")
    s.add_argument("--board", "-b", default="mps2-an386", help="QEMU board (default mps2-an386)")
    s.add_argument("--samples", "-n", type=int, default=5, help="inputs to run (default 5)")
    s.add_argument("-o", "--output", help="project directory (default: in ~/.cache/tinyml/demo)")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("boards", help="list the boards")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_boards)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
