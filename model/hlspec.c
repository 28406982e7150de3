/* spec_t/hlspec.rs: the high-level state machine, as a checkable relation. See hlspec.h. */
#include "hlspec.h"
#include "why.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* scratch for the mappings a step should produce (HL_MAX_MAPPINGS is large) */
static _Thread_local struct hw_mapping range_want[HL_MAX_MAPPINGS];


const char *hl_step_name(enum hl_step_kind k)
{
    static const char *const names[] = { "ReadWrite",       "MapStart",          "MapEnd",
                                         "UnmapStart",      "UnmapEnd",          "ProtectStart",
                                         "ProtectEnd",      "Stutter",           "MapRangeStart",
                                         "MapRangeEnd",     "UnmapRangeStart",   "UnmapRangeEnd",
                                         "ProtectRangeStart", "ProtectRangeEnd", "RangeStore" };
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static const char *flags_str(struct hw_flags f)
{
    static const char *const s[8] = { "r-u-x", "rwu-x", "r-s-x", "rws-x",
                                      "r-u-n", "rwu-n", "r-s-n", "rws-n" };
    return s[(f.is_writable ? 1 : 0) | (f.is_supervisor ? 2 : 0) | (f.disable_execute ? 4 : 0)];
}

void hl_step_format(const struct hl_step *st, char *buf, size_t len)
{
    switch (st->kind) {
    case HL_STEP_READ_WRITE:
        snprintf(buf, len, "ReadWrite{thread %u, vaddr 0x%" PRIx64 ", %s%s, pte %s}", st->thread_id,
                 st->vaddr, st->is_store ? "store " : (st->is_exec ? "exec" : "load"),
                 st->rw_result == HL_RW_UNDEFINED ? " -> Undefined"
                 : st->rw_result == HL_RW_OK      ? " -> Ok"
                                                  : " -> Value",
                 st->has_pte ? "Some" : "None");
        break;
    case HL_STEP_MAP_START:
        snprintf(buf, len, "MapStart{thread %u, vaddr 0x%" PRIx64 ", frame 0x%" PRIx64 "+0x%" PRIx64 " %s}",
                 st->thread_id, st->vaddr, st->pte.frame.base, st->pte.frame.size,
                 flags_str(st->pte.flags));
        break;
    case HL_STEP_UNMAP_START:
        snprintf(buf, len, "UnmapStart{thread %u, vaddr 0x%" PRIx64 "}", st->thread_id, st->vaddr);
        break;
    case HL_STEP_PROTECT_START:
        snprintf(buf, len, "ProtectStart{thread %u, vaddr 0x%" PRIx64 ", %s}", st->thread_id, st->vaddr,
                 flags_str(st->flags));
        break;
    case HL_STEP_MAP_RANGE_START:
        snprintf(buf, len, "MapRangeStart{thread %u, vaddr 0x%" PRIx64 ", length 0x%" PRIx64 ", paddr 0x%" PRIx64
                 ", %s, policy %u}", st->thread_id, st->vaddr, st->length, st->paddr, flags_str(st->flags), st->policy);
        break;
    case HL_STEP_UNMAP_RANGE_START:
    case HL_STEP_PROTECT_RANGE_START:
        snprintf(buf, len, "%s{thread %u, vaddr 0x%" PRIx64 ", length 0x%" PRIx64 ", %s%s}", hl_step_name(st->kind),
                 st->thread_id, st->vaddr, st->length, st->kind == HL_STEP_PROTECT_RANGE_START ? flags_str(st->flags) : "",
                 st->split ? " split" : " fail");
        break;
    case HL_STEP_RANGE_STORE:
        snprintf(buf, len, "RangeStore{thread %u}", st->thread_id);
        break;
    case HL_STEP_MAP_END:
    case HL_STEP_UNMAP_END:
    case HL_STEP_PROTECT_END:
    case HL_STEP_MAP_RANGE_END:
    case HL_STEP_UNMAP_RANGE_END:
    case HL_STEP_PROTECT_RANGE_END:
        snprintf(buf, len, "%s{thread %u, %s}", hl_step_name(st->kind), st->thread_id,
                 st->result_ok ? "Ok" : "Err");
        break;
    default:
        snprintf(buf, len, "Stutter");
    }
}

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

/* ---- definitions_t.rs predicates ---------------------------------------------------------- */

bool hl_overlaps_existing_vmem(const struct hw_mapping *m, unsigned n, uint64_t base, uint64_t size)
{
    struct hw_mem_region cand = { base, size };
    for (unsigned i = 0; i < n; i++) {
        struct hw_mem_region r = { m[i].base, m[i].pte.frame.size };
        if (hw_overlap(cand, r))
            return true;
    }
    return false;
}

bool hl_overlaps_existing_pmem(const struct hw_mapping *m, unsigned n, const struct hw_pte *pte)
{
    for (unsigned i = 0; i < n; i++)
        if (hw_overlap(pte->frame, m[i].pte.frame))
            return true;
    return false;
}

bool hl_candidate_mapping_in_bounds(uint64_t base, const struct hw_pte *pte)
{
    return base < HW_MAX_BASE && pte->frame.size < HW_MAX_BASE && base + pte->frame.size < HW_MAX_BASE;
}

bool hl_flags_le(struct hw_flags a, struct hw_flags b)
{
    return (!a.is_writable || b.is_writable) && (a.is_supervisor || !b.is_supervisor) &&
           (a.disable_execute || !b.disable_execute);
}

struct hw_flags hl_flags_join(struct hw_flags a, struct hw_flags b)
{
    struct hw_flags f = { a.is_writable || b.is_writable, a.is_supervisor && b.is_supervisor,
                          a.disable_execute && b.disable_execute };
    return f;
}

bool hl_flags_equal(struct hw_flags a, struct hw_flags b)
{
    return a.is_writable == b.is_writable && a.is_supervisor == b.is_supervisor &&
           a.disable_execute == b.disable_execute;
}

static bool args_equal(const struct hl_args *a, const struct hl_args *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == HL_ARGS_EMPTY)
        return true;
    if (a->vaddr != b->vaddr || a->has_pte != b->has_pte)
        return false;
    if (a->has_pte && !hw_pte_equal(&a->pte, &b->pte))
        return false;
    if (hl_args_is_range(a->kind))
        return a->length == b->length && a->paddr == b->paddr && a->policy == b->policy && a->split == b->split &&
               a->lo == b->lo && a->hi == b->hi && a->ok == b->ok && hl_flags_equal(a->flags, b->flags);
    return a->kind != HL_ARGS_PROTECT || hl_flags_equal(a->flags, b->flags);
}

