/*
 * tinyml instruction counter and cycle model: a QEMU TCG plugin (API
 * version 1, QEMU 7.2).
 *
 * Counts every guest instruction executed and estimates the cycles a
 * Cortex-M core would take for them, at zero wait states unless told
 * otherwise.  Each time the instruction at address `mark` executes (the
 * entry of the firmware's tml_profile_mark()) it records the running
 * counts.  At exit it writes to the file `out` one line per marker hit:
 *
 *     <running instruction count> <running estimated cycles>
 *
 * then "total <instructions> <cycles>", "taken <branches> <cycles>" (taken
 * branches and their pipeline refills), "waits <cycles>" (flash wait
 * states), and one line per instruction class that executed:
 *
 *     class <name> <instructions> <cycles>
 *
 * Class "unknown" counts instructions the decode table does not know; they
 * are charged one cycle each, and the first of them are listed as
 * "unknown <address> <encoding>" (translated, whether executed or not).
 *
 * Arguments: mark=ADDR, out=FILE, core=m0|m0plus|m3|m4|m33|m7|m55 (default
 * m4), flash=LO:HI and ws=N (N wait states on instruction fetches and data
 * loads from [LO, HI); default 0: zero wait states).
 *
 * How the model works.  At translation time every instruction of a
 * translation block (TB) is decoded once: `decode_table` (one table for the
 * Thumb/Thumb-2 encodings of Armv6-M to Armv8.1-M) gives its class, and the
 * core's column of `cost_table` (from the instruction timing tables of Arm's
 * Technical Reference Manuals; the M7 and M55 columns are approximations,
 * documented above the table) gives its cycles.  The TB's cycles are
 * summed then; at run time a callback on TB entry adds them.  A branch
 * always ends a TB, so whether it was taken is known when the next TB
 * starts: if that TB does not start at the branch's fall-through address,
 * the branch's `taken` cycles (the pipeline refill) are added.  A TB also
 * ends where QEMU stops translating (a 1 KiB page end, its size limit), which
 * is not where the core's pipeline does: on TB entry its first instruction is
 * costed again after the last instruction that ran (load pipelining, the
 * address stall, dual issue), so that estimates do not depend on code placement.
 *
 * Single vCPU only (the Cortex-M machines have one).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tml_qemu_plugin.h"

TML_QEMU_EXPORT int qemu_plugin_version = TML_QEMU_PLUGIN_API_VERSION;

/* ------------------------------------------------------------------ classes */

enum tml_class {
    C_ALU,        /* data processing, moves, shifts, compares, extends, bit fields, saturation */
    C_IT,         /* IT */
    C_NOP,        /* NOP and other hints */
    C_BRANCH,     /* B, B<cond>, CBZ, CBNZ, WLS: 1 cycle, + taken when taken */
    C_BL,         /* BL */
    C_BX,         /* BX, BLX, MOV PC / ADD PC */
    C_TB,         /* TBB, TBH */
    C_LOAD,       /* LDR, LDRB, LDRH, LDRSB, LDRSH, LDREX */
    C_STORE,      /* STR, STRB, STRH with a register offset */
    C_STORE_IMM,  /* STR, STRB, STRH with an immediate offset, STREX */
    C_LOAD_PC,    /* LDR PC, [...] */
    C_LDRD,       /* LDRD */
    C_STRD,       /* STRD */
    C_LDM,        /* LDM, POP (N registers) */
    C_STM,        /* STM, PUSH (N registers) */
    C_LDM_PC,     /* LDM, POP that load the PC */
    C_MUL,        /* MUL, MULS */
    C_MLA,        /* MLA, MLS */
    C_MULL,       /* SMULL, UMULL */
    C_MLAL,       /* SMLAL, UMLAL, UMAAL */
    C_DSP_MUL,    /* SMLAD, SMUAD, SMLA<x><y>, SMLAW, SMLSD, SMMLA, SMMUL, USADA8, ... */
    C_DSP_MULL,   /* SMLALD, SMLSLD, SMLAL<x><y> */
    C_DSP,        /* SIMD add/subtract, QADD, SEL, REV, CLZ, ... */
    C_DIV,        /* SDIV, UDIV */
    C_BARRIER,    /* DMB, DSB, ISB, CLREX */
    C_SYS,        /* MRS, MSR, CPS */
    C_TRAP,       /* SVC, BKPT, UDF */
    C_FP,         /* VFP arithmetic and moves */
    C_FP_DIV,     /* VDIV, VSQRT */
    C_FP_MEM,     /* VLDR, VSTR, VLDM, VSTM, VPUSH, VPOP */
    C_VEC,        /* MVE arithmetic, multiply-accumulate, predication */
    C_VEC_MEM,    /* MVE loads and stores, 64-bit moves */
    C_LOB,        /* DLS, DLSTP */
    C_LE,         /* LE, LETP */
    C_UNKNOWN,
    C_COUNT
};

static const char *const tml_class_names[C_COUNT] = {
    "alu", "it", "nop", "branch", "bl", "bx", "tbb", "load", "store", "store_imm", "load_pc", "ldrd", "strd",
    "ldm", "stm", "ldm_pc", "mul", "mla", "mull", "mlal", "dsp_mul", "dsp_mull", "dsp", "div",
    "barrier", "sys", "trap", "fp", "fp_div", "fp_mem", "vec", "vec_mem", "lob", "le", "unknown",
};

/* ------------------------------------------------------------ decode table */

/* One Thumb instruction: a 16-bit one as its halfword in the low 16 bits
 * (size 2), a 32-bit one as (first halfword << 16) | second (size 4).  The
 * first row whose (insn & mask) == match, for the same size, gives the
 * class; more specific rows come first. */
struct tml_rule {
    unsigned char size;
    uint32_t mask;
    uint32_t match;
    unsigned char cls;
};

