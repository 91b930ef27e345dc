/*
 * STM32F4 and STM32F7 clocks (clock drivers "stm32f4" and "stm32f7"; the
 * RCC is the same): HSI (16 MHz) -> PLL (TML_CLOCK_PLL_M/N/P/Q) -> SYSCLK,
 * AHB /1, APB1 and APB2 divided by TML_CLOCK_APB1_DIV / _APB2_DIV, flash
 * wait states TML_CLOCK_FLASH_LATENCY with prefetch (and the ART and the
 * instruction cache on the F7).  Then the GPIO port clocks, the UART pins
 * (alternate function TML_UART_AF) and the UART's peripheral clock.
 * If the PLL does not lock, everything stays on the HSI.
 */
#include "tml_board.h"
#ifdef TML_CLOCK_DRIVER_STM32F7
#define TML_STM32_CORTEX_M7 1
#endif
#include "tml_stm32_gpio.h"

#define TML_RCC 0x40023800u
#define TML_RCC_CR (TML_RCC + 0x00u)
#define TML_RCC_PLLCFGR (TML_RCC + 0x04u)
#define TML_RCC_CFGR (TML_RCC + 0x08u)
#define TML_RCC_AHB1ENR (TML_RCC + 0x30u)
#define TML_FLASH_ACR 0x40023C00u
#define TML_GPIO_BASE(port) (0x40020000u + 0x400u * (port))
#define TML_HSI_HZ 16000000u
#define TML_SPINS 500000u

static int tml_pll_running;

uint32_t tml_clock_init(void)
{
    uint32_t acr = TML_CLOCK_FLASH_LATENCY | (1u << 8); /* LATENCY, PRFTEN */
#ifdef TML_CLOCK_DRIVER_STM32F7
    acr |= (1u << 9); /* ARTEN */
    tml_m7_icache_enable();
#else
    acr |= (1u << 9) | (1u << 10); /* ICEN, DCEN */
#endif
    TML_REG32(TML_RCC_CR) |= 1u; /* HSION */
    tml_pll_running = 0;
    if (tml_stm32_wait(TML_RCC_CR, 1u << 1, 1u << 1, TML_SPINS)) {
        TML_REG32(TML_FLASH_ACR) = acr;
        TML_REG32(TML_RCC_PLLCFGR) = TML_CLOCK_PLL_M | (TML_CLOCK_PLL_N << 6) |
                                     (((TML_CLOCK_PLL_P / 2u) - 1u) << 16) | (TML_CLOCK_PLL_Q << 24);
        TML_REG32(TML_RCC_CR) |= 1u << 24; /* PLLON */
        if (tml_stm32_wait(TML_RCC_CR, 1u << 25, 1u << 25, TML_SPINS)) {
            uint32_t cfgr = (tml_stm32_ppre(TML_CLOCK_APB1_DIV) << 10) | (tml_stm32_ppre(TML_CLOCK_APB2_DIV) << 13);
            TML_REG32(TML_RCC_CFGR) = cfgr;
            TML_REG32(TML_RCC_CFGR) = cfgr | 2u; /* SW = PLL */
            tml_pll_running = tml_stm32_wait(TML_RCC_CFGR, 0xCu, 0x8u, TML_SPINS);
        }
    }
    TML_REG32(TML_RCC_AHB1ENR) |= (1u << TML_UART_TX_PORT) | (1u << TML_UART_RX_PORT);
    TML_REG32(TML_RCC + TML_UART_RCC_ENR_OFFSET) |= 1u << TML_UART_RCC_ENR_BIT;
    (void)TML_REG32(TML_RCC + TML_UART_RCC_ENR_OFFSET); /* the clock is on after one read */
    tml_stm32_pin_af(TML_GPIO_BASE(TML_UART_TX_PORT), TML_UART_TX_PIN, TML_UART_AF);
    tml_stm32_pin_af(TML_GPIO_BASE(TML_UART_RX_PORT), TML_UART_RX_PIN, TML_UART_AF);
    return tml_pll_running ? TML_CLOCK_CPU_HZ : TML_HSI_HZ;
}

uint32_t tml_uart_clock_hz(void)
{
    return tml_pll_running ? TML_UART_CLOCK_HZ : TML_HSI_HZ;
}
