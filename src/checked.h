/*
 * The checker's build of the library (compiled with -DX86PT_CHECKED, never shipped): every
 * access to page-table memory goes through these functions instead of a machine instruction,
 * so that `x86pt check` can run each load, store and read-modify-write as its own step of the
 * OS model, against the model's current memory, with other cores' hardware steps in between.
 * They are defined by the checker (check/libstep.c). The shipped build compiles the same
 * accessors of ptmem.h to plain and atomic instructions; nothing else differs.
 */
#ifndef X86PT_CHECKED_H
#define X86PT_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

uint64_t x86pt_checked_load(const uint64_t *slot);
void x86pt_checked_store(uint64_t *slot, uint64_t value);
/* lock cmpxchg: true and *slot = desired if *slot == *expected, else *expected = *slot. */
bool x86pt_checked_cas(uint64_t *slot, uint64_t *expected, uint64_t desired);
/* Zero a whole directory (the library's memset of a fresh frame). */
void x86pt_checked_zero(uint64_t *dir);

#endif /* X86PT_CHECKED_H */
