#include "refmap.h"

#include <stdlib.h>
#include <string.h>

void refmap_init(struct refmap *r) { memset(r, 0, sizeof *r); }
void refmap_fini(struct refmap *r) { free(r->m); memset(r, 0, sizeof *r); }

/* Index of the first mapping with base >= va. */
static size_t lower_bound(const struct refmap *r, uint64_t va)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r->m[mid].base.va < va)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct x86pt_mapping *refmap_containing(const struct refmap *r, uint64_t va)
{
    size_t i = lower_bound(r, va + 1);
    if (i == 0)
        return NULL;
    const struct x86pt_mapping *m = &r->m[i - 1];
    return va - m->base.va < m->size ? m : NULL;
}

bool refmap_overlaps(const struct refmap *r, uint64_t base, uint64_t size)
{
    if (refmap_containing(r, base))
        return true;
    size_t i = lower_bound(r, base);
    return i < r->n && r->m[i].base.va - base < size;
}

struct x86pt_mapping *refmap_at(const struct refmap *r, uint64_t base)
{
    size_t i = lower_bound(r, base);
    return i < r->n && r->m[i].base.va == base ? &r->m[i] : NULL;
}

void refmap_insert(struct refmap *r, struct x86pt_mapping m)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->m = realloc(r->m, r->cap * sizeof *r->m);
        if (!r->m)
            abort();
    }
    size_t i = lower_bound(r, m.base.va);
    memmove(&r->m[i + 1], &r->m[i], (r->n - i) * sizeof *r->m);
    r->m[i] = m;
    r->n++;
}

void refmap_remove(struct refmap *r, uint64_t base)
{
    size_t i = lower_bound(r, base);
    if (i < r->n && r->m[i].base.va == base) {
        memmove(&r->m[i], &r->m[i + 1], (r->n - i - 1) * sizeof *r->m);
        r->n--;
    }
}