/* The virtual region an in-flight argument occupies (hlspec.rs, in the match arms of
 * candidate_mapping_overlaps_inflight_vmem); false for Empty. */
static bool args_vregion(const struct hl_args *b, struct hw_mem_region *r)
{
    switch (b->kind) {
    case HL_ARGS_MAP:
        r->base = b->vaddr;
        r->size = b->pte.frame.size;
        return true;
    case HL_ARGS_UNMAP:
    case HL_ARGS_PROTECT: /* extension: like Unmap */
        r->base = b->vaddr;
        r->size = b->has_pte ? b->pte.frame.size : 0;
        return true;
    case HL_ARGS_MAP_RANGE:
    case HL_ARGS_UNMAP_RANGE:
    case HL_ARGS_PROTECT_RANGE: /* range extension: the region */
        r->base = b->lo;
        r->size = b->hi - b->lo;
        return true;
    default:
        return false;
    }
}

bool hl_overlaps_inflight_vmem(const struct hl_consts *c, const struct hl_vars *s, uint64_t base,
                               uint64_t size)
{
    struct hw_mem_region cand = { base, size }, r;
    for (unsigned t = 0; t < c->thread_no; t++)
        if (args_vregion(&s->thread_state[t], &r) && hw_overlap(r, cand))
            return true;
    return false;
}

static bool args_overlap_pmem(const struct hl_args *b, const struct hw_pte *cand)
{
    switch (b->kind) {
    case HL_ARGS_MAP:
        return hw_overlap(cand->frame, b->pte.frame);
    case HL_ARGS_UNMAP:
        return b->has_pte && hw_overlap(cand->frame, b->pte.frame);
    case HL_ARGS_MAP_RANGE: {
        struct hw_mem_region r = { b->paddr, b->length };
        return hw_overlap(cand->frame, r);
    }
    default: /* Protect: its frame stays in mappings, where existing_pmem sees it */
        return false;
    }
}

bool hl_overlaps_inflight_pmem(const struct hl_consts *c, const struct hl_vars *s,
                               const struct hw_pte *pte)
{
    for (unsigned t = 0; t < c->thread_no; t++)
        if (args_overlap_pmem(&s->thread_state[t], pte))
            return true;
    return false;
}

static bool size_is_page(uint64_t size)
{
    return size == HW_L3_ENTRY_SIZE || size == HW_L2_ENTRY_SIZE || size == HW_L1_ENTRY_SIZE;
}

bool hl_step_Map_enabled(const struct hl_consts *c, uint64_t vaddr, const struct hw_pte *pte)
{
    uint64_t max_phyaddr = (UINT64_C(1) << c->maxphyaddr) - 1;
    return size_is_page(pte->frame.size) && hw_aligned(vaddr, pte->frame.size) &&
           hw_aligned(pte->frame.base, pte->frame.size) && pte->frame.base <= max_phyaddr &&
           hl_candidate_mapping_in_bounds(vaddr, pte);
}

