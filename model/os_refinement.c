/* impl_u/os_refinement.rs: OSVariables::interp (the abstract state of an OS state: effective
 * mappings, thread states, mem) and OSStep::interp (the high-level step an OS step stands
 * for). See os_refinement.h. x86pt's PROTECT extension is marked where it joins the
 * permissions; the RANGE extension's part of interp is in os_refinement_range.c. The spec_pt
 * write discipline is in spec_pt.c, the invariants in os_invariant.c, and the checker that
 * drives them all, step by step, in os_checker.c. */
#include "os_refinement_internal.h"

#include <string.h>

/* ---- OSVariables::interp ----------------------------------------------------------------- */

/* inflight_unmap_vaddr contains base (given pt contains it) */
bool os_inflight_unmap(const struct os_consts *c, const struct os_vars *s, uint64_t base)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (os_core_is_unmap(s->core_states[i].kind) && !s->core_states[i].range && s->core_states[i].vaddr == base)
            return true;
    return false;
}

/* Extension: an in-flight protect at base; *other receives the permissions that hold besides
 * the table's (the new ones while waiting, the old ones once the store is made). */
bool os_inflight_protect(const struct os_consts *c, const struct os_vars *s, uint64_t base,
                         struct hw_flags *other)
{
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (!os_core_is_protect(cs->kind) || cs->range || cs->vaddr != base)
            continue;
        /* the table holds the old or the new permissions: the other of the two, or both (x86pt:
         * the store comes after OpStart, os_lib.c) */
        *other = cs->kind == OS_PROTECT_WAITING || !cs->result_ok ? cs->flags
                                                                  : hl_flags_join(cs->flags, cs->result.flags);
        return true;
    }
    return false;
}

static void interp_thread_state(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                                struct hl_vars *out)
{
    for (unsigned u = 0; u < c->ULT_no; u++) {
        const struct os_core_state *cs = &s->core_states[os_core_index(c, c->ULT2core[u])];
        struct hl_args *a = &out->thread_state[u];
        memset(a, 0, sizeof *a);
        if (cs->kind == OS_IDLE || cs->ULT_id != u)
            continue;
        a->vaddr = cs->vaddr;
        if (cs->range) { /* the range extension's arguments (hlspec.h) */
            a->kind = os_core_is_unmap(cs->kind)     ? HL_ARGS_UNMAP_RANGE
                      : os_core_is_protect(cs->kind) ? HL_ARGS_PROTECT_RANGE
                                                     : HL_ARGS_MAP_RANGE;
            a->length = cs->rg.length;
            a->paddr = cs->rg.paddr;
            a->policy = cs->rg.policy;
            a->split = cs->rg.split;
            a->flags = cs->flags;
            a->lo = cs->rg.lo;
            a->hi = cs->rg.hi;
            a->ok = cs->rg.will_ok;
            a->nomem = cs->rg.fail_alloc > 0;
            continue;
        }
        switch (cs->kind) {
        case OS_MAP_WAITING:
        case OS_MAP_EXECUTING:
            a->kind = HL_ARGS_MAP;
            a->has_pte = true;
            a->pte = cs->pte;
            break;
        case OS_UNMAP_WAITING:
        case OS_PROTECT_WAITING: {
            const struct hw_pte *p = hw_interp_get(pt, cs->vaddr);
            a->kind = cs->kind == OS_UNMAP_WAITING ? HL_ARGS_UNMAP : HL_ARGS_PROTECT;
            a->has_pte = p != NULL;
            if (p)
                a->pte = *p;
            a->flags = a->kind == HL_ARGS_PROTECT ? cs->flags : a->flags;
            break;
        }
        default:
            a->kind = os_core_is_unmap(cs->kind) ? HL_ARGS_UNMAP : HL_ARGS_PROTECT;
            a->has_pte = cs->result_ok;
            if (cs->result_ok)
                a->pte = cs->result;
            a->flags = a->kind == HL_ARGS_PROTECT ? cs->flags : a->flags;
            break;
        }
    }
}

void os_interp(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
               const struct hw_pmem *phys, const struct os_delta *overlay, struct hl_vars *out)
{
    out->sound = s->sound;
    out->mem.phys = phys;
    out->mem.n_overlay = overlay ? overlay->n : 0;
    for (unsigned i = 0; i < out->mem.n_overlay; i++) {
        out->mem.overlay_pa[i] = overlay->pa[i];
        out->mem.overlay_val[i] = overlay->old[i];
    }
    /* effective_mappings: interp_pt_mem minus inflight_unmap_vaddr (+ protect's join) */
    out->nmappings = 0;
    if (os_interp_any_range(c, s)) {
        os_interp_range_mappings(c, s, pt, out);
        interp_thread_state(c, s, pt, out);
        return;
    }
    for (size_t i = 0; i < pt->len && out->nmappings < HL_MAX_MAPPINGS; i++) {
        const struct hw_mapping *m = &pt->map[i];
        struct hw_flags other;
        if (os_inflight_unmap(c, s, m->base) || !os_range_page_landed(c, s, m))
            continue;
        struct hw_mapping *o = &out->mappings[out->nmappings++];
        *o = *m;
        if (os_inflight_protect(c, s, m->base, &other))
            o->pte.flags = hl_flags_join(m->pte.flags, other);
    }
    interp_thread_state(c, s, pt, out);
}

