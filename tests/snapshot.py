"""Snapshot of the generated projects: every test model and zoo network, for every board.

``python -m tests.snapshot OUT.json`` compiles every op case and every zoo
network of ``tests/modelgen.py`` for every board in ``boards/`` (host, the
QEMU boards and the real boards), without a budget and with arena budgets
(``--sram``: 10^9 bytes, which lets the planner use any kernel's in-place
and patch forms, and 75% and 50% of the layer-by-layer arena), and writes
the SHA-256 of every generated file (or the one-line error) per compile.

``python -m tests.snapshot --compare BEFORE.json AFTER.json`` lists every
compile whose files differ.  A refactoring of the pipeline that must not
change the generated C is checked by a snapshot before and one after.
``--show KEY DIR`` writes the project of one compile (a key of the JSON) to
DIR, to diff two trees by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from tests.modelgen import Case, all_cases, build_many, cache_path

OP_BUDGETS: tuple[float | None, ...] = (None, 1e9)
ZOO_BUDGETS: tuple[float | None, ...] = (None, 1e9, 0.75, 0.5)


def _boards() -> list[str]:
    from tinyml.boards import list_boards

    return [b.name for b in list_boards()]


def _budget(fraction: float | None, base: int) -> int | None:
    if fraction is None:
        return None
    return int(fraction) if fraction > 1 else int(base * fraction)


def _compile(model: Path, board: str, sram: int | None) -> tuple[dict[str, str] | None, str, int]:
    from tinyml.compiler import build_model
    from tinyml.errors import TinymlError

    try:
        c = build_model(model, board, sram=sram)
    except TinymlError as e:
        return None, f"{type(e).__name__}: {e}", 0
    return c.files, "", c.plan.arena_bytes


def _fixed_path(model: str) -> Path:
    """The model at a path that does not depend on the checkout (the path is written into the C)."""
    fixed = Path(tempfile.gettempdir()) / "tinyml-snapshot" / Path(model).name
    if not fixed.is_file():
        fixed.parent.mkdir(parents=True, exist_ok=True)
        tmp = fixed.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(Path(model).read_bytes())
        os.replace(tmp, fixed)
    return fixed


def _job(args: tuple[str, str, str, tuple[float | None, ...]]) -> dict[str, Any]:
    case_id, model, board, budgets = args
    model = str(_fixed_path(model))
    out: dict[str, Any] = {}
    base = 0
    for fraction in budgets:
        if fraction is not None and fraction <= 1 and not base:
            continue  # no layer-by-layer arena to take a fraction of
        sram = _budget(fraction, base)
        files, error, arena = _compile(Path(model), board, sram)
        if fraction is None:
            base = arena
        key = f"{case_id}|{board}|{'-' if fraction is None else fraction}"
        if files is None:
            out[key] = {"error": error}
        else:
            out[key] = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sorted(files.items())}
            out[key]["sram"] = str(sram)
    return out


def _cases() -> list[tuple[Case, tuple[float | None, ...]]]:
    from tests.modelgen import zoo_cases

    zoo = {c.id for c in zoo_cases()}
    return [(c, ZOO_BUDGETS if c.id in zoo else OP_BUDGETS) for c in all_cases()]


def snapshot(out: Path, jobs: int) -> int:
    cases = _cases()
    build_many([c for c, _ in cases])
    boards = _boards()
    work = [(c.id, str(cache_path(c)), b, budgets) for c, budgets in cases for b in boards]
    t0 = time.time()
    result: dict[str, Any] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, part in enumerate(pool.map(_job, work, chunksize=4)):
            result.update(part)
            if i % 100 == 0:
                print(f"{i}/{len(work)} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    errors = sum(1 for v in result.values() if "error" in v)
    print(f"{len(result)} compiles ({errors} refused) of {len(cases)} models on {len(boards)} boards "
          f"in {time.time() - t0:.0f} s -> {out}")
    return 0


def compare(before: Path, after: Path) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    diffs = 0
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        diffs += 1
        if x is None or y is None:
            print(f"{key}: only in {'after' if x is None else 'before'}")
            continue
        names = sorted(n for n in set(x) | set(y) if x.get(n) != y.get(n))
        print(f"{key}: {', '.join(names)}")
        for n in ("error", "sram"):
            if n in names:
                print(f"    before {n}: {x.get(n)}\n    after  {n}: {y.get(n)}")
    print(f"{diffs} of {len(set(a) | set(b))} compiles differ")
    return 1 if diffs else 0


def show(key: str, out: Path) -> int:
    from tinyml.compiler import build_model, write_project

    case_id, board, fraction = key.split("|")
    case = next(c for c, _ in _cases() if c.id == case_id)
    model = _fixed_path(str(cache_path(case)))
    base = 0
    if fraction != "-" and float(fraction) <= 1:
        base = build_model(model, board).plan.arena_bytes
    sram = None if fraction == "-" else _budget(float(fraction), base)
    write_project(build_model(model, board, sram=sram).files, out)
    print(f"{key} -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.snapshot", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", type=Path, help="write the snapshot here")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    ap.add_argument("--show", nargs=2, metavar=("KEY", "DIR"))
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    if a.compare:
        return compare(*a.compare)
    if a.show:
        return show(a.show[0], Path(a.show[1]))
    if a.out is None:
        ap.error("give OUT.json, --compare or --show")
    return snapshot(a.out, a.jobs)


if __name__ == "__main__":
    sys.exit(main())
