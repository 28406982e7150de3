/*
 * The OS invariants: os.rs OSVariables::inv (wf, valid_ids, successful_unmaps,
 * overlapping_vmem_inv) and tlb_inv (shootdown_cores_valid, successful_IPI,
 * TLB_dom_subset_of_pt_and_inflight_unmap_vaddr), which os_invariant.rs sets out to prove.
 *
 * Deviation: os.rs's Unmap_vaddr covers UnmapOpDone and UnmapShootdownWaiting only, but the
 * seed's own UnmapOpStart removes the mapping while a TLB may still hold it (and the seed's
 * proof of this case is `assume(false)`), so x86pt also counts UnmapOpExecuting with an Ok
 * result. x86pt's additions: a core with a recorded operation holds the lock; every TLB entry
 * agrees with the table (same frame, at most the permissions in effect, protect's join
 * included) or belongs to an in-flight unmap and agrees with the removed mapping likewise; successful_IPI
 * for protect shootdowns.
 */
#include "os_internal.h"
#include "os_refinement.h"
#include "why.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>


/* os.rs: wf, valid_ids, successful_unmaps */
static bool basic_inv(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                      char *why, size_t len)
{
    int holder = -1;
    for (unsigned u = 0; u < c->ULT_no; u++)
        if (!hw_valid_core(&c->hw, c->ULT2core[u]))
            return model_refuse(why, len, "wf: thread %u pinned to an invalid core", u);
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (os_core_holds_lock(cs)) {
            if (holder >= 0)
                return model_refuse(why, len, "wf: cores %d and %u both hold the kernel lock", holder, i);
            holder = (int)i;
        }
        if (cs->kind == OS_IDLE)
            continue;
        if (cs->ULT_id >= c->ULT_no || os_core_index(c, c->ULT2core[cs->ULT_id]) != i)
            return model_refuse(why, len, "valid_ids: core %u runs thread %u, not pinned to it", i, cs->ULT_id);
        /* x86pt: the unmap's store comes after OpStart, as a step of its own (os_lib.c) */
        bool after_op = !cs->range && ((cs->kind == OS_UNMAP_OP_EXECUTING && cs->stored) ||
                                       cs->kind == OS_UNMAP_OP_DONE || cs->kind == OS_UNMAP_SHOOTDOWN_WAITING);
        if (after_op && hw_interp_get(pt, cs->vaddr))
            return model_refuse(why, len, "successful_unmaps: 0x%" PRIx64 " is still mapped after core %u's unmap",
                        cs->vaddr, i);
    }
    for (unsigned i = os_ncores(c); i < OS_MAX_CORES; i++)
        if (s->core_states[i].kind != OS_IDLE)
            return model_refuse(why, len, "wf: state for core %u, which does not exist", i);
    if (s->run.buf && holder < 0)
        return model_refuse(why, len, "wf: a page-table operation in flight without the lock");
    return true;
}

/* os.rs: overlapping_vmem_inv */
static bool overlapping_vmem_inv(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                                 char *why, size_t len)
{
    if (!s->sound)
        return true;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *a = &s->core_states[i];
        if (a->kind == OS_IDLE)
            continue;
        struct hw_mem_region ra = os_core_vregion(c, s, a);
        for (unsigned j = i + 1; j < os_ncores(c); j++) {
            const struct os_core_state *b = &s->core_states[j];
            struct hw_mem_region rb = os_core_vregion(c, s, b);
            if (b->kind != OS_IDLE && hw_overlap(ra, rb))
                return model_refuse(why, len, "inflight_map_no_overlap_inflight_vmem: cores %u and %u", i, j);
        }
    }
    /* existing_map_no_overlap_existing_vmem: sorted by base, neighbours suffice */
    for (size_t i = 0; i + 1 < pt->len; i++)
        if (pt->map[i + 1].base < pt->map[i].base + pt->map[i].pte.frame.size)
            return model_refuse(why, len, "existing_map_no_overlap_existing_vmem: 0x%" PRIx64 " and 0x%" PRIx64,
                        pt->map[i].base, pt->map[i + 1].base);
    return true;
}

/* The permissions in effect for the table's mapping m (its own, joined with an in-flight
 * protect's other; range extension: with a protect_range's new and old ones). */
