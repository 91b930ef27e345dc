"""The forms of the MVE (Helium) variants on the Cortex-M55 (mps3-an547): CONV_2D (1x1 included),
DEPTHWISE_CONV_2D and FULLY_CONNECTED in place through a ring (spec.ring), conv / depthwise in place
without a ring (the whole-layer form, or for a 1x1 conv over more than 16 channels spec.over_input),
and conv / depthwise over the patch windows of a patch stage (spec.window).  The planner must really choose the MVE kernel in
that form, and the result must be bit-exact with TFLM under QEMU.

A model of one operator never gets a patch stage from an arena budget (running the operator in place
always needs less), so the window cases plan their operator as a patch stage of a fixed grid by
hand (:func:`_forced_stage`, the planner's own make_stage / plan_memory); the whole networks get
theirs from a budget."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.modelgen import Case, build, case, op_cases, zoo_cases
from tests.test_kernels_mve import IM2COL
from tinyml.codegen.families import (MVE_CONV_WINDOW, MVE_DW_WINDOW, mve_conv_direct_stack, mve_conv_ring_extra,
                                     mve_conv_stack, mve_dwconv_form_stack, mve_dwconv_ring_extra, mve_dwconv_stack)
from tinyml.codegen.lower import KernelCall
from tinyml.codegen.variants import variant
from tinyml import compiler
from tinyml.boards import load_board
from tinyml.compiler import build_model, plan_graph
from tinyml.graph import load_tflite
from tinyml.graph.ir import Graph
from tinyml.schedule.choose import Options, candidates, capabilities, with_choice
from tinyml.schedule.geometry import window_of
from tinyml.schedule.patch import make_stage
from tinyml.schedule.plan import Plan, plan_memory
from tinyml.tools.verify import verify_model

BOARD = "mps3-an547"
KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
MVE = {"CONV_2D": "conv_s8_mve", "DEPTHWISE_CONV_2D": "dwconv_s8_mve", "FULLY_CONNECTED": "fc_s8_mve"}


def _out_pixels(c: Case) -> int:
    """Output pixels of a conv / depthwise case (no dilation), from its parameters."""
    h, w = c.inputs[0][:2]
    (k_h, k_w), (s_h, s_w) = c.p("kernel"), c.p("strides")
    if c.p("padding") == "same":
        return -(-h // s_h) * -(-w // s_w)
    return ((h - k_h) // s_h + 1) * ((w - k_w) // s_w + 1)


# The per-channel cases the MVE variants take: they refuse dilation and depth multipliers > 1.
CASES = [c for c in op_cases(*KINDS) if c.id.endswith("-pc") and not c.p("dilation") and c.p("mult", 1) == 1]
# In place saves memory (so the planner uses it) for every case but a fully connected layer of one row
# and a convolution to one output pixel.
RING_CASES = [c for c in CASES if (len(c.inputs[0]) > 1 if c.op == "FULLY_CONNECTED" else _out_pixels(c) > 1)]
WINDOW_CASES = [c for c in CASES if c.op != "FULLY_CONNECTED" and _out_pixels(c) > 1]
# In place without a ring: the conv and depthwise cases (a third of them), and 1x1 convolutions over more
# than 16 channels (spec.over_input: as many channels out, fewer and more, a tail of 8 channels in, an
# odd last pixel, strides 2), whose outputs overwrite the input pixels they read.
OVER_CASES = [
    case("conv2d", "CONV_2D", (7, 5, 40), kernel=(1, 1), strides=(1, 1), padding="valid", filters=40, act="relu", bias=True),
    case("conv2d", "CONV_2D", (6, 6, 48), kernel=(1, 1), strides=(1, 1), padding="same", filters=20, act="none", bias=True),
    case("conv2d", "CONV_2D", (5, 5, 24), kernel=(1, 1), strides=(1, 1), padding="valid", filters=38, act="relu6", bias=False),
    case("conv2d", "CONV_2D", (9, 7, 32), kernel=(1, 1), strides=(2, 2), padding="valid", filters=16, act="none", bias=True),
]
# 1x1 convolutions over at most 16 channels (conv_s8_mve's narrow kernel): fewer than 8 channels with a
# tail of output channels and an odd pixel count (more than its in-place tile of 32 pixels), 8 channels
# with strides 2 and relu6's clamp, 12 channels (a predicated vector of 16) with relu.
NARROW_CASES = [
    case("conv2d", "CONV_2D", (9, 7, 5), kernel=(1, 1), strides=(1, 1), padding="valid", filters=10, act="none", bias=True),
    case("conv2d", "CONV_2D", (11, 9, 8), kernel=(1, 1), strides=(2, 2), padding="same", filters=12, act="relu6", bias=True),
    case("conv2d", "CONV_2D", (8, 6, 12), kernel=(1, 1), strides=(1, 1), padding="same", filters=20, act="relu", bias=False),
]
DIRECT_CASES = [c for c in CASES if c.op != "FULLY_CONNECTED" and _out_pixels(c) > 1][::3] + OVER_CASES + NARROW_CASES


def _write(tmp_path: Path, model: bytes) -> Path:
    path = tmp_path / "model.tflite"
    path.write_bytes(model)
    return path


def _main_calls(path: Path, sram: int | None = None) -> list[KernelCall]:
    return [c for c in build_model(path, BOARD, sram=sram).calls if isinstance(c, KernelCall) and c.op_kind in KINDS]


def _bitexact(path: Path, tmp_path: Path, sram: int | None = None) -> None:
    report = verify_model(path, BOARD, samples=2, work_dir=tmp_path / "proj", sram=sram)
    assert report.ok, report.summary()


def _forced_stage(ops: list[int], grid: tuple[int, int]):
    """A replacement of the planner's ``candidates`` that offers one plan: ``ops`` as one patch stage of
    ``grid``."""

    def candidates(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
        facts = capabilities(options)
        stage = make_stage(graph, ops, grid, facts)
        assert stage is not None, f"ops {ops} cannot run in {grid} patches"
        return [with_choice(graph, plan_memory(graph, facts, stages=[stage]), options)]

    return candidates


def _rings_only(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
    """A replacement of the planner's ``candidates`` that never runs a ring kernel in place directly."""
    rings = {op: tuple(replace(f, ring_direct=False) for f in fs) for op, fs in options.items()}
    return [with_choice(graph, p, options) for p in candidates(graph, rings, sram=sram)]


