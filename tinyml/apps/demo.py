"""`tinyml demo`: compile a small model, run it on an emulated Cortex-M4, check it against TFLM.

Until the keyword-spotting demo lands, this builds the MLPerf Tiny DS-CNN
keyword-spotting network with random weights (quantized to int8 with
TensorFlow, cached), compiles it for mps2-an386 (Cortex-M4F under QEMU),
streams random inputs through the firmware and compares every output byte
with TensorFlow Lite Micro.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import numpy as np

from tinyml.boards import load_board
from tinyml.compiler import compile_model
from tinyml.limits import check_samples
from tinyml.resources import cache_build, cache_root
from tinyml.targets.run import run_project
from tinyml.tools.reference import run_tflm_batch
from tinyml.tools.verify import pack_samples, random_inputs, unpack_outputs
from tinyml.train.quantize import quantize_int8
from tinyml.train.zoo import ds_cnn


def demo_model(say: Callable[[str], None]) -> Path:
    """The DS-CNN (49x10x1, 64 channels) with random weights as int8 .tflite (cached)."""
    path = cache_root() / "demo" / "ds_cnn_random.tflite"
    if path.is_file():
        say(f"using cached model {path}")
        return path
    say("building DS-CNN (49x10x1, 64 channels) with random weights and quantizing it to int8 ...")
    rng = np.random.default_rng(0)
    model = ds_cnn()
    rep = (rng.standard_normal((64, 49, 10, 1)) * 20.0).astype(np.float32)
    data = quantize_int8(model, rep)
    cache_build(path, lambda tmp: tmp.write_bytes(data))
    say(f"cached {path} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]})")
    return path


def run_demo(board: str = "mps2-an386", samples: int = 5, out_dir: str | None = None,
             say: Callable[[str], None] = print, force: bool = False) -> bool:
    check_samples(samples)
    brd = load_board(board)  # before the work; its name (not a board file's path) names the cached project
    model = demo_model(say)
    project = Path(out_dir) if out_dir else cache_root() / "demo" / f"ds_cnn_{brd.name}"
    start = time.monotonic()
    c = compile_model(model, board, project, name="kws", force=force)
    say(f"compiled {c.graph.name} for {c.board.name} ({c.board.cpu}) in {time.monotonic() - start:.1f}s -> "
        f"{project}: {len(c.graph.ops)} operators, {c.macs:,} MACs, compiled weights {c.weight_bytes:,} bytes, "
        f"arena {c.plan.arena_bytes:,} bytes")
    xs = random_inputs(c.graph, samples, seed=1)
    say(f"running {samples} inputs on QEMU {c.board.name} ...")
    result = run_project(project, pack_samples(c.graph, xs))
    ours = unpack_outputs(c.graph, result.output, samples)
    ref = run_tflm_batch(model.read_bytes(), xs)
    exact = 0
    scale = c.graph.tensors[c.graph.outputs[0]].quant
    for i, (a, b) in enumerate(zip(ours, ref)):
        same = a[0].tobytes() == np.asarray(b[0]).tobytes()
        exact += same
        top = int(np.argmax(a[0].reshape(-1)))
        prob = (int(a[0].reshape(-1)[top]) - scale.zp) * scale.s if scale else float("nan")
        say(f"  input {i}: class {top:2d} (p={prob:.3f})  device == TFLM: {'yes' if same else 'NO'}")
    say(f"{exact}/{samples} bit-exact against TFLM; QEMU run took {result.seconds:.2f}s")
    for line in result.console.strip().splitlines()[-3:]:
        say(f"  firmware: {line}")
    return exact == samples
