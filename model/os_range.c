/* x86pt's extension of spec_t/os.rs: RANGES (map_range / unmap_range / protect_range; os.h
 * sets out the states and steps, hlspec.h the high-level side). Here: the range operations'
 * Start and OpStart steps, the frames an in-flight range operation occupies, and per-address
 * agreement of a TLB entry with the table. The steps a range operation shares with its single
 * counterpart (RangeStore = ViewStutter, MapEnd, *OpEnd, the shootdown, *End) are in os.c. */
#include "os_internal.h"
#include "why.h"

#include <stdlib.h>

bool os_interp_agrees(const struct hw_interp *pt, const struct hw_mapping *e, os_flags_fn in_effect, const void *ctx)
{
    uint64_t end = e->base + e->pte.frame.size;
    for (uint64_t a = e->base; a < end;) {
        const struct hw_mapping *m = hw_interp_find(pt, a);
        if (!m || m->pte.frame.base + (a - m->base) != e->pte.frame.base + (a - e->base))
            return false;
        struct hw_flags f = in_effect ? in_effect(ctx, m) : m->pte.flags;
        if (!hl_flags_le(e->pte.flags, f))
            return false;
        a = m->base + m->pte.frame.size;
    }
    return true;
}

bool os_agrees_with_pt(const struct os_consts *c, const struct os_vars *s, const struct hw_mapping *e)
{
    struct hw_pte p;
    if (os_pt_get(c, s, e->base, &p) && p.frame.base == e->pte.frame.base && p.frame.size == e->pte.frame.size)
        return hl_flags_le(e->pte.flags, p.flags);
    struct hw_interp pt = { 0 };
    if (!os_interp_pt_mem(c, s, &pt, NULL, 0))
        return false;
    bool ok = os_interp_agrees(&pt, e, NULL, NULL);
    hw_interp_fini(&pt);
    return ok;
}

/* os.rs: candidate_mapping_overlaps_inflight_pmem, the part of a range operation in flight
 * (core state cs, range set): does cand's frame overlap the frames it occupies? */
bool os_range_overlaps_inflight_pmem(const struct os_consts *c, const struct os_vars *s, const struct os_core_state *cs,
                                     const struct hw_pte *cand)
{
    /* MapRange: its frames; UnmapRange: the frames of the pages in its region (the recorded
     * ones once it runs), stricter than the HL spec (hlspec.h) */
    struct hw_mem_region fr = { cs->rg.paddr, cs->rg.length }, vr = { cs->rg.lo, cs->rg.hi - cs->rg.lo };
    if (os_core_is_protect(cs->kind) || !cs->rg.length)
        return false;
    if (cs->kind == OS_MAP_WAITING || cs->kind == OS_MAP_EXECUTING)
        return hw_overlap(cand->frame, fr);
    if (s->run.snap && cs->kind != OS_UNMAP_WAITING) {
        for (unsigned j = 0; j < s->run.snap->n; j++)
            if (hw_overlap(cand->frame, s->run.snap->map[j].pte.frame))
                return true;
        return false;
    }
    return os_overlaps_pt_pmem(c, s, cand, vr);
}

/* Range extension (hlspec.h): MapRangeStart / UnmapRangeStart / ProtectRangeStart: Idle ->
 * the Waiting state of the operation, with its region and the contract's result fixed now
 * (hl_range_region over interp_pt_mem, the same definition the HL spec uses). */
enum os_step_status os_step_range_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    static const enum hl_args_kind kinds[] = { HL_ARGS_MAP_RANGE, HL_ARGS_UNMAP_RANGE, HL_ARGS_PROTECT_RANGE };
    static const enum os_core_kind waiting[] = { OS_MAP_WAITING, OS_UNMAP_WAITING, OS_PROTECT_WAITING };
    unsigned op = (unsigned)(st->kind - OS_STEP_MAP_RANGE_START);
    if (!os_ult_ok(c, s1, st->ULT_id, why, len))
        return OS_STEP_DISABLED;
    struct hl_consts hc = { c->ULT_no, c->hw.phys_mem_size, c->hw.maxphyaddr };
    if (!hl_step_Range_enabled(&hc, kinds[op], st->vaddr, st->length, st->paddr, st->policy))
        return model_refuse(why, len, "not step_%s_enabled", os_step_name(st->kind)), OS_STEP_DISABLED;
    unsigned core = os_core_index(c, c->ULT2core[st->ULT_id]);
    struct os_core_state ns = { .kind = waiting[op], .ULT_id = st->ULT_id, .vaddr = st->vaddr, .range = true };
    ns.rg.length = st->length;
    if (op == 0)
        ns.rg.paddr = st->paddr, ns.rg.policy = st->policy;
    else
        ns.rg.split = st->split;
    if (op != 1)
        ns.flags = st->flags;
    struct hw_interp pt = { 0 };
    if (!os_interp_pt_mem(c, s1, &pt, why, len))
        return OS_STEP_DISABLED; /* malformed: the checker reports it elsewhere */
    hl_range_region(pt.map, pt.len, kinds[op], st->vaddr, st->length, ns.rg.split, &ns.rg.lo, &ns.rg.hi,
                    &ns.rg.will_ok);
    /* x86pt's extension (hlspec.h: nomem): the allocator will refuse one of the directories
     * the split needs, the fail_alloc-th */
    unsigned dirs = hl_range_split_dirs(pt.map, pt.len, st->vaddr, st->length);
    hw_interp_fini(&pt);
    if (st->fail_alloc && (op == 0 || !ns.rg.will_ok || st->fail_alloc > dirs))
        return model_refuse(why, len, "the allocator refuses directory %u of a split that needs %u", st->fail_alloc,
                            ns.rg.will_ok && op ? dirs : 0),
               OS_STEP_DISABLED;
    ns.rg.fail_alloc = op ? st->fail_alloc : 0;
    bool sound = !os_overlaps_inflight_vmem(c, s1, ns.rg.lo, ns.rg.hi - ns.rg.lo);
    if (op == 0 && st->length) {
        struct hw_pte fr = { { st->paddr, st->length }, st->flags };
        sound = sound && !os_overlaps_existing_pmem(c, s1, &fr) && !os_overlaps_inflight_pmem(c, s1, &fr);
    }
    st->core = core;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->core_states[core] = ns;
    s2->sound = s1->sound && sound;
    return OS_STEP_OK;
}

