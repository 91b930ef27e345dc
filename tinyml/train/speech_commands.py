"""The Speech Commands layout: loader, and download of the official archive.

A dataset directory holds one folder per word with 16 kHz mono 16-bit WAV
clips (``<speaker>_nohash_<n>.wav``), a ``_background_noise_`` folder of
longer noise recordings, and the lists ``validation_list.txt`` and
``testing_list.txt`` (paths relative to the directory); every clip in
neither list is training data.  The synthetic generator (``synth.py``)
writes the same layout, so one loader serves both.

The 12 classes are the ten keywords, ``_silence_`` (1 s crops of the
background noise at random volume, as many as ``silence_fraction`` of the
split) and ``_unknown_`` (every other word, subsampled to
``unknown_fraction`` of the split), as in TensorFlow's speech commands
example and MLPerf Tiny.

:func:`download` fetches the official archive (2.4 GB) with HTTP Range
resumption into ``<file>.part``, checks its SHA-256 and only then extracts
it (refusing members that would land outside the target directory).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import urllib.error
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tinyml.errors import InputError, TinymlError

__all__ = [
    "KEYWORDS",
    "LABELS",
    "SILENCE",
    "UNKNOWN",
    "BACKGROUND",
    "OFFICIAL_URL",
    "OFFICIAL_SHA256",
    "OFFICIAL_BYTES",
    "DownloadError",
    "Split",
    "download",
    "extract",
    "read_wav",
    "write_wav",
    "load_speech_commands",
    "list_split_files",
]

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE = "_silence_"
UNKNOWN = "_unknown_"
BACKGROUND = "_background_noise_"
LABELS = (*KEYWORDS, SILENCE, UNKNOWN)

# The official Speech Commands v0.02 archive (as published with TensorFlow
# Datasets' checksums): size in bytes and SHA-256.
OFFICIAL_URL = "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz"
OFFICIAL_SHA256 = "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58"
OFFICIAL_BYTES = 2_428_923_189
_CHUNK = 1 << 20


class DownloadError(TinymlError):
    """The dataset could not be downloaded or failed its checksum."""


# --------------------------------------------------------------------------
# WAV files


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """(int16 samples of the first channel, sample rate) of a PCM WAV file."""
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise InputError(f"{path}: not a readable PCM WAV file ({e}); remove or re-create it") from None
    if width != 2:
        raise InputError(f"{path}: {8 * width}-bit samples; Speech Commands clips are 16-bit PCM")
    data = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)[:, 0]
    return data.astype(np.int16), rate


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, rate: int = 16000) -> None:
    a = np.asarray(samples)
    if a.dtype != np.int16:
        a = np.clip(np.round(a), -32768, 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(a.astype("<i2").tobytes())


# --------------------------------------------------------------------------
# download


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(
    dest_dir: str | os.PathLike[str],
    *,
    url: str = OFFICIAL_URL,
    sha256: str = OFFICIAL_SHA256,
    size: int | None = OFFICIAL_BYTES,
    progress: Callable[[int, int | None], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download, verify and extract the archive into ``dest_dir``; return ``dest_dir``.

    The archive goes to ``dest_dir/<name>.part`` and is resumed from its
    current length with an HTTP Range request (a server that ignores Range
    makes it start over).  Once the SHA-256 matches it is renamed to
    ``dest_dir/<name>`` and extracted; a mismatch deletes the partial file
    and raises :class:`DownloadError`.  An already verified archive is not
    fetched again.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "archive.tar.gz"
    final = dest / name
    part = dest / (name + ".part")
    if not (final.is_file() and _sha256(final) == sha256):
        _fetch(url, part, size, progress, timeout)
        digest = _sha256(part)
        if digest != sha256:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: SHA-256 of the downloaded file is {digest}, expected {sha256}; "
                "the partial file was deleted, run the download again"
            )
        os.replace(part, final)
    extract(final, dest)
    return dest


def _fetch(url: str, part: Path, size: int | None,
           progress: Callable[[int, int | None], None] | None, timeout: float) -> None:
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None and have == size:
        return
    request = urllib.request.Request(url, headers={"User-Agent": "tinyml"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch: the checksum decides
            return
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the URL or try again later") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: cannot connect ({reason}); check the network, then run again "
                            "to resume") from None
    with response:
        status = getattr(response, "status", 200)
        mode = "ab" if (have and status == 206) else "wb"
        if mode == "wb":
            have = 0
        total = size
        length = response.headers.get("Content-Length")
        if total is None and length is not None:
            total = have + int(length)
        try:
            with open(part, mode) as f:
                while True:
                    block = response.read(_CHUNK)
                    if not block:
                        break
                    f.write(block)
                    have += len(block)
                    if progress:
                        progress(have, total)
        except OSError as e:
            raise DownloadError(f"{url}: download interrupted after {have} bytes ({e}); run again to "
                                f"resume from {part}") from None


def extract(archive: str | os.PathLike[str], dest_dir: str | os.PathLike[str]) -> None:
    """Extract a .tar.gz into ``dest_dir``; members must stay inside it (files and folders only)."""
    dest = Path(dest_dir).resolve()
    marker = dest / f".{Path(archive).name}.extracted"
    if marker.is_file():
        return
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            for m in tar.getmembers():
                target = (dest / m.name).resolve()
                if not (target == dest or dest in target.parents) or not (m.isfile() or m.isdir()):
                    raise DownloadError(f"{archive}: member {m.name!r} is not a plain file inside the "
                                        "archive's folder; refusing to extract it")
                members.append(m)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise DownloadError(f"{archive}: cannot extract ({e}); delete it and download again") from None
    marker.write_text("ok\n")


# --------------------------------------------------------------------------
# loader


@dataclass
class Split:
    """One split as int16 audio (n, 16000) with label indices into ``LABELS``."""

    audio: np.ndarray
    labels: np.ndarray
    files: list[str]  # relative path of each clip ("" for generated silence)

    def __len__(self) -> int:
        return len(self.labels)


def _read_list(root: Path, name: str) -> set[str]:
    p = root / name
    if not p.is_file():
        return set()
    return {line.strip() for line in p.read_text().splitlines() if line.strip()}


def list_split_files(root: str | os.PathLike[str]) -> dict[str, list[tuple[str, str]]]:
    """``{"train"|"validation"|"test": [(relative path, word), ...]}`` of a dataset directory."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"{root}: no such dataset directory; give a folder in the Speech Commands layout")
    val = _read_list(base, "validation_list.txt")
    test = _read_list(base, "testing_list.txt")
    out: dict[str, list[tuple[str, str]]] = {"train": [], "validation": [], "test": []}
    words = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
    for word in words:
        for f in sorted((base / word).glob("*.wav")):
            rel = f"{word}/{f.name}"
            split = "test" if rel in test else "validation" if rel in val else "train"
            out[split].append((rel, word))
    if not any(out.values()):
        raise InputError(f"{root}: no word folders with .wav files; expected the Speech Commands layout "
                         "(one folder per word, _background_noise_, validation_list.txt, testing_list.txt)")
    return out


