"""Element-wise int8 operators: ADD, SUB and MUL (with broadcasting), RELU, RELU6, LEAKY_RELU.

ADD and MUL follow TFLM add_common.cc / mul_common.cc (Prepare) and
reference_integer_ops::AddFunc / MulElementwise (run time).  SUB follows
sub_common.cc (ADD's Prepare) and reference_ops::SubElementwise: ADD's
kernel with the rescaled second input subtracted (spec ``sub``), not added.
Negating the second input (or its multiplier) would not be exact:
SaturatingRoundingDoublingHighMul rounds halves up, not away from zero.
Each input's rescaled value depends on its int8 value alone, so ADD and SUB
take it from a 256-entry int32 table per input computed here (one table
when both inputs rescale alike); the kernels sum (or subtract) and rescale
to the output.  RELU and
LEAKY_RELU are lowered to a 256-entry lookup table computed here with
TFLM's integer arithmetic (activations_common.cc CalculateReluOpData +
ReluQuantized; leaky_relu_common.cc + reference_ops::QuantizeLeakyRelu).
RELU6 is TFLM's Relu6Quantized: a clamp in the input's quantized domain.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, const_arg, lowering, tensor_arg
from tinyml.codegen.ops.common import fused_activation
from tinyml.codegen.qmath import (INT8_MAX, INT8_MIN, activation_range, multiply_by_quantized_multiplier,
                                  quantize_float, quantize_multiplier)
from tinyml.graph.ir import Op, Tensor
from tinyml.graph.validate import ADD_LEFT_SHIFT, BROADCAST_MAX_RANK as MAX_RANK, add_reals

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    # ADD: 58.6 instructions per output element (ResNet-8's three ADDs on mps2-an385, Cortex-M3)
    portable("add_s8", inplace=True, per_mac=59.0, code_bytes=430),
    portable("mul_s8", inplace=True, per_mac=25.0),
    portable("elementwise_lut_s8", inplace=True, per_mac=5.0),
    portable("relu6_s8", inplace=True, per_mac=6.0),
)

# ---------------------------------------------------------------------------
# shared helpers


def tensor_scale(t: Tensor) -> float:
    """The per-tensor scale as TFLM reads it (validation checked it is positive and finite)."""
    return float(np.float32(t.quant.s))


def broadcast_layout(a: Tensor, b: Tensor, out: Tensor) -> dict[str, int]:
    """Output dims d0..d3 and per-input element strides (0 along broadcast dims), as in TFLM's
    NdArrayDescsForElementwiseBroadcast: shapes are right-aligned and extended with leading 1s
    (validated: at most 4-D, and the output the broadcast of the inputs)."""
    dims = [1] * (MAX_RANK - len(out.shape)) + list(out.shape)
    fields: dict[str, int] = {f"d{i}": dims[i] for i in range(MAX_RANK)}
    for prefix, t in (("a", a), ("b", b)):
        shape = [1] * (MAX_RANK - len(t.shape)) + list(t.shape)
        stride = 1
        strides = [0] * MAX_RANK
        for i in reversed(range(MAX_RANK)):
            # equal to the output's dimension, or 1 (broadcast: stride 0)
            strides[i] = stride if shape[i] == dims[i] and dims[i] > 1 else 0
            stride *= shape[i]
        fields.update({f"{prefix}{i}": strides[i] for i in range(MAX_RANK)})
    return _collapse(fields)


def _collapse(f: dict[str, int]) -> dict[str, int]:
    """Merge neighbouring dimensions that both inputs walk the same way (contiguously, or both
    broadcast), so that e.g. same-shape inputs become one flat loop.  The visiting order (and so
    the result) is unchanged."""
    dims = [(f[f"d{i}"], f[f"a{i}"], f[f"b{i}"]) for i in range(MAX_RANK) if f[f"d{i}"] != 1]
    merged: list[tuple[int, int, int]] = []
    for d, sa, sb in dims:
        if merged:
            pd, psa, psb = merged[-1]
            if psa == sa * d and psb == sb * d:
                merged[-1] = (pd * d, sa, sb)
                continue
        merged.append((d, sa, sb))
    merged = [(1, 0, 0)] * (MAX_RANK - len(merged)) + merged
    out: dict[str, int] = {}
    for i, (d, sa, sb) in enumerate(merged):
        out[f"d{i}"], out[f"a{i}"], out[f"b{i}"] = d, sa, sb
    return {k: out[k] for k in sorted(out, key=lambda k: ("dab".index(k[0]), k[1]))}


def binary_operands(ctx: LowerContext, op: Op) -> tuple[Tensor, Tensor, Tensor, str, dict[str, int]]:
    """The inputs, output, fused activation and broadcast layout of a two-input int8 operator (validated: two
    int8 per-tensor inputs, at most one a constant, that broadcast to the int8 output; the activation)."""
    a, b, out = ctx.t(op.inputs[0]), ctx.t(op.inputs[1]), ctx.t(op.outputs[0])
    act = fused_activation(op)
    layout = broadcast_layout(a, b, out)
    return a, b, out, act, layout


def binary_call(op: Op, kernel: str, a: Tensor, b: Tensor, out: Tensor, params: dict[str, int],
                spec: dict[str, bool] | None = None) -> KernelCall:
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel=kernel, spec=spec or {}, params=params,
        args=[tensor_arg(a), tensor_arg(b), tensor_arg(out, writable=True)],
        inputs=[t.index for t in (a, b) if not t.is_const], outputs=[out.index],
        macs=out.size,
        # Element o of the output is written right after element o of each
        # input is read, so the output may take over a same-sized dying input.
        inplace_inputs=[pos for pos, t in enumerate((a, b)) if not t.is_const and t.size == out.size],
    )


# ---------------------------------------------------------------------------
# ADD / SUB / MUL


def add_params(op: Op, a: Tensor, b: Tensor, out: Tensor, act: str, left_shift: int,
               out_range: tuple[int, int] = (INT8_MIN, INT8_MAX)) -> dict[str, int]:
    """The rescaling of ADD and SUB: TFLM CalculateOpDataAdd, which CalculateOpDataSub equals, with the left
    shift of the type (validated: every rescaling factor below 1), and the activation range within
    ``out_range``."""
    mults: dict[str, int] = {}
    for name, real in zip(("in1", "in2", "out"), add_reals(tensor_scale(a), tensor_scale(b), tensor_scale(out),
                                                           left_shift)):
        mults[f"{name}_mult"], mults[f"{name}_shift"] = quantize_multiplier(real)
    act_min, act_max = activation_range(act, out.quant.s, out.quant.zp, *out_range)
    return dict(in1_offset=-a.quant.zp, in2_offset=-b.quant.zp, left_shift=left_shift, **mults,
                out_offset=out.quant.zp, act_min=act_min, act_max=act_max)


def add_table(offset: int, mult: int, shift: int) -> np.ndarray:
    """TFLM AddFunc's rescaled input for every int8 value x (entry x + 128):
    MultiplyByQuantizedMultiplierSmallerThanOneExp((x + offset) << left_shift, mult, shift)."""
    return np.asarray([multiply_by_quantized_multiplier((x + offset) * (1 << ADD_LEFT_SHIFT), mult, shift)
                       for x in range(INT8_MIN, INT8_MAX + 1)], dtype=np.int32)


@lowering("ADD", "SUB")
def lower_add(ctx: LowerContext, op: Op) -> KernelCall:
    a, b, out, act, layout = binary_operands(ctx, op)
    full = add_params(op, a, b, out, act, ADD_LEFT_SHIFT)
    params = dict(**layout, **{k: full[k] for k in ("out_mult", "out_shift", "out_offset", "act_min", "act_max")})
    t1 = add_table(full["in1_offset"], full["in1_mult"], full["in1_shift"])
    t2 = add_table(full["in2_offset"], full["in2_mult"], full["in2_shift"])
    tables = [ConstArray("table1", "int32_t", t1)]
    if not np.array_equal(t1, t2):
        tables.append(ConstArray("table2", "int32_t", t2))
    call = binary_call(op, "add_s8", a, b, out, params, dict(sub=True) if op.kind == "SUB" else None)
    return replace(call, args=call.args + [const_arg(tables[0]), const_arg(tables[-1])], consts=tables)


def mul_params(a: Tensor, b: Tensor, out: Tensor, act: str,
               out_range: tuple[int, int] = (INT8_MIN, INT8_MAX)) -> dict[str, int]:
    """TFLM CalculateOpDataMul: double(s1) * double(s2) / double(s_out), QuantizeMultiplier; the activation
    range within ``out_range``."""
    m, shift = quantize_multiplier(tensor_scale(a) * tensor_scale(b) / tensor_scale(out))
    act_min, act_max = activation_range(act, out.quant.s, out.quant.zp, *out_range)
    return dict(in1_offset=-a.quant.zp, in2_offset=-b.quant.zp, out_mult=m, out_shift=shift,
                out_offset=out.quant.zp, act_min=act_min, act_max=act_max)


@lowering("MUL")
def lower_mul(ctx: LowerContext, op: Op) -> KernelCall:
    a, b, out, act, layout = binary_operands(ctx, op)
    return binary_call(op, "mul_s8", a, b, out, dict(**layout, **mul_params(a, b, out, act)))


# ---------------------------------------------------------------------------
# unary int8 operators


def int8_table(fn: Callable[[int], int]) -> np.ndarray:
    """The 256-entry table indexed by the input's bit pattern ((uint8_t)x in C)."""
    values = [fn(k - 256 if k >= 128 else k) for k in range(256)]
    if min(values) < INT8_MIN or max(values) > INT8_MAX:
        raise AssertionError("table value out of int8 range")
    return np.asarray(values, dtype=np.int8)


