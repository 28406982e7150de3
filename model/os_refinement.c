/* impl_u/os_refinement.rs, checked: interp, OSStep::interp, spec_pt, and the per-step driver.
 * See os_refinement.h. */
#include "os_refinement.h"
#include "why.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


const char *os_check_name(enum os_check k)
{
    static const char *const n[] = { "none", "write discipline (spec_pt)", "Accessed/Dirty preservation",
                                     "refinement (hlspec next_step)", "OS invariant",
                                     "high-level invariant", "well-formed page table", "flush report" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

enum os_check os_check_of_step(const struct os_step *st)
{
    switch (st->check) {
    case OS_CHECKID_AD_LOST: return OS_CHECK_AD_LOST;
    case OS_CHECKID_FLUSH_REPORT: return OS_CHECK_FLUSH_REPORT;
    default: return OS_CHECK_WRITE_DISCIPLINE;
    }
}

/* ---- OSVariables::interp ----------------------------------------------------------------- */

/* inflight_unmap_vaddr contains base (given pt contains it) */
static bool inflight_unmap(const struct os_consts *c, const struct os_vars *s, uint64_t base)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (os_core_is_unmap(s->core_states[i].kind) && !s->core_states[i].range && s->core_states[i].vaddr == base)
            return true;
    return false;
}

/* Extension: an in-flight protect at base; *other receives the permissions that hold besides
 * the table's (the new ones while waiting, the old ones once the store is made). */
static bool inflight_protect(const struct os_consts *c, const struct os_vars *s, uint64_t base,
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

/* ---- the range extension's part of interp (hlspec.h) ---------------------------------------- */

/* A range operation whose effect is in the abstract state: Ok, non-empty, Unmap/ProtectRange
 * (MapRange's pages appear in the table one store at a time, and that is its effect). */
static bool range_effective(const struct os_core_state *cs)
{
    return cs->kind != OS_IDLE && cs->range && cs->rg.will_ok && cs->rg.length &&
           (os_core_is_unmap(cs->kind) || os_core_is_protect(cs->kind));
}

static bool piece_inside(const struct os_core_state *cs, const struct hw_mapping *p)
{
    return p->base >= cs->vaddr && p->base + p->pte.frame.size <= cs->vaddr + cs->rg.length;
}

/* The snapshot's mapping containing vaddr (NULL if none). */
static const struct hw_mapping *snapshot_find(const struct os_snapshot *b, uint64_t vaddr)
{
    unsigned lo = 0, hi = b->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (b->map[mid].base <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return NULL;
    const struct hw_mapping *m = &b->map[lo - 1];
    return hw_between(vaddr, m->base, m->base + m->pte.frame.size) ? m : NULL;
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
            const struct hw_mapping *o = snapshot_find(x->s->run.snap, p->base);
            if (o)
                p->pte.flags = hl_flags_join(p->pte.flags, o->pte.flags);
        }
    }
    return true;
}

static bool any_range(const struct os_consts *c, const struct os_vars *s)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (range_effective(&s->core_states[i]))
            return true;
    return false;
}

/* effective_mappings with range operations in flight: each mapping that straddles a split
 * range is split as the library will split it (hlspec.h: split), so that the abstract state
 * does not change when the table's split store lands. */
