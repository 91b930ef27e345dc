/*
 * tinyml host link: a framed, versioned, CRC-checked request/response
 * protocol over a UART (implemented in hostlink.c; the host side is
 * tinyml/targets/hostlink.py), and on the same UART the text commands of the
 * MLPerf Tiny / EEMBC benchmark runner ("name%", "db load N%", "db HEX%",
 * "infer N W%", "results%", ...).
 *
 * Frame (both directions), multi-byte fields little-endian:
 *
 *   0xA5 0x5A | version | type | seq | length (2) | payload (length) | CRC-32 (4)
 *
 * The CRC is CRC-32/ISO-HDLC (zlib.crc32) over version .. payload.  A
 * response has type = request type | 0x80, the request's seq, and starts
 * with a status byte.  A frame that cannot be trusted (bad CRC, payload
 * longer than TML_HL_MAX_PAYLOAD, bytes missing for TML_HL_TIMEOUT_MS) is
 * answered with type TML_HL_NAK and a status, and the receiver goes back
 * to hunting for 0xA5 0x5A: it never waits forever for the rest of a frame
 * and never writes past its buffer.  A frame refused for its length is
 * discarded whole: its length + CRC bytes are read and dropped before the
 * hunt resumes, so nothing inside it is ever taken for a frame or a text
 * command.  If the sender stops before those bytes are all in, a second
 * NAK (same seq, TML_HL_TIMEOUT) says that the receiver hunts again.  Bytes outside frames are ignored
 * (printable ones feed the benchmark-runner command line).
 *
 * The frame version (TML_HL_VERSION) changes only with the frame format.
 * The command set has a revision of its own (TML_HL_REVISION), reported in
 * INFO; revision 2 added, all at the end of existing answers or as new
 * commands so that revision-1 hosts keep working: the cycle counter's
 * source (TML_CYCLES_* in tml_cycles.h) in INFO and PROFILE, the MEM
 * command, and the TML_HL_CANARY status of INFER (a canary word around the
 * arena was overwritten; checked after every inference, as is the stack's
 * high-water mark).
 */
#ifndef TML_HOSTLINK_H
#define TML_HOSTLINK_H

#include <stdint.h>

#define TML_HL_VERSION 1u
#define TML_HL_REVISION 2u
#define TML_HL_SYNC0 0xA5u
#define TML_HL_SYNC1 0x5Au
#define TML_HL_HEADER_BYTES 7u
#define TML_HL_CRC_BYTES 4u
#ifndef TML_HL_MAX_PAYLOAD
#define TML_HL_MAX_PAYLOAD 256u
#endif
#ifndef TML_HL_MAX_OPS
#define TML_HL_MAX_OPS 128u /* operators whose cycles PROFILE reports */
#endif
#ifndef TML_HL_TIMEOUT_MS
#define TML_HL_TIMEOUT_MS 1000u
#endif
/* The most inferences, warm-up ones included, that one benchmark-runner
 * command "infer N W%" may ask for (N + W): the device serves nothing else
 * while it runs them.  The largest zoo model (MobileNetV2 at 144x144) takes
 * up to about 1 s per inference on the QEMU boards that hold it, so 50 finish
 * well within the host's 120-second timeout.  The host side refuses more
 * before sending (MAX_INFERENCES in tinyml/targets/hostlink.py). */
#ifndef TML_HL_MAX_INFERENCES
#define TML_HL_MAX_INFERENCES 50u
#endif

/* Request types. */
#define TML_HL_INFO 0x01u    /* -> version, max payload, arena, clock, I/O counts, max ops, names,
                                 revision, cycle source */
#define TML_HL_TENSOR 0x02u  /* [0 input | 1 output, index] -> bytes, dtype, shape, scale, zero point */
#define TML_HL_LOAD 0x03u    /* [index, offset u32, data...] -> (status) */
#define TML_HL_INFER 0x04u   /* -> invoke result i32, cycles u64 */
#define TML_HL_READ 0x05u    /* [index, offset u32, length u16] -> data */
#define TML_HL_PROFILE 0x06u /* [first op u16] -> op count u16, n u8, n x cycles u32, cycle source */
#define TML_HL_ECHO 0x07u    /* [data...] -> the same data */
#define TML_HL_MEM 0x08u     /* -> arena bytes, arena used, stack bytes, stack high-water, inferences
                                (u32 each), canary intact u8: measured after the last inference */
#define TML_HL_RESPONSE 0x80u
#define TML_HL_NAK 0xFFu

/* Status (first payload byte of every response). */
#define TML_HL_OK 0u
#define TML_HL_BAD_CRC 1u
#define TML_HL_BAD_VERSION 2u
#define TML_HL_TOO_LONG 3u
#define TML_HL_UNKNOWN 4u
#define TML_HL_BAD_ARGUMENT 5u
#define TML_HL_INVOKE_FAILED 6u
#define TML_HL_TIMEOUT 7u
#define TML_HL_CANARY 8u /* INFER: a canary word around the arena was overwritten */

/* Tensor element types in TENSOR responses. */
#define TML_HL_INT8 0u
#define TML_HL_UINT8 1u
#define TML_HL_INT16 2u
#define TML_HL_INT32 3u
#define TML_HL_FLOAT32 4u

typedef struct {
    uint32_t bytes;
    uint8_t dtype; /* TML_HL_INT8 ... */
    uint8_t dims;
    const int32_t *shape;
    float scale;
    int32_t zero_point;
} tml_hl_tensor;

typedef struct {
    const char *model_name;
    const char *board_name;
    uint32_t arena_bytes;
    uint32_t cpu_hz; /* core clock in use (for the runner's microseconds) */
    uint8_t num_inputs;
    uint8_t num_outputs;
    const tml_hl_tensor *inputs;
    const tml_hl_tensor *outputs;
    int (*invoke)(void);
    void *(*input)(int index);
    void *(*output)(int index);
    uint8_t *db; /* the benchmark runner's input buffer ("db"), inputs back to back */
    uint32_t db_bytes;
    int (*check)(void);           /* 0 while the arena's canaries are intact (NAME_check); may be 0 */
    unsigned (*arena_used)(void); /* arena bytes written so far (NAME_arena_used); may be 0 */
} tml_hl_model;

/* Starts the cycle counter (tml_cycles.h), paints the stack, prints the
 * banner and serves requests forever. */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void tml_hostlink_run(const tml_hl_model *model);

/* Cycles since tml_hostlink_run started (tml_cycles_now: the DWT cycle
 * counter, SysTick, or 0 on cores without either). */
uint64_t tml_hl_cycles(void);

#endif
