"""The int16 rows (:data:`INT16_RULES`): the operators of int16x8 models (16-bit activations with zero point 0,
symmetric int8 weights, int64 or int32 biases) that TFLM's 16x8 reference kernels run and our portable int16
kernels cover (codegen/ops/int16.py).  An operator is an int16 operator when one of its run-time tensors is
int16; its row is chosen here the way FLOAT_RULES' rows are chosen for float32 operators.

The shape, window and option checks are the int8 rows'.  The arithmetic checks are TFLM's 16x8 arithmetic:

- CONV_2D and FULLY_CONNECTED accumulate in int64 with an int64 bias and in int32 with an int32 bias; without
  a bias as their quantized_bias_type option says (the converter writes INT64): in int32 only when it is INT32;
  DEPTHWISE_CONV_2D in int64 with its int64 bias;
- an int32 accumulator is requantized by the int32 MultiplyByQuantizedMultiplier (the int8 rows' checks,
  with inputs up to 32768 in magnitude: base._max_offset knows int16), as are the int16 QUANTIZE, ADD, SUB,
  MUL and LEAKY_RELU;
- an int64 accumulator by the int64 MultiplyByQuantizedMultiplier, which multiplies it by the multiplier
  rounded to 16 bits and shifts right by 15 - shift: the shift must be below 8 (TFLM asserts it) and the
  product must fit int64 (refused here when it could overflow for some input).

TRANSPOSE_CONV (16x8: always the int64 accumulator), CONCATENATION and the data movement of INT16_MOVEMENT
take the int8 rows' shape checks with int16 data; RELU, RELU6, MAXIMUM and MINIMUM the int8 rows' checks.
The kinds TFLM itself refuses on int16 (:data:`TFLM_NO_INT16`) are refused saying so.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from tinyml.graph.ir import Graph, Op
from tinyml.graph.validate.arith import _arith_rule_table, rsqrt_multiplier
from tinyml.graph.validate.base import (INT32_MAX, INT8_ACTIVATIONS, Operand, Rule, _check_multiplier, _f32, _fail,
                                        _op, multiplier_shift)
from tinyml.graph.validate.convlike import (_batch_matmul_shapes, _conv_like_rules, _transpose_conv_padding,
                                            _transpose_conv_shapes, batch_matmul_shape)
from tinyml.graph.validate.core import (DEPTHWISE_WEIGHT_AXIS, _activation_range, _both_constant, _channel_multipliers,
                                        _concat_inputs, _concat_shapes, _conv_shapes, _depthwise_shapes, _fc_shapes,
                                        _quantize, _rule_table, _same_size, _t, _window_extent)
from tinyml.graph.validate.int16_nonlinear import int16_nonlinear_rules
from tinyml.graph.validate.lstm import _lstm_rules, lstm_arithmetic
from tinyml.graph.validate.movement import _movement_rules

INT16_SPAN = 1 << 15  # the largest |x| of an int16 value
MAX_SHIFT_64 = 7  # TFLM's int64 MultiplyByQuantizedMultiplier: shift in [-31, 8)
# |accumulator| bound of the int64 requantization: times the 16-bit multiplier (at most 2^15) plus the
# rounding term (at most 2^45) it stays below 2^63
ACC64_LIMIT = ((1 << 63) - 1 - (1 << 45)) >> 15
TFLITE_INT32 = 2  # the TensorType code of INT32 (the quantized_bias_type options)
# The data-movement operators whose TFLM kernels take int16 (DEPTH_TO_SPACE and SPACE_TO_DEPTH refuse it in
# their Prepare: TFLM_NO_INT16).
INT16_MOVEMENT = ("TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK")
# The operators with an int8 row whose TFLM kernels refuse int16 (as the installed tflite-micro package does:
# tests/test_int16_activations.py), and the types they take: refused as TFLM refuses them, not as a gap here.
TFLM_NO_INT16 = {
    "DEPTH_TO_SPACE": "float32 and int8",  # its Prepare
    "SPACE_TO_DEPTH": "float32 and int8",  # its Prepare
    "HARD_SWISH": "float32 and int8",  # its Eval
    "PRELU": "float32 and int8",  # its Prepare (alpha int8)
    "L2_NORMALIZATION": "float32 and int8",  # its Prepare
    "RESIZE_BILINEAR": "float32 and int8",  # its Eval (tests/test_int16_rest.py)
    "ARG_MAX": "float32, uint8 and int8",  # its Eval (arg_min_max)
    "ARG_MIN": "float32, uint8 and int8",  # its Eval (arg_min_max)
}


def int16_refusal(kind: str) -> str:
    """Why tinyml refuses ``kind`` on int16 (a kind without an INT16_RULES row): TFLM does not run it either,
    or tinyml does not yet."""
    if kind in TFLM_NO_INT16:
        return f"which TFLM does not run either (its {kind} takes {TFLM_NO_INT16[kind]} only)"
    return "which tinyml does not support yet"


def _int16_rule_table() -> dict[str, Rule]:
    rules = _rule_table()
    i16 = ("int16",)
    act = Operand("input", i16)
    out = (Operand("output", i16),)
    weights = Operand("weights", kind="const", quant="weights")
    bias = Operand("bias", ("int64", "int32"), kind="const", optional=True, quant="bias")
    conv, dw, fc = rules["CONV_2D"], rules["DEPTHWISE_CONV_2D"], rules["FULLY_CONNECTED"]
    arith = _arith_rule_table(rules["PAD"])
    return {
        "CONV_2D": Rule(inputs=(act, weights, bias), outputs=out, ints=conv.ints, activations=INT8_ACTIVATIONS,
                        checks=(_conv_shapes, _window_extent, _int16_multipliers, _activation_range)),
        # TFLM's 16x8 DEPTHWISE_CONV_2D reads its bias as int64 (and needs one, as the int8 row says): an int32
        # bias it reads past the end of (its outputs are garbage), so that is a ModelError.
        "DEPTHWISE_CONV_2D": Rule(
            inputs=(act, Operand("weights", kind="const", quant="weights", axis=DEPTHWISE_WEIGHT_AXIS),
                    Operand("bias", ("int64",), kind="const", quant="bias")), outputs=out,
            ints=dw.ints, activations=INT8_ACTIVATIONS,
            checks=(_depthwise_shapes, _window_extent, _int16_multipliers, _activation_range)),
        "FULLY_CONNECTED": Rule(inputs=(act, weights, bias), outputs=out, ints=fc.ints, activations=INT8_ACTIVATIONS,
                                checks=(_fc_shapes, _int16_multipliers, _activation_range)),
        # QUANTIZE: float32 -> int16 (AffineQuantize), int16 -> int16, int8 -> int16 and int16 -> int8
        # (Requantize); DEQUANTIZE: int16 -> float32.
        "QUANTIZE": Rule(inputs=(Operand("input", ("float32", "int8", "int16"), quant="none"),),
                         outputs=(Operand("output", ("int8", "int16")),), checks=(_same_size, _quantize)),
        "DEQUANTIZE": Rule(inputs=(act,), outputs=(Operand("output", ("float32",), quant="none"),),
                           checks=(_same_size,)),
        # ADD, SUB: TFLM's general int16 path (left shift 15, every rescaling factor below 1), which TFLM runs
        # whatever the pot_scale_int16 option says (TFLite's power-of-two path is not TFLM's); the int8 rows
        # with int16 operands.
        "ADD": _int16_row(rules["ADD"]),
        "SUB": _int16_row(arith["SUB"]),
        # MUL: TFLM MulElementwise on int16 (the product, up to 2^30, in int32; the int8 row's checks).
        "MUL": _int16_row(rules["MUL"]),
        # PAD, PADV2: the int8 row with int16 data (TFLM PadEval copies the values; the padding value is the
        # constant_values input, quantized as the output, or the output zero point).
        "PAD": _int16_row(rules["PAD"]),
        "PADV2": _int16_row(arith["PADV2"]),
        # AVERAGE_POOL_2D, MAX_POOL_2D: TFLM's int16 AveragePool and MaxPool (the int8 rows; the average's sum of
        # up to filter_h x filter_w int16 values in TFLM's int32 accumulator must not overflow).
        "AVERAGE_POOL_2D": _int16_row(rules["AVERAGE_POOL_2D"], _int16_pool_sum),
        "MAX_POOL_2D": _int16_row(rules["MAX_POOL_2D"]),
        # LEAKY_RELU: TFLM QuantizeLeakyRelu<int16_t> (the int8 row's multipliers, on inputs up to 32768).
        "LEAKY_RELU": _int16_row(rules["LEAKY_RELU"]),
        "RESHAPE": rules["RESHAPE"],
        "SQUEEZE": rules["SQUEEZE"],
        **int16_nonlinear_rules(rules),  # SOFTMAX, LOGISTIC, TANH, MEAN
        # CONCATENATION: TFLM copies int16 values unchanged (EvalUnquantized) and, unlike for int8, runs inputs
        # quantized unlike the output (the converter makes them alike; TFLite would refuse them): the bytes
        # are copied as TFLM copies them.  At most 10 inputs (TFLM's kMaxInputNum).
        "CONCATENATION": Rule(inputs=(Operand("input", i16, kind="any", quant="none"),),
                              outputs=(Operand("output", i16, quant="none"),), repeat_last=True,
                              checks=(_concat_inputs, _concat_shapes)),
        # TRANSPOSE_CONV: TFLM's 16x8 reference_integer_ops::TransposeConv, products summed in int64 with an
        # int64 bias (an int16 bias TFLM widens to int64; an int32 one it would read as int64, past its end),
        # then the int64 requantization (the int8 row's shapes and padding).
        "TRANSPOSE_CONV": _int16_transpose_conv_row(_conv_like_rules()["TRANSPOSE_CONV"]),
        # data movement: the int8 rows with int16 data (TFLM copies the values, reading no quantization)
        **{kind: _int16_row(rule) for kind, rule in _movement_rules().items() if kind in INT16_MOVEMENT},
        # RELU: TFLM ReluQuantized<int16_t> (zero points 0, which its Prepare asserts): the int8 row's multiplier
        # on inputs up to 32768.  RELU6: Relu6Quantized<int16_t>, a clamp of the raw values to [0, quantized 6].
        "RELU": _int16_row(rules["RELU"]),
        "RELU6": _int16_row(rules["RELU6"]),
        # MAXIMUM, MINIMUM: TFLM compares the int16 values as they are (the int8 rows).
        "MAXIMUM": _int16_row(arith["MAXIMUM"]),
        "MINIMUM": _int16_row(arith["MINIMUM"]),
        # RESIZE_NEAREST_NEIGHBOR: TFLM copies the int16 values as they are (the int8 row).
        "RESIZE_NEAREST_NEIGHBOR": _int16_row(_conv_like_rules()["RESIZE_NEAREST_NEIGHBOR"]),
        # RSQRT: TFLM's RsqrtEvalQuantized<int16_t> (zero points 0, which its Prepare asserts; it fails on a
        # negative input at run time, as on an int8 one below the zero point); the int8 row's multiplier check.
        "RSQRT": Rule(inputs=(act,), outputs=out, checks=(_same_size, rsqrt_multiplier)),
        # SQUARED_DIFFERENCE: TFLM's SquaredDifference<int16_t> (left shift 0; the int8 row, its multiplier
        # check taking the int16 left shift).
        "SQUARED_DIFFERENCE": _int16_row(arith["SQUARED_DIFFERENCE"]),
        # BATCH_MATMUL: TFLM's BatchMatMul<int16_t, int64_t> (zero points 0, which its Prepare asserts; products
        # summed in int64, the int64 requantization): the int8 row's shapes, its multiplier against the int64
        # accumulator bound depth x 32768 x 32768.
        "BATCH_MATMUL": dataclasses.replace(
            _int16_row(_conv_like_rules()["BATCH_MATMUL"]),
            checks=(_both_constant, _batch_matmul_shapes, _int16_batch_matmul_multiplier)),
        # UNIDIRECTIONAL_SEQUENCE_LSTM: TFLM's EvalLstm<int16_t, int8_t, int16_t, int64_t> (int16 input, hidden
        # state and output, int8 per-tensor weights, int64 biases, which it reads whatever their type says: an
        # int32 one it would read past its end; an int16 cell state): the int8 row's structure and shapes, its
        # arithmetic with the gates' sums in int64.
        "UNIDIRECTIONAL_SEQUENCE_LSTM": _int16_lstm_row(_lstm_rules()["UNIDIRECTIONAL_SEQUENCE_LSTM"]),
    }


def _int16_row(rule: Rule, *checks: Callable[[Graph, Op], None]) -> Rule:
    """``rule`` with int16 in place of its int8 operands, and ``checks`` after its own."""
    def f(o: Operand) -> Operand:
        return dataclasses.replace(o, dtypes=("int16",)) if o.dtypes == ("int8",) else o

    return dataclasses.replace(rule, inputs=tuple(f(o) for o in rule.inputs), outputs=tuple(f(o) for o in rule.outputs),
                               checks=(*rule.checks, *checks))


def _int16_pool_sum(graph: Graph, op: Op) -> None:
    taps = int(op.options["filter_h"]) * int(op.options["filter_w"])  # validated by the row's checks
    if taps * INT16_SPAN > INT32_MAX:
        raise _fail(graph, f"{_op(op)}: filter {op.options['filter_h']}x{op.options['filter_w']} sums {taps} int16 "
                           f"values, which can overflow TFLM's int32 sum; allowed are at most "
                           f"{INT32_MAX // INT16_SPAN} values")


def _int16_transpose_conv_row(rule: Rule) -> Rule:
    """The int8 TRANSPOSE_CONV row with an int16 input and output, an int64 or int16 bias and the int64
    requantization's checks."""
    shape, weights = rule.inputs[:2]
    bias = Operand("bias", ("int64", "int16"), kind="const", optional=True, quant="bias")
    return dataclasses.replace(rule, inputs=(shape, weights, Operand("input", ("int16",)), bias),
                               outputs=(Operand("output", ("int16",)),),
                               checks=(_transpose_conv_shapes, _transpose_conv_padding,
                                       _int16_transpose_conv_multipliers, _activation_range))