bool hl_step_Map_sound(const struct hl_consts *c, const struct hl_vars *s, uint64_t vaddr,
                       const struct hw_pte *pte)
{
    return !hl_overlaps_inflight_vmem(c, s, vaddr, pte->frame.size) &&
           !hl_overlaps_existing_pmem(s->mappings, s->nmappings, pte) &&
           !hl_overlaps_inflight_pmem(c, s, pte);
}

bool hl_step_Unmap_enabled(uint64_t vaddr)
{
    /* aligned to 4 KiB, 2 MiB or 1 GiB == aligned to 4 KiB */
    return vaddr < HW_MAX_BASE && hw_aligned(vaddr, HW_L3_ENTRY_SIZE);
}

/* ---- the range extension: definitions (hlspec.h) --------------------------------------- */

static uint64_t policy_size(unsigned policy)
{
    return policy == HL_POLICY_ONLY_2M ? HW_L2_ENTRY_SIZE : policy == HL_POLICY_ONLY_1G ? HW_L1_ENTRY_SIZE : HW_L3_ENTRY_SIZE;
}

bool hl_step_Range_enabled(const struct hl_consts *c, enum hl_args_kind kind, uint64_t vaddr, uint64_t length,
                           uint64_t paddr, unsigned policy)
{
    if (!hw_aligned(vaddr, HW_L3_ENTRY_SIZE) || !hw_aligned(length, HW_L3_ENTRY_SIZE) || vaddr >= HW_MAX_BASE ||
        length > HW_MAX_BASE - vaddr)
        return false;
    if (length && ((vaddr ^ (vaddr + length - 1)) >> 47)) /* the canonical hole */
        return false;
    if (kind != HL_ARGS_MAP_RANGE)
        return true;
    uint64_t size = policy_size(policy);
    uint64_t limit = UINT64_C(1) << c->maxphyaddr;
    return policy <= HL_POLICY_ONLY_1G && hw_aligned(vaddr, size) && hw_aligned(paddr, size) &&
           hw_aligned(length, size) && paddr < limit && length <= limit - paddr;
}

bool hl_straddles(const struct hw_mapping *m, uint64_t first, uint64_t last)
{
    uint64_t mlast = m->base + m->pte.frame.size - 1;
    bool meets = m->base <= last && mlast >= first;
    return meets && (m->base < first || mlast > last);
}

void hl_range_region(const struct hw_mapping *m, size_t n, enum hl_args_kind kind, uint64_t vaddr, uint64_t length,
                     bool split, uint64_t *lo, uint64_t *hi, bool *ok)
{
    *lo = vaddr;
    *hi = vaddr + length;
    *ok = true;
    if (!length)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = m[i].base, e = b + m[i].pte.frame.size;
        if (e <= vaddr || b >= vaddr + length)
            continue;
        if (kind == HL_ARGS_MAP_RANGE) {
            *ok = false; /* candidate_mapping_overlaps_existing_vmem */
        } else if (hl_straddles(&m[i], vaddr, vaddr + length - 1)) {
            if (!split)
                *ok = false;
            else if (b < *lo)
                *lo = b;
            if (split && e > *hi)
                *hi = e;
        }
    }
    if (!*ok)
        *lo = vaddr, *hi = vaddr + length;
}

void hl_map_range_page(uint64_t vaddr, uint64_t length, uint64_t paddr, unsigned policy, uint64_t b,
                       uint64_t *base, uint64_t *size)
{
    static const uint64_t sizes[3] = { HW_L1_ENTRY_SIZE, HW_L2_ENTRY_SIZE, HW_L3_ENTRY_SIZE };
    for (unsigned l = 0; l < 3; l++) {
        uint64_t sz = sizes[l], s = b & ~(sz - 1);
        if (policy != HL_POLICY_LARGEST_FIT && sz != policy_size(policy))
            continue;
        if (s >= vaddr && s - vaddr + sz <= length && hw_aligned(s - vaddr + paddr, sz)) {
            *base = s;
            *size = sz;
            return;
        }
    }
    *base = b & ~(HW_L3_ENTRY_SIZE - 1); /* not reached for b inside an enabled range */
    *size = HW_L3_ENTRY_SIZE;
}

bool hl_map_range_has_page(const struct hl_args *a, const struct hw_mapping *m)
{
    uint64_t base, size;
    if (m->base < a->vaddr || m->base - a->vaddr >= a->length)
        return false;
    hl_map_range_page(a->vaddr, a->length, a->paddr, a->policy, m->base, &base, &size);
    return base == m->base && size == m->pte.frame.size && m->pte.frame.base == m->base - a->vaddr + a->paddr &&
           hl_flags_equal(m->pte.flags, a->flags);
}

