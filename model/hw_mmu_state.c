/*
 * The per-core rl3.rs state (mmu-verimm/rl3.rs State: walks, cache, sbuf) as a value.
 *
 * rl3 keeps walks and caches as sets (ISet<Walk>). Here each set is a small array kept sorted
 * and duplicate-free, so that two equal sets are equal arrays: equality is a field-by-field
 * comparison and the hash does not depend on the history that built the set. The store buffer
 * is a sequence (rl3: Seq<(usize, usize)>), compared in order.
 */
#include "hardware.h"

#include <string.h>

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

/* A total order on walks, field by field (unused fields are zero, see hardware.h). */
static int walk_cmp(const struct hw_mmu_walk *a, const struct hw_mmu_walk *b)
{
    int r = cmp_u64(a->vaddr, b->vaddr);
    for (unsigned l = 0; !r && l < HW_NUM_LAYERS; l++)
        r = cmp_u64(a->table[l], b->table[l]);
    for (unsigned l = 0; !r && l < HW_NUM_LAYERS; l++)
        r = cmp_u64(a->entry[l], b->entry[l]);
    for (unsigned l = 0; !r && l <= HW_NUM_LAYERS; l++)
        r = cmp_u64(a->rights[l], b->rights[l]);
    if (!r)
        r = cmp_u64(a->access, b->access);
    if (!r)
        r = cmp_u64(a->from, b->from);
    if (!r)
        r = cmp_u64(a->next, b->next);
    if (!r)
        r = cmp_u64(a->complete, b->complete);
    return r;
}

static int pscache_cmp(const struct hw_pscache_entry *a, const struct hw_pscache_entry *b)
{
    int r = cmp_u64(a->key, b->key);
    if (!r)
        r = cmp_u64(a->table, b->table);
    if (!r)
        r = cmp_u64(a->rights, b->rights);
    return r;
}

bool hw_mmu_walk_insert(struct hw_mmu_core *m, const struct hw_mmu_walk *w, unsigned bound)
{
    unsigned i = 0;
    while (i < m->nwalks && walk_cmp(&m->walks[i], w) < 0)
        i++;
    if (i < m->nwalks && walk_cmp(&m->walks[i], w) == 0)
        return true; /* rl3: ISet::insert of a member changes nothing */
    if (m->nwalks >= bound)
        return false;
    memmove(&m->walks[i + 1], &m->walks[i], (m->nwalks - i) * sizeof m->walks[0]);
    m->walks[i] = *w;
    m->nwalks++;
    return true;
}

void hw_mmu_walk_remove(struct hw_mmu_core *m, unsigned index)
{
    memmove(&m->walks[index], &m->walks[index + 1],
            (m->nwalks - index - 1) * sizeof m->walks[0]);
    m->nwalks--;
    memset(&m->walks[m->nwalks], 0, sizeof m->walks[0]);
}

bool hw_pscache_insert(struct hw_mmu_core *m, unsigned level, const struct hw_pscache_entry *e,
                       unsigned bound)
{
    struct hw_pscache_entry *set = m->pscache[level];
    unsigned n = m->npscache[level], i = 0;
    while (i < n && pscache_cmp(&set[i], e) < 0)
        i++;
    if (i < n && pscache_cmp(&set[i], e) == 0)
        return true;
    if (n >= bound)
        return false;
    memmove(&set[i + 1], &set[i], (n - i) * sizeof set[0]);
    set[i] = *e;
    m->npscache[level]++;
    return true;
}

void hw_pscache_remove(struct hw_mmu_core *m, unsigned level, unsigned index)
{
    struct hw_pscache_entry *set = m->pscache[level];
    unsigned n = m->npscache[level];
    memmove(&set[index], &set[index + 1], (n - index - 1) * sizeof set[0]);
    m->npscache[level]--;
    memset(&set[n - 1], 0, sizeof set[0]);
}

bool hw_mmu_core_is_empty(const struct hw_mmu_core *m)
{
    unsigned cached = 0;
    for (unsigned l = 0; l < HW_PSCACHE_LEVELS; l++)
        cached += m->npscache[l];
    return !m->nwalks && !cached && !m->nsbuf;
}

bool hw_mmu_core_equal(const struct hw_mmu_core *a, const struct hw_mmu_core *b)
{
    if (a->nwalks != b->nwalks || a->nsbuf != b->nsbuf)
        return false;
    for (unsigned i = 0; i < a->nwalks; i++)
        if (walk_cmp(&a->walks[i], &b->walks[i]))
            return false;
    for (unsigned l = 0; l < HW_PSCACHE_LEVELS; l++) {
        if (a->npscache[l] != b->npscache[l])
            return false;
        for (unsigned i = 0; i < a->npscache[l]; i++)
            if (pscache_cmp(&a->pscache[l][i], &b->pscache[l][i]))
                return false;
    }
    for (unsigned i = 0; i < a->nsbuf; i++)
        if (a->sbuf[i].pa != b->sbuf[i].pa || a->sbuf[i].value != b->sbuf[i].value)
            return false;
    return true;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    h *= UINT64_C(0xff51afd7ed558ccd);
    return h ^ (h >> 33);
}

static uint64_t walk_hash(uint64_t h, const struct hw_mmu_walk *w)
{
    h = mix(h, w->vaddr);
    for (unsigned l = w->from; l < w->next; l++)
        h = mix(h, w->entry[l]);
    uint64_t small = (uint64_t)w->access | (uint64_t)w->from << 8 | (uint64_t)w->next << 16 |
                     (uint64_t)w->complete << 24 | (uint64_t)w->rights[w->next] << 32;
    return mix(mix(h, small), w->table[w->from]);
}

/* Cheap: the fields that tell states apart in practice; equality decides the rest. */
uint64_t hw_mmu_core_hash(const struct hw_mmu_core *m)
{
    uint64_t h = mix(m->nwalks, m->nsbuf);
    for (unsigned i = 0; i < m->nwalks; i++)
        h = walk_hash(h, &m->walks[i]);
    for (unsigned l = 0; l < HW_PSCACHE_LEVELS; l++)
        for (unsigned i = 0; i < m->npscache[l]; i++) {
            const struct hw_pscache_entry *e = &m->pscache[l][i];
            h = mix(mix(h, e->key << 2 | l), e->table | e->rights);
        }
    for (unsigned i = 0; i < m->nsbuf; i++)
        h = mix(mix(h, m->sbuf[i].pa), m->sbuf[i].value);
    return h;
}

struct hw_mmu_core *hw_core_mmu(const struct hw_consts *c, struct hw_vars *s,
                                struct hw_core core)
{
    return s->mmu ? &s->mmu[core.NUMA_id * c->core_no + core.core_id] : NULL;
}

const struct hw_mmu_core *hw_core_mmu_const(const struct hw_consts *c, const struct hw_vars *s,
                                            struct hw_core core)
{
    return s->mmu ? &s->mmu[core.NUMA_id * c->core_no + core.core_id] : NULL;
}

enum hw_step_status hw_mmu_commit(const struct hw_consts *c, const struct hw_vars *s1,
                                  struct hw_core core, const struct hw_mmu_core *m,
                                  struct hw_vars *s2)
{
    if (!hw_vars_copy(s2, s1))
        return HW_STEP_E_NOMEM;
    *hw_core_mmu(c, s2, core) = *m;
    return HW_STEP_OK;
}
