"""int16x8 models (16-bit activations, 8-bit weights) with the portable int16 kernels (codegen/ops/int16.py).

Bit-exact against TFLM's 16x8 reference kernels over tests/modelgen.py's int16_cases (FULLY_CONNECTED, CONV_2D,
DEPTHWISE_CONV_2D over strides, SAME/VALID, odd sizes, dilation, depth multipliers, fused activations,
per-channel and per-tensor weights, int64 biases and none; ADD, SUB and MUL with broadcasting; the pools; PAD;
LEAKY_RELU; QUANTIZE/DEQUANTIZE at float32 I/O; a 1-D conv net)
on the host (gcc with ASan/UBSan, random int16 inputs over the whole range), a subset under QEMU on mps2-an386
(Cortex-M4: the planner must pick int16 kernels, not the int8 DSP ones; FC and CONV get their DSP
variants, tests/test_int16_fast.py); int32 biases (TFLM then accumulates in int32), the integer QUANTIZEs
(int16 -> int16, int8 <-> int16) and power-of-two ADD/SUB scales on crafted models; and the refusals of what
stays unsupported or would overflow TFLM's arithmetic (one line; exit 2 from the CLI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.modelgen import build, int16_cases
from tests.modelgen import case as make_case
from tests.tflite_edit import craft_model, edit_model
from tinyml.cli import main as cli_main
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.variants import options
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.graph.validate import int64_accumulator

CASES = int16_cases()
NET = next(c for c in CASES if c.id == "int16_conv1d_net")
QEMU_CASES = [NET] + [c for c in CASES if c is not NET and c.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "SUB")][1::3]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_int16x8_host(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", QEMU_CASES, ids=lambda c: c.id)
def test_int16x8_cortex_m4(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=2)


def test_the_net_is_int16_inside_with_float_io() -> None:
    g = parse_tflite(build(NET))
    assert [op.kind for op in g.ops] == ["QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "RESHAPE",
                                         "FULLY_CONNECTED", "DEQUANTIZE"]
    assert {g.tensors[t].dtype for t in g.inputs + g.outputs} == {"float32"}
    assert {g.tensors[op.outputs[0]].dtype for op in g.ops[:-1]} == {"int16"}


def test_int16_calls_get_only_int16_kernels() -> None:
    """On a core with DSP and MVE, an int16 call has only int16 variants: its portable int16 kernel, and for
    FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D (depth multiplier 1 here) the MVE and DSP ones before it
    (tests/test_int16_fast.py)."""
    g = parse_tflite(build(NET))
    ctx = LowerContext(graph=g, features=("dsp", "mve", "fpu"))
    for op in g.ops:
        call = lower_op(ctx, op)
        if isinstance(call, KernelCall):
            found = options(ctx, call)
            fast = ["mve", "dsp"] if call.kernel in ("fc_s16", "conv_s16", "dwconv_s16") else []
            assert [v.family for v in found] == fast + ["portable"], (op.kind, found)
            assert found[-1].template.endswith(("_s16", "_s16_f32")), (op.kind, found)
            assert all(v.implements == found[-1].template for v in found), (op.kind, found)


# ---------------------------------------------------------------------------
# int32 biases and the integer QUANTIZEs, on edited and crafted models


def _bias_to_int32(model: bytes) -> bytes:
    """The int64 biases of ``model`` as int32 (TFLM's 16x8 CONV_2D and FULLY_CONNECTED then accumulate in
    int32)."""
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.type == s.TensorType.INT64:
                t.type = s.TensorType.INT32
                data = np.frombuffer(bytes(bytearray(m.buffers[t.buffer].data)), np.int64).astype(np.int32)
                m.buffers[t.buffer].data = list(data.tobytes())

    return edit_model(model, edit)


@pytest.mark.parametrize("case", [c for c in CASES if c.op in ("FULLY_CONNECTED", "CONV_2D")][3::3],
                         ids=lambda c: c.id)
def test_int32_bias_accumulates_in_int32(case, tmp_path) -> None:
    assert_bitexact(_bias_to_int32(build(case)), tmp_path, board="host", samples=3)


def _bias_type_option(model: bytes, code: str) -> bytes:
    """``model`` with its operators' quantized_bias_type option set to TensorType ``code``."""
    def edit(m: Any, s: Any) -> None:
        for op in m.subgraphs[0].operators:
            if hasattr(op.builtinOptions, "quantizedBiasType"):
                op.builtinOptions.quantizedBiasType = getattr(s.TensorType, code)

    return edit_model(model, edit)


@pytest.mark.parametrize("case, code", [(c, code) for c in CASES if "nobias" in c.id for code in ("INT32", "FLOAT32")],
                         ids=lambda v: v if isinstance(v, str) else v.id)
