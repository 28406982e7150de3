/*
 * The Accessed/Dirty step: x86pt's answer to the FIXME in spec_t/mem.rs ("We need to allow the
 * dirty and accessed bits to change in the memory"). SDM vol. 3A 4.8: the processor sets A in
 * every paging-structure entry it uses for a translation, and D in the entry that maps the page
 * when it writes to it. D is set on any write here, not only on user writes the flags allow,
 * because a supervisor write with CR0.WP = 0 may write a read-only page; the model is meant to
 * be at least as hostile as the hardware. Neither bit is part of the interpretation
 * (PageTableEntry holds frame and combined RW/US/XD only), so this step never changes it.
 */
#include "hw_codec.h"

enum hw_step_status hw_step_AccessedDirty(const struct hw_consts *c, const struct hw_vars *s1,
                                          uint64_t vaddr, bool is_write, struct hw_vars *s2)
{
    struct hw_pt_view pt = hw_vars_pt_view(c, s1);
    struct hw_walk w;
    enum hw_walk_status ws = hw_pt_walk(&pt, vaddr, &w);
    if (ws == HW_WALK_OUTSIDE)
        return HW_STEP_E_OUTSIDE;
    if (ws != HW_WALK_PAGE)
        return HW_STEP_E_NOT_MAPPED;
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    for (unsigned layer = 0; layer <= w.layer; layer++) {
        uint64_t pa = w.entry_pa[layer];
        uint64_t v = hw_pmem_read(&s2->global_pt.mem, pa) | HW_BIT_A;
        if (layer == w.layer && is_write)
            v |= HW_BIT_D;
        if (!hw_pmem_write(&s2->global_pt.mem, pa, v)) {
            hw_vars_fini(s2);
            return HW_STEP_E_NOMEM;
        }
    }
    return HW_STEP_OK;
}
