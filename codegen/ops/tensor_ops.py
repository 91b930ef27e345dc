"""PAD and CONCATENATION (int8): data movement without arithmetic.

PAD follows TFLM's PadPrepare/PadEval: constant int32 paddings, the padding
value is the output zero point, values are copied unchanged.
CONCATENATION follows TFLM's ConcatenationPrepare/Eval: for int8 every
input must have exactly the output's scale and zero point (TFLM refuses the
model otherwise; the converter inserts QUANTIZE ops to requantize), and the
bytes are copied unchanged (reference_ops::Concatenation).
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, lowering, tensor_arg, unsupported
from tinyml.graph.ir import Op, Tensor

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("pad_s8", per_mac=4.0),
    portable("concat_s8", per_mac=4.0),
)

PAD_MAX_RANK = 5


@lowering("PAD")
def lower_pad(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: the operands (a constant int32 paddings tensor) and the output zero point's range.
    inp, out, pads_t = ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), ctx.t(op.inputs[1])
    rank = len(inp.shape)
    if not 1 <= rank <= PAD_MAX_RANK:
        raise unsupported(op, f"input '{inp.name}' has shape {list(inp.shape)}; PAD supports 1-D to "
                              f"{PAD_MAX_RANK}-D tensors")
    if len(out.shape) != rank:
        raise unsupported(op, f"output '{out.name}' has rank {len(out.shape)} but input '{inp.name}' has rank {rank}")
    pads = np.asarray(pads_t.data, dtype=np.int64).reshape(-1)
    if pads.size != 2 * rank:
        raise unsupported(op, f"paddings '{pads_t.name}' have {pads.size} values; expected {rank}x2 "
                              "(before and after for each dimension)")
    pads = pads.reshape(rank, 2)
    if np.any(pads < 0):
        raise unsupported(op, f"paddings {pads.tolist()} contain a negative value; only non-negative paddings "
                              "are supported")
    for i in range(rank):
        if out.shape[i] != inp.shape[i] + pads[i, 0] + pads[i, 1]:
            raise unsupported(op, f"output shape {list(out.shape)} does not match input shape {list(inp.shape)} "
                                  f"padded by {pads.tolist()}")
    lead = PAD_MAX_RANK - rank
    in_d = [1] * lead + list(inp.shape)
    before = [0] * lead + [int(v) for v in pads[:, 0]]
    out_d = [1] * lead + list(out.shape)
    params: dict[str, int] = {}
    for k in range(PAD_MAX_RANK):
        params[f"i{k}"] = int(in_d[k])
        params[f"o{k}"] = int(out_d[k])
        params[f"b{k}"] = int(before[k])
    params["pad_value"] = int(out.quant.zp)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="pad_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )


def _concat_input(ctx: LowerContext, op: Op, pos: int, out: Tensor) -> Tensor:
    t = ctx.t(op.inputs[pos])  # validated: an int8 tensor quantized per tensor
    # TFLM ConcatenationPrepare: double(input scale) == double(output scale) and equal zero points.
    if np.float32(t.quant.s) != np.float32(out.quant.s) or t.quant.zp != out.quant.zp:
        raise unsupported(
            op, f"input {pos} '{t.name}' (scale {t.quant.s:.9g}, zero point {t.quant.zp}) is quantized differently "
                f"from output '{out.name}' (scale {out.quant.s:.9g}, zero point {out.quant.zp}); int8 "
                "concatenation needs equal quantization, as in TFLM: requantize the input first (QUANTIZE)")
    return t


@lowering("CONCATENATION")
def lower_concat(ctx: LowerContext, op: Op) -> KernelCall:
    out = ctx.t(op.outputs[0])  # validated: one or more int8 inputs, one output, no fused activation
    ins = [_concat_input(ctx, op, k, out) for k in range(len(op.inputs))]
    rank = len(out.shape)
    if rank < 1:
        raise unsupported(op, f"output '{out.name}' is a scalar; cannot concatenate scalars")
    axis = int(op.options.get("axis", 0))
    pos_axis = axis + rank if axis < 0 else axis
    if not 0 <= pos_axis < rank:
        raise unsupported(op, f"axis {axis} is out of range for {rank}-D tensors")
    total = 0
    for k, t in enumerate(ins):
        same_rank = len(t.shape) == rank
        if not same_rank or any(t.shape[d] != out.shape[d] for d in range(rank) if d != pos_axis):
            raise unsupported(op, f"input {k} '{t.name}' has shape {list(t.shape)}, which does not fit output "
                                  f"shape {list(out.shape)} concatenated along axis {pos_axis}")
        total += t.shape[pos_axis]
    if total != out.shape[pos_axis]:
        raise unsupported(op, f"the inputs add up to {total} along axis {pos_axis} but the output has "
                              f"{out.shape[pos_axis]}")
    outer = int(np.prod(out.shape[:pos_axis], dtype=np.int64))
    inner = int(np.prod(out.shape[pos_axis + 1:], dtype=np.int64))
    chunks = np.asarray([t.shape[pos_axis] * inner for t in ins], dtype=np.int32)
    chunk = ConstArray("chunk", "int32_t", chunks)
    params = dict(outer=outer, out_chunk=out.shape[pos_axis] * inner, inputs=len(ins), chunk="chunk")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="concat_s8", spec={}, params=params,
        args=[tensor_arg(out, writable=True)] + [tensor_arg(t) for t in ins],
        consts=[chunk],
        inputs=[t.index for t in ins if not t.is_const], outputs=[out.index],
    )
