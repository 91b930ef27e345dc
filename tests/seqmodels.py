"""Models of the operators that keep state (SVDF), written as flatbuffers (the converter does not make SVDF
from Keras): one SVDF layer (int8 with int16 or int8 state, or float32) and a streaming keyword spotter of
SVDF layers, a fully connected layer and a softmax, like TFLM's keyword benchmark model.  Used by
tests/test_svdf.py and, for the op cases of SVDF, by tests/modelgen.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.tflite_edit import craft_model


def q(scale: float, zp: int = 0) -> dict[str, Any]:
    return dict(scale=[float(np.float32(scale))], zero_point=[zp])


def _bias_scale(state_scale: float, wt_scale: float) -> float:
    """What TFLM's Prepare requires of the bias scale: the product of the two, in float32."""
    return float(np.float32(state_scale) * np.float32(wt_scale))


def svdf_layer(tensors: list[dict[str, Any]], x: int, *, units: int, rank: int, memory: int,
               rng: np.random.Generator, state: str = "INT16", state_scale: float = 0.002, state_zp: int = 0,
               wf_scale: float = 0.01, wt_scale: float = 1e-4, wt_max: int = 20000, out_scale: float = 0.05,
               out_zp: int = 0, relu: bool = False, name: str = "svdf") -> tuple[int, tuple[Any, ...]]:
    """Appends the tensors of one SVDF reading tensor ``x`` ([batch, input size]); returns its output tensor
    and its operator."""
    batch, size = tensors[x]["shape"]
    filters = units * rank
    wt_type, wt_max = (np.int16, wt_max) if state == "INT16" else (np.int8, min(wt_max, 127))
    base = len(tensors)
    tensors += [
        dict(name=f"{name}_weights_feature", shape=[filters, size], type="INT8",
             data=rng.integers(-127, 128, (filters, size), np.int8), **q(wf_scale)),
        dict(name=f"{name}_weights_time", shape=[filters, memory], type=state,
             data=rng.integers(-wt_max, wt_max + 1, (filters, memory)).astype(wt_type), **q(wt_scale)),
        dict(name=f"{name}_bias", shape=[units], type="INT32",
             data=rng.integers(-3000, 3000, units).astype(np.int32), **q(_bias_scale(state_scale, wt_scale))),
        dict(name=f"{name}_state", shape=[batch, memory * filters], type=state, variable=True,
             **q(state_scale, state_zp)),
        dict(name=f"{name}_output", shape=[batch, units], type="INT8", **q(out_scale, out_zp)),
    ]
    op = ("SVDF", [x, base, base + 1, base + 2, base + 3], [base + 4],
          ("SVDFOptions", {"rank": rank, "fusedActivationFunction": 1 if relu else 0}))
    return base + 4, op


def svdf_model(**case: Any) -> bytes:
    """One SVDF: input [batch, size] -> output [batch, units] (``case``: svdf_models' keys)."""
    return svdf_models([case])


def svdf_models(cases: list[dict[str, Any]], state_inputs: tuple[int, ...] = ()) -> bytes:
    """Independent SVDFs side by side, one per case (each its own input and output, in order): ``batch``,
    ``size``, ``units``, ``rank``, ``memory``, ``seed``, ``in_zp``, ``float32`` (a float32 SVDF, whose
    ``activation`` is a TFLite code) and svdf_layer's keywords.  The states of the cases in
    ``state_inputs`` are also listed among the subgraph's inputs (as some converters list them)."""
    tensors: list[dict[str, Any]] = []
    ops: list[tuple[Any, ...]] = []
    inputs, outputs = [], []
    for k, c in enumerate(cases):
        c = dict(c)
        batch, size = c.pop("batch", 1), c.pop("size", 10)
        rng = np.random.default_rng(c.pop("seed", 0))
        in_zp = c.pop("in_zp", 3)
        inputs.append(len(tensors))
        if c.pop("float32", False):
            tensors.append(dict(name=f"features{k}", shape=[batch, size], type="FLOAT32"))
            out, op = _svdf_f32_layer(tensors, inputs[-1], rng=rng, name=f"svdf{k}", **c)
        else:
            tensors.append(dict(name=f"features{k}", shape=[batch, size], type="INT8", **q(0.05, in_zp)))
            out, op = svdf_layer(tensors, inputs[-1], rng=rng, name=f"svdf{k}", **{"units": 4, "rank": 1,
                                                                                   "memory": 4, **c})
        ops.append(op)
        outputs.append(out)
    return craft_model(tensors, ops, inputs=inputs + [ops[k][1][4] for k in state_inputs], outputs=outputs)


