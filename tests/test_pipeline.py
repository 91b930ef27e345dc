"""The pipeline's shape: lower once, plan with the variants' declarations, specialize the choice, one renderer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.modelgen import build, op_cases, zoo_cases
from tinyml import compiler
from tinyml.codegen import ops as ops_module
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.variants import VARIANTS, options, variant
from tinyml.compiler import build_model, plan_graph
from tinyml.graph import load_tflite

REPO = Path(__file__).resolve().parent.parent


def _model(tmp_path: Path, case) -> Path:
    path = tmp_path / f"{case.id}.tflite"
    path.write_bytes(build(case))
    return path


@pytest.mark.parametrize("name, board, sram", [("ds_cnn", "mps2-an386", None), ("ds_cnn", "mps2-an386", 10 ** 9),
                                               ("ds_cnn", "mps3-an547", None), ("mobilenet_v1", "host", 32000)])
def test_every_operator_is_lowered_once(tmp_path, monkeypatch, name, board, sram) -> None:
    seen: list[int] = []
    real = ops_module.lower_op

    def counting(ctx, op):
        seen.append(op.index)
        return real(ctx, op)

    monkeypatch.setattr(compiler, "lower_op", counting)
    c = build_model(_model(tmp_path, zoo_cases(name)[0]), board, sram=sram)
    assert sram is None or sram > 10 ** 6 or c.plan.stages
    assert sorted(seen) == list(range(len(c.graph.ops)))


def test_every_kernel_template_has_one_declaration() -> None:
    templates = {p.name[:-len(".c.j2")] for p in (REPO / "templates" / "kernels").glob("*.c.j2")
                 if not p.name.startswith("tml_")}
    declared = [v.template for v in VARIANTS]
    assert len(declared) == len(set(declared))
    assert set(declared) == templates
    for v in VARIANTS:
        assert v.implements in templates and (v.family == "portable") == (v.template == v.implements)
        for helper in v.helpers:
            assert (REPO / "templates" / helper).is_file(), helper


def test_plan_records_the_variant_of_every_operator(tmp_path) -> None:
    model = _model(tmp_path, zoo_cases("ds_cnn")[0])
    fast = build_model(model, "mps2-an386")
    calls = {c.op_index: c for c in fast.calls if isinstance(c, KernelCall)}
    assert set(fast.plan.choice) == set(calls)
    assert all(fast.plan.choice[op].variant == c.kernel for op, c in calls.items())
    # the DSP kernels' im2col and row buffers are on the stack: declared and reported by the plan
    assert fast.plan.stack_bytes > 0 and fast.plan.stack_bytes == max(f.stack_bytes for f in fast.plan.choice.values())
    # operators that run in place take the fastest variant with the ring form: the DSP one on the M4
    rings = [op for op, ip in fast.plan.inplace.items() if ip.ring]
    assert rings and all(fast.plan.choice[op].variant.endswith("_dsp") for op in rings)
    assert all(variant(fast.plan.choice[op].variant).ring for op in rings)
    # with nothing in place (the fastest candidate) the arena is larger
    nothing = plan_graph(fast.graph, fast.board).candidates[0]
    assert not any(ip.ring for ip in nothing.inplace.values()) and nothing.arena_bytes > fast.plan.arena_bytes


def test_variants_are_offered_fastest_first(tmp_path) -> None:
    case = next(c for c in op_cases("CONV_2D") if not c.p("dilation"))
    graph = load_tflite(_model(tmp_path, case))
    call = lower_op(LowerContext(graph=graph), graph.ops[0])
    names = [v.template for v in options(LowerContext(graph=graph, features=("dsp", "fpu", "mve")), call)]
    assert names[-1] == "conv_s8" and names.index("conv_s8_dsp") > names.index("conv_s8_mve")
    assert [v.template for v in options(LowerContext(graph=graph), call)] == ["conv_s8"]


def test_one_jinja_environment_in_the_code_base() -> None:
    sources = list((REPO / "tinyml").rglob("*.py")) + list((REPO / "codegen").rglob("*.py"))
    sites = [f"{p.relative_to(REPO)}:{n}" for p in sources
             for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"jinja2\.Environment\(", line)]
    assert len(sites) == 1 and sites[0].startswith("codegen/render.py:"), sites


def test_shared_kernel_helpers_rendered_once(tmp_path) -> None:
    files = build_model(_model(tmp_path, zoo_cases("ds_cnn")[0]), "mps2-an386").files
    assert files["model.c"].count("#define TML_DSP_COMMON") == 1
    assert files["model.c"].count("tml_dsp_requant") >= 2
    mve = build_model(_model(tmp_path, zoo_cases("ds_cnn")[0]), "mps3-an547").files
    assert mve["model.c"].count("#define TML_MVE_COMMON") == 1
    host = build_model(_model(tmp_path, zoo_cases("ds_cnn")[0]), "host", sram=10 ** 9).files
    assert host["tml_kernels.h"].count("#define TML_RING_STORE") == 1


def test_codegen_is_imported_honestly() -> None:
    """tinyml.codegen resolves through the package-dir mapping (wheel or editable install), not a __path__
    splice at import time."""
    import tinyml
    import tinyml.codegen

    assert "__path__" not in (REPO / "tinyml" / "__init__.py").read_text()
    assert Path(tinyml.codegen.__file__).resolve().parent.name == "codegen"
    assert list(tinyml.__path__) == [str(Path(tinyml.__file__).parent)]
