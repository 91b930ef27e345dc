/*
 * RP2040 clocks: crystal oscillator (TML_CLOCK_XOSC_HZ) -> clk_ref;
 * PLL_SYS = XOSC * TML_CLOCK_PLL_FBDIV / POSTDIV1 / POSTDIV2 -> clk_sys;
 * clk_peri = clk_sys.  Then UART0 and the GPIO banks out of reset and the
 * UART function on TML_UART_TX_PIN / TML_UART_RX_PIN.  If the crystal or
 * the PLL does not start, clk_sys stays on the ring oscillator (about
 * 6 MHz, so the baud rate will be off).
 */
#include "tml_board.h"

#define TML_RESETS 0x4000C000u
#define TML_RESETS_RESET TML_REG32(TML_RESETS + 0x0u)
#define TML_RESETS_SET TML_REG32(TML_RESETS + 0x2000u + 0x0u)
#define TML_RESETS_CLR TML_REG32(TML_RESETS + 0x3000u + 0x0u)
#define TML_RESETS_DONE TML_REG32(TML_RESETS + 0x8u)
#define TML_RESET_IO_BANK0 (1u << 5)
#define TML_RESET_PADS_BANK0 (1u << 8)
#define TML_RESET_PLL_SYS (1u << 12)
#define TML_RESET_UART0 (1u << 22)

#define TML_XOSC_CTRL TML_REG32(0x40024000u)
#define TML_XOSC_STATUS TML_REG32(0x40024004u)
#define TML_XOSC_STARTUP TML_REG32(0x4002400Cu)
#define TML_CLK_REF_CTRL TML_REG32(0x40008030u)
#define TML_CLK_REF_SELECTED TML_REG32(0x40008038u)
#define TML_CLK_SYS_CTRL TML_REG32(0x4000803Cu)
#define TML_CLK_SYS_SELECTED TML_REG32(0x40008044u)
#define TML_CLK_PERI_CTRL TML_REG32(0x40008048u)
#define TML_PLL_SYS_CS TML_REG32(0x40028000u)
#define TML_PLL_SYS_PWR TML_REG32(0x40028004u)
#define TML_PLL_SYS_FBDIV TML_REG32(0x40028008u)
#define TML_PLL_SYS_PRIM TML_REG32(0x4002800Cu)
#define TML_IO_BANK0_CTRL(pin) TML_REG32(0x40014004u + 8u * (pin))
#define TML_PADS_BANK0(pin) TML_REG32(0x4001C004u + 4u * (pin))
#define TML_ROSC_HZ 6000000u
#define TML_SPINS 1000000u

static int tml_pll_running;

static int tml_wait(volatile uint32_t *reg, uint32_t mask, uint32_t value)
{
    uint32_t spins = TML_SPINS;
    while (spins-- > 0u) {
        if ((*reg & mask) == value) {
            return 1;
        }
    }
    return 0;
}

static void tml_unreset(uint32_t bits)
{
    TML_RESETS_CLR = bits;
    (void)tml_wait(&TML_RESETS_DONE, bits, bits);
}

uint32_t tml_clock_init(void)
{
    tml_pll_running = 0;
    TML_XOSC_STARTUP = ((TML_CLOCK_XOSC_HZ / 1000u) + 128u) / 256u;
    TML_XOSC_CTRL = 0xAA0u | (0xFABu << 12); /* 1-15 MHz range, ENABLE */
    if (tml_wait(&TML_XOSC_STATUS, 1u << 31, 1u << 31)) {
        TML_CLK_REF_CTRL = 2u; /* clk_ref = XOSC */
        (void)tml_wait(&TML_CLK_REF_SELECTED, 1u << 2, 1u << 2);
        TML_RESETS_SET = TML_RESET_PLL_SYS;
        tml_unreset(TML_RESET_PLL_SYS);
        TML_PLL_SYS_CS = 1u; /* REFDIV */
        TML_PLL_SYS_FBDIV = TML_CLOCK_PLL_FBDIV;
        TML_PLL_SYS_PWR &= ~((1u << 0) | (1u << 5)); /* PD, VCOPD off */
        if (tml_wait(&TML_PLL_SYS_CS, 1u << 31, 1u << 31)) {
            TML_PLL_SYS_PRIM = (TML_CLOCK_PLL_POSTDIV1 << 16) | (TML_CLOCK_PLL_POSTDIV2 << 12);
            TML_PLL_SYS_PWR &= ~(1u << 3); /* POSTDIVPD off */
            TML_CLK_SYS_CTRL = 0u;         /* AUXSRC = pll_sys, SRC = clk_ref */
            TML_CLK_SYS_CTRL = 1u;         /* SRC = aux (pll_sys) */
            tml_pll_running = tml_wait(&TML_CLK_SYS_SELECTED, 1u << 1, 1u << 1);
        }
    }
    TML_CLK_PERI_CTRL = (1u << 11); /* ENABLE, AUXSRC = clk_sys */
    tml_unreset(TML_RESET_IO_BANK0 | TML_RESET_PADS_BANK0 | TML_RESET_UART0);
    TML_PADS_BANK0(TML_UART_TX_PIN) = (1u << 4) | (1u << 1); /* 4 mA drive, slew */
    TML_PADS_BANK0(TML_UART_RX_PIN) = (1u << 6) | (1u << 3); /* input enable, pull-up */
    TML_IO_BANK0_CTRL(TML_UART_TX_PIN) = 2u;                 /* FUNCSEL = UART */
    TML_IO_BANK0_CTRL(TML_UART_RX_PIN) = 2u;
    return tml_pll_running ? TML_CLOCK_CPU_HZ : TML_ROSC_HZ;
}

uint32_t tml_uart_clock_hz(void)
{
    return tml_pll_running ? TML_UART_CLOCK_HZ : TML_ROSC_HZ;
}
