"""Data movement (int8, int16 and float32): TRANSPOSE, STRIDED_SLICE, SLICE, DEPTH_TO_SPACE, SPACE_TO_DEPTH, SPLIT,
SPLIT_V, PACK, UNPACK.  They copy bytes unchanged, as TFLM does (no quantization relation is checked there or
here); an int16 element is 2 bytes and a float32 one 4, an innermost loop of the copy (its steps in bytes).

Every constant parameter is resolved at compile time:

- TRANSPOSE, STRIDED_SLICE, SLICE, DEPTH_TO_SPACE and SPACE_TO_DEPTH become one strided gather
  (``copy_nd_s8``): the output in order, as up to 6 nested loops, each with the input step of its
  index (negative for a backward slice), from one start index.  Validation resolved the slices
  (``strided_slice_axes``, ``slice_axes``) the way TFLM's Prepare and Eval do.
- SPLIT, SPLIT_V and UNPACK cut the input into ``outer`` rows of consecutive chunks, one per output
  (``split_s8``); PACK is the inverse, a concatenation (``concat_s8``, codegen/ops/tensor_ops.py).

None of the kernels needs scratch or stack buffers.
"""

from __future__ import annotations

import dataclasses
import math

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, bytes_arg, lowering
from tinyml.codegen.ops.tensor_ops import byte_chunks, concat_call
from tinyml.graph.ir import DTYPE_BYTES, Op, Tensor
from tinyml.graph.validate import (SliceAxis, pack_axis, slice_axes, split_axis, strided_slice_axes, transpose_perm,
                                   unpack_axis)

COPY_ND_RANK = 6  # loops of copy_nd_s8 (DEPTH_TO_SPACE and SPACE_TO_DEPTH need 6)
DTYPES = ("int8", "int16", "float32")  # what the kernels move (validation's RULES, INT16_RULES, FLOAT_RULES)

# copy_nd_s8's estimated instructions per output byte and per pass of its innermost loop (a row copied
# with memcpy where the innermost input step is 1, else the bytes gathered one by one), fitted (least
# squares on relative error) to the QEMU counts of ten TRANSPOSEs of 96 to 4,800 bytes (2-D to 4-D, rows
# of 4 to 32 bytes, gathers of 2 to 256 bytes a pass) on mps2-an386 and mps3-an547 (December 2026): within
# -4% .. +5% (rows) and -22% .. +16% (gathers) of the measured 1.5 to 10.9 per byte (4 per byte alone: -74%).
COPY_ND_RATES = {"rows": (0.67, 28.0), "gather": (4.7, 11.4)}


def copy_nd_rates(call: KernelCall) -> tuple[float, float]:
    """(per output byte, 0) of a copy_nd_s8 call: its per-pass cost spread over the innermost loop's bytes."""
    p = call.params
    inner = p[f"d{COPY_ND_RANK - 1}"]
    per_byte, per_pass = COPY_ND_RATES["rows" if p[f"s{COPY_ND_RANK - 1}"] == 1 else "gather"]
    return per_byte + per_pass / inner, 0.0


VARIANTS = (
    dataclasses.replace(portable("copy_nd_s8", rates=copy_nd_rates, code_bytes=310), per_byte=True),
    # per output byte: ~4 in 8-byte chunks, ~0.5 in long ones
    dataclasses.replace(portable("split_s8", per_mac=2.0), per_byte=True),
)


def pitches(shape: tuple[int, ...] | list[int]) -> list[int]:
    """Elements between neighbours along each dimension of a row-major tensor."""
    out = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        out[k] = out[k + 1] * int(shape[k + 1])
    return out


def gather_loops(dims: list[int], steps: list[int]) -> tuple[list[int], list[int]]:
    """The loops (counts, input steps), outermost first, that visit the same input elements in the same
    order with the fewest loops: loops of one iteration dropped, and a loop merged into the one inside it
    where it steps over exactly that loop's span.  Padded with one-iteration loops to COPY_ND_RANK."""
    loops = [(d, s) for d, s in zip(dims, steps) if d != 1]
    merged: list[tuple[int, int]] = []
    for d, s in reversed(loops):
        if merged and s == merged[-1][0] * merged[-1][1]:
            inner_d, inner_s = merged.pop()
            merged.append((d * inner_d, inner_s))
        else:
            merged.append((d, s))
    merged.reverse()
    if len(merged) > COPY_ND_RANK:
        raise ValueError(f"{len(merged)} loops do not fit copy_nd_s8; this is a bug")
    pad = [(1, 0)] * (COPY_ND_RANK - len(merged))
    full = pad + merged
    return [d for d, _ in full], [s for _, s in full]


