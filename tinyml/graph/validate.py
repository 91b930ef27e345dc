"""Validation: every number of an imported Graph range-checked, in one place, before lowering.

The importer checks structure (indices in range, shapes bounded, buffers of
the right size).  This module checks meaning: for every operator kind we
lower, one table row (:data:`RULES`) states what TFLM requires and what our
int32 arithmetic needs:

- the operands: how many, which are optional (-1 allowed only there), their
  types, whether they are constants, and how they are quantized;
- the options: integer ranges (strides, dilations, filter sizes), fused
  activations, paddings;
- fixed output quantization where TFLM fixes it (SOFTMAX, LOGISTIC);
- the relations between them (``checks``): shapes against each other,
  multipliers that QuantizeMultiplier represents with a shift the C can
  apply, and accumulators that cannot overflow int32 for any input.

Lowering (tinyml.codegen) may trust what passes here: it raises nothing.
Every failure is a :class:`ModelError` of one line naming the operator
(index and kind) or the tensor (index and name), the field, the value and
the allowed range.  A model TFLM runs but our kernels do not cover (the
table's comments name each case) is refused here too, with an
:class:`UnsupportedError` in the same form.

Before any row, the whole model is checked, most telling reason first: an
operator of a kind without a row (Vela's Ethos-U operator, a custom
operator by its name, a builtin by name and index, and whether it keeps
state), then the activation types (float32, dynamic-range, 16-bit), then
the tensors' types and shapes, then the order of the operators (a variable
tensor read before any operator writes it is state TFLM keeps between
invocations, which tinyml does not).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph.ir import DTYPE_BYTES, NUMPY_DTYPES, Graph, Op, Tensor

INT32_MAX = (1 << 31) - 1
# Integer ranges of the types a zero point may have.
ZP_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (0, 0), "int32": (0, 0)}
INT8_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
# A filter size above this, or a window that spans more, is refused: then every index product of
# the kernels ((out-1)*stride + (k-1)*dilation + 1, padding) fits int32.
MAX_WINDOW = 1 << 24
# TFLM keeps strides, dilations, depth multipliers and paddings in int16_t fields (ConvParams,
# DepthwiseParams, PoolParams, PaddingValues): larger values are truncated there.
INT16_MAX = (1 << 15) - 1
# What a requantized accumulator may reach, so that adding the output zero point (at most 255
# away) cannot overflow int32: |acc| * 2^left_shift <= ACC_LIMIT.
ACC_LIMIT = (1 << 31) - 256
# QuantizeMultiplier's exponent must stay <= 30: TFLM computes x * (1 << shift).
MAX_SHIFT = 30
MEAN_MAX_VALUES = 1 << 23  # 255 * 2^23 < 2^31: the sum of the (x - zero point) cannot overflow
MEAN_MAX_RANK = 4  # our mean_s8 kernel reduces 1-D to 4-D inputs
PAD_MAX_RANK = 5  # TFLM PadKernelMaxDimensionCount
BROADCAST_MAX_RANK = 4  # our add_s8/mul_s8 kernels broadcast up to 4-D (TFLM up to 6-D)
ADD_LEFT_SHIFT = 20  # TFLM: left_shift = 20 for int8 ADD and SUB (15 for int16)
SQUARED_DIFFERENCE_LEFT_SHIFT = 7  # TFLM: 255^2 * 2^14 stays below 2^31
RSQRT_SHIFT = 20  # TFLM RsqrtEvalQuantized: kShift, 1 / sqrt(x) is scaled up by 2^20 and the output down


# ---------------------------------------------------------------------------
# The table.


@dataclass(frozen=True)
class Operand:
    """One input or output of an operator.

    kind: "act" (computed at run time), "const" (a constant buffer) or "any".
    quant: "int8" (per tensor, zero point in the type's range), "weights"
    (symmetric: every zero point 0, per channel allowed along ``axis``),
    "bias" (int32, zero point 0, per channel allowed), "none" (no requirement).
    """

    name: str
    dtypes: tuple[str, ...] = ("int8",)
    kind: str = "act"
    optional: bool = False
    quant: str = "int8"
    axis: int = 0


@dataclass(frozen=True)
class Rule:
    inputs: tuple[Operand, ...]
    outputs: tuple[Operand, ...]
    repeat_last: bool = False  # the last input may repeat (CONCATENATION)
    repeat_last_output: bool = False  # the last output may repeat (SPLIT, SPLIT_V, UNPACK)
    ints: dict[str, tuple[int, int]] = field(default_factory=dict)  # option -> allowed [lo, hi]
    activations: tuple[str, ...] = ("NONE",)  # allowed values of the fused activation option
    fixed_output: tuple[float | None, int | None] | None = None  # (scale, zero point) TFLM requires
    checks: tuple[Callable[[Graph, Op], None], ...] = ()


def _rule_table() -> dict[str, Rule]:
    act = Operand("input")
    out = (Operand("output"),)
    weights = Operand("weights", kind="const", quant="weights")
    bias = Operand("bias", ("int32",), kind="const", optional=True, quant="bias")
    window = {"stride_h": (1, INT16_MAX), "stride_w": (1, INT16_MAX),
              "dilation_h": (1, INT16_MAX), "dilation_w": (1, INT16_MAX)}
    pool = {"stride_h": (1, INT16_MAX), "stride_w": (1, INT16_MAX),
            "filter_h": (1, MAX_WINDOW), "filter_w": (1, MAX_WINDOW)}
    either = Operand("input", kind="any")
    return {
        "CONV_2D": Rule(inputs=(act, weights, bias), outputs=out, ints=window, activations=INT8_ACTIVATIONS,
                        checks=(_conv_shapes, _window_extent, _weighted_multipliers, _activation_range)),
        # TFLM's DEPTHWISE_CONV_2D crashes without a bias (it frees the absent tensor): required here.
        "DEPTHWISE_CONV_2D": Rule(
            inputs=(act, Operand("weights", kind="const", quant="weights", axis=3),
                    Operand("bias", ("int32",), kind="const", quant="bias")), outputs=out,
            ints=dict(window, depth_multiplier=(1, INT16_MAX)), activations=INT8_ACTIVATIONS,
            checks=(_depthwise_shapes, _window_extent, _weighted_multipliers, _activation_range)),
        "FULLY_CONNECTED": Rule(inputs=(act, weights, bias), outputs=out, ints={"weights_format": (0, 0)},
                                activations=INT8_ACTIVATIONS,
                                checks=(_fc_shapes, _weighted_multipliers, _activation_range)),
        "AVERAGE_POOL_2D": Rule(inputs=(act,), outputs=out, ints=pool, activations=INT8_ACTIVATIONS,
                                checks=(_pool_shapes, _window_extent, _same_quantization, _activation_range)),
        "MAX_POOL_2D": Rule(inputs=(act,), outputs=out, ints=pool, activations=INT8_ACTIVATIONS,
                            checks=(_pool_shapes, _window_extent, _same_quantization, _activation_range)),
        # MEAN over more than 4 dimensions, or over no axis, is unsupported (UnsupportedError): our kernel
        # reduces 1-D to 4-D inputs over at least one axis.
        "MEAN": Rule(inputs=(act, Operand("axis", ("int32",), kind="const", quant="none")), outputs=out,
                     checks=(_mean_shapes, _mean_multiplier)),
        # ADD/MUL of rank above 4 (TFLM broadcasts up to 6-D) and of two constants (TFLM computes them; the
        # converter folds them) are unsupported (UnsupportedError); everything else here is a ModelError.
        "ADD": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes, _add_multipliers, _activation_range)),
        "MUL": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes, _mul_multiplier, _activation_range)),
        "CONCATENATION": Rule(inputs=(either,), outputs=out, repeat_last=True,
                              checks=(_concat_quantization, _concat_shapes)),
        "RESHAPE": Rule(inputs=(Operand("input", tuple(NUMPY_DTYPES), quant="none"),
                                Operand("shape", ("int32",), kind="any", optional=True, quant="none")),
                        outputs=(Operand("output", tuple(NUMPY_DTYPES), quant="none"),),
                        checks=(_same_size, _same_type)),
        "SQUEEZE": Rule(inputs=(Operand("input", tuple(NUMPY_DTYPES), quant="none"),),
                        outputs=(Operand("output", tuple(NUMPY_DTYPES), quant="none"),),
                        checks=(_same_size, _same_type, _squeeze_shape)),
        # PAD of a scalar, and a padding value computed at run time, are unsupported (UnsupportedError); the rest
        # is a ModelError.  PADV2 (below) shares this row: TFLM registers one kernel for both.
        "PAD": Rule(inputs=(act, Operand("paddings", ("int32",), kind="const", quant="none"),
                            Operand("constant_values", kind="any", optional=True)), outputs=out,
                    checks=(_pad_shapes, _pad_value)),
        # SOFTMAX, LOGISTIC, TANH, HARD_SWISH: the input-scale bounds are where TFLM's Prepare stops or its
        # arithmetic is undefined (ModelError).
        "SOFTMAX": Rule(inputs=(act,), outputs=out, fixed_output=(1.0 / 256.0, -128),
                        checks=(_same_shape, _softmax_input_scale)),
        "LOGISTIC": Rule(inputs=(act,), outputs=out, fixed_output=(None, -128), checks=(_same_size, _q4_input_shift)),
        "TANH": Rule(inputs=(act,), outputs=out, checks=(_same_size, _q4_input_shift)),
        "HARD_SWISH": Rule(inputs=(act,), outputs=out, checks=(_same_size, _hard_swish_multipliers)),
        "RELU": Rule(checks=(_same_size, _relu_multiplier), inputs=(act,), outputs=out),
        "RELU6": Rule(checks=(_same_size, _relu6_range), inputs=(act,), outputs=out),
        "LEAKY_RELU": Rule(checks=(_same_size, _leaky_relu_multipliers), inputs=(act,), outputs=out),
        "QUANTIZE": Rule(inputs=(Operand("input", ("float32", "int8"), quant="none"),), outputs=out,
                         checks=(_same_size, _quantize)),
        "DEQUANTIZE": Rule(inputs=(act,), outputs=(Operand("output", ("float32",), quant="none"),),
                           checks=(_same_size,)),
        **_movement_rules(),
    }


def _arith_rule_table(pad: Rule) -> dict[str, Rule]:
    """The rows of SUB, MAXIMUM, MINIMUM, PADV2 (``pad``: PAD's row), SQUARED_DIFFERENCE, PRELU, ARG_MAX,
    ARG_MIN and RSQRT."""
    either = Operand("input", kind="any")
    out = (Operand("output"),)
    arg = Rule(inputs=(Operand("input"), Operand("axis", ("int32",), kind="any", quant="none")),
               outputs=(Operand("output", ("int32",), quant="none"),), checks=(_arg_min_max_shapes,))
    return {
        # SUB as ADD: TFLM's CalculateOpDataSub is CalculateOpDataAdd (the TFLM we test against computes the
        # real multipliers in double as ADD does; some TFLM sources divide in float32 and differ by an LSB).
        # Rank above 4 (TFLM broadcasts up to 6-D) and two constants are unsupported (UnsupportedError).
        "SUB": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes, _add_multipliers, _activation_range)),
        # MAXIMUM/MINIMUM have no Prepare in TFLM: the int8 values are compared as they are (the quantization is
        # not read).  TFLM broadcasts up to 5-D, our kernel up to 4-D (UnsupportedError above).
        "MAXIMUM": Rule(inputs=(either, either), outputs=out, checks=(_both_constant, _broadcast_shapes)),
        "MINIMUM": Rule(inputs=(either, either), outputs=out, checks=(_both_constant, _broadcast_shapes)),
        "PADV2": pad,
        # SQUARED_DIFFERENCE broadcasts up to 4-D in TFLM (BroadcastBinaryFunction4DSlow).
        "SQUARED_DIFFERENCE": Rule(inputs=(either, either), outputs=out,
                                   checks=(_both_constant, _broadcast_shapes, _squared_difference_multipliers)),
        # PRELU: TFLM's BroadcastPrelu4DSlow (up to 4-D), alpha per tensor as TFLM reads it.
        "PRELU": Rule(inputs=(either, Operand("alpha", kind="any")), outputs=out,
                      checks=(_both_constant, _broadcast_shapes, _prelu_multipliers)),
        # ARG_MAX, ARG_MIN: TFLM computes int8 input, int32 axis, int32 output only (an int64 output is refused
        # at its Eval); an axis computed at run time is unsupported (UnsupportedError).
        "ARG_MAX": arg,
        "ARG_MIN": arg,
        # RSQRT: TFLM's Eval fails on every input below the zero point; an input zero point other than -128
        # (values that can be negative) is unsupported (UnsupportedError).
        "RSQRT": Rule(inputs=(Operand("input"),), outputs=out, checks=(_same_size, _rsqrt_quantization)),
    }


# ---------------------------------------------------------------------------
# Messages.


def _op(op: Op) -> str:
    return f"operator {op.index} ({op.kind})"


def _ten(t: Tensor) -> str:
    return f"tensor {t.index} ('{t.name}')"


def _fail(graph: Graph, what: str) -> ModelError:
    return ModelError(f"{graph.source}: {what}" if graph.source else what)


def _unsupported_model(graph: Graph, what: str) -> UnsupportedError:
    """A valid model (TFLM runs it) that tinyml does not, for a reason of the whole model."""
    return UnsupportedError(f"{graph.source}: {what}" if graph.source else what)


def _unsupported(graph: Graph, op: Op, what: str) -> UnsupportedError:
    """A valid model (TFLM runs it) that our kernels do not cover."""
    msg = f"{_op(op)}: {what}"
    return UnsupportedError(f"{graph.source}: {msg}" if graph.source else msg)


# ---------------------------------------------------------------------------
# Arithmetic the checks need (the exponent QuantizeMultiplier gives, as in TFLite).


def multiplier_shift(real: float) -> int:
    """The shift of TFLite QuantizeMultiplier(real): real = q * 2^shift, q in [0.5, 1) rounded to Q31."""
    if real == 0.0:
        return 0
    q, shift = math.frexp(real)
    if round(abs(q) * (1 << 31)) == (1 << 31):
        shift += 1
    return 0 if shift < -31 else shift  # QuantizeMultiplier flushes such a multiplier to 0 (shift 0)


def add_reals(s1: float, s2: float, s_out: float) -> tuple[float, float, float]:
    """TFLM CalculateOpDataAdd for int8 (in double, the scales widened from float32): the real rescaling
    factors of input 1, input 2 and the output."""
    twice_max = 2.0 * max(s1, s2)
    return s1 / twice_max, s2 / twice_max, twice_max / (float(1 << ADD_LEFT_SHIFT) * s_out)


def softmax_real(beta: float, in_scale: float) -> float:
    """TFLM PreprocessSoftmaxScaling for an int8 SOFTMAX (Q5.26 input): min(beta * scale * 2^26, 2^31 - 1)."""
    return min(float(beta) * _f32(in_scale) * float(1 << 26), float(INT32_MAX))


def hard_swish_reals(in_scale: float, out_scale: float) -> tuple[float, float]:
    """TFLM HardSwishPrepare for int8: the output and the reluish real multipliers, divided in float32 and
    then widened."""
    hires_input_scale = np.float32(1.0 / 128.0) * np.float32(in_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    with np.errstate(all="ignore"):
        return (float(np.float32(hires_input_scale / np.float32(out_scale))),
                float(np.float32(hires_input_scale / reluish_scale)))


def resolve_axes(values: list[int], rank: int) -> list[int]:
    """TFLite ResolveAxis: negative axes count from the end, duplicates are dropped (validation checked
    every axis is in [-rank, rank - 1])."""
    axes: list[int] = []
    for a in values:
        r = a + rank if a < 0 else a
        if r not in axes:
            axes.append(r)
    return axes


def _check_multiplier(graph: Graph, op: Op, what: str, real: float, acc: int) -> None:
    """``real`` must be a finite positive multiplier whose shift is at most MAX_SHIFT, and an
    accumulator of magnitude up to ``acc`` shifted left by it must stay within ACC_LIMIT."""
    if not math.isfinite(real) or real <= 0.0:
        raise _fail(graph, f"{_op(op)}: {what} is {real:g}; it must be positive and finite; requantize the model")
    shift = multiplier_shift(real)
    if shift > MAX_SHIFT:
        raise _fail(graph, f"{_op(op)}: {what} is {real:g} (shift {shift}); allowed is below 2^{MAX_SHIFT} "
                           f"(shift at most {MAX_SHIFT}); requantize the model")
    if acc << max(shift, 0) > ACC_LIMIT:
        raise _fail(graph, f"{_op(op)}: {what} is {real:g} (left shift {max(shift, 0)}) on an accumulator of up "
                           f"to {acc}, which overflows int32; allowed is |accumulator| * 2^shift <= {ACC_LIMIT}; "
                           "requantize the model")


def _max_offset(t: Tensor) -> int:
    """The largest |x - zero point| over int8 values x."""
    zp = t.quant.zp if t.quant is not None else 0
    return max(128 + zp, 127 - zp)


def _f32(x: float) -> float:
    return float(np.float32(x))


# ---------------------------------------------------------------------------
# Relations (the ``checks`` of the table).  Operands and quantization are checked first.


def _t(graph: Graph, op: Op, pos: int, output: bool = False) -> Tensor | None:
    idx = (op.outputs if output else op.inputs)[pos] if pos < len(op.outputs if output else op.inputs) else -1
    return graph.tensors[idx] if idx >= 0 else None


def _shape_error(graph: Graph, op: Op, what: str) -> ModelError:
    return _fail(graph, f"{_op(op)}: {what}")


def _rank4(graph: Graph, op: Op, t: Tensor, role: str) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise _shape_error(graph, op, f"{role} {_ten(t)} has shape {list(t.shape)}; a 4-D NHWC shape is required")
    return t.shape  # type: ignore[return-value]


def _conv_shapes(graph: Graph, op: Op) -> None:
    inp, w, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    n, _, _, in_c = _rank4(graph, op, inp, "input")
    on, _, _, out_c = _rank4(graph, op, out, "output")
    wo, _, _, w_c = _rank4(graph, op, w, "weights")
    if on != n or wo != out_c or in_c % w_c != 0 or out_c % (in_c // w_c) != 0:
        raise _shape_error(graph, op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                                      f"output {list(out.shape)} (allowed: weights [output channels, h, w, "
                                      "input channels / groups])")
    _bias_size(graph, op, out_c)


def _depthwise_shapes(graph: Graph, op: Op) -> None:
    inp, w, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    n, _, _, in_c = _rank4(graph, op, inp, "input")
    on, _, _, out_c = _rank4(graph, op, out, "output")
    one, _, _, w_c = _rank4(graph, op, w, "weights")
    dm = op.options.get("depth_multiplier", 0)
    if on != n or one != 1 or w_c != out_c or out_c != in_c * dm:
        raise _shape_error(graph, op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                                      f"output {list(out.shape)}, depth_multiplier {dm} (allowed: output "
                                      "channels = input channels * depth_multiplier, weights [1, h, w, output "
                                      "channels])")
    _bias_size(graph, op, out_c)


def _fc_shapes(graph: Graph, op: Op) -> None:
    inp, w, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    if len(w.shape) != 2:
        raise _shape_error(graph, op, f"weights {_ten(w)} have shape {list(w.shape)}; allowed is 2-D "
                                      "[outputs, inputs]")
    out_depth, accum = w.shape
    if inp.size % accum != 0 or out.size != inp.size // accum * out_depth:
        raise _shape_error(graph, op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                                      f"output {list(out.shape)} (allowed: input values a multiple of {accum}, "
                                      f"output values = batches x {out_depth})")
    _bias_size(graph, op, out_depth)


def _bias_size(graph: Graph, op: Op, channels: int) -> None:
    b = _t(graph, op, 2)
    if b is not None and b.size != channels:
        raise _shape_error(graph, op, f"bias {_ten(b)} has {b.size} values; allowed is one per output channel "
                                      f"({channels})")


def _pool_shapes(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    n, _, _, c = _rank4(graph, op, inp, "input")
    on, _, _, oc = _rank4(graph, op, out, "output")
    if (on, oc) != (n, c):
        raise _shape_error(graph, op, f"shapes do not agree: input {list(inp.shape)}, output {list(out.shape)} "
                                      "(allowed: equal batches and channels)")


def _window_extent(graph: Graph, op: Op) -> None:
    """The output size the padding gives, and a window whose extent keeps every index product in int32."""
    o = op.options
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if "filter_h" in o:
        k_h, k_w, d_h, d_w = o["filter_h"], o["filter_w"], 1, 1
        if k_h * k_w > MAX_WINDOW:
            raise _fail(graph, f"{_op(op)}: filter {k_h}x{k_w} has {k_h * k_w} values; allowed is at most "
                               f"{MAX_WINDOW}")
    else:
        w = _t(graph, op, 1)
        k_h, k_w, d_h, d_w = w.shape[1], w.shape[2], o["dilation_h"], o["dilation_w"]
    padding = o.get("padding", "VALID")
    for axis, size, k, s, d, got in (("height", inp.shape[1], k_h, o["stride_h"], d_h, out.shape[1]),
                                     ("width", inp.shape[2], k_w, o["stride_w"], d_w, out.shape[2])):
        eff = (k - 1) * d + 1
        extent = max(got - 1, 0) * s + eff
        if eff > MAX_WINDOW or extent > MAX_WINDOW:
            raise _fail(graph, f"{_op(op)}: the window along the {axis} (filter {k}, stride {s}, dilation {d}) "
                               f"spans {max(eff, extent)} values; allowed is at most {MAX_WINDOW}")
        expect = (size + s - 1) // s if padding == "SAME" else (size + s - eff) // s
        if expect < 1 or expect != got:
            raise _fail(graph, f"{_op(op)}: output {axis} is {got} but {padding} padding of input {axis} {size} "
                               f"with filter {k}, stride {s} and dilation {d} gives {expect} (allowed: at least 1 "
                               "and equal)")
        pad = max(extent - size, 0) // 2 if padding == "SAME" else 0
        if pad > INT16_MAX:
            raise _fail(graph, f"{_op(op)}: SAME padding along the {axis} (filter {k}, stride {s}, dilation {d}) "
                               f"is {pad}; allowed is at most {INT16_MAX} (TFLM keeps it in an int16)")


def _weighted_multipliers(graph: Graph, op: Op) -> None:
    """Per output channel: input_scale * filter_scale / output_scale representable, and the int32
    accumulator sum |w| * max|x - zp| + |bias| (shifted left by the multiplier's shift) in range."""
    axis = RULES[op.kind].inputs[1].axis  # the weights' output-channel axis
    _channel_multipliers(graph, op, _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True), _t(graph, op, 2),
                         axis)


def _channel_multipliers(graph: Graph, op: Op, inp: Tensor, w: Tensor, out: Tensor, b: Tensor | None,
                         axis: int) -> None:
    """_weighted_multipliers for weights ``w`` whose output channels are along ``axis`` (every weight is
    used at most once per output value, so the accumulator bound holds)."""
    wq = w.quant
    channels = w.shape[axis]
    # TFLM (PopulateConvolutionQuantizationParams, CalculateOpDataFullyConnected) takes per-channel scales one
    # per output channel; it requires as many as there are output channels and that quantized_dimension name
    # an axis of that size (it need not be the output-channel axis).  Any other axis reads past the shape.
    if wq.per_channel and (wq.scale.size != channels or not 0 <= wq.axis < len(w.shape)
                           or w.shape[wq.axis] != channels):
        raise _fail(graph, f"{_op(op)}: weights {_ten(w)} of shape {list(w.shape)} have {wq.scale.size} scales "
                           f"on axis {wq.axis}; allowed is 1, or {channels} (one per output channel) on an axis "
                           f"of that size such as {axis} (as TFLM requires)")
    absw = np.abs(w.data.astype(np.int64))
    sums = np.moveaxis(absw, axis, 0).reshape(channels, -1).sum(axis=1) * _max_offset(inp)
    if b is not None:
        sums = sums + np.abs(b.data.astype(np.int64)).reshape(-1)
    in_s, out_s = _f32(inp.quant.s), _f32(out.quant.s)
    if op.kind == "FULLY_CONNECTED" and not wq.per_channel and b is not None:
        # TFLM GetQuantizedConvolutionMultipler: the bias scale must be the input x weight scale product.
        product = _f32(np.float32(in_s) * np.float32(wq.scale[0]))
        bias_s = float(b.quant.scale[0]) if b.quant is not None else 0.0
        ratio = abs(product - bias_s) / out_s
        if not ratio <= 0.02:
            raise _fail(graph, f"{_op(op)}: bias {_ten(b)} has scale {bias_s:g} but input scale x weight scale is "
                               f"{product:g}, {ratio:g} of the output scale apart; allowed is at most 0.02 "
                               "(as TFLM requires)")
    for c in range(channels):
        fs = float(wq.scale[c if wq.per_channel else 0])
        if op.kind == "FULLY_CONNECTED" and not wq.per_channel:
            real = _f32(np.float32(in_s) * np.float32(fs)) / out_s  # TFLM: the product in float
        else:
            real = in_s * fs / out_s
        _check_multiplier(graph, op, f"the multiplier of output channel {c} (input scale x weight scale / "
                                     "output scale)", real, int(sums[c]))


def _mul_multiplier(graph: Graph, op: Op) -> None:
    a, b, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    _check_multiplier(graph, op, "the multiplier input1 scale x input2 scale / output scale",
                      _f32(a.quant.s) * _f32(b.quant.s) / _f32(out.quant.s), _max_offset(a) * _max_offset(b))


def _mean_multiplier(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if not 1 <= inp.size <= MEAN_MAX_VALUES:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has {inp.size} values; allowed is 1 to {MEAN_MAX_VALUES}")
    _check_multiplier(graph, op, "the multiplier input scale / output scale", _f32(inp.quant.s) / _f32(out.quant.s),
                      inp.size * _max_offset(inp))


def _q4_input_shift(graph: Graph, op: Op) -> None:
    """TFLM's int8 LOGISTIC/TANH Prepare: frexp(input_scale * 2^27) gives a left shift, and
    CalculateInputRadius divides by (1LL << shift): beyond 62 that is undefined (with an input scale of
    1e38, shift 154, the fuzz test saw TFLM's outputs differ from the exact arithmetic's)."""
    inp = _t(graph, op, 0)
    shift = math.frexp(_f32(inp.quant.s) * float(1 << 27))[1]
    if shift < 0:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has scale {inp.quant.s:g}, which gives an input left "
                           f"shift of {shift}; allowed is at least 0 (an input scale of at least 2^-28, as TFLM's "
                           f"int8 {op.kind} needs); requantize the model")
    if shift > 62:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has scale {inp.quant.s:g}, which gives an input left "
                           f"shift of {shift}; allowed is at most 62 (TFLM computes 1 << shift in 64 bits)")


def _relu_multiplier(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    _check_multiplier(graph, op, "the multiplier input scale / output scale", _f32(inp.quant.s) / _f32(out.quant.s),
                      _max_offset(inp))


def _leaky_relu_multipliers(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    alpha = op.options.get("alpha", 0.0)
    if not math.isfinite(alpha):
        raise _fail(graph, f"{_op(op)}: alpha is {alpha}; allowed is a finite number")
    with np.errstate(all="ignore"):
        ident = float(np.float32(np.float32(inp.quant.s) / np.float32(out.quant.s)))
        scaled = float(np.float32(np.float32(np.float32(inp.quant.s) * np.float32(alpha)) / np.float32(out.quant.s)))
    _check_multiplier(graph, op, "the multiplier input scale / output scale", ident, _max_offset(inp))
    if scaled != 0.0:
        _check_multiplier(graph, op, "the multiplier input scale x |alpha| / output scale", abs(scaled),
                          _max_offset(inp))


def _quantize(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if inp.dtype == "int8":
        if inp.quant is None or inp.quant.per_channel:
            raise _fail(graph, f"{_op(op)}: input {_ten(inp)} needs per-tensor quantization parameters")
        _check_multiplier(graph, op, "the multiplier input scale / output scale",
                          _f32(inp.quant.s) / _f32(out.quant.s), _max_offset(inp))


def _quantized_bound(graph: Graph, op: Op, t: Tensor, value: float, what: str) -> None:
    """TFLM quantizes ``value`` with t's scale to an int32 (round(value / scale)): it must fit."""
    with np.errstate(all="ignore"):
        q = abs(float(np.float32(value) / np.float32(t.quant.s)))
    if not q < (1 << 30):
        raise _fail(graph, f"{_op(op)}: {what} {value:g} quantized with the scale {t.quant.s:g} of {_ten(t)} is "
                           f"{q:g} steps; allowed is below 2^30 (the scale is too small)")


def _activation_range(graph: Graph, op: Op) -> None:
    out = _t(graph, op, 0, True)
    act = op.options.get("activation", "NONE")
    for v in {"RELU6": (6.0,), "RELU_N1_TO_1": (-1.0, 1.0)}.get(act, ()):
        _quantized_bound(graph, op, out, v, f"the fused {act} bound")


def _relu6_range(graph: Graph, op: Op) -> None:
    _quantized_bound(graph, op, _t(graph, op, 0), 6.0, "the RELU6 bound")


def _squeeze_shape(graph: Graph, op: Op) -> None:
    """TFLM SqueezePrepare: the output shape is the input's without the squeezed dimensions (each of
    size 1; all size-1 dimensions when squeeze_dims is empty)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    rank = len(inp.shape)
    dims = op.options.get("squeeze_dims", [])
    drop = set()
    for d in dims:
        r = d + rank if d < 0 else d
        if not 0 <= r < rank or inp.shape[r] != 1:
            raise _fail(graph, f"{_op(op)}: squeeze dimension {d} of input shape {list(inp.shape)}; allowed is a "
                               f"dimension of size 1 in [-{rank}, {rank - 1}]")
        drop.add(r)
    if not dims:
        drop = {i for i, n in enumerate(inp.shape) if n == 1}
    expect = [n for i, n in enumerate(inp.shape) if i not in drop]
    if list(out.shape) != expect:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}; squeezing input shape "
                                      f"{list(inp.shape)} gives {expect} (allowed: equal)")


def _softmax_input_scale(graph: Graph, op: Op) -> None:
    """TFLM's QuantizeMultiplierGreaterThanOne stops the program unless beta * input scale * 2^26 > 1."""
    inp = _t(graph, op, 0)
    beta = float(op.options.get("beta", 1.0))
    real = softmax_real(beta, inp.quant.s)
    if not real > 1.0:
        raise _fail(graph, f"{_op(op)}: beta {beta:g} x input scale {inp.quant.s:g} x 2^26 is {real:g}; allowed "
                           "is above 1 (as TFLM requires: the input scale is too small); requantize the model")


def _hard_swish_multipliers(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    out_real, reluish_real = hard_swish_reals(inp.quant.s, out.quant.s)
    for what, real in (("the output multiplier input scale / 128 / output scale", out_real),
                       ("the reluish multiplier input scale / 128 / (3 / 32768)", reluish_real)):
        if not (math.isfinite(real) and real > 0.0):
            raise _fail(graph, f"{_op(op)}: {what} is {real:g} (input scale {inp.quant.s:g}, output scale "
                               f"{out.quant.s:g}); allowed is a positive finite number; requantize the model")
    out_e, rel_e = multiplier_shift(out_real), multiplier_shift(reluish_real)
    if out_e > 0:
        raise _fail(graph, f"{_op(op)}: output {_ten(out)} has scale {out.quant.s:g}, below input scale / 128 "
                           f"({inp.quant.s:g} / 128: output exponent {out_e}); allowed is an exponent of at most 0 "
                           "(TFLM's int8 HARD_SWISH rejects it); requantize the model")
    if not -31 <= rel_e <= 31:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has scale {inp.quant.s:g}, which gives a reluish "
                           f"exponent of {rel_e}; allowed is [-31, 31] (as TFLM's int8 HARD_SWISH requires)")


def _both_constant(graph: Graph, op: Op) -> None:
    a, b = _t(graph, op, 0), _t(graph, op, 1)
    if a.is_const and b.is_const:
        raise _unsupported(graph, op, f"inputs {_ten(a)} and {_ten(b)} are both constants; supported is at most "
                                      "one constant input (fold the operation into a constant when converting)")


def _broadcast_shapes(graph: Graph, op: Op) -> None:
    """TFLM's ADD/MUL: shapes right-aligned, each input dimension equal to the output's or 1, and the output
    the broadcast of the two inputs."""
    a, b, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    for role, t in (("input 0", a), ("input 1", b), ("output", out)):
        if len(t.shape) > BROADCAST_MAX_RANK:
            raise _unsupported(graph, op, f"{role} {_ten(t)} has rank {len(t.shape)}; supported is at most "
                                          f"{BROADCAST_MAX_RANK}")

    def extend(shape: tuple[int, ...]) -> list[int]:
        return [1] * (BROADCAST_MAX_RANK - len(shape)) + list(shape)

    dims = extend(out.shape)
    for role, t in (("input 0", a), ("input 1", b)):
        if any(x not in (d, 1) for x, d in zip(extend(t.shape), dims)):
            raise _shape_error(graph, op, f"{role} {_ten(t)} of shape {list(t.shape)} does not broadcast to the "
                                          f"output shape {list(out.shape)} (allowed: each dimension equal to the "
                                          "output's or 1)")
    expect = [max(x, y) for x, y in zip(extend(a.shape), extend(b.shape))]
    if expect != dims:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but broadcasting "
                                      f"{list(a.shape)} with {list(b.shape)} gives "
                                      f"{expect[BROADCAST_MAX_RANK - len(out.shape):]} (allowed: equal)")


def _add_multipliers(graph: Graph, op: Op) -> None:
    """TFLM's QuantizeMultiplierSmallerThanOneExp stops the program unless every rescaling factor is below 1."""
    a, b, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    s1, s2, so = _f32(a.quant.s), _f32(b.quant.s), _f32(out.quant.s)
    for name, real in zip(("input 0", "input 1", "output"), add_reals(s1, s2, so)):
        if not 0.0 < real < 1.0 or multiplier_shift(real) > 0:
            raise _fail(graph, f"{_op(op)}: the {name} rescaling factor is {real:g} (input scales {s1:g} and {s2:g}, "
                               f"output scale {so:g}); allowed is below 1 (as TFLM requires: the output scale is "
                               "too small); requantize the model")


def _concat_quantization(graph: Graph, op: Op) -> None:
    """TFLM ConcatenationPrepare (int8): every input has the output's scale and zero point."""
    out = _t(graph, op, 0, True)
    for pos in range(len(op.inputs)):
        t = _t(graph, op, pos)
        if np.float32(t.quant.s) != np.float32(out.quant.s) or t.quant.zp != out.quant.zp:
            raise _fail(graph, f"{_op(op)}: input {pos} {_ten(t)} (scale {t.quant.s:.9g}, zero point {t.quant.zp}) "
                               f"and output {_ten(out)} (scale {out.quant.s:.9g}, zero point {out.quant.zp}) are "
                               "quantized differently; allowed is equal quantization (as TFLM requires: "
                               "requantize the input first with QUANTIZE)")


def _concat_shapes(graph: Graph, op: Op) -> None:
    out = _t(graph, op, 0, True)
    rank = len(out.shape)
    if rank < 1:
        raise _shape_error(graph, op, f"output {_ten(out)} is a scalar; allowed is rank 1 or more")
    axis = int(op.options.get("axis", 0))
    pos_axis = axis + rank if axis < 0 else axis
    if not 0 <= pos_axis < rank:
        raise _fail(graph, f"{_op(op)}: axis {axis} is out of range; allowed is [-{rank}, {rank - 1}] for {rank}-D "
                           "tensors")
    total = 0
    for k in range(len(op.inputs)):
        t = _t(graph, op, k)
        if len(t.shape) != rank or any(t.shape[d] != out.shape[d] for d in range(rank) if d != pos_axis):
            raise _shape_error(graph, op, f"input {k} {_ten(t)} has shape {list(t.shape)}, which does not fit "
                                          f"output shape {list(out.shape)} concatenated along axis {pos_axis} "
                                          "(allowed: the output's rank and dimensions except along the axis)")
        total += t.shape[pos_axis]
    if total != out.shape[pos_axis]:
        raise _shape_error(graph, op, f"the inputs add up to {total} along axis {pos_axis} but output {_ten(out)} "
                                      f"has {out.shape[pos_axis]}; allowed is equal")


def _pad_shapes(graph: Graph, op: Op) -> None:
    """TFLM PadPrepare: at most 5-D, one (before, after) pair per dimension, each >= 0, and the output
    shape the input's padded."""
    inp, pads_t, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    rank = len(inp.shape)
    if rank == 0:
        raise _unsupported(graph, op, f"input {_ten(inp)} is a scalar; supported is 1-D to {PAD_MAX_RANK}-D")
    if rank > PAD_MAX_RANK:
        raise _shape_error(graph, op, f"input {_ten(inp)} has shape {list(inp.shape)}; allowed is 1-D to "
                                      f"{PAD_MAX_RANK}-D (as TFLM requires)")
    if len(out.shape) != rank:
        raise _shape_error(graph, op, f"output {_ten(out)} has rank {len(out.shape)} but input {_ten(inp)} has "
                                      f"rank {rank}; allowed is equal")
    pads = np.asarray(pads_t.data, dtype=np.int64).reshape(-1)
    if pads.size != 2 * rank:
        raise _shape_error(graph, op, f"paddings {_ten(pads_t)} have {pads.size} values; allowed is {rank}x2 "
                                      "(before and after for each dimension)")
    pads = pads.reshape(rank, 2)
    if np.any(pads < 0):
        raise _fail(graph, f"{_op(op)}: paddings {pads.tolist()} contain a negative value; allowed is 0 or more")
    expect = [int(n + before + after) for n, (before, after) in zip(inp.shape, pads.tolist())]
    if list(out.shape) != expect:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but input shape "
                                      f"{list(inp.shape)} padded by {pads.tolist()} gives {expect} (allowed: "
                                      "equal)")


def _mean_shapes(graph: Graph, op: Op) -> None:
    """TFLM ResolveAxis and the reduced output size (the output may keep the reduced dimensions as 1s)."""
    inp, axis_t, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    rank = len(inp.shape)
    if not 1 <= rank <= MEAN_MAX_RANK:
        raise _unsupported(graph, op, f"input {_ten(inp)} has shape {list(inp.shape)}; supported is 1-D to "
                                      f"{MEAN_MAX_RANK}-D")
    if len(out.shape) > MEAN_MAX_RANK:
        # TFLM's 4-D MEAN (keep_dims over height and width) extends the output shape to 4-D: a longer one
        # corrupts its memory (the fuzz test's float MEAN with a [1, 1, 1, 1, 4] output crashed it)
        raise _unsupported(graph, op, f"output {_ten(out)} has shape {list(out.shape)}; supported is at most "
                                      f"{MEAN_MAX_RANK}-D")
    values = [int(a) for a in np.asarray(axis_t.data).reshape(-1)]
    for a in values:
        if not -rank <= a < rank:
            raise _fail(graph, f"{_op(op)}: axis {a} of {_ten(axis_t)} is out of range; allowed is "
                               f"[-{rank}, {rank - 1}] for the {rank}-D input")
    axes = resolve_axes(values, rank)
    if not axes:
        raise _unsupported(graph, op, f"the axis tensor {_ten(axis_t)} is empty; a MEAN over no axis is not "
                                      "supported")
    expect = int(np.prod([d for i, d in enumerate(inp.shape) if i not in axes], dtype=np.int64))
    if out.size != expect:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but reducing "
                                      f"{list(inp.shape)} over axes {axes} leaves {expect} values (allowed: "
                                      "equal)")


def _same_type(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if inp.dtype != out.dtype:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} is {inp.dtype} but output {_ten(out)} is {out.dtype}; "
                           "allowed is the same type")


