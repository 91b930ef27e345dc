"""Test-model factory: tiny int8 ``.tflite`` models, one operator each, plus the zoo networks.

A :class:`Case` is a small frozen spec (builder kind, parameters, input
shapes, per-channel or per-tensor weights, I/O dtype, seed, and the TFLite
builtin operator the converted model must contain).  :func:`build` turns it
into ``.tflite`` bytes: a Keras model with random weights, quantized by
:func:`tinyml.train.quantize.quantize_int8` with a seeded representative
dataset, checked to contain ``case.op``, and cached in
``<repo>/.cache/models/<hash>.tflite`` (``$TINYML_MODEL_CACHE`` overrides the
folder).  The hash covers the spec, the TensorFlow version and
``GENERATOR_VERSION``, so a cached model is only reused when it would be
rebuilt identically.  Loading a cached model needs no TensorFlow.

Case lists for pytest (``ids=`` uses ``Case.id``)::

    from tests.modelgen import op_cases, zoo_cases, build, build_many, inputs_for

    @pytest.mark.parametrize("case", op_cases("CONV_2D"), ids=lambda c: c.id)
    def test_conv(case):
        model = build(case)
        for sample in inputs_for(case, model):
            ...

``python -m tests.modelgen`` builds (warms the cache for) every case in one
process; ``python -m tests.modelgen CONV_2D --check`` builds the CONV_2D cases
and runs them in TFLM.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

GENERATOR_VERSION = 1  # bump when a builder or the data generator changes
REPRESENTATIVE_SAMPLES = 48
REPO = Path(__file__).resolve().parent.parent

__all__ = [
    "Case",
    "case",
    "op_cases",
    "zoo_cases",
    "all_cases",
    "float_cases",
    "int16_cases",
    "lstm_cases",
    "int16_unet_cases",
    "nchw_cases",
    "nchw_branch_cases",
    "nchw_depthwise_cases",
    "exp_cases",
    "build",
    "build_many",
    "inputs_for",
    "model_ops",
    "cache_dir",
    "cache_path",
    "OPS",
]


# --------------------------------------------------------------------------
# specs


@dataclass(frozen=True)
class Case:
    """One test model.  ``inputs`` are shapes without the batch dimension (batch is 1)."""

    kind: str  # builder name, see _BUILDERS
    op: str  # TFLite builtin operator the converted model must contain
    inputs: tuple[tuple[int, ...], ...]
    params: tuple[tuple[str, Any], ...] = ()
    per_channel: bool = True
    io_dtype: str = "int8"
    seed: int = 0
    id: str = field(default="", compare=False)

    def p(self, key: str, default: Any = None) -> Any:
        """A builder parameter."""
        for k, v in self.params:
            if k == key:
                return v
        return default

    def spec(self) -> dict[str, Any]:
        """Everything that determines the built model (JSON-able)."""
        return {
            "kind": self.kind,
            "op": self.op,
            "inputs": [list(s) for s in self.inputs],
            "params": [[k, _jsonable(v)] for k, v in self.params],
            "per_channel": self.per_channel,
            "io_dtype": self.io_dtype,
            "seed": self.seed,
        }


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        if v and isinstance(v[0], tuple):
            return "_".join(_fmt(x) for x in v)
        return "x".join(_fmt(x) for x in v)
    return str(v)


_SHORT = {
    "kernel": "k", "strides": "s", "dilation": "d", "padding": "", "filters": "f",
    "act": "", "bias": "bias", "mult": "m", "units": "u", "keep_dims": "keep",
    "pool": "p", "axis": "ax", "target": "to", "pads": "pad", "beta": "beta",
    "alpha": "a", "in_scale": "range", "in_dist": "", "body": "", "keepdims": "keep",
    "name": "", "squeeze_axis": "ax",
}


def case(
    kind: str,
    op: str,
    *inputs: tuple[int, ...],
    per_channel: bool = True,
    io_dtype: str = "int8",
    seed: int = 0,
    id: str | None = None,
    **params: Any,
) -> Case:
    """Make a :class:`Case` with a readable id such as ``conv2d-8x8x3-k3x3-s2x2-same-relu-pc``."""
    items = tuple(sorted(params.items()))
    if id is None:
        parts = [kind, "+".join(_fmt(s) for s in inputs)]
        for k, v in sorted(params.items(), key=lambda kv: list(_SHORT).index(kv[0]) if kv[0] in _SHORT else 99):
            if v is None:
                continue
            if k == "act" and v == "none":
                continue
            if k == "null_bias":
                parts.append("nullbias" if v else "")
                continue
            if k == "float_model":
                parts.append("f32" if v else "")
                continue
            if k == "a16":
                parts.append("a16" if v else "")
                continue
            if k == "bias":
                parts.append("bias" if v else "nobias")
                continue
            parts.append(f"{_SHORT.get(k, k)}{_fmt(v)}")
        if kind in _WEIGHTED:
            parts.append("pc" if per_channel else "pt")
        if io_dtype != "int8":
            parts.append(io_dtype)
        if seed:
            parts.append(f"seed{seed}")
        id = "-".join(parts)
    return Case(kind, op, tuple(tuple(s) for s in inputs), items, per_channel, io_dtype, seed, id)


_WEIGHTED = {"conv2d", "depthwise", "dense", "zoo", "transpose_conv"}


# --------------------------------------------------------------------------
# representative / test data


def _float_samples(case: Case, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Float samples for every input, spread like real activations.

    Each channel gets its own offset and spread (activations are not
    zero-centred and channels differ); ``in_scale`` scales input k's range,
    ``in_dist`` picks "normal" (default), "relu" (non-negative, after a ReLU),
    "uniform" (uniform in [-scale, scale]) or "image" (uniform in [0, 1]).
    """
    scales = case.p("in_scale", 1.0)
    dist = case.p("in_dist", "normal")
    out = []
    for k, shape in enumerate(case.inputs):
        s = float(scales[k] if isinstance(scales, tuple) else scales)
        c = shape[-1]
        if dist == "uniform":
            x = rng.uniform(-s, s, size=(n, *shape))
        elif dist == "image":
            x = rng.uniform(0.0, 1.0, size=(n, *shape))
        else:
            mu = rng.normal(0.0, 0.4, size=c) * s
            sigma = rng.uniform(0.4, 1.2, size=c) * s
            x = mu + sigma * rng.standard_normal((n, *shape))
            if dist == "relu":
                x = np.maximum(x + 0.3 * s, 0.0)
        out.append(x.astype(np.float32))
    return out


def representative(case: Case) -> list[np.ndarray]:
    """The seeded calibration data of a case (one array per input, samples along axis 0)."""
    rng = np.random.default_rng(1000 + case.seed)
    return _float_samples(case, REPRESENTATIVE_SAMPLES, rng)


def inputs_for(case: Case, model: bytes, n: int = 4, seed: int = 0) -> list[list[np.ndarray]]:
    """``n`` test samples in the model's input dtype.

    Sample 0 is uniform over the whole int8 range (saturation, extremes); the
    others come from the calibration distribution (fresh draws), quantized
    with the model's input scale and zero point.  Float-I/O models get float
    samples.
    """
    from tinyml.tools.reference import tflm_io_details

    ins, _ = tflm_io_details(model)
    rng = np.random.default_rng(7919 * (seed + 1) + case.seed)
    floats = _float_samples(case, max(n, 1), rng)
    samples: list[list[np.ndarray]] = []
    for i in range(n):
        sample = []
        for info, x in zip(ins, floats):
            if info.dtype == np.float32:
                v = x[i].reshape(info.shape)
                if i == 0:
                    v = v * 1.5  # also beyond the calibrated range
                sample.append(v.astype(np.float32))
            elif i == 0:
                lim = np.iinfo(info.dtype)
                sample.append(rng.integers(lim.min, lim.max + 1, size=info.shape).astype(info.dtype))
            else:
                q = np.round(x[i] / info.scale[0]) + info.zero_point[0]
                lim = np.iinfo(info.dtype)
                sample.append(np.clip(q, lim.min, lim.max).astype(info.dtype).reshape(info.shape))
        samples.append(sample)
    return samples


# --------------------------------------------------------------------------
# case lists

OPS = (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "MEAN", "ADD", "MUL", "CONCATENATION", "RESHAPE", "SQUEEZE", "PAD", "SOFTMAX",
    "LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "QUANTIZE", "DEQUANTIZE",
    "TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
    "SUB", "MAXIMUM", "MINIMUM", "PADV2", "SQUARED_DIFFERENCE", "PRELU", "ARG_MAX", "ARG_MIN", "RSQRT",
    "TRANSPOSE_CONV", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "BATCH_MATMUL", "L2_NORMALIZATION",
)


