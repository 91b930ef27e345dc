"""Kernel families: the DSP and MVE variants of CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED (and the DSP and MVE variants of ADD and SUB), as the declarations in ``variants.py`` use them.

For each variant: which portable calls it accepts (``*_ok``: groups,
dilation, depth multipliers, params it does not know, a folded bias that
would overflow), its on-stack bytes (``*_stack``: im2col and row buffers),
and its specialization (``dsp_conv`` etc.): the portable call (kernel
conv_s8, dwconv_s8, fc_s8) comes in, a variant call goes out that takes the
same params struct (``params_kernel``) with constant arrays of its own
(padded, reordered or packed weights, a bias that is never NULL,
per-output multipliers) and its compile-time specialization.  Every
decision here is plain Python; the templates hold the C.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tinyml.codegen.declare import DSP, MVE, Variant
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
def family(features: tuple[str, ...]) -> str:
    """The fastest kernel family of a board: "mve", "dsp" or "portable".  MVE
    cores also have the DSP extension: a call the MVE variants do not handle
    gets the DSP one (or stays portable)."""
    if "mve" in features:
        return "mve"
    if "dsp" in features:
        return "dsp"
    return "portable"


def _whole_layer(call: KernelCall) -> bool:
    """Only params the variants know (window and in-place ones at their whole-layer values), and tensor or
    NULL arguments: the variants compute whole layers out of place."""
    known = _KNOWN.get(call.kernel)
    if known is None or any(a.kind not in ("tensor", "null") for a in call.args):
        return False
    for key, value in call.params.items():
        if key in known:
            continue
        if key not in _NEUTRAL or value != _NEUTRAL[key](call.params):
            return False
    return True


def _folded_spec(call: KernelCall) -> dict[str, Any]:
    """What a TRANSPOSE folded into a convolution leaves to its DSP or MVE variant (codegen/fold.py): the
    input's strides (the im2col gathers through them) and the output's (each pixel's outputs computed into a
    buffer of out_c bytes, then stored through them)."""
    spec = {k: list(call.spec[k]) for k in ("in_strides", "out_strides") if call.spec.get(k)}
    if "out_strides" in spec:
        spec["out_c"] = call.params["out_c"]
    return spec


def _folded(call: KernelCall) -> bool:
    return bool(call.input_strides or call.output_strides)


def _folded_out_stack(call: KernelCall) -> int:
    """The two pixels' outputs of a folded output (out_c rounded up to 4 each)."""
    return 2 * ((call.params["out_c"] + 3) // 4 * 4) if call.output_strides else 0


# What a folded TRANSPOSE costs a DSP or MVE convolution, in estimated instructions over the same call
# unfolded: per tap of each output pixel, the gather through the input's strides over the family's own
# im2col (unrolled channel by channel up to `unrolled` taps, as the templates do; beyond it a loop over the
# channels for the pixels whose taps are all inside the image, and for the others a loop with bounds checks
# per tap); per output element, the store through the output's strides out of the pixel pair's buffer.
# Fitted to QEMU instruction counts (December 2026) of the CONV_2D folded against the same layer unfolded:
# an NCHW input 3x48x48, 3x3 stride 2 SAME into 16 channels (15,552 taps) +21,384 instructions on
# mps2-an386, +22,603 on mps3-an547; 8x24x24, 3x3 stride 1 SAME (41,472 taps) +48,566 and +72,199; the
# output of a 3x3 convolution 24x24x8 to 16 channels stored NCHW (9,216 elements) +33,030 and +34,608; and
# the seven branches of tests/modelgen.py's nchw_branch_cases (in_c 1 to 32; the DSP's loop over the
# border pixels of 288 taps about 14 per tap).
@dataclass(frozen=True)
class FoldedRates:
    per_tap: float  # a tap, unrolled
    unrolled: int  # up to this many taps (k_h * k_w * in_c)
    per_tap_loop: float  # beyond it: a tap of a pixel inside the image
    per_border_tap_loop: float  # beyond it: a tap of a pixel whose window crosses the image's edge
    per_store: float  # an output element stored through strides


FOLDED_RATES = {"dsp": FoldedRates(1.3, 128, 2.0, 14.0, 3.6), "mve": FoldedRates(1.6, 256, 2.5, 2.5, 3.8)}


def _inside(n_out: int, stride: int, pad: int, k: int, n_in: int) -> int:
    """How many of n_out output rows (or columns) read only input rows inside the image."""
    return sum(1 for o in range(n_out) if 0 <= o * stride - pad and o * stride - pad + k <= n_in)


def _folded_per_output(call: KernelCall, family: str) -> float:
    """The estimated instructions a folded call adds per output element (FOLDED_RATES)."""
    r = FOLDED_RATES[family]
    p = call.params
    cost = r.per_store if call.output_strides else 0.0
    if call.input_strides:
        taps = p["k_h"] * p["k_w"] * p["in_c"]
        pixels = p["out_h"] * p["out_w"]
        inside = _inside(p["out_h"], p["stride_h"], p["pad_h"], p["k_h"], p["in_h"]) \
            * _inside(p["out_w"], p["stride_w"], p["pad_w"], p["k_w"], p["in_w"])
        inner, border = (r.per_tap, r.per_tap) if taps <= r.unrolled else (r.per_tap_loop, r.per_border_tap_loop)
        cost += taps * (inside * inner + (pixels - inside) * border) / (pixels * p["out_c"])
    return cost


def _plain(call: KernelCall) -> bool:
    """Groups 1 (convolutions), depth multiplier 1 (depthwise), no dilation, whole layer."""
    p = call.params
    return (_whole_layer(call) and p.get("groups", 1) == 1 and p.get("depth_mult", 1) == 1
            and p.get("dil_h", 1) == 1 and p.get("dil_w", 1) == 1)


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


def _dsp_shift(shift: np.ndarray, rq: str) -> np.ndarray:
    """The shifts as the DSP kernels read them: -shift - 1 (tml_dsp_requant's rs) for "fast", else as is."""
    return -shift - 1 if rq == "fast" else shift


def _clamp_spec(params: dict[str, Any]) -> dict[str, bool]:
    return dict(lo=bool(params["act_min"] > -128), hi=bool(params["act_max"] < 127))


def _pad_to(a: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([a, np.zeros(n - a.size, dtype=a.dtype)]) if a.size < n else a


def _variant(call: KernelCall, kernel: str, spec: dict[str, Any], weights: ConstArray, bias: ConstArray,
             mult: np.ndarray, shift: np.ndarray, params: dict[str, Any] | None = None) -> KernelCall:
    consts = [weights, bias, ConstArray("mult", "int32_t", mult.astype(np.int32)),
              ConstArray("shift", "int32_t", shift.astype(np.int32))]
    args: list[Arg] = [call.args[0], const_arg(weights), const_arg(bias), call.args[3]]
    return replace(call, kernel=kernel, spec=spec, params=params or call.params, args=args, consts=consts,
                   params_kernel=call.kernel)


# ---------------------------------------------------------------------------
# DSP family (SMLAD and friends)


def _conv_kp(p: dict[str, Any]) -> int:
    return (p["k_h"] * p["k_w"] * p["in_c"] + 3) // 4 * 4


def conv_tap_order(k_h: int, k_w: int, in_c: int) -> np.ndarray:
    """The DSP convolution's order of the k_h * k_w * in_c taps (where each tap of TFLM's order goes): of
    each kernel row's k_w * in_c contiguous input bytes, the whole words first (row by row, read as words
    by the im2col), then the rest of every row (byte by byte).  The identity when in_c is a multiple of 4."""
    n = k_w * in_c
    n4 = n // 4 * 4
    ky, t = np.divmod(np.arange(k_h * n), n)
    return np.where(t < n4, ky * n4 + t, k_h * n4 + ky * (n - n4) + t - n4)


def interior_pairs(p: dict[str, Any]) -> float:
    """The share of the pixel pairs (pix, pix + 1), pix even, of a convolution's output that lie in one row
    with both kernel windows inside the input (the DSP im2col's pair path; 0 for an empty output)."""
    n = p["out_h"] * p["out_w"]
    oy, ox = np.divmod(np.arange(0, n - 1, 2), p["out_w"])
    iy, ix = oy * p["stride_h"] - p["pad_h"], ox * p["stride_w"] - p["pad_w"]
    ok = ((ox + 1 < p["out_w"]) & (iy >= 0) & (iy + p["k_h"] <= p["in_h"]) & (ix >= 0)
          & (ix + p["stride_w"] + p["k_w"] <= p["in_w"]))
    return float(ok.mean()) if ok.size else 0.0


def dsp_conv_stack(call: KernelCall) -> int:
    # the two-pixel im2col buffer (int16 taps), in every form; a folded output's pair buffer
    return 4 * _conv_kp(call.params) + _folded_out_stack(call)


def dsp_conv_ring_extra(call: KernelCall) -> int:
    """In place, two pixels are computed before either is stored: the ring holds one pixel more.  (The
    kernel stores in longer runs out of a longer ring, but the bytes that costs outweigh the copies it
    saves where memory is what in place is for.)"""
    return 1


def ring_stores_pairs(call: KernelCall) -> int:
    """Copies out of the ring of one whole-layer run of a kernel that computes two pixels a step: one per
    pixel pair (DSP and MVE convolutions)."""
    p = call.params
    return -(-p["out_h"] * p["out_w"] // 2)


def ring_stores_pixels(call: KernelCall) -> int:
    """Copies out of the ring of one whole-layer run, pixel by pixel (the depthwise convolutions)."""
    return call.params["out_h"] * call.params["out_w"]


DSP_CONV_RATES = (0.91, 10.1)  # estimated instructions per MAC and per output element (fitted: see its Variant)


def dsp_conv_rates(call: KernelCall) -> tuple[float, float]:
    """A folded call adds its gather and its strided store (FOLDED_RATES)."""
    return DSP_CONV_RATES[0], DSP_CONV_RATES[1] + _folded_per_output(call, "dsp")


def dsp_conv_ok(ctx: LowerContext, call: KernelCall) -> bool:
    return _plain(call)


def dsp_conv(ctx: LowerContext, call: KernelCall) -> KernelCall:
    p = call.params
    out_c, k_h, k_w, in_c = p["out_c"], p["k_h"], p["k_w"], p["in_c"]
    k = k_h * k_w * in_c
    kp = _conv_kp(p)
    w = _weights(ctx, call).reshape(out_c, k)
    c = _consts(call)
    mult, shift = _per_output(c["mult"], out_c), _per_output(c["shift"], out_c)
    bias = _bias(ctx, call, out_c)
    bound = np.abs(w).sum(axis=1) * 255 + np.abs(bias)
    rq = _requant_mode(mult, shift, bound)
    spec = dict(k_h=k_h, k_w=k_w, in_c=in_c, kp=kp, rq=rq, tail=out_c % 4, **_clamp_spec(p), **_folded_spec(call))
    order = conv_tap_order(k_h, k_w, in_c)
    if (k_h == k_w == 1 and in_c % 4 == 0 and p["stride_h"] == p["stride_w"] == 1 and p["pad_h"] == p["pad_w"] == 0
            and "in_strides" not in spec and "out_strides" not in spec):
        spec["pw"] = True  # every pixel's taps its in_c contiguous input bytes: the kernel's own im2col
    if in_c % 4:
        spec["order"] = tuple(int(q) for q in order)
        if "in_strides" not in spec and interior_pairs(p) >= 0.5:
            spec["pairs"] = True  # the im2col's path for two neighbours inside the image pays
            if k_h == 3 and k_w * in_c % 4 == 1 and k_w * in_c // 4 * 4 - p["stride_w"] * in_c == 2:
                # each kernel row's last byte of the first pixel is byte 2 of the second pixel's first word
                # (in_c 3, 3x3, stride 2): the pair path takes the first pixel's 3 last taps from the second
                # pixel's words (conv_s8_dsp.c.j2, spec.lend), which wants the middle row's in place of the pad
                spec["lend"] = True
                order = np.where(order == kp - 3, kp - 1, order)  # the rows' last taps at kp - 4, kp - 3, kp - 2
                spec["order"] = tuple(int(q) for q in order)
    quads = (out_c + 3) // 4
    # "fast" requantization starts from twice the accumulator (SMMULR's doubling): weights (|w| <= 128) and
    # bias doubled, which the bound (|acc| < 2^30) keeps in range. Bias padded to the quads of output
    # channels; the multipliers per quad, its 4 multipliers then its 4 shifts (the kernel reads both through
    # one pointer, which the params struct's mult and shift both name).
    two = 2 if rq == "fast" else 1
    m4 = _pad_to(mult, 4 * quads).reshape(quads, 4)
    s4 = _pad_to(_dsp_shift(shift, rq), 4 * quads).reshape(quads, 4)
    wq = dsp_conv_weights(two * w, order, kp).reshape(quads, -1)
    b4 = _pad_to(two * bias, 4 * quads).reshape(quads, 4)
    if rq == "fast" and out_c % 4 == 0 and np.all(s4 <= 21):
        # the requantization in the asm (conv_s8_dsp.c.j2, spec.packed): one stream, per quad its 4 biases,
        # its weights, its 4 multipliers, its 4 shifts rs (the very last with bit 31 set: the end) and its 4
        # output offsets (1 + 2 * output_offset) << rs, which SMMLAR adds to the rounded high product y
        # (|y| < 2^30, the offset < 2^29: rs <= 21); the bias argument and params point into it
        spec["packed"] = True
        o4 = ((1 + 2 * int(p["output_offset"])) * (1 << s4)).astype(np.int64)
        last = s4.copy()
        last[-1, 3] -= 2 ** 31  # bit 31 set: the loop's end (ASR reads the shift's low byte)
        stream = ConstArray("w", "int32_t",
                            np.concatenate([b4, wq, m4, last, o4], axis=1).reshape(-1).astype(np.int32))
        return replace(call, kernel="conv_s8_dsp", spec=spec, params={**call.params, "mult": "w", "shift": "w"},
                       args=[call.args[0], const_arg(stream), const_arg(stream), call.args[3]], consts=[stream],
                       params_kernel=call.kernel)
    weights = ConstArray("w", "int32_t", wq.reshape(-1))
    bias_c = ConstArray("bias", "int32_t", b4.reshape(-1).astype(np.int32))
    mult_c = ConstArray("mult", "int32_t", np.concatenate([m4, s4], axis=1).reshape(-1).astype(np.int32))
    return replace(call, kernel="conv_s8_dsp", spec=spec, params={**call.params, "shift": "mult"},
                   args=[call.args[0], const_arg(weights), const_arg(bias_c), call.args[3]],
                   consts=[weights, bias_c, mult_c], params_kernel=call.kernel)


def dsp_conv_weights(w: np.ndarray, order: np.ndarray, kp: int) -> np.ndarray:
    """The DSP convolution's weights, widened to int16 pairs (twice the bytes of the int8 weights): per
    quad of output channels (the last one padded with zero channels), per group of 4 taps t0..t3 (in
    conv_tap_order, zero taps to kp), per half (t0, t2) then (t1, t3), the 4 channels' words, (t0, t2)
    as (low, high) halfwords: the order in which the kernel multiplies them with the im2col's words."""
    out_c = w.shape[0]
    quads = (out_c + 3) // 4
    wpad = np.zeros((4 * quads, kp), dtype=np.int64)
    wpad[:out_c, order] = w
    taps = wpad.reshape(quads, 4, kp // 4, 4).transpose(0, 2, 1, 3)  # [quad][group][channel][tap]
    lo, hi = taps[..., 0:2], taps[..., 2:4]  # (t0, t1), (t2, t3): half h pairs tap h with tap h + 2
    words = (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)  # [quad][group][channel][half]
    return words.transpose(0, 1, 3, 2).reshape(-1).astype(np.uint32).view(np.int32)


def _pair(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """int16 pairs as int32 words (lo in bits 0-15)."""
    return ((lo.astype(np.int64) & 0xFFFF) | (hi.astype(np.int64) << 16)).astype(np.int64)


def _dsp_dw_shape(p: dict[str, Any]) -> tuple[int, int, int, int]:
    """(output columns per pass, row buffer width in pixels (the whole layer's output rows need it), int32
    words per row buffer, words after the last one).  A buffer word holds a pair of columns of a channel,
    and a pass starts at an even buffer column (n * stride_w is even).  An odd width leaves the last
    column alone in its words, of which only the low halves are read.  Where that column and the first
    are padding in the whole layer (the usual SAME padding), a row buffer ends in the middle of them: the
    low halves of the last words of its upper half of channels are those of the next row buffer's first
    words (column 0: padding, zero, in every call that reads the last column, see the template)."""
    c = p["in_c"]
    width = (p["out_w"] - 1) * p["stride_w"] + p["k_w"]
    n = 6 if p["out_w"] > 6 else p["out_w"] + p["out_w"] % 2  # a narrow row in one pass (DS-CNN: 5)
    if p["stride_w"] % 2 == 0:
        n = min(n, p["out_w"]) or 1
    if width % 2 == 0:
        return n, width, width // 2 * c, 0
    if p["pad_w"] >= 1 and width - 1 - p["pad_w"] >= p["in_w"]:
        return n, width, width // 2 * c + (c + 1) // 2, c - (c + 1) // 2
    return n, width, (width + 1) // 2 * c, 0


def dsp_dwconv_stack(call: KernelCall) -> int:
    """The ring of k_h int16 row buffers, as wide as the whole layer's output rows need: a patch window's
    rows (at most as wide) use part of them, so every form has the same stack."""
    _, _, row, tail = _dsp_dw_shape(call.params)
    return 4 * (call.params["k_h"] * row + tail)


def dsp_dwconv_ok(ctx: LowerContext, call: KernelCall) -> bool:
    return _plain(call)


def dsp_dwconv_fold(shift: np.ndarray, output_offset: int) -> np.ndarray | None:
    """The depthwise kernel's "fast" requantization constant per channel, K = 2^rs + output_offset * 2^(rs + 1)
    (rs = -shift - 1): SMMLAR(acc, mult, K) is y + K (y = SMMULR(acc, mult), |y| <= 2^30 under
    _requant_mode's bound), and ((y + K + (acc >> 31)) >> (rs + 1)) is tml_dsp_requant's result plus the
    output offset.  (acc >> 31) stands for (y < 0 ? -1 : 0): with a multiplier >= 0 they differ only where
    y is 0 and acc < 0, and z = -1 or 0 round alike.  None when some |K| could overflow y + K."""
    rs = -shift - 1
    k = (1 << rs) * (1 + 2 * output_offset)
    return k if np.all(np.abs(k) < 2 ** 30 - 1) else None


def dsp_dwconv(ctx: LowerContext, call: KernelCall) -> KernelCall:
    """One record per channel: for each kernel row the weight words (w[a], w[a + 1]) as int16 pairs, a = 0
    .. k_w - 2 (one word (w[0], 0) when k_w is 1), then bias, multiplier, shift and K (dsp_dwconv_fold).
    With the "fast" requantization the weights and bias are doubled (the kernel's accumulator is twice
    TFLM's: SMMLAR takes it as is), which the bound of _requant_mode allows, and the shift is rs + 1
    (plus 256 but in the last channel)."""
    p = call.params
    c, k_h, k_w = p["in_c"], p["k_h"], p["k_w"]
    n, wbuf, row, tail = _dsp_dw_shape(p)
    w = _weights(ctx, call).reshape(k_h, k_w, c)
    cst = _consts(call)
    mult, shift = _per_output(cst["mult"], c), _per_output(cst["shift"], c)
    bias = _bias(ctx, call, c)
    bound = np.abs(w).sum(axis=(0, 1)) * 255 + np.abs(bias)
    rq = _requant_mode(mult, shift, bound)
    fold = dsp_dwconv_fold(shift, int(p["output_offset"])) if rq == "fast" else None
    if fold is None:
        rq, fold = "exact", np.zeros(c, dtype=np.int64)
    scale = 2 if rq == "fast" else 1
    wz = np.concatenate([w, np.zeros((k_h, 1, c), dtype=np.int64)], axis=1) * scale
    qw = max(1, k_w - 1)
    words = np.stack([_pair(wz[:, a, :], wz[:, a + 1, :]) for a in range(qw)], axis=1)  # k_h, qw, c
    # "fast": rs + 1, with bit 8 set in every channel but the last (the whole-pass loop's end; the shift
    # reads the low byte)
    shifts = -shift + np.where(np.arange(c) < c - 1, 256, 0) if rq == "fast" else shift
    rec = np.concatenate([words.reshape(k_h * qw, c), (bias * scale)[None, :], mult[None, :],
                          shifts[None, :], fold[None, :]], axis=0).T  # c, k_h * qw + 4
    packed = rec.reshape(-1).astype(np.uint32).view(np.int32)
    spec = dict(k_h=k_h, k_w=k_w, c=c, sw=p["stride_w"], wbuf=wbuf, row=row, tail=tail, ow=p["out_w"], n=n, qw=qw,
                rec=k_h * qw + 4, rq=rq, **_clamp_spec(p))
    one = np.zeros(1, dtype=np.int64)  # the records hold bias, multipliers and shifts
    return _variant(call, "dwconv_s8_dsp", spec, ConstArray("w", "int32_t", packed),
                    ConstArray("bias", "int32_t", one.astype(np.int32)), one, one)


def _fc_folded(ctx: LowerContext, call: KernelCall) -> np.ndarray:
    """bias + input_offset * sum of each weight row: sum_k w * (x + offset) = sum_k w * x + that."""
    p = call.params
    w = _weights(ctx, call).reshape(p["out_depth"], p["accum_depth"])
    return _bias(ctx, call, p["out_depth"]) + p["input_offset"] * w.sum(axis=1)


def dsp_fc_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """The DSP kernel folds the input offset into an int32 bias: it must not overflow."""
    return _whole_layer(call) and not np.any(np.abs(_fc_folded(ctx, call)) >= 2 ** 31)


def dsp_fc(ctx: LowerContext, call: KernelCall) -> KernelCall:
    p = call.params
    k, n = p["accum_depth"], p["out_depth"]
    w = _weights(ctx, call).reshape(n, k)
    cst = _consts(call)
    mult, shift = _per_output(cst["mult"], n), _per_output(cst["shift"], n)
    bias = _bias(ctx, call, n)
    folded = _fc_folded(ctx, call)
    bound = np.abs(w).sum(axis=1) * 255 + np.abs(bias)
    rq = _requant_mode(mult, shift, bound)
    spec = dict(k=k, rq=rq, **_clamp_spec(p))
    params = dict(p, per_channel=1)
    return _variant(call, "fc_s8_dsp", spec, ConstArray("w", "int8_t", w.astype(np.int8).reshape(-1)),
                    ConstArray("bias", "int32_t", folded.astype(np.int32)), mult, _dsp_shift(shift, rq), params)


_ADD_PARAMS = {f"{x}{i}" for x in "dab" for i in range(4)} | {"out_mult", "out_shift", "out_offset", "act_min",
                                                               "act_max"}


def _add_tables(call: KernelCall) -> tuple[np.ndarray, np.ndarray]:
    """The two inputs' tables of rescaled values (codegen/ops/elementwise.py: add_table; one const when equal)."""
    c = _consts(call)
    return c[call.args[3].name].astype(np.int64), c[call.args[4].name].astype(np.int64)


def dsp_add_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """The output's rescaling is add_s8_dsp_out's case (and add_s8_mve's): a multiplier >= 0, a right shift e
    in [1, 31], and, with S the largest |sum| of two table entries, 2S < 2^31 (the doubled sum) and
    |c| + 1 + S/2 + 1 < 2^31 (SMMLAR's or VQRDMLAH's sum: SaturatingRoundingDoublingHighMul(s, mult) is at
    most S/2 + 1 in magnitude, c = 2^(e-1) + out_offset * 2^e)."""
    p = call.params
    if set(p) != _ADD_PARAMS or [a.kind for a in call.args[3:]] != ["const", "const"] \
            or any(a.kind not in ("tensor", "null") for a in call.args[:3]):
        return False  # a field added by a later pass (or another argument arrangement) stays portable
    e = -p["out_shift"]
    if p["out_mult"] < 0 or not 1 <= e <= 31:
        return False
    t1, t2 = _add_tables(call)
    bound = int(np.abs(t1).max() + np.abs(t2).max())
    c = (1 << (e - 1)) + p["out_offset"] * (1 << e)
    return 2 * bound < 2 ** 31 and abs(c) + bound // 2 + 2 < 2 ** 31


def add_outputs(call: KernelCall) -> tuple[np.ndarray, np.ndarray]:
    """The fast kernels' output before the clamp, (s + ... ) >> e, for every pair of int8 inputs (rows:
    the first input's byte value + 128): with the rounding fix-up for negative sums s (TFLM's arithmetic,
    see add_s8_dsp.c.j2), and without it."""
    p = call.params
    t1, t2 = _add_tables(call)
    s = t1[:, None] - t2[None, :] if call.spec.get("sub") else t1[:, None] + t2[None, :]
    e = -p["out_shift"]
    y = (2 * s * p["out_mult"] + (1 << 31)) >> 32  # SaturatingRoundingDoublingHighMul (no saturation here)
    v = y + (1 << (e - 1)) + p["out_offset"] * (1 << e)
    return (v - (s < 0)) >> e, v >> e


def add_spec(call: KernelCall, lowest: int) -> dict[str, Any]:
    """What the fast kernels of the call need, decided over every pair of int8 inputs: e (the output's right
    shift), fix (the rounding fix-up changes some output), lo, hi (some output falls below act_min / above
    act_max; ``lowest``: the smallest value the kernel's output already saturates to), flat, bx, by
    (contiguous / broadcast inputs along the innermost dimension), sub."""
    p = call.params
    exact, plain = add_outputs(call)
    return dict(e=-p["out_shift"], fix=bool(np.any(exact != plain)),
                lo=bool(np.any(np.maximum(exact, lowest) < p["act_min"])),
                hi=bool(np.any(np.minimum(exact, -lowest - 1) > p["act_max"])),
                flat=p["a3"] == 1 and p["b3"] == 1, bx=p["a3"] == 0, by=p["b3"] == 0,
                **{k: v for k, v in call.spec.items() if k == "sub"})  # SUB: spec.sub


def dsp_add(ctx: LowerContext, call: KernelCall) -> KernelCall:
    spec = add_spec(call, -128)  # SSAT saturates to int8
    doubled = [replace(t, values=(2 * t.values.astype(np.int64)).astype(np.int32)) for t in call.consts]
    return replace(call, kernel="add_s8_dsp", spec=spec, consts=doubled, params_kernel=call.kernel)


_AVGPOOL_PARAMS = {"batches", "in_h", "in_w", "channels", "out_h", "out_w", "filter_h", "filter_w",
                   "stride_h", "stride_w", "pad_h", "pad_w", "act_min", "act_max"}


def dsp_avgpool_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """avgpool_s8_dsp's case: the whole layer out of place (no params a later pass added), a window of at
    most 256 taps (a channel's sum, at most 128 per tap in magnitude, fits a signed halfword)."""
    p = call.params
    return set(p) == _AVGPOOL_PARAMS and all(a.kind == "tensor" for a in call.args) \
        and p["filter_h"] * p["filter_w"] <= 256


def dsp_avgpool(ctx: LowerContext, call: KernelCall) -> KernelCall:
    p = call.params
    spec = {}
    if p["act_min"] > -128:
        spec["lo"] = (p["act_min"] + 128) * 0x01010101  # bytes of x + 128 below it raised to it (UQSUB8, UQADD8)
    if p["act_max"] < 127:
        spec["hi"] = (127 - p["act_max"]) * 0x01010101  # 255 - (act_max + 128): bytes above it lowered
    return replace(call, kernel="avgpool_s8_dsp", spec=spec, params_kernel=call.kernel)


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


def _mve_direct(p: dict[str, Any]) -> bool:
    """1x1 without padding: the kernel reads the input in place, no im2col."""
    return p["k_h"] == 1 and p["k_w"] == 1 and p["pad_h"] == 0 and p["pad_w"] == 0


def _mve_narrow(p: dict[str, Any]) -> bool:
    """1x1 without padding over at most 16 input channels: conv_s8_mve's narrow kernel (one vector of
    taps per output; per 4 output channels, every pixel), unless in place (spec.over_input)."""
    return _mve_direct(p) and p["in_c"] <= 16


def mve_conv_stack(call: KernelCall) -> int:
    p = call.params
    k = p["k_h"] * p["k_w"] * p["in_c"]
    if _mve_direct(p) and not _folded(call):
        return 0
    return 2 * ((k + 15) // 16 * 16) + _folded_out_stack(call)  # the two-pixel im2col buffer


def mve_conv_direct_stack(call: KernelCall) -> int:
    """In place without a ring, a 1x1 convolution has a form of its own (spec.over_input): over more than
    16 channels it copies the two input pixels it reads before writing their outputs; over at most 16 the
    narrow kernel copies 32 pixels at a time into a tile (32 * in_c bytes) before writing their outputs,
    where its whole-layer form, 4 output channels over every pixel at a time, would read pixels it has
    overwritten.  Otherwise the whole-layer form is safe: its im2col buffer
    holds a pixel pair's taps before it writes."""
    p = call.params
    if not _mve_direct(p):
        return 0
    return 32 * p["in_c"] if _mve_narrow(p) else 2 * ((p["in_c"] + 15) // 16 * 16)


def mve_conv_direct_ok(call: KernelCall) -> bool:
    """Not a 1x1 convolution over more than 64 channels: the copy's offsets in col no longer fit the
    loads' immediates, and other ways of that form measured slower than the ring (MobileNetV1-0.25's 128
    and 256 channels: a buffer of the pair's outputs +260 and +1,100 instructions per pixel over the whole
    layer, the copy +110 per pixel)."""
    p = call.params
    return not (_mve_direct(p) and p["in_c"] > 64)


def mve_conv_direct_cost(call: KernelCall) -> int:
    """What that form adds per pixel pair: the copies (a vector load and store per 16 input channels of
    each pixel) less what the taps at fixed places in col save per 4 output channels (pointer updates and
    spills), per 16 taps per 4 output channels: DS-CNN's pointwise convolutions (64 channels in and out,
    125 pixels) measure 132,350 instructions each under QEMU, 3,498 fewer than the whole layer (about 56
    per pair); MobileNetV1-0.25's 32 to 32 channels over 24x24 pixels about 1,800 more (6 per pair)."""
    p = call.params
    if not mve_conv_direct_stack(call):
        return 0
    if _mve_narrow(p):
        # the tile copies (per input channel) and the group's weights reloaded per tile (per output channel),
        # per pixel: 0.8 + 0.78 per input and 0.26 per output channel, through the three such layers measured
        # on mps3-an547: MobileNetV1-0.25's 8 to 16 channels (op 2: 210,376 against 184,476 instructions over
        # 2,304 pixels), 16 to 32 (op 4: 104,859 against 92,419 over 576) and MobileNetV2-0.35-144's 16 to 8
        # (op 2: +79,664 over 5,184; 0.7 per output element was +29,030)
        return int(round(p["batches"] * p["out_h"] * p["out_w"] * (0.8 + 0.78 * p["in_c"] + 0.26 * p["out_c"])))
    pairs = p["batches"] * ((p["out_h"] * p["out_w"] + 1) // 2)
    chunks, groups = (p["in_c"] + 15) // 16, (p["out_c"] + 3) // 4
    return int(round(pairs * (12 + 4 * chunks - 1.3 * chunks * groups)))


def mve_conv_ring_extra(call: KernelCall) -> int:
    """Two output pixels per step: the ring holds lag + 2 pixels.  (The kernel would store in runs with a
    longer ring, but the bytes that costs can turn in place unprofitable for small layers.)"""
    return 1


def mve_conv_ok(ctx: LowerContext, call: KernelCall) -> bool:
    return _plain(call)


# The MVE convolutions' window forms in a patch stage, per family: (window_scale: their rate over the whole
# layer's estimate, per MAC computed; patch_call: per call; patch_row: per output row and channel of the layer
# and column of windows).  Fitted (least squares on relative error) to each operator's instructions over its
# windows (`tinyml profile`'s rows of a patch stage, QEMU, mps3-an547, December 2026) in 11 stages of seven
# plans: MobileNetV2-0.35-144 streamed (default, --sram 51840 and 63833: ops 0..5 in 4x2 and 8x4, 6..8 in
# 16x16 and 2x2, 10..11 in 8x6), held whole (default and --sram 80000: ops 3..5 in 6x2, 0..5 in 6x4),
# MobileNetV1-0.25 (default and --sram 28000: ops 2..3 in 6x1, 2..7 in 6x6).  Convolutions: -15% .. +12%
# over 27 operators (rms 8%); depthwise: -8% .. +7% over 16 (rms 5%), whose window form runs 4 channels of
# one pixel where the whole layer runs 4 pixels of one channel.  The single rule they replace (1,460 per
# call, 8.4 per row and channel, on the whole layers' estimates) was off by -17% .. +161% on the
# convolutions (256 calls of 1x1 windows: 374,000 estimated, about 48,000 measured; rms 33%) and by
# -17% .. +18% on the depthwise ones (rms 11%), so that a plan estimated at 1.066x the fastest measured
# 1.148x the fast build.
MVE_CONV_WINDOW = dict(window_scale=1.075, patch_call=186, patch_row=4.46)
MVE_DW_WINDOW = dict(window_scale=1.125, patch_call=541, patch_row=13.3)


# conv_s8_mve's estimated instructions (per MAC, per output element) by code path: the narrow 1x1 kernel
# (at most 16 channels in: about 5 per output whatever its channels), the other 1x1 kernel and the im2col
# asm passes, each fitted (least squares on relative error) to the QEMU counts of the whole-layer
# convolutions of the fast builds of ResNet-8, DS-CNN, MobileNetV1-0.25 and MobileNetV2-0.35-144 on
# mps3-an547 (December 2026): narrow -8% .. +3% over 7 layers, 1x1 -13% .. +11% over 21, im2col
# -17% .. +9% over 5.  (The 1x1 kernels as one rate, (0.202, 3.27) fitted without MobileNetV2, were off
# by -26% .. +30% on its layers.)
MVE_CONV_RATES = {"narrow": (0.015, 4.88), "direct": (0.188, 5.06), "im2col": (0.126, 10.9)}


def mve_conv_rates(call: KernelCall) -> tuple[float, float]:
    """A folded call (never direct) adds its gather and its strided store (FOLDED_RATES)."""
    direct = _mve_direct(call.params) and not _folded(call)
    per_mac, per_output = MVE_CONV_RATES["narrow" if direct and _mve_narrow(call.params) else
                                         "direct" if direct else "im2col"]
    return per_mac, per_output + _folded_per_output(call, "mve")


def mve_conv(ctx: LowerContext, call: KernelCall) -> KernelCall:
    p = call.params
    out_c, k_h, k_w, in_c = p["out_c"], p["k_h"], p["k_w"], p["in_c"]
    k = k_h * k_w * in_c
    direct = _mve_direct(p) and not _folded(call)  # a folded input is gathered, as the im2col does
    w = _weights(ctx, call).reshape(out_c, k)
    c = _consts(call)
    n4 = (out_c + 3) // 4 * 4
    mult, shift = _per_output(c["mult"], out_c), _per_output(c["shift"], out_c)
    folded = _bias(ctx, call, out_c) + p["input_offset"] * w.sum(axis=1)
    contig = direct and p["stride_h"] == 1 and p["stride_w"] == 1
    spec = dict(k_h=k_h, k_w=k_w, in_c=in_c, k=k, direct=direct, contig=contig, oc_tail=out_c % 4 != 0,
                rq=_mve_rq(shift), **_folded_spec(call))
    if direct and _mve_narrow(p):
        spec.update(_clamp_spec(p))  # the narrow kernel clamps to the int8 range without them
    return _variant(call, "conv_s8_mve", spec, ConstArray("w", "int8_t", _mve_rows(w)),
                    ConstArray("bias", "int32_t", _wrap32(_pad_to(folded, n4))), _pad_to(mult, n4),
                    _pad_to(shift, n4))


def _mve_dw_wbuf(p: dict[str, Any]) -> int:
    return (p["out_w"] - 1) * p["stride_w"] + p["k_w"]


def mve_dwconv_stack(call: KernelCall) -> int:
    p = call.params
    return p["in_c"] * p["k_h"] * _mve_dw_wbuf(p)  # the channel planes


def mve_dwconv_form_stack(call: KernelCall) -> int:
    """3 * stride_w bytes after the planes (window), the ring offsets of a row of outputs (ring)."""
    p = call.params
    return 3 * p["stride_w"] + 4 * ((p["out_w"] + 3) // 4 * 4)


def mve_dwconv_ring_stores(call: KernelCall) -> int:
    """Copies out of the ring, in units of one pixel's: one per pixel, and a row's ring offsets and its
    store run about 8 more (DS-CNN's 5-pixel rows: +4,449 instructions per layer through rings)."""
    p = call.params
    return p["batches"] * p["out_h"] * (p["out_w"] + 8)


def mve_dwconv_ring_extra(call: KernelCall) -> int:
    return call.params["out_w"] - 1  # a row of out_w output pixels per step: the ring holds lag + out_w


# dwconv_s8_mve's estimated instructions: per MAC, per output row and channel (a row's set-up over its
# channel groups), per input byte (its rows copied into the planes), fitted (least squares on relative error)
# to QEMU counts of the 20 whole-layer depthwise convolutions of the fast and default builds of DS-CNN,
# MobileNetV1-0.25 and MobileNetV2-0.35-144 on mps3-an547 (`tinyml profile --json`, December 2026): from
# -10% to +9% of the measured 0.79 to 1.95 per MAC (0.8 per MAC alone: -45% to +1%; DS-CNN's rows of 5
# pixels 1.33, so its fast build was estimated at 0.83 of what it runs and the default one, with DSP
# depthwise layers through rings, at 1.45x it where it runs 1.21x).
MVE_DW_RATES = (0.70, 30.0, 0.70)  # per MAC, per output row and channel, per input byte


def mve_dwconv_rates(call: KernelCall) -> tuple[float, float]:
    """(per MAC, 0): the row and input terms of MVE_DW_RATES spread over the call's MACs."""
    p = call.params
    per_mac, per_row, per_in = MVE_DW_RATES
    rows = p["batches"] * p["out_h"] * p["in_c"] * per_row
    fill = p["batches"] * p["in_h"] * p["in_w"] * p["in_c"] * per_in
    return per_mac + (rows + fill) / max(call.macs, 1), 0.0


def mve_dwconv_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """One byte gather (16 lanes, offsets < 256) holds the taps of an output."""
    p = call.params
    taps, wbuf = p["k_h"] * p["k_w"], _mve_dw_wbuf(p)
    return _plain(call) and taps <= 16 and (p["k_h"] - 1) * wbuf + p["k_w"] - 1 <= 255


def mve_dwconv(ctx: LowerContext, call: KernelCall) -> KernelCall:
    p = call.params
    c, k_h, k_w, sw = p["in_c"], p["k_h"], p["k_w"], p["stride_w"]
    taps = k_h * k_w
    wbuf = _mve_dw_wbuf(p)
    w = _weights(ctx, call).reshape(taps, c)
    packed = np.zeros((c, 16), dtype=np.int64)
    packed[:, :taps] = w.T
    cst = _consts(call)
    mult, shift = _per_output(cst["mult"], c), _per_output(cst["shift"], c)
    folded = _bias(ctx, call, c) + p["input_offset"] * w.sum(axis=0)
    spec = dict(k_h=k_h, k_w=k_w, stride_w=sw, c=c, wbuf=wbuf, rq=_mve_rq(shift), **_clamp_spec(p))
    return _variant(call, "dwconv_s8_mve", spec, ConstArray("w", "int8_t", packed.reshape(-1).astype(np.int8)),
                    ConstArray("bias", "int32_t", _wrap32(folded)), mult, shift)


def mve_fc_ok(ctx: LowerContext, call: KernelCall) -> bool:
    return _whole_layer(call)


def mve_fc(ctx: LowerContext, call: KernelCall) -> KernelCall:
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


def mve_add_ok(ctx: LowerContext, call: KernelCall) -> bool:
    """The DSP ADD's checks (dsp_add_ok), and each input contiguous or broadcast along the innermost dimension
    (after the layout's merging it always is; any other stride stays with the DSP kernel)."""
    return dsp_add_ok(ctx, call) and call.params["a3"] in (0, 1) and call.params["b3"] in (0, 1)


def mve_add(ctx: LowerContext, call: KernelCall) -> KernelCall:
    spec = add_spec(call, -2 ** 31)  # the narrowing store saturates nothing
    # entry x + 128 -> entry (uint8_t)x, the byte the gather's offsets are
    by_byte = [replace(t, values=np.roll(np.asarray(t.values), 128)) for t in call.consts]
    return replace(call, kernel="add_s8_mve", spec=spec, consts=by_byte, params_kernel=call.kernel)


# ---------------------------------------------------------------------------
# The DSP convolution over int8 weights: conv_s8_dsp's flash fallback (its widened weights take twice the
# bytes), chosen per layer where the widened build would not fit the board's flash (saves_flash_of).


def dsp_conv_narrow(ctx: LowerContext, call: KernelCall) -> KernelCall:
    """conv_s8_dsp_narrow: per pair of output channels (the last one padded with a zero channel), per group
    of 4 taps (in conv_tap_order, zero taps to kp), the two channels' 4 int8 taps, which the kernel
    sign-extends with SXTB16; bias, multipliers and shifts padded to the pairs."""
    p = call.params
    out_c, k_h, k_w, in_c = p["out_c"], p["k_h"], p["k_w"], p["in_c"]
    kp = _conv_kp(p)
    w = _weights(ctx, call).reshape(out_c, k_h * k_w * in_c)
    c = _consts(call)
    mult, shift = _per_output(c["mult"], out_c), _per_output(c["shift"], out_c)
    bias = _bias(ctx, call, out_c)
    rq = _requant_mode(mult, shift, np.abs(w).sum(axis=1) * 255 + np.abs(bias))
    spec = dict(k_h=k_h, k_w=k_w, in_c=in_c, kp=kp, rq=rq, odd=out_c % 2 == 1, **_clamp_spec(p))
    order = conv_tap_order(k_h, k_w, in_c)
    if in_c % 4:
        spec["order"] = tuple(int(q) for q in order)
    pairs = (out_c + 1) // 2
    wpad = np.zeros((2 * pairs, kp), dtype=np.int8)
    wpad[:out_c, order] = w
    wp = wpad.reshape(pairs, 2, kp // 4, 4).transpose(0, 2, 1, 3)  # [pair][group][channel][tap]
    return _variant(call, "conv_s8_dsp_narrow", spec, ConstArray("w", "int8_t", wp.reshape(-1)),
                    ConstArray("bias", "int32_t", _pad_to(bias, 2 * pairs).astype(np.int32)),
                    _pad_to(mult, 2 * pairs), _pad_to(_dsp_shift(shift, rq), 2 * pairs))


# ---------------------------------------------------------------------------
# The declarations of the variants above (codegen/declare.py).

# The DSP variants run in place through a ring (spec.ring) and compute patch windows (spec.window, not
# FC) with the same inner loops as their whole-layer code.  Ring units held beyond lag + 1: the
# convolution computes two pixels before storing (1);
# the depthwise convolution reads the input rows of an output row ahead but computes and stores pixel by
# pixel (0); FC stores row by row (0).  The convolutions also run in place without a ring (ring_direct):
# their whole-layer code reads a pixel pair's taps (im2col) or an output row's input rows before writing.
VARIANTS = (
    # Estimated costs fitted to QEMU instruction counts of the DS-CNN (2,664,768 MACs) measured when the
    # forms were added: mps2-an386 whole layer 5,119,492 (1.92 per MAC), in place +50,583 for 72,000 bytes
    # stored through rings (0.70 per byte); mps3-an547 whole layer 1,146,561 (0.43 per MAC), in place
    # +46,810 (0.65 per byte).  A patch-window call costs about 7,000 instructions more on the M4
    # (MobileNetV1-0.25, ops 1..3 in 5x5 patches: 3.2% over its in-place estimate; patch_call's default);
    # the MVE figure was that scaled by the two families' instructions per MAC (refitted below).
    # The DSP kernels tuned against the cycle model: the DS-CNN whole layer is now 4,746,086 on mps2-an386
    # (1.78 per MAC; in place +80,127); per kernel the instructions per MAC moved by x0.94 (convolutions,
    # DS-CNN), x0.92 (depthwise, DS-CNN) and x0.89 (fully connected, the MLPerf AD autoencoder), which
    # scale the figures below.
    # Refitted on MobileNetV1-0.25 (mps2-an386, QEMU): a copy out of the ring costs about 75 instructions
    # of set-up in the convolution (per run), 20 in the depthwise one (per pixel), plus 0.55 per byte (ops
    # 4..26 in place through rings against the whole layer).  Patch stages of ops 2..3 measure over the
    # layer-by-layer plan: 3x4 patches +186,504 instructions / +266,847 cycles, 3x6 +247,640 / +343,169,
    # 4x6 +277,392 / +379,603; the cycles, at the whole network's 1.137 cycles per instruction, less the
    # recomputed halos as estimated here (60,134, 84,580, 97,537), fit patch_call 5,600 per call (least
    # squares; the estimates of halos alone are low: the first op's recomputed pixels cost most).
    # The convolution's im2col (interior pixels, rows as words; conv_tap_order) and requantization
    # reworked (December 2026): its instructions per MAC moved by x0.946 (ResNet-8), x0.970 (MobileNetV1,
    # layer by layer) and x0.983 (DS-CNN), x0.958 over the three, which scaled its 1.8 to 1.72.  One figure per
    # MAC could not follow layers from 1.2 to 2.1 instructions per MAC (narrow layers pay per output pixel):
    # refitted (least squares on relative error) over the 28 convolutions of the three networks' default
    # builds on mps2-an386: 1.17 per MAC plus 15.4 per output element, from -18% (MobileNetV1's first layer)
    # to +5% of the measured instructions (1.72 per MAC alone: -19% to +46%).
    # Two pixels x four channels over widened weights, the requantization in the asm (December 2026):
    # refitted the same way over the same 28 convolutions: 0.93 per MAC plus 13.0 per output element, from
    # -18% (MobileNetV1's first layer) to +5% (the old figures: +0.5% to +30%).  The patch stage of ops 2..3
    # in 3x4 patches (window forms' set-up reworked) measures 196,207 instructions over layer by layer, of
    # which the halos as estimated here about 80,400: patch_call 4,800 for each of the 24 calls (both
    # kernels; was 5,600).
    # The loop over the quads of output channels in the asm over one stream (bias, weights, multipliers,
    # shifts, output offsets), unrolled up to 32 groups, 1x1 convolutions' own im2col (December 2026):
    # refitted the same way over the 27 convolutions outside patch stages of the default builds (ops 2..3
    # of MobileNetV1-0.25 run in patches): 0.91 per MAC plus 10.5 per output element, from -20%
    # (MobileNetV1's first layer) to +5% (the old figures: -13% to +17%).
    # The quad's biases loaded once (pixel 1's accumulators start from pixel 0's in the first group) where
    # that group is outside the loop (December 2026): 4 instructions fewer per quad of 8 outputs, 0.5 per
    # output element in 20 of those 27 convolutions (not ResNet-8's 3x3 ones, nor MobileNetV1's last):
    # 10.5 -> 10.1 per output element (MobileNetV1-0.25 -72,416 est. cycles on mps2-an386).
    Variant("conv_s8_dsp", "conv_s8", "dsp", ("dsp",), inplace=True, ring=True, ring_extra=dsp_conv_ring_extra,
            ring_direct=True, window=True, accepts=dsp_conv_ok, stack=dsp_conv_stack, rates=dsp_conv_rates,
            strided_input=True, strided_output=True, ring_per_byte=0.55, ring_stores=ring_stores_pairs, ring_per_store=75, patch_call=4800,
            build=dsp_conv, helpers=(DSP,), code_bytes=2250),
    # The depthwise kernel rewritten (column-pair row buffers, passes of several columns): 2.45 instructions
    # per MAC on the DS-CNN's layers (176,280 whole layer, mps2-an386), 2.47 over MobileNetV1-0.25's (in place
    # and whole layer, 1,770,301 for 715,392 MACs; stride 2 about 3.3, stride 1 about 2.35).  In place
    # through a ring it writes straight to the output where no output row overlaps an input row still to
    # convert (the DS-CNN's: +1,601 per layer for 125 pixels of 64 bytes), else pixel by pixel through the
    # ring (single-column passes: about twice the multiply-accumulate cost, not in these figures).  The bias
    # loaded into an accumulator in the asm, two-word input runs for stride 2, the conversion unrolled four
    # times (December 2026): 2.37 on the DS-CNN's (170,331 per layer) and 2.38 over MobileNetV1-0.25's
    # (1,699,261; stride 2 3.1 to 3.4, stride 1 2.2 to 2.35, the last 2.7), which scaled 2.5 to 2.4.
    # Each pass one asm loop over the channels (two a step) with the requantization inside, passes of 6
    # columns (December 2026): 2.10 on the DS-CNN's (151,186 per layer) and 2.11 over MobileNetV1-0.25's
    # whole layers (1,509,276 for 715,392 MACs; stride 1 1.96 to 2.06, stride 2 2.8 to 3.3, the 3-wide ones
    # 2.6 and 3.3); declared a little above for the window and ring forms' set-up.
    # A layer too wide for its row buffers on the stack (k_h * 2 * width * channels bytes over the limit) runs
    # whole in place (ring or direct) with them in the op's arena scratch (stack_in_scratch; the template's
    # spec.scratch_rows), else in column strips: MobileNetV2-0.35-144's 18x18x96 layers in place 1.94 per MAC
    # on mps2-an386 (542,649 for 279,936 MACs; the portable kernel in place took about 38).
    Variant("dwconv_s8_dsp", "dwconv_s8", "dsp", ("dsp",), inplace=True, ring=True, ring_direct=True, window=True,
            accepts=dsp_dwconv_ok, stack=dsp_dwconv_stack, stack_in_scratch=True, per_mac=2.15,
            ring_per_byte=0.1, ring_stores=ring_stores_pixels, ring_per_store=6, patch_call=4800,
            build=dsp_dwconv, helpers=(DSP,), strips=True, strip_row=20, code_bytes=2200),
    Variant("fc_s8_dsp", "fc_s8", "dsp", ("dsp",), inplace=True, ring=True, accepts=dsp_fc_ok, per_mac=1.35,
            ring_per_byte=0.7, build=dsp_fc, helpers=(DSP,), code_bytes=660),
    # ADD: in place as the portable kernel (element by element).  9.5 instructions per output element
    # (ResNet-8's three ADDs, no broadcast, no rounding fix-up or clamp needed, on mps2-an386: 10.5 cycles
    # per element; 11.0 instructions and 12.5 cycles with both).
    Variant("add_s8_dsp", "add_s8", "dsp", ("dsp",), inplace=True, accepts=dsp_add_ok, per_mac=9.5,
            build=dsp_add, helpers=(DSP,), code_bytes=480),
    # AVERAGE_POOL_2D: whole layer only, eight channels at a time.  Fitted to QEMU instruction counts on
    # mps2-an386 (December 2026) of the global pools of the DS-CNN (8,000 taps, 64 outputs: 10,727) and
    # ResNet-8 (4,096 taps, 64 outputs: 5,847): 1.25 per tap plus 11 per output element; MobileNetV1-0.25's
    # (2,304 taps, 256 outputs) measures 5,263, 10% below the estimate (the portable kernel: about 13 per tap).
    Variant("avgpool_s8_dsp", "avgpool_s8", "dsp", ("dsp",), accepts=dsp_avgpool_ok, per_mac=1.25, per_output=11.0,
            build=dsp_avgpool, helpers=(DSP,), code_bytes=950),
    # MVE: whole layer, in place through a ring (spec.ring) and patch windows (spec.window; not FC)
    # MVE rings refitted on MobileNetV1-0.25 (mps3-an547, QEMU): in place through rings, the pointwise
    # convolutions of ops 2 and 4 take +82k and +21k instructions (about 65 per pixel pair stored), the
    # depthwise ones +30k, +9k and +2k (about 14 per pixel; with DS-CNN's rows of 5 pixels, 11 per pixel
    # and 88 per row: mve_dwconv_ring_stores); per byte next to nothing.  With the im2col asm passes the
    # convolution's ring costs about 80 per pixel pair: ResNet-8's op 2 in place took about 41k more than the
    # same layer whole (op 1) over its 512 pairs on mps3-an547; at 65 the plan that runs it in place was
    # estimated at 1.019x the fastest and measured 1.021x.
    # Refitted with the narrow 1x1 kernel (at most 16 channels in) and the depthwise window form per pixel
    # (MobileNetV1-0.25, mps3-an547, QEMU): the convolutions cost about 0.2 per MAC plus 3.0 per output
    # element (from -11% to +24% of the measured instructions over its 14 convolutions but the first, whose
    # im2col takes twice the estimate; 0.4 per MAC alone: -36% to +87%).  Ops 2..3 in 3x4 patches:
    # op 2 (1x1, 8 to 16 channels) 229,799 instructions against 184,476 layer by layer, 204,173 of them
    # its recomputed pixels (x1.107, Plan.op_cost), about 2,100 per call; op 3 (depthwise) 151,447 against
    # 90,842 with nothing recomputed, about 5,000 per call (its input rows copied into the planes per
    # window, 4.1 instructions per output more than the whole layer's rows of 24).  The window form
    # reworked (per 4 channels every output of the row, weights and requantization in registers; the
    # taps of a row from a table by the plane row of its first input row, for every form): op 3 alone as
    # a patch stage measures 136,223 instructions in 3x4 patches (3,870 per call over the whole layer's
    # 89,815, which the table made faster too) and 107,959 in 6x1 (3,020 per call): patch_call 3,900
    # (was 5,000), the larger, as the narrower windows' rows cost more.
    # Both also run in place without a ring (ring_direct): the depthwise convolution's whole-layer code
    # reads an output row's input rows into its planes before writing the row, the convolution's a pixel
    # pair's taps into its im2col buffer (or one vector); a 1x1 convolution over more than 16 channels
    # copies the pair first (spec.over_input, mve_conv_direct_stack / mve_conv_direct_cost).
    # The convolution's cost, per code path (mve_conv_rates), fitted (least squares on relative error) over
    # the 28 convolutions of the default builds of ResNet-8, DS-CNN and MobileNetV1-0.25 on mps3-an547 with
    # the im2col path's asm passes and the narrow 1x1 kernel: see MVE_CONV_RATES (one rate for both paths,
    # 0.178 + 4.39, was off by -47% to +27%).
    Variant("conv_s8_mve", "conv_s8", "mve", ("mve",), inplace=True, ring=True, ring_extra=mve_conv_ring_extra,
            ring_direct=True, direct_stack=mve_conv_direct_stack, direct_cost=mve_conv_direct_cost,
            direct_accepts=mve_conv_direct_ok,
            window=True, accepts=mve_conv_ok, stack=mve_conv_stack, rates=mve_conv_rates, ring_per_byte=0.1,
            strided_input=True, strided_output=True,
            ring_stores=ring_stores_pairs, ring_per_store=80, **MVE_CONV_WINDOW,
            build=mve_conv, helpers=(MVE,),
            code_bytes=830),
    Variant("dwconv_s8_mve", "dwconv_s8", "mve", ("mve",), inplace=True, ring=True, ring_direct=True,
            ring_extra=mve_dwconv_ring_extra, window=True, accepts=mve_dwconv_ok, stack=mve_dwconv_stack,
            form_stack=mve_dwconv_form_stack, rates=mve_dwconv_rates, ring_per_byte=0.1, ring_stores=mve_dwconv_ring_stores,
            ring_per_store=11, **MVE_DW_WINDOW, build=mve_dwconv, helpers=(MVE,),
            strips=True, strip_row=34,
            code_bytes=1240),
    Variant("fc_s8_mve", "fc_s8", "mve", ("mve",), inplace=True, ring=True, accepts=mve_fc_ok, per_mac=0.4,
            ring_per_byte=0.65, build=mve_fc, helpers=(MVE,), code_bytes=320),
    # ADD: in place as the portable kernel (four elements at a time).  2.76 instructions per output element
    # (ResNet-8's three ADDs, no broadcast, no rounding fix-up, on mps3-an547: 2.76 cycles per element in
    # the software-pipelined loop; the C loop where the fix-up or a broadcast is needed: about 3.3 / 5.5).
    Variant("add_s8_mve", "add_s8", "mve", ("mve",), inplace=True, accepts=mve_add_ok, per_mac=2.8,
            build=mve_add, helpers=(MVE,), code_bytes=390),
    # conv_s8_dsp over int8 weights (the kernel before its weights were widened, with the window forms'
    # per-call offsets): two pixels x two channels, SXTB16 on the weights in the inner loop.  Its figures
    # as fitted for that kernel over the 28 convolutions of ResNet-8, DS-CNN and MobileNetV1-0.25 on
    # mps2-an386 (1.17 per MAC plus 15.4 per output element, patch_call 5,600; December 2026).  Never the
    # fastest: chosen only where conv_s8_dsp's weights would not fit the board's flash (saves_flash_of).
    Variant("conv_s8_dsp_narrow", "conv_s8", "dsp", ("dsp",), inplace=True, ring=True,
            ring_extra=dsp_conv_ring_extra, ring_direct=True, window=True, accepts=dsp_conv_ok, stack=dsp_conv_stack,
            per_mac=1.17, per_output=15.4, ring_per_byte=0.55, ring_stores=ring_stores_pairs, ring_per_store=75,
            patch_call=5600, build=dsp_conv_narrow, helpers=(DSP,), saves_flash_of="conv_s8_dsp",
            code_bytes=2250),
)
