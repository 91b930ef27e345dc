"""The int16 rows of SOFTMAX, LOGISTIC, TANH and MEAN (appended to :data:`INT16_RULES` by ``int16``), and the
Prepare arithmetic of TFLM's 16-bit kernels for them that the lowerings (codegen/ops/int16_nonlinear.py) share:

- SOFTMAX (TFLM CalculateSoftmaxParams for int16): the output has zero point 0 and a scale within
  0.001/32768 of 1/32768 (TF_LITE_ENSURE_NEAR); the differences x - max (down to -65535) are rescaled by
  QuantizeMultiplier(input scale x beta / (10 / 65535)) in TFLM's int32 MultiplyByQuantizedMultiplier (the
  int8 rows' multiplier checks); the row's exponentials, each at most 32767, are summed in int32, so a row
  holds at most 65538 values;
- LOGISTIC and TANH (TFLM's int16 Prepare): the output scale is 2^-15 (CheckedLog2); the input multiplier
  TFLM computes (3 << left shift for a power-of-two input scale of 2^-12, and for TANH also 2^-11; else
  input scale x 3 x 4096 doubled up to 16384 or more, at most 31 times) must be 1 to 32767: above, TFLM's
  debug check fails and its int32 product can overflow; 0 (an input scale below about 3.8e-14) sends TFLM's
  kernel into its power-of-two branch with 3 << 31, which is undefined;
- MEAN: the int8 row with int16 data (TFLM's EvalIntegerMean on int16), whose multiplier check (core's) takes
  the int32 sum of one output's values (32768 x their count), which must not overflow.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tinyml.graph.ir import Graph, Op
from tinyml.graph.validate.base import INT32_MAX, Operand, Rule, _check_multiplier, _f32, _fail, _op, _ten
from tinyml.graph.validate.core import _mean_multiplier, _mean_shapes, _same_shape, _same_size, _t

SOFTMAX16_OUTPUT_SCALE = 1.0 / 32768.0
SOFTMAX16_SCALE_TOLERANCE = 0.001 / 32768.0  # TF_LITE_ENSURE_NEAR's epsilon, in float
SOFTMAX16_DIFF_RANGE = 65535  # the largest |x - max| of an int16 row
SOFTMAX16_EXP_MAX = 32767  # the largest value of the exp table
SOFTMAX16_MAX_DEPTH = INT32_MAX // SOFTMAX16_EXP_MAX  # the row's sum of exponentials stays within int32
SIGMOID16_OUTPUT_LOG2 = -15  # LOGISTIC and TANH: output scale 2^-15
SIGMOID16_MAX_MULTIPLIER = 32767  # TFLM: TFLITE_DCHECK_LE(input_multiplier, 32767)


def softmax16_real(beta: float, input_scale: float) -> float:
    """TFLM's int16 SOFTMAX input rescaling: double(input scale) x double(beta) / (10 / 65535), which maps
    the differences [-65535, 0] onto the exp table's [-10, 0]."""
    return _f32(input_scale) * _f32(beta) / (10.0 / 65535.0)


def checked_log2(x: float) -> tuple[bool, int]:
    """TFLM CheckedLog2 (in float): whether log2(x) is within 1e-3 of an integer, and that integer (rounded
    half away from zero)."""
    f = np.float32
    with np.errstate(all="ignore"):
        x_log2 = f(f(math.log(_f32(x))) * f(f(1.0) / f(math.log(2.0))))
    if not np.isfinite(x_log2):
        return False, 0
    rounded = f(math.floor(abs(float(x_log2)) + 0.5) * (1 if x_log2 >= 0 else -1))
    return bool(abs(f(x_log2 - rounded)) < f(1e-3)), int(rounded)


def sigmoid16_input(kind: str, input_scale: float) -> tuple[int, int]:
    """The (multiplier, right shift) by which TFLM's int16 LOGISTIC (TANH) rescales an input to the sigmoid
    table's 1/(3 x 4096) (1/(3 x 2048)) steps: its Prepare's input_multiplier and input_left_shift, with the
    kernel's power-of-two case (multiplier 0) resolved to 3 << shift, right shift 0."""
    is_pot, log2 = checked_log2(input_scale)
    shift = 12 + log2  # (15 - kInputIntegerBits) + log2(input scale)
    if is_pot and shift in ((0, 1) if kind == "TANH" else (0,)):
        return 3 << shift, 0
    multiplier, shift = _f32(input_scale) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return (int(multiplier) if multiplier < 2.0 ** 31 else 1 << 31), shift


def _softmax16_output_scale(graph: Graph, op: Op) -> None:
    out = _t(graph, op, 0, True)
    f = np.float32
    if abs(f(out.quant.s) - f(SOFTMAX16_OUTPUT_SCALE)) > f(SOFTMAX16_SCALE_TOLERANCE):
        raise _fail(graph, f"{_op(op)}: output {_ten(out)} has scale {out.quant.s:g}; allowed is 1/32768 "
                           f"(within {SOFTMAX16_SCALE_TOLERANCE:.3g}, as TFLM's int16 SOFTMAX requires); "
                           "requantize the model")


def _softmax16_input(graph: Graph, op: Op) -> None:
    inp = _t(graph, op, 0)
    depth = inp.shape[-1]
    if depth > SOFTMAX16_MAX_DEPTH:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has rows of {depth} values, whose sum of exponentials "
                           f"(each up to {SOFTMAX16_EXP_MAX}) can overflow TFLM's int32 sum; allowed are at most "
                           f"{SOFTMAX16_MAX_DEPTH} values per row (the last dimension)")
    beta = float(op.options.get("beta", 1.0))
    _check_multiplier(graph, op, "the input multiplier input scale x beta / (10/65535)",
                      softmax16_real(beta, inp.quant.s), SOFTMAX16_DIFF_RANGE)


def _sigmoid16_scales(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    is_pot, log2 = checked_log2(out.quant.s)
    if not is_pot or log2 != SIGMOID16_OUTPUT_LOG2:
        raise _fail(graph, f"{_op(op)}: output {_ten(out)} has scale {out.quant.s:g}; allowed is 2^-15 "
                           f"(1/32768, as TFLM's int16 {op.kind} requires); requantize the model")
    multiplier, _ = sigmoid16_input(op.kind, inp.quant.s)
    if not 1 <= multiplier <= SIGMOID16_MAX_MULTIPLIER:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has scale {inp.quant.s:g}, which gives TFLM's int16 "
                           f"{op.kind} an input multiplier of {multiplier}; allowed is 1 to "
                           f"{SIGMOID16_MAX_MULTIPLIER} (an input scale from about 3.8e-14 to 2.67); requantize the "
                           "model")


def int16_nonlinear_rules(rules: dict[str, Rule]) -> dict[str, Rule]:
    """The int16 rows of SOFTMAX, LOGISTIC, TANH and MEAN, from the int8 ``rules`` (core's table)."""
    i16 = (Operand("input", ("int16",)),), (Operand("output", ("int16",)),)
    mean = rules["MEAN"]
    return {
        "SOFTMAX": Rule(inputs=i16[0], outputs=i16[1], checks=(_same_shape, _softmax16_output_scale, _softmax16_input)),
        "LOGISTIC": Rule(inputs=i16[0], outputs=i16[1], checks=(_same_size, _sigmoid16_scales)),
        "TANH": Rule(inputs=i16[0], outputs=i16[1], checks=(_same_size, _sigmoid16_scales)),
        "MEAN": dataclasses.replace(mean, inputs=(i16[0][0], *mean.inputs[1:]), outputs=i16[1],
                                    checks=(_mean_shapes, _mean_multiplier)),
    }
