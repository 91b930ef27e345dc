"""BATCH_MATMUL on 16-bit activations (validation's INT16_RULES row): TFLM batch_matmul.cc's EvalInt16,
reference_ops::BatchMatMul<int16_t, int64_t>: int16 inputs and output with zero points 0 (its Prepare asserts
them), products summed in int64, requantized by the int64 MultiplyByQuantizedMultiplier with the multiplier of
GetQuantizedConvolutionMultipler, clamped to int16.  Shapes, broadcasting, adj_x/adj_y, a constant input and
the params are the int8 lowering's (codegen/ops/matmul.py); the offsets it computes are 0 and unread.
"""

from __future__ import annotations

import dataclasses

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import KernelCall, LowerContext, lowering
from tinyml.codegen.ops.matmul import lower_batch_matmul
from tinyml.graph.ir import Op

# Instructions per MAC: estimated from batch_matmul_s8's 12.5 (the same loops, with int64 sums).
VARIANTS = (
    portable("batch_matmul_s16", per_mac=15.0),
)


@lowering("BATCH_MATMUL", dtype="int16")
def lower_batch_matmul_s16(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: the int8 row's shapes, int16 inputs and output (zero points 0), the multiplier within the
    # int64 requantization's range for the largest accumulator.
    return dataclasses.replace(lower_batch_matmul(ctx, op), kernel="batch_matmul_s16",
                               params_kernel="batch_matmul_s8")
