/*
 * STM32 USART, first register layout (F1/F2/F4): SR, DR, BRR, CR1..CR3.
 * Oversampling by 16: BRR = fck / baud (mantissa and fraction in one
 * value, rounded).
 */
#include "tml_board.h"

#define TML_USART_SR TML_REG32(TML_UART_BASE + 0x00u)
#define TML_USART_DR TML_REG32(TML_UART_BASE + 0x04u)
#define TML_USART_BRR TML_REG32(TML_UART_BASE + 0x08u)
#define TML_USART_CR1 TML_REG32(TML_UART_BASE + 0x0Cu)
#define TML_USART_CR2 TML_REG32(TML_UART_BASE + 0x10u)
#define TML_USART_CR3 TML_REG32(TML_UART_BASE + 0x14u)

#define TML_USART_SR_ERRORS 0x0Fu /* PE, FE, NF, ORE */
#define TML_USART_SR_RXNE 0x20u
#define TML_USART_SR_TXE 0x80u
#define TML_USART_CR1_UE 0x2000u
#define TML_USART_CR1_TE 0x8u
#define TML_USART_CR1_RE 0x4u

void tml_uart_init(void)
{
    uint32_t clock = tml_uart_clock_hz();
    TML_USART_CR1 = 0u;
    TML_USART_CR2 = 0u;
    TML_USART_CR3 = 0u;
    TML_USART_BRR = (clock + TML_UART_BAUD / 2u) / TML_UART_BAUD;
    TML_USART_CR1 = TML_USART_CR1_UE | TML_USART_CR1_TE | TML_USART_CR1_RE;
}

void tml_uart_putc(uint8_t byte)
{
    uint32_t spins = 0;
    /* Bounded: a transmitter that never empties must not hang the link. */
    while ((TML_USART_SR & TML_USART_SR_TXE) == 0u && spins < 1000000u) {
        spins++;
    }
    TML_USART_DR = byte;
}

int tml_uart_getc(void)
{
    uint32_t status = TML_USART_SR;
    if ((status & TML_USART_SR_RXNE) != 0u) {
        return (int)(TML_USART_DR & 0xFFu);
    }
    if ((status & TML_USART_SR_ERRORS) != 0u) {
        (void)TML_USART_DR; /* SR then DR read clears the error flags */
    }
    return -1;
}
