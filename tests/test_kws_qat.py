"""Quantization-aware training (`tinyml train kws --qat N`, tinyml.train.qat): int8 models of standard
operators that tinyml compiles bit-exactly, both int8 accuracies reported, one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.test_kws_train import REPO, needs_tts, tiny_data, tinyml  # noqa: F401 (tiny_data is a fixture)

has_tfmot = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("tf_keras", "tensorflow_model_optimization")),
    reason="needs tf-keras and tensorflow-model-optimization (make bootstrap installs them)")

# What a converted QAT model may contain: the int8 builtins of the zoo networks and int8 -> int8 QUANTIZE
# (a requantization where a fake-quantized range differs from the one an operator must keep, e.g. after
# AVERAGE_POOL_2D); no FAKE_QUANT, DEQUANTIZE, float or custom operators.
STANDARD_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MEAN", "ADD", "RESHAPE",
                "SOFTMAX", "QUANTIZE"}


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.stdout, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    return lines[0]


def assert_standard_int8(path: Path) -> None:
    from tinyml.graph import load_tflite

    g = load_tflite(path)
    assert {op.kind for op in g.ops} <= STANDARD_OPS, [op.kind for op in g.ops]
    assert [g.tensors[i].dtype for i in g.inputs + g.outputs] == ["int8", "int8"]
    for op in g.ops:
        for k, i in enumerate(op.inputs):
            if i < 0:
                continue
            t = g.tensors[i]
            is_bias = k == 2 and op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
            assert t.dtype == ("int32" if is_bias else "int8") or (t.is_const and t.dtype == "int32"
                                                                    and op.kind in ("RESHAPE", "MEAN")), \
                (op.kind, t.name, t.dtype)
            assert t.quant is not None or t.dtype == "int32", (op.kind, t.name)
        assert all(g.tensors[i].dtype == "int8" and g.tensors[i].quant is not None for i in op.outputs)


def test_qat_off_leaves_the_config_key_unchanged() -> None:
    import hashlib
    from dataclasses import asdict

    from tinyml.train.train import TrainConfig

    for cfg in (TrainConfig(), TrainConfig(model="ds_cnn_m", epochs=5)):
        before = {k: v for k, v in asdict(cfg).items() if k != "qat_epochs"}  # the config before QAT existed
        assert cfg.key() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:12]
        assert TrainConfig(**{**asdict(cfg), "qat_epochs": 3}).key() != cfg.key()


def test_qat_cli_rejects_bad_epochs() -> None:
    for bad in ("-1", "x"):
        line = one_line_error(tinyml("train", "kws", "--synthetic", "--qat", bad))
        assert "argument --qat" in line and bad in line


def test_qat_without_tfmot_is_one_line_error(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(textwrap.dedent("""\
        import sys

        class _Block:  # as if tensorflow-model-optimization were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "tensorflow_model_optimization":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, _Block())
        """))
    data = tmp_path / "data"
    data.mkdir()
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "train", "kws", "--data", str(data), "--qat", "1",
                        "--board", "", "-o", str(tmp_path / "o")], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=f"{shim}{os.pathsep}{REPO}"))
    line = one_line_error(r)
    assert "quantization-aware training needs tf-keras and tensorflow-model-optimization" in line
    assert "pip install --no-deps" in line and "tensorflow_model_optimization" in line
    assert not (tmp_path / "o" / "model.tflite").exists()


@has_tfmot
def test_unsupported_layer_is_one_line_error() -> None:
    import keras

    from tinyml.errors import UnsupportedError
    from tinyml.train.qat import qat_int8

    inp = keras.Input((16, 4))
    x = keras.layers.Conv1D(4, 3)(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x)))
    x = np.zeros((4, 16, 4), np.float32)
    with pytest.raises(UnsupportedError, match=r"layer 'conv1d\w*' \(Conv1D\) has no tf-keras rebuild") as e:
        qat_int8(model, x, np.zeros(4, np.int64), x, epochs=1)
    assert "\n" not in str(e.value) and "without QAT" in str(e.value)


# In a fresh process: Keras 3 before and after QAT in the same process.
_SAME_PROCESS = """
import os, sys
import numpy as np
import keras
from tinyml.train import zoo
from tinyml.train.quantize import quantize_int8
from tinyml.train.qat import qat_int8

rng = np.random.default_rng(0)
x = (rng.normal(size=(64, 49, 10, 1)) * 20).astype(np.float32)
y = rng.integers(0, 12, 64)
model = zoo.ds_cnn((49, 10, 1), channels=16, blocks=2, num_classes=12, seed=0)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=32, epochs=1, verbose=0)
ptq = quantize_int8(model, x[:16])
lines = []
qat = qat_int8(model, [x, x[::-1]], y, x[:16], epochs=2, batch_size=32, x_val=x[:16], y_val=y[:16],
               say=lines.append)
