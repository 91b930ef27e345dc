/*
 * Boards whose clocks need no set-up (the MPS2/MPS3 FPGA images run the
 * core at a fixed frequency, TML_CLOCK_CPU_HZ).  The UART runs from the
 * same clock unless the board file gives uart.clock_hz.
 */
#include "tml_board.h"

uint32_t tml_clock_init(void)
{
    return TML_CLOCK_CPU_HZ;
}

uint32_t tml_uart_clock_hz(void)
{
#ifdef TML_UART_CLOCK_HZ
    return TML_UART_CLOCK_HZ;
#else
    return TML_CLOCK_CPU_HZ;
#endif
}