def test_no_bias_accumulator_follows_the_bias_type_option(case, code, tmp_path) -> None:
    """Without a bias, TFLM's 16x8 FULLY_CONNECTED and CONV_2D accumulate in int32 only when quantized_bias_type
    is INT32 (the converter writes INT64: the int64 path is test_int16x8_host's)."""
    model = _bias_type_option(build(case), code)
    g = parse_tflite(model)
    op = next(o for o in g.ops if o.kind in ("CONV_2D", "FULLY_CONNECTED"))
    assert len([i for i in op.inputs if i >= 0]) == 2
    assert int64_accumulator(g, op) == (code == "FLOAT32")
    assert_bitexact(model, tmp_path, board="host", samples=3)


@pytest.mark.parametrize("code", [None, "FLOAT32", "INT32", "INT64"])
def test_no_bias_fully_connected_with_outputs_near_the_int16_limits(code, tmp_path) -> None:
    """A FULLY_CONNECTED without a bias whose outputs reach the thousands, where the int32 and the int64
    requantizations (the latter's multiplier rounded to 16 bits) differ by one: TFLM takes int64 unless the
    option says INT32, the option absent included (an LSTM keyword spotter's Dense without a bias showed it)."""
    rng = np.random.default_rng(5)
    tensors = [dict(name="x", shape=[1, 32], type="INT16", scale=[2.0e-5], zero_point=[0]),
               dict(name="w", shape=[12, 32], type="INT8", scale=list(rng.uniform(0.0024, 0.0029, 12)),
                    zero_point=[0] * 12, data=rng.integers(-127, 128, (12, 32)).astype(np.int8)),
               dict(name="y", shape=[1, 12], type="INT16", scale=[2.2e-5], zero_point=[0])]
    model = craft_model(tensors, [("FULLY_CONNECTED", [0, 1, -1], [2])], inputs=[0], outputs=[2])
    if code is not None:
        model = _bias_type_option(edit_model(model, _fc_options), code)
    g = parse_tflite(model)
    assert int64_accumulator(g, g.ops[0]) == (code != "INT32")
    assert_bitexact(model, tmp_path, board="host", samples=4)


def _fc_options(m: Any, s: Any) -> None:
    op = m.subgraphs[0].operators[0]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT()


def _quantize_model(in_type: str, in_scale: float, in_zp: int, out_type: str, out_scale: float,
                    out_zp: int) -> bytes:
    tensors = [dict(name="x", shape=[1, 37], type=in_type, scale=[in_scale], zero_point=[in_zp]),
               dict(name="y", shape=[1, 37], type=out_type, scale=[out_scale], zero_point=[out_zp])]
    return craft_model(tensors, [("QUANTIZE", [0], [1])], inputs=[0], outputs=[1])


@pytest.mark.parametrize("args", [
    ("INT16", 0.001, 0, "INT16", 0.0037, 0),  # scale down
    ("INT16", 0.004, 0, "INT16", 0.0011, 0),  # scale up: saturates
    ("INT8", 0.05, -7, "INT16", 0.0004, 0),
    ("INT16", 0.0003, 0, "INT8", 0.04, 5),
], ids=["s16-s16-down", "s16-s16-up", "s8-s16", "s16-s8"])
def test_integer_quantize(args, tmp_path) -> None:
    assert_bitexact(_quantize_model(*args), tmp_path, board="host", samples=3)


def _binary_model(kind: str, s1: float, s2: float, so: float, pot_scale_int16: bool) -> bytes:
    tensors = [dict(name="a", shape=[1, 3, 24], type="INT16", scale=[s1], zero_point=[0]),
               dict(name="b", shape=[1, 1, 24], type="INT16", scale=[s2], zero_point=[0]),
               dict(name="y", shape=[1, 3, 24], type="INT16", scale=[so], zero_point=[0])]

    def edit(m: Any, s: Any) -> None:
        op = m.subgraphs[0].operators[0]
        op.builtinOptionsType = getattr(s.BuiltinOptions, f"{kind.title()}Options")
        op.builtinOptions = getattr(s, f"{kind.title()}OptionsT")()
        op.builtinOptions.potScaleInt16 = pot_scale_int16

    return edit_model(craft_model(tensors, [(kind, [0, 1], [2])], inputs=[0, 1], outputs=[2]), edit)


@pytest.mark.parametrize("kind, scales", [("ADD", (2.0 ** -10, 2.0 ** -12, 2.0 ** -8)),
                                          ("SUB", (2.0 ** -10, 2.0 ** -10, 2.0 ** -9))])
def test_power_of_two_scales_take_the_general_path(kind, scales, tmp_path) -> None:
    """TFLM runs its general int16 ADD and SUB whatever pot_scale_int16 says, power-of-two scales or not."""
    assert_bitexact(_binary_model(kind, *scales, pot_scale_int16=True), tmp_path, board="host", samples=3)


