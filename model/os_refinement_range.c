/* x86pt's extension of impl_u/os_refinement.rs: RANGES, their part of OSVariables::interp
 * (hlspec.h): each mapping straddling an in-flight split range is split as the library will
 * split it, pieces inside an in-flight Ok UnmapRange are not effective, pieces inside an
 * in-flight Ok ProtectRange carry the join of the old (the snapshot's) and new permissions.
 * The rest of interp, and OSStep::interp of the range steps, are in os_refinement.c. */
#include "os_internal.h"
#include "os_refinement_internal.h"

/* A range operation whose effect is in the abstract state: Ok, non-empty, Unmap/ProtectRange
 * (MapRange's pages appear in the table one store at a time, and that is its effect). */
static bool range_effective(const struct os_core_state *cs)
{
    return cs->kind != OS_IDLE && cs->range && cs->rg.will_ok && !cs->rg.fail_alloc && cs->rg.length &&
           (os_core_is_unmap(cs->kind) || os_core_is_protect(cs->kind));
}

static bool piece_inside(const struct os_core_state *cs, const struct hw_mapping *p)
{
    return p->base >= cs->vaddr && p->base + p->pte.frame.size <= cs->vaddr + cs->rg.length;
}

struct eff_ctx {
    const struct os_consts *c;
    const struct os_vars *s;
};

/* effective_mappings, per piece: an Unmap/ProtectRange in flight removes the pieces inside
 * its range, or joins their permissions with the new ones (and, once it has run, with the old
 * ones its snapshot holds: the table then has the new ones). */
static bool eff_piece(void *ctx, struct hw_mapping *p)
{
    const struct eff_ctx *x = ctx;
    for (unsigned i = 0; i < os_ncores(x->c); i++) {
        const struct os_core_state *cs = &x->s->core_states[i];
        if (!range_effective(cs) || !piece_inside(cs, p))
            continue;
        if (os_core_is_unmap(cs->kind))
            return false;
        p->pte.flags = hl_flags_join(p->pte.flags, cs->flags);
        if (cs->kind != OS_PROTECT_WAITING && x->s->run.snap) {
            const struct hw_mapping *o = os_snapshot_find(x->s->run.snap, p->base);
            if (o)
                p->pte.flags = hl_flags_join(p->pte.flags, o->pte.flags);
        }
    }
    return true;
}

/* Store buffers (os_storebuf.c): a page an in-flight MapRange stored becomes its effect when
 * the store reaches memory, where every core's walk finds it (the Writeback step is then its
 * RangeStore); until then only the writer's own core sees it. */
bool os_range_page_landed(const struct os_consts *c, const struct os_vars *s, const struct hw_mapping *m)
{
    if (os_sbuf_writer(c, s) < 0)
        return true;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (cs->kind != OS_MAP_EXECUTING || !cs->range || !piece_inside(cs, m))
            continue;
        struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
        struct hw_walk w;
        return hw_pt_walk(&v, m->base, &w) == HW_WALK_PAGE && w.base == m->base && hw_pte_equal(&w.pte, &m->pte);
    }
    return true;
}

bool os_interp_any_range(const struct os_consts *c, const struct os_vars *s)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (range_effective(&s->core_states[i]))
            return true;
    return false;
}

/* effective_mappings with range operations in flight: each mapping that straddles a split
 * range is split as the library will split it (hlspec.h: split), so that the abstract state
 * does not change when the table's split store lands. */
void os_interp_range_mappings(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                              struct hl_vars *out)
{
    struct eff_ctx x = { c, s };
    for (size_t i = 0; i < pt->len; i++) {
        const struct hw_mapping *m = &pt->map[i];
        uint64_t first = 0, last = 0;
        bool split = false;
        if (os_inflight_unmap(c, s, m->base) || !os_range_page_landed(c, s, m))
            continue;
        for (unsigned j = 0; j < os_ncores(c) && !split; j++) {
            const struct os_core_state *cs = &s->core_states[j];
            if (range_effective(cs) && cs->rg.split && hl_straddles(m, cs->vaddr, cs->vaddr + cs->rg.length - 1)) {
                split = true;
                first = cs->vaddr;
                last = cs->vaddr + cs->rg.length - 1;
            }
        }
        struct hw_mapping one = *m;
        struct hw_flags other;
        if (os_inflight_protect(c, s, m->base, &other))
            one.pte.flags = hl_flags_join(m->pte.flags, other);
        bool room = true;
        if (split)
            room = hl_split_append(&one, first, last, out->mappings, &out->nmappings, HL_MAX_MAPPINGS, eff_piece, &x);
        else if (eff_piece(&x, &one))
            room = out->nmappings < HL_MAX_MAPPINGS && (out->mappings[out->nmappings++] = one, true);
        if (!room) {
            out->nmappings = HL_MAX_MAPPINGS; /* os_checker_step reports it */
            return;
        }
    }
}
