/* impl_u/os_refinement.rs, checked: interp, OSStep::interp, spec_pt, and the per-step driver.
 * See os_refinement.h. */
#include "os_refinement.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

const char *os_check_name(enum os_check k)
{
    static const char *const n[] = { "none", "write discipline (spec_pt)", "A/D independence",
                                     "refinement (hlspec next_step)", "OS invariant",
                                     "high-level invariant", "well-formed page table" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

/* ---- OSVariables::interp ----------------------------------------------------------------- */

/* inflight_unmap_vaddr contains base (given pt contains it) */
static bool inflight_unmap(const struct os_consts *c, const struct os_vars *s, uint64_t base)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (os_core_is_unmap(s->core_states[i].kind) && s->core_states[i].vaddr == base)
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
        if (!os_core_is_protect(cs->kind) || cs->vaddr != base)
            continue;
        *other = cs->kind == OS_PROTECT_WAITING || !cs->result_ok ? cs->flags : cs->result.flags;
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
        /* hl_pte: None if pte is None or its base is not an effective mapping */
        out->has_pte = st->hw.has_pte &&
                       hl_mappings_get(a1->mappings, a1->nmappings, st->hw.tlb_entry.base) != NULL;
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
    case OS_STEP_MAP_END:
    case OS_STEP_UNMAP_END:
    case OS_STEP_PROTECT_END:
        out->kind = st->kind == OS_STEP_MAP_END     ? HL_STEP_MAP_END
                    : st->kind == OS_STEP_UNMAP_END ? HL_STEP_UNMAP_END
                                                    : HL_STEP_PROTECT_END;
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
            return fail(why, len, "out of memory");
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
        return fail(why, len, "%s: the MMU's view is not %s (first difference at 0x%" PRIx64 ")", what,
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
        return fail(why, len, "leaf entry 0x%" PRIx64 " at 0x%" PRIx64 " sets a memory-type or global bit "
                    "(PWT/PCD/PAT/G)", e, w.entry_pa[w.layer]);
    return true;
}

static bool check_spec_pt(struct os_checker *k, const struct os_vars *s1, const struct os_vars *s2,
                          const struct os_step *st,
                          const struct hw_interp *cur, const struct hw_interp *nxt, bool pt_mem_same,
                          char *why, size_t len)
{
    const struct os_consts *c = k->c;
    const struct os_core_state *cs = st->core < os_ncores(c) ? &s1->core_states[st->core] : NULL;
    switch (st->kind) {
    case OS_STEP_HW:
        if (st->hw.kind == HW_STEP_ACCESSED_DIRTY)
            return hw_interp_equal(cur, nxt) || fail(why, len, "an A/D update changed the MMU's view");
        break;
    case OS_STEP_VIEW_STUTTER:
        if (!hw_interp_equal(cur, nxt))
            return fail(why, len, "ViewStutter: store [0x%" PRIx64 "] = 0x%" PRIx64 " changed the MMU's view",
                        st->write_pa, st->write_value);
        return true;
    case OS_STEP_MAP_END: /* spec_pt::step_Map_End */
        if (st->result_ok && !leaf_bits_ok(k, s2, cs->vaddr, why, len))
            return false;
        if (hl_overlaps_existing_vmem(cur->map, (unsigned)cur->len, cs->vaddr, cs->pte.frame.size)) {
            if (st->result_ok)
                return fail(why, len, "MapEnd: Ok although 0x%" PRIx64 " overlaps a mapping", cs->vaddr);
            return hw_interp_equal(cur, nxt) || fail(why, len, "MapEnd: Err but the MMU's view changed");
        }
        if (!st->result_ok)
            return fail(why, len, "MapEnd: Err although 0x%" PRIx64 " overlaps nothing", cs->vaddr);
        return view_is(k, cur, nxt, true, cs->vaddr, &cs->pte, "MapEnd", why, len);
    case OS_STEP_UNMAP_OP_START: /* spec_pt::step_Unmap_Start */
    case OS_STEP_PROTECT_OP_START: {
        const struct hw_pte *old = hw_interp_get(cur, cs->vaddr);
        const char *what = os_step_name(st->kind);
        if (!old) {
            if (st->result_ok)
                return fail(why, len, "%s: Ok although nothing is mapped at 0x%" PRIx64, what, cs->vaddr);
            return hw_interp_equal(cur, nxt) || fail(why, len, "%s: Err but the MMU's view changed", what);
        }
        if (!st->result_ok)
            return fail(why, len, "%s: Err although 0x%" PRIx64 " is mapped", what, cs->vaddr);
        if (st->kind == OS_STEP_UNMAP_OP_START)
            return view_is(k, cur, nxt, false, cs->vaddr, NULL, what, why, len);
        if (!leaf_bits_ok(k, s2, cs->vaddr, why, len))
            return false;
        struct hw_pte np = *old;
        np.flags = cs->flags;
        return view_is(k, cur, nxt, true, cs->vaddr, &np, what, why, len);
    }
    default:
        break;
    }
    /* spec_pt::step_Stutter (and step_Map_Start / step_Unmap_End: s2 == s1) */
    return pt_mem_same || fail(why, len, "%s changed page-table memory", os_step_name(st->kind));
}

/* ---- the driver -------------------------------------------------------------------------- */

bool os_checker_init(struct os_checker *k, const struct os_consts *c, const struct os_vars *s,
                     enum os_check *failed, char *why, size_t len)
{
    memset(k, 0, sizeof *k);
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
    memset(k, 0, sizeof *k);
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
    memset(dst, 0, sizeof *dst);
    dst->c = src->c;
    dst->hc = src->hc;
    dst->a = src->a;
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
    os_interp(c, s2, nxt, &s2->hw.mem, NULL, &a2);
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
        fail(why, len, "%s: %s", sname, hwhy);
        return *failed = OS_CHECK_REFINEMENT, false;
    }
    if (!os_inv(c, s2, nxt, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (os_kernel_lock(c, s2) < 0 && (!same || os_kernel_lock(c, s1) >= 0) && !os_inv_tidy(c, s2, why, len))
        return *failed = OS_CHECK_OS_INVARIANT, false;
    if (a2.sound && !hl_inv(&k->hc, &a2, why, len))
        return *failed = OS_CHECK_HL_INVARIANT, false;
    if (!same) {
        struct hw_interp t = k->pt;
        k->pt = k->pt2;
        k->pt2 = t;
    }
    k->a = a2;
    return true;
}
