/*
 * STM32H7 (H742/H743/H750/H753) clocks: LDO supply, voltage scale 1, HSI
 * (64 MHz) / TML_CLOCK_PLL_M -> PLL1 (x TML_CLOCK_PLL_N, / P, Q, R) ->
 * SYS_CK, AHB/AXI divided by TML_CLOCK_HPRE_DIV, every APB by
 * TML_CLOCK_APB_DIV, TML_CLOCK_FLASH_LATENCY wait states, instruction
 * cache on.  Then the GPIO port clocks, the UART pins and the UART's
 * peripheral clock.  If PLL1 does not lock, everything stays on the HSI.
 */
#include "tml_board.h"
#define TML_STM32_CORTEX_M7 1
#include "tml_stm32_gpio.h"

#define TML_RCC 0x58024400u
#define TML_RCC_CR (TML_RCC + 0x00u)
#define TML_RCC_CFGR (TML_RCC + 0x10u)
#define TML_RCC_D1CFGR (TML_RCC + 0x18u)
#define TML_RCC_D2CFGR (TML_RCC + 0x1Cu)
#define TML_RCC_D3CFGR (TML_RCC + 0x20u)
#define TML_RCC_PLLCKSELR (TML_RCC + 0x28u)
#define TML_RCC_PLLCFGR (TML_RCC + 0x2Cu)
#define TML_RCC_PLL1DIVR (TML_RCC + 0x30u)
#define TML_RCC_AHB4ENR (TML_RCC + 0xE0u)
#define TML_PWR_CSR1 0x58024804u
#define TML_PWR_CR3 0x5802480Cu
#define TML_PWR_D3CR 0x58024818u
#define TML_FLASH_ACR 0x52002000u
#define TML_GPIO_BASE(port) (0x58020000u + 0x400u * (port))
#define TML_HSI_HZ 64000000u
#define TML_SPINS 500000u

static int tml_pll_running;

/* HPRE / D1PPRE field for a divisor (HPRE: 8 = /2 ... ; PPRE: 4 = /2 ...). */
static uint32_t tml_h7_hpre(uint32_t divisor)
{
    return divisor <= 1u ? 0u : divisor == 2u ? 8u : divisor == 4u ? 9u : divisor == 8u ? 10u : 11u;
}

uint32_t tml_clock_init(void)
{
    uint32_t ppre = tml_stm32_ppre(TML_CLOCK_APB_DIV);
    tml_m7_icache_enable();
    tml_pll_running = 0;
    /* Supply from the LDO (not bypassed), then voltage scale 1. */
    TML_REG32(TML_PWR_CR3) = (TML_REG32(TML_PWR_CR3) & ~1u) | (1u << 1);
    (void)tml_stm32_wait(TML_PWR_CSR1, 1u << 13, 1u << 13, TML_SPINS); /* ACTVOSRDY */
    TML_REG32(TML_PWR_D3CR) = (TML_REG32(TML_PWR_D3CR) & ~(3u << 14)) | (3u << 14);
    if (tml_stm32_wait(TML_PWR_D3CR, 1u << 13, 1u << 13, TML_SPINS)) { /* VOSRDY */
        TML_REG32(TML_FLASH_ACR) = TML_CLOCK_FLASH_LATENCY | (1u << 4); /* WRHIGHFREQ = 1 */
        TML_REG32(TML_RCC_PLLCKSELR) = (TML_CLOCK_PLL_M << 4); /* PLLSRC = HSI, DIVM1 */
        TML_REG32(TML_RCC_PLLCFGR) = (1u << 2)                  /* PLL1RGE: 1-2 MHz input */
                                     | (1u << 16) | (1u << 17) | (1u << 18); /* DIVP1/Q1/R1EN */
        TML_REG32(TML_RCC_PLL1DIVR) = (TML_CLOCK_PLL_N - 1u) | ((TML_CLOCK_PLL_P - 1u) << 9) |
                                      ((TML_CLOCK_PLL_Q - 1u) << 16) | ((TML_CLOCK_PLL_R - 1u) << 24);
        TML_REG32(TML_RCC_CR) |= 1u << 24; /* PLL1ON */
        if (tml_stm32_wait(TML_RCC_CR, 1u << 25, 1u << 25, TML_SPINS)) {
            TML_REG32(TML_RCC_D1CFGR) = tml_h7_hpre(TML_CLOCK_HPRE_DIV) | (ppre << 4); /* D1CPRE /1 */
            TML_REG32(TML_RCC_D2CFGR) = (ppre << 4) | (ppre << 8);
            TML_REG32(TML_RCC_D3CFGR) = (ppre << 4);
            TML_REG32(TML_RCC_CFGR) = (TML_REG32(TML_RCC_CFGR) & ~7u) | 3u; /* SW = PLL1 */
            tml_pll_running = tml_stm32_wait(TML_RCC_CFGR, 7u << 3, 3u << 3, TML_SPINS);
        }
    }
    TML_REG32(TML_RCC_AHB4ENR) |= (1u << TML_UART_TX_PORT) | (1u << TML_UART_RX_PORT);
    TML_REG32(TML_RCC + TML_UART_RCC_ENR_OFFSET) |= 1u << TML_UART_RCC_ENR_BIT;
    (void)TML_REG32(TML_RCC + TML_UART_RCC_ENR_OFFSET);
    tml_stm32_pin_af(TML_GPIO_BASE(TML_UART_TX_PORT), TML_UART_TX_PIN, TML_UART_AF);
    tml_stm32_pin_af(TML_GPIO_BASE(TML_UART_RX_PORT), TML_UART_RX_PIN, TML_UART_AF);
    return tml_pll_running ? TML_CLOCK_CPU_HZ : TML_HSI_HZ;
}

uint32_t tml_uart_clock_hz(void)
{
    return tml_pll_running ? TML_UART_CLOCK_HZ : TML_HSI_HZ;
}