bool hl_split_append(const struct hw_mapping *m, uint64_t first, uint64_t last, struct hw_mapping *out, unsigned *n,
                     unsigned cap, hl_piece_fn keep, void *ctx)
{
    if (m->pte.frame.size > HW_L3_ENTRY_SIZE && hl_straddles(m, first, last)) {
        uint64_t sub = m->pte.frame.size / 512;
        for (unsigned j = 0; j < 512; j++) {
            struct hw_mapping part = *m;
            part.base = m->base + j * sub;
            part.pte.frame.base = m->pte.frame.base + j * sub;
            part.pte.frame.size = sub;
            if (!hl_split_append(&part, first, last, out, n, cap, keep, ctx))
                return false;
        }
        return true;
    }
    struct hw_mapping piece = *m;
    if (keep && !keep(ctx, &piece))
        return true;
    if (*n >= cap)
        return false;
    out[(*n)++] = piece;
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

struct except {
    bool has;
    uint64_t vaddr;
};

static bool compare_word(const struct hl_consts *c, const struct hl_vars *a, const struct hl_vars *b,
                         uint64_t v, struct except ex, char *why, size_t len)
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
static bool mem_agree(const struct hl_consts *c, const struct hl_vars *a, const struct hl_vars *b,
                      struct except ex, char *why, size_t len)
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
static bool mem_equal(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                      struct except ex, uint64_t value, char *why, size_t len)
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
    return mem_agree(c, s1, s2, ex, why, len);
}

static const struct except NO_EXCEPT = { false, 0 };

/* ---- wf, init, inv ------------------------------------------------------------------------ */

static bool mappings_wf(const struct hl_vars *s)
{
    if (s->nmappings > HL_MAX_MAPPINGS)
        return false;
    for (unsigned i = 1; i < s->nmappings; i++)
        if (s->mappings[i - 1].base >= s->mappings[i].base)
            return false;
    return true;
}

bool hl_wf(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len)
{
    if (c->thread_no > HL_MAX_THREADS)
        return model_refuse(why, len, "wf: more than %u threads", HL_MAX_THREADS);
    if (!mappings_wf(s))
        return model_refuse(why, len, "wf: mappings not a map (unsorted or duplicate base)");
    return true;
}

bool hl_init(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len)
{
    if (!hl_wf(c, s, why, len))
        return false;
    if (s->nmappings)
        return model_refuse(why, len, "init: mappings not empty");
    for (unsigned t = 0; t < c->thread_no; t++)
        if (s->thread_state[t].kind != HL_ARGS_EMPTY)
            return model_refuse(why, len, "init: thread %u not Empty", t);
    return s->sound ? true : model_refuse(why, len, "init: not sound");
}

static int by_frame(const void *a, const void *b)
{
    uint64_t x = ((const struct hw_mapping *)a)->pte.frame.base, y = ((const struct hw_mapping *)b)->pte.frame.base;
    return x < y ? -1 : x > y;
}

bool hl_inv(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len)
{
    if (!hl_wf(c, s, why, len))
        return false;
    for (unsigned i = 0; i < s->nmappings; i++) {
        /* mappings_frame_sizes_over_zero */
        if (s->mappings[i].pte.frame.size == 0)
            return model_refuse(why, len, "inv: mappings_frame_sizes_over_zero (0x%" PRIx64 ")", s->mappings[i].base);
        range_want[i] = s->mappings[i];
    }
    /* pmem_no_overlap: sorted by frame, neighbours suffice (sizes are over zero) */
    qsort(range_want, s->nmappings, sizeof *range_want, by_frame);
    for (unsigned i = 0; i + 1 < s->nmappings; i++)
        if (hw_overlap(range_want[i].pte.frame, range_want[i + 1].pte.frame))
            return model_refuse(why, len, "inv: pmem_no_overlap (0x%" PRIx64 " and 0x%" PRIx64 ")", range_want[i].base,
                        range_want[i + 1].base);
    for (unsigned t = 0; t < c->thread_no; t++) {
        const struct hl_args *b = &s->thread_state[t];
        if (b->kind != HL_ARGS_MAP)
            continue;
        if (b->pte.frame.size == 0)
            return model_refuse(why, len, "inv: inflight_mem_size_over_zero (thread %u)", t);
        if (hl_overlaps_existing_pmem(s->mappings, s->nmappings, &b->pte))
            return model_refuse(why, len, "inv: inflight_map_no_overlap_pmem (thread %u)", t);
        for (unsigned u = 0; u < c->thread_no; u++) {
            if (u == t)
                continue;
            if (args_equal(b, &s->thread_state[u]))
                return model_refuse(why, len, "inv: inflight_maps_unique (threads %u, %u)", t, u);
            if (args_overlap_pmem(&s->thread_state[u], &b->pte))
                return model_refuse(why, len, "inv: inflight_map_no_overlap_inflight_pmem (threads %u, %u)", t, u);
        }
    }
    return true;
}

/* ---- steps -------------------------------------------------------------------------------- */

