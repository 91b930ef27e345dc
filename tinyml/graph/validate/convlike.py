"""Rows of the convolution-like operators (TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL,
L2_NORMALIZATION; lowered in codegen/ops/upsample.py, matmul.py, normalize.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml.graph.ir import Graph, Op
from tinyml.graph.validate.base import (INT16_MAX, INT32_MAX, INT8_ACTIVATIONS, Operand, Rule, _check_multiplier, _f32,
                                        _fail, _max_offset, _op, _ten)
from tinyml.graph.validate.core import (_activation_range, _both_constant, _channel_multipliers, _rank4, _same_shape,
                                        _shape_error, _t)
from tinyml.graph.validate.movement import _rank_in

# ---------------------------------------------------------------------------
# Convolution-like operators of issue 17 (codegen/ops/upsample.py, matmul.py): TRANSPOSE_CONV,
# RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL, L2_NORMALIZATION.

BILINEAR_ONE = 1 << 10  # TFLM ResizeBilinearInteger: positions in 1/1024ths of an input pixel


def _conv_like_rules() -> dict[str, Rule]:
    """The rows of TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR, BATCH_MATMUL and L2_NORMALIZATION."""
    # RESIZE_*: int8 data whose quantization neither TFLM nor we read (the values are copied or blended as
    # they are); the size a constant int32 vector of 2 values (TFLM's Prepare), equal to the output's height
    # and width (TFLM writes as many rows and columns as it says, whatever the output's shape).
    resize_in = (Operand("input", quant="none"), Operand("size", ("int32",), kind="const", quant="none"))
    resize_out = (Operand("output", quant="none"),)
    return {
        "RESIZE_NEAREST_NEIGHBOR": Rule(inputs=resize_in, outputs=resize_out, checks=(_resize_shapes,)),
        # RESIZE_BILINEAR: TFLM's Prepare refuses align_corners with half_pixel_centers; its integer arithmetic
        # (ResizeBilinearInteger) must not overflow int32 nor read outside the input (checked here).
        "RESIZE_BILINEAR": Rule(inputs=resize_in, outputs=resize_out, checks=(_resize_shapes, _bilinear_tables)),
        # BATCH_MATMUL (TFLM batch_matmul.cc): int8 per tensor, ranks 2 to 5, batch dimensions that broadcast,
        # equal depths; TFLM reshapes the output itself but keeps its element count (and needs its rank at least
        # the larger input rank).  Two constant inputs are unsupported (UnsupportedError), as for ADD.
        "BATCH_MATMUL": Rule(inputs=(Operand("lhs", kind="any"), Operand("rhs", kind="any")),
                             outputs=(Operand("output"),),
                             checks=(_both_constant, _batch_matmul_shapes, _batch_matmul_multiplier)),
        # L2_NORMALIZATION (TFLM l2norm.cc): ranks up to 4, no fused activation; the int8 path reads only the
        # input's zero point (its output is in 1/128ths whatever the output's quantization says; TFLM checks
        # neither, nor do we).  The sum of squares must fit TFLM's int32 accumulator.
        "L2_NORMALIZATION": Rule(inputs=(Operand("input"),), outputs=(Operand("output"),),
                                 checks=(_same_shape, _l2_norm_depth)),
        # TRANSPOSE_CONV (TFLM transpose_conv.cc): inputs output_shape, weights [out channels, h, w, in channels],
        # input, optional bias.  TFLM does not read output_shape (the output tensor's shape is static); it is
        # required constant int32 here, its values unread as in TFLM.  TFLM checks nothing of the input's
        # spatial size against the output's (taps landing outside the output are dropped): neither do we.
        # Strides and the paddings live in int16 fields of TFLM's ConvParams.  The installed TFLM applies the
        # fused activation (some older TFLM sources pass kTfLiteActNone and ignore it).
        "TRANSPOSE_CONV": Rule(
            inputs=(Operand("output_shape", ("int32",), kind="const", quant="none"),
                    Operand("weights", kind="const", quant="weights", axis=0), Operand("input"),
                    Operand("bias", ("int32",), kind="const", optional=True, quant="bias")),
            outputs=(Operand("output"),),
            ints={"stride_h": (1, INT16_MAX), "stride_w": (1, INT16_MAX)}, activations=INT8_ACTIVATIONS,
            checks=(_transpose_conv_shapes, _transpose_conv_padding, _transpose_conv_multipliers,
                    _activation_range)),
    }


def _resize_shapes(graph: Graph, op: Op) -> None:
    inp, size, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    n, _, _, c = _rank4(graph, op, inp, "input")
    if len(size.shape) != 1 or size.shape[0] != 2:
        raise _shape_error(graph, op, f"size {_ten(size)} has shape {list(size.shape)}; allowed is [2] (the output "
                                      "height and width, as TFLM requires)")
    want = [n, *(int(v) for v in np.asarray(size.data).reshape(-1)), c]
    if list(out.shape) != want:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but the input's batches and "
                                      f"channels with size {want[1:3]} give {want} (allowed: equal)")


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncating toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _bilinear_scale(in_size: int, out_size: int, align_corners: bool) -> tuple[int, int]:
    """TFLM ResizeBilinearInteger's scale in 1/1024ths, rounded, and the numerator it divides."""
    if align_corners and out_size > 1:
        num = BILINEAR_ONE * (in_size - 1) + (out_size - 1) // 2
        return num // (out_size - 1), num
    num = BILINEAR_ONE * in_size + out_size // 2
    return num // out_size, num


