"""The model input streamed row by row (compile --stream-input): NAME_invoke_rows pulls the rows of input 0
from a callback band by band, and the first operator of the streamed patch stage reads each band's rows from
a buffer that holds only them (its window's in_y0/in_h).  Bit-exact with TFLM for every kernel family's
window form of the operator that reads the input (portable on the host; DSP on mps2-an386 and MVE on
mps3-an547 under QEMU, a small subset), over grids with several bands and columns, SAME and VALID, stride 1
and 2 (rows no window reads, between bands and below the last), a chain with a ring kernel after it; the
planner's own streamed plans; the refusals; the C API's error codes and the order of the rows it asks for.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import Case, build, cache_path, op_cases, zoo_cases
from tinyml import compiler
from tinyml.boards import load_board
from tinyml.compiler import build_model, plan_graph, write_project
from tinyml.errors import UnsupportedError
from tinyml.graph import load_tflite
from tinyml.graph.ir import Graph
from tinyml.schedule.choose import Options, capabilities, with_choice
from tinyml.schedule.patch import make_stage, stream_start
from tinyml.schedule.plan import OpFacts, Plan, plan_memory

BY_ID = {c.id: c for c in op_cases("CONV_2D", "DEPTHWISE_CONV_2D")}


def _path(case_id: str) -> Path:
    c: Case = BY_ID[case_id]
    build(c)  # into the model cache (prebuilt)
    return cache_path(c)


def _zoo(name: str) -> Path:
    c = zoo_cases(name)[0]
    build(c)
    return cache_path(c)


def _streamed(ops: list[int], grid: tuple[int, int]):
    """A replacement of the planner's ``candidates`` offering one plan: ``ops`` as the streamed stage."""

    def candidates(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
        assert stream
        facts = capabilities(options)
        st = make_stage(graph, ops, grid, facts, stream=True)
        assert st is not None
        return [with_choice(graph, plan_memory(graph, facts, stages=[st]), options)]

    return candidates


# (case, stage ops, grid): SAME/VALID, stride 1/2, 1x1 (the DSP pw path), in_c 3 3x3 stride 2 (the pairs and
# lend paths), a tall kernel, depthwise, bands that skip rows (1x1 stride 2) and rows below the last band
HOST = [
    ("conv2d-16x16x3-k3x3-s2x2-same-f16-relu6-bias-image-pc", [0], (3, 2)),
    ("conv2d-12x10x3-k3x3-s1x1-valid-f8-bias-pc", [0], (4, 1)),
    ("conv2d-12x10x3-k5x3-s2x2-same-f8-bias-pt", [0], (2, 3)),
    ("conv2d-12x10x3-k1x1-s2x2-valid-f8-bias-pc", [0], (3, 1)),
    ("conv2d-12x10x3-k3x3-s2x2-valid-f8-bias-pc", [0], (2, 2)),
    ("conv2d-8x8x16-k1x1-s1x1-same-f16-relu6-bias-pc", [0], (3, 2)),
    ("conv2d-16x10x1-k10x4-s2x1-same-f8-relu-bias-pc", [0], (4, 2)),
    ("depthwise-10x9x6-k3x3-s2x2-same-bias-m1-pc", [0], (3, 3)),
    ("depthwise-10x9x6-k3x3-s1x1-valid-bias-m2-pt", [0], (4, 2)),
]


@pytest.mark.parametrize("case_id,ops,grid", HOST, ids=[f"{c}-{g[0]}x{g[1]}" for c, _, g in HOST])
def test_streamed_stage_host(case_id: str, ops: list[int], grid: tuple[int, int], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _streamed(ops, grid))
    path = _path(case_id)
    plan = plan_graph(load_tflite(path), load_board("host"), stream_input=True).plan
    st = plan.stream
    assert st is not None and st.grid == grid
    assert plan.buffers[plan.tensor_buffer[st.source]].size < load_tflite(path).tensors[st.source].nbytes
    assert_bitexact(path, tmp_path, samples=2, stream_input=True)


def test_streamed_chain_with_ring_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DS-CNN's first three operators as the streamed stage (4 bands x 2 columns), and after it operators
    in place through a ring."""
    monkeypatch.setattr(compiler, "candidates", _streamed([0, 1, 2], (4, 2)))
    path = _zoo("ds_cnn")
    plan = plan_graph(load_tflite(path), load_board("host"), stream_input=True).plan
    assert plan.stream is not None and plan.stream.ops == [0, 1, 2]
    assert any(ip.ring for ip in plan.inplace.values())
    assert_bitexact(path, tmp_path, samples=2, stream_input=True)


def test_planner_streams(tmp_path: Path) -> None:
    """The planner's own streamed plan for a budget: several bands, the input never whole in the arena, and
    bit-exact; the same model's layer-by-layer arena holds the input whole."""
    path = _zoo("person_detect")
    graph = load_tflite(path)
    whole = plan_graph(graph, load_board("host")).plan
    small = plan_graph(graph, load_board("host"), 20_000, stream_input=True).plan
    st = small.stream
    assert st is not None and st.grid[0] > 1 and small.arena_bytes <= 20_000 < whole.arena_bytes
    assert st.stream_rows < graph.tensors[graph.inputs[0]].shape[1]
    assert_bitexact(path, tmp_path, samples=1, sram=20_000, stream_input=True)


QEMU = [
    ("mps2-an386", "conv2d-16x16x3-k3x3-s2x2-same-f16-relu6-bias-image-pc", (3, 2)),  # DSP pairs + lend
    ("mps2-an386", "conv2d-8x8x16-k1x1-s1x1-same-f16-relu6-bias-pc", (3, 2)),  # DSP pw
    ("mps3-an547", "conv2d-16x16x3-k3x3-s2x2-same-f16-relu6-bias-image-pc", (3, 2)),  # MVE
    ("mps3-an547", "depthwise-10x9x6-k3x3-s2x2-same-bias-m1-pc", (3, 3)),
]


@pytest.mark.qemu
@pytest.mark.parametrize("board,case_id,grid", QEMU, ids=[f"{b}-{c}" for b, c, _ in QEMU])
def test_streamed_stage_qemu(board: str, case_id: str, grid: tuple[int, int], tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "candidates", _streamed([0], grid))
    path = _path(case_id)
    plan = plan_graph(load_tflite(path), load_board(board), stream_input=True).plan
    family = "mve" if board == "mps3-an547" else "dsp"
    assert family in plan.choice[0].variant, plan.choice[0].variant  # the family's window form reads the rows
    assert_bitexact(path, tmp_path, board=board, samples=2, stream_input=True)


@pytest.mark.qemu
@pytest.mark.slow
def test_mobilenet_v2_144_streamed_qemu(tmp_path: Path) -> None:
    """MobileNetV2-0.35 144x144x3 with its input streamed, in less than a sixth of TFLM's activations
    (311,040 bytes), bit-exact on the Cortex-M4."""
    path = _zoo("mobilenet_v2-144")
    plan = plan_graph(load_tflite(path), load_board("mps2-an386"), 51_840, stream_input=True).plan
    assert plan.stream is not None and plan.arena_bytes <= 51_840
    assert plan.extra_macs <= 0.15 * plan.macs
    assert_bitexact(path, tmp_path, board="mps2-an386", samples=1, sram=51_840, stream_input=True)


def _refused(graph: Graph, facts: dict[int, OpFacts] | None = None) -> str:
    with pytest.raises(UnsupportedError) as e:
        if facts is None:
            plan_graph(graph, load_board("host"), stream_input=True)
        else:
            stream_start(graph, facts)
    msg = str(e.value)
    assert "\n" not in msg and "--stream-input" in msg and "compile without --stream-input" in msg
    return msg


def test_refusals() -> None:
    fc = load_tflite(_zoo("fc_autoencoder"))
    assert "not a batch-1 image" in _refused(fc)
    pool = next(c for c in op_cases("MAX_POOL_2D") if len(c.inputs[0]) == 3)
    build(pool)
    assert "read by op 0 (MAX_POOL_2D)" in _refused(load_tflite(cache_path(pool)))
    two = copy.deepcopy(load_tflite(_zoo("ds_cnn")))  # the input read by op 0 and op 1 (a graph validation
    two.ops[1].inputs[0] = two.inputs[0]  # would refuse for its shapes: the planner's check alone)
    msg = _refused(two, {0: OpFacts(patchable=True), 1: OpFacts(patchable=True)})
    assert "op 0 (CONV_2D), op 1 (DEPTHWISE_CONV_2D)" in msg and "read once, by one" in msg


API_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"

struct log { unsigned next, calls, fail_at, bad; };

static int rows(void *user, unsigned first, unsigned n, void *dst)
{
    struct log *l = (struct log *)user;
    if (first != l->next || n == 0u || n > M_INPUT0_ROWS_HELD || first + n > M_INPUT0_ROWS) {
        l->bad++;
    }
    memset(dst, (int)first, (size_t)n * M_INPUT0_ROW_BYTES);
    l->next = first + n;
    return ++l->calls == l->fail_at;
}

int main(void)
{
    struct log l = {0u, 0u, 0u, 0u};
    int rc;
    m_init();
    printf("%d %d %d", m_invoke(), m_input(0) == NULL, m_invoke_rows(NULL, &l));
    printf(" %d", m_invoke_rows(rows, &l));
    printf(" %u %u %u", l.next, l.bad, l.calls > 1u);
    l.next = 0u; l.fail_at = 2u; l.calls = 0u;
    rc = m_invoke_rows(rows, &l);
    printf(" %d %u\n", rc, l.calls);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_c_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """invoke() and input(0) on a streamed model, a NULL callback, a callback that fails, and the rows asked
    for: in order, each once, all of them (rows no window reads included: 1x1 stride 2 VALID), at most
    ROWS_HELD at a time; under ASan and UBSan."""
    monkeypatch.setattr(compiler, "candidates", _streamed([0], (3, 1)))
    c = build_model(_path("conv2d-12x10x3-k1x1-s2x2-valid-f8-bias-pc"), "host", name="m", stream_input=True)
    write_project(c.files, tmp_path / "p")
    (tmp_path / "p" / "api_main.c").write_text(API_MAIN)
    exe = tmp_path / "api"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-I", str(tmp_path / "p"), str(tmp_path / "p" / "model.c"),
                    str(tmp_path / "p" / "api_main.c"), "-lm", "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    # -6 (invoke on a streamed model), input(0) NULL, -5 (NULL callback), 0, all 12 rows in order, then -5
    # at the failing second call
    assert out == ["-6", "1", "-5", "0", "12", "0", "1", "-5", "2"], out


def test_inspect_sizes_of_the_streamed_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """`inspect --board --stream-input` where it cannot run QEMU measures the ELF of the streamed build (its
    arena, the invoke_rows code), as it plans it: not the build that holds the input whole."""
    from tinyml.tools import inspect as inspect_mod
    from tinyml.tools.profile import size_report

    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    path, board = _path("conv2d-16x16x3-k3x3-s2x2-same-f16-relu6-bias-image-pc"), "mps2-an386"
    monkeypatch.setattr(inspect_mod.shutil, "which", lambda name: None)  # as on a machine without QEMU
    info = inspect_mod.inspect_model(path, board, stream_input=True)
    monkeypatch.undo()
    streamed, whole = size_report(path, board, stream_input=True), size_report(path, board)
    assert info.sizes == streamed and streamed != whole


def test_uart_board_project_refused_library_allowed() -> None:
    """A board that runs the host-link firmware (it writes input 0 whole) gets no firmware project of a
    streamed model, in one line before anything is planned or written; a library for it is fine."""
    path = _path("conv2d-16x16x3-k3x3-s2x2-same-f16-relu6-bias-image-pc")
    with pytest.raises(compiler.InputError, match="host-link firmware.*--format library"):
        build_model(path, "nucleo-h743zi2", stream_input=True)
    lib = build_model(path, "nucleo-h743zi2", stream_input=True, fmt="library")
    header = next(text for name, text in lib.files.items() if name.endswith("/model.h"))
    assert lib.plan.stream is not None and "_invoke_rows" in str(header)
