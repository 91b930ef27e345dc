"""Kernel families (DSP; MVE in test_kernels_mve.py): choice, fallbacks, bit-exactness against TFLM on QEMU."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case, op_cases, zoo_cases
from tinyml.boards import load_board
from tinyml.codegen.families import family
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.variants import fastest
from tinyml.compiler import build_model
from tinyml.graph import load_tflite

SWEEP = op_cases("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _write(tmp_path, case) -> str:
    path = tmp_path / "model.tflite"
    path.write_bytes(build(case))
    return str(path)


@pytest.mark.parametrize("board, expected", [("host", "portable"), ("mps2-an385", "portable"),
                                             ("mps2-an386", "dsp"), ("mps2-an505", "dsp"),
                                             ("mps3-an547", "mve")])
def test_family_from_board_features(board, expected) -> None:
    assert family(load_board(board).features) == expected


def test_ds_cnn_uses_dsp_kernels_shared_per_specialization(tmp_path) -> None:
    path = _write(tmp_path, zoo_cases("ds_cnn")[0])
    calls = [c for c in build_model(path, "mps2-an386").calls if isinstance(c, KernelCall)]
    kinds = {k: {c.kernel for c in calls if c.op_kind == k} for k in {c.op_kind for c in calls}}
    assert kinds["CONV_2D"] == {"conv_s8_dsp"}
    assert kinds["DEPTHWISE_CONV_2D"] == {"dwconv_s8_dsp"}
    assert kinds["FULLY_CONNECTED"] == {"fc_s8_dsp"}
    # 5 convolutions (one 10x4, four 1x1) -> 2 functions; 4 depthwise -> 1.
    assert len({c.function for c in calls if c.kernel == "conv_s8_dsp"}) == 2
    assert len({c.function for c in calls if c.kernel == "dwconv_s8_dsp"}) == 1
    # the same model for the host stays portable
    host = [c for c in build_model(path, "host").calls if isinstance(c, KernelCall)]
    assert {c.kernel for c in host} >= {"conv_s8", "dwconv_s8", "fc_s8"}
    assert not any(c.kernel.endswith("_dsp") for c in host)


@pytest.mark.parametrize("case", [c for c in SWEEP if c.p("dilation") or c.p("mult", 1) > 1][:4],
                         ids=lambda c: c.id)
def test_unhandled_shapes_stay_portable(case, tmp_path) -> None:
    calls = build_model(_write(tmp_path, case), "mps2-an386").calls
    main = [c for c in calls if isinstance(c, KernelCall) and c.op_kind == case.op]
    assert main and all(not c.kernel.endswith("_dsp") for c in main)


def test_window_params_fall_back_to_portable(tmp_path) -> None:
    case = next(c for c in SWEEP if c.op == "CONV_2D")
    graph = load_tflite(_write(tmp_path, case))
    ctx = LowerContext(graph=graph, features=("dsp",))
    portable = lower_op(LowerContext(graph=graph), graph.ops[0])
    assert fastest(ctx, portable).template == "conv_s8_dsp"
    windowed = replace(portable, params=dict(portable.params, in_y0=2))
    assert fastest(ctx, windowed).template == "conv_s8"
    unknown = replace(portable, params=dict(portable.params, some_new_field=1))
    assert fastest(ctx, unknown).template == "conv_s8"


def test_variant_consts_replace_the_weight_tensor(tmp_path) -> None:
    path = _write(tmp_path, zoo_cases("ds_cnn")[0])
    dsp = build_model(path, "mps2-an386")
    assert "smlad" in dsp.files["model.c"] and "tml_conv_s8_params" in dsp.files["tml_kernels.h"]
    assert "arm_acle.h" not in build_model(path, "host").files["model.c"]


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("case", SWEEP, ids=lambda c: c.id)
def test_dsp_bitexact_m4(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", ["mps2-an500", "mps2-an505"])
@pytest.mark.parametrize("case", SWEEP[::3], ids=lambda c: c.id)
def test_dsp_bitexact_other_cores(case, board, tmp_path) -> None:
    """The DSP family on the Cortex-M7 and M33 (the M55 runs MVE: tests/test_kernels_mve.py)."""
    assert_bitexact(build(case), tmp_path, board=board, samples=2)


# DEPTHWISE_CONV_2D's DSP variant beyond the op sweep: kernel widths 1, 2 and 4 (the lone taps of a column
# pair: SMLABB, SMLATT), the exact requantization (a tiny input scale: the bias dominates), a row of
# several passes and a remainder, stride 3, an odd width whose row buffers do not overlap (VALID
# padding), channels not a multiple of 4.
DW_EDGE = [
    case("depthwise", "DEPTHWISE_CONV_2D", shape, kernel=k, strides=st, padding=pad, mult=1, act=act, bias=bias, **kw)
    for shape, k, st, pad, act, bias, kw in [
        ((6, 7, 8), (1, 1), (1, 1), "valid", "none", True, {}),
        ((7, 9, 6), (2, 2), (1, 1), "same", "relu6", True, {}),
        ((6, 13, 12), (3, 4), (1, 1), "same", "relu", True, {}),
        ((5, 11, 8), (3, 3), (1, 1), "same", "none", True, {"in_scale": 1e-7}),
        ((4, 19, 20), (3, 3), (1, 1), "same", "relu", True, {}),
        ((5, 16, 4), (3, 5), (1, 3), "same", "none", True, {}),
        ((6, 9, 7), (3, 3), (1, 1), "valid", "none", False, {}),
    ]
]


def test_dsp_depthwise_edge_cases_reach_their_paths(tmp_path) -> None:
    specs = []
    for c in DW_EDGE:
        calls = build_model(_write(tmp_path, c), "mps2-an386").calls
        specs += [k.spec for k in calls if isinstance(k, KernelCall) and k.kernel == "dwconv_s8_dsp"]
    assert len(specs) == len(DW_EDGE)
    assert {s["rq"] for s in specs} == {"fast", "exact"} and {s["k_w"] for s in specs} >= {1, 2, 3, 4, 5}
    assert any(s["ow"] > s["n"] and s["ow"] % s["n"] for s in specs) and any(s["sw"] == 3 for s in specs)
    assert any(s["c"] % 4 for s in specs) and any(s["wbuf"] % 2 and not s["tail"] for s in specs)


@pytest.mark.qemu
@pytest.mark.parametrize("case", DW_EDGE, ids=lambda c: c.id)
def test_dsp_depthwise_edge_bitexact_m4(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


# ADD's DSP variant: scales where both input shifts are 0 (equal scales), where one is, and with a
# fused ReLU clamp and a broadcast (not flat) input.
ADD_QUANT = [((0.05, 3), (0.05, -7), (0.09, 2), 0), ((0.3, 20), (0.002, -100), (0.02, 0), 1),
             ((0.011, -128), (0.07, 127), (0.08, -5), 0)]


@pytest.mark.qemu
@pytest.mark.parametrize("q1, q2, qo, act", ADD_QUANT, ids=["equal", "relu", "extreme-zp"])
def test_dsp_add_all_int8_pairs_m4(q1, q2, qo, act, tmp_path) -> None:
    """Every (a, b) pair of int8 values through the DSP ADD on the M4, against TFLM."""
    import numpy as np

    from tests.test_ops_elementwise import _binary_options, _q, tiny_model
    from tinyml.tools.verify import verify_model

    model = tiny_model("ADD", [_q([4096], *q1), _q([4096], *q2)], _q([4096], *qo), _binary_options("ADD", act))
    path = tmp_path / "add.tflite"
    path.write_bytes(model)
    calls = [c for c in build_model(str(path), "mps2-an386").calls if isinstance(c, KernelCall)]
    assert [c.kernel for c in calls] == ["add_s8_dsp"]
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    a, b = a.reshape(16, 4096).astype(np.int8), b.reshape(16, 4096).astype(np.int8)
    report = verify_model(path, "mps2-an386", inputs=[[a[i], b[i]] for i in range(16)], work_dir=tmp_path / "p")
    assert report.ok, report.summary()


@pytest.mark.qemu
def test_dsp_add_broadcast_m4(tmp_path) -> None:
    """A broadcast ADD (strided input, not flat) through the DSP variant on the M4."""
    import numpy as np

    from tests.test_ops_elementwise import _binary_options, _q, tiny_model
    from tinyml.tools.verify import verify_model

    model = tiny_model("ADD", [_q([16, 1], 0.3, 20), _q([1, 16], 0.002, -100)], _q([16, 16], 0.02, 0),
                       _binary_options("ADD", 0))
    path = tmp_path / "add.tflite"
    path.write_bytes(model)
    calls = [c for c in build_model(str(path), "mps2-an386").calls if isinstance(c, KernelCall)]
    assert [(c.kernel, c.spec["flat"]) for c in calls] == [("add_s8_dsp", False)]
    rng = np.random.default_rng(0)
    xs = [[rng.integers(-128, 128, (16, 1), dtype=np.int8), rng.integers(-128, 128, (1, 16), dtype=np.int8)]
          for _ in range(4)]
    report = verify_model(path, "mps2-an386", inputs=xs, work_dir=tmp_path / "p")
    assert report.ok, report.summary()


def test_dsp_add_takes_only_the_params_it_knows(tmp_path) -> None:
    from tests.test_ops_elementwise import _binary_options, _q, tiny_model

    path = tmp_path / "add.tflite"
    path.write_bytes(tiny_model("ADD", [_q([64], 0.05, 3), _q([64], 0.02, -7)], _q([64], 0.09, 2),
                                _binary_options("ADD", 0)))
    graph = load_tflite(str(path))
    portable = lower_op(LowerContext(graph=graph), graph.ops[0])
    ctx = LowerContext(graph=graph, features=("dsp",))
    assert fastest(ctx, portable).template == "add_s8_dsp"
    assert fastest(ctx, replace(portable, params=dict(portable.params, some_new_field=1))).template == "add_s8"
    assert fastest(LowerContext(graph=graph), portable).template == "add_s8"
