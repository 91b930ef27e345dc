/*
 * STM32 GPIO alternate-function set-up shared by the STM32 clock drivers
 * (the GPIO register layout is the same on F2/F4/F7/L4/H7).
 */
#ifndef TML_STM32_GPIO_H
#define TML_STM32_GPIO_H

#include "tml_board.h"

static inline void tml_stm32_pin_af(uint32_t gpio_base, uint32_t pin, uint32_t af)
{
    uint32_t moder = TML_REG32(gpio_base + 0x00u);
    uint32_t speed = TML_REG32(gpio_base + 0x08u);
    uint32_t pupd = TML_REG32(gpio_base + 0x0Cu);
    uint32_t afr_offset = pin < 8u ? 0x20u : 0x24u;
    uint32_t afr_shift = (pin & 7u) * 4u;
    uint32_t afr = TML_REG32(gpio_base + afr_offset);
    afr = (afr & ~(0xFu << afr_shift)) | ((af & 0xFu) << afr_shift);
    TML_REG32(gpio_base + afr_offset) = afr;
    TML_REG32(gpio_base + 0x08u) = (speed & ~(3u << (2u * pin))) | (2u << (2u * pin)); /* high speed */
    TML_REG32(gpio_base + 0x0Cu) = (pupd & ~(3u << (2u * pin))) | (1u << (2u * pin));  /* pull-up */
    TML_REG32(gpio_base + 0x00u) = (moder & ~(3u << (2u * pin))) | (2u << (2u * pin)); /* alternate function */
}

/* Waits until (register & mask) == value, at most `spins` reads. Returns 1
 * on success, 0 on timeout (a clock that does not start, or an emulator
 * that does not model the RCC). */
static inline int tml_stm32_wait(uint32_t address, uint32_t mask, uint32_t value, uint32_t spins)
{
    while (spins-- > 0u) {
        if ((TML_REG32(address) & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* APB prescaler field (PPRE) for a divisor of 1, 2, 4, 8 or 16. */
static inline uint32_t tml_stm32_ppre(uint32_t divisor)
{
    switch (divisor) {
    case 2u:
        return 4u;
    case 4u:
        return 5u;
    case 8u:
        return 6u;
    case 16u:
        return 7u;
    default:
        return 0u;
    }
}

#if defined(__ARM_ARCH_7EM__) && defined(TML_STM32_CORTEX_M7)
/* Cortex-M7: invalidate and enable the instruction cache. */
static inline void tml_m7_icache_enable(void)
{
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    TML_REG32(0xE000EF50u) = 0u;            /* ICIALLU */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    TML_REG32(0xE000ED14u) |= (1u << 17);   /* CCR.IC */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}
#endif

#endif
