"""`tinyml profile`: exact per-layer instruction counts and estimated cycles under QEMU, and code/weight
sizes from the ELF; per-layer cycles on a board running the host-link firmware (``--port``).

The firmware is built with ``make PROFILE=1`` (``-DTML_PROFILE``): the
generated ``<model>_invoke`` calls ``tml_profile_mark(op)`` after every
operator (and twice before the first, to measure the cost of one mark).
QEMU runs it with tinyml's TCG plugin (``firmware/qemu_plugin/insn_count.c``,
built here with the host C compiler on first use), which records the running
count of executed guest instructions at every mark.  The instructions of
layer k are the difference between two consecutive marks minus the cost of
one mark.

The same plugin estimates the cycles the board's core would take (its cycle
model: one table of per-instruction-class costs per core, from Arm's
Technical Reference Manuals; see the plugin's source), at zero wait states
unless the board file gives flash wait states that no cache hides.  They
are estimates, and every report says so; milliseconds are those cycles at
the board's clock (or ``--clock``).

On a board driven over the host link (a real board at a serial port, or a
QEMU board whose UART is a ``socket://`` port) the host-link firmware, built
with ``-DTML_TRACE``, reads its cycle counter (firmware/tml_cycles.h: the DWT
CYCCNT where the core has one that counts, else SysTick, else none) after
every operator; ``profile_device`` runs one inference over the link and
reports those cycles per layer (:class:`BoardProfileReport`).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from tinyml.boards import Board, load_board
from tinyml.codegen.lower import Alias, KernelCall
from tinyml.compiler import build_model, write_project
from tinyml.errors import BuildError, InputError, RunError
from tinyml.limits import check_seed
from tinyml.resources import cache_build, cache_root, resource_dir
from tinyml.schedule.choose import TOLERANCE
from tinyml.schedule.patch import describe_stages, macs_per_pixel
from tinyml.targets.build import BUILD_TIMEOUT_SECONDS, _first_error, build_hostlink
from tinyml.targets.hostlink import HostLink, connect
from tinyml.targets.process import run_process
from tinyml.targets.qemu import QEMU_BINARY, qemu_command, qemu_uart
from tinyml.tools.figures import check_plot_path, save_figure
from tinyml.tools.verify import check_device_matches, pack_samples, random_inputs

PLUGIN_SOURCES = ("insn_count.c", "tml_qemu_plugin.h")
MARK_SYMBOL = "tml_profile_mark"
# Flash sections of the linker script (templates/project/linker.ld.j2).
_FLASH_SECTIONS = (".vectors", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".data")


@dataclass
class LayerProfile:
    index: int
    name: str  # the operator's output tensor
    op: str
    kernel: str  # the C function that ran ("" for operators without a call)
    macs: int
    instructions: int
    share: float = 0.0  # of the model's instructions
    cycles: int = 0  # estimated by the cycle model
    stage: int | None = None  # the patch stage (index in the plan) whose windows this row sums

    @property
    def per_mac(self) -> float | None:
        return self.instructions / self.macs if self.macs else None

    @property
    def cycles_per_mac(self) -> float | None:
        return self.cycles / self.macs if self.macs else None


# The plugin's core names (its argument core=) for the boards' cpu values.
CYCLE_CORES = {"cortex-m0": "m0", "cortex-m0plus": "m0plus", "cortex-m3": "m3", "cortex-m4": "m4",
               "cortex-m33": "m33", "cortex-m7": "m7", "cortex-m55": "m55"}
# Cores whose table is an approximation rather than the TRM's figures (see insn_count.c).
APPROXIMATE_CORES = ("m7", "m55")
MIN_CLOCK_HZ, MAX_CLOCK_HZ = 1_000_000, 1_000_000_000  # as a board's clock.cpu_hz


def cycle_core(board: Board) -> str | None:
    """The cycle model's name for the board's core, or None when it has no model."""
    return CYCLE_CORES.get(board.cpu)


def check_clock_hz(hz: float, where: str = "--clock") -> int:
    if not MIN_CLOCK_HZ <= hz <= MAX_CLOCK_HZ:
        raise InputError(f"{where} {hz / 1e6:g} MHz is out of range; give a clock from "
                         f"{MIN_CLOCK_HZ // 1_000_000} to {MAX_CLOCK_HZ // 1_000_000} MHz")
    return int(round(hz))


@dataclass
class CycleModel:
    """What the estimated cycles of a report are: the core's table, the wait states, where the cycles went."""

    core: str  # the plugin's core name (m0 ... m55)
    wait_states: int  # flash wait states charged (0: zero-wait-state)
    clock_hz: int | None  # the board's clock or --clock
    classes: dict[str, tuple[int, int]] = field(default_factory=dict)  # class -> (instructions, cycles), whole run
    taken_branches: int = 0
    taken_cycles: int = 0
    wait_cycles: int = 0

    @property
    def unknown(self) -> int:
        """Instructions the model's decode table does not know (charged 1 cycle each)."""
        return self.classes.get("unknown", (0, 0))[0]

    @property
    def label(self) -> str:
        how = ("approximate model" if self.core in APPROXIMATE_CORES
               else "the M4's TRM timings" if self.core == "m33" else "TRM timings")
        memory = "zero-wait-state" if not self.wait_states else f"{self.wait_states} flash wait states"
        return f"estimated, {memory}, Cortex-{self.core.upper().replace('PLUS', '+')} {how}"

    def ms(self, cycles: int) -> float | None:
        return 1000 * cycles / self.clock_hz if self.clock_hz else None


