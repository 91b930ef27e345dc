"""Wide depthwise layers keep their fast kernels: a layer whose whole-layer DSP or MVE form is refused for its
width (on-stack row buffers, the MVE byte gather's 256-byte range) runs as full-height column strips of the
variant's window form (codegen/declare.py: Variant.strip_columns; codegen/specialize.py: _strip_form).  The
DSP one also runs such a layer whole in place (through a ring or without one), its row buffers in the op's
arena scratch (Variant.stack_in_scratch; the template's spec.scratch_rows)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case
from tinyml import compiler
from tinyml.boards import load_board
from tinyml.codegen.declare import stack_limit, strip_view
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.variants import fastest, variant
from tinyml.compiler import build_model, lower_graph
from tinyml.graph import load_tflite
from tinyml.graph.ir import Graph
from tinyml.schedule.choose import Options, candidates, with_choice
from tinyml.schedule.plan import Plan


def _dw(shape, k, st, pad="same", act="none", **kw):
    return case("depthwise", "DEPTHWISE_CONV_2D", shape, kernel=k, strides=st, padding=pad, mult=1, act=act,
                bias=True, **kw)


# (case, the variant expected on mps2-an386, on mps3-an547); every one too wide for the whole-layer forms
WIDE = [
    (_dw((8, 200, 16), (3, 3), (2, 2)), "dwconv_s8_dsp", "dwconv_s8_mve"),  # SAME, stride 2, odd strip widths
    (_dw((4, 400, 6), (3, 3), (1, 1), act="relu6"), "dwconv_s8_dsp", "dwconv_s8_mve"),  # channels not 4k
    (_dw((5, 150, 20), (3, 3), (1, 1), pad="valid"), "dwconv_s8_dsp", "dwconv_s8_mve"),
    (_dw((3, 300, 8), (3, 3), (1, 3), act="relu"), "dwconv_s8_dsp", "dwconv_s8_mve"),  # stride 3
    (_dw((6, 120, 24), (5, 5), (1, 1)), "dwconv_s8_dsp", "dwconv_s8_dsp"),  # 25 taps: the DSP one on the M55
]
BOARDS = ("mps2-an386", "mps3-an547")


def _fastest_only(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
    """A replacement of the planner's ``candidates`` offering only the fastest plan (nothing in place)."""
    return candidates(graph, options, sram=sram, stream=stream)[:1]


def _write(tmp_path, c) -> str:
    path = tmp_path / "model.tflite"
    path.write_bytes(build(c))
    return str(path)


def _depthwise(calls) -> KernelCall:
    (k,) = [k for k in calls if isinstance(k, KernelCall) and k.op_kind == "DEPTHWISE_CONV_2D"]
    return k


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("c, dsp, mve", WIDE, ids=lambda v: getattr(v, "id", None))
def test_wide_depthwise_runs_its_fast_kernel_in_strips(c, dsp, mve, board, tmp_path, monkeypatch) -> None:
    path = _write(tmp_path, c)
    brd = load_board(board)
    ctx = LowerContext(graph=load_tflite(path), features=brd.features, stack_bytes=brd.stack_bytes or 0)
    portable = _depthwise(lower_graph(ctx.graph))
    v = fastest(ctx, portable)
    assert v.template == (dsp if board == "mps2-an386" else mve)
    assert not v.fits_whole(ctx, portable)  # refused whole: strips
    cols = v.strip_columns(ctx, portable)
    view = strip_view(portable, cols)
    assert 0 < cols < portable.params["out_w"] and v.stack(view) + v.form_stack(view) <= stack_limit(ctx)
    monkeypatch.setattr(compiler, "candidates", _fastest_only)  # (in place the DSP kernel runs it whole)
    call = _depthwise(build_model(path, board).calls)
    assert call.kernel == v.template and call.spec["window"] and not call.spec["ring"]
    assert call.patch_loop == "only" and len(call.patch_params) >= 2
    p = portable.params
    # the strips tile the output's columns, full height, from the whole input into the whole output
    xs = [(w["ox0"], w["out_w"]) for w in call.patch_params]
    assert xs[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(xs, xs[1:])) and sum(n for _, n in xs) == p["out_w"]
    assert all(n <= cols for _, n in xs)
    for w in call.patch_params:
        assert (w["in_w"], w["img_w"], w["pad_w"], w["out_pitch"], w["out_h"]) == (p["in_w"], p["in_w"], p["pad_w"],
                                                                               p["out_w"], p["out_h"])
    # its estimated cost: the whole layer's, plus per strip (outside a patch stage) per output row and channel
    f = v.facts(ctx, portable, p["out_h"] * p["out_w"] * p["in_c"])
    assert f.patchable and f.max_window_w >= cols  # patch windows as narrow
    # in place only with its buffers in scratch (the DSP kernel; MVE's byte gather has no such form)
    assert bool(f.inplace_inputs) == (v.template == "dwconv_s8_dsp") == (f.form_scratch_bytes == v.stack(portable))
    assert f.cost == round(portable.macs * (v.rates(portable)[0] if v.rates else v.per_mac))
    assert f.stack_bytes <= stack_limit(ctx)
    assert f.strip_cost == round(len(xs) * p["out_h"] * p["in_c"] * v.strip_row) > 0


def test_layers_that_fit_stay_whole(tmp_path) -> None:
    c = _dw((8, 20, 16), (3, 3), (2, 2))
    for board in BOARDS:
        call = _depthwise(build_model(_write(tmp_path, c), board).calls)
        assert variant(call.kernel).family != "portable" and not call.patch_params


