"""Model zoo: Keras 3 builders of the standard TinyML networks (random weights).

The networks follow the MLPerf Tiny reference models and the papers they
come from; they are written here layer by layer (no ``keras.applications``).
Every builder takes ``seed`` (weights are reproducible) and returns an
uncompiled ``keras.Model`` with a softmax (or linear, for the autoencoder)
output.  BatchNormalization layers get non-trivial random gamma and beta and
moving statistics that roughly match the activations they see (then
jittered), so that a freshly built model already has realistic quantization
ranges; training overwrites all of it.

=================  ==========================================================
``ds_cnn``         keyword spotting, Zhang et al. 2017 "Hello Edge" DS-CNN
                   (``DS_CNN_SIZES`` S/M/L; S is the MLPerf Tiny KWS model)
``mobilenet_v1``   visual wake words (MLPerf Tiny: alpha 0.25, 96x96x3)
``mobilenet_v2``   inverted residuals with ADDs and ReLU6
``resnet8``        image classification (MLPerf Tiny, CIFAR-10)
``fc_autoencoder`` anomaly detection (MLPerf Tiny, ToyADMOS)
=================  ==========================================================
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyml.train.quantize import quantize_int8

__all__ = [
    "DS_CNN_SIZES",
    "ds_cnn",
    "ds_cnn_size",
    "mobilenet_v1",
    "mobilenet_v2",
    "resnet8",
    "fc_autoencoder",
    "randomize_batchnorm",
    "BENCH_NETWORKS",
    "bench_network",
]

# Hello Edge DS-CNN sizes (ARM ML-KWS-for-MCU ``model_size_info``): channels,
# depthwise-separable blocks, stride of the first 10x4 conv, stride of each block.
DS_CNN_SIZES: dict[str, dict[str, Any]] = {
    "S": {"channels": 64, "blocks": 4, "first_strides": (2, 2), "block_strides": ((1, 1),) * 4},
    "M": {"channels": 172, "blocks": 4, "first_strides": (2, 1),
          "block_strides": ((2, 2), (1, 1), (1, 1), (1, 1))},
    "L": {"channels": 276, "blocks": 5, "first_strides": (2, 1),
          "block_strides": ((2, 2), (1, 1), (1, 1), (1, 1), (1, 1))},
}


def _keras(seed: int | None) -> Any:
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras


def randomize_batchnorm(model: Any, sample: np.ndarray, seed: int | None = 0) -> Any:
    """Give every BatchNormalization layer realistic, non-trivial parameters.

    gamma ~ U(0.5, 1.5) and beta ~ N(0, 0.25); the moving mean and variance
    are set to the statistics the layer actually sees on ``sample`` (one
    forward pass in training mode with momentum 0), then jittered by about
    10% in mean and 0.7x-1.4x in variance.  Returns ``model``.
    """
    import keras

    rng = np.random.default_rng(seed)
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return model
    for bn in bns:
        n = bn.moving_mean.shape[0]
        if bn.gamma is not None:
            bn.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
        if bn.beta is not None:
            bn.beta.assign(rng.normal(0.0, 0.25, n).astype("float32"))
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    try:
        model(sample.astype("float32"), training=True)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
    for bn in bns:
        n = bn.moving_mean.shape[0]
        var = np.maximum(np.asarray(bn.moving_variance), 1e-3)
        mean = np.asarray(bn.moving_mean) + rng.normal(0.0, 0.1, n) * np.sqrt(var)
        bn.moving_mean.assign(mean.astype("float32"))
        bn.moving_variance.assign((var * rng.uniform(0.7, 1.4, n)).astype("float32"))
    return model


def _sample(input_shape: Sequence[int], kind: str, seed: int | None, n: int = 16) -> np.ndarray:
    rng = np.random.default_rng(None if seed is None else seed + 1)
    if kind == "image":
        return rng.uniform(0.0, 1.0, (n, *input_shape))
    return rng.normal(0.0, 1.0, (n, *input_shape))


def _conv_bn(keras: Any, x: Any, filters: int, kernel: Any, strides: Any = 1,
             act: str | None = "relu", name: str = "", **kw: Any) -> Any:
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                            name=f"{name}_conv", **kw)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return _activation(keras, x, act, name)


def _dw_bn(keras: Any, x: Any, kernel: Any = 3, strides: Any = 1, act: str | None = "relu",
           name: str = "", **kw: Any) -> Any:
    x = keras.layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False,
                                     name=f"{name}_dw", **kw)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return _activation(keras, x, act, name)


def _activation(keras: Any, x: Any, act: str | None, name: str) -> Any:
    if act == "relu":
        return keras.layers.ReLU(name=f"{name}_relu")(x)
    if act == "relu6":
        return keras.layers.ReLU(6.0, name=f"{name}_relu6")(x)
    return x


def ds_cnn(
    input_shape: Sequence[int] = (49, 10, 1),
    channels: int = 64,
    blocks: int = 4,
    num_classes: int = 12,
    *,
    first_kernel: Sequence[int] = (10, 4),
    first_strides: Sequence[int] = (2, 2),
    block_strides: Sequence[Sequence[int]] | None = None,
    dropout: float = 0.2,
    seed: int | None = 0,
) -> Any:
    """DS-CNN for keyword spotting (MFCC input: frames x coefficients x 1).

    Conv ``first_kernel`` / ``first_strides`` + BN + ReLU, then ``blocks``
    depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise 1x1 +
    BN + ReLU), average pooling over the whole map, dense, softmax.  The
    defaults are the MLPerf Tiny KWS model (Hello Edge DS-CNN-S).
    """
    keras = _keras(seed)
    strides = list(block_strides) if block_strides is not None else [(1, 1)] * blocks
    if len(strides) != blocks:
        raise ValueError(f"block_strides has {len(strides)} entries for {blocks} blocks")
    inp = keras.Input(tuple(input_shape), name="mfcc")
    x = _conv_bn(keras, inp, channels, tuple(first_kernel), tuple(first_strides), name="conv1")
    x = keras.layers.Dropout(dropout)(x)
    for i, s in enumerate(strides):
        x = _dw_bn(keras, x, 3, tuple(s), name=f"ds{i + 1}")
        x = _conv_bn(keras, x, channels, 1, name=f"pw{i + 1}")
    x = keras.layers.Dropout(2 * dropout)(x)
    x = keras.layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="fc")(x)
    model = keras.Model(inp, out, name="ds_cnn")
    return randomize_batchnorm(model, _sample(input_shape, "normal", seed), seed)


def ds_cnn_size(size: str, input_shape: Sequence[int] = (49, 10, 1), num_classes: int = 12,
                seed: int | None = 0, dropout: float = 0.2) -> Any:
    """The Hello Edge DS-CNN of size "S", "M" or "L" (see ``DS_CNN_SIZES``); ``dropout`` as in ``ds_cnn``."""
    try:
        cfg = DS_CNN_SIZES[size.upper()]
    except KeyError:
        raise ValueError(f"unknown DS-CNN size {size!r}; choose one of {sorted(DS_CNN_SIZES)}") from None
    return ds_cnn(input_shape, cfg["channels"], cfg["blocks"], num_classes,
                  first_strides=cfg["first_strides"], block_strides=cfg["block_strides"], dropout=dropout,
                  seed=seed)


def mobilenet_v1(
    input_shape: Sequence[int] = (96, 96, 3),
    alpha: float = 0.25,
    num_classes: int = 2,
    *,
    blocks: int = 13,
    seed: int | None = 0,
) -> Any:
    """MobileNetV1 (Howard et al. 2017) with width multiplier ``alpha``, ReLU6.

    Conv 3x3/2 then 13 depthwise-separable blocks (the first ``blocks`` of
    them); the head is MLPerf Tiny VWW's: average pool over the whole map,
    flatten, dense, softmax.  TFLM's person-detection model is this network
    at alpha 0.25 on 96x96x1 grayscale images.
    """
    keras = _keras(seed)
    layers = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
              (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
    inp = keras.Input(tuple(input_shape), name="image")
    x = _conv_bn(keras, inp, max(8, int(32 * alpha)), 3, 2, act="relu6", name="conv1")
    for i, (filters, stride) in enumerate(layers[:blocks]):
        x = _dw_bn(keras, x, 3, stride, act="relu6", name=f"dw{i + 1}")
        x = _conv_bn(keras, x, max(8, int(filters * alpha)), 1, act="relu6", name=f"pw{i + 1}")
    x = keras.layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="fc")(x)
    model = keras.Model(inp, out, name="mobilenet_v1")
    return randomize_batchnorm(model, _sample(input_shape, "image", seed), seed)


def _make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def mobilenet_v2(
    input_shape: Sequence[int] = (96, 96, 3),
    alpha: float = 0.35,
    num_classes: int = 2,
    *,
    last_channels: int | None = None,
    seed: int | None = 0,
) -> Any:
    """MobileNetV2 (Sandler et al. 2018): inverted residual blocks, ReLU6, ADD shortcuts.

    Blocks (expansion t, channels c, repeats n, stride s) as in the paper;
    the final 1x1 conv has ``last_channels`` (1280 by default, as in the
    paper for alpha <= 1), then global average pooling, dense, softmax.
    """
    keras = _keras(seed)
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
    inp = keras.Input(tuple(input_shape), name="image")
    x = _conv_bn(keras, inp, _make_divisible(32 * alpha), 3, 2, act="relu6", name="conv1")
    block = 0
    for t, c, n, s in settings:
        out_ch = _make_divisible(c * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            in_ch = x.shape[-1]
            name = f"block{block}"
            y = x
            if t != 1:
                y = _conv_bn(keras, y, in_ch * t, 1, act="relu6", name=f"{name}_expand")
            y = _dw_bn(keras, y, 3, stride, act="relu6", name=f"{name}_dw")
            y = _conv_bn(keras, y, out_ch, 1, act=None, name=f"{name}_project")
            if stride == 1 and in_ch == out_ch:
                y = keras.layers.Add(name=f"{name}_add")([x, y])
            x = y
            block += 1
    last = last_channels if last_channels is not None else (
        1280 if alpha <= 1.0 else _make_divisible(1280 * alpha))
    x = _conv_bn(keras, x, last, 1, act="relu6", name="conv_last")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="fc")(x)
    model = keras.Model(inp, out, name="mobilenet_v2")
    return randomize_batchnorm(model, _sample(input_shape, "image", seed), seed)


def resnet8(
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    *,
    seed: int | None = 0,
) -> Any:
    """ResNet-8 of MLPerf Tiny image classification (CIFAR-10).

    Conv 3x3x16 + BN + ReLU, then three residual stacks (16, 32, 64 filters;
    strides 1, 2, 2) of two 3x3 convs with BN, a 1x1 strided conv on the
    shortcut when the shape changes, ADD and ReLU; average pool, dense, softmax.
    """
    keras = _keras(seed)
    init = {"kernel_initializer": "he_normal"}
    inp = keras.Input(tuple(input_shape), name="image")
    x = _conv_bn(keras, inp, 16, 3, 1, name="conv1", **init)
    for i, (filters, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
        name = f"stack{i + 1}"
        y = _conv_bn(keras, x, filters, 3, stride, name=f"{name}_a", **init)
        y = _conv_bn(keras, y, filters, 3, 1, act=None, name=f"{name}_b", **init)
        if stride != 1 or x.shape[-1] != filters:
            x = keras.layers.Conv2D(filters, 1, strides=stride, padding="same",
                                    name=f"{name}_shortcut", **init)(x)
        x = keras.layers.Add(name=f"{name}_add")([x, y])
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]), name="pool")(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(num_classes, activation="softmax", name="fc", **init)(x)
    model = keras.Model(inp, out, name="resnet8")
    return randomize_batchnorm(model, _sample(input_shape, "image", seed), seed)


def fc_autoencoder(
    input_dim: int = 640,
    *,
    hidden: int = 128,
    hidden_layers: int = 4,
    bottleneck: int = 8,
    seed: int | None = 0,
) -> Any:
    """Fully connected autoencoder of MLPerf Tiny anomaly detection.

    ``hidden_layers`` Dense(hidden) + BN + ReLU layers, a Dense(bottleneck) +
    BN + ReLU code, the mirror image, and a linear Dense(input_dim) output.
    The MLPerf Tiny reference (ToyADMOS, 5 frames x 128 mel bins = 640) uses
    4 hidden layers per side; ``hidden_layers=2`` gives 640-128-128-8-128-128-640.
    """
    keras = _keras(seed)
    inp = keras.Input((input_dim,), name="features")
    x = inp
    sizes = [hidden] * hidden_layers + [bottleneck] + [hidden] * hidden_layers
    for i, units in enumerate(sizes):
        x = keras.layers.Dense(units, name=f"fc{i + 1}")(x)
        x = keras.layers.BatchNormalization(name=f"fc{i + 1}_bn")(x)
        x = keras.layers.ReLU(name=f"fc{i + 1}_relu")(x)
    out = keras.layers.Dense(input_dim, name="out")(x)
    model = keras.Model(inp, out, name="fc_autoencoder")
    return randomize_batchnorm(model, _sample((input_dim,), "normal", seed), seed)


# The networks `tinyml bench memory` measures when given no models (the test zoo's networks):
# id -> (builder, its arguments, input shape, calibration data "image" or "normal", per-channel weights).
BENCH_NETWORKS: dict[str, tuple[str, dict[str, Any], tuple[int, ...], str, bool]] = {
    "ds_cnn": ("ds_cnn", {}, (49, 10, 1), "normal", True),
    "ds_cnn-pt": ("ds_cnn", {}, (49, 10, 1), "normal", False),
    "ds_cnn_m": ("ds_cnn_size", {"size": "M"}, (49, 10, 1), "normal", True),
    "mobilenet_v1": ("mobilenet_v1", {}, (96, 96, 3), "image", True),
    "mobilenet_v2": ("mobilenet_v2", {}, (96, 96, 3), "image", True),
    "mobilenet_v2-144": ("mobilenet_v2", {}, (144, 144, 3), "image", True),
    "resnet8": ("resnet8", {}, (32, 32, 3), "image", True),
    "fc_autoencoder": ("fc_autoencoder", {"hidden_layers": 2}, (640,), "normal", True),
    "fc_autoencoder-mlperf": ("fc_autoencoder", {}, (640,), "normal", True),
}


def bench_network(name: str, seed: int = 0) -> bytes:
    """The int8 ``.tflite`` of BENCH_NETWORKS[``name``]: random weights, quantized with TensorFlow."""
    builder, kwargs, shape, kind, per_channel = BENCH_NETWORKS[name]
    build = globals()[builder]
    if builder == "fc_autoencoder":
        model = build(input_dim=shape[0], seed=seed, **kwargs)
    elif builder == "ds_cnn_size":
        model = build(kwargs["size"], input_shape=shape, seed=seed)
    else:
        model = build(input_shape=shape, seed=seed, **kwargs)
    return quantize_int8(model, _sample(shape, kind, seed, n=48).astype(np.float32), per_channel=per_channel)
