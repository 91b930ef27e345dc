"""conv_s8_dsp_narrow: the DSP convolution over int8 weights, which the compiler chooses per layer (largest
saving first) where conv_s8_dsp's weights, widened to int16 pairs, would not fit the board's flash.

The boards here are mps2-an386 with a smaller flash (a board file in the test's directory), so that small
models are too big for it when widened: the choice is planned on the host, the kernel run under QEMU.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import Case, build, cache_path, op_cases, zoo_cases
from tests.test_cli import one_line_error, tinyml
from tests.test_kernels_fast import CONV_EXACT, CONV_IM2COL
from tinyml import compiler
from tinyml.boards import Board, load_board
from tinyml.codegen.lower import KernelCall
from tinyml.codegen.specialize import flash_fallbacks, specialize_calls, weight_bytes
from tinyml.compiler import build_model, code_estimate_bytes, plan_graph
from tinyml.graph import load_tflite
from tinyml.graph.ir import Graph
from tinyml.resources import resource_dir
from tinyml.schedule.choose import Options, candidates, capabilities, pick, with_choice
from tinyml.schedule.patch import make_stage
from tinyml.schedule.plan import Plan, plan_memory

WIDE, NARROW = "conv_s8_dsp", "conv_s8_dsp_narrow"
CONVS = [c for c in op_cases("CONV_2D") if not c.p("dilation")]
# Under QEMU: a seventh of the op sweep (kernel sizes, strides, paddings, channel counts, per-tensor and
# per-channel), the im2col paths it does not reach (odd output channels too) and the exact requantization,
# as for conv_s8_dsp in test_kernels_fast.py.
QEMU_CASES = CONVS[::7] + CONV_IM2COL + CONV_EXACT


def _board_file(tmp_path: Path, flash: int) -> Path:
    """mps2-an386 with ``flash`` bytes of flash (rounded down to a word), as a board file."""
    text = (resource_dir("boards") / "mps2-an386.toml").read_text()
    text, n = re.subn(r"(?m)^flash = \{ origin = 0x00000000, size = 0x[0-9a-fA-F]+ \}",
                      f"flash = {{ origin = 0x00000000, size = {flash // 4 * 4:#x} }}", text)
    assert n == 1
    path = tmp_path / "small-flash.toml"
    path.write_text(text.replace('name = "mps2-an386"', 'name = "small-flash"'))
    return path


def _path(c: Case) -> Path:
    build(c)  # into the model cache
    return cache_path(c)


def _short(c: Case) -> Board:
    """mps2-an386 with a flash one byte short of the case's widened build (the estimate's code included)."""
    board = load_board("mps2-an386")
    wide = build_model(_path(c), board)
    return replace(board, flash_bytes=wide.weight_bytes + wide.code_estimate_bytes - 1)


def _kernels(calls: list) -> dict[int, str]:
    return {k.op_index: k.kernel for k in calls if isinstance(k, KernelCall) and k.op_kind == "CONV_2D"}


def test_largest_layers_narrow_first_until_the_weights_fit(tmp_path: Path) -> None:
    """DS-CNN: a 10x4 first convolution and four 1x1 ones of 9,216 widened bytes each.  Every convolution
    can save flash, the 1x1 ones most (ties in op order); a flash one byte short of the 1x1's saving plus
    the widened build narrows two of them, and the rest stay widened."""
    graph = load_tflite(_path(zoo_cases("ds_cnn")[0]))
    full = plan_graph(graph, load_board("mps2-an386"))
    assert not full.flash_note  # 4 MiB of flash: nothing narrowed, no note
    assert set(_kernels(specialize_calls(full.ctx, full.calls, full.plan)).values()) == {WIDE}
    every = flash_fallbacks(full.ctx, full.calls, full.plan, 10 ** 9)
    assert list(every.ops) == [2, 4, 6, 8, 0] and all(v == (WIDE, NARROW) for v in every.ops.values())
    one = flash_fallbacks(full.ctx, full.calls, full.plan, 1)
    assert list(one.ops) == [2] and 0 < one.saved < every.saved
    wide_calls = specialize_calls(full.ctx, full.calls, full.plan)
    wide = weight_bytes(graph, wide_calls)
    code = code_estimate_bytes(wide_calls, (NARROW,))  # the narrow 1x1 kernel one more function
    board = load_board(_board_file(tmp_path, wide + code - one.saved - 1))
    c = build_model(graph, board)
    assert _kernels(c.calls) == {0: WIDE, 2: NARROW, 4: NARROW, 6: WIDE, 8: WIDE}
    assert c.weight_bytes == wide - 2 * one.saved and compiler.fit_of(c).flash_fits
    assert c.flash_note == (f"flash: 2 layer(s) (ops 2, 4, largest first) on {NARROW} for {WIDE}, compiled weights "
                            f"{wide:,} -> {c.weight_bytes:,} bytes, to fit the {board.flash_bytes:,}-byte flash of "
                            f"small-flash (with {code:,} of code, estimated)")


def test_compile_says_it_narrowed_or_refuses_in_one_line(tmp_path: Path) -> None:
    """`tinyml compile` prints the choice in one note line; a flash too small even for the int8 weights is
    refused in one line (exit 2), as before."""
    c = CONVS[8]  # 3x3 over 3 channels, 8 filters
    built = build_model(_path(c), "mps2-an386")
    code = code_estimate_bytes(built.calls)  # the narrow kernel replaces the wide one: as many functions
    board = _board_file(tmp_path, built.weight_bytes + code - 1)
    r = tinyml("compile", str(_path(c)), "--board", str(board), "-o", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stdout.splitlines() if line.startswith("note: flash: ")]
    assert len(notes) == 1 and f"(ops 0, largest first) on {NARROW} for {WIDE}" in notes[0]
    for command in (("plan", "--no-plot"), ("inspect",)):  # they print compile's note, word for word
        r = tinyml(command[0], str(_path(c)), "--board", str(board), *command[1:])
        assert r.returncode == 0, r.stderr
        assert [line for line in r.stdout.splitlines() if line.startswith("note: flash: ")] == notes, command
    assert f"{NARROW}_" in (tmp_path / "out" / "model.c").read_text()
    tiny = _board_file(tmp_path, code + 64)
    msg = one_line_error(tinyml("compile", str(_path(c)), "--board", str(tiny), "-o", str(tmp_path / "out2")))
    assert "bytes of flash" in msg and "too many" in msg


@pytest.mark.qemu
@pytest.mark.parametrize("c", QEMU_CASES, ids=lambda c: c.id)
def test_narrow_conv_bitexact_m4(c: Case, tmp_path: Path) -> None:
    board = _short(c)
    assert set(_kernels(build_model(_path(c), board).calls).values()) == {NARROW}
    assert_bitexact(_path(c), tmp_path, board=board, samples=2)  # type: ignore[arg-type]


@pytest.mark.qemu
def test_narrow_conv_bitexact_m33(tmp_path: Path) -> None:
    c = CONVS[40]  # 3x3 stride 2 over 3 channels, 13 filters (an odd count)
    board = load_board("mps2-an505")
    wide = build_model(_path(c), board)
    short = replace(board, flash_bytes=wide.weight_bytes + wide.code_estimate_bytes - 1)
    assert set(_kernels(build_model(_path(c), short).calls).values()) == {NARROW}
    assert_bitexact(_path(c), tmp_path, board=short, samples=2)  # type: ignore[arg-type]


def _rings_only(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
    """The planner's candidates, never in place without a ring."""
    rings = {op: tuple(replace(f, ring_direct=False) for f in fs) for op, fs in options.items()}
    return [with_choice(graph, p, options) for p in candidates(graph, rings, sram=sram)]