static const struct tml_rule decode_table[] = {
    /* ---- 16-bit (ARMv7-M ARM A5.2) ---- */
    {2, 0xFF87, 0x4700, C_BX},        /* BX Rm */
    {2, 0xFF87, 0x4780, C_BX},        /* BLX Rm */
    {2, 0xFC00, 0x4400, C_ALU},       /* ADD/CMP/MOV high registers (to PC: see tml_decode) */
    {2, 0xFFC0, 0x4340, C_MUL},       /* MULS */
    {2, 0xC000, 0x0000, C_ALU},       /* shift (immediate), add, subtract, move, compare */
    {2, 0xFC00, 0x4000, C_ALU},       /* data processing (register) */
    {2, 0xF800, 0x4800, C_LOAD},      /* LDR (literal) */
    {2, 0xFE00, 0x5000, C_STORE},     /* STR (register) */
    {2, 0xFE00, 0x5200, C_STORE},     /* STRH (register) */
    {2, 0xFE00, 0x5400, C_STORE},     /* STRB (register) */
    {2, 0xF000, 0x5000, C_LOAD},      /* LDRSB, LDR, LDRH, LDRB, LDRSH (register) */
    {2, 0xE800, 0x6000, C_STORE},     /* STR, STRB (immediate) */
    {2, 0xE800, 0x6800, C_LOAD},      /* LDR, LDRB (immediate) */
    {2, 0xF800, 0x8000, C_STORE},     /* STRH (immediate) */
    {2, 0xF800, 0x8800, C_LOAD},      /* LDRH (immediate) */
    {2, 0xF800, 0x9000, C_STORE},     /* STR (SP relative) */
    {2, 0xF800, 0x9800, C_LOAD},      /* LDR (SP relative) */
    {2, 0xF000, 0xA000, C_ALU},       /* ADR, ADD (SP plus immediate) */
    {2, 0xFF00, 0xB000, C_ALU},       /* ADD, SUB SP, #imm */
    {2, 0xF500, 0xB100, C_BRANCH},    /* CBZ, CBNZ */
    {2, 0xFF00, 0xB200, C_ALU},       /* SXTH, SXTB, UXTH, UXTB */
    {2, 0xFE00, 0xB400, C_STM},       /* PUSH */
    {2, 0xFFE8, 0xB660, C_SYS},       /* CPS */
    {2, 0xFF00, 0xBA00, C_ALU},       /* REV, REV16, REVSH */
    {2, 0xFE00, 0xBC00, C_LDM},       /* POP (with PC: see tml_decode) */
    {2, 0xFF00, 0xBE00, C_TRAP},      /* BKPT */
    {2, 0xFF0F, 0xBF00, C_NOP},       /* NOP, YIELD, WFE, WFI, SEV */
    {2, 0xFF00, 0xBF00, C_IT},        /* IT */
    {2, 0xF800, 0xC000, C_STM},       /* STM */
    {2, 0xF800, 0xC800, C_LDM},       /* LDM */
    {2, 0xFF00, 0xDE00, C_TRAP},      /* UDF */
    {2, 0xFF00, 0xDF00, C_TRAP},      /* SVC */
    {2, 0xF000, 0xD000, C_BRANCH},    /* B<cond> */
    {2, 0xF800, 0xE000, C_BRANCH},    /* B */

    /* ---- 32-bit (ARMv7-M ARM A5.3, Armv8.1-M additions) ---- */
    /* load/store multiple */
    {4, 0xFE500000, 0xE8100000, C_LDM},      /* LDM, POP.W (with PC: see tml_decode) */
    {4, 0xFE500000, 0xE8000000, C_STM},      /* STM, PUSH.W */
    /* load/store dual or exclusive, table branch */
    {4, 0xFFF0FFE0, 0xE8D0F000, C_TB},       /* TBB, TBH */
    {4, 0xFFF00000, 0xE8500000, C_LOAD},     /* LDREX */
    {4, 0xFFF00000, 0xE8400000, C_STORE},    /* STREX */
    {4, 0xFFF00000, 0xE8D00000, C_LOAD},     /* LDREXB, LDREXH */
    {4, 0xFFF00000, 0xE8C00000, C_STORE},    /* STREXB, STREXH */
    {4, 0xFE500000, 0xE8500000, C_LDRD},     /* LDRD */
    {4, 0xFE500000, 0xE8400000, C_STRD},     /* STRD */
    /* data processing (shifted register) */
    {4, 0xFE000000, 0xEA000000, C_ALU},
    /* floating point (coprocessors 10, 11) and MVE */
    {4, 0xFFB00E50, 0xEE800A00, C_FP_DIV},   /* VDIV */
    {4, 0xFFBF0ED0, 0xEEB10AC0, C_FP_DIV},   /* VSQRT */
    {4, 0xEE000E00, 0xEC000A00, C_FP_MEM},   /* VLDR, VSTR, VLDM, VSTM, VPUSH, VPOP, VMOV (two registers) */
    {4, 0xEE000000, 0xEC000000, C_VEC_MEM},  /* MVE VLDR, VSTR, gather/scatter, VMOV (two lanes) */
    {4, 0xEF000E00, 0xEE000A00, C_FP},       /* VFP data processing, VMOV, VMRS */
    {4, 0xEC000000, 0xEC000000, C_VEC},      /* MVE data processing (0xEE, 0xEF, 0xFE, 0xFF) */
    /* Armv8.1-M low-overhead loops and VCTP (in the BLX immediate space) */
    {4, 0xFFCFF001, 0xF00FC001, C_LE},       /* LE, LETP */
    {4, 0xFF80F001, 0xF000C001, C_BRANCH},   /* WLS, WLSTP */
    {4, 0xFF80FFFF, 0xF000E001, C_LOB},      /* DLS, DLSTP */
    {4, 0xFFC0FFFF, 0xF000E801, C_VEC},      /* VCTP */
    /* branches and miscellaneous control */
    {4, 0xF800D000, 0xF000D000, C_BL},       /* BL */
    {4, 0xF800D000, 0xF0009000, C_BRANCH},   /* B.W */
    {4, 0xFFFFFF00, 0xF3BF8F00, C_BARRIER},  /* CLREX, DSB, DMB, ISB */
    {4, 0xFFFFFF00, 0xF3AF8000, C_NOP},      /* NOP.W and hints */
    {4, 0xFFE0D000, 0xF3808000, C_SYS},      /* MSR */
    {4, 0xFFE0D000, 0xF3E08000, C_SYS},      /* MRS */
    {4, 0xFFF0F000, 0xF7F0A000, C_TRAP},     /* UDF.W */
    {4, 0xF800D000, 0xF0008000, C_BRANCH},   /* B<cond>.W */
    /* data processing (modified immediate, plain binary immediate) */
    {4, 0xF8008000, 0xF0000000, C_ALU},
    /* load and store single */
    {4, 0xFF100000, 0xF8000000, C_STORE},    /* STR, STRB, STRH */
    {4, 0xFE100000, 0xF8100000, C_LOAD},     /* LDR, LDRB, LDRH, LDRSB, LDRSH, PLD (see tml_decode) */
    /* data processing (register) */
    {4, 0xFF80F080, 0xFA80F000, C_DSP},      /* parallel add/subtract (SADD16, QADD8, ...) */
    {4, 0xFFC0F0C0, 0xFA80F080, C_DSP},      /* QADD, QSUB, REV, RBIT, SEL, CLZ */
    {4, 0xFF000000, 0xFA000000, C_ALU},      /* shifts by register, (S|U)XT(A)(B|H|B16) */
    /* multiply, multiply accumulate, absolute difference */
    {4, 0xFFF0F0F0, 0xFB00F000, C_MUL},      /* MUL */
    {4, 0xFFF000E0, 0xFB000000, C_MLA},      /* MLA, MLS */
    {4, 0xFF800000, 0xFB000000, C_DSP_MUL},  /* SMLA<x><y>, SMLAD, SMUAD, SMLAW, SMLSD, SMMLA, USADA8, ... */
    /* long multiply, long multiply accumulate, divide */
    {4, 0xFFF000F0, 0xFB9000F0, C_DIV},      /* SDIV */
    {4, 0xFFF000F0, 0xFBB000F0, C_DIV},      /* UDIV */
    {4, 0xFFF000F0, 0xFB800000, C_MULL},     /* SMULL */
    {4, 0xFFF000F0, 0xFBA00000, C_MULL},     /* UMULL */
    {4, 0xFFF000F0, 0xFBC00000, C_MLAL},     /* SMLAL */
    {4, 0xFFF000F0, 0xFBE00000, C_MLAL},     /* UMLAL */
    {4, 0xFFF000F0, 0xFBE00060, C_MLAL},     /* UMAAL */
    {4, 0xFF800000, 0xFB800000, C_DSP_MULL}, /* SMLAL<x><y>, SMLALD, SMLSLD */
};

