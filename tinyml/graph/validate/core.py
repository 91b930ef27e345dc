"""The rows of the first operator set (convolutions, FULLY_CONNECTED, pooling, MEAN, ADD, MUL, CONCATENATION,
RESHAPE, SQUEEZE, PAD, the activations, QUANTIZE, DEQUANTIZE) and their relation checks, which the other
blocks reuse (shapes, windows, per-channel multipliers, broadcasting, equal quantization)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from tinyml.errors import ModelError
from tinyml.graph.ir import NUMPY_DTYPES, Graph, Op, Tensor
from tinyml.graph.validate.base import (ADD_LEFT_SHIFT, ADD_LEFT_SHIFT_INT16, BROADCAST_MAX_RANK, INT16_MAX,
                                        INT8_ACTIVATIONS, MAX_WINDOW, MEAN_MAX_RANK, MEAN_MAX_VALUES, Operand,
                                        PAD_MAX_RANK, Rule, _check_multiplier, _f32, _fail, _max_offset, _op, _ten,
                                        _unsupported, add_reals, hard_swish_reals, multiplier_shift, resolve_axes,
                                        softmax_real)

DEPTHWISE_WEIGHT_AXIS = 3  # DEPTHWISE_CONV_2D's weights are [1, h, w, channels]
CONCAT_MAX_INPUTS = 10  # TFLM ConcatenationPrepare: kMaxInputNum


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
            inputs=(act, Operand("weights", kind="const", quant="weights", axis=DEPTHWISE_WEIGHT_AXIS),
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
        # CONCATENATION of more than 10 inputs TFLM refuses (kMaxInputNum): a ModelError here.
        "CONCATENATION": Rule(inputs=(either,), outputs=out, repeat_last=True,
                              checks=(_concat_inputs, _concat_quantization, _concat_shapes)),
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
    }


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
    axis = DEPTHWISE_WEIGHT_AXIS if op.kind == "DEPTHWISE_CONV_2D" else 0  # the weights' output channels
    _channel_multipliers(graph, op, _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True), _t(graph, op, 2),
                         axis)


def _channel_multipliers(graph: Graph, op: Op, inp: Tensor, w: Tensor, out: Tensor, b: Tensor | None,
                         axis: int, check: Callable[[Graph, Op, str, float, int], None] = _check_multiplier) -> None:
    """_weighted_multipliers for weights ``w`` whose output channels are along ``axis`` (every weight is
    used at most once per output value, so the accumulator bound holds); ``check`` judges each channel's
    multiplier against its accumulator bound (the int32 arithmetic's by default)."""
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
        check(graph, op, f"the multiplier of output channel {c} (input scale x weight scale / output scale)", real,
              int(sums[c]))


def _mul_multiplier(graph: Graph, op: Op) -> None:
    a, b, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    _check_multiplier(graph, op, "the multiplier input1 scale x input2 scale / output scale",
                      _f32(a.quant.s) * _f32(b.quant.s) / _f32(out.quant.s), _max_offset(a) * _max_offset(b))


def mean_count(graph: Graph, op: Op) -> int:
    """How many input values MEAN averages into one output (after _mean_shapes: valid axes)."""
    inp, axis_t = _t(graph, op, 0), _t(graph, op, 1)
    axes = resolve_axes([int(a) for a in np.asarray(axis_t.data).reshape(-1)], len(inp.shape))
    return math.prod(inp.shape[a] for a in axes)


def _mean_multiplier(graph: Graph, op: Op) -> None:
    """TFLM sums each output's values in int32 (int8 and int16: _max_offset knows the type) and rescales the
    sum: the multiplier is checked against one output's sum, not the whole input's."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if not 1 <= inp.size <= MEAN_MAX_VALUES:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has {inp.size} values; allowed is 1 to {MEAN_MAX_VALUES}")
    _check_multiplier(graph, op, "the multiplier input scale / output scale", _f32(inp.quant.s) / _f32(out.quant.s),
                      mean_count(graph, op) * _max_offset(inp))


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
    # in double from the float32 scales and alpha, as TFLM computes them (codegen's leaky_relu_multipliers)
    ident = _f32(inp.quant.s) / _f32(out.quant.s)
    scaled = _f32(inp.quant.s) * _f32(alpha) / _f32(out.quant.s)
    _check_multiplier(graph, op, "the multiplier input scale / output scale", ident, _max_offset(inp))
    if scaled != 0.0:
        _check_multiplier(graph, op, "the multiplier input scale x |alpha| / output scale", abs(scaled),
                          _max_offset(inp))


def _quantize(graph: Graph, op: Op) -> None:
    """QUANTIZE from an integer type (int8; int16 in the int16 row): TFLM Requantize with
    QuantizeMultiplier(input scale / output scale) on x - zero point in int32 (float32 input: AffineQuantize,
    nothing to check)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    if inp.dtype != "float32":
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
    shift = ADD_LEFT_SHIFT_INT16 if out.dtype == "int16" else ADD_LEFT_SHIFT
    for name, real in zip(("input 0", "input 1", "output"), add_reals(s1, s2, so, shift)):
        if not 0.0 < real < 1.0 or multiplier_shift(real) > 0:
            raise _fail(graph, f"{_op(op)}: the {name} rescaling factor is {real:g} (input scales {s1:g} and {s2:g}, "
                               f"output scale {so:g}); allowed is below 1 (as TFLM requires: the output scale is "
                               "too small); requantize the model")


def _concat_inputs(graph: Graph, op: Op) -> None:
    if len(op.inputs) > CONCAT_MAX_INPUTS:
        raise _fail(graph, f"{_op(op)}: has {len(op.inputs)} inputs; allowed is at most {CONCAT_MAX_INPUTS} (as "
                           "TFLM requires); split it into CONCATENATIONs of at most 10 inputs")


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
