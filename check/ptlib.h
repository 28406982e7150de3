/*
 * libx86pt as the OS model's page-table component (struct os_pt_impl): each operation runs on
 * a scratch copy of the model's page-table memory, with x86pt_mem.observe_write recording every
 * entry store and free_frame every directory free, in order. The operation is run twice: on
 * the memory as it is, and on a copy whose present entries carry random Accessed/Dirty bits;
 * the two runs must make the same stores modulo A/D, the same allocations and frees, and
 * return the same result (the write sequence may not depend on A/D bits).
 *
 * Range operations (x86pt_map_range / unmap_range / protect_range) run the same way. A
 * directory the library fills while it is unreachable (a split's 512 entries) is not
 * reported by observe_write; when a store links it, its contents are recorded first as
 * hidden stores (struct os_pt_event), then the linking store.
 */
#ifndef X86PT_CHECK_PTLIB_H
#define X86PT_CHECK_PTLIB_H

#include "os.h"

struct ptlib;

struct ptlib *ptlib_new(unsigned pt_frames, uint64_t seed);
void ptlib_free(struct ptlib *p);
/* The implementation to put into os_consts.impl (valid while p lives). */
const struct os_pt_impl *ptlib_impl(struct ptlib *p);
/* Turn the A/D-independence run off (for speed measurements). */
void ptlib_set_ad_check(struct ptlib *p, bool on);

#endif /* X86PT_CHECK_PTLIB_H */