def lut_call(op: Op, inp: Tensor, out: Tensor, table: np.ndarray) -> KernelCall:
    arr = ConstArray("table", "int8_t", table)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="elementwise_lut_s8", spec={},
        params=dict(size=out.size, table="table"),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        consts=[arr], inputs=[inp.index], outputs=[out.index], inplace_inputs=[0],
    )


def _unary(ctx: LowerContext, op: Op) -> tuple[Tensor, Tensor]:
    """Input and output of a one-input int8 operator (validated: per-tensor quantized, the same size)."""
    return ctx.t(op.inputs[0]), ctx.t(op.outputs[0])


def relu_table(in_s: float, in_zp: int, out_s: float, out_zp: int) -> np.ndarray:
    """TFLM CalculateReluOpData<int8_t> + ReluQuantized."""
    m, shift = quantize_multiplier(in_s / out_s)
    act_min = max(INT8_MIN, out_zp + quantize_float(0.0, out_s, 0))
    act_max = INT8_MAX

    def f(x: int) -> int:
        v = out_zp + multiply_by_quantized_multiplier(x - in_zp, m, shift)
        return min(act_max, max(act_min, v))

    return int8_table(f)


def leaky_relu_multipliers(in_s: float, out_s: float, alpha: float) -> tuple[int, int, int, int]:
    """TFLM CalculateOpDataLeakyRelu: the identity multiplier and shift, then alpha's; the installed TFLM
    computes both real multipliers in double from the float32 scales and alpha (input scale x alpha / output
    scale; computed in float32 they differ in the last bits, which changes a few int16 outputs per 65,536:
    tests/test_int16_unet.py checks every int16 input)."""
    f_in, f_out, f_alpha = (float(np.float32(v)) for v in (in_s, out_s, alpha))
    return (*quantize_multiplier(f_in / f_out), *quantize_multiplier(f_in * f_alpha / f_out))