static struct hw_flags flags_in_effect(const struct os_consts *c, const struct os_vars *s, const struct hw_mapping *m)
{
    struct hw_flags f = m->pte.flags;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (!os_core_is_protect(cs->kind))
            continue;
        if (cs->range) {
            if (!cs->rg.will_ok || m->base + m->pte.frame.size <= cs->vaddr || m->base >= cs->vaddr + cs->rg.length)
                continue;
            f = hl_flags_join(f, cs->flags);
            const struct hw_mapping *o = cs->kind != OS_PROTECT_WAITING ? os_snapshot_find(s->run.snap, m->base) : NULL;
            if (o)
                f = hl_flags_join(f, o->pte.flags);
            continue;
        }
        if (cs->vaddr != m->base)
            continue;
        struct hw_flags other = cs->kind == OS_PROTECT_WAITING || !cs->result_ok
                                    ? cs->flags
                                    : hl_flags_join(cs->flags, cs->result.flags);
        return hl_flags_join(f, other);
    }
    return f;
}

struct effect_ctx {
    const struct os_consts *c;
    const struct os_vars *s;
};

static struct hw_flags effect_fn(const void *ctx, const struct hw_mapping *m)
{
    const struct effect_ctx *x = ctx;
    return flags_in_effect(x->c, x->s, m);
}

/* Unmap_vaddr (with UnmapOpExecuting, see the top): the core whose unmap removed base. */
static const struct os_core_state *unmapping(const struct os_consts *c, const struct os_vars *s, uint64_t base)
{
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if ((cs->kind == OS_UNMAP_OP_EXECUTING || cs->kind == OS_UNMAP_OP_DONE ||
             cs->kind == OS_UNMAP_SHOOTDOWN_WAITING) &&
            cs->result_ok && !cs->range && cs->vaddr == base)
            return cs;
    }
    return NULL;
}

/* Range extension: the entry agrees with the snapshot of the range operation in flight (the
 * table as it was when the operation took the lock): inside one of its mappings, the same
 * physical addresses, at most its permissions. */
static bool agrees_with_snapshot(const struct os_vars *s, const struct hw_mapping *m)
{
    const struct hw_mapping *o = os_snapshot_find(s->run.snap, m->base);
    return o && m->base + m->pte.frame.size <= o->base + o->pte.frame.size &&
           m->pte.frame.base - m->base == o->pte.frame.base - o->base && hl_flags_le(m->pte.flags, o->pte.flags);
}

/* One TLB entry against the table (and the operations in flight). */
static bool tlb_entry_ok(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt, unsigned core,
                         const struct hw_mapping *m, char *why, size_t len)
{
    const struct hw_pte *p = hw_interp_get(pt, m->base);
    struct effect_ctx x = { c, s };
    if (p && p->frame.base == m->pte.frame.base && p->frame.size == m->pte.frame.size) {
        struct hw_mapping pm = { m->base, *p };
        if (hl_flags_le(m->pte.flags, flags_in_effect(c, s, &pm)) || agrees_with_snapshot(s, m))
            return true;
        return model_refuse(why, len, "TLB of core %u holds 0x%" PRIx64 " unlike the page table", core, m->base);
    }
    const struct os_core_state *u = p ? NULL : unmapping(c, s, m->base);
    if (u) {
        if (u->result.frame.base != m->pte.frame.base || u->result.frame.size != m->pte.frame.size ||
            !hl_flags_le(m->pte.flags, u->result.flags))
            return model_refuse(why, len, "TLB of core %u holds 0x%" PRIx64 " unlike the unmapped entry", core, m->base);
        return true;
    }
    /* range extension: per address (a huge page the table now has split), or what the
     * range operation in flight may leave in TLBs until it ends */
    if (os_interp_agrees(pt, m, effect_fn, &x) || agrees_with_snapshot(s, m))
        return true;
    if (!p && !hw_interp_find(pt, m->base))
        return model_refuse(why, len, "TLB_dom_subset_of_pt_and_inflight_unmap_vaddr: core %u caches 0x%" PRIx64, core,
                    m->base);
    return model_refuse(why, len, "TLB of core %u holds 0x%" PRIx64 " unlike the page table", core, m->base);
}