def _in_place(path: Path) -> int:
    """An arena budget one byte below the fastest plan's (nothing in place): the planner must run
    operators in place, and takes the fastest variant that can."""
    return plan_graph(load_tflite(path), load_board(BOARD)).candidates[0].arena_bytes - 1


def _grid(path: Path, op: int) -> tuple[int, int]:
    graph = load_tflite(path)
    win = window_of(graph, graph.ops[op])
    assert win is not None
    return min(3, win.out_h), min(3, win.out_w)


def test_the_mve_variants_declare_their_forms() -> None:
    conv, dw, fc = variant("conv_s8_mve"), variant("dwconv_s8_mve"), variant("fc_s8_mve")
    assert conv.inplace and conv.ring and conv.window
    assert dw.inplace and dw.ring and dw.window
    assert fc.inplace and fc.ring and not fc.window
    p = dict(out_w=25, in_c=64, k_h=3, k_w=3, stride_w=1, pad_h=1, pad_w=1)
    call = KernelCall(op_index=0, op_kind="DEPTHWISE_CONV_2D", kernel="dwconv_s8", spec={}, params=p, args=[])
    # a row of 25 outputs at a time: 24 pixels beyond lag + 1; the planes, the window's gather slack
    # (3 * stride_w) and the ring offsets of a row (25 rounded up to 28, 4 bytes each)
    assert mve_dwconv_ring_extra(call) == 24 and dw.ring_extra(call) == 24
    assert mve_dwconv_stack(call) == 64 * 3 * 27 and mve_dwconv_form_stack(call) == 3 + 4 * 28
    cp = dict(k_h=3, k_w=3, in_c=8, pad_h=1, pad_w=1, out_c=64)
    ccall = KernelCall(op_index=0, op_kind="CONV_2D", kernel="conv_s8", spec={}, params=cp, args=[])
    assert mve_conv_stack(ccall) == 2 * 80  # the im2col of two pixels
    assert mve_conv_ring_extra(ccall) == 1  # two pixels a step: one beyond lag + 1
    assert mve_conv_direct_stack(ccall) == 0  # in place without a ring, the im2col holds the taps
    pw = dict(cp, k_h=1, k_w=1, pad_h=0, pad_w=0, in_c=40)
    assert mve_conv_direct_stack(replace(ccall, params=pw)) == 2 * 48  # a copy of the pixel pair read
    assert mve_conv_direct_stack(replace(ccall, params=dict(pw, in_c=16))) == 32 * 16  # the narrow kernel's tile
    assert conv.ring_direct and dw.ring_direct and not fc.ring_direct
    assert conv.direct_accepts is not None and conv.direct_accepts(replace(ccall, params=dict(pw, in_c=64)))
    assert not conv.direct_accepts(replace(ccall, params=dict(pw, in_c=65)))  # through a ring instead
    assert conv.direct_accepts(replace(ccall, params=dict(cp, in_c=128)))  # im2col: any depth
    assert fc.ring_extra(ccall) == 0


