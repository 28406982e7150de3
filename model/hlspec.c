/* spec_t/hlspec.rs: the high-level state machine, as a checkable relation. See hlspec.h. */
#include "hlspec.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool fail(char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return false;
}

const char *hl_step_name(enum hl_step_kind k)
{
    static const char *const names[] = { "ReadWrite",   "MapStart",     "MapEnd",
                                         "UnmapStart",  "UnmapEnd",     "ProtectStart",
                                         "ProtectEnd",  "Stutter" };
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
    case HL_STEP_MAP_END:
    case HL_STEP_UNMAP_END:
    case HL_STEP_PROTECT_END:
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
        return fail(why, len, "mem: word 0x%" PRIx64 " left the domain", v);
    if (va != vb)
        return fail(why, len, "mem: word 0x%" PRIx64 " changed from 0x%" PRIx64 " to 0x%" PRIx64, v,
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
        return fail(why, len, "mem: domain changed");
    if (ex.has) {
        uint64_t v;
        if (!hl_mem_read(c, s2, ex.vaddr, &v))
            return fail(why, len, "mem: stored word 0x%" PRIx64 " not in the domain", ex.vaddr);
        if (v != value)
            return fail(why, len, "mem: stored word 0x%" PRIx64 " holds 0x%" PRIx64 ", not 0x%" PRIx64,
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
        return fail(why, len, "wf: more than %u threads", HL_MAX_THREADS);
    if (!mappings_wf(s))
        return fail(why, len, "wf: mappings not a map (unsorted or duplicate base)");
    return true;
}

bool hl_init(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len)
{
    if (!hl_wf(c, s, why, len))
        return false;
    if (s->nmappings)
        return fail(why, len, "init: mappings not empty");
    for (unsigned t = 0; t < c->thread_no; t++)
        if (s->thread_state[t].kind != HL_ARGS_EMPTY)
            return fail(why, len, "init: thread %u not Empty", t);
    return s->sound ? true : fail(why, len, "init: not sound");
}

bool hl_inv(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len)
{
    if (!hl_wf(c, s, why, len))
        return false;
    for (unsigned i = 0; i < s->nmappings; i++) {
        /* mappings_frame_sizes_over_zero */
        if (s->mappings[i].pte.frame.size == 0)
            return fail(why, len, "inv: mappings_frame_sizes_over_zero (0x%" PRIx64 ")", s->mappings[i].base);
        /* pmem_no_overlap */
        for (unsigned j = i + 1; j < s->nmappings; j++)
            if (hw_overlap(s->mappings[i].pte.frame, s->mappings[j].pte.frame))
                return fail(why, len, "inv: pmem_no_overlap (0x%" PRIx64 " and 0x%" PRIx64 ")",
                            s->mappings[i].base, s->mappings[j].base);
    }
    for (unsigned t = 0; t < c->thread_no; t++) {
        const struct hl_args *b = &s->thread_state[t];
        if (b->kind != HL_ARGS_MAP)
            continue;
        if (b->pte.frame.size == 0)
            return fail(why, len, "inv: inflight_mem_size_over_zero (thread %u)", t);
        if (hl_overlaps_existing_pmem(s->mappings, s->nmappings, &b->pte))
            return fail(why, len, "inv: inflight_map_no_overlap_pmem (thread %u)", t);
        for (unsigned u = 0; u < c->thread_no; u++) {
            if (u == t)
                continue;
            if (args_equal(b, &s->thread_state[u]))
                return fail(why, len, "inv: inflight_maps_unique (threads %u, %u)", t, u);
            if (args_overlap_pmem(&s->thread_state[u], &b->pte))
                return fail(why, len, "inv: inflight_map_no_overlap_inflight_pmem (threads %u, %u)", t, u);
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
            return fail(why, len, "thread_state[%u] is not as the step says", t);
    }
    return true;
}

static bool mappings_same(const struct hl_vars *s1, const struct hl_vars *s2, char *why, size_t len)
{
    if (!hl_mappings_equal(s1->mappings, s1->nmappings, s2->mappings, s2->nmappings))
        return fail(why, len, "mappings changed");
    return true;
}

/* hlspec.rs: state_unchanged_besides_thread_state */
static bool unchanged_besides_thread_state(const struct hl_consts *c, const struct hl_vars *s1,
                                           const struct hl_vars *s2, unsigned tid,
                                           const struct hl_args *arg, char *why, size_t len)
{
    return thread_states_equal_except(c, s1, s2, tid, arg, why, len) && mappings_same(s1, s2, why, len) &&
           mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len) &&
           (s2->sound == s1->sound || fail(why, len, "sound changed"));
}

static bool valid_thread(const struct hl_consts *c, unsigned tid, char *why, size_t len)
{
    return tid < c->thread_no || fail(why, len, "thread %u is not valid", tid);
}

static bool thread_empty(const struct hl_vars *s1, unsigned tid, char *why, size_t len)
{
    return s1->thread_state[tid].kind == HL_ARGS_EMPTY || fail(why, len, "thread %u is not Empty", tid);
}

/* The pte of a ReadWrite: the mapping at base, or (extension, see hlspec.h) a less permissive
 * copy of it. */
static bool rw_pte_allowed(const struct hl_vars *s1, const struct hw_mapping *p, char *why, size_t len)
{
    const struct hw_pte *m = hl_mappings_get(s1->mappings, s1->nmappings, p->base);
    if (!m)
        return fail(why, len, "ReadWrite: no mapping at base 0x%" PRIx64, p->base);
    if (m->frame.base != p->pte.frame.base || m->frame.size != p->pte.frame.size ||
        !hl_flags_le(p->pte.flags, m->flags))
        return fail(why, len, "ReadWrite: pte at 0x%" PRIx64 " is not the mapping (nor a less permissive copy)",
                    p->base);
    return true;
}

static bool step_ReadWrite(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    if (s2->sound != s1->sound)
        return fail(why, len, "sound changed");
    if (!hw_aligned(st->vaddr, 8))
        return fail(why, len, "ReadWrite: vaddr not aligned");
    if (!mappings_same(s1, s2, why, len) || !valid_thread(c, st->thread_id, why, len) ||
        !thread_empty(s1, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, 0, NULL, why, len))
        return false;
    if (!st->has_pte) {
        uint64_t v;
        if (hl_mem_read(c, s1, st->vaddr, &v))
            return fail(why, len, "ReadWrite None: 0x%" PRIx64 " is in mem's domain", st->vaddr);
        if (st->rw_result != HL_RW_UNDEFINED)
            return fail(why, len, "ReadWrite None: result is not Undefined");
        return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    const struct hw_mapping *p = &st->rw_pte;
    if (!rw_pte_allowed(s1, p, why, len))
        return false;
    if (!hw_between(st->vaddr, p->base, p->base + p->pte.frame.size))
        return fail(why, len, "ReadWrite: vaddr outside the pte");
    uint64_t pa = p->pte.frame.base + (st->vaddr - p->base);
    bool in_mem = pa < c->phys_mem_size, user = !p->pte.flags.is_supervisor;
    if (st->is_store) {
        if (in_mem && user && p->pte.flags.is_writable) {
            if (st->rw_result != HL_RW_OK)
                return fail(why, len, "ReadWrite Store: result should be Ok");
            struct except ex = { true, st->vaddr };
            return mem_equal(c, s1, s2, ex, st->new_value, why, len);
        }
        if (st->rw_result != HL_RW_UNDEFINED)
            return fail(why, len, "ReadWrite Store: result should be Undefined");
        return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    if (!mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len))
        return false;
    if (in_mem && user && (!st->is_exec || !p->pte.flags.disable_execute)) {
        uint64_t v;
        if (st->rw_result != HL_RW_VALUE)
            return fail(why, len, "ReadWrite Load: result should be a Value");
        if (!hl_mem_read(c, s1, st->vaddr, &v))
            return fail(why, len, "ReadWrite Load: 0x%" PRIx64 " not in mem's domain", st->vaddr);
        if (v != st->value)
            return fail(why, len, "ReadWrite Load: read 0x%" PRIx64 " but mem holds 0x%" PRIx64,
                        st->value, v);
        return true;
    }
    if (st->rw_result != HL_RW_UNDEFINED)
        return fail(why, len, "ReadWrite Load: result should be Undefined");
    return true;
}

static bool step_Map_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    if (!hl_step_Map_enabled(c, st->vaddr, &st->pte))
        return fail(why, len, "MapStart: not step_Map_enabled");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    if (!hl_step_Map_sound(c, s1, st->vaddr, &st->pte))
        return !s2->sound || fail(why, len, "MapStart: unsound start but the state stays sound");
    struct hl_args a = { HL_ARGS_MAP, st->vaddr, true, st->pte, { false, false, false } };
    return unchanged_besides_thread_state(c, s1, s2, st->thread_id, &a, why, len);
}

static bool step_Map_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { HL_ARGS_EMPTY, 0, false, { { 0, 0 }, { false, false, false } },
                                          { false, false, false } };
    if (s2->sound != s1->sound)
        return fail(why, len, "sound changed");
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_MAP)
        return fail(why, len, "MapEnd: thread %u is not mapping", st->thread_id);
    if (hl_overlaps_existing_vmem(s1->mappings, s1->nmappings, a->vaddr, a->pte.frame.size)) {
        if (st->result_ok)
            return fail(why, len, "MapEnd: overlaps existing vmem but result is Ok");
        return mappings_same(s1, s2, why, len) && mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    }
    if (!st->result_ok)
        return fail(why, len, "MapEnd: no overlap but result is Err");
    struct hw_mapping want[HL_MAX_MAPPINGS];
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (!hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, a->vaddr, &a->pte))
        return fail(why, len, "MapEnd: too many mappings for the checker");
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return fail(why, len, "MapEnd: mappings are not s1.mappings.insert(0x%" PRIx64 ", pte)", a->vaddr);
    return mem_agree(c, s1, s2, NO_EXCEPT, why, len);
}