@dataclass
class MarkCounts:
    """The plugin's running counts at every mark, and its whole-run statistics."""

    instructions: list[int]
    cycles: list[int]
    classes: dict[str, tuple[int, int]]
    taken_branches: int = 0
    taken_cycles: int = 0
    wait_cycles: int = 0
    unknown_encodings: list[tuple[int, int]] = field(default_factory=list)  # (address, encoding)
    total_instructions: int = 0  # the whole run
    total_cycles: int = 0
    stack_high_water: int | None = None  # bytes of stack the run used, from the firmware's memory line


@dataclass
class SizeReport:
    """Bytes in flash from the linked ELF: the compiled weights (the model's constant arrays, as
    Compiled.weight_bytes counts them) and everything else."""

    flash_bytes: int
    weight_bytes: int
    code_bytes: int  # flash_bytes - weight_bytes: code, tables, runtime, parameters
    text_bytes: int  # machine code only (.text)
    kernel_text_bytes: int  # machine code of the kernel functions (tml_*)
    ram_bytes: int = 0  # RAM the ELF allocates: stacks, .data, .bss (a static arena in it)

    def summary(self) -> str:
        return (f"flash {self.flash_bytes:,} bytes: compiled weights {self.weight_bytes:,}, code and other "
                f"{self.code_bytes:,} (machine code {self.text_bytes:,}, of it kernels {self.kernel_text_bytes:,})")


@dataclass
class ProfileReport:
    model: str
    board: str
    layers: list[LayerProfile]
    instructions: int  # the sum over layers
    macs: int
    mark_cost: int  # instructions of one mark, subtracted from every layer
    sizes: SizeReport | None = None
    stages: list[str] = field(default_factory=list)  # the plan's patch stages, in words (LayerProfile.stage)
    chart: str | None = None
    families: dict[str, int] = field(default_factory=dict)  # kernel template -> calls
    cycles: int = 0  # estimated: the sum over layers
    mark_cycles: int = 0  # estimated cycles of one mark, subtracted from every layer
    cycle_model: CycleModel | None = None  # None: no cycle model for the core
    stack_high_water: int | None = None  # bytes of stack the profiled run used (not in to_json)
    unit: ClassVar[str] = "instructions"  # the LayerProfile field the chart plots

    @property
    def per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else 0.0

    @property
    def cycles_per_mac(self) -> float:
        return self.cycles / self.macs if self.macs else 0.0

    @property
    def ms(self) -> float | None:
        """Estimated milliseconds of the layers at the clock (None without a model or a clock)."""
        return self.cycle_model.ms(self.cycles) if self.cycle_model else None

    def to_json(self) -> dict[str, Any]:
        m = self.cycle_model

        def ms(cycles: int) -> float | None:
            return m.ms(cycles) if m else None

        return dict(
            model=self.model, board=self.board,
            layers=[dict(index=l.index, name=l.name, op=l.op, kernel=l.kernel, macs=l.macs,
                         instructions=l.instructions, instructions_per_mac=l.per_mac, share=l.share,
                         cycles=l.cycles if m else None, cycles_per_mac=l.cycles_per_mac if m else None,
                         ms=ms(l.cycles), stage=l.stage)
                    for l in self.layers],
            stages=self.stages,
            totals=dict(macs=self.macs, instructions=self.instructions, instructions_per_mac=self.per_mac,
                        mark_cost=self.mark_cost, cycles=self.cycles if m else None,
                        cycles_per_mac=self.cycles_per_mac if m else None, ms=self.ms,
                        clock_hz=m.clock_hz if m else None, mark_cycles=self.mark_cycles if m else None),
            cycle_model=None if m is None else dict(
                what=m.label, core=m.core, wait_states=m.wait_states, clock_hz=m.clock_hz,
                unknown_instructions=m.unknown, taken_branches=m.taken_branches, taken_cycles=m.taken_cycles,
                wait_cycles=m.wait_cycles,
                classes={k: dict(instructions=n, cycles=c) for k, (n, c) in sorted(m.classes.items())}),
            sizes=asdict(self.sizes) if self.sizes else None,
            kernel_families=self.families,
            chart=self.chart,
        )

    def format(self) -> str:
        m = self.cycle_model
        lines = [f"profile of {self.model} on {self.board} (exact instruction counts under QEMU"
                 + (f"; cycles and ms {m.label}" if m else "; no cycle model for this core") + ")", ""]
        head = f"{'#':>3}  {'operator':<20} {'kernel':<26} {'MACs':>11} {'instructions':>13} {'instr/MAC':>9}"
        if m:
            head += f" {'est. cycles':>13} {'cyc/MAC':>7} {'est. ms':>9}"
        head += f" {'share':>6}"
        lines += [head, "-" * len(head)]

        def row(label: str, kernel: str, macs: int, ins: int, ins_pm: float | None, cyc: int,
                cyc_pm: float | None, share: float) -> str:
            pm = f"{ins_pm:9.2f}" if ins_pm is not None else f"{'-':>9}"
            text = f"{label:<20} {kernel[:26]:<26} {macs:>11,} {ins:>13,} {pm}"
            if m:
                cpm = f"{cyc_pm:7.2f}" if cyc_pm is not None else f"{'-':>7}"
                ms = m.ms(cyc)
                text += f" {cyc:>13,} {cpm} " + (f"{ms:9.3f}" if ms is not None else f"{'-':>9}")
            return text + f" {100 * share:5.1f}%"

        for i, l in enumerate(self.layers):
            if l.stage is not None and (i == 0 or self.layers[i - 1].stage != l.stage):
                lines.append(f"{'':>3}  patch stage {l.stage}: {self.stages[l.stage]} (each operator's windows summed)")
            lines.append(f"{l.index:>3}  " + row(("  " if l.stage is not None else "") + l.op, l.kernel, l.macs,
                                                 l.instructions, l.per_mac, l.cycles, l.cycles_per_mac, l.share))
            if l.stage is not None and (i + 1 == len(self.layers) or self.layers[i + 1].stage != l.stage):
                part = [x for x in self.layers if x.stage == l.stage]
                macs, ins, cyc = (sum(x.macs for x in part), sum(x.instructions for x in part),
                                  sum(x.cycles for x in part))
                lines.append(f"{'':>3}  " + row(f"stage {l.stage} total", "", macs, ins, ins / macs if macs else None,
                                                cyc, cyc / macs if macs else None,
                                                sum(x.share for x in part)))
        lines.append("-" * len(head))
        lines.append(f"{'':>3}  " + row("total", "", self.macs, self.instructions, self.per_mac, self.cycles,
                                        self.cycles_per_mac if self.macs else None, 1.0))
        if m:
            lines.append("")
            clock = (f" = {self.ms:.2f} ms at {m.clock_hz / 1e6:g} MHz" if m.clock_hz and self.ms is not None
                     else " (no clock: give --clock MHZ for milliseconds)")
            lines.append(f"estimated {self.cycles:,} cycles{clock} ({m.label}); exact {self.instructions:,} "
                         f"instructions")
            if m.unknown:
                lines.append(f"note: {m.unknown:,} instructions were of no class the cycle model knows; each was "
                             "counted as 1 cycle")
        if self.sizes:
            lines.append("")
            lines.append(self.sizes.summary())
        if self.chart:
            lines.append(f"bar chart: {self.chart}")
        return "\n".join(lines)


