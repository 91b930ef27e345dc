/*
 * tinyml host link (see hostlink.h for the frame format) and the MLPerf
 * Tiny benchmark runner's text commands, on one polled UART.
 *
 * Robustness rules: every read of a frame byte has a timeout; a length
 * above TML_HL_MAX_PAYLOAD is refused before any payload byte is stored;
 * every offset and length in a request is checked against the tensor it
 * names; the text command line has a fixed size and overlong lines are
 * dropped.  Nothing here allocates memory.
 */
#include <stdint.h>
#include <string.h>

#include "hostlink.h"
#include "tml_board.h"
#include "tml_cycles.h"
#include "tml_runtime.h"
#include "tml_stack.h"

#define TML_HL_FRAME_BYTES (TML_HL_HEADER_BYTES + TML_HL_MAX_PAYLOAD + TML_HL_CRC_BYTES)
#define TML_HL_LINE_BYTES 96u

static const tml_hl_model *tml_hl_m;
static uint8_t tml_hl_rx[TML_HL_FRAME_BYTES];
static uint8_t tml_hl_tx[TML_HL_FRAME_BYTES];
static char tml_hl_line[TML_HL_LINE_BYTES];
static unsigned tml_hl_line_length;
static int tml_hl_line_overflow;
static uint32_t tml_hl_timeout_polls;
static uint32_t tml_hl_db_loaded;
static uint32_t tml_hl_db_expected;

static uint32_t tml_hl_op_cycles[TML_HL_MAX_OPS];
static unsigned tml_hl_op_count;
static uint64_t tml_hl_mark;
static int tml_hl_profiling;

/* Memory, measured after every inference (MEM reports it). */
static uint32_t tml_hl_arena_used;
static uint32_t tml_hl_stack_used;
static uint32_t tml_hl_inferences;
static int tml_hl_canary_broken;

/* ------------------------------------------------------------ cycles */

uint64_t tml_hl_cycles(void)
{
    return tml_cycles_now();
}

/* Per-operator cycles: the generated model calls tml_trace() after every
 * operator when built with -DTML_TRACE, which hostlink builds are. */
void tml_trace(int op_index, const void *data, unsigned bytes)
{
    uint64_t now;
    (void)data;
    (void)bytes;
    if (!tml_hl_profiling) {
        return;
    }
    now = tml_hl_cycles();
    if (op_index >= 0 && (unsigned)op_index < TML_HL_MAX_OPS) {
        tml_hl_op_cycles[op_index] = (uint32_t)(now - tml_hl_mark);
        if ((unsigned)op_index + 1u > tml_hl_op_count) {
            tml_hl_op_count = (unsigned)op_index + 1u;
        }
    }
    tml_hl_mark = tml_hl_cycles(); /* leave the bookkeeping out of the next operator */
}

static int tml_hl_invoke(uint64_t *cycles)
{
    uint64_t start;
    int result;
    memset(tml_hl_op_cycles, 0, sizeof tml_hl_op_cycles);
    tml_hl_op_count = 0;
    tml_hl_profiling = 1;
    start = tml_hl_cycles();
    tml_hl_mark = start;
    result = tml_hl_m->invoke();
    *cycles = tml_hl_cycles() - start;
    tml_hl_profiling = 0;
    /* Outside the measured cycles: canaries, arena use, stack high-water. */
    if (tml_hl_m->check != 0 && tml_hl_m->check() != 0) {
        tml_hl_canary_broken = 1; /* stays set: the memory is no longer trustworthy */
    }
    if (tml_hl_m->arena_used != 0) {
        tml_hl_arena_used = (uint32_t)tml_hl_m->arena_used();
    }
    tml_hl_stack_used = tml_stack_used();
    tml_hl_inferences++;
    return result;
}

/* ------------------------------------------------------------ bytes */