def _same_shape(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if len(inp.shape) < 1 or inp.shape != out.shape:
        raise _shape_error(graph, op, f"input {_ten(inp)} has shape {list(inp.shape)} and output {_ten(out)} "
                                      f"{list(out.shape)}; allowed is equal shapes of rank 1 or more")


def _same_size(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if inp.size != out.size:
        raise _shape_error(graph, op, f"input {_ten(inp)} has {inp.size} values but output {_ten(out)} has "
                                      f"{out.size}; allowed is the same number")


def _same_quantization(graph: Graph, op: Op) -> None:
    """TFLM PoolingPrepare: |in_scale - out_scale| <= 1e-6 and equal zero points."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if abs(float(inp.quant.s) - float(out.quant.s)) > 1.0e-6 or inp.quant.zp != out.quant.zp:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} (scale {inp.quant.s:.6g}, zero point {inp.quant.zp}) "
                           f"and output {_ten(out)} (scale {out.quant.s:.6g}, zero point {out.quant.zp}) are "
                           "quantized differently; allowed is equal quantization (as TFLM requires)")


# ---------------------------------------------------------------------------
# Data movement (TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK, DEPTH_TO_SPACE,
# SPACE_TO_DEPTH; lowered in codegen/ops/movement.py).  TFLM copies their int8 bytes unchanged and
# reads no quantization (none of their Prepares does), so none is required here, nor any relation
# between input and output: the output bytes are the input's, as in TFLM.


TRANSPOSE_MAX_RANK = 5  # TFLM TransposePrepare: "only supports 1D-5D input arrays"
STRIDED_SLICE_MAX_RANK = 4  # TFLM StridedSlicePrepare: kMaxDim
SLICE_MAX_RANK = 5  # TFLM SlicePrepare: kMaxDim


@dataclass(frozen=True)
class SliceAxis:
    """One input axis of a resolved STRIDED_SLICE or SLICE: input indices start, start + step, ...
    (``count`` of them); ``keep`` is False for an axis the output drops (shrink_axis_mask)."""

    start: int
    step: int
    count: int
    keep: bool = True


def _movement_rules() -> dict[str, Rule]:
    # int8 data, quantized or not, per tensor or per channel: TFLM reads none of it (neither do we)
    act = Operand("input", quant="none")
    out = (Operand("output", quant="none"),)
    i32 = Operand("", ("int32",), kind="const", quant="none")
    return {
        # A scalar input, and STRIDED_SLICE's ellipsis and new-axis masks and offset flag, are unsupported
        # (UnsupportedError); the rest is a ModelError.
        "TRANSPOSE": Rule(inputs=(act, dataclasses.replace(i32, name="perm")), outputs=out,
                          checks=(_transpose_shapes,)),
        "STRIDED_SLICE": Rule(inputs=(act, dataclasses.replace(i32, name="begin"), dataclasses.replace(i32, name="end"),
                                      dataclasses.replace(i32, name="strides")), outputs=out,
                              ints={"begin_mask": (0, INT32_MAX), "end_mask": (0, INT32_MAX),
                                    "shrink_axis_mask": (0, INT32_MAX)},
                              checks=(_strided_slice_shapes,)),
        "SLICE": Rule(inputs=(act, Operand("begin", ("int32", "int64"), kind="const", quant="none"),
                              Operand("size", ("int32", "int64"), kind="const", quant="none")), outputs=out,
                      checks=(_slice_shapes,)),
        "SPLIT": Rule(inputs=(dataclasses.replace(i32, name="axis"), act), outputs=out, repeat_last_output=True,
                      checks=(_split_shapes,)),
        "SPLIT_V": Rule(inputs=(act, Operand("size_splits", ("int32", "int64"), kind="any", quant="none"),
                                dataclasses.replace(i32, name="axis")), outputs=out, repeat_last_output=True,
                        checks=(_split_shapes,)),
        "PACK": Rule(inputs=(dataclasses.replace(act, kind="any"),), outputs=out, repeat_last=True,
                     checks=(_pack_shapes,)),
        "UNPACK": Rule(inputs=(act,), outputs=out, repeat_last_output=True, checks=(_unpack_shapes,)),
        "DEPTH_TO_SPACE": Rule(inputs=(act,), outputs=out, ints={"block_size": (1, INT32_MAX)},
                               checks=(_depth_to_space_shapes,)),
        "SPACE_TO_DEPTH": Rule(inputs=(act,), outputs=out, ints={"block_size": (1, INT32_MAX)},
                               checks=(_space_to_depth_shapes,)),
    }


def _vector(graph: Graph, op: Op, pos: int, n: int, what: str) -> list[int]:
    """The values of constant input ``pos``, which must be a 1-D tensor of ``n`` values."""
    t = _t(graph, op, pos)
    if len(t.shape) != 1 or t.shape[0] != n:
        raise _shape_error(graph, op, f"{what} {_ten(t)} has shape {list(t.shape)}; allowed is [{n}] (one value "
                                      "per input dimension)")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _rank_in(graph: Graph, op: Op, t: Tensor, hi: int, lo: int = 1) -> int:
    """The rank of input ``t``: refused above ``hi`` (as TFLM refuses it) and below ``lo`` (unsupported)."""
    rank = len(t.shape)
    if rank < lo:
        raise _unsupported(graph, op, f"input {_ten(t)} is a scalar; supported is 1-D to {hi}-D")
    if rank > hi:
        raise _shape_error(graph, op, f"input {_ten(t)} has shape {list(t.shape)}; allowed is {lo}-D to {hi}-D "
                                      "(as TFLM requires)")
    return rank


def _expect_shape(graph: Graph, op: Op, t: Tensor, expect: list[int], how: str, pos: int = 0) -> None:
    if list(t.shape) != expect:
        raise _shape_error(graph, op, f"output {pos} {_ten(t)} has shape {list(t.shape)}, but {how} gives "
                                      f"{expect} (allowed: equal)")


def _axis(graph: Graph, op: Op, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise _fail(graph, f"{_op(op)}: {what} {axis} is out of range; allowed is [-{rank}, {rank - 1}] for "
                           f"{rank}-D tensors")
    return axis + rank if axis < 0 else axis


def transpose_perm(graph: Graph, op: Op) -> list[int]:
    inp = _t(graph, op, 0)
    return _vector(graph, op, 1, len(inp.shape), "perm")


def _transpose_shapes(graph: Graph, op: Op) -> None:
    """TFLM TransposePrepare: 1-D to 5-D, a 1-D perm of one value per dimension, each in [0, rank); here
    also every dimension once (a perm that repeats one is no transpose) and the output shape the permuted
    input's (TFLM does not check it)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    rank = _rank_in(graph, op, inp, TRANSPOSE_MAX_RANK)
    perm = transpose_perm(graph, op)
    if sorted(perm) != list(range(rank)):
        raise _fail(graph, f"{_op(op)}: perm {perm} is not a permutation of [0, {rank - 1}]; allowed is every "
                           "dimension exactly once")
    _expect_shape(graph, op, out, [inp.shape[p] for p in perm], f"permuting input shape {list(inp.shape)} by {perm}")


def strided_slice_axes(graph: Graph, op: Op) -> list[SliceAxis]:
    """TFLM's StridedSlice (Prepare's CheckOutputSize and Eval's StridedSliceStartForAxis/EndForAxis) resolved
    per input axis: negative indices count from the end, the masks override begin and end, both are clamped
    to the axis ([0, size] going forward, [-1, size - 1] going backward), a shrunk axis takes one element."""
    inp = _t(graph, op, 0)
    rank = len(inp.shape)
    begin, end = _vector(graph, op, 1, rank, "begin"), _vector(graph, op, 2, rank, "end")
    strides = _vector(graph, op, 3, rank, "strides")
    bmask, emask = int(op.options.get("begin_mask", 0)), int(op.options.get("end_mask", 0))
    smask = int(op.options.get("shrink_axis_mask", 0))
    axes = []
    for k, size in enumerate(inp.shape):
        step = strides[k]
        if step == 0:
            raise _fail(graph, f"{_op(op)}: strides[{k}] is 0; allowed is a non-zero stride (as TFLM requires)")
        lo, hi = (0, size) if step > 0 else (-1, size - 1)
        start = begin[k] + size if begin[k] < 0 else begin[k]
        start = min(max(start, lo), hi)
        if bmask >> k & 1:
            start = 0 if step > 0 else size - 1
        if smask >> k & 1:
            if step < 0:
                raise _fail(graph, f"{_op(op)}: axis {k} is shrunk with strides[{k}] {step}; allowed is a "
                                   "positive stride (TFLM writes nothing for a shrunk axis stepped backward)")
            if not 0 <= start < size:
                raise _fail(graph, f"{_op(op)}: axis {k} is shrunk at index {begin[k]}, which is outside its "
                                   f"{size} elements; allowed is [-{size}, {size - 1}] (TFLM writes nothing "
                                   "for it)")
            axes.append(SliceAxis(start, 1, 1, keep=False))
            continue
        stop = end[k] + size if end[k] < 0 else end[k]
        stop = min(max(stop, lo), hi)
        if emask >> k & 1:
            stop = size if step > 0 else -1
        # ceil((stop - start) / step); TFLM's loop index ends at start + count * step, within 3 x the
        # axis (|step| <= the axis where count > 1), far from overflowing int32
        count = max(0, -((start - stop) // step))
        axes.append(SliceAxis(start, step, count))
    return axes


def _strided_slice_shapes(graph: Graph, op: Op) -> None:
    """TFLM StridedSlicePrepare: 1-D to 4-D, constant int32 begin/end/strides, non-zero strides, and the
    output shape the resolved slice's (shrunk axes dropped).  TFLM ignores the ellipsis and new-axis masks
    and the offset flag (it computes as if they were 0), so a model that sets them is unsupported."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    for name in ("ellipsis_mask", "new_axis_mask", "offset"):
        if op.options.get(name):
            raise _unsupported(graph, op, f"{name} is {int(op.options[name])}; supported is 0 (TFLM ignores it and "
                                          "computes another slice than TensorFlow; re-export the model)")
    _rank_in(graph, op, inp, STRIDED_SLICE_MAX_RANK)
    axes = strided_slice_axes(graph, op)
    expect = [a.count for a in axes if a.keep]
    _expect_shape(graph, op, out, expect, f"slicing input shape {list(inp.shape)} as "
                                          f"{[(a.start, a.step, a.count) for a in axes]} (start, stride, count)")
    if 0 in expect:
        raise _shape_error(graph, op, f"the slice of input {_ten(inp)} is empty ({expect}); allowed is at least "
                                      "one element per dimension")


def slice_axes(graph: Graph, op: Op) -> list[SliceAxis]:
    """TFLM SLICE's GetValidatedBeginAndSizeVectors: begin in [0, size], size -1 (to the end) or in
    [0, size - begin]."""
    inp = _t(graph, op, 0)
    rank = len(inp.shape)
    begin, sizes = _vector(graph, op, 1, rank, "begin"), _vector(graph, op, 2, rank, "size")
    axes = []
    for k, dim in enumerate(inp.shape):
        b, n = begin[k], sizes[k]
        if not 0 <= b <= dim:
            raise _fail(graph, f"{_op(op)}: begin[{k}] is {b}; allowed is [0, {dim}] (as TFLM requires)")
        n = dim - b if n == -1 else n
        if not 0 <= n <= dim - b:
            raise _fail(graph, f"{_op(op)}: size[{k}] is {sizes[k]}; allowed is -1 or [0, {dim - b}] from begin "
                               f"{b} (as TFLM requires)")
        axes.append(SliceAxis(b, 1, n))
    return axes


def _slice_shapes(graph: Graph, op: Op) -> None:
    """TFLM SlicePrepare/Eval: 1-D to 5-D, begin and size of one type and one value per dimension, in range,
    and as many output elements as the slice has (TFLM checks only the count; so do we)."""
    inp, beg, size, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 2), _t(graph, op, 0, True)
    _rank_in(graph, op, inp, SLICE_MAX_RANK)
    if beg.dtype != size.dtype:
        raise _fail(graph, f"{_op(op)}: begin {_ten(beg)} is {beg.dtype} but size {_ten(size)} is {size.dtype}; "
                           "allowed is the same type (as TFLM requires)")
    counts = [a.count for a in slice_axes(graph, op)]
    if math.prod(counts) != out.size or 0 in counts:
        raise _shape_error(graph, op, f"output {_ten(out)} has {out.size} values, but the slice {counts} of input "
                                      f"shape {list(inp.shape)} has {math.prod(counts)}; allowed is equal and "
                                      "non-zero")


def split_axis(graph: Graph, op: Op) -> int:
    """The resolved axis of SPLIT (input 0) or SPLIT_V (input 2): TFLM reads the first int32 value."""
    pos = 0 if op.kind == "SPLIT" else 2
    axis_t, inp = _t(graph, op, pos), _t(graph, op, 1 - pos if op.kind == "SPLIT" else 0)
    if axis_t.size != 1:
        raise _shape_error(graph, op, f"axis {_ten(axis_t)} has shape {list(axis_t.shape)}; allowed is one value")
    rank = len(inp.shape)
    if rank < 1:
        raise _unsupported(graph, op, f"input {_ten(inp)} is a scalar; supported is rank 1 or more")
    return _axis(graph, op, int(np.asarray(axis_t.data).reshape(-1)[0]), rank)


def _split_shapes(graph: Graph, op: Op) -> None:
    """TFLM SplitEval/SplitVEval: a constant axis in range, outputs of the input's rank and dimensions except
    along the axis, where they add up to the input's (SPLIT: equal parts, as TFLM copies output 0's size for
    every output).  num_splits must count the outputs (TFLite checks it; TFLM does not read it), and a
    constant SPLIT_V size_splits must match them (at most one -1, for the rest)."""
    data = 1 if op.kind == "SPLIT" else 0
    inp = _t(graph, op, data)
    axis = split_axis(graph, op)
    n = len(op.outputs)
    if int(op.options.get("num_splits", 0)) != n:
        raise _fail(graph, f"{_op(op)}: num_splits is {op.options.get('num_splits')} but it has {n} outputs; "
                           "allowed is equal")
    if op.kind == "SPLIT" and inp.shape[axis] % n:
        raise _shape_error(graph, op, f"input {_ten(inp)} of shape {list(inp.shape)} has {inp.shape[axis]} values "
                                      f"along axis {axis}, which do not split into {n} equal parts")
    parts = []
    for k in range(n):
        t = _t(graph, op, k, True)
        part = inp.shape[axis] // n if op.kind == "SPLIT" else (t.shape[axis] if len(t.shape) > axis else 0)
        expect = [part if d == axis else v for d, v in enumerate(inp.shape)]
        _expect_shape(graph, op, t, expect, f"splitting input shape {list(inp.shape)} along axis {axis}", k)
        parts.append(part)
    if sum(parts) != inp.shape[axis]:
        raise _shape_error(graph, op, f"the outputs add up to {sum(parts)} along axis {axis} but input {_ten(inp)} "
                                      f"has {inp.shape[axis]}; allowed is equal")
    if op.kind == "SPLIT_V":
        sizes_t = _t(graph, op, 1)
        if len(sizes_t.shape) != 1 or sizes_t.shape[0] != n:
            raise _shape_error(graph, op, f"size_splits {_ten(sizes_t)} has shape {list(sizes_t.shape)}; allowed "
                                          f"is [{n}] (one value per output)")
        if sizes_t.is_const:
            sizes = [int(v) for v in np.asarray(sizes_t.data).reshape(-1)]
            if sizes.count(-1) <= 1 and all(s == p or s == -1 for s, p in zip(sizes, parts)):
                return
            raise _fail(graph, f"{_op(op)}: size_splits {sizes} do not match the outputs' sizes {parts} along "
                               f"axis {axis}; allowed is equal, with at most one -1 for the rest")


def pack_axis(graph: Graph, op: Op) -> int:
    rank = len(_t(graph, op, 0).shape) + 1
    return _axis(graph, op, int(op.options.get("axis", 0)), rank)


def _pack_shapes(graph: Graph, op: Op) -> None:
    """TFLM PACK (no Prepare; Eval loops over values_count inputs): values_count counts the inputs, which
    have one shape; the axis is in range of the output's rank; the output the inputs stacked along it."""
    n = len(op.inputs)
    if int(op.options.get("values_count", 0)) != n:
        raise _fail(graph, f"{_op(op)}: values_count is {op.options.get('values_count')} but it has {n} inputs; "
                           "allowed is equal")
    first, out = _t(graph, op, 0), _t(graph, op, 0, True)
    for k in range(1, n):
        t = _t(graph, op, k)
        if t.shape != first.shape:
            raise _shape_error(graph, op, f"input {k} {_ten(t)} has shape {list(t.shape)} but input 0 "
                                          f"{list(first.shape)}; allowed is equal shapes")
    axis = pack_axis(graph, op)
    expect = list(first.shape[:axis]) + [n] + list(first.shape[axis:])
    _expect_shape(graph, op, out, expect, f"stacking {n} inputs of shape {list(first.shape)} along axis {axis}")


def unpack_axis(graph: Graph, op: Op) -> int:
    inp = _t(graph, op, 0)
    if len(inp.shape) < 1:
        raise _unsupported(graph, op, f"input {_ten(inp)} is a scalar; supported is rank 1 or more")
    return _axis(graph, op, int(op.options.get("axis", 0)), len(inp.shape))


def _unpack_shapes(graph: Graph, op: Op) -> None:
    """TFLM UNPACK (no Prepare; Eval writes ``num`` outputs): num counts the outputs and the input's
    dimension along the axis; each output is the input without that dimension."""
    inp = _t(graph, op, 0)
    axis = unpack_axis(graph, op)
    n = len(op.outputs)
    if int(op.options.get("num", 0)) != n or inp.shape[axis] != n:
        raise _fail(graph, f"{_op(op)}: num is {op.options.get('num')}, it has {n} outputs and input {_ten(inp)} "
                           f"has {inp.shape[axis]} values along axis {axis}; allowed is all three equal")
    expect = [d for k, d in enumerate(inp.shape) if k != axis]
    for k in range(n):
        _expect_shape(graph, op, _t(graph, op, k, True), expect,
                      f"unpacking input shape {list(inp.shape)} along axis {axis}", k)


def _depth_to_space_shapes(graph: Graph, op: Op) -> None:
    """TFLM DepthToSpacePrepare: a 4-D input whose channels divide by block_size^2; the output is
    [batch, height x block, width x block, channels / block^2] (TFLM sets it; here it must be that)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    n, h, w, c = _rank4(graph, op, inp, "input")
    b = int(op.options["block_size"])
    if c % (b * b):
        raise _shape_error(graph, op, f"input {_ten(inp)} has {c} channels, which do not divide by block_size^2 = "
                                      f"{b * b} (as TFLM requires)")
    _expect_shape(graph, op, out, [n, h * b, w * b, c // (b * b)], f"block_size {b} on input shape {list(inp.shape)}")


def _space_to_depth_shapes(graph: Graph, op: Op) -> None:
    """TFLM SpaceToDepth Prepare: a 4-D input whose height and width divide by block_size; the output is
    [batch, height / block, width / block, channels x block^2] (TFLM sets it; here it must be that)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    n, h, w, c = _rank4(graph, op, inp, "input")
    b = int(op.options["block_size"])
    if h % b or w % b:
        raise _shape_error(graph, op, f"input {_ten(inp)} has height {h} and width {w}, which do not divide by "
                                      f"block_size {b} (as TFLM requires)")
    _expect_shape(graph, op, out, [n, h // b, w // b, c * b * b], f"block_size {b} on input shape {list(inp.shape)}")
# Relations of PADV2, SQUARED_DIFFERENCE, PRELU, ARG_MAX, ARG_MIN and RSQRT.


def squared_difference_reals(s1: float, s2: float, s_out: float) -> tuple[float, float, float]:
    """TFLM's SQUARED_DIFFERENCE PrepareQuantized for int8 (left shift 7): the input multipliers as ADD's, the
    output one (twice the larger scale)^2 / (2^14 x the output scale, a float32 product)."""
    twice_max = 2.0 * max(s1, s2)
    with np.errstate(all="ignore"):
        denominator = float(np.float32(np.float32(1 << (2 * SQUARED_DIFFERENCE_LEFT_SHIFT)) * np.float32(s_out)))
    return s1 / twice_max, s2 / twice_max, twice_max * twice_max / denominator


def prelu_reals(in_s: float, alpha_s: float, out_s: float) -> tuple[float, float]:
    """TFLM CalculatePreluParams: input scale / output scale, input scale x alpha scale / output scale."""
    return in_s / out_s, in_s * alpha_s / out_s


def rsqrt_real(in_s: float, out_s: float) -> float:
    """TFLM SetRsqrtOutputMultiplier: 1 / (sqrt(input scale) x output scale), in double."""
    return 1.0 / (math.sqrt(in_s) * out_s)


def _rsqrt_quantization(graph: Graph, op: Op) -> None:
    """The input zero point -128 (TFLM fails on inputs below it); the output multiplier, shifted by
    RSQRT_SHIFT less, applied to 1 / sqrt(x) x 2^20 (at most 2^20), must keep that in int32 and shift right
    by at most 31 (TFLM's RoundingDivideByPOT)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if inp.quant.zp != -128:
        raise _unsupported(graph, op, f"input {_ten(inp)} has zero point {inp.quant.zp}; supported is -128 (only "
                                      "non-negative values: TFLM's RSQRT fails on any input below the zero point)")
    real = rsqrt_real(_f32(inp.quant.s), _f32(out.quant.s))
    what = "the output multiplier 1 / (sqrt(input scale) x output scale) / 2^20"
    _check_multiplier(graph, op, what, real / float(1 << RSQRT_SHIFT), 1 << RSQRT_SHIFT)
    shift = multiplier_shift(real)
    if shift - RSQRT_SHIFT < -31:
        raise _fail(graph, f"{_op(op)}: {what} is {real / float(1 << RSQRT_SHIFT):g} (shift "
                           f"{shift - RSQRT_SHIFT}); allowed is a shift of at least -31 (TFLM shifts right by it); "
                           "requantize the model")


def _pad_value(graph: Graph, op: Op) -> None:
    """TFLM PadPrepare with a constant_values input: one value, quantized as the output (equal zero point and
    scale); we bake it in, so it must be a constant."""
    value, out = _t(graph, op, 2), _t(graph, op, 0, True)
    if value is None:
        return
    if value.size != 1:
        raise _shape_error(graph, op, f"constant_values {_ten(value)} has {value.size} values; allowed is 1 (as "
                                      "TFLM requires)")
    if value.quant.zp != out.quant.zp or np.float32(value.quant.s) != np.float32(out.quant.s):
        raise _fail(graph, f"{_op(op)}: constant_values {_ten(value)} (scale {value.quant.s:.9g}, zero point "
                           f"{value.quant.zp}) and output {_ten(out)} (scale {out.quant.s:.9g}, zero point "
                           f"{out.quant.zp}) are quantized differently; allowed is equal quantization (as TFLM "
                           "requires)")
    if not value.is_const:
        raise _unsupported(graph, op, f"constant_values {_ten(value)} is computed at run time; supported is a "
                                      "constant padding value")


def _squared_difference_multipliers(graph: Graph, op: Op) -> None:
    """The input multipliers are at most 1/2; the output one is QuantizeMultiplier's, applied to the square of
    the rescaled difference, which must stay in int32 when shifted left by it."""
    a, b, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    r1, r2, ro = squared_difference_reals(_f32(a.quant.s), _f32(b.quant.s), _f32(out.quant.s))
    # |rescaled input| <= |x - zero point| * 2^7 * multiplier, plus one for the rounding of each step
    diff = math.ceil((_max_offset(a) * r1 + _max_offset(b) * r2) * (1 << SQUARED_DIFFERENCE_LEFT_SHIFT)) + 2
    _check_multiplier(graph, op, "the output multiplier (2 x the larger input scale)^2 / (2^14 x output scale)",
                      ro, diff * diff)


def _prelu_multipliers(graph: Graph, op: Op) -> None:
    inp, alpha, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    r1, r2 = prelu_reals(_f32(inp.quant.s), _f32(alpha.quant.s), _f32(out.quant.s))
    _check_multiplier(graph, op, "the multiplier input scale / output scale", r1, _max_offset(inp))
    _check_multiplier(graph, op, "the multiplier input scale x alpha scale / output scale", r2,
                      _max_offset(inp) * _max_offset(alpha))


def arg_min_max_axis(graph: Graph, op: Op) -> int:
    """TFLM's ArgMinMax: the axis is the axis tensor's first value (it has one: _check_model refuses empty
    shapes), in [-rank, rank - 1]; returned resolved (non-negative)."""
    inp, axis_t = _t(graph, op, 0), _t(graph, op, 1)
    rank = len(inp.shape)
    if rank < 1:
        raise _shape_error(graph, op, f"input {_ten(inp)} is a scalar; allowed is rank 1 or more")
    if not axis_t.is_const:
        raise _unsupported(graph, op, f"the axis tensor {_ten(axis_t)} is computed at run time; supported is a "
                                      "constant axis")
    axis = int(np.asarray(axis_t.data).reshape(-1)[0])
    if not -rank <= axis < rank:
        raise _fail(graph, f"{_op(op)}: axis {axis} of {_ten(axis_t)} is out of range; allowed is [-{rank}, "
                           f"{rank - 1}] for the {rank}-D input")
    return axis + rank if axis < 0 else axis


def _arg_min_max_shapes(graph: Graph, op: Op) -> None:
    """The output of ARG_MAX/ARG_MIN has the input's shape without the axis (arg_min_max_axis)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    pos = arg_min_max_axis(graph, op)
    expect = [n for i, n in enumerate(inp.shape) if i != pos]
    if list(out.shape) != expect:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but input shape "
                                      f"{list(inp.shape)} without axis {pos} is {expect} (allowed: equal)")


# ---------------------------------------------------------------------------
# Convolution-like operators of issue 17 (codegen/ops/upsample.py, matmul.py): TRANSPOSE_CONV,
# RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL, L2_NORMALIZATION.

BILINEAR_ONE = 1 << 10  # TFLM ResizeBilinearInteger: positions in 1/1024ths of an input pixel


def _conv_like_rules() -> dict[str, Rule]:
    """The rows of TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL and L2_NORMALIZATION."""
    # RESIZE_*: int8 data whose quantization neither TFLM nor we read (the values are copied or blended as
    # they are); the size a constant int32 vector of 2 values (TFLM's Prepare), equal to the output's height
    # and width (TFLM writes as many rows and columns as it says, whatever the output's shape).
    resize_in = (Operand("input", quant="none"), Operand("size", ("int32",), kind="const", quant="none"))
    resize_out = (Operand("output", quant="none"),)
    return {
        "RESIZE_NEAREST_NEIGHBOR": Rule(inputs=resize_in, outputs=resize_out, checks=(_resize_shapes,)),
        # RESIZE_BILINEAR: TFLM's Prepare refuses align_corners with half_pixel_centers; its integer arithmetic
        # (ResizeBilinearInteger) must not overflow int32 nor read outside the input (checked here).
        "RESIZE_BILINEAR": Rule(inputs=resize_in, outputs=resize_out, checks=(_resize_shapes, _bilinear_tables)),
        # BATCH_MATMUL (TFLM batch_matmul.cc): int8 per tensor, ranks 2 to 5, batch dimensions that broadcast,
        # equal depths; TFLM reshapes the output itself but keeps its element count (and needs its rank at least
        # the larger input rank).  Two constant inputs are unsupported (UnsupportedError), as for ADD.
        "BATCH_MATMUL": Rule(inputs=(Operand("lhs", kind="any"), Operand("rhs", kind="any")),
                             outputs=(Operand("output"),),
                             checks=(_both_constant, _batch_matmul_shapes, _batch_matmul_multiplier)),
        # L2_NORMALIZATION (TFLM l2norm.cc): ranks up to 4, no fused activation; the int8 path reads only the
        # input's zero point (its output is in 1/128ths whatever the output's quantization says; TFLM checks
        # neither, nor do we).  The sum of squares must fit TFLM's int32 accumulator.
        "L2_NORMALIZATION": Rule(inputs=(Operand("input"),), outputs=(Operand("output"),),
                                 checks=(_same_shape, _l2_norm_depth)),
        # TRANSPOSE_CONV (TFLM transpose_conv.cc): inputs output_shape, weights [out channels, h, w, in channels],
        # input, optional bias.  TFLM does not read output_shape (the output tensor's shape is static); it is
        # required constant int32 here, its values unread as in TFLM.  TFLM checks nothing of the input's
        # spatial size against the output's (taps landing outside the output are dropped): neither do we.
        # Strides and the paddings live in int16 fields of TFLM's ConvParams.  The installed TFLM applies the
        # fused activation (some older TFLM sources pass kTfLiteActNone and ignore it).
        "TRANSPOSE_CONV": Rule(
            inputs=(Operand("output_shape", ("int32",), kind="const", quant="none"),
                    Operand("weights", kind="const", quant="weights", axis=0), Operand("input"),
                    Operand("bias", ("int32",), kind="const", optional=True, quant="bias")),
            outputs=(Operand("output"),),
            ints={"stride_h": (1, INT16_MAX), "stride_w": (1, INT16_MAX)}, activations=INT8_ACTIVATIONS,
            checks=(_transpose_conv_shapes, _transpose_conv_padding, _transpose_conv_multipliers,
                    _activation_range)),
    }


def _resize_shapes(graph: Graph, op: Op) -> None:
    inp, size, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    n, _, _, c = _rank4(graph, op, inp, "input")
    if len(size.shape) != 1 or size.shape[0] != 2:
        raise _shape_error(graph, op, f"size {_ten(size)} has shape {list(size.shape)}; allowed is [2] (the output "
                                      "height and width, as TFLM requires)")
    want = [n, *(int(v) for v in np.asarray(size.data).reshape(-1)), c]
    if list(out.shape) != want:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but the input's batches and "
                                      f"channels with size {want[1:3]} give {want} (allowed: equal)")


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _bilinear_scale(in_size: int, out_size: int, align_corners: bool) -> tuple[int, int]:
    """TFLM ResizeBilinearInteger's scale in 1/1024ths, rounded, and the numerator it divides."""
    if align_corners and out_size > 1:
        num = BILINEAR_ONE * (in_size - 1) + (out_size - 1) // 2
        return num // (out_size - 1), num
    num = BILINEAR_ONE * in_size + out_size // 2
    return num // out_size, num


def _bilinear_pos(v: int, scale: int, half_pixel_centers: bool) -> int:
    return v * scale + scale // 2 - BILINEAR_ONE // 2 if half_pixel_centers else v * scale


def bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLM ResizeBilinearInteger along one axis: for each output index (a row), the lower and upper input
    index and the position's distance past the lower one in 1/1024ths (negative before the first pixel's
    centre with half_pixel_centers), with C's truncating divisions (validation checked that TFLM's int32
    arithmetic does not overflow and that the lower index stays inside the input)."""
    one = BILINEAR_ONE
    scale, _ = _bilinear_scale(in_size, out_size, align_corners)
    v = np.arange(out_size, dtype=np.int64)
    pos = v * scale + scale // 2 - one // 2 if half_pixel_centers else v * scale
    # pos >= -512: C's truncating division by 1024 is a floor division for pos >= 0 and 0 above -1024
    lo = np.maximum(pos, 0) // one
    hi = np.minimum(np.maximum(pos + one - 1, 0) // one, in_size - 1)
    return np.stack([lo, hi, pos - one * lo], axis=1)


def _bilinear_tables(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    align, half = op.options.get("align_corners", False), op.options.get("half_pixel_centers", False)
    if align and half:
        raise _fail(graph, f"{_op(op)}: align_corners and half_pixel_centers are both set; allowed is at most one "
                           "(as TFLM requires)")
    for axis, in_size, out_size in (("height", inp.shape[1], out.shape[1]), ("width", inp.shape[2], out.shape[2])):
        scale, num = _bilinear_scale(in_size, out_size, align)
        # the positions grow with the output index: the last one is the largest
        last = _bilinear_pos(out_size - 1, scale, half)
        if max(num, (out_size - 1) * scale, last + BILINEAR_ONE - 1) > INT32_MAX:
            raise _fail(graph, f"{_op(op)}: resizing the {axis} from {in_size} to {out_size} overflows TFLM's int32 "
                               "arithmetic (positions in 1/1024ths of a pixel); allowed are sizes below 2^21")
        if _cdiv(last, BILINEAR_ONE) > in_size - 1:
            raise _fail(graph, f"{_op(op)}: resizing the {axis} from {in_size} to {out_size} would read input index "
                               f"{_cdiv(last, BILINEAR_ONE)} (TFLM's rounded scale overshoots); allowed are indices "
                               f"below {in_size}")


BATCH_MATMUL_MAX_RANK = 5  # TFLM BatchMatMulPrepare: ranks 2 to 5


@dataclass(frozen=True)
class MatMulShape:
    """A resolved BATCH_MATMUL: the output's batch dimensions (the broadcast of the inputs'), the matrix
    sizes (lhs rows x depth times depth x rhs columns) and, per batch dimension, whether each input has it
    (a dimension of 1 broadcasts)."""

    batch: tuple[int, ...]
    rows: int
    depth: int
    cols: int
    lhs_batch: tuple[int, ...]
    rhs_batch: tuple[int, ...]


def batch_matmul_shape(graph: Graph, op: Op) -> MatMulShape:
    """TFLM BatchMatMulPrepare's shapes: both inputs extended with leading 1s to the larger rank."""
    lhs, rhs = _t(graph, op, 0), _t(graph, op, 1)
    rank = max(len(lhs.shape), len(rhs.shape))
    ls = [1] * (rank - len(lhs.shape)) + list(lhs.shape)
    rs = [1] * (rank - len(rhs.shape)) + list(rhs.shape)
    adj_x, adj_y = op.options.get("adj_x", False), op.options.get("adj_y", False)
    rows, depth = (ls[-1], ls[-2]) if adj_x else (ls[-2], ls[-1])
    r_depth, cols = (rs[-1], rs[-2]) if adj_y else (rs[-2], rs[-1])
    batch = tuple(max(a, b) for a, b in zip(ls[:-2], rs[:-2]))
    if r_depth != depth:
        raise _shape_error(graph, op, f"lhs {_ten(lhs)} of shape {list(lhs.shape)} (adj_x {int(adj_x)}) and rhs "
                                      f"{_ten(rhs)} of shape {list(rhs.shape)} (adj_y {int(adj_y)}) have depths "
                                      f"{depth} and {r_depth}; allowed is equal (as TFLM requires)")
    return MatMulShape(batch, rows, depth, cols, tuple(ls[:-2]), tuple(rs[:-2]))


