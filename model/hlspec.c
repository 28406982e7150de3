/* spec_t/hlspec.rs: the high-level state machine, as a checkable relation. See hlspec.h. The
 * extensions have files of their own: hlspec_protect.c (PROTECT), hlspec_range.c (RANGES);
 * the representation of the state (mappings, mem) is in hlspec_state.c, the formatting of
 * steps in hlspec_format.c. */
#include "hlspec_internal.h"
#include "why.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* scratch for the mappings a step should produce (HL_MAX_MAPPINGS is large) */
_Thread_local struct hw_mapping hl_want[HL_MAX_MAPPINGS];

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
               a->lo == b->lo && a->hi == b->hi && a->ok == b->ok && a->nomem == b->nomem &&
               hl_flags_equal(a->flags, b->flags);
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
        hl_want[i] = s->mappings[i];
    }
    /* pmem_no_overlap: sorted by frame, neighbours suffice (sizes are over zero) */
    qsort(hl_want, s->nmappings, sizeof *hl_want, by_frame);
    for (unsigned i = 0; i + 1 < s->nmappings; i++)
        if (hw_overlap(hl_want[i].pte.frame, hl_want[i + 1].pte.frame))
            return model_refuse(why, len, "inv: pmem_no_overlap (0x%" PRIx64 " and 0x%" PRIx64 ")", hl_want[i].base,
                        hl_want[i + 1].base);
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

bool hl_thread_states_equal_except(const struct hl_consts *c, const struct hl_vars *s1,
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

bool hl_mappings_same(const struct hl_vars *s1, const struct hl_vars *s2, char *why, size_t len)
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
    return hl_thread_states_equal_except(c, s1, s2, tid, arg, why, len) && hl_mappings_same(s1, s2, why, len) &&
           hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len) &&
           (s2->sound == s1->sound || model_refuse(why, len, "sound changed"));
}

bool hl_valid_thread(const struct hl_consts *c, unsigned tid, char *why, size_t len)
{
    return tid < c->thread_no || model_refuse(why, len, "thread %u is not valid", tid);
}

bool hl_thread_empty(const struct hl_vars *s1, unsigned tid, char *why, size_t len)
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
    const struct hw_mapping *c = hl_mapping_containing(s1, vaddr);
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
    if (!hl_mappings_same(s1, s2, why, len) || !hl_valid_thread(c, st->thread_id, why, len) ||
        !hl_thread_empty(s1, st->thread_id, why, len) ||
        !hl_thread_states_equal_except(c, s1, s2, 0, NULL, why, len))
        return false;
    if (!st->has_pte) {
        uint64_t v;
        if (hl_mem_read(c, s1, st->vaddr, &v))
            return model_refuse(why, len, "ReadWrite None: 0x%" PRIx64 " is in mem's domain", st->vaddr);
        if (st->rw_result != HL_RW_UNDEFINED)
            return model_refuse(why, len, "ReadWrite None: result is not Undefined");
        return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
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
            struct hl_except ex = { true, st->vaddr };
            return hl_mem_equal(c, s1, s2, ex, st->new_value, why, len);
        }
        if (st->rw_result != HL_RW_UNDEFINED)
            return model_refuse(why, len, "ReadWrite Store: result should be Undefined");
        return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
    }
    if (!hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len))
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
    if (!hl_valid_thread(c, st->thread_id, why, len) || !hl_thread_empty(s1, st->thread_id, why, len))
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
    if (!hl_valid_thread(c, st->thread_id, why, len) ||
        !hl_thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_MAP)
        return model_refuse(why, len, "MapEnd: thread %u is not mapping", st->thread_id);
    if (st->nomem)
        return hl_step_End_nomem(c, s1, s2, st, why, len);
    if (hl_overlaps_existing_vmem(s1->mappings, s1->nmappings, a->vaddr, a->pte.frame.size)) {
        if (st->result_ok)
            return model_refuse(why, len, "MapEnd: overlaps existing vmem but result is Ok");
        return hl_mappings_same(s1, s2, why, len) && hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
    }
    if (!st->result_ok)
        return model_refuse(why, len, "MapEnd: no overlap but result is Err");
    struct hw_mapping *want = hl_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (!hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, a->vaddr, &a->pte))
        return model_refuse(why, len, "MapEnd: too many mappings for the checker");
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "MapEnd: mappings are not s1.mappings.insert(0x%" PRIx64 ", pte)", a->vaddr);
    return hl_mem_agree(c, s1, s2, hl_no_except, why, len);
}

