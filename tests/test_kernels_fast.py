"""Kernel families (DSP; MVE in test_kernels_mve.py): choice, fallbacks, bit-exactness against TFLM on QEMU."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, case, op_cases, zoo_cases
from tests.tflite_edit import edit_model
from tinyml.boards import load_board
from tinyml.codegen.families import conv_tap_order, dsp_dwconv_fold, family, interior_pairs
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.qmath import multiply_by_quantized_multiplier
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


# The DSP convolution's im2col paths the sweep above does not reach: in_c not a multiple of 4 with more than
# 128 taps (every pixel through the tap-order table of codegen/families.py, conv_tap_order), and a kernel
# row of more than 16 words (the unrolled copy's loop), each with padded borders and an odd channel count.
CONV_IM2COL = [
    case("conv2d", "CONV_2D", (10, 9, 6), kernel=(5, 5), strides=(2, 2), padding="same", filters=5, act="relu",
         bias=True),
    case("conv2d", "CONV_2D", (7, 6, 24), kernel=(3, 3), strides=(1, 1), padding="same", filters=7, act="none",
         bias=True),
]


@pytest.mark.qemu
@pytest.mark.parametrize("case", CONV_IM2COL, ids=lambda c: c.id)
def test_dsp_conv_im2col_paths_m4(case, tmp_path) -> None:
    calls = [c for c in build_model(_write(tmp_path, case), "mps2-an386").calls if isinstance(c, KernelCall)]
    assert [c.kernel for c in calls if c.op_kind == "CONV_2D"] == ["conv_s8_dsp"]
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


# The DSP im2col's path for two neighbours of a row both inside the image (spec.pairs; in_c not a multiple of
# 4): stride 1 with rows of odd width (pairs across rows take the per-pixel path), MobileNet's first layer
# shape (stride 2, SAME padding only after the last row and column), two channels into 5 (the channel tail).
CONV_PAIRS = [
    case("conv2d", "CONV_2D", (12, 11, 3), kernel=(3, 3), strides=(1, 1), padding="valid", filters=8, act="relu",
         bias=True),
    case("conv2d", "CONV_2D", (17, 16, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=8,
         act="relu6", bias=True),
    case("conv2d", "CONV_2D", (9, 10, 2), kernel=(3, 2), strides=(1, 2), padding="valid", filters=5,
         act="none", bias=True),
]


@pytest.mark.qemu
@pytest.mark.parametrize("case", CONV_PAIRS, ids=lambda c: c.id)
def test_dsp_conv_interior_pairs_m4(case, tmp_path) -> None:
    (spec,) = [c.spec for c in build_model(_write(tmp_path, case), "mps2-an386").calls
               if isinstance(c, KernelCall) and c.kernel == "conv_s8_dsp"]
    assert spec.get("pairs"), spec
    # MobileNet's first layer shape: pixel 0's last taps of each row from pixel 1's words (spec.lend)
    assert bool(spec.get("lend")) == (case.id == CONV_PAIRS[1].id), spec
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


def test_dsp_conv_interior_pairs_share() -> None:
    p = dict(out_h=48, out_w=48, stride_h=2, stride_w=2, pad_h=0, pad_w=0, k_h=3, k_w=3, in_h=96, in_w=96)
    assert interior_pairs(p) == pytest.approx(47 / 48 * 23 / 24)  # MobileNetV1-0.25's first layer: the last row and column
    assert interior_pairs(dict(p, out_w=5, in_w=10, k_w=4, pad_w=1)) < 0.5  # DS-CNN's: mostly borders


# The DSP convolution's exact requantization (a tiny input scale: the kernel's accumulators are not doubled
# and its C requantization reads the per-quad multipliers and shifts), with and without a channel tail.
CONV_EXACT = [
    case("conv2d", "CONV_2D", (6, 7, 8), kernel=(1, 1), strides=(1, 1), padding="valid", filters=8, act="none",
         bias=True, in_scale=1e-7),
    case("conv2d", "CONV_2D", (7, 6, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=6, act="relu",
         bias=True, in_scale=1e-7),
]


@pytest.mark.qemu
@pytest.mark.parametrize("case", CONV_EXACT, ids=lambda c: c.id)
def test_dsp_conv_exact_requantization_m4(case, tmp_path) -> None:
    calls = [c for c in build_model(_write(tmp_path, case), "mps2-an386").calls if isinstance(c, KernelCall)]
    assert [c.spec["rq"] for c in calls if c.kernel == "conv_s8_dsp"] == ["exact"]
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


def test_dsp_conv_tap_order() -> None:
    """Each kernel row's whole words first, then the rows' last bytes; the identity for in_c % 4 == 0."""
    assert list(conv_tap_order(3, 3, 3)) == [0, 1, 2, 3, 4, 5, 6, 7, 24, 8, 9, 10, 11, 12, 13, 14, 15, 25,
                                            16, 17, 18, 19, 20, 21, 22, 23, 26]
    assert list(conv_tap_order(3, 3, 8)) == list(range(72))
    for k_h, k_w, in_c in ((10, 4, 1), (5, 5, 6), (1, 1, 3), (3, 1, 1)):
        order = conv_tap_order(k_h, k_w, in_c)
        assert sorted(order) == list(range(k_h * k_w * in_c)), (k_h, k_w, in_c)


def _packed_requant(acc: int, m: int, rs: int, o: int) -> int:
    """conv_s8_dsp.c.j2's packed requantization step by step on int32 (the weights and bias doubled, so the
    asm sees 2 * acc): SMMLAR t, a, m, (1 + 2o) << rs; a = t + (a >> 31); a >>= rs; SSAT #8 of a >> 1."""
    a = 2 * acc
    c = (1 + 2 * o) << rs
    t = c + ((a * m + (1 << 31)) >> 32)  # SMMLAR: (c << 32) + a * m, rounded, high word
    v = t + (a >> 31)
    assert -(1 << 31) <= a < 1 << 31 and -(1 << 31) <= t < 1 << 31 and -(1 << 31) <= v < 1 << 31
    return max(-128, min(127, (v >> rs) >> 1))


