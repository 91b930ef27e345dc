"""A TRANSPOSE at a model input folded into the operator that reads it (codegen/fold.py; issue 17):

* NCHW-input models (a keras Permute, as a PyTorch export starts) into CONV_2D over strides, SAME/VALID,
  dilation, odd sizes and other permutations, and with float I/O (QUANTIZE, TRANSPOSE, CONV_2D), folded (no copy_nd_s8 call, the TRANSPOSE's output shares the
  model input's buffer, model.c and the compile note say so), bit-exact with TFLM on the host, smaller in
  arena than the copying plan; one under QEMU (mps2-an386, where the folded CONV_2D runs the DSP kernel and
  the objective folds: the gather through strides costs less than the copy);
* a CONV_2D whose output is transposed back to NCHW (the CONV_2D writes through strides), alone and with
  its input transposed too;
* DEPTHWISE_CONV_2D reading a TRANSPOSE, writing one, or both, folded into its portable kernel (its DSP
  and MVE kernels read and write row-major only), bit-exact on the host;
* MobileNetV2 (alpha 0.35, 96x96) behind an NCHW input (slow): without a budget the objective keeps the
  copy; within 40,000 bytes only the folded plan fits (the copying one needs 55,296), bit-exact on the host
  and under QEMU on mps2-an386 and mps3-an547, where the folded CONV_2D runs the DSP and MVE kernels in a
  patch stage.

The DSP and MVE kernels' folded forms over a sweep of shapes: tests/test_fold_families.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, nchw_cases, nchw_depthwise_cases
from tinyml.codegen.fold import folded
from tinyml.codegen.lower import KernelCall
from tinyml.compiler import Compiled, build_model
from tinyml.graph import parse_tflite
from tinyml.tools.inspect import inspect_graph
from tinyml.tools.plan import plan_model
from tinyml.tools.verify import random_inputs, verify_compiled

*CONV_CASES, MOBILENET = nchw_cases()
QEMU_BOARD = "mps2-an386"
CONV_KERNEL = {"host": "conv_s8", "mps2-an386": "conv_s8_dsp", "mps3-an547": "conv_s8_mve"}  # folded, by board


def _compiled(model: bytes, board: str = "host", fold: bool | None = True) -> Compiled:
    return build_model(parse_tflite(model, source="m.tflite", name="m"), board, fold=fold)


def _check_folded(model: bytes, board: str = "host", kernel: str = "") -> tuple[Compiled, Compiled]:
    """Every TRANSPOSE is folded: no copy kernel, its output shares its input's buffer (no arena bytes of its
    own), the CONV_2D (or ``kernel``'s operator) it folded into reads or writes through strides, and model.c
    and the compile note say so.  Returns the builds folded and copying."""
    on, off = _compiled(model, board), _compiled(model, board, fold=False)
    aliases = folded(on.calls)
    assert aliases and len(aliases) == sum(op.kind == "TRANSPOSE" for op in on.graph.ops)
    assert not any(isinstance(c, KernelCall) and c.kernel == "copy_nd_s8" for c in on.calls)
    for alias in aliases:
        conv = next(c for c in on.calls if isinstance(c, KernelCall) and c.op_index == alias.folded_into)
        reads = conv.inputs == [alias.target]
        assert conv.kernel == (kernel or CONV_KERNEL[board]) and (conv.input_strides if reads else conv.output_strides)
        assert on.plan.tensor_buffer[alias.target] == on.plan.tensor_buffer[alias.source]
        assert off.plan.tensor_buffer[alias.target] != off.plan.tensor_buffer[alias.source]
        assert f"TRANSPOSE folded into op {alias.folded_into}" in on.files["model.c"]
    assert any(isinstance(c, KernelCall) and c.kernel == "copy_nd_s8" for c in off.calls)
    first = aliases[0]
    kind = on.graph.ops[first.folded_into].kind
    assert on.fold_note.startswith(f"folded TRANSPOSE op {first.op_index} into op {first.folded_into} ({kind})")
    assert not off.fold_note
    return on, off


def _verify(compiled: Compiled, model: bytes, tmp_path: Path, samples: int) -> None:
    report = verify_compiled(compiled, model, random_inputs(compiled.graph, samples, 0), work_dir=tmp_path / "proj")
    assert report.ok, report.summary()


@pytest.mark.parametrize("case", [c for c in CONV_CASES if not c.p("depthwise")], ids=lambda c: c.id)
def test_fold_into_conv_host(case, tmp_path: Path) -> None:
    model = build(case)
    on, off = _check_folded(model)
    # the copy's bytes saved where the input's copy was at the peak (not: a 1x1 conv, which without folding
    # runs in place; float I/O, where the float tensors peak; a folded writer, which does not run in place)
    if case.p("kernel") != (1, 1) and case.io_dtype == "int8" and case.p("perm") and not case.p("out_perm"):
        assert on.plan.arena_bytes + 128 <= off.plan.arena_bytes
    _verify(on, model, tmp_path, 3)
    assert_bitexact(model, tmp_path, board="host", samples=2)  # the objective's choice


@pytest.mark.parametrize("case", [c for c in CONV_CASES if c.p("depthwise")] + nchw_depthwise_cases(),
                         ids=lambda c: c.id)
def test_fold_into_depthwise_host(case, tmp_path: Path) -> None:
    model = build(case)
    on, _ = _check_folded(model, kernel="dwconv_s8")
    _verify(on, model, tmp_path, 2)


@pytest.mark.qemu
def test_fold_into_conv_qemu(tmp_path: Path) -> None:
    model = build(CONV_CASES[0])
    on, _ = _check_folded(model, QEMU_BOARD)
    _verify(on, model, tmp_path, 2)
    # on the M4 the objective folds: the DSP kernel's gather through strides (about 1.3 instructions per tap,
    # codegen/families.py: FOLDED_RATES) is estimated to cost less than the copy, in a smaller arena
    auto = _compiled(model, QEMU_BOARD, fold=None)
    assert folded(auto.calls) and auto.fold_note.startswith("folded TRANSPOSE op 0 into op 1")
    assert auto.plan.choice[1].variant == "conv_s8_dsp"


@pytest.mark.qemu
def test_fold_both_sides_qemu(tmp_path: Path) -> None:
    """TRANSPOSE, CONV_2D, TRANSPOSE: the CONV_2D reads and writes through strides."""
    (c,) = [c for c in CONV_CASES if c.p("perm") and c.p("out_perm")]
    model = build(c)
    on, _ = _check_folded(model, QEMU_BOARD)
    _verify(on, model, tmp_path, 2)


BUDGET = 40_000  # below the copying plan's smallest arena (55,296 bytes: the input and its copy)


def _mobilenet_in_budget(board: str) -> Compiled:
    """MobileNetV2-NCHW compiled for ``board`` within BUDGET bytes of arena: only the folded TRANSPOSE fits
    (the first CONV_2D, the board's fastest kernel, reads the NCHW input in a patch stage), and its copy has
    no buffer."""
    model = build(MOBILENET)
    c = build_model(parse_tflite(model, source="m.tflite", name="m"), board, sram=BUDGET)
    (alias,) = folded(c.calls)
    assert c.plan.tensor_buffer[alias.target] == c.plan.tensor_buffer[alias.source]
    assert c.plan.arena_bytes <= BUDGET and c.plan.stage_of(alias.folded_into) is not None
    assert c.plan.choice[alias.folded_into].variant == CONV_KERNEL[board]
    assert not any(isinstance(k, KernelCall) and k.kernel == "copy_nd_s8" for k in c.calls)
    assert c.fold_note.startswith("folded TRANSPOSE op 0 into op 1 (CONV_2D)")
    return c


@pytest.mark.slow
def test_mobilenet_v2_nchw_host(tmp_path: Path) -> None:
    """Without a budget the objective keeps the copy: folded, the first CONV_2D cannot run in place over its
    input (its ring geometry is row-major NHWC), so layer by layer the folded arena is larger.  Within
    BUDGET only the folded plan fits; it is bit-exact."""
    model = build(MOBILENET)
    auto = _compiled(model, fold=None)
    assert not folded(auto.calls) and auto.fold_note.startswith("not folded: TRANSPOSE op 0 into op 1")
    assert auto.plan.arena_bytes > BUDGET
    _verify(_mobilenet_in_budget("host"), model, tmp_path, 2)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_mobilenet_v2_nchw_qemu(board: str, tmp_path: Path) -> None:
    _verify(_mobilenet_in_budget(board), build(MOBILENET), tmp_path, 1)


def test_inspect_and_plan_say_folded() -> None:
    graph = parse_tflite(build(CONV_CASES[0]), source="m.tflite", name="m")
    info = inspect_graph(graph)
    assert info.totals.folds.startswith("folded TRANSPOSE op 0 into op 1 (CONV_2D)")
    assert info.totals.folds in info.format()
    rows = plan_model(graph, board="host").schedule
    assert [r["folded"] for r in rows] == [True, False]
