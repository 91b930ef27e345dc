"""AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, PAD, CONCATENATION: bit-exact against TFLM.

Besides the modelgen cases, a few variants are made from those models by
patching quantization parameters in the flatbuffer (a concatenation whose
inputs are quantized differently from the output, a MEAN whose input and
output share quantization) and a few by converting small Keras models here
(fused activations on pooling, MEAN over other axes, PAD of other dims,
CONCATENATION along other axes); those are cached like modelgen's models.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from tests.harness import assert_bitexact
from tests.modelgen import GENERATOR_VERSION, build, cache_dir, model_ops, op_cases
from tinyml.codegen.lower import LowerContext
from tinyml.codegen.ops import lower_op
from tinyml.errors import TinymlError
from tinyml.graph.validate import validate_operators
from tinyml.graph.ir import Graph, Op, Quant, Tensor

OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "PAD", "CONCATENATION")
CASES = op_cases(*OPS)


# --------------------------------------------------------------------------
# modelgen cases


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bitexact_host(case: Any, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="host", samples=4)


@pytest.mark.qemu
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bitexact_mps2_an386(case: Any, tmp_path: Path) -> None:
    assert_bitexact(build(case), tmp_path, board="mps2-an386", samples=4)


# --------------------------------------------------------------------------
# variants made by patching quantization parameters of a modelgen model


def _tensor_quant_vectors(model: bytes, tensor: int) -> tuple[int, int, int, int]:
    """Byte positions and lengths of a tensor's scale (float32) and zero point (int64) vectors."""
    import tflite

    buf = bytearray(model)
    m = tflite.Model.GetRootAsModel(buf, 0)
    t = m.Subgraphs(0).Tensors(tensor)
    q = t.Quantization()
    tab = q._tab
    scale_field, zp_field = tab.Offset(8), tab.Offset(10)  # QuantizationParameters.scale, .zero_point
    assert scale_field and zp_field, f"tensor {tensor} has no scale or zero point vector"
    return tab.Vector(scale_field), q.ScaleLength(), tab.Vector(zp_field), q.ZeroPointLength()


def patch_quant(model: bytes, tensor: int, scale: float | None = None, zero_point: int | None = None) -> bytes:
    """A copy of ``model`` with tensor ``tensor``'s per-tensor scale and/or zero point replaced."""
    buf = bytearray(model)
    scale_pos, n_scale, zp_pos, n_zp = _tensor_quant_vectors(model, tensor)
    assert n_scale == 1 and n_zp == 1
    if scale is not None:
        buf[scale_pos:scale_pos + 4] = np.float32(scale).tobytes()
    if zero_point is not None:
        buf[zp_pos:zp_pos + 8] = np.int64(zero_point).tobytes()
    q = _graph(bytes(buf)).tensors[tensor].quant
    assert q is not None
    assert scale is None or q.s == float(np.float32(scale)), (q.s, scale)
    assert zero_point is None or q.zp == zero_point, (q.zp, zero_point)
    return bytes(buf)


def _graph(model: bytes) -> Graph:
    from tinyml.graph.tflite_import import parse_tflite

    return parse_tflite(model)


def _pick(op: str, pred: Callable[[Any], bool] = lambda c: True) -> Any:
    """The first modelgen case of ``op`` that satisfies ``pred`` (ids may change, shapes are stable)."""
    found = [c for c in CASES if c.op == op and pred(c)]
    if not found:
        pytest.fail(f"modelgen has no matching {op} case")
    return found[0]


