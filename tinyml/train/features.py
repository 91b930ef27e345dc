"""The MLPerf Tiny keyword-spotting front end (MFCC), in numpy.

Exactly the reference pipeline of MLPerf Tiny's KWS benchmark (its
``get_dataset.py``, which is TensorFlow's ``tf.signal`` ops):

* 16 kHz, 1 s (16,000 samples, zero-padded or cut), the waveform divided by
  its maximum (``reduce_max``, not the maximum of the absolute value);
* STFT with frame 480 (30 ms), step 320 (20 ms), FFT 512, periodic Hann
  window, no end padding -> 49 frames; magnitude;
* 40 mel bins from 20 to 4000 Hz (``linear_to_mel_weight_matrix``: HTK mel
  scale, triangles on the mel axis, the DC bin zeroed);
* ``log(mel + 1e-6)``, DCT-II scaled by ``1/sqrt(2 * 40)`` (TensorFlow's
  ``mfccs_from_log_mel_spectrograms``), first 10 coefficients -> 49x10x1.

TensorFlow is not needed here; ``tests/test_kws_features.py`` checks this
against ``tf.signal``.  :func:`mfcc_tables` returns the constant tables
(window, FFT twiddles, sparse mel filters, DCT) that the C implementation
``templates/kws/mfcc.c.j2`` is rendered with, so both sides share one
definition.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FrontEnd",
    "MLPERF_KWS",
    "mfcc",
    "mfcc_batch",
    "quantize_features",
    "mel_matrix",
    "mfcc_tables",
    "fit_length",
]


@dataclass(frozen=True)
class FrontEnd:
    sample_rate: int = 16000
    clip_samples: int = 16000
    frame: int = 480
    step: int = 320
    fft: int = 512
    mel_bins: int = 40
    lower_hz: float = 20.0
    upper_hz: float = 4000.0
    log_offset: float = 1e-6
    coefficients: int = 10

    @property
    def frames(self) -> int:
        return 1 + (self.clip_samples - self.frame) // self.step

    @property
    def bins(self) -> int:
        return self.fft // 2 + 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.frames, self.coefficients, 1)


MLPERF_KWS = FrontEnd()


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(fe: FrontEnd = MLPERF_KWS) -> np.ndarray:
    """(bins, mel_bins) weights, as ``tf.signal.linear_to_mel_weight_matrix``."""
    linear = np.linspace(0.0, fe.sample_rate / 2.0, fe.bins)[1:]
    bins_mel = _hz_to_mel(linear)[:, None]
    edges = np.linspace(_hz_to_mel(fe.lower_hz), _hz_to_mel(fe.upper_hz), fe.mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    lo = (bins_mel - lower) / (center - lower)
    hi = (upper - bins_mel) / (upper - center)
    w = np.maximum(0.0, np.minimum(lo, hi))
    return np.concatenate([np.zeros((1, fe.mel_bins)), w], axis=0)


def hann_periodic(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def dct_matrix(fe: FrontEnd = MLPERF_KWS) -> np.ndarray:
    """(mel_bins, coefficients): unnormalized DCT-II times ``1/sqrt(2 N)``."""
    n = fe.mel_bins
    k = np.arange(fe.coefficients)[None, :]
    i = np.arange(n)[:, None]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n)) / np.sqrt(2.0 * n)


def fit_length(audio: np.ndarray, fe: FrontEnd = MLPERF_KWS) -> np.ndarray:
    """Zero-pad or cut a clip to exactly ``fe.clip_samples``."""
    a = np.asarray(audio).reshape(-1)
    if len(a) >= fe.clip_samples:
        return a[: fe.clip_samples]
    return np.pad(a, (0, fe.clip_samples - len(a)))


def mfcc_batch(audio: np.ndarray, fe: FrontEnd = MLPERF_KWS, dtype: Any = np.float64) -> np.ndarray:
    """Float MFCCs (n, frames, coefficients, 1) for clips (n, clip_samples).

    ``audio`` may be int16 or float; each clip is divided by its own maximum
    (a clip whose maximum is not positive is left unscaled, where the
    reference would produce NaN or flip the sign).  ``dtype`` is the
    arithmetic: float64 (the reference the device is checked against) or
    float32 (faster, for training features; within about 1e-5).
    """
    x = np.asarray(audio)
    if x.ndim == 1:
        x = x[None]
    if x.shape[1] != fe.clip_samples:
        x = np.stack([fit_length(c, fe) for c in x])
    idx = np.arange(fe.frame)[None, :] + fe.step * np.arange(fe.frames)[:, None]
    window = hann_periodic(fe.frame).astype(dtype)
    mel, dct = mel_matrix(fe).astype(dtype), dct_matrix(fe).astype(dtype)
    out = np.empty((len(x), fe.frames, fe.coefficients, 1), dtype=np.float32)

    def block(start: int) -> None:  # in blocks: the frames of every clip at once would not fit in cache
        b = x[start:start + 512].astype(dtype)
        peak = b.max(axis=1, keepdims=True)
        b = b / np.where(peak > 0, peak, 1.0).astype(dtype)
        spec = np.abs(np.fft.rfft(b[:, idx] * window, n=fe.fft, axis=-1))
        out[start:start + 512, ..., 0] = np.log(spec @ mel + fe.log_offset) @ dct

    starts = range(0, len(x), 512)
    if len(starts) > 1:  # numpy's FFT and matrix products release the GIL: one thread per CPU
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
            list(pool.map(block, starts))
    else:
        block(0)
    return out


def mfcc(audio: np.ndarray, fe: FrontEnd = MLPERF_KWS) -> np.ndarray:
    """Float MFCCs (frames, coefficients, 1) of one clip."""
    return mfcc_batch(np.asarray(audio)[None], fe)[0]


def quantize_features(features: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The model's int8 input quantization: round half away from zero, as TFLite's QUANTIZE."""
    q = np.asarray(features, dtype=np.float64) / scale
    q = np.sign(q) * np.floor(np.abs(q) + 0.5) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def mfcc_tables(fe: FrontEnd = MLPERF_KWS) -> dict[str, object]:
    """Constants for the C front end (templates/kws/mfcc.c.j2), as plain lists.

    The mel filters are stored sparsely: for mel bin m, ``mel_start[m]`` is
    its first FFT bin, ``mel_len[m]`` the number of bins and the weights sit
    at ``mel_offset[m]`` in ``mel_weights``.
    """
    if fe.fft & (fe.fft - 1):
        raise ValueError("the FFT length must be a power of two")
    w = mel_matrix(fe)
    starts, lens, offsets, weights = [], [], [], []
    for m in range(fe.mel_bins):
        nz = np.nonzero(w[:, m])[0]
        lo, hi = (int(nz[0]), int(nz[-1]) + 1) if len(nz) else (0, 0)
        starts.append(lo)
        lens.append(hi - lo)
        offsets.append(len(weights))
        weights.extend(float(v) for v in w[lo:hi, m])
    half = fe.fft // 2
    k = np.arange(half)
    # Complex FFT of half the length on even/odd samples, then the real-FFT split.
    tw_half = np.exp(-2j * np.pi * np.arange(half // 2) / half)
    tw_split = np.exp(-2j * np.pi * k / fe.fft)
    bits = int(np.log2(half))
    bitrev = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(half)]
    max_bin = max(s + n for s, n in zip(starts, lens))
    return dict(
        sample_rate=fe.sample_rate,
        clip_samples=fe.clip_samples,
        frame=fe.frame,
        step=fe.step,
        fft=fe.fft,
        half=half,
        frames=fe.frames,
        mel_bins=fe.mel_bins,
        coefficients=fe.coefficients,
        log_offset=fe.log_offset,
        max_bin=max_bin,
        window=[float(v) for v in hann_periodic(fe.frame)],
        twiddle_re=[float(v) for v in tw_half.real],
        twiddle_im=[float(v) for v in tw_half.imag],
        split_re=[float(v) for v in tw_split.real],
        split_im=[float(v) for v in tw_split.imag],
        bitrev=bitrev,
        mel_start=starts,
        mel_len=lens,
        mel_offset=offsets,
        mel_weights=weights,
        dct=[[float(v) for v in row] for row in dct_matrix(fe).T],
    )
