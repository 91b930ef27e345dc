/*
 * Profiling marker for builds with -DTML_PROFILE (make PROFILE=1).
 *
 * The generated model calls tml_profile_mark(op) after every operator (and
 * twice before the first).  The function does nothing: tinyml's QEMU plugin
 * (firmware/qemu_plugin/insn_count.c) watches its entry address and records
 * the running instruction count at every call.  It must not be inlined.
 */
#ifdef TML_PROFILE

void tml_profile_mark(int op_index) __attribute__((noinline));

void tml_profile_mark(int op_index)
{
    (void)op_index;
    __asm__ volatile("" ::: "memory");
}

#else
/* ISO C forbids an empty translation unit. */
typedef int tml_profile_unused;
#endif