_SOURCE_TEXT = {
    "DWT": "cycles from the DWT cycle counter",
    "SysTick": "cycles from SysTick at the core clock",
    "none": "no cycle counter on this core: every count is 0",
}


@dataclass
class BoardLayerProfile:
    index: int
    name: str  # the operator's output tensor
    op: str
    kernel: str  # the C function of our lowering for the board ("" for operators without a call)
    macs: int
    cycles: int
    share: float = 0.0  # of the model's cycles

    @property
    def per_mac(self) -> float | None:
        return self.cycles / self.macs if self.macs else None


@dataclass
class BoardProfileReport:
    """Per-layer cycles measured by the host-link firmware on a board."""

    model: str
    board: str
    port: str
    source: str  # the device's cycle counter: "DWT", "SysTick" or "none"
    cpu_hz: int
    layers: list[BoardLayerProfile]
    cycles: int  # the sum over layers
    macs: int
    invoke_cycles: int  # around the whole inference, per-operator bookkeeping included
    emulated: bool = False  # a QEMU board: SysTick there follows the host's clock, not executed cycles
    memory: Any = None  # tinyml.targets.hostlink.DeviceMemory after the inference (revision-2 firmware)
    sizes: SizeReport | None = None
    chart: str | None = None
    families: dict[str, int] = field(default_factory=dict)  # kernel template -> calls
    unit: ClassVar[str] = "cycles"  # the BoardLayerProfile field the chart plots

    @property
    def per_mac(self) -> float:
        return self.cycles / self.macs if self.macs else 0.0

    @property
    def ms(self) -> float | None:
        """The whole inference at the clock; None under QEMU, whose counters follow the host's clock."""
        if self.emulated or not self.cpu_hz or self.source == "none":
            return None
        return 1000 * self.invoke_cycles / self.cpu_hz

    def to_json(self) -> dict[str, Any]:
        return dict(
            model=self.model, board=self.board, port=self.port, cycle_source=self.source, cpu_hz=self.cpu_hz,
            emulated=self.emulated,
            layers=[dict(index=l.index, name=l.name, op=l.op, kernel=l.kernel, macs=l.macs, cycles=l.cycles,
                         cycles_per_mac=l.per_mac, share=l.share)
                    for l in self.layers],
            totals=dict(macs=self.macs, cycles=self.cycles, cycles_per_mac=self.per_mac,
                        invoke_cycles=self.invoke_cycles, ms=self.ms),
            memory=asdict(self.memory) if self.memory is not None else None,
            sizes=asdict(self.sizes) if self.sizes else None,
            kernel_families=self.families,
            chart=self.chart,
        )

    def format(self) -> str:
        lines = [f"profile of {self.model} on {self.board} ({_SOURCE_TEXT.get(self.source, self.source)}, "
                 f"over the host link at {self.port})"]
        if self.emulated and self.source != "none":
            lines.append("note: under QEMU the counter runs on the host's clock; the numbers are not the "
                         "board's cycles, and no milliseconds follow from them (for estimated cycles and ms, "
                         "profile on a QEMU board with the same core that uses semihosting, e.g. mps2-an386)")
        lines.append("")
        head = f"{'#':>3}  {'operator':<18} {'kernel':<26} {'MACs':>11} {'cycles':>13} {'cycles/MAC':>10} {'share':>6}"
        lines += [head, "-" * len(head)]
        counted = self.source != "none"
        for l in self.layers:
            pm = f"{l.per_mac:10.2f}" if l.per_mac is not None and counted else f"{'-':>10}"
            lines.append(f"{l.index:>3}  {l.op:<18} {l.kernel[:26]:<26} {l.macs:>11,} {l.cycles:>13,} "
                         f"{pm} {100 * l.share:5.1f}%")
        lines.append("-" * len(head))
        total_pm = f"{self.per_mac:10.2f}" if counted else f"{'-':>10}"
        lines.append(f"{'':>3}  {'total':<18} {'':<26} {self.macs:>11,} {self.cycles:>13,} "
                     f"{total_pm} {100.0 if self.cycles else 0.0:5.1f}%")
        lines.append("")
        if counted:
            clock = f", {self.ms:.2f} ms at {self.cpu_hz / 1e6:g} MHz" if self.ms is not None else ""
            lines.append(f"whole inference {self.invoke_cycles:,} cycles{clock} (with the per-operator bookkeeping)")
        if self.memory is not None:
            lines.append(f"memory on the device: {self.memory.summary()}")
        if self.sizes:
            lines.append(self.sizes.summary())
        if self.chart:
            lines.append(f"bar chart: {self.chart}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# the plugin


def plugin_cache_dir() -> Path:
    return cache_root() / "qemu-plugin"


def build_plugin(cc: str = "cc") -> Path:
    """Compile the instruction-counting plugin (once per source version) and return the .so."""
    src_dir = resource_dir("firmware") / "qemu_plugin"
    digest = hashlib.sha256()
    for name in PLUGIN_SOURCES:
        digest.update((src_dir / name).read_bytes())
    out = plugin_cache_dir() / f"insn_count-{digest.hexdigest()[:12]}.so"
    if out.is_file():
        return out
    if shutil.which(cc) is None:
        raise BuildError(f"{cc} not found on PATH, needed to build tinyml's QEMU plugin; install gcc")

    def compile_plugin(tmp: Path) -> None:
        cmd = [cc, "-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
               "-I", str(src_dir), "-o", str(tmp), str(src_dir / "insn_count.c")]
        proc = run_process(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["no output"])[0]
            raise BuildError(f"building the QEMU plugin failed: {first}; check the host C compiler ({cc})")

    return cache_build(out, compile_plugin)


# ---------------------------------------------------------------------------
# ELF helpers


def _elf(elf: Path) -> Any:
    """The ELF file, or the user's one-line error when it is not one."""
    try:
        return ELFFile(io.BytesIO(Path(elf).read_bytes()))
    except (ELFError, OSError) as e:
        raise BuildError(f"{elf}: cannot read the ELF ({e}); rebuild the firmware") from None


def elf_section_sizes(elf: Path) -> dict[str, int]:
    """Section name -> size in bytes, of every section of ``elf``."""
    return {sec.name: sec["sh_size"] for sec in _elf(elf).iter_sections() if sec.name}


def elf_ram_bytes(elf: Path) -> int:
    """Bytes of the writable sections ``elf`` allocates (stacks, .data, .bss): the RAM it reserves."""
    ram = SH_FLAGS.SHF_ALLOC | SH_FLAGS.SHF_WRITE
    return sum(sec["sh_size"] for sec in _elf(elf).iter_sections() if sec["sh_flags"] & ram == ram)


def _symbols(elf: Path) -> list[tuple[str, int, int, str]]:
    """(name, address, size, kind) of every defined symbol: kind "w" weak, else "t" in code, "r" in read-only
    data, "d" in writable data, "-" elsewhere (nm's letters, lowercase).  A Thumb function's address is
    without its Thumb bit, as nm shows it."""
    f = _elf(elf)
    symtab = f.get_section_by_name(".symtab")
    if symtab is None:
        raise BuildError(f"{elf}: has no symbol table (stripped?); rebuild the firmware without stripping it")
    arm = f["e_machine"] == "EM_ARM"
    syms = []
    for sym in symtab.iter_symbols():
        shndx = sym["st_shndx"]
        if not sym.name or not isinstance(shndx, int) or sym["st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
            continue
        flags = f.get_section(shndx)["sh_flags"]
        kind = ("w" if sym["st_info"]["bind"] == "STB_WEAK" else "t" if flags & SH_FLAGS.SHF_EXECINSTR
                else "-" if not flags & SH_FLAGS.SHF_ALLOC else "d" if flags & SH_FLAGS.SHF_WRITE else "r")
        addr = sym["st_value"]
        if arm and sym["st_info"]["type"] == "STT_FUNC":
            addr &= ~1
        syms.append((sym.name, addr, sym["st_size"], kind))
    return syms


def symbol_address(board: Board, elf: Path, name: str) -> int:
    for sym, addr, _size, _t in _symbols(elf):
        if sym == name:
            return addr
    raise BuildError(f"{elf}: symbol {name} not found; was the firmware built with PROFILE=1?")


def elf_sizes(board: Board, elf: Path, model_name: str) -> SizeReport:
    """Flash use of a linked firmware: the model's constant arrays are weights, the rest is code."""
    sections = elf_section_sizes(elf)
    flash = sum(sections.get(s, 0) for s in _FLASH_SECTIONS)
    weight_re = re.compile(rf"^{re.escape(model_name)}_(t\d+|op\d+_(?!params$)\w+)$")
    weights = kernels = 0
    for name, _addr, size, kind in _symbols(elf):
        if kind == "r" and weight_re.match(name):
            weights += size
        elif kind == "t" and name.startswith("tml_") and _is_kernel(name):
            kernels += size
    return SizeReport(flash_bytes=flash, weight_bytes=weights, code_bytes=flash - weights,
                      text_bytes=sections.get(".text", 0), kernel_text_bytes=kernels, ram_bytes=elf_ram_bytes(elf))


_RUNTIME_PREFIXES = ("tml_io_", "tml_puts", "tml_exit", "tml_reset", "tml_fault", "tml_profile", "tml_trace",
                     "tml_semihost", "tml_default", "tml_handler", "tml_fail", "tml_format", "tml_put_")


def _is_kernel(name: str) -> bool:
    return not name.startswith(_RUNTIME_PREFIXES)


def build_variant(project: Path, board: Board, *, profile: bool) -> Path:
    """make (PROFILE=1) in a project; returns the ELF."""
    cmd = ["make", "-C", str(project), f"-j{os.cpu_count() or 1}"]
    if profile:
        cmd.append("PROFILE=1")
    proc = run_process(cmd, env={**os.environ, "LC_ALL": "C"}, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                       timeout=BUILD_TIMEOUT_SECONDS)
    if proc.returncode != 0:
        raise BuildError(f"build of {project} failed: {_first_error(proc.stdout, board.cc)}")
    elf = project / ("build-profile" if profile else "build") / "firmware.elf"
    if not elf.is_file():
        raise BuildError(f"make succeeded but {elf} is missing; check the Makefile in {project}")
    return elf


def plugin_arguments(board: Board) -> list[str]:
    """The plugin's cycle-model arguments for ``board``: its core, and the flash wait states that no
    cache hides (none: zero wait states)."""
    args = [f"core={cycle_core(board) or 'm4'}"]
    waits = board.visible_wait_states
    if waits and board.flash_origin is not None and board.flash_bytes is not None:
        args += [f"flash={board.flash_origin:#x}:{board.flash_origin + board.flash_bytes:#x}", f"ws={waits}"]
    return args


def parse_counts(text: str) -> MarkCounts:
    """The plugin's output file (see insn_count.c)."""
    counts = MarkCounts(instructions=[], cycles=[], classes={})
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            counts.instructions.append(int(parts[0]))
            counts.cycles.append(int(parts[1]))
        elif parts[:1] == ["total"]:
            counts.total_instructions, counts.total_cycles = int(parts[1]), int(parts[2])
        elif parts[:1] == ["taken"]:
            counts.taken_branches, counts.taken_cycles = int(parts[1]), int(parts[2])
        elif parts[:1] == ["waits"]:
            counts.wait_cycles = int(parts[1])
        elif parts[:1] == ["class"]:
            counts.classes[parts[1]] = (int(parts[2]), int(parts[3]))
        elif parts[:1] == ["unknown"]:
            counts.unknown_encodings.append((int(parts[1], 16), int(parts[2], 16)))
    return counts


def count_marks(project: Path, board: Board, elf: Path, input_bytes: bytes, timeout: float = 600.0) -> MarkCounts:
    """Run a PROFILE=1 firmware under QEMU with the plugin: the running instruction count and estimated
    cycles at every mark, and where the cycles went."""
    if board.kind != "qemu":
        raise InputError(f"board {board.name} is not a QEMU board; instruction counts need QEMU "
                         "(profiling real boards with the DWT cycle counter needs the serial host link)")
    if shutil.which(QEMU_BINARY) is None:
        raise RunError(f"{QEMU_BINARY} not found on PATH; install it (Debian: apt-get install qemu-system-arm)")
    plugin = build_plugin()
    mark = symbol_address(board, elf, MARK_SYMBOL)
    with tempfile.TemporaryDirectory(prefix="tinyml-profile-") as tmp:
        work = Path(tmp)
        (work / "input.bin").write_bytes(input_bytes)
        counts = work / "counts.txt"
        cmd = qemu_command(board, elf)
        k = cmd.index("-kernel")
        cmd[k:k] = ["-plugin", ",".join([str(plugin), f"mark={mark:#x}", f"out={counts}", *plugin_arguments(board)])]
        try:
            proc = run_process(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunError(f"profiling {project.name} on {board.name} did not finish within {timeout:g}s; "
                           f"run 'make run PROFILE=1' in {project} to see why") from None
        console = proc.stdout.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not counts.is_file():
            tail = " | ".join(console.splitlines()[-4:]) or "no console output"
            raise RunError(f"the profiling run of {project.name} on {board.name} failed with exit code "
                           f"{proc.returncode}: {tail}; run 'make run PROFILE=1' in {project}")
        result = parse_counts(counts.read_text())
        m = _HIGH_WATER.search(console)
        result.stack_high_water = int(m.group(1)) if m else None
        return result


_HIGH_WATER = re.compile(r"tinyml: memory: .* stack high-water (\d+) of \d+ bytes")


def count_instructions(project: Path, board: Board, elf: Path, input_bytes: bytes,
                       timeout: float = 600.0) -> list[int]:
    """Run a PROFILE=1 firmware under QEMU with the plugin; the running instruction count at every mark."""
    return count_marks(project, board, elf, input_bytes, timeout).instructions


# ---------------------------------------------------------------------------


def marked_rows(compiled: Any) -> list[list[Any]]:
    """The calls of model.c in groups: one call, or the calls of a patch stage (its loop runs them patch by
    patch, marking after every window, and marks once more after the stage)."""
    rows: list[list[Any]] = []
    group: list[Any] = []
    for call in compiled.calls:
        group.append(call)
        if not isinstance(call, KernelCall) or call.patch_loop not in ("first", "middle"):
            rows.append(group)
            group = []
    return rows


def _group_marks(group: list[Any]) -> int:
    """The profiling marks one group of marked_rows makes: one, or the windows of a patch stage (or of a
    layer computed in column strips, a loop of its own) plus one."""
    if not (isinstance(group[0], KernelCall) and group[0].patch_loop):
        return 1
    return len(group) * len(group[0].patch_params) + 1


def invoke_marks(compiled: Any) -> int:
    """The profiling marks one inference of ``compiled`` makes, the two at its start included."""
    return 2 + sum(map(_group_marks, marked_rows(compiled)))


def profile_compiled(compiled: Any, project: Path, *, seed: int = 0,
                     clock_hz: int | None = None) -> ProfileReport:
    """Profile a compiled model whose project is written at ``project`` (``clock_hz``: the clock for
    milliseconds, default the board's).  An operator of a patch stage gets its own row: the instructions of
    all its windows (the stage's band reads and loop are counted with its first operator)."""
    graph, board = compiled.graph, compiled.board
    elf = build_variant(project, board, profile=True)
    sample = random_inputs(graph, 1, check_seed(seed))
    counts = count_marks(project, board, elf, pack_samples(graph, sample))
    hits, cyc = counts.instructions, counts.cycles
    rows = marked_rows(compiled)
    expected = invoke_marks(compiled)
    if len(hits) != expected:
        raise RunError(f"the profiling run recorded {len(hits)} marks, expected {expected}; "
                       "rebuild the project with this version of tinyml")
    mark_cost = hits[1] - hits[0]
    mark_cycles = cyc[1] - cyc[0]

    def span(i: int) -> tuple[int, int]:
        """Instructions and cycles between mark i and mark i + 1, less one mark's."""
        return hits[i + 1] - hits[i] - mark_cost, cyc[i + 1] - cyc[i] - mark_cycles

    layers = []
    at = 1  # the mark that starts the next group
    for group in rows:
        n = _group_marks(group)
        if n == 1:
            call = group[0]
            ins, cy = span(at)
            out = call.outputs[0] if isinstance(call, KernelCall) else call.target
            layers.append(LayerProfile(
                index=call.op_index, name=graph.tensors[out].name, op=call.op_kind,
                kernel=call.function if isinstance(call, KernelCall) else "",
                macs=call.macs if isinstance(call, KernelCall) else 0,
                instructions=max(ins, 0), cycles=max(cy, 0)))
        else:
            stage = compiled.plan.stage_of(group[-1].op_index)  # None: one layer in column strips
            k = len(group)
            sums = [[0, 0] for _ in group]
            for m in range(n):  # window m % k of patch m // k; the last span: the stage's loop exit (and drain)
                ins, cy = span(at + m)
                slot = sums[m % k if m < n - 1 else 0]
                slot[0] += ins
                slot[1] += cy
            for j, call in enumerate(group):
                layers.append(LayerProfile(
                    index=call.op_index, name=graph.tensors[call.outputs[0]].name, op=call.op_kind,
                    kernel=call.function,
                    macs=call.macs if stage is None else  # its windows' MACs, as the planner counts stage.macs
                    macs_per_pixel(graph, call.op_index) * sum(w.out_h * w.out_w for w in stage.windows[j]),
                    instructions=max(sums[j][0], 0), cycles=max(sums[j][1], 0),
                    stage=None if stage is None else compiled.plan.stages.index(stage)))
        at += n
    total = sum(l.instructions for l in layers)
    for l in layers:
        l.share = l.instructions / total if total else 0.0
    families: dict[str, int] = {}
    for c in compiled.calls:
        if isinstance(c, KernelCall):
            families[c.kernel] = families.get(c.kernel, 0) + 1
    core = cycle_core(board)
    model = None if core is None else CycleModel(
        core=core, wait_states=board.visible_wait_states,
        clock_hz=clock_hz or board.cpu_hz, classes=counts.classes, taken_branches=counts.taken_branches,
        taken_cycles=counts.taken_cycles, wait_cycles=counts.wait_cycles)
    return ProfileReport(model=graph.name, board=board.name, layers=layers, instructions=total,
                         macs=sum(l.macs for l in layers), mark_cost=mark_cost, families=families,
                         cycles=sum(l.cycles for l in layers), mark_cycles=mark_cycles, cycle_model=model,
                         stack_high_water=counts.stack_high_water,
                         stages=[describe_stages([st]) for st in compiled.plan.stages])


def compile_to(model: str | os.PathLike[str], board: str | Board, project: Path,
               families: str = "auto", sram: int | None = None, tolerance: float = TOLERANCE,
               stream_input: bool = False) -> Any:
    """Compile ``model`` for ``board`` into ``project`` (``families``: "auto" or "portable"; ``sram``: the
    arena budget, ``stream_input``: the input streamed row by row, as tinyml compile takes them)."""
    brd = board if isinstance(board, Board) else load_board(board)
    if families == "portable":
        brd = portable_board(brd)
    compiled = build_model(model, brd, sram=sram, tolerance=tolerance, stream_input=stream_input)
    write_project(compiled.files, project)
    return compiled


def portable_board(board: Board) -> Board:
    """The same board without the DSP and MVE features, so lowering picks the portable kernels."""
    from dataclasses import replace

    return replace(board, features=tuple(f for f in board.features if f not in ("dsp", "mve")))


def default_chart(model: str | os.PathLike[str], board: str | Board) -> Path:
    """The chart file `tinyml profile` writes without --chart: MODEL-BOARD-profile.png in the current
    directory, BOARD the board's name (a board given as a file path names no folder)."""
    brd = board if isinstance(board, Board) else load_board(board)
    return Path(f"{Path(model).stem}-{brd.name}-profile.png")


def profile_model(model: str | os.PathLike[str], board: str, *, chart: str | os.PathLike[str] | None = None,
                  work_dir: str | os.PathLike[str] | None = None, seed: int = 0, sizes: bool = True,
                  families: str = "auto", progress: Callable[[str], None] | None = None,
                  port: str | None = None, baudrate: int = 115200,
                  sram: int | None = None, tolerance: float = TOLERANCE,
                  clock_mhz: float | None = None, force: bool = False,
                  stream_input: bool = False) -> ProfileReport | BoardProfileReport:
    """Compile, build with markers, count instructions and estimate cycles per layer under QEMU; sizes
    from the ELF.

    ``clock_mhz``: the clock for milliseconds (default: the board's clock.cpu_hz).

    ``sram``: profile the plan that fits this arena budget (as tinyml compile --sram makes it), so its
    cost is measured exactly rather than estimated.  ``stream_input``: the model's input streamed row by
    row (as tinyml compile --stream-input makes it; the firmware reads the rows from its input file).

    With ``port`` (or for a QEMU board whose tensors move over its UART) the
    cycles per layer come from the host-link firmware instead: see
    :func:`profile_device`.

    ``force``: replace an existing ``chart`` file that tinyml did not write."""
    say = progress or (lambda _m: None)
    check_seed(seed)
    if chart is not None:
        check_plot_path(chart, force=force, option="--chart")  # before the work
    clock_hz = check_clock_hz(clock_mhz * 1e6) if clock_mhz is not None else None
    if not Path(model).is_file():
        raise InputError(f"{model}: no such model file; give the path of an int8 .tflite file")
    brd = load_board(board)
    if port is not None or (brd.kind == "qemu" and brd.host_io == "uart"):
        if stream_input:
            raise InputError(f"--stream-input is profiled under QEMU with semihosting, not over the host link "
                             f"of {brd.name}; leave out --port (or --stream-input)")
        board_report = profile_device(model, brd, port, seed=seed, baudrate=baudrate, families=families,
                                      work_dir=work_dir, sizes=sizes, progress=say, sram=sram)
        if clock_hz is not None:
            board_report.cpu_hz = clock_hz
        if chart is not None and board_report.cycles > 0:
            board_report.chart = str(write_chart(board_report, Path(chart), force=force))
        return board_report
    if brd.kind != "qemu":
        raise InputError(f"board {brd.name} is not a QEMU board; 'tinyml profile' counts instructions under "
                         "QEMU (use e.g. --board mps2-an386), or give --port for a board running the "
                         "host-link firmware")
    with tempfile.TemporaryDirectory(prefix="tinyml-profile-") as tmp:
        project = Path(work_dir) if work_dir is not None else Path(tmp) / "proj"
        compiled = compile_to(model, brd, project, families, sram, tolerance, stream_input)
        say(f"compiled {compiled.graph.name} for {brd.name}; building with profiling marks")
        report = profile_compiled(compiled, project, seed=seed, clock_hz=clock_hz)
        if sizes:
            report.sizes = elf_sizes(brd, build_variant(project, brd, profile=False), compiled.graph.name)
    if chart is not None:
        report.chart = str(write_chart(report, Path(chart), force=force))
    return report


def size_report(model: str | os.PathLike[str], board: str, *, stream_input: bool = False) -> SizeReport:
    """Build ``model`` for an Arm ``board`` and measure weights and code in the ELF (``stream_input``: the build
    that streams the input row by row, as tinyml compile --stream-input)."""
    brd = load_board(board)
    if not brd.is_arm:
        raise InputError(f"board {brd.name} has no firmware ELF; give an Arm board for the size report "
                         "(e.g. --board mps2-an386)")
    with tempfile.TemporaryDirectory(prefix="tinyml-size-") as tmp:
        project = Path(tmp) / "proj"
        compiled = compile_to(model, brd, project, stream_input=stream_input)
        return elf_sizes(brd, build_variant(project, brd, profile=False), compiled.graph.name)


def write_chart(report: ProfileReport | BoardProfileReport, path: Path, *, force: bool = False) -> Path:
    """A horizontal bar chart of instructions (or cycles) per layer (PNG, PDF or SVG by the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = report.unit  # "instructions" (QEMU) or "cycles" (a board over the host link)
    layers = [l for l in report.layers if getattr(l, unit) > 0] or report.layers
    stage = [getattr(l, "stage", None) for l in layers]  # a patch stage's operators: their windows summed
    labels = [f"{l.index} {l.op}" + (f" (stage {s})" if s is not None else "") for l, s in zip(layers, stage)]
    values = np.array([getattr(l, unit) for l in layers], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(layers) + 1.5))
    bars = ax.barh(range(len(layers)), values, color=["#3a6ea5" if s is None else "#c27c0e" for s in stage])
    ax.set_yticks(range(len(layers)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(f"{report.model} on {report.board}: {getattr(report, unit):,} {unit}, "
                 f"{report.per_mac:.2f}/MAC", fontsize=9)
    for b, l in zip(bars, layers):
        text = f"{l.per_mac:.2f}/MAC" if l.per_mac else ""
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {text}", va="center", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, force=force, option="--chart")


# ---------------------------------------------------------------------------
# boards over the host link


def profile_device(model: str | os.PathLike[str], board: str | Board, port: str | None, *, seed: int = 0,
                   baudrate: int = 115200, families: str = "auto", work_dir: str | os.PathLike[str] | None = None,
                   sizes: bool = True, progress: Callable[[str], None] | None = None,
                   sram: int | None = None) -> BoardProfileReport:
    """Cycles per layer of ``model`` on the board at ``port``, which runs the
    host-link firmware compiled from it (compiling and flashing it is the
    user's job).  Without ``port`` (QEMU boards only) the firmware is compiled
    and built here and QEMU runs it with its UART on a local socket; then the
    report also has the flash sizes of that firmware."""
    say = progress or (lambda _m: None)
    path = Path(model)
    if not path.is_file():
        raise InputError(f"{path}: no such model file; give the .tflite the board's firmware was compiled from")
    brd = board if isinstance(board, Board) else load_board(board)
    if brd.uart_driver is None:
        raise InputError(f"board {brd.name} has no [uart] table in its board file, so it has no host-link "
                         "firmware to profile over --port; use a QEMU board without --port")
    if families == "portable":
        brd = portable_board(brd)
    if port is not None:
        compiled = build_model(path, brd, sram=sram)
        with HostLink(port, baudrate=baudrate) as link:
            say(f"profiling {compiled.graph.name} on the device at {port}")
            return profile_over_link(link, compiled, path, port, seed=seed)
    if brd.kind != "qemu":
        raise InputError(f"board {brd.name} is real hardware: compile and flash its firmware (tinyml compile, "
                         "tinyml flash) and give its serial port with --port")
    with tempfile.TemporaryDirectory(prefix="tinyml-profile-") as tmp:
        project = Path(work_dir) if work_dir is not None else Path(tmp) / "proj"
        compiled = compile_to(path, brd, project, sram=sram)
        say(f"compiled {compiled.graph.name} for {brd.name}; building the host-link firmware")
        elf = build_hostlink(project)
        with qemu_uart(brd, elf) as session, connect(session.url) as link:
            link.poll(0.1)
            report = profile_over_link(link, compiled, path, f"{brd.name}'s UART under QEMU", seed=seed)
        if sizes:
            report.sizes = elf_sizes(brd, elf, compiled.graph.name)
    return report


def profile_over_link(link: Any, compiled: Any, model_path: Path, port_label: str, *,
                      seed: int = 0) -> BoardProfileReport:
    """One random inference through ``link`` (a tinyml.targets.hostlink.HostLink),
    then the device's per-operator cycles mapped onto ``compiled``'s layers."""
    graph, board = compiled.graph, compiled.board
    info = link.info()
    if info.board != board.name:
        raise InputError(f"the device at {port_label} runs firmware for board {info.board}, not {board.name}; "
                         f"give --board {info.board}")
    check_device_matches(graph, info, model_path)
    traced = [c for c in compiled.calls if isinstance(c, Alias) or c.patch_loop not in ("first", "middle")]
    n_ops = max((c.op_index for c in traced), default=-1) + 1
    if n_ops > info.max_ops:
        raise InputError(f"{model_path} has {n_ops} operators, but the host-link firmware records the cycles of "
                         f"at most {info.max_ops}; profile it under QEMU instead (e.g. --board mps2-an386)")
    sample = random_inputs(graph, 1, check_seed(seed))[0]
    raw = [np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes() for a in sample]
    _outputs, invoke_cycles = link.run_bytes(raw)
    device = link.profile_ops()
    if len(device.cycles) != n_ops:
        raise InputError(f"the device's firmware reported {len(device.cycles)} operators, but {model_path} "
                         f"compiled for {board.name} has {n_ops}; flash the firmware compiled from {model_path}")
    memory = link.mem() if info.revision >= 2 else None
    layers = []
    seen: set[int] = set()
    for call in compiled.calls:
        # An operator's cycles go to its first call; the calls of a patch
        # stage before its last are counted with the last one.
        first = call.op_index not in seen
        seen.add(call.op_index)
        out = call.outputs[0] if isinstance(call, KernelCall) else call.target
        layers.append(BoardLayerProfile(
            index=call.op_index, name=graph.tensors[out].name, op=call.op_kind,
            kernel=call.function if isinstance(call, KernelCall) else "",
            macs=call.macs if isinstance(call, KernelCall) else 0,
            cycles=device.cycles[call.op_index] if first else 0))
    total = sum(l.cycles for l in layers)
    for l in layers:
        l.share = l.cycles / total if total else 0.0
    families: dict[str, int] = {}
    for c in compiled.calls:
        if isinstance(c, KernelCall):
            families[c.kernel] = families.get(c.kernel, 0) + 1
    return BoardProfileReport(model=graph.name, board=board.name, port=port_label, source=device.source,
                              cpu_hz=info.cpu_hz, layers=layers, cycles=total, macs=sum(l.macs for l in layers),
                              invoke_cycles=invoke_cycles, emulated=board.kind == "qemu", memory=memory,
                              families=families)