static bool step_Unmap_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    const struct hw_pte *pte = hl_mappings_get(s1->mappings, s1->nmappings, st->vaddr);
    if (!hl_step_Unmap_enabled(st->vaddr))
        return fail(why, len, "UnmapStart: not step_Unmap_enabled");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    if (hl_overlaps_inflight_vmem(c, s1, st->vaddr, pte ? pte->frame.size : 0))
        return !s2->sound || fail(why, len, "UnmapStart: unsound start but the state stays sound");
    struct hl_args a = { HL_ARGS_UNMAP, st->vaddr, pte != NULL, { { 0, 0 }, { false, false, false } },
                         { false, false, false } };
    if (pte)
        a.pte = *pte;
    if (!thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return fail(why, len, "sound changed");
    if (!pte)
        return mappings_same(s1, s2, why, len) && mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
    struct hw_mapping want[HL_MAX_MAPPINGS];
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    hl_mappings_remove(want, &n, st->vaddr);
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return fail(why, len, "UnmapStart: mappings are not s1.mappings.remove(0x%" PRIx64 ")", st->vaddr);
    return mem_agree(c, s2, s1, NO_EXCEPT, why, len);
}

static bool step_Unmap_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { HL_ARGS_EMPTY, 0, false, { { 0, 0 }, { false, false, false } },
                                          { false, false, false } };
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    if (s2->sound != s1->sound)
        return fail(why, len, "sound changed");
    if (!mappings_same(s1, s2, why, len) || !mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_UNMAP)
        return fail(why, len, "UnmapEnd: thread %u is not unmapping", st->thread_id);
    if (a->has_pte != st->result_ok)
        return fail(why, len, "UnmapEnd: result is %s but pte is %s", st->result_ok ? "Ok" : "Err",
                    a->has_pte ? "Some" : "None");
    return true;
}