def _int16_transpose_conv_multipliers(graph: Graph, op: Op) -> None:
    """Per output channel (the weights' axis 0), TFLM's multiplier against the int64 accumulator bound
    sum |w| * 32768 + |bias| (each weight meets each output value at most once)."""
    _channel_multipliers(graph, op, _t(graph, op, 2), _t(graph, op, 1), _t(graph, op, 0, True), _t(graph, op, 3), 0,
                         check=_check_multiplier64)


def _int16_batch_matmul_multiplier(graph: Graph, op: Op) -> None:
    """TFLM GetQuantizedConvolutionMultipler (as the int8 row) for the int64 requantization."""
    lhs, rhs, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    product = _f32(np.float32(lhs.quant.s) * np.float32(rhs.quant.s))
    depth = batch_matmul_shape(graph, op).depth
    _check_multiplier64(graph, op, "the multiplier lhs scale x rhs scale / output scale", product / _f32(out.quant.s),
                        depth * INT16_SPAN * INT16_SPAN, bound=f"the inner dimension {depth} x 32768 x 32768",
                        remedy=f"the inner dimension may be at most {ACC64_LIMIT // (INT16_SPAN * INT16_SPAN)}")


def _int16_lstm_row(rule: Rule) -> Rule:
    """The int8 LSTM row with int16 activations and states, int64 biases and the int64 gate requantization."""
    i16 = ("int16",)

    def f(o: Operand) -> Operand:
        if o.name == "bias":
            return dataclasses.replace(o, dtypes=("int64",))
        return dataclasses.replace(o, dtypes=i16) if o.name in ("input", "hidden state", "output") else o

    return dataclasses.replace(rule, inputs=tuple(f(o) for o in rule.inputs), outputs=tuple(f(o) for o in rule.outputs),
                               checks=(*rule.checks[:-1], _int16_lstm_arithmetic))  # the last: _lstm_arithmetic