def svdf_kws_model(seed: int = 7) -> bytes:
    """40 features per frame -> SVDF (64 units, memory 8, RELU) -> SVDF (32 units, rank 2, memory 8)
    -> SVDF (32 units, memory 4) -> FULLY_CONNECTED (12 classes) -> SOFTMAX."""
    rng = np.random.default_rng(seed)
    tensors: list[dict[str, Any]] = [dict(name="frame", shape=[1, 40], type="INT8", **q(0.1, -10))]
    ops: list[tuple[Any, ...]] = []
    x = 0
    for i, (units, rank, memory) in enumerate(((64, 1, 8), (32, 2, 8), (32, 1, 4))):
        size = tensors[x]["shape"][1]
        x, op = svdf_layer(tensors, x, units=units, rank=rank, memory=memory, rng=rng, relu=i == 0,
                           wf_scale=0.02 / np.sqrt(size), state_scale=0.0005, wt_scale=3e-5, wt_max=16000,
                           out_scale=0.04, out_zp=-3, name=f"svdf{i}")
        ops.append(op)
    n = len(tensors)
    tensors += [
        dict(name="fc_weights", shape=[12, 32], type="INT8", data=rng.integers(-127, 128, (12, 32), np.int8),
             **q(0.01)),
        dict(name="fc_bias", shape=[12], type="INT32", data=rng.integers(-500, 500, 12).astype(np.int32),
             **q(float(np.float32(0.04) * np.float32(0.01)))),
        dict(name="logits", shape=[1, 12], type="INT8", **q(0.1, 5)),
        dict(name="scores", shape=[1, 12], type="INT8", **q(1 / 256, -128)),
    ]
    ops.append(("FULLY_CONNECTED", [x, n, n + 1], [n + 2], ("FullyConnectedOptions", {})))
    ops.append(("SOFTMAX", [n + 2], [n + 3], ("SoftmaxOptions", {"beta": 1.0})))
    return craft_model(tensors, ops, inputs=[0], outputs=[n + 3])


def _svdf_f32_layer(tensors: list[dict[str, Any]], x: int, *, rng: np.random.Generator, units: int = 4,
                    rank: int = 1, memory: int = 4, activation: int = 0,
                    name: str = "svdf") -> tuple[int, tuple[Any, ...]]:
    """svdf_layer for float32: normal weights and bias, a float32 state; ``activation`` a TFLite code."""
    batch, size = tensors[x]["shape"]
    filters = units * rank
    base = len(tensors)
    tensors += [
        dict(name=f"{name}_weights_feature", shape=[filters, size], type="FLOAT32",
             data=rng.standard_normal((filters, size)).astype(np.float32)),
        dict(name=f"{name}_weights_time", shape=[filters, memory], type="FLOAT32",
             data=rng.standard_normal((filters, memory)).astype(np.float32)),
        dict(name=f"{name}_bias", shape=[units], type="FLOAT32", data=rng.standard_normal(units).astype(np.float32)),
        dict(name=f"{name}_state", shape=[batch, memory * filters], type="FLOAT32", variable=True),
        dict(name=f"{name}_output", shape=[batch, units], type="FLOAT32"),
    ]
    op = ("SVDF", [x, base, base + 1, base + 2, base + 3], [base + 4],
          ("SVDFOptions", {"rank": rank, "fusedActivationFunction": activation}))
    return base + 4, op