def test_dsp_conv_packed_requantization_equals_tflm() -> None:
    """The packed stream's requantization (codegen/families.py: "fast" only, so m >= 0, |acc| < 2^30 and
    SRDHM never saturates: m is never INT32_MIN; rs <= 21) against MultiplyByQuantizedMultiplier plus the
    offset, clamped: every rs, the rounding ties of both roundings on both signs, accumulators whose high
    product rounds to 0 from below, the extremes of acc and m, and random ones."""
    rng = np.random.default_rng(5)
    mults = [0, 1, 1 << 30, (1 << 30) + 1, 1518500250, (1 << 31) - 1]
    mults += [int(v) for v in rng.integers(1 << 30, 1 << 31, 4)]
    for rs in range(22):
        accs = {0, 1, -1, (1 << 30) - 1, 1 - (1 << 30)}
        for k in range(-3, 4):  # with m = 2^30, y = floor((acc + 1) / 2): ties at y = (2j + 1) * 2^rs
            tie = (2 * k + 1) << rs
            accs |= {2 * tie + d for d in range(-3, 3)} | {(k << (rs + 1)) + d for d in range(-2, 3)}
        accs |= {int(v) for v in rng.integers(-(1 << 30) + 1, 1 << 30, 40)}
        accs |= {int(v) for v in rng.integers(-(4 << rs), 4 << rs, 40)}
        for m in mults:
            for o in (-128, -5, 0, 127):
                for acc in accs:
                    want = max(-128, min(127, multiply_by_quantized_multiplier(acc, m, -rs - 1) + o))
                    assert _packed_requant(acc, m, rs, o) == want, (acc, m, rs, o)


def _output_requantized(model: bytes, scale: float, zero_point: int) -> bytes:
    """The model's output (a convolution's, with its fused activation) at ``scale`` times its scale and
    zero point ``zero_point``: the activation's clamp then falls inside the int8 range."""
    def edit(m: Any, s: Any) -> None:
        q = m.subgraphs[0].tensors[m.subgraphs[0].outputs[0]].quantization
        q.scale, q.zeroPoint = [float(q.scale[0]) * scale], [zero_point]

    return edit_model(model, edit)