@pytest.mark.parametrize("scale_factor,zp_delta", [(1.0, 3), (1.0000001, 0), (2.0, 0)])
def test_concat_inputs_quantized_differently_are_rejected(scale_factor: float, zp_delta: int) -> None:
    """TFLM refuses int8 CONCATENATION inputs whose scale or zero point differ from the output's; so do we."""
    from tinyml.compiler import lower_graph
    from tinyml.tools.reference import run_tflm

    model = build(_pick("CONCATENATION", lambda c: len(c.inputs) == 3))
    g = _graph(model)
    op = next(o for o in g.ops if o.kind == "CONCATENATION")
    q = g.tensors[op.inputs[1]].quant
    assert q is not None
    model = patch_quant(model, op.inputs[1], scale=q.s * scale_factor, zero_point=q.zp + zp_delta)
    with pytest.raises(TinymlError, match="quantized differently"):
        lower_graph(_graph(model))
    g = _graph(model)
    with pytest.raises(Exception):  # the oracle agrees that this model is invalid
        run_tflm(model, [np.zeros(g.tensors[t].shape, np.int8) for t in g.inputs])


@pytest.mark.parametrize("keepdims", [False, True])
def test_mean_same_quantization(keepdims: bool, tmp_path: Path) -> None:
    """Equal input and output quantization: the installed TFLM still requantizes (no truncating path)."""
    model = build(_pick("MEAN", lambda c: bool(c.p("keepdims")) == keepdims))
    g = _graph(model)
    op = next(o for o in g.ops if o.kind == "MEAN")
    q = g.tensors[op.inputs[0]].quant
    assert q is not None
    model = patch_quant(model, op.outputs[0], scale=q.s, zero_point=q.zp)
    assert_bitexact(model, tmp_path, board="host", samples=4)


@pytest.mark.parametrize("scale,zp", [(1e-4, 127), (0.9, -128), (0.02, 0)])
def test_mean_extreme_requantization(scale: float, zp: int, tmp_path: Path) -> None:
    """Large and small input/output scale ratios (shift clamping, saturation)."""
    model = build(_pick("MEAN", lambda c: bool(c.p("keepdims"))))
    op = next(o for o in _graph(model).ops if o.kind == "MEAN")
    model = patch_quant(model, op.outputs[0], scale=scale, zero_point=zp)
    assert_bitexact(model, tmp_path, board="host", samples=3)


def test_pad_output_zero_point_is_pad_value(tmp_path: Path) -> None:
    """The padding value is the output zero point, the data is copied unchanged."""
    model = build(_pick("PAD", lambda c: any(a != b for a, b in (c.p("pads") or ()))))
    op = next(o for o in _graph(model).ops if o.kind == "PAD")
    model = patch_quant(model, op.outputs[0], scale=0.3, zero_point=-77)
    assert_bitexact(model, tmp_path, board="host", samples=3)


# --------------------------------------------------------------------------
# extra Keras models (fused activations, other axes), cached like modelgen's


def _tf_version() -> str:
    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def _extra_model(name: str, inputs: list[tuple[int, ...]], body: Callable[[Any, list[Any]], Any],
                 expect: str) -> bytes:
    key = json.dumps({"test_ops_pool": name, "inputs": inputs, "tf": _tf_version(),
                      "generator": GENERATOR_VERSION}, sort_keys=True)
    path = cache_dir() / f"pool-extra-{hashlib.sha256(key.encode()).hexdigest()[:20]}.tflite"
    if path.exists():
        return path.read_bytes()
    import keras

    from tinyml.train.quantize import quantize_int8

    keras.utils.set_random_seed(0)
    ins = [keras.Input(s, batch_size=1, name=f"in{k}") for k, s in enumerate(inputs)]
    model = keras.Model(ins, body(keras, ins))
    rng = np.random.default_rng(5)
    rep = [(rng.normal(0.2, 1.0, size=(48, *s))).astype(np.float32) for s in inputs]
    data = quantize_int8(model, rep, per_channel=True, io_dtype="int8")
    ops = model_ops(data)
    assert expect in ops, f"{name}: expected {expect}, converter produced {ops}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic for parallel workers
    return data


