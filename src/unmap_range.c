/*
 * unmap_range and protect_range: visit every page inside a range. A huge page
 * straddling an end is refused, or split first: a new directory is filled with
 * the same frames in pages of the next size (unreachable, so the view does not
 * change), then one store swaps it in for the huge page — every address keeps
 * its translation through that store. Like map_range: pass 1 reads only (finds
 * straddles, counts the directories splits need and, for an unmap into a
 * gather, those it will free), then the pool is allocated, then pass 2 writes.
 * Recursion over the layers is bounded by 4.
 */
#include "gather.h"
#include "range.h"

enum range_action { UNMAP, PROTECT };

struct range_op {
    struct range r;
    enum range_action action;
    unsigned flags;         /* PROTECT: the new flags */
    bool global;            /* a global page was changed or removed */
    bool split;
    uint64_t needed;
    struct dir_pool pool;
    uint64_t touched_first; /* what the flush must cover: the range, widened */
    uint64_t touched_last;  /* to every split page */
    unsigned dirs_freed;
    struct x86pt_gather *gather; /* UNMAP: where emptied directories go; NULL: free_frame */
    uint64_t dirs_to_free;  /* counted by pass 1 when there is a gather */
};

/* Does the part [part, part + size) of a page contain an end of the range
 * without lying inside it? */
static bool part_straddles(const struct range *r, uint64_t page, uint64_t page_size, uint64_t part, uint64_t size)
{
    return part - page < page_size && !range_covers(r, part, size);
}

/* Directories needed to split the page of this layer at s until no page
 * straddles an end of the range: one, plus those of its parts that hold an
 * end. 4 KiB parts never straddle: the range is 4 KiB-aligned. */
static uint64_t split_cost(const struct range *r, uint64_t s, unsigned layer)
{
    unsigned sub_layer = layer + 1;
    uint64_t cost = 1, sub = layer_size(sub_layer);
    if (sub_layer == PT_LEAF_LAYER)
        return cost;
    uint64_t first_part = r->first & ~(sub - 1), last_part = r->last & ~(sub - 1);
    if (part_straddles(r, s, layer_size(layer), first_part, sub))
        cost += split_cost(r, first_part, sub_layer);
    if (last_part != first_part && part_straddles(r, s, layer_size(layer), last_part, sub))
        cost += split_cost(r, last_part, sub_layer);
    return cost;
}

/* Present entries of a page table inside the range (the ones an unmap clears).
 * Read only when they could be all of them: a count above the slots in range
 * already says the table stays. */
static unsigned leaves_in_range(const struct x86pt *pt, const struct range_op *op, uint64_t dir, uint64_t base)
{
    unsigned lo, hi, n = 0;
    range_slots(&op->r, base, PT_LEAF_LAYER, &lo, &hi);
    if (*used_count(pt, dir) > hi - lo + 1)
        return 0;
    const uint64_t *d = dir_at(pt, dir);
    for (unsigned i = lo; i <= hi; i++)
        n += entry_present(entry_load(d, i));
    return n;
}

/* Pass 1, read-only: straddles, the directories splits need and, for an unmap
 * with a gather, the directories it will free. *cleared: how many present
 * entries of dir pass 2 will clear — a page inside the range, or a directory
 * that empties (its count equals its own cleared entries, as apply_dir will
 * find it). A split page is never cleared: part of it lies outside the range,
 * so its new directory keeps something. */
static x86pt_status_t check_dir(const struct x86pt *pt, struct range_op *op, uint64_t dir, unsigned layer,
                                uint64_t base, unsigned *cleared)
{
    bool count_frees = op->gather && op->action == UNMAP;
    *cleared = 0;
    if (layer == PT_LEAF_LAYER) { /* 4 KiB pages never straddle a 4 KiB-aligned range */
        if (count_frees)
            *cleared = leaves_in_range(pt, op, dir, base);
        return X86PT_OK;
    }
    const uint64_t *d = dir_at(pt, dir);
    unsigned lo, hi;
    range_slots(&op->r, base, layer, &lo, &hi);
    for (unsigned i = lo; i <= hi; i++) {
        uint64_t s = base + ((uint64_t)i << layer_shift(layer));
        uint64_t e = entry_load(d, i);
        if (!entry_present(e))
            continue;
        if (!entry_is_page(e, layer)) {
            uint64_t child = entry_addr(e, layer);
            unsigned child_cleared;
            x86pt_status_t st = check_dir(pt, op, child, layer + 1, s, &child_cleared);
            if (st != X86PT_OK)
                return st;
            if (count_frees && child_cleared == *used_count(pt, child)) {
                op->dirs_to_free++;
                ++*cleared;
            }
        } else if (range_covers(&op->r, s, layer_size(layer))) {
            ++*cleared;
        } else {
            if (!op->split)
                return X86PT_E_STRADDLE;
            op->needed += split_cost(&op->r, s, layer);
        }
    }
    return X86PT_OK;
}

