"""Board descriptions: one declarative TOML file per board in ``boards/``.

The file format is documented at the top of ``boards/host.toml``.  A board
file that is broken in any way raises :class:`BoardError` naming the file,
the key, and the fix.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyml.errors import BoardError
from tinyml.limits import MAX_BOARD_FILE_BYTES
from tinyml.resources import resource_dir

KINDS = ("host", "qemu", "hardware")
FEATURES = ("dsp", "fpu", "mve")
ARCHS = (
    "host",
    "armv6-m",
    "armv7-m",
    "armv7e-m",
    "armv8-m.base",
    "armv8-m.main",
    "armv8.1-m.main",
)
# Features each architecture can have at all.
_ARCH_FEATURES = {
    "host": (),
    "armv6-m": (),
    "armv7-m": (),
    "armv7e-m": ("dsp", "fpu"),
    "armv8-m.base": (),
    "armv8-m.main": ("dsp", "fpu"),
    "armv8.1-m.main": ("dsp", "fpu", "mve"),
}
DEFAULT_CC = {"host": "cc", "qemu": "arm-none-eabi-gcc", "hardware": "arm-none-eabi-gcc"}

_TOP_KEYS = {
    "name",
    "description",
    "kind",
    "cpu",
    "arch",
    "features",
    "stack_bytes",
    "compiler",
    "memory",
    "qemu",
    "host_io",
    "clock",
    "uart",
    "flash",
    "renode",
    "timing",
}
_COMPILER_KEYS = {"cc", "cflags", "ldflags"}
_MEMORY_KEYS = {"flash", "ram", "vectors", "boot2"}
_REGION_KEYS = {"origin", "size"}
_QEMU_KEYS = {"machine", "args", "serial"}
HOST_IOS = ("semihosting", "uart")
CLOCK_DRIVERS = ("none", "stm32f4", "stm32f7", "stm32l4", "stm32h7", "nrf51", "nrf52", "rp2040")
UART_DRIVERS = ("cmsdk", "stm32-usart-v1", "stm32-usart-v2", "nrf-uart", "pl011-rp2040")
_FLASH_KEYS = {"pyocd_target", "openocd", "gdb_reset"}
_RENODE_KEYS = {"platform", "uart"}
_TIMING_KEYS = {"flash_wait_states", "flash_cache"}
MAX_FLASH_WAIT_STATES = 15
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Patterns of the string keys (board files are untrusted: their strings end
# up in Makefiles, C strings, command lines and one-line reports).
_CPU_RE = re.compile(r"^[a-z0-9][a-z0-9+._-]{0,31}$")
_CC_RE = re.compile(r"^[A-Za-z0-9_+./-]{1,200}$")
_FLAG_RE = re.compile(r"^-[A-Za-z0-9_=+,./:@-]{1,200}$")
_MACHINE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_QEMU_ARG_RE = re.compile(r"^[A-Za-z0-9_=+,./:@-]{1,200}$")
_PYOCD_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_OPENOCD_RE = re.compile(r"^[A-Za-z0-9_+./ -]{1,200}$")  # a .cfg file or a "-c command"
_RENODE_PLATFORM_RE = re.compile(r"^[A-Za-z0-9_+./-]{1,200}\.repl$")
_RENODE_UART_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+){1,3}$")
MAX_DESCRIPTION_CHARS = 120
MAX_GDB_RESET_CHARS = 120
# Ranges of the integer keys of [clock] and [uart] (inclusive); a driver's
# other keys are 32-bit values.  Frequencies in Hz.
_CLOCK_RANGES = {
    "cpu_hz": (1_000_000, 1_000_000_000),
    "xosc_hz": (1_000_000, 50_000_000),
    "pll_m": (1, 63),
    "pll_n": (1, 512),
    "pll_p": (1, 128),
    "pll_q": (1, 128),
    "pll_r": (1, 128),
    "pll_fbdiv": (16, 320),
    "pll_postdiv1": (1, 7),
    "pll_postdiv2": (1, 7),
    "flash_latency": (0, 15),
    "hpre_div": (1, 512),
    "apb_div": (1, 16),
    "apb1_div": (1, 16),
    "apb2_div": (1, 16),
}
_UART_RANGES = {
    "baud": (300, 12_000_000),
    "clock_hz": (1_000_000, 1_000_000_000),
    "tx_pin": (0, 63),
    "rx_pin": (0, 63),
    "tx_port": (0, 15),
    "rx_port": (0, 15),
    "af": (0, 15),
    "rcc_enr_offset": (0, 0xFFC),
    "rcc_enr_bit": (0, 31),
    "lpuart": (0, 1),
}
MAX_QEMU_SERIAL = 3  # QEMU machines have at most 4 serial ports


@dataclass(frozen=True)
class Board:
    """One board.  Memory fields are None for kind "host"."""

    name: str
    description: str
    kind: str  # "host" | "qemu" | "hardware"
    cpu: str
    arch: str
    features: tuple[str, ...]
    cc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]
    flash_origin: int | None
    flash_bytes: int | None
    ram_origin: int | None
    ram_bytes: int | None
    vectors_origin: int | None  # None: the vector table starts the flash region
    vectors_bytes: int | None
    stack_bytes: int | None
    qemu_machine: str | None
    qemu_args: tuple[str, ...]
    path: Path
    # How tensors move in and out: "semihosting" (files, QEMU only) or
    # "uart" (the host link, firmware/hostlink.c).  None for host boards.
    host_io: str | None = None
    clock_driver: str | None = None  # firmware/uart/clock_<driver>.c; "none": reset clocks
    clock: tuple[tuple[str, int], ...] = ()  # [clock] integers (cpu_hz, pll_*, ...)
    uart_driver: str | None = None  # firmware/uart/uart_<driver>.c
    uart: tuple[tuple[str, int], ...] = ()  # [uart] integers (base, baud, clock_hz, pins, ...)
    qemu_serial: int = 0  # which -serial of the QEMU machine is the board's UART
    pyocd_target: str | None = None
    openocd: tuple[str, ...] = ()  # OpenOCD -f configuration files
    gdb_reset: str | None = None  # GDB command that resets the target through a probe's stub
    renode_platform: str | None = None  # e.g. "platforms/cpus/stm32f4.repl"
    renode_uart: str | None = None  # e.g. "sysbus.usart1"
    boot2_origin: int | None = None  # RP2040: the second-stage loader before the vectors
    boot2_bytes: int | None = None
    # For the cycle model ([timing]): wait states of fetches and loads from
    # the flash region, and whether a cache or accelerator hides them.
    flash_wait_states: int = 0
    flash_cache: bool = False

    @property
    def cpu_hz(self) -> int | None:
        return dict(self.clock).get("cpu_hz")

    @property
    def visible_wait_states(self) -> int:
        """Flash wait states the cycle model charges: none where a cache or accelerator hides them."""
        return 0 if self.flash_cache else self.flash_wait_states

    @property
    def uart_base(self) -> int | None:
        return dict(self.uart).get("base")

    @property
    def is_arm(self) -> bool:
        return self.kind != "host"

    def binutil(self, tool: str) -> str:
        """The binutils program ``tool`` (objcopy, ar, ...) that goes with the board's compiler:
        arm-none-eabi-objcopy for arm-none-eabi-gcc, plain objcopy for the host's cc."""
        return self.cc[: -len("gcc")] + tool if self.cc.endswith("gcc") else tool

    def has(self, feature: str) -> bool:
        """True when the core has ``feature`` ("dsp", "fpu" or "mve")."""
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r}; expected one of {FEATURES}")
        return feature in self.features