def _batch_matmul_shapes(graph: Graph, op: Op) -> None:
    lhs, rhs, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    for role, t in (("lhs", lhs), ("rhs", rhs)):
        if not 2 <= len(t.shape) <= BATCH_MATMUL_MAX_RANK:
            raise _shape_error(graph, op, f"{role} {_ten(t)} has shape {list(t.shape)}; allowed are ranks 2 to "
                                          f"{BATCH_MATMUL_MAX_RANK} (as TFLM requires)")
    rank = max(len(lhs.shape), len(rhs.shape))
    ls = [1] * (rank - len(lhs.shape)) + list(lhs.shape)
    rs = [1] * (rank - len(rhs.shape)) + list(rhs.shape)
    if any(a != b and 1 not in (a, b) for a, b in zip(ls[:-2], rs[:-2])):
        raise _shape_error(graph, op, f"the batch dimensions of lhs {list(lhs.shape)} and rhs {list(rhs.shape)} do "
                                      "not broadcast (allowed: each pair equal or one of them 1)")
    m = batch_matmul_shape(graph, op)
    expect = [*m.batch, m.rows, m.cols]
    size = int(np.prod(expect, dtype=np.int64))
    if len(out.shape) < rank or out.size != size:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but the product is {expect} "
                                      f"(allowed: {size} values and rank at least {rank}, as TFLM requires)")


