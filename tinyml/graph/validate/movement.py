"""Rows of the data-movement operators (TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK,
DEPTH_TO_SPACE, SPACE_TO_DEPTH; lowered in codegen/ops/movement.py) and their resolved parameters."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from tinyml.graph.ir import Graph, Op, Tensor
from tinyml.graph.validate.base import INT32_MAX, Operand, Rule, _fail, _op, _ten, _unsupported
from tinyml.graph.validate.core import _rank4, _shape_error, _t

# ---------------------------------------------------------------------------
# Data movement (TRANSPOSE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK, UNPACK, DEPTH_TO_SPACE,
# SPACE_TO_DEPTH; lowered in codegen/ops/movement.py).  TFLM copies their int8 bytes unchanged and
# reads no quantization (none of their Prepares does), so none is required here, nor any relation
# between input and output: the output bytes are the input's, as in TFLM.


TRANSPOSE_MAX_RANK = 5  # TFLM TransposePrepare: "only supports 1D-5D input arrays"
STRIDED_SLICE_MAX_RANK = 4  # TFLM StridedSlicePrepare: kMaxDim
SLICE_MAX_RANK = 5  # TFLM SlicePrepare: kMaxDim


@dataclass(frozen=True)
class SliceAxis:
    """One input axis of a resolved STRIDED_SLICE or SLICE: input indices start, start + step, ...
    (``count`` of them); ``keep`` is False for an axis the output drops (shrink_axis_mask)."""

    start: int
    step: int
    count: int
    keep: bool = True


def _movement_rules() -> dict[str, Rule]:
    # int8 data, quantized or not, per tensor or per channel: TFLM reads none of it (neither do we)
    act = Operand("input", quant="none")
    out = (Operand("output", quant="none"),)
    i32 = Operand("", ("int32",), kind="const", quant="none")
    return {
        # A scalar input, and STRIDED_SLICE's ellipsis and new-axis masks and offset flag, are unsupported
        # (UnsupportedError); the rest is a ModelError.
        "TRANSPOSE": Rule(inputs=(act, dataclasses.replace(i32, name="perm")), outputs=out,
                          checks=(_transpose_shapes,)),
        "STRIDED_SLICE": Rule(inputs=(act, dataclasses.replace(i32, name="begin"), dataclasses.replace(i32, name="end"),
                                      dataclasses.replace(i32, name="strides")), outputs=out,
                              ints={"begin_mask": (0, INT32_MAX), "end_mask": (0, INT32_MAX),
                                    "shrink_axis_mask": (0, INT32_MAX)},
                              checks=(_strided_slice_shapes,)),
        "SLICE": Rule(inputs=(act, Operand("begin", ("int32", "int64"), kind="const", quant="none"),
                              Operand("size", ("int32", "int64"), kind="const", quant="none")), outputs=out,
                      checks=(_slice_shapes,)),
        "SPLIT": Rule(inputs=(dataclasses.replace(i32, name="axis"), act), outputs=out, repeat_last_output=True,
                      checks=(_split_shapes,)),
        "SPLIT_V": Rule(inputs=(act, Operand("size_splits", ("int32", "int64"), kind="any", quant="none"),
                                dataclasses.replace(i32, name="axis")), outputs=out, repeat_last_output=True,
                        checks=(_split_shapes,)),
        "PACK": Rule(inputs=(dataclasses.replace(act, kind="any"),), outputs=out, repeat_last=True,
                     checks=(_pack_shapes,)),
        "UNPACK": Rule(inputs=(act,), outputs=out, repeat_last_output=True, checks=(_unpack_shapes,)),
        "DEPTH_TO_SPACE": Rule(inputs=(act,), outputs=out, ints={"block_size": (1, INT32_MAX)},
                               checks=(_depth_to_space_shapes,)),
        "SPACE_TO_DEPTH": Rule(inputs=(act,), outputs=out, ints={"block_size": (1, INT32_MAX)},
                               checks=(_space_to_depth_shapes,)),
    }


def _vector(graph: Graph, op: Op, pos: int, n: int, what: str) -> list[int]:
    """The values of constant input ``pos``, which must be a 1-D tensor of ``n`` values."""
    t = _t(graph, op, pos)
    if len(t.shape) != 1 or t.shape[0] != n:
        raise _shape_error(graph, op, f"{what} {_ten(t)} has shape {list(t.shape)}; allowed is [{n}] (one value "
                                      "per input dimension)")
    return [int(v) for v in np.asarray(t.data).reshape(-1)]


def _rank_in(graph: Graph, op: Op, t: Tensor, hi: int, lo: int = 1) -> int:
    """The rank of input ``t``: refused above ``hi`` (as TFLM refuses it) and below ``lo`` (unsupported)."""
    rank = len(t.shape)
    if rank < lo:
        raise _unsupported(graph, op, f"input {_ten(t)} is a scalar; supported is 1-D to {hi}-D")
    if rank > hi:
        raise _shape_error(graph, op, f"input {_ten(t)} has shape {list(t.shape)}; allowed is {lo}-D to {hi}-D "
                                      "(as TFLM requires)")
    return rank


def _expect_shape(graph: Graph, op: Op, t: Tensor, expect: list[int], how: str, pos: int = 0) -> None:
    if list(t.shape) != expect:
        raise _shape_error(graph, op, f"output {pos} {_ten(t)} has shape {list(t.shape)}, but {how} gives "
                                      f"{expect} (allowed: equal)")


def _axis(graph: Graph, op: Op, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise _fail(graph, f"{_op(op)}: {what} {axis} is out of range; allowed is [-{rank}, {rank - 1}] for "
                           f"{rank}-D tensors")
    return axis + rank if axis < 0 else axis


def transpose_perm(graph: Graph, op: Op) -> list[int]:
    inp = _t(graph, op, 0)
    return _vector(graph, op, 1, len(inp.shape), "perm")


def _transpose_shapes(graph: Graph, op: Op) -> None:
    """TFLM TransposePrepare: 1-D to 5-D, a 1-D perm of one value per dimension, each in [0, rank); here
    also every dimension once (a perm that repeats one is no transpose) and the output shape the permuted
    input's (TFLM does not check it)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    rank = _rank_in(graph, op, inp, TRANSPOSE_MAX_RANK)
    perm = transpose_perm(graph, op)
    if sorted(perm) != list(range(rank)):
        raise _fail(graph, f"{_op(op)}: perm {perm} is not a permutation of [0, {rank - 1}]; allowed is every "
                           "dimension exactly once")
    _expect_shape(graph, op, out, [inp.shape[p] for p in perm], f"permuting input shape {list(inp.shape)} by {perm}")


