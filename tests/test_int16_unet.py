"""The 1-D audio U-Net of issue 17 in int16x8, and the int16 operators it needs beyond tests/test_ops_int16.py:
TRANSPOSE_CONV (codegen/ops/int16_upsample.py), CONCATENATION and the data movement (TRANSPOSE, STRIDED_SLICE,
SLICE, SPLIT, SPLIT_V, PACK, UNPACK: the byte-moving kernels with 2-byte elements).  Bit-exact with TFLM:

* tests/modelgen.py's int16_unet_cases on the host (TRANSPOSE_CONV over strides, SAME/VALID, odd sizes,
  activations, per-channel and per-tensor weights, with and without bias; CONCATENATION and STRIDED_SLICE as
  the converter makes them; the U-Net with int8 I/O), the U-Net and a TRANSPOSE_CONV under QEMU on mps2-an386;
* tests/test_ops_movement.py's sweeps over the edge cases, their int8 tensors made int16 (random int16
  inputs over the whole range), on the host, and the first two cases of each in one model under QEMU;
* an int16 bias of TRANSPOSE_CONV (TFLM widens it to int64);
* CONCATENATION of inputs quantized unlike its output (TFLM copies their int16 values unchanged);
* LEAKY_RELU over every int16 input (TFLM's multipliers in double);
* the refusals: an int32 bias of TRANSPOSE_CONV (TFLM would read it as int64) and an int64 one that overflows
  TFLM's int64 arithmetic, a CONCATENATION of 11 inputs (TFLM takes at most 10), int16 DEPTH_TO_SPACE and
  SPACE_TO_DEPTH (TFLM refuses int16 there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact, refusal
from tests.modelgen import build, int16_unet_cases
from tests.test_ops_movement import ADD, SWEEPS, Net
from tests.tflite_edit import craft_model, edit_model
from tinyml.codegen.lower import KernelCall, LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.codegen.variants import options
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.graph.validate.int16 import INT16_MOVEMENT
from tinyml.tools.verify import verify_model

CASES = int16_unet_cases()
UNET = next(c for c in CASES if c.id == "int16_unet")
QEMU_BOARD = "mps2-an386"
MOVEMENT = INT16_MOVEMENT  # TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_host(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=3)


@pytest.mark.qemu
@pytest.mark.parametrize("case", [UNET] + [c for c in CASES if "relu6" in c.id], ids=lambda c: c.id)
def test_case_qemu(case, tmp_path) -> None:
    assert_bitexact(build(case), tmp_path, board=QEMU_BOARD, samples=2)


def test_the_unet_is_int16_inside_with_int8_io() -> None:
    g = parse_tflite(build(UNET))
    kinds = [op.kind for op in g.ops]
    for kind in ("CONV_2D", "LEAKY_RELU", "PAD", "ADD", "SUB", "STRIDED_SLICE", "TRANSPOSE_CONV", "CONCATENATION"):
        assert kind in kinds, kind
    assert kinds[0] == kinds[-1] == "QUANTIZE" and kinds.count("TRANSPOSE_CONV") == 2
    assert {g.tensors[t].dtype for t in g.inputs + g.outputs} == {"int8"}
    assert {g.tensors[op.outputs[0]].dtype for op in g.ops[:-1]} == {"int16"}


def test_unet_calls_get_only_int16_kernels() -> None:
    """On a core with DSP and MVE, every call of the U-Net has int16 variants or byte-moving ones (no int8
    DSP or MVE kernel): the convolutions also the int16 DSP and MVE ones (tests/test_int16_fast.py)."""
    g = parse_tflite(build(UNET))
    ctx = LowerContext(graph=g, features=("dsp", "mve", "fpu"))
    calls = [c for c in (lower_op(ctx, op) for op in g.ops) if isinstance(c, KernelCall)]
    found = {(v.family, v.template) for c in calls for v in options(ctx, c)}
    assert found == {("portable", t) for t in ("requantize_s16", "conv_s16", "leaky_relu_s16", "pad_s16", "add_s16",
                                               "transpose_conv_s16", "copy_nd_s8", "concat_s8")} | {
        ("dsp", "conv_s16_dsp"), ("mve", "conv_s16_mve")}
    assert len(calls) == len(g.ops)


# ---------------------------------------------------------------------------
# the movement sweeps with int16 elements


def _int16(model: bytes) -> bytes:
    """``model`` with its int8 tensors int16 (zero point 0; constant values widened)."""
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.type != s.TensorType.INT8:
                continue
            t.type = s.TensorType.INT16
            if t.quantization is not None and t.quantization.zeroPoint is not None:
                t.quantization.zeroPoint = [0] * len(t.quantization.zeroPoint)
            data = m.buffers[t.buffer].data
            if data is not None and len(data):
                values = (np.frombuffer(bytes(bytearray(data)), np.int8).astype(np.int32) * 257).clip(-32768, 32767)
                m.buffers[t.buffer].data = list(values.astype(np.int16).tobytes())

    return edit_model(model, edit)


@pytest.mark.parametrize("kind", MOVEMENT)
def test_movement_sweep_host(kind: str, tmp_path) -> None:
    net = Net()
    for args in SWEEPS[kind]:
        ADD[kind](net, *args)
    assert_bitexact(_int16(net.model()), tmp_path, board="host", samples=3)


@pytest.mark.qemu
def test_movement_qemu(tmp_path) -> None:
    net = Net()
    for kind in MOVEMENT:
        for args in SWEEPS[kind][:2]:
            ADD[kind](net, *args)
    assert_bitexact(_int16(net.model()), tmp_path, board=QEMU_BOARD, samples=2)


# ---------------------------------------------------------------------------
# TRANSPOSE_CONV biases


def _bias_as(model: bytes, code: str, dtype: type) -> bytes:
    """The int64 biases of ``model`` as TensorType ``code`` (values divided down into int16's range)."""
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.type == s.TensorType.INT64:
                t.type = getattr(s.TensorType, code)
                data = np.frombuffer(bytes(bytearray(m.buffers[t.buffer].data)), np.int64)
                m.buffers[t.buffer].data = list((data // 8).clip(-32768, 32767).astype(dtype).tobytes())

    return edit_model(model, edit)


TC = next(c for c in CASES if c.op == "TRANSPOSE_CONV" and "relu6" in c.id)


def test_transpose_conv_int16_bias(tmp_path) -> None:
    """TFLM widens an int16 bias to int64 (transpose_conv.cc): the same sums."""
    assert_bitexact(_bias_as(build(TC), "INT16", np.int16), tmp_path, board="host", samples=3)


def test_transpose_conv_int32_bias_is_refused() -> None:
    msg = refusal(_bias_as(build(TC), "INT32", np.int32), ModelError)
    assert "(input 3 (bias) of operator 0 (TRANSPOSE_CONV)) is int32; allowed is int64/int16" in msg


def test_transpose_conv_bias_that_overflows_tflm_int64_arithmetic_is_refused() -> None:
    def huge(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.type == s.TensorType.INT64:
                m.buffers[t.buffer].data = list(np.full(t.shape[0], 1 << 60, np.int64).tobytes())

    msg = refusal(edit_model(build(TC), huge), ModelError)
    assert "operator 0 (TRANSPOSE_CONV): the accumulator reaches" in msg and "overflows TFLM's int64" in msg


# ---------------------------------------------------------------------------
# LEAKY_RELU over every int16 input (the U-Net's activation)


@pytest.mark.parametrize("in_scale, out_scale, alpha", [(7.294880197150633e-05, 5.400223017204553e-05, 0.2),
                                                        (2.9294335e-04, 6.3391395e-05, 0.19785075),
                                                        (8.4578875e-04, 3.9848062e-04, 0.25158128)])
def test_leaky_relu_every_int16_input(in_scale: float, out_scale: float, alpha: float, tmp_path) -> None:
    """TFLM computes LEAKY_RELU's multipliers in double from the float32 scales and alpha: in float32 they
    differ in their last bits, and so did a few outputs of these (found by fuzzing the U-Net)."""
    tensors = [dict(name="x", shape=[1, 65536], type="INT16", scale=[in_scale], zero_point=[0]),
               dict(name="y", shape=[1, 65536], type="INT16", scale=[out_scale], zero_point=[0])]

    def options(m: Any, s: Any) -> None:
        op = m.subgraphs[0].operators[0]
        op.builtinOptionsType = s.BuiltinOptions.LeakyReluOptions
        op.builtinOptions = s.LeakyReluOptionsT()
        op.builtinOptions.alpha = alpha

    model = edit_model(craft_model(tensors, [("LEAKY_RELU", [0], [1])], inputs=[0], outputs=[1]), options)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    every = np.arange(-32768, 32768, dtype=np.int16).reshape(1, -1)
    report = verify_model(path, "host", inputs=[[every]], work_dir=tmp_path / "proj")
    assert report.ok, report.summary()


# ---------------------------------------------------------------------------
# refusals


def _concat_model(scales: list[float], widths: list[int]) -> bytes:
    """CONCATENATION along the last axis of int16 inputs [1, 4, width] with ``scales`` (the last: the
    output's)."""
    tensors = [dict(name=f"x{k}", shape=[1, 4, w], type="INT16", scale=[s], zero_point=[0])
               for k, (s, w) in enumerate(zip(scales, widths))]
    tensors.append(dict(name="y", shape=[1, 4, sum(widths)], type="INT16", scale=[scales[-1]], zero_point=[0]))

    def axis(m: Any, s: Any) -> None:
        op = m.subgraphs[0].operators[0]
        op.builtinOptionsType = s.BuiltinOptions.ConcatenationOptions
        op.builtinOptions = s.ConcatenationOptionsT()
        op.builtinOptions.axis = -1

    n = len(widths)
    return edit_model(craft_model(tensors, [("CONCATENATION", list(range(n)), [n])], inputs=list(range(n)),
                                  outputs=[n]), axis)


def test_concatenation_of_unlike_scales_copies_as_tflm(tmp_path) -> None:
    """TFLM copies int16 inputs quantized unlike the output unchanged (it refuses that for int8 only)."""
    assert_bitexact(_concat_model([0.001, 0.002, 0.0005, 0.001], [3, 5, 1]), tmp_path, board="host", samples=2)


def test_concatenation_of_11_inputs_is_refused() -> None:
    msg = refusal(_concat_model([0.001] * 12, [2] * 11), ModelError)
    assert "operator 0 (CONCATENATION): has 11 inputs; allowed is at most 10 (as TFLM requires)" in msg


@pytest.mark.parametrize("kind, shapes", [("DEPTH_TO_SPACE", ([1, 2, 3, 8], [1, 4, 6, 2])),
                                          ("SPACE_TO_DEPTH", ([1, 4, 6, 2], [1, 2, 3, 8]))])
def test_int16_depth_space_is_refused(kind: str, shapes: tuple[list[int], list[int]]) -> None:
    """TFLM's DEPTH_TO_SPACE and SPACE_TO_DEPTH take float32 and int8 only: refused saying so."""
    tensors = [dict(name="x", shape=shapes[0], type="INT16", scale=[0.001], zero_point=[0]),
               dict(name="y", shape=shapes[1], type="INT16", scale=[0.001], zero_point=[0])]
    model = craft_model(tensors, [(kind, [0], [1])], inputs=[0], outputs=[1])
    msg = refusal(model, UnsupportedError)
    assert f"operator 0 ({kind}) computes on int16, which TFLM does not run either (its {kind} takes float32 and " \
           "int8 only)" in msg