EXTRA: dict[str, tuple[list[tuple[int, ...]], Callable[[Any, list[Any]], Any], str]] = {
    "avgpool-relu": ([(9, 9, 4)], lambda k, x: k.layers.ReLU()(
        k.layers.AveragePooling2D(3, strides=2, padding="same")(x[0])), "AVERAGE_POOL_2D"),
    "avgpool-relu6": ([(8, 8, 4)], lambda k, x: k.layers.ReLU(max_value=6.0)(
        k.layers.AveragePooling2D(2)(k.ops.multiply(x[0], 4.0))), "AVERAGE_POOL_2D"),
    "maxpool-relu": ([(9, 7, 3)], lambda k, x: k.layers.ReLU()(
        k.layers.MaxPooling2D((3, 2), strides=(1, 2), padding="same")(x[0])), "MAX_POOL_2D"),
    "maxpool-relu6": ([(8, 8, 4)], lambda k, x: k.layers.ReLU(max_value=6.0)(
        k.layers.MaxPooling2D(2)(k.ops.multiply(x[0], 4.0))), "MAX_POOL_2D"),
    "mean-axis3": ([(4, 5, 6)], lambda k, x: k.ops.mean(x[0], axis=3), "MEAN"),
    "mean-axis1-keep": ([(6, 5, 4)], lambda k, x: k.ops.mean(x[0], axis=1, keepdims=True), "MEAN"),
    "mean-axis2-3d": ([(7, 9)], lambda k, x: k.ops.mean(x[0], axis=2), "MEAN"),
    "pad-channels": ([(4, 4, 3)], lambda k, x: k.ops.pad(x[0], [[0, 0], [1, 0], [0, 2], [2, 1]]), "PAD"),
    "pad-2d": ([(10,)], lambda k, x: k.ops.pad(x[0], [[0, 0], [3, 1]]), "PAD"),
    "concat-axis2": ([(3, 2, 4), (3, 5, 4)], lambda k, x: k.layers.Concatenate(axis=2)(x), "CONCATENATION"),
    "concat-4-inputs": ([(2, 3, 2), (2, 3, 1), (2, 3, 4), (2, 3, 3)],
                        lambda k, x: k.layers.Concatenate(axis=-1)(x), "CONCATENATION"),
}


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_extra_host(name: str, tmp_path: Path) -> None:
    inputs, body, expect = EXTRA[name]
    assert_bitexact(_extra_model(name, inputs, body, expect), tmp_path, board="host", samples=4)


@pytest.mark.qemu
@pytest.mark.parametrize("name", sorted(EXTRA))
def test_extra_mps2_an386(name: str, tmp_path: Path) -> None:
    inputs, body, expect = EXTRA[name]
    assert_bitexact(_extra_model(name, inputs, body, expect), tmp_path, board="mps2-an386", samples=4)


def test_extra_pool_activations_are_fused() -> None:
    """The fused-activation models really carry RELU/RELU6 on the pooling op."""
    for name in ("avgpool-relu", "avgpool-relu6", "maxpool-relu", "maxpool-relu6"):
        inputs, body, expect = EXTRA[name]
        g = _graph(_extra_model(name, inputs, body, expect))
        op = next(o for o in g.ops if o.kind == expect)
        assert op.options["activation"] in ("RELU", "RELU6"), (name, op.options)


# --------------------------------------------------------------------------
# unsupported variants give one clean error (from validation or lowering)


def _q(scale: float = 0.05, zp: int = 0) -> Quant:
    return Quant(scale=np.asarray([scale], np.float32), zero_point=np.asarray([zp], np.int64))


def _lower(tensors: list[Tensor], op: Op) -> Any:
    g = Graph(name="t", tensors=tensors, ops=[op], inputs=[0], outputs=[op.outputs[0]])
    validate_operators(g)
    return lower_op(LowerContext(graph=g), op)


