"""The MLPerf Tiny MFCC front end: numpy against tf.signal, and the C front end against numpy.

The C front end is checked inside the streaming KWS firmware, on the host
(gcc with sanitizers) and on mps2-an386 under QEMU: the int8 features it
computes from real (synthesized) speech must equal the Python int8 features
on at least 99% of the values and be within one step everywhere, and the
model's scores must be bit-exact with TFLM run on the device's features.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyml.train.features import MLPERF_KWS, mel_matrix, mfcc_batch, mfcc_tables, quantize_features

needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                               reason="needs espeak-ng and flite (make bootstrap installs them)")


def _tf():
    return pytest.importorskip("tensorflow")


def _reference_mfcc(audio: np.ndarray) -> np.ndarray:
    """MLPerf Tiny's get_dataset.py front end, written with tf.signal."""
    tf = _tf()
    w = tf.cast(audio, tf.float32)
    w = w / tf.reduce_max(w)
    stfts = tf.signal.stft(w, frame_length=480, frame_step=320, fft_length=None, window_fn=tf.signal.hann_window)
    spec = tf.abs(stfts)
    m = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    mel = tf.tensordot(spec, m, 1)
    logmel = tf.math.log(mel + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(logmel)[..., :10].numpy()


def _speech(n_words: int = 6, seed: int = 0) -> np.ndarray:
    """A few synthesized words (espeak-ng and flite) as 1 s int16 clips."""
    from tinyml.train.synth import SynthConfig, Voice, _augment, synthesize_word

    rng = np.random.default_rng(seed)
    cfg = SynthConfig()
    voices = [Voice("espeak-ng", "m3"), Voice("flite", "slt"), Voice("espeak-ng", "f2")]
    words = ["yes", "stop", "left", "go", "off", "seven"]
    return np.stack([_augment(synthesize_word(voices[i % 3], words[i % len(words)], rng, cfg), [], rng, cfg)
                     for i in range(n_words)])


def test_shape_and_tables() -> None:
    assert MLPERF_KWS.shape == (49, 10, 1)
    t = mfcc_tables()
    w = mel_matrix()
    # The sparse mel filters of the C tables rebuild the dense matrix.
    dense = np.zeros_like(w)
    for m in range(40):
        s, n, o = t["mel_start"][m], t["mel_len"][m], t["mel_offset"][m]
        dense[s:s + n, m] = t["mel_weights"][o:o + n]
    assert np.array_equal(dense, w)
    assert t["max_bin"] <= 129 and len(t["window"]) == 480


def test_mel_matrix_matches_tensorflow() -> None:
    tf = _tf()
    ref = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0).numpy()
    np.testing.assert_allclose(mel_matrix(), ref, atol=2e-5)


def test_numpy_mfcc_matches_tf_signal() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    clips = [
        (rng.standard_normal(16000) * 3000).astype(np.int16),
        (np.sin(2 * np.pi * 440 * t) * 20000 + rng.normal(0, 200, 16000)).astype(np.int16),
        np.concatenate([np.zeros(6000), rng.normal(0, 5000, 10000)]).astype(np.int16),
    ]
    ours = mfcc_batch(np.stack(clips))[..., 0]
    for clip, o in zip(clips, ours):
        ref = _reference_mfcc(clip)
        np.testing.assert_allclose(o, ref, atol=2e-3 * max(1.0, float(np.abs(ref).max())) / 10)


def test_mfcc_batch_in_blocks_and_in_float32() -> None:
    rng = np.random.default_rng(1)
    clips = (rng.standard_normal((1100, 16000)) * rng.uniform(10, 8000, (1100, 1))).astype(np.int16)
    whole = mfcc_batch(clips)  # three blocks
    assert whole.shape == (1100, 49, 10, 1) and whole.dtype == np.float32
    assert np.array_equal(whole[1030:], mfcc_batch(clips[1030:]))  # a clip's features do not depend on its block
    fast = mfcc_batch(clips, dtype=np.float32)
    np.testing.assert_allclose(fast, whole, atol=1e-4)
    assert not np.array_equal(fast, whole)  # computed in single precision


@needs_tts
def test_numpy_mfcc_matches_tf_signal_on_speech() -> None:
    clips = _speech(3)
    ours = mfcc_batch(clips)[..., 0]
    for clip, o in zip(clips, ours):
        np.testing.assert_allclose(o, _reference_mfcc(clip), atol=2e-3)


def test_quantize_rounds_half_away_from_zero() -> None:
    q = quantize_features(np.array([0.5, -0.5, 1.49, -1.5, 1000.0, -1000.0]), 1.0, 0)
    assert q.tolist() == [1, -1, 1, -2, 127, -128]
    assert quantize_features(np.array([0.25]), 0.5, -3).tolist() == [-2]


