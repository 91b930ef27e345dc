"""Quantization-aware training (QAT) of a trained Keras 3 model, converted to a full-integer int8 ``.tflite``.

tensorflow-model-optimization (tfmot) works on tf-keras (Keras 2) models only, while the rest of tinyml
uses Keras 3.  ``qat_int8`` therefore rebuilds the trained Keras 3 model layer by layer in tf-keras (from
its functional config; the layers of the zoo: Conv2D, DepthwiseConv2D, BatchNormalization, ReLU,
pooling, Flatten/Reshape, Dense, Softmax, Add, Dropout), copies the weights, checks that both give the
same outputs, wraps the copy with ``tfmot.quantization.keras.quantize_model`` (fake quantization of
weights and activations; tfmot's default 8-bit scheme: per-channel convolution and depthwise weights,
per-tensor dense weights), starts its activation ranges at the float model's ranges on the
representative clips (tfmot's own start, [-6, 6] followed by a slow moving average, would still be mostly
that guess after a few epochs; see ``_init_ranges``), fine-tunes it for a few epochs at a low learning rate and converts it
with TensorFlow's converter to int8 builtins, int8 input and output, traced with a fixed batch of 1 (as
``quantize_int8``: no SHAPE/STRIDED_SLICE/PACK for a dynamic batch reach the file).  The representative
clips also give the converter any range no fake-quantization node carries.  The result has the same
standard operators as a post-training quantized model, plus an int8 -> int8 QUANTIZE where a learned
range differs from the one an operator has to keep (AVERAGE_POOL_2D keeps its input's scale, the dense
layer after it reads the pooling's own fake-quantized range).

Keras 2 and 3 in one process: tfmot 0.8 picks its Keras in ``tfmot.python.core.keras.compat`` at import
time: it sets ``os.environ["TF_USE_LEGACY_KERAS"] = "1"`` (process-wide) and uses ``tf.keras`` if that
is Keras 2, else imports ``tf_keras``.  ``_tfmot`` resolves ``tf.keras`` to Keras 3 first (so tfmot takes
``tf_keras`` explicitly and ``tf.keras`` stays Keras 3 in this process) and restores the variable after
the import (so subprocesses, e.g. the compiler's, do not inherit it).  ``import keras`` is Keras 3
throughout: Keras 3 training, saving, loading and ``quantize_int8`` after QAT in the same process give
the same results as without it (``tests/test_kws_qat.py`` checks this), so QAT runs in-process, not in
a subprocess.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyml.errors import TinymlError, UnsupportedError
from tinyml.train.quantize import weight_scales

__all__ = ["QatUnavailableError", "qat_int8", "require_tfmot", "to_tf_keras", "INSTALL_HINT"]

INSTALL_HINT = ("pip install --no-deps 'tf-keras==2.21.*' 'tensorflow-model-optimization==0.8.*' && "
                "pip install dm-tree")


class QatUnavailableError(TinymlError):
    """tf-keras or tensorflow-model-optimization is not installed."""


# The Keras 3 layer classes the rebuild knows, with the constructor arguments it carries over (weights are
# copied afterwards, so initializers, regularizers and constraints do not matter).
_LAYER_ARGS: dict[str, tuple[str, ...]] = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
               "activation", "use_bias"),
    "DepthwiseConv2D": ("kernel_size", "strides", "padding", "depth_multiplier", "data_format",
                        "dilation_rate", "activation", "use_bias"),
    "Dense": ("units", "activation", "use_bias"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "Softmax": ("axis",),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "GlobalAveragePooling2D": ("data_format", "keepdims"),
    "Flatten": ("data_format",),
    "Reshape": ("target_shape",),
    "Dropout": ("rate", "noise_shape", "seed"),
    "Add": (),
}


def _tfmot() -> tuple[Any, Any, Any]:
    """``(tensorflow, tf_keras, tensorflow_model_optimization)``, or a one-line error naming the install."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        import tf_keras
    except ImportError as exc:
        raise _unavailable(str(exc)) from None
    # Resolve tf.keras (a lazy loader) to Keras 3 before tfmot sets TF_USE_LEGACY_KERAS, so that tfmot
    # imports tf_keras itself and tf.keras keeps meaning Keras 3 in this process.
    before = os.environ.get("TF_USE_LEGACY_KERAS")
    if before is None:
        getattr(tf.keras, "version", None)  # what tfmot itself looks at
    try:
        with warnings.catch_warnings():  # tfmot compares versions with distutils (DeprecationWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import tensorflow_model_optimization as tfmot
            from tensorflow_model_optimization.python.core.keras.compat import keras as tfmot_keras
    except Exception as exc:  # ImportError, or an AttributeError from a tfmot that does not fit this TF
        raise _unavailable(f"{type(exc).__name__}: {exc}") from None
    finally:
        if before is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = before
    if not tfmot_keras.__name__.startswith("tf_keras"):  # pragma: no cover - depends on environment
        raise QatUnavailableError(
            f"tensorflow-model-optimization uses {tfmot_keras.__name__}, not tf-keras; install "
            f"tf-keras matching TensorFlow {tf.__version__} with: {INSTALL_HINT}")
    return tf, tf_keras, tfmot


