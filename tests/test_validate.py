"""Validation (the tinyml/graph/validate package): one test per finding of issue 19, each asserting the one-line
message that names the operator or tensor, the field, the value and the allowed range."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from tests.modelgen import build, op_cases
from tests.tflite_edit import edit_model
from tinyml.codegen.ops import supported_float_ops, supported_ops
from tinyml.errors import ModelError, TinymlError, UnsupportedError
from tinyml.graph import parse_tflite
from tinyml.graph.ir import Graph, Op, Quant, Tensor
from tinyml.graph.validate import FLOAT_RULES, RULES, validate_graph, validate_operators


def _refusal(op_kind: str, edit: Callable[[Any, Any, Any], None], case: int = 0,
             error: type[TinymlError] = ModelError) -> str:
    """The message refusing op_cases(op_kind)[case] after ``edit(operator, subgraph, schema)``
    of its first ``op_kind`` operator (an ``error``, raised by validation: lowering raises nothing)."""
    model = build(op_cases(op_kind)[case])
    kinds = [o.kind for o in parse_tflite(model).ops]
    index = kinds.index(op_kind)

    def fn(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        edit(sg.operators[index], sg, m)

    g = parse_tflite(edit_model(model, fn), source="m.tflite")
    with pytest.raises(error) as e:
        validate_graph(g)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("m.tflite: ")
    return msg


def _tensor(sg: Any, op: Any, pos: int, output: bool = False) -> Any:
    return sg.tensors[(op.outputs if output else op.inputs)[pos]]


def _bias(m: Any, sg: Any, op: Any, value: int) -> None:
    t = _tensor(sg, op, 2)
    arr = np.frombuffer(bytes(np.asarray(m.buffers[t.buffer].data, dtype=np.uint8)), dtype=np.int32).copy()
    arr[0] = value
    m.buffers[t.buffer].data = np.frombuffer(arr.tobytes(), dtype=np.uint8).copy()


def test_every_supported_operator_has_a_row() -> None:
    assert set(RULES) == set(supported_ops())
    assert set(FLOAT_RULES) == set(supported_float_ops())
    assert set(FLOAT_RULES) - set(RULES) == {"EXP"}  # TFLM runs EXP in float32 only


def test_every_test_model_passes() -> None:
    for c in op_cases():
        validate_graph(parse_tflite(build(c)))


def test_huge_input_scale_gives_an_unrepresentable_multiplier() -> None:
    # An output scale of 1e38 of one operator is the input scale of the next: input x weight / output
    # scale then needs a shift of over 100 bits (the issue saw 119 in tml_qmath.h).
    def edit(op, sg, m):
        _tensor(sg, op, 0).quantization.scale = np.asarray([1e38], dtype=np.float32)

    msg = _refusal("CONV_2D", edit)
    assert "operator 0 (CONV_2D): the multiplier of output channel 0" in msg
    assert "allowed is below 2^30 (shift at most 30); requantize the model" in msg


def test_tiny_output_scale_gives_an_unrepresentable_multiplier() -> None:
    # An output scale of 1e-38 divides the same way (an output scale of 1e38 alone is fine: the
    # multiplier rounds to 0, as in TFLM, and the output is the zero point).
    def edit(op, sg, m):
        _tensor(sg, op, 0, output=True).quantization.scale = np.asarray([1e-38], dtype=np.float32)

    msg = _refusal("FULLY_CONNECTED", edit, case=3)
    assert "operator 0 (FULLY_CONNECTED): the multiplier of output channel 0" in msg and "(shift 1" in msg


@pytest.mark.parametrize("zp", [2147483647, -2147483648, 128, -129, 200])
def test_zero_point_outside_int8_is_refused(zp: int) -> None:
    def edit(op, sg, m):
        _tensor(sg, op, 0).quantization.zeroPoint = np.asarray([zp], dtype=np.int64)

    msg = _refusal("ADD", edit)
    assert f"of type int8 has zero point {zp}; allowed is [-128, 127]" in msg
    assert "(input 0 (input) of operator 0 (ADD))" in msg


def test_bias_of_int32_min_would_overflow_the_accumulator() -> None:
    msg = _refusal("CONV_2D", lambda op, sg, m: _bias(m, sg, op, -(1 << 31)))
    assert "operator 0 (CONV_2D): the multiplier of output channel 0" in msg
    assert "overflows int32; allowed is |accumulator| * 2^shift <= 2147483392" in msg


@pytest.mark.parametrize("kind, options, case, expect", [
    # a dilation of INT32_MAX with SAME padding overflowed a multiplication in the kernel
    ("CONV_2D", {"dilationHFactor": 2**31 - 1, "padding": 0}, 0,
     "operator 0 (CONV_2D): dilation_h is 2147483647; allowed is [1, 32767]"),
    # found by the semantic fuzz test: TFLM keeps the dilation in an int16_t (ConvParams), where 65536 is 0
    ("CONV_2D", {"dilationWFactor": 65536}, 0, "operator 0 (CONV_2D): dilation_w is 65536; allowed is [1, 32767]"),
    # the same for the SAME padding (PaddingValues); a kernel 10 high pads about 9 x 32767 / 2
    ("CONV_2D", {"dilationHFactor": 32767, "padding": 0}, "tall",
     "SAME padding along the height (filter 10, stride 1, dilation 32767) is 147451; allowed is at most 32767 "
     "(TFLM keeps it in an int16)"),
    ("AVERAGE_POOL_2D", {"filterHeight": 8192, "filterWidth": 4096}, 0,
     "operator 0 (AVERAGE_POOL_2D): filter 8192x4096 has 33554432 values; allowed is at most 16777216"),
    # a depth multiplier of 0 compiled to a model that silently disagreed with TFLM
    ("DEPTHWISE_CONV_2D", {"depthMultiplier": 0}, 0,
     "operator 0 (DEPTHWISE_CONV_2D): depth_multiplier is 0; allowed is [1, 32767]"),
    ("DEPTHWISE_CONV_2D", {"depthMultiplier": 2}, 0,
     "depth_multiplier 2 (allowed: output channels = input channels * depth_multiplier"),
])
def test_options_out_of_range(kind: str, options: dict[str, int], case: Any, expect: str) -> None:
    def edit(op, sg, m):
        for name, value in options.items():
            setattr(op.builtinOptions, name, value)

    if case == "tall":
        case = next(i for i, c in enumerate(op_cases(kind)) if c.p("kernel") == (10, 4))
    assert expect in _refusal(kind, edit, case=case)


def test_reshape_with_three_inputs() -> None:
    def edit(op, sg, m):
        op.inputs = np.asarray(list(op.inputs) + [op.inputs[0]], dtype=np.int32)

    msg = _refusal("RESHAPE", edit)
    assert "operator 0 (RESHAPE): has 3 inputs; allowed is 1 to 2" in msg


def test_absent_weights_operand() -> None:
    def edit(op, sg, m):
        op.inputs = np.asarray([op.inputs[0], -1, op.inputs[2]], dtype=np.int32)

    msg = _refusal("CONV_2D", edit)
    assert "operator 0 (CONV_2D): input 1 (weights) is -1 (absent); it is required" in msg


def test_output_scale_zero() -> None:
    def edit(op, sg, m):
        _tensor(sg, op, 0, output=True).quantization.scale = np.asarray([0.0], dtype=np.float32)

    msg = _refusal("FULLY_CONNECTED", edit)
    assert "(output 0 (output) of operator 0 (FULLY_CONNECTED)) has quantization scale 0; allowed is a positive " \
           "finite number" in msg


def test_string_tensor() -> None:
    def edit(op, sg, m):
        _tensor(sg, op, 0, output=True).type = 5  # STRING

    msg = _refusal("FULLY_CONNECTED", edit)
    assert "is of type string; allowed are float32, int16, int32, int8, uint8" in msg


def test_nonzero_weight_zero_point_and_bias_zero_point() -> None:
    def weights(op, sg, m):
        q = _tensor(sg, op, 1).quantization
        q.zeroPoint = np.full(len(q.scale), 3, dtype=np.int64)

    assert "(input 1 (weights) of operator 0 (CONV_2D)) has zero point 3; allowed is 0 (TFLM needs symmetric " \
           "weights and bias)" in _refusal("CONV_2D", weights)

    def bias(op, sg, m):
        q = _tensor(sg, op, 2).quantization
        q.zeroPoint = np.full(len(q.scale), 5, dtype=np.int64)

    assert "(input 2 (bias) of operator 0 (CONV_2D)) of type int32 has zero point 5; allowed is [0, 0]" \
        in _refusal("CONV_2D", bias)


def test_softmax_output_quantization_is_fixed() -> None:
    def edit(op, sg, m):
        _tensor(sg, op, 0, output=True).quantization.scale = np.asarray([0.5], dtype=np.float32)

    msg = _refusal("SOFTMAX", edit)
    assert "operator 0 (SOFTMAX): output tensor" in msg and "has scale 0.5; allowed is 0.00390625" in msg


def test_fully_connected_bias_scale_must_match_the_product() -> None:
    # Found by the semantic fuzz test: TFLM's per-tensor FULLY_CONNECTED refuses a bias scale that is not
    # input scale x weight scale (within 2% of the output scale); the input scale x 10^6 breaks that.
    def edit(op, sg, m):
        q = _tensor(sg, op, 0).quantization
        q.scale = np.asarray(q.scale, dtype=np.float32) * np.float32(1e6)

    msg = _refusal("FULLY_CONNECTED", edit, case=1)
    assert "operator 0 (FULLY_CONNECTED): bias tensor" in msg
    assert "of the output scale apart; allowed is at most 0.02 (as TFLM requires)" in msg


# Found by the semantic fuzz test (tests/test_fuzz_semantic.py):


def test_depthwise_without_bias_is_refused() -> None:
    # TFLM's DEPTHWISE_CONV_2D crashes on an absent bias.
    def edit(op, sg, m):
        op.inputs = np.asarray([op.inputs[0], op.inputs[1], -1], dtype=np.int32)

    msg = _refusal("DEPTHWISE_CONV_2D", edit)
    assert "operator 0 (DEPTHWISE_CONV_2D): input 2 (bias) is -1 (absent); it is required" in msg


def test_squeeze_output_shape_must_be_the_squeezed_input() -> None:
    def edit(op, sg, m):
        t = _tensor(sg, op, 0, output=True)
        t.shape = np.asarray([1] + list(t.shape), dtype=np.int32)

    msg = _refusal("SQUEEZE", edit)
    assert "operator 0 (SQUEEZE): output tensor" in msg and "(allowed: equal)" in msg


def test_cli_refuses_a_bad_model_in_one_line(tmp_path, capsys) -> None:
    """tinyml compile on a model with an output scale of 0: exit code 2 and the one-line message."""
    from tinyml.cli import main as cli_main

    model = build(op_cases("FULLY_CONNECTED")[0])

    def zero(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        sg.tensors[sg.operators[0].outputs[0]].quantization.scale = np.asarray([0.0], dtype=np.float32)

    path = tmp_path / "bad.tflite"
    path.write_bytes(edit_model(model, zero))
    assert cli_main(["compile", str(path), "-b", "host", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quantization scale 0; allowed is a positive finite number" in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_q4_input_shift_beyond_62_is_refused(kind: str) -> None:
    # Found by the semantic fuzz test: an input scale of 1e38 makes TFLM shift a 64-bit 1 by 154 bits
    # (undefined), and its outputs differed from ours.
    def edit(op, sg, m):
        _tensor(sg, op, 0).quantization.scale = np.asarray([1e38], dtype=np.float32)

    msg = _refusal(kind, edit)
    assert f"operator 0 ({kind}): input tensor" in msg
    assert "gives an input left shift of 154; allowed is at most 62 (TFLM computes 1 << shift in 64 bits)" in msg


# Relations that lowering used to check (issue 19: no stage downstream defends itself).


def _int32_buffer(m: Any, t: Any, values: list[int]) -> None:
    m.buffers[t.buffer].data = np.frombuffer(np.asarray(values, dtype=np.int32).tobytes(), dtype=np.uint8).copy()
    t.shape = np.asarray([len(values)] if len(values) != 8 else [4, 2], dtype=np.int32)


def _shape(t: Any, shape: list[int]) -> None:
    t.shape = np.asarray(shape, dtype=np.int32)


def _scale(t: Any, scale: float) -> None:
    t.quantization.scale = np.asarray([scale], dtype=np.float32)


@pytest.mark.parametrize("kind, edit, expect", [
    ("PAD", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [0, 0, -1, 0, 0, 0, 0, 0]),
     "operator 0 (PAD): paddings [[0, 0], [-1, 0], [0, 0], [0, 0]] contain a negative value; allowed is 0 or more"),
    ("PAD", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [0, 0, 1, 1, 1, 1]),
     "have 6 values; allowed is 4x2 (before and after for each dimension)"),
    ("PAD", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 8, 9, 4]),
     "has shape [1, 8, 9, 4], but input shape [1, 6, 6, 4] padded by [[0, 0], [1, 1], [1, 1], [0, 0]] gives "
     "[1, 8, 8, 4] (allowed: equal)"),
    ("MEAN", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [1, 7]),
     "is out of range; allowed is [-4, 3] for the 4-D input"),
    ("MEAN", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 15]),
     "has shape [1, 15], but reducing [1, 8, 8, 16] over axes [1, 2] leaves 16 values (allowed: equal)"),
    ("CONCATENATION", lambda op, sg, m: setattr(_tensor(sg, op, 1).quantization, "zeroPoint",
                                                _tensor(sg, op, 1).quantization.zeroPoint + 1),
     "are quantized differently; allowed is equal quantization (as TFLM requires"),
    ("CONCATENATION", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 4, 3, 8]),
     "has shape [1, 4, 3, 8], which does not fit output shape [1, 4, 4, 16] concatenated along axis 3"),
    ("CONCATENATION", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 4, 4, 7]),
     "the inputs add up to 15 along axis 3 but output tensor"),
    ("CONCATENATION", lambda op, sg, m: setattr(op.builtinOptions, "axis", 4),
     "operator 0 (CONCATENATION): axis 4 is out of range; allowed is [-4, 3] for 4-D tensors"),
    ("ADD", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 4, 2, 8]),
     "input 1 tensor 1 ('input_1') of shape [1, 4, 2, 8] does not broadcast to the output shape [1, 4, 4, 8]"),
    ("ADD", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-9),
     "operator 0 (ADD): the output rescaling factor is"),
    ("MUL", lambda op, sg, m: (_shape(_tensor(sg, op, 0), [1, 1, 1, 8]), _shape(_tensor(sg, op, 1), [1, 1, 1, 8])),
     "has shape [1, 4, 4, 8], but broadcasting [1, 1, 1, 8] with [1, 1, 1, 8] gives [1, 1, 1, 8] (allowed: equal)"),
    ("SOFTMAX", lambda op, sg, m: setattr(op.builtinOptions, "beta", 1e-12),
     "operator 0 (SOFTMAX): beta 1e-12 x input scale"),
    ("SOFTMAX", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 2, 5]),
     "has shape [1, 10] and output tensor 1 ('Identity') [1, 2, 5]; allowed is equal shapes of rank 1 or more"),
    ("HARD_SWISH", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), _tensor(sg, op, 0).quantization.scale[0] / 1000),
     "below input scale / 128"),
    ("HARD_SWISH", lambda op, sg, m: (_scale(_tensor(sg, op, 0), 1e9), _scale(_tensor(sg, op, 0, True), 1e9)),
     "which gives a reluish exponent of 37; allowed is [-31, 31]"),
    ("HARD_SWISH", lambda op, sg, m: _scale(_tensor(sg, op, 0), 1e-45),
     "the output multiplier input scale / 128 / output scale is 0 (input scale 1.4013e-45"),
    ("LOGISTIC", lambda op, sg, m: _scale(_tensor(sg, op, 0), 1e-10),
     "gives an input left shift of -6; allowed is at least 0 (an input scale of at least 2^-28"),
    ("TANH", lambda op, sg, m: _scale(_tensor(sg, op, 0), 1e-10), "gives an input left shift of -6"),
    ("RESHAPE", lambda op, sg, m: (setattr(_tensor(sg, op, 0, True), "type", 3),
                                   setattr(_tensor(sg, op, 0, True), "quantization", None)),
     "operator 0 (RESHAPE): input tensor 0 ('input_0') is int8 but output tensor 2 ('Identity') is uint8; allowed is the same type"),
])
def test_relations_lowering_used_to_check(kind: str, edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal(kind, edit)


def test_mean_of_five_dimensions_is_unsupported() -> None:
    msg = _refusal("MEAN", lambda op, sg, m: _shape(_tensor(sg, op, 0), [1, 1, 8, 8, 16]), error=UnsupportedError)
    assert "operator 0 (MEAN): input tensor 0" in msg and "has shape [1, 1, 8, 8, 16]; supported is 1-D to 4-D" in msg


def test_add_of_rank_five_is_unsupported() -> None:
    msg = _refusal("ADD", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 1, 4, 4, 8]), error=UnsupportedError)
    assert "operator 0 (ADD): input 1 tensor 1" in msg and "has rank 5; supported is at most 4" in msg


def test_binary_operator_of_two_constants_is_unsupported() -> None:
    # TFLM computes it; the converter folds it, and our kernels take at most one constant.
    def t(i: int, data: Any = None) -> Tensor:
        return Tensor(index=i, name="c", shape=(4,), dtype="int8", data=data,
                      quant=Quant(np.asarray([0.1], np.float32), np.asarray([0], np.int64)))

    g = Graph(name="m", tensors=[t(0, np.zeros(4, np.int8)), t(1, np.ones(4, np.int8)), t(2)],
              ops=[Op(index=0, kind="MUL", inputs=[0, 1], outputs=[2], options={})], inputs=[], outputs=[2])
    with pytest.raises(UnsupportedError, match=r"^operator 0 \(MUL\): inputs tensor 0 \('c'\) and tensor 1 "
                                                r"\('c'\) are both constants; supported is at most one constant"):
        validate_operators(g)


# Data movement (codegen/ops/movement.py): each refusal of its rows, on the converter-made cases.


def _int_buffer(m: Any, t: Any, values: list[int], dtype: Any = np.int32) -> None:
    m.buffers[t.buffer].data = np.frombuffer(np.asarray(values, dtype=dtype).tobytes(), dtype=np.uint8).copy()
    t.shape = np.asarray([len(values)], dtype=np.int32)


def _option(op: Any, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(op.builtinOptions, name, value)


def _model_input(sg: Any, op: Any, pos: int) -> None:
    """Input ``pos`` of ``op`` becomes a model input (no data)."""
    sg.tensors[op.inputs[pos]].buffer = 0
    sg.inputs = np.append(sg.inputs, op.inputs[pos]).astype(np.int32)


MOVEMENT_REFUSALS = [
    ("TRANSPOSE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 1), [0, 1, 1, 3]),
     "operator 0 (TRANSPOSE): perm [0, 1, 1, 3] is not a permutation of [0, 3]; allowed is every dimension exactly "
     "once"),
    ("TRANSPOSE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 1), [0, 2, 1, 4]), "perm [0, 2, 1, 4] is not a"),
    ("TRANSPOSE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 1), [0, 2, 1]),
     "has shape [3]; allowed is [4] (one value per input dimension)"),
    ("TRANSPOSE", lambda op, sg, m: _shape(_tensor(sg, op, 0), [1, 1, 4, 6, 5, 1]),
     "has shape [1, 1, 4, 6, 5, 1]; allowed is 1-D to 5-D (as TFLM requires)"),
    ("TRANSPOSE", lambda op, sg, m: _model_input(sg, op, 1), "has no data; it must be a constant tensor"),
    ("TRANSPOSE", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 4, 6, 5]),
     "has shape [1, 4, 6, 5], but permuting input shape [1, 4, 6, 5] by [0, 2, 1, 3] gives [1, 6, 4, 5] "
     "(allowed: equal)"),
    ("STRIDED_SLICE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 3), [1, 0, -1, 1]),
     "operator 0 (STRIDED_SLICE): strides[1] is 0; allowed is a non-zero stride (as TFLM requires)"),
    ("STRIDED_SLICE", lambda op, sg, m: _shape(_tensor(sg, op, 0), [1, 1, 8, 7, 6]),
     "allowed is 1-D to 4-D (as TFLM requires)"),
    ("STRIDED_SLICE", lambda op, sg, m: (_option(op, shrinkAxisMask=2),
                                         _int_buffer(m, _tensor(sg, op, 1), [0, 9, 0, -5])),
     "axis 1 is shrunk at index 9, which is outside its 8 elements; allowed is [-8, 7]"),
    ("STRIDED_SLICE", lambda op, sg, m: _option(op, shrinkAxisMask=4),
     "axis 2 is shrunk with strides[2] -1; allowed is a positive stride (TFLM writes nothing for a shrunk axis "
     "stepped backward)"),
    ("STRIDED_SLICE", lambda op, sg, m: _option(op, beginMask=-1), "begin_mask is -1; allowed is [0, 2147483647]"),
    ("STRIDED_SLICE", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 4, 7, 5]),
     "has shape [1, 4, 7, 5], but slicing input shape [1, 8, 7, 6] as"),
    ("STRIDED_SLICE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 2), [0, 7, 0]),
     "end tensor 2 ('strided_slice_1/lambda_1/strided_slice/stack_1') has shape [3]; allowed is [4]"),
    ("SLICE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 1), [0, 7, 2, 0]),
     "operator 0 (SLICE): begin[1] is 7; allowed is [0, 6] (as TFLM requires)"),
    ("SLICE", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 2), [1, 4, 4, 3]),
     "size[2] is 4; allowed is -1 or [0, 3] from begin 2 (as TFLM requires)"),
    ("SLICE", lambda op, sg, m: (_int_buffer(m, _tensor(sg, op, 1), [0, 1, 2, 0], np.int64),
                                 setattr(_tensor(sg, op, 1), "type", 4)),
     "is int64 but size tensor 1 ('slice_1/Slice/size') is int32; allowed is the same type (as TFLM requires)"),
    ("SLICE", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 4, 2, 2]),
     "has 16 values, but the slice [1, 4, 2, 3] of input shape [1, 6, 5, 4] has 24; allowed is equal and non-zero"),
    ("SPLIT", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 0), [4]),
     "operator 0 (SPLIT): axis 4 is out of range; allowed is [-4, 3] for 4-D tensors"),
    ("SPLIT", lambda op, sg, m: _model_input(sg, op, 0), "has no data; it must be a constant tensor"),
    ("SPLIT", lambda op, sg, m: _option(op, numSplits=3), "num_splits is 3 but it has 2 outputs; allowed is equal"),
    ("SPLIT", lambda op, sg, m: _shape(_tensor(sg, op, 1, True), [1, 4, 6, 3]),
     "output 1 tensor 3 ('Identity_1') has shape [1, 4, 6, 3], but splitting input shape [1, 4, 6, 8] along axis 3 "
     "gives [1, 4, 6, 4] (allowed: equal)"),
    ("SPLIT_V", lambda op, sg, m: _int_buffer(m, _tensor(sg, op, 1), [2, 4, 4]),
     "operator 0 (SPLIT_V): size_splits [2, 4, 4] do not match the outputs' sizes [2, 4, 3] along axis 2; allowed "
     "is equal, with at most one -1 for the rest"),
    ("SPLIT_V", lambda op, sg, m: _shape(_tensor(sg, op, 2, True), [1, 4, 4, 4]),
     "the outputs add up to 10 along axis 2 but input tensor 0 ('input_0') has 9; allowed is equal"),
    ("PACK", lambda op, sg, m: _option(op, valuesCount=3), "values_count is 3 but it has 2 inputs; allowed is equal"),
    ("PACK", lambda op, sg, m: _option(op, axis=4), "operator 0 (PACK): axis 4 is out of range; allowed is [-4, 3]"),
    ("PACK", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 5, 7]),
     "input 1 tensor 1 ('input_1') has shape [1, 5, 7] but input 0 [1, 5, 6]; allowed is equal shapes"),
    ("UNPACK", lambda op, sg, m: _option(op, num=4),
     "num is 4, it has 3 outputs and input tensor 0 ('input_0') has 3 values along axis 1; allowed is all three "
     "equal"),
    ("UNPACK", lambda op, sg, m: _option(op, axis=-5), "axis -5 is out of range; allowed is [-4, 3] for 4-D tensors"),
    ("DEPTH_TO_SPACE", lambda op, sg, m: _option(op, blockSize=0), "block_size is 0; allowed is [1, 2147483647]"),
    ("DEPTH_TO_SPACE", lambda op, sg, m: _option(op, blockSize=3),
     "has 8 channels, which do not divide by block_size^2 = 9 (as TFLM requires)"),
    ("DEPTH_TO_SPACE", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 6, 8, 3]),
     "has shape [1, 6, 8, 3], but block_size 2 on input shape [1, 3, 4, 8] gives [1, 6, 8, 2] (allowed: equal)"),
    ("SPACE_TO_DEPTH", lambda op, sg, m: _option(op, blockSize=4),
     "has height 6 and width 4, which do not divide by block_size 4 (as TFLM requires)"),
    ("SPACE_TO_DEPTH", lambda op, sg, m: _option(op, blockSize=-2), "block_size is -2; allowed is [1, 2147483647]"),
]


@pytest.mark.parametrize("kind, edit, expect", MOVEMENT_REFUSALS,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(MOVEMENT_REFUSALS)])
def test_movement_refusals(kind: str, edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal(kind, edit)


@pytest.mark.parametrize("mask", ["ellipsisMask", "newAxisMask", "offset"])
def test_strided_slice_masks_tflm_ignores_are_unsupported(mask: str) -> None:
    msg = _refusal("STRIDED_SLICE", lambda op, sg, m: _option(op, **{mask: True if mask == "offset" else 2}),
                   error=UnsupportedError)
    assert "operator 0 (STRIDED_SLICE): " in msg and "supported is 0 (TFLM ignores it" in msg


def _outputs(op: Any, sg: Any, outputs: list[int]) -> None:
    op.outputs = np.asarray(outputs, dtype=np.int32)
    sg.outputs = np.asarray(sorted(set(outputs)), dtype=np.int32)


@pytest.mark.parametrize("kind, outputs", [("TRANSPOSE", [0]), ("SPLIT", [2, 2])])
def test_one_writer_per_tensor(kind: str, outputs: list[int]) -> None:
    # An operator writing its own input, or one tensor twice: a copy over itself (memcpy overlapping).
    msg = _refusal(kind, lambda op, sg, m: _outputs(op, sg, outputs))
    assert f"operator 0 ({kind}) writes tensor {outputs[-1]}, which is already a model input or an operator's " \
           "output; allowed is one writer per tensor" in msg
# ---------------------------------------------------------------------------
# SUB, MAXIMUM, MINIMUM, PADV2, SQUARED_DIFFERENCE, PRELU, ARG_MAX (issue 17)


def _type(t: Any, name: str) -> None:
    from tests.tflite_edit import schema

    t.type = getattr(schema().TensorType, name)


def _int8_buffer(m: Any, t: Any, values: list[int]) -> None:
    m.buffers[t.buffer].data = np.frombuffer(np.asarray(values, dtype=np.int8).tobytes(), dtype=np.uint8).copy()
    t.shape = np.asarray([len(values)], dtype=np.int32)


def _runtime_input(sg: Any, op: Any, pos: int) -> None:
    """Input ``pos`` of ``op`` becomes a model input (computed at run time, not a constant)."""
    t = _tensor(sg, op, pos)
    t.buffer = 0
    sg.inputs = np.asarray(list(sg.inputs) + [op.inputs[pos]], dtype=np.int32)


@pytest.mark.parametrize("kind, edit, expect", [
    ("SUB", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-9), "operator 0 (SUB): the output rescaling factor is"),
    ("SUB", lambda op, sg, m: setattr(op.builtinOptions, "fusedActivationFunction", 4),
     "operator 0 (SUB): fused activation is TANH; allowed is NONE, RELU, RELU6, RELU_N1_TO_1"),
    ("SUB", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 4, 2, 8]), "of shape [1, 4, 2, 8] does not broadcast"),
    ("MAXIMUM", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [2, 4, 4, 8]),
     "has shape [2, 4, 4, 8], but broadcasting [1, 4, 4, 8] with [1, 4, 4, 8] gives [1, 4, 4, 8]"),
    ("MINIMUM", lambda op, sg, m: _type(_tensor(sg, op, 0, True), "INT32"), "is int32; allowed is int8"),
    ("PADV2", lambda op, sg, m: setattr(_tensor(sg, op, 2).quantization, "zeroPoint", np.asarray([5])),
     "are quantized differently; allowed is equal quantization (as TFLM requires)"),
    ("PADV2", lambda op, sg, m: _int8_buffer(m, _tensor(sg, op, 2), [1, 2]),
     "PadV2/constant_values') has 2 values; allowed is 1 (as TFLM requires)"),
    ("SQUARED_DIFFERENCE", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-12),
     "operator 0 (SQUARED_DIFFERENCE): the output multiplier (2 x the larger input scale)^2 / (2^14 x output scale)"),
    ("PRELU", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-12),
     "operator 0 (PRELU): the multiplier input scale / output scale is"),
    ("PRELU", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 8, 1]), "of shape [1, 8, 1] does not broadcast"),
    # TFLM's ARG_MAX refuses an int64 output (at Eval); as a model output it is refused before the operator
    ("ARG_MAX", lambda op, sg, m: _type(_tensor(sg, op, 0, True), "INT64"),
     "tensor 2 ('Identity') (a model input or output) is of type int64"),
    ("ARG_MAX", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [4]),
     "operator 0 (ARG_MAX): axis 4 of tensor 1"),
    ("ARG_MIN", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [-5]),
     "operator 0 (ARG_MIN): axis -5 of tensor 1"),
    ("ARG_MAX", lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 4, 10]),
     "has shape [1, 4, 10], but input shape [1, 4, 4, 10] without axis 3 is [1, 4, 4] (allowed: equal)"),
    ("RSQRT", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-9),
     "operator 1 (RSQRT): the output multiplier 1 / (sqrt(input scale) x output scale) / 2^20 is"),
    ("RSQRT", lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e9),
     "(shift -45); allowed is a shift of at least -31 (TFLM shifts right by it)"),
])
def test_arithmetic_operators(kind: str, edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal(kind, edit)


@pytest.mark.parametrize("kind, edit, expect", [
    ("SUB", lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 1, 4, 4, 8]), "has rank 5; supported is at most 4"),
    ("PADV2", lambda op, sg, m: _runtime_input(sg, op, 2), "is computed at run time; supported is a constant padding"),
    ("ARG_MAX", lambda op, sg, m: _runtime_input(sg, op, 1), "is computed at run time; supported is a constant axis"),
    ("RSQRT", lambda op, sg, m: setattr(_tensor(sg, op, 0).quantization, "zeroPoint", np.asarray([0])),
     "has zero point 0; supported is -128 (only non-negative values"),
])
def test_arithmetic_operators_unsupported(kind: str, edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal(kind, edit, error=UnsupportedError)


# ---------------------------------------------------------------------------
# TRANSPOSE_CONV (issue 17): inputs output_shape, weights, input, bias


def _int64(m: Any, t: Any, values: list[int]) -> None:
    _int_buffer(m, t, values, np.int64)
    _type(t, "INT64")


@pytest.mark.parametrize("edit, expect", [
    (lambda op, sg, m: setattr(op.builtinOptions, "strideH", 0), "operator 0 (TRANSPOSE_CONV): stride_h is 0; "
                                                                 "allowed is [1, 32767]"),
    (lambda op, sg, m: setattr(op.builtinOptions, "strideW", 40000), "stride_w is 40000; allowed is [1, 32767]"),
    (lambda op, sg, m: setattr(op.builtinOptions, "fusedActivationFunction", 4),
     "operator 0 (TRANSPOSE_CONV): fused activation is TANH; allowed is NONE, RELU, RELU6, RELU_N1_TO_1"),
    (lambda op, sg, m: _runtime_input(sg, op, 0), "(output_shape) of operator 0 (TRANSPOSE_CONV)) has no data; "
                                                  "it must be a constant tensor"),
    (lambda op, sg, m: _int64(m, _tensor(sg, op, 0), [1, 10, 8, 4]), "(output_shape) of operator 0 (TRANSPOSE_CONV)) is int64; "
                                                           "allowed is int32"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 2), [1, 5, 4, 2]),
     "operator 0 (TRANSPOSE_CONV): shapes do not agree: input [1, 5, 4, 2], weights [4, 3, 3, 3], output "
     "[1, 10, 8, 4] (allowed: equal batches, weights [output channels, h, w, input channels])"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 10, 8, 5]), "shapes do not agree"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [10, 8, 4]),
     "output tensor 4 ('Identity') has shape [10, 8, 4]; a 4-D NHWC shape is required"),
    (lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 3), [1, 2, 3]),
     "Squeeze') has 3 values; allowed is one per output channel (4)"),
    (lambda op, sg, m: _int64(m, _tensor(sg, op, 3), [1, 2, 3, 4]), "(bias) of operator 0 (TRANSPOSE_CONV)) is int64; "
                                                           "allowed is int32"),
    (lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-12),
     "operator 0 (TRANSPOSE_CONV): the multiplier of output channel 0 (input scale x weight scale / output scale)"),
    (lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 3), [-(1 << 31), 0, 0, 0]),
     "which overflows int32; allowed is |accumulator| * 2^shift <= 2147483392"),
    (lambda op, sg, m: setattr(_tensor(sg, op, 1).quantization, "zeroPoint", np.asarray([3, 0, 0, 0])),
     "has zero point 3; allowed is 0 (TFLM needs symmetric weights and bias)"),
    (lambda op, sg, m: setattr(op, "inputs", op.inputs[:2]), "operator 0 (TRANSPOSE_CONV): has 2 inputs; allowed is "
                                                             "3 to 4"),
])
def test_transpose_conv_refusals(edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal("TRANSPOSE_CONV", edit)


def test_transpose_conv_padding_beyond_int16_is_refused() -> None:
    """SAME padding of a filter 65539 high: TFLM keeps the padding in an int16 (crafted in the IR: the
    weights would be too big for a test file)."""
    g = parse_tflite(build(op_cases("TRANSPOSE_CONV")[0]), source="m.tflite")
    op = g.ops[0]
    w = g.tensors[op.inputs[1]]
    w.shape = (4, 65539, 1, 3)
    w.data = np.zeros(w.shape, dtype=np.int8)
    with pytest.raises(ModelError, match=r"operator 0 \(TRANSPOSE_CONV\): SAME padding along the height is 32768; "
                                         r"allowed is at most 32767 \(TFLM keeps it in an int16\)"):
        validate_operators(g)


# RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR (issue 17): op_cases index 0 resizes [1, 4, 5, 3] to size [8, 10]


def _resize(m: Any, sg: Any, op: Any, in_shape: list[int], size: list[int]) -> None:
    _shape(_tensor(sg, op, 0), in_shape)
    _int32_buffer(m, _tensor(sg, op, 1), size)
    _shape(_tensor(sg, op, 0, True), [in_shape[0], *size, in_shape[3]])
    for t in sg.tensors:
        t.shapeSignature = None


@pytest.mark.parametrize("kind, edit, expect", [
    ("RESIZE_BILINEAR", lambda op, sg, m: (setattr(op.builtinOptions, "alignCorners", True),
                                           setattr(op.builtinOptions, "halfPixelCenters", True)),
     "operator 0 (RESIZE_BILINEAR): align_corners and half_pixel_centers are both set; allowed is at most one "
     "(as TFLM requires)"),
    ("RESIZE_NEAREST_NEIGHBOR", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [8, 9]),
     "has shape [1, 8, 10, 3], but the input's batches and channels with size [8, 9] give [1, 8, 9, 3] (allowed: "
     "equal)"),
    ("RESIZE_BILINEAR", lambda op, sg, m: _int32_buffer(m, _tensor(sg, op, 1), [8, 10, 1]),
     "has shape [3]; allowed is [2] (the output height and width, as TFLM requires)"),
    ("RESIZE_NEAREST_NEIGHBOR", lambda op, sg, m: _runtime_input(sg, op, 1),
     "(input 1 (size) of operator 0 (RESIZE_NEAREST_NEIGHBOR)) has no data; it must be a constant tensor"),
    ("RESIZE_BILINEAR", lambda op, sg, m: _shape(_tensor(sg, op, 0), [4, 5, 3]),
     "has shape [4, 5, 3]; a 4-D NHWC shape is required"),
    ("RESIZE_BILINEAR", lambda op, sg, m: _type(_tensor(sg, op, 0, True), "UINT8"), "is uint8; allowed is int8"),
    # TFLM's rounded scale (1024 + 27) / 55 = 19 puts output row 54 at 1026/1024: row 1 of a 1-row input
    ("RESIZE_BILINEAR", lambda op, sg, m: _resize(m, sg, op, [1, 1, 5, 3], [55, 10]),
     "operator 0 (RESIZE_BILINEAR): resizing the height from 1 to 55 would read input index 1 (TFLM's rounded "
     "scale overshoots); allowed are indices below 1"),
    ("RESIZE_BILINEAR", lambda op, sg, m: _resize(m, sg, op, [1, 1, 1 << 21, 1], [1, 4]),
     "resizing the width from 2097152 to 4 overflows TFLM's int32 arithmetic"),
])
def test_resize_refusals(kind: str, edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal(kind, edit)


# BATCH_MATMUL (issue 17): op_cases index 0 multiplies [1, 3, 4, 5] by [1, 3, 5, 6] into [1, 3, 4, 6]


@pytest.mark.parametrize("edit, expect", [
    (lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 3, 4, 6]),
     "have depths 5 and 4; allowed is equal (as TFLM requires)"),
    (lambda op, sg, m: setattr(op.builtinOptions, "adjY", True), "have depths 5 and 6; allowed is equal"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 1), [2, 5, 6]),
     "the batch dimensions of lhs [1, 3, 4, 5] and rhs [2, 5, 6] do not broadcast"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 1), [1, 1, 1, 1, 3, 5, 6]), "has shape [1, 1, 1, 1, 3, 5, 6]; allowed "
                                                                        "are ranks 2 to 5 (as TFLM requires)"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 0), [20]), "allowed are ranks 2 to 5"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 3, 4, 5]),
     "has shape [1, 3, 4, 5], but the product is [1, 3, 4, 6] (allowed: 72 values and rank at least 4"),
    (lambda op, sg, m: _scale(_tensor(sg, op, 0, True), 1e-12), "the multiplier lhs scale x rhs scale / output scale"),
    (lambda op, sg, m: setattr(_tensor(sg, op, 1).quantization, "scale", np.asarray([0.1, 0.2], dtype=np.float32)),
     "has 2 per-channel scales; allowed is one (per-tensor quantization)"),
])
def test_batch_matmul_refusals(edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal("BATCH_MATMUL", edit)


def _own_constant(m: Any, sg: Any, op: Any, pos: int, values: list[int]) -> None:
    """Input ``pos`` of ``op`` becomes a constant of its own (a new buffer)."""
    from tests.tflite_edit import schema

    t = _tensor(sg, op, pos)
    m.buffers.append(schema().BufferT())
    t.buffer = len(m.buffers) - 1
    _int8_buffer(m, t, values)


def test_batch_matmul_of_two_constants_is_unsupported() -> None:
    # case 4: [1, 3, 4, 5] by a constant [3, 5, 6]; the lhs becomes a constant [60] too
    assert "are both constants; supported is at most one constant input" in _refusal(
        "BATCH_MATMUL", lambda op, sg, m: _own_constant(m, sg, op, 0, list(range(60))), case=4,
        error=UnsupportedError)


# L2_NORMALIZATION (issue 17): op_cases index 0 normalizes [1, 6, 10]


@pytest.mark.parametrize("edit, expect", [
    (lambda op, sg, m: setattr(op.builtinOptions, "fusedActivationFunction", 1),
     "operator 0 (L2_NORMALIZATION): fused activation is RELU; allowed is NONE"),
    (lambda op, sg, m: [_shape(_tensor(sg, op, 0), [1, 1, 2, 3, 10]), _shape(_tensor(sg, op, 0, True), [1, 1, 2, 3, 10])],
     "has shape [1, 1, 2, 3, 10]; allowed is 1-D to 4-D (as TFLM requires)"),
    (lambda op, sg, m: _shape(_tensor(sg, op, 0, True), [1, 60]), "allowed is equal shapes"),
    (lambda op, sg, m: [_shape(_tensor(sg, op, 0), [1, 120000]), _shape(_tensor(sg, op, 0, True), [1, 120000])],
     "has 120000 values along its last axis; the sum of their squares"),
    (lambda op, sg, m: _type(_tensor(sg, op, 0, True), "FLOAT32"), "mixes int8 and float32"),
])
def test_l2_normalization_refusals(edit: Callable[[Any, Any, Any], None], expect: str) -> None:
    assert expect in _refusal("L2_NORMALIZATION", edit)
