"""The DSP and MVE variants of the int16x8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D kernels (fc_s16,
conv_s16, dwconv_s16 of ``ops/int16.py``), declared beside their specialization as ``families.py`` does for
the int8 ones.

They compute the portable kernels' arithmetic (TFLM's 16x8 reference: an int64 accumulator with an int64
bias, int32 otherwise; the same requantization) with the portable call's params struct, whole layer only
(the int16 kernels have no in-place or patch form): the templates are ``tml_s16_dot.j2``'s.  The
specialization passes the multipliers per output (FULLY_CONNECTED's per-tensor one repeated) and, for the DSP
family, each weight row's whole groups of 4 taps with their middle bytes swapped (w0, w2, w1, w3: SXTB16 and
SXTB16 ROR 8 then give the int16 pairs (w0, w1) and (w2, w3) that meet the input's pairs); the MVE family
reads the weights as they are (a widening byte load).  DEPTHWISE_CONV_2D (depth multiplier 1) has a DSP
and an MVE variant (dwconv_s16_dsp.c.j2: a channel pair a step, SMLABB / SMLATT against the pair's weights
widened to an int16 pair word; dwconv_s16_mve.c.j2: four channels a vector): the taps' products summed in
int32, which holds them exactly for up to 511 taps, then TFLM's int64 bias and requantization per channel.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tinyml.codegen.declare import DSP, MVE, Variant
from tinyml.codegen.families import _consts, _pair, _per_output, _weights
from tinyml.codegen.lower import Arg, ConstArray, KernelCall, LowerContext, const_arg

# The params of the portable calls (codegen/ops/int16.py); a call with any other field stays portable.
_KNOWN = {
    "fc_s16": {"batches", "accum_depth", "out_depth", "per_channel", "act_min", "act_max", "mult", "shift"},
    "conv_s16": {"batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w", "groups",
                 "stride_h", "stride_w", "dil_h", "dil_w", "pad_h", "pad_w", "act_min", "act_max", "mult",
                 "shift"},
    "dwconv_s16": {"batches", "in_h", "in_w", "in_c", "out_h", "out_w", "depth_mult", "k_h", "k_w", "stride_h",
                   "stride_w", "dil_h", "dil_w", "pad_h", "pad_w", "act_min", "act_max", "mult", "shift"},
}


def _depth(call: KernelCall) -> int:
    """Taps per output: the accumulation depth (FC), k_h * k_w * in_c (CONV_2D)."""
    p = call.params
    return p["accum_depth"] if call.kernel == "fc_s16" else p["k_h"] * p["k_w"] * p["in_c"]


def s16_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """The params the variants know, tensor or NULL arguments, groups 1."""
    return (set(call.params) <= _KNOWN.get(call.kernel, set()) and call.params.get("groups", 1) == 1
            and all(a.kind in ("tensor", "null") for a in call.args))


def dw_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """Depth multiplier 1 (channel vectors) and at most 511 taps: their products, each at most 2^22 in
    magnitude, sum exactly in int32 lanes."""
    p = call.params
    return s16_ok(ctx, call) and p["depth_mult"] == 1 and p["k_h"] * p["k_w"] <= 511


def dw_stack(call: KernelCall) -> int:
    return 4 * ((call.params["in_c"] + 3) // 4 * 4)  # a pixel's int32 channel sums


def mve_dw(ctx: LowerContext, call: KernelCall) -> KernelCall:
    p = call.params
    return replace(call, kernel="dwconv_s16_mve", spec=dict(c=p["in_c"], k_h=p["k_h"], k_w=p["k_w"]),
                   params_kernel=call.kernel)


def dsp_dw(ctx: LowerContext, call: KernelCall) -> KernelCall:
    """The weights as int16 pairs of adjacent channels per tap, (w, 0) for the last of an odd count."""
    p = call.params
    c, taps = p["in_c"], p["k_h"] * p["k_w"]
    w = _weights(ctx, call).reshape(taps, c)
    if c % 2:
        w = np.concatenate([w, np.zeros((taps, 1), dtype=np.int64)], axis=1)
    words = _pair(w[:, 0::2], w[:, 1::2]).astype(np.uint32).view(np.int32)
    weights = ConstArray("w", "int32_t", words.reshape(-1))
    args: list[Arg] = list(call.args)
    args[1] = const_arg(weights)
    return replace(call, kernel="dwconv_s16_dsp", spec=dict(c=c, k_h=p["k_h"], k_w=p["k_w"]), args=args,
                   consts=[*call.consts, weights], params_kernel=call.kernel)


def _direct(p: dict[str, Any]) -> bool:
    """A 1x1 window without padding: the convolution reads each input pixel in place."""
    return p["k_h"] == 1 and p["k_w"] == 1 and p["pad_h"] == 0 and p["pad_w"] == 0


def s16_stack(call: KernelCall) -> int:
    """The convolution's int16 im2col buffer of one pixel (none for FC or a direct 1x1)."""
    if call.kernel != "conv_s16" or _direct(call.params):
        return 0
    return 2 * _depth(call)


