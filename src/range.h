/*
 * What the range operations share: the range in the spec's 48-bit index space,
 * argument checks, the directory pool a range operation allocates before it
 * writes anything, and the slot bounds of a directory inside the range.
 */
#ifndef X86PT_RANGE_H
#define X86PT_RANGE_H

#include "ptmem.h"

#define VA48_MASK ((UINT64_C(1) << 48) - 1)

/* [first, last] inclusive in the 48-bit space (no overflow at the top), plus
 * the canonical start for reports. */
struct range {
    uint64_t first, last;
    uint64_t canonical_first;
};

static inline bool range_covers(const struct range *r, uint64_t s, uint64_t size)
{
    return s >= r->first && s + (size - 1) <= r->last;
}

/* The slots [*lo, *hi] of a directory at layer whose first slot maps base. */
static inline void range_slots(const struct range *r, uint64_t base, unsigned layer, unsigned *lo, unsigned *hi)
{
    uint64_t top = base + (layer_size(layer) << 9) - 1;
    *lo = r->first > base ? layer_index(r->first, layer) : 0;
    *hi = r->last < top ? layer_index(r->last, layer) : PT_ENTRIES - 1;
}

/* vaddr 4 KiB-aligned and canonical, length a multiple of 4 KiB, the range on
 * one side of the canonical hole. length 0 is valid (and empty). */
static inline x86pt_status_t range_init(struct range *r, uint64_t va, uint64_t length)
{
    if (!va_canonical(va))
        return X86PT_E_NONCANONICAL;
    if ((va | length) & (X86PT_PAGE_4K - 1))
        return X86PT_E_MISALIGNED;
    uint64_t last = va + length - 1;
    if (length && (last < va || !va_canonical(last) || ((va ^ last) >> 47) != 0))
        return X86PT_E_NONCANONICAL;
    r->first = va & VA48_MASK;
    r->last = last & VA48_MASK;
    r->canonical_first = va;
    return X86PT_OK;
}

/* The flush report for a range op that touched [first, last] (48-bit). */
static inline void range_flush(struct x86pt_flush *flush, uint64_t first, uint64_t last, unsigned dirs_freed)
{
    if (!flush)
        return;
    uint64_t length = last - first + 1;
#if X86PT_MUTANT == 16 /* mutant 16 (check/mutants.def): the report one page short */
    length -= X86PT_PAGE_4K;
#endif
    flush->start = x86pt_va((uint64_t)((int64_t)(first << 16) >> 16));
    flush->length = length;
    flush->dirs_freed = dirs_freed;
    flush->flush_all = length / X86PT_PAGE_4K > X86PT_FLUSH_ALL_PAGES;
}

/* Directories allocated before anything is written, chained through their
 * own first word (no other memory to keep them in). */
struct dir_pool {
    uint64_t head; /* physical address of the first frame; valid if count > 0 */
    uint64_t count;
};

x86pt_status_t x86pt_pool_fill(const struct x86pt *pt, struct dir_pool *pool, uint64_t n);
/* Give back what was not used: zeroed, as the allocator expects. */
void x86pt_pool_drain(const struct x86pt *pt, struct dir_pool *pool);
/* A zeroed directory from the pool (the caller counted what it needs). */
uint64_t x86pt_pool_take(const struct x86pt *pt, struct dir_pool *pool);

#endif /* X86PT_RANGE_H */
