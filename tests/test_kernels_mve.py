"""The MVE (Helium) kernel family on the Cortex-M55 (mps3-an547): choice, fallbacks,
bit-exactness against TFLM under QEMU over the conv / depthwise / FC sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case, op_cases, zoo_cases
from tests.tflite_edit import edit_model
from tinyml.boards import load_board
from tinyml.codegen.families import family
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.variants import fastest
from tinyml.compiler import build_model
from tinyml.graph import load_tflite

BOARD = "mps3-an547"
SWEEP = op_cases("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# Depthwise with more than 17 channels (copied into the channel planes by
# scatters, not gathers), an odd count so that the last scatter is predicated.
WIDE_DEPTHWISE = [
    case("depthwise", "DEPTHWISE_CONV_2D", (9, 7, 19), kernel=(3, 3), strides=(1, 1), padding="same", mult=1,
         act="relu", bias=True),
    case("depthwise", "DEPTHWISE_CONV_2D", (11, 10, 24), kernel=(3, 3), strides=(2, 2), padding="same", mult=1,
         act="none", bias=True, per_channel=False),
]
# The im2col path's passes (conv_s8_mve.c.j2): 9 chunks of 16 taps in straight-line code (rows of 48
# bytes copied whole, 6 output channels: a padded group, an odd last pixel), 18 (a loop of 4 x 4 chunks)
# and 23 (the loop and one more; rows of 120 bytes, the last 8 of each predicated).
IM2COL = [
    case("conv2d", "CONV_2D", (7, 9, 16), kernel=(3, 3), strides=(1, 1), padding="same", filters=6, act="relu",
         bias=True),
    case("conv2d", "CONV_2D", (6, 5, 32), kernel=(3, 3), strides=(1, 1), padding="same", filters=8, act="none",
         bias=True),
    case("conv2d", "CONV_2D", (7, 8, 40), kernel=(3, 3), strides=(2, 2), padding="valid", filters=4, act="relu6",
         bias=True),
]
# 1x1 convolutions over at most 16 channels (the narrow kernel): 3 channels with a tail of output channels,
# 8 (int16 lanes) with strides 2 and relu6, 16 over an odd pixel count.
NARROW_CONV = [
    case("conv2d", "CONV_2D", (9, 7, 3), kernel=(1, 1), strides=(1, 1), padding="valid", filters=10, act="none", bias=True),
    case("conv2d", "CONV_2D", (11, 9, 8), kernel=(1, 1), strides=(2, 2), padding="valid", filters=16, act="relu6", bias=True),
    case("conv2d", "CONV_2D", (7, 5, 16), kernel=(1, 1), strides=(1, 1), padding="same", filters=12, act="relu", bias=False,
         per_channel=False),
]
# (case id, factor): the output scale divided by the factor makes the
# requantization shifts >= 0 for some or all channels (left shifts, right
# shift 0): the kernels' "full" requantization path.
LEFT_SHIFT = [("conv2d-11x9x5-k3x3-s1x1-same-f7-bias-pc", 1024),
              ("depthwise-9x9x7-k3x3-s2x2-same-relu6-bias-m1-pc", 64),
              ("depthwise-9x9x7-k3x3-s2x2-same-relu6-bias-m1-pc", 256),
              ("dense-17-relu6-bias-u5-pc", 256),
              ("dense-32-bias-u10-pt", 1024)]


def _write(tmp_path: Path, model: bytes) -> str:
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    return str(path)


def _main_calls(path: str, board: str = BOARD) -> list[KernelCall]:
    kinds = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
    return [c for c in build_model(path, board).calls if isinstance(c, KernelCall) and c.op_kind in kinds]


def _scaled_output(model: bytes, factor: float) -> bytes:
    def edit(m, s) -> None:
        sg = m.subgraphs[0]
        q = sg.tensors[sg.outputs[0]].quantization
        q.scale = [float(v) / factor for v in q.scale]

    return edit_model(model, edit)


def _by_id(case_id: str):
    return next(c for c in SWEEP if c.id == case_id)


def test_m55_uses_the_mve_family() -> None:
    assert family(load_board(BOARD).features) == "mve"
    assert family(("dsp", "fpu")) == "dsp"


def test_ds_cnn_uses_mve_kernels_shared_per_specialization(tmp_path) -> None:
    path = _write(tmp_path, build(zoo_cases("ds_cnn")[0]))
    calls = _main_calls(path)
    assert {c.kernel for c in calls if c.op_kind == "CONV_2D"} == {"conv_s8_mve"}
    assert {c.kernel for c in calls if c.op_kind == "DEPTHWISE_CONV_2D"} == {"dwconv_s8_mve"}
    assert {c.kernel for c in calls if c.op_kind == "FULLY_CONNECTED"} == {"fc_s8_mve"}
    # 5 convolutions (one 10x4 with im2col, four 1x1 read in place) -> 2 functions; 4 depthwise -> 1
    assert len({c.function for c in calls if c.kernel == "conv_s8_mve"}) == 2
    assert len({c.function for c in calls if c.kernel == "dwconv_s8_mve"}) == 1
    assert sorted(c.spec["direct"] for c in calls if c.kernel == "conv_s8_mve") == [False] + [True] * 4
    files = build_model(path, BOARD).files
    assert "arm_mve.h" in files["model.c"] and "vmladavq_s8" in files["model.c"]
    # the Cortex-M4 keeps the DSP kernels
    assert {c.kernel for c in _main_calls(path, "mps2-an386")} == {"conv_s8_dsp", "dwconv_s8_dsp", "fc_s8_dsp"}


@pytest.mark.parametrize("case", [c for c in SWEEP if c.p("dilation") or c.p("mult", 1) > 1][:4],
                         ids=lambda c: c.id)
def test_unhandled_shapes_are_not_mve(case, tmp_path) -> None:
    calls = _main_calls(_write(tmp_path, build(case)))
    assert calls and not any(c.kernel.endswith("_mve") for c in calls)


def test_depthwise_beyond_one_gather_runs_in_strips(tmp_path) -> None:
    case_ = next(c for c in SWEEP if c.op == "DEPTHWISE_CONV_2D" and c.p("mult") == 1 and not c.p("dilation"))
    graph = load_tflite(_write(tmp_path, build(case_)))
    portable = lower_op(LowerContext(graph=graph), graph.ops[0])
    ctx = LowerContext(graph=graph, features=("dsp", "mve"), stack_bytes=0x8000)
    assert fastest(ctx, portable).template == "dwconv_s8_mve"
    # taps of one output more than 255 bytes apart in a channel plane: no byte gather for the whole layer; it
    # runs the MVE kernel's window form in column strips narrow enough for one (codegen/declare.py)
    wide = _with(portable, out_w=130, in_w=130)
    v = fastest(ctx, wide)
    assert v.template == "dwconv_s8_mve" and not v.fits_whole(ctx, wide)
    assert 0 < v.strip_columns(ctx, wide) < 130
    # the whole layer's channel planes would not fit a small stack: narrower strips of the MVE kernel do
    small = LowerContext(graph=graph, features=("dsp", "mve"), stack_bytes=3 * 128)
    v = fastest(small, portable)
    assert v.template == "dwconv_s8_mve" and not v.fits_whole(small, portable)
    assert 0 < v.strip_columns(small, portable) < portable.params["out_w"]


def _with(call: KernelCall, **params) -> KernelCall:
    from dataclasses import replace

    return replace(call, params=dict(call.params, **params))


def test_left_shift_cases_take_the_full_requantization(tmp_path) -> None:
    for case_id, factor in LEFT_SHIFT:
        calls = _main_calls(_write(tmp_path, _scaled_output(build(_by_id(case_id)), factor)))
        assert [c.spec["rq"] for c in calls] == ["full"], case_id
    assert {c.spec["rq"] for c in _main_calls(_write(tmp_path, build(_by_id(LEFT_SHIFT[0][0]))))} == {"right"}


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case", SWEEP + WIDE_DEPTHWISE + IM2COL + NARROW_CONV, ids=lambda c: c.id)
def test_mve_bitexact_m55(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board=BOARD, samples=2)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case_id, factor", LEFT_SHIFT, ids=[f"{c}-x{f}" for c, f in LEFT_SHIFT])
def test_mve_bitexact_m55_left_shifts(case_id, factor, tmp_path) -> None:
    assert_bitexact(_scaled_output(build(_by_id(case_id)), factor), tmp_path, board=BOARD, samples=2)


@pytest.mark.qemu
@pytest.mark.slow
def test_six_shapes_meet_the_cmsis_nn_total_on_m55() -> None:
    from tinyml.tools.bench import CMSIS_M55_TOTAL, bench_kernels

    result = bench_kernels(BOARD, networks=())
    text = result.format()
    assert result.family == "mve", text
    assert all("_mve" in r.kernel for r in result.shapes), text
    assert all(r.fast < r.portable for r in result.shapes), text
    total = result.to_json()["shapes_total"]
    assert total["instructions"] / total["macs"] <= CMSIS_M55_TOTAL, text
    assert total["meets_target"] and "target: CMSIS-NN on the M55, 1.59: ok" in text
