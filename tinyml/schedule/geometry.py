"""Spatial geometry of the operators the planner reasons about.

The planner needs, for convolutions, which input pixels each output pixel
reads: to run an operator in place (an output pixel may only overwrite input
pixels no later output pixel reads) and to run a chain of operators patch by
patch (the receptive field of an output window).  Everything here is a pure
function of the Graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyml.graph.ir import Graph, Op

WINDOW_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


@dataclass(frozen=True)
class Window:
    """A 2-D sliding window: output (oy, ox) reads input rows oy*s_h - pad_h + d_h*ky, ky < k_h (and columns alike)."""

    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    s_h: int
    s_w: int
    d_h: int
    d_w: int
    pad_h: int
    pad_w: int

    def in_rows(self, o0: int, o1: int) -> tuple[int, int]:
        """Input rows [lo, hi) (clipped to the image) read by output rows [o0, o1)."""
        return _span(o0, o1, self.s_h, self.pad_h, self.k_h, self.d_h, self.in_h)

    def in_cols(self, o0: int, o1: int) -> tuple[int, int]:
        return _span(o0, o1, self.s_w, self.pad_w, self.k_w, self.d_w, self.in_w)


def _span(o0: int, o1: int, s: int, pad: int, k: int, d: int, size: int) -> tuple[int, int]:
    lo = o0 * s - pad
    hi = (o1 - 1) * s - pad + (k - 1) * d + 1
    return max(lo, 0), min(hi, size)


def _pad_before(stride: int, dil: int, in_size: int, k: int, out: int) -> int:
    eff = (k - 1) * dil + 1
    return max((out - 1) * stride + eff - in_size, 0) // 2


def window_of(graph: Graph, op: Op) -> Window | None:
    """The window of a CONV_2D / DEPTHWISE_CONV_2D with batch 1, or None for anything else."""
    if op.kind not in WINDOW_OPS or len(op.inputs) < 2 or len(op.outputs) != 1 or op.inputs[0] < 0:
        return None
    inp, w, out = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]]
    if len(inp.shape) != 4 or len(out.shape) != 4 or len(w.shape) != 4 or inp.shape[0] != 1 or out.shape[0] != 1:
        return None
    o = op.options
    sh, sw = int(o.get("stride_h", 1)), int(o.get("stride_w", 1))
    dh, dw = int(o.get("dilation_h", 1)), int(o.get("dilation_w", 1))
    if min(sh, sw, dh, dw) < 1:
        return None
    _, h, wd, c = inp.shape
    _, oh, ow, oc = out.shape
    kh, kw = int(w.shape[1]), int(w.shape[2])
    same = o.get("padding", "VALID") == "SAME"
    return Window(
        in_h=h, in_w=wd, in_c=c, out_h=oh, out_w=ow, out_c=oc, k_h=kh, k_w=kw, s_h=sh, s_w=sw, d_h=dh, d_w=dw,
        pad_h=_pad_before(sh, dh, h, kh, oh) if same else 0, pad_w=_pad_before(sw, dw, wd, kw, ow) if same else 0)


def _last_reader(size: int, out: int, s: int, pad: int, k: int, d: int) -> np.ndarray:
    """For each input index along one axis, the last output index that reads it (-1: none)."""
    last = np.full(size, -1, dtype=np.int64)
    for o in range(out):
        idx = o * s - pad + d * np.arange(k)
        idx = idx[(idx >= 0) & (idx < size)]
        last[idx] = o
    return last


def pixel_last_use(win: Window) -> np.ndarray:
    """Raster index of the last output pixel that reads each input pixel (raster order), -1 if none."""
    rows = _last_reader(win.in_h, win.out_h, win.s_h, win.pad_h, win.k_h, win.d_h)
    cols = _last_reader(win.in_w, win.out_w, win.s_w, win.pad_w, win.k_w, win.d_w)
    last = rows[:, None] * win.out_w + cols[None, :]
    last[(rows[:, None] < 0) | (cols[None, :] < 0)] = -1
    return last.reshape(-1)


def ring_lag(last_use: np.ndarray, in_unit: int, out_unit: int, n_out: int, delta: int) -> int:
    """Pixels an in-place kernel must hold back before writing (see ``InPlace``).

    Output unit q (``out_unit`` bytes, written at ``delta + q * out_unit``
    relative to the input's start) may be stored once every input unit it
    overlaps has been read for the last time; the kernel computes unit q into
    a ring and stores unit q - lag right after.  Returns the smallest safe lag.
    """
    n_in = last_use.size
    q = np.arange(n_out, dtype=np.int64)
    start = delta + q * out_unit
    end = start + out_unit  # exclusive
    lo = np.maximum(start, 0) // in_unit
    hi = np.minimum(end, n_in * in_unit)
    hi = (hi - 1) // in_unit  # inclusive
    valid = (end > 0) & (start < n_in * in_unit)
    if not valid.any():
        return 0
    span = int(np.max(np.where(valid, hi - lo, 0))) + 1
    lag = 0
    for k in range(span):
        p = lo + k
        ok = valid & (p <= hi) & (p < n_in)
        if ok.any():
            need = last_use[np.where(ok, p, 0)] - q
            lag = max(lag, int(np.max(np.where(ok, need, 0))))
    return max(lag, 0)