/* ---- OSStep::interp ---------------------------------------------------------------------- */

void os_step_interp(const struct os_consts *c, const struct os_vars *s1, const struct hl_vars *a1,
                    const struct os_step *st, struct hl_step *out)
{
    const struct os_core_state *cs = st->core < os_ncores(c) ? &s1->core_states[st->core] : NULL;
    memset(out, 0, sizeof *out);
    out->kind = HL_STEP_STUTTER;
    switch (st->kind) {
    case OS_STEP_HW:
        if (st->hw.kind == HW_STEP_WRITEBACK && cs && cs->range && cs->kind == OS_MAP_EXECUTING) {
            out->kind = HL_STEP_RANGE_STORE; /* a MapRange's page reaches memory (os_range_page_landed) */
            out->thread_id = cs->ULT_id;
            return;
        }
        if (st->hw.kind != HW_STEP_READ_WRITE)
            return; /* TLBFill, TLBEvict (the A/D step, the rl3 steps): Stutter */
        out->kind = HL_STEP_READ_WRITE;
        out->thread_id = st->ULT_id;
        out->vaddr = st->hw.vaddr;
        /* hl_pte: None if pte is None or its base is not an effective mapping (range extension,
         * per address: if vaddr is inside no effective mapping; the same in every state
         * where TLB entries are pages of the table or of an in-flight unmap) */
        out->has_pte = st->hw.has_pte && hl_mapping_containing(a1, st->hw.vaddr) != NULL;
        if (out->has_pte)
            out->rw_pte = st->hw.tlb_entry;
        if (st->hw.op.kind == HW_RW_STORE) {
            out->is_store = true;
            out->new_value = st->hw.op.new_value;
            out->rw_result = st->rw.kind == HW_RESULT_OK && out->has_pte ? HL_RW_OK : HL_RW_UNDEFINED;
        } else {
            out->is_exec = st->hw.op.is_exec;
            out->rw_result = st->rw.kind == HW_RESULT_VALUE && out->has_pte ? HL_RW_VALUE : HL_RW_UNDEFINED;
            out->value = st->rw.value;
        }
        return;
    case OS_STEP_MAP_START:
        out->kind = HL_STEP_MAP_START;
        out->thread_id = st->ULT_id;
        out->vaddr = st->vaddr;
        out->pte = st->pte;
        return;
    case OS_STEP_UNMAP_START:
    case OS_STEP_PROTECT_START:
        out->kind = st->kind == OS_STEP_UNMAP_START ? HL_STEP_UNMAP_START : HL_STEP_PROTECT_START;
        out->thread_id = st->ULT_id;
        out->vaddr = st->vaddr;
        out->flags = st->flags;
        return;
    case OS_STEP_MAP_RANGE_START:
    case OS_STEP_UNMAP_RANGE_START:
    case OS_STEP_PROTECT_RANGE_START:
        out->kind = st->kind == OS_STEP_MAP_RANGE_START     ? HL_STEP_MAP_RANGE_START
                    : st->kind == OS_STEP_UNMAP_RANGE_START ? HL_STEP_UNMAP_RANGE_START
                                                            : HL_STEP_PROTECT_RANGE_START;
        out->thread_id = st->ULT_id;
        out->vaddr = st->vaddr;
        out->length = st->length;
        out->paddr = st->paddr;
        out->policy = st->policy;
        out->split = st->split;
        out->flags = st->flags;
        out->nomem = st->kind != OS_STEP_MAP_RANGE_START && st->fail_alloc > 0;
        return;
    case OS_STEP_RANGE_STORE:
        out->kind = HL_STEP_RANGE_STORE;
        out->thread_id = cs ? cs->ULT_id : 0;
        return;
    case OS_STEP_MAP_END:
    case OS_STEP_UNMAP_END:
    case OS_STEP_PROTECT_END:
        out->kind = st->kind == OS_STEP_MAP_END     ? HL_STEP_MAP_END
                    : st->kind == OS_STEP_UNMAP_END ? HL_STEP_UNMAP_END
                                                    : HL_STEP_PROTECT_END;
        if (cs && cs->range)
            out->kind = st->kind == OS_STEP_MAP_END     ? HL_STEP_MAP_RANGE_END
                        : st->kind == OS_STEP_UNMAP_END ? HL_STEP_UNMAP_RANGE_END
                                                        : HL_STEP_PROTECT_RANGE_END;
        out->thread_id = cs ? cs->ULT_id : 0;
        out->result_ok = st->result_ok;
        out->nomem = st->nomem;
        return;
    default:
        return; /* every other step: Stutter */
    }
}
