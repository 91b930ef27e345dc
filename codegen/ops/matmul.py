"""BATCH_MATMUL (int8, per-tensor quantization, either input constant or both computed at run time).

TFLM batch_matmul.cc (Prepare: GetQuantizedConvolutionMultipler, the two input scales multiplied in float32;
no fused activation) and reference_ops::BatchMatMul<int8_t, int32_t>: out[b][i][j] = requantize(sum over k of
(lhs[b][i][k] - lhs zero point) * (rhs[b][k][j] - rhs zero point)).  TFLM transposes the operands into
persistent buffers first (adj_x, and rhs unless adj_y); our kernel reads them in place through element
strides, which gives the same int32 sums.  Batch dimensions broadcast (up to 3 of them: rank 5).
"""

from __future__ import annotations

import numpy as np

from tinyml.codegen.declare import portable
from tinyml.codegen.lower import ConstArray, KernelCall, LowerContext, lowering, tensor_arg
from tinyml.codegen.qmath import quantize_multiplier
from tinyml.graph.ir import Op
from tinyml.graph.validate import BATCH_MATMUL_MAX_RANK, batch_matmul_shape

# Instructions per MAC on mps2-an386 (`tinyml profile --kernels portable`, QEMU's counts) for the modelgen
# cases 3x4x5 @ 3x5x6, with and without adj_x (depth 5: 23.5, the requantization of each output dominates)
# and 2x16x32 @ 2x8x32 with adj_y (depth 32: 12.0); 12.5 is their total instructions over their total MACs.
# Not in place (an output value reads a whole row and column), no scratch, no on-stack buffer.
BATCH_MATMUL_PER_MAC = 12.5
VARIANTS = (
    portable("batch_matmul_s8", per_mac=BATCH_MATMUL_PER_MAC),
)

BATCH_DIMS = BATCH_MATMUL_MAX_RANK - 2


@lowering("BATCH_MATMUL")
def lower_batch_matmul(ctx: LowerContext, op: Op) -> KernelCall:
    # Validated: int8 per tensor, ranks 2 to 5, batch dimensions that broadcast, equal depths, the output's
    # element count, not both constant, the multiplier and the accumulator in range.
    lhs, rhs, out = ctx.t(op.inputs[0]), ctx.t(op.inputs[1]), ctx.t(op.outputs[0])
    m = batch_matmul_shape(ctx.graph, op)
    pad = BATCH_DIMS - len(m.batch)
    batch = [1] * pad + list(m.batch)
    lb = [1] * pad + list(m.lhs_batch)
    rb = [1] * pad + list(m.rhs_batch)
    # element strides of each batch dimension in each input (0 where it broadcasts)
    lstr, rstr = [0] * BATCH_DIMS, [0] * BATCH_DIMS
    lstep, rstep = m.rows * m.depth, m.depth * m.cols
    for d in reversed(range(BATCH_DIMS)):
        lstr[d] = lstep if lb[d] > 1 else 0
        rstr[d] = rstep if rb[d] > 1 else 0
        lstep *= lb[d]
        rstep *= rb[d]
    adj_x, adj_y = op.options["adj_x"], op.options["adj_y"]
    # TFLM GetQuantizedConvolutionMultipler: the scales' product in float32, then divided in double
    product = float(np.float32(lhs.quant.s) * np.float32(rhs.quant.s))
    mult, shift = quantize_multiplier(product / float(out.quant.s))
    strides = ConstArray("strides", "int32_t", np.asarray(batch + lstr + rstr, dtype=np.int32))
    params = dict(
        rows=m.rows, depth=m.depth, cols=m.cols,
        # lhs element (i, k) and rhs element (k, j) within one matrix
        l_row=1 if adj_x else m.depth, l_k=m.rows if adj_x else 1,
        r_k=1 if adj_y else m.cols, r_col=m.depth if adj_y else 1,
        lhs_offset=-lhs.quant.zp, rhs_offset=-rhs.quant.zp, output_offset=out.quant.zp, mult=mult, shift=shift,
        strides="strides",
    )
    return KernelCall(
        op_index=op.index, op_kind=op.kind, kernel="batch_matmul_s8", spec={}, params=params,
        args=[tensor_arg(lhs), tensor_arg(rhs), tensor_arg(out, writable=True)], consts=[strides],
        inputs=[t.index for t in (lhs, rhs) if not t.is_const], outputs=[out.index],
        macs=int(np.prod(batch, dtype=np.int64)) * m.rows * m.depth * m.cols,
    )
