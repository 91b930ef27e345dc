"""The DSP family's in-place (ring and direct) and patch-window forms: the plan really uses them, and every
form is bit-exact with TFLM under QEMU (Cortex-M4 on mps2-an386, a sixth of the cases on the Cortex-M33 of
mps2-an505).

In place: an arena budget one byte below the fastest plan's (nothing in place) makes the planner run
operators in place with the fastest variant that can: directly (no ring, the output placed below the
input) where that needs no more memory, which the ring tests turn off (every case that can use a ring
does), and a third of the cases that run directly are run so too.  Patch windows: a model of one
operator never gets a patch stage from a budget (running it in place always needs less), so those tests
plan the operator as a one-operator patch stage with a fixed grid (patches with and without padding at
each border; the other planning steps as usual); the window of an input (a stage's later operators) is
covered by the whole networks: mobilenet_v1 under a budget, and ds_cnn with its first five operators
planned as a stage.  Which cases can take a form
is decided from the plan when the parametrization is built, never skipped at run time.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import Case, build, cache_path, case, op_cases, zoo_cases
from tinyml.boards import load_board
from tinyml import compiler
from tinyml.codegen.lower import KernelCall
from tinyml.compiler import build_model, plan_graph
from tinyml.errors import FitError
from tinyml.graph import load_tflite
from tinyml.graph.ir import Graph
from tinyml.schedule.choose import Options, candidates, capabilities, pick, with_choice
from tinyml.schedule.geometry import WINDOW_OPS, window_of
from tinyml.schedule.patch import make_stage
from tinyml.schedule.plan import Plan, plan_memory

BOARD = "mps2-an386"  # Cortex-M4
M33 = "mps2-an505"
DSP = {"CONV_2D": "conv_s8_dsp", "DEPTHWISE_CONV_2D": "dwconv_s8_dsp", "FULLY_CONNECTED": "fc_s8_dsp"}
# The DSP-eligible sweep cases (no dilation, depth multiplier 1), per-channel half.
CASES = [c for c in op_cases(*DSP) if c.per_channel and not c.p("dilation") and c.p("mult", 1) == 1]


def _path(case: Case) -> Path:
    build(case)  # into the model cache (prebuilt)
    return cache_path(case)


def _grid(graph: Graph) -> tuple[int, int]:
    """3 x 3 patches where the output allows: first, middle and last patch rows and columns."""
    win = window_of(graph, graph.ops[_main_op(graph)])
    assert win is not None
    return min(3, win.out_h), min(3, win.out_w)


def _main_op(graph: Graph) -> int:
    return next(i for i, op in enumerate(graph.ops) if op.kind in DSP)


def _staged(ops: list[int] | None, grid: tuple[int, int] | None = None):
    """A replacement of the planner's ``candidates`` offering one plan: ``ops`` (default: the case's
    operator) as one patch stage."""

    def candidates(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
        facts = capabilities(options)
        chain = ops if ops is not None else [_main_op(graph)]
        st = make_stage(graph, chain, grid or _grid(graph), facts)
        assert st is not None
        return [with_choice(graph, plan_memory(graph, facts, stages=[st]), options)]

    return candidates


def _rings_only(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
    """A replacement of the planner's ``candidates`` that never runs a ring kernel in place directly."""
    rings = {op: tuple(replace(f, ring_direct=False) for f in fs) for op, fs in options.items()}
    return [with_choice(graph, p, options) for p in candidates(graph, rings, sram=sram)]


@functools.lru_cache(maxsize=None)
def _in_place(path: Path, board: str) -> int:
    """An arena budget one byte below the fastest plan's (nothing in place)."""
    return plan_graph(load_tflite(path), load_board(board)).candidates[0].arena_bytes - 1


def _plan(case: Case, board: str, form: str) -> Plan:
    graph = load_tflite(_path(case))
    brd = load_board(board)
    if form == "ring":
        with pytest.MonkeyPatch.context() as m:
            m.setattr(compiler, "candidates", _rings_only)
            return plan_graph(graph, brd, _in_place(_path(case), board)).plan
    if form == "direct":
        return plan_graph(graph, brd, _in_place(_path(case), board)).plan
    planned = plan_graph(graph, brd)
    return pick(graph, _staged(None)(graph, planned.options))