def _expect_unsupported(tensors: list[Tensor], op: Op, *words: str) -> str:
    with pytest.raises(TinymlError) as e:
        _lower(tensors, op)
    msg = str(e.value)
    assert "\n" not in msg and f"operator 0 ({op.kind})" in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def _pool_op(kind: str = "MAX_POOL_2D", **opts: Any) -> Op:
    o = dict(padding="VALID", stride_h=2, stride_w=2, filter_h=2, filter_w=2, activation="NONE")
    o.update(opts)
    return Op(index=0, kind=kind, inputs=[0], outputs=[1], options=o)


def test_pool_lowering_params() -> None:
    ts = [Tensor(0, "x", (1, 9, 9, 5), "int8", _q(0.1, 3)), Tensor(1, "y", (1, 5, 5, 5), "int8", _q(0.1, 3))]
    call = _lower(ts, _pool_op("AVERAGE_POOL_2D", padding="SAME", filter_h=3, filter_w=3, activation="RELU6"))
    assert call.kernel == "avgpool_s8"
    assert (call.params["pad_h"], call.params["pad_w"]) == (1, 1)
    assert (call.params["act_min"], call.params["act_max"]) == (3, 63)


def test_pool_rejects_different_quantization() -> None:
    ts = [Tensor(0, "x", (1, 8, 8, 4), "int8", _q(0.1, 0)), Tensor(1, "y", (1, 4, 4, 4), "int8", _q(0.2, 0))]
    _expect_unsupported(ts, _pool_op(), "quantized differently")


def test_pool_rejects_mixed_types_and_tanh() -> None:
    ts = [Tensor(0, "x", (1, 8, 8, 4), "float32"), Tensor(1, "y", (1, 4, 4, 4), "float32")]
    assert _lower(ts, _pool_op()).kernel == "maxpool_f32"  # a float32 pool (tests/test_float32.py)
    ts = [Tensor(0, "x", (1, 8, 8, 4), "float32"), Tensor(1, "y", (1, 4, 4, 4), "int8", _q())]
    _expect_unsupported(ts, _pool_op(), "mixes int8 and float32")
    ts = [Tensor(0, "x", (1, 8, 8, 4), "int8", _q()), Tensor(1, "y", (1, 4, 4, 4), "int8", _q())]
    _expect_unsupported(ts, _pool_op(activation="TANH"), "TANH")


def test_pool_rejects_wrong_output_size() -> None:
    ts = [Tensor(0, "x", (1, 8, 8, 4), "int8", _q()), Tensor(1, "y", (1, 3, 4, 4), "int8", _q())]
    _expect_unsupported(ts, _pool_op(), "VALID padding")