def leaky_relu_table(in_s: float, in_zp: int, out_s: float, out_zp: int, alpha: float) -> np.ndarray:
    """TFLM CalculateOpDataLeakyRelu + reference_ops::QuantizeLeakyRelu."""
    m_i, s_i, m_a, s_a = leaky_relu_multipliers(in_s, out_s, alpha)

    def f(x: int) -> int:
        v = x - in_zp
        if v >= 0:
            r = out_zp + multiply_by_quantized_multiplier(v, m_i, s_i)
        else:
            r = out_zp + multiply_by_quantized_multiplier(v, m_a, s_a)
        return min(INT8_MAX, max(INT8_MIN, r))

    return int8_table(f)


@lowering("RELU")
def lower_relu(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = _unary(ctx, op)
    table = relu_table(tensor_scale(inp), inp.quant.zp, tensor_scale(out), out.quant.zp)
    return lut_call(op, inp, out, table)


@lowering("LEAKY_RELU")
def lower_leaky_relu(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = _unary(ctx, op)
    alpha = op.options["alpha"]  # validated: finite
    table = leaky_relu_table(tensor_scale(inp), inp.quant.zp, tensor_scale(out), out.quant.zp,
                             float(alpha))
    return lut_call(op, inp, out, table)


@lowering("RELU6")
def lower_relu6(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = _unary(ctx, op)
    # TFLM Relu6Prepare: zero = input zero point, six = FloatToQuantizedType<int8_t>(6, input scale, zp);
    # Relu6Quantized clamps the raw int8 values (the output's quantization is not used).
    s = tensor_scale(inp)
    zero = inp.quant.zp
    six = min(INT8_MAX, max(INT8_MIN, quantize_float(6.0, s, zero)))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="relu6_s8", spec={},
        params=dict(size=out.size, lower=zero, upper=six),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], inplace_inputs=[0],
    )
