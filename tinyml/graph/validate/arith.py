"""Rows of SUB, MAXIMUM, MINIMUM, PADV2, SQUARED_DIFFERENCE, PRELU, ARG_MAX, ARG_MIN and RSQRT (lowered in
codegen/ops/arith.py) and the real multipliers TFLM derives for them."""

from __future__ import annotations

import math

import numpy as np

from tinyml.graph.ir import Graph, Op
from tinyml.graph.validate.base import (INT8_ACTIVATIONS, Operand, RSQRT_SHIFT, Rule, SQUARED_DIFFERENCE_LEFT_SHIFT,
                                        _check_multiplier, _f32, _fail, _max_offset, _op, _ten, _unsupported,
                                        multiplier_shift)
from tinyml.graph.validate.core import (_activation_range, _add_multipliers, _both_constant, _broadcast_shapes,
                                        _same_size, _shape_error, _t)

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



# Relations of PADV2, SQUARED_DIFFERENCE, PRELU, ARG_MAX, ARG_MIN and RSQRT.


def squared_difference_left_shift(dtype: str) -> int:
    """TFLM's SQUARED_DIFFERENCE left shift: 7 for int8, 0 for int16 (zero points 0: 32768^2 fits)."""
    return 0 if dtype == "int16" else SQUARED_DIFFERENCE_LEFT_SHIFT


def squared_difference_reals(s1: float, s2: float, s_out: float,
                             left_shift: int = SQUARED_DIFFERENCE_LEFT_SHIFT) -> tuple[float, float, float]:
    """TFLM's SQUARED_DIFFERENCE PrepareQuantized (left shift 7 for int8, 0 for int16): the input multipliers as
    ADD's, the output one (twice the larger scale)^2 / (2^(2 x left shift) x the output scale, a float32
    product)."""
    twice_max = 2.0 * max(s1, s2)
    with np.errstate(all="ignore"):
        denominator = float(np.float32(np.float32(1 << (2 * left_shift)) * np.float32(s_out)))
    return s1 / twice_max, s2 / twice_max, twice_max * twice_max / denominator


def prelu_reals(in_s: float, alpha_s: float, out_s: float) -> tuple[float, float]:
    """TFLM CalculatePreluParams: input scale / output scale, input scale x alpha scale / output scale."""
    return in_s / out_s, in_s * alpha_s / out_s


def rsqrt_real(in_s: float, out_s: float) -> float:
    """TFLM SetRsqrtOutputMultiplier: 1 / (sqrt(input scale) x output scale), in double."""
    return 1.0 / (math.sqrt(in_s) * out_s)


def _rsqrt_quantization(graph: Graph, op: Op) -> None:
    """The input zero point -128 (TFLM fails on inputs below it), and :func:`rsqrt_multiplier`."""
    inp = _t(graph, op, 0)
    if inp.quant.zp != -128:
        raise _unsupported(graph, op, f"input {_ten(inp)} has zero point {inp.quant.zp}; supported is -128 (only "
                                      "non-negative values: TFLM's RSQRT fails on any input below the zero point)")
    rsqrt_multiplier(graph, op)


def rsqrt_multiplier(graph: Graph, op: Op) -> None:
    """RSQRT's output multiplier (int8 and int16), shifted by RSQRT_SHIFT less, applied to 1 / sqrt(x) x 2^20
    (at most 2^20), must keep that in int32 and shift right by at most 31 (TFLM's RoundingDivideByPOT)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    real = rsqrt_real(_f32(inp.quant.s), _f32(out.quant.s))
    what = "the output multiplier 1 / (sqrt(input scale) x output scale) / 2^20"
    _check_multiplier(graph, op, what, real / float(1 << RSQRT_SHIFT), 1 << RSQRT_SHIFT)
    shift = multiplier_shift(real)
    if shift - RSQRT_SHIFT < -31:
        raise _fail(graph, f"{_op(op)}: {what} is {real / float(1 << RSQRT_SHIFT):g} (shift "
                           f"{shift - RSQRT_SHIFT}); allowed is a shift of at least -31 (TFLM shifts right by it); "
                           "requantize the model")


def _squared_difference_multipliers(graph: Graph, op: Op) -> None:
    """The input multipliers are at most 1/2; the output one is QuantizeMultiplier's, applied to the square of
    the rescaled difference, which must stay in int32 when shifted left by it."""
    a, b, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    shift = squared_difference_left_shift(a.dtype)
    r1, r2, ro = squared_difference_reals(_f32(a.quant.s), _f32(b.quant.s), _f32(out.quant.s), shift)
    # |rescaled input| <= |x - zero point| * 2^left_shift * multiplier, plus one for the rounding of each step
    diff = math.ceil((_max_offset(a) * r1 + _max_offset(b) * r2) * (1 << shift)) + 2
    _check_multiplier(graph, op, "the output multiplier (2 x the larger input scale)^2 / "
                      f"(2^{2 * shift} x output scale)", ro, diff * diff)


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