/* Extension: ProtectStart / ProtectEnd (hlspec.h). */
static bool step_Protect_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                               const struct hl_step *st, char *why, size_t len)
{
    const struct hw_pte *pte = hl_mappings_get(s1->mappings, s1->nmappings, st->vaddr);
    if (!hl_step_Unmap_enabled(st->vaddr))
        return fail(why, len, "ProtectStart: not step_Protect_enabled");
    if (!valid_thread(c, st->thread_id, why, len) || !thread_empty(s1, st->thread_id, why, len))
        return false;
    if (hl_overlaps_inflight_vmem(c, s1, st->vaddr, pte ? pte->frame.size : 0))
        return !s2->sound || fail(why, len, "ProtectStart: unsound start but the state stays sound");
    struct hl_args a = { HL_ARGS_PROTECT, st->vaddr, pte != NULL, { { 0, 0 }, { false, false, false } },
                         st->flags };
    if (pte)
        a.pte = *pte;
    if (!thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return fail(why, len, "sound changed");
    struct hw_mapping want[HL_MAX_MAPPINGS];
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (pte) {
        struct hw_pte joined = *pte;
        joined.flags = hl_flags_join(pte->flags, st->flags);
        hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, st->vaddr, &joined);
    }
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return fail(why, len, "ProtectStart: mapping at 0x%" PRIx64 " should have the joined permissions",
                    st->vaddr);
    return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

static bool step_Protect_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { HL_ARGS_EMPTY, 0, false, { { 0, 0 }, { false, false, false } },
                                          { false, false, false } };
    if (!valid_thread(c, st->thread_id, why, len) ||
        !thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    if (s2->sound != s1->sound)
        return fail(why, len, "sound changed");
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_PROTECT)
        return fail(why, len, "ProtectEnd: thread %u is not protecting", st->thread_id);
    if (a->has_pte != st->result_ok)
        return fail(why, len, "ProtectEnd: result is %s but pte is %s", st->result_ok ? "Ok" : "Err",
                    a->has_pte ? "Some" : "None");
    struct hw_mapping want[HL_MAX_MAPPINGS];
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (a->has_pte) {
        struct hw_pte np = a->pte;
        np.flags = a->flags;
        hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, a->vaddr, &np);
    }
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return fail(why, len, "ProtectEnd: mapping at 0x%" PRIx64 " should have the new permissions",
                    a->vaddr);
    return mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

