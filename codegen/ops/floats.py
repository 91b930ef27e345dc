"""float32 operators: FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, ADD, MUL,
PAD, PADV2, SOFTMAX, LOGISTIC, TANH, RELU, RELU6 (RESHAPE and SQUEEZE are type-generic aliases, lowered in
shape.py; CONCATENATION and the data-movement operators move bytes of either type, tensor_ops.py and
movement.py).

Each follows TFLM's float kernel (its reference_ops function, named in each template) in portable C: the
same loops in the same order, the sums in float, the fused activation a float clamp (TFLM's
CalculateActivationRange).  Float results are not promised bit-exact with TFLM (libm's expf and tanhf
differ between C libraries, and a compiler may contract a product and a sum); ``tinyml verify`` checks them
within a relative tolerance (tinyml/tools/verify.py).  The float kernels offer no in-place or patch forms:
the planner gives each output its own arena bytes (4 per element).  CONCATENATION and the data-movement
operators move bytes: their int8 lowerings (tensor_ops.py, movement.py) take 4-byte elements as well.
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable_f32
from tinyml.codegen.lower import Arg, KernelCall, LowerContext, lowering, null_arg, tensor_arg
from tinyml.codegen.ops.common import fused_activation, weighted_operands
from tinyml.codegen.ops.conv import conv_geometry, depthwise_geometry
from tinyml.codegen.ops.elementwise import broadcast_layout
from tinyml.codegen.ops.pool import mean_layout, pool_layout, pool_macs
from tinyml.codegen.ops.tensor_ops import pad_params
from tinyml.graph.ir import Op, Tensor

FLT_MAX = float(np.finfo(np.float32).max)

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them: portable C, whole
# layer only (no in-place or patch form), no scratch, no on-stack buffer.  Their cost: instructions per MAC
# (per output element without MACs; per input element for MEAN) as QEMU counted them (`tinyml profile`) for
# tests/test_float32.py's float CNN on mps2-an386 (Cortex-M4, single-precision FPU) and, soft float, on
# mps2-an385 (Cortex-M3, no FPU; the compiler's float library).
LIBM_KERNELS = ("softmax_f32", "unary_f32", "exp_f32", "lstm_f32")  # call expf or tanhf: a firmware links the C math library (-lm)


VARIANTS = (
    portable_f32("fc_f32", 8.0, 100.0),
    portable_f32("conv_f32", 16.0, 99.0),
    portable_f32("dwconv_f32", 29.0, 98.0),
    portable_f32("avgpool_f32", 17.0, 71.0),
    portable_f32("maxpool_f32", 20.0, 76.0),
    portable_f32("mean_f32", 47.0, 96.0),
    portable_f32("binary_f32", 18.0, 116.0),
    portable_f32("pad_f32", 17.0, 14.0),
    portable_f32("softmax_f32", 92.0, 1270.0),
    portable_f32("unary_f32", 106.0, 1870.0),  # TANH's (LOGISTIC: 82 and 1290; RELU, RELU6 a few)
)


def activation_range_f32(act: str) -> tuple[np.float32, np.float32]:
    """TFLM CalculateActivationRange<float>: the clamp of a fused activation (validated: NONE, RELU, RELU6,
    RELU_N1_TO_1)."""
    lo, hi = {"RELU": (0.0, FLT_MAX), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}.get(act, (-FLT_MAX, FLT_MAX))
    return np.float32(lo), np.float32(hi)


def _clamp(op: Op) -> dict[str, np.float32]:
    lo, hi = activation_range_f32(fused_activation(op))
    return dict(act_min=lo, act_max=hi)


def _bias(b: Tensor | None) -> Arg:
    return tensor_arg(b) if b is not None else null_arg("float")


@lowering("FULLY_CONNECTED", dtype="float32")
def lower_fc_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)  # validated: float32 weights [outputs, inputs], shapes, bias
    out_depth, accum = w.shape
    batches = inp.size // accum
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="fc_f32", spec={},
        params=dict(batches=batches, accum_depth=accum, out_depth=out_depth, **_clamp(op)),
        args=[tensor_arg(inp), tensor_arg(w), _bias(b), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=batches * out_depth * accum,
    )


@lowering("CONV_2D", dtype="float32")
def lower_conv_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    geometry, macs = conv_geometry(op, inp, out, w)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="conv_f32", spec={}, params=dict(**geometry, **_clamp(op)),
        args=[tensor_arg(inp), tensor_arg(w), _bias(b), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=macs,
    )


@lowering("DEPTHWISE_CONV_2D", dtype="float32")
def lower_depthwise_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out, w, b = weighted_operands(ctx, op)
    geometry, macs = depthwise_geometry(op, inp, out, w)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="dwconv_f32", spec={}, params=dict(**geometry, **_clamp(op)),
        args=[tensor_arg(inp), tensor_arg(w), _bias(b), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=macs,
    )


@lowering("AVERAGE_POOL_2D", "MAX_POOL_2D", dtype="float32")
def lower_pool_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])  # validated: 4-D shapes that agree, the window
    params = dict(**pool_layout(op, inp, out), **_clamp(op))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="avgpool_f32" if op.kind == "AVERAGE_POOL_2D" else "maxpool_f32",
        spec={}, params=params, args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=pool_macs(params),
    )


@lowering("MEAN", dtype="float32")
def lower_mean_f32(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: a constant int32 axis, a 1-D to 4-D input of 1 to 2^23 values, at least one axis, each in
    # range, the output size the reduction leaves.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    params = mean_layout(ctx, op)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="mean_f32", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index], macs=inp.size,
    )


@lowering("ADD", "MUL", "SUB", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "PRELU", dtype="float32")
def lower_binary_f32(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: two float32 inputs, at most one a constant, that broadcast (up to 4-D) to the output; the
    # operators without a fused activation clamp to +-FLT_MAX, which changes no finite value.
    a, b, out = ctx.t(op.inputs[0]), ctx.t(op.inputs[1]), ctx.t(op.outputs[0])
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="binary_f32", spec=dict(op=op.kind.lower()),
        params=dict(**broadcast_layout(a, b, out), **_clamp(op)),
        args=[tensor_arg(a), tensor_arg(b), tensor_arg(out, writable=True)],
        inputs=[t.index for t in (a, b) if not t.is_const], outputs=[out.index], macs=out.size,
    )


@lowering("PAD", "PADV2", dtype="float32")
def lower_pad_f32(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: a constant int32 paddings tensor, an optional constant float32 padding value of one element,
    # 1-D to 5-D, one non-negative (before, after) pair per dimension, the output shape the input's padded.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    value = ctx.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    pad_value = np.float32(np.asarray(value.data).reshape(-1)[0]) if value is not None else np.float32(0.0)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="pad_f32", spec={},
        params=dict(**pad_params(ctx, op), pad_value=pad_value),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )


@lowering("SOFTMAX", dtype="float32")
def lower_softmax_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])  # validated: equal shapes of rank 1 or more, beta
    depth = inp.shape[-1]
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="softmax_f32", spec={},
        params=dict(rows=inp.size // depth, depth=depth, beta=np.float32(op.options.get("beta", 1.0))),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )


@lowering("LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", dtype="float32")
def lower_unary_f32(ctx: LowerContext, op: Op) -> KernelCall:
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])  # validated: the same number of values
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="unary_f32", spec=dict(op=op.kind.lower()),
        params=dict(size=inp.size, alpha=np.float32(op.options.get("alpha", 0.0))),
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )

