"""SOFTMAX, LOGISTIC, TANH and HARD_SWISH (int8 in, int8 out).

LOGISTIC, TANH and HARD_SWISH are elementwise functions of one int8 value,
so they are lowered to a 256-entry int8 lookup table (kernel ``elementwise_lut_s8``, shared with RELU and LEAKY_RELU)
computed here by a Python model of TFLM's integer arithmetic: the Prepare
functions' multipliers and the reference kernels' fixed-point evaluation,
including gemmlowp's ``logistic``/``tanh`` on a Q4.27 input and its
wrap-around and saturation behaviour.  SOFTMAX depends on a whole row, so it
runs TFLM's gemmlowp-based int8 softmax in C (``softmax_s8`` with the
``tml_fp_`` helpers of ``tml_fixedpoint.h``); only the Prepare part
(PreprocessSoftmaxScaling, CalculateInputRadius) is done here.

The functions named after gemmlowp/TFLM functions work on Python ints that
hold int32 (or int16) values and wrap exactly like the C++ does.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from tinyml.codegen.ops.elementwise import _unary, lut_call
from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.qmath import (multiply_by_quantized_multiplier, quantize_multiplier, rounding_divide_by_pot,
                                  srdhm)
from tinyml.graph.ir import Op, Tensor
from tinyml.graph.validate import hard_swish_reals, softmax_real

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("softmax_s8", per_mac=60.0, code_bytes=920),
)

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def w32(x: int) -> int:
    """Two's-complement wrap to int32 (gemmlowp's plain Add/Sub/Neg)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def w16(x: int) -> int:
    """Two's-complement wrap to int16 (a C++ assignment to int16_t)."""
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _trunc_div(a: int, b: int) -> int:
    """C integer division (rounds toward zero), b > 0."""
    q = abs(a) // b
    return q if a >= 0 else -q


# ---------------------------------------------------------------------------
# gemmlowp fixed point on int32 raw values.


def sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x * (1 << exponent)


def rescale(x: int, src_bits: int, dst_bits: int) -> int:
    """Rescale<dst_bits> of a FixedPoint<int32, src_bits>."""
    return sat_mul_pot(x, src_bits - dst_bits)


def rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    return _trunc_div(s + (1 if s >= 0 else -1), 2)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    one_third = 715827883  # 1/3 in Q0.31
    x = w32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(w32(srdhm(w32(x4_over_4 + x3), one_third) + x2), -1)
    return w32(constant_term + srdhm(constant_term, w32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535),
               (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) in Q0.31 for a <= 0 given in Q(integer_bits)."""
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    a_mod_quarter_minus_one_quarter = w32((a & (one_quarter - 1)) - one_quarter)
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        rescale(a_mod_quarter_minus_one_quarter, integer_bits, 0))
    remainder = w32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (frac + exponent)):
            result = srdhm(result, multiplier)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    if a == 0:
        result = INT32_MAX
    return result


def _newton_reciprocal_half(half_denominator: int) -> int:
    """The three Newton-Raphson steps shared by the two 1/(1+x) functions (result in Q2.29)."""
    x = w32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = w32((1 << 29) - srdhm(half_denominator, x))
        x = w32(x + rescale(srdhm(x, one_minus), 4, 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_half(rounding_half_sum(a, INT32_MAX))
    return rescale(x, 1, 0)  # ExactMulByPot<-1> then Rescale<0>


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    x = _newton_reciprocal_half(rounding_half_sum(a, INT32_MAX))
    return rescale(w32(x - (1 << 29)), 2, 0)


def fp_logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic: Q(integer_bits) in, Q0.31 out."""
    if a == 0:
        return 1 << 30
    abs_input = a if a > 0 else w32(-a)
    positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(w32(-abs_input), integer_bits))
    return positive if a > 0 else w32(INT32_MAX - positive)