def require_tfmot() -> None:
    """Raise ``QatUnavailableError`` (one line, with the install command) unless tf-keras and tfmot are
    installed.  Looks for them without importing anything (TensorFlow included), so it is cheap and can run
    before training starts; ``qat_int8`` imports them and reports a broken install the same way."""
    import importlib.util

    for module in ("tf_keras", "tensorflow_model_optimization"):
        try:
            found = importlib.util.find_spec(module) is not None
            problem = f"No module named {module!r}"
        except (ImportError, ValueError) as exc:
            found, problem = False, str(exc)
        if not found:
            raise _unavailable(problem)


def _unavailable(problem: str) -> QatUnavailableError:
    return QatUnavailableError(f"quantization-aware training needs tf-keras and tensorflow-model-optimization "
                               f"({problem}); install them with: {INSTALL_HINT}")


def to_tf_keras(model: Any, tf_keras: Any | None = None) -> Any:
    """The same network as the Keras 3 ``model`` (functional or sequential), built in tf-keras, with its weights."""
    if tf_keras is None:
        _, tf_keras, _ = _tfmot()
    config = model.get_config()
    entries = config.get("layers", [])
    layers3 = {layer.name: layer for layer in model.layers}
    built: dict[str, Any] = {}  # layer name -> its output tensor in the tf-keras graph
    new_layers: dict[str, Any] = {}
    sequential = "input_layers" not in config
    previous: Any = None
    if sequential:  # a Sequential's config has no graph: chain the layers, from its input
        inp = model.inputs[0]
        previous = tf_keras.Input(tuple(inp.shape[1:]), name=getattr(inp, "name", None) or "input")
        inputs = [previous]

    def tensor(ref: Any) -> Any:
        if isinstance(ref, dict) and ref.get("class_name") == "__keras_tensor__":
            name, node, index = ref["config"]["keras_history"]
            if node != 0 or index != 0:
                raise UnsupportedError(f"QAT: layer '{name}' is shared or has several outputs; the tf-keras "
                                       "rebuild handles plain functional graphs only; train without QAT")
            return built[name]
        if isinstance(ref, (list, tuple)):
            return [tensor(r) for r in ref]
        return ref

    for entry in entries:
        cls, cfg = entry["class_name"], entry["config"]
        name = cfg.get("name") or entry.get("name")
        if cls == "InputLayer":
            if not sequential:
                shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                built[name] = tf_keras.Input(tuple(shape[1:]), name=name)
            continue
        if cls not in _LAYER_ARGS:
            raise UnsupportedError(
                f"QAT: layer '{name}' ({cls}) has no tf-keras rebuild; QAT handles "
                f"{', '.join(sorted(_LAYER_ARGS))}; train without QAT (post-training quantization)")
        kwargs = {k: cfg[k] for k in _LAYER_ARGS[cls] if k in cfg}
        for k in ("kernel_size", "strides", "dilation_rate", "pool_size", "target_shape", "noise_shape"):
            if isinstance(kwargs.get(k), list):
                kwargs[k] = tuple(kwargs[k])
        layer = getattr(tf_keras.layers, cls)(name=name, **kwargs)
        if sequential:
            x = previous
        else:
            nodes = entry.get("inbound_nodes") or []
            if len(nodes) != 1:
                raise UnsupportedError(f"QAT: layer '{name}' ({cls}) is called {len(nodes)} times; the "
                                       "tf-keras rebuild handles layers called once; train without QAT")
            args = nodes[0].get("args", [])
            x = tensor(args[0] if len(args) == 1 else list(args))
        previous = built[name] = layer(x)
        new_layers[name] = layer
    if sequential:
        outputs = [previous]
    else:
        inputs = [built[n] for n, _, _ in config["input_layers"]] if isinstance(config["input_layers"][0], list) \
            else [built[config["input_layers"][0]]]
        outputs = [built[n] for n, _, _ in config["output_layers"]] if isinstance(config["output_layers"][0], list) \
            else [built[config["output_layers"][0]]]
    rebuilt = tf_keras.Model(inputs[0] if len(inputs) == 1 else inputs,
                             outputs[0] if len(outputs) == 1 else outputs, name=model.name)
    for name, layer in new_layers.items():
        weights = layers3[name].get_weights()
        if [w.shape for w in weights] != [tuple(w.shape) for w in layer.get_weights()]:
            raise UnsupportedError(f"QAT: layer '{name}' has weights shaped differently in tf-keras; train "
                                   "without QAT")
        layer.set_weights(weights)
    return rebuilt


