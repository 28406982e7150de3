/* x86pt's shootdown by flush report (issue 10), which replaces spec_t/os.rs's "invalidate the
 * unmapped vaddr": an unmap or protect (single or range) sends a shootdown when the library's
 * flush report asks for anything, and each core's acknowledgement does what the kernel's IPI
 * handler does (invlpg of the reported pages, or a CR3 reload). And FrameReuse, the rest of
 * the kernel taking free pool frames, which is what makes a late or short shootdown visible.
 * The steps UnmapInitiateShootdown / AckShootdownIPI themselves are in os.c. */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>

bool os_tlb_entry_in_shootdown(const struct os_shootdown *sd, const struct hw_mapping *e)
{
    struct hw_mem_region a = { sd->lo, sd->hi - sd->lo }, b = { e->base, e->pte.frame.size };
    return sd->all || (a.size && hw_overlap(a, b));
}

/* x86pt: the OS shoots down exactly what the library's flush report asks for. */
bool os_flush_needed(const struct os_core_state *cs)
{
    return cs->flush.lo < cs->flush.hi || cs->flush.all || cs->flush.dirs_freed;
}

/* The most pages a shootdown invalidates one by one; above, the core reloads CR3 (the ceiling
 * Linux uses, and the library's flush_all threshold, x86pt.h). */
#define OS_INVLPG_MAX_PAGES 33u

/* The acknowledging core k's invalidation, on hw (a copy of the state's hardware, replaced by
 * the result): invlpg every 4 KiB page of the reported range (SDM vol. 3A 4.10.4.1: the TLB
 * entries of the page containing the address, global or not, and the paging-structure-cache
 * entries that would translate it), or flush everything when the report says flush_all, freed
 * directories, or spans more than OS_INVLPG_MAX_PAGES pages: reload CR3, which keeps global
 * entries, or, when the report says a global page changed, toggle CR4.PGE, which does not. */
enum hw_step_status os_shootdown_invalidate(const struct os_consts *c, const struct os_shootdown *sd, struct hw_core k,
                                            struct hw_vars *hw)
{
    uint64_t pages = (sd->hi - sd->lo) / HW_PAGE_SIZE;
    enum hw_step_status r;
    if (sd->all || sd->dirs || pages > OS_INVLPG_MAX_PAGES) {
        struct hw_vars n;
        r = sd->global ? hw_step_FlushGlobal(&c->hw, hw, k, &n) : hw_step_FlushAll(&c->hw, hw, k, &n);
        if (r == HW_STEP_OK)
            hw_vars_fini(hw), *hw = n;
    } else {
        r = HW_STEP_OK;
        for (uint64_t va = sd->lo; va < sd->hi && r == HW_STEP_OK; va += HW_PAGE_SIZE) {
            struct hw_vars n;
            if ((r = hw_step_Invlpg(&c->hw, hw, k, va, &n)) == HW_STEP_OK)
                hw_vars_fini(hw), *hw = n;
        }
    }
    return r;
}

/* x86pt: the rest of the kernel. A frame in the page-table pool belongs to the page allocator,
 * which may hand it to anyone, who may write anything into it: a directory freed to the pool
 * while some core may still walk into it (a cached entry, a walk in flight) shows. */
enum os_step_status os_step_frame_reuse(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    uint64_t f = st->reuse_pa / HW_PAGE_SIZE;
    if (st->reuse_pa % 8 || f >= c->pt_frames || !os_bit(s1->pt_free, f))
        return model_refuse(why, len, "0x%" PRIx64 " is not in a free pool frame", st->reuse_pa), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE) /* a page of the same word */
        if (!hw_pmem_write(&s2->hw.global_pt.mem, (st->reuse_pa & ~(HW_PAGE_SIZE - 1)) + off, st->reuse_value)) {
            os_vars_fini(s2);
            return OS_STEP_NOMEM;
        }
    return OS_STEP_OK;
}
