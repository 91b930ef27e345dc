"""TRANSPOSEs folded into the DSP and MVE int8 convolutions (codegen/fold.py; conv_s8_dsp.c.j2 and
conv_s8_mve.c.j2; issue 17): the im2col gathers a strided input, a pixel pair's outputs are stored
through strides, no copy.

One model of seven independent branches (tests/modelgen.py: nchw_branch_cases; in_c 1, 3, 8 and 32,
strides 1 and 2, SAME and VALID, 1x1 and 3x3, odd channel counts, the input and the output folded alone
and together), every TRANSPOSE folded into a CONV_2D that runs the board's fast kernel: bit-exact with
TFLM under QEMU on mps2-an386 (DSP) and mps3-an547 (MVE); and the folded forms' declared costs and stack.
The kernels use inline assembly and intrinsics of their cores: they do not compile for the host, where the
same model runs the portable kernel (tests/test_fold.py covers it there).  MobileNetV2 behind an NCHW
input, folded in a patch stage on both boards: tests/test_fold.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.modelgen import build, nchw_branch_cases
from tinyml.boards import load_board
from tinyml.codegen.fold import fold_transposes, folded
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.specialize import variant_options
from tinyml.compiler import Compiled, build_model, lower_graph
from tinyml.graph import Graph, parse_tflite
from tinyml.tools.verify import random_inputs, verify_compiled

(BRANCHES,) = nchw_branch_cases()
KERNEL = {"mps2-an386": "conv_s8_dsp", "mps3-an547": "conv_s8_mve"}


def _graph() -> Graph:
    return parse_tflite(build(BRANCHES), source="m.tflite", name="m")


def _folded_build(board: str) -> Compiled:
    """The branches compiled for ``board`` with every TRANSPOSE folded (no copy kernel), each CONV_2D on the
    board's fast kernel, reading and writing through the strides the fold gave it."""
    c = build_model(_graph(), board, fold=True)
    aliases = folded(c.calls)
    assert len(aliases) == sum(op.kind == "TRANSPOSE" for op in c.graph.ops) == 12
    convs = [k for k in c.calls if isinstance(k, KernelCall) and k.op_kind == "CONV_2D"]
    assert len(convs) == 7 and all(k.kernel == KERNEL[board] for k in convs)
    assert not any(isinstance(k, KernelCall) and k.kernel == "copy_nd_s8" for k in c.calls)
    assert sum(bool(k.spec.get("in_strides")) for k in convs) == 6
    assert sum(bool(k.spec.get("out_strides")) for k in convs) == 6
    assert c.fold_note.startswith("folded TRANSPOSE op")
    return c


@pytest.mark.qemu
@pytest.mark.parametrize("board", list(KERNEL))
def test_fold_into_fast_conv_qemu(board: str, tmp_path: Path) -> None:
    c = _folded_build(board)
    report = verify_compiled(c, build(BRANCHES), random_inputs(c.graph, 2, 0), work_dir=tmp_path / "proj")
    assert report.ok, report.summary()


@pytest.mark.parametrize("board", list(KERNEL))
def test_folded_forms_declare_their_cost(board: str) -> None:
    """Folded, each CONV_2D's fast variant costs more than unfolded (its gather through strides, its
    strided stores) and holds the pair's outputs on the stack when its output is folded; the MVE kernel's
    1x1 shapes take the im2col path, whose buffer it then declares."""
    graph, brd = _graph(), load_board(board)
    ctx = LowerContext(graph=graph, features=brd.features, stack_bytes=brd.stack_bytes or 0)
    unfolded = lower_graph(graph)
    calls = fold_transposes(ctx, unfolded)
    on, off = variant_options(ctx, calls), variant_options(ctx, unfolded)
    for call in calls:
        if not (isinstance(call, KernelCall) and call.op_kind == "CONV_2D"):
            continue
        fast_on, fast_off = on[call.op_index][0], off[call.op_index][0]
        assert fast_on.variant == fast_off.variant == KERNEL[board]
        assert fast_on.cost > fast_off.cost and not fast_on.inplace_inputs
        pair = 2 * ((call.params["out_c"] + 3) // 4 * 4) if call.output_strides else 0
        p = call.params
        direct = board == "mps3-an547" and p["k_h"] == p["k_w"] == 1 and p["pad_h"] == p["pad_w"] == 0
        taps = 2 * ((p["k_h"] * p["k_w"] * p["in_c"] + 15) // 16 * 16) if direct else 0
        assert fast_on.stack_bytes == fast_off.stack_bytes + pair + taps