@functools.lru_cache(maxsize=None)
def _has_form(case: Case, form: str) -> bool:
    """Does the plan run the case's operator in ``form`` ("ring", "direct" or "window") with its DSP
    variant?"""
    graph = load_tflite(_path(case))
    op = _main_op(graph)
    if form == "window" and (graph.ops[op].kind not in WINDOW_OPS or window_of(graph, graph.ops[op]) is None
                             or _grid(graph) == (1, 1)):
        return False  # no patch windows (FULLY_CONNECTED), or an output of one pixel (one patch)
    try:
        plan = _plan(case, BOARD, form)
    except FitError:
        return False  # nothing in place saves memory: the budget below the fastest plan cannot be met
    ip = plan.inplace.get(op)
    used = {"ring": ip is not None and ip.ring > 0, "direct": ip is not None and ip.direct,
            "window": plan.stage_of(op) is not None}[form]
    return used and plan.choice[op].variant == DSP[case.op]


RING_CASES = [c for c in CASES if _has_form(c, "ring")]
DIRECT_CASES = [c for c in CASES if _has_form(c, "direct")][::3]
WINDOW_CASES = [c for c in CASES if _has_form(c, "window")]


def _params(cases: list[Case]) -> list:
    """Every case on the M4, every sixth one also on the M33 (the suite stays within its time)."""
    return [pytest.param(c, BOARD, id=f"{c.id}-{BOARD}") for c in cases] + \
        [pytest.param(c, M33, id=f"{c.id}-{M33}") for c in cases[::6]]


def _form_calls(calls: list, form: str) -> list[KernelCall]:
    return [c for c in calls if isinstance(c, KernelCall) and c.kernel.endswith("_dsp") and c.spec.get(form)]


