"""The host side of the tinyml host link (firmware/hostlink.h) over pyserial.

A frame is ``A5 5A | version | type | seq | length u16 | payload | CRC-32``
(little-endian; CRC-32 as ``zlib.crc32`` over version .. payload).  The
device answers every request with ``type | 0x80`` and a status byte, and
frames it cannot trust with ``NAK`` and a status.  :class:`HostLink` sends
requests, retries after a NAK or a timeout (after flushing the device's
receiver so that it hunts for a new frame), and collects the text the
device prints between frames (its banner, fault messages).

The port is anything ``serial.serial_for_url`` opens: ``/dev/ttyACM0``,
``COM3``, or ``socket://127.0.0.1:PORT`` for a QEMU UART
(:func:`tinyml.targets.qemu.qemu_uart` starts one).  This module is the
transport only: building the host-link firmware is
:func:`tinyml.targets.build.build_hostlink`, running a project over it
:func:`tinyml.targets.run.run_project_over_uart`, and `tinyml validate`
(random inputs on the attached device against TFLM)
:func:`tinyml.tools.verify.validate_device`.

Command-set revision 2 (``DeviceInfo.revision``; the frame version stays 1)
adds the cycle counter's source to INFO and PROFILE, the MEM command (arena
use, stack high-water mark, canaries: :meth:`HostLink.mem`) and the canary
status of INFER; a revision-1 device still works for everything else.
"""

from __future__ import annotations

import select
import struct
import time
import zlib
from dataclasses import dataclass, field

from tinyml.errors import InputError, RunError

SYNC = b"\xa5\x5a"
VERSION = 1
HEADER_BYTES = 7
CRC_BYTES = 4
DEFAULT_MAX_PAYLOAD = 256
# The benchmark runner's "infer N W%": at most this many inferences, warm-up
# ones included (N + W; TML_HL_MAX_INFERENCES in firmware/hostlink.h).
MAX_INFERENCES = 50
RUNNER_LINE_CHARS = 95  # TML_HL_LINE_BYTES - 1: the firmware drops longer command lines

INFO, TENSOR, LOAD, INFER, READ, PROFILE, ECHO = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
MEM = 0x08  # command-set revision 2
RESPONSE = 0x80
NAK = 0xFF
STATUS = {
    0: "ok",
    1: "bad CRC",
    2: "unsupported protocol version",
    3: "frame too long",
    4: "unknown command",
    5: "bad argument",
    6: "invoke failed",
    7: "frame truncated (timeout)",
    8: "a canary word around the arena was overwritten (memory corruption: reset the board and report the model)",
}
# The device's cycle counter (TML_CYCLES_* in firmware/tml_cycles.h).
CYCLE_SOURCES = {0: "none", 1: "SysTick", 2: "DWT"}
DTYPES = {0: "int8", 1: "uint8", 2: "int16", 3: "int32", 4: "float32"}
# Statuses after which the same request is sent again.
_RETRY = {1, 3, 7}


class LinkError(RunError):
    """The device did not answer, or answered with an error."""


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(kind: int, seq: int, payload: bytes = b"", version: int = VERSION) -> bytes:
    """One frame; ``kind`` is the request (or response) type."""
    if len(payload) > 0xFFFF:
        raise ValueError("payload longer than 65535 bytes")
    body = struct.pack("<BBBH", version, kind, seq & 0xFF, len(payload)) + payload
    return SYNC + body + struct.pack("<I", crc32(body))


@dataclass
class Frame:
    version: int
    kind: int
    seq: int
    payload: bytes

    @property
    def status(self) -> int:
        return self.payload[0] if self.payload else -1


class FrameParser:
    """Splits a byte stream into frames and the text between them.

    A frame whose CRC does not match is dropped and hunting resumes one byte
    after its sync, so a stray A5 5A in text cannot swallow a real frame.
    """

    def __init__(self, max_payload: int = 4096) -> None:
        self.buffer = bytearray()
        self.text = bytearray()
        self.max_payload = max_payload

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while True:
            start = self.buffer.find(SYNC)
            if start < 0:
                keep = 1 if self.buffer.endswith(SYNC[:1]) else 0
                self.text += self.buffer[:len(self.buffer) - keep]
                del self.buffer[:len(self.buffer) - keep]
                return frames
            self.text += self.buffer[:start]
            del self.buffer[:start]
            if len(self.buffer) < HEADER_BYTES:
                return frames
            version, kind, seq, length = struct.unpack_from("<BBBH", self.buffer, 2)
            if length > self.max_payload:
                self.text += self.buffer[:1]
                del self.buffer[:1]
                continue
            total = HEADER_BYTES + length + CRC_BYTES
            if len(self.buffer) < total:
                return frames
            body = bytes(self.buffer[2:HEADER_BYTES + length])
            (crc,) = struct.unpack_from("<I", self.buffer, HEADER_BYTES + length)
            if crc != crc32(body):
                self.text += self.buffer[:1]
                del self.buffer[:1]
                continue
            frames.append(Frame(version, kind, seq, body[5:]))
            del self.buffer[:total]

    def take_text(self) -> str:
        text = self.text.decode("utf-8", errors="replace")
        self.text.clear()
        return text