static bool thread_states_equal_except(const struct hl_consts *c, const struct hl_vars *s1,
                                       const struct hl_vars *s2, unsigned tid,
                                       const struct hl_args *arg, char *why, size_t len)
{
    for (unsigned t = 0; t < c->thread_no; t++) {
        const struct hl_args *want = (arg && t == tid) ? arg : &s1->thread_state[t];
        if (!args_equal(want, &s2->thread_state[t]))
            return model_refuse(why, len, "thread_state[%u] is not as the step says", t);
    }
    return true;
}

static bool mappings_same(const struct hl_vars *s1, const struct hl_vars *s2, char *why, size_t len)
{
    if (!hl_mappings_equal(s1->mappings, s1->nmappings, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "mappings changed");
    return true;
}

/* hlspec.rs: state_unchanged_besides_thread_state */
static bool unchanged_besides_thread_state(const struct hl_consts *c, const struct hl_vars *s1,
                                           const struct hl_vars *s2, unsigned tid,
                                           const struct hl_args *arg, char *why, size_t len)
{
    return thread_states_equal_except(c, s1, s2, tid, arg, why, len) && mappings_same(s1, s2, why, len) &&
           mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len) &&
           (s2->sound == s1->sound || model_refuse(why, len, "sound changed"));
}

static bool valid_thread(const struct hl_consts *c, unsigned tid, char *why, size_t len)
{
    return tid < c->thread_no || model_refuse(why, len, "thread %u is not valid", tid);
}

static bool thread_empty(const struct hl_vars *s1, unsigned tid, char *why, size_t len)
{
    return s1->thread_state[tid].kind == HL_ARGS_EMPTY || model_refuse(why, len, "thread %u is not Empty", tid);
}

/* The pte of a ReadWrite: the mapping at base, or (extension, see hlspec.h) a less permissive
 * copy of it, or (range extension) any pte that agrees per address with the mapping that
 * contains vaddr. */
static bool rw_pte_allowed(const struct hl_vars *s1, const struct hw_mapping *p, uint64_t vaddr, char *why,
                           size_t len)
{
    const struct hw_pte *m = hl_mappings_get(s1->mappings, s1->nmappings, p->base);
    if (m && m->frame.size == p->pte.frame.size) {
        if (m->frame.base != p->pte.frame.base || m->frame.size != p->pte.frame.size ||
            !hl_flags_le(p->pte.flags, m->flags))
            return model_refuse(why, len, "ReadWrite: pte at 0x%" PRIx64 " is not the mapping (nor a less permissive copy)",
                        p->base);
        return true;
    }
    const struct hw_mapping *c = find_mapping(s1, vaddr);
    if (!c)
        return model_refuse(why, len, "ReadWrite: no mapping at base 0x%" PRIx64, p->base);
    if (p->pte.frame.base + (vaddr - p->base) != c->pte.frame.base + (vaddr - c->base) ||
        !hl_flags_le(p->pte.flags, c->pte.flags))
        return model_refuse(why, len, "ReadWrite: pte at 0x%" PRIx64 " disagrees at 0x%" PRIx64 " with the mapping at 0x%" PRIx64,
                    p->base, vaddr, c->base);
    return true;
}

static bool step_ReadWrite(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!hw_aligned(st->vaddr, 8))
        return model_refuse(why, len, "ReadWrite: vaddr not aligned");
    if (!mappings_same(s1, s2, why, len) || !valid_thread(c, st->thread_id, why, len) ||
        !thread_empty(s1, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, 0, NULL, why, len))
        return false;
    if (!st->has_pte) {
        uint64_t v;
        if (hl_mem_read(c, s1, st->vaddr, &v))
            return model_refuse(why, len, "ReadWrite None: 0x%" PRIx64 " is in mem's domain", st->vaddr);
        if (st->rw_result != HL_RW_UNDEFINED)
            return model_refuse(why, len, "ReadWrite None: result is not Undefined");
        return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    const struct hw_mapping *p = &st->rw_pte;
    if (!rw_pte_allowed(s1, p, st->vaddr, why, len))
        return false;
    if (!hw_between(st->vaddr, p->base, p->base + p->pte.frame.size))
        return model_refuse(why, len, "ReadWrite: vaddr outside the pte");
    uint64_t pa = p->pte.frame.base + (st->vaddr - p->base);
    bool in_mem = pa < c->phys_mem_size, user = !p->pte.flags.is_supervisor;
    if (st->is_store) {
        if (in_mem && user && p->pte.flags.is_writable) {
            if (st->rw_result != HL_RW_OK)
                return model_refuse(why, len, "ReadWrite Store: result should be Ok");
            struct except ex = { true, st->vaddr };
            return mem_equal(c, s1, s2, ex, st->new_value, why, len);
        }
        if (st->rw_result != HL_RW_UNDEFINED)
            return model_refuse(why, len, "ReadWrite Store: result should be Undefined");
        return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    if (!mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len))
        return false;
    if (in_mem && user && (!st->is_exec || !p->pte.flags.disable_execute)) {
        uint64_t v;
        if (st->rw_result != HL_RW_VALUE)
            return model_refuse(why, len, "ReadWrite Load: result should be a Value");
        if (!hl_mem_read(c, s1, st->vaddr, &v))
            return model_refuse(why, len, "ReadWrite Load: 0x%" PRIx64 " not in mem's domain", st->vaddr);
        if (v != st->value)
            return model_refuse(why, len, "ReadWrite Load: read 0x%" PRIx64 " but mem holds 0x%" PRIx64,
                        st->value, v);
        return true;
    }
    if (st->rw_result != HL_RW_UNDEFINED)
        return model_refuse(why, len, "ReadWrite Load: result should be Undefined");
    return true;
}