def _int16_lstm_arithmetic(graph: Graph, op: Op) -> None:
    lstm_arithmetic(graph, op, _check_multiplier64)


def int16_operator(graph: Graph, op: Op) -> bool:
    """Whether ``op`` computes on 16-bit activations: one of its run-time tensors is int16 (INT16_RULES and the
    int16 lowerings apply); state (a variable tensor, such as an int8 SVDF's int16 state) does not count."""
    return any(0 <= t < len(graph.tensors) and graph.tensors[t].dtype == "int16" and not graph.tensors[t].is_const
               and not graph.tensors[t].variable for t in op.inputs + op.outputs)


def int64_accumulator(graph: Graph, op: Op) -> bool:
    """Whether TFLM's 16x8 kernel of ``op`` accumulates in int64: with an int64 bias; without a bias, unless its
    quantized_bias_type option is INT32 (FULLY_CONNECTED and CONV_2D alike, as the installed TFLM does:
    tests/test_ops_int16.py checks each, the option absent, FLOAT32, INT32 and INT64)."""
    b = _t(graph, op, 2)
    if b is not None:
        return b.dtype == "int64"
    return op.options.get("quantized_bias_type", 0) != TFLITE_INT32


def _int16_multipliers(graph: Graph, op: Op) -> None:
    """Per output channel, the multiplier TFLM computes (as the int8 rows) against the accumulator bound
    sum |w| * 32768 + |bias|, for the int64 or the int32 requantization."""
    axis = DEPTHWISE_WEIGHT_AXIS if op.kind == "DEPTHWISE_CONV_2D" else 0
    check = _check_multiplier64 if int64_accumulator(graph, op) else _check_multiplier
    _channel_multipliers(graph, op, _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True), _t(graph, op, 2),
                         axis, check=check)


