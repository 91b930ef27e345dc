/*
 * nRF51/nRF52 clocks: start the external crystal (HFXO) so that the UART's
 * baud rate is accurate; the core runs at TML_CLOCK_CPU_HZ (16 MHz on the
 * nRF51, 64 MHz on the nRF52) either way.  The nRF52 build (clock driver
 * "nrf52") also turns on the instruction cache.
 */
#include "tml_board.h"

#define TML_NRF_CLOCK_HFCLKSTART TML_REG32(0x40000000u)
#define TML_NRF_CLOCK_HFCLKSTARTED TML_REG32(0x40000100u)
#define TML_NRF52_NVMC_ICACHECNF TML_REG32(0x4001E540u)

uint32_t tml_clock_init(void)
{
    uint32_t spins = 0;
    TML_NRF_CLOCK_HFCLKSTARTED = 0u;
    TML_NRF_CLOCK_HFCLKSTART = 1u;
    while (TML_NRF_CLOCK_HFCLKSTARTED == 0u && spins < 200000u) {
        spins++;
    }
#ifdef TML_CLOCK_DRIVER_NRF52
    TML_NRF52_NVMC_ICACHECNF = 1u; /* CACHEEN */
#endif
    return TML_CLOCK_CPU_HZ;
}
