"""Parameter computations shared by several op lowerings."""

from __future__ import annotations

import numpy as np

from tinyml.codegen.lower import Arg, ConstArray, LowerContext, null_arg, tensor_arg
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op, Tensor


def per_channel_multipliers(op: Op, inp: Tensor, filt: Tensor, out: Tensor, channels: int,
                            axis: int) -> tuple[ConstArray, ConstArray]:
    """TFLM PopulateConvolutionQuantizationParams: one multiplier per output channel.

    effective = double(input_scale) * double(filter_scale[c]) / double(output_scale)
    (validation checked the scales, the symmetric weights and the multipliers' range)
    """
    fq = filt.quant
    in_s = float(np.float32(inp.quant.s))
    out_s = float(np.float32(out.quant.s))
    mults, shifts = [], []
    for c in range(channels):
        fs = float(fq.scale[c] if fq.per_channel else fq.scale[0])
        m, s = quantize_multiplier(in_s * fs / out_s)
        mults.append(m)
        shifts.append(s)
    return (ConstArray("mult", "int32_t", np.asarray(mults, dtype=np.int32)),
            ConstArray("shift", "int32_t", np.asarray(shifts, dtype=np.int32)))


def weighted_operands(ctx: LowerContext, op: Op) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Input, output, int8 weights and optional int32 bias of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED
    (their counts, types and quantization as validation checked them)."""
    b = op.inputs[2] if len(op.inputs) > 2 else -1
    return (ctx.t(op.inputs[0]), ctx.t(op.outputs[0]), ctx.t(op.inputs[1]), ctx.t(b) if b >= 0 else None)


def fused_activation(op: Op) -> str:
    """The fused activation (validation allows NONE, RELU, RELU6 and RELU_N1_TO_1 only)."""
    return op.options.get("activation", "NONE")


def bias_arg(b: Tensor | None) -> Arg:
    return tensor_arg(b) if b is not None else null_arg("int32_t")
