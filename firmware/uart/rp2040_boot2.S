/*
 * RP2040 second-stage boot loader (the source of the bytes in
 * rp2040_boot2.c; tests/test_boards.py re-assembles this file and checks
 * the bytes and the CRC).
 *
 * The boot ROM copies the first 256 bytes of flash to SRAM, checks the
 * CRC-32 in the last 4 (polynomial 0x04C11DB7, initial value 0xFFFFFFFF,
 * not reflected, no final XOR) and runs them.  This loader asks the ROM to
 * set up execute-in-place with plain 03h reads (the slow but universal
 * mode), then starts the application: VTOR, main stack pointer and reset
 * vector from the vector table at 0x10000100.  Position independent.
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .boot2, "ax"

tml_boot2:
    ldr r0, =0x4649          /* 'IF': _connect_internal_flash */
    bl tml_boot2_rom_call
    ldr r0, =0x5845          /* 'EX': _flash_exit_xip */
    bl tml_boot2_rom_call
    ldr r0, =0x4346          /* 'FC': _flash_flush_cache */
    bl tml_boot2_rom_call
    ldr r0, =0x5843          /* 'CX': _flash_enter_cmd_xip */
    bl tml_boot2_rom_call
    ldr r0, =0x10000100      /* the application's vector table */
    ldr r1, =0xE000ED08      /* VTOR */
    str r0, [r1]
    ldmia r0!, {r1, r2}      /* initial stack pointer, reset handler */
    msr msp, r1
    bx r2

/* Calls the ROM function whose two-letter code is in r0. */
tml_boot2_rom_call:
    push {r4, lr}
    mov r1, r0               /* code */
    movs r0, #0x14
    ldrh r0, [r0]            /* ROM function table */
    movs r2, #0x18
    ldrh r2, [r2]            /* rom_table_lookup(table, code) */
    blx r2
    blx r0
    pop {r4, pc}

    .ltorg
    .space 252 - (. - tml_boot2), 0