def _bilinear_pos(v: int, scale: int, half_pixel_centers: bool) -> int:
    return v * scale + scale // 2 - BILINEAR_ONE // 2 if half_pixel_centers else v * scale


def bilinear_axis(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """TFLM ResizeBilinearInteger along one axis: for each output index (a row), the lower and upper input
    index and the position's distance past the lower one in 1/1024ths (negative before the first pixel's
    centre with half_pixel_centers), with C's truncating divisions (validation checked that TFLM's int32
    arithmetic does not overflow and that the lower index stays inside the input)."""
    one = BILINEAR_ONE
    scale, _ = _bilinear_scale(in_size, out_size, align_corners)
    v = np.arange(out_size, dtype=np.int64)
    pos = v * scale + scale // 2 - one // 2 if half_pixel_centers else v * scale
    # pos >= -512: C's truncating division by 1024 is a floor division for pos >= 0 and 0 above -1024
    lo = np.maximum(pos, 0) // one
    hi = np.minimum(np.maximum(pos + one - 1, 0) // one, in_size - 1)
    return np.stack([lo, hi, pos - one * lo], axis=1)


def _bilinear_tables(graph: Graph, op: Op) -> None:
    inp, out = _t(graph, op, 0), _t(graph, op, 0, True)
    align, half = op.options.get("align_corners", False), op.options.get("half_pixel_centers", False)
    if align and half:
        raise _fail(graph, f"{_op(op)}: align_corners and half_pixel_centers are both set; allowed is at most one "
                           "(as TFLM requires)")
    for axis, in_size, out_size in (("height", inp.shape[1], out.shape[1]), ("width", inp.shape[2], out.shape[2])):
        scale, num = _bilinear_scale(in_size, out_size, align)
        # the positions grow with the output index: the last one is the largest
        last = _bilinear_pos(out_size - 1, scale, half)
        if max(num, (out_size - 1) * scale, last + BILINEAR_ONE - 1) > INT32_MAX:
            raise _fail(graph, f"{_op(op)}: resizing the {axis} from {in_size} to {out_size} overflows TFLM's int32 "
                               "arithmetic (positions in 1/1024ths of a pixel); allowed are sizes below 2^21")
        if _cdiv(last, BILINEAR_ONE) > in_size - 1:
            raise _fail(graph, f"{_op(op)}: resizing the {axis} from {in_size} to {out_size} would read input index "
                               f"{_cdiv(last, BILINEAR_ONE)} (TFLM's rounded scale overshoots); allowed are indices "
                               f"below {in_size}")


BATCH_MATMUL_MAX_RANK = 5  # TFLM BatchMatMulPrepare: ranks 2 to 5


@dataclass(frozen=True)
class MatMulShape:
    """A resolved BATCH_MATMUL: the output's batch dimensions (the broadcast of the inputs'), the matrix
    sizes (lhs rows x depth times depth x rhs columns) and, per batch dimension, whether each input has it
    (a dimension of 1 broadcasts)."""

    batch: tuple[int, ...]
    rows: int
    depth: int
    cols: int
    lhs_batch: tuple[int, ...]
    rhs_batch: tuple[int, ...]


def batch_matmul_shape(graph: Graph, op: Op) -> MatMulShape:
    """TFLM BatchMatMulPrepare's shapes: both inputs extended with leading 1s to the larger rank."""
    lhs, rhs = _t(graph, op, 0), _t(graph, op, 1)
    rank = max(len(lhs.shape), len(rhs.shape))
    ls = [1] * (rank - len(lhs.shape)) + list(lhs.shape)
    rs = [1] * (rank - len(rhs.shape)) + list(rhs.shape)
    adj_x, adj_y = op.options.get("adj_x", False), op.options.get("adj_y", False)
    rows, depth = (ls[-1], ls[-2]) if adj_x else (ls[-2], ls[-1])
    r_depth, cols = (rs[-1], rs[-2]) if adj_y else (rs[-2], rs[-1])
    batch = tuple(max(a, b) for a, b in zip(ls[:-2], rs[:-2]))
    if r_depth != depth:
        raise _shape_error(graph, op, f"lhs {_ten(lhs)} of shape {list(lhs.shape)} (adj_x {int(adj_x)}) and rhs "
                                      f"{_ten(rhs)} of shape {list(rhs.shape)} (adj_y {int(adj_y)}) have depths "
                                      f"{depth} and {r_depth}; allowed is equal (as TFLM requires)")
    return MatMulShape(batch, rows, depth, cols, tuple(ls[:-2]), tuple(rs[:-2]))


def _batch_matmul_shapes(graph: Graph, op: Op) -> None:
    lhs, rhs, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    for role, t in (("lhs", lhs), ("rhs", rhs)):
        if not 2 <= len(t.shape) <= BATCH_MATMUL_MAX_RANK:
            raise _shape_error(graph, op, f"{role} {_ten(t)} has shape {list(t.shape)}; allowed are ranks 2 to "
                                          f"{BATCH_MATMUL_MAX_RANK} (as TFLM requires)")
    rank = max(len(lhs.shape), len(rhs.shape))
    ls = [1] * (rank - len(lhs.shape)) + list(lhs.shape)
    rs = [1] * (rank - len(rhs.shape)) + list(rhs.shape)
    if any(a != b and 1 not in (a, b) for a, b in zip(ls[:-2], rs[:-2])):
        raise _shape_error(graph, op, f"the batch dimensions of lhs {list(lhs.shape)} and rhs {list(rhs.shape)} do "
                                      "not broadcast (allowed: each pair equal or one of them 1)")
    m = batch_matmul_shape(graph, op)
    expect = [*m.batch, m.rows, m.cols]
    size = int(np.prod(expect, dtype=np.int64))
    if len(out.shape) < rank or out.size != size:
        raise _shape_error(graph, op, f"output {_ten(out)} has shape {list(out.shape)}, but the product is {expect} "
                                      f"(allowed: {size} values and rank at least {rank}, as TFLM requires)")


def _batch_matmul_multiplier(graph: Graph, op: Op) -> None:
    """TFLM GetQuantizedConvolutionMultipler (the two input scales multiplied in float32), and the int32
    accumulator: depth x max|lhs - zp| x max|rhs - zp|."""
    lhs, rhs, out = _t(graph, op, 0), _t(graph, op, 1), _t(graph, op, 0, True)
    product = _f32(np.float32(lhs.quant.s) * np.float32(rhs.quant.s))
    depth = batch_matmul_shape(graph, op).depth
    _check_multiplier(graph, op, "the multiplier lhs scale x rhs scale / output scale", product / _f32(out.quant.s),
                      depth * _max_offset(lhs) * _max_offset(rhs))


L2_NORM_MAX_RANK = 4  # TFLM L2NormPrepare: NumDimensions(input) <= 4


def _l2_norm_depth(graph: Graph, op: Op) -> None:
    inp = _t(graph, op, 0)
    rank = _rank_in(graph, op, inp, L2_NORM_MAX_RANK)
    depth = inp.shape[rank - 1]
    if depth * _max_offset(inp) ** 2 > INT32_MAX:
        raise _fail(graph, f"{_op(op)}: input {_ten(inp)} has {depth} values along its last axis; the sum of their "
                           f"squares (each up to {_max_offset(inp) ** 2}) overflows TFLM's int32 accumulator; "
                           f"allowed are at most {INT32_MAX // _max_offset(inp) ** 2}")


def _transpose_conv_shapes(graph: Graph, op: Op) -> None:
    w, inp, out, b = _t(graph, op, 1), _t(graph, op, 2), _t(graph, op, 0, True), _t(graph, op, 3)
    n, _, _, in_c = _rank4(graph, op, inp, "input")
    on, _, _, out_c = _rank4(graph, op, out, "output")
    wo, _, _, w_c = _rank4(graph, op, w, "weights")
    if on != n or wo != out_c or w_c != in_c:
        raise _shape_error(graph, op, f"shapes do not agree: input {list(inp.shape)}, weights {list(w.shape)}, "
                                      f"output {list(out.shape)} (allowed: equal batches, weights [output "
                                      "channels, h, w, input channels])")
    if b is not None and b.size != out_c:
        raise _shape_error(graph, op, f"bias {_ten(b)} has {b.size} values; allowed is one per output channel "
                                      f"({out_c})")


def transpose_conv_padding(op: Op, out_h: int, out_w: int, k_h: int, k_w: int) -> tuple[int, int]:
    """TFLM's TRANSPOSE_CONV padding (ComputePaddingHeightWidth over the output's size, dilation 1): the
    output size a convolution of the output would give (C's truncating division, as in TFLite
    ComputeOutputSize), then half the total padding that needs."""
    pads = []
    for size, k, s in ((out_h, k_h, op.options["stride_h"]), (out_w, k_w, op.options["stride_w"])):
        if op.options["padding"] == "SAME":
            conv_out = (size + s - 1) // s
        else:
            num = size + s - k
            conv_out = num // s if num >= 0 else -((-num) // s)
        pads.append(max((conv_out - 1) * s + k - size, 0) // 2)
    return pads[0], pads[1]


def _transpose_conv_padding(graph: Graph, op: Op) -> None:
    w, out = _t(graph, op, 1), _t(graph, op, 0, True)
    for axis, pad in zip(("height", "width"), transpose_conv_padding(op, out.shape[1], out.shape[2], w.shape[1],
                                                                     w.shape[2])):
        if pad > INT16_MAX:
            raise _fail(graph, f"{_op(op)}: {op.options['padding']} padding along the {axis} is {pad}; allowed is "
                               f"at most {INT16_MAX} (TFLM keeps it in an int16)")


def _transpose_conv_multipliers(graph: Graph, op: Op) -> None:
    """As CONV_2D's: TFLM PopulateConvolutionQuantizationParams with one multiplier per output channel (the
    weights' axis 0); each weight meets each output value at most once, so sum |w| * max|x - zp| + |bias|
    bounds the accumulator."""
    _channel_multipliers(graph, op, _t(graph, op, 2), _t(graph, op, 1), _t(graph, op, 0, True), _t(graph, op, 3), 0)
