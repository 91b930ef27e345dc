/*
 * tinyml runtime for Arm targets: the tml_runtime.h interface over Arm
 * semihosting (BKPT 0xAB on M-profile).  Under QEMU, run with
 * "-semihosting-config enable=on,target=native": files are opened relative
 * to QEMU's working directory and tml_exit(code) makes QEMU exit with code.
 */
#include <stdint.h>

#include "tml_runtime.h"

enum {
    TML_SYS_OPEN = 0x01,
    TML_SYS_CLOSE = 0x02,
    TML_SYS_WRITE0 = 0x04,
    TML_SYS_WRITE = 0x05,
    TML_SYS_READ = 0x06,
    TML_SYS_EXIT = 0x18,
    TML_SYS_EXIT_EXTENDED = 0x20
};

/* SYS_OPEN modes, as indices into the ISO C fopen() mode list. */
#define TML_OPEN_MODE_RB 1u
#define TML_OPEN_MODE_WB 5u

/* SYS_EXIT reasons. */
#define TML_ADP_APPLICATION_EXIT 0x20026u
#define TML_ADP_RUNTIME_ERROR 0x20023u

static int tml_semihost(int operation, const void *argument)
{
    register int r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static unsigned tml_strlen(const char *text)
{
    unsigned length = 0;
    while (text[length] != '\0') {
        length++;
    }
    return length;
}

static int tml_semihost_open(const char *path, uint32_t mode)
{
    uint32_t block[3];
    int handle;
    block[0] = (uint32_t)(uintptr_t)path;
    block[1] = mode;
    block[2] = tml_strlen(path);
    handle = tml_semihost(TML_SYS_OPEN, block);
    return handle < 0 ? -1 : handle;
}

int tml_io_open_read(const char *path)
{
    return tml_semihost_open(path, TML_OPEN_MODE_RB);
}

int tml_io_open_write(const char *path)
{
    return tml_semihost_open(path, TML_OPEN_MODE_WB);
}

int tml_io_read(int handle, void *data, unsigned bytes)
{
    uint8_t *cursor = (uint8_t *)data;
    unsigned done = 0;
    while (done < bytes) {
        uint32_t block[3];
        int not_read;
        unsigned want = bytes - done;
        block[0] = (uint32_t)handle;
        block[1] = (uint32_t)(uintptr_t)(cursor + done);
        block[2] = want;
        /* SYS_READ returns the number of bytes NOT read. */
        not_read = tml_semihost(TML_SYS_READ, block);
        if (not_read < 0 || (unsigned)not_read > want) {
            return -1;
        }
        if ((unsigned)not_read == want) {
            break; /* end of file */
        }
        done += want - (unsigned)not_read;
    }
    return (int)done;
}

int tml_io_write(int handle, const void *data, unsigned bytes)
{
    uint32_t block[3];
    block[0] = (uint32_t)handle;
    block[1] = (uint32_t)(uintptr_t)data;
    block[2] = bytes;
    /* SYS_WRITE returns the number of bytes NOT written. */
    if (tml_semihost(TML_SYS_WRITE, block) != 0) {
        return -1;
    }
    return (int)bytes;
}

int tml_io_close(int handle)
{
    uint32_t block[1];
    block[0] = (uint32_t)handle;
    return tml_semihost(TML_SYS_CLOSE, block) == 0 ? 0 : -1;
}

void tml_puts(const char *text)
{
    (void)tml_semihost(TML_SYS_WRITE0, text);
}

void tml_exit(int code)
{
    uint32_t block[2];
    block[0] = TML_ADP_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    /* SYS_EXIT_EXTENDED passes the exit code (QEMU >= 4.0). */
    (void)tml_semihost(TML_SYS_EXIT_EXTENDED, block);
    /* Fallback for debuggers without it: success or failure only. */
    (void)tml_semihost(TML_SYS_EXIT, (const void *)(uintptr_t)(code == 0 ? TML_ADP_APPLICATION_EXIT
                                                                          : TML_ADP_RUNTIME_ERROR));
    for (;;) {
        __asm__ volatile("wfi");
    }
}
