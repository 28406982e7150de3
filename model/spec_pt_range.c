/* x86pt's extension of impl_u/spec_pt.rs: RANGES, the write discipline of a range
 * operation's stores (RangeStore; hlspec.h): each keeps the view, or adds one page of the
 * range (map_range), removes one page inside it (unmap_range), gives one page inside it the
 * new permissions (protect_range), or swaps a page that straddles it for its parts (split). */
#include "os_refinement_internal.h"
#include "why.h"

#include <inttypes.h>

/* The difference between two views: the mappings of cur not in nxt (gone) and of nxt not in
 * cur (new), both sorted. False if either holds more than cap. */
static bool view_diff(const struct hw_interp *cur, const struct hw_interp *nxt, struct hw_mapping *gone,
                      unsigned *ngone, struct hw_mapping *fresh, unsigned *nfresh, unsigned cap)
{
    size_t i = 0, j = 0;
    *ngone = *nfresh = 0;
    while (i < cur->len || j < nxt->len) {
        const struct hw_mapping *a = i < cur->len ? &cur->map[i] : NULL, *b = j < nxt->len ? &nxt->map[j] : NULL;
        if (a && b && a->base == b->base && hw_pte_equal(&a->pte, &b->pte)) {
            i++, j++;
        } else if (a && (!b || a->base <= b->base)) {
            if (*ngone >= cap)
                return false;
            gone[(*ngone)++] = *a, i++;
        } else {
            if (*nfresh >= cap)
                return false;
            fresh[(*nfresh)++] = *b, j++;
        }
    }
    return true;
}

/* A split swap: h (which straddles the range) became its 512 parts of the next size, same
 * frames, same flags: every address keeps its translation. */
static bool is_split_swap(const struct os_core_state *cs, const struct hw_mapping *h, const struct hw_mapping *parts,
                          unsigned nparts)
{
    uint64_t sub = h->pte.frame.size / 512;
    if (nparts != 512 || h->pte.frame.size <= HW_L3_ENTRY_SIZE || !cs->rg.split ||
        !hl_straddles(h, cs->vaddr, cs->vaddr + cs->rg.length - 1))
        return false;
    for (unsigned j = 0; j < 512; j++) {
        const struct hw_mapping *p = &parts[j];
        if (p->base != h->base + j * sub || p->pte.frame.base != h->pte.frame.base + j * sub ||
            p->pte.frame.size != sub || !hl_flags_equal(p->pte.flags, h->pte.flags))
            return false;
    }
    return true;
}

static bool inside_range(const struct os_core_state *cs, const struct hw_mapping *m)
{
    return m->base >= cs->vaddr && m->base + m->pte.frame.size <= cs->vaddr + cs->rg.length;
}

/* One store of a range operation (hlspec.h; the spec_pt of ranges): it keeps the view, or
 *   map_range:           adds one page of pages(MapRange), nothing else;
 *   unmap_range:         removes one page inside the range, nothing else;
 *   protect_range:       gives one page inside the range the new permissions, nothing else;
 *   unmap/protect_range: swaps a page that straddles the range for its parts (split). */
bool os_spec_pt_range_store_ok(const struct os_core_state *cs, const struct os_step *st, const struct hw_interp *cur, const struct hw_interp *nxt,
                               char *why, size_t len)
{
    static _Thread_local struct hw_mapping gone[2], fresh[513];
    unsigned ng, nf;
    if (hw_interp_equal(cur, nxt))
        return true;
    const char *op = os_core_is_unmap(cs->kind) ? "unmap_range" : os_core_is_protect(cs->kind) ? "protect_range" : "map_range";
    if (!view_diff(cur, nxt, gone, &ng, fresh, &nf, 2) && !(ng <= 1 && view_diff(cur, nxt, gone, &ng, fresh, &nf, 513)))
        goto bad;
    if (ng == 1 && is_split_swap(cs, &gone[0], fresh, nf))
        return true;
    if (cs->kind == OS_MAP_EXECUTING) {
        struct hl_args a = { .kind = HL_ARGS_MAP_RANGE, .vaddr = cs->vaddr, .length = cs->rg.length,
                             .paddr = cs->rg.paddr, .policy = cs->rg.policy, .flags = cs->flags };
        if (ng == 0 && nf == 1 && hl_map_range_has_page(&a, &fresh[0]))
            return true;
    } else if (os_core_is_unmap(cs->kind)) {
        if (ng == 1 && nf == 0 && inside_range(cs, &gone[0]))
            return true;
    } else if (ng == 1 && nf == 1 && inside_range(cs, &gone[0]) && gone[0].base == fresh[0].base &&
               gone[0].pte.frame.base == fresh[0].pte.frame.base && gone[0].pte.frame.size == fresh[0].pte.frame.size &&
               hl_flags_equal(fresh[0].pte.flags, cs->flags)) {
        return true;
    }
bad: {
        uint64_t at = ng ? gone[0].base : nf ? fresh[0].base : 0;
        return model_refuse(why, len, "RangeStore: %s's store [0x%" PRIx64 "] = 0x%" PRIx64 " changes the MMU's view as the "
                    "operation may not (%s%u mapping%s gone, %s%u new, first at 0x%" PRIx64 ")", op, st->write_pa,
                    st->write_value, ng >= 2 ? ">=" : "", ng, ng == 1 ? "" : "s", nf >= 513 ? ">=" : "", nf, at);
    }
}
