"""Issue 17, part 1: the importer accepts what TFLM's importer accepts, with TFLM's interpretation, and a
model we still cannot run is refused in one line that names the real reason.

Every model here is built in the test: a person-detection-style MobileNetV1 (96x96x1) whose biases carry
the nonsense ``quantized_dimension`` older converters wrote, files whose buffers follow the flatbuffer
(the layout of models over 2 GB), both operator-code encodings, and crafted models that TFLM runs and we
do not (sequence operators with variable tensors, resource variables, custom operators, Vela's Ethos-U
operator, 16-bit activations, uint64 tensors).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.harness import refusal as _refusal
from tests.modelgen import build, zoo_cases
from tests.tflite_edit import (as_old_converter, buffers_by_offset, craft_model, edit_model,
                               set_bias_quantized_dimension)
from tinyml.cli import main as cli_main
from tinyml.compiler import build_model, lower_graph
from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.tools.inspect import inspect_model
from tinyml.tools.reference import run_tflm
from tinyml.tools.verify import random_inputs, verify_compiled

QEMU_BOARD = "mps2-an386"


@pytest.fixture(scope="module")
def person() -> bytes:
    """A person-detection-style MobileNetV1 0.25 on 96x96x1 (its first four blocks), as converted now."""
    return build(zoo_cases("person_detect")[0])


def _tflm_agrees(a: bytes, b: bytes) -> None:
    """TFLM gives ``b`` the outputs it gives ``a`` (on one random input)."""
    g = parse_tflite(a)
    xs = random_inputs(g, 1, 0)[0]
    for x, y in zip(run_tflm(a, xs), run_tflm(b, xs)):
        assert np.array_equal(x, y)


# ---------------------------------------------------------------------------
# Bias quantization: by channel count, as TFLM reads it.


def _old_person(person: bytes) -> bytes:
    """As TFLM's person-detection model was written: an old converter's file, biases on axis 3."""
    return set_bias_quantized_dimension(as_old_converter(person), 3)


def test_person_detect_old_converter_bias_axis_host(person: bytes, tmp_path: Path) -> None:
    model = _old_person(person)
    g = parse_tflite(model)
    assert g.tensors[g.inputs[0]].shape == (1, 96, 96, 1)
    biases = [t for t in g.tensors if t.dtype == "int32" and t.quant is not None and t.quant.per_channel]
    assert biases and all(t.quant.axis == 3 and len(t.shape) == 1 for t in biases)
    assert_bitexact(model, tmp_path, samples=3)


@pytest.mark.qemu
def test_person_detect_old_converter_bias_axis_qemu(person: bytes, tmp_path: Path) -> None:
    assert_bitexact(_old_person(person), tmp_path, board=QEMU_BOARD, samples=2)


def _set_quant_dim(model: bytes, pick: Any, dim: int) -> bytes:
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.quantization is not None and pick(t, s):
                t.quantization.quantizedDimension = dim

    return edit_model(model, edit)


def _square_filters(t: Any, s: Any) -> bool:
    """Filters whose last axis has as many values as the first (pointwise 32 -> 32)."""
    return t.type == s.TensorType.INT8 and len(t.shape) == 4 and t.shape[0] == t.shape[3] > 1 \
        and len(t.quantization.scale) > 1


def test_filter_scales_on_another_axis_of_that_size_are_taken_per_output_channel(person: bytes,
                                                                                  tmp_path: Path) -> None:
    """TFLM requires only that quantized_dimension name an axis as long as the output channels."""
    model = _set_quant_dim(person, _square_filters, 3)
    g = parse_tflite(model)
    assert any(t.quant is not None and t.quant.per_channel and t.quant.axis == 3 and len(t.shape) == 4
               for t in g.tensors)
    assert_bitexact(model, tmp_path, samples=2)


@pytest.mark.parametrize("dim", [-1, 7, 1 << 20, 2])
def test_nonsense_bias_axis_is_ignored_as_tflm_does(person: bytes, dim: int) -> None:
    model = set_bias_quantized_dimension(person, dim)
    lower_graph(parse_tflite(model))
    _tflm_agrees(person, model)


@pytest.mark.parametrize("dim, pick", [
    (7, "filters"),  # TFLM would read past the filter's shape
    (-1, "filters"),
    (1, "filters"),  # an axis of another length (3): TFLM refuses
    (1, "square"),
])
def test_filter_scales_on_a_wrong_axis_are_one_line(person: bytes, dim: int, pick: str) -> None:
    def filters(t: Any, s: Any) -> bool:
        return t.type == s.TensorType.INT8 and len(t.shape) == 4 and len(t.quantization.scale) > 1

    model = _set_quant_dim(person, filters if pick == "filters" else _square_filters, dim)
    msg = _refusal(model, ModelError)
    assert f"on axis {dim}; allowed is 1, or" in msg and "one per output channel" in msg


def test_per_channel_activation_is_one_line(person: bytes) -> None:
    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        q = sg.tensors[sg.inputs[0]].quantization
        q.scale, q.zeroPoint, q.quantizedDimension = [q.scale[0]] * 2, [q.zeroPoint[0]] * 2, 5

    assert "per-channel scales; allowed is one" in _refusal(edit_model(person, edit), ModelError)


def test_fewer_zero_points_than_scales_take_the_first(person: bytes) -> None:
    """TFLM gives every channel the first zero point when the counts differ."""
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if t.quantization is not None and len(t.quantization.scale) > 2:
                t.quantization.zeroPoint = [0, 0]

    model = edit_model(person, edit)
    lower_graph(parse_tflite(model))
    _tflm_agrees(person, model)


def test_scales_without_zero_points_are_no_quantization(person: bytes) -> None:
    """TFLM reads quantization only with both vectors: an input without zero points is not quantized."""
    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        sg.tensors[sg.inputs[0]].quantization.zeroPoint = None

    g = parse_tflite(edit_model(person, edit))
    assert g.tensors[g.inputs[0]].quant is None
    assert "has no quantization parameters" in _refusal(edit_model(person, edit), ModelError)


# ---------------------------------------------------------------------------
# Buffers given by offset (files over 2 GB put every buffer after the flatbuffer).


def test_buffers_by_offset_bitexact(person: bytes, tmp_path: Path) -> None:
    """Read as TFLite reads them (TFLM ignores the offset and runs on zeros: the reference is the
    original file's outputs)."""
    moved = buffers_by_offset(person)
    path = tmp_path / "moved.tflite"
    path.write_bytes(moved)
    g, g0 = parse_tflite(moved), parse_tflite(person)
    for t, t0 in zip(g.tensors, g0.tensors):
        assert (t.data is None) == (t0.data is None) and (t.data is None or np.array_equal(t.data, t0.data))
    compiled = build_model(path, "host")
    report = verify_compiled(compiled, person, random_inputs(compiled.graph, 3, 0), work_dir=tmp_path / "p")
    assert report.ok, report.summary()


def _with_buffer(model: bytes, fn: Any) -> bytes:
    """``model`` (its buffers by offset) with ``fn(buffer)`` applied to the first buffer that has an offset."""
    from tests.tflite_edit import schema

    s = schema()
    moved = bytearray(buffers_by_offset(model))
    m = s.Model.GetRootAsModel(moved, 0)
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        if b.Offset() > 1:
            fn(moved, b)
            return bytes(moved)
    raise AssertionError("no buffer by offset")


def _patch_u64(field: int) -> Any:
    """Edits that write a value into a Buffer's uint64 field at vtable slot ``field`` (6: offset, 8: size)."""
    def setter(value_of: Any) -> Any:
        def fn(buf: bytearray, b: Any) -> None:
            o = b._tab.Offset(field)
            at = b._tab.Pos + o
            value = value_of(len(buf), b)
            buf[at:at + 8] = int(value).to_bytes(8, "little")
        return fn
    return setter


_OFFSET, _SIZE = _patch_u64(6), _patch_u64(8)


@pytest.mark.parametrize("fn, needle", [
    (_OFFSET(lambda n, b: n - 4), "past the end of the"),  # runs past the file's end
    (_OFFSET(lambda n, b: (1 << 64) - 1), "past the end of the"),
    (_SIZE(lambda n, b: n), "past the end of the"),
    (_SIZE(lambda n, b: 0), "its size is 0"),
    (_SIZE(lambda n, b: b.Size() - 1), "bytes of data but shape"),  # does not fit the tensor
    (_OFFSET(lambda n, b: 8), "inside the flatbuffer"),
])
def test_bad_buffer_offsets_are_one_line(person: bytes, fn: Any, needle: str) -> None:
    with pytest.raises(ModelError) as e:
        parse_tflite(_with_buffer(person, fn), source="m.tflite")
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg


def test_buffer_with_data_and_offset_is_one_line(person: bytes) -> None:
    def edit(m: Any, s: Any) -> None:
        b = next(b for b in m.buffers if b.data is not None and len(b.data))
        b.offset, b.size = 16, len(b.data)

    with pytest.raises(ModelError, match="both inline data"):
        parse_tflite(edit_model(person, edit))


# ---------------------------------------------------------------------------
# Operator codes: deprecated_builtin_code (int8, old files) and builtin_code (int32); TFLM takes the larger.


@pytest.mark.parametrize("deprecated, builtin, kind", [
    (3, 0, "CONV_2D"),  # an old file
    (0, 3, "CONV_2D"),  # a file that leaves the old field at its default
    (3, 3, "CONV_2D"),  # today's converter
    (127, 142, "VAR_HANDLE"),  # 127: the old field's placeholder for codes above it
    (127, 0, "PLACEHOLDER_FOR_GREATER_OP_CODES"),
])
def test_operator_code_encodings(person: bytes, deprecated: int, builtin: int, kind: str) -> None:
    def edit(m: Any, s: Any) -> None:
        oc = m.operatorCodes[m.subgraphs[0].operators[0].opcodeIndex]
        oc.deprecatedBuiltinCode, oc.builtinCode = deprecated, builtin

    g = parse_tflite(edit_model(person, edit))
    assert g.ops[0].kind == kind
    if kind == "CONV_2D":
        lower_graph(g)
    else:
        assert f"operator 0 is {kind}, which is not supported" in _refusal(edit_model(person, edit))


# ---------------------------------------------------------------------------
# Models TFLM runs and we do not: one line with the real reason.


def _q(scale: float, zp: int = 0) -> dict[str, Any]:
    return dict(scale=[scale], zero_point=[zp])


def _svdf(state_is_input: bool = False) -> bytes:
    """A keyword-spotter-style SVDF (int8, int16 weights_time and state) then FULLY_CONNECTED."""
    rng = np.random.default_rng(0)
    tensors = [
        dict(name="features", shape=[1, 40], type="INT8", **_q(0.1)),
        dict(name="weights_feature", shape=[16, 40], type="INT8", data=rng.integers(-9, 9, (16, 40), np.int8),
             **_q(0.01)),
        dict(name="weights_time", shape=[16, 8], type="INT16", data=rng.integers(-9, 9, (16, 8), np.int16),
             **_q(0.001)),
        dict(name="bias", shape=[16], type="INT32", data=np.zeros(16, np.int32), **_q(0.001)),
        dict(name="svdf_state", shape=[1, 128], type="INT16", variable=True, **_q(0.01)),
        dict(name="svdf_out", shape=[1, 16], type="INT8", **_q(0.1)),
        dict(name="fc_weights", shape=[4, 16], type="INT8", data=rng.integers(-9, 9, (4, 16), np.int8),
             **_q(0.01)),
        dict(name="scores", shape=[1, 4], type="INT8", **_q(0.1)),
    ]
    ops = [("SVDF", [0, 1, 2, 3, 4], [5]), ("FULLY_CONNECTED", [5, 6, -1], [7])]
    return craft_model(tensors, ops, inputs=[0, 4] if state_is_input else [0], outputs=[7])


def _lstm() -> bytes:
    """UNIDIRECTIONAL_SEQUENCE_LSTM on 16-bit activations (int16x8: int16 input and hidden state, int8 weights,
    int64 biases, int16 cell state; the states are the variable tensors), which TFLM runs, crafted (the
    converter's 16x8 mode refuses the LSTM)."""
    rng = np.random.default_rng(1)
    n_in, n_cell, steps = 6, 5, 8
    tensors = [dict(name="sequence", shape=[1, steps, n_in], type="INT16", **_q(0.001))]
    inputs = [0]
    for k in range(8):  # input-to-gate then recurrent-to-gate weights, four gates each
        cols = n_in if k < 4 else n_cell
        tensors.append(dict(name=f"w{k}", shape=[n_cell, cols], type="INT8",
                            data=rng.integers(-20, 20, (n_cell, cols), np.int8), **_q(0.01)))
        inputs.append(len(tensors) - 1)
    inputs += [-1, -1, -1]  # no peepholes
    for k in range(4):
        tensors.append(dict(name=f"gate_bias{k}", shape=[n_cell], type="INT64", data=np.zeros(n_cell, np.int64),
                            **_q(0.00001)))
        inputs.append(len(tensors) - 1)
    inputs += [-1, -1]  # no projection
    tensors.append(dict(name="output_state", shape=[1, n_cell], type="INT16", variable=True, **_q(0.001)))
    inputs.append(len(tensors) - 1)
    tensors.append(dict(name="cell_state", shape=[1, n_cell], type="INT16", variable=True, **_q(2 ** -11)))
    inputs.append(len(tensors) - 1)
    inputs += [-1, -1, -1, -1]  # no layer normalization
    tensors.append(dict(name="hidden", shape=[1, steps, n_cell], type="INT16", **_q(0.001)))
    model = craft_model(tensors, [("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [len(tensors) - 1])],
                        inputs=[0], outputs=[len(tensors) - 1])

    def options(m: Any, s: Any) -> None:  # TFLM's parser requires the options table
        op = m.subgraphs[0].operators[0]
        op.builtinOptionsType = s.BuiltinOptions.UnidirectionalSequenceLSTMOptions
        op.builtinOptions = s.UnidirectionalSequenceLSTMOptionsT()
        op.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.TANH

    return edit_model(model, options)


def _resource_variables() -> bytes:
    """A counter kept in a resource variable, as the converter writes stateful Keras models."""
    tensors = [
        dict(name="x", shape=[1, 4], type="INT8", **_q(0.1)),
        dict(name="handle", shape=[], type="RESOURCE"),
        dict(name="total", shape=[1, 4], type="INT8", **_q(0.1)),
        dict(name="sum", shape=[1, 4], type="INT8", **_q(0.1)),
    ]
    ops = [("VAR_HANDLE", [], [1]), ("READ_VARIABLE", [1], [2]), ("ADD", [0, 2], [3]),
           ("ASSIGN_VARIABLE", [1, 3], [])]
    return craft_model(tensors, ops, inputs=[0], outputs=[3], subgraphs=2)


def _ethos_u() -> bytes:
    """What Vela writes: the compiled part of the graph as one 'ethos-u' custom operator."""
    tensors = [
        dict(name="input", shape=[1, 96, 96, 1], type="INT8", **_q(0.0078, -1)),
        dict(name="command_stream", shape=[64], type="UINT8", data=np.arange(64, dtype=np.uint8)),
        dict(name="flash", shape=[256], type="UINT8", data=np.zeros(256, np.uint8)),
        dict(name="scratch", shape=[4096], type="UINT8"),
        dict(name="scratch_fast", shape=[4096], type="UINT8"),
        dict(name="output", shape=[1, 2], type="INT8", **_q(0.0039, -128)),
    ]
    return craft_model(tensors, [("CUSTOM:ethos-u", [1, 2, 3, 4, 0], [5])], inputs=[0], outputs=[5])


def _audio_preprocessor() -> bytes:
    """Like TFLM's audio preprocessor: signal-library custom operators and a uint64 filter-bank tensor."""
    tensors = [
        dict(name="audio", shape=[1, 480], type="INT16"),
        dict(name="window", shape=[480], type="INT16", data=np.ones(480, np.int16)),
        dict(name="windowed", shape=[1, 480], type="INT16"),
        dict(name="energy", shape=[1, 40], type="UINT64"),
        dict(name="features", shape=[1, 40], type="INT16"),
    ]
    ops = [("CUSTOM:SignalWindow", [0, 1], [2]), ("CUSTOM:SignalFilterBank", [2], [3]),
           ("CUSTOM:SignalFilterBankLog", [3], [4])]
    return craft_model(tensors, ops, inputs=[0], outputs=[4])


def _int16x8(person: bytes, softmax_as: str = "") -> bytes:
    """``person`` with 16-bit activations (int16x8): int16 activations with zero point 0, int64 biases, the
    SOFTMAX output at scale 1/32768 (as TFLM's int16 SOFTMAX requires); with ``softmax_as``, that operator
    replaced by the one-input operator of that name."""
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            has_data = m.buffers[t.buffer].data is not None and len(m.buffers[t.buffer].data) > 0
            if t.type == s.TensorType.INT8 and not has_data:
                t.type = s.TensorType.INT16
                t.quantization.zeroPoint = [0]
            elif t.type == s.TensorType.INT32 and has_data:
                t.type = s.TensorType.INT64
                data = np.frombuffer(bytes(bytearray(m.buffers[t.buffer].data)), np.int32).astype(np.int64)
                m.buffers[t.buffer].data = list(data.tobytes())
        codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
        for op in m.subgraphs[0].operators:
            if codes[op.opcodeIndex] == s.BuiltinOperator.SOFTMAX:
                m.subgraphs[0].tensors[op.outputs[0]].quantization.scale = [1.0 / 32768.0]
                if softmax_as:
                    code = getattr(s.BuiltinOperator, softmax_as)
                    m.operatorCodes.append(s.OperatorCodeT())
                    m.operatorCodes[-1].builtinCode = m.operatorCodes[-1].deprecatedBuiltinCode = code
                    m.operatorCodes[-1].version = 1
                    op.opcodeIndex = len(m.operatorCodes) - 1
                    op.builtinOptionsType, op.builtinOptions = 0, None

    return edit_model(person, edit)


REFUSALS = {
    "resource": (lambda p: _resource_variables(), "operator 0 is VAR_HANDLE, which is not supported (it keeps "
                                                  "state between invocations); supported operators: "),
    "ethos-u": (lambda p: _ethos_u(), "operator 0 (CUSTOM:ethos-u): the model is compiled for Ethos-U (this "
                                      "is Vela's 'ethos-u' operator, an NPU command stream); give the model "
                                      "before Vela"),
    "custom": (lambda p: _audio_preprocessor(), "operator 0 is the custom operator 'SignalWindow', which tinyml "
                                                "does not implement"),
    "int16x8": (lambda p: _int16x8(p, "L2_NORMALIZATION"), "the model has 16-bit activations (int16x8 "
                                                                  "quantization) and operator 11 "
                                                                  "(L2_NORMALIZATION) computes on int16, which "
                                                                  "TFLM does not run either (its L2_NORMALIZATION "
                                                                  "takes float32 and int8 only); int16 operators "
                                                                  "supported: ADD, AVERAGE_POOL_2D, "),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_models_tflm_runs_are_refused_with_the_real_reason(person: bytes, name: str) -> None:
    make, expect = REFUSALS[name]
    msg = _refusal(make(person), UnsupportedError)
    assert expect in msg, msg
    assert "execution order" not in msg and "not an int8 or float32 model" not in msg


def test_crafted_int16x8_lstm_is_bitexact(tmp_path: Path) -> None:
    """The crafted int16x8 LSTM (int64 biases, an int16 cell state), which tinyml once refused, compiles and runs
    bit-exact as a stream with a reset (tests/test_lstm_int16.py has the sweep)."""
    assert_bitexact(_lstm(), tmp_path, board="host", samples=3, resets=(1,))


def test_person_as_int16x8_is_bitexact(person: bytes, tmp_path: Path) -> None:
    """The int16x8 form of ``person`` (REFUSALS' int16x8 model with its SOFTMAX) compiles, bit-exact."""
    assert_bitexact(_int16x8(person), tmp_path, board="host", samples=1)


def test_many_unsupported_operators_are_counted() -> None:
    msg = _refusal(_resource_variables(), UnsupportedError)
    assert "; 2 more operators not supported (ASSIGN_VARIABLE, READ_VARIABLE; tinyml inspect lists them)" in msg


def test_state_inputs_are_not_caller_inputs() -> None:
    g = parse_tflite(_svdf(state_is_input=True))
    assert g.inputs == [0] and g.state_inputs == [4] and g.tensors[4].variable


def test_supported_operator_reading_state_is_one_line(person: bytes) -> None:
    """A variable tensor that a RULES operator reads before any operator writes it: state we do not keep."""
    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        t = sg.tensors[sg.inputs[0]]
        t.isVariable = True
        sg.inputs = [sg.inputs[0]]

    msg = _refusal(edit_model(person, edit), UnsupportedError)
    assert "operator 0 (CONV_2D): reads a subgraph input that is variable tensor" in msg
    assert "tinyml does not keep state between runs" in msg


def test_variable_tensor_written_before_read_is_bitexact(person: bytes, tmp_path: Path) -> None:
    """A variable tensor each invocation writes before reading (TFLM keeps it, but nothing reads the old
    value): an ordinary activation."""
    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        sg.tensors[sg.operators[0].outputs[0]].isVariable = True

    assert_bitexact(edit_model(person, edit), tmp_path, samples=2)


def test_float_model_runs_within_tolerance(person: bytes, tmp_path: Path) -> None:
    """The person model with every tensor float32 (the int8 and int32 values as floats, no quantization): a
    float32 model, which compiles and matches TFLM's float kernels within tolerance (tests/test_float32.py)."""
    def edit(m: Any, s: Any) -> None:
        numpy_of = {s.TensorType.INT8: np.int8, s.TensorType.INT32: np.int32}
        for t in m.subgraphs[0].tensors:
            b = m.buffers[t.buffer]
            if b.data is not None and len(b.data) and t.type in numpy_of:
                values = np.frombuffer(bytes(bytearray(b.data)), numpy_of[t.type]).astype(np.float32)
                b.data = list(values.tobytes())
            if t.type in numpy_of:
                t.type, t.quantization = s.TensorType.FLOAT32, None

    report = assert_bitexact(edit_model(person, edit), tmp_path, samples=2)
    assert report.float_outputs and "within tolerance" in report.summary()


def test_dynamic_range_model_names_it(person: bytes) -> None:
    """int8 weights, float32 activations: what the converter writes without a representative dataset."""
    def edit(m: Any, s: Any) -> None:
        for t in m.subgraphs[0].tensors:
            if m.buffers[t.buffer].data is None or len(m.buffers[t.buffer].data) == 0:
                t.type, t.quantization = s.TensorType.FLOAT32, None

    assert "not an int8 or float32 model: float32 activations with int8 weights (dynamic-range quantization)" in \
        _refusal(edit_model(person, edit), ModelError)


def test_uint64_tensor_of_a_supported_operator_is_one_line(person: bytes) -> None:
    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        sg.tensors[sg.operators[0].outputs[0]].type = s.TensorType.UINT64

    assert "is of type uint64; allowed are" in _refusal(edit_model(person, edit), ModelError)


def test_int4_uint64_and_string_constants_import() -> None:
    tensors = [
        dict(shape=[1, 3], type="INT8", **_q(0.1)),
        dict(shape=[3], type="INT4", data=np.array([0x8F, 0x07], np.uint8)),  # -1, -8, 7 (low nibble first)
        dict(shape=[2], type="UINT64", data=np.array([1, 1 << 63], np.uint64)),
        dict(shape=[1], type="STRING", data=np.frombuffer(b"\x01\x00\x00\x00abc", np.uint8)),
        dict(shape=[1, 3], type="INT8", **_q(0.1)),
    ]
    g = parse_tflite(craft_model(tensors, [("CUSTOM:Mix", [0, 1, 2, 3], [4])], inputs=[0], outputs=[4]))
    assert g.tensors[1].data.tolist() == [-1, -8, 7] and g.tensors[1].nbytes == 2
    assert g.tensors[2].data.tolist() == [1, 1 << 63] and g.tensors[2].nbytes == 16
    assert g.tensors[3].nbytes == 7


def test_compressed_and_sparse_weights_are_one_line(person: bytes) -> None:
    def compressed(m: Any, s: Any) -> None:
        md = s.MetadataT()
        md.name, md.buffer = b"COMPRESSION_METADATA", 0
        m.metadata = [*(m.metadata or []), md]

    def sparse(m: Any, s: Any) -> None:
        t = next(t for t in m.subgraphs[0].tensors if len(t.shape) == 4 and t.buffer
                 and m.buffers[t.buffer].data is not None)
        t.sparsity = s.SparsityParametersT()
        t.sparsity.traversalOrder = [0, 1, 2, 3]

    with pytest.raises(UnsupportedError, match="compressed for TFLM .* give the model before compression"):
        parse_tflite(edit_model(person, compressed))
    with pytest.raises(UnsupportedError, match="is stored sparse"):
        parse_tflite(edit_model(person, sparse))


# ---------------------------------------------------------------------------
# tinyml inspect: the table first, then the one line on stderr, exit 2.


def _inspect(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[str, str]:
    code = cli_main(["inspect", str(path), *extra])
    out, err = capsys.readouterr()
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and lines[0].startswith("tinyml: error: "), err
    return out, lines[0]


@pytest.mark.parametrize("name, row", [
    ("custom", "CUSTOM:SignalFilterBank"),
    ("ethos-u", "CUSTOM:ethos-u"),
    ("int16x8", "L2_NORMALIZATION"),
    ("resource", "ASSIGN_VARIABLE"),
])
def test_inspect_shows_the_table_then_why(person: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          name: str, row: str) -> None:
    make, expect = REFUSALS[name]
    path = tmp_path / "m.tflite"
    path.write_bytes(make(person))
    out, err = _inspect(capsys, path)
    assert row in out and "UNSUPPORTED" in out and "operators " in out, out
    assert expect in err
    info = json.loads(_inspect(capsys, path, "--json")[0])
    assert expect in info["cannot_compile"] and not all(o["supported"] for o in info["operators"])


def test_inspect_of_a_bad_filter_axis_and_an_unreadable_file(person: bytes, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_set_quant_dim(person, _square_filters, 7))
    out, err = _inspect(capsys, path)
    assert "(CONV_2D): weights" in out and "UNSUPPORTED: operator" in out and "on axis 7" in err
    path.write_bytes(person[:100])  # no table to show: only the line
    out, err = _inspect(capsys, path)
    assert out == "" and "malformed or truncated" in err


def test_inspect_of_a_compilable_model_exits_0(person: bytes, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(_old_person(person))
    assert cli_main(["inspect", str(path)]) == 0
    assert "UNSUPPORTED" not in capsys.readouterr().out
    assert inspect_model(path).error is None


def test_inspect_prints_the_table_before_the_line(tmp_path: Path) -> None:
    """One stream, as a terminal shows it: the table, then the error."""
    path = tmp_path / "resource.tflite"
    path.write_bytes(_resource_variables())  # resource variables: TFLM runs them, tinyml keeps no such state
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "inspect", str(path)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    assert r.returncode == 2 and "Traceback" not in r.stdout
    assert r.stdout.rstrip().splitlines()[-1].startswith("tinyml: error: ")
    assert r.stdout.index("UNSUPPORTED") < r.stdout.index("tinyml: error: ")