def _one_stage(graph: Graph, options: Options, *, sram: int | None = None, stream: bool = False) -> list[Plan]:
    """The planner's candidates: the one operator as a patch stage of 3 x 3 patches."""
    facts = capabilities(options)
    st = make_stage(graph, [0], (3, 3), facts)
    assert st is not None
    return [with_choice(graph, plan_memory(graph, facts, stages=[st]), options)]


@pytest.mark.qemu
@pytest.mark.parametrize("form", ["ring", "window"])
def test_narrow_conv_forms_bitexact_m4(form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In place through a ring, and patch windows: the forms the variant declares as conv_s8_dsp does."""
    c = CONVS[44]  # 3x3 over 8 channels, 8 filters, 10x10
    board = _short(c)
    sram = None
    if form == "ring":
        sram = plan_graph(load_tflite(_path(c)), board).candidates[0].arena_bytes - 1
    monkeypatch.setattr(compiler, "candidates", _rings_only if form == "ring" else _one_stage)
    calls = [k for k in build_model(_path(c), board, sram=sram).calls if isinstance(k, KernelCall)]
    assert [(k.kernel, bool(k.spec.get(form))) for k in calls] == [(NARROW, True)]
    assert_bitexact(_path(c), tmp_path, board=board, samples=2, sram=sram)  # type: ignore[arg-type]
