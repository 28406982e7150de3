/* impl_u/spec_pt.rs: the write discipline of the page-table code, checked on every step: a
 * map is (Read | ViewStutter)* Write, an unmap Read* (Write (Read | ViewStutter)*)?, so every
 * store keeps the MMU's view except the one the spec allows; every other step keeps
 * page-table memory. x86pt's additions are marked: protect's first store (like unmap's), the
 * hardware's A/D and walk steps and FrameReuse (which must keep the view); the RANGE
 * extension's discipline is in spec_pt_range.c. The view carries each leaf's attributes
 * (memory type, G, key, software bits: hw_codec.h), so a store's are compared with the
 * request's like its permissions. */
#include "os_internal.h"
#include "os_refinement_internal.h"
#include "why.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool view_is(struct os_checker *k, const struct hw_interp *cur, const struct hw_interp *nxt, bool insert,
                    uint64_t base, const struct hw_pte *pte, const char *what, char *why, size_t len)
{
    (void)k;
    size_t cap = cur->len + 1;
    struct hw_mapping *buf = malloc(cap * sizeof *buf); /* per call: no scratch outlives a thread */
    if (!buf)
        return model_refuse(why, len, "out of memory");
    unsigned n = (unsigned)cur->len;
    if (cur->len) /* memcpy from an empty map's NULL is undefined */
        memcpy(buf, cur->map, cur->len * sizeof *buf);
    if (insert)
        hl_mappings_insert(buf, &n, (unsigned)cap, base, pte);
    else
        hl_mappings_remove(buf, &n, base);
    bool same = hl_mappings_equal(buf, n, nxt->map, (unsigned)nxt->len);
    if (!same) {
        /* name the first difference */
        unsigned i = 0;
        while (i < n && i < nxt->len && buf[i].base == nxt->map[i].base && hw_pte_equal(&buf[i].pte, &nxt->map[i].pte))
            i++;
        uint64_t at = i < n ? buf[i].base : (i < nxt->len ? nxt->map[i].base : 0);
        model_refuse(why, len, "%s: the MMU's view is not %s (first difference at 0x%" PRIx64 ")", what,
                     insert ? "the old one plus the new mapping" : "the old one minus the mapping", at);
    }
    free(buf);
    return same;
}

/* spec_pt.rs: next_step, for the store (or none) each OS step makes. */
bool os_check_spec_pt(struct os_checker *k, const struct os_vars *s1, const struct os_step *st,
                      const struct hw_interp *cur, const struct hw_interp *nxt, bool pt_mem_same,
                      char *why, size_t len)
{
    const struct os_consts *c = k->c;
    const struct os_core_state *cs = st->core < os_ncores(c) ? &s1->core_states[st->core] : NULL;
    if (st->kind == OS_STEP_FRAME_REUSE) /* free frames are unreachable */
        return hw_interp_equal(cur, nxt) || model_refuse(why, len, "a write to a free frame changed the MMU's view");
    if (st->kind == OS_STEP_RANGE_STORE && cs)
        return os_spec_pt_range_store_ok(cs, st, cur, nxt, why, len);
    if (st->nomem) /* x86pt's extension (hlspec_nomem.c): frames taken, zeroed and given back */
        return hw_interp_equal(cur, nxt) || model_refuse(why, len, "%s: X86PT_E_NOMEM but the MMU's view changed",
                                                         os_step_name(st->kind));
    if (cs && cs->range && st->kind != OS_STEP_HW) /* range Op*Start, *End: no store */
        return pt_mem_same || model_refuse(why, len, "%s changed page-table memory", os_step_name(st->kind));
    switch (st->kind) {
    case OS_STEP_HW:
        if (st->hw.kind == HW_STEP_ACCESSED_DIRTY || st->hw.kind == HW_STEP_WALK_STEP ||
            st->hw.kind == HW_STEP_WALK_TLB_FILL)
            return hw_interp_equal(cur, nxt) || model_refuse(why, len, "an A/D update changed the MMU's view");
        break;

    case OS_STEP_VIEW_STUTTER: {
        /* spec_pt: an unmap or protect is Read* (Write (Read | ViewStutter)*)?: its first
         * store (x86pt: a step after OpStart, os_lib.c) is the one that changes the view */
        bool first = st->wrote && cs && !cs->stored && cs->result_ok &&
                     (cs->kind == OS_UNMAP_OP_EXECUTING || cs->kind == OS_PROTECT_OP_EXECUTING);
        if (!first) {
            if (!hw_interp_equal(cur, nxt))
                return model_refuse(why, len, "ViewStutter: store [0x%" PRIx64 "] = 0x%" PRIx64 " changed the MMU's view",
                                    st->write_pa, st->write_value);
            return true;
        }
        const char *what = cs->kind == OS_UNMAP_OP_EXECUTING ? "unmap's store" : "protect's store";
        if (cs->kind == OS_UNMAP_OP_EXECUTING)
            return view_is(k, cur, nxt, false, cs->vaddr, NULL, what, why, len);
        struct hw_pte np = cs->result;
        np.flags = cs->flags;
        return view_is(k, cur, nxt, true, cs->vaddr, &np, what, why, len);
    }
    case OS_STEP_MAP_END: /* spec_pt::step_Map_End */
        if (hl_overlaps_existing_vmem(cur->map, (unsigned)cur->len, cs->vaddr, cs->pte.frame.size)) {
            if (st->result_ok)
                return model_refuse(why, len, "MapEnd: Ok although 0x%" PRIx64 " overlaps a mapping", cs->vaddr);
            return hw_interp_equal(cur, nxt) || model_refuse(why, len, "MapEnd: Err but the MMU's view changed");
        }
        if (!st->result_ok)
            return model_refuse(why, len, "MapEnd: Err although 0x%" PRIx64 " overlaps nothing", cs->vaddr);
        return view_is(k, cur, nxt, true, cs->vaddr, &cs->pte, "MapEnd", why, len);
    default:
        break;
    }
    /* spec_pt::step_Stutter (and step_Map_Start / step_Unmap_End: s2 == s1) */
    return pt_mem_same || model_refuse(why, len, "%s changed page-table memory", os_step_name(st->kind));
}