def load_background(root: str | os.PathLike[str]) -> list[np.ndarray]:
    folder = Path(root) / BACKGROUND
    noises = []
    for f in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        a, rate = read_wav(f)
        if rate != 16000:
            raise InputError(f"{f}: sample rate {rate} Hz; Speech Commands audio is 16 kHz")
        if len(a) >= 16000:
            noises.append(a)
    return noises


def _fit(a: np.ndarray, n: int = 16000) -> np.ndarray:
    return a[:n] if len(a) >= n else np.pad(a, (0, n - len(a)))


def load_speech_commands(
    root: str | os.PathLike[str],
    *,
    silence_fraction: float = 0.1,
    unknown_fraction: float = 0.1,
    train_unknown_fraction: float | None = None,
    max_per_class: int | None = None,
    seed: int = 0,
) -> dict[str, Split]:
    """Load the train, validation and test splits of a dataset directory.

    Keywords keep all their clips (at most ``max_per_class`` per split);
    unknown words are subsampled so that ``_unknown_`` is
    ``unknown_fraction`` of the split, and ``_silence_`` clips are cut from
    ``_background_noise_`` (random offset, volume 0 to 1) to make up
    ``silence_fraction``.  Deterministic for a given ``seed``.

    ``train_unknown_fraction`` (default: ``unknown_fraction``) sets the
    share of ``_unknown_`` in the training split alone.  It takes more (or
    fewer) clips of the same random order of unknown clips and keeps the
    training split's silence count, so the validation and test splits are
    the same whatever it is.
    """
    base = Path(root)
    files = list_split_files(base)
    noises = load_background(base)
    rng = np.random.default_rng(seed)
    out = {}
    for split, entries in files.items():
        known = [(r, w) for r, w in entries if w in KEYWORDS]
        unknown = [(r, w) for r, w in entries if w not in KEYWORDS]
        if max_per_class is not None:
            by_word: dict[str, list[tuple[str, str]]] = {}
            for r, w in known:
                by_word.setdefault(w, []).append((r, w))
            known = [e for w in sorted(by_word) for e in by_word[w][:max_per_class]]
        n_known = len(known)
        rest = max(1e-9, 1.0 - silence_fraction - unknown_fraction)
        n_unknown = min(len(unknown), int(round(n_known * unknown_fraction / rest)))
        n_silence = int(round(n_known * silence_fraction / rest)) if noises else 0
        if split == "train" and train_unknown_fraction is not None:
            share = min(train_unknown_fraction, 0.95)
            n_unknown = min(len(unknown), int(round((n_known + n_silence) * share / (1.0 - share))))
        if max_per_class is not None:
            n_unknown, n_silence = min(n_unknown, max_per_class), min(n_silence, max_per_class)
        pick = rng.permutation(len(unknown))[:n_unknown]
        chosen = known + [(unknown[i][0], UNKNOWN) for i in sorted(pick)]
        audio = np.zeros((len(chosen) + n_silence, 16000), dtype=np.int16)
        labels = np.zeros(len(chosen) + n_silence, dtype=np.int64)
        names: list[str] = []
        for i, (rel, word) in enumerate(chosen):
            a, rate = read_wav(base / rel)
            if rate != 16000:
                raise InputError(f"{base / rel}: sample rate {rate} Hz; Speech Commands audio is 16 kHz")
            audio[i] = _fit(a)
            labels[i] = LABELS.index(word)
            names.append(rel)
        for j in range(n_silence):
            noise = noises[int(rng.integers(len(noises)))]
            start = int(rng.integers(0, len(noise) - 16000 + 1))
            clip = noise[start:start + 16000].astype(np.float64) * rng.uniform(0.0, 1.0)
            audio[len(chosen) + j] = np.round(clip).astype(np.int16)
            labels[len(chosen) + j] = LABELS.index(SILENCE)
            names.append("")
        out[split] = Split(audio=audio, labels=labels, files=names)
    return out
