"""Kernel families: pick the DSP or MVE variant of a lowered CONV_2D,
DEPTHWISE_CONV_2D or FULLY_CONNECTED call from the board's features, with
its compile-time specialization and weights rearranged for it.

The portable call (kernel conv_s8, dwconv_s8, fc_s8) comes in; a variant
call goes out that takes the same params struct (``params_kernel``) with
constant arrays of its own (padded, reordered or packed weights, a bias that
is never NULL, per-output multipliers).  A call the variant does not handle
(groups, dilation, depth multipliers, params this module does not know, a
row buffer that would not fit the stack) is returned unchanged: bit-exactness
first.  Every decision here is plain Python; the templates hold the C.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tinyml.codegen.lower import Arg, ConstArray, KernelCall, LowerContext, const_arg

# The params each variant understands; a call with any other field (added by
# a later pass, e.g. patch-based execution) stays portable.
_KNOWN = {
    "conv_s8": {"batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "k_h", "k_w", "groups",
                "stride_h", "stride_w", "dil_h", "dil_w", "pad_h", "pad_w", "input_offset", "output_offset",
                "act_min", "act_max", "mult", "shift"},
    "dwconv_s8": {"batches", "in_h", "in_w", "in_c", "out_h", "out_w", "depth_mult", "k_h", "k_w",
                  "stride_h", "stride_w", "dil_h", "dil_w", "pad_h", "pad_w", "input_offset", "output_offset",
                  "act_min", "act_max", "mult", "shift"},
    "fc_s8": {"batches", "accum_depth", "out_depth", "per_channel", "input_offset", "output_offset",
              "act_min", "act_max", "mult", "shift"},
}
# Window / in-place params of the portable kernels (see conv_s8.c.j2): the
# variants handle them at the values that mean "the whole layer, not in place".
_NEUTRAL = {
    "in_y0": lambda p: 0, "in_x0": lambda p: 0, "oy0": lambda p: 0, "ox0": lambda p: 0,
    "out_y0": lambda p: 0, "out_x0": lambda p: 0, "img_h": lambda p: p.get("in_h"),
    "img_w": lambda p: p.get("in_w"), "out_pitch": lambda p: p.get("out_w"), "ring_len": lambda p: 0,
    "lag": lambda p: 0,
}
STACK_LIMIT_BYTES = 8 * 1024  # largest on-stack buffer a variant may use, and at most a third of the stack


def _stack_limit(ctx: LowerContext) -> int:
    stack = getattr(ctx, "stack_bytes", 0)
    return min(STACK_LIMIT_BYTES, stack // 3) if stack else STACK_LIMIT_BYTES


def family(features: tuple[str, ...]) -> str:
    """The kernel family for a board: "mve", "dsp" or "portable".  MVE cores
    also have the DSP extension: a call the MVE variants do not handle gets
    the DSP one (or stays portable)."""
    if "mve" in features and _MVE:
        return "mve"
    if "dsp" in features:
        return "dsp"
    return "portable"


def specialize(ctx: LowerContext, call: KernelCall) -> KernelCall:
    """The fastest variant of ``call`` the board supports (or ``call`` itself)."""
    fam = family(ctx.features)
    if fam == "portable" or call.kernel not in _KNOWN:
        return call
    if not _whole_layer(call.params, _KNOWN[call.kernel]) or any(a.kind not in ("tensor", "null") for a in call.args):
        return call
    if fam == "mve":
        out = _MVE.get(call.kernel, _no_variant)(ctx, call)
        if out is not None:
            return out
    out = _DSP.get(call.kernel, _no_variant)(ctx, call)
    return out if out is not None else call


def _whole_layer(params: dict[str, Any], known: set[str]) -> bool:
    for key, value in params.items():
        if key in known:
            continue
        if key not in _NEUTRAL or value != _NEUTRAL[key](params):
            return False
    return True


def _no_variant(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    return None


# ---------------------------------------------------------------------------
# shared decisions


def _consts(call: KernelCall) -> dict[str, np.ndarray]:
    return {c.name: np.asarray(c.values) for c in call.consts}


def _weights(ctx: LowerContext, call: KernelCall) -> np.ndarray:
    return np.asarray(ctx.t(call.args[1].tensor).data).astype(np.int64)


def _bias(ctx: LowerContext, call: KernelCall, n: int) -> np.ndarray:
    a = call.args[2]
    if a.kind == "null":
        return np.zeros(n, dtype=np.int64)
    return np.asarray(ctx.t(a.tensor).data).astype(np.int64).reshape(-1)


def _per_output(values: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    return np.full(n, v[0], dtype=np.int64) if v.size == 1 else v


def _requant_mode(mult: np.ndarray, shift: np.ndarray, bound: np.ndarray) -> str:
    """"fast" when every channel has a right shift >= 1, a non-negative
    multiplier and |acc| < 2^30 for every reachable accumulator (``bound``),
    so tml_dsp_requant equals TFLM's arithmetic; else "exact"."""
    if np.any(shift > -1) or np.any(mult < 0) or np.any(shift < -31):
        return "exact"
    return "fast" if np.all(bound < 2 ** 30) else "exact"


