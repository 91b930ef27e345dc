"""PAD and CONCATENATION (int8): data movement without arithmetic.

PAD and PADV2 follow TFLM's PadPrepare/PadEval (one kernel for both): constant
int32 paddings, the padding value is the constant_values input (quantized as
the output) where there is one, else the output zero point; values are copied
unchanged.
CONCATENATION follows TFLM's ConcatenationPrepare/Eval: for int8 every
input must have exactly the output's scale and zero point (TFLM refuses the
model otherwise; the converter inserts QUANTIZE ops to requantize), and the
bytes are copied unchanged (reference_ops::Concatenation); int16 and float32
values too, as bytes (TFLM copies int16 inputs whatever their quantization).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, bytes_arg, lowering, tensor_arg
from tinyml.graph.ir import DTYPE_BYTES, Op, Tensor
from tinyml.graph.validate import PAD_MAX_RANK

# The kernel variants these lowerings produce (codegen/declare.py), declared beside them.
VARIANTS = (
    portable("pad_s8", per_mac=4.0),
    dataclasses.replace(portable("concat_s8", per_mac=4.0), per_byte=True),  # per output byte
)


@lowering("PAD", "PADV2")
def lower_pad(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: the operands (a constant int32 paddings tensor, an optional constant int8 padding value of
    # one element), 1-D to 5-D, one non-negative (before, after) pair per dimension, and the output shape the
    # input's padded.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    params = pad_params(ctx, op)
    value = ctx.t(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    params["pad_value"] = int(np.asarray(value.data).reshape(-1)[0]) if value is not None else int(out.quant.zp)
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="pad_s8", spec={}, params=params,
        args=[tensor_arg(inp), tensor_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )


def pad_params(ctx: LowerContext, op: Op) -> dict[str, int]:
    """The input and output dimensions and the padding before each, extended to 5-D with leading ones (of
    pad_s8 and pad_f32)."""
    inp, out, pads_t = ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), ctx.t(op.inputs[1])
    rank = len(inp.shape)
    pads = np.asarray(pads_t.data, dtype=np.int64).reshape(rank, 2)
    lead = PAD_MAX_RANK - rank
    in_d = [1] * lead + list(inp.shape)
    before = [0] * lead + [int(v) for v in pads[:, 0]]
    out_d = [1] * lead + list(out.shape)
    params: dict[str, int] = {}
    for k in range(PAD_MAX_RANK):
        params[f"i{k}"] = int(in_d[k])
        params[f"o{k}"] = int(out_d[k])
        params[f"b{k}"] = int(before[k])
    return params


@lowering("CONCATENATION", dtype=("int8", "int16", "float32"))
def lower_concat(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: one or more inputs of the output's type (int8 ones quantized as the output), one output of
    # rank 1 or more, the axis in range, and the inputs' shapes adding up to the output's along it; no fused
    # activation.
    out = ctx.t(op.outputs[0])
    ins = [ctx.t(i) for i in op.inputs]
    rank = len(out.shape)
    axis = int(op.options.get("axis", 0))
    pos_axis = axis + rank if axis < 0 else axis
    outer = int(np.prod(out.shape[:pos_axis], dtype=np.int64))
    inner = int(np.prod(out.shape[pos_axis + 1:], dtype=np.int64))
    return concat_call(op, out, ins, outer, [t.shape[pos_axis] * inner for t in ins])


def byte_chunks(dtype: str, chunks: list[int]) -> tuple[ConstArray, int]:
    """The ``chunk`` table of concat_s8/split_s8 (element counts of ``dtype`` as bytes) and its sum."""
    sizes = np.asarray(chunks, dtype=np.int64) * DTYPE_BYTES[dtype]
    return ConstArray("chunk", "int32_t", sizes.astype(np.int32)), int(sizes.sum())


def concat_call(op: Op, out: Tensor, ins: list[Tensor], outer: int, chunks: list[int]) -> KernelCall:
    """The concat_s8 call that writes ``outer`` times, one after the other, ``chunks[k]`` elements of each
    input k into ``out``, as bytes (CONCATENATION, int8, int16 and float32; PACK, whose inputs are such chunks, in
    codegen/ops/movement.py)."""
    chunk, total = byte_chunks(out.dtype, chunks)
    params = dict(outer=outer, out_chunk=total, inputs=len(ins), chunk="chunk")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="concat_s8", spec={}, params=params,
        args=[bytes_arg(out, writable=True)] + [bytes_arg(t) for t in ins],
        consts=[chunk],
        inputs=[t.index for t in ins if not t.is_const], outputs=[out.index],
    )
