/*
 * tinyml stack high-water mark for Cortex-M (implemented in stack.c): the
 * free part of the Thread-mode stack (tml_stack_limit .. tml_stack_top in
 * linker.ld) is painted with a pattern once; the lowest word that no longer
 * holds it marks the deepest the stack has been since.
 */
#ifndef TML_STACK_H
#define TML_STACK_H

#include <stdint.h>

/* Paints the stack below the caller's frame (keeping a 64-byte margin). */
void tml_stack_paint(void);

/* Bytes of the stack used at its deepest since tml_stack_paint(). */
uint32_t tml_stack_used(void);

/* Size of the stack in bytes. */
uint32_t tml_stack_size(void);

#endif