/* os.rs: tlb_inv (+ TLB values, see the top) */
static bool tlb_inv(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                    char *why, size_t len)
{
    const struct os_shootdown *sd = &s->TLB_Shootdown;
    if (os_ncores(c) < 32 && (sd->open_requests >> os_ncores(c)))
        return model_refuse(why, len, "shootdown_cores_valid: request for a core that does not exist");
    const struct os_core_state *dispatcher = NULL;
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (s->core_states[i].kind == OS_UNMAP_SHOOTDOWN_WAITING ||
            s->core_states[i].kind == OS_PROTECT_SHOOTDOWN_WAITING)
            dispatcher = &s->core_states[i];
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct hw_tlb *t = hw_core_tlb_const(&c->hw, &s->hw, os_core_of(c, i));
        for (uint32_t e = 0; e < t->len; e++) {
            const struct hw_mapping *m = &t->entries[e];
            if (!tlb_entry_ok(c, s, pt, i, m, why, len))
                return false;
            if (!dispatcher || (sd->open_requests >> i & 1))
                continue;
            /* successful_IPI: an acknowledged core no longer caches the vaddr (range extension:
             * caches nothing in the flush range that disagrees with the table) */
            if (dispatcher->range) {
                if (os_tlb_entry_in_shootdown(sd, m) && !os_interp_agrees(pt, m, NULL, NULL))
                    return model_refuse(why, len, "successful_IPI: core %u acknowledged but caches 0x%" PRIx64
                                " unlike the table, in the flush range", i, m->base);
                continue;
            }
            const struct hw_pte *p = hw_interp_get(pt, m->base);
            if (m->base == dispatcher->vaddr) {
                if (dispatcher->kind == OS_UNMAP_SHOOTDOWN_WAITING)
                    return model_refuse(why, len, "successful_IPI: core %u acknowledged but caches 0x%" PRIx64, i, m->base);
                if (!p || !hl_flags_le(m->pte.flags, p->flags))
                    return model_refuse(why, len, "successful_IPI: core %u acknowledged but caches old permissions of 0x%" PRIx64,
                                i, m->base);
            }
        }
    }
    return true;
}

bool os_inv(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt, char *why, size_t len)
{
    return basic_inv(c, s, pt, why, len) && overlapping_vmem_inv(c, s, pt, why, len) && tlb_inv(c, s, pt, why, len);
}

/* x86pt's own invariant, while no operation is in flight (x86pt.h: reclaim; mem.rs: frames
 * come back): every allocated page-table frame is reachable, and no reachable directory but
 * the root is empty. */
struct tidy_ctx {
    const struct os_consts *c;
    uint8_t reached[OS_PT_FRAMES_MAX];
    uint16_t present[OS_PT_FRAMES_MAX];
    bool outside;
};

static bool tidy_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr, const struct hw_pde *pde,
                       const struct hw_pte *combined)
{
    struct tidy_ctx *t = ctx;
    uint64_t parent = entry_pa / HW_PAGE_SIZE;
    (void)layer, (void)vaddr, (void)combined;
    if (parent < OS_PT_FRAMES_MAX)
        t->present[parent]++;
    if (pde->kind == HW_PDE_DIRECTORY) {
        uint64_t f = pde->addr / HW_PAGE_SIZE;
        if (f < OS_PT_FRAMES_MAX)
            t->reached[f] = 1;
        else
            t->outside = true;
    }
    return true;
}

bool os_inv_tidy(const struct os_consts *c, const struct os_vars *s, char *why, size_t len)
{
    struct tidy_ctx t = { .c = c };
    struct os_wmem m;
    if (!os_wmem_get(c, s, &m))
        return model_refuse(why, len, "out of memory");
    struct hw_pt_view v = os_wmem_view(c, s, &m);
    uint64_t root = s->hw.global_pt.cr3 / HW_PAGE_SIZE;
    hw_pt_visit(&v, tidy_visit, &t, NULL);
    os_wmem_put(&m);
    if (root < OS_PT_FRAMES_MAX)
        t.reached[root] = 1;
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++) {
        bool allocated = !((s->pt_free[f / 64] >> (f % 64)) & 1);
        if (allocated && !t.reached[f])
            return model_refuse(why, len, "x86pt tidy: frame 0x%" PRIx64 " is allocated but unreachable (leaked)",
                        (uint64_t)f * HW_PAGE_SIZE);
        if (t.reached[f] && !allocated)
            return model_refuse(why, len, "x86pt tidy: directory 0x%" PRIx64 " is linked but free in the pool",
                        (uint64_t)f * HW_PAGE_SIZE);
        if (t.reached[f] && f != root && !t.present[f])
            return model_refuse(why, len, "x86pt tidy: directory 0x%" PRIx64 " is linked but empty (not reclaimed)",
                        (uint64_t)f * HW_PAGE_SIZE);
    }
    return true;
}