def test_whole_layer_calls_keep_their_code(tmp_path, monkeypatch) -> None:
    """Without a form in use the spec has no ring / window keys (function names and code unchanged) and
    the kernel takes four arguments; a form adds the ring argument (NULL for a window), except in place
    without a ring (spec.over_input)."""
    c = next(c for c in CASES if c.id == "conv2d-6x6x3-k6x6-s1x1-valid-f4-bias-pc")
    path = _write(tmp_path, build(c))
    (call,) = _main_calls(path)  # one output pixel: nothing to gain in place
    assert call.kernel == "conv_s8_mve" and "ring" not in call.spec and "window" not in call.spec
    assert len(call.args) == 4
    c = next(c for c in CASES if c.id == "conv2d-8x8x16-k1x1-s1x1-same-f16-relu6-bias-pc")
    path = _write(tmp_path, build(c))
    # in place without a ring: a 1x1 convolution's form of its own (the narrow kernel through a tile), no ring
    (call,) = _main_calls(path, _in_place(path))
    assert call.spec == dict(_main_calls(path)[0].spec, over_input=True) and len(call.args) == 4
    monkeypatch.setattr(compiler, "candidates", _rings_only)
    (call,) = _main_calls(path, _in_place(path))
    assert call.spec["ring"] and not call.spec["window"] and call.spec["contig"]
    assert len(call.args) == 5 and call.args[4].kind == "scratch"
    assert call.params["ring_len"] == call.params["lag"] + 2


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case", RING_CASES + IM2COL[:1], ids=lambda c: c.id)
def test_mve_in_place_bitexact(case: Case, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _rings_only)
    path = _write(tmp_path, build(case))
    (call,) = _main_calls(path, _in_place(path))
    assert call.kernel == MVE[case.op] and call.spec.get("ring") and not call.spec.get("window"), call.spec
    assert call.params["ring_len"] >= call.params["lag"] + 1
    _bitexact(path, tmp_path, _in_place(path))


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case", DIRECT_CASES, ids=lambda c: c.id)
def test_mve_in_place_direct_bitexact(case: Case, tmp_path) -> None:
    """In place without a ring: the output below its input and overlapping it, no ring argument."""
    path = _write(tmp_path, build(case))
    budget = _in_place(path)
    c = build_model(path, BOARD, sram=budget)
    (call,) = [x for x in c.calls if isinstance(x, KernelCall) and x.op_kind in KINDS]
    ip = c.plan.inplace[call.op_index]
    assert ip.direct and ip.ring == 0 and call.kernel == MVE[case.op]
    assert "ring" not in call.spec and len(call.args) == 4
    out_t = c.graph.ops[call.op_index].outputs[0]
    delta = c.plan.offset(out_t) - c.plan.offset(ip.tensor)
    assert -c.graph.tensors[out_t].nbytes < delta <= c.graph.tensors[ip.tensor].nbytes - c.graph.tensors[out_t].nbytes
    over = case.op == "CONV_2D" and call.spec["direct"]  # every 1x1 convolution has a form of its own
    assert over == (case in OVER_CASES or case in NARROW_CASES or case.p("kernel") == (1, 1))
    assert call.spec.get("over_input", False) == over and c.plan.stack_bytes >= (mve_conv_direct_stack(call) if over else 0)
    _bitexact(path, tmp_path, budget)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case", WINDOW_CASES + IM2COL[1:] + NARROW_CASES, ids=lambda c: c.id)
