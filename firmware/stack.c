/*
 * tinyml stack high-water mark (see tml_stack.h).  Fault handlers and the
 * SysTick interrupt run on their own stack (MSP); of them only the frame the
 * core stacks on exception entry lands on the painted Thread-mode stack
 * (PSP), and it counts: it is stack the program must have.
 */
#include <stdint.h>

#include "tml_stack.h"

extern uint32_t tml_stack_limit[];
extern uint32_t tml_stack_top[];

#define TML_STACK_PAINT 0xC0FFEE11u
#define TML_STACK_MARGIN_WORDS 16u

void tml_stack_paint(void)
{
    uint32_t *sp;
    uint32_t *p;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = tml_stack_limit; p + TML_STACK_MARGIN_WORDS < sp; ++p) {
        *p = TML_STACK_PAINT;
    }
}

uint32_t tml_stack_used(void)
{
    const uint32_t *p = tml_stack_limit;
    while (p < tml_stack_top && *p == TML_STACK_PAINT) {
        ++p;
    }
    return (uint32_t)((uintptr_t)tml_stack_top - (uintptr_t)p);
}

uint32_t tml_stack_size(void)
{
    return (uint32_t)((uintptr_t)tml_stack_top - (uintptr_t)tml_stack_limit);
}