def _clamp_spec(params: dict[str, Any]) -> dict[str, bool]:
    return dict(lo=bool(params["act_min"] > -128), hi=bool(params["act_max"] < 127))


def _pad_to(a: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([a, np.zeros(n - a.size, dtype=a.dtype)]) if a.size < n else a


def _variant(call: KernelCall, kernel: str, spec: dict[str, Any], weights: ConstArray, bias: ConstArray,
             mult: np.ndarray, shift: np.ndarray, params: dict[str, Any] | None = None) -> KernelCall:
    consts = [weights, bias, ConstArray("mult", "int32_t", mult.astype(np.int32)),
              ConstArray("shift", "int32_t", shift.astype(np.int32))]
    args: list[Arg] = [call.args[0], const_arg(weights), const_arg(bias), call.args[3]]
    # The variants compute whole layers out of place: the memory planner must
    # neither run them in place nor split them into patches.
    planner = {k: v for k, v in (("inplace_inputs", []), ("patchable", False)) if hasattr(call, k)}
    return replace(call, kernel=kernel, spec=spec, params=params or call.params, args=args, consts=consts,
                   params_kernel=call.kernel, **planner)


# ---------------------------------------------------------------------------
# DSP family (SMLAD and friends)


def _dsp_conv(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    p = call.params
    if p["groups"] != 1 or p["dil_h"] != 1 or p["dil_w"] != 1:
        return None
    out_c, k_h, k_w, in_c = p["out_c"], p["k_h"], p["k_w"], p["in_c"]
    k = k_h * k_w * in_c
    kp = (k + 3) // 4 * 4
    if 4 * kp > _stack_limit(ctx):  # the two-pixel im2col buffer
        return None
    w = _weights(ctx, call).reshape(out_c, k)
    c = _consts(call)
    mult, shift = _per_output(c["mult"], out_c), _per_output(c["shift"], out_c)
    bias = _bias(ctx, call, out_c)
    bound = np.abs(w).sum(axis=1) * 255 + np.abs(bias)
    # [pair of output channels][group of 4 taps][channel 2q, 2q+1][4 taps]
    pairs = (out_c + 1) // 2
    wpad = np.zeros((2 * pairs, kp), dtype=np.int8)
    wpad[:out_c, :k] = w
    wp = wpad.reshape(pairs, 2, kp // 4, 4).transpose(0, 2, 1, 3)
    spec = dict(k_h=k_h, k_w=k_w, in_c=in_c, kp=kp, rq=_requant_mode(mult, shift, bound), **_clamp_spec(p))
    return _variant(call, "conv_s8_dsp", spec, ConstArray("w", "int8_t", wp.reshape(-1)),
                    ConstArray("bias", "int32_t", bias.astype(np.int32)), mult, shift)


def _pair(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int16 pairs as int32 words (lo in bits 0-15)."""
    return ((lo.astype(np.int64) & 0xFFFF) | (hi.astype(np.int64) << 16)).astype(np.int64)


def _dsp_dwconv(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    p = call.params
    if p["depth_mult"] != 1 or p["dil_h"] != 1 or p["dil_w"] != 1:
        return None
    c, k_h, k_w = p["in_c"], p["k_h"], p["k_w"]
    c4 = (c + 3) // 4 * 4
    wbuf = (p["out_w"] - 1) * p["stride_w"] + k_w
    if k_h * wbuf * c4 * 2 > _stack_limit(ctx):
        return None
    taps = k_h * k_w
    w = _weights(ctx, call).reshape(taps, c)
    wpad = np.zeros((taps, c4), dtype=np.int64)
    wpad[:, :c] = w
    cst = _consts(call)
    mult, shift = _per_output(cst["mult"], c), _per_output(cst["shift"], c)
    bias = _bias(ctx, call, c)
    bound = np.abs(w).sum(axis=0) * 255 + np.abs(bias)
    words = []
    for g in range(c4 // 4):
        ch = [4 * g, 4 * g + 2, 4 * g + 1, 4 * g + 3]
        for t in range(0, taps - 1, 2):
            words += [_pair(wpad[t, j], wpad[t + 1, j]) for j in ch]
        if taps % 2:
            t = taps - 1
            words += [_pair(wpad[t, 4 * g], wpad[t, 4 * g + 2]), _pair(wpad[t, 4 * g + 1], wpad[t, 4 * g + 3])]
    packed = np.asarray(words, dtype=np.int64).astype(np.uint32).view(np.int32)
    spec = dict(k_h=k_h, k_w=k_w, c=c, c4=c4, wbuf=wbuf, rq=_requant_mode(mult, shift, bound), **_clamp_spec(p))
    return _variant(call, "dwconv_s8_dsp", spec, ConstArray("w", "int32_t", packed),
                    ConstArray("bias", "int32_t", _pad_to(bias, c4).astype(np.int32)),
                    _pad_to(mult, c4), _pad_to(shift, c4))


def _dsp_fc(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    p = call.params
    k, n = p["accum_depth"], p["out_depth"]
    w = _weights(ctx, call).reshape(n, k)
    cst = _consts(call)
    mult, shift = _per_output(cst["mult"], n), _per_output(cst["shift"], n)
    bias = _bias(ctx, call, n)
    # sum_k w * (x + offset) = sum_k w * x + offset * sum_k w: exact in int32 arithmetic.
    folded = bias + p["input_offset"] * w.sum(axis=1)
    if np.any(np.abs(folded) >= 2 ** 31):
        return None
    bound = np.abs(w).sum(axis=1) * 255 + np.abs(bias)
    spec = dict(k=k, rq=_requant_mode(mult, shift, bound), **_clamp_spec(p))
    params = dict(p, per_channel=1)
    return _variant(call, "fc_s8_dsp", spec, ConstArray("w", "int8_t", w.astype(np.int8).reshape(-1)),
                    ConstArray("bias", "int32_t", folded.astype(np.int32)), mult, shift, params)


_DSP = {"conv_s8": _dsp_conv, "dwconv_s8": _dsp_dwconv, "fc_s8": _dsp_fc}


# ---------------------------------------------------------------------------
# MVE family (Helium: VMLADAV over 16 int8 lanes, int32x4 requantization)


def _wrap32(v: np.ndarray) -> np.ndarray:
    """int64 values mod 2^32 as int32 (the kernels' sums wrap the same way)."""
    return ((np.asarray(v, dtype=np.int64) + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)


def _mve_rq(shift: np.ndarray) -> str:
    """"right" when every shift is <= -1 (tml_mve_requant_right), else "full";
    both are TFLM's arithmetic exactly."""
    return "right" if np.all(shift <= -1) else "full"


def _mve_rows(w: np.ndarray) -> np.ndarray:
    """(n, k) int8 weight rows as [n/4][k/16][4 rows][16], zero rows and taps added."""
    n, k = w.shape
    n4, kp = (n + 3) // 4 * 4, (k + 15) // 16 * 16
    pad = np.zeros((n4, kp), dtype=np.int64)
    pad[:n, :k] = w
    return pad.reshape(n4 // 4, 4, kp // 16, 16).transpose(0, 2, 1, 3).reshape(-1).astype(np.int8)


def _mve_conv(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    p = call.params
    if p["groups"] != 1 or p["dil_h"] != 1 or p["dil_w"] != 1:
        return None
    out_c, k_h, k_w, in_c = p["out_c"], p["k_h"], p["k_w"], p["in_c"]
    k = k_h * k_w * in_c
    direct = k_h == 1 and k_w == 1 and p["pad_h"] == 0 and p["pad_w"] == 0
    if not direct and 2 * ((k + 15) // 16 * 16) > _stack_limit(ctx):  # the two-pixel im2col buffer
        return None
    w = _weights(ctx, call).reshape(out_c, k)
    c = _consts(call)
    n4 = (out_c + 3) // 4 * 4
    mult, shift = _per_output(c["mult"], out_c), _per_output(c["shift"], out_c)
    folded = _bias(ctx, call, out_c) + p["input_offset"] * w.sum(axis=1)
    contig = direct and p["stride_h"] == 1 and p["stride_w"] == 1
    spec = dict(k_h=k_h, k_w=k_w, in_c=in_c, k=k, direct=direct, contig=contig, oc_tail=out_c % 4 != 0,
                rq=_mve_rq(shift))
    return _variant(call, "conv_s8_mve", spec, ConstArray("w", "int8_t", _mve_rows(w)),
                    ConstArray("bias", "int32_t", _wrap32(_pad_to(folded, n4))), _pad_to(mult, n4),
                    _pad_to(shift, n4))


def _mve_dwconv(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    p = call.params
    if p["depth_mult"] != 1 or p["dil_h"] != 1 or p["dil_w"] != 1:
        return None
    c, k_h, k_w, sw = p["in_c"], p["k_h"], p["k_w"], p["stride_w"]
    taps = k_h * k_w
    wbuf = (p["out_w"] - 1) * sw + k_w
    # one byte gather (16 lanes, offsets < 256) holds the taps of an output
    if taps > 16 or (k_h - 1) * wbuf + k_w - 1 > 255:
        return None
    if c * k_h * wbuf > _stack_limit(ctx):  # the channel planes
        return None
    w = _weights(ctx, call).reshape(taps, c)
    packed = np.zeros((c, 16), dtype=np.int64)
    packed[:, :taps] = w.T
    cst = _consts(call)
    mult, shift = _per_output(cst["mult"], c), _per_output(cst["shift"], c)
    folded = _bias(ctx, call, c) + p["input_offset"] * w.sum(axis=0)
    spec = dict(k_h=k_h, k_w=k_w, stride_w=sw, c=c, wbuf=wbuf, rq=_mve_rq(shift))
    return _variant(call, "dwconv_s8_mve", spec, ConstArray("w", "int8_t", packed.reshape(-1).astype(np.int8)),
                    ConstArray("bias", "int32_t", _wrap32(folded)), mult, shift)


def _mve_fc(ctx: LowerContext, call: KernelCall) -> KernelCall | None:
    p = call.params
    k, n = p["accum_depth"], p["out_depth"]
    w = _weights(ctx, call).reshape(n, k)
    cst = _consts(call)
    n4 = (n + 3) // 4 * 4
    mult, shift = _per_output(cst["mult"], n), _per_output(cst["shift"], n)
    folded = _bias(ctx, call, n) + p["input_offset"] * w.sum(axis=1)
    spec = dict(k=k, n_tail=n % 4 != 0, rq=_mve_rq(shift))
    return _variant(call, "fc_s8_mve", spec, ConstArray("w", "int8_t", _mve_rows(w)),
                    ConstArray("bias", "int32_t", _wrap32(_pad_to(folded, n4))), _pad_to(mult, n4),
                    _pad_to(shift, n4), dict(p, per_channel=1))


_MVE = {"conv_s8": _mve_conv, "dwconv_s8": _mve_dwconv, "fc_s8": _mve_fc}
