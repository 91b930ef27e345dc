"""int16 SOFTMAX, LOGISTIC, TANH and MEAN (codegen/ops/int16_nonlinear.py), bit-exact with TFLM's 16-bit kernels.

On the host (gcc with ASan/UBSan), on crafted models, several operators each: LOGISTIC and TANH on every int16
value, at power-of-two input scales (TFLM's special case: 2^-12, and 2^-11 for TANH), a scale within CheckedLog2's
tolerance of 2^-12, and general scales from 1e-9 (right shift 31) to 2.5 (multiplier near 32767); SOFTMAX over
rows of 1 to 1000 values, 1-D to 3-D, betas 0.5 to 2 and input scales from 1e-5 to 1e-2, on random rows, rows
of one repeated value and rows of the extremes; MEAN over 1-D to 4-D inputs, negative and repeated axes,
with and without keep_dims, equal and different scales.  Under QEMU on mps2-an386: three of the converter's
int16x8 cases of tests/modelgen.py (int16_cases; test_ops_int16.py runs them all on the host) and LOGISTIC and
TANH at power-of-two and general scales, in place.  The fixed tables, and the refusals of what TFLM asserts or
would overflow (one line; exit 2 from the CLI).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.modelgen import build, int16_cases
from tests.tflite_edit import craft_model, edit_model
from tinyml.cli import main as cli_main
from tinyml.codegen.ops.int16_nonlinear import int16_lut, softmax_luts
from tinyml.errors import ModelError
from tinyml.graph.validate import sigmoid16_input
from tinyml.tools.verify import verify_model

REPO = Path(__file__).resolve().parent.parent

NONLINEAR = ("SOFTMAX", "LOGISTIC", "TANH", "MEAN")
CASES = [c for c in int16_cases() if c.op in NONLINEAR]
OUT_SCALE = 2.0 ** -15


def _options(model: bytes, kind: str, **values: Any) -> bytes:
    """``model`` with every operator's builtin options of type ``kind`` (e.g. "Softmax") set to ``values``."""
    def edit(m: Any, s: Any) -> None:
        for op in m.subgraphs[0].operators:
            op.builtinOptionsType = getattr(s.BuiltinOptions, f"{kind}Options")
            op.builtinOptions = getattr(s, f"{kind}OptionsT")()
            for k, v in values.items():
                setattr(op.builtinOptions, k, v)

    return edit_model(model, edit)


def _unary_model(kind: str, shape: list[int], scales: list[float], out_scale: float) -> bytes:
    """One ``kind`` operator per input scale, each from its own int16 input to its own int16 output."""
    tensors = []
    for k, s in enumerate(scales):
        tensors += [dict(name=f"x{k}", shape=shape, type="INT16", scale=[s], zero_point=[0]),
                    dict(name=f"y{k}", shape=shape, type="INT16", scale=[out_scale], zero_point=[0])]
    n = len(scales)
    return craft_model(tensors, [(kind, [2 * k], [2 * k + 1]) for k in range(n)],
                       inputs=[2 * k for k in range(n)], outputs=[2 * k + 1 for k in range(n)])


def _verify(model: bytes, tmp_path: Path, inputs: list[list[np.ndarray]]) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    report = verify_model(path, "host", work_dir=tmp_path / "proj", inputs=inputs)
    assert report.ok, report.summary()


# ---------------------------------------------------------------------------
# LOGISTIC and TANH: every int16 value


SIGMOID_SCALES = {
    "pot-2^-12": 2.0 ** -12, "pot-2^-11": 2.0 ** -11, "2^-10": 2.0 ** -10, "near-2^-12": 2.0 ** -12 * 1.0004,
    "1e-3": 1e-3, "3e-4": 3e-4, "1e-9": 1e-9, "2.5": 2.5,
}


def test_the_power_of_two_cases_are_tflm_s() -> None:
    """TFLM's special case: 3 << shift for a power-of-two input scale of 2^-12 (TANH: also 2^-11), a scale
    within CheckedLog2's tolerance counting as one; the general multiplier otherwise."""
    assert sigmoid16_input("LOGISTIC", 2.0 ** -12) == (3, 0) == sigmoid16_input("LOGISTIC", 2.0 ** -12 * 1.0004)
    assert sigmoid16_input("TANH", 2.0 ** -11) == (6, 0)
    assert sigmoid16_input("LOGISTIC", 2.0 ** -11) == (24576, 12)  # 2^-11 x 12288 = 6, doubled 12 times
    assert sigmoid16_input("TANH", 1e-9)[1] == 31 and sigmoid16_input("TANH", 2.5) == (30720, 0)


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_sigmoid_on_every_int16_value(kind: str, tmp_path: Path) -> None:
    scales = list(SIGMOID_SCALES.values())
    every = np.arange(-32768, 32768, dtype=np.int16).reshape(1, 65536)
    _verify(_unary_model(kind, [1, 65536], scales, OUT_SCALE), tmp_path, [[every] * len(scales)])


# ---------------------------------------------------------------------------
# SOFTMAX


