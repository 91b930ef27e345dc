"""Wide depthwise layers keep their fast kernels: a layer whose whole-layer DSP or MVE form is refused for its
width (on-stack row buffers, the MVE byte gather's 256-byte range) runs as full-height column strips of the
variant's window form (codegen/declare.py: Variant.strip_columns; codegen/specialize.py: _strip_form)."""

from __future__ import annotations

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case
from tinyml.boards import load_board
from tinyml.codegen.declare import stack_limit, strip_view
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.variants import fastest, variant
from tinyml.compiler import build_model, lower_graph
from tinyml.graph import load_tflite


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


def _write(tmp_path, c) -> str:
    path = tmp_path / "model.tflite"
    path.write_bytes(build(c))
    return str(path)


def _depthwise(calls) -> KernelCall:
    (k,) = [k for k in calls if isinstance(k, KernelCall) and k.op_kind == "DEPTHWISE_CONV_2D"]
    return k


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("c, dsp, mve", WIDE, ids=lambda v: getattr(v, "id", None))
def test_wide_depthwise_runs_its_fast_kernel_in_strips(c, dsp, mve, board, tmp_path) -> None:
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
    assert not f.inplace_inputs and f.patchable and f.max_window_w >= cols  # patch windows as narrow
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
def test_wide_depthwise_strips_bitexact(c, board, tmp_path) -> None:
    assert_bitexact(build(c), tmp_path, board=board, samples=2)
