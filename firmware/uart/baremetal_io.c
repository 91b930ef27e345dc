/*
 * The tml_runtime.h interface on real hardware, where no debugger answers
 * semihosting calls (a BKPT would stop the core): the console is the UART,
 * there are no files, and tml_exit() reports the code and resets the chip.
 */
#include <stdint.h>

#include "tml_board.h"
#include "tml_runtime.h"

#define TML_SCB_AIRCR TML_REG32(0xE000ED0Cu)

int tml_io_open_read(const char *path)
{
    (void)path;
    return -1;
}

int tml_io_open_write(const char *path)
{
    (void)path;
    return -1;
}

int tml_io_read(int handle, void *data, unsigned bytes)
{
    (void)handle;
    (void)data;
    (void)bytes;
    return -1;
}

int tml_io_write(int handle, const void *data, unsigned bytes)
{
    (void)handle;
    (void)data;
    (void)bytes;
    return -1;
}

int tml_io_close(int handle)
{
    (void)handle;
    return -1;
}

void tml_puts(const char *text)
{
    while (*text != '\0') {
        if (*text == '\n') {
            tml_uart_putc('\r');
        }
        tml_uart_putc((uint8_t)*text++);
    }
}

void tml_exit(int code)
{
    char line[] = "tinyml: exit 0, resetting\n";
    line[13] = (char)('0' + (code < 0 || code > 9 ? 9 : code));
    tml_puts(line);
    {
        volatile uint32_t spin;
        for (spin = 0; spin < 1000000u; spin++) { /* let the UART drain */
        }
    }
    TML_SCB_AIRCR = 0x05FA0004u; /* SYSRESETREQ */
    for (;;) {
        __asm__ volatile("wfi");
    }
}