def boards_dir() -> Path:
    return resource_dir("boards")


def list_boards() -> list[Board]:
    """All packaged boards, sorted by name."""
    return [_load_file(path, packaged=True) for path in sorted(boards_dir().glob("*.toml"))]


def load_board(name_or_path: str | Path) -> Board:
    """Load a packaged board by name (``"mps2-an385"``) or a board file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(name_or_path)
        if not path.is_file():
            raise BoardError(f"board file {path} does not exist; check the path")
        return _load_file(path, packaged=False)
    path = boards_dir() / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(boards_dir().glob("*.toml")))
        raise BoardError(
            f"unknown board {text!r}; use one of: {known} (or the path of a .toml board file)"
        )
    return _load_file(path, packaged=True)


class _Reader:
    """Reads and checks the keys of one board file; errors name file and key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> BoardError:
        where = f"{self.path}: key '{key}'" if key else str(self.path)
        return BoardError(f"{where}: {problem}; {fix} (format: see boards/host.toml)")

    def table(self, data: dict[str, Any], key: str, allowed: set[str], required: bool) -> dict[str, Any] | None:
        value = data.get(key.rsplit(".", 1)[-1])
        if value is None:
            if required:
                raise self.fail(key, "missing", f"add a [{key}] table")
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {_show(value)}", f"write it as [{key}] or {{ ... }}")
        self.no_unknown(value, key, allowed)
        return value

    def no_unknown(self, data: dict[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                full = f"{prefix}.{key}" if prefix else key
                raise self.fail(full, "unknown key", f"remove it or fix its spelling (allowed: {', '.join(sorted(allowed))})")

    def string(self, data: dict[str, Any], key: str, prefix: str = "", default: str | None = None) -> str:
        full = f"{prefix}.{key}" if prefix else key
        value = data.get(key, default)
        if value is None:
            raise self.fail(full, "missing", "add it as a string")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(full, f"must be a non-empty string, got {_show(value)}", "write it in double quotes")
        return value

    def choice(self, data: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
        value = self.string(data, key)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not valid", f"use one of {', '.join(choices)}")
        return value

    def strings(self, data: dict[str, Any], key: str, prefix: str = "", required: bool = False) -> tuple[str, ...]:
        full = f"{prefix}.{key}" if prefix else key
        if key not in data:
            if required:
                raise self.fail(full, "missing", "add it as a list of strings, e.g. []")
            return ()
        value = data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(full, f"must be a list of non-empty strings, got {_show(value)}", 'write it as ["a", "b"]')
        return tuple(value)

    def pattern(self, data: dict[str, Any], key: str, regex: re.Pattern[str], what: str, prefix: str = "") -> str:
        value = self.string(data, key, prefix)
        if not regex.match(value):
            raise self.fail(f"{prefix}.{key}" if prefix else key, f"{_show(value)} is not {what}",
                            "use letters, digits and '.', '_', '-' only")
        return value

    def integer(self, data: dict[str, Any], key: str, prefix: str = "", *, minimum: int = 0,
                maximum: int = 0xFFFFFFFF) -> int:
        full = f"{prefix}.{key}" if prefix else key
        if key not in data:
            raise self.fail(full, "missing", "add it as an integer (hex like 0x400000 is fine)")
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(full, f"must be an integer, got {_show(value)}", "write a number without quotes, e.g. 0x400000")
        if value < minimum or value > maximum:
            raise self.fail(full, f"{value} ({value:#x}) is out of range", f"use a value from {minimum} to {maximum}")
        return value

    def region(self, memory: dict[str, Any], key: str, required: bool) -> tuple[int, int] | None:
        full = f"memory.{key}"
        table = self.table(memory, full, _REGION_KEYS, required)
        if table is None:
            return None
        origin = self.integer(table, "origin", full)
        size = self.integer(table, "size", full, minimum=1)
        if origin % 4 or size % 4:
            raise self.fail(full, f"origin {origin:#x} and size {size:#x} must be multiples of 4", "align the region")
        if origin + size > 1 << 32:
            raise self.fail(full, f"region {origin:#x} + {size:#x} ends beyond 4 GiB", "shrink it")
        return origin, size


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _load_file(path: Path, *, packaged: bool) -> Board:
    reader = _Reader(path)
    try:
        size = path.stat().st_size
        if size > MAX_BOARD_FILE_BYTES:
            raise reader.fail("", f"is {size:,} bytes, more than the {MAX_BOARD_FILE_BYTES // 1024} KiB a board "
                                  "file may have", "give a board .toml file")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise reader.fail("", "nests tables or arrays too deeply to read", "flatten it (a board file needs at "
                              "most two levels)") from None
    except OSError as err:
        raise BoardError(f"cannot read board file {path}: {err.strerror}; check the path and permissions") from err
    except UnicodeDecodeError as err:
        raise reader.fail("", "is not UTF-8 text", "save it as UTF-8") from err
    except tomllib.TOMLDecodeError as err:
        raise reader.fail("", f"is not valid TOML ({err})", "fix the syntax") from err

    reader.no_unknown(data, "", _TOP_KEYS)
    name = reader.string(data, "name")
    if not _NAME_RE.match(name):
        raise reader.fail("name", f"{name!r} is not a valid board name", "use lowercase letters, digits, '.', '_' and '-'")
    # Packaged boards are found by file name; a copy (a project's board.toml)
    # or a user's file may be named anything.
    if packaged and name != path.stem:
        raise reader.fail("name", f"{name!r} differs from the file name {path.name!r}", f"rename the file to {name}.toml or set name = {path.stem!r}")
    description = reader.string(data, "description")
    bad = next((i for i, ch in enumerate(description) if not ch.isprintable()), None)
    if bad is not None:
        raise reader.fail("description", f"is not one printable line ({description[bad]!r} at character {bad + 1})",
                          "write it on one line without control characters")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise reader.fail("description", f"has {len(description)} characters, more than {MAX_DESCRIPTION_CHARS}",
                          "shorten it")
    kind = reader.choice(data, "kind", KINDS)
    cpu = reader.pattern(data, "cpu", _CPU_RE, "a core name such as \"cortex-m4\"")
    arch = reader.choice(data, "arch", ARCHS)
    if (kind == "host") != (arch == "host"):
        raise reader.fail("arch", f"arch {arch!r} does not go with kind {kind!r}", 'use arch = "host" exactly when kind = "host"')
    features = reader.strings(data, "features", required=True)
    for feature in features:
        if feature not in FEATURES:
            raise reader.fail("features", f"unknown feature {feature!r}", f"use a subset of {', '.join(FEATURES)}")
        if feature not in _ARCH_FEATURES[arch]:
            raise reader.fail("features", f"{arch} cores cannot have feature {feature!r}", "remove it or fix arch")
    if len(set(features)) != len(features):
        raise reader.fail("features", "lists a feature twice", "remove the duplicate")

    compiler = reader.table(data, "compiler", _COMPILER_KEYS, required=True)
    assert compiler is not None
    cc = reader.string(compiler, "cc", "compiler", default=DEFAULT_CC[kind])
    if not _CC_RE.match(cc):
        raise reader.fail("compiler.cc", f"{_show(cc)} is not a compiler command", "give one program name or path, "
                          "without spaces or shell characters, e.g. \"arm-none-eabi-gcc\"")
    cflags = reader.strings(compiler, "cflags", "compiler", required=True)
    ldflags = reader.strings(compiler, "ldflags", "compiler")
    for key, flags in (("compiler.cflags", cflags), ("compiler.ldflags", ldflags)):
        for flag in flags:
            if not _FLAG_RE.match(flag):
                raise reader.fail(key, f"{_show(flag)} is not a single compiler flag", "give one flag per string, "
                                  "each starting with '-', without spaces or shell characters")
    if kind != "host" and "-mthumb" not in cflags:
        raise reader.fail("compiler.cflags", "Cortex-M code needs -mthumb", 'add "-mthumb"')
    if kind != "host" and not any(f.startswith(("-mcpu=", "-march=")) for f in cflags):
        raise reader.fail("compiler.cflags", "no -mcpu= or -march= flag", f'add "-mcpu={cpu}"')

    flash = ram = vectors = boot2 = None
    stack_bytes = None
    memory = reader.table(data, "memory", _MEMORY_KEYS, required=kind != "host")
    if kind == "host":
        if memory is not None:
            raise reader.fail("memory", "a host board has no memory map", "remove the [memory] table")
        if "stack_bytes" in data:
            raise reader.fail("stack_bytes", "a host board uses the operating system's stack", "remove it")
    else:
        assert memory is not None
        flash = reader.region(memory, "flash", required=True)
        ram = reader.region(memory, "ram", required=True)
        vectors = reader.region(memory, "vectors", required=False)
        boot2 = reader.region(memory, "boot2", required=False)
        regions = [("memory.flash", flash), ("memory.ram", ram)]
        if boot2 is not None:
            regions.append(("memory.boot2", boot2))
        if vectors is not None:
            regions.append(("memory.vectors", vectors))
            if vectors[0] % 128:
                raise reader.fail("memory.vectors.origin", f"{vectors[0]:#x} is not a multiple of 128", "align the vector table")
        elif flash is not None and flash[0] % 128:
            raise reader.fail("memory.flash.origin", f"{flash[0]:#x} is not a multiple of 128 (the vector table starts there)", "align it or add memory.vectors")
        for i, (key_a, (origin_a, size_a)) in enumerate(regions):  # type: ignore[misc]
            for key_b, (origin_b, size_b) in regions[i + 1:]:  # type: ignore[misc]
                if origin_a < origin_b + size_b and origin_b < origin_a + size_a:
                    raise reader.fail(key_b, f"overlaps {key_a}", "make the regions disjoint")
        stack_bytes = reader.integer(data, "stack_bytes", minimum=1024)
        assert ram is not None
        if stack_bytes % 8:
            raise reader.fail("stack_bytes", f"{stack_bytes} is not a multiple of 8", "round it up to a multiple of 8")
        if stack_bytes >= ram[1]:
            raise reader.fail("stack_bytes", f"{stack_bytes:#x} does not fit in memory.ram ({ram[1]:#x} bytes)", "make the stack smaller")

    qemu = reader.table(data, "qemu", _QEMU_KEYS, required=kind == "qemu")
    qemu_machine = None
    qemu_args: tuple[str, ...] = ()
    if qemu is not None:
        if kind != "qemu":
            raise reader.fail("qemu", f"only boards of kind 'qemu' have a [qemu] table (this is {kind!r})", "remove it or set kind = \"qemu\"")
        qemu_machine = reader.pattern(qemu, "machine", _MACHINE_RE, "a qemu-system-arm -machine name", "qemu")
        qemu_args = reader.strings(qemu, "args", "qemu")
        for arg in qemu_args:
            if not _QEMU_ARG_RE.match(arg):
                raise reader.fail("qemu.args", f"{_show(arg)} is not a single QEMU argument", "give one argument "
                                  "per string, without spaces or shell characters")
    extra = _load_link_keys(reader, data, kind, ram, stack_bytes, qemu)

    return Board(
        name=name,
        description=description,
        kind=kind,
        cpu=cpu,
        arch=arch,
        features=features,
        cc=cc,
        cflags=cflags,
        ldflags=ldflags,
        flash_origin=flash[0] if flash else None,
        flash_bytes=flash[1] if flash else None,
        ram_origin=ram[0] if ram else None,
        ram_bytes=ram[1] if ram else None,
        vectors_origin=vectors[0] if vectors else None,
        vectors_bytes=vectors[1] if vectors else None,
        stack_bytes=stack_bytes,
        qemu_machine=qemu_machine,
        qemu_args=qemu_args,
        path=path.resolve(),
        boot2_origin=boot2[0] if boot2 else None,
        boot2_bytes=boot2[1] if boot2 else None,
        **extra,
    )


def _int_table(reader: _Reader, data: dict[str, Any], key: str, driver_choices: tuple[str, ...],
               required: tuple[str, ...], ranges: dict[str, tuple[int, int]]
               ) -> tuple[str, tuple[tuple[str, int], ...]] | None:
    """A [clock] or [uart] table: driver = "...", every other key an integer in its range."""
    table = data.get(key)
    if table is None:
        return None
    if not isinstance(table, dict):
        raise reader.fail(key, f"must be a table, got {_show(table)}", f"write it as [{key}]")
    driver = reader.choice(table, "driver", driver_choices) if "driver" in table else None
    if driver is None:
        raise reader.fail(f"{key}.driver", "missing", f"add driver = one of {', '.join(driver_choices)}")
    values = []
    for name in sorted(table):
        if name == "driver":
            continue
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            raise reader.fail(f"{key}.{name}", "is not a valid key name", "use lowercase letters, digits and '_'")
        low, high = ranges.get(name, (0, 0xFFFFFFFF))
        values.append((name, reader.integer(table, name, key, minimum=low, maximum=high)))
    for name in required:
        if name not in table:
            raise reader.fail(f"{key}.{name}", "missing", "add it as an integer")
    return driver, tuple(values)


def _load_link_keys(reader: _Reader, data: dict[str, Any], kind: str, ram: tuple[int, int] | None,
                    stack_bytes: int | None, qemu: dict[str, Any] | None) -> dict[str, Any]:
    """The optional keys for real boards and the host link: host_io, [clock],
    [uart], [flash], [renode] and qemu.serial."""
    out: dict[str, Any] = {}
    if kind == "host":
        for key in ("host_io", "clock", "uart", "flash", "renode", "timing"):
            if key in data:
                raise reader.fail(key, "a host board has no firmware I/O, clocks, UART or probe", "remove it")
        return out
    host_io = reader.choice(data, "host_io", HOST_IOS) if "host_io" in data else (
        "semihosting" if kind == "qemu" else "uart")
    if kind == "hardware" and host_io != "uart":
        raise reader.fail("host_io", "real hardware has no semihosting host to read files from", 'use host_io = "uart"')
    out["host_io"] = host_io
    clock = _int_table(reader, data, "clock", CLOCK_DRIVERS, ("cpu_hz",), _CLOCK_RANGES)
    if clock is not None:
        out["clock_driver"], out["clock"] = clock
    uart = _int_table(reader, data, "uart", UART_DRIVERS, ("base", "baud"), _UART_RANGES)
    if uart is not None and dict(uart[1])["base"] % 4:
        raise reader.fail("uart.base", f"{dict(uart[1])['base']:#x} is not a multiple of 4", "give the register "
                          "block's address")
    if uart is not None:
        out["uart_driver"], out["uart"] = uart
    if host_io == "uart" and uart is None:
        raise reader.fail("uart", "missing (host_io is \"uart\")", "add a [uart] table with driver, base and baud")
    if uart is not None and clock is None:
        raise reader.fail("clock", "missing (the UART divisor needs the clock)", "add a [clock] table with driver and cpu_hz")
    if qemu is not None and "serial" in qemu:
        out["qemu_serial"] = reader.integer(qemu, "serial", "qemu", maximum=MAX_QEMU_SERIAL)
    flash = reader.table(data, "flash", _FLASH_KEYS, required=False)
    if flash is not None:
        if "pyocd_target" in flash:
            out["pyocd_target"] = reader.pattern(flash, "pyocd_target", _PYOCD_RE, "a pyOCD target name",
                                                 "flash")
        out["openocd"] = reader.strings(flash, "openocd", "flash")
        for entry in out["openocd"]:
            if not _OPENOCD_RE.match(entry):
                raise reader.fail("flash.openocd", f"{_show(entry)} is not an OpenOCD .cfg file or -c command",
                                  "use letters, digits, '_', '.', '/', '-', '+' and spaces")
        if "gdb_reset" in flash:
            out["gdb_reset"] = reader.string(flash, "gdb_reset", "flash")
            if not out["gdb_reset"].isprintable() or len(out["gdb_reset"]) > MAX_GDB_RESET_CHARS:
                raise reader.fail("flash.gdb_reset", f"{_show(out['gdb_reset'])} is not one printable line of at "
                                  f"most {MAX_GDB_RESET_CHARS} characters", "give one GDB command")
    if kind == "hardware" and (flash is None or not (out.get("pyocd_target") or out.get("openocd"))):
        raise reader.fail("flash", "a real board needs a flash method", "add [flash] with pyocd_target or openocd")
    timing = reader.table(data, "timing", _TIMING_KEYS, required=False)
    if timing is not None:
        if "flash_wait_states" in timing:
            out["flash_wait_states"] = reader.integer(timing, "flash_wait_states", "timing",
                                                      maximum=MAX_FLASH_WAIT_STATES)
        if "flash_cache" in timing:
            if not isinstance(timing["flash_cache"], bool):
                raise reader.fail("timing.flash_cache", f"must be true or false, got {_show(timing['flash_cache'])}",
                                  "write true or false without quotes")
            out["flash_cache"] = timing["flash_cache"]
    renode = reader.table(data, "renode", _RENODE_KEYS, required=False)
    if renode is not None:
        out["renode_platform"] = reader.pattern(renode, "platform", _RENODE_PLATFORM_RE,
                                                "a Renode .repl path such as \"platforms/cpus/stm32f4.repl\"",
                                                "renode")
        out["renode_uart"] = reader.pattern(renode, "uart", _RENODE_UART_RE,
                                            "a Renode peripheral such as \"sysbus.usart1\"", "renode")
    return out
