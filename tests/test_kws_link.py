"""Keyword spotting over the serial host link: audio in over a UART, detections back.

The KWS host-link firmware (templates/kws/link_main.c.j2) runs on netduinoplus2 under QEMU with
its USART on a local socket, driven by the same client a real board gets (``socket://`` URL);
its windows, scores and detections must be exactly those of the semihosting firmware
(templates/project/kws_main.c.j2) on the same audio, whose scores the feature tests check
against TFLM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent

needs_tts = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make bootstrap)")


def tinyml(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "tinyml.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _words(words: list[str], seed: int) -> np.ndarray:
    from tinyml.train.synth import SynthConfig, Voice, _augment, synthesize_word

    rng = np.random.default_rng(seed)
    cfg = SynthConfig()
    voices = [Voice("espeak-ng", "m3"), Voice("espeak-ng", "f2")]
    return np.stack([_augment(synthesize_word(voices[i % 2], w, rng, cfg), [], rng, cfg)
                     for i, w in enumerate(words)])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A small int8 model with the KWS input and output, and 1.5 s of speech."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    keras = pytest.importorskip("keras")
    from tinyml.train.features import mfcc_batch
    from tinyml.train.quantize import quantize_int8

    clips = _words(["yes", "stop", "left", "go"], seed=3)
    keras.utils.set_random_seed(1)
    inp = keras.Input((49, 10, 1))
    x = keras.layers.Conv2D(8, (10, 4), strides=2, padding="same", activation="relu")(inp)
    x = keras.layers.AveragePooling2D((25, 5))(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(12, activation="softmax")(x))
    path = tmp_path_factory.mktemp("kwslink") / "tiny_kws.tflite"
    path.write_bytes(quantize_int8(model, mfcc_batch(clips)))
    return path, np.concatenate([clips[0], clips[1][:8000]])


def test_chunks_follow_the_semihosting_windows() -> None:
    from tinyml.apps.kws_link import _chunks

    chunks = _chunks(16000 + 3 * 4000 + 100, 4000)
    assert [n for _, n in chunks] == [4000] * 4 + [4000] * 3  # the tail shorter than a hop is not sent
    assert all(a + n == b for (a, n), (b, _) in zip(chunks, chunks[1:]))
    assert [n for _, n in _chunks(20000, 2500)] == [4000] * 4 + [2500]


def test_kws_stream_cli_errors(tmp_path: Path) -> None:
    r = tinyml("kws", "stream", "x.wav")
    assert r.returncode == 2 and "one of the arguments --port/-p --project is required" in r.stderr
    r = tinyml("kws", "stream", str(tmp_path / "missing.wav"), "--port", "socket://127.0.0.1:1")
    assert r.returncode == 2 and "no such audio file" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    from tinyml.train.speech_commands import write_wav

    wav = tmp_path / "a.wav"
    write_wav(wav, np.zeros(20000, dtype=np.int16))
    r = tinyml("kws", "stream", str(wav), "--project", str(tmp_path))
    assert r.returncode == 2 and "not a keyword-spotting firmware project" in r.stderr
    r = tinyml("kws", "stream", str(wav), "--port", "socket://127.0.0.1:1", "--hop-ms", "500")
    assert r.returncode == 2 and "hop must be 1..4000 samples" in r.stderr
    r = tinyml("kws", "stream", str(wav), "--port", "socket://127.0.0.1:1")
    assert r.returncode == 2 and "cannot open serial port" in r.stderr and "Traceback" not in r.stderr


@needs_tts
@pytest.mark.qemu
@pytest.mark.slow
def test_kws_stream_over_uart_equals_semihosting(tiny, tmp_path: Path) -> None:
    from tinyml.apps.kws import compile_kws, run_stream
    from tinyml.apps.kws_link import stream_audio

    path, audio = tiny
    uart = tmp_path / "netduino"
    compile_kws(path, "netduinoplus2", uart)
    assert (uart / "hostlink" / "main.c").is_file() and "kws-stream-1" in (uart / "hostlink" / "main.c").read_text()
    seen = []
    got = stream_audio(audio, project=uart, hop_ms=250, smoothing=2, threshold=0.0, on_detection=seen.append)
    assert got.board == "netduinoplus2" and got.model == "kws" and got.naks == 0
    assert got.window_ends == [16000, 20000, 24000] and got.scores.shape == (3, 12)
    assert got.bytes_sent == 2 * len(audio) + 6 * 24 and seen == got.detections

    semi = tmp_path / "an386"
    compile_kws(path, "mps2-an386", semi)
    ref = run_stream(semi, audio, hop=4000, smoothing=2, threshold=0.0)
    assert np.array_equal(got.scores, ref.scores)
    assert [(d.time, d.label, d.confidence, d.window) for d in got.detections] == \
        [(d.time, d.label, d.confidence, d.window) for d in ref.detections]
    assert got.detections, "threshold 0: the first window's best keyword is a detection"

    # The same through the CLI, on the mps2-an386 project's host-link build (make HOSTLINK=1).
    from tinyml.train.speech_commands import write_wav

    wav = tmp_path / "clip.wav"
    write_wav(wav, audio)
    r = tinyml("kws", "stream", str(wav), "--project", str(semi), "--smoothing", "2", "--threshold", "0")
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line.split() for line in r.stdout.splitlines()]
    assert [(float(x[0]), x[2], float(x[4]), int(x[6])) for x in lines] == \
        [(d.time, d.label, d.confidence, d.window) for d in ref.detections]
    assert "3 windows" in r.stderr and "mps2-an386" in r.stderr
