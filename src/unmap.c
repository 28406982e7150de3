/*
 * unmap: one write removes the mapping, then only reclaim writes follow
 * (impl_u/spec_pt.rs: Read* (Write (Read | ViewStutter)*)?). The used-entry
 * counts make finding an empty directory O(1) per layer instead of a scan of
 * its 512 entries.
 */
#include "gather.h"

/* The slot's directory empties (its count is 1 before the clear): free it and
 * every directory that empties above it, up to (not including) the root, into
 * the gather if there is one. Returns how many were freed. */
static unsigned reclaim_upward(struct x86pt *pt, uint64_t va, struct walk *w, unsigned layer,
                               struct x86pt_gather *gather)
{
    unsigned freed = 0;
    if (w->from_hint) {
        /* The page table empties: learn the path above it, which the hinted
         * walk skipped. The leaf is already gone, so this walk stops at it. */
        x86pt_walk_from_root(pt, va, w);
    }
#if X86PT_MUTANT == 7 /* mutant 7: the count is not decremented */
    while (*used_count(pt, w->dirs[layer]) == 0 && layer > 0) {
#elif X86PT_MUTANT == 10 /* mutant 10: reclaim only if the parent entry is exactly as linked (A bit!) */
    while (--*used_count(pt, w->dirs[layer]) == 0 && layer > 0 &&
           entry_load(dir_at(pt, w->dirs[layer - 1]), w->idx[layer - 1]) == dir_entry_encode(w->dirs[layer])) {
#else
    while (--*used_count(pt, w->dirs[layer]) == 0 && layer > 0) {
#endif
        /* The directory is all zeros again (every slot we cleared was written
         * 0, and the MMU sets A/D only in present entries): unlink, then free. */
        uint64_t empty = w->dirs[layer];
        layer--;
#if X86PT_MUTANT == 2 /* mutant 2: freed before it is unlinked */
        dir_retire(pt, gather, empty);
#endif
        entry_store(pt, w->dirs[layer], dir_at(pt, w->dirs[layer]), w->idx[layer], 0);
#if X86PT_MUTANT != 2
        dir_retire(pt, gather, empty);
#endif
        freed++;
    }
    if (freed)
        hint_clear(pt);
    return freed;
}

/* Clear the leaf with a locked exchange (a compare-exchange loop, the one
 * read-modify-write the checked build knows) and return its last value: every
 * Accessed/Dirty bit the MMU set up to the clear is in it. */
static uint64_t leaf_take(const struct x86pt *pt, const struct walk *w)
{
    return entry_rmw(pt, w->dirs[w->layer], w->idx[w->layer], w->entry, ~UINT64_C(0), 0);
}

/* Clear slot w->idx[layer] of the walk to va (already cleared if taken);
 * reclaim what empties. Returns how many directories were freed. */
static inline unsigned clear_and_reclaim(struct x86pt *pt, uint64_t va, struct walk *w, unsigned layer, bool taken,
                                         struct x86pt_gather *gather)
{
    if (!taken)
        entry_store(pt, w->dirs[layer], dir_at(pt, w->dirs[layer]), w->idx[layer], 0);
    uint16_t *count = used_count(pt, w->dirs[layer]);
    if (*count > 1 || layer == 0) {
#if X86PT_MUTANT != 7
        *count -= 1;
#endif
        return 0;
    }
    return reclaim_upward(pt, va, w, layer, gather);
}

/* How many directories removing the walk's leaf will empty, read before any
 * store: the leaf's directory and each one above it, up to (not including) the
 * root, whose count is 1 — as reclaim_upward will find them. A hinted walk
 * first learns the path above the page table (reclaim_upward then need not). */
static unsigned dirs_to_empty(struct x86pt *pt, uint64_t va, struct walk *w)
{
    unsigned layer = w->layer;
    if (layer == 0 || *used_count(pt, w->dirs[layer]) > 1)
        return 0;
    if (w->from_hint)
        x86pt_walk_from_root(pt, va, w);
    unsigned n = 0;
    for (; layer > 0 && *used_count(pt, w->dirs[layer]) == 1; layer--)
        n++;
    return n;
}

/* One body for both entry points: x86pt_unmap, the hot one, gets it with gather
 * NULL folded away. */
__attribute__((always_inline)) static inline x86pt_status_t
unmap(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *removed, struct x86pt_flush *flush,
      struct x86pt_gather *gather)
{
    struct walk w;
    flush_none(flush);
    if (!gather_valid(gather))
        return X86PT_E_INVAL;
    x86pt_status_t st = find_mapping(pt, vaddr.va, &w);
    if (st != X86PT_OK)
        return st;
    /* With room for the most an unmap frees, nothing to count: no walk from the root ahead of
     * the clear (whose loads a concurrent walk's A bits would make differ, for nothing). */
    if (gather && !gather_has_room(gather, X86PT_UNMAP_MAX_DIRS_FREED) &&
        !gather_has_room(gather, dirs_to_empty(pt, vaddr.va, &w)))
        return X86PT_E_GATHER_FULL;
    uint64_t size = layer_size(w.layer);
    bool global = (w.entry & ENTRY_G) != 0; /* w is walked again above the leaf by the reclaim */
    if (removed) {
        *removed = mapping_of(vaddr.va, w.entry, w.layer, w.flags);
#if X86PT_MUTANT == 29 /* mutant 29 (check/mutants.def): the bits of the first load, a plain store */
        (void)leaf_take;
    }
    unsigned freed = clear_and_reclaim(pt, vaddr.va, &w, w.layer, false, gather);
#else
        removed->ad = entry_ad(leaf_take(pt, &w));
    }
    unsigned freed = clear_and_reclaim(pt, vaddr.va, &w, w.layer, removed != NULL, gather);
#endif
#if X86PT_MUTANT == 9 /* mutant 9: nothing reported to invalidate */
    flush = NULL;
#endif
    if (flush) {
        flush->start = vaddr;
        flush->length = size;
#if X86PT_MUTANT == 32 /* mutant 32 (check/mutants.def) */
        global = false;
#endif
        flush->global = global;
#if X86PT_MUTANT == 15 /* mutant 15 (check/mutants.def): directories freed, none reported */
        flush->dirs_freed = 0;
        (void)freed;
#else
        flush->dirs_freed = freed;
#endif
    }
    return X86PT_OK;
}

x86pt_status_t x86pt_unmap(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *removed,
                           struct x86pt_flush *flush)
{
    return unmap(pt, vaddr, removed, flush, NULL);
}

x86pt_status_t x86pt_unmap_gather(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *removed,
                                  struct x86pt_flush *flush, struct x86pt_gather *gather)
{
    return unmap(pt, vaddr, removed, flush, gather);
}