def fp_tanh(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh: Q(integer_bits) in, Q0.31 out."""
    if a == 0:
        return 0
    n = a if a < 0 else w32(-a)
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return w32(-t) if a < 0 else t


# ---------------------------------------------------------------------------
# TFLM Prepare arithmetic.


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLite CalculateInputRadius (the double-precision variant)."""
    value = 1.0 * ((1 << integer_bits) - 1) * float(1 << (total_signed_bits - integer_bits)) / float(1 << left_shift)
    return int(math.floor(value))


def q4_input_params(inp: Tensor) -> tuple[int, int, int]:
    """LOGISTIC/TANH Prepare for int8: (multiplier, left shift, input radius) for a Q4.27 input
    (validated: the left shift in [0, 62])."""
    q, shift = math.frexp(float(np.float32(inp.quant.s)) * float(1 << 27))
    mult = int(math.floor(abs(q) * (1 << 31) + 0.5))
    return mult, shift, calculate_input_radius(4, shift, 31)


def _q4_table(zero_point: int, mult: int, shift: int, radius: int, fn: Callable[[int, int], int],
              out_exponent: int, out_offset: int) -> np.ndarray:
    """TFLM's int8 Logistic/Tanh for every input value -128..127: saturate outside the input
    radius, else rescale to Q4, apply the gemmlowp function, round the Q0.31 result down by
    ``out_exponent`` bits, add ``out_offset`` and clamp to int8."""
    out = []
    for q in range(-128, 128):
        x = q - zero_point
        if x <= -radius:
            out.append(-128)
        elif x >= radius:
            out.append(127)
        else:
            raw = fn(multiply_by_quantized_multiplier(x, mult, shift), 4)
            out.append(min(max(rounding_divide_by_pot(raw, out_exponent) + out_offset, -128), 127))
    return np.asarray(out, dtype=np.int8)


def logistic_table(zero_point: int, mult: int, shift: int, radius: int) -> np.ndarray:
    """TFLM reference_integer_ops::Logistic (int8) for every input value -128..127."""
    return _q4_table(zero_point, mult, shift, radius, fp_logistic, 23, -128)


def tanh_table(zero_point: int, mult: int, shift: int, radius: int) -> np.ndarray:
    """TFLM reference_integer_ops::Tanh (int8) for every input value -128..127."""
    return _q4_table(zero_point, mult, shift, radius, fp_tanh, 24, 0)


# --- HARD_SWISH: int16 fixed point ------------------------------------------


def srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return w16(_trunc_div(ab + nudge, 1 << 15))


def sdhm16(a: int, b: int) -> int:
    """TFLite SaturatingDoublingHighMul on int16 (truncating, SQDMULH)."""
    if a == b == INT16_MIN:
        return INT16_MAX
    return w16(_trunc_div(a * b, 1 << 15))


def rdbpot16(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT<int16_t>."""
    mask = w16((1 << exponent) - 1)
    remainder = w16(x & mask)
    threshold = w16((mask >> 1) + (1 if x < 0 else 0))
    return w16((x >> exponent) + (1 if remainder > threshold else 0))


def sat_left_shift16(value: int, amount: int) -> int:
    return min(max(value * (1 << amount), INT16_MIN), INT16_MAX)


def downscale_int32_to_int16_multiplier(m: int) -> int:
    if m >= INT32_MAX - (1 << 15):
        return INT16_MAX
    return (m + (1 << 15)) >> 16


def hard_swish_params(inp: Tensor, out: Tensor) -> dict[str, int]:
    """TFLM HardSwishPrepare for int8 (validated: both multipliers positive and finite, the output
    exponent at most 0, the reluish exponent in [-31, 31])."""
    out_real, reluish_real = hard_swish_reals(inp.quant.s, out.quant.s)
    out_m, out_e = quantize_multiplier(out_real)
    rel_m, rel_e = quantize_multiplier(reluish_real)
    return dict(input_zero_point=inp.quant.zp, output_zero_point=out.quant.zp,
                output_multiplier=downscale_int32_to_int16_multiplier(out_m), output_exponent=out_e,
                reluish_multiplier=downscale_int32_to_int16_multiplier(rel_m), reluish_exponent=rel_e)


def hard_swish_table(p: dict[str, int]) -> np.ndarray:
    """TFLM reference_ops::HardSwish<int8_t> for every input value -128..127."""
    out = []
    rel_e = p["reluish_exponent"]
    for q in range(-128, 128):
        x = w16(q - p["input_zero_point"])
        hires = w16(x * (1 << 7))
        preshift = srdhm16(hires, p["output_multiplier"])
        rel = hires
        if rel_e > 0:
            rel = sat_left_shift16(rel, rel_e - 1)
        rel = srdhm16(rel, p["reluish_multiplier"])
        if rel_e > 0:
            rel = sat_left_shift16(rel, 1)
        if rel_e < 0:
            rel = rdbpot16(rel, -rel_e)
        rel = w16((rel + (1 << 15)) >> 1)
        value = rdbpot16(sdhm16(rel, preshift), -p["output_exponent"])
        value = w16(value + p["output_zero_point"])
        out.append(min(max(value, -128), 127))
    return np.asarray(out, dtype=np.int8)


# ---------------------------------------------------------------------------
# Lowerings.


def _lut_call(op: Op, inp: Tensor, out: Tensor, table: np.ndarray) -> KernelCall:
    """The shared table kernel; it indexes by the input's bit pattern, our tables by input + 128."""
    return lut_call(op, inp, out, np.roll(np.asarray(table, dtype=np.int8).reshape(-1), 128))


@lowering("LOGISTIC")
def lower_logistic(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = _unary(ctx, op)  # validated: output zero point -128
    mult, shift, radius = q4_input_params(inp)
    return _lut_call(op, inp, out, logistic_table(inp.quant.zp, mult, shift, radius))


@lowering("TANH")
def lower_tanh(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = _unary(ctx, op)
    mult, shift, radius = q4_input_params(inp)
    return _lut_call(op, inp, out, tanh_table(inp.quant.zp, mult, shift, radius))


@lowering("HARD_SWISH")
def lower_hard_swish(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = _unary(ctx, op)
    return _lut_call(op, inp, out, hard_swish_table(hard_swish_params(inp, out)))


def softmax_params(inp: Tensor, beta: float) -> tuple[int, int, int]:
    """TFLM CalculateSoftmaxParams for int8: PreprocessSoftmaxScaling and the diff_min radius (Q5.26)
    (validated: beta * input scale * 2^26 above 1)."""
    mult, shift = quantize_multiplier(softmax_real(beta, inp.quant.s))
    return mult, shift, -calculate_input_radius(5, shift, 31)


@lowering("SOFTMAX")
def lower_softmax(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: equal shapes of rank 1 or more, output scale 1/256 and zero point -128.
    inp, out = _unary(ctx, op)
    beta = float(op.options.get("beta", 1.0))
    mult, shift, diff_min = softmax_params(inp, beta)
    depth = inp.shape[-1]
    outer = inp.size // depth if depth else 0
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="softmax_s8", spec={},
        params=dict(outer=outer, depth=depth, input_multiplier=mult, input_left_shift=shift, diff_min=diff_min),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=0,
    )