@dataclass
class TensorInfo:
    bytes: int
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int


@dataclass
class DeviceInfo:
    version: int
    max_payload: int
    arena_bytes: int
    cpu_hz: int
    model: str
    board: str
    max_ops: int
    inputs: list[TensorInfo] = field(default_factory=list)
    outputs: list[TensorInfo] = field(default_factory=list)
    revision: int = 1  # of the command set (TML_HL_REVISION); revision 1 always counted with SysTick
    cycle_source: str = "SysTick"  # "DWT", "SysTick" or "none"


@dataclass
class DeviceProfile:
    """Cycles of every operator in the device's last inference, by operator index."""

    cycles: list[int]
    source: str  # the counter: "DWT", "SysTick" or "none" (every count 0)


@dataclass
class DeviceMemory:
    """MEM: measured by the firmware after its last inference."""

    arena_bytes: int
    arena_used: int  # arena bytes written so far
    stack_bytes: int
    stack_used: int  # the stack's high-water mark since boot
    inferences: int
    canary_intact: bool

    def summary(self) -> str:
        return (f"arena used {self.arena_used:,} of {self.arena_bytes:,} bytes, stack high-water "
                f"{self.stack_used:,} of {self.stack_bytes:,} bytes, canaries "
                f"{'intact' if self.canary_intact else 'OVERWRITTEN'} after {self.inferences} inferences")


