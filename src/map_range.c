/*
 * map_range: map a whole range with the largest pages that fit (or one forced
 * size), all or nothing. Pass 1 reads only: it finds any overlap and counts the
 * directories the range needs; then they are all allocated; pass 2 writes,
 * linking each zeroed directory before filling it. Recursion over the layers
 * is bounded by 4.
 */
#include "range.h"

struct map_plan {
    struct range r;
    uint64_t pa_minus_va;  /* pa of a slot = its va + this (mod 2^64) */
    unsigned leaf_layers;  /* bit l: pages of layer l may be used */
    unsigned flags;
    uint64_t needed;
    struct dir_pool pool;
};

/* A page of this layer goes in the slot starting at s. */
static bool leaf_here(const struct map_plan *p, uint64_t s, unsigned layer)
{
    uint64_t size = layer_size(layer);
#if X86PT_MUTANT == 13 /* mutant 13 (check/mutants.def): the page size by the virtual address alone */
    return (p->leaf_layers >> layer & 1u) && range_covers(&p->r, s, size) && (s & (size - 1)) == 0;
#endif
    return (p->leaf_layers >> layer & 1u) && range_covers(&p->r, s, size) &&
           ((s + p->pa_minus_va) & (size - 1)) == 0;
}

/* Pass 1 over the slots of dir, or of a directory yet to be made (exists
 * false: all empty). Not a sentinel address: physical address 0 is a valid
 * directory, and an identity-mapped kernel may even see it at pointer 0. */
static x86pt_status_t plan_dir(const struct x86pt *pt, struct map_plan *p, bool exists, uint64_t dir,
                               unsigned layer, uint64_t base)
{
    if (!exists && layer == PT_LEAF_LAYER)
        return X86PT_OK; /* a new page table: 4 KiB pages, nothing to check */
    const uint64_t *d = exists ? dir_at(pt, dir) : NULL;
    unsigned lo, hi;
    range_slots(&p->r, base, layer, &lo, &hi);
    for (unsigned i = lo; i <= hi; i++) {
        uint64_t s = base + ((uint64_t)i << layer_shift(layer));
        uint64_t e = exists ? entry_load(d, i) : 0;
        x86pt_status_t st = X86PT_OK;
        if (leaf_here(p, s, layer)) {
            if (entry_present(e))
                return X86PT_E_OVERLAP;
        } else if (!entry_present(e)) {
            p->needed++;
            st = plan_dir(pt, p, false, 0, layer + 1, s);
        } else if (entry_is_page(e, layer)) {
            return X86PT_E_OVERLAP;
        } else {
            st = plan_dir(pt, p, true, entry_addr(e, layer), layer + 1, s);
        }
        if (st != X86PT_OK)
            return st;
    }
    return X86PT_OK;
}

/* Pass 2: cannot fail. */
static void fill_dir(const struct x86pt *pt, struct map_plan *p, uint64_t dir, unsigned layer, uint64_t base)
{
    uint64_t *d = dir_at(pt, dir);
    unsigned lo, hi;
    range_slots(&p->r, base, layer, &lo, &hi);
    if (layer == PT_LEAF_LAYER) { /* the hot loop: one store per 4 KiB page */
        uint64_t e = page_entry_encode(base + p->pa_minus_va + ((uint64_t)lo << 12), layer, p->flags);
        for (unsigned i = lo; i <= hi; i++, e += X86PT_PAGE_4K)
            entry_store(pt, dir, d, i, e);
        *used_count(pt, dir) += (uint16_t)(hi - lo + 1);
        return;
    }
    for (unsigned i = lo; i <= hi; i++) {
        uint64_t s = base + ((uint64_t)i << layer_shift(layer));
        if (leaf_here(p, s, layer)) {
            entry_store(pt, dir, d, i, page_entry_encode(s + p->pa_minus_va, layer, p->flags));
            *used_count(pt, dir) += 1;
            continue;
        }
        uint64_t e = entry_load(d, i);
        uint64_t child = entry_present(e) ? entry_addr(e, layer)
                                          : x86pt_link_new_dir(pt, dir, i, x86pt_pool_take(pt, &p->pool));
        fill_dir(pt, p, child, layer + 1, s);
    }
}

static x86pt_status_t leaf_layers_for(enum x86pt_page_policy policy, uint64_t va, uint64_t pa, uint64_t length,
                                      unsigned *layers)
{
    switch (policy) {
    case X86PT_LARGEST_FIT:
        *layers = 1u << 1 | 1u << 2 | 1u << 3;
        return X86PT_OK;
    case X86PT_ONLY_4K:
    case X86PT_ONLY_2M:
    case X86PT_ONLY_1G: {
        unsigned layer = PT_LEAF_LAYER - (unsigned)(policy - X86PT_ONLY_4K);
        uint64_t size = layer_size(layer);
        if (length & (size - 1))
            return X86PT_E_BADSIZE;
        if ((va | pa) & (size - 1))
            return X86PT_E_MISALIGNED;
        *layers = 1u << layer;
        return X86PT_OK;
    }
    }
    return X86PT_E_INVAL;
}

x86pt_status_t x86pt_map_range(struct x86pt *pt, x86pt_vaddr_t vaddr, x86pt_paddr_t paddr, uint64_t length,
                               unsigned flags, enum x86pt_page_policy policy, struct x86pt_flush *flush)
{
    struct map_plan p = {.flags = flags};
    flush_none(flush);
    x86pt_status_t st = range_init(&p.r, vaddr.va, length);
    if (st == X86PT_OK && (paddr.pa & (X86PT_PAGE_4K - 1)))
        st = X86PT_E_MISALIGNED;
    if (st == X86PT_OK)
        st = leaf_layers_for(policy, vaddr.va, paddr.pa, length, &p.leaf_layers);
    if (st == X86PT_OK && (flags & ~(unsigned)X86PT_FLAGS_ALL))
        st = X86PT_E_BADFLAGS;
#if X86PT_MUTANT == 20 /* mutant 20: the first byte of the frames checked, not their end */
    if (st == X86PT_OK && paddr.pa >= pt->phys_limit)
#else
    if (st == X86PT_OK && !frames_addressable(pt, paddr.pa, length))
#endif
        st = X86PT_E_PHYSRANGE;
    if (st != X86PT_OK || length == 0)
        return st;
    p.pa_minus_va = paddr.pa - p.r.first;
    if ((st = plan_dir(pt, &p, true, pt->root.pa, 0, 0)) != X86PT_OK)
        return st;
    if ((st = x86pt_pool_fill(pt, &p.pool, p.needed)) != X86PT_OK)
        return st;
    fill_dir(pt, &p, pt->root.pa, 0, 0);
    /* Not-present entries are never cached: nothing to invalidate. */
    return X86PT_OK;
}
