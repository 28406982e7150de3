/* The representation of spec_t/hlspec.rs AbstractVariables (hlspec.h says why): mappings, a
 * Map<nat, PageTableEntry>, as a sorted array; mem as physical memory plus an overlay, and the
 * comparisons of mem the steps make (s2.mem === s1.mem, agreement on a domain); copying a
 * state. The spec's definitions and steps are in hlspec.c. */
#include "hlspec_internal.h"
#include "why.h"

#include <inttypes.h>
#include <string.h>

/* ---- Map<nat, PageTableEntry> as a sorted array ------------------------------------------ */

static unsigned lower_bound(const struct hw_mapping *m, unsigned n, uint64_t base)
{
    unsigned lo = 0, hi = n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (m[mid].base < base)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct hw_pte *hl_mappings_get(const struct hw_mapping *m, unsigned n, uint64_t base)
{
    unsigned i = lower_bound(m, n, base);
    return i < n && m[i].base == base ? &m[i].pte : NULL;
}

bool hl_mappings_insert(struct hw_mapping *m, unsigned *n, unsigned cap, uint64_t base,
                        const struct hw_pte *pte)
{
    unsigned i = lower_bound(m, *n, base);
    if (i < *n && m[i].base == base) {
        m[i].pte = *pte;
        return true;
    }
    if (*n >= cap)
        return false;
    memmove(&m[i + 1], &m[i], (*n - i) * sizeof *m);
    m[i].base = base;
    m[i].pte = *pte;
    (*n)++;
    return true;
}

bool hl_mappings_remove(struct hw_mapping *m, unsigned *n, uint64_t base)
{
    unsigned i = lower_bound(m, *n, base);
    if (i >= *n || m[i].base != base)
        return false;
    memmove(&m[i], &m[i + 1], (*n - i - 1) * sizeof *m);
    (*n)--;
    return true;
}

bool hl_mappings_equal(const struct hw_mapping *a, unsigned na, const struct hw_mapping *b,
                       unsigned nb)
{
    if (na != nb)
        return false;
    for (unsigned i = 0; i < na; i++)
        if (a[i].base != b[i].base || !hw_pte_equal(&a[i].pte, &b[i].pte))
            return false;
    return true;
}

void hl_vars_copy(struct hl_vars *dst, const struct hl_vars *src)
{
    dst->mem = src->mem;
    dst->nmappings = src->nmappings;
    memcpy(dst->mappings, src->mappings, src->nmappings * sizeof *src->mappings);
    memcpy(dst->thread_state, src->thread_state, sizeof dst->thread_state);
    dst->sound = src->sound;
}

/* ---- mem ---------------------------------------------------------------------------------- */

/* The mapping whose virtual range contains vaddr (sound states have at most one). */
static const struct hw_mapping *find_mapping(const struct hl_vars *s, uint64_t vaddr)
{
    unsigned i = lower_bound(s->mappings, s->nmappings, vaddr + 1);
    while (i-- > 0) {
        const struct hw_mapping *m = &s->mappings[i];
        if (hw_between(vaddr, m->base, m->base + m->pte.frame.size))
            return m;
        if (m->base + HW_L1_ENTRY_SIZE <= vaddr)
            break;
    }
    return NULL;
}

const struct hw_mapping *hl_mapping_containing(const struct hl_vars *s, uint64_t vaddr)
{
    return find_mapping(s, vaddr);
}

static uint64_t phys_read(const struct hl_vars *s, uint64_t pa)
{
    for (unsigned i = 0; i < s->mem.n_overlay; i++)
        if (s->mem.overlay_pa[i] == pa)
            return s->mem.overlay_val[i];
    return hw_pmem_read(s->mem.phys, pa);
}

bool hl_mem_read(const struct hl_consts *c, const struct hl_vars *s, uint64_t vaddr, uint64_t *value)
{
    const struct hw_mapping *m = find_mapping(s, vaddr);
    if (!m)
        return false;
    uint64_t pa = m->pte.frame.base + (vaddr - m->base);
    if (pa >= c->phys_mem_size) /* mem_domain_from_entry_contains: pmem_idx < phys_mem_size */
        return false;
    *value = phys_read(s, pa);
    return true;
}

/* Word-aligned bytes of the mapping inside mem's domain: [base, base + *len). */
static uint64_t domain_len(const struct hl_consts *c, const struct hw_mapping *m)
{
    if (m->pte.frame.base >= c->phys_mem_size)
        return 0;
    uint64_t room = c->phys_mem_size - m->pte.frame.base;
    return room < m->pte.frame.size ? room : m->pte.frame.size;
}

/* s1.mem.dom() === s2.mem.dom(): both are mem_domain_from_mappings; compare as merged
 * intervals of virtual addresses. */
static bool domain_equal(const struct hl_consts *c, const struct hl_vars *a, const struct hl_vars *b)
{
    unsigned i = 0, j = 0;
    for (;;) {
        uint64_t alo = 0, ahi = 0, blo = 0, bhi = 0;
        while (i < a->nmappings && !(ahi = domain_len(c, &a->mappings[i])))
            i++;
        while (j < b->nmappings && !(bhi = domain_len(c, &b->mappings[j])))
            j++;
        if (i == a->nmappings || j == b->nmappings)
            return i == a->nmappings && j == b->nmappings;
        alo = a->mappings[i].base, ahi += alo;
        blo = b->mappings[j].base, bhi += blo;
        /* merge following adjacent intervals */
        while (i + 1 < a->nmappings && a->mappings[i + 1].base == ahi && domain_len(c, &a->mappings[i + 1]))
            ahi += domain_len(c, &a->mappings[++i]);
        while (j + 1 < b->nmappings && b->mappings[j + 1].base == bhi && domain_len(c, &b->mappings[j + 1]))
            bhi += domain_len(c, &b->mappings[++j]);
        if (alo != blo || ahi != bhi)
            return false;
        i++, j++;
    }
}

static bool compare_word(const struct hl_consts *c, const struct hl_vars *a, const struct hl_vars *b,
                         uint64_t v, struct hl_except ex, char *why, size_t len)
{
    uint64_t va, vb;
    if (ex.has && ex.vaddr == v)
        return true;
    if (!hl_mem_read(c, a, v, &va))
        return true;
    if (!hl_mem_read(c, b, v, &vb))
        return model_refuse(why, len, "mem: word 0x%" PRIx64 " left the domain", v);
    if (va != vb)
        return model_refuse(why, len, "mem: word 0x%" PRIx64 " changed from 0x%" PRIx64 " to 0x%" PRIx64, v,
                    va, vb);
    return true;
}

/* forall idx in dom(a.mem), idx != except: b.mem[idx] == a.mem[idx] (b.mem[idx] must exist). */
bool hl_mem_agree(const struct hl_consts *c, const struct hl_vars *a, const struct hl_vars *b,
                  struct hl_except ex, char *why, size_t len)
{
    for (unsigned i = 0; i < a->nmappings; i++) {
        const struct hw_mapping *m = &a->mappings[i];
        uint64_t dl = domain_len(c, m);
        if (!dl)
            continue;
        const struct hw_pte *pb = hl_mappings_get(b->mappings, b->nmappings, m->base);
        bool same_xlate = pb && pb->frame.base == m->pte.frame.base && pb->frame.size == m->pte.frame.size;
        if (same_xlate && a->mem.phys == b->mem.phys) {
            /* identical translation over identical memory: only overlay words can differ */
            const struct hl_mem *mems[2] = { &a->mem, &b->mem };
            for (unsigned k = 0; k < 2; k++)
                for (unsigned o = 0; o < mems[k]->n_overlay; o++) {
                    uint64_t pa = mems[k]->overlay_pa[o];
                    if (pa >= m->pte.frame.base && pa - m->pte.frame.base < dl &&
                        !compare_word(c, a, b, m->base + (pa - m->pte.frame.base), ex, why, len))
                        return false;
                }
            continue;
        }
        for (uint64_t off = 0; off < dl; off += HW_WORD_SIZE)
            if (!compare_word(c, a, b, m->base + off, ex, why, len))
                return false;
    }
    return true;
}

/* s2.mem === s1.mem (when !ex.has) or s2.mem === s1.mem.insert(word(ex.vaddr), value). */
bool hl_mem_equal(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                  struct hl_except ex, uint64_t value, char *why, size_t len)
{
    if (!domain_equal(c, s1, s2))
        return model_refuse(why, len, "mem: domain changed");
    if (ex.has) {
        uint64_t v;
        if (!hl_mem_read(c, s2, ex.vaddr, &v))
            return model_refuse(why, len, "mem: stored word 0x%" PRIx64 " not in the domain", ex.vaddr);
        if (v != value)
            return model_refuse(why, len, "mem: stored word 0x%" PRIx64 " holds 0x%" PRIx64 ", not 0x%" PRIx64,
                        ex.vaddr, v, value);
    }
    return hl_mem_agree(c, s1, s2, ex, why, len);
}

const struct hl_except hl_no_except = { false, 0 };