static void interp_range_mappings(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                                  struct hl_vars *out)
{
    struct eff_ctx x = { c, s };
    for (size_t i = 0; i < pt->len; i++) {
        const struct hw_mapping *m = &pt->map[i];
        uint64_t first = 0, last = 0;
        bool split = false;
        if (inflight_unmap(c, s, m->base))
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
        if (inflight_protect(c, s, m->base, &other))
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
    if (any_range(c, s)) {
        interp_range_mappings(c, s, pt, out);
        interp_thread_state(c, s, pt, out);
        return;
    }
    for (size_t i = 0; i < pt->len && out->nmappings < HL_MAX_MAPPINGS; i++) {
        const struct hw_mapping *m = &pt->map[i];
        struct hw_flags other;
        if (inflight_unmap(c, s, m->base))
            continue;
        struct hw_mapping *o = &out->mappings[out->nmappings++];
        *o = *m;
        if (inflight_protect(c, s, m->base, &other))
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
        if (st->hw.kind != HW_STEP_READ_WRITE)
            return; /* TLBFill, TLBEvict (and the A/D step): Stutter */
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
        return;
    default:
        return; /* every other step: Stutter */
    }
}

/* ---- spec_pt ----------------------------------------------------------------------------- */

static bool view_is(struct os_checker *k, const struct hw_interp *cur, const struct hw_interp *nxt, bool insert,
                    uint64_t base, const struct hw_pte *pte, const char *what, char *why, size_t len)
{
    static _Thread_local struct hw_mapping *buf;
    static _Thread_local size_t cap;
    (void)k;
    if (cap < cur->len + 1) {
        free(buf);
        cap = cur->len + 16;
        buf = malloc(cap * sizeof *buf);
        if (!buf) {
            cap = 0;
            return model_refuse(why, len, "out of memory");
        }
    }
    unsigned n = (unsigned)cur->len;
    if (cur->len) /* memcpy from an empty map's NULL is undefined */
        memcpy(buf, cur->map, cur->len * sizeof *buf);
    if (insert)
        hl_mappings_insert(buf, &n, (unsigned)cap, base, pte);
    else
        hl_mappings_remove(buf, &n, base);
    if (!hl_mappings_equal(buf, n, nxt->map, (unsigned)nxt->len)) {
        /* name the first difference */
        unsigned i = 0;
        while (i < n && i < nxt->len && buf[i].base == nxt->map[i].base && hw_pte_equal(&buf[i].pte, &nxt->map[i].pte))
            i++;
        uint64_t at = i < n ? buf[i].base : (i < nxt->len ? nxt->map[i].base : 0);
        return model_refuse(why, len, "%s: the MMU's view is not %s (first difference at 0x%" PRIx64 ")", what,
                    insert ? "the old one plus the new mapping" : "the old one minus the mapping", at);
    }
    return true;
}

/* x86pt's addition to spec_pt (the spec abstracts memory types away): a leaf the library
 * writes maps write-back memory (PWT, PCD, PAT clear) and is not global. */
static bool leaf_bits_ok(struct os_checker *k, const struct os_vars *s2, uint64_t vaddr, char *why, size_t len)
{
    struct hw_pt_view v = hw_vars_pt_view(&k->c->hw, &s2->hw);
    struct hw_walk w;
    if (hw_pt_walk(&v, vaddr, &w) != HW_WALK_PAGE)
        return true; /* the view checks say what is wrong */
    uint64_t e = hw_pmem_read(&s2->hw.global_pt.mem, w.entry_pa[w.layer]);
    uint64_t pat = w.layer == 3 ? HW_BIT_PS : HW_BIT_PAT_LARGE;
    if (e & (HW_BIT_PWT | HW_BIT_PCD | HW_BIT_G | pat))
        return model_refuse(why, len, "leaf entry 0x%" PRIx64 " at 0x%" PRIx64 " sets a memory-type or global bit "
                    "(PWT/PCD/PAT/G)", e, w.entry_pa[w.layer]);
    return true;
}

/* ---- the range extension's write discipline ------------------------------------------------ */

/* The difference between two views: the mappings of cur not in nxt (gone) and of nxt not in
 * cur (new), both sorted. False if either holds more than cap. */
static bool view_diff(const struct hw_interp *cur, const struct hw_interp *nxt, struct hw_mapping *gone,
                      unsigned *ngone, struct hw_mapping *fresh, unsigned *nfresh, unsigned cap)
{
    size_t i = 0, j = 0;
    *ngone = *nfresh = 0;
    while (i < cur->len || j < nxt->len) {
        const struct hw_mapping *a = i < cur->len ? &cur->map[i] : NULL, *b = j < nxt->len ? &nxt->map[j] : NULL;
        if (a && b && a->base == b->base && hw_pte_equal(&a->pte, &b->pte)) {
            i++, j++;
        } else if (a && (!b || a->base <= b->base)) {
            if (*ngone >= cap)
                return false;
            gone[(*ngone)++] = *a, i++;
        } else {
            if (*nfresh >= cap)
                return false;
            fresh[(*nfresh)++] = *b, j++;
        }
    }
    return true;
}

/* A split swap: h (which straddles the range) became its 512 parts of the next size, same
 * frames, same flags: every address keeps its translation. */
static bool is_split_swap(const struct os_core_state *cs, const struct hw_mapping *h, const struct hw_mapping *parts,
                          unsigned nparts)
{
    uint64_t sub = h->pte.frame.size / 512;
    if (nparts != 512 || h->pte.frame.size <= HW_L3_ENTRY_SIZE || !cs->rg.split ||
        !hl_straddles(h, cs->vaddr, cs->vaddr + cs->rg.length - 1))
        return false;
    for (unsigned j = 0; j < 512; j++) {
        const struct hw_mapping *p = &parts[j];
        if (p->base != h->base + j * sub || p->pte.frame.base != h->pte.frame.base + j * sub ||
            p->pte.frame.size != sub || !hl_flags_equal(p->pte.flags, h->pte.flags))
            return false;
    }
    return true;
}

static bool inside_range(const struct os_core_state *cs, const struct hw_mapping *m)
{
    return m->base >= cs->vaddr && m->base + m->pte.frame.size <= cs->vaddr + cs->rg.length;
}

/* One store of a range operation (hlspec.h; the spec_pt of ranges): it keeps the view, or
 *   map_range:           adds one page of pages(MapRange), nothing else;
 *   unmap_range:         removes one page inside the range, nothing else;
 *   protect_range:       gives one page inside the range the new permissions, nothing else;
 *   unmap/protect_range: swaps a page that straddles the range for its parts (split). */
static bool range_store_ok(struct os_checker *k, const struct os_core_state *cs, const struct os_vars *s2,
                           const struct os_step *st, const struct hw_interp *cur, const struct hw_interp *nxt,
                           char *why, size_t len)
{
    static _Thread_local struct hw_mapping gone[2], fresh[513];
    unsigned ng, nf;
    if (hw_interp_equal(cur, nxt))
        return true;
    const char *op = os_core_is_unmap(cs->kind) ? "unmap_range" : os_core_is_protect(cs->kind) ? "protect_range" : "map_range";
    if (!view_diff(cur, nxt, gone, &ng, fresh, &nf, 2) && !(ng <= 1 && view_diff(cur, nxt, gone, &ng, fresh, &nf, 513)))
        goto bad;
    if (ng == 1 && is_split_swap(cs, &gone[0], fresh, nf))
        return leaf_bits_ok(k, s2, fresh[0].base, why, len);
    if (cs->kind == OS_MAP_EXECUTING) {
        struct hl_args a = { .kind = HL_ARGS_MAP_RANGE, .vaddr = cs->vaddr, .length = cs->rg.length,
                             .paddr = cs->rg.paddr, .policy = cs->rg.policy, .flags = cs->flags };
        if (ng == 0 && nf == 1 && hl_map_range_has_page(&a, &fresh[0]))
            return leaf_bits_ok(k, s2, fresh[0].base, why, len);
    } else if (os_core_is_unmap(cs->kind)) {
        if (ng == 1 && nf == 0 && inside_range(cs, &gone[0]))
            return true;
    } else if (ng == 1 && nf == 1 && inside_range(cs, &gone[0]) && gone[0].base == fresh[0].base &&
               gone[0].pte.frame.base == fresh[0].pte.frame.base && gone[0].pte.frame.size == fresh[0].pte.frame.size &&
               hl_flags_equal(fresh[0].pte.flags, cs->flags)) {
        return leaf_bits_ok(k, s2, fresh[0].base, why, len);
    }
bad: {
        uint64_t at = ng ? gone[0].base : nf ? fresh[0].base : 0;
        return model_refuse(why, len, "RangeStore: %s's store [0x%" PRIx64 "] = 0x%" PRIx64 " changes the MMU's view as the "
                    "operation may not (%s%u mapping%s gone, %s%u new, first at 0x%" PRIx64 ")", op, st->write_pa,
                    st->write_value, ng >= 2 ? ">=" : "", ng, ng == 1 ? "" : "s", nf >= 513 ? ">=" : "", nf, at);
    }
}

static bool check_spec_pt(struct os_checker *k, const struct os_vars *s1, const struct os_vars *s2,
                          const struct os_step *st,
                          const struct hw_interp *cur, const struct hw_interp *nxt, bool pt_mem_same,
                          char *why, size_t len)
{
    const struct os_consts *c = k->c;
    const struct os_core_state *cs = st->core < os_ncores(c) ? &s1->core_states[st->core] : NULL;
    if (st->kind == OS_STEP_FRAME_REUSE) /* free frames are unreachable */
        return hw_interp_equal(cur, nxt) || model_refuse(why, len, "a write to a free frame changed the MMU's view");
    if (st->kind == OS_STEP_RANGE_STORE && cs)
        return range_store_ok(k, cs, s2, st, cur, nxt, why, len);
    if (cs && cs->range && st->kind != OS_STEP_HW) /* range Op*Start, *End: no store */
        return pt_mem_same || model_refuse(why, len, "%s changed page-table memory", os_step_name(st->kind));
    switch (st->kind) {
    case OS_STEP_HW:
        if (st->hw.kind == HW_STEP_ACCESSED_DIRTY || st->hw.kind == HW_STEP_WALK_STEP ||
            st->hw.kind == HW_STEP_WALK_TLB_FILL)
            return hw_interp_equal(cur, nxt) || model_refuse(why, len, "an A/D update changed the MMU's view");
        break;

    case OS_STEP_VIEW_STUTTER: {
        /* spec_pt: an unmap or protect is Read* (Write (Read | ViewStutter)*)?: its first
         * store (x86pt: a step after OpStart, os_lib.c) is the one that changes the view */
        bool first = st->wrote && cs && !cs->stored && cs->result_ok &&
                     (cs->kind == OS_UNMAP_OP_EXECUTING || cs->kind == OS_PROTECT_OP_EXECUTING);
        if (!first) {
            if (!hw_interp_equal(cur, nxt))
                return model_refuse(why, len, "ViewStutter: store [0x%" PRIx64 "] = 0x%" PRIx64 " changed the MMU's view",
                                    st->write_pa, st->write_value);
            return true;
        }
        const char *what = cs->kind == OS_UNMAP_OP_EXECUTING ? "unmap's store" : "protect's store";
        if (cs->kind == OS_UNMAP_OP_EXECUTING)
            return view_is(k, cur, nxt, false, cs->vaddr, NULL, what, why, len);
        if (!leaf_bits_ok(k, s2, cs->vaddr, why, len))
            return false;
        struct hw_pte np = cs->result;
        np.flags = cs->flags;
        return view_is(k, cur, nxt, true, cs->vaddr, &np, what, why, len);
    }
    case OS_STEP_MAP_END: /* spec_pt::step_Map_End */
        if (st->result_ok && !leaf_bits_ok(k, s2, cs->vaddr, why, len))
            return false;
        if (hl_overlaps_existing_vmem(cur->map, (unsigned)cur->len, cs->vaddr, cs->pte.frame.size)) {
            if (st->result_ok)
                return model_refuse(why, len, "MapEnd: Ok although 0x%" PRIx64 " overlaps a mapping", cs->vaddr);
            return hw_interp_equal(cur, nxt) || model_refuse(why, len, "MapEnd: Err but the MMU's view changed");
        }
        if (!st->result_ok)
            return model_refuse(why, len, "MapEnd: Err although 0x%" PRIx64 " overlaps nothing", cs->vaddr);
        return view_is(k, cur, nxt, true, cs->vaddr, &cs->pte, "MapEnd", why, len);
    default:
        break;
    }
    /* spec_pt::step_Stutter (and step_Map_Start / step_Unmap_End: s2 == s1) */
    return pt_mem_same || model_refuse(why, len, "%s changed page-table memory", os_step_name(st->kind));
}

/* ---- the driver -------------------------------------------------------------------------- */

/* Zero a checker without touching the (large) mapping array of its abstraction. */
static void checker_clear(struct os_checker *k)
{
    memset(&k->pt, 0, sizeof k->pt);
    memset(&k->pt2, 0, sizeof k->pt2);
    k->a.nmappings = 0;
    k->pt_hash = 0;
}

bool os_checker_init(struct os_checker *k, const struct os_consts *c, const struct os_vars *s,
                     enum os_check *failed, char *why, size_t len)
{
    checker_clear(k);
    k->c = c;
    k->hc.thread_no = c->ULT_no;
    k->hc.phys_mem_size = c->hw.phys_mem_size;
    k->hc.maxphyaddr = c->hw.maxphyaddr;
    if (!os_interp_pt_mem(c, s, &k->pt, why, len))
        return *failed = OS_CHECK_WELL_FORMED, false;
    os_interp(c, s, &k->pt, &s->hw.mem, NULL, &k->a);
    if (!hl_init(&k->hc, &k->a, why, len)) /* os_init_refines_hl_init */
        return *failed = OS_CHECK_REFINEMENT, false;
    if (!os_inv(c, s, &k->pt, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (!hl_inv(&k->hc, &k->a, why, len))
        return *failed = OS_CHECK_HL_INVARIANT, false;
    return true;
}

bool os_checker_at(struct os_checker *k, const struct os_consts *c, const struct os_vars *s, char *why, size_t len)
{
    checker_clear(k);
    k->c = c;
    k->hc.thread_no = c->ULT_no;
    k->hc.phys_mem_size = c->hw.phys_mem_size;
    k->hc.maxphyaddr = c->hw.maxphyaddr;
    if (!os_interp_pt_mem(c, s, &k->pt, why, len))
        return false;
    os_interp(c, s, &k->pt, &s->hw.mem, NULL, &k->a);
    return true;
}

void os_checker_fini(struct os_checker *k)
{
    hw_interp_fini(&k->pt);
    hw_interp_fini(&k->pt2);
}

bool os_checker_copy(struct os_checker *dst, const struct os_checker *src)
{
    checker_clear(dst);
    dst->c = src->c;
    dst->hc = src->hc;
    hl_vars_copy(&dst->a, &src->a);
    dst->pt_hash = src->pt_hash;
    if (src->pt.len) {
        dst->pt.map = malloc(src->pt.len * sizeof *dst->pt.map);
        if (!dst->pt.map)
            return false;
        memcpy(dst->pt.map, src->pt.map, src->pt.len * sizeof *dst->pt.map);
        dst->pt.len = dst->pt.cap = src->pt.len;
    }
    return true;
}

bool os_checker_step(struct os_checker *k, const struct os_vars *s1, const struct os_vars *s2,
                     const struct os_step *st, const struct os_delta *delta, enum os_check *failed,
                     char *why, size_t len)
{
    const struct os_consts *c = k->c;
    bool same = hw_pmem_equal(&s1->hw.global_pt.mem, &s2->hw.global_pt.mem);
    const struct hw_interp *nxt = &k->pt;
    if (!same) {
        if (!os_interp_pt_mem(c, s2, &k->pt2, why, len))
            return *failed = OS_CHECK_WELL_FORMED, false;
        nxt = &k->pt2;
    }
    if (!check_spec_pt(k, s1, s2, st, &k->pt, nxt, same, why, len))
        return *failed = OS_CHECK_WRITE_DISCIPLINE, false;

    struct hl_vars a2;
    struct hl_step hs;
    /* The abstraction depends on the table, the core states, the plan's snapshot and sound:
     * when none of them changed (most hardware steps), reuse s1's mappings and thread states. */
    bool reuse = same && s1->sound == s2->sound && s1->run.snap == s2->run.snap &&
                 !memcmp(s1->core_states, s2->core_states, sizeof s1->core_states);
    if (reuse) {
        hl_vars_copy(&a2, &k->a);
        a2.mem.phys = &s2->hw.mem;
        a2.mem.n_overlay = 0;
    } else {
        os_interp(c, s2, nxt, &s2->hw.mem, NULL, &a2);
    }
    if (a2.nmappings >= HL_MAX_MAPPINGS)
        return model_refuse(why, len, "more than %u mappings: too many for the checker", HL_MAX_MAPPINGS - 1),
               *failed = OS_CHECK_WELL_FORMED, false;
    os_step_interp(c, s1, &k->a, st, &hs);
    /* the abstraction of s1, with its memory read as s2's memory plus the step's old values */
    k->a.mem.phys = &s2->hw.mem;
    k->a.mem.n_overlay = delta->n;
    for (unsigned i = 0; i < delta->n; i++) {
        k->a.mem.overlay_pa[i] = delta->pa[i];
        k->a.mem.overlay_val[i] = delta->old[i];
    }
    char hwhy[256];
    if (!hl_next_step(&k->hc, &k->a, &a2, &hs, hwhy, sizeof hwhy)) {
        char sname[160];
        hl_step_format(&hs, sname, sizeof sname);
        model_refuse(why, len, "%s: %s", sname, hwhy);
        return *failed = OS_CHECK_REFINEMENT, false;
    }
    if (!os_inv(c, s2, nxt, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (os_kernel_lock(c, s2) < 0 && (!same || os_kernel_lock(c, s1) >= 0) && !os_inv_tidy(c, s2, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (a2.sound && !(reuse && k->a.sound) && !hl_inv(&k->hc, &a2, why, len)) /* reuse: s1's held */
        return *failed = OS_CHECK_HL_INVARIANT, false;
    if (!same) {
        struct hw_interp t = k->pt;
        k->pt = k->pt2;
        k->pt2 = t;
    }
    hl_vars_copy(&k->a, &a2);
    return true;
}
