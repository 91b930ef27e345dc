/*
 * tinyml startup for Cortex-M: vector table, reset handler and fault
 * handlers.  The symbols tml_* used here come from linker.ld.
 *
 * Reset: switch Thread mode to the process stack (PSP), so that a stack
 * overflow in the program cannot stop the fault handlers, which run on
 * their own stack (MSP); enable the FPU (and with it MVE) when built for
 * one; catch stack overflows (stack limit registers on Armv8-M Mainline, an
 * MPU guard region on Armv7-M); copy .data, zero .bss, call main() and exit
 * with its return value.  Every fault or unexpected exception prints one
 * line and exits with TML_EXIT_FAULT, so QEMU never hangs on a crash.
 */
#include <stdint.h>

#include "tml_runtime.h"

extern uint32_t tml_data_load[];
extern uint32_t tml_data_start[];
extern uint32_t tml_data_end[];
extern uint32_t tml_bss_start[];
extern uint32_t tml_bss_end[];
extern uint32_t tml_stack_guard[];
extern uint32_t tml_stack_limit[];
extern uint32_t tml_stack_top[];
extern uint32_t tml_handler_stack_limit[];
extern uint32_t tml_handler_stack_top[];

int main(void);
void tml_reset_handler(void);
TML_NORETURN void tml_start(void);
void tml_fault_entry(void);
/* SysTick: a fault unless a program defines it (the host link counts
 * cycles with it). */
void tml_systick_handler(void) __attribute__((weak, alias("tml_fault_entry")));
TML_NORETURN void tml_fault_report(const uint32_t *frame);

#define TML_REG(address) (*(volatile uint32_t *)(address))
#define TML_SCB_CPACR TML_REG(0xE000ED88u)
#define TML_SCB_CFSR TML_REG(0xE000ED28u)
#define TML_SCB_HFSR TML_REG(0xE000ED2Cu)
#define TML_SCB_BFAR TML_REG(0xE000ED38u)
#define TML_MPU_TYPE TML_REG(0xE000ED90u)
#define TML_MPU_CTRL TML_REG(0xE000ED94u)
#define TML_MPU_RNR TML_REG(0xE000ED98u)
#define TML_MPU_RBAR TML_REG(0xE000ED9Cu)
#define TML_MPU_RASR TML_REG(0xE000EDA0u)

typedef void (*tml_vector_t)(void);

/* Core exceptions only: tinyml firmware enables no interrupts. */
__attribute__((section(".vectors"), used)) const tml_vector_t tml_vectors[16] = {
    (tml_vector_t)tml_handler_stack_top, /* initial main stack pointer */
    tml_reset_handler,                   /* 1: Reset */
    tml_fault_entry,                     /* 2: NMI */
    tml_fault_entry,                     /* 3: HardFault */
    tml_fault_entry,                     /* 4: MemManage */
    tml_fault_entry,                     /* 5: BusFault */
    tml_fault_entry,                     /* 6: UsageFault */
    tml_fault_entry,                     /* 7: SecureFault (Armv8-M) */
    0,
    0,
    0,
    tml_fault_entry, /* 11: SVCall */
    tml_fault_entry, /* 12: DebugMonitor */
    0,
    tml_fault_entry, /* 14: PendSV */
    tml_systick_handler, /* 15: SysTick */
};

/* Runs on the handler stack; moves Thread mode to the process stack. */
__attribute__((naked)) void tml_reset_handler(void)
{
#if defined(__ARM_ARCH_6M__)
    /* Armv6-M (Thumb-1; GCC reads inline assembly in divided syntax, where
     * the 16-bit flag-setting forms have no "s"): no ORR with an immediate. */
    __asm__ volatile("ldr r0, =tml_stack_top\n\t"
                     "msr psp, r0\n\t"
                     "mrs r0, control\n\t"
                     "mov r1, #2\n\t"
                     "orr r0, r1\n\t" /* SPSEL: Thread mode uses PSP */
                     "msr control, r0\n\t"
                     "isb\n\t"
                     "ldr r0, =tml_start\n\t"
                     "bx r0\n\t"
                     ".ltorg");
#else
    __asm__ volatile("ldr r0, =tml_stack_top\n\t"
                     "msr psp, r0\n\t"
                     "mrs r0, control\n\t"
                     "orr r0, r0, #2\n\t" /* SPSEL: Thread mode uses PSP */
                     "msr control, r0\n\t"
                     "isb\n\t"
                     "b tml_start\n\t"
                     ".ltorg");
#endif
}