def copy_nd_call(op: Op, inp: Tensor, out: Tensor, dims: list[int], steps: list[int], start: int) -> KernelCall:
    """The copy_nd_s8 call that writes ``out`` in order from input element ``start`` + sum(i_k x steps[k])
    over the loops ``dims`` (outermost first): in bytes, the loops go on into the bytes of each element
    (none more for int8; an innermost step of 1 merges with them)."""
    e = DTYPE_BYTES[inp.dtype]
    counts, strides = gather_loops(dims + [e], [s * e for s in steps] + [1])
    start *= e
    params: dict[str, int] = {"start": int(start)}
    for k in range(COPY_ND_RANK):
        params[f"d{k}"] = int(counts[k])
        params[f"s{k}"] = int(strides[k])
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="copy_nd_s8", spec={}, params=params,
        args=[bytes_arg(inp), bytes_arg(out, writable=True)],
        inputs=[inp.index], outputs=[out.index],
    )


def _slice_call(ctx: LowerContext, op: Op, axes: list[SliceAxis]) -> KernelCall:
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    pitch = pitches(inp.shape)
    return copy_nd_call(op, inp, out, [a.count for a in axes], [a.step * p for a, p in zip(axes, pitch)],
                        sum(a.start * p for a, p in zip(axes, pitch)))


@lowering("TRANSPOSE", dtype=DTYPES)
def lower_transpose(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 1-D to 5-D, a permutation of the dimensions, the output shape the permuted input's.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    perm = transpose_perm(ctx.graph, op)
    pitch = pitches(inp.shape)
    return copy_nd_call(op, inp, out, [inp.shape[p] for p in perm], [pitch[p] for p in perm], 0)


@lowering("STRIDED_SLICE", dtype=DTYPES)
def lower_strided_slice(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 1-D to 4-D, constant begin/end/strides resolved in range, no ellipsis or new axis.
    return _slice_call(ctx, op, strided_slice_axes(ctx.graph, op))


@lowering("SLICE", dtype=DTYPES)
def lower_slice(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 1-D to 5-D, constant begin and size in range.
    return _slice_call(ctx, op, slice_axes(ctx.graph, op))


@lowering("DEPTH_TO_SPACE", dtype=DTYPES)
def lower_depth_to_space(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 4-D, channels divisible by block^2.  output[n][h*b + i][w*b + j][c] is
    # input[n][h][w][(i*b + j)*C' + c] (C' output channels): loops n, h, i, w, j, c.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    n, h, w, c = inp.shape
    b = int(op.options["block_size"])
    oc = c // (b * b)
    dims = [n, h, b, w, b, oc]
    steps = [h * w * c, w * c, b * oc, c, oc, 1]
    return copy_nd_call(op, inp, out, dims, steps, 0)


@lowering("SPACE_TO_DEPTH", dtype=DTYPES)
def lower_space_to_depth(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: 4-D, height and width divisible by block.  output[n][h][w][(i*b + j)*C + c] is
    # input[n][h*b + i][w*b + j][c]: loops n, h, w, i, j, c.
    inp, out = ctx.t(op.inputs[0]), ctx.t(op.outputs[0])
    n, h, w, c = inp.shape
    b = int(op.options["block_size"])
    dims = [n, h // b, w // b, b, b, c]
    steps = [h * w * c, b * w * c, b * c, w * c, c, 1]
    return copy_nd_call(op, inp, out, dims, steps, 0)


def split_call(op: Op, inp: Tensor, outs: list[Tensor], outer: int, chunks: list[int]) -> KernelCall:
    """The split_s8 call that reads ``outer`` times, one after the other, ``chunks[k]`` elements for each
    output k (as bytes)."""
    chunk, total = byte_chunks(inp.dtype, chunks)
    params = dict(outer=outer, in_chunk=total, outputs=len(outs), chunk="chunk")
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="split_s8", spec={}, params=params,
        args=[bytes_arg(inp)] + [bytes_arg(t, writable=True) for t in outs],
        consts=[chunk], inputs=[inp.index], outputs=[t.index for t in outs],
    )


@lowering("SPLIT", "SPLIT_V", dtype=DTYPES)
def lower_split(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: a constant axis in range; outputs of the input's shape except along the axis, where they
    # add up to the input's.
    inp = ctx.t(op.inputs[1] if op.kind == "SPLIT" else op.inputs[0])
    outs = [ctx.t(t) for t in op.outputs]
    axis = split_axis(ctx.graph, op)
    inner = math.prod(inp.shape[axis + 1:])
    return split_call(op, inp, outs, math.prod(inp.shape[:axis]), [t.shape[axis] * inner for t in outs])


@lowering("UNPACK", dtype=DTYPES)
def lower_unpack(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: num outputs, each the input without the axis dimension (of size num).
    inp = ctx.t(op.inputs[0])
    outs = [ctx.t(t) for t in op.outputs]
    axis = unpack_axis(ctx.graph, op)
    inner = math.prod(inp.shape[axis + 1:])
    return split_call(op, inp, outs, math.prod(inp.shape[:axis]), [inner] * len(outs))


@lowering("PACK", dtype=DTYPES)
def lower_pack(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: values_count inputs of one shape, the output them stacked along the axis.
    ins = [ctx.t(t) for t in op.inputs]
    out = ctx.t(op.outputs[0])
    axis = pack_axis(ctx.graph, op)
    inner = math.prod(ins[0].shape[axis:])
    return concat_call(op, out, ins, math.prod(ins[0].shape[:axis]), [inner] * len(ins))
