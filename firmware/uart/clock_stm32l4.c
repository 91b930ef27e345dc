/*
 * STM32L4 and STM32L4+ clocks: HSI16 -> PLL (TML_CLOCK_PLL_M/N/R) ->
 * SYSCLK at up to 80 MHz in voltage range 1 (normal mode, the reset
 * state), AHB and APB /1, TML_CLOCK_FLASH_LATENCY wait states with
 * prefetch and caches.  Then VDDIO2 (port G on the L4+ needs it), the GPIO
 * port clocks, the UART pins and the UART's peripheral clock.  If the PLL
 * does not lock, everything stays on the 4 MHz MSI.
 */
#include "tml_board.h"
#include "tml_stm32_gpio.h"

#define TML_RCC 0x40021000u
#define TML_RCC_CR (TML_RCC + 0x00u)
#define TML_RCC_CFGR (TML_RCC + 0x08u)
#define TML_RCC_PLLCFGR (TML_RCC + 0x0Cu)
#define TML_RCC_AHB2ENR (TML_RCC + 0x4Cu)
#define TML_RCC_APB1ENR1 (TML_RCC + 0x58u)
#define TML_PWR_CR2 0x40007004u
#define TML_FLASH_ACR 0x40022000u
#define TML_GPIO_BASE(port) (0x48000000u + 0x400u * (port))
#define TML_MSI_HZ 4000000u
#define TML_SPINS 500000u

static int tml_pll_running;

uint32_t tml_clock_init(void)
{
    tml_pll_running = 0;
    TML_REG32(TML_RCC_CR) |= 1u << 8; /* HSION */
    if (tml_stm32_wait(TML_RCC_CR, 1u << 10, 1u << 10, TML_SPINS)) {
        TML_REG32(TML_FLASH_ACR) = TML_CLOCK_FLASH_LATENCY | (1u << 8) | (1u << 9) | (1u << 10);
        TML_REG32(TML_RCC_PLLCFGR) = 2u                                   /* PLLSRC = HSI16 */
                                     | ((TML_CLOCK_PLL_M - 1u) << 4)       /* PLLM */
                                     | (TML_CLOCK_PLL_N << 8)              /* PLLN */
                                     | (((TML_CLOCK_PLL_R / 2u) - 1u) << 25) /* PLLR */
                                     | (1u << 24);                         /* PLLREN */
        TML_REG32(TML_RCC_CR) |= 1u << 24; /* PLLON */
        if (tml_stm32_wait(TML_RCC_CR, 1u << 25, 1u << 25, TML_SPINS)) {
            TML_REG32(TML_RCC_CFGR) = 3u; /* SW = PLL, AHB and APB /1 */
            tml_pll_running = tml_stm32_wait(TML_RCC_CFGR, 0xCu, 0xCu, TML_SPINS);
        }
    }
    TML_REG32(TML_RCC_APB1ENR1) |= 1u << 28; /* PWREN */
    (void)TML_REG32(TML_RCC_APB1ENR1);
    TML_REG32(TML_PWR_CR2) |= 1u << 9; /* IOSV: VDDIO2 valid (port G) */
    TML_REG32(TML_RCC_AHB2ENR) |= (1u << TML_UART_TX_PORT) | (1u << TML_UART_RX_PORT);
    TML_REG32(TML_RCC + TML_UART_RCC_ENR_OFFSET) |= 1u << TML_UART_RCC_ENR_BIT;
    (void)TML_REG32(TML_RCC + TML_UART_RCC_ENR_OFFSET);
    tml_stm32_pin_af(TML_GPIO_BASE(TML_UART_TX_PORT), TML_UART_TX_PIN, TML_UART_AF);
    tml_stm32_pin_af(TML_GPIO_BASE(TML_UART_RX_PORT), TML_UART_RX_PIN, TML_UART_AF);
    return tml_pll_running ? TML_CLOCK_CPU_HZ : TML_MSI_HZ;
}

uint32_t tml_uart_clock_hz(void)
{
    return tml_pll_running ? TML_UART_CLOCK_HZ : TML_MSI_HZ;
}