@pytest.fixture(scope="module")
def tiny_kws(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A small int8 model with the KWS input and output, quantized on speech features."""
    keras = pytest.importorskip("keras")
    from tinyml.train.quantize import quantize_int8

    clips = _speech(6, seed=1)
    keras.utils.set_random_seed(0)
    inp = keras.Input((49, 10, 1))
    x = keras.layers.Conv2D(8, (10, 4), strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.AveragePooling2D((25, 5))(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(12, activation="softmax")(x)
    model = keras.Model(inp, out)
    path = tmp_path_factory.mktemp("kws") / "tiny_kws.tflite"
    path.write_bytes(quantize_int8(model, mfcc_batch(clips)))
    return path, clips


def _check_device(tiny_kws, board: str, tmp_path: Path) -> None:
    from tinyml.apps.kws import compile_kws, evaluate_on_device, run_stream
    from tinyml.train.speech_commands import LABELS
    from tinyml.train.train import tflite_input_quant

    path, clips = tiny_kws
    clips = np.concatenate([clips, _speech(4, seed=2)])
    tfl = path.read_bytes()
    scale, zp = tflite_input_quant(tfl)
    project = tmp_path / "proj"
    compile_kws(path, board, project)
    labels = np.zeros(len(clips), dtype=np.int64)
    ev = evaluate_on_device(project, tfl, clips, labels, scale, zp)
    assert ev.clips == len(clips)
    assert ev.features_equal >= 0.99 and ev.features_max_diff <= 1, ev
    assert ev.scores_bitexact == len(clips), ev
    # Streaming: a 3 s stream with a 0.5 s hop gives 5 windows; window k covers samples 8000k..8000k+16000.
    stream = np.concatenate(clips[:3])
    res = run_stream(project, stream, hop=8000, smoothing=2, threshold=0.0, features=True)
    assert res.features is not None and len(res.scores) == 5
    py = quantize_features(mfcc_batch(np.stack([stream[8000 * k:8000 * k + 16000] for k in range(5)])), scale, zp)
    diff = np.abs(py.astype(int) - res.features.astype(int))
    assert diff.max() <= 1 and np.mean(diff == 0) >= 0.99
    # With threshold 0 every window whose smoothed best class is a keyword prints a detection (or repeats one).
    for d in res.detections:
        assert d.label in LABELS and 0.0 <= d.confidence <= 1.0 and 1 <= d.window <= 5
        assert d.time == pytest.approx((16000 + 8000 * (d.window - 1)) / 16000)
    assert "tinyml: tiny_kws: 5 windows" in res.console or "5 windows" in res.console


@needs_tts
def test_c_mfcc_and_model_on_host(tiny_kws, tmp_path: Path) -> None:
    _check_device(tiny_kws, "host", tmp_path)


@needs_tts
@pytest.mark.qemu
def test_c_mfcc_and_model_on_qemu(tiny_kws, tmp_path: Path) -> None:
    _check_device(tiny_kws, "mps2-an386", tmp_path)


def test_kws_firmware_rejects_bad_header(tiny_kws, tmp_path: Path) -> None:
    from tinyml.errors import RunError
    from tinyml.apps.kws import compile_kws
    from tinyml.targets.run import run_project

    path, _ = tiny_kws
    compile_kws(path, "host", tmp_path / "p")
    with pytest.raises(RunError, match="exit code 4"):
        run_project(tmp_path / "p", b"WAVE" + bytes(20))


def test_compile_kws_cli_and_wrong_model(tiny_kws, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tinyml.cli import build_parser

    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(repo))
    path, _ = tiny_kws
    out = tmp_path / "fw"
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "compile", str(path), "--board", "host", "-o", str(out),
                        "--kws"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "kws_mfcc.c").is_file() and "kws_labels" in (out / "main.c").read_text()
    assert "TML_KWS_FRAMES 49" in (out / "kws_mfcc.h").read_text()
    # a model that is not 49x10x1 -> 12 is refused in one line
    keras = pytest.importorskip("keras")
    from tinyml.train.quantize import quantize_int8

    inp = keras.Input((8, 8, 1))
    m = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inp)))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(quantize_int8(m, np.random.default_rng(0).normal(size=(8, 8, 8, 1))))
    r = subprocess.run([sys.executable, "-m", "tinyml.cli", "compile", str(bad), "--board", "host", "-o",
                        str(tmp_path / "fw2"), "--kws"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "49x10x1" in r.stderr
    assert not (tmp_path / "fw2").exists()
    # `tinyml demo` is the KWS demo; the random DS-CNN check stays reachable
    p = build_parser()
    assert p.parse_args(["demo"]).which == "kws" and p.parse_args(["demo", "dscnn"]).which == "dscnn"