def _batch_matmul_multiplier(graph: Graph, op: Op) -> None:
    """TFLM GetQuantizedConvolutionMultipler (the two input scales multiplied in float32), and the int32
    accumulator: depth x max|lhs - zp| x max|rhs - zp|."""
    lhs, rhs, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    product = _f32(np.float32(lhs.quant.s) * np.float32(rhs.quant.s))
    depth = batch_matmul_shape(graph, op).depth
    _check_multiplier(graph, op, "the multiplier lhs scale x rhs scale / output scale", product / _f32(out.quant.s),
                      depth * _max_offset(lhs) * _max_offset(rhs))


L2_NORM_MAX_RANK = 4  # TFLM L2NormPrepare: NumDimensions(input) <= 4


def _l2_norm_depth(graph: Graph, op: Op) -> None:
    inp = _t(graph, op, 0)
    rank = _rank_in(graph, op, inp, L2_NORM_MAX_RANK)
    depth = inp.shape[rank - 1]
    if depth * _max_offset(inp) ** 2 > INT32_MAX:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has {depth} values along its last axis; the sum of their "
                           f"squares (each up to {_max_offset(inp) ** 2}) overflows TFLM's int32 accumulator; "
                           f"allowed are at most {INT32_MAX // _max_offset(inp) ** 2}")