/* Directories a range operation may need: map_range one per slot of each directory layer
 * that the range meets; a split at most three per end. The OS waits (the step is disabled)
 * while the pool holds fewer, and the implementation may then say NOMEM. */
static unsigned range_dirs_bound(const struct os_core_state *cs)
{
    if (!cs->rg.length)
        return 0;
    if (!(cs->kind == OS_MAP_WAITING))
        return cs->rg.split ? 6 : 0;
    uint64_t first = cs->vaddr, last = cs->vaddr + cs->rg.length - 1, n = 0;
    for (unsigned sh = 39; sh >= 21; sh -= 9)
        n += (last >> sh) - (first >> sh) + 1;
    return n > OS_PT_FRAMES_MAX ? OS_PT_FRAMES_MAX + 1 : (unsigned)n;
}

/* The snapshot of a range operation: the mappings meeting its region [lo, hi). */
static bool range_snapshot(const struct os_consts *c, const struct os_vars *s, const struct os_core_state *cs,
                           struct hw_mapping **old, unsigned *nold, char *why, size_t len)
{
    struct hw_interp pt = { 0 };
    *old = NULL;
    *nold = 0;
    if (!os_interp_pt_mem(c, s, &pt, why, len))
        return false;
    struct hw_mem_region r = { cs->rg.lo, cs->rg.hi - cs->rg.lo };
    *old = malloc((pt.len ? pt.len : 1) * sizeof **old);
    if (!*old) {
        hw_interp_fini(&pt);
        return false;
    }
    for (size_t i = 0; i < pt.len; i++) {
        struct hw_mem_region m = { pt.map[i].base, pt.map[i].pte.frame.size };
        if (r.size && hw_overlap(r, m))
            (*old)[(*nold)++] = pt.map[i];
    }
    hw_interp_fini(&pt);
    return true;
}

/* Range extension: Map/Unmap/ProtectOpStart of a range operation: takes the lock when the pool
 * holds the directories it may need, records the snapshot; the library has not run yet. */
enum os_step_status os_step_range_op_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                           struct os_vars *s2, unsigned op, char *why, size_t len)
{
    static const enum os_core_kind executing[] = { OS_MAP_EXECUTING, OS_UNMAP_OP_EXECUTING, OS_PROTECT_OP_EXECUTING };
    const struct os_core_state *cs = &s1->core_states[st->core];
    unsigned bound = range_dirs_bound(cs);
    if (os_pt_free_count(c, s1) < bound)
        return model_refuse(why, len, "the pool holds fewer than the %u directories the operation may need", bound),
               OS_STEP_DISABLED;
    struct hw_mapping *old;
    unsigned nold;
    if (!range_snapshot(c, s1, cs, &old, &nold, why, len))
        return OS_STEP_NOMEM;
    if (!os_vars_copy(s2, s1)) {
        free(old);
        return OS_STEP_NOMEM;
    }
    if (!os_run_start(&s2->run, old, nold)) {
        os_vars_fini(s2);
        return OS_STEP_NOMEM;
    }
    struct os_core_state *ns = os_cs_of(s2, st->core);
    ns->kind = executing[op];
    ns->result_ok = st->result_ok = cs->rg.will_ok;
    if (op == OS_PT_PROTECT && cs->rg.length)
        for (unsigned i = 0; i < nold; i++) {
            struct hw_mem_region m = { old[i].base, old[i].pte.frame.size }, rr = { cs->vaddr, cs->rg.length };
            if (hw_overlap(m, rr) && !hl_flags_le(old[i].pte.flags, cs->flags))
                ns->rg.shrinks = true;
        }
    return OS_STEP_OK;
}

