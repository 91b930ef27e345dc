/*
 * tinyml cycle counter for Cortex-M (implemented in cycles.c).
 *
 * tml_cycles_start() picks the best counter the core has and says which:
 *
 *   TML_CYCLES_DWT      the DWT cycle counter (CYCCNT): every core clock
 *                       cycle, on Armv7-M, Armv7E-M, Armv8-M Mainline and
 *                       Armv8.1-M when the core implements it and it is seen
 *                       counting (QEMU 7.2 does not model it: it reads 0);
 *   TML_CYCLES_SYSTICK  SysTick at the processor clock (24 bits, extended
 *                       in software by its wrap interrupt): Armv6-M, and the
 *                       fallback wherever CYCCNT does not count;
 *   TML_CYCLES_NONE     no counter that counts (the nRF51's Cortex-M0 was
 *                       built without SysTick): every reading is 0.
 *
 * Both counters are probed at run time, not assumed from the core.
 *
 * tml_cycles_now() returns the cycles since tml_cycles_start() as 64 bits.
 * The DWT counter is 32 bits wide and extended in software, so it must be
 * read at least once per 2^32 cycles (the host link reads it after every
 * operator).  Call both from Thread mode only.
 */
#ifndef TML_CYCLES_H
#define TML_CYCLES_H

#include <stdint.h>

#define TML_CYCLES_NONE 0u
#define TML_CYCLES_SYSTICK 1u
#define TML_CYCLES_DWT 2u

/* Starts (or restarts from 0) the counter; returns its TML_CYCLES_* source. */
unsigned tml_cycles_start(void);

/* Cycles since tml_cycles_start(); always 0 with TML_CYCLES_NONE. */
uint64_t tml_cycles_now(void);

/* The source chosen by the last tml_cycles_start() (TML_CYCLES_NONE before). */
unsigned tml_cycles_source(void);

/* "DWT", "SysTick" or "none". */
const char *tml_cycles_source_name(unsigned source);

#endif