/* ------------------------------------------------- the cycles of each class, per core */

/* Cycles of one instruction of a class: `base`, plus `per_reg` for each
 * register of a register list, plus `taken` when a branch is taken (the
 * pipeline refill P), or `pipelined` instead of `base` for a single load or
 * store that pipelines with the load or store before it (0: never).
 * For MVE instructions (M55) `pipelined` is the cost when the vector
 * instruction before it was of the other kind (memory or arithmetic).
 * `dual`: may issue in the same cycle as the instruction before it (M7). */
struct tml_cost {
    unsigned char base, per_reg, taken, pipelined, dual;
};

enum { K_M0, K_M0PLUS, K_M3, K_M4, K_M33, K_M7, K_M55, K_COUNT };
static const char *const tml_core_names[K_COUNT] = {"m0", "m0plus", "m3", "m4", "m33", "m7", "m55"};

/* Where each core's column comes from.
 *
 * Cortex-M0 (TRM, instruction set summary; the single-cycle multiplier):
 * B<cond> 1 (not taken) or 3, B 3, BL 4, BX/BLX/MOV PC 3, LDR/STR 2,
 * LDM/STM/PUSH/POP 1+N, POP {...,PC} 4+N, MRS/MSR/DMB/DSB/ISB 4.
 * Armv6-M has no 32-bit data processing, divide or DSP: those rows are
 * never used.
 *
 * Cortex-M0+ (TRM, instruction set summary): the two-stage pipeline
 * refills in one cycle.  B<cond> 1 or 2, B 2, BL 3, BX/BLX/MOV PC 2,
 * LDR/STR 2, LDM/STM/PUSH/POP 1+N, POP {...,PC} 3+N, MRS/MSR/barriers 3.
 *
 * Cortex-M3 (TRM r2p1, table 3-1), with P, the pipeline refill the TRM
 * gives as 1 to 3 cycles, taken as 2.  MOV/ADD to PC, B, BL, BX 1+P;
 * LDR/STR 2, or 1 when pipelined with the load or store before it
 * (neighbouring single loads and stores pipeline their address and data
 * phases; a load does not pipeline into one whose address uses the loaded
 * register); STR with an immediate offset always 1 (its data phase overlaps
 * the next instruction); a load or store whose address uses the result of
 * the data-processing instruction just before it stalls 1 more cycle (no
 * forwarding path to address generation: tml_core_agu_stall); LDR PC 2+P;
 * LDRD/STRD 1+2; LDM/STM 1+N, with PC 1+N+P; TBB/TBH 2 (load) + 1 (add) + P.
 * MUL 1, MLA/MLS 2.  The TRM gives ranges that depend on the operands'
 * values, which the plugin cannot see at translation time: it takes the
 * upper bound, SMULL/UMULL 5 (3 to 5), SMLAL/UMLAL 7 (4 to 7), SDIV/UDIV 12
 * (2 to 12).  IT 1 (not folded), barriers 1 (B, the barrier's wait, taken
 * as 0), MRS/MSR 1.
 *
 * Cortex-M4 (TRM r0p1, table 3-1): as the M3, except that every multiply,
 * including MLA/MLS, the 64-bit SMULL/UMULL/SMLAL/UMLAL/UMAAL and the DSP
 * multiplies (SMLAD, SMUAD, SMLALD, ...), takes 1 cycle, and the DSP
 * extension's SIMD and saturating instructions 1.  SDIV/UDIV 2 to 12: 12.
 * FPU: VADD/VMUL/VMOV 1 (VMLA's 3 are not modelled), VDIV/VSQRT 14,
 * VLDR/VSTR 2 (VLDM/VPUSH's 1+N taken as 2).
 *
 * Cortex-M33 (Armv8-M Mainline): its TRM gives no per-instruction table;
 * it takes the M4's timings for the instructions both have.
 *
 * Cortex-M7 (approximation; its TRM gives no per-instruction table).  A
 * six-stage, dual-issue pipeline with a branch predictor and a 64-bit
 * load path: every instruction takes 1 cycle (loads and stores pipelined,
 * LDRD/STRD 1, LDM/STM 1+N, divide 12), and an instruction with `dual` set
 * issues together with the one before it in the same cycle (costs 0) when
 * that one has `dual` set too and did not itself pair, the two are not both
 * loads/stores nor both multiplies, and none of the second's register
 * fields names a register the first writes (a data-processing result or a
 * loaded register).  Load-use and multiply latencies are not modelled.
 * Predicted taken branches: refill 1.
 *
 * Cortex-M55 (approximation).  Scalar instructions as the M4.  MVE: the
 * M55 executes a 128-bit vector instruction in 4 beats, 2 per cycle, so 2
 * cycles; consecutive vector instructions of different kinds (a load or
 * store, then arithmetic, or the reverse) overlap by 1 cycle, so such a
 * vector instruction costs 1 (`pipelined`).  Low-overhead loops: DLS/WLS
 * 1; LE/LETP 0 and no refill (the loop is cached after the first pass). */