def _conv_cases() -> list[Case]:
    cs: list[Case] = []
    # kernel shapes x padding, stride 1 and 2
    for k in ((1, 1), (3, 3), (5, 3), (10, 4)):
        for pad in ("same", "valid"):
            for s in ((1, 1), (2, 2)):
                shape = (12, 10, 3) if k != (10, 4) else (16, 10, 1)
                cs.append(case("conv2d", "CONV_2D", shape, kernel=k, strides=s, padding=pad,
                               filters=8, act="none", bias=True))
    # non-square stride, dilation, odd channels, activations, no bias
    cs += [
        case("conv2d", "CONV_2D", (12, 10, 4), kernel=(3, 3), strides=(2, 1), padding="same", filters=6, act="none", bias=True),
        case("conv2d", "CONV_2D", (12, 10, 4), kernel=(3, 3), strides=(1, 2), padding="valid", filters=6, act="none", bias=True),
        case("conv2d", "CONV_2D", (16, 10, 1), kernel=(10, 4), strides=(2, 1), padding="same", filters=8, act="relu", bias=True),
        case("conv2d", "CONV_2D", (12, 12, 4), kernel=(3, 3), strides=(1, 1), dilation=(2, 2), padding="same", filters=8, act="none", bias=True),
        case("conv2d", "CONV_2D", (12, 12, 4), kernel=(3, 3), strides=(1, 1), dilation=(2, 2), padding="valid", filters=8, act="none", bias=True),
        case("conv2d", "CONV_2D", (11, 9, 5), kernel=(3, 3), strides=(1, 1), padding="same", filters=7, act="none", bias=True),
        case("conv2d", "CONV_2D", (9, 7, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=13, act="relu", bias=True),
        case("conv2d", "CONV_2D", (8, 8, 16), kernel=(1, 1), strides=(1, 1), padding="same", filters=16, act="relu6", bias=True),
        case("conv2d", "CONV_2D", (10, 10, 8), kernel=(3, 3), strides=(1, 1), padding="same", filters=8, act="relu", bias=True),
        case("conv2d", "CONV_2D", (10, 10, 8), kernel=(3, 3), strides=(1, 1), padding="same", filters=8, act="relu6", bias=True),
        case("conv2d", "CONV_2D", (10, 10, 8), kernel=(3, 3), strides=(1, 1), padding="same", filters=8, act="none", bias=False),
        case("conv2d", "CONV_2D", (10, 10, 8), kernel=(1, 1), strides=(1, 1), padding="valid", filters=12, act="relu", bias=False),
        case("conv2d", "CONV_2D", (10, 10, 8), kernel=(3, 3), strides=(2, 2), padding="same", filters=8, act="none", bias=False, null_bias=True),
        case("conv2d", "CONV_2D", (16, 16, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=16, act="relu6", bias=True, in_dist="image"),
        case("conv2d", "CONV_2D", (6, 6, 3), kernel=(6, 6), strides=(1, 1), padding="valid", filters=4, act="none", bias=True),
        case("conv2d", "CONV_2D", (8, 8, 4), kernel=(3, 3), strides=(1, 1), padding="same", filters=8, act="none", bias=True, in_scale=8.0),
    ]
    return _both_quant(cs)


def _depthwise_cases() -> list[Case]:
    cs: list[Case] = []
    for m in (1, 2, 3):
        for pad in ("same", "valid"):
            for s in ((1, 1), (2, 2)):
                cs.append(case("depthwise", "DEPTHWISE_CONV_2D", (10, 9, 6), kernel=(3, 3), strides=s,
                               padding=pad, mult=m, act="none", bias=True))
    cs += [
        case("depthwise", "DEPTHWISE_CONV_2D", (12, 12, 8), kernel=(3, 3), strides=(1, 1), dilation=(2, 2), padding="same", mult=1, act="none", bias=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (12, 12, 4), kernel=(3, 3), strides=(1, 1), dilation=(2, 2), padding="valid", mult=2, act="none", bias=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (12, 10, 5), kernel=(5, 3), strides=(2, 1), padding="same", mult=1, act="relu", bias=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (12, 10, 8), kernel=(3, 3), strides=(1, 2), padding="same", mult=1, act="relu6", bias=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (9, 9, 7), kernel=(3, 3), strides=(2, 2), padding="same", mult=1, act="relu6", bias=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (10, 10, 16), kernel=(3, 3), strides=(1, 1), padding="same", mult=1, act="relu", bias=False),
        case("depthwise", "DEPTHWISE_CONV_2D", (8, 8, 3), kernel=(1, 1), strides=(1, 1), padding="valid", mult=2, act="none", bias=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (13, 5, 12), kernel=(3, 3), strides=(1, 1), padding="same", mult=1, act="none", bias=True, in_dist="relu"),
    ]
    return _both_quant(cs)


def _dense_cases() -> list[Case]:
    cs = [
        case("dense", "FULLY_CONNECTED", (32,), units=10, bias=True, act="none"),
        case("dense", "FULLY_CONNECTED", (32,), units=10, bias=False, act="none"),
        case("dense", "FULLY_CONNECTED", (64,), units=12, bias=True, act="relu"),
        case("dense", "FULLY_CONNECTED", (17,), units=5, bias=True, act="relu6"),
        case("dense", "FULLY_CONNECTED", (250,), units=3, bias=True, act="none", in_scale=4.0),
        case("dense", "FULLY_CONNECTED", (6, 16), units=8, bias=True, act="none"),
        case("dense", "FULLY_CONNECTED", (5, 12), units=7, bias=False, act="relu"),
    ]
    return _both_quant(cs)


def _both_quant(cs: list[Case]) -> list[Case]:
    out = []
    for c in cs:
        params = dict(c.params)
        out.append(case(c.kind, c.op, *c.inputs, per_channel=True, **params))
        out.append(case(c.kind, c.op, *c.inputs, per_channel=False, **params))
    return out


def _pool_cases() -> list[Case]:
    cs = []
    for kind, op in (("avgpool", "AVERAGE_POOL_2D"), ("maxpool", "MAX_POOL_2D")):
        for shape, pool, s, pad in (
            ((8, 8, 8), (2, 2), (2, 2), "valid"),
            ((9, 9, 5), (3, 3), (2, 2), "same"),
            ((9, 9, 5), (3, 3), (1, 1), "same"),
            ((10, 7, 4), (3, 2), (2, 1), "valid"),
            ((10, 7, 4), (2, 3), (1, 2), "same"),
            ((16, 16, 3), (4, 4), (4, 4), "valid"),
            ((12, 5, 6), (12, 5), (1, 1), "valid"),
        ):
            cs.append(case(kind, op, shape, pool=pool, strides=s, padding=pad))
    return cs


def _mean_cases() -> list[Case]:
    return [
        case("mean", "MEAN", (8, 8, 16), keepdims=False),
        case("mean", "MEAN", (8, 8, 16), keepdims=True),
        case("mean", "MEAN", (5, 3, 7), keepdims=False, in_dist="relu"),
        case("mean", "MEAN", (13, 11, 4), keepdims=True, in_scale=6.0),
    ]


def _binary_cases() -> list[Case]:
    cs = []
    for kind, op in (("add", "ADD"), ("mul", "MUL")):
        cs += [
            case(kind, op, (4, 4, 8), (4, 4, 8), act="none", in_scale=(1.0, 1.0)),
            case(kind, op, (4, 4, 8), (4, 4, 8), act="none", in_scale=(1.0, 5.0)),
            case(kind, op, (6, 5, 3), (6, 5, 3), act="relu", in_scale=(2.0, 0.5)),
            case(kind, op, (4, 4, 8), (1, 1, 8), act="none", in_scale=(1.0, 3.0)),
            case(kind, op, (4, 4, 8), (4, 4, 1), act="none", in_scale=(1.0, 0.3)),
            case(kind, op, (16,), (16,), act="relu6", in_scale=(3.0, 3.0)),
        ]
    return cs


def _concat_cases() -> list[Case]:
    return [
        case("concat", "CONCATENATION", (4, 4, 8), (4, 4, 8), axis=-1, in_scale=(1.0, 1.0)),
        case("concat", "CONCATENATION", (4, 4, 8), (4, 4, 5), axis=-1, in_scale=(1.0, 4.0)),
        case("concat", "CONCATENATION", (4, 4, 3), (2, 4, 3), axis=1, in_scale=(0.5, 2.0)),
        case("concat", "CONCATENATION", (3, 4, 4), (3, 4, 4), (3, 4, 2), axis=-1, in_scale=(1.0, 2.0, 0.25)),
        case("concat", "CONCATENATION", (10,), (6,), axis=-1, in_scale=(1.0, 3.0)),
    ]


def _shape_cases() -> list[Case]:
    return [
        case("reshape", "RESHAPE", (4, 4, 8), target=(16, 8)),
        case("reshape", "RESHAPE", (4, 4, 8), target=(128,)),
        case("reshape", "RESHAPE", (6, 10), target=(3, 4, 5)),
        case("squeeze", "SQUEEZE", (1, 5, 8), squeeze_axis=1),
        case("squeeze", "SQUEEZE", (6, 1, 4), squeeze_axis=2),
        case("pad", "PAD", (6, 6, 4), pads=((1, 1), (1, 1))),
        case("pad", "PAD", (6, 5, 3), pads=((0, 2), (1, 0))),
        case("pad", "PAD", (5, 5, 4), pads=((2, 1), (0, 3)), in_dist="relu"),
    ]


def _activation_cases() -> list[Case]:
    cs = [
        case("softmax", "SOFTMAX", (10,), beta=1.0, in_scale=1.0),
        case("softmax", "SOFTMAX", (10,), beta=1.0, in_scale=8.0),
        case("softmax", "SOFTMAX", (12,), beta=1.0, in_scale=0.2),
        case("softmax", "SOFTMAX", (4, 4, 6), beta=1.0, in_scale=2.0),
        case("softmax", "SOFTMAX", (10,), beta=0.5, in_scale=2.0),
        case("softmax", "SOFTMAX", (10,), beta=2.0, in_scale=2.0),
    ]
    for kind, op in (("logistic", "LOGISTIC"), ("tanh", "TANH"), ("hard_swish", "HARD_SWISH")):
        for shape, r in (((4, 4, 8), 1.0), ((4, 4, 8), 4.0), ((33,), 10.0)):
            cs.append(case(kind, op, shape, in_scale=r))
    for kind, op in (("relu", "RELU"), ("relu6", "RELU6")):
        for shape, r in (((4, 4, 8), 1.0), ((4, 4, 8), 6.0), ((33,), 0.5)):
            cs.append(case(kind, op, shape, in_scale=r))
    for alpha in (0.1, 0.3):
        for shape, r in (((4, 4, 8), 1.0), ((33,), 5.0)):
            cs.append(case("leaky_relu", "LEAKY_RELU", shape, alpha=alpha, in_scale=r))
    return cs


def _quant_cases() -> list[Case]:
    return [
        case("float_io", "QUANTIZE", (4, 4, 8), body="relu", io_dtype="float32"),
        case("float_io", "QUANTIZE", (16,), body="dense", io_dtype="float32", in_scale=3.0),
        case("float_io", "DEQUANTIZE", (6, 6, 3), body="conv2d", io_dtype="float32"),
        case("float_io", "DEQUANTIZE", (4, 4, 8), body="maxpool", io_dtype="float32", in_scale=0.1),
        case("requantize", "QUANTIZE", (4, 4, 8), (4, 4, 8), in_scale=(1.0, 8.0)),
    ]


def _movement_cases() -> list[Case]:
    """Data movement (tests/test_ops_movement.py sweeps the edge cases on hand-built models)."""
    return [
        case("transpose", "TRANSPOSE", (4, 6, 5), perm=(2, 1, 3)),
        case("transpose", "TRANSPOSE", (3, 5), perm=(2, 1)),
        case("strided_slice", "STRIDED_SLICE", (8, 7, 6), slices=((1, 7, 2), (None, None, -1), (-5, None, 1))),
        case("slice", "SLICE", (6, 5, 4), begin=(0, 1, 2, 0), size=(1, 4, 2, 3)),
        case("split", "SPLIT", (4, 6, 8), parts=2, axis=-1),
        case("split", "SPLIT_V", (4, 9, 4), parts=(2, 4, 3), axis=2),
        case("stack", "PACK", (5, 6), (5, 6), axis=1, in_scale=(1.0, 1.0)),
        case("unstack", "UNPACK", (3, 4, 5), axis=1),
        case("depth_to_space", "DEPTH_TO_SPACE", (3, 4, 8), block=2),
        case("space_to_depth", "SPACE_TO_DEPTH", (6, 4, 3), block=2),
        # convolutions around SPLIT, TRANSPOSE, CONCATENATION and STRIDED_SLICE (the planner places them together)
        case("move_net", "SPLIT", (8, 8, 3)),
    ]
def _arith_cases() -> list[Case]:
    cs = []
    for kind, op in (("sub", "SUB"), ("squared_difference", "SQUARED_DIFFERENCE")):
        cs += [
            case(kind, op, (4, 4, 8), (4, 4, 8), in_scale=(1.0, 3.0)),
            case(kind, op, (4, 4, 8), (1, 1, 8), in_scale=(2.0, 0.5)),
        ]
    cs += [
        case("maximum", "MAXIMUM", (4, 4, 8), (4, 4, 8), in_scale=(1.0, 3.0)),
        case("minimum", "MINIMUM", (4, 4, 8), (1, 1, 8), in_scale=(2.0, 0.5)),
        case("sub", "SUB", (15,), (15,), in_scale=(1.0, 1.0)),
        case("squared_difference", "SQUARED_DIFFERENCE", (15,), (15,), in_scale=(1.0, 1.0)),
        case("sub", "SUB", (6, 5, 3), (6, 5, 3), act="relu", in_scale=(2.0, 0.5)),
        case("prelu", "PRELU", (6, 5, 8), shared=(1, 2)),
        case("prelu", "PRELU", (4, 4, 3), shared=None, in_scale=3.0),
        case("prelu", "PRELU", (17,), shared=None),
        case("padv2", "PADV2", (5, 4, 3), pads=((1, 2), (0, 1), (2, 0)), value=0.7),
        case("padv2", "PADV2", (7, 6), pads=((2, 0), (1, 3)), value=-3.0, in_dist="relu"),
        case("argmax", "ARG_MAX", (4, 4, 10), axis=-1),
        case("argmax", "ARG_MAX", (6, 5, 3), axis=1),
        case("argmax", "ARG_MAX", (12,), axis=0, in_scale=4.0),
        case("argmin", "ARG_MIN", (6, 5, 3), axis=-2),
        case("rsqrt", "RSQRT", (4, 4, 8), in_dist="image"),
        case("rsqrt", "RSQRT", (33,), in_dist="relu", in_scale=5.0),
    ]
    return cs


def _conv_like_cases() -> list[Case]:
    """TRANSPOSE_CONV, RESIZE_*, BATCH_MATMUL, L2_NORMALIZATION (tests/test_ops_upsample.py), lean: one case for
    each edge (make test's time).  TRANSPOSE_CONV: kernels below, equal to and above the strides, SAME and
    VALID, odd sizes and channel counts, fused activations, with and without bias, per-channel and per-tensor
    weights."""
    tc = "transpose_conv"
    cs = [
        case(tc, "TRANSPOSE_CONV", (5, 4, 3), kernel=(3, 3), strides=(2, 2), padding="same", filters=4, bias=True),
        case(tc, "TRANSPOSE_CONV", (5, 4, 3), kernel=(3, 3), strides=(2, 2), padding="valid", filters=4, bias=True,
             per_channel=False),
        case(tc, "TRANSPOSE_CONV", (4, 4, 8), kernel=(2, 2), strides=(2, 2), padding="same", filters=8, bias=True),
        case(tc, "TRANSPOSE_CONV", (6, 5, 3), kernel=(3, 3), strides=(1, 1), padding="same", filters=5, bias=False,
             per_channel=False),
        case(tc, "TRANSPOSE_CONV", (6, 5, 3), kernel=(4, 3), strides=(1, 1), padding="valid", filters=5, bias=True),
        case(tc, "TRANSPOSE_CONV", (3, 7, 5), kernel=(5, 3), strides=(3, 2), padding="same", filters=6, act="relu",
             bias=True, per_channel=False),
        case(tc, "TRANSPOSE_CONV", (8, 1, 4), kernel=(4, 1), strides=(2, 1), padding="same", filters=7,
             act="relu6", bias=True),
        case(tc, "TRANSPOSE_CONV", (4, 3, 2), kernel=(2, 3), strides=(4, 4), padding="valid", filters=3, bias=True),
    ]
    # RESIZE_*: up and down, odd sizes, each of align_corners and half_pixel_centers (bilinear: not both, which
    # TFLM refuses), an output of one row
    rn, rb = ("resize_nearest", "RESIZE_NEAREST_NEIGHBOR"), ("resize_bilinear", "RESIZE_BILINEAR")
    cs += [
        case(*rn, (4, 5, 3), size=(8, 10), align=False, half=False),
        case(*rn, (4, 5, 3), size=(7, 9), align=True, half=False),
        case(*rn, (5, 3, 2), size=(11, 7), align=True, half=True),
        case(*rb, (4, 5, 3), size=(8, 10), align=False, half=False),
        case(*rb, (9, 7, 4), size=(4, 3), align=False, half=True),
        case(*rb, (5, 3, 2), size=(11, 7), align=True, half=False),
        case(*rb, (4, 4, 3), size=(1, 6), align=True, half=False),
    ]
    # BATCH_MATMUL: adj_x and adj_y, batch dimensions that broadcast both ways (rank 5 with the batch of 1), an
    # rhs whose third-last dimension is 1 (TFLM folds the lhs batch into its rows then), a constant rhs (a
    # constant 2-D rhs becomes FULLY_CONNECTED)
    bmm = "batch_matmul"
    cs += [
        case(bmm, "BATCH_MATMUL", (3, 4, 5), (3, 5, 6)),
        case(bmm, "BATCH_MATMUL", (2, 3, 5, 4), (1, 5, 6), adj_x=True),
        case(bmm, "BATCH_MATMUL", (2, 5, 3), (2, 7, 5), adj_x=True, adj_y=True, in_scale=(3.0, 0.5)),
        case(bmm, "BATCH_MATMUL", (2, 1, 4, 5), (3, 5, 6)),
        case(bmm, "BATCH_MATMUL", (3, 4, 5), const=(3, 5, 6)),
        case(bmm, "BATCH_MATMUL", (2, 7, 5), const=(2, 6, 5), adj_y=True),
    ]
    # L2_NORMALIZATION over the last axis: ranks 3 and 4 (with the batch), inputs centred and not, wide and
    # narrow rows
    cs += [
        case("l2norm", "L2_NORMALIZATION", (6, 10)),
        case("l2norm", "L2_NORMALIZATION", (3, 4, 16), in_dist="relu"),
        case("l2norm", "L2_NORMALIZATION", (2, 64), in_scale=5.0),
    ]
    return cs


def _sequence_cases() -> list[Case]:
    """The operators that keep state (tests/test_svdf.py sweeps them over sequences of invokes): written as
    flatbuffers (``_WRITERS``), as the converter does not make them from Keras."""
    return [
        case("svdf", "SVDF", (10,), units=4, rank=1, memory=4),
        case("svdf", "SVDF", (7,), units=3, rank=2, memory=3, state="INT8", state_zp=5, state_scale=0.05,
             wt_scale=0.01, out_scale=0.1),
    ]


_CASE_LISTS: dict[str, Callable[[], list[Case]]] = {
    "CONV_2D": _conv_cases,
    "DEPTHWISE_CONV_2D": _depthwise_cases,
    "FULLY_CONNECTED": _dense_cases,
    "POOL": _pool_cases,
    "MEAN": _mean_cases,
    "BINARY": _binary_cases,
    "CONCATENATION": _concat_cases,
    "SHAPE": _shape_cases,
    "ACTIVATION": _activation_cases,
    "QUANT": _quant_cases,
    "MOVEMENT": _movement_cases,
    "ARITH": _arith_cases,
    "CONV_LIKE": _conv_like_cases,
    "LSTM": lambda: lstm_cases(),
    "SEQUENCE": _sequence_cases,
}


def float_cases() -> list[Case]:
    """float32 models (converted without quantization, tests/test_float32.py): TFLM's hello_world (a trained
    sine regressor), a small float CNN of every float operator, then one model per float operator."""
    return [
        case("sine", "FULLY_CONNECTED", (1,), float_model=True, id="hello_world"),
        case("float_cnn", "DEPTHWISE_CONV_2D", (12, 12, 3), float_model=True, in_dist="image", id="float_cnn"),
        case("dense", "FULLY_CONNECTED", (16,), units=8, float_model=True),
        case("dense", "FULLY_CONNECTED", (3, 10), units=5, act="relu", float_model=True),
        case("dense", "FULLY_CONNECTED", (12,), units=4, act="relu6", bias=False, float_model=True),
        case("conv2d", "CONV_2D", (9, 9, 3), filters=5, kernel=(3, 3), strides=(2, 2), padding="same", act="relu",
             float_model=True),
        case("conv2d", "CONV_2D", (8, 7, 4), filters=3, kernel=(2, 3), dilation=(2, 1), padding="valid",
             float_model=True),
        case("depthwise", "DEPTHWISE_CONV_2D", (8, 8, 3), kernel=(3, 3), mult=2, padding="same", act="relu6",
             float_model=True),
        case("avgpool", "AVERAGE_POOL_2D", (9, 9, 4), pool=(3, 3), strides=(2, 2), padding="same", float_model=True),
        case("maxpool", "MAX_POOL_2D", (8, 8, 4), pool=(2, 2), strides=(2, 2), padding="valid", float_model=True),
        case("mean", "MEAN", (6, 5, 4), keepdims=True, float_model=True),
        case("reduce_mean", "MEAN", (6, 5, 4), axis=(-1,), keepdims=False, float_model=True),
        case("add", "ADD", (4, 4, 8), (4, 4, 8), float_model=True),
        case("add", "ADD", (4, 4, 8), (1, 1, 8), float_model=True),
        case("mul", "MUL", (4, 4, 8), (4, 1, 8), float_model=True),
        case("sub", "SUB", (6, 5, 3), (6, 5, 3), act="relu", float_model=True),
        case("sub", "SUB", (4, 4, 8), (1, 1, 8), float_model=True),
        case("maximum", "MAXIMUM", (4, 4, 8), (4, 4, 8), float_model=True),
        case("minimum", "MINIMUM", (4, 4, 8), (1, 1, 8), float_model=True),
        case("squared_difference", "SQUARED_DIFFERENCE", (15,), (15,), float_model=True),
        case("prelu", "PRELU", (6, 5, 8), shared=(1, 2), float_model=True),
        case("prelu", "PRELU", (17,), shared=None, float_model=True),
        case("leaky_relu", "LEAKY_RELU", (4, 4, 8), alpha=0.2, in_scale=4.0, float_model=True),
        case("hard_swish", "HARD_SWISH", (33,), in_scale=6.0, float_model=True),
        case("concat", "CONCATENATION", (4, 4, 3), (4, 4, 5), axis=-1, float_model=True),
        case("reshape", "RESHAPE", (4, 4, 6), target=(16, 6), float_model=True),
        case("squeeze", "SQUEEZE", (1, 5, 6), squeeze_axis=1, float_model=True),
        case("pad", "PAD", (5, 5, 4), pads=((2, 1), (0, 3)), float_model=True),
        case("padv2", "PADV2", (5, 4, 3), pads=((1, 2), (0, 1), (2, 0)), value=0.7, float_model=True),
        case("softmax", "SOFTMAX", (10,), beta=1.0, in_scale=8.0, float_model=True),
        case("softmax", "SOFTMAX", (4, 4, 6), beta=0.5, in_scale=2.0, float_model=True),
        case("logistic", "LOGISTIC", (4, 4, 8), in_scale=12.0, float_model=True),
        case("tanh", "TANH", (33,), in_scale=4.0, float_model=True),
        case("relu", "RELU", (4, 4, 8), float_model=True),
        case("relu6", "RELU6", (33,), in_scale=6.0, float_model=True),
        # data movement: the int8 kernels moving 4-byte elements
        case("transpose", "TRANSPOSE", (4, 6, 5), perm=(2, 1, 3), float_model=True),
        case("strided_slice", "STRIDED_SLICE", (8, 7, 6), slices=((1, 7, 2), (None, None, -1), (-5, None, 1)),
             float_model=True),
        case("slice", "SLICE", (6, 5, 4), begin=(0, 1, 2, 0), size=(1, 4, 2, 3), float_model=True),
        case("split", "SPLIT", (4, 6, 8), parts=2, axis=-1, float_model=True),
        case("split", "SPLIT_V", (4, 9, 4), parts=(2, 4, 3), axis=2, float_model=True),
        case("stack", "PACK", (5, 6), (5, 6), axis=1, float_model=True),
        case("unstack", "UNPACK", (3, 4, 5), axis=1, float_model=True),
        case("depth_to_space", "DEPTH_TO_SPACE", (3, 4, 8), block=2, float_model=True),
        case("space_to_depth", "SPACE_TO_DEPTH", (6, 4, 3), block=2, float_model=True),
    ]


def int16_cases() -> list[Case]:
    """int16x8 models (16-bit activations, 8-bit weights; ``a16=True``: converted by
    :func:`tinyml.train.quantize.quantize_int16x8`), int16 I/O unless noted: FULLY_CONNECTED, CONV_2D and
    DEPTHWISE_CONV_2D over the edges (strides, SAME/VALID, odd sizes and channel counts, dilation, depth
    multipliers, fused activations, per-channel and per-tensor weights; int64 biases and a CONV_2D without its
    bias), ADD, SUB and MUL (same shapes and broadcast), the pools, PAD, LEAKY_RELU, QUANTIZE and DEQUANTIZE at float32 I/O, and a 1-D conv net
    over a 1xW input with float32 I/O (tests/test_ops_int16.py).  The converter refuses per-tensor weights for
    DEPTHWISE_CONV_2D in this mode."""
    fc, conv, dw = ("dense", "FULLY_CONNECTED"), ("conv2d", "CONV_2D"), ("depthwise", "DEPTHWISE_CONV_2D")
    i16 = dict(a16=True, io_dtype="int16")
    return [
        case(*fc, (32,), units=10, bias=True, **i16),
        case(*fc, (32,), units=10, bias=False, **i16),
        case(*fc, (17,), units=5, bias=True, act="relu6", per_channel=False, **i16),
        case(*fc, (6, 16), units=8, bias=True, act="relu", per_channel=False, in_scale=4.0, **i16),
        case(*conv, (9, 8, 3), kernel=(3, 3), strides=(2, 2), padding="valid", filters=6, bias=True,
             per_channel=False, **i16),
        case(*conv, (12, 10, 4), kernel=(5, 3), strides=(2, 1), padding="same", filters=7, act="relu", bias=True,
             **i16),
        case(*conv, (10, 10, 4), kernel=(3, 3), strides=(1, 1), dilation=(2, 2), padding="same", filters=5,
             act="relu6", bias=True, **i16),
        case(*conv, (8, 8, 5), kernel=(3, 3), strides=(1, 2), padding="same", filters=6, bias=False,
             null_bias=True, in_scale=3.0, **i16),
        case(*dw, (10, 9, 3), kernel=(3, 3), strides=(2, 2), padding="valid", mult=2, bias=True, **i16),
        case(*dw, (12, 10, 5), kernel=(5, 3), strides=(2, 1), padding="same", mult=1, act="relu6", bias=True,
             **i16),
        case(*dw, (11, 11, 4), kernel=(3, 3), strides=(1, 1), dilation=(2, 2), padding="valid", mult=3,
             act="relu", bias=True, in_dist="relu", **i16),
        case("add", "ADD", (4, 4, 8), (4, 4, 8), act="none", in_scale=(1.0, 5.0), **i16),
        case("add", "ADD", (4, 4, 8), (1, 1, 8), act="relu", in_scale=(1.0, 0.3), **i16),
        case("sub", "SUB", (6, 5, 3), (6, 5, 3), in_scale=(2.0, 0.5), **i16),
        case("sub", "SUB", (4, 4, 8), (4, 4, 1), in_scale=(1.0, 3.0), **i16),
        case("mul", "MUL", (4, 4, 8), (4, 4, 8), act="none", in_scale=(1.0, 5.0), **i16),
        case("mul", "MUL", (6, 5, 3), (1, 1, 3), act="relu6", in_scale=(3.0, 3.0), **i16),
        case("avgpool", "AVERAGE_POOL_2D", (9, 9, 5), pool=(3, 3), strides=(2, 2), padding="same", **i16),
        case("avgpool", "AVERAGE_POOL_2D", (10, 7, 4), pool=(3, 2), strides=(2, 1), padding="valid", **i16),
        case("maxpool", "MAX_POOL_2D", (9, 9, 5), pool=(3, 3), strides=(2, 2), padding="same", **i16),
        case("pad", "PAD", (5, 6, 3), pads=((2, 1), (0, 3)), **i16),
        case("leaky_relu", "LEAKY_RELU", (4, 4, 8), alpha=0.1, in_scale=1.0, **i16),
        case("leaky_relu", "LEAKY_RELU", (33,), alpha=0.3, in_scale=5.0, **i16),
        case("float_io", "QUANTIZE", (16,), body="dense", a16=True, io_dtype="float32", in_scale=3.0),
        case("conv1d_net", "DEPTHWISE_CONV_2D", (1, 40, 3), a16=True, io_dtype="float32", id="int16_conv1d_net"),
        # SOFTMAX, LOGISTIC, TANH and MEAN (tests/test_int16_nonlinear.py)
        case("softmax", "SOFTMAX", (10,), beta=1.0, in_scale=8.0, **i16),
        case("softmax", "SOFTMAX", (4, 4, 6), beta=0.5, in_scale=2.0, **i16),
        case("logistic", "LOGISTIC", (4, 4, 8), in_scale=4.0, **i16),
        case("tanh", "TANH", (33,), in_scale=10.0, **i16),
        case("mean", "MEAN", (8, 8, 16), keepdims=True, **i16),
        case("reduce_mean", "MEAN", (6, 5, 4), axis=(-1,), keepdims=False, in_dist="relu", **i16),
    ]


def lstm_cases() -> list[Case]:
    """UNIDIRECTIONAL_SEQUENCE_LSTM models (tests/test_lstm.py), int8 I/O: a Keras 2 (tf_keras) LSTM layer, which
    the converter fuses into the operator (Keras 3's LSTM converts to a loop), quantized to int8 with
    TFLITE_BUILTINS_INT8; over units, feature counts and sequence lengths, the whole sequence or its last step
    (``seq``), weights scaled by ``gain`` (gates that saturate), and the keyword spotter (``lstm_kws``: 49 x 10
    MFCC frames -> LSTM -> Dense -> softmax).  (The converter crashes on an LSTM layer without biases.)"""
    return [
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (1, 1), units=1, seq=True),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (5, 3), units=4, seq=True),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (7, 5), units=9, seq=True, gain=3.0),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (12, 16), units=20, seq=False),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (3, 10), units=33, seq=True, in_dist="uniform"),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (16, 2), units=7, seq=True, gain=0.3, in_scale=4.0),
        case("lstm_kws", "UNIDIRECTIONAL_SEQUENCE_LSTM", (49, 10), units=32, classes=12, id="lstm_kws"),
    ]


