/*
 * tinyml runtime interface: what the generated main.c and model code may use.
 *
 * Implemented by runtime/io_host.c on the host (stdio) and by
 * runtime/semihost.c on Arm targets (semihosting, so files live in the
 * directory QEMU runs in).  tml_trace() is implemented by main.c when it is
 * compiled with -DTML_TRACE.
 *
 * No function here allocates memory.
 */
#ifndef TML_RUNTIME_H
#define TML_RUNTIME_H

/* Process exit codes of the firmware (mirrored in tinyml/targets/run.py). */
#define TML_EXIT_OK 0        /* all samples processed */
#define TML_EXIT_FAULT 3     /* CPU fault (HardFault, UsageFault, ...) */
#define TML_EXIT_BAD_INPUT 4 /* input.bin ends in the middle of a sample */
#define TML_EXIT_INVOKE 5    /* the model's invoke returned nonzero */
#define TML_EXIT_IO 6        /* a file could not be opened, read or written */

#if defined(__GNUC__)
#define TML_NORETURN __attribute__((noreturn))
#else
#define TML_NORETURN
#endif

/* Open a file for reading (binary). Returns a handle >= 0, or -1. */
int tml_io_open_read(const char *path);

/* Create or truncate a file for writing (binary). Returns a handle >= 0,
 * or -1. */
int tml_io_open_write(const char *path);

/* Read up to `bytes` bytes; fewer only at end of file. Returns the number of
 * bytes read (0 at end of file), or -1 on error. */
int tml_io_read(int handle, void *data, unsigned bytes);

/* Write `bytes` bytes. Returns the number of bytes written (equal to `bytes`
 * on success), or -1 on error. */
int tml_io_write(int handle, const void *data, unsigned bytes);

/* Close a handle. Returns 0, or -1 on error. */
int tml_io_close(int handle);

/* Write a NUL-terminated string to the console (no newline is added). */
void tml_puts(const char *text);

/* End the program with an exit code; open files are flushed. Under QEMU the
 * code becomes QEMU's exit status. */
TML_NORETURN void tml_exit(int code);

/* Record the output of operator `op_index` (trace builds only: implemented by
 * main.c when compiled with -DTML_TRACE). Appends to trace.bin the
 * little-endian record: int32 op_index, uint32 bytes, then the bytes. */
void tml_trace(int op_index, const void *data, unsigned bytes);

#endif /* TML_RUNTIME_H */
