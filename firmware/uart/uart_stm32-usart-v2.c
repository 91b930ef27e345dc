/*
 * STM32 USART/LPUART, second register layout (F0/F3/F7/L4/H7/G4...):
 * CR1, CR2, CR3, BRR, ..., ISR, ICR, RDR, TDR.  Oversampling by 16:
 * BRR = fck / baud; LPUART (uart.lpuart = 1): BRR = 256 * fck / baud.
 */
#include "tml_board.h"

#define TML_USART_CR1 TML_REG32(TML_UART_BASE + 0x00u)
#define TML_USART_CR2 TML_REG32(TML_UART_BASE + 0x04u)
#define TML_USART_CR3 TML_REG32(TML_UART_BASE + 0x08u)
#define TML_USART_BRR TML_REG32(TML_UART_BASE + 0x0Cu)
#define TML_USART_ISR TML_REG32(TML_UART_BASE + 0x1Cu)
#define TML_USART_ICR TML_REG32(TML_UART_BASE + 0x20u)
#define TML_USART_RDR TML_REG32(TML_UART_BASE + 0x24u)
#define TML_USART_TDR TML_REG32(TML_UART_BASE + 0x28u)

#define TML_USART_ISR_ERRORS 0x0Fu /* PE, FE, NE, ORE */
#define TML_USART_ISR_RXNE 0x20u
#define TML_USART_ISR_TXE 0x80u
#define TML_USART_CR1_UE 0x1u
#define TML_USART_CR1_RE 0x4u
#define TML_USART_CR1_TE 0x8u

#ifndef TML_UART_LPUART
#define TML_UART_LPUART 0
#endif

void tml_uart_init(void)
{
    uint64_t clock = tml_uart_clock_hz();
    TML_USART_CR1 = 0u;
    TML_USART_CR2 = 0u;
    TML_USART_CR3 = 0u;
#if TML_UART_LPUART
    TML_USART_BRR = (uint32_t)((clock * 256u + TML_UART_BAUD / 2u) / TML_UART_BAUD);
#else
    TML_USART_BRR = (uint32_t)((clock + TML_UART_BAUD / 2u) / TML_UART_BAUD);
#endif
    TML_USART_CR1 = TML_USART_CR1_UE | TML_USART_CR1_TE | TML_USART_CR1_RE;
}

void tml_uart_putc(uint8_t byte)
{
    uint32_t spins = 0;
    while ((TML_USART_ISR & TML_USART_ISR_TXE) == 0u && spins < 1000000u) {
        spins++;
    }
    TML_USART_TDR = byte;
}

int tml_uart_getc(void)
{
    uint32_t status = TML_USART_ISR;
    if ((status & TML_USART_ISR_ERRORS) != 0u) {
        TML_USART_ICR = TML_USART_ISR_ERRORS; /* overrun would stop reception */
    }
    if ((status & TML_USART_ISR_RXNE) != 0u) {
        return (int)(TML_USART_RDR & 0xFFu);
    }
    return -1;
}