@pytest.mark.qemu
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("c", [w[0] for w in WIDE], ids=lambda c: c.id)
def test_wide_depthwise_strips_bitexact(c, board, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _fastest_only)  # strips (in place the DSP kernel runs it whole)
    assert_bitexact(build(c), tmp_path, board=board, samples=2)


@pytest.mark.qemu
def test_profile_sums_the_strips_of_a_layer(tmp_path, monkeypatch) -> None:
    """A layer in column strips marks after every strip (a loop of its own): the profile sums them in the
    layer's one row, with the layer's MACs."""
    from tinyml.tools.profile import profile_model

    monkeypatch.setattr(compiler, "candidates", _fastest_only)
    path = _write(tmp_path, WIDE[0][0])
    call = _depthwise(build_model(path, "mps3-an547").calls)
    assert len(call.patch_params) >= 2
    report = profile_model(path, "mps3-an547", sizes=False)
    (row,) = [layer for layer in report.layers if layer.op == "DEPTHWISE_CONV_2D"]
    assert row.stage is None and row.macs == call.macs and 0.3 < row.per_mac < 5, row


# In place over a layer too wide for the DSP kernel's row buffers on the stack: the whole layer, the buffers
# in the op's scratch (k_h * 2 * width * channels bytes: tall enough layers, whose output outweighs them).
# Stride 1 and 2, SAME and VALID, odd widths (a lone last column; the buffers' shared tail), channels not a
# multiple of 4, 5x5 taps.
IN_PLACE = [
    _dw((12, 151, 12), (3, 3), (1, 1)),  # SAME, odd width: the buffers' shared tail
    _dw((12, 400, 6), (3, 3), (1, 1), act="relu6"),  # channels not a multiple of 4
    _dw((14, 151, 20), (3, 3), (1, 1), pad="valid"),  # odd width, VALID
    _dw((40, 181, 8), (3, 3), (2, 2)),  # stride 2
    _dw((16, 120, 24), (5, 5), (1, 1)),
]
FORMS = ("direct", "ring")


def _rings_only(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
    """A replacement of the planner's ``candidates`` that never runs a ring kernel in place without a ring
    (as tests/test_kernels_dsp_forms.py's)."""
    rings = {op: tuple(replace(f, ring_direct=False) for f in fs) for op, fs in options.items()}
    return [with_choice(graph, p, options) for p in candidates(graph, rings, sram=sram, stream=stream)]


def _in_place_build(path: str, form: str, monkeypatch) -> compiler.Compiled:
    """The build at a budget one byte below the fastest plan's arena (nothing in place there)."""
    budget = compiler.plan_graph(load_tflite(path), load_board("mps2-an386")).candidates[0].arena_bytes - 1
    if form == "ring":
        monkeypatch.setattr(compiler, "candidates", _rings_only)
    return build_model(path, "mps2-an386", sram=budget)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("c", IN_PLACE, ids=lambda c: c.id)
def test_wide_depthwise_runs_dsp_in_place_rows_in_scratch(c, form, tmp_path, monkeypatch) -> None:
    path = _write(tmp_path, c)
    built = _in_place_build(path, form, monkeypatch)
    plan, call = built.plan, _depthwise(built.calls)
    op = call.op_index
    ip = plan.inplace[op]
    assert (ip.ring > 0, ip.direct) == ((True, False) if form == "ring" else (False, True))
    v = variant(call.kernel)
    assert call.kernel == plan.choice[op].variant == "dwconv_s8_dsp" and not call.patch_params  # whole layer
    assert call.spec["scratch_rows"] and call.spec["ring"] == (form == "ring") and not call.spec["window"]
    assert call.args[4].kind == "scratch"
    rows = v.stack(call)
    assert rows > stack_limit(LowerContext(graph=built.graph, stack_bytes=load_board("mps2-an386").stack_bytes or 0))
    # the buffers in the op's scratch (before the ring), counted in the arena; next to nothing on the stack
    assert plan.choice[op].form_scratch_bytes == rows and rows % 4 == 0
    assert plan.buffers[plan.scratch[op]].size == rows + ip.ring * ip.unit_bytes
    assert plan.scratch_offset(op) % 4 == 0 and plan.stack_bytes == 0
    assert plan.arena_bytes >= plan.buffers[plan.scratch[op]].offset + rows
    # its estimated cost: the kernel's usual one (no strips)
    f = plan.choice[op]
    assert plan.op_cost(op) == f.cost + (f.ring_cost if form == "ring" else f.direct_cost)


@pytest.mark.qemu
@pytest.mark.parametrize("form, c", [pytest.param(f, c, id=f"{c.id}-{f}",
                                                  marks=() if (i, f) == (0, "direct") else pytest.mark.slow)
                                     for i, c in enumerate(IN_PLACE) for f in FORMS])
def test_wide_depthwise_in_place_bitexact(c, form, tmp_path, monkeypatch) -> None:
    path = _write(tmp_path, c)
    budget = compiler.plan_graph(load_tflite(path), load_board("mps2-an386")).candidates[0].arena_bytes - 1
    call = _depthwise(_in_place_build(path, form, monkeypatch).calls)
    assert call.spec["scratch_rows"]
    assert_bitexact(path, tmp_path, board="mps2-an386", samples=2, sram=budget)