static bool step_Map_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    if (!hl_step_Map_enabled(c, st->vaddr, &st->pte))
        return model_refuse(why, len, "MapStart: not step_Map_enabled");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    if (!hl_step_Map_sound(c, s1, st->vaddr, &st->pte))
        return !s2->sound || model_refuse(why, len, "MapStart: unsound start but the state stays sound");
    struct hl_args a = { .kind = HL_ARGS_MAP, .vaddr = st->vaddr, .has_pte = true, .pte = st->pte };
    return unchanged_besides_thread_state(c, s1, s2, st->thread_id, &a, why, len);
}

static bool step_Map_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { .kind = HL_ARGS_EMPTY };
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_MAP)
        return model_refuse(why, len, "MapEnd: thread %u is not mapping", st->thread_id);
    if (hl_overlaps_existing_vmem(s1->mappings, s1->nmappings, a->vaddr, a->pte.frame.size)) {
        if (st->result_ok)
            return model_refuse(why, len, "MapEnd: overlaps existing vmem but result is Ok");
        return mappings_same(s1, s2, why, len) && mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    if (!st->result_ok)
        return model_refuse(why, len, "MapEnd: no overlap but result is Err");
    struct hw_mapping *want = range_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (!hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, a->vaddr, &a->pte))
        return model_refuse(why, len, "MapEnd: too many mappings for the checker");
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "MapEnd: mappings are not s1.mappings.insert(0x%" PRIx64 ", pte)", a->vaddr);
    return mem_agree(c, s1, s2, NO_EXCEPT, why, len);
}

static bool step_Unmap_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    const struct hw_pte *pte = hl_mappings_get(s1->mappings, s1->nmappings, st->vaddr);
    if (!hl_step_Unmap_enabled(st->vaddr))
        return model_refuse(why, len, "UnmapStart: not step_Unmap_enabled");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    if (hl_overlaps_inflight_vmem(c, s1, st->vaddr, pte ? pte->frame.size : 0))
        return !s2->sound || model_refuse(why, len, "UnmapStart: unsound start but the state stays sound");
    struct hl_args a = { .kind = HL_ARGS_UNMAP, .vaddr = st->vaddr, .has_pte = pte != NULL };
    if (pte)
        a.pte = *pte;
    if (!thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!pte)
        return mappings_same(s1, s2, why, len) && mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    struct hw_mapping *want = range_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    hl_mappings_remove(want, &n, st->vaddr);
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "UnmapStart: mappings are not s1.mappings.remove(0x%" PRIx64 ")", st->vaddr);
    return mem_agree(c, s2, s1, NO_EXCEPT, why, len);
}

static bool step_Unmap_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { .kind = HL_ARGS_EMPTY };
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!mappings_same(s1, s2, why, len) || !mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_UNMAP)
        return model_refuse(why, len, "UnmapEnd: thread %u is not unmapping", st->thread_id);
    if (a->has_pte != st->result_ok)
        return model_refuse(why, len, "UnmapEnd: result is %s but pte is %s", st->result_ok ? "Ok" : "Err",
                    a->has_pte ? "Some" : "None");
    return true;
}

/* Extension: ProtectStart / ProtectEnd (hlspec.h). */
static bool step_Protect_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                               const struct hl_step *st, char *why, size_t len)
{
    const struct hw_pte *pte = hl_mappings_get(s1->mappings, s1->nmappings, st->vaddr);
    if (!hl_step_Unmap_enabled(st->vaddr))
        return model_refuse(why, len, "ProtectStart: not step_Protect_enabled");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    if (hl_overlaps_inflight_vmem(c, s1, st->vaddr, pte ? pte->frame.size : 0))
        return !s2->sound || model_refuse(why, len, "ProtectStart: unsound start but the state stays sound");
    struct hl_args a = { .kind = HL_ARGS_PROTECT, .vaddr = st->vaddr, .has_pte = pte != NULL, .flags = st->flags };
    if (pte)
        a.pte = *pte;
    if (!thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    struct hw_mapping *want = range_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (pte) {
        struct hw_pte joined = *pte;
        joined.flags = hl_flags_join(pte->flags, st->flags);
        hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, st->vaddr, &joined);
    }
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "ProtectStart: mapping at 0x%" PRIx64 " should have the joined permissions",
                    st->vaddr);
    return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

