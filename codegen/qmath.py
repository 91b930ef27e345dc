"""Quantization arithmetic done at generation time, exactly as TFLM does it.

Every function here mirrors a TFLM/TFLite helper bit for bit (the C side
mirrors the run-time half), so that multipliers, shifts and activation
ranges equal the ones TFLM computes when it prepares a model.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound: halves go away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real = m * 2^(shift-31), m in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def quantize_multiplier_smaller_than_one_exp(real: float) -> tuple[int, int]:
    """TFLite QuantizeMultiplierSmallerThanOneExp (shift is <= 0)."""
    m, shift = quantize_multiplier(real)
    if shift > 0:
        raise ValueError(f"multiplier {real} is not smaller than one")
    return m, shift


def f32(x: float) -> np.float32:
    return np.float32(x)


def quantize_float(value: float, scale: float, zero_point: int) -> int:
    """zero_point + round(value / scale), the division in float32 as TFLM does."""
    with np.errstate(all="ignore"):
        tmp = np.float32(value) / np.float32(scale)
    return zero_point + round_half_away(float(tmp))


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized for a fused activation."""
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize_float(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_float(0.0, scale, zero_point)),
                min(qmax, quantize_float(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_float(-1.0, scale, zero_point)),
                min(qmax, quantize_float(1.0, scale, zero_point)))
    raise ValueError(activation)


def padding_before(stride: int, dilation: int, in_size: int, filter_size: int, out: int) -> int:
    """TFLite ComputePaddingWithOffset: the (smaller) padding before the data."""
    eff = (filter_size - 1) * dilation + 1
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2


# ---------------------------------------------------------------------------
# Run-time arithmetic, used by tests and by generation-time table building.


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32."""
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    q = abs(v) >> 31
    return q if v >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, m: int, shift: int) -> int:
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    xs = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # int32 wrap
    return rounding_divide_by_pot(srdhm(xs, m), right)


def saturating_rounding_mul_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return (1 << 31) - 1
    if x < -threshold:
        return -(1 << 31)
    return x << exponent


def inv_sqrt_multiplier(value: int) -> tuple[int, int]:
    """TFLite GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1): 1 / sqrt(value) as a multiplier
    and a left shift, by five Newton-Raphson steps in gemmlowp's FixedPoint<int32, 3> (value >= 0; 0 and 1
    give (INT32_MAX, 0))."""
    if value <= 1:
        return (1 << 31) - 1, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    pairs = ((32 - value.bit_length()) - 1) // 2 - 1  # CountLeadingZeros(value) - 1, in pairs, minus one
    shift -= pairs
    value <<= 2 * pairs
    one = 1 << 28  # F3 one
    half_input = rounding_divide_by_pot(value >> 1, 1)
    half_three = (1 << 28) + (1 << 27)
    x = one
    for _ in range(5):
        x3 = saturating_rounding_mul_pot(srdhm(srdhm(x, x), x), 6)  # F9 -> F3
        diff = srdhm(half_three, x) - srdhm(half_input, x3)  # F6 (gemmlowp subtracts in int32)
        x = saturating_rounding_mul_pot(((diff + (1 << 31)) % (1 << 32)) - (1 << 31), 3)  # F6 -> F3
    inv = srdhm(x, 1518500250)  # x sqrt(2) / 2 (F3 x F0)
    if shift < 0:
        inv = ((inv << -shift) + (1 << 31)) % (1 << 32) - (1 << 31)
        shift = 0
    return inv, -shift
