/*
 * Arm CMSDK APB UART (MPS2 and MPS3 FPGA images): DATA, STATE, CTRL,
 * INTSTATUS, BAUDDIV.  The divisor must be at least 16.
 */
#include "tml_board.h"

#define TML_CMSDK_DATA TML_REG32(TML_UART_BASE + 0x00u)
#define TML_CMSDK_STATE TML_REG32(TML_UART_BASE + 0x04u)
#define TML_CMSDK_CTRL TML_REG32(TML_UART_BASE + 0x08u)
#define TML_CMSDK_BAUDDIV TML_REG32(TML_UART_BASE + 0x10u)

#define TML_CMSDK_STATE_TXFULL 0x1u
#define TML_CMSDK_STATE_RXFULL 0x2u
#define TML_CMSDK_STATE_OVERRUNS 0xCu

void tml_uart_init(void)
{
    uint32_t divisor = tml_uart_clock_hz() / TML_UART_BAUD;
    TML_CMSDK_CTRL = 0u;
    TML_CMSDK_BAUDDIV = divisor < 16u ? 16u : divisor;
    TML_CMSDK_STATE = TML_CMSDK_STATE_OVERRUNS; /* write 1 to clear */
    TML_CMSDK_CTRL = 0x3u;                      /* TX and RX enable, no interrupts */
}

void tml_uart_putc(uint8_t byte)
{
    while ((TML_CMSDK_STATE & TML_CMSDK_STATE_TXFULL) != 0u) {
    }
    TML_CMSDK_DATA = byte;
}

int tml_uart_getc(void)
{
    uint32_t state = TML_CMSDK_STATE;
    if ((state & TML_CMSDK_STATE_OVERRUNS) != 0u) {
        TML_CMSDK_STATE = TML_CMSDK_STATE_OVERRUNS;
    }
    if ((state & TML_CMSDK_STATE_RXFULL) == 0u) {
        return -1;
    }
    return (int)(TML_CMSDK_DATA & 0xFFu);
}
