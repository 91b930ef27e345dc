"""Keyword spotting over the serial host link: audio to the device, detections back.

A KWS firmware project (``tinyml.apps.kws.compile_kws``) for a board with a UART
also holds ``hostlink/main.c`` (``templates/kws/link_main.c.j2``): built
with ``make HOSTLINK=1`` (every build on UART-only boards such as
netduinoplus2), it speaks the tinyml host link (``tinyml.targets.hostlink``: framed,
CRC-checked, retried) and presents the KWS streaming command set as the
link's model ``<name>:kws-stream-1``: LOAD an audio chunk and a control
block, INFER, READ the window's record and scores.  :func:`stream_over_link`
drives one connection; :func:`stream_audio` is ``tinyml kws stream``: a
serial port (``/dev/ttyACM0``, ``socket://host:port``) or a project that it
boots under QEMU with the board's UART on a local socket.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinyml.apps.kws import (LINK_CHUNK, LINK_CONTROL_WORDS, LINK_RECORD_WORDS, LINK_SUFFIX, LINK_VERSION, MAX_SMOOTH,
                             Detection)
from tinyml.errors import InputError
from tinyml.targets.build import build_hostlink, build_project, project_board
from tinyml.targets.hostlink import HostLink, LinkError, connect
from tinyml.targets.qemu import qemu_uart
from tinyml.train.features import MLPERF_KWS
from tinyml.train.speech_commands import LABELS, read_wav

__all__ = ["LinkStream", "stream_over_link", "stream_audio", "read_audio"]

RATE = MLPERF_KWS.sample_rate


@dataclass
class LinkStream:
    labels: list[str]
    scores: np.ndarray  # (windows, labels) int8, as the device computed them
    window_ends: list[int]  # end of every window, in samples
    detections: list[Detection]
    cycles: list[int]  # MFCC + model per window (the device's SysTick)
    seconds: float
    bytes_sent: int
    model: str = ""
    board: str = ""
    console: str = ""
    naks: int = 0
    notes: list[str] = field(default_factory=list)


def _check_params(hop: int, smoothing: int, threshold: float) -> None:
    if not 0 < hop <= LINK_CHUNK:
        raise InputError(f"the hop must be 1..{LINK_CHUNK} samples ({LINK_CHUNK // 16} ms) over the serial link, "
                         f"not {hop}")
    if not 1 <= smoothing <= MAX_SMOOTH:
        raise InputError(f"smoothing must be 1..{MAX_SMOOTH} windows, not {smoothing}")
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"the threshold must be between 0 and 1, not {threshold}")


def _chunks(total: int, hop: int) -> list[tuple[int, int]]:
    """(start, length) of every chunk: the first second in pieces, then one hop per chunk."""
    clip = MLPERF_KWS.clip_samples
    out, pos = [], 0
    while pos < min(clip, total):
        n = min(LINK_CHUNK, clip - pos, total - pos)
        out.append((pos, n))
        pos += n
    while pos + hop <= total:
        out.append((pos, hop))
        pos += hop
    return out


def stream_over_link(link: HostLink, audio: np.ndarray, *, hop: int = 4000, smoothing: int = 3,
                     threshold: float = 0.6, on_detection: Callable[[Detection], None] | None = None) -> LinkStream:
    """Streams int16 16 kHz ``audio`` through the KWS firmware at the other end of ``link``.

    Windows are the same as the semihosting firmware's (``tinyml.apps.kws.run_stream``): the first
    second, then one every ``hop`` samples; samples after the last whole hop are not sent.
    """
    _check_params(hop, smoothing, threshold)
    samples = np.asarray(audio, dtype=np.int16).reshape(-1)
    if len(samples) < MLPERF_KWS.clip_samples:
        raise InputError(f"the audio is {len(samples) / RATE:.2f} s long; the keyword spotter needs at least 1 s")
    info = link.info()
    if not info.model.endswith(LINK_SUFFIX):
        raise LinkError(f"the device at {link.port} runs model '{info.model}', not keyword-spotting streaming "
                        f"firmware ('...{LINK_SUFFIX}'); compile with 'tinyml compile --kws' and build with "
                        "'make HOSTLINK=1'")
    shapes = ([tuple(t.shape) for t in info.inputs], [tuple(t.shape) for t in info.outputs])
    if shapes[0] != [(LINK_CHUNK,), (LINK_CONTROL_WORDS,)] or len(shapes[1]) != 2 or \
            shapes[1][1] != (LINK_RECORD_WORDS,):
        raise LinkError(f"the device at {link.port} speaks another KWS streaming layout {shapes}; rebuild its "
                        "firmware with this tinyml")
    nlab = info.outputs[0].bytes
    labels = list(LABELS) if nlab == len(LABELS) else [f"class{i}" for i in range(nlab)]
    start = time.monotonic()
    scores, ends, dets, cycles = [], [], [], []
    sent = 0
    for k, (pos, n) in enumerate(_chunks(len(samples), hop)):
        chunk = samples[pos:pos + n].astype("<i2").tobytes()
        control = struct.pack(f"<{LINK_CONTROL_WORDS}i", LINK_VERSION, n, hop, smoothing,
                              int(round(threshold * 1000)), 1 if k == 0 else 0)
        link.load(0, chunk)
        link.load(1, control)
        link.infer()
        record = struct.unpack(f"<{LINK_RECORD_WORDS}i", link.read(1, 4 * LINK_RECORD_WORDS))
        sent += len(chunk) + len(control)
        if record[0] != LINK_VERSION:
            raise LinkError(f"the device at {link.port} answered with KWS record version {record[0]}")
        if not record[2]:
            continue
        scores.append(np.frombuffer(link.read(0, nlab), dtype=np.int8).copy())
        ends.append(record[6])
        cycles.append(record[7] & 0xFFFFFFFF)
        if record[5] >= 0:
            d = Detection(time=record[6] / RATE, label=labels[record[5]], confidence=record[4] / 1000.0,
                          window=record[1])
            dets.append(d)
            if on_detection:
                on_detection(d)
    return LinkStream(labels=labels, scores=np.array(scores, dtype=np.int8).reshape(-1, nlab), window_ends=ends,
                      detections=dets, cycles=cycles, seconds=time.monotonic() - start, bytes_sent=sent,
                      model=info.model[: -len(LINK_SUFFIX)], board=info.board, console=link.console,
                      naks=link.naks)


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """int16 samples of a 16 kHz WAV file (or raw little-endian int16 .raw/.pcm/.bin)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such audio file; give a 16 kHz mono 16-bit WAV file")
    if p.suffix.lower() in (".raw", ".pcm", ".bin"):
        return np.frombuffer(p.read_bytes()[: p.stat().st_size // 2 * 2], dtype="<i2").astype(np.int16)
    samples, rate = read_wav(p)
    if rate != RATE:
        raise InputError(f"{path}: {rate} Hz; the keyword spotter takes 16 kHz audio (resample it first)")
    return samples


def stream_audio(audio: str | os.PathLike[str] | np.ndarray, *, port: str | None = None,
                 project: str | os.PathLike[str] | None = None, hop_ms: float = 250.0, smoothing: int = 3,
                 threshold: float = 0.6, baudrate: int = 115200, timeout: float = 30.0,
                 on_detection: Callable[[Detection], None] | None = None,
                 say: Callable[[str], None] | None = None) -> LinkStream:
    """``tinyml kws stream``: stream an audio file to the KWS firmware on ``port``, or on ``project``'s
    board under QEMU (its UART on a local socket), and return what the device detected."""
    say = say or (lambda _m: None)
    if (port is None) == (project is None):
        raise InputError("give exactly one of --port PORT (a board running KWS host-link firmware) or "
                         "--project DIR (a 'tinyml compile --kws' project to run under QEMU)")
    samples = audio if isinstance(audio, np.ndarray) else read_audio(audio)
    hop = int(round(hop_ms * RATE / 1000))
    _check_params(hop, smoothing, threshold)
    if port is not None:
        with HostLink(port, baudrate=baudrate, timeout=timeout) as link:
            return stream_over_link(link, samples, hop=hop, smoothing=smoothing, threshold=threshold,
                                    on_detection=on_detection)
    proj = Path(project)  # type: ignore[arg-type]
    if not (proj / "kws_stream.c").is_file():
        raise InputError(f"{proj}: not a keyword-spotting firmware project; make one with "
                         "'tinyml compile MODEL --kws --board B -o DIR'")
    board = project_board(proj)
    if board.kind != "qemu" or board.uart_driver is None or not (proj / "hostlink" / "main.c").is_file():
        raise InputError(f"{proj}: board {board.name} has no UART under QEMU; compile for netduinoplus2 or "
                         "mps2-an386, or stream to a real board with --port")
    elf = build_project(proj) if board.host_io == "uart" else build_hostlink(proj)
    say(f"booting {board.name} under QEMU with its UART on a local socket ...")
    with qemu_uart(board, elf) as session:
        link = connect(session.url, timeout=timeout)
        with link:
            link.poll(0.1)
            result = stream_over_link(link, samples, hop=hop, smoothing=smoothing, threshold=threshold,
                                      on_detection=on_detection)
    return result