def _transpose_conv_shapes(graph: Graph, op: Op) -> None:
    w, inp, out, b = _t(graph, op, 1), _t(graph, op, 2), _t(graph, op, 0, True), _t(graph, op, 3)
    n, _, _, in_c = _rank4(graph, op, inp, "input")
    on, _, _, out_c = _rank4(graph, op, out, "output")
    wo, _, _, w_c = _rank4(graph, op, w, "weights")
    if on != n or wo != out_c or w_c != in_c:
        raise _shape_error(graph, op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                                      f"output {list(out.shape)} (allowed: equal batches, weights [output "
                                      "channels, h, w, input channels])")
    if b is not None and b.size != out_c:
        raise _shape_error(graph, op, f"bias {_ten(b)} has {b.size} values; allowed is one per output channel "
                                      f"({out_c})")


def transpose_conv_padding(op: Op, out_h: int, out_w: int, k_h: int, k_w: int) -> tuple[int, int]:
    """TFLM's TRANSPOSE_CONV padding (ComputePaddingHeightWidth over the output's size, dilation 1): the
    output size a convolution of the output would give (C's truncating division, as in TFLite
    ComputeOutputSize), then half the total padding that needs."""
    pads = []
    for size, k, s in ((out_h, k_h, op.options["stride_h"]), (out_w, k_w, op.options["stride_w"])):
        if op.options["padding"] == "SAME":
            conv_out = (size + s - 1) // s
        else:
            num = size + s - k
            conv_out = num // s if num >= 0 else -((-num) // s)
        pads.append(max((conv_out - 1) * s + k - size, 0) // 2)
    return pads[0], pads[1]


def _transpose_conv_padding(graph: Graph, op: Op) -> None:
    w, out = _t(graph, op, 1), _t(graph, op, 0, True)
    for axis, pad in zip(("height", "width"), transpose_conv_padding(op, out.shape[1], out.shape[2], w.shape[1],
                                                                     w.shape[2])):
        if pad > INT16_MAX:
            raise _fail(graph, f"{_op(op)}: {op.options['padding']} padding along the {axis} is {pad}; allowed is "
                               f"at most {INT16_MAX} (TFLM keeps it in an int16)")


def _transpose_conv_multipliers(graph: Graph, op: Op) -> None:
    """As CONV_2D's: TFLM PopulateConvolutionQuantizationParams with one multiplier per output channel (the
    weights' axis 0); each weight meets each output value at most once, so sum |w| * max|x - zp| + |bias|
    bounds the accumulator."""
    _channel_multipliers(graph, op, _t(graph, op, 2), _t(graph, op, 1), _t(graph, op, 0, True), _t(graph, op, 3), 0)


# ---------------------------------------------------------------------------
# The generic part: tensors, operands, options.


def _check_tensor_quant(graph: Graph, t: Tensor, where: str) -> None:
    """Every scale positive and finite, every zero point within its type's range."""
    q = t.quant
    if q is None:
        return
    bad = [float(s) for s in q.scale.reshape(-1) if not (math.isfinite(float(s)) and float(s) > 0.0)]
    if bad:
        raise _fail(graph, f"{_ten(t)} ({where}) has quantization scale {bad[0]:g}; allowed is a positive "
                           "finite number")
    lo, hi = ZP_RANGE.get(t.dtype, (0, 0))
    zps = q.zero_point.reshape(-1)
    out = [int(z) for z in zps if not lo <= int(z) <= hi]
    if out:
        raise _fail(graph, f"{_ten(t)} ({where}) of type {t.dtype} has zero point {out[0]}; allowed is "
                           f"[{lo}, {hi}]")


def _check_operand(graph: Graph, op: Op, spec: Operand, idx: int, role: str) -> None:
    if idx < 0:
        if spec.optional:
            return
        raise _fail(graph, f"{_op(op)}: {role} ({spec.name}) is -1 (absent); it is required")
    t = graph.tensors[idx]
    where = f"{role} ({spec.name}) of {_op(op)}"
    if t.dtype not in spec.dtypes:
        if t.dtype == "int16" and "int8" in spec.dtypes and not t.is_const:
            raise _unsupported(graph, op, f"{role} ({spec.name}) {_ten(t)} has 16-bit activations (int16x8 "
                                          "quantization), which tinyml does not support yet; allowed is int8")
        raise _fail(graph, f"{_ten(t)} ({where}) is {t.dtype}; allowed is {'/'.join(spec.dtypes)}")
    if spec.kind == "const" and not t.is_const:
        raise _fail(graph, f"{_ten(t)} ({where}) has no data; it must be a constant tensor")
    if spec.kind == "act" and t.is_const:
        raise _fail(graph, f"{_ten(t)} ({where}) is a constant; allowed is a tensor computed at run time")
    if spec.quant == "none":
        _check_tensor_quant(graph, t, where)
        return
    q = t.quant
    if q is None and spec.quant == "bias":
        return  # TFLM does not read an int32 bias's quantization (FULLY_CONNECTED: see _weighted_multipliers)
    if q is None:
        raise _fail(graph, f"{_ten(t)} ({where}) has no quantization parameters; allowed is a quantized tensor "
                           "(quantize the model to int8)")
    _check_tensor_quant(graph, t, where)
    if spec.quant == "int8" and q.per_channel:
        raise _fail(graph, f"{_ten(t)} ({where}) has {q.scale.size} per-channel scales; allowed is one "
                           "(per-tensor quantization)")
    if spec.quant in ("weights", "bias") and np.any(q.zero_point != 0):
        raise _fail(graph, f"{_ten(t)} ({where}) has zero point {int(q.zero_point[q.zero_point != 0][0])}; "
                           "allowed is 0 (TFLM needs symmetric weights and bias)")


def _check_operands(graph: Graph, op: Op, rule: Rule) -> None:
    specs_in = list(rule.inputs)
    n_in = len(op.inputs)
    lo = sum(1 for s in specs_in if not s.optional)
    if rule.repeat_last:
        if n_in < lo:
            raise _fail(graph, f"{_op(op)}: has {n_in} inputs; allowed is at least {lo}")
        specs_in += [specs_in[-1]] * (n_in - len(specs_in))
    elif not lo <= n_in <= len(specs_in):
        raise _fail(graph, f"{_op(op)}: has {n_in} inputs; allowed is {lo}" +
                    (f" to {len(specs_in)}" if len(specs_in) != lo else ""))
    specs_out = list(rule.outputs)
    if rule.repeat_last_output:
        if len(op.outputs) < len(specs_out):
            raise _fail(graph, f"{_op(op)}: has {len(op.outputs)} outputs; allowed is at least {len(specs_out)}")
        specs_out += [specs_out[-1]] * (len(op.outputs) - len(specs_out))
    elif len(op.outputs) != len(specs_out):
        raise _fail(graph, f"{_op(op)}: has {len(op.outputs)} outputs; allowed is {len(specs_out)}")
    for pos, (spec, idx) in enumerate(zip(specs_in, op.inputs)):
        _check_operand(graph, op, spec, idx, f"input {pos}")
    for pos, (spec, idx) in enumerate(zip(specs_out, op.outputs)):
        _check_operand(graph, op, spec, idx, f"output {pos}")


def _check_options(graph: Graph, op: Op, rule: Rule) -> None:
    for name, (lo, hi) in rule.ints.items():
        v = op.options.get(name)
        if v is None or not lo <= int(v) <= hi:
            raise _fail(graph, f"{_op(op)}: {name} is {v}; allowed is [{lo}, {hi}]")
    act = op.options.get("activation", "NONE")
    if act not in rule.activations:
        raise _fail(graph, f"{_op(op)}: fused activation is {act}; allowed is {', '.join(rule.activations)}")
    if rule.fixed_output is not None:
        out = graph.tensors[op.outputs[0]]
        scale, zp = rule.fixed_output
        if zp is not None and out.quant.zp != zp:
            raise _fail(graph, f"{_op(op)}: output {_ten(out)} has zero point {out.quant.zp}; allowed is {zp} "
                               "(as TFLM requires)")
        if scale is not None and np.float32(out.quant.s) != np.float32(scale):
            raise _fail(graph, f"{_op(op)}: output {_ten(out)} has scale {out.quant.s:g}; allowed is {scale:g} "
                               "(as TFLM requires)")


# Operators that keep state between invocations: in variable tensors (the sequence operators) or in
# resource variables (VAR_HANDLE and the operators around it).
STATEFUL_OPS = frozenset({
    "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_LSTM",
    "BIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "RNN", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE",
})
ETHOS_U = "CUSTOM:ethos-u"  # the operator Vela puts in place of what it compiled for the Ethos-U NPU


def unsupported_reason(graph: Graph, op: Op, list_supported: bool = True) -> str | None:
    """Why tinyml cannot run ``op`` because of its kind (None when RULES has a row for it): a builtin by name,
    a custom operator by its custom name, Vela's Ethos-U operator, and whether the operator keeps state."""
    if op.kind in RULES:
        return None
    if op.kind == ETHOS_U:
        return (f"{_op(op)}: the model is compiled for Ethos-U (this is Vela's 'ethos-u' operator, an NPU "
                "command stream); give the model before Vela")
    if op.kind.startswith("CUSTOM:"):
        return (f"operator {op.index} is the custom operator '{op.kind[len('CUSTOM:'):]}', which tinyml does not "
                "implement (TFLM runs it only with a kernel registered under that name)")
    if op.kind.startswith("UNKNOWN_BUILTIN_"):
        return (f"operator {op.index} has builtin operator code {op.kind[len('UNKNOWN_BUILTIN_'):]}, which this "
                "TFLite schema does not know; re-export the model or give a newer tinyml")
    state = [t for t in op.inputs if t >= 0 and graph.tensors[t].variable]
    why = ""
    if state:
        t = graph.tensors[state[0]]
        why = f" (it keeps state between invocations in variable tensor {t.index} '{t.name}')"
    elif op.kind in STATEFUL_OPS:
        why = " (it keeps state between invocations)"
    supported = f"; supported operators: {', '.join(sorted(RULES))}" if list_supported else ""
    return f"operator {op.index} is {op.kind}, which is not supported{why}{supported}"


def _check_kinds(graph: Graph) -> None:
    """Every operator of a kind in RULES; else the first one that is not, named, and how many more."""
    bad = [(op, why) for op in graph.ops if (why := unsupported_reason(graph, op)) is not None]
    if not bad:
        return
    ethos = [b for b in bad if b[0].kind == ETHOS_U]
    op, why = (ethos or bad)[0]
    others = sorted({o.kind for o, _ in bad if o is not op})
    if others:
        why += (f"; {len(bad) - 1} more operator{'s' if len(bad) > 2 else ''} not supported "
                f"({', '.join(others[:6])}{', ...' if len(others) > 6 else ''}; tinyml inspect lists them)")
    raise _unsupported_model(graph, why)


def _check_tensors(graph: Graph, tensors: list[int]) -> None:
    """Types validation knows and no empty dimension (every operator check relies on both)."""
    for i in tensors:
        t = graph.tensors[i]
        if t.dtype not in DTYPE_BYTES:
            raise _fail(graph, f"{_ten(t)} is of type {t.dtype}; allowed are "
                               f"{', '.join(sorted(NUMPY_DTYPES))}")
        if 0 in t.shape:
            raise _fail(graph, f"{_ten(t)} has an empty shape {list(t.shape)}; allowed are dimensions of at least "
                               "1; re-export the model")


def _check_activation_types(graph: Graph) -> None:
    """An int8 model, a float32 model (float32 operators, FLOAT_RULES) or both (QUANTIZE and DEQUANTIZE between
    them): a dynamic-range model (float32 activations, int8 weights) or one with 16-bit activations (int16x8)
    is named as such."""
    if any(t.dtype == "int8" and not t.is_const for t in graph.tensors):
        return
    kinds = sorted({t.dtype for t in graph.tensors if not t.is_const})
    hybrid = any(t.dtype == "int8" and t.is_const for t in graph.tensors)
    if "float32" in kinds and "int16" not in kinds and not hybrid:
        return
    if "int16" in kinds:
        msg = (f"the model has 16-bit activations (int16x8 quantization: activations "
               f"{'/'.join(kinds)}), which tinyml does not support yet; quantize it with int8 activations "
               "(full-integer post-training quantization, tinyml.train.quantize)")
        raise _unsupported_model(graph, msg)
    if "float32" in kinds and hybrid:
        what = "float32 activations with int8 weights (dynamic-range quantization)"
    else:
        what = f"its activations are {'/'.join(kinds)}"
    raise _fail(graph, f"not an int8 or float32 model: {what}; quantize it with full-integer post-training quantization "
                       "(tinyml.train.quantize)")


def _check_order(graph: Graph) -> None:
    """Every tensor an operator reads is an input, a constant or written by an earlier operator; a variable
    tensor read before any operator writes it is state (TFLM keeps it between invocations)."""
    for op in graph.ops:
        for t in op.inputs + op.outputs:
            if t >= 0 and graph.tensors[t].variable and graph.tensors[t].is_const:
                raise _fail(graph, f"{_op(op)} uses {_ten(graph.tensors[t])}, a variable tensor (state) that "
                                   "also has constant data; TFLM resets state in place, so it cannot live in "
                                   "the constant data; re-export the model")
    produced = {t for op in graph.ops for t in op.outputs}
    for t in graph.outputs:
        if t not in produced and t not in graph.inputs:
            raise _fail(graph, f"model output tensor {t} is not produced by any operator")
    available = set(graph.inputs) | {t.index for t in graph.tensors if t.is_const}
    for op in graph.ops:
        for t in op.inputs:
            if t >= 0 and t not in available:
                ten = graph.tensors[t]
                if ten.variable:
                    where = "a subgraph input that is " if t in graph.state_inputs else ""
                    raise _unsupported(graph, op, f"reads {where}variable tensor {t} ('{ten.name}'), state that "
                                                  "TFLM keeps between invocations; tinyml does not keep state "
                                                  "between runs")
                raise _fail(graph, f"{_op(op)} reads tensor {t} before any operator writes it; the operators "
                                   "are not in execution order")
        for t in op.outputs:
            if graph.tensors[t].is_const:
                raise _fail(graph, f"{_op(op)} writes constant tensor {t}")
            if t in available:
                # a kernel would write over what it (or a later operator) reads: copies through memcpy
                # would overlap (undefined in C), and the values would not be TFLM's
                raise _fail(graph, f"{_op(op)} writes tensor {t}, which is already a model input or an "
                                   "operator's output; allowed is one writer per tensor")
            available.add(t)


def _check_model(graph: Graph) -> None:
    """Whole-model checks that give a better message than any single operator could, most telling first:
    an operator we do not run (Ethos-U, custom, builtin), then tensor types, then the order of operators."""
    if not graph.ops:
        raise _fail(graph, "the model has no operators")
    _check_kinds(graph)
    used = sorted(set(graph.inputs) | set(graph.outputs) | {t for op in graph.ops for t in op.inputs + op.outputs
                                                            if t >= 0})
    _check_activation_types(graph)
    _check_tensors(graph, used)
    for i in set(graph.inputs) | set(graph.outputs):
        t = graph.tensors[i]
        if t.dtype not in NUMPY_DTYPES:
            raise _fail(graph, f"{_ten(t)} (a model input or output) is of type {t.dtype}; allowed are "
                               f"{', '.join(sorted(NUMPY_DTYPES))}")
    _check_order(graph)
    if not graph.inputs:
        raise _unsupported_model(graph, f"every input of the model is a variable tensor (state TFLM keeps "
                                        f"between invocations: tensors {graph.state_inputs}); tinyml needs an "
                                        "input a caller gives and does not keep state between runs")


def op_problem(graph: Graph, op: Op) -> str | None:
    """What stops ``op`` alone from compiling (for tinyml inspect's table), or None: its kind, the types and
    shapes of its tensors, then its row of RULES."""
    why = unsupported_reason(graph, op, list_supported=False)
    if why is not None:
        return why
    try:
        _check_tensors(graph, [t for t in op.inputs + op.outputs if t >= 0])
        validate_operator(graph, op)
    except (ModelError, UnsupportedError) as e:
        msg = str(e)
        return msg[len(graph.source) + 2:] if graph.source and msg.startswith(f"{graph.source}: ") else msg
    return None


def validate_graph(graph: Graph) -> None:
    """Raise ModelError or UnsupportedError (one line) unless every operator is of a kind in RULES and the
    model as a whole and every operator meet their checks."""
    _check_model(graph)
    validate_operators(graph)


def validate_operators(graph: Graph) -> None:
    """The per-operator part of validate_graph: each operator against its row of RULES."""
    for op in graph.ops:
        validate_operator(graph, op)


def validate_operator(graph: Graph, op: Op) -> None:
    """``op`` against its row of RULES (nothing for a kind without one: _check_kinds names it)."""
    rule = RULES.get(op.kind)
    if rule is None:
        return
    _check_no_mix(graph, op)
    if float_operator(graph, op):
        rule = FLOAT_RULES.get(op.kind)
        if rule is None:
            raise _unsupported(graph, op, f"float32 {op.kind} is not supported yet; float32 operators supported: "
                                          f"{', '.join(sorted(FLOAT_RULES))}; quantize the model to int8 "
                                          "(tinyml.train.quantize)")
        _check_operands(graph, op, rule)
        _finite_constants(graph, op)
    else:
        _check_operands(graph, op, rule)
    _check_options(graph, op, rule)
    for check in rule.checks:
        check(graph, op)


def _all_rules() -> dict[str, Rule]:
    rules = _rule_table()
    return {**rules, **_arith_rule_table(rules["PAD"]), **_conv_like_rules()}


RULES: dict[str, Rule] = _all_rules()
CONVERTERS = ("QUANTIZE", "DEQUANTIZE")  # the operators whose input and output types differ (float32 <-> int8)


# ---------------------------------------------------------------------------
# float32 operators: a second row per operator kind whose float kernel we lower (codegen/ops/float_ops.py).
# TFLM's float kernels read no quantization, so none is required; every operand is float32 (int8 and float32
# do not mix inside an operator: TFLM's float kernels take float tensors only, and only QUANTIZE and
# DEQUANTIZE convert between the two).  The shape, window and option checks are the int8 rows' (TFLM's
# Prepare checks them for every type); the arithmetic checks (multipliers, accumulators) have no float
# counterpart.


def _float_rule_table(rules: dict[str, Rule]) -> dict[str, Rule]:
    f32 = ("float32",)
    act = Operand("input", f32, quant="none")
    either = Operand("input", f32, kind="any", quant="none")
    out = (Operand("output", f32, quant="none"),)
    weights = Operand("weights", f32, kind="const", quant="none")
    bias = Operand("bias", f32, kind="const", optional=True, quant="none")
    conv, dw, fc = rules["CONV_2D"], rules["DEPTHWISE_CONV_2D"], rules["FULLY_CONNECTED"]
    pool_checks = (_pool_shapes, _window_extent)
    pad = Rule(inputs=(act, Operand("paddings", ("int32",), kind="const", quant="none"),
                       Operand("constant_values", f32, kind="any", optional=True, quant="none")), outputs=out,
               checks=(_pad_shapes, _float_pad_value))
    return {
        "CONV_2D": Rule(inputs=(act, weights, bias), outputs=out, ints=conv.ints, activations=INT8_ACTIVATIONS,
                        checks=(_conv_shapes, _window_extent)),
        # TFLM's DEPTHWISE_CONV_2D needs its bias (see the int8 row).
        "DEPTHWISE_CONV_2D": Rule(inputs=(act, Operand("weights", f32, kind="const", quant="none", axis=3),
                                          Operand("bias", f32, kind="const", quant="none")), outputs=out,
                                  ints=dw.ints, activations=INT8_ACTIVATIONS, checks=(_depthwise_shapes, _window_extent)),
        "FULLY_CONNECTED": Rule(inputs=(act, weights, bias), outputs=out, ints=fc.ints, activations=INT8_ACTIVATIONS,
                                checks=(_fc_shapes,)),
        "AVERAGE_POOL_2D": Rule(inputs=(act,), outputs=out, ints=rules["AVERAGE_POOL_2D"].ints,
                                activations=INT8_ACTIVATIONS, checks=pool_checks),
        "MAX_POOL_2D": Rule(inputs=(act,), outputs=out, ints=rules["MAX_POOL_2D"].ints,
                            activations=INT8_ACTIVATIONS, checks=pool_checks),
        "MEAN": Rule(inputs=(act, Operand("axis", ("int32",), kind="const", quant="none")), outputs=out,
                     checks=(_mean_shapes, _mean_size)),
        "ADD": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes)),
        "MUL": Rule(inputs=(either, either), outputs=out, activations=INT8_ACTIVATIONS,
                    checks=(_both_constant, _broadcast_shapes)),
        "CONCATENATION": Rule(inputs=(either,), outputs=out, repeat_last=True, checks=(_concat_shapes,)),
        "RESHAPE": rules["RESHAPE"],
        "SQUEEZE": rules["SQUEEZE"],
        "PAD": pad,
        "PADV2": pad,
        # SOFTMAX takes any beta in float (TFLM: exp((x - max) * beta)).
        "SOFTMAX": Rule(inputs=(act,), outputs=out, checks=(_same_shape, _finite_beta)),
        "LOGISTIC": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "TANH": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "RELU": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        "RELU6": Rule(inputs=(act,), outputs=out, checks=(_same_size,)),
        # data movement: the int8 rows with float32 data (TFLM's Prepares check the same for every type)
        **{kind: _float_row(rule) for kind, rule in _movement_rules().items()},
    }