static bool step_Stutter(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         char *why, size_t len)
{
    return thread_states_equal_except(c, s1, s2, 0, NULL, why, len) && mappings_same(s1, s2, why, len) &&
           (s1->sound == s2->sound || fail(why, len, "sound changed")) &&
           mem_equal(c, s1, s2, NO_EXCEPT, 0, why, len);
}

bool hl_next_step(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                  const struct hl_step *st, char *why, size_t len)
{
    if (!s1->sound) /* next_step: an unsound state stays unsound, anything else goes */
        return !s2->sound || fail(why, len, "an unsound state became sound");
    switch (st->kind) {
    case HL_STEP_READ_WRITE: return step_ReadWrite(c, s1, s2, st, why, len);
    case HL_STEP_MAP_START: return step_Map_start(c, s1, s2, st, why, len);
    case HL_STEP_MAP_END: return step_Map_end(c, s1, s2, st, why, len);
    case HL_STEP_UNMAP_START: return step_Unmap_start(c, s1, s2, st, why, len);
    case HL_STEP_UNMAP_END: return step_Unmap_end(c, s1, s2, st, why, len);
    case HL_STEP_PROTECT_START: return step_Protect_start(c, s1, s2, st, why, len);
    case HL_STEP_PROTECT_END: return step_Protect_end(c, s1, s2, st, why, len);
    case HL_STEP_STUTTER: return step_Stutter(c, s1, s2, why, len);
    }
    return fail(why, len, "unknown step");
}
