"""Parameter computations shared by several op lowerings."""

from __future__ import annotations

import numpy as np

from tinyml.codegen.lower import (Arg, ConstArray, LowerContext, act_tensor, const_tensor, expect_inputs, null_arg,
                                  tensor_arg, unsupported)
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op, Tensor

INT8_FUSED_ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def per_channel_multipliers(op: Op, inp: Tensor, filt: Tensor, out: Tensor, channels: int,
                            axis: int) -> tuple[ConstArray, ConstArray]:
    """TFLM PopulateConvolutionQuantizationParams: one multiplier per output channel.

    effective = double(input_scale) * double(filter_scale[c]) / double(output_scale)
    """
    fq = filt.quant
    if fq is None:
        raise unsupported(op, f"weights '{filt.name}' are not quantized")
    if fq.per_channel:
        if fq.scale.size != channels or fq.axis != axis:
            raise unsupported(op, f"weights '{filt.name}' have {fq.scale.size} scales on axis {fq.axis}, "
                                  f"expected {channels} on axis {axis}")
    if np.any(fq.zero_point != 0):
        raise unsupported(op, f"weights '{filt.name}' have a non-zero zero point; int8 weights must be symmetric")
    in_s = float(np.float32(inp.quant.s))
    out_s = float(np.float32(out.quant.s))
    if out_s == 0.0:
        raise unsupported(op, f"output '{out.name}' has scale 0")
    mults, shifts = [], []
    for c in range(channels):
        fs = float(fq.scale[c] if fq.per_channel else fq.scale[0])
        m, s = quantize_multiplier(in_s * fs / out_s)
        mults.append(m)
        shifts.append(s)
    return (ConstArray("mult", "int32_t", np.asarray(mults, dtype=np.int32)),
            ConstArray("shift", "int32_t", np.asarray(shifts, dtype=np.int32)))


def weighted_operands(ctx: LowerContext, op: Op) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Input, output, int8 weights and optional int32 bias of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED."""
    expect_inputs(op, 2, 3)
    inp = act_tensor(ctx, op, 0)
    out = act_tensor(ctx, op, 0, output=True)
    w = const_tensor(ctx, op, 1, ("int8",), "weights")
    b = const_tensor(ctx, op, 2, ("int32",), "bias")
    assert w is not None
    return inp, out, w, b


def fused_activation(op: Op) -> str:
    act = op.options.get("activation", "NONE")
    if act not in INT8_FUSED_ACTIVATIONS:
        raise unsupported(op, f"fused activation {act} is not supported for int8")
    return act


def bias_arg(b: Tensor | None) -> Arg:
    return tensor_arg(b) if b is not None else null_arg("int32_t")
