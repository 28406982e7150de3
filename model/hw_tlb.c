/* A core's TLB: hardware.rs CoreVariables.tlb, a Map<nat, PageTableEntry>, kept as a small
 * array sorted by base so that copy, equality and hashing are linear and order-independent of
 * the history that built it. */
#include "hardware.h"

#include <stdlib.h>
#include <string.h>

/* Index of base if present, else the insertion point; *found says which. */
static uint32_t tlb_search(const struct hw_tlb *t, uint64_t base, bool *found)
{
    uint32_t lo = 0, hi = t->len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->entries[mid].base < base)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->len && t->entries[lo].base == base;
    return lo;
}

const struct hw_pte *hw_tlb_get(const struct hw_tlb *t, uint64_t base)
{
    bool found;
    uint32_t i = tlb_search(t, base, &found);
    return found ? &t->entries[i].pte : NULL;
}

bool hw_tlb_insert(struct hw_tlb *t, uint64_t base, const struct hw_pte *pte)
{
    bool found;
    uint32_t i = tlb_search(t, base, &found);
    if (found) {
        t->entries[i].pte = *pte;
        return true;
    }
    if (t->len == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 4;
        struct hw_mapping *e = realloc(t->entries, cap * sizeof *e);
        if (!e)
            return false;
        t->entries = e;
        t->cap = cap;
    }
    memmove(&t->entries[i + 1], &t->entries[i], (t->len - i) * sizeof *t->entries);
    t->entries[i].base = base;
    t->entries[i].pte = *pte;
    t->len++;
    return true;
}

bool hw_tlb_remove(struct hw_tlb *t, uint64_t base)
{
    bool found;
    uint32_t i = tlb_search(t, base, &found);
    if (!found)
        return false;
    memmove(&t->entries[i], &t->entries[i + 1], (t->len - i - 1) * sizeof *t->entries);
    t->len--;
    return true;
}

bool hw_tlb_copy(struct hw_tlb *dst, const struct hw_tlb *src)
{
    dst->len = dst->cap = 0;
    dst->entries = NULL;
    if (!src->len)
        return true;
    dst->entries = malloc(src->len * sizeof *dst->entries);
    if (!dst->entries)
        return false;
    memcpy(dst->entries, src->entries, src->len * sizeof *dst->entries);
    dst->len = dst->cap = src->len;
    return true;
}

void hw_tlb_fini(struct hw_tlb *t)
{
    free(t->entries);
    memset(t, 0, sizeof *t);
}

bool hw_tlb_equal(const struct hw_tlb *a, const struct hw_tlb *b)
{
    if (a->len != b->len)
        return false;
    for (uint32_t i = 0; i < a->len; i++)
        if (a->entries[i].base != b->entries[i].base ||
            !hw_pte_equal(&a->entries[i].pte, &b->entries[i].pte))
            return false;
    return true;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    h *= UINT64_C(0xff51afd7ed558ccd);
    return h ^ (h >> 33);
}

uint64_t hw_tlb_hash(const struct hw_tlb *t)
{
    uint64_t h = t->len;
    for (uint32_t i = 0; i < t->len; i++) {
        const struct hw_mapping *e = &t->entries[i];
        uint64_t flags = hw_flags_bits(e->pte.flags);
        h = mix(mix(mix(mix(h, e->base), e->pte.frame.base), e->pte.frame.size), flags);
    }
    return h;
}
