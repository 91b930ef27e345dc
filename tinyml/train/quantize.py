"""Full-integer post-training quantization of a Keras model to an int8 ``.tflite``.

The converter is TensorFlow's own (``tf.lite.TFLiteConverter``) with int8
builtins only.  Weights are per-channel by default (conv, depthwise and, in
TF >= 2.16, dense too); ``per_channel=False`` sets the converter's private
flags ``_experimental_disable_per_channel`` (conv, depthwise) and
``_experimental_disable_per_channel_quantization_for_dense_layers`` (fully
connected), and the result is checked to really be per-tensor.

The model is traced with a fixed batch of 1, so no dynamic-shape operators
(SHAPE, STRIDED_SLICE, PACK for a ``-1`` batch) reach the ``.tflite``.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, Iterator, Sequence

import numpy as np

from tinyml.errors import TinymlError

__all__ = ["quantize_int8", "quantize_int16x8", "weight_scales"]

_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise TinymlError(
            f"quantization needs TensorFlow ({exc}); install it with: pip install tensorflow-cpu"
        ) from exc
    return tf


def _as_list(representative: np.ndarray | Sequence[np.ndarray], n_inputs: int) -> list[np.ndarray]:
    if isinstance(representative, np.ndarray):
        arrays = [representative]
    else:
        arrays = [np.asarray(a) for a in representative]
    if len(arrays) != n_inputs:
        raise TinymlError(
            f"the model has {n_inputs} input(s) but the representative data has {len(arrays)} "
            "array(s); pass one array of samples (axis 0) per model input"
        )
    n = {len(a) for a in arrays}
    if len(n) != 1 or 0 in n:
        raise TinymlError(
            "every representative array must hold the same, non-zero number of samples along axis 0"
        )
    return [a.astype(np.float32, copy=False) for a in arrays]


def _frozen_converter(tf: Any, model: Any, specs: list[Any]) -> Any:
    """A TFLiteConverter of ``model`` traced for the input ``specs`` with its variables frozen."""
    def call(*xs: Any) -> Any:
        return model(xs[0] if len(xs) == 1 else list(xs), training=False)

    try:
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        concrete = tf.function(call).get_concrete_function(*specs)
        # Freeze the variables: the converter's calibrator cannot read Keras 3 resource variables.
        concrete = convert_variables_to_constants_v2(concrete)
    except Exception as exc:
        raise TinymlError(f"could not trace the Keras model for conversion: {exc}") from exc

    # No trackable object: the frozen graph takes the graph-def conversion path, which
    # keeps the inputs in ``model.inputs`` order (the saved-model path may reorder them).
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # silence "consider providing the trackable_obj"
    try:
        return tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    finally:
        absl_logger.setLevel(level)


def convert_float32(model: Any, *, batch: int | None = 1) -> bytes:
    """Convert ``model`` (Keras 3) to a float32 ``.tflite`` (no quantization: float32 weights, activations,
    inputs and outputs, as TFLM's hello_world) and return its bytes."""
    tf = _tf()
    specs = []
    for k, inp in enumerate(model.inputs):
        shape = tuple(inp.shape[1:])
        if None in shape:
            raise TinymlError(f"model input {k} has an unknown dimension {tuple(inp.shape)}; "
                              "give the Keras Input a full shape")
        specs.append(tf.TensorSpec((batch, *shape), tf.float32, name=f"input_{k}"))
    converter = _frozen_converter(tf, model, specs)
    try:
        return bytes(converter.convert())
    except Exception as exc:
        msg = " ".join(str(exc).split())[:400]
        raise TinymlError(f"TFLite float32 conversion failed: {type(exc).__name__}: {msg}") from exc


def quantize_int8(
    model: Any,
    representative: np.ndarray | Sequence[np.ndarray],
    *,
    per_channel: bool = True,
    io_dtype: str = "int8",
    batch: int | None = 1,
    dense_per_channel: bool | None = None,
) -> bytes:
    """Quantize ``model`` (Keras 3) to a full-integer int8 ``.tflite`` and return its bytes.

    ``representative`` holds calibration samples along axis 0, each shaped
    like one model input without the batch dimension (a list of such arrays,
    in ``model.inputs`` order, for a model with several inputs).
    ``io_dtype="int8"`` gives int8 inputs and outputs; ``"float32"`` keeps
    float I/O, with QUANTIZE / DEQUANTIZE at the edges of the graph.
    ``batch`` is the traced batch size; ``None`` keeps a dynamic batch
    dimension (shape signature -1), with which the converter no longer
    simplifies shape-generic operators (SQUEEZE stays SQUEEZE instead of
    becoming RESHAPE) but Flatten turns into SHAPE/STRIDED_SLICE/PACK/RESHAPE.
    """
    if io_dtype not in ("int8", "float32"):
        raise TinymlError(f"io_dtype must be 'int8' or 'float32', not {io_dtype!r}")
    return _quantize(model, representative, "int8", per_channel=per_channel, io_dtype=io_dtype, batch=batch,
                     dense_per_channel=dense_per_channel)


def quantize_int16x8(
    model: Any,
    representative: np.ndarray | Sequence[np.ndarray],
    *,
    per_channel: bool = True,
    io_dtype: str = "int16",
    batch: int | None = 1,
) -> bytes:
    """Quantize ``model`` (Keras 3) with 16-bit activations and 8-bit weights (TFLite's int16x8 mode,
    ``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``: int16 activations with zero point 0,
    symmetric int8 weights, int64 biases) and return the ``.tflite`` bytes.  ``io_dtype="int16"`` gives
    int16 inputs and outputs, ``"float32"`` float I/O through QUANTIZE / DEQUANTIZE; the rest as
    :func:`quantize_int8`."""
    if io_dtype not in ("int16", "float32"):
        raise TinymlError(f"io_dtype must be 'int16' or 'float32', not {io_dtype!r}")
    return _quantize(model, representative, "int16", per_channel=per_channel, io_dtype=io_dtype, batch=batch,
                     dense_per_channel=None)


def _quantize(model: Any, representative: np.ndarray | Sequence[np.ndarray], activations: str, *,
              per_channel: bool, io_dtype: str, batch: int | None, dense_per_channel: bool | None) -> bytes:
    """The converter run of quantize_int8 (``activations`` "int8") and quantize_int16x8 ("int16")."""
    tf = _tf()
    inputs = list(model.inputs)
    arrays = _as_list(representative, len(inputs))
    specs = []
    for k, (inp, arr) in enumerate(zip(inputs, arrays)):
        shape = tuple(inp.shape[1:])
        if None in shape:
            raise TinymlError(f"model input {k} has an unknown dimension {tuple(inp.shape)}; "
                              "give the Keras Input a full shape")
        if tuple(arr.shape[1:]) != shape:
            raise TinymlError(
                f"representative samples for input {k} have shape {tuple(arr.shape[1:])}, "
                f"the model expects {shape}"
            )
        specs.append(tf.TensorSpec((batch, *shape), tf.float32, name=f"input_{k}"))

    def samples() -> Iterator[list[np.ndarray]]:
        for i in range(len(arrays[0])):
            yield [a[i : i + 1] for a in arrays]

    converter = _frozen_converter(tf, model, specs)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    if activations == "int16":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = {"int8": tf.int8, "int16": tf.int16, "float32": tf.float32}[io_dtype]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if not per_channel:
        converter._experimental_disable_per_channel = True
    # ``dense_per_channel`` (None: as ``per_channel``) chooses FULLY_CONNECTED weights alone.
    dense_pc = per_channel if dense_per_channel is None else dense_per_channel
    if not dense_pc:
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    try:
        with warnings.catch_warnings():  # "Statistics for quantized inputs were expected"
            warnings.simplefilter("ignore", UserWarning)
            flatbuffer = bytes(converter.convert())
    except Exception as exc:
        msg = " ".join(str(exc).split())[:400]
        raise TinymlError(
            f"TFLite {'int16x8' if activations == 'int16' else 'int8'} conversion failed: {type(exc).__name__}: "
            f"{msg}; the model probably uses an operation without an {activations} TFLite builtin"
        ) from exc

    if not per_channel or not dense_pc:
        bad = [(op, n) for op, n in weight_scales(flatbuffer)
               if n != 1 and (op == "FULLY_CONNECTED" and not dense_pc or op != "FULLY_CONNECTED" and not per_channel)]
        if bad:
            raise TinymlError(
                "per-tensor quantization was requested but the converter produced "
                f"per-channel weights for {', '.join(op for op, _ in bad)}; this TensorFlow "
                "version ignores the private per-tensor flags"
            )
    return flatbuffer


def weight_scales(flatbuffer: bytes) -> list[tuple[str, int]]:
    """``(op name, number of weight scales)`` for every conv/depthwise/dense op in the model."""
    tf = _tf()
    with warnings.catch_warnings():  # tf.lite.Interpreter announces its deprecation
        warnings.simplefilter("ignore")
        interp = tf.lite.Interpreter(model_content=flatbuffer)
    details = {t["index"]: t for t in interp.get_tensor_details()}
    result = []
    for op in interp._get_ops_details():
        if op["op_name"] in _WEIGHTED_OPS and len(op["inputs"]) > 1:
            w = details.get(int(op["inputs"][1]))
            if w is not None:
                scales = w["quantization_parameters"]["scales"]
                result.append((op["op_name"], int(len(scales))))
    return result