class HostLink:
    """A connection to a device running the host-link firmware."""

    def __init__(self, port: str, *, baudrate: int = 115200, timeout: float = 10.0, retries: int = 4) -> None:
        import serial

        try:
            self.serial = serial.serial_for_url(port, baudrate=baudrate, timeout=0, write_timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as err:
            raise LinkError(f"cannot open serial port {port} ({err}); check the port name and that "
                            "the board is connected (or that QEMU is listening)") from None
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.parser = FrameParser()
        self.frames: list[Frame] = []
        self.console = ""
        self.seq = 0
        self.max_payload = DEFAULT_MAX_PAYLOAD
        self.naks = 0
        self._info: DeviceInfo | None = None

    def close(self) -> None:
        self.serial.close()

    def __enter__(self) -> HostLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ bytes

    def _fd(self) -> object | None:
        sock = getattr(self.serial, "_socket", None)
        if sock is not None:
            return sock
        try:
            self.serial.fileno()
            return self.serial
        except (AttributeError, OSError, ValueError):
            return None

    def poll(self, wait: float) -> int:
        """Reads what arrives within ``wait`` seconds; returns the byte count."""
        fd = self._fd()
        if fd is not None:
            ready, _, _ = select.select([fd], [], [], max(wait, 0.0))
            if not ready:
                return 0
        elif wait > 0:
            time.sleep(min(wait, 0.01))
        try:
            data = self.serial.read(65536)
        except Exception as err:  # pyserial raises several types for a closed peer
            raise LinkError(f"reading {self.port} failed ({err}); the device or QEMU went away") from None
        if fd is not None and not data:
            # select said readable but nothing came: the peer closed.
            raise LinkError(f"{self.port} was closed by the device side{self._console_tail()}")
        self.frames += self.parser.feed(data)
        self.console += self.parser.take_text()
        return len(data)

    def write(self, data: bytes) -> None:
        try:
            self.serial.write(data)
            self.serial.flush()
        except Exception as err:
            raise LinkError(f"writing to {self.port} failed ({err})") from None

    def read_text_until(self, needle: str, timeout: float) -> str:
        """Waits until ``needle`` appears in the console text."""
        deadline = time.monotonic() + timeout
        while needle not in self.console:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkError(f"no {needle!r} from {self.port} within {timeout:g}s{self._console_tail()}")
            self.poll(min(remaining, 0.2))
        return self.console

    def _console_tail(self) -> str:
        lines = [line.strip() for line in self.console.splitlines() if line.strip()]
        return f"; device printed: {' | '.join(lines[-4:])}" if lines else ""

    # ------------------------------------------------------------ frames

    def resync(self) -> None:
        """Makes the device drop any half-received frame: zeros fill it (its
        CRC then fails) and cannot start a new one; then drains the answers."""
        self.write(bytes(self.max_payload + HEADER_BYTES + CRC_BYTES))
        quiet_until = time.monotonic() + 0.3
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < min(quiet_until, deadline):
            if self.poll(0.05):
                quiet_until = time.monotonic() + 0.3
        self.frames.clear()

    def request(self, kind: int, payload: bytes = b"", *, timeout: float | None = None) -> bytes:
        """Sends one request and returns the response payload after the
        status byte; retries after NAKs and timeouts."""
        wait = self.timeout if timeout is None else timeout
        problem = "no answer"
        for _attempt in range(self.retries + 1):
            self.seq = (self.seq + 1) & 0xFF
            self.frames.clear()
            self.write(encode_frame(kind, self.seq, payload))
            deadline = time.monotonic() + wait
            answer = None
            while answer is None and time.monotonic() < deadline:
                self.poll(min(0.2, max(deadline - time.monotonic(), 0.0)))
                for frame in self.frames:
                    if frame.kind == (kind | RESPONSE) and frame.seq == self.seq:
                        answer = frame
                        break
                    if frame.kind == NAK and frame.seq in (self.seq, 0):
                        # a NAK of this request (or of a frame cut short: sequence 0); NAKs of other
                        # sequence numbers answer garbage the device refused before it saw this one
                        answer = frame
                        break
            if answer is None:
                problem = f"no answer within {wait:g}s"
                self.resync()
                continue
            if answer.kind == NAK:
                self.naks += 1
                problem = f"device refused the frame: {STATUS.get(answer.status, answer.status)}"
                self.resync()
                continue
            if answer.status in _RETRY:
                problem = STATUS[answer.status]
                continue
            if answer.status != 0:
                raise LinkError(f"{_NAMES.get(kind, kind)} request to {self.port} failed: "
                                f"{STATUS.get(answer.status, f'status {answer.status}')}")
            return answer.payload[1:]
        raise LinkError(f"{_NAMES.get(kind, kind)} request to {self.port} failed after "
                        f"{self.retries + 1} attempts ({problem}){self._console_tail()}; check the port, "
                        "the baud rate and that the board runs tinyml host-link firmware")

    # ------------------------------------------------------------ commands

    def handshake(self, timeout: float = 30.0) -> None:
        """Waits until the device answers: it drops what arrives while it
        boots (before its UART is set up), so ask again every half second."""
        deadline = time.monotonic() + timeout
        retries, self.retries = self.retries, 0
        try:
            while True:
                try:
                    self.request(ECHO, b"tinyml", timeout=0.5)
                    return
                except LinkError:
                    if time.monotonic() > deadline:
                        raise
        finally:
            self.retries = retries

    def info(self) -> DeviceInfo:
        if self._info is not None:
            return self._info
        self.handshake()
        data = self.request(INFO)
        version, max_payload, arena, cpu_hz, n_in, n_out, max_ops = struct.unpack_from("<BHIIBBB", data)
        pos = 14
        name = data[pos + 1:pos + 1 + data[pos]].decode("ascii", errors="replace")
        pos += 1 + data[pos]
        board = data[pos + 1:pos + 1 + data[pos]].decode("ascii", errors="replace")
        info = DeviceInfo(version=version, max_payload=max_payload, arena_bytes=arena, cpu_hz=cpu_hz,
                          model=name, board=board, max_ops=max_ops)
        pos += 1 + data[pos]
        if len(data) >= pos + 2:  # revision 2: revision, cycle source
            info.revision = data[pos]
            info.cycle_source = CYCLE_SOURCES.get(data[pos + 1], "none")
        self.max_payload = max_payload
        for kind, count, target in ((0, n_in, info.inputs), (1, n_out, info.outputs)):
            for index in range(count):
                t = self.request(TENSOR, bytes([kind, index]))
                nbytes, dtype, dims = struct.unpack_from("<IBB", t)
                shape = struct.unpack_from(f"<{dims}i", t, 6)
                scale, zero_point = struct.unpack_from("<fi", t, 6 + 4 * dims)
                target.append(TensorInfo(nbytes, DTYPES.get(dtype, "int8"), tuple(shape), scale, zero_point))
        self._info = info
        return info

    def echo(self, data: bytes) -> bytes:
        return self.request(ECHO, data)

    def load(self, index: int, data: bytes) -> None:
        chunk = self.max_payload - 5
        for offset in range(0, len(data), chunk):
            self.request(LOAD, struct.pack("<BI", index, offset) + data[offset:offset + chunk])

    def infer(self, timeout: float = 120.0) -> int:
        """Runs the model once; returns its cycles (from ``info().cycle_source``; 0 without a counter).
        A canary overwritten during the inference is a LinkError."""
        data = self.request(INFER, timeout=timeout)
        _result, low, high = struct.unpack_from("<iII", data)
        return low | (high << 32)

    def read(self, index: int, nbytes: int) -> bytes:
        chunk = self.max_payload - 1
        parts = []
        for offset in range(0, nbytes, chunk):
            parts.append(self.request(READ, struct.pack("<BIH", index, offset, min(chunk, nbytes - offset))))
        return b"".join(parts)

    def profile(self) -> list[int]:
        """Cycles of every operator in the last inference (by operator index)."""
        return self.profile_ops().cycles

    def profile_ops(self) -> DeviceProfile:
        """Cycles of every operator in the last inference and the counter they come from."""
        cycles: list[int] = []
        source = self.info().cycle_source
        while True:
            data = self.request(PROFILE, struct.pack("<H", len(cycles)))
            total, count = struct.unpack_from("<HB", data)
            cycles += struct.unpack_from(f"<{count}I", data, 3)
            if len(data) > 3 + 4 * count:  # revision 2: the source after the cycles
                source = CYCLE_SOURCES.get(data[3 + 4 * count], "none")
            if len(cycles) >= total or count == 0:
                return DeviceProfile(cycles=cycles, source=source)

    def mem(self) -> DeviceMemory:
        """Arena use, stack high-water mark and canaries, as measured after the last inference."""
        info = self.info()
        if info.revision < 2:
            raise LinkError(f"the firmware at {self.port} speaks host-link revision {info.revision}, which has "
                            "no MEM command; rebuild and flash it with this version of tinyml")
        data = self.request(MEM)
        arena, used, stack, stack_used, inferences, intact = struct.unpack_from("<IIIIIB", data)
        return DeviceMemory(arena_bytes=arena, arena_used=used, stack_bytes=stack, stack_used=stack_used,
                            inferences=inferences, canary_intact=bool(intact))

    # ------------------------------------------------------------ benchmark-runner text commands

    def runner_command(self, command: str, *, until: str = "m-ready", timeout: float = 60.0) -> str:
        """Sends one MLPerf Tiny runner command ("name", "db load 490", "infer 10 1", ...; the
        '%' is added) and returns the text the device printed up to ``until``."""
        check_runner_command(command)
        start = len(self.console)
        self.write(command.encode("ascii") + b"%")
        deadline = time.monotonic() + timeout
        while until not in self.console[start:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkError(f"no {until!r} from {self.port} within {timeout:g}s after {command!r}"
                                f"{self._console_tail()}")
            self.poll(min(remaining, 0.2))
        return self.console[start:]

    def runner_infer(self, iterations: int = 1, warmup: int = 0, *, timeout: float = 120.0) -> str:
        """ "infer N W%": ``warmup`` then ``iterations`` inferences on the loaded "db" input."""
        return self.runner_command(f"infer {iterations} {warmup}", timeout=timeout)

    def run_bytes(self, sample: list[bytes]) -> tuple[list[bytes], int]:
        """Loads one sample (one bytes object per input), infers and reads
        every output; returns the outputs and the cycles."""
        info = self.info()
        if len(sample) != len(info.inputs):
            raise InputError(f"the device's model has {len(info.inputs)} inputs, got {len(sample)}")
        for index, (data, spec) in enumerate(zip(sample, info.inputs)):
            if len(data) != spec.bytes:
                raise InputError(f"input {index} of the device's model takes {spec.bytes} bytes, got {len(data)}")
            self.load(index, data)
        cycles = self.infer()
        return [self.read(index, spec.bytes) for index, spec in enumerate(info.outputs)], cycles


def check_runner_command(command: str) -> str:
    """A runner command the firmware will take: one printable ASCII line without '%', and for
    "infer N W" at most MAX_INFERENCES inferences and warm-up inferences."""
    if not command.isascii() or not command.isprintable() or "%" in command or len(command) > RUNNER_LINE_CHARS:
        raise InputError(f"benchmark-runner command {command[:40]!r} is not one printable ASCII line of at most "
                         f"{RUNNER_LINE_CHARS} characters without '%'; the device would drop it")
    words = command.split()
    if words[:1] == ["infer"]:
        counts = [int(w) if w.isdigit() else -1 for w in words[1:3]]
        if (counts[:1] == [0] or any(c < 0 for c in counts) or len(words) > 3
                or sum(counts) > MAX_INFERENCES):
            raise InputError(f"'{command}': give 'infer N W' with 1 <= N and N + W <= {MAX_INFERENCES} inferences "
                             "per command (the device serves nothing else while it runs them); send several "
                             "commands")
    return command


_NAMES = {INFO: "INFO", TENSOR: "TENSOR", LOAD: "LOAD", INFER: "INFER", READ: "READ", PROFILE: "PROFILE",
          ECHO: "ECHO", MEM: "MEM"}


def connect(url: str, *, timeout: float = 10.0, attempts: int = 50) -> HostLink:
    """Opens ``url``, retrying while it refuses (a QEMU UART that is still starting)."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return HostLink(url, timeout=timeout)
        except LinkError as err:
            last = err
            time.sleep(0.05)
    raise LinkError(str(last))