def strided_slice_axes(graph: Graph, op: Op) -> list[SliceAxis]:
    """TFLM's StridedSlice (Prepare's CheckOutputSize and Eval's StridedSliceStartForAxis/EndForAxis) resolved
    per input axis: negative indices count from the end, the masks override begin and end, both are clamped
    to the axis ([0, size] going forward, [-1, size - 1] going backward), a shrunk axis takes one element."""
    inp = _t(graph, op, 0)
    rank = len(inp.shape)
    begin, end = _vector(graph, op, 1, rank, "begin"), _vector(graph, op, 2, rank, "end")
    strides = _vector(graph, op, 3, rank, "strides")
    bmask, emask = int(op.options.get("begin_mask", 0)), int(op.options.get("end_mask", 0))
    smask = int(op.options.get("shrink_axis_mask", 0))
    axes = []
    for k, size in enumerate(inp.shape):
        step = strides[k]
        if step == 0:
            raise _fail(graph, f"{_op(op)}: strides[{k}] is 0; allowed is a non-zero stride (as TFLM requires)")
        lo, hi = (0, size) if step > 0 else (-1, size - 1)
        start = begin[k] + size if begin[k] < 0 else begin[k]
        start = min(max(start, lo), hi)
        if bmask >> k & 1:
            start = 0 if step > 0 else size - 1
        if smask >> k & 1:
            if step < 0:
                raise _fail(graph, f"{_op(op)}: axis {k} is shrunk with strides[{k}] {step}; allowed is a "
                                   "positive stride (TFLM writes nothing for a shrunk axis stepped backward)")
            if not 0 <= start < size:
                raise _fail(graph, f"{_op(op)}: axis {k} is shrunk at index {begin[k]}, which is outside its "
                                   f"{size} elements; allowed is [-{size}, {size - 1}] (TFLM writes nothing "
                                   "for it)")
            axes.append(SliceAxis(start, 1, 1, keep=False))
            continue
        stop = end[k] + size if end[k] < 0 else end[k]
        stop = min(max(stop, lo), hi)
        if emask >> k & 1:
            stop = size if step > 0 else -1
        # ceil((stop - start) / step); TFLM's loop index ends at start + count * step, within 3 x the
        # axis (|step| <= the axis where count > 1), far from overflowing int32
        count = max(0, -((start - stop) // step))
        axes.append(SliceAxis(start, step, count))
    return axes


def _strided_slice_shapes(graph: Graph, op: Op) -> None:
    """TFLM StridedSlicePrepare: 1-D to 4-D, constant int32 begin/end/strides, non-zero strides, and the
    output shape the resolved slice's (shrunk axes dropped).  TFLM ignores the ellipsis and new-axis masks
    and the offset flag (it computes as if they were 0), so a model that sets them is unsupported."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    for name in ("ellipsis_mask", "new_axis_mask", "offset"):
        if op.options.get(name):
            raise _unsupported(graph, op, f"{name} is {int(op.options[name])}; supported is 0 (TFLM ignores it and "
                                          "computes another slice than TensorFlow; re-export the model)")
    _rank_in(graph, op, inp, STRIDED_SLICE_MAX_RANK)
    axes = strided_slice_axes(graph, op)
    expect = [a.count for a in axes if a.keep]
    _expect_shape(graph, op, out, expect, f"slicing input shape {list(inp.shape)} as "
                                          f"{[(a.start, a.step, a.count) for a in axes]} (start, stride, count)")
    if 0 in expect:
        raise _shape_error(graph, op, f"the slice of input {_ten(inp)} is empty ({expect}); allowed is at least "
                                      "one element per dimension")


def slice_axes(graph: Graph, op: Op) -> list[SliceAxis]:
    """TFLM SLICE's GetValidatedBeginAndSizeVectors: begin in [0, size], size -1 (to the end) or in
    [0, size - begin]."""
    inp = _t(graph, op, 0)
    rank = len(inp.shape)
    begin, sizes = _vector(graph, op, 1, rank, "begin"), _vector(graph, op, 2, rank, "size")
    axes = []
    for k, dim in enumerate(inp.shape):
        b, n = begin[k], sizes[k]
        if not 0 <= b <= dim:
            raise _fail(graph, f"{_op(op)}: begin[{k}] is {b}; allowed is [0, {dim}] (as TFLM requires)")
        n = dim - b if n == -1 else n
        if not 0 <= n <= dim - b:
            raise _fail(graph, f"{_op(op)}: size[{k}] is {sizes[k]}; allowed is -1 or [0, {dim - b}] from begin "
                               f"{b} (as TFLM requires)")
        axes.append(SliceAxis(b, 1, n))
    return axes


def _slice_shapes(graph: Graph, op: Op) -> None:
    """TFLM SlicePrepare/Eval: 1-D to 5-D, begin and size of one type and one value per dimension, in range,
    and as many output elements as the slice has (TFLM checks only the count; so do we)."""
    inp, beg, size, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 2), _t(graph, op, 0, True)
    _rank_in(graph, op, inp, SLICE_MAX_RANK)
    if beg.dtype != size.dtype:
        raise _fail(graph, f"{_op(op)}: begin {_ten(beg)} is {beg.dtype} but size {_ten(size)} is {size.dtype}; "
                           "allowed is the same type (as TFLM requires)")
    counts = [a.count for a in slice_axes(graph, op)]
    if math.prod(counts) != out.size or 0 in counts:
        raise _shape_error(graph, op, f"output {_ten(out)} has {out.size} values, but the slice {counts} of input "
                                      f"shape {list(inp.shape)} has {math.prod(counts)}; allowed is equal and "
                                      "non-zero")


def split_axis(graph: Graph, op: Op) -> int:
    """The resolved axis of SPLIT (input 0) or SPLIT_V (input 2): TFLM reads the first int32 value."""
    pos = 0 if op.kind == "SPLIT" else 2
    axis_t, inp = _t(graph, op, pos), _t(graph, op, 1 - pos if op.kind == "SPLIT" else 0)
    if axis_t.size != 1:
        raise _shape_error(graph, op, f"axis {_ten(axis_t)} has shape {list(axis_t.shape)}; allowed is one value")
    rank = len(inp.shape)
    if rank < 1:
        raise _unsupported(graph, op, f"input {_ten(inp)} is a scalar; supported is rank 1 or more")
    return _axis(graph, op, int(np.asarray(axis_t.data).reshape(-1)[0]), rank)


def _split_shapes(graph: Graph, op: Op) -> None:
    """TFLM SplitEval/SplitVEval: a constant axis in range, outputs of the input's rank and dimensions except
    along the axis, where they add up to the input's (SPLIT: equal parts, as TFLM copies output 0's size for
    every output).  num_splits must count the outputs (TFLite checks it; TFLM does not read it), and a
    constant SPLIT_V size_splits must match them (at most one -1, for the rest)."""
    data = 1 if op.kind == "SPLIT" else 0
    inp = _t(graph, op, data)
    axis = split_axis(graph, op)
    n = len(op.outputs)
    if int(op.options.get("num_splits", 0)) != n:
        raise _fail(graph, f"{_op(op)}: num_splits is {op.options.get('num_splits')} but it has {n} outputs; "
                           "allowed is equal")
    if op.kind == "SPLIT" and inp.shape[axis] % n:
        raise _shape_error(graph, op, f"input {_ten(inp)} of shape {list(inp.shape)} has {inp.shape[axis]} values "
                                      f"along axis {axis}, which do not split into {n} equal parts")
    parts = []
    for k in range(n):
        t = _t(graph, op, k, True)
        part = inp.shape[axis] // n if op.kind == "SPLIT" else (t.shape[axis] if len(t.shape) > axis else 0)
        expect = [part if d == axis else v for d, v in enumerate(inp.shape)]
        _expect_shape(graph, op, t, expect, f"splitting input shape {list(inp.shape)} along axis {axis}", k)
        parts.append(part)
    if sum(parts) != inp.shape[axis]:
        raise _shape_error(graph, op, f"the outputs add up to {sum(parts)} along axis {axis} but input {_ten(inp)} "
                                      f"has {inp.shape[axis]}; allowed is equal")
    if op.kind == "SPLIT_V":
        sizes_t = _t(graph, op, 1)
        if len(sizes_t.shape) != 1 or sizes_t.shape[0] != n:
            raise _shape_error(graph, op, f"size_splits {_ten(sizes_t)} has shape {list(sizes_t.shape)}; allowed "
                                          f"is [{n}] (one value per output)")
        if sizes_t.is_const:
            sizes = [int(v) for v in np.asarray(sizes_t.data).reshape(-1)]
            if sizes.count(-1) <= 1 and all(s == p or s == -1 for s, p in zip(sizes, parts)):
                return
            raise _fail(graph, f"{_op(op)}: size_splits {sizes} do not match the outputs' sizes {parts} along "
                               f"axis {axis}; allowed is equal, with at most one -1 for the rest")


def pack_axis(graph: Graph, op: Op) -> int:
    rank = len(_t(graph, op, 0).shape) + 1
    return _axis(graph, op, int(op.options.get("axis", 0)), rank)


def _pack_shapes(graph: Graph, op: Op) -> None:
    """TFLM PACK (no Prepare; Eval loops over values_count inputs): values_count counts the inputs, which
    have one shape; the axis is in range of the output's rank; the output the inputs stacked along it."""
    n = len(op.inputs)
    if int(op.options.get("values_count", 0)) != n:
        raise _fail(graph, f"{_op(op)}: values_count is {op.options.get('values_count')} but it has {n} inputs; "
                           "allowed is equal")
    first, out = _t(graph, op, 0), _t(graph, op, 0, True)
    for k in range(1, n):
        t = _t(graph, op, k)
        if t.shape != first.shape:
            raise _shape_error(graph, op, f"input {k} {_ten(t)} has shape {list(t.shape)} but input 0 "
                                          f"{list(first.shape)}; allowed is equal shapes")
    axis = pack_axis(graph, op)
    expect = list(first.shape[:axis]) + [n] + list(first.shape[axis:])
    _expect_shape(graph, op, out, expect, f"stacking {n} inputs of shape {list(first.shape)} along axis {axis}")


def unpack_axis(graph: Graph, op: Op) -> int:
    inp = _t(graph, op, 0)
    if len(inp.shape) < 1:
        raise _unsupported(graph, op, f"input {_ten(inp)} is a scalar; supported is rank 1 or more")
    return _axis(graph, op, int(op.options.get("axis", 0)), len(inp.shape))


def _unpack_shapes(graph: Graph, op: Op) -> None:
    """TFLM UNPACK (no Prepare; Eval writes ``num`` outputs): num counts the outputs and the input's
    dimension along the axis; each output is the input without that dimension."""
    inp = _t(graph, op, 0)
    axis = unpack_axis(graph, op)
    n = len(op.outputs)
    if int(op.options.get("num", 0)) != n or inp.shape[axis] != n:
        raise _fail(graph, f"{_op(op)}: num is {op.options.get('num')}, it has {n} outputs and input {_ten(inp)} "
                           f"has {inp.shape[axis]} values along axis {axis}; allowed is all three equal")
    expect = [d for k, d in enumerate(inp.shape) if k != axis]
    for k in range(n):
        _expect_shape(graph, op, _t(graph, op, k, True), expect,
                      f"unpacking input shape {list(inp.shape)} along axis {axis}", k)


def _depth_to_space_shapes(graph: Graph, op: Op) -> None:
    """TFLM DepthToSpacePrepare: a 4-D input whose channels divide by block_size^2; the output is
    [batch, height x block, width x block, channels / block^2] (TFLM sets it; here it must be that)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    n, h, w, c = _rank4(graph, op, inp, "input")
    b = int(op.options["block_size"])
    if c % (b * b):
        raise _shape_error(graph, op, f"input {_ten(inp)} has {c} channels, which do not divide by block_size^2 = "
                                      f"{b * b} (as TFLM requires)")
    _expect_shape(graph, op, out, [n, h * b, w * b, c // (b * b)], f"block_size {b} on input shape {list(inp.shape)}")


def _space_to_depth_shapes(graph: Graph, op: Op) -> None:
    """TFLM SpaceToDepth Prepare: a 4-D input whose height and width divide by block_size; the output is
    [batch, height / block, width / block, channels x block^2] (TFLM sets it; here it must be that)."""
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    n, h, w, c = _rank4(graph, op, inp, "input")
    b = int(op.options["block_size"])
    if h % b or w % b:
        raise _shape_error(graph, op, f"input {_ten(inp)} has height {h} and width {w}, which do not divide by "
                                      f"block_size {b} (as TFLM requires)")
    _expect_shape(graph, op, out, [n, h // b, w // b, c * b * b], f"block_size {b} on input shape {list(inp.shape)}")