/* The entry for part j of a huge page e of this layer, one layer down: the same
 * frames, permissions, attributes and A/D bits (PAT moves to bit 7 in a 4 KiB
 * entry). */
static uint64_t split_part(uint64_t e, unsigned layer, unsigned j)
{
    uint64_t keep = e & ((leaf_flag_bits(layer) & ~ENTRY_HUGE_PAT) | ENTRY_A | ENTRY_D);
#if X86PT_MUTANT == 23 /* mutant 23 (check/mutants.def): the parts lose no-execute */
    keep &= ~ENTRY_XD;
#endif
    uint64_t part = entry_addr(e, layer) + (uint64_t)j * layer_size(layer + 1);
    uint64_t pat = (e & ENTRY_HUGE_PAT) ? (layer + 1 == PT_LEAF_LAYER ? ENTRY_PS : ENTRY_HUGE_PAT) : 0;
    return part | ENTRY_P | keep | pat | (layer + 1 == PT_LEAF_LAYER ? 0 : ENTRY_PS);
}

/* Replace the huge page in slot i of dir by a directory of its parts; returns
 * the directory. Compare-exchange: should the MMU set A/D in the huge page
 * meanwhile, the parts are made again from the new value. */
static uint64_t split_page(const struct x86pt *pt, struct range_op *op, uint64_t dir, unsigned i, unsigned layer)
{
    uint64_t *slot = &dir_at(pt, dir)[i];
    uint64_t child = x86pt_pool_take(pt, &op->pool);
    uint64_t *c = dir_at(pt, child);
    uint64_t old = entry_load(slot, 0);
#if X86PT_MUTANT == 11 /* mutant 11 (check/mutants.def): swapped in before it is filled */
    entry_store(pt, dir, dir_at(pt, dir), i, dir_entry_encode(child));
    for (unsigned j = 0; j < PT_ENTRIES; j++)
        entry_store(pt, child, c, j, split_part(old, layer, j));
#else
    do {
        for (unsigned j = 0; j < PT_ENTRIES; j++)
            entry_write_unlinked(c, j, split_part(old, layer, j));
    } while (!entry_cas(slot, &old, dir_entry_encode(child)));
    if (pt->mem.observe_write)
        pt->mem.observe_write(pt->mem.ctx, x86pt_pa(dir + 8u * i), dir_entry_encode(child));
#endif
    *used_count(pt, child) = PT_ENTRIES;
    return child;
}

static void widen_touched(struct range_op *op, uint64_t s, uint64_t size)
{
    if (s < op->touched_first)
        op->touched_first = s;
    if (s + (size - 1) > op->touched_last)
        op->touched_last = s + (size - 1);
}

/* Pass 2: cannot fail. For UNMAP, a directory that empties is unlinked, then
 * freed (or gathered), once. */