def _mean_tensors(axes: list[int], in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[Tensor]:
    return [Tensor(0, "x", in_shape, "int8", _q(0.1, 1)), Tensor(1, "y", out_shape, "int8", _q(0.05, -3)),
            Tensor(2, "axes", (len(axes),), "int32", data=np.asarray(axes, np.int32))]


def test_mean_rejects_bad_axes() -> None:
    op = Op(index=0, kind="MEAN", inputs=[0, 2], outputs=[1], options=dict(keep_dims=False))
    _expect_unsupported(_mean_tensors([4], (1, 4, 4, 8), (1, 4, 4, 8)), op, "axis 4", "out of range")
    ts = _mean_tensors([1, 2], (1, 4, 4, 8), (1, 8))
    ts[2] = Tensor(2, "axes", (2,), "int32")  # not a constant
    _expect_unsupported(ts, op, "axis", "constant")
    ts = [Tensor(0, "x", (1, 2, 2, 2, 2), "int8", _q()), Tensor(1, "y", (1, 2), "int8", _q()),
          Tensor(2, "axes", (3,), "int32", data=np.asarray([1, 2, 3], np.int32))]
    _expect_unsupported(ts, op, "1-D to 4-D")


def test_mean_multiplier_folds_count() -> None:
    from tinyml.codegen.ops.pool import mean_multiplier

    # TFLM: QuantizeMultiplier(0.5) = (2^30, 0); count 64 -> shift folded by 6, multiplier exact.
    assert mean_multiplier(0.1, 0.2, 64) == ((1 << 30) * 64 // 64, -6)
    m, s = mean_multiplier(0.1, 0.05, 63)
    assert s == 2 - 5 and m == ((1 << 30) << 5) // 63
    call = _lower(_mean_tensors([-1, 2, 1, 2], (1, 4, 4, 8), (1, 1)),
                  Op(index=0, kind="MEAN", inputs=[0, 2], outputs=[1], options=dict(keep_dims=False)))
    assert call.params["count"] == 4 * 4 * 8 and call.params["r0"] == 0 and call.params["r3"] == 1


def test_pad_rejects_bad_paddings() -> None:
    def ts(pads: Any, out_shape: tuple[int, ...], dtype: str = "int32") -> list[Tensor]:
        return [Tensor(0, "x", (1, 4, 4, 2), "int8", _q()), Tensor(1, "y", out_shape, "int8", _q()),
                Tensor(2, "pads", np.asarray(pads).shape, dtype, data=np.asarray(pads, dtype))]

    op = Op(index=0, kind="PAD", inputs=[0, 2], outputs=[1])
    _expect_unsupported(ts([[0, 0], [-1, 0], [0, 0], [0, 0]], (1, 3, 4, 2)), op, "negative")
    _expect_unsupported(ts([[0, 0], [1, 1], [0, 0]], (1, 6, 4, 2)), op, "4x2")
    _expect_unsupported(ts([[0, 0], [1, 1], [0, 0], [0, 0]], (1, 6, 5, 2)), op, "gives [1, 6, 4, 2] (allowed: equal)")
    _expect_unsupported(ts([[0, 0], [1, 1], [0, 0], [0, 0]], (1, 6, 4, 2), "int64"), op, "int64")


def test_concat_rejects_bad_inputs() -> None:
    def ts(b_shape: tuple[int, ...], out_shape: tuple[int, ...], b_dtype: str = "int8") -> list[Tensor]:
        return [Tensor(0, "a", (1, 4, 4, 2), "int8", _q()), Tensor(1, "y", out_shape, "int8", _q()),
                Tensor(2, "b", b_shape, b_dtype, _q() if b_dtype == "int8" else None)]

    op = Op(index=0, kind="CONCATENATION", inputs=[0, 2], outputs=[1], options=dict(axis=-1, activation="NONE"))
    _expect_unsupported(ts((1, 4, 3, 2), (1, 4, 4, 4)), op, "does not fit")
    _expect_unsupported(ts((1, 4, 4, 3), (1, 4, 4, 4)), op, "add up to 5")
    _expect_unsupported(ts((1, 4, 4, 2), (1, 4, 4, 4), "float32"), op, "float32")
    relu = Op(index=0, kind="CONCATENATION", inputs=[0, 2], outputs=[1], options=dict(axis=3, activation="RELU"))
    _expect_unsupported(ts((1, 4, 4, 2), (1, 4, 4, 4)), relu, "RELU")
    bad_axis = Op(index=0, kind="CONCATENATION", inputs=[0, 2], outputs=[1], options=dict(axis=4, activation="NONE"))
    _expect_unsupported(ts((1, 4, 4, 2), (1, 4, 4, 4)), bad_axis, "axis 4 is out of range; allowed is [-4, 3]")


def test_concat_lowering_params() -> None:
    ts = [Tensor(0, "a", (1, 4, 3, 2), "int8", _q()), Tensor(1, "y", (1, 4, 8, 2), "int8", _q()),
          Tensor(2, "b", (1, 4, 5, 2), "int8", _q())]
    op = Op(index=0, kind="CONCATENATION", inputs=[0, 2], outputs=[1], options=dict(axis=-2, activation="NONE"))
    call = _lower(ts, op)
    assert call.params["outer"] == 4 and call.params["out_chunk"] == 16
    assert call.consts[0].values.tolist() == [6, 10]
    assert [a.tensor for a in call.args] == [1, 0, 2] and call.args[0].writable