def test_mve_patch_window_bitexact(case: Case, tmp_path, monkeypatch) -> None:
    path = _write(tmp_path, build(case))
    grid = _grid(path, 0)
    monkeypatch.setattr(compiler, "candidates", _forced_stage([0], grid))
    (call,) = _main_calls(path)
    assert call.kernel == MVE[case.op] and call.spec.get("window") and not call.spec.get("ring"), call.spec
    assert len(call.patch_params) == grid[0] * grid[1] > 1
    _bitexact(path, tmp_path)


def test_patch_stage_costs_each_op_by_its_own_recomputed_pixels(tmp_path, monkeypatch) -> None:
    """MobileNetV1-0.25's ops 2..3 in 3x4 patches: the 1x1 convolution recomputes the depthwise
    convolution's halos (2,550 of 2,304 pixels), the depthwise one nothing; each op's estimate is scaled by
    its own and by its window form's rate over the whole layer's, plus its variant's cost per patch call and,
    per column of patches, per row and channel of its output (MVE_CONV_WINDOW, MVE_DW_WINDOW)."""
    path = _write(tmp_path, build(zoo_cases("mobilenet_v1")[0]))
    monkeypatch.setattr(compiler, "candidates", _forced_stage([2, 3], (3, 4)))
    graph = load_tflite(path)
    plan = plan_graph(graph, load_board(BOARD)).plan
    (stage,) = plan.stages
    assert stage.op_scale == pytest.approx([2550 / 2304, 1.0])
    for op, scale, rule in zip(stage.ops, stage.op_scale, (MVE_CONV_WINDOW, MVE_DW_WINDOW)):
        f = plan.choice[op]
        _, out_h, _, out_c = graph.tensors[graph.ops[op].outputs[0]].shape
        assert (f.patch_call_cost, f.window_scale) == (rule["patch_call"], rule["window_scale"])
        assert f.patch_rows_cost == round(rule["patch_row"] * out_h * out_c)
        assert plan.op_cost(op) == pytest.approx(f.cost * scale * f.window_scale + 12 * f.patch_call_cost
                                                 + 4 * f.patch_rows_cost)


@pytest.mark.slow  # the whole plan search of MobileNetV1-0.25 (about 9 s of CPU alone, a minute on a loaded machine)
def test_costly_in_place_forms_only_where_the_arena_needs_them(tmp_path) -> None:
    """The narrow 1x1 convolution in place without a ring (its tiles) costs more than the whole layer
    (direct_cost > 0): MobileNetV1-0.25's default plan on mps3-an547 runs no such operator in place where
    its step fits the arena with the input apart (choose.spare_rings, costly_direct); op 4 so is out of
    place."""
    path = _write(tmp_path, build(zoo_cases("mobilenet_v1")[0]))
    plan = plan_graph(load_tflite(path), load_board(BOARD)).plan
    costly = [op for op, ip in plan.inplace.items() if ip.direct and plan.choice[op].direct_cost > 0]
    assert 4 not in costly and plan.choice[4].direct_cost > 0 and 4 not in plan.inplace