SOFTMAX_SHAPES = ([1, 1], [1, 10], [4, 37], [2, 3, 65], [1, 1000])
SOFTMAX_SCALES = (1e-5, 1e-4, 1e-3, 1e-2)
SOFTMAX_BETAS = (1.0, 0.5, 2.0)


def _softmax_rows(shape: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Random values, rows of one value, and rows of the extremes (one row in three at 32767)."""
    random = rng.integers(-32768, 32768, size=shape).astype(np.int16)
    same = np.full(shape, -1234, np.int16)
    extremes = np.full(shape, -32768, np.int16)
    extremes.reshape(-1)[::3] = 32767
    return [random, same, extremes]


def test_softmax(tmp_path: Path) -> None:
    """One model: each shape at each input scale (rows of 1 to 1000 values, 1-D to 3-D), betas 1, 0.5 and 2 in
    turn."""
    cases = [(shape, s) for shape in SOFTMAX_SHAPES for s in SOFTMAX_SCALES]
    tensors: list[dict[str, Any]] = []
    for k, (shape, s) in enumerate(cases):
        tensors += [dict(name=f"x{k}", shape=shape, type="INT16", scale=[s], zero_point=[0]),
                    dict(name=f"y{k}", shape=shape, type="INT16", scale=[1.0 / 32768.0], zero_point=[0])]
    model = craft_model(tensors, [("SOFTMAX", [2 * k], [2 * k + 1]) for k in range(len(cases))],
                        inputs=[2 * k for k in range(len(cases))], outputs=[2 * k + 1 for k in range(len(cases))])

    def betas(m: Any, s: Any) -> None:
        for k, op in enumerate(m.subgraphs[0].operators):
            op.builtinOptionsType = s.BuiltinOptions.SoftmaxOptions
            op.builtinOptions = s.SoftmaxOptionsT()
            op.builtinOptions.beta = SOFTMAX_BETAS[k % len(SOFTMAX_BETAS)]

    rng = np.random.default_rng(17)
    rows = [_softmax_rows(shape, rng) for shape, _ in cases]
    _verify(edit_model(model, betas), tmp_path, [list(sample) for sample in zip(*rows)])


def test_softmax_tables() -> None:
    """SoftmaxPrepare's tables: exp(0) saturates at 32767, exp(-10) is 2 (of 32768), 1/(1 + x) falls from
    32767 to 16384; the same tables with the host C library's expf (which TFLM's gen_lut calls)."""
    exp_lut, recip_lut = softmax_luts()
    assert exp_lut.shape == recip_lut.shape == (513,)
    assert exp_lut[0] == 2 and exp_lut[-1] == 32767 and np.all(np.diff(exp_lut.astype(int)) >= 0)
    assert recip_lut[0] == 32767 and recip_lut[-1] == 16384 and np.all(np.diff(recip_lut.astype(int)) <= 0)
    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no C math library to compare with")
    expf = ctypes.CDLL(libm).expf
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    assert np.array_equal(int16_lut(lambda x: np.float32(expf(float(x))), -10.0, 0.0), exp_lut)


def test_sigmoid_table_is_sigmoid() -> None:
    """TFLM's sigmoid table, taken as data: sigmoid(i / 24) in 0.16, each entry the rounded value or one
    step from it."""
    text = (REPO / "templates" / "kernels" / "tml_sigmoid_s16.c.j2").read_text()
    body = text[text.index("tml_sigmoid_table_u16[256] = {"):]
    SIGMOID_TABLE_U16 = [int(v) for v in re.findall(r"\d+", body[body.index("{"):body.index("}")])]
    rounded = [math.floor(65536.0 / (1.0 + math.exp(-i / 24.0)) + 0.5) for i in range(256)]
    assert len(SIGMOID_TABLE_U16) == 256 and SIGMOID_TABLE_U16[0] == 32768 and SIGMOID_TABLE_U16[-1] == 65535
    assert all(abs(t - r) <= 1 for t, r in zip(SIGMOID_TABLE_U16, rounded))


# ---------------------------------------------------------------------------
# MEAN


MEANS = [  # input shape, axes, keep_dims, input scale, output scale
    ([1, 5, 7, 3], [1, 2], True, 1e-3, 1e-3),
    ([1, 5, 7, 3], [2, 1], False, 1e-3, 7e-4),
    ([4, 9], [-1], False, 2e-3, 1e-3),
    ([2, 3, 4, 5], [0, 3], True, 1e-3, 3e-4),
    ([6, 1, 5], [1], False, 1e-3, 1e-3),
    ([3, 4, 5], [-3, 2, 0, 2], True, 1e-3, 5e-4),
    ([37], [0], True, 1e-3, 4e-3),
    ([40000, 2], [-1], False, 1e-3, 1e-3),  # 80,000 values: each output sums 2 of them
]


def test_mean(tmp_path: Path) -> None:
    tensors: list[dict[str, Any]] = []
    ops = []
    for shape, axes, keep, s_in, s_out in MEANS:
        reduced = {a % len(shape) for a in axes}
        out = [1 if i in reduced else d for i, d in enumerate(shape)] if keep else \
            [d for i, d in enumerate(shape) if i not in reduced]
        k = len(tensors)
        tensors += [dict(name=f"x{k}", shape=shape, type="INT16", scale=[s_in], zero_point=[0]),
                    dict(name=f"axis{k}", shape=[len(axes)], type="INT32", data=np.array(axes, np.int32)),
                    dict(name=f"y{k}", shape=out, type="INT16", scale=[s_out], zero_point=[0])]
        ops.append(("MEAN", [k, k + 1], [k + 2]))
    model = craft_model(tensors, ops, inputs=[o[1][0] for o in ops], outputs=[o[2][0] for o in ops])

    def keep_dims(m: Any, s: Any) -> None:
        for op, (_, _, keep, _, _) in zip(m.subgraphs[0].operators, MEANS):
            op.builtinOptionsType = s.BuiltinOptions.ReducerOptions
            op.builtinOptions = s.ReducerOptionsT()
            op.builtinOptions.keepDims = keep

    assert_bitexact(edit_model(model, keep_dims), tmp_path, board="host", samples=3)


# ---------------------------------------------------------------------------
# the converter's cases under QEMU (the host runs them in test_ops_int16.py)


@pytest.mark.qemu
@pytest.mark.parametrize("case", [c for c in CASES if c.id.startswith(("softmax-4x4x6", "tanh", "reduce_mean"))],
                         ids=lambda c: c.id)
def test_int16_nonlinear_cortex_m4(case, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


@pytest.mark.qemu
def test_sigmoid_cortex_m4(tmp_path: Path) -> None:
    """LOGISTIC at a power-of-two input scale; TANH at one, then at a general one (2^-15) on its output, which
    the planner may overwrite in place."""
    def t(name: str, scale: float) -> dict[str, Any]:
        return dict(name=name, shape=[1, 1024], type="INT16", scale=[scale], zero_point=[0])

    tensors = [t("x0", 2.0 ** -12), t("y0", OUT_SCALE), t("x1", 2.0 ** -11), t("t1", OUT_SCALE), t("y1", OUT_SCALE)]
    model = craft_model(tensors, [("LOGISTIC", [0], [1]), ("TANH", [2], [3]), ("TANH", [3], [4])],
                        inputs=[0, 2], outputs=[1, 4])
    assert_bitexact(model, tmp_path, board="mps2-an386", samples=2)


# ---------------------------------------------------------------------------
# refusals: one line each, exit 2 from the CLI


def test_softmax_output_scale_must_be_1_over_32768(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _options(_unary_model("SOFTMAX", [1, 10], [1e-3], 1.0 / 65536.0), "Softmax", beta=1.0)
    msg = refusal(model, ModelError)
    assert "operator 0 (SOFTMAX): output tensor 1 ('y0') has scale 1.52588e-05; allowed is 1/32768" in msg
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert cli_main(["compile", str(path), "--board", "host", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "allowed is 1/32768" in err[0] and "Traceback" not in err[0]


def test_softmax_output_scale_within_tflm_s_tolerance_is_accepted(tmp_path: Path) -> None:
    model = _options(_unary_model("SOFTMAX", [2, 7], [1e-3], 1.0005 / 32768.0), "Softmax", beta=1.0)
    assert_bitexact(model, tmp_path, board="host", samples=2)


def test_softmax_row_whose_sum_overflows_int32_is_refused() -> None:
    model = _options(_unary_model("SOFTMAX", [1, 70000], [1e-3], 1.0 / 32768.0), "Softmax", beta=1.0)
    assert "rows of 70000 values, whose sum of exponentials (each up to 32767) can overflow TFLM's int32 sum; " \
           "allowed are at most 65538" in refusal(model, ModelError)


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_sigmoid_output_scale_must_be_2_to_the_minus_15(kind: str) -> None:
    msg = refusal(_unary_model(kind, [1, 8], [1e-3], 2.0 ** -16), ModelError)
    assert f"has scale 1.52588e-05; allowed is 2^-15 (1/32768, as TFLM's int16 {kind} requires)" in msg


@pytest.mark.parametrize("scale, multiplier", [(4.0, 49152), (1e-14, 0)])
def test_sigmoid_input_multiplier_out_of_range_is_refused(scale: float, multiplier: int) -> None:
    msg = refusal(_unary_model("LOGISTIC", [1, 8], [scale], OUT_SCALE), ModelError)
    assert f"which gives TFLM's int16 LOGISTIC an input multiplier of {multiplier}; allowed is 1 to 32767" in msg


def test_mean_whose_sum_overflows_int32_is_refused() -> None:
    """90,000 values into one output: TFLM's int32 sum can overflow."""
    tensors = [dict(name="x", shape=[1, 300, 300], type="INT16", scale=[1e-3], zero_point=[0]),
               dict(name="axis", shape=[2], type="INT32", data=np.array([1, 2], np.int32)),
               dict(name="y", shape=[1], type="INT16", scale=[1e-3], zero_point=[0])]
    model = craft_model(tensors, [("MEAN", [0, 1], [2])], inputs=[0], outputs=[2])
    assert "on an accumulator of up to 2949120000, which overflows int32" in refusal(model, ModelError)