/* Shorthands for the cells: X(cycles); BR(cycles, taken); LS(cycles,
 * pipelined); LM(taken): 1+N, plus taken when it loads the PC; D1: 1 cycle,
 * may pair (M7). */
#define X(b) {b, 0, 0, 0, 0}
#define BR(b, t) {b, 0, t, 0, 0}
#define LS(b, p) {b, 0, 0, p, 0}
#define LM(t) {1, 1, t, 0, 0}
#define D1 {1, 0, 0, 0, 1}
static const struct {
    unsigned char cls;
    struct tml_cost core[K_COUNT];
} cost_table[] = {
    /* class          M0        M0+       M3        M4        M33       M7        M55 */
    {C_ALU,        {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_IT,         {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_NOP,        {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_BRANCH,     {BR(1, 2), BR(1, 1), BR(1, 2), BR(1, 2), BR(1, 2), BR(1, 1), BR(1, 2)}},
    {C_BL,         {BR(2, 2), BR(2, 1), BR(1, 2), BR(1, 2), BR(1, 2), BR(1, 1), BR(1, 2)}},
    {C_BX,         {BR(1, 2), BR(1, 1), BR(1, 2), BR(1, 2), BR(1, 2), BR(1, 1), BR(1, 2)}},
    {C_TB,         {BR(3, 2), BR(3, 1), BR(3, 2), BR(3, 2), BR(3, 2), BR(3, 1), BR(3, 2)}},
    {C_LOAD,       {X(2),     X(2),     LS(2, 1), LS(2, 1), LS(2, 1), D1,       LS(2, 1)}},
    {C_STORE,      {X(2),     X(2),     LS(2, 1), LS(2, 1), LS(2, 1), D1,       LS(2, 1)}},
    {C_STORE_IMM,  {X(2),     X(2),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_LOAD_PC,    {BR(2, 2), BR(2, 1), BR(2, 2), BR(2, 2), BR(2, 2), BR(2, 1), BR(2, 2)}},
    {C_LDRD,       {X(3),     X(3),     X(3),     X(3),     X(3),     X(1),     X(3)}},
    {C_STRD,       {X(3),     X(3),     X(3),     X(3),     X(3),     X(1),     X(3)}},
    {C_LDM,        {LM(0),    LM(0),    LM(0),    LM(0),    LM(0),    LM(0),    LM(0)}},
    {C_STM,        {LM(0),    LM(0),    LM(0),    LM(0),    LM(0),    LM(0),    LM(0)}},
    {C_LDM_PC,     {LM(3),    LM(2),    LM(2),    LM(2),    LM(2),    LM(1),    LM(2)}},
    {C_MUL,        {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_MLA,        {X(2),     X(2),     X(2),     X(1),     X(1),     D1,       X(1)}},
    {C_MULL,       {X(5),     X(5),     X(5),     X(1),     X(1),     D1,       X(1)}},
    {C_MLAL,       {X(7),     X(7),     X(7),     X(1),     X(1),     D1,       X(1)}},
    {C_DSP_MUL,    {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_DSP_MULL,   {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_DSP,        {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_DIV,        {X(12),    X(12),    X(12),    X(12),    X(12),    X(12),    X(12)}},
    {C_BARRIER,    {X(4),     X(3),     X(1),     X(1),     X(1),     X(1),     X(1)}},
    {C_SYS,        {X(4),     X(3),     X(1),     X(1),     X(1),     X(1),     X(1)}},
    {C_TRAP,       {X(1),     X(1),     X(1),     X(1),     X(1),     X(1),     X(1)}},
    {C_FP,         {X(1),     X(1),     X(1),     X(1),     X(1),     D1,       X(1)}},
    {C_FP_DIV,     {X(14),    X(14),    X(14),    X(14),    X(14),    X(14),    X(14)}},
    {C_FP_MEM,     {X(2),     X(2),     X(2),     X(2),     X(2),     D1,       X(2)}},
    {C_VEC,        {X(1),     X(1),     X(1),     X(1),     X(1),     X(1),     LS(2, 1)}},
    {C_VEC_MEM,    {X(2),     X(2),     X(2),     X(2),     X(2),     X(1),     LS(2, 1)}},
    {C_LOB,        {X(1),     X(1),     X(1),     X(1),     X(1),     X(1),     X(1)}},
    {C_LE,         {BR(1, 2), BR(1, 1), BR(1, 2), BR(1, 2), BR(1, 2), BR(1, 1), X(0)}},
    {C_UNKNOWN,    {X(1),     X(1),     X(1),     X(1),     X(1),     X(1),     X(1)}},
};
#undef X
#undef BR
#undef LS
#undef LM
#undef D1

/* Extra cycles of a load or store whose address register the data-processing
 * instruction just before it wrote (M3/M4 TRM; the M33 and M55's scalar side
 * as the M4). */
static const unsigned char tml_core_agu_stall[K_COUNT] = {0, 0, 1, 1, 1, 0, 1};

/* ------------------------------------------------------------------ state */

struct tml_insn {
    unsigned char cls;
    unsigned char nregs;   /* registers of a register list */
    signed char rt;        /* register a single load writes (-1: none) */
    signed char rn, rm;    /* address registers of a load or store (-1: none) */
    signed char wr1, wr2;  /* registers a data-processing instruction writes (-1: none) */
    uint16_t reads;        /* registers it may read: every register field, so a superset */
};

/* What the run-time needs of one translated block. */
struct tml_tb {
    uint64_t fallthrough;  /* address after the block's last instruction */
    uint64_t start;
    uint32_t cycles;       /* the block's cycles with every branch not taken, its first instruction
                            * costed as if nothing ran before it */
    uint32_t taken;        /* extra cycles when its last instruction branches */
    struct tml_insn first, last;  /* the block's first and last instructions */
    uint32_t first_cycles;        /* the first one's cycles in `cycles` */
    int last_paired;              /* the last one issued with the one before it (dual issue) */
};

static struct tml_cost tml_costs[C_COUNT];  /* the chosen core's column of cost_table */
static unsigned tml_agu_stall;
static uint64_t tml_count;    /* instructions */
static uint64_t tml_cycles;   /* estimated cycles */
static uint64_t tml_taken_n, tml_taken_cycles, tml_wait_cycles;
static uint64_t tml_class_n[C_COUNT], tml_class_cycles[C_COUNT];
static uint64_t tml_flash_lo, tml_flash_hi;
static unsigned tml_ws;
static const struct tml_tb *tml_prev;
static uint64_t tml_mark_addr;
struct tml_hit {
    uint64_t count, cycles;
};
static struct tml_hit *tml_hits;
static size_t tml_n_hits;
static size_t tml_cap_hits;
static char tml_out_path[4096];
static int tml_written;
/* The first distinct encodings of class unknown, for the report. */
#define TML_MAX_UNKNOWN 16
static uint32_t tml_unknown[TML_MAX_UNKNOWN];
static uint64_t tml_unknown_addr[TML_MAX_UNKNOWN];
static size_t tml_n_unknown;

/* ------------------------------------------------------------------ decode */



static int tml_popcount(uint32_t v)
{
    int n = 0;
    for (; v; v &= v - 1) {
        n++;
    }
    return n;
}

static int tml_is_data_processing(unsigned cls)
{
    return cls == C_ALU || cls == C_DSP || cls == C_MUL || cls == C_MLA || cls == C_MULL || cls == C_MLAL
           || cls == C_DSP_MUL || cls == C_DSP_MULL || cls == C_DIV;
}

/* The registers a 16-bit data-processing instruction writes. */
static void tml_dest16(uint32_t insn, struct tml_insn *d)
{
    if (insn < 0x2000 || (insn & 0xFF00) == 0xB200 || (insn & 0xFF00) == 0xBA00) {
        d->wr1 = (signed char)(insn & 7);              /* shifts, ADD/SUB (3 bits), extends, REV */
    } else if (insn < 0x4000) {
        if ((insn & 0x1800) != 0x0800) {               /* MOV, ADD, SUB #imm8 (not CMP) */
            d->wr1 = (signed char)((insn >> 8) & 7);
        }
    } else if (insn < 0x4400) {
        unsigned op = (insn >> 6) & 15;                /* not TST, CMP, CMN */
        if (op != 8 && op != 10 && op != 11) {
            d->wr1 = (signed char)(insn & 7);
        }
    } else if (insn < 0x4700) {
        if ((insn & 0x0300) != 0x0100) {               /* ADD, MOV (high registers; not CMP) */
            d->wr1 = (signed char)(((insn >> 4) & 8) | (insn & 7));
        }
    } else if ((insn & 0xF000) == 0xA000) {
        d->wr1 = (signed char)((insn >> 8) & 7);       /* ADR, ADD Rd, SP, #imm */
    } else if ((insn & 0xFF00) == 0xB000) {
        d->wr1 = 13;                                   /* ADD/SUB SP, SP, #imm */
    }
}

#define R(n) ((uint16_t)(1u << ((n) & 15)))

/* The registers an instruction may read (for the M7's pairing rule): exact
 * for the common forms, every register field otherwise. */
static uint16_t tml_reads(uint32_t insn, size_t size)
{
    if (size == 2) {
        uint32_t lo = insn & 7, mid = (insn >> 3) & 7, hi = (insn >> 6) & 7, top = (insn >> 8) & 7;
        if (insn < 0x1800 || (insn & 0xFF00) == 0xB200 || (insn & 0xFF00) == 0xBA00) {
            return R(mid);                                  /* shift #imm, extend, REV */
        }
        if ((insn & 0xFF00) == 0xB000) {
            return R(13);                                   /* ADD/SUB SP, SP, #imm */
        }
        if (insn < 0x1C00) {
            return R(mid) | R(hi);                          /* ADD/SUB registers */
        }
        if (insn < 0x2000) {
            return R(mid);                                  /* ADD/SUB #imm3 */
        }
        if (insn < 0x4000) {
            return (insn & 0x1800) == 0 ? 0 : R(top);       /* MOV #imm8 reads nothing */
        }
        if (insn < 0x4400) {
            return R(lo) | R(mid);                          /* data processing (register) */
        }
        if (insn < 0x4700) {
            return R(((insn >> 4) & 8) | lo) | R((insn >> 3) & 15);
        }
        if ((insn & 0xF000) == 0x5000) {
            return R(lo) | R(mid) | R(hi);                  /* load/store register offset */
        }
        if (insn >= 0x6000 && insn < 0x9000) {
            return R(lo) | R(mid);                          /* load/store immediate offset */
        }
        if ((insn & 0xF000) == 0x9000) {
            return R(top) | R(13);
        }
        return R(lo) | R(mid) | R(hi) | R(top) | R(((insn >> 4) & 8) | lo);
    } else {
        uint32_t hw1 = insn >> 16, hw2 = insn & 0xFFFF;
        uint16_t rn = R(hw1), rm = R(hw2), rt = R(hw2 >> 12), rd = R(hw2 >> 8);
        if ((hw1 & 0xF800) == 0xF000 && !(hw2 & 0x8000)) {
            if ((hw1 & 0xFBF0) == 0xF240) {
                return 0;                                   /* MOVW */
            }
            return (hw1 & 0xFBF0) == 0xF2C0 ? rd : rn;      /* MOVT reads its Rd; immediate forms Rn */
        }
        if ((hw1 & 0xFE00) == 0xEA00 || (hw1 & 0xFF00) == 0xFA00) {
            return rn | rm;                                 /* shifted register, register */
        }
        if ((hw1 & 0xFF00) == 0xFB00) {
            return rn | rm | rt | rd;                       /* multiplies: Ra, RdLo/RdHi accumulate */
        }
        if ((hw1 & 0xFE00) == 0xF800) {
            return rn | ((hw1 & 0x0010) ? 0 : rt) | ((hw2 & 0x0FC0) == 0 ? rm : 0);  /* load/store single */
        }
        return rn | rm | rt | rd;
    }
}

#undef R

static struct tml_insn tml_decode(uint32_t insn, size_t size)
{
    struct tml_insn d = {C_UNKNOWN, 0, -1, -1, -1, -1, -1, 0};
    for (size_t i = 0; i < sizeof decode_table / sizeof decode_table[0]; i++) {
        const struct tml_rule *r = &decode_table[i];
        if (r->size == size && (insn & r->mask) == r->match) {
            d.cls = r->cls;
            break;
        }
    }
    if (size == 2) {
        switch (d.cls) {
        case C_ALU:
            /* ADD/MOV to PC (0100 01 op D Rm Rdn with Rd = PC, op not CMP) */
            if ((insn & 0xFC00) == 0x4400 && (insn & 0x0300) != 0x0100 && (((insn >> 4) & 8) | (insn & 7)) == 15) {
                d.cls = C_BX;
            }
            break;
        case C_LDM:
            d.nregs = (unsigned char)tml_popcount(insn & 0xFF);
            d.rn = (insn & 0xF000) == 0xB000 ? 13 : (signed char)((insn >> 8) & 7);
            if ((insn & 0xFE00) == 0xBC00 && (insn & 0x100)) {
                d.nregs++;
                d.cls = C_LDM_PC;
            }
            break;
        case C_STM:
            d.nregs = (unsigned char)(tml_popcount(insn & 0xFF) + ((insn & 0xFE00) == 0xB400 && (insn & 0x100)));
            d.rn = (insn & 0xF000) == 0xB000 ? 13 : (signed char)((insn >> 8) & 7);
            break;
        case C_LOAD:
        case C_STORE:
            if ((insn & 0xF800) == 0x4800) {            /* LDR literal */
                d.rt = (signed char)((insn >> 8) & 7);
                d.rn = 15;
            } else if ((insn & 0xF000) == 0x9000) {     /* SP relative */
                d.rt = (signed char)((insn >> 8) & 7);
                d.rn = 13;
            } else if ((insn & 0xF000) == 0x5000) {     /* register offset */
                d.rt = (signed char)(insn & 7);
                d.rn = (signed char)((insn >> 3) & 7);
                d.rm = (signed char)((insn >> 6) & 7);
            } else {                                    /* immediate offset */
                d.rt = (signed char)(insn & 7);
                d.rn = (signed char)((insn >> 3) & 7);
            }
            break;
        default:
            break;
        }
        if (tml_is_data_processing(d.cls)) {
            tml_dest16(insn, &d);
        }
    } else {
        uint32_t hw1 = insn >> 16, hw2 = insn & 0xFFFF;
        switch (d.cls) {
        case C_LDM:
            d.nregs = (unsigned char)tml_popcount(hw2);
            d.rn = (signed char)(hw1 & 15);
            if (hw2 & 0x8000) {
                d.cls = C_LDM_PC;
            }
            break;
        case C_STM:
            d.nregs = (unsigned char)tml_popcount(hw2);
            d.rn = (signed char)(hw1 & 15);
            break;
        case C_LDRD:
        case C_STRD:
        case C_TB:
            d.rn = (signed char)(hw1 & 15);
            break;
        case C_LOAD:
        case C_STORE:
            d.rn = (signed char)(hw1 & 15);
            d.rt = (signed char)(hw2 >> 12);
            if ((hw1 & 0xFE80) == 0xF800 && (hw1 & 15) != 15 && (hw2 & 0x0FC0) == 0) {
                d.rm = (signed char)(hw2 & 15);   /* register offset */
            }
            if (d.cls == C_LOAD && d.rt == 15) {
                /* LDR PC is a branch; LDRB/LDRH/LDRSB/LDRSH to PC are PLD/PLI hints */
                d.cls = ((hw1 & 0xFE60) == 0xF840 || (hw1 & 0xFFF0) == 0xF8D0 || (hw1 & 0xFF7F) == 0xF85F)
                            ? C_LOAD_PC : C_NOP;
            }
            break;
        default:
            break;
        }
        if (tml_is_data_processing(d.cls)) {
            if (d.cls == C_MULL || d.cls == C_MLAL || d.cls == C_DSP_MULL) {
                d.wr1 = (signed char)(hw2 >> 12);      /* RdLo, RdHi */
                d.wr2 = (signed char)((hw2 >> 8) & 15);
            } else if (((hw2 >> 8) & 15) != 15) {      /* Rd (15: TST, TEQ, CMP, CMN) */
                d.wr1 = (signed char)((hw2 >> 8) & 15);
            }
        }
    }
    d.reads = tml_reads(insn, size);
    if (d.cls == C_STORE && d.rm < 0) {
        d.cls = C_STORE_IMM;
    }
    if (d.cls != C_LOAD) {
        d.rt = -1;
    }
    return d;
}

static int tml_is_branch(unsigned cls)
{
    return cls == C_BRANCH || cls == C_BL || cls == C_BX || cls == C_TB || cls == C_LOAD_PC || cls == C_LDM_PC
           || cls == C_LE;
}

static int tml_is_mem(unsigned cls)
{
    return cls == C_LOAD || cls == C_STORE || cls == C_STORE_IMM || cls == C_FP_MEM;
}

/* The registers an instruction writes, as far as the model tracks them. */
static uint16_t tml_writes(const struct tml_insn *d)
{
    uint16_t m = 0;
    if (d->wr1 >= 0) {
        m |= (uint16_t)(1u << d->wr1);
    }
    if (d->wr2 >= 0) {
        m |= (uint16_t)(1u << d->wr2);
    }
    if (d->rt >= 0) {
        m |= (uint16_t)(1u << d->rt);
    }
    return m;
}

/* Instructions that read data memory. */
static int tml_reads_memory(unsigned cls)
{
    return cls == C_LOAD || cls == C_LOAD_PC || cls == C_LDRD || cls == C_LDM || cls == C_LDM_PC || cls == C_TB
           || cls == C_FP_MEM || cls == C_VEC_MEM;
}

/* Instructions that generate a memory address from core registers. */
static int tml_uses_address(unsigned cls)
{
    return cls == C_LOAD || cls == C_STORE || cls == C_STORE_IMM || cls == C_LOAD_PC || cls == C_LDRD
           || cls == C_STRD || cls == C_LDM || cls == C_STM || cls == C_LDM_PC || cls == C_TB;
}

static int tml_is_mul(unsigned cls)
{
    return cls == C_MUL || cls == C_MLA || cls == C_MULL || cls == C_MLAL || cls == C_DSP_MUL || cls == C_DSP_MULL;
}

/* Cycles of instruction d after `prev` (NULL: none known, as at the start of a
 * block before any has run): its class's base and register cost; `pipelined`
 * instead of `base` for a load or store after one it pipelines with (MVE: a
 * vector instruction after one of the other kind); the address-generation
 * stall after a data-processing instruction that wrote its address register;
 * 0 when it dual-issues with `prev` (M7; *paired says whether prev did, and is
 * set to whether d does). */
static uint32_t tml_insn_cycles(const struct tml_insn *prev, int *paired, const struct tml_insn *d)
{
    const struct tml_cost *c = &tml_costs[d->cls];
    uint32_t cycles = c->base + c->per_reg * d->nregs;
    if (c->pipelined && prev != NULL) {
        int vec = d->cls == C_VEC || d->cls == C_VEC_MEM;
        if (vec ? ((prev->cls == C_VEC || prev->cls == C_VEC_MEM) && prev->cls != d->cls)
                : ((prev->cls == C_LOAD || prev->cls == C_STORE || prev->cls == C_STORE_IMM)
                   && (prev->rt < 0 || (prev->rt != d->rn && prev->rt != d->rm)))) {
            cycles = c->pipelined;
        }
    }
    if (tml_agu_stall && prev != NULL && tml_uses_address(d->cls) && tml_is_data_processing(prev->cls)
        && ((prev->wr1 >= 0 && (prev->wr1 == d->rn || prev->wr1 == d->rm))
            || (prev->wr2 >= 0 && (prev->wr2 == d->rn || prev->wr2 == d->rm)))) {
        cycles += tml_agu_stall;
    }
    if (c->dual && prev != NULL && tml_costs[prev->cls].dual && !*paired
        && !(tml_is_mem(d->cls) && tml_is_mem(prev->cls)) && !(tml_is_mul(d->cls) && tml_is_mul(prev->cls))
        && !(tml_writes(prev) & d->reads)) {
        cycles = 0;
        *paired = 1;
    } else {
        *paired = 0;
    }
    return cycles;
}

/* ---------------------------------------------------------------- run time */

static void tml_on_tb(unsigned int vcpu_index, void *userdata)
{
    const struct tml_tb *tb = userdata;
    (void)vcpu_index;
    if (tml_prev != NULL && tml_prev->taken && tb->start != tml_prev->fallthrough) {
        tml_cycles += tml_prev->taken;
        tml_taken_n++;
        tml_taken_cycles += tml_prev->taken;
    }
    tml_cycles += tb->cycles;
    if (tml_prev != NULL) {
        /* A block starts where QEMU's translation stopped (a branch, a 1 KiB page end, a
         * block size limit), not where the core's pipeline does: the first instruction is
         * costed again after the last one that ran, and the difference applied, so that
         * an estimate does not depend on where code sits.  (M7: a pair formed here does
         * not change how the rest of the block pairs.) */
        int paired = tml_prev->last_paired;
        uint32_t again = tml_insn_cycles(&tml_prev->last, &paired, &tb->first);
        if (again != tb->first_cycles) {
            tml_cycles += (uint64_t)again - tb->first_cycles;
            tml_class_cycles[tb->first.cls] += (uint64_t)again - tb->first_cycles;
        }
    }
    tml_prev = tb;
}

static void tml_on_load(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata)
{
    (void)vcpu_index;
    (void)info;
    (void)userdata;
    if (vaddr >= tml_flash_lo && vaddr < tml_flash_hi) {
        tml_cycles += tml_ws;
        tml_wait_cycles += tml_ws;
    }
}

static void tml_on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (tml_n_hits == tml_cap_hits) {
        size_t cap = tml_cap_hits ? 2 * tml_cap_hits : 1024;
        struct tml_hit *grown = realloc(tml_hits, cap * sizeof *grown);
        if (grown == NULL) {
            qemu_plugin_outs("insn_count: out of memory\n");
            return;
        }
        tml_hits = grown;
        tml_cap_hits = cap;
    }
    tml_hits[tml_n_hits].count = tml_count;
    tml_hits[tml_n_hits].cycles = tml_cycles;
    tml_n_hits++;
}

/* ------------------------------------------------------------- translation */

static void tml_on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct tml_tb *info = calloc(1, sizeof *info);
    uint32_t class_n[C_COUNT] = {0}, class_cycles[C_COUNT] = {0};
    struct tml_insn prev = {C_UNKNOWN, 0, -1, -1, -1, -1, -1, 0};
    int prev_paired = 1;
    unsigned fetch_bytes = 0;
    (void)id;
    if (info == NULL) {
        qemu_plugin_outs("insn_count: out of memory\n");
        return;
    }
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &tml_count, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);
        /* QEMU 7.2 may append the next instruction's first halfword to the
         * data of the last instruction before a (1 KiB, M-profile) page end,
         * where it checks whether that one crosses the page: the length comes
         * from the first halfword, as the core decodes it. */
        size_t have = qemu_plugin_insn_size(insn);
        const unsigned char *bytes = qemu_plugin_insn_data(insn);
        uint32_t word = have >= 2 ? ((uint32_t)bytes[0] | (uint32_t)bytes[1] << 8) : 0;
        size_t size = (word >> 11) >= 0x1D ? 4 : 2;
        struct tml_insn d;
        const struct tml_cost *c;
        uint32_t cycles;
        if (size == 4) {
            word = have >= 4 ? (word << 16 | (uint32_t)bytes[2] | (uint32_t)bytes[3] << 8) : 0;
        }
        d = have >= size ? tml_decode(word, size) : (struct tml_insn){C_UNKNOWN, 0, -1, -1, -1, -1, -1, 0};
        if (d.cls == C_UNKNOWN) {
            size_t u = 0;
            while (u < tml_n_unknown && tml_unknown[u] != word) {
                u++;
            }
            if (u == tml_n_unknown && u < TML_MAX_UNKNOWN) {
                tml_unknown[u] = word;
                tml_unknown_addr[u] = vaddr;
                tml_n_unknown++;
            }
        }
        c = &tml_costs[d.cls];
        cycles = tml_insn_cycles(i > 0 ? &prev : NULL, &prev_paired, &d);
        class_n[d.cls]++;
        class_cycles[d.cls] += cycles;
        info->cycles += cycles;
        if (i == 0) {
            info->start = vaddr;
            info->first = d;
            info->first_cycles = cycles;
        }
        if (i + 1 == n) {
            info->last = d;
            info->last_paired = prev_paired;
            info->fallthrough = vaddr + size;
            if (tml_is_branch(d.cls)) {
                info->taken = c->taken;
            }
        }
        fetch_bytes += (unsigned)size;
        if (tml_ws && tml_reads_memory(d.cls)) {
            /* each data read from flash waits.  QEMU 7.2's read/write filter
             * passes stores for QEMU_PLUGIN_MEM_R and no loads (seen on the
             * MPS2 machines), so this asks for every access of an instruction
             * that only reads. */
            qemu_plugin_register_vcpu_mem_cb(insn, tml_on_load, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
        }
        if (vaddr == tml_mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, tml_on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        prev = d;
    }
    if (tml_ws && info->start >= tml_flash_lo && info->start < tml_flash_hi) {
        /* one 32-bit fetch per 4 bytes of code, each waiting ws cycles */
        uint32_t waits = tml_ws * ((fetch_bytes + 3) / 4);
        info->cycles += waits;
        qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &tml_wait_cycles, waits);
    }
    for (unsigned k = 0; k < C_COUNT; k++) {
        if (class_n[k]) {
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &tml_class_n[k], class_n[k]);
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &tml_class_cycles[k],
                                                     class_cycles[k]);
        }
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tml_on_tb, QEMU_PLUGIN_CB_NO_REGS, info);
}

/* ------------------------------------------------------------------ output */

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
        fprintf(f, "%llu %llu\n", (unsigned long long)tml_hits[i].count, (unsigned long long)tml_hits[i].cycles);
    }
    fprintf(f, "total %llu %llu\n", (unsigned long long)tml_count, (unsigned long long)tml_cycles);
    fprintf(f, "taken %llu %llu\n", (unsigned long long)tml_taken_n, (unsigned long long)tml_taken_cycles);
    fprintf(f, "waits %llu\n", (unsigned long long)tml_wait_cycles);
    for (unsigned k = 0; k < C_COUNT; k++) {
        if (tml_class_n[k]) {
            fprintf(f, "class %s %llu %llu\n", tml_class_names[k], (unsigned long long)tml_class_n[k],
                    (unsigned long long)tml_class_cycles[k]);
        }
    }
    for (size_t u = 0; u < tml_n_unknown; u++) {
        fprintf(f, "unknown %#llx %#x\n", (unsigned long long)tml_unknown_addr[u], tml_unknown[u]);
    }
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
    int core = K_M4;
    (void)info;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        char *end = NULL;
        if (strncmp(arg, "mark=", 5) == 0) {
            tml_mark_addr = strtoull(arg + 5, NULL, 0) & ~(uint64_t)1; /* drop the Thumb bit */
        } else if (strncmp(arg, "out=", 4) == 0 && strlen(arg + 4) < sizeof tml_out_path) {
            strcpy(tml_out_path, arg + 4);
            have_out = 1;
        } else if (strncmp(arg, "core=", 5) == 0) {
            int k = 0;
            while (k < K_COUNT && strcmp(arg + 5, tml_core_names[k]) != 0) {
                k++;
            }
            if (k == K_COUNT) {
                fprintf(stderr, "insn_count: unknown core '%s' (expected m0, m0plus, m3, m4, m33, m7 or m55)\n",
                        arg + 5);
                return -1;
            }
            core = k;
        } else if (strncmp(arg, "flash=", 6) == 0) {
            tml_flash_lo = strtoull(arg + 6, &end, 0);
            if (end == NULL || *end != ':') {
                fprintf(stderr, "insn_count: flash=LO:HI expected, got '%s'\n", arg);
                return -1;
            }
            tml_flash_hi = strtoull(end + 1, NULL, 0);
        } else if (strncmp(arg, "ws=", 3) == 0) {
            tml_ws = (unsigned)strtoul(arg + 3, NULL, 0);
            if (tml_ws > 15) {
                fprintf(stderr, "insn_count: ws=%u is more than 15 wait states\n", tml_ws);
                return -1;
            }
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s' (expected mark=ADDR, out=FILE, core=CORE, "
                            "flash=LO:HI, ws=N)\n", arg);
            return -1;
        }
    }
    if (!have_out) {
        fprintf(stderr, "insn_count: missing out=FILE\n");
        return -1;
    }
    for (size_t r = 0; r < sizeof cost_table / sizeof cost_table[0]; r++) {
        tml_costs[cost_table[r].cls] = cost_table[r].core[core];
    }
    tml_agu_stall = tml_core_agu_stall[core];
    qemu_plugin_register_vcpu_tb_trans_cb(id, tml_on_translate);
    qemu_plugin_register_atexit_cb(id, tml_on_exit, NULL);
    /* Semihosting's SYS_EXIT ends QEMU with exit(); make sure the counts
     * are written even if the plugin's atexit callback does not run. */
    atexit(tml_write);
    return 0;
}