def _samples(arrays: Sequence[np.ndarray]) -> Callable[[], Iterator[list[np.ndarray]]]:
    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(arrays[0])):
            yield [a[i:i + 1] for a in arrays]

    return gen


def qat_int8(
    model: Any,
    x_train: np.ndarray | Sequence[np.ndarray],
    y_train: np.ndarray,
    representative: np.ndarray,
    *,
    epochs: int = 3,
    learning_rate: float = 1e-4,
    batch_size: int = 100,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    per_channel: bool = True,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> bytes:
    """Fine-tune the trained Keras 3 classifier ``model`` with QAT and return an int8 ``.tflite`` (int8 I/O).

    ``x_train`` is the training features, or a list of augmented versions of them (the same clips in the
    same order, e.g. ``train_kws``'s variants) used one per epoch in turn; ``y_train`` the integer labels.
    ``representative`` holds calibration samples (axis 0): the activation ranges start at their min/max
    and the converter calibrates with them.  ``per_channel=False`` gives per-tensor convolution weights (dense weights are
    per-tensor in tfmot's scheme either way).  ``x_val``/``y_val``, if given, are reported every epoch.
    """
    if epochs < 1:
        raise TinymlError(f"QAT needs at least one epoch, not {epochs}")
    tf, tf_keras, tfmot = _tfmot()
    variants = [x_train] if isinstance(x_train, np.ndarray) else list(x_train)
    if len(model.inputs) != 1:
        raise UnsupportedError(f"QAT handles models with one input; this one has {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape[1:])
    if None in shape:
        raise TinymlError(f"model input has an unknown dimension {tuple(model.inputs[0].shape)}; "
                          "give the Keras Input a full shape")
    for a in [*variants, representative] + ([x_val] if x_val is not None else []):
        if tuple(a.shape[1:]) != shape:
            raise TinymlError(f"QAT data shaped {tuple(a.shape[1:])} for a model input of {shape}")

    tf_keras.utils.set_random_seed(seed)
    float_model = to_tf_keras(model, tf_keras)
    probe = np.asarray(representative[:8], np.float32)
    diff = float(np.max(np.abs(float_model(probe, training=False).numpy()
                               - np.asarray(model(probe, training=False)))))
    if diff > 1e-4:  # the rebuild is a copy, up to float rounding
        raise TinymlError(f"QAT: the tf-keras copy of {model.name} differs from it by {diff:.2g}; this is a bug "
                          "in tinyml.train.qat, please report it; train without QAT meanwhile")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if per_channel:
                qmodel = tfmot.quantization.keras.quantize_model(float_model)
            else:
                from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
                    default_8bit_quantize_scheme,
                )

                qmodel = tfmot.quantization.keras.quantize_apply(
                    tfmot.quantization.keras.quantize_annotate_model(float_model),
                    scheme=default_8bit_quantize_scheme.Default8BitQuantizeScheme(disable_per_axis=True))
    except (RuntimeError, ValueError, TypeError) as exc:
        msg = " ".join(str(exc).split())[:300]
        raise UnsupportedError(f"QAT: tensorflow-model-optimization cannot quantize {model.name}: {msg}; "
                               "train without QAT (post-training quantization)") from None
    _init_ranges(qmodel, float_model, np.asarray(representative, np.float32), tf_keras)
    qmodel.compile(optimizer=tf_keras.optimizers.Adam(learning_rate),
                   loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for epoch in range(epochs):
        t0 = time.monotonic()
        h = qmodel.fit(variants[epoch % len(variants)], y_train, batch_size=batch_size, epochs=1, verbose=0,
                       shuffle=True)
        line = (f"QAT epoch {epoch + 1}/{epochs}: loss {h.history['loss'][-1]:.3f}, "
                f"train accuracy {h.history['accuracy'][-1]:.3f}")
        if x_val is not None and y_val is not None:
            pred = np.argmax(qmodel.predict(x_val, verbose=0, batch_size=256), 1)
            line += f", validation accuracy {float(np.mean(pred == y_val)):.3f}"
        say(f"{line}, {time.monotonic() - t0:.1f}s")
    t0 = time.monotonic()
    flatbuffer = _convert(tf, qmodel, shape, np.asarray(representative, np.float32), per_channel)
    say(f"QAT model converted to int8 in {time.monotonic() - t0:.1f}s")
    if not per_channel:
        bad = sorted({op for op, n in weight_scales(flatbuffer) if n != 1})
        if bad:
            raise TinymlError(f"per-tensor weights were requested but the converter produced per-channel weights "
                              f"for {', '.join(bad)}; this TensorFlow version ignores the private per-tensor flag")
    return flatbuffer


def _init_ranges(qmodel: Any, float_model: Any, data: np.ndarray, tf_keras: Any) -> None:
    """Start every activation range of ``qmodel`` at the float model's min/max on ``data`` (and 0).

    tfmot's activation quantizers start at [-6, 6] and follow the batch ranges as a moving average with
    decay 0.999, which takes thousands of steps to settle: after 3 epochs of the demo's data (222 steps)
    the range of a ReLU output in [0, 3] would still be about [-4.8, 5.4] (-6 * 0.999**222 = -4.8), so the
    fine-tuning would simulate, and the converted model keep, steps 3.4 times coarser than the data needs.  (The model input's quantizer
    is tfmot's all-values one, which starts at [0, 0] and widens to every value seen; it is set here too.)
    Starting from the calibration ranges, as post-training quantization does, the fine-tuning begins at
    the PTQ model and the moving averages only refine it.  On the demo's DS-CNN-S the held-out int8
    accuracy came out the same either way (80.2% and 80.4%, one clip apart, after 3 epochs).
    """
    wanted: dict[str, list[tuple[str, Any]]] = {}  # float layer name -> (what, variable pair)
    inputs: list[tuple[Any, Any]] = []
    for layer in qmodel.layers:
        pairs = {}
        for v in layer.weights:
            base = v.name.split("/")[-1].split(":")[0]
            for what in ("quantize_layer", "output", "post_activation", "pre_activation"):
                for end in ("min", "max"):
                    if base in (f"{what}_{end}", f"{layer.name}_{end}") and len(v.shape) == 0:
                        pairs.setdefault("input" if base.startswith(layer.name) else what, {})[end] = v
        inner = getattr(layer, "layer", None)
        for what, mm in pairs.items():
            if set(mm) != {"min", "max"}:
                continue
            if what == "input":
                inputs.append((mm["min"], mm["max"]))
            elif inner is not None:
                wanted.setdefault(inner.name, []).append((what, (mm["min"], mm["max"])))
    names = [n for n in wanted if n in {layer.name for layer in float_model.layers}]
    pre = [n for n in names if any(w == "pre_activation" for w, _ in wanted[n])]
    probe = tf_keras.Model(float_model.inputs,
                           [float_model.get_layer(n).output for n in names]
                           + [float_model.get_layer(n).input for n in pre])
    lo: dict[tuple[str, str], float] = {}
    hi: dict[tuple[str, str], float] = {}

    def note(key: tuple[str, str], value: Any) -> None:
        value = np.asarray(value)
        lo[key] = min(lo.get(key, 0.0), float(value.min()))
        hi[key] = max(hi.get(key, 0.0), float(value.max()))

    for start in range(0, len(data), 256):
        batch = data[start:start + 256]
        note(("", "input"), batch)
        outs = probe(batch, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for n, o in zip(names, outs[:len(names)]):
            note((n, "output"), o)
        for n, x in zip(pre, outs[len(names):]):
            layer = float_model.get_layer(n)
            activation = layer.activation
            layer.activation = tf_keras.activations.linear
            try:
                note((n, "pre_activation"), layer(x))
            finally:
                layer.activation = activation
    for vmin, vmax in inputs:
        vmin.assign(lo[("", "input")])
        vmax.assign(hi[("", "input")])
    for n in names:
        for what, (vmin, vmax) in wanted[n]:
            key = (n, "pre_activation" if what == "pre_activation" else "output")
            vmin.assign(lo[key])
            vmax.assign(hi[key])


def _convert(tf: Any, qmodel: Any, shape: tuple[int, ...], representative: np.ndarray, per_channel: bool) -> bytes:
    """The fake-quantized tf-keras model as an int8 ``.tflite`` with int8 I/O, traced with batch 1.

    tfmot's scheme does not fold batch normalization into the convolutions while training (the kernel is
    fake-quantized before the BN scale); the converter folds it and quantizes the folded kernels again, per
    channel unless ``_experimental_disable_per_channel`` is set (as in ``quantize_int8``).
    """
    spec = tf.TensorSpec((1, *shape), tf.float32, name="input_0")
    try:
        concrete = tf.function(lambda x: qmodel(x, training=False)).get_concrete_function(spec)
    except Exception as exc:
        raise TinymlError(f"could not trace the QAT model for conversion: {exc}") from exc
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], qmodel)
    finally:
        absl_logger.setLevel(level)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = _samples([representative])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    except Exception as exc:
        msg = " ".join(str(exc).split())[:400]
        raise TinymlError(f"TFLite int8 conversion of the QAT model failed: {type(exc).__name__}: {msg}") from exc