static uint32_t tml_hl_crc32(const uint8_t *data, unsigned length)
{
    uint32_t crc = 0xFFFFFFFFu;
    unsigned i;
    int bit;
    for (i = 0; i < length; i++) {
        crc ^= data[i];
        for (bit = 0; bit < 8; bit++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static uint32_t tml_hl_get_u32(const uint8_t *bytes)
{
    return (uint32_t)bytes[0] | ((uint32_t)bytes[1] << 8) | ((uint32_t)bytes[2] << 16) | ((uint32_t)bytes[3] << 24);
}

static void tml_hl_put_u32(uint8_t *bytes, uint32_t value)
{
    bytes[0] = (uint8_t)value;
    bytes[1] = (uint8_t)(value >> 8);
    bytes[2] = (uint8_t)(value >> 16);
    bytes[3] = (uint8_t)(value >> 24);
}

static void tml_hl_write(const char *text)
{
    while (*text != '\0') {
        tml_uart_putc((uint8_t)*text++);
    }
}

static void tml_hl_write_unsigned(uint64_t value)
{
    char digits[24];
    char *cursor = &digits[sizeof digits - 1];
    *cursor = '\0';
    do {
        *--cursor = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0u);
    tml_hl_write(cursor);
}

/* Waits up to the timeout for one byte; -1 on timeout. */
static int tml_hl_read_byte(void)
{
    uint32_t polls = tml_hl_timeout_polls;
    do {
        int c = tml_uart_getc();
        if (c >= 0) {
            return c;
        }
    } while (polls-- > 0u);
    return -1;
}

/* ------------------------------------------------------------ frames */

static void tml_hl_send(uint8_t type, uint8_t seq, unsigned length)
{
    unsigned i;
    uint32_t crc;
    tml_hl_tx[0] = TML_HL_SYNC0;
    tml_hl_tx[1] = TML_HL_SYNC1;
    tml_hl_tx[2] = TML_HL_VERSION;
    tml_hl_tx[3] = type;
    tml_hl_tx[4] = seq;
    tml_hl_tx[5] = (uint8_t)length;
    tml_hl_tx[6] = (uint8_t)(length >> 8);
    crc = tml_hl_crc32(&tml_hl_tx[2], 5u + length);
    tml_hl_put_u32(&tml_hl_tx[TML_HL_HEADER_BYTES + length], crc);
    for (i = 0; i < TML_HL_HEADER_BYTES + length + TML_HL_CRC_BYTES; i++) {
        tml_uart_putc(tml_hl_tx[i]);
    }
}

static void tml_hl_nak(uint8_t seq, uint8_t status)
{
    tml_hl_tx[TML_HL_HEADER_BYTES] = status;
    tml_hl_send(TML_HL_NAK, seq, 1u);
}

static const tml_hl_tensor *tml_hl_tensor_at(unsigned kind, unsigned index)
{
    if (kind == 0u && index < tml_hl_m->num_inputs) {
        return &tml_hl_m->inputs[index];
    }
    if (kind == 1u && index < tml_hl_m->num_outputs) {
        return &tml_hl_m->outputs[index];
    }
    return 0;
}

/* Handles one authentic request; returns the response payload length
 * (the payload, starting with the status, is built in tml_hl_tx). */
static unsigned tml_hl_handle(uint8_t type, const uint8_t *request, unsigned length)
{
    uint8_t *out = &tml_hl_tx[TML_HL_HEADER_BYTES];
    unsigned n = 1;
    out[0] = TML_HL_OK;
    switch (type) {
    case TML_HL_INFO: {
        unsigned name = (unsigned)strlen(tml_hl_m->model_name);
        unsigned board = (unsigned)strlen(tml_hl_m->board_name);
        name = name > 64u ? 64u : name;
        board = board > 64u ? 64u : board;
        out[n++] = TML_HL_VERSION;
        out[n++] = (uint8_t)TML_HL_MAX_PAYLOAD;
        out[n++] = (uint8_t)(TML_HL_MAX_PAYLOAD >> 8);
        tml_hl_put_u32(&out[n], tml_hl_m->arena_bytes);
        n += 4u;
        tml_hl_put_u32(&out[n], tml_hl_m->cpu_hz);
        n += 4u;
        out[n++] = tml_hl_m->num_inputs;
        out[n++] = tml_hl_m->num_outputs;
        out[n++] = (uint8_t)TML_HL_MAX_OPS;
        out[n++] = (uint8_t)name;
        memcpy(&out[n], tml_hl_m->model_name, name);
        n += name;
        out[n++] = (uint8_t)board;
        memcpy(&out[n], tml_hl_m->board_name, board);
        n += board;
        out[n++] = (uint8_t)TML_HL_REVISION;
        out[n++] = (uint8_t)tml_cycles_source();
        return n;
    }
    case TML_HL_TENSOR: {
        const tml_hl_tensor *t = length == 2u ? tml_hl_tensor_at(request[0], request[1]) : 0;
        uint32_t scale_bits;
        unsigned d;
        if (t == 0 || t->dims > 8u) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        tml_hl_put_u32(&out[n], t->bytes);
        n += 4u;
        out[n++] = t->dtype;
        out[n++] = t->dims;
        for (d = 0; d < t->dims; d++) {
            tml_hl_put_u32(&out[n], (uint32_t)t->shape[d]);
            n += 4u;
        }
        memcpy(&scale_bits, &t->scale, sizeof scale_bits);
        tml_hl_put_u32(&out[n], scale_bits);
        n += 4u;
        tml_hl_put_u32(&out[n], (uint32_t)t->zero_point);
        n += 4u;
        return n;
    }
    case TML_HL_LOAD: {
        const tml_hl_tensor *t = length >= 5u ? tml_hl_tensor_at(0u, request[0]) : 0;
        uint32_t offset;
        uint32_t count = length >= 5u ? length - 5u : 0u;
        if (t == 0) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        offset = tml_hl_get_u32(&request[1]);
        if (offset > t->bytes || count > t->bytes - offset) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        memcpy((uint8_t *)tml_hl_m->input(request[0]) + offset, &request[5], count);
        return 1;
    }
    case TML_HL_INFER: {
        uint64_t cycles = 0;
        int result;
        if (length != 0u) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        result = tml_hl_invoke(&cycles);
        if (result != 0) {
            out[0] = TML_HL_INVOKE_FAILED;
        } else if (tml_hl_canary_broken) {
            out[0] = TML_HL_CANARY;
        }
        tml_hl_put_u32(&out[n], (uint32_t)result);
        n += 4u;
        tml_hl_put_u32(&out[n], (uint32_t)cycles);
        n += 4u;
        tml_hl_put_u32(&out[n], (uint32_t)(cycles >> 32));
        n += 4u;
        return n;
    }
    case TML_HL_READ: {
        const tml_hl_tensor *t = length == 7u ? tml_hl_tensor_at(1u, request[0]) : 0;
        uint32_t offset;
        uint32_t count;
        if (t == 0) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        offset = tml_hl_get_u32(&request[1]);
        count = (uint32_t)request[5] | ((uint32_t)request[6] << 8);
        if (offset > t->bytes || count > t->bytes - offset || count > TML_HL_MAX_PAYLOAD - 1u) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        memcpy(&out[1], (const uint8_t *)tml_hl_m->output(request[0]) + offset, count);
        return 1u + count;
    }
    case TML_HL_PROFILE: {
        unsigned first = length == 2u ? (unsigned)request[0] | ((unsigned)request[1] << 8) : 0xFFFFu;
        unsigned count = 0;
        if (first > tml_hl_op_count) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        out[n++] = (uint8_t)tml_hl_op_count;
        out[n++] = (uint8_t)(tml_hl_op_count >> 8);
        n++; /* count, below */
        while (first + count < tml_hl_op_count && n + 5u <= TML_HL_MAX_PAYLOAD) { /* 1: the source */
            tml_hl_put_u32(&out[n], tml_hl_op_cycles[first + count]);
            n += 4u;
            count++;
        }
        out[3] = (uint8_t)count;
        out[n++] = (uint8_t)tml_cycles_source();
        return n;
    }
    case TML_HL_MEM:
        if (length != 0u) {
            out[0] = TML_HL_BAD_ARGUMENT;
            return 1;
        }
        tml_hl_put_u32(&out[n], tml_hl_m->arena_bytes);
        tml_hl_put_u32(&out[n + 4u], tml_hl_arena_used);
        tml_hl_put_u32(&out[n + 8u], tml_stack_size());
        tml_hl_put_u32(&out[n + 12u], tml_hl_stack_used);
        tml_hl_put_u32(&out[n + 16u], tml_hl_inferences);
        n += 20u;
        out[n++] = (uint8_t)(tml_hl_canary_broken ? 0u : 1u);
        return n;
    case TML_HL_ECHO:
        if (length > TML_HL_MAX_PAYLOAD - 1u) {
            length = TML_HL_MAX_PAYLOAD - 1u;
        }
        memcpy(&out[1], request, length);
        return 1u + length;
    default:
        out[0] = TML_HL_UNKNOWN;
        return 1;
    }
}

/* Called after 0xA5 was received. */
static void tml_hl_frame(void)
{
    unsigned i;
    unsigned length;
    unsigned total;
    int c;
    uint32_t crc;

    c = tml_hl_read_byte();
    while (c == (int)TML_HL_SYNC0) { /* A5 A5 5A: the second A5 starts the frame */
        c = tml_hl_read_byte();
    }
    if (c < 0) {
        tml_hl_nak(0u, TML_HL_TIMEOUT);
        return;
    }
    if (c != (int)TML_HL_SYNC1) {
        return; /* not a frame: hunt again */
    }
    tml_hl_rx[0] = TML_HL_SYNC0;
    tml_hl_rx[1] = TML_HL_SYNC1;
    for (i = 2; i < TML_HL_HEADER_BYTES; i++) {
        c = tml_hl_read_byte();
        if (c < 0) {
            tml_hl_nak(0u, TML_HL_TIMEOUT);
            return;
        }
        tml_hl_rx[i] = (uint8_t)c;
    }
    length = (unsigned)tml_hl_rx[5] | ((unsigned)tml_hl_rx[6] << 8);
    if (length > TML_HL_MAX_PAYLOAD) {
        /* Refused at once, then discarded whole: none of its bytes may
         * start a frame or feed the text command line. */
        tml_hl_nak(tml_hl_rx[4], TML_HL_TOO_LONG);
        for (total = length + TML_HL_CRC_BYTES; total > 0u; total--) {
            if (tml_hl_read_byte() < 0) {
                /* the sender stopped: say so (the host may send again
                 * from here on), then hunt again */
                tml_hl_nak(tml_hl_rx[4], TML_HL_TIMEOUT);
                break;
            }
        }
        return;
    }
    total = TML_HL_HEADER_BYTES + length + TML_HL_CRC_BYTES;
    for (; i < total; i++) {
        c = tml_hl_read_byte();
        if (c < 0) {
            tml_hl_nak(tml_hl_rx[4], TML_HL_TIMEOUT);
            return;
        }
        tml_hl_rx[i] = (uint8_t)c;
    }
    crc = tml_hl_crc32(&tml_hl_rx[2], 5u + length);
    if (crc != tml_hl_get_u32(&tml_hl_rx[TML_HL_HEADER_BYTES + length])) {
        tml_hl_nak(tml_hl_rx[4], TML_HL_BAD_CRC);
        return;
    }
    if (tml_hl_rx[2] != TML_HL_VERSION) {
        tml_hl_tx[TML_HL_HEADER_BYTES] = TML_HL_BAD_VERSION;
        tml_hl_send((uint8_t)(tml_hl_rx[3] | TML_HL_RESPONSE), tml_hl_rx[4], 1u);
        return;
    }
    if ((tml_hl_rx[3] & TML_HL_RESPONSE) != 0u) {
        tml_hl_nak(tml_hl_rx[4], TML_HL_UNKNOWN); /* a response sent to us */
        return;
    }
    length = tml_hl_handle(tml_hl_rx[3], &tml_hl_rx[TML_HL_HEADER_BYTES], length);
    tml_hl_send((uint8_t)(tml_hl_rx[3] | TML_HL_RESPONSE), tml_hl_rx[4], length);
}

/* ------------------------------------------- benchmark runner commands */

static int tml_hl_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Parses a decimal number at *text (after spaces); -1 if there is none,
 * -2 if it exceeds 10^9. */
static long tml_hl_number(const char **text)
{
    const char *p = *text;
    long value = 0;
    while (*p == ' ') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return -1;
    }
    while (*p >= '0' && *p <= '9') {
        value = value * 10 + (*p - '0');
        if (value > 1000000000L) {
            return -2;
        }
        p++;
    }
    *text = p;
    return value;
}

static int tml_hl_word(const char **text, const char *word)
{
    const char *p = *text;
    unsigned n = (unsigned)strlen(word);
    while (*p == ' ') {
        p++;
    }
    if (strncmp(p, word, n) != 0 || (p[n] != '\0' && p[n] != ' ')) {
        return 0;
    }
    *text = p + n;
    return 1;
}

static void tml_hl_lap(void)
{
    uint32_t per_us = tml_hl_m->cpu_hz / 1000000u;
    tml_hl_write("m-lap-us-");
    tml_hl_write_unsigned(tml_hl_cycles() / (per_us == 0u ? 1u : per_us));
    tml_hl_write("\r\n");
}

static void tml_hl_results(void)
{
    int index;
    int first = 1;
    tml_hl_write("m-results-[");
    for (index = 0; index < tml_hl_m->num_outputs; index++) {
        const tml_hl_tensor *t = &tml_hl_m->outputs[index];
        const uint8_t *data = (const uint8_t *)tml_hl_m->output(index);
        unsigned size = t->dtype == TML_HL_INT8 || t->dtype == TML_HL_UINT8 ? 1u : t->dtype == TML_HL_INT16 ? 2u : 4u;
        unsigned i;
        for (i = 0; i + size <= t->bytes; i += size) {
            float value;
            long millis;
            if (t->dtype == TML_HL_FLOAT32) {
                memcpy(&value, data + i, sizeof value);
            } else {
                int32_t q;
                if (t->dtype == TML_HL_INT8) {
                    q = (int8_t)data[i];
                } else if (t->dtype == TML_HL_UINT8) {
                    q = data[i];
                } else if (t->dtype == TML_HL_INT16) {
                    q = (int16_t)(uint16_t)(data[i] | (data[i + 1u] << 8));
                } else {
                    q = (int32_t)tml_hl_get_u32(data + i);
                }
                value = (float)(q - t->zero_point) * t->scale;
            }
            millis = (long)(value * 1000.0f + (value < 0.0f ? -0.5f : 0.5f));
            if (!first) {
                tml_hl_write(",");
            }
            first = 0;
            if (millis < 0) {
                tml_hl_write("-");
                millis = -millis;
            }
            tml_hl_write_unsigned((uint64_t)(millis / 1000));
            tml_hl_write(".");
            tml_uart_putc((uint8_t)('0' + (millis / 100) % 10));
            tml_uart_putc((uint8_t)('0' + (millis / 10) % 10));
            tml_uart_putc((uint8_t)('0' + millis % 10));
        }
    }
    tml_hl_write("]\r\n");
}

static void tml_hl_copy_db_to_inputs(void)
{
    uint32_t offset = 0;
    int index;
    for (index = 0; index < tml_hl_m->num_inputs; index++) {
        uint32_t bytes = tml_hl_m->inputs[index].bytes;
        memcpy(tml_hl_m->input(index), tml_hl_m->db + offset, bytes);
        offset += bytes;
    }
}

static void tml_hl_command(const char *line)
{
    const char *p = line;
    if (tml_hl_word(&p, "name")) {
        tml_hl_write("m-name-dut-[tinyml]\r\n");
    } else if (tml_hl_word(&p, "profile")) {
        tml_hl_write("m-profile-[tinyml hostlink 1]\r\nm-model-[");
        tml_hl_write(tml_hl_m->model_name);
        tml_hl_write("]\r\n");
    } else if (tml_hl_word(&p, "timestamp")) {
        tml_hl_lap();
    } else if (tml_hl_word(&p, "db")) {
        if (tml_hl_word(&p, "load")) {
            long n = tml_hl_number(&p);
            if (n <= 0 || (uint32_t)n != tml_hl_m->db_bytes) {
                tml_hl_write("e-[db load needs the model's input size, ");
                tml_hl_write_unsigned(tml_hl_m->db_bytes);
                tml_hl_write(" bytes]\r\n");
            } else {
                tml_hl_db_expected = (uint32_t)n;
                tml_hl_db_loaded = 0;
                tml_hl_write("m-[Expecting ");
                tml_hl_write_unsigned((uint64_t)n);
                tml_hl_write(" bytes]\r\n");
            }
        } else {
            while (*p == ' ') {
                p++;
            }
            if (*p == '\0' || tml_hl_db_expected == 0u) {
                tml_hl_write("e-[db needs 'load N' first, then hex bytes]\r\n");
            } else {
                while (p[0] != '\0' && tml_hl_db_loaded < tml_hl_db_expected) {
                    int high = tml_hl_hex_digit(p[0]);
                    int low = p[1] == '\0' ? -1 : tml_hl_hex_digit(p[1]);
                    if (high < 0 || low < 0) {
                        tml_hl_write("e-[invalid hex digits]\r\n");
                        break;
                    }
                    tml_hl_m->db[tml_hl_db_loaded++] = (uint8_t)(high * 16 + low);
                    p += 2;
                }
                if (tml_hl_db_loaded == tml_hl_db_expected) {
                    tml_hl_write("m-load-done\r\n");
                }
            }
        }
    } else if (tml_hl_word(&p, "infer")) {
        long n = tml_hl_number(&p);
        long warmup = n < 0 ? 0 : tml_hl_number(&p);
        uint64_t cycles;
        int failed = 0;
        if (n == -1) {
            n = 1;
        }
        if (warmup == -1) {
            warmup = 0;
        }
        if (n == 0) {
            tml_hl_write("e-[Inference iterations must be >0]\r\n");
        } else if (n < 0 || warmup < 0 || (unsigned long)n + (unsigned long)warmup > TML_HL_MAX_INFERENCES) {
            tml_hl_write("e-[Inference and warm-up iterations must be at most ");
            tml_hl_write_unsigned(TML_HL_MAX_INFERENCES);
            tml_hl_write(" together]\r\n");
        } else {
            tml_hl_write("m-warmup-start-");
            tml_hl_write_unsigned((uint64_t)warmup);
            tml_hl_write("\r\n");
            for (; warmup > 0; warmup--) {
                tml_hl_copy_db_to_inputs();
                failed |= tml_hl_invoke(&cycles);
            }
            tml_hl_write("m-warmup-done\r\nm-infer-start-");
            tml_hl_write_unsigned((uint64_t)n);
            tml_hl_write("\r\n");
            tml_hl_lap();
            for (; n > 0; n--) {
                tml_hl_copy_db_to_inputs();
                failed |= tml_hl_invoke(&cycles);
            }
            tml_hl_lap();
            tml_hl_write(failed ? "e-[invoke failed]\r\n"
                         : tml_hl_canary_broken ? "e-[a canary word around the arena was overwritten]\r\n"
                                                : "m-infer-done\r\n");
            tml_hl_results();
        }
    } else if (tml_hl_word(&p, "results")) {
        tml_hl_results();
    } else {
        tml_hl_write("e-[Unknown command: ");
        tml_hl_write(line);
        tml_hl_write("]\r\n");
    }
    tml_hl_write("m-ready\r\n");
}

static void tml_hl_text(int c)
{
    if (c == '%') {
        if (tml_hl_line_overflow) {
            tml_hl_write("e-[command too long]\r\nm-ready\r\n");
        } else {
            tml_hl_line[tml_hl_line_length] = '\0';
            tml_hl_command(tml_hl_line);
        }
        tml_hl_line_length = 0;
        tml_hl_line_overflow = 0;
    } else if (c >= 0x20 && c < 0x7F) {
        if (tml_hl_line_length + 1u < TML_HL_LINE_BYTES) {
            tml_hl_line[tml_hl_line_length++] = (char)c;
        } else {
            tml_hl_line_overflow = 1;
        }
    } else if (c != '\r' && c != '\n') {
        tml_hl_line_length = 0; /* binary noise ends a command line */
        tml_hl_line_overflow = 0;
    }
}

void tml_hostlink_run(const tml_hl_model *model)
{
    uint32_t polls_per_ms = model->cpu_hz / 8000u; /* a poll takes well over 8 cycles */
    tml_hl_m = model;
    tml_hl_timeout_polls = (polls_per_ms == 0u ? 1u : polls_per_ms) * TML_HL_TIMEOUT_MS;
    tml_stack_paint();
    (void)tml_cycles_start();
    tml_hl_stack_used = tml_stack_used();
    tml_hl_write("\r\ntinyml hostlink 1: model ");
    tml_hl_write(model->model_name);
    tml_hl_write(" on ");
    tml_hl_write(model->board_name);
    if (tml_cycles_source() == TML_CYCLES_NONE) {
        tml_hl_write("\r\ntinyml: no cycle counter");
    } else {
        tml_hl_write("\r\ntinyml: cycle counter ");
        tml_hl_write(tml_cycles_source_name(tml_cycles_source()));
    }
    tml_hl_write("\r\nm-init-done\r\nm-ready\r\n");
    for (;;) {
        int c = tml_uart_getc();
        if (c < 0) {
            continue;
        }
        if (c == (int)TML_HL_SYNC0) {
            tml_hl_line_length = 0;
            tml_hl_line_overflow = 0;
            tml_hl_frame();
        } else {
            tml_hl_text(c);
        }
    }
}