def _float_row(rule: Rule) -> Rule:
    """``rule`` with float32 in place of its int8 operands."""
    def f(o: Operand) -> Operand:
        return dataclasses.replace(o, dtypes=("float32",), quant="none") if o.dtypes == ("int8",) else o

    return dataclasses.replace(rule, inputs=tuple(f(o) for o in rule.inputs), outputs=tuple(f(o) for o in rule.outputs))


def float_operator(graph: Graph, op: Op) -> bool:
    """Whether ``op`` computes in float32 (its first output is float32; QUANTIZE and DEQUANTIZE, which convert,
    are int8 operators), so that FLOAT_RULES and the float lowerings apply."""
    return (op.kind not in CONVERTERS and bool(op.outputs) and 0 <= op.outputs[0] < len(graph.tensors)
            and graph.tensors[op.outputs[0]].dtype == "float32")


def _mean_size(graph: Graph, op: Op) -> None:
    inp = _t(graph, op, 0)
    if not 1 <= inp.size <= MEAN_MAX_VALUES:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has {inp.size} values; allowed is 1 to {MEAN_MAX_VALUES}")


def _float_pad_value(graph: Graph, op: Op) -> None:
    """TFLM PadPrepare with a constant_values input: one value; we bake it in, so it must be a constant."""
    value = _t(graph, op, 2)
    if value is None:
        return
    if value.size != 1:
        raise _shape_error(graph, op, f"constant_values {_ten(value)} has {value.size} values; allowed is 1 (as "
                                      "TFLM requires)")
    if not value.is_const:
        raise _unsupported(graph, op, f"constant_values {_ten(value)} is computed at run time; supported is a "
                                      "constant padding value")


