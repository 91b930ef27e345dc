"""The cycle model of tinyml's QEMU plugin (firmware/qemu_plugin/insn_count.c).

Micro-sequences, built with arm-none-eabi-gcc into one bare-metal program per
core and run under that core's QEMU machine with the plugin, must take the
cycles Arm's Technical Reference Manuals state for them (P, the pipeline
refill the TRMs give as 1 to 3 cycles, is taken as 2 on the M3/M4/M33 and M55's
scalar side, 2 on the M0 and 1 on the M0+; value-dependent ranges take their
upper bound).  For the M7 and M55 the expected figures are those of the
documented approximation.  Whole networks are checked for consistency:
every executed instruction falls in a known class, and on M3/M4/M33 a
network takes at least as many cycles as instructions.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.modelgen import build, zoo_cases
from tinyml.boards import Board, load_board
from tinyml.targets.qemu import qemu_command
from tinyml.tools.profile import build_plugin, parse_counts, plugin_arguments, profile_model

pytestmark = pytest.mark.qemu

# name -> (assembly, expected cycles).  Every sequence starts a translation
# block (it follows the return from a mark) and ends with the call of the next
# mark.  r0 and r7 point at a RAM buffer whose first word holds its own
# address; r4 = 100, r5 = 7; r6 = 0.
LOADS3 = "ldr r3, [r0]\n ldr r1, [r0, #4]\n ldr r2, [r0, #8]"
LOAD_DEP = "ldr r3, [r0]\n ldr r1, [r3]"      # the second load's base is the first's result
LOAD_STORE = "ldr r3, [r0]\n str r3, [r0, #8]"
LOOP10 = "movs r2, #10\n1: subs r2, r2, #1\n bne 1b"
LDM4 = "ldmia r7!, {r1, r2, r3, r6}"
ADDR_DEP = "adds r0, r0, #0\n ldr r1, [r0]"   # the load's base is the result of the instruction before
ADDR_INDEP = "adds r2, r2, #0\n ldr r1, [r0]"
STRB_IMM = "strb r3, [r0, #9]"
STRB_REG = "strb r3, [r0, r5]"
LITERAL = "ldr r1, =0x12345678"  # from the literal pool, in flash
PUSH_POP = "push {r4, r5, r6, r7}\n pop {r4, r5, r6, r7}"
B_FORWARD = "b 1f\n nop\n1:"
SMLAD4 = "\n".join(["smlad r6, r4, r5, r6"] * 4)
UDIV = "udiv r3, r4, r5"
MLA_UMULL = "mla r3, r4, r5, r3\n umull r1, r2, r4, r5"
# Four loads after a branch, placed so that a 1 KiB page (where QEMU ends a translation block) begins between
# the third and the fourth, or well before them: the same cycles either way (the model carries the pipeline
# state from one block to the next, so an estimate does not depend on where code sits).
LOADS4 = "ldr r3, [r0]\n ldr r1, [r0, #4]\n ldr r2, [r0, #8]\n ldr r3, [r0, #12]"
LOADS4_ACROSS_PAGE = f"b 3f\n .balign 1024\n .space 1018\n3: {LOADS4}"
LOADS4_IN_PAGE = f"b 3f\n .balign 1024\n .space 1000\n3: {LOADS4}"

# Cortex-M3/M4/M33 (TRM instruction timing tables, P = 2): LDR 2, the next
# neighbouring independent load or store 1; STR with an immediate offset 1;
# a load or store whose address the instruction before computed, 1 more;
# LDM/PUSH/POP 1+N; B 1+P; a taken B<cond> 1+P, not taken 1; SDIV/UDIV
# 2 to 12 -> 12.
ARMV7M_COMMON = {
    "loads3": (LOADS3, 2 + 1 + 1),
    "load_dep": (LOAD_DEP, 2 + 2),
    "load_store": (LOAD_STORE, 2 + 1),
    "addr_dep": (ADDR_DEP, 1 + 2 + 1),
    "addr_indep": (ADDR_INDEP, 1 + 2),
    "strb_imm": (STRB_IMM, 1),
    "strb_reg": (STRB_REG, 2),
    "literal": (LITERAL, 2),
    "loop10": (LOOP10, 1 + 10 * 1 + 9 * (1 + 2) + 1),
    "ldm4": (LDM4, 1 + 4),
    "push_pop": (PUSH_POP, (1 + 4) + (1 + 4)),
    "b_forward": (B_FORWARD, 1 + 2),
    "udiv": (UDIV, 12),
    "loads4_in_page": (LOADS4_IN_PAGE, (1 + 2) + 2 + 1 + 1 + 1),
    "loads4_across_page": (LOADS4_ACROSS_PAGE, (1 + 2) + 2 + 1 + 1 + 1),
}
SEQUENCES = {
    # Cortex-M0: no load pipelining; B taken 3, not taken 1.
    "microbit": {
        "loads3": (LOADS3, 3 * 2),
        "load_dep": (LOAD_DEP, 2 + 2),
        "load_store": (LOAD_STORE, 2 + 2),
        "addr_dep": (ADDR_DEP, 1 + 2),
        "strb_imm": (STRB_IMM, 2),
        "strb_reg": (STRB_REG, 2),
        "literal": (LITERAL, 2),
        "loop10": (LOOP10, 1 + 10 * 1 + 9 * 3 + 1),
        "ldm4": (LDM4, 1 + 4),
        "push_pop": (PUSH_POP, (1 + 4) + (1 + 4)),
        "b_forward": (B_FORWARD, 3),
        "muls": ("muls r3, r4, r3", 1),
    },
    # Cortex-M3: MLA 2, UMULL 3 to 5 -> 5.
    "mps2-an385": {**ARMV7M_COMMON, "mla_umull": (MLA_UMULL, 2 + 5)},
    # Cortex-M4: every multiply 1, SMLAD 1.
    "mps2-an386": {**ARMV7M_COMMON, "mla_umull": (MLA_UMULL, 1 + 1), "smlad4": (SMLAD4, 4)},
    # Cortex-M33: modelled with the M4's timings.
    "mps2-an505": {**ARMV7M_COMMON, "mla_umull": (MLA_UMULL, 1 + 1), "smlad4": (SMLAD4, 4)},
    # Cortex-M7 approximation: 1 cycle each; an instruction pairs with the one
    # before it (0) unless it is a branch, both are loads/stores or both
    # multiplies, it reads a register that one writes, or that one already
    # paired; taken branches refill 1.
    "mps2-an500": {
        "alu4": ("adds r1, r1, #1\n adds r2, r2, #1\n adds r3, r3, #1\n adds r7, r7, #1", 1 + 0 + 1 + 0),
        "alu_chain": ("adds r1, r1, #1\n adds r1, r1, #1\n adds r1, r1, #1", 1 + 1 + 1),
        "load_use": ("ldr r3, [r0]\n adds r3, r3, #1", 1 + 1),
        "loads3": (LOADS3, 3),
        "load_alu": ("ldr r3, [r0]\n adds r1, r1, #1\n ldr r2, [r0, #4]\n adds r7, r7, #1", 1 + 0 + 1 + 0),
        "loop10": (LOOP10, (1 + 1 + 1) + 9 * (1 + 1) + 9 * 1),  # SUBS reads the MOVS's r2: no pair
        "smlad4": (SMLAD4, 4),
        "udiv": (UDIV, 12),
    },
    # Cortex-M55: scalar as the M4; an MVE instruction 2 cycles (4 beats, 2 a
    # cycle), 1 when it follows a vector instruction of the other kind (load or
    # store against arithmetic); DLS 1, LE 0 with no refill.
    "mps3-an547": {
        "loads3": (LOADS3, 2 + 1 + 1),
        "loop10": (LOOP10, 1 + 10 * 1 + 9 * (1 + 2) + 1),
        "smlad4": (SMLAD4, 4),
        "udiv": (UDIV, 12),
        "vldr2": ("vldrw.u32 q0, [r0]\n vldrw.u32 q1, [r0, #16]", 2 + 2),
        "vmac_overlap": ("vldrw.u32 q0, [r0]\n vmladava.s8 r6, q0, q1\n vldrw.u32 q2, [r0, #16]\n"
                         " vmladava.s8 r6, q2, q1", 2 + 1 + 1 + 1),
        "lob10": ("movs r2, #10\n dls lr, r2\n1: adds r3, r3, #1\n le lr, 1b", 1 + 1 + 10 * (1 + 0)),
    },
}

START = """
    .syntax unified
    .thumb
    .section .vectors, "a"
    .word __stack_top
    .word _start
    .text
    .thumb_func
    .global _start
