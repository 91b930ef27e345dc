"""The host link (firmware/hostlink.c, tinyml/targets/hostlink.py) over QEMU UARTs.

Framing and parsing are tested in Python; everything else against the real
firmware under QEMU through pyserial's socket:// (no stand-in device): the
DS-CNN bit-exact through the link on every QEMU board that can hold it (a
smaller DS-CNN on the 16 KB micro:bit), 10,000 fuzzed frames on one
connection, every error answer, the MLPerf Tiny runner's commands, per-
operator cycles, `tinyml validate` and `tinyml verify` over the UART.
"""

from __future__ import annotations

import os
import random
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.modelgen import build, case, cache_path, zoo_cases
from tinyml.cli import main as cli_main
from tinyml.compiler import compile_model
from tinyml.errors import FitError
from tinyml.targets.build import build_hostlink
from tinyml.targets.hostlink import (ECHO, INFER, INFO, LOAD, NAK, READ, RESPONSE, TENSOR, FrameParser, HostLink, LinkError,
                                     connect, crc32, encode_frame)
from tinyml.targets.qemu import qemu_uart
from tinyml.targets.run import run_project_over_uart
from tinyml.tools.reference import run_tflm_batch
from tinyml.tools.verify import pack_samples, random_inputs, unpack_outputs, verify_model