static bool step_Unmap_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                             const struct hl_step *st, char *why, size_t len)
{
    const struct hw_pte *pte = hl_mappings_get(s1->mappings, s1->nmappings, st->vaddr);
    if (!hl_step_Unmap_enabled(st->vaddr))
        return model_refuse(why, len, "UnmapStart: not step_Unmap_enabled");
    if (!hl_valid_thread(c, st->thread_id, why, len) || !hl_thread_empty(s1, st->thread_id, why, len))
        return false;
    if (hl_overlaps_inflight_vmem(c, s1, st->vaddr, pte ? pte->frame.size : 0))
        return !s2->sound || model_refuse(why, len, "UnmapStart: unsound start but the state stays sound");
    struct hl_args a = { .kind = HL_ARGS_UNMAP, .vaddr = st->vaddr, .has_pte = pte != NULL };
    if (pte)
        a.pte = *pte;
    if (!hl_thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!pte)
        return hl_mappings_same(s1, s2, why, len) && hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
    struct hw_mapping *want = hl_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    hl_mappings_remove(want, &n, st->vaddr);
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "UnmapStart: mappings are not s1.mappings.remove(0x%" PRIx64 ")", st->vaddr);
    return hl_mem_agree(c, s2, s1, hl_no_except, why, len);
}

static bool step_Unmap_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { .kind = HL_ARGS_EMPTY };
    if (!hl_valid_thread(c, st->thread_id, why, len) ||
        !hl_thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!hl_mappings_same(s1, s2, why, len) || !hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_UNMAP)
        return model_refuse(why, len, "UnmapEnd: thread %u is not unmapping", st->thread_id);
    if (a->has_pte != st->result_ok)
        return model_refuse(why, len, "UnmapEnd: result is %s but pte is %s", st->result_ok ? "Ok" : "Err",
                    a->has_pte ? "Some" : "None");
    return true;
}

static bool step_Stutter(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         char *why, size_t len)
{
    return hl_thread_states_equal_except(c, s1, s2, 0, NULL, why, len) && hl_mappings_same(s1, s2, why, len) &&
           (s1->sound == s2->sound || model_refuse(why, len, "sound changed")) &&
           hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
}

bool hl_next_step(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                  const struct hl_step *st, char *why, size_t len)
{
    if (!s1->sound) /* next_step: an unsound state stays unsound, anything else goes */
        return !s2->sound || model_refuse(why, len, "an unsound state became sound");
    switch (st->kind) { /* the extensions' steps: hlspec_protect.c, hlspec_range.c */
    case HL_STEP_READ_WRITE: return step_ReadWrite(c, s1, s2, st, why, len);
    case HL_STEP_MAP_START: return step_Map_start(c, s1, s2, st, why, len);
    case HL_STEP_MAP_END: return step_Map_end(c, s1, s2, st, why, len);
    case HL_STEP_UNMAP_START: return step_Unmap_start(c, s1, s2, st, why, len);
    case HL_STEP_UNMAP_END: return step_Unmap_end(c, s1, s2, st, why, len);
    case HL_STEP_PROTECT_START: return hl_step_Protect_start(c, s1, s2, st, why, len);
    case HL_STEP_PROTECT_END: return hl_step_Protect_end(c, s1, s2, st, why, len);
    case HL_STEP_STUTTER: return step_Stutter(c, s1, s2, why, len);
    case HL_STEP_MAP_RANGE_START:
    case HL_STEP_UNMAP_RANGE_START:
    case HL_STEP_PROTECT_RANGE_START: return hl_step_Range_start(c, s1, s2, st, why, len);
    case HL_STEP_MAP_RANGE_END:
    case HL_STEP_UNMAP_RANGE_END:
    case HL_STEP_PROTECT_RANGE_END: return hl_step_Range_end(c, s1, s2, st, why, len);
    case HL_STEP_RANGE_STORE: return hl_step_Range_store(c, s1, s2, st, why, len);
    }
    return model_refuse(why, len, "unknown step");
}
