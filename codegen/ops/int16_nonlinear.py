"""SOFTMAX, LOGISTIC, TANH and MEAN on int16 (int16x8 models), bit-exact with TFLM's 16-bit kernels.

- SOFTMAX (``softmax_s16``): TFLM's reference_ops::SoftmaxInt16 with the tables its SoftmaxPrepare builds
  (gen_lut in float over 512 steps: exp on [-10, 0] and 1/(1 + x) on [0, 1], 513 int16 entries each, the
  same for every model, so computed here once; see :func:`int16_lut`), passed as constant arrays.
- LOGISTIC and TANH (``sigmoid_s16``): reference_integer_ops::Logistic and Tanh for int16, which interpolate
  TFLM's 256-entry table of sigmoid(i / 24) in 0.16 fixed point after rescaling the input by the multiplier
  and shift of their Prepare (validation's sigmoid16_input): the functions of the shared helper
  templates/kernels/tml_sigmoid_s16.c.j2, which the LSTM's gates use too.
- MEAN (``mean_s16``): the int8 MEAN (pool.py, TFLM's QuantizedMeanOrSum) on int16 values, with its params.

The kernels are portable C, whole layer only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from tinyml.codegen.declare import SIGMOID_S16, portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.pool import lower_mean
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate import sigmoid16_input, softmax16_real

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them: instructions per
# output element (per input value for MEAN), estimated from their int8 counterparts.
VARIANTS = (
    portable("softmax_s16", per_mac=40.0),
    dataclasses.replace(portable("sigmoid_s16", inplace=True, per_mac=15.0), helpers=(SIGMOID_S16,)),
    portable("mean_s16", per_mac=8.0),
)

LUT_STEPS = 512  # gen_lut's steps for an int16 input; the table has one more entry, for the last slope

_F = np.float32


def _round_f32(x: np.float32) -> np.float32:
    """TfLiteRound on a float: to the nearest integer, halves away from zero (exact: the float's integer part
    and fraction are exact in a double)."""
    a = abs(float(x))
    r = math.floor(a)
    r += 1 if a - r >= 0.5 else 0
    return _F(r if x >= 0 else -r)


def _expf(x: np.float32) -> np.float32:
    """std::exp on a float, rounded from the double result (glibc's expf gives the same table entries)."""
    return _F(math.exp(float(x)))


def _one_over_one_plus_x(x: np.float32) -> np.float32:
    return _F(_F(1.0) / _F(_F(1.0) + x))


def int16_lut(func: Callable[[np.float32], np.float32], lo: float, hi: float) -> np.ndarray:
    """TFLM gen_lut<float, int16_t, int16_t>(func, lo, hi, -1, 1): 512 samples of func scaled by 32768, each
    corrected by half the rounded error of the linear interpolation at its step's midpoint, and func(hi) for
    the last slope; every operation in float, as the C++ does it."""
    lo_f, hi_f = _F(lo), _F(hi)
    step = _F((hi_f - lo_f) / _F(LUT_STEPS))
    half_step = _F(step / _F(2.0))
    scale = _F(_F(65536.0) / _F(_F(1.0) - _F(-1.0)))
    table = []
    for i in range(LUT_STEPS):
        x = _F(lo_f + _F(_F(i) * step))
        val, val_mid = func(x), func(_F(x + half_step))
        val_next = func(_F(lo_f + _F(_F(i + 1) * step)))
        sample = _round_f32(_F(val * scale))
        interp = _round_f32(_F(_F(_F(val_next * scale) + sample) / _F(2.0)))
        bias = _round_f32(_F(_F(interp - _round_f32(_F(val_mid * scale))) / _F(2.0)))
        table.append(min(max(float(_F(sample - bias)), -32768.0), 32767.0))
    table.append(min(max(float(_round_f32(_F(func(hi_f) * scale))), -32768.0), 32767.0))
    return np.asarray(table, dtype=np.int16)


def softmax_luts() -> tuple[np.ndarray, np.ndarray]:
    """SoftmaxPrepare's int16 tables: exp on [-10, 0] and 1/(1 + x) on [0, 1]."""
    return int16_lut(_expf, -10.0, 0.0), int16_lut(_one_over_one_plus_x, 0.0, 1.0)


@lowering("SOFTMAX", dtype="int16")
def lower_softmax_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int16 input and output of one shape (zero points 0, output scale 1/32768), rows of at most
    # 65538 values, the input multiplier in range.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    mult, shift = quantize_multiplier(softmax16_real(float(op.options.get("beta", 1.0)), inp.quant.s))
    depth = inp.shape[-1]
    exp_lut, recip_lut = softmax_luts()
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="softmax_s16", spec={},
        params=dict(outer=inp.size // depth if depth else 0, depth=depth, input_multiplier=mult,
                    input_shift=shift, exp_lut="exp_lut", recip_lut="recip_lut"),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        consts=[ConstArray("exp_lut", "int16_t", exp_lut), ConstArray("recip_lut", "int16_t", recip_lut)],
        inputs=[inp.index], outputs=[out.index],
    )


@lowering("LOGISTIC", "TANH", dtype="int16")
def lower_sigmoid_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int16 input and output of one size (zero points 0, output scale 2^-15), an input
    # multiplier of 1 to 32767.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    mult, shift = sigmoid16_input(op.kind, inp.quant.s)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="sigmoid_s16", spec={"tanh": True} if op.kind == "TANH" else {},
        params=dict(size=out.size, input_multiplier=mult, input_shift=shift),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], inplace_inputs=[0],
    )


@lowering("MEAN", dtype="int16")
def lower_mean_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 MEAN with int16 data (zero points 0): each output's sum fits int32.
    return dataclasses.replace(lower_mean(ctx, op), kernel="mean_s16", params_kernel="mean_s8")
