"""The DSP and MVE variants of the int16x8 FULLY_CONNECTED and CONV_2D (codegen/families_s16.py,
templates/kernels/tml_s16_dot.j2): bit-exact against TFLM's 16x8 reference kernels under QEMU on mps2-an386
(Cortex-M4: fc_s16_dsp, conv_s16_dsp) and mps3-an547 (Cortex-M55: fc_s16_mve, conv_s16_mve) over
tests/modelgen.py's int16 FC and CONV cases (odd depths and channel counts: the k % 4 and k % 8 tails, odd
row counts; strides, SAME/VALID, dilation, per-tensor and per-channel weights, no bias), with the int64
accumulator the converter writes and, on edited models, the int32 one; DEPTHWISE_CONV_2D on both boards
(dwconv_s16_dsp, dwconv_s16_mve; a depth multiplier of 2 stays portable); which variant the planner picks;
the DSP weight order.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import build, int16_cases
from tests.modelgen import case as make_case
from tests.test_int16_unet import UNET
from tests.test_ops_int16 import NET, _bias_to_int32
from tinyml.codegen.families_s16 import dsp_weight_order
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.variants import options
from tinyml.graph import parse_tflite

I16 = dict(a16=True, io_dtype="int16")
# the int16_cases FC and CONV ones, a 1x1 convolution (read in place), FCs whose depth is a multiple of 8, whose
# rows fill the MVE kernel's groups of 4, and of one row
CASES = [c for c in int16_cases() if c.op in ("FULLY_CONNECTED", "CONV_2D")] + [
    make_case("conv2d", "CONV_2D", (6, 5, 12), kernel=(1, 1), strides=(1, 1), padding="valid", filters=9,
              bias=True, **I16),
    make_case("dense", "FULLY_CONNECTED", (48,), units=7, bias=True, act="relu", **I16),
    make_case("dense", "FULLY_CONNECTED", (33,), units=4, bias=True, **I16),  # whole row groups only
    make_case("dense", "FULLY_CONNECTED", (9,), units=1, bias=True, **I16),  # one row
    make_case("dense", "FULLY_CONNECTED", (3,), units=2, bias=True, **I16),  # fewer taps than a word group
    make_case("conv2d", "CONV_2D", (6, 7, 1), kernel=(1, 3), strides=(1, 1), padding="same", filters=3, bias=True,
              **I16),
]
BOARDS = {"dsp": "mps2-an386", "mve": "mps3-an547"}
# DEPTHWISE_CONV_2D (dwconv_s16_dsp and _mve: depth multiplier 1): the int16_cases one, odd channel counts (a
# lane tail, a lone last channel), stride 2 VALID, dilation, and a depth multiplier of 2 (stays portable)
DW_CASES = [c for c in int16_cases() if c.op == "DEPTHWISE_CONV_2D"][:2] + [
    make_case("depthwise", "DEPTHWISE_CONV_2D", (7, 6, 13), kernel=(3, 3), strides=(2, 2), padding="valid", mult=1,
              act="relu", bias=True, **I16),
    make_case("depthwise", "DEPTHWISE_CONV_2D", (9, 9, 8), kernel=(3, 3), strides=(1, 1), dilation=(2, 2),
              padding="same", mult=1, bias=True, **I16),
]


def _variants(model: bytes, features: tuple[str, ...]) -> list[str]:
    g = parse_tflite(model)
    ctx = LowerContext(graph=g, features=features)
    calls = [lower_op(ctx, op) for op in g.ops]
    return [options(ctx, c)[0].template for c in calls if isinstance(c, KernelCall)
            and c.kernel in ("fc_s16", "conv_s16")]


@pytest.mark.parametrize("features, family", [(("dsp",), "dsp"), (("dsp", "mve"), "mve")])
def test_the_planner_picks_the_family(features, family) -> None:
    for c in CASES[:6]:
        found = _variants(build(c), features)
        assert found and all(v.endswith("_s16_" + family) for v in found), (c.id, found)


def test_dsp_weight_order() -> None:
    assert dsp_weight_order(10).tolist() == [0, 2, 1, 3, 4, 6, 5, 7, 8, 9]


@pytest.mark.qemu
@pytest.mark.parametrize("family", ["dsp", "mve"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_int16x8_fast_qemu(case, family, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board=BOARDS[family], samples=2)


@pytest.mark.qemu
@pytest.mark.parametrize("family", ["dsp", "mve"])
@pytest.mark.parametrize("case", DW_CASES, ids=lambda c: c.id)
def test_int16x8_depthwise_qemu(case, family, tmp_path) -> None:
    g = parse_tflite(build(case))
    ctx = LowerContext(graph=g, features=("dsp", "mve") if family == "mve" else ("dsp",))
    found = [options(ctx, c)[0].template for c in (lower_op(ctx, op) for op in g.ops) if isinstance(c, KernelCall)]
    assert found == [f"dwconv_s16_{family}" if g.ops[0].options.get("depth_multiplier", 1) == 1 else "dwconv_s16"]
    assert_bitexact(build(case), tmp_path, board=BOARDS[family], samples=2)


@pytest.mark.qemu
@pytest.mark.parametrize("family", ["dsp", "mve"])
@pytest.mark.parametrize("case", [c for c in CASES if "nobias" not in c.id][1::4], ids=lambda c: c.id)
def test_int16x8_fast_int32_accumulator_qemu(case, family, tmp_path) -> None:
    model = _bias_to_int32(build(case))
    assert np.all([not v.endswith("_s16") for v in _variants(model, ("dsp", "mve"))])
    assert_bitexact(model, tmp_path, board=BOARDS[family], samples=2)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.parametrize("case", [NET, UNET], ids=lambda c: c.id)
def test_int16_nets_mve_qemu(case, tmp_path) -> None:
    """The 1-D conv net and the U-Net (CONV_2D over 1xW, output channel counts that are multiples of 4: the
    MVE kernel's four-row loop and no single rows) on mps3-an547 (mps2-an386: their own test files)."""
    assert_bitexact(build(case), tmp_path, board="mps3-an547", samples=2)