open(sys.argv[1], "wb").write(qat)
import tensorflow as tf
assert os.environ.get("TF_USE_LEGACY_KERAS") is None, "QAT leaked TF_USE_LEGACY_KERAS"
assert keras.__version__.startswith("3.") and tf.keras.version().startswith("3."), tf.keras.version()
assert quantize_int8(model, x[:16]) == ptq, "post-training quantization changed after QAT"
model.save(sys.argv[1] + ".keras")
again = keras.models.load_model(sys.argv[1] + ".keras")
np.testing.assert_allclose(again.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), rtol=1e-5)
fresh = zoo.ds_cnn((49, 10, 1), channels=8, blocks=1, num_classes=12, seed=1)
fresh.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
fresh.fit(x, y, batch_size=32, epochs=1, verbose=0)
epochs = [l for l in lines if l.startswith("QAT epoch")]
assert [l.split(":")[0] for l in epochs] == ["QAT epoch 1/2", "QAT epoch 2/2"], lines
assert all("validation accuracy" in l for l in epochs) and "converted to int8" in lines[-1], lines
from tinyml.train.quantize import weight_scales
per_tensor = qat_int8(model, x, y, x[:16], epochs=1, batch_size=32, per_channel=False, say=lambda _: None)
assert {n for _, n in weight_scales(per_tensor)} == {1}, weight_scales(per_tensor)
print("ok")
"""


@has_tfmot
@pytest.mark.slow
def test_qat_model_is_standard_int8_bitexact_and_keras3_is_unharmed(tmp_path: Path) -> None:
    path = tmp_path / "qat.tflite"
    r = subprocess.run([sys.executable, "-c", _SAME_PROCESS, str(path)], capture_output=True, text=True,
                       cwd=REPO, timeout=600, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
    assert_standard_int8(path)
    from tinyml.train.quantize import weight_scales
    from tinyml.tools.verify import verify_model

    scales = weight_scales(path.read_bytes())  # tfmot's scheme: per-channel convolutions, per-tensor dense
    assert [n for op, n in scales if op == "FULLY_CONNECTED"] == [1]
    assert all(n > 1 for op, n in scales if op != "FULLY_CONNECTED")
    report = verify_model(path, "host", samples=4, work_dir=tmp_path / "v")
    assert report.ok, report.summary()


@has_tfmot
def test_tf_keras_rebuild_gives_the_same_outputs() -> None:
    import keras

    from tinyml.train import zoo
    from tinyml.train.qat import to_tf_keras

    shape = (49, 10, 1)
    models = [zoo.ds_cnn(shape, channels=16, blocks=2, seed=0), zoo.resnet8(shape, 12, seed=0),
              zoo.mobilenet_v2(shape, 0.25, 12, last_channels=64, seed=0),
              keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, activation="relu"),
                                keras.layers.Reshape((36, 4)), keras.layers.Flatten(), keras.layers.Dense(3),
                                keras.layers.Softmax()])]
    rng = np.random.default_rng(0)
    for model in models:
        copy = to_tf_keras(model)
        assert type(copy).__module__.startswith("tf_keras") and copy.count_params() == model.count_params()
        x = rng.normal(size=(4, *model.inputs[0].shape[1:])).astype(np.float32)
        np.testing.assert_allclose(copy(x, training=False).numpy(), np.asarray(model(x, training=False)),
                                   rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def qat_run(tiny_data: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:  # noqa: F811
    out = tmp_path_factory.mktemp("qat") / "run"
    r = tinyml("train", "kws", "--data", str(tiny_data), "--epochs", "2", "--qat", "1", "--board", "host",
               "-o", str(out))
    return out, r


@needs_tts
@has_tfmot
@pytest.mark.slow
def test_train_kws_cli_qat_reports_ptq_and_qat(qat_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, r = qat_run
    assert r.returncode == 0, r.stderr[-3000:]
    err = r.stderr
    assert "epoch  2/2" in err and "QAT epoch 1/1" in err
    assert "post-training int8 accuracy (TFLM)" in err and "quantization-aware int8 accuracy (TFLM)" in err
    res = json.loads((out / "result.json").read_text())
    assert 0.0 <= res["int8_accuracy"] <= 1.0 and 0.0 <= res["ptq_accuracy"] <= 1.0
    from tinyml.train.train import TrainResult, tflite_input_quant

    assert TrainResult.from_json(res).ptq_accuracy == res["ptq_accuracy"]
    old = {k: v for k, v in res.items() if k != "ptq_accuracy"}  # a result.json from before QAT
    assert TrainResult.from_json(old).ptq_accuracy is None
    assert (out / "model.tflite").read_bytes() != (out / "model_ptq.tflite").read_bytes()
    assert_standard_int8(out / "model.tflite")
    assert res["input_scale"] == pytest.approx(tflite_input_quant((out / "model.tflite").read_bytes())[0])
    # the QAT model on the host (C MFCC + generated model) agrees with TFLM on every held-out clip
    m = [line for line in err.splitlines() if "device == TFLM prediction on" in line][0]
    agree, total = m.split("device == TFLM prediction on ")[1].split(" clips")[0].split("/")
    assert agree == total == str(res["counts"]["test"])
    assert "(quantization-aware; post-training" in err


@needs_tts
@has_tfmot
@pytest.mark.qemu
@pytest.mark.slow
def test_qat_model_bitexact_on_qemu(qat_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    out, r = qat_run
    assert r.returncode == 0, r.stderr[-3000:]
    from tinyml.tools.verify import verify_model

    report = verify_model(out / "model.tflite", "mps2-an386", samples=5, work_dir=tmp_path / "v")
    assert report.ok, report.summary()