def lstm_float_cases() -> list[Case]:
    """float32 UNIDIRECTIONAL_SEQUENCE_LSTM models (tests/test_lstm_f32.py): lstm_cases' tf_keras LSTM layers
    converted without quantization, over units, feature counts, sequence lengths, the whole sequence or its last
    step, saturating gates, and the keyword spotter."""
    f = dict(float_model=True)
    return [
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (1, 1), units=1, seq=True, **f),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (7, 5), units=9, seq=True, gain=3.0, **f),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (12, 16), units=20, seq=False, **f),
        case("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM", (3, 10), units=33, seq=True, in_dist="uniform", **f),
        case("lstm_kws", "UNIDIRECTIONAL_SEQUENCE_LSTM", (49, 10), units=32, classes=12, id="lstm_kws_f32", **f),
    ]


def _convert_lstm(c: Case) -> bytes:
    """A tf_keras LSTM model of case ``c`` (random weights, times ``gain``; non-zero biases) quantized to int8."""
    import tensorflow as tf
    import tf_keras

    tf_keras.utils.set_random_seed(c.seed)
    inp = tf_keras.Input(c.inputs[0], batch_size=1)
    layer = tf_keras.layers.LSTM(c.p("units"), return_sequences=bool(c.p("seq", False)))
    x = layer(inp)
    if c.kind == "lstm_kws":
        x = tf_keras.layers.Dense(c.p("classes"), activation="softmax")(x)
    model = tf_keras.Model(inp, x)
    rng = np.random.default_rng(c.seed + 17)
    for w in layer.weights:
        v = w.numpy()
        if "bias" in w.name:
            w.assign(v + rng.normal(0.0, 0.3, size=v.shape).astype(np.float32))
        else:
            w.assign(v * float(c.p("gain", 1.0)))
    data = representative(c)[0]

    def samples() -> Any:
        for i in range(len(data)):
            yield [data[i:i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if c.p("float_model"):  # float32 throughout (lstm_float_cases)
        return bytes(converter.convert())
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def int16_unet_cases() -> list[Case]:
    """The int16x8 operators of the 1-D audio U-Net (tests/test_int16_unet.py): TRANSPOSE_CONV over the edges
    (kernels below, equal to and above the strides, SAME and VALID, odd sizes and channel counts, fused
    activations, with and without bias, per-channel and per-tensor weights, 1xW inputs), CONCATENATION and
    STRIDED_SLICE as the converter makes them, and the U-Net itself with int8 I/O (``int8_io``: the float32
    I/O of the converter, which refuses int8 I/O in 16x8 mode, edited into int8 so that QUANTIZE int8 <-> int16
    open and close it)."""
    tc, i16 = ("transpose_conv", "TRANSPOSE_CONV"), dict(a16=True, io_dtype="int16")
    return [
        case(*tc, (1, 9, 3), kernel=(1, 4), strides=(1, 2), padding="same", filters=4, bias=True, **i16),
        case(*tc, (1, 9, 3), kernel=(1, 3), strides=(1, 2), padding="valid", filters=5, bias=False, **i16),
        case(*tc, (1, 16, 8), kernel=(1, 2), strides=(1, 2), padding="same", filters=8, bias=True, act="relu",
             per_channel=False, **i16),
        case(*tc, (5, 4, 3), kernel=(3, 3), strides=(2, 2), padding="valid", filters=5, bias=True, **i16),
        case(*tc, (3, 7, 5), kernel=(5, 3), strides=(3, 2), padding="same", filters=6, bias=True, act="relu6",
             per_channel=False, in_scale=3.0, **i16),
        case(*tc, (6, 5, 3), kernel=(4, 3), strides=(1, 1), padding="valid", filters=5, bias=True, **i16),
        case("concat", "CONCATENATION", (4, 4, 3), (4, 4, 5), axis=-1, **i16),
        case("concat", "CONCATENATION", (1, 10, 4), (1, 7, 4), axis=2, in_scale=(1.0, 4.0), **i16),
        case("strided_slice", "STRIDED_SLICE", (8, 7, 6), slices=((1, 7, 2), (None, None, -1), (-5, None, 1)), **i16),
        case("unet16", "TRANSPOSE_CONV", (1, 64, 2), a16=True, io_dtype="float32", int8_io=True, id="int16_unet"),
    ]


def nchw_cases() -> list[Case]:
    """Models whose input is NCHW, as a PyTorch export's: a TRANSPOSE (keras Permute) at the model input, then
    the operator it folds into (codegen/fold.py; tests/test_fold.py): CONV_2D over strides, SAME/VALID,
    dilation, odd sizes and other permutations; a DEPTHWISE_CONV_2D after it (not folded: a copy); and
    the zoo's MobileNetV2 (alpha 0.35, 96x96, random weights) behind an NCHW input."""
    conv = ("nchw_conv", "TRANSPOSE")
    return [
        case(*conv, (3, 12, 10), perm=(2, 3, 1), kernel=(3, 3), strides=(2, 2), padding="same", filters=8,
             act="relu6"),
        case(*conv, (4, 9, 11), perm=(2, 3, 1), kernel=(3, 2), strides=(1, 1), dilation=(2, 1), padding="valid",
             filters=5),
        case(*conv, (5, 3, 7), perm=(1, 3, 2), kernel=(1, 1), strides=(1, 1), padding="valid", filters=4,
             act="relu"),
        case(*conv, (3, 7, 6), perm=(3, 1, 2), kernel=(2, 2), strides=(2, 1), padding="same", filters=3,
             depthwise=True),
        # float I/O: QUANTIZE, then the TRANSPOSE, then CONV_2D
        case(*conv, (3, 9, 8), perm=(2, 3, 1), kernel=(3, 3), strides=(1, 1), padding="same", filters=6,
             io_dtype="float32"),
        # the output transposed back to NCHW (folded into the CONV_2D writing it)
        case(*conv, (9, 7, 3), out_perm=(3, 1, 2), kernel=(3, 3), strides=(2, 1), padding="same", filters=5,
             act="relu"),
        case(*conv, (6, 5, 4), perm=(1, 3, 2), out_perm=(3, 2, 1), kernel=(2, 2), strides=(1, 1),
             padding="valid", filters=3),
        case("nchw_mobilenet_v2", "TRANSPOSE", (3, 96, 96), in_dist="image", id="mobilenet_v2-nchw"),
    ]


def nchw_branch_cases() -> list[Case]:
    """One model of independent branches, each an input (permuted to NHWC unless its perm is None) into a
    CONV_2D whose output is permuted back (unless its out_perm is None), as TRANSPOSEs the DSP and MVE
    convolutions fold (codegen/fold.py; tests/test_fold_families.py): per branch (input shape, perm, kernel,
    strides, padding, filters, out_perm), in_c 1, 3, 8 and 32 (more taps than the unrolled gathers take),
    strides 1 and 2, SAME and VALID, 1x1 (the MVE direct kernel's shape), input and output folded alone and
    together, channel counts not a multiple of 4."""
    nchw, back = (2, 3, 1), (3, 1, 2)
    branches = (
        ((10, 9, 1), (2, 1, 3), (3, 3), (1, 1), "same", 8, back),  # in_c 1: H and W swapped (NCHW would be a RESHAPE)
        ((11, 3, 12), (1, 3, 2), (3, 3), (2, 2), "valid", 5, (3, 2, 1)),
        ((8, 7, 9), nchw, (3, 3), (2, 2), "same", 6, None),
        ((10, 9, 8), None, (3, 3), (1, 1), "valid", 4, back),
        ((3, 8, 7), nchw, (1, 1), (1, 1), "valid", 4, back),
        ((8, 10, 10), nchw, (1, 1), (2, 2), "valid", 12, back),
        ((32, 6, 6), nchw, (3, 3), (1, 1), "same", 4, back),
    )
    return [case("nchw_branches", "TRANSPOSE", *(b[0] for b in branches), branches=branches, id="nchw_branches")]


def nchw_depthwise_cases() -> list[Case]:
    """DEPTHWISE_CONV_2D between TRANSPOSEs, which fold into its portable kernel (tests/test_fold.py): the
    output alone transposed back, and both."""
    conv = ("nchw_conv", "TRANSPOSE")
    return [
        case(*conv, (9, 7, 4), out_perm=(3, 1, 2), kernel=(3, 3), strides=(2, 2), padding="same", depthwise=True,
             act="relu"),
        case(*conv, (4, 8, 6), perm=(2, 3, 1), out_perm=(3, 1, 2), kernel=(3, 3), strides=(1, 1), padding="valid",
             depthwise=True),
    ]


def exp_cases() -> list[Case]:
    """EXP, float32 (the type the installed TFLM runs it in; tests/test_exp.py): 1-D to 4-D, inputs up to
    about +-12 (no overflow to infinity); and an int8-quantized EXP, which TFLM refuses."""
    return [
        case("exp", "EXP", (33,), in_scale=4.0, float_model=True),
        case("exp", "EXP", (4, 5, 6), in_scale=2.0, float_model=True),
        case("exp", "EXP", (3, 4, 5, 2), in_scale=6.0, in_dist="uniform", float_model=True),
        case("exp", "EXP", (16,), in_scale=2.0, id="exp-int8"),
    ]


def op_cases(*ops: str) -> list[Case]:
    """Unit-test cases whose expected operator is one of ``ops`` (all when none given)."""
    every = [c for make in _CASE_LISTS.values() for c in make()]
    if not ops:
        return every
    unknown = set(ops) - {c.op for c in every}
    if unknown:
        raise ValueError(f"no cases for {sorted(unknown)}; known: {sorted({c.op for c in every})}")
    return [c for c in every if c.op in ops]


def zoo_cases(*names: str) -> list[Case]:
    """Whole networks from :mod:`tinyml.train.zoo` (per-channel, int8 I/O unless noted)."""
    cs = [
        case("zoo", "DEPTHWISE_CONV_2D", (49, 10, 1), name="ds_cnn", id="ds_cnn"),
        case("zoo", "DEPTHWISE_CONV_2D", (49, 10, 1), name="ds_cnn", per_channel=False, id="ds_cnn-pt"),
        # DS-CNN-M (172 channels), the model `tinyml demo kws` trains.
        case("zoo", "DEPTHWISE_CONV_2D", (49, 10, 1), name="ds_cnn_size", size="M", id="ds_cnn_m"),
        case("zoo", "DEPTHWISE_CONV_2D", (96, 96, 3), name="mobilenet_v1", in_dist="image", id="mobilenet_v1"),
        # TFLM's person-detection network (MobileNetV1 0.25 on 96x96x1 grayscale), its first four blocks.
        case("zoo", "DEPTHWISE_CONV_2D", (96, 96, 1), name="mobilenet_v1", blocks=4, in_dist="image",
             id="person_detect"),
        case("zoo", "ADD", (96, 96, 3), name="mobilenet_v2", in_dist="image", id="mobilenet_v2"),
        case("zoo", "ADD", (144, 144, 3), name="mobilenet_v2", in_dist="image", id="mobilenet_v2-144"),
        case("zoo", "ADD", (32, 32, 3), name="resnet8", in_dist="image", id="resnet8"),
        # 640-128-128-8-128-128-640, the autoencoder the issue names.
        case("zoo", "FULLY_CONNECTED", (640,), name="fc_autoencoder", hidden_layers=2, id="fc_autoencoder"),
        # MLPerf Tiny's anomaly-detection model (4x128 on each side).
        case("zoo", "FULLY_CONNECTED", (640,), name="fc_autoencoder", id="fc_autoencoder-mlperf"),
    ]
    if names:
        cs = [c for c in cs if c.id in names or c.p("name") in names]
    return cs


def all_cases() -> list[Case]:
    return op_cases() + zoo_cases()


# --------------------------------------------------------------------------
# Keras builders (random weights)


def _act(keras: Any, x: Any, act: str) -> Any:
    if act == "relu":
        return keras.layers.ReLU()(x)
    if act == "relu6":
        return keras.layers.ReLU(max_value=6.0)(x)
    return x


def _randomize(keras: Any, model: Any, rng: np.random.Generator) -> Any:
    """Give biases non-zero values so that every kernel's bias path is exercised."""
    for layer in model.layers:
        for w in layer.weights:
            if w.path.endswith("bias"):
                w.assign(rng.normal(0.0, 0.3, size=tuple(w.shape)).astype("float32"))
    return model


def _b_conv2d(keras: Any, c: Case, ins: list[Any]) -> Any:
    x = keras.layers.Conv2D(
        c.p("filters"), c.p("kernel"), strides=c.p("strides", (1, 1)), padding=c.p("padding"),
        dilation_rate=c.p("dilation", (1, 1)), use_bias=c.p("bias", True),
    )(ins[0])
    return _act(keras, x, c.p("act", "none"))


def _b_depthwise(keras: Any, c: Case, ins: list[Any]) -> Any:
    x = keras.layers.DepthwiseConv2D(
        c.p("kernel"), strides=c.p("strides", (1, 1)), padding=c.p("padding"),
        depth_multiplier=c.p("mult", 1), dilation_rate=c.p("dilation", (1, 1)),
        use_bias=c.p("bias", True),
    )(ins[0])
    return _act(keras, x, c.p("act", "none"))


def _b_dense(keras: Any, c: Case, ins: list[Any]) -> Any:
    x = keras.layers.Dense(c.p("units"), use_bias=c.p("bias", True))(ins[0])
    return _act(keras, x, c.p("act", "none"))


def _b_avgpool(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.AveragePooling2D(c.p("pool"), strides=c.p("strides"), padding=c.p("padding"))(ins[0])


def _b_maxpool(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.MaxPooling2D(c.p("pool"), strides=c.p("strides"), padding=c.p("padding"))(ins[0])


def _b_mean(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.GlobalAveragePooling2D(keepdims=c.p("keepdims", False))(ins[0])


def _b_reduce_mean(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.ops.mean(ins[0], axis=c.p("axis"), keepdims=c.p("keepdims", False))


def _b_add(keras: Any, c: Case, ins: list[Any]) -> Any:
    return _act(keras, keras.ops.add(ins[0], ins[1]), c.p("act", "none"))


def _b_mul(keras: Any, c: Case, ins: list[Any]) -> Any:
    return _act(keras, keras.ops.multiply(ins[0], ins[1]), c.p("act", "none"))


def _b_sub(keras: Any, c: Case, ins: list[Any]) -> Any:
    return _act(keras, keras.ops.subtract(ins[0], ins[1]), c.p("act", "none"))


def _b_maximum(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.ops.maximum(ins[0], ins[1])


def _b_minimum(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.ops.minimum(ins[0], ins[1])


def _b_squared_difference(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda t: tf.math.squared_difference(t[0], t[1]))(ins)


def _b_prelu(keras: Any, c: Case, ins: list[Any]) -> Any:
    shared = c.p("shared")
    layer = keras.layers.PReLU(shared_axes=list(shared) if shared else None)
    x = layer(ins[0])
    rng = np.random.default_rng(c.seed + 29)  # slopes of both signs, not the initial zeros
    layer.alpha.assign(rng.uniform(-0.5, 1.5, size=tuple(layer.alpha.shape)).astype("float32"))
    return x


def _b_padv2(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    pads = [[0, 0]] + [list(p) for p in c.p("pads")]
    return keras.layers.Lambda(lambda t: tf.pad(t, pads, constant_values=c.p("value")))(ins[0])


def _b_argmax(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    axis = c.p("axis")
    axis = axis + 1 if axis >= 0 else axis  # the batch dimension comes first
    return keras.layers.Lambda(lambda t: tf.math.argmax(t, axis=axis, output_type=tf.int32))(ins[0])


def _b_argmin(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    axis = c.p("axis")
    axis = axis + 1 if axis >= 0 else axis
    return keras.layers.Lambda(lambda t: tf.math.argmin(t, axis=axis, output_type=tf.int32))(ins[0])


def _b_rsqrt(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    # (a constant ADD first keeps the input away from 0, where the float model is infinite)
    return keras.layers.Lambda(lambda t: tf.math.rsqrt(t + 0.05))(ins[0])


def _b_concat(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.Concatenate(axis=c.p("axis", -1))(ins)


def _b_reshape(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.Reshape(c.p("target"))(ins[0])


def _b_squeeze(keras: Any, c: Case, ins: list[Any]) -> Any:
    # The converter rewrites tf.squeeze into RESHAPE (even with a dynamic
    # batch); _patch() turns that RESHAPE back into a SQUEEZE.
    return keras.ops.squeeze(ins[0], axis=c.p("squeeze_axis"))


def _b_pad(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.ZeroPadding2D(c.p("pads"))(ins[0])


def _b_softmax(keras: Any, c: Case, ins: list[Any]) -> Any:
    # The converter never fuses a scalar MUL into SOFTMAX's beta (beta is
    # always 1.0); a beta other than 1 is set afterwards by _patch().
    return keras.layers.Softmax(axis=-1)(ins[0])


def _b_logistic(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.Activation("sigmoid")(ins[0])


def _b_tanh(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.Activation("tanh")(ins[0])


def _b_hard_swish(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.Activation("hard_swish")(ins[0])


def _b_relu(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.ReLU()(ins[0])


def _b_relu6(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.ReLU(max_value=6.0)(ins[0])


def _b_leaky_relu(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.LeakyReLU(negative_slope=c.p("alpha"))(ins[0])


def _b_sine(keras: Any, c: Case, ins: list[Any]) -> Any:
    """TFLM's hello_world model: FULLY_CONNECTED 1->16 RELU, 16->16 RELU, 16->1 (trained by _train_sine)."""
    x = keras.layers.Dense(16, activation="relu")(ins[0])
    x = keras.layers.Dense(16, activation="relu")(x)
    return keras.layers.Dense(1)(x)


def _b_float_cnn(keras: Any, c: Case, ins: list[Any]) -> Any:
    """A small CNN of the float32 operators: CONV_2D, DEPTHWISE_CONV_2D, the pools, PAD, ADD, MUL,
    CONCATENATION, MEAN, FULLY_CONNECTED, LOGISTIC, TANH, SOFTMAX."""
    L = keras.layers
    x = L.Conv2D(8, 3, padding="same", activation="relu")(ins[0])
    y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.Add()([x, y])
    x = L.MaxPooling2D(2)(x)
    x = L.ZeroPadding2D(((1, 0), (0, 1)))(x)
    x = L.Conv2D(8, 3, strides=2, activation="tanh")(x)
    z = L.Activation("sigmoid")(L.AveragePooling2D(2, padding="same")(x))
    x = L.Multiply()([L.AveragePooling2D(2, padding="same")(x), z])
    x = L.Concatenate()([x, z])
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(6)(x)
    return L.Softmax()(x)


def _b_float_io(keras: Any, c: Case, ins: list[Any]) -> Any:
    body = c.p("body")
    x = ins[0]
    if body == "relu":
        return keras.layers.ReLU()(x)
    if body == "dense":
        return keras.layers.Dense(8)(x)
    if body == "conv2d":
        return keras.layers.Conv2D(4, 3, padding="same")(x)
    if body == "maxpool":
        return keras.layers.MaxPooling2D(2)(x)
    raise ValueError(f"unknown float_io body {body!r}")


def _b_conv1d_net(keras: Any, c: Case, ins: list[Any]) -> Any:
    """A 1-D conv net over a 1xW input: CONV_2D (1x5), DEPTHWISE_CONV_2D (1x3, stride 2), CONV_2D (1x1),
    FULLY_CONNECTED."""
    L = keras.layers
    x = L.Conv2D(8, (1, 5), padding="same", activation="relu")(ins[0])
    x = L.DepthwiseConv2D((1, 3), strides=(1, 2), padding="same", activation="relu6")(x)
    x = L.Conv2D(6, (1, 1))(x)
    return L.Dense(4)(L.Flatten()(x))


def _b_requantize(keras: Any, c: Case, ins: list[Any]) -> Any:
    # CONCATENATION forces one scale on all its inputs and its output.  Graph
    # inputs simply get that scale, but LOGISTIC (scale 1/256, zp -128) and
    # TANH (1/128, 0) have fixed output scales, so the converter inserts an
    # int8->int8 QUANTIZE (requantize) after each of them.
    a = keras.layers.Activation("sigmoid")(ins[0])
    b = keras.layers.Activation("tanh")(ins[1])
    return keras.layers.Concatenate(axis=-1)([a, b])


def _b_transpose(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.layers.Permute(c.p("perm"))(ins[0])


def _b_strided_slice(keras: Any, c: Case, ins: list[Any]) -> Any:
    # (start, stop, step) per dimension after the batch; the converter keeps the batch axis whole.
    index = (slice(None),) + tuple(slice(*s) for s in c.p("slices"))
    return keras.layers.Lambda(lambda x: x[index])(ins[0])


def _b_slice(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.ops.slice(ins[0], c.p("begin"), c.p("size"))


def _b_split(keras: Any, c: Case, ins: list[Any]) -> Any:
    # parts: a count (SPLIT) or the sizes (SPLIT_V; keras takes the indices between them)
    parts = c.p("parts")
    cuts = [int(v) for v in np.cumsum(parts[:-1])] if isinstance(parts, tuple) else parts
    return keras.ops.split(ins[0], cuts, axis=c.p("axis"))


def _b_stack(keras: Any, c: Case, ins: list[Any]) -> Any:
    return keras.ops.stack(ins, axis=c.p("axis"))


def _b_unstack(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.unstack(x, axis=c.p("axis")))(ins[0])


def _b_move_net(keras: Any, c: Case, ins: list[Any]) -> Any:
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(ins[0])
    a, b = keras.ops.split(x, 2, axis=-1)
    b = keras.layers.Permute((2, 1, 3))(keras.layers.Conv2D(4, 3, padding="same")(b))
    x = keras.layers.Conv2D(6, 1)(keras.layers.Concatenate()([a, b]))
    x = keras.layers.Lambda(lambda t: t[:, ::2, 1:, :])(x)
    return keras.layers.Dense(5)(keras.layers.Flatten()(x))


def _b_depth_to_space(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.nn.depth_to_space(x, c.p("block")))(ins[0])


def _b_space_to_depth(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.nn.space_to_depth(x, c.p("block")))(ins[0])


def _b_transpose_conv(keras: Any, c: Case, ins: list[Any]) -> Any:
    x = keras.layers.Conv2DTranspose(c.p("filters"), c.p("kernel"), strides=c.p("strides", (1, 1)),
                                     padding=c.p("padding"), use_bias=c.p("bias", True))(ins[0])
    return _act(keras, x, c.p("act", "none"))


def _b_resize_nearest(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.compat.v1.image.resize_nearest_neighbor(
        x, c.p("size"), align_corners=c.p("align"), half_pixel_centers=c.p("half")))(ins[0])


def _b_resize_bilinear(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.compat.v1.image.resize_bilinear(
        x, c.p("size"), align_corners=c.p("align"), half_pixel_centers=c.p("half")))(ins[0])


def _b_batch_matmul(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    adj = dict(adjoint_a=c.p("adj_x", False), adjoint_b=c.p("adj_y", False))
    if c.p("const") is not None:
        rhs = tf.constant(np.random.default_rng(c.seed + 5).normal(0.0, 1.0, size=c.p("const")).astype(np.float32))
        return keras.layers.Lambda(lambda x: tf.linalg.matmul(x, rhs, **adj))(ins[0])
    return keras.layers.Lambda(lambda xs: tf.linalg.matmul(xs[0], xs[1], **adj))(ins)


def _b_l2norm(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.math.l2_normalize(x, axis=-1))(ins[0])


def _b_unet16(keras: Any, c: Case, ins: list[Any]) -> Any:
    """A 1-D audio U-Net over a 1xW input, as TFLM's int16 audio models: an encoder of CONV_2D (1xk) and
    LEAKY_RELU with a PAD, a decoder of TRANSPOSE_CONV with skip connections by ADD and CONCATENATION, a crop
    (STRIDED_SLICE) of the odd-sized upsampling, and the input minus the estimate (SUB)."""
    L = keras.layers

    def block(x: Any, filters: int, kernel: int, strides: int = 1, padding: str = "same") -> Any:
        return L.LeakyReLU(0.2)(L.Conv2D(filters, (1, kernel), strides=(1, strides), padding=padding)(x))

    x = ins[0]
    e1 = block(x, 8, 5)  # 1x64x8
    # padded on the left only (no SAME padding does that: the converter keeps the PAD)
    e2 = block(L.ZeroPadding2D(((0, 0), (3, 0)))(e1), 12, 4, 2, "valid")  # 1x32x12
    e3 = block(e2, 16, 3, 2)  # 1x16x16
    d2 = L.LeakyReLU(0.1)(L.Conv2DTranspose(12, (1, 4), strides=(1, 2), padding="same")(e3))  # 1x32x12
    d2 = block(L.Add()([d2, e2]), 12, 3)
    d1 = L.Conv2DTranspose(8, (1, 3), strides=(1, 2), padding="valid")(d2)  # 1x65x8
    d1 = L.Cropping2D(((0, 0), (0, 1)))(d1)  # 1x64x8
    d1 = block(L.Concatenate()([d1, e1]), 8, 3)  # from 1x64x16
    return L.Subtract()([x, L.Conv2D(2, (1, 1))(d1)])


def _b_nchw_conv(keras: Any, c: Case, ins: list[Any]) -> Any:
    """An NCHW-style input permuted (Permute: a TRANSPOSE) into a convolution (a depthwise one with
    ``depthwise``); ``out_perm``: its output permuted too (no ``perm``: the input as it is)."""
    x = keras.layers.Permute(c.p("perm"))(ins[0]) if c.p("perm") else ins[0]
    if c.p("depthwise"):
        y = keras.layers.DepthwiseConv2D(c.p("kernel"), strides=c.p("strides"), padding=c.p("padding"))(x)
    else:
        y = keras.layers.Conv2D(c.p("filters"), c.p("kernel"), strides=c.p("strides"), padding=c.p("padding"),
                                dilation_rate=c.p("dilation", (1, 1)))(x)
    y = _act(keras, y, c.p("act", "none"))
    return keras.layers.Permute(c.p("out_perm"))(y) if c.p("out_perm") else y


def _b_nchw_branches(keras: Any, c: Case, ins: list[Any]) -> list[Any]:
    """nchw_branch_cases: per input a CONV_2D between two Permutes (either left out where None)."""
    outs = []
    for x, (_, perm, kernel, strides, padding, filters, out_perm) in zip(ins, c.p("branches")):
        y = keras.layers.Permute(perm)(x) if perm else x
        y = keras.layers.ReLU()(keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding)(y))
        outs.append(keras.layers.Permute(out_perm)(y) if out_perm else y)
    return outs


def _b_nchw_mobilenet_v2(keras: Any, c: Case, ins: list[Any]) -> Any:
    """The zoo's MobileNetV2 (alpha 0.35, 2 classes) behind an NCHW input, as PyTorch exports it: the image
    transposed to NHWC first; the output is the classifier's (2-D, no transpose back)."""
    from tinyml.train import zoo

    channels, h, w = c.inputs[0]
    inner = zoo.mobilenet_v2(input_shape=(h, w, channels), seed=c.seed)
    return inner(keras.layers.Permute((2, 3, 1))(ins[0]))


def _b_exp(keras: Any, c: Case, ins: list[Any]) -> Any:
    import tensorflow as tf

    return keras.layers.Lambda(lambda x: tf.math.exp(x))(ins[0])


_BUILDERS: dict[str, Callable[[Any, Case, list[Any]], Any]] = {
    name[3:]: fn for name, fn in globals().items() if name.startswith("_b_")
}


def _keras_model(c: Case) -> Any:
    import keras

    keras.utils.set_random_seed(c.seed)
    if c.kind == "zoo":
        from tinyml.train import zoo

        name = c.p("name")
        builder = getattr(zoo, name)
        shape = c.inputs[0]
        if name == "fc_autoencoder":
            return builder(input_dim=shape[0], hidden_layers=c.p("hidden_layers", 4), seed=c.seed)
        if name == "ds_cnn_size":
            return builder(c.p("size"), input_shape=shape, seed=c.seed)
        if name == "mobilenet_v1" and c.p("blocks") is not None:
            return builder(input_shape=shape, blocks=c.p("blocks"), seed=c.seed)
        return builder(input_shape=shape, seed=c.seed)
    ins = [keras.Input(shape, batch_size=1, name=f"in{k}") for k, shape in enumerate(c.inputs)]
    out = _BUILDERS[c.kind](keras, c, ins)
    model = keras.Model(ins, out, name=c.kind)
    if c.kind == "sine":
        return _train_sine(model, c.seed)
    return _randomize(keras, model, np.random.default_rng(c.seed + 17))


def _train_sine(model: Any, seed: int) -> Any:
    """TFLM's hello_world: the sine regressor trained on noisy samples of sin(x), x in [0, 2 pi]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 2.0 * np.pi, size=(1000, 1)).astype(np.float32)
    y = (np.sin(x) + 0.1 * rng.standard_normal(x.shape)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=60, batch_size=16, verbose=0)
    return model


# --------------------------------------------------------------------------
# inspection


def model_ops(model: bytes) -> list[str]:
    """Builtin operator names of subgraph 0, in execution order (uses the ``tflite`` schema package)."""
    import tflite

    from tinyml.graph.tflite_import import builtin_code_field

    m = tflite.Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    names = []
    for i in range(sg.OperatorsLength()):
        code = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
        # not code.BuiltinCode(): it returns the deprecated field whenever that is below 127
        builtin = max(builtin_code_field(code), code.DeprecatedBuiltinCode())
        names.append(tflite.opcode2name(builtin))
    return names


# --------------------------------------------------------------------------
# cache and build


def _tf_version() -> str:
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def cache_dir() -> Path:
    env = os.environ.get("TINYML_MODEL_CACHE")
    return Path(env) if env else REPO / ".cache" / "models"


def cache_path(c: Case) -> Path:
    key = json.dumps(
        {"case": c.spec(), "tf": _tf_version(), "generator": GENERATOR_VERSION}, sort_keys=True
    )
    return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.tflite"


class CaseError(AssertionError):
    """A case did not convert into a model with its expected operator."""


def _patch(c: Case, flatbuffer: bytes) -> bytes:
    """Edit what the converter cannot produce (uses the flatbuffer object API of tflite_micro's schema).

    * ``softmax`` with ``beta`` != 1: set SoftmaxOptions.beta.
    * ``squeeze``: the converter's RESHAPE becomes SQUEEZE(squeeze_dims=[axis]).
    * ``null_bias=True`` (conv2d): drop the converter's all-zero bias input
      (index -1, an omitted optional input) -- the converter always adds one.
      Not for DEPTHWISE_CONV_2D: TFLM's depthwise Prepare crashes (SIGSEGV)
      on a missing bias.
    """
    beta = c.p("beta", 1.0)
    if not ((c.kind == "softmax" and beta != 1.0) or c.kind == "squeeze" or c.p("null_bias")):
        return flatbuffer
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(flatbuffer, 0))
    codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in m.operatorCodes]
    for op in m.subgraphs[0].operators:
        code = codes[op.opcodeIndex]
        if c.kind == "softmax" and code == fb.BuiltinOperator.SOFTMAX:
            op.builtinOptions.beta = float(beta)
        elif c.kind == "squeeze" and code == fb.BuiltinOperator.RESHAPE:
            if fb.BuiltinOperator.SQUEEZE not in codes:
                m.operatorCodes.append(fb.OperatorCodeT(
                    deprecatedBuiltinCode=fb.BuiltinOperator.SQUEEZE,
                    builtinCode=fb.BuiltinOperator.SQUEEZE, version=1))
                codes.append(fb.BuiltinOperator.SQUEEZE)
            op.opcodeIndex = codes.index(fb.BuiltinOperator.SQUEEZE)
            op.inputs = [int(op.inputs[0])]  # the shape tensor stays in the model, unused
            op.builtinOptionsType = fb.BuiltinOptions.SqueezeOptions
            op.builtinOptions = fb.SqueezeOptionsT(squeezeDims=[int(c.p("squeeze_axis"))])
        elif c.p("null_bias") and code in (fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D):
            op.inputs = [int(op.inputs[0]), int(op.inputs[1]), -1]
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _write_svdf(c: Case) -> bytes:
    from tests.seqmodels import svdf_model

    return svdf_model(size=c.inputs[0][0], seed=c.seed, **{k: v for k, v in c.params})


# Cases written as flatbuffers, not converted from Keras: builder name -> writer.
_WRITERS: dict[str, Callable[[Case], bytes]] = {"svdf": _write_svdf}
def _int8_io(flatbuffer: bytes) -> bytes:
    """A float32-I/O int16x8 model with int8 inputs and outputs: each float32 input (read by a QUANTIZE to
    int16) becomes int8 with 1.07 x 256 times the int16 scale, and each DEQUANTIZE that writes an output a
    QUANTIZE to int8 with 300 times its input's int16 scale (zero points 0): TFLM's integer Requantize then."""
    from tests.tflite_edit import edit_model

    def edit(m: Any, s: Any) -> None:
        sg = m.subgraphs[0]
        codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in m.operatorCodes]
        quantize = codes.index(s.BuiltinOperator.QUANTIZE)

        def to_int8(t: Any, scale: float) -> None:
            t.type = s.TensorType.INT8
            t.quantization = s.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [scale], [0]

        for op in sg.operators:
            code = codes[op.opcodeIndex]
            if code == s.BuiltinOperator.QUANTIZE and op.inputs[0] in sg.inputs:
                to_int8(sg.tensors[op.inputs[0]], 1.07 * 256 * sg.tensors[op.outputs[0]].quantization.scale[0])
            elif code == s.BuiltinOperator.DEQUANTIZE and op.outputs[0] in sg.outputs:
                to_int8(sg.tensors[op.outputs[0]], 300 * sg.tensors[op.inputs[0]].quantization.scale[0])
                op.opcodeIndex = quantize
                op.builtinOptionsType, op.builtinOptions = 0, None

    return edit_model(flatbuffer, edit)


def _convert(c: Case) -> bytes:
    from tinyml.train.quantize import convert_float32, quantize_int8, quantize_int16x8

    if c.kind in ("lstm", "lstm_kws"):
        return _checked(c, _convert_lstm(c))
    if c.kind in _WRITERS:
        return _WRITERS[c.kind](c)
    model = _keras_model(c)
    if c.p("float_model"):
        flatbuffer = convert_float32(model)
    elif c.p("a16"):
        flatbuffer = quantize_int16x8(model, representative(c), per_channel=c.per_channel, io_dtype=c.io_dtype)
    else:
        flatbuffer = quantize_int8(model, representative(c), per_channel=c.per_channel, io_dtype=c.io_dtype)
    flatbuffer = _patch(c, flatbuffer)
    if c.p("int8_io"):
        flatbuffer = _int8_io(flatbuffer)
    return _checked(c, flatbuffer)


def _checked(c: Case, flatbuffer: bytes) -> bytes:
    ops = model_ops(flatbuffer)
    if c.op not in ops:
        raise CaseError(f"case {c.id}: expected a {c.op} operator, the converter produced {ops}")
    return flatbuffer


def _store(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: parallel test workers never see half a file


def build(c: Case) -> bytes:
    """The ``.tflite`` bytes of a case, from the cache or freshly converted (needs TensorFlow)."""
    path = cache_path(c)
    if path.exists():
        return path.read_bytes()
    data = _convert(c)
    _store(path, data)
    return data


def build_many(cases: Iterable[Case], *, progress: bool = True) -> list[bytes]:
    """Build every case, converting the missing ones in this process (one TensorFlow import)."""
    cases = list(cases)
    missing = [c for c in cases if not cache_path(c).exists()]
    if missing:
        from tqdm import tqdm

        for c in tqdm(missing, desc="converting test models", unit="model", disable=not progress):
            _store(cache_path(c), _convert(c))
    return [cache_path(c).read_bytes() for c in cases]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.modelgen [OP ...] [--zoo] [--check]``: warm the cache.

    No argument: every op case, every zoo network and the float32 models.  ``OP ...``: the op
    cases of those operators; ``--zoo``: the zoo networks (with OPs: as well).
    ``--check`` also runs every model in TFLM.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    zoo = "--zoo" in args
    check = "--check" in args
    ops = [a for a in args if not a.startswith("--")]
    if not ops and not zoo:
        cases = all_cases() + float_cases() + int16_cases() + int16_unet_cases()
    else:
        cases = (op_cases(*ops) if ops else []) + (zoo_cases() if zoo else [])
    t0 = time.time()
    models = build_many(cases)
    print(f"{len(cases)} cases ready in {time.time() - t0:.1f} s (cache {cache_dir()})")
    if check:
        from tinyml.tools.reference import run_tflm

        for c, m in zip(cases, models):
            for sample in inputs_for(c, m, n=2):
                run_tflm(m, sample)
        print(f"all {len(cases)} cases run in TFLM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