def dsp_weight_order(k: int) -> np.ndarray:
    """Where each tap of a weight row goes: whole groups of 4 as (0, 2, 1, 3), the last k % 4 as they are."""
    idx = np.arange(k)
    whole = idx < k // 4 * 4
    swapped = idx - (idx % 4) + np.array([0, 2, 1, 3])[idx % 4]
    return np.where(whole, swapped, idx)


def _s16_variant(ctx: LowerContext, call: KernelCall, kernel: str, reorder: bool) -> KernelCall:
    p = call.params
    k = _depth(call)
    n = p["out_depth"] if call.kernel == "fc_s16" else p["out_c"]
    c = _consts(call)
    mult = ConstArray("mult", "int32_t", _per_output(c["mult"], n).astype(np.int32))
    shift = ConstArray("shift", "int32_t", _per_output(c["shift"], n).astype(np.int32))
    consts = [mult, shift]
    args: list[Arg] = list(call.args)
    if reorder:
        w = _weights(ctx, call).reshape(n, k)
        packed = np.empty_like(w)
        packed[:, dsp_weight_order(k)] = w
        weights = ConstArray("w", "int8_t", packed.reshape(-1).astype(np.int8))
        consts.append(weights)
        args[1] = const_arg(weights)
    spec = dict(call.spec, k=k, n=n)
    params = dict(p, per_channel=1) if call.kernel == "fc_s16" else p
    if call.kernel == "conv_s16":
        spec.update(k_h=p["k_h"], k_w=p["k_w"], in_c=p["in_c"], direct=_direct(p))
    return replace(call, kernel=kernel, spec=spec, params=params, args=args, consts=consts,
                   params_kernel=call.kernel)


def dsp_s16(ctx: LowerContext, call: KernelCall) -> KernelCall:
    return _s16_variant(ctx, call, call.kernel + "_dsp", reorder=True)


def mve_s16(ctx: LowerContext, call: KernelCall) -> KernelCall:
    return _s16_variant(ctx, call, call.kernel + "_mve", reorder=False)


# Estimated instructions per MAC and per output element (requantization; for the convolutions also the
# pixel's im2col spread over its outputs), fitted to `tinyml profile` of two int16x8 layers with int64
# biases: FULLY_CONNECTED 250 -> 63 (15,750 MACs) and CONV_2D 3x3 SAME 16x16x15 -> 17 (587,520 MACs,
# 4,352 outputs).  mps2-an386: fc_s16_dsp 32,288 instructions (portable fc_s16 82,958), conv_s16_dsp
# 1,476,229 (4,266,665); mps3-an547: fc_s16_mve 13,194 (67,318), conv_s16_mve 715,778 (3,784,674).
# DEPTHWISE_CONV_2D 3x3 SAME over 16x16x30 (69,120 MACs, 7,680 outputs) on mps3-an547: dwconv_s16_mve 867,548
# (portable dwconv_s16 2,207,770), on mps2-an386 dwconv_s16_dsp 887,250 (2,474,586): most of it the scalar
# 64-bit requantization per output.
VARIANTS = (
    Variant("fc_s16_dsp", "fc_s16", "dsp", ("dsp",), accepts=s16_ok, per_mac=1.9, per_output=38.0,
            build=dsp_s16, helpers=(DSP,)),
    Variant("conv_s16_dsp", "conv_s16", "dsp", ("dsp",), accepts=s16_ok, stack=s16_stack, per_mac=1.9,
            per_output=83.0, build=dsp_s16, helpers=(DSP,)),
    Variant("fc_s16_mve", "fc_s16", "mve", ("mve",), accepts=s16_ok, per_mac=0.75, per_output=22.0,
            build=mve_s16, helpers=(MVE,)),
    Variant("conv_s16_mve", "conv_s16", "mve", ("mve",), accepts=s16_ok, stack=s16_stack, per_mac=0.6,
            per_output=83.0, build=mve_s16, helpers=(MVE,)),
    Variant("dwconv_s16_dsp", "dwconv_s16", "dsp", ("dsp",), accepts=dw_ok, stack=dw_stack, per_mac=3.0,
            per_output=86.0, build=dsp_dw, helpers=(DSP,)),
    Variant("dwconv_s16_mve", "dwconv_s16", "mve", ("mve",), accepts=dw_ok, stack=dw_stack,
            per_mac=3.0, per_output=86.0, build=mve_dw, helpers=(MVE,)),
)
