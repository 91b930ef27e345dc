"""SOFTMAX, LOGISTIC, TANH and MEAN on int16 (int16x8 models), bit-exact with TFLM's 16-bit kernels.

- SOFTMAX (``softmax_s16``): TFLM's reference_ops::SoftmaxInt16 with the tables its SoftmaxPrepare builds
  (gen_lut in float over 512 steps: exp on [-10, 0] and 1/(1 + x) on [0, 1], 513 int16 entries each, the
  same for every model, so computed here once; see :func:`int16_lut`), passed as constant arrays.
- LOGISTIC and TANH (``sigmoid_s16``): reference_integer_ops::Logistic and Tanh for int16, which interpolate
  TFLM's 256-entry table of sigmoid(i / 24) in 0.16 fixed point (:data:`SIGMOID_TABLE_U16`) after
  rescaling the input by the multiplier and shift of their Prepare (validation's sigmoid16_input).
- MEAN (``mean_s16``): the int8 MEAN (pool.py, TFLM's QuantizedMeanOrSum) on int16 values, with its params.

The kernels are portable C, whole layer only.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.pool import lower_mean
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate import sigmoid16_input, softmax16_real

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them: instructions per
# output element (per input value for MEAN), estimated from their int8 counterparts.
VARIANTS = (
    portable("softmax_s16", per_mac=40.0),
    portable("sigmoid_s16", inplace=True, per_mac=15.0),
    portable("mean_s16", per_mac=8.0),
)

LUT_STEPS = 512  # gen_lut's steps for an int16 input; the table has one more entry, for the last slope

# TFLM's sigmoid_table_uint16 (tensorflow/lite/kernels/internal/common.h): sigmoid(i / 24) for i = 0..255 in
# unsigned 0.16 fixed point, the last entry 65535.  The values are TFLM's data (44 of them differ by one from
# round(65536 * sigmoid(i / 24)), so they cannot be recomputed; tests/test_int16_nonlinear.py checks them
# against the rounded function: at most one step from it).
SIGMOID_TABLE_U16 = (
    32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513, 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369, 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755, 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519, 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302, 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835, 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652, 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079, 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301, 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415, 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474, 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504, 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520, 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528, 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532, 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535,
)

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
        params=dict(size=out.size, input_multiplier=mult, input_shift=shift,
                    input_round=(1 << (shift - 1)) if shift > 0 else 0, table="table"),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        consts=[ConstArray("table", "uint16_t", np.asarray(SIGMOID_TABLE_U16, dtype=np.uint16))],
        inputs=[inp.index], outputs=[out.index], inplace_inputs=[0],
    )


@lowering("MEAN", dtype="int16")
def lower_mean_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated as the int8 MEAN with int16 data (zero points 0): the sum of the input's values fits int32.
    return dataclasses.replace(lower_mean(ctx, op), kernel="mean_s16", params_kernel="mean_s8")
