"""SVDF (int8 input and output, int16 or int8 state): TFLM svdf.cc and EvalIntegerSvdfReference; and float32
SVDF, EvalFloatSvdfReference (svdf_f32, within verify's float tolerance as the other float kernels).

The state (input 4, a variable tensor) is kept between invocations in its own arena region (the planner's
"state" buffers); the kernel updates it in place at every invoke: each filter's memory moves one step older
and the feature matmul writes the newest step.  The two multipliers are TFLM's Prepare's, each scale product
taken in float32 (validate/sequence.py: svdf_effective_scales).
"""

from __future__ import annotations

from tinyml.codegen.declare import portable, portable_f32
from tinyml.codegen.lower import KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.ops.common import fused_activation
from tinyml.codegen.ops.floats import activation_range_f32
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate.sequence import SVDF_STATE, svdf_effective_scales

# Instructions per MAC (feature and time MACs) on mps2-an386, a coarse figure of the portable loops (the
# shift of the state adds about one instruction per state value, counted in the MACs of the time weights).
SVDF_PER_MAC = 6.0
VARIANTS = (
    portable("svdf_s8", per_mac=SVDF_PER_MAC),
    portable_f32("svdf_f32", 8.0, 100.0),  # as fc_f32: a multiply-add per MAC
)

_STATE_TYPES = {"int16": ("int16_t", -32768, 32767), "int8": ("int8_t", -128, 127)}


@lowering("SVDF")
def lower_svdf(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated (validate/sequence.py): 2-D shapes, filters = rank x units, weights_time of the state's type,
    # a bias, the scales of TFLM's Prepare; the state a variable tensor only this operator reads.
    inp, wf, wt, bias, state = (ctx.t(op.inputs[i]) for i in (0, 1, 2, 3, SVDF_STATE))
    out = ctx.t(op.outputs[0])
    batches, size = inp.shape
    filters, memory = wt.shape
    rank = int(op.options["rank"])
    s1, s2 = svdf_effective_scales(ctx.graph, op)
    m1, sh1 = quantize_multiplier(s1)
    m2, sh2 = quantize_multiplier(s2)
    ctype, lo, hi = _STATE_TYPES[state.dtype]
    params = dict(batches=batches, input_size=size, filters=filters, rank=rank, memory=memory,
                  input_offset=-inp.quant.zp, state_zero_point=state.quant.zp, output_offset=out.quant.zp,
                  mult1=m1, shift1=sh1, mult2=m2, shift2=sh2)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="svdf_s8",
        spec=dict(state=ctype, state_min=f"({lo})", state_max=f"({hi})"), params=params,
        args=[tensor_arg(inp), tensor_arg(wf), tensor_arg(wt), tensor_arg(bias), tensor_arg(state, writable=True),
              tensor_arg(out, writable=True)],
        inputs=[inp.index, state.index], outputs=[out.index],
        macs=batches * filters * (size + memory),
    )


@lowering("SVDF", dtype="float32")
def lower_svdf_f32(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated (validate/sequence.py, the float row): float32 operands, 2-D shapes, a bias, the state.
    inp, wf, wt, bias, state = (ctx.t(op.inputs[i]) for i in (0, 1, 2, 3, SVDF_STATE))
    out = ctx.t(op.outputs[0])
    batches, size = inp.shape
    filters, memory = wt.shape
    lo, hi = activation_range_f32(fused_activation(op))
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="svdf_f32", spec={},
        params=dict(batches=batches, input_size=size, filters=filters, rank=int(op.options["rank"]), memory=memory,
                    act_min=lo, act_max=hi),
        args=[tensor_arg(inp), tensor_arg(wf), tensor_arg(wt), tensor_arg(bias), tensor_arg(state, writable=True),
              tensor_arg(out, writable=True)],
        inputs=[inp.index, state.index], outputs=[out.index],
        macs=batches * filters * (size + memory),
    )
