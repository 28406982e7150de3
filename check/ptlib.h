/*
 * libx86pt as the OS model's page-table component (struct os_pt_impl), access by access: the
 * library built with X86PT_CHECKED (src/checked.h) runs on a coroutine; each of its loads,
 * stores, compare-exchanges, directory zeroings, allocations and frees suspends it and becomes
 * an action the OS model performs on its current state (model/os_lib.c), the response (a
 * loaded value, a frame) handed back on resumption. The model's state holds only the
 * responses; asked for the next action of a run, the coroutine continues if it is at that run's
 * prefix, else the operation is replayed from its start with the recorded responses (the
 * library is deterministic and keeps no state outside its handle and counts).
 */
#ifndef X86PT_CHECK_PTLIB_H
#define X86PT_CHECK_PTLIB_H

#include "os.h"

struct ptlib;

struct ptlib *ptlib_new(unsigned pt_frames, uint64_t seed);
void ptlib_free(struct ptlib *p);
/* The implementation to put into os_consts.impl (valid while p lives). */
const struct os_pt_impl *ptlib_impl(struct ptlib *p);

#endif /* X86PT_CHECK_PTLIB_H */