static void apply_dir(struct x86pt *pt, struct range_op *op, uint64_t dir, unsigned layer, uint64_t base)
{
    uint64_t *d = dir_at(pt, dir);
    unsigned lo, hi;
    range_slots(&op->r, base, layer, &lo, &hi);
    if (layer == PT_LEAF_LAYER && op->action == UNMAP) { /* the hot loop: 4 KiB pages lie inside */
        unsigned removed = 0;
        for (unsigned i = lo; i <= hi; i++) {
            uint64_t e = entry_load(d, i);
            if (entry_present(e)) {
                op->global |= (e & ENTRY_G) != 0;
                entry_store(pt, dir, d, i, 0);
                removed++;
            }
        }
        *used_count(pt, dir) -= (uint16_t)removed;
        return;
    }
    for (unsigned i = lo; i <= hi; i++) {
        uint64_t s = base + ((uint64_t)i << layer_shift(layer)), size = layer_size(layer);
        uint64_t e = entry_load(d, i);
        if (!entry_present(e))
            continue;
        if (entry_is_page(e, layer))
            op->global |= (e & ENTRY_G) != 0; /* changed, removed or split: its TLB entries go */
        if (entry_is_page(e, layer) && range_covers(&op->r, s, size)) {
            if (op->action == PROTECT) {
                entry_store_flags(pt, dir, i, layer, op->flags);
            } else {
                entry_store(pt, dir, d, i, 0);
                *used_count(pt, dir) -= 1;
            }
            continue;
        }
        uint64_t child;
        if (entry_is_page(e, layer)) {
            widen_touched(op, s, size);
            child = split_page(pt, op, dir, i, layer);
        } else {
            child = entry_addr(e, layer);
        }
        apply_dir(pt, op, child, layer + 1, s);
        if (*used_count(pt, child) == 0) {
            entry_store(pt, dir, d, i, 0);
            *used_count(pt, dir) -= 1;
#if X86PT_MUTANT != 12 /* mutant 12 (check/mutants.def): an emptied directory is never freed */
            dir_retire(pt, op->gather, child);
#endif
            op->dirs_freed++;
        }
    }
}

static x86pt_status_t range_apply(struct x86pt *pt, struct range_op *op, uint64_t va, uint64_t length,
                                  struct x86pt_flush *flush)
{
    flush_none(flush);
    x86pt_status_t st = range_init(&op->r, va, length);
    if (st != X86PT_OK || length == 0)
        return st;
    unsigned root_cleared;
    if ((st = check_dir(pt, op, pt->root.pa, 0, 0, &root_cleared)) != X86PT_OK)
        return st;
    /* Before the pool: a refusal then has nothing to give back. */
    if (!gather_has_room(op->gather, op->dirs_to_free))
        return X86PT_E_GATHER_FULL;
    if ((st = x86pt_pool_fill(pt, &op->pool, op->needed)) != X86PT_OK)
#if X86PT_MUTANT == 28 /* mutant 28 (check/mutants.def): the refusal is swallowed */
        return X86PT_OK;
#else
        return st;
#endif
    op->touched_first = op->r.first;
    op->touched_last = op->r.last;
    apply_dir(pt, op, pt->root.pa, 0, 0);
    x86pt_pool_drain(pt, &op->pool); /* empty unless a count was wrong */
    if (op->dirs_freed)
        hint_clear(pt);
    range_flush(flush, op->touched_first, op->touched_last, op->dirs_freed);
#if X86PT_MUTANT == 32 /* mutant 32 (check/mutants.def) */
    op->global = false;
#endif
    if (flush)
        flush->global = op->global;
    return X86PT_OK;
}

x86pt_status_t x86pt_unmap_range_gather(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length,
                                        enum x86pt_straddle straddle, struct x86pt_flush *flush,
                                        struct x86pt_gather *gather)
{
    struct range_op op = {.action = UNMAP, .split = straddle == X86PT_STRADDLE_SPLIT, .gather = gather};
    if (straddle != X86PT_STRADDLE_FAIL && straddle != X86PT_STRADDLE_SPLIT)
        return flush_none(flush), X86PT_E_INVAL;
    if (!gather_valid(gather))
        return flush_none(flush), X86PT_E_INVAL;
    return range_apply(pt, &op, vaddr.va, length, flush);
}

x86pt_status_t x86pt_unmap_range(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length,
                                 enum x86pt_straddle straddle, struct x86pt_flush *flush)
{
    return x86pt_unmap_range_gather(pt, vaddr, length, straddle, flush, NULL);
}

x86pt_status_t x86pt_protect_range(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length, unsigned flags,
                                   enum x86pt_straddle straddle, struct x86pt_flush *flush)
{
    struct range_op op = {.action = PROTECT, .flags = flags, .split = straddle == X86PT_STRADDLE_SPLIT};
    if (straddle != X86PT_STRADDLE_FAIL && straddle != X86PT_STRADDLE_SPLIT)
        return flush_none(flush), X86PT_E_INVAL;
    if (flags & ~(unsigned)X86PT_FLAGS_ALL)
        return flush_none(flush), X86PT_E_BADFLAGS;
    return range_apply(pt, &op, vaddr.va, length, flush);
}