def test_padv2_with_its_int16_value(tmp_path) -> None:
    """PADV2 with an int16 constant_values (quantized as the output; the converter leaves it float32, which TFLM
    refuses, and so do we: test_padv2_with_a_float_value_is_refused)."""
    tensors = [dict(name="x", shape=[1, 4, 5, 3], type="INT16", scale=[0.002], zero_point=[0]),
               dict(name="pads", shape=[4, 2], type="INT32", data=np.array([[0, 0], [1, 2], [0, 1], [2, 0]], np.int32)),
               dict(name="v", shape=[1], type="INT16", scale=[0.002], zero_point=[0], data=np.array([-1234], np.int16)),
               dict(name="y", shape=[1, 7, 6, 5], type="INT16", scale=[0.002], zero_point=[0])]
    model = craft_model(tensors, [("PADV2", [0, 1, 2], [3])], inputs=[0], outputs=[3])
    assert_bitexact(model, tmp_path, board="host", samples=2)


# ---------------------------------------------------------------------------
# refusals: one line, and exit 2 from the CLI


def _edit_tensor(model: bytes, fn) -> bytes:
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            fn(m, s, t)

    return edit_model(model, edit)


def test_bias_that_overflows_tflm_int64_arithmetic_is_refused() -> None:
    def huge(m: Any, s: Any, t: Any) -> None:
        if t.type == s.TensorType.INT64:
            m.buffers[t.buffer].data = list(np.full(10, 1 << 60, np.int64).tobytes())

    fc = next(c for c in CASES if c.op == "FULLY_CONNECTED")
    msg = refusal(_edit_tensor(build(fc), huge), ModelError)
    assert "operator 0 (FULLY_CONNECTED): the accumulator reaches" in msg and "overflows TFLM's int64" in msg


def test_multiplier_shift_above_7_is_refused() -> None:
    """TFLM's int64 MultiplyByQuantizedMultiplier asserts a shift below 8."""
    def tiny_output_scale(m: Any, s: Any, t: Any) -> None:
        if t.type == s.TensorType.INT16 and t.name.decode().startswith(("Identity", "StatefulPartitionedCall")):
            t.quantization.scale = [float(t.quantization.scale[0]) * 2.0 ** -24]

    fc = next(c for c in CASES if c.op == "FULLY_CONNECTED")
    model = _edit_tensor(build(fc), tiny_output_scale)
    g = parse_tflite(model)
    assert g.tensors[g.outputs[0]].quant.s < 1e-8, "the edit missed the output tensor"
    msg = refusal(model, ModelError)
    assert "allowed is below 2^7 (shift at most 7, as TFLM's 64-bit requantization requires)" in msg


def test_padv2_with_a_float_value_is_refused() -> None:
    model = build(make_case("padv2", "PADV2", (5, 4, 3), pads=((1, 2), (0, 1), (2, 0)), value=0.7, a16=True,
                            io_dtype="int16"))
    msg = refusal(model, ModelError)
    assert "(input 2 (constant_values) of operator 0 (PADV2)) is float32; allowed is int16" in msg


def test_average_pool_whose_sum_overflows_int32_is_refused() -> None:
    def wide(m: Any, s: Any) -> None:
        m.subgraphs[0].operators[0].builtinOptions.filterHeight = 300
        m.subgraphs[0].operators[0].builtinOptions.filterWidth = 300

    pool = next(c for c in CASES if c.op == "AVERAGE_POOL_2D" and "same" in c.id)
    msg = refusal(edit_model(build(pool), wide), ModelError)
    assert "filter 300x300 sums 90000 int16 values, which can overflow TFLM's int32 sum; allowed are at most 65535" \
        in msg


def test_depthwise_int32_bias_is_refused() -> None:
    dw = next(c for c in CASES if c.op == "DEPTHWISE_CONV_2D")
    msg = refusal(_bias_to_int32(build(dw)), ModelError)
    assert "(DEPTHWISE_CONV_2D)) is int32; allowed is int64" in msg


def test_int16_operator_without_kernel_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tensors = [dict(name="x", shape=[1, 8], type="INT16", scale=[0.001], zero_point=[0]),
               dict(name="y", shape=[1, 8], type="INT16", scale=[0.001], zero_point=[0])]
    model = craft_model(tensors, [("HARD_SWISH", [0], [1])], inputs=[0], outputs=[1])
    msg = refusal(model, UnsupportedError)
    assert "the model has 16-bit activations (int16x8 quantization) and operator 0 (HARD_SWISH) computes on int16, " \
           "which TFLM does not run either (its HARD_SWISH takes float32 and int8 only); int16 operators supported: " \
           "ADD, AVERAGE_POOL_2D, " in msg
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    assert cli_main(["compile", str(path), "--board", "host", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "operator 0 (HARD_SWISH) computes on int16" in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "out").exists()
