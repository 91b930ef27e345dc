/*
 * Arm PrimeCell PL011 UART as on the RP2040: DR, RSR/ECR, FR, IBRD, FBRD,
 * LCR_H, CR.  Divisor = clock / (16 * baud) as 16.6 fixed point.
 */
#include "tml_board.h"

#define TML_PL011_DR TML_REG32(TML_UART_BASE + 0x000u)
#define TML_PL011_RSR TML_REG32(TML_UART_BASE + 0x004u)
#define TML_PL011_FR TML_REG32(TML_UART_BASE + 0x018u)
#define TML_PL011_IBRD TML_REG32(TML_UART_BASE + 0x024u)
#define TML_PL011_FBRD TML_REG32(TML_UART_BASE + 0x028u)
#define TML_PL011_LCR_H TML_REG32(TML_UART_BASE + 0x02Cu)
#define TML_PL011_CR TML_REG32(TML_UART_BASE + 0x030u)

#define TML_PL011_FR_RXFE (1u << 4)
#define TML_PL011_FR_TXFF (1u << 5)

void tml_uart_init(void)
{
    uint32_t divisor = (8u * tml_uart_clock_hz()) / TML_UART_BAUD; /* 64 * clock / (16 * baud) / 2 ... */
    uint32_t integer = divisor >> 7;
    uint32_t fraction = ((divisor & 0x7Fu) + 1u) / 2u;
    if (integer == 0u) {
        integer = 1u;
        fraction = 0u;
    } else if (integer >= 0xFFFFu) {
        integer = 0xFFFFu;
        fraction = 0u;
    }
    TML_PL011_CR = 0u;
    TML_PL011_IBRD = integer;
    TML_PL011_FBRD = fraction;
    TML_PL011_LCR_H = (3u << 5) | (1u << 4); /* 8 bits, FIFOs on (also latches the divisor) */
    TML_PL011_CR = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN, TXE, RXE */
}

void tml_uart_putc(uint8_t byte)
{
    uint32_t spins = 0;
    while ((TML_PL011_FR & TML_PL011_FR_TXFF) != 0u && spins < 1000000u) {
        spins++;
    }
    TML_PL011_DR = byte;
}

int tml_uart_getc(void)
{
    uint32_t data;
    if ((TML_PL011_FR & TML_PL011_FR_RXFE) != 0u) {
        return -1;
    }
    data = TML_PL011_DR;
    if ((data & 0xF00u) != 0u) {
        TML_PL011_RSR = 0u; /* clear framing, parity, break, overrun */
    }
    return (int)(data & 0xFFu);
}