def _check_multiplier64(graph: Graph, op: Op, what: str, real: float, acc: int, *,
                        bound: str = "the sum of |weights| x 32768 plus |bias| of one output",
                        remedy: str = "requantize the model") -> None:
    """TFLM's int64 MultiplyByQuantizedMultiplier: a positive finite multiplier whose shift is below 8, on an
    accumulator whose product with the 16-bit multiplier cannot overflow int64.  ``bound`` says what ``acc``
    adds up (the default: a convolution's or fully connected layer's row, which the LSTM gates share) and
    ``remedy`` what to change when it is too large."""
    if not math.isfinite(real) or real <= 0.0:
        raise _fail(graph, f"{_op(op)}: {what} is {real:g}; it must be positive and finite; requantize the model")
    shift = multiplier_shift(real)
    if shift > MAX_SHIFT_64:
        raise _fail(graph, f"{_op(op)}: {what} is {real:g} (shift {shift}); allowed is below 2^{MAX_SHIFT_64} "
                           f"(shift at most {MAX_SHIFT_64}, as TFLM's 64-bit requantization requires); requantize "
                           "the model")
    if acc > ACC64_LIMIT:
        raise _fail(graph, f"{_op(op)}: the accumulator reaches {acc} ({bound}), whose product with {what} "
                           f"overflows TFLM's int64 arithmetic; allowed is at most {ACC64_LIMIT}; {remedy}")


INT16_RULES: dict[str, Rule] = _int16_rule_table()