_start:
{enable_mve}
    ldr r0, =buf
    str r0, [r0]
    mov r7, r0
    movs r4, #100
    movs r5, #7
    movs r6, #0
    bl mark
    bl mark
{body}
    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
    b .
    .thumb_func
mark:
    bx lr
    .ltorg
    .bss
    .balign 16
buf:
    .space 64
"""
# The M55 traps MVE instructions until CPACR enables coprocessors 10 and 11.
ENABLE_MVE = """
    ldr r1, =0xE000ED88
    ldr r2, [r1]
    orr r2, r2, #(0xF << 20)
    str r2, [r1]
    dsb
    isb
"""
LINK = """
MEMORY {{
  CODE (rx) : ORIGIN = {code:#x}, LENGTH = {code_len:#x}
  RAM (rwx) : ORIGIN = {ram:#x}, LENGTH = {ram_len:#x}
}}
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) }} > CODE
  .bss (NOLOAD) : {{ *(.bss*) }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


def _run_sequences(board_name: str, work: Path, board: Board | None = None,
                   plugin_args: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """Build one program with every sequence of the board, run it, and return name -> (instructions, cycles)."""
    board = board or load_board(board_name)
    names = list(SEQUENCES[board_name])
    body = "\n".join(f"    {SEQUENCES[board_name][n][0]}\n    bl mark" for n in names)
    src = work / f"{board_name}.S"
    src.write_text(START.format(body=body, enable_mve=ENABLE_MVE if board.has("mve") else ""))
    code = (board.vectors_origin, board.vectors_bytes) if board.vectors_origin is not None else (
        board.flash_origin, board.flash_bytes)
    ld = work / f"{board_name}.ld"
    ld.write_text(LINK.format(code=code[0], code_len=code[1], ram=board.ram_origin, ram_len=board.ram_bytes))
    elf = work / f"{board_name}.elf"
    subprocess.run([board.cc, *board.cflags, "-nostdlib", "-nostartfiles", "-T", str(ld), "-o", str(elf), str(src)],
                   check=True, capture_output=True, text=True)
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True, text=True).stdout
    mark = next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(" mark"))
    out = work / f"{board_name}.counts"
    cmd = qemu_command(board, elf)
    k = cmd.index("-kernel")
    args = plugin_arguments(board) if plugin_args is None else plugin_args
    cmd[k:k] = ["-plugin", ",".join([str(build_plugin()), f"mark={mark:#x}", f"out={out}", *args])]
    proc = subprocess.run(cmd, cwd=work, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = parse_counts(out.read_text())
    ins, cyc = counts.instructions, counts.cycles
    assert len(ins) == len(names) + 2
    assert not counts.unknown_encodings, counts.unknown_encodings
    # every instruction is in one class; the classes, taken branches and wait states make up the cycles
    assert sum(n for n, _c in counts.classes.values()) == counts.total_instructions == ins[-1] + 3
    assert (sum(c for _n, c in counts.classes.values()) + counts.taken_cycles + counts.wait_cycles
            == counts.total_cycles)
    mark_ins, mark_cyc = ins[1] - ins[0], cyc[1] - cyc[0]
    return {n: (ins[i + 2] - ins[i + 1] - mark_ins, cyc[i + 2] - cyc[i + 1] - mark_cyc)
            for i, n in enumerate(names)}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> dict[str, dict[str, tuple[int, int]]]:
    work = tmp_path_factory.mktemp("cycles")
    return {board: _run_sequences(board, work) for board in SEQUENCES}


@pytest.mark.parametrize("board,name", [(b, n) for b, seqs in SEQUENCES.items() for n in seqs])
def test_micro_sequence_cycles(measured, board: str, name: str) -> None:
    _ins, cycles = measured[board][name]
    assert cycles == SEQUENCES[board][name][1], f"{name} on {board}: {SEQUENCES[board][name][0]!r}"


def test_cycles_at_least_instructions_on_m0_to_m4(measured) -> None:
    for board in ("microbit", "mps2-an385", "mps2-an386", "mps2-an505"):
        for name, (ins, cycles) in measured[board].items():
            assert cycles >= ins > 0, (board, name)


def test_flash_wait_states(tmp_path) -> None:
    """[timing] flash_wait_states: every 32-bit fetch of code from flash and every load from flash waits; a
    cache that hides them (flash_cache = true) brings back zero wait states."""
    text = load_board("mps2-an386").path.read_text()
    slow = tmp_path / "slow.toml"
    slow.write_text(text + "\n[timing]\nflash_wait_states = 3\n")
    cached = tmp_path / "cached.toml"
    cached.write_text(text + "\n[timing]\nflash_wait_states = 3\nflash_cache = true\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    waits = _run_sequences("mps2-an386", tmp_path / "a", load_board(slow))
    hidden = _run_sequences("mps2-an386", tmp_path / "b", load_board(cached))
    assert all(hidden[n][1] == SEQUENCES["mps2-an386"][n][1] for n in hidden)
    # UDIV + BL: 8 bytes, 2 fetches of 3 wait states, less the mark's BL (1 fetch)
    assert waits["udiv"][1] == 12 + 2 * 3 - 3
    # loads from the RAM buffer do not wait
    assert waits["loads3"][1] == 4 + 3 * 3 - 3
    assert waits["ldm4"][1] == 5 + 2 * 3 - 3  # LDM + BL: 6 bytes, 2 fetches; its loads read RAM
    # a literal load reads flash: LDR 2, one fetch more than the mark's, and the read's 3
    assert waits["literal"][1] == 2 + 2 * 3 - 3 + 3


# Cortex-M0+ (no board under QEMU has one: its table runs on the micro:bit's
# M0 machine): as the M0 except that a taken branch refills in 1 cycle.
M0PLUS = {"loads3": 3 * 2, "load_dep": 2 + 2, "load_store": 2 + 2, "addr_dep": 1 + 2, "strb_imm": 2,
          "strb_reg": 2, "literal": 2, "loop10": 1 + 10 * 1 + 9 * 2 + 1, "ldm4": 1 + 4,
          "push_pop": (1 + 4) + (1 + 4), "b_forward": 2, "muls": 1}


def test_m0plus_table(tmp_path) -> None:
    measured = _run_sequences("microbit", tmp_path, plugin_args=["core=m0plus"])
    assert {n: c for n, (_i, c) in measured.items()} == M0PLUS


def test_plugin_rejects_an_unknown_core(tmp_path) -> None:
    with pytest.raises(AssertionError, match="unknown core"):
        _run_sequences("mps2-an386", tmp_path, plugin_args=["core=m99"])


@pytest.fixture(scope="module")
def ds_cnn(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("m") / "ds_cnn.tflite"
    path.write_bytes(build(zoo_cases("ds_cnn")[0]))
    return path


@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an386", "mps2-an505", "mps2-an500", "mps3-an547"])
def test_whole_network_every_class_known(ds_cnn, board: str) -> None:
    report = profile_model(ds_cnn, board, sizes=False)
    model = report.cycle_model
    assert model is not None and model.core == {"mps2-an385": "m3", "mps2-an386": "m4", "mps2-an505": "m33",
                                                 "mps2-an500": "m7", "mps3-an547": "m55"}[board]
    assert model.unknown == 0, model.classes
    # every instruction is in one class, and the classes, taken branches and waits make up the cycles
    assert sum(n for n, _c in model.classes.values()) >= report.instructions
    assert report.cycles == sum(l.cycles for l in report.layers) > 0
    if board != "mps2-an500" and board != "mps3-an547":
        assert all(l.cycles >= l.instructions for l in report.layers), report.format()
    assert "estimated" in report.format() and "zero-wait-state" in report.format()