QEMU_BOARDS = ["mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "netduinoplus2", "microbit"]
# A DS-CNN on 25 MFCC frames: small enough for the micro:bit's 16 KB of RAM.
SMALL_DS_CNN = case("zoo", "DEPTHWISE_CONV_2D", (25, 10, 1), name="ds_cnn", id="ds_cnn-small")


def ds_cnn() -> Path:
    c = zoo_cases("ds_cnn")[0]
    build(c)
    return cache_path(c)


def small_ds_cnn() -> Path:
    build(SMALL_DS_CNN)
    return cache_path(SMALL_DS_CNN)


@pytest.fixture(scope="module")
def netduino(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The DS-CNN's host-link firmware for netduinoplus2: (model, ELF)."""
    model = ds_cnn()
    project = tmp_path_factory.mktemp("netduino") / "kws"
    compile_model(model, "netduinoplus2", project, name="kws")
    return model, build_hostlink(project)


# ---------------------------------------------------------------- framing (no QEMU)


def test_frame_layout_and_crc() -> None:
    frame = encode_frame(ECHO, 7, b"abc")
    assert frame[:2] == b"\xa5\x5a" and frame[2:7] == bytes([1, ECHO, 7, 3, 0]) and frame[7:10] == b"abc"
    assert struct.unpack("<I", frame[10:])[0] == zlib.crc32(frame[2:10]) == crc32(frame[2:10])


def test_parser_skips_noise_and_broken_frames() -> None:
    good = encode_frame(INFO | RESPONSE, 1, b"\x00hi")
    broken = bytearray(encode_frame(INFO | RESPONSE, 2, b"\x00xx"))
    broken[8] ^= 0x10  # payload bit flip: CRC fails
    parser = FrameParser()
    stream = b"banner\r\n\xa5" + bytes(broken) + good + b"m-ready\r\n" + good[:5]
    frames = []
    for i in range(0, len(stream), 3):  # arbitrary chunking
        frames += parser.feed(stream[i:i + 3])
    assert [(f.kind, f.seq, f.payload) for f in frames] == [(INFO | RESPONSE, 1, b"\x00hi")]
    text = parser.take_text()
    assert "banner" in text and "m-ready" in text
    frames = parser.feed(good[5:])
    assert len(frames) == 1 and frames[0].seq == 1


# ---------------------------------------------------------------- QEMU


def _bit_exact_over_link(model: Path, board: str, project: Path, samples: int = 3) -> None:
    try:
        compiled = compile_model(model, board, project)
    except FitError as err:  # "every QEMU board that can hold it"
        pytest.skip(f"the model does not fit {board}: {err}")
    xs = random_inputs(compiled.graph, samples, seed=3)
    result = run_project_over_uart(project, pack_samples(compiled.graph, xs), timeout=180)
    ours = unpack_outputs(compiled.graph, result.output, samples)
    ref = run_tflm_batch(model.read_bytes(), xs)
    for i, (a, b) in enumerate(zip(ours, ref)):
        for j, (x, y) in enumerate(zip(a, b)):
            assert x.tobytes() == np.asarray(y).tobytes(), f"{board}: sample {i} output {j} differs from TFLM"


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_ds_cnn_bit_exact_over_host_link(tmp_path: Path, board: str) -> None:
    _bit_exact_over_link(ds_cnn(), board, tmp_path / "kws")


@pytest.mark.qemu
def test_small_ds_cnn_bit_exact_on_microbit(tmp_path: Path) -> None:
    _bit_exact_over_link(small_ds_cnn(), "microbit", tmp_path / "kws", samples=4)
    elf = tmp_path / "kws" / "build" / "firmware.elf"
    assert elf.is_file()


@pytest.mark.qemu
def test_requests_and_error_answers(netduino: tuple[Path, Path]) -> None:
    model, elf = netduino
    with qemu_uart("netduinoplus2", elf) as session, connect(session.url) as link:
        info = link.info()
        assert (info.model, info.board, info.version, info.max_payload) == ("kws", "netduinoplus2", 1, 256)
        assert [t.shape for t in info.inputs] == [(1, 49, 10, 1)] and info.inputs[0].dtype == "int8"
        assert [t.bytes for t in info.outputs] == [12]
        assert link.echo(bytes(range(200))) == bytes(range(200))

        def raw(frame: bytes, wait: float = 5.0) -> list:
            link.frames.clear()
            link.write(frame)
            deadline = time.monotonic() + wait
            while not link.frames and time.monotonic() < deadline:
                link.poll(0.1)
            return list(link.frames)

        # Oversized length: refused at once, before any payload byte (then its
        # 257 payload and 4 CRC bytes are dropped).
        (answer,) = raw(b"\xa5\x5a" + struct.pack("<BBBH", 1, ECHO, 9, 257) + bytes(257 + 4))
        assert (answer.kind, answer.seq, answer.status) == (NAK, 9, 3)
        # Flipped payload bit: bad CRC.
        frame = bytearray(encode_frame(ECHO, 10, b"hello"))
        frame[9] ^= 0x04
        (answer,) = raw(bytes(frame))
        assert (answer.kind, answer.seq, answer.status) == (NAK, 10, 1)
        # Truncated frame and then silence: answered after the timeout.
        start = time.monotonic()
        (answer,) = raw(encode_frame(ECHO, 11, b"hello")[:-3], wait=10)
        assert (answer.kind, answer.status) == (NAK, 7) and time.monotonic() - start < 10
        # Authentic frames with bad contents.
        (answer,) = raw(encode_frame(ECHO, 12, b"v", version=2))
        assert (answer.kind, answer.status) == (ECHO | RESPONSE, 2)
        (answer,) = raw(encode_frame(0x33, 13))
        assert (answer.kind, answer.status) == (0x33 | RESPONSE, 4)
        for bad in (encode_frame(LOAD, 14, struct.pack("<BI", 0, 480) + bytes(11)),  # past the end
                    encode_frame(LOAD, 14, struct.pack("<BI", 1, 0) + bytes(1)),  # no input 1
                    encode_frame(READ, 14, struct.pack("<BIH", 0, 0, 13)),  # 13 > 12 bytes
                    encode_frame(READ, 14, struct.pack("<BIH", 0, 0xFFFFFFFF, 1)),
                    encode_frame(TENSOR, 14, bytes([0, 5])),
                    encode_frame(INFER, 14, b"x")):
            (answer,) = raw(bad)
            assert answer.kind & RESPONSE and answer.status == 5, bad.hex()
        # Still fine afterwards, and the model still right.
        xs = random_inputs_for(model, 1)
        outs, cycles = link.run_bytes([xs[0][0].tobytes()])
        assert outs[0] == np.asarray(run_tflm_batch(model.read_bytes(), xs)[0][0]).tobytes()
        assert cycles > 0
        profile = link.profile()
        assert len(profile) == 12 and all(c > 0 for c in profile[:5]) and sum(profile) <= cycles
    assert "fault" not in session.stderr()


def random_inputs_for(model: Path, n: int) -> list[list[np.ndarray]]:
    from tinyml.graph import load_tflite

    return random_inputs(load_tflite(model), n, seed=11)


def fuzz_frames(rng: random.Random, count: int) -> list[bytes]:
    """Random bytes, flipped bits, truncations, oversized lengths (with or without their bytes), and
    authentic frames with random contents (never INFER, which is slow)."""

    def valid() -> bytes:
        kind = rng.choice([ECHO, INFO, TENSOR, LOAD, READ])
        payload = {
            ECHO: lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(12))),
            INFO: lambda: b"",
            TENSOR: lambda: bytes([rng.randrange(3), rng.randrange(3)]),
            LOAD: lambda: struct.pack("<BI", rng.randrange(2), rng.randrange(600)) + bytes(rng.randrange(8)),
            READ: lambda: struct.pack("<BIH", rng.randrange(2), rng.randrange(16), rng.randrange(16)),
        }[kind]()
        return encode_frame(kind, rng.randrange(256), payload)

    frames = []
    for _ in range(count):
        mode = rng.randrange(5)
        if mode == 0:
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
            frames.append((b"\xa5\x5a" if rng.random() < 0.3 else b"") + data)
        elif mode == 1:
            frame = bytearray(valid())
            for _ in range(rng.randrange(1, 4)):
                frame[rng.randrange(2, len(frame))] ^= 1 << rng.randrange(8)
            frames.append(bytes(frame))
        elif mode == 2:
            frame = valid()
            frames.append(frame[:rng.randrange(1, len(frame))])
        elif mode == 3:  # the device drops length + 4 bytes after it (or until the sender pauses)
            length = rng.randrange(257, 1024)
            rest = length + 4 if rng.random() < 0.5 else rng.randrange(6)
            frames.append(b"\xa5\x5a" + struct.pack("<BBBH", 1, rng.randrange(256), rng.randrange(256), length)
                          + bytes(rng.randrange(256) for _ in range(rest)))
        else:
            frames.append(valid())
    return frames