void tml_start(void)
{
    uint32_t *source;
    uint32_t *target;

#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* Full access to CP10 and CP11 (FPU and MVE); lazy state preservation
     * (FPCCR.ASPEN, LSPEN) is enabled at reset. Done before any other code
     * so that compiler-generated FP or vector instructions are safe. */
    TML_SCB_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    /* Stack limit registers: an overflow is a UsageFault (STKOF). */
    __asm__ volatile("msr psplim, %0" : : "r"(tml_stack_limit));
    __asm__ volatile("msr msplim, %0" : : "r"(tml_handler_stack_limit));
#elif defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__)
    /* MPU region 0 makes the guard below the stack inaccessible; the
     * default memory map stays in force for everything else. */
    if (((TML_MPU_TYPE >> 8) & 0xFFu) != 0u) {
        /* The guard is a power of two >= 32 bytes, aligned to its size. */
        uint32_t guard_bytes = (uint32_t)((uintptr_t)tml_stack_limit - (uintptr_t)tml_stack_guard);
        uint32_t size_field = 4u; /* region size is 2^(size_field + 1) */
        while ((2u << size_field) < guard_bytes) {
            size_field++;
        }
        TML_MPU_RNR = 0u;
        TML_MPU_RBAR = (uint32_t)(uintptr_t)tml_stack_guard;
        TML_MPU_RASR = (1u << 28)           /* XN */
                       | (0u << 24)         /* AP: no access */
                       | (size_field << 1)  /* SIZE */
                       | 1u;                /* ENABLE */
        TML_MPU_CTRL = (1u << 2) | 1u; /* PRIVDEFENA | ENABLE */
        __asm__ volatile("dsb\n\tisb" ::: "memory");
    }
#endif

    for (source = tml_data_load, target = tml_data_start; target < tml_data_end;) {
        *target++ = *source++;
    }
    for (target = tml_bss_start; target < tml_bss_end;) {
        *target++ = 0u;
    }

    tml_exit(main());
}

/* Passes the stacked exception frame (from PSP or MSP, per EXC_RETURN) to
 * tml_fault_report, on a reset handler stack. */
__attribute__((naked)) void tml_fault_entry(void)
{
#if defined(__ARM_ARCH_6M__)
    __asm__ volatile("mov r0, lr\n\t"
                     "mov r1, #4\n\t"
                     "tst r0, r1\n\t"
                     "bne 1f\n\t"
                     "mrs r0, msp\n\t"
                     "b 2f\n\t"
                     "1: mrs r0, psp\n\t"
                     "2: ldr r1, =tml_handler_stack_top\n\t"
                     "msr msp, r1\n\t"
                     "ldr r1, =tml_fault_report\n\t"
                     "bx r1\n\t"
                     ".ltorg");
#else
    __asm__ volatile("tst lr, #4\n\t"
                     "ite eq\n\t"
                     "mrseq r0, msp\n\t"
                     "mrsne r0, psp\n\t"
                     "ldr r1, =tml_handler_stack_top\n\t"
                     "msr msp, r1\n\t"
                     "b tml_fault_report\n\t"
                     ".ltorg");
#endif
}

static char *tml_put_hex(char *cursor, uint32_t value)
{
    int shift;
    *cursor++ = '0';
    *cursor++ = 'x';
    for (shift = 28; shift >= 0; shift -= 4) {
        *cursor++ = "0123456789abcdef"[(value >> shift) & 0xFu];
    }
    return cursor;
}

static char *tml_put_text(char *cursor, const char *text)
{
    while (*text != '\0') {
        *cursor++ = *text++;
    }
    return cursor;
}

static int tml_frame_readable(uintptr_t sp)
{
    if ((sp & 3u) != 0u) {
        return 0;
    }
    return (sp >= (uintptr_t)tml_stack_limit && sp + 32u <= (uintptr_t)tml_stack_top) ||
           (sp >= (uintptr_t)tml_handler_stack_limit && sp + 32u <= (uintptr_t)tml_handler_stack_top);
}

void tml_fault_report(const uint32_t *frame)
{
    static const char *const names[16] = {
        "exception 0", "Reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault",
        "SecureFault", "exception 8", "exception 9", "exception 10", "SVCall", "DebugMonitor",
        "exception 13", "PendSV", "SysTick",
    };
    char line[160];
    char *cursor = line;
    uint32_t ipsr;
    uintptr_t sp = (uintptr_t)frame;

    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    cursor = tml_put_text(cursor, "tinyml: fault: ");
    cursor = tml_put_text(cursor, ipsr < 16u ? names[ipsr] : "interrupt");
    if (tml_frame_readable(sp)) {
        cursor = tml_put_text(cursor, " pc=");
        cursor = tml_put_hex(cursor, frame[6]);
    } else {
        cursor = tml_put_text(cursor, " sp=");
        cursor = tml_put_hex(cursor, (uint32_t)sp);
        cursor = tml_put_text(cursor, " (stack overflow)");
    }
    cursor = tml_put_text(cursor, " cfsr=");
    cursor = tml_put_hex(cursor, TML_SCB_CFSR);
    cursor = tml_put_text(cursor, " hfsr=");
    cursor = tml_put_hex(cursor, TML_SCB_HFSR);
    cursor = tml_put_text(cursor, " bfar=");
    cursor = tml_put_hex(cursor, TML_SCB_BFAR);
    cursor = tml_put_text(cursor, "\n");
    *cursor = '\0';
    tml_puts(line);
    tml_exit(TML_EXIT_FAULT);
}