# The packed stream's clamp (act_min / act_max inside the int8 range, which calibrated models rarely have):
# relu6 with the output scale quadrupled (6 below 127), relu with zero point -50 (0 above -128), both.
CONV_CLAMP = [
    (case("conv2d", "CONV_2D", (6, 7, 8), kernel=(1, 1), strides=(1, 1), padding="valid", filters=8, act="relu6",
          bias=True), 4.0, -128, (False, True)),
    (case("conv2d", "CONV_2D", (7, 6, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=8, act="relu",
          bias=True), 1.0, -50, (True, False)),
    (case("conv2d", "CONV_2D", (5, 6, 16), kernel=(1, 1), strides=(1, 1), padding="same", filters=12,
          act="relu6", bias=True), 3.0, -20, (True, True)),
]


@pytest.mark.qemu
@pytest.mark.parametrize("c, scale, zero_point, clamp", CONV_CLAMP, ids=lambda v: getattr(v, "id", None))
def test_dsp_conv_packed_clamp_m4(c, scale, zero_point, clamp, tmp_path) -> None:
    model = _output_requantized(build(c), scale, zero_point)
    path = tmp_path / "clamp.tflite"
    path.write_bytes(model)
    (spec,) = [k.spec for k in build_model(str(path), "mps2-an386").calls
               if isinstance(k, KernelCall) and k.kernel == "conv_s8_dsp"]
    assert spec.get("packed") and (spec["lo"], spec["hi"]) == clamp, spec
    assert_bitexact(model, tmp_path, board="mps2-an386", samples=2)


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


def _tflm_requant(x: int, m: int, shift: int, output_offset: int) -> int:
    """TFLM's MultiplyByQuantizedMultiplier (shift <= -1) plus the output offset, saturated to int8."""
    ab = x * m
    t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    v = abs(t) >> 31 if t >= 0 else -(abs(t) >> 31)  # SaturatingRoundingDoublingHighMul
    mask = (1 << -shift) - 1
    r = (v >> -shift) + int((v & mask) > (mask >> 1) + int(v < 0))  # RoundingDivideByPOT
    return max(-128, min(127, r + output_offset))


def test_dsp_depthwise_folded_requantization() -> None:
    """The depthwise DSP kernel's requantization (dwconv_s8_dsp.c.j2: SMMLAR of the doubled accumulator with
    the folded constant, the accumulator's sign, one shift, SSAT) equals TFLM's over random and tied values,
    and no folded constant is made where y + K could leave int32."""
    import numpy as np

    rng = np.random.default_rng(5)
    xs = list(range(-3000, 3001)) + [int(v) for v in rng.integers(-(2 ** 30) + 1, 2 ** 30, 3000)]
    for m, shift, oo in [(2 ** 30, -1, 0), (1518500250, -3, -128), (2 ** 31 - 1, -9, 127), (1272195584, -7, 5),
                         (1073741825, -12, -37), (1900000000, -20, 127)]:
        k = int(dsp_dwconv_fold(np.array([shift]), oo)[0])
        for x in xs:
            acc = 2 * x
            y = ((k << 32) + acc * m + (1 << 31)) >> 32  # SMMLAR(acc, m, k)
            assert -(2 ** 31) < y < 2 ** 31
            got = max(-128, min(127, (y + (-1 if acc < 0 else 0)) >> -shift))
            assert got == _tflm_requant(x, m, shift, oo), (x, m, shift, oo)
    assert dsp_dwconv_fold(np.array([-1, -24]), 127) is None  # 2^23 * 255 >= 2^30
    assert dsp_dwconv_fold(np.array([-1, -23]), 127) is not None


@pytest.mark.qemu
@pytest.mark.parametrize("case", DW_EDGE, ids=lambda c: c.id)
def test_dsp_depthwise_edge_bitexact_m4(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


# ADD's DSP variant: scales where both input shifts are 0 (equal scales), where one is, and with a
# fused ReLU clamp and a broadcast (not flat) input.
ADD_QUANT = [((0.05, 3), (0.05, -7), (0.09, 2), 0), ((0.3, 20), (0.002, -100), (0.02, 0), 1),
             ((0.011, -128), (0.07, 127), (0.08, -5), 0)]


def _add_all_pairs(q1, q2, qo, act, board: str, kernel: str, tmp_path) -> None:
    """Every (a, b) pair of int8 values through ADD's fast kernel on ``board``, against TFLM."""
    import numpy as np

    from tests.test_ops_elementwise import _binary_options, _q, tiny_model
    from tinyml.tools.verify import verify_model

    model = tiny_model("ADD", [_q([4096], *q1), _q([4096], *q2)], _q([4096], *qo), _binary_options("ADD", act))
    path = tmp_path / "add.tflite"
    path.write_bytes(model)
    calls = [c for c in build_model(str(path), board).calls if isinstance(c, KernelCall)]
    assert [c.kernel for c in calls] == [kernel]
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")
    a, b = a.reshape(16, 4096).astype(np.int8), b.reshape(16, 4096).astype(np.int8)
    report = verify_model(path, board, inputs=[[a[i], b[i]] for i in range(16)], work_dir=tmp_path / "p")
    assert report.ok, report.summary()


@pytest.mark.qemu
@pytest.mark.parametrize("q1, q2, qo, act", ADD_QUANT, ids=["equal", "relu", "extreme-zp"])
def test_dsp_add_all_int8_pairs_m4(q1, q2, qo, act, tmp_path) -> None:
    _add_all_pairs(q1, q2, qo, act, "mps2-an386", "add_s8_dsp", tmp_path)


@pytest.mark.qemu
@pytest.mark.parametrize("q1, q2, qo, act", ADD_QUANT, ids=["equal", "relu", "extreme-zp"])
def test_mve_add_all_int8_pairs_m55(q1, q2, qo, act, tmp_path) -> None:
    _add_all_pairs(q1, q2, qo, act, "mps3-an547", "add_s8_mve", tmp_path)


@pytest.mark.qemu
@pytest.mark.parametrize("board, kernel, shapes, spec", [
    ("mps2-an386", "add_s8_dsp", ([16, 1], [1, 16], [16, 16]), dict(flat=False)),
    ("mps3-an547", "add_s8_mve", ([16, 1], [1, 16], [16, 16]), dict(bx=True, by=False)),
    ("mps3-an547", "add_s8_mve", ([3, 1, 7], [3, 5, 1], [3, 5, 7]), dict(bx=False, by=True)),
    ("mps3-an547", "add_s8_mve", ([1], [2, 9], [2, 9]), dict(bx=True, by=False)),
], ids=["m4", "m55-x", "m55-y", "m55-scalar"])
def test_fast_add_broadcast(board, kernel, shapes, spec, tmp_path) -> None:
    """A broadcast ADD (an input broadcast along the innermost dimension, or a scalar) through the DSP
    variant on the M4 and the MVE one on the M55."""
    import numpy as np

    from tests.test_ops_elementwise import _binary_options, _q, tiny_model
    from tinyml.tools.verify import verify_model

    sa, sb, so = shapes
    model = tiny_model("ADD", [_q(sa, 0.3, 20), _q(sb, 0.002, -100)], _q(so, 0.02, 0), _binary_options("ADD", 0))
    path = tmp_path / "add.tflite"
    path.write_bytes(model)
    calls = [c for c in build_model(str(path), board).calls if isinstance(c, KernelCall)]
    assert [(c.kernel, {k: c.spec[k] for k in spec}) for c in calls] == [(kernel, spec)]
    rng = np.random.default_rng(0)
    xs = [[rng.integers(-128, 128, sa, dtype=np.int8), rng.integers(-128, 128, sb, dtype=np.int8)]
          for _ in range(4)]
    report = verify_model(path, board, inputs=xs, work_dir=tmp_path / "p")
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


# The fast ADD kernels' table form: their output rescaling (SMMLAR and SSAT in add_s8_dsp.c.j2, VQRDMLAH or
# VQRDMLASH, a shift and a narrowing store in add_s8_mve.c.j2), with the rounding fix-up and the clamps only
# where the specialization asks for them, emulated here over every pair of int8 inputs against TFLM's
# MultiplyByQuantizedMultiplier (SUB as well).
ADD_TAIL_QUANT = [((0.05, 3), (0.05, -7), (0.09, 2), 0), ((0.3, 20), (0.002, -100), (0.02, 0), 1),
                  ((0.011, -128), (0.07, 127), (0.08, -5), 3), ((0.02, -128), (0.02, -128), (0.03, -128), 1)]


def _add_call(tmp_path, op: str, shape: list[int], q1, q2, qo, act: int):
    from tests.test_ops_arith import _sub_options
    from tests.test_ops_elementwise import _binary_options, _q, tiny_model

    options = _sub_options(act) if op == "SUB" else _binary_options("ADD", act)
    path = tmp_path / f"{op.lower()}.tflite"
    path.write_bytes(tiny_model(op, [_q(shape, *q1), _q(shape, *q2)], _q(shape, *qo), options))
    return path


def _emulate_add(call: KernelCall, doubled: bool, saturate: bool):
    """The kernel's outputs for every pair of inputs (rows: the first input's value + 128) as int8."""
    import numpy as np

    p, spec, e = call.params, call.spec, call.spec["e"]
    tables = {c.name: np.asarray(c.values, dtype=np.int64) for c in call.consts}
    t1, t2 = (tables[a.name] if doubled else np.roll(tables[a.name], -128) for a in call.args[3:])
    d = t1[:, None] - t2[None, :] if spec.get("sub") else t1[:, None] + t2[None, :]
    d = d if doubled else 2 * d  # SMMLAR takes the doubled sum, VQRDMLAH doubles
    c = (1 << (e - 1)) + p["out_offset"] * (1 << e)
    v = ((d * p["out_mult"] + (1 << 31)) >> 32) + c + (np.where(d < 0, -1, 0) if spec["fix"] else 0)
    assert np.abs(v).max() < 2 ** 31
    r = np.clip(v >> e, -128, 127) if saturate else v >> e  # SSAT; the MVE shift saturates nothing
    r = np.maximum(r, p["act_min"]) if spec["lo"] else r
    r = np.minimum(r, p["act_max"]) if spec["hi"] else r
    return (r + 128) % 256 - 128  # the byte stored


@pytest.mark.parametrize("op", ["ADD", "SUB"])
@pytest.mark.parametrize("q1, q2, qo, act", ADD_TAIL_QUANT + [((0.013, 9), (0.1, -77), (0.05, 100), 1),
                                                             ((0.5, 0), (0.25, 0), (0.6, -1), 0)],
                         ids=["equal", "relu", "relu6", "same-tables", "relu-far", "powers"])
def test_fast_add_table_arithmetic(op, q1, q2, qo, act, tmp_path) -> None:
    import numpy as np

    from tinyml.codegen.families import dsp_add, mve_add
    from tinyml.codegen.qmath import multiply_by_quantized_multiplier

    path = _add_call(tmp_path, op, [4], q1, q2, qo, act)
    graph = load_tflite(str(path))
    portable = lower_op(LowerContext(graph=graph), graph.ops[0])
    p = portable.params
    # one table when both inputs rescale alike (the same scale and zero point), else one each
    assert len(portable.consts) == (1 if q1 == q2 else 2)
    t1, t2 = (np.asarray(next(c.values for c in portable.consts if c.name == a.name), dtype=np.int64)
              for a in portable.args[3:])
    s = t1[:, None] - t2[None, :] if op == "SUB" else t1[:, None] + t2[None, :]
    want = np.asarray([[multiply_by_quantized_multiplier(int(v), p["out_mult"], p["out_shift"]) for v in row]
                       for row in s]) + p["out_offset"]
    want = np.clip(want, p["act_min"], p["act_max"])
    for features, specialize, kernel in ((("dsp",), dsp_add, "add_s8_dsp"), (("dsp", "mve"), mve_add, "add_s8_mve")):
        ctx = LowerContext(graph=graph, features=features)
        assert fastest(ctx, portable).template == kernel
        call = specialize(ctx, portable)
        doubled = kernel == "add_s8_dsp"  # the DSP kernel's tables hold doubled values, indexed by x + 128
        assert np.array_equal(_emulate_add(call, doubled, saturate=doubled), want), call.spec


@pytest.mark.qemu
@pytest.mark.parametrize("board, kernel", [("mps2-an386", "add_s8_dsp"), ("mps3-an547", "add_s8_mve"),
                                           ("mps2-an385", "add_s8")])
@pytest.mark.parametrize("op, shape, quant", [("ADD", [1, 3, 5, 7], ADD_TAIL_QUANT[1]),
                                              ("SUB", [2, 39], ADD_TAIL_QUANT[2]),
                                              ("ADD", [1, 1, 1, 3], ADD_TAIL_QUANT[3]),
                                              ("SUB", [5, 1, 16], ADD_TAIL_QUANT[0])],
                         ids=["add-105", "sub-78-relu6", "add-3-same", "sub-80"])
def test_fast_add_tails_in_place(op, shape, quant, board, kernel, tmp_path) -> None:
    """Lengths that are not a multiple of 4, SUB, clamps and one shared table, in place over the first input
    (a one-op model's output takes its memory), on the M4 (DSP), the M55 (MVE) and through the portable
    kernel's tables on the M3."""
    import numpy as np

    from tinyml.tools.verify import verify_model

    path = _add_call(tmp_path, op, shape, *quant)
    built = build_model(str(path), board)
    assert [c.kernel for c in built.calls if isinstance(c, KernelCall)] == [kernel]
    assert built.plan.offset(built.graph.outputs[0]) in {built.plan.offset(t) for t in built.graph.inputs}
    rng = np.random.default_rng(1)
    xs = [[rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(2)] for _ in range(3)]
    report = verify_model(path, board, inputs=xs, work_dir=tmp_path / "p")
    assert report.ok, report.summary()
