/*
 * tinyml board support for the host link: clock set-up and a polled UART.
 *
 * One clock_<driver>.c and one uart_<driver>.c per chip family implement
 * this, configured by board_config.h, which tinyml generates from the
 * [clock] and [uart] tables of the board file (TML_CLOCK_<KEY> and
 * TML_UART_<KEY> for every integer key).  No interrupts, no vendor HAL.
 */
#ifndef TML_BOARD_H
#define TML_BOARD_H

#include <stdint.h>

#include "board_config.h"

#define TML_REG32(address) (*(volatile uint32_t *)(uintptr_t)(address))

/* Clocks (PLL, flash wait states, caches), then the clocks, pins and
 * alternate functions the UART needs.  Every wait for hardware is bounded:
 * where a clock does not start (or is not emulated) the core keeps running
 * on its reset clock. Returns the core clock in Hz actually in use. */
uint32_t tml_clock_init(void);

/* The peripheral clock of the UART in Hz (after tml_clock_init). */
uint32_t tml_uart_clock_hz(void);

/* 8N1 at TML_UART_BAUD, polled. */
void tml_uart_init(void);

/* Send one byte (waits while the transmitter is full). */
void tml_uart_putc(uint8_t byte);

/* One received byte (0..255), or -1 when none is waiting.  Clears receive
 * errors (overrun, framing) so that reception never stalls. */
int tml_uart_getc(void);

#endif
