/*
 * Nordic nRF51/nRF52 UART (the non-DMA UART0): tasks STARTRX/STARTTX,
 * events RXDRDY/TXDRDY, RXD/TXD registers; pins by PSELTXD/PSELRXD.
 * TML_UART_BAUDRATE_REG is the BAUDRATE register value for the baud rate.
 */
#include "tml_board.h"

#define TML_NRF_UART(offset) TML_REG32(TML_UART_BASE + (offset))
#define TML_NRF_STARTRX TML_NRF_UART(0x000u)
#define TML_NRF_STARTTX TML_NRF_UART(0x008u)
#define TML_NRF_RXDRDY TML_NRF_UART(0x108u)
#define TML_NRF_TXDRDY TML_NRF_UART(0x11Cu)
#define TML_NRF_ERROR TML_NRF_UART(0x124u)
#define TML_NRF_ERRORSRC TML_NRF_UART(0x480u)
#define TML_NRF_ENABLE TML_NRF_UART(0x500u)
#define TML_NRF_PSELTXD TML_NRF_UART(0x50Cu)
#define TML_NRF_PSELRXD TML_NRF_UART(0x514u)
#define TML_NRF_RXD TML_NRF_UART(0x518u)
#define TML_NRF_TXD TML_NRF_UART(0x51Cu)
#define TML_NRF_BAUDRATE TML_NRF_UART(0x524u)
#define TML_NRF_CONFIG TML_NRF_UART(0x56Cu)

/* GPIO: TX as output, high when idle. */
#define TML_NRF_GPIO_OUTSET TML_REG32(0x50000508u)
#define TML_NRF_GPIO_PIN_CNF(pin) TML_REG32(0x50000700u + 4u * (pin))

static int tml_nrf_tx_started;

uint32_t tml_uart_clock_hz(void)
{
    return 16000000u; /* the UART runs from the 16 MHz HFCLK */
}

void tml_uart_init(void)
{
    TML_NRF_GPIO_OUTSET = 1u << TML_UART_TX_PIN;
    TML_NRF_GPIO_PIN_CNF(TML_UART_TX_PIN) = 1u;      /* output */
    TML_NRF_GPIO_PIN_CNF(TML_UART_RX_PIN) = 0u;      /* input, buffer connected */
    TML_NRF_PSELTXD = TML_UART_TX_PIN;
    TML_NRF_PSELRXD = TML_UART_RX_PIN;
    TML_NRF_BAUDRATE = TML_UART_BAUDRATE_REG;
    TML_NRF_CONFIG = 0u; /* no parity, no flow control */
    TML_NRF_ENABLE = 4u;
    TML_NRF_RXDRDY = 0u;
    TML_NRF_TXDRDY = 0u;
    TML_NRF_STARTRX = 1u;
    TML_NRF_STARTTX = 1u;
    tml_nrf_tx_started = 0;
}

void tml_uart_putc(uint8_t byte)
{
    uint32_t spins = 0;
    if (tml_nrf_tx_started) {
        /* TXDRDY: the previous byte has left the transmitter. */
        while (TML_NRF_TXDRDY == 0u && spins < 1000000u) {
            spins++;
        }
    }
    TML_NRF_TXDRDY = 0u;
    TML_NRF_TXD = byte;
    tml_nrf_tx_started = 1;
}

int tml_uart_getc(void)
{
    if (TML_NRF_ERROR != 0u) {
        TML_NRF_ERROR = 0u;
        TML_NRF_ERRORSRC = 0xFu; /* write 1 to clear */
    }
    if (TML_NRF_RXDRDY == 0u) {
        return -1;
    }
    TML_NRF_RXDRDY = 0u; /* clear before reading RXD: the next byte sets it again */
    return (int)(TML_NRF_RXD & 0xFFu);
}