@pytest.mark.qemu
@pytest.mark.slow
def test_fuzz_frames(netduino: tuple[Path, Path]) -> None:
    """3,000 fuzzed frames on one connection (10,000 in the long run, ``make fuzz``); every 1,000 a
    valid request must get the right answer; the firmware never faults or hangs."""
    model, elf = netduino
    rng = random.Random(2024)
    count = 10_000 if os.environ.get("TINYML_FUZZ_LONG") else 3_000
    frames = fuzz_frames(rng, count)
    # The device reads the 64 KiB flush below byte by byte through QEMU's UART: on a loaded machine that
    # takes tens of seconds, so each answer may take up to 20 s (the device must still answer every one).
    with qemu_uart("netduinoplus2", elf) as session, connect(session.url, timeout=20) as link:
        info = link.info()
        sent = 0
        for start in range(0, len(frames), 1000):
            for frame in frames[start:start + 1000]:
                link.write(frame)
                sent += len(frame)
                link.poll(0)  # keep draining the answers
            token = bytes([start // 1000]) * 8
            # Random bytes after a sync may announce up to 65535 bytes: the device drops that many
            # (and the CRC) before it hunts again.  Zeros end any such frame, then count as noise.
            link.write(bytes(0xFFFF + 4))
            assert link.echo(token) == token  # resynchronized
            assert session.process.poll() is None, session.stderr()
        assert link.info() == info
        xs = random_inputs_for(model, 1)
        outs, _ = link.run_bytes([xs[0][0].tobytes()])
        assert outs[0] == np.asarray(run_tflm_batch(model.read_bytes(), xs)[0][0]).tobytes()
    assert sent > 10 * count
    assert "fault" not in session.stderr() and "tinyml:" not in session.stderr()


@pytest.mark.qemu
def test_mlperf_runner_commands(netduino: tuple[Path, Path]) -> None:
    model, elf = netduino
    xs = random_inputs_for(model, 1)
    data = xs[0][0].astype(np.int8).tobytes()
    ref = np.asarray(run_tflm_batch(model.read_bytes(), xs)[0][0]).astype(np.float64)
    with qemu_uart("netduinoplus2", elf) as session, connect(session.url) as link:
        link.echo(b"sync")

        def command(text: str, until: str = "m-ready") -> str:
            link.console = ""
            link.write(text.encode())
            return link.read_text_until(until, timeout=20)

        assert "m-name-dut-[tinyml]" in command("name%")
        assert "m-model-[kws]" in command("profile%")
        assert "e-[db load needs" in command("db load 7%")
        assert "m-[Expecting 490 bytes]" in command("db load 490%")
        for i in range(0, len(data), 32):  # the runner's command line is short
            out = command(f"db {data[i:i + 32].hex()}%")
        assert "m-load-done" in out
        out = command("infer 2 1%", until="m-ready")
        assert "m-warmup-start-1" in out and "m-infer-start-2" in out and "m-infer-done" in out
        laps = [int(line.split("-")[-1]) for line in out.splitlines() if line.startswith("m-lap-us-")]
        assert len(laps) == 2 and laps[1] > laps[0]
        results = out.split("m-results-[")[1].split("]")[0]
        values = np.array([float(v) for v in results.split(",")])
        expected = (ref.reshape(-1) + 128) * 0.00390625  # output scale 1/256, zero point -128
        assert values.shape == (12,) and np.allclose(values, expected, atol=0.0006)
        assert "e-[Unknown command: bogus]" in command("bogus%")
        assert "e-[command too long]" in command("x" * 200 + "%")
        assert link.echo(b"still framed") == b"still framed"


@pytest.mark.qemu
def test_validate_cli_over_socket(netduino: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, elf = netduino
    with qemu_uart("netduinoplus2", elf) as session:
        code = cli_main(["validate", str(model), "--port", session.url, "--samples", "3"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "3/3 bit-exact (" in out.out and "on netduinoplus2)" in out.out
    assert "cycles per inference" in out.err


@pytest.mark.qemu
def test_validate_refuses_other_model(netduino: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, elf = netduino
    with qemu_uart("netduinoplus2", elf) as session:
        code = cli_main(["validate", str(small_ds_cnn()), "--port", session.url])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("tinyml: error: the device runs model") and "flash the firmware" in last


def test_validate_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["validate", str(ds_cnn()), "--port", "/dev/tinyml-no-such-port"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot open serial port /dev/tinyml-no-such-port" in err


@pytest.mark.qemu
def test_verify_on_uart_boards(tmp_path: Path) -> None:
    report = verify_model(ds_cnn(), "netduinoplus2", samples=2, work_dir=tmp_path / "n")
    assert report.ok and report.board == "netduinoplus2"
    report = verify_model(small_ds_cnn(), "microbit", samples=2, work_dir=tmp_path / "m")
    assert report.ok and report.board == "microbit"


@pytest.mark.qemu
def test_dead_device_is_reported(netduino: tuple[Path, Path]) -> None:
    _, elf = netduino
    with qemu_uart("netduinoplus2", elf) as session:
        link = HostLink(session.url)  # the live check keeps the default patience (a loaded machine is slow)
        link.echo(b"up")
        link.timeout, link.retries = 0.5, 1  # a dead device is reported after two short waits
        session.process.kill()
        session.process.wait()
        with pytest.raises(LinkError):
            link.echo(b"gone")
        link.close()


# ---------------------------------------------------------------- hostile frames and runner commands (issue 19)


@pytest.mark.qemu
def test_overlong_frame_is_discarded_whole(netduino: tuple[Path, Path]) -> None:
    """A frame refused for its length hides a text command in its payload: the
    device must drop the payload and CRC, not run the command, and serve the
    next frame at once; a truncated one is dropped until the sender pauses."""
    _, elf = netduino
    with qemu_uart("netduinoplus2", elf) as session, connect(session.url) as link:
        link.echo(b"sync")
        link.retries = 0  # "at once": no retry may paper over a lost frame
        payload = (b"\r\nname%\r\nresults%" * 20)[:300]
        header = b"\xa5\x5a" + struct.pack("<BBBH", 1, ECHO, 21, len(payload))
        start = len(link.console)
        link.frames.clear()
        link.write(header + payload + struct.pack("<I", crc32(header[2:] + payload)))
        deadline = time.monotonic() + 10
        while not link.frames and time.monotonic() < deadline:
            link.poll(0.05)
        assert [(f.kind, f.seq, f.status) for f in link.frames] == [(NAK, 21, 3)]
        assert link.echo(b"right after") == b"right after"
        link.poll(0.3)
        assert "m-name" not in link.console[start:] and "m-results" not in link.console[start:]

        # Truncated: the header promises 2000 bytes, only a command follows, then silence.
        # The device refuses it at once (TOO_LONG) and, when its read times out, says that
        # it hunts again (TIMEOUT, same seq); only then may the next frame follow.
        start = len(link.console)
        link.frames.clear()
        link.write(b"\xa5\x5a" + struct.pack("<BBBH", 1, ECHO, 22, 2000) + b"name%")
        deadline = time.monotonic() + 30  # the device's 1 s timeout, however slowly QEMU polls
        while len(link.frames) < 2 and time.monotonic() < deadline:
            link.poll(0.05)
        assert [(f.kind, f.seq, f.status) for f in link.frames] == [(NAK, 22, 3), (NAK, 22, 7)]
        assert link.echo(b"after the pause") == b"after the pause"
        assert "m-name" not in link.console[start:]
    assert "fault" not in session.stderr()


@pytest.mark.qemu
def test_infer_count_is_bounded(netduino: tuple[Path, Path]) -> None:
    """'infer 1000000000%' would keep the device busy for weeks: refused at once
    by the device, and by the client before sending."""
    from tinyml.errors import InputError
    from tinyml.targets.hostlink import MAX_INFERENCES

    _, elf = netduino
    with qemu_uart("netduinoplus2", elf) as session, connect(session.url) as link:
        link.echo(b"sync")
        for command in ("infer 1000000000%", f"infer {MAX_INFERENCES + 1}%", f"infer 1 {MAX_INFERENCES}%"):
            start, began = len(link.console), time.monotonic()
            link.write(command.encode())  # raw: past the client's own check
            while "m-ready" not in link.console[start:] and time.monotonic() - began < 10:
                link.poll(0.05)
            out = link.console[start:]
            assert f"e-[Inference and warm-up iterations must be at most {MAX_INFERENCES} together]" in out, out
            assert "m-warmup-start" not in out and time.monotonic() - began < 5
        assert "m-infer-done" in link.runner_infer(2, 1)
        written = []
        link.write = written.append  # type: ignore[method-assign]
        for n, w in ((1_000_000_000, 0), (MAX_INFERENCES, 1), (0, 0)):
            with pytest.raises(InputError, match=f"N \\+ W <= {MAX_INFERENCES}"):
                link.runner_infer(n, w)
        assert written == []