def test_form_cases_cover_every_kernel() -> None:
    assert {c.op for c in RING_CASES} == set(DSP)
    assert {c.op for c in WINDOW_CASES} == {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert {c.op for c in DIRECT_CASES} == {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert any(c.p("kernel") == (1, 1) for c in RING_CASES if c.op == "CONV_2D")
    assert any(c.p("kernel") == (1, 1) for c in WINDOW_CASES if c.op == "CONV_2D")


def test_whole_layer_calls_have_no_form_keys(tmp_path: Path) -> None:
    """Without a form in the plan, the specialized call (and so its code and name) is the whole-layer one."""
    path = _path(next(c for c in CASES if c.p("kernel") == (6, 6)))
    calls = [c for c in build_model(path, BOARD).calls if isinstance(c, KernelCall)]
    assert calls and all(c.kernel == "conv_s8_dsp" for c in calls)
    assert all("ring" not in c.spec and "window" not in c.spec and len(c.args) == 4 for c in calls)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case, board", _params(RING_CASES))
def test_dsp_in_place_bitexact(case: Case, board: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _rings_only)
    path = _path(case)
    budget = _in_place(path, board)
    c = build_model(path, board, sram=budget)
    used = [x for x in _form_calls(c.calls, "ring") if x.kernel == DSP[case.op]]
    assert used and all(x.params["ring_len"] > x.params["lag"] for x in used)
    assert_bitexact(path, tmp_path, board=board, samples=2, sram=budget)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case", DIRECT_CASES, ids=lambda c: f"{c.id}-{BOARD}")
def test_dsp_in_place_direct_bitexact(case: Case, tmp_path: Path) -> None:
    """In place without a ring: the whole-layer call, its output below its input and overlapping it."""
    path = _path(case)
    budget = _in_place(path, BOARD)
    c = build_model(path, BOARD, sram=budget)
    op = _main_op(c.graph)
    ip = c.plan.inplace[op]
    assert ip.direct and ip.ring == 0 and c.plan.choice[op].variant == DSP[case.op]
    out_t = c.graph.ops[op].outputs[0]
    delta = c.plan.offset(out_t) - c.plan.offset(ip.tensor)
    assert -c.graph.tensors[out_t].nbytes < delta <= c.graph.tensors[ip.tensor].nbytes - c.graph.tensors[out_t].nbytes
    call = next(x for x in c.calls if isinstance(x, KernelCall) and x.op_index == op)
    assert "ring" not in call.spec and len(call.args) == 4
    assert_bitexact(path, tmp_path, board=BOARD, samples=2, sram=budget)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case, board", _params(WINDOW_CASES))
def test_dsp_patch_window_bitexact(case: Case, board: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _staged(None))
    path = _path(case)
    c = build_model(path, board)
    used = [x for x in _form_calls(c.calls, "window") if x.kernel == DSP[case.op]]
    assert used and len(used[0].patch_params) == c.plan.stages[0].patches > 1
    assert_bitexact(path, tmp_path, board=board, samples=2)


@pytest.mark.qemu
@pytest.mark.slow
def test_ds_cnn_in_place_bitexact(tmp_path: Path) -> None:
    path = _path(zoo_cases("ds_cnn")[0])
    c = build_model(path, BOARD)  # the default build: in place costs the DSP kernels about 1%
    ring = _form_calls(c.calls, "ring")
    assert {x.kernel for x in ring} == {"dwconv_s8_dsp"}  # the pointwise convolutions need no ring:
    assert any(ip.direct and c.plan.choice[op].variant == "conv_s8_dsp" for op, ip in c.plan.inplace.items())
    assert c.plan.arena_bytes <= 8900
    assert_bitexact(path, tmp_path, board=BOARD, samples=2)


@pytest.mark.qemu
@pytest.mark.slow
def test_mobilenet_v1_patch_stage_bitexact(tmp_path: Path) -> None:
    case = zoo_cases("mobilenet_v1")[0]
    path = _path(case)
    c = build_model(path, BOARD, sram=32000)
    assert c.plan.stages and c.plan.arena_bytes <= 32000
    window = _form_calls(c.calls, "window")
    assert {x.kernel for x in window} == {"conv_s8_dsp", "dwconv_s8_dsp"}
    assert any(pp["in_x0"] > 0 and pp["in_y0"] > 0 for x in window for pp in x.patch_params)  # a later op's input
    assert any(ip.direct for ip in c.plan.inplace.values())  # and, outside the stage, in place without a ring
    assert_bitexact(path, tmp_path, board=BOARD, samples=2, sram=32000)


@pytest.mark.qemu
@pytest.mark.slow
def test_ds_cnn_patch_stage_bitexact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ds_cnn's first five operators (conv 10x4, then depthwise 3x3 / pointwise pairs) as one stage of
    3 x 3 patches: the later operators read input windows with padding at the inner patch borders."""
    monkeypatch.setattr(compiler, "candidates", _staged([0, 1, 2, 3, 4], (3, 3)))
    case = zoo_cases("ds_cnn")[0]
    path = _path(case)
    c = build_model(path, BOARD)
    window = _form_calls(c.calls, "window")
    assert [x.op_index for x in window] == [0, 1, 2, 3, 4]
    assert_bitexact(path, tmp_path, board=BOARD, samples=2)


# MobileNet's first layer shape (as in tests/test_kernels_fast.py, CONV_PAIRS)
LEND_CASE = case("conv2d", "CONV_2D", (17, 16, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=8,
                 act="relu6", bias=True)


@pytest.mark.qemu
@pytest.mark.parametrize("form", ["window", "ring"])
def test_dsp_conv_lend_pairs_in_forms(form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DSP convolution's pair path of MobileNet's first layer shape (in_c 3, 3x3, stride 2: spec.lend,
    codegen/families.py) in a patch window and through a ring, where the rows have the window's pitch."""
    path = _path(LEND_CASE)
    sram = None
    if form == "window":
        monkeypatch.setattr(compiler, "candidates", _staged(None))
    else:
        monkeypatch.setattr(compiler, "candidates", _rings_only)
        sram = _in_place(path, BOARD)
    c = build_model(path, BOARD, sram=sram)
    used = [x for x in _form_calls(c.calls, form) if x.kernel == "conv_s8_dsp"]
    assert used and all(x.spec.get("lend") for x in used)
    assert_bitexact(path, tmp_path, board=BOARD, samples=2, sram=sram)
