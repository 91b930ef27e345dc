/*
 * tinyml cycle counter: the DWT CYCCNT where the core has one that counts,
 * else SysTick, else none (see tml_cycles.h).
 *
 * DWT: DEMCR.TRCENA powers the trace blocks; where the DWT has a CoreSight
 * software lock that is engaged (DWT_LSR: implemented and locked, the
 * Cortex-M7), the key goes to DWT_LAR; DWT_CTRL.NOCYCCNT says whether there
 * is a cycle counter at all; CYCCNTENA starts it.  Whether it then counts is
 * checked by reading it until it changes (within a bound): an emulator may
 * accept the writes and read 0 (QEMU 7.2).
 *
 * SysTick: implemented if its reload register keeps what is written to it
 * (on a core without one it reads 0); an implemented SysTick counts once
 * enabled.  (Waiting for its count to change would not do: under QEMU it
 * reads 0 until the emulator's timer has reloaded it, which on a busy host
 * can take longer than any bound worth waiting at boot.)
 */
#include <stdint.h>

#include "tml_board.h"
#include "tml_cycles.h"

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
#define TML_CYCLES_HAVE_DWT 1 /* Armv8.1-M defines __ARM_ARCH_8M_MAIN__ too */
#endif

#define TML_DEMCR TML_REG32(0xE000EDFCu)
#define TML_DEMCR_TRCENA (1u << 24)
#define TML_DWT_CTRL TML_REG32(0xE0001000u)
#define TML_DWT_CTRL_CYCCNTENA (1u << 0)
#define TML_DWT_CTRL_NOCYCCNT (1u << 25)
#define TML_DWT_CYCCNT TML_REG32(0xE0001004u)
#define TML_DWT_LAR TML_REG32(0xE0001FB0u)
#define TML_DWT_LSR TML_REG32(0xE0001FB4u)
#define TML_DWT_LSR_LOCKED 3u /* SLI (lock implemented) | SLK (locked) */
#define TML_CORESIGHT_KEY 0xC5ACCE55u

#define TML_SYST_CSR TML_REG32(0xE000E010u)
#define TML_SYST_RVR TML_REG32(0xE000E014u)
#define TML_SYST_CVR TML_REG32(0xE000E018u)
#define TML_SYST_MAX 0xFFFFFFu

/* Reads of CYCCNT before it is declared not counting (it counts every cycle). */
#define TML_CYCLES_PROBE_POLLS 1000u

static unsigned tml_cycles_kind = TML_CYCLES_NONE;
static volatile uint32_t tml_cycles_wraps; /* SysTick wraps, counted by its interrupt */
#if defined(TML_CYCLES_HAVE_DWT)
static uint32_t tml_cycles_high; /* the upper 32 bits */
static uint32_t tml_cycles_last; /* the reading before */
#endif

void tml_systick_handler(void);

void tml_systick_handler(void)
{
    tml_cycles_wraps++;
}

#if defined(TML_CYCLES_HAVE_DWT)
static int tml_cycles_dwt_start(void)
{
    uint32_t first;
    unsigned polls;
    TML_DEMCR |= TML_DEMCR_TRCENA;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    if ((TML_DWT_LSR & TML_DWT_LSR_LOCKED) == TML_DWT_LSR_LOCKED) {
        TML_DWT_LAR = TML_CORESIGHT_KEY;
    }
    if ((TML_DWT_CTRL & TML_DWT_CTRL_NOCYCCNT) != 0u) {
        return 0;
    }
    TML_DWT_CYCCNT = 0u;
    TML_DWT_CTRL |= TML_DWT_CTRL_CYCCNTENA;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    first = TML_DWT_CYCCNT;
    for (polls = 0; polls < TML_CYCLES_PROBE_POLLS; polls++) {
        if (TML_DWT_CYCCNT != first) {
            TML_DWT_CYCCNT = 0u;
            tml_cycles_high = 0u;
            tml_cycles_last = 0u;
            return 1;
        }
    }
    TML_DWT_CTRL &= ~TML_DWT_CTRL_CYCCNTENA;
    return 0;
}
#endif

/* SysTick is optional on Armv6-M (the nRF51 has none). */
static int tml_cycles_systick_start(void)
{
    TML_SYST_CSR = 0u;
    TML_SYST_RVR = TML_SYST_MAX;
    if ((TML_SYST_RVR & TML_SYST_MAX) != TML_SYST_MAX) {
        return 0;
    }
    TML_SYST_CVR = 0u; /* any write clears it; it reloads on the next cycle */
    tml_cycles_wraps = 0u;
    TML_SYST_CSR = 0x7u; /* processor clock, interrupt on wrap, enable */
    return 1;
}

unsigned tml_cycles_start(void)
{
    tml_cycles_kind = TML_CYCLES_NONE;
    TML_SYST_CSR = 0u; /* a restart may switch from SysTick to the DWT */
#if defined(TML_CYCLES_HAVE_DWT)
    if (tml_cycles_dwt_start()) {
        tml_cycles_kind = TML_CYCLES_DWT;
        return tml_cycles_kind;
    }
#endif
    if (tml_cycles_systick_start()) {
        tml_cycles_kind = TML_CYCLES_SYSTICK;
    }
    return tml_cycles_kind;
}

uint64_t tml_cycles_now(void)
{
    switch (tml_cycles_kind) {
#if defined(TML_CYCLES_HAVE_DWT)
    case TML_CYCLES_DWT: {
        uint32_t now = TML_DWT_CYCCNT;
        if (now < tml_cycles_last) {
            tml_cycles_high++;
        }
        tml_cycles_last = now;
        return ((uint64_t)tml_cycles_high << 32) | now;
    }
#endif
    case TML_CYCLES_SYSTICK: {
        uint32_t high;
        uint32_t value;
        do { /* a wrap between the two reads shows as a changed count */
            high = tml_cycles_wraps;
            value = TML_SYST_CVR & TML_SYST_MAX;
        } while (high != tml_cycles_wraps);
        return ((uint64_t)high << 24) + (uint64_t)(TML_SYST_MAX - value);
    }
    default:
        return 0u;
    }
}

unsigned tml_cycles_source(void)
{
    return tml_cycles_kind;
}

const char *tml_cycles_source_name(unsigned source)
{
    switch (source) {
    case TML_CYCLES_DWT:
        return "DWT";
    case TML_CYCLES_SYSTICK:
        return "SysTick";
    default:
        return "none";
    }
}