def _finite_constants(graph: Graph, op: Op) -> None:
    """The float32 constants of ``op`` (weights, bias, a padding value, a constant operand) are finite: the
    generated C holds them as float literals, which have no NaN or infinity."""
    for t in (graph.tensors[i] for i in op.inputs if i >= 0):
        if t.is_const and t.dtype == "float32" and not np.all(np.isfinite(t.data)):
            raise _unsupported(graph, op, f"constant {_ten(t)} holds a NaN or an infinity; supported are finite "
                                          "float32 constants")


def _finite_beta(graph: Graph, op: Op) -> None:
    beta = float(op.options.get("beta", 1.0))
    if not math.isfinite(beta):
        raise _fail(graph, f"{_op(op)}: beta is {beta}; allowed is a finite number")


def _check_no_mix(graph: Graph, op: Op) -> None:
    """int8 and float32 data do not meet inside an operator other than QUANTIZE and DEQUANTIZE (TFLM's kernels
    take one type; a float operator with int8 weights is dynamic-range quantization, which TFLM does not run)."""
    if op.kind in CONVERTERS:
        return
    ts = [graph.tensors[t] for t in op.inputs + op.outputs if 0 <= t < len(graph.tensors)]
    f = next((t for t in ts if t.dtype == "float32"), None)
    q = next((t for t in ts if t.dtype == "int8"), None)
    if f is not None and q is not None:
        raise _fail(graph, f"{_op(op)} mixes int8 and float32: {_ten(q)} is int8 and {_ten(f)} is float32; "
                           "allowed is one type in an operator (only QUANTIZE and DEQUANTIZE convert between "
                           "them); convert the model again, all float32 or quantized to int8")


FLOAT_RULES: dict[str, Rule] = _float_rule_table(_rule_table())