def _form_calls(path: Path, sram: int | None = None) -> dict[str, list[KernelCall]]:
    out: dict[str, list[KernelCall]] = {"ring": [], "window": [], "whole": []}
    for c in _main_calls(path, sram):
        assert c.kernel == MVE[c.op_kind], (c.op_index, c.kernel)
        out["ring" if c.spec.get("ring") else "window" if c.spec.get("window") else "whole"].append(c)
    return out


@pytest.mark.qemu
@pytest.mark.slow
def test_ds_cnn_default_in_place_bitexact(tmp_path) -> None:
    """The default build: the depthwise convolutions in place through rings, the pointwise ones without
    (copying each pixel pair they read costs less than the pointer work it saves)."""
    path = _write(tmp_path, build(zoo_cases("ds_cnn")[0]))
    c = build_model(path, BOARD)
    ring = [x for x in c.calls if isinstance(x, KernelCall) and x.spec.get("ring")]
    assert {x.kernel for x in ring} == {"dwconv_s8_mve"}
    over = [x for x in c.calls if isinstance(x, KernelCall) and x.spec.get("over_input")]
    assert len(over) == 4 and all(x.kernel == "conv_s8_mve" and c.plan.inplace[x.op_index].direct for x in over)
    assert c.plan.arena_bytes <= 8900
    _bitexact(path, tmp_path)


@pytest.mark.qemu
@pytest.mark.slow
def test_ds_cnn_in_place_bitexact(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _rings_only)
    path = _write(tmp_path, build(zoo_cases("ds_cnn")[0]))
    budget = _in_place(path)
    forms = _form_calls(path, budget)
    # every convolution and depthwise layer runs in place (the 1x1 ones read their input directly)
    assert len(forms["ring"]) == 9 and {c.op_kind for c in forms["ring"]} == {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert sum(c.spec["direct"] for c in forms["ring"] if c.kernel == "conv_s8_mve") == 4
    _bitexact(path, tmp_path, budget)


@pytest.mark.qemu
@pytest.mark.slow
def test_mobilenet_v1_patch_stage_bitexact(tmp_path) -> None:
    path = _write(tmp_path, build(zoo_cases("mobilenet_v1")[0]))
    compiled = build_model(path, BOARD, sram=32000)
    assert compiled.plan.stages and compiled.plan.arena_bytes <= 32000
    forms = _form_calls(path, 32000)
    stage = compiled.plan.stages[0]
    assert sorted(c.op_index for c in forms["window"]) == sorted(stage.ops)
    # the 1x1 convolution of the stage reads a window of its input: not contiguous
    assert any(c.kernel == "conv_s8_mve" and c.spec["direct"] for c in forms["window"])
    _bitexact(path, tmp_path, 32000)


@pytest.mark.qemu
@pytest.mark.slow
def test_resnet8_im2col_conv_over_input_windows_bitexact(tmp_path, monkeypatch) -> None:
    """Two 3x3 convolutions in one patch stage: the second reads a window of the first's output
    (im2col over an input buffer with a row pitch of its own and the image borders elsewhere)."""
    path = _write(tmp_path, build(zoo_cases("resnet8")[0]))
    monkeypatch.setattr(compiler, "candidates", _forced_stage([1, 2], (3, 3)))
    forms = _form_calls(path)
    stage = [c for c in forms["window"] if c.op_index in (1, 2)]
    assert len(stage) == 2 and all(not c.spec["direct"] and len(c.patch_params) == 9 for c in stage)
    assert any(pp["in_x0"] > 0 and pp["in_w"] < pp["img_w"] for pp in stage[1].patch_params)
    _bitexact(path, tmp_path)