static bool step_Protect_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { .kind = HL_ARGS_EMPTY };
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_PROTECT)
        return model_refuse(why, len, "ProtectEnd: thread %u is not protecting", st->thread_id);
    if (a->has_pte != st->result_ok)
        return model_refuse(why, len, "ProtectEnd: result is %s but pte is %s", st->result_ok ? "Ok" : "Err",
                    a->has_pte ? "Some" : "None");
    struct hw_mapping *want = range_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (a->has_pte) {
        struct hw_pte np = a->pte;
        np.flags = a->flags;
        hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, a->vaddr, &np);
    }
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "ProtectEnd: mapping at 0x%" PRIx64 " should have the new permissions",
                    a->vaddr);
    return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

static bool step_Stutter(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         char *why, size_t len)
{
    return thread_states_equal_except(c, s1, s2, 0, NULL, why, len) && mappings_same(s1, s2, why, len) &&
           (s1->sound == s2->sound || model_refuse(why, len, "sound changed")) &&
           mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

/* ---- the range extension: steps (hlspec.h) ---------------------------------------------- */

static enum hl_args_kind range_kind(enum hl_step_kind k)
{
    switch (k) {
    case HL_STEP_MAP_RANGE_START:
    case HL_STEP_MAP_RANGE_END: return HL_ARGS_MAP_RANGE;
    case HL_STEP_UNMAP_RANGE_START:
    case HL_STEP_UNMAP_RANGE_END: return HL_ARGS_UNMAP_RANGE;
    default: return HL_ARGS_PROTECT_RANGE;
    }
}

/* What a range operation does to a mapping inside its range (after the split). */
struct piece_ctx {
    uint64_t first, last;
    enum hl_args_kind kind;
    struct hw_flags flags;
    bool end; /* ProtectRangeEnd: set the flags; ProtectRangeStart: join them */
};

static bool range_piece(void *ctx, struct hw_mapping *p)
{
    struct piece_ctx *x = ctx;
    if (p->base < x->first || p->base + p->pte.frame.size - 1 > x->last)
        return true;
    if (x->kind == HL_ARGS_UNMAP_RANGE)
        return false;
    p->pte.flags = x->end ? x->flags : hl_flags_join(p->pte.flags, x->flags);
    return true;
}

/* want = every mapping of s1 through split + range_piece. */
static bool range_apply(const struct hl_vars *s1, struct piece_ctx *x, struct hw_mapping *want, unsigned *n)
{
    *n = 0;
    for (unsigned i = 0; i < s1->nmappings; i++)
        if (!hl_split_append(&s1->mappings[i], x->first, x->last, want, n, HL_MAX_MAPPINGS, range_piece, x))
            return false;
    return true;
}

static bool step_Range_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    enum hl_args_kind kind = range_kind(st->kind);
    const char *name = hl_step_name(st->kind);
    if (!hl_step_Range_enabled(c, kind, st->vaddr, st->length, st->paddr, st->policy))
        return model_refuse(why, len, "%s: not step_%s_enabled", name, name);
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    struct hl_args a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.vaddr = st->vaddr;
    a.length = st->length;
    if (kind == HL_ARGS_MAP_RANGE)
        a.paddr = st->paddr, a.policy = st->policy;
    else
        a.split = st->split;
    if (kind != HL_ARGS_UNMAP_RANGE)
        a.flags = st->flags;
    hl_range_region(s1->mappings, s1->nmappings, kind, a.vaddr, a.length, a.split, &a.lo, &a.hi, &a.ok);
    bool sound = !hl_overlaps_inflight_vmem(c, s1, a.lo, a.hi - a.lo);
    if (kind == HL_ARGS_MAP_RANGE && a.length) {
        struct hw_pte fr = { { a.paddr, a.length }, a.flags };
        sound = sound && !hl_overlaps_existing_pmem(s1->mappings, s1->nmappings, &fr) &&
                !hl_overlaps_inflight_pmem(c, s1, &fr);
    }
    if (!sound)
        return !s2->sound || model_refuse(why, len, "%s: unsound start but the state stays sound", name);
    if (!thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (kind == HL_ARGS_MAP_RANGE || !a.ok || !a.length)
        return mappings_same(s1, s2, why, len) && mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    struct piece_ctx x = { a.vaddr, a.vaddr + a.length - 1, kind, a.flags, false };
    unsigned n;
    if (!range_apply(s1, &x, range_want, &n))
        return model_refuse(why, len, "%s: too many mappings for the checker", name);
    if (!hl_mappings_equal(range_want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "%s: mappings are not s1's, split at the ends, with the range %s", name,
                    kind == HL_ARGS_UNMAP_RANGE ? "removed" : "joined with the new permissions");
    if (kind == HL_ARGS_UNMAP_RANGE)
        return mem_agree(c, s2, s1, NO_EXCEPT, why, len);
    return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

static bool step_Range_store(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_states_equal_except(c, s1, s2, 0, NULL, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (!hl_args_is_range(a->kind))
        return model_refuse(why, len, "RangeStore: thread %u has no range operation in flight", st->thread_id);
    if (hl_mappings_equal(s1->mappings, s1->nmappings, s2->mappings, s2->nmappings))
        return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    if (a->kind != HL_ARGS_MAP_RANGE || !a->ok)
        return model_refuse(why, len, "RangeStore: mappings changed (this operation's effect was at its Start)");
    unsigned n1 = s1->nmappings, i = 0;
    if (s2->nmappings != n1 + 1)
        return model_refuse(why, len, "RangeStore: mappings are not s1's plus one page of the range");
    while (i < n1 && s1->mappings[i].base == s2->mappings[i].base &&
           hw_pte_equal(&s1->mappings[i].pte, &s2->mappings[i].pte))
        i++;
    if (!hl_mappings_equal(s1->mappings + i, n1 - i, s2->mappings + i + 1, n1 - i))
        return model_refuse(why, len, "RangeStore: mappings are not s1's plus one page of the range");
    if (!hl_map_range_has_page(a, &s2->mappings[i]))
        return model_refuse(why, len, "RangeStore: the new mapping at 0x%" PRIx64 " is not a page of the range",
                    s2->mappings[i].base);
    return mem_agree(c, s1, s2, NO_EXCEPT, why, len);
}

static bool step_Range_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty;
    const char *name = hl_step_name(st->kind);
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != range_kind(st->kind))
        return model_refuse(why, len, "%s: thread %u is not in this range operation", name, st->thread_id);
    if (st->result_ok != a->ok)
        return model_refuse(why, len, "%s: result is %s but the contract says %s", name, st->result_ok ? "Ok" : "Err",
                    a->ok ? "Ok" : "Err");
    if (a->kind == HL_ARGS_MAP_RANGE && a->ok) {
        for (uint64_t b = a->vaddr; b < a->vaddr + a->length;) {
            uint64_t base, size;
            hl_map_range_page(a->vaddr, a->length, a->paddr, a->policy, b, &base, &size);
            const struct hw_pte *m = hl_mappings_get(s1->mappings, s1->nmappings, base);
            struct hw_pte want = { { base - a->vaddr + a->paddr, size }, a->flags };
            if (!m || !hw_pte_equal(m, &want))
                return model_refuse(why, len, "%s: page 0x%" PRIx64 "+0x%" PRIx64 " of the range is not mapped as it should",
                            name, base, size);
            b = base + size;
        }
    }
    if (a->kind == HL_ARGS_PROTECT_RANGE && a->ok && a->length) {
        struct piece_ctx x = { a->vaddr, a->vaddr + a->length - 1, a->kind, a->flags, true };
        unsigned n;
        if (!range_apply(s1, &x, range_want, &n))
            return model_refuse(why, len, "%s: too many mappings for the checker", name);
        if (!hl_mappings_equal(range_want, n, s2->mappings, s2->nmappings))
            return model_refuse(why, len, "%s: the mappings inside the range should have the new permissions", name);
        return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    return mappings_same(s1, s2, why, len) && mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

bool hl_next_step(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                  const struct hl_step *st, char *why, size_t len)
{
    if (!s1->sound) /* next_step: an unsound state stays unsound, anything else goes */
        return !s2->sound || model_refuse(why, len, "an unsound state became sound");
    switch (st->kind) {
    case HL_STEP_READ_WRITE: return step_ReadWrite(c, s1, s2, st, why, len);
    case HL_STEP_MAP_START: return step_Map_start(c, s1, s2, st, why, len);
    case HL_STEP_MAP_END: return step_Map_end(c, s1, s2, st, why, len);
    case HL_STEP_UNMAP_START: return step_Unmap_start(c, s1, s2, st, why, len);
    case HL_STEP_UNMAP_END: return step_Unmap_end(c, s1, s2, st, why, len);
    case HL_STEP_PROTECT_START: return step_Protect_start(c, s1, s2, st, why, len);
    case HL_STEP_PROTECT_END: return step_Protect_end(c, s1, s2, st, why, len);
    case HL_STEP_STUTTER: return step_Stutter(c, s1, s2, why, len);
    case HL_STEP_MAP_RANGE_START:
    case HL_STEP_UNMAP_RANGE_START:
    case HL_STEP_PROTECT_RANGE_START: return step_Range_start(c, s1, s2, st, why, len);
    case HL_STEP_MAP_RANGE_END:
    case HL_STEP_UNMAP_RANGE_END:
    case HL_STEP_PROTECT_RANGE_END: return step_Range_end(c, s1, s2, st, why, len);
    case HL_STEP_RANGE_STORE: return step_Range_store(c, s1, s2, st, why, len);
    }
    return model_refuse(why, len, "unknown step");
}
