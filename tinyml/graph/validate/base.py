"""The row types of the validation tables, the limits our kernels and TFLM set, the one-line messages and the
fixed-point arithmetic (TFLite's QuantizeMultiplier exponents and real multipliers) the checks share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tinyml.errors import ModelError, UnsupportedError
from tinyml.graph.ir import Graph, Op, Tensor

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
ADD_LEFT_SHIFT = 20  # TFLM: left_shift = 20 for int8 ADD and SUB
ADD_LEFT_SHIFT_INT16 = 15  # and 15 for int16
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
    # input positions the operator keeps state in: a variable tensor no operator writes, which the kernel reads
    # and updates in place, kept between invocations (Graph.state_tensors; SVDF's activation state)
    state_inputs: tuple[int, ...] = ()


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


def add_reals(s1: float, s2: float, s_out: float, left_shift: int = ADD_LEFT_SHIFT) -> tuple[float, float, float]:
    """TFLM CalculateOpDataAdd (in double, the scales widened from float32): the real rescaling factors of
    input 1, input 2 and the output, for the left shift of int8 (ADD_LEFT_SHIFT) or int16
    (ADD_LEFT_SHIFT_INT16)."""
    twice_max = 2.0 * max(s1, s2)
    return s1 / twice_max, s2 / twice_max, twice_max / (float(1 << left_shift) * s_out)


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
    """The largest |x - zero point| over the values x of t's type (int8, or int16 for the int16 rows)."""
    zp = t.quant.zp if t.quant is not None else 0
    lo, hi = (-(1 << 15), (1 << 15) - 1) if t.dtype == "int16" else (-128, 127)
    return max(zp - lo, hi - zp)


def _f32(x: float) -> float:
    return float(np.float32(x))
CONVERTERS = ("QUANTIZE", "DEQUANTIZE")  # the operators whose input and output types differ (float32 <-> int8)
