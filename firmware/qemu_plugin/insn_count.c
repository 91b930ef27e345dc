/*
 * tinyml instruction counter: a QEMU TCG plugin (API version 1, QEMU 7.2).
 *
 * Counts every guest instruction executed (an inline add of the block's
 * instruction count on entry to each translation block) and, each time the
 * instruction at address `mark` executes (the entry of the firmware's
 * tml_profile_mark()), records the running count.  At exit it writes one
 * line per marker hit to the file `out`:
 *
 *     <running instruction count>
 *
 * and a last line "total <count>".  Differences between consecutive lines
 * are the instructions executed between two markers.
 *
 * Usage: qemu-system-arm ... -plugin insn_count.so,mark=0x1234,out=counts.txt
 * Single vCPU only (the Cortex-M machines have one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tml_qemu_plugin.h"

TML_QEMU_EXPORT int qemu_plugin_version = TML_QEMU_PLUGIN_API_VERSION;

static uint64_t tml_count;
static uint64_t tml_mark_addr;
static uint64_t *tml_hits;
static size_t tml_n_hits;
static size_t tml_cap_hits;
static char tml_out_path[4096];
static int tml_written;

static void tml_on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (tml_n_hits == tml_cap_hits) {
        size_t cap = tml_cap_hits ? 2 * tml_cap_hits : 1024;
        uint64_t *grown = realloc(tml_hits, cap * sizeof *grown);
        if (grown == NULL) {
            qemu_plugin_outs("insn_count: out of memory\n");
            return;
        }
        tml_hits = grown;
        tml_cap_hits = cap;
    }
    tml_hits[tml_n_hits++] = tml_count;
}

static void tml_on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &tml_count, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == tml_mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, tml_on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void tml_write(void)
{
    FILE *f;
    if (tml_written) {
        return;
    }
    tml_written = 1;
    f = fopen(tml_out_path, "w");
    if (f == NULL) {
        qemu_plugin_outs("insn_count: cannot write the output file\n");
        return;
    }
    for (size_t i = 0; i < tml_n_hits; i++) {
        fprintf(f, "%llu\n", (unsigned long long)tml_hits[i]);
    }
    fprintf(f, "total %llu\n", (unsigned long long)tml_count);
    fclose(f);
}

static void tml_on_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    tml_write();
}

TML_QEMU_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    int have_out = 0;
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "mark=", 5) == 0) {
            tml_mark_addr = strtoull(arg + 5, NULL, 0) & ~(uint64_t)1; /* drop the Thumb bit */
        } else if (strncmp(arg, "out=", 4) == 0 && strlen(arg + 4) < sizeof tml_out_path) {
            strcpy(tml_out_path, arg + 4);
            have_out = 1;
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (expected mark=ADDR, out=FILE)\n", arg);
            return -1;
        }
    }
    if (!have_out) {
        fprintf(stderr, "insn_count: missing out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tml_on_translate);
    qemu_plugin_register_atexit_cb(id, tml_on_exit, NULL);
    /* Semihosting's SYS_EXIT ends QEMU with exit(); make sure the counts
     * are written even if the plugin's atexit callback does not run. */
    atexit(tml_write);
    return 0;
}
