"""`tinyml train kws` end to end on a tiny synthetic set: training, int8, on-device evaluation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                               reason="needs espeak-ng and flite (make bootstrap installs them)")


def tinyml(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True,
                          env=e, timeout=900)


def test_train_cli_errors(tmp_path: Path) -> None:
    r = tinyml("train", "kws")
    assert r.returncode == 2 and "one of the arguments --data --synthetic is required" in r.stderr
    r = tinyml("train", "kws", "--data", str(tmp_path / "nope"), "--board", "host")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "no such" in r.stderr and "Traceback" not in r.stderr
    r = tinyml("train", "kws", "--synthetic", "--model", "lenet")
    assert r.returncode == 2 and "unknown model 'lenet'" in r.stderr
    r = tinyml("train", "kws", "--synthetic", "--seed", "one")
    assert r.returncode == 2 and "'one' is not a seed" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("needs espeak-ng and flite")
    from tinyml.train.synth import SynthConfig, Voice, generate_dataset

    voices = tuple(Voice("espeak-ng", v) for v in ("m1", "f2", "klatt", "m3", "f4", "m7")) + (
        Voice("flite", "kal16"), Voice("flite", "awb"), Voice("flite", "kal"))
    cfg = SynthConfig(renders_per_word=2, eval_renders_per_word=1, voices=voices, test_fraction=0.2,
                      validation_fraction=0.2, noise_seconds=3, espeak_random_variants=2)
    return generate_dataset(tmp_path_factory.mktemp("kwsdata") / "syn", cfg)


@needs_tts
@pytest.mark.slow
def test_train_kws_cli_reports_float_int8_and_device(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = tinyml("train", "kws", "--data", str(tiny_data), "--epochs", "2", "--board", "host", "-o", str(out),
               "--dense-per-tensor")
    assert r.returncode == 0, r.stderr[-3000:]
    err = r.stderr
    assert "epoch  1/2" in err and "epoch  2/2" in err
    assert "float accuracy" in err and "int8 accuracy (TFLM)" in err and "on-device accuracy" in err
    res = json.loads((out / "result.json").read_text())
    assert 0.0 <= res["int8_accuracy"] <= 1.0 and res["epochs_run"] == 2
    assert sum(map(sum, res["confusion"])) == res["counts"]["test"]
    for f in ("model.tflite", "best.keras", "history.json", "confusion_int8.png", "confusion_device.png"):
        assert (out / f).is_file(), f
    # on the host the device (C MFCC + generated model) and TFLM agree on every held-out clip
    m = [line for line in err.splitlines() if "device == TFLM prediction on" in line][0]
    agree, total = m.split("device == TFLM prediction on ")[1].split(" clips")[0].split("/")
    assert agree == total == str(res["counts"]["test"])
    # --dense-per-tensor: one scale for the dense weights, per-channel convolutions
    from tinyml.train.quantize import weight_scales

    scales = weight_scales((out / "model.tflite").read_bytes())
    assert [n for op, n in scales if op == "FULLY_CONNECTED"] == [1]
    assert all(n > 1 for op, n in scales if op != "FULLY_CONNECTED")
    # A second run reuses the result (no training).
    r2 = tinyml("train", "kws", "--data", str(tiny_data), "--epochs", "2", "--board", "", "-o", str(out),
                "--dense-per-tensor")
    assert r2.returncode == 0 and "using cached model" in r2.stderr and "epoch" not in r2.stderr


def _train_tiny(data: Path, out: Path, **options: object) -> tuple[dict, list[str], object]:
    """Train on the tiny set (8 clips per class); returns the splits, the log lines and the result."""
    pytest.importorskip("keras")
    from tinyml.train.speech_commands import load_speech_commands
    from tinyml.train.train import TrainConfig, train_kws

    splits = load_speech_commands(data, max_per_class=8)
    lines: list[str] = []
    cfg = TrainConfig(augment_variants=1, representative=20, **options)
    return splits, lines, train_kws(data, out, cfg, say=lines.append, progress_bar=False, splits=splits)


def _validation_accuracy(keras_file: str | Path, splits: dict) -> float:
    import keras

    from tinyml.train.features import mfcc_batch

    pred = np.argmax(keras.models.load_model(keras_file).predict(mfcc_batch(splits["validation"].audio),
                                                                   verbose=0), 1)
    return float(np.mean(pred == splits["validation"].labels))


@needs_tts
@pytest.mark.slow
def test_train_kws_early_stopping_and_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    splits, lines, res = _train_tiny(tiny_data, tmp_path / "r", epochs=6, patience=1, average_epochs=0)
    val = [h["val_accuracy"] for h in json.loads((tmp_path / "r" / "history.json").read_text())]
    assert len(val) == res.epochs_run
    # patience 1: every epoch but the last improved on the best so far; the last did not, or all 6 ran
    for k in range(1, len(val) - 1):
        assert val[k] > max(val[:k]), val
    if len(val) < 6:
        assert val[-1] <= max(val[:-1]) or max(val[:-1]) >= 1.0, val
        assert any("early stop" in line for line in lines)
    assert res.val_accuracy == pytest.approx(max(val))
    # the checkpoint is the best epoch's model
    assert _validation_accuracy(res.keras, splits) == pytest.approx(max(val))
    assert np.asarray(res.confusion).sum() == len(splits["test"])


@needs_tts
@pytest.mark.slow
def test_train_kws_weight_averaging_keeps_the_mean_of_the_last_epochs(tiny_data: Path, tmp_path: Path) -> None:
    splits, lines, res = _train_tiny(tiny_data, tmp_path / "r", epochs=4, average_epochs=3)
    assert res.epochs_run == 4
    # at most the second half of a short schedule is averaged
    assert [line.split(":")[0] for line in lines if "(averaged" in line] == ["epoch  3/4", "epoch  4/4"]
    assert any(line.startswith("weights averaged over the last 2 epochs") for line in lines)
    assert Path(res.keras).name == "averaged.keras" and (tmp_path / "r" / "best.keras").is_file()
    assert _validation_accuracy(res.keras, splits) == pytest.approx(res.val_accuracy)


def test_weight_average_is_the_elementwise_mean_in_the_original_dtypes() -> None:
    from tinyml.train.train import WeightAverage

    avg = WeightAverage()
    avg.add([np.array([1.0, 2.0], np.float32), np.array([[3.0]], np.float32)])
    avg.add([np.array([2.0, 4.0], np.float32), np.array([[5.0]], np.float32)])
    avg.add([np.array([6.0, 0.0], np.float32), np.array([[1.0]], np.float32)])
    a, b = avg.mean()
    assert avg.count == 3 and a.dtype == np.float32 and b.shape == (1, 1)
    np.testing.assert_allclose(a, [3.0, 2.0])
    np.testing.assert_allclose(b, [[3.0]])
    with pytest.raises(ValueError):
        avg.add([np.zeros(2, np.float32)])  # a different model


def test_ds_cnn_dropout_is_set_by_the_training_config() -> None:
    pytest.importorskip("keras")
    from tinyml.train.train import TrainConfig, build_model

    for rate in (0.1, 0.0):
        for size in ("s", "m"):
            model = build_model(TrainConfig(model=f"ds_cnn_{size}", dropout=rate), 12)
            assert [layer.rate for layer in model.layers if layer.name.startswith("dropout")] == [rate, 2 * rate]


def test_spec_mask_replaces_blocks_of_frames_and_coefficients_by_the_clip_mean() -> None:
    from tinyml.train.train import TrainConfig, spec_mask

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 49, 10, 1)).astype(np.float32) + np.arange(10, dtype=np.float32)[None, None, :, None]
    cfg = TrainConfig(time_masks=1, time_mask_frames=6, coefficient_masks=0)
    y = spec_mask(x, np.random.default_rng(1), cfg)
    assert y.shape == x.shape and y.dtype == x.dtype
    changed = np.any(y != x, axis=(2, 3))  # (clips, frames)
    mean = x.mean(axis=1, keepdims=True)
    for i in range(len(x)):
        frames = np.nonzero(changed[i])[0]
        assert len(frames) <= 6
        if len(frames):  # one contiguous block, every coefficient set to the clip's mean
            assert frames[-1] - frames[0] + 1 == len(frames)
            np.testing.assert_allclose(y[i, frames], np.broadcast_to(mean[i], y[i, frames].shape), rtol=1e-6)
    assert changed.any(axis=1).mean() > 0.5  # most clips got a mask (width 0 is possible)
    cfg = TrainConfig(time_masks=0, coefficient_masks=2, coefficient_mask_width=2)
    y = spec_mask(x, np.random.default_rng(2), cfg)
    coefs = np.any(y != x, axis=(1, 3))  # (clips, coefficients)
    assert coefs.sum(axis=1).max() <= 4 and coefs.any()
    assert np.array_equal(np.any(y != x, axis=(2, 3)), np.broadcast_to(coefs.any(axis=1)[:, None], (64, 49)))
    unmasked = TrainConfig(time_masks=0, coefficient_masks=0)
    assert np.array_equal(spec_mask(x, np.random.default_rng(3), unmasked), x)


def test_change_speed_scales_frequencies_and_keeps_the_clip_length() -> None:
    from tinyml.train.train import change_speed

    t = np.arange(16000) / 16000
    clip = (0.5 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    clip[:4000] = 0  # the tone starts at 0.25 s
    for factor in (0.8, 1.0, 1.25):
        y = change_speed(clip, factor)
        assert y.shape == clip.shape and y.dtype == clip.dtype
        peak = np.argmax(np.abs(np.fft.rfft(y)))  # 1 Hz bins
        assert abs(peak - 500 * factor) <= 2, (factor, peak)
        assert np.max(np.abs(y)) == pytest.approx(0.5, abs=0.05)
    slow = change_speed(clip, 0.8)  # 1.25 s of audio, the centre second kept
    assert np.max(np.abs(slow[:2000])) < 0.05  # the onset moved to about 0.19 s
    fast = change_speed(clip, 1.25)  # 0.8 s of audio, centred with silence on both sides
    assert np.all(fast[:1000] == 0) and np.all(fast[-1000:] == 0)


def test_mixup_blends_features_and_labels_with_the_same_weight() -> None:
    from tinyml.train.train import mixup

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 49, 10, 1)).astype(np.float32)
    y = rng.integers(0, 12, 200)
    xs, ys = mixup(x, y, 12, 0.0, rng, smoothing=0.12)  # smoothing only
    assert xs is x and np.allclose(ys.sum(1), 1) and np.allclose(ys[np.arange(200), y], 1 - 0.12 + 0.01)
    xm, ym = mixup(x, y, 12, 0.4, rng)
    assert xm.dtype == x.dtype and ym.shape == (200, 12) and np.allclose(ym.sum(1), 1)
    own = ym[np.arange(200), y]
    assert np.all(own >= 0.5 - 1e-6) and np.any(own < 0.95)  # the clip's own label stays dominant
    for i in range(200):  # x_i' = lam x_i + (1 - lam) x_j with lam = the weight of the own label
        lam = own[i] if ym[i].max() == own[i] else None
        if lam is None or lam >= 1 - 1e-6:
            continue
        j = np.argmin([np.abs(xm[i] - lam * x[i] - (1 - lam) * x[k]).max() for k in range(200)])
        np.testing.assert_allclose(xm[i], lam * x[i] + (1 - lam) * x[j], atol=1e-5)
