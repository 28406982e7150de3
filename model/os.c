/* spec_t/os.rs: state, steps. See os.h. */
#include "os.h"
#include "why.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* os.rs: CoreState::holds_lock */
bool os_core_holds_lock(const struct os_core_state *cs)
{
    switch (cs->kind) {
    case OS_IDLE:
    case OS_MAP_WAITING:
    case OS_UNMAP_WAITING:
    case OS_PROTECT_WAITING:
        return false;
    default:
        return true;
    }
}

bool os_core_is_unmap(enum os_core_kind k) { return k >= OS_UNMAP_WAITING && k <= OS_UNMAP_SHOOTDOWN_WAITING; }
bool os_core_is_protect(enum os_core_kind k) { return k >= OS_PROTECT_WAITING && k <= OS_PROTECT_SHOOTDOWN_WAITING; }

const char *os_core_kind_name(enum os_core_kind k)
{
    static const char *const n[] = { "Idle", "MapWaiting", "MapExecuting", "UnmapWaiting",
                                     "UnmapOpExecuting", "UnmapOpDone", "UnmapShootdownWaiting",
                                     "ProtectWaiting", "ProtectOpExecuting", "ProtectOpDone",
                                     "ProtectShootdownWaiting" };
    return (unsigned)k < sizeof n / sizeof n[0] ? n[k] : "?";
}

const char *os_step_name(enum os_step_kind k)
{
    static const char *const n[] = { "HW", "MapStart", "MapOpStart", "MapEnd", "UnmapStart",
                                     "UnmapOpStart", "UnmapOpEnd", "UnmapInitiateShootdown",
                                     "AckShootdownIPI", "UnmapEnd", "ViewStutter", "ProtectStart",
                                     "ProtectOpStart", "ProtectOpEnd", "ProtectInitiateShootdown",
                                     "ProtectEnd", "MapRangeStart", "UnmapRangeStart", "ProtectRangeStart",
                                     "RangeStore" };
    return (unsigned)k < OS_STEP_KIND_COUNT ? n[k] : "?";
}

int os_kernel_lock(const struct os_consts *c, const struct os_vars *s)
{
    for (unsigned i = 0; i < os_ncores(c); i++)
        if (os_core_holds_lock(&s->core_states[i]))
            return (int)i;
    return -1;
}

/* ---- state as a value ---------------------------------------------------------------------- */

bool os_init(const struct os_consts *c, struct os_vars *s)
{
    memset(s, 0, sizeof *s);
    if (os_ncores(c) > OS_MAX_CORES || c->ULT_no > HL_MAX_THREADS || c->pt_frames > OS_PT_FRAMES_MAX ||
        c->pt_frames < 2)
        return false;
    struct hw_pmem pt;
    uint64_t root;
    if (!hw_pmem_init(&pt, (uint64_t)c->pt_frames * HW_PAGE_SIZE))
        return false;
    if (!c->impl->init(c->impl->ctx, c, &pt, s->pt_counts, &root) || root / HW_PAGE_SIZE >= c->pt_frames) {
        hw_pmem_fini(&pt);
        return false;
    }
    bool ok = hw_init(&c->hw, &s->hw, &pt, root);
    hw_pmem_fini(&pt);
    if (!ok)
        return false;
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        if (f != root / HW_PAGE_SIZE)
            s->pt_free[f / 64] |= UINT64_C(1) << (f % 64);
    s->sound = true; /* os.rs init: every core Idle, no open request, sound */
    return true;
}

/* ---- the recorded operation, shared by the states that hold it ----------------------------- */

static void plan_hold(struct os_plan *p)
{
    if (p->buf)
        p->buf->refs++;
}

static void plan_drop(struct os_plan *p)
{
    if (p->buf && --p->buf->refs == 0) {
        free(p->buf->ev);
        free(p->buf->old);
        free(p->buf);
    }
    memset(p, 0, sizeof *p);
}

bool os_pt_outcome_push(struct os_pt_outcome *o, enum os_pt_event_kind k, uint64_t pa, uint64_t value, bool hidden)
{
    if (o->nev == o->cap) {
        unsigned cap = o->cap ? 2 * o->cap : 16;
        struct os_pt_event *ev = realloc(o->ev, cap * sizeof *ev);
        if (!ev)
            return false;
        o->ev = ev;
        o->cap = cap;
    }
    struct os_pt_event *e = &o->ev[o->nev++];
    e->kind = k;
    e->hidden = hidden;
    e->pa = pa;
    e->value = value;
    return true;
}

void os_pt_outcome_fini(struct os_pt_outcome *o)
{
    free(o->ev);
    o->ev = NULL;
    o->nev = o->cap = 0;
}

bool os_vars_copy(struct os_vars *dst, const struct os_vars *src)
{
    memcpy(dst, src, sizeof *dst);
    plan_hold(&dst->plan);
    if (!hw_vars_copy(&dst->hw, &src->hw)) {
        plan_drop(&dst->plan);
        return false;
    }
    return true;
}

void os_vars_fini(struct os_vars *s)
{
    hw_vars_fini(&s->hw);
    plan_drop(&s->plan);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h * UINT64_C(0xff51afd7ed558ccd);
}

static uint64_t flags_bits(struct hw_flags f)
{
    return (uint64_t)f.is_writable | (uint64_t)f.is_supervisor << 1 | (uint64_t)f.disable_execute << 2;
}

static uint64_t hash_pte(uint64_t h, const struct hw_pte *p)
{
    return mix(mix(mix(h, p->frame.base), p->frame.size), flags_bits(p->flags));
}

static uint64_t hash_core(uint64_t h, const struct os_core_state *cs)
{
    h = mix(h, cs->kind);
    if (cs->kind == OS_IDLE)
        return h;
    h = mix(mix(h, cs->ULT_id), cs->vaddr);
    h = hash_pte(h, &cs->pte);
    h = mix(mix(h, flags_bits(cs->flags)), cs->result_ok);
    h = hash_pte(h, &cs->result);
    if (!cs->range)
        return h;
    const struct os_range *r = &cs->rg;
    h = mix(mix(mix(mix(h, r->length), r->paddr), r->policy), (uint64_t)r->split | (uint64_t)r->will_ok << 1 |
                                                                     (uint64_t)r->stored << 2 | (uint64_t)r->shrinks << 3 |
                                                                     (uint64_t)r->flush_all << 4 | (uint64_t)r->splits << 5);
    return mix(mix(mix(mix(h, r->lo), r->hi), r->flush_lo), r->flush_hi);
}

uint64_t os_vars_hash(const struct os_vars *s)
{
    uint64_t h = hw_vars_hash(&s->hw);
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        h = hash_core(h, &s->core_states[i]);
    h = mix(mix(mix(h, s->TLB_Shootdown.vaddr), s->TLB_Shootdown.open_requests), s->TLB_Shootdown.for_protect);
    if (s->TLB_Shootdown.for_range)
        h = mix(mix(mix(h, s->TLB_Shootdown.lo), s->TLB_Shootdown.hi), 2 + s->TLB_Shootdown.all);
    h = mix(mix(h, s->sound), s->pt_private);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX / 64; i++)
        h = mix(h, s->pt_free[i]);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX; i++)
        if (s->pt_counts[i])
            h = mix(mix(h, i), s->pt_counts[i]);
    if (s->plan.buf) /* the whole recording (events and snapshot) and where it stands */
        h = mix(mix(mix(h, s->plan.buf->hash), s->plan.n), s->plan.pos);
    return h;
}

static bool core_equal(const struct os_core_state *a, const struct os_core_state *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == OS_IDLE)
        return true;
    if (a->range != b->range || (a->range && memcmp(&a->rg, &b->rg, sizeof a->rg)))
        return false;
    return a->ULT_id == b->ULT_id && a->vaddr == b->vaddr && hw_pte_equal(&a->pte, &b->pte) &&
           hl_flags_equal(a->flags, b->flags) && a->result_ok == b->result_ok &&
           hw_pte_equal(&a->result, &b->result);
}

static bool plans_equal(const struct os_plan *a, const struct os_plan *b)
{
    if (!a->buf || !b->buf)
        return a->buf == b->buf;
    if (a->n - a->pos != b->n - b->pos || a->buf->nold != b->buf->nold ||
        (a->buf->nold && memcmp(a->buf->old, b->buf->old, a->buf->nold * sizeof *a->buf->old)))
        return false;
    for (unsigned i = 0; i < a->n - a->pos; i++) {
        const struct os_pt_event *x = &a->buf->ev[a->pos + i], *y = &b->buf->ev[b->pos + i];
        if (x->kind != y->kind || x->pa != y->pa || x->value != y->value || x->hidden != y->hidden)
            return false;
    }
    return true;
}

bool os_vars_equal(const struct os_vars *a, const struct os_vars *b)
{
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        if (!core_equal(&a->core_states[i], &b->core_states[i]))
            return false;
    if (a->TLB_Shootdown.vaddr != b->TLB_Shootdown.vaddr ||
        a->TLB_Shootdown.open_requests != b->TLB_Shootdown.open_requests ||
        a->TLB_Shootdown.for_protect != b->TLB_Shootdown.for_protect || a->sound != b->sound ||
        a->pt_private != b->pt_private ||
        memcmp(a->pt_free, b->pt_free, sizeof a->pt_free) ||
        memcmp(a->pt_counts, b->pt_counts, sizeof a->pt_counts) || !plans_equal(&a->plan, &b->plan) ||
        a->TLB_Shootdown.for_range != b->TLB_Shootdown.for_range || a->TLB_Shootdown.all != b->TLB_Shootdown.all ||
        a->TLB_Shootdown.lo != b->TLB_Shootdown.lo || a->TLB_Shootdown.hi != b->TLB_Shootdown.hi)
        return false;
    return hw_vars_equal(&a->hw, &b->hw);
}

/* ---- the page-table frame pool ------------------------------------------------------------ */

bool os_pt_alloc(const struct os_consts *c, uint64_t *pool, uint64_t *frame)
{
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        if (pool[f / 64] & (UINT64_C(1) << (f % 64))) {
            pool[f / 64] &= ~(UINT64_C(1) << (f % 64));
            *frame = (uint64_t)f * HW_PAGE_SIZE;
            return true;
        }
    return false;
}

unsigned os_pt_free_count(const struct os_consts *c, const struct os_vars *s)
{
    unsigned n = 0;
    for (unsigned f = 0; f < c->pt_frames; f++)
        n += (s->pt_free[f / 64] >> (f % 64)) & 1;
    return n;
}

static bool frame_is_free(const struct os_vars *s, uint64_t f)
{
    return (s->pt_free[f / 64] >> (f % 64)) & 1;
}

/* Is the directory frame reachable from cr3? (The walk of the interpretation visits every
 * reachable directory once.) */
struct reach_ctx {
    uint64_t frame_pa;
    bool found;
};

static bool reach_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                        const struct hw_pde *pde, const struct hw_pte *combined)
{
    struct reach_ctx *r = ctx;
    (void)layer, (void)entry_pa, (void)vaddr, (void)combined;
    if (pde->kind == HW_PDE_DIRECTORY && pde->addr == r->frame_pa)
        r->found = true;
    return !r->found;
}

static bool frame_reachable(const struct os_consts *c, const struct hw_vars *hw, uint64_t frame_pa)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, hw);
    struct reach_ctx r = { frame_pa, frame_pa == hw->global_pt.cr3 };
    if (!r.found)
        hw_pt_visit(&v, reach_visit, &r, NULL);
    return r.found;
}

static bool frame_zero(const struct hw_vars *hw, uint64_t frame_pa)
{
    for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE)
        if (hw_pmem_read(&hw->global_pt.mem, frame_pa + off))
            return false;
    return true;
}

/* spec_t/mem.rs alloc_page: a frame from the pool, zeroed, not part of the table. */
static bool take_frames(const struct os_consts *c, struct os_vars *s, const struct os_pt_outcome *out,
                        char *why, size_t len)
{
    for (unsigned i = 0; i < out->nalloc; i++) {
        uint64_t pa = out->alloc[i], f = pa / HW_PAGE_SIZE;
        if (pa % HW_PAGE_SIZE || f >= c->pt_frames || !frame_is_free(s, f))
            return model_refuse(why, len, "alloc: frame 0x%" PRIx64 " is not a free pool frame", pa);
        if (!frame_zero(&s->hw, pa) || frame_reachable(c, &s->hw, pa))
            return model_refuse(why, len, "alloc: free frame 0x%" PRIx64 " is not a zeroed, unlinked frame", pa);
        s->pt_free[f / 64] &= ~(UINT64_C(1) << (f % 64));
    }
    return true;
}

/* spec_t/mem.rs dealloc_page: only a zeroed directory nothing points to any more. */
static bool give_frame(const struct os_consts *c, struct os_vars *s, uint64_t pa, char *why, size_t len)
{
    uint64_t f = pa / HW_PAGE_SIZE;
    if (pa % HW_PAGE_SIZE || f >= c->pt_frames || frame_is_free(s, f) || pa == s->hw.global_pt.cr3)
        return model_refuse(why, len, "free: frame 0x%" PRIx64 " is not an allocated directory", pa);
    if (frame_reachable(c, &s->hw, pa))
        return model_refuse(why, len, "free: directory 0x%" PRIx64 " is still linked into the table", pa);
    if (!frame_zero(&s->hw, pa))
        return model_refuse(why, len, "free: directory 0x%" PRIx64 " is not zeroed", pa);
    s->pt_free[f / 64] |= UINT64_C(1) << (f % 64);
    return true;
}

/* ---- interp_pt_mem lookups ----------------------------------------------------------------- */

bool os_pt_get(const struct os_consts *c, const struct os_vars *s, uint64_t vaddr, struct hw_pte *pte)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct hw_walk w;
    if (hw_pt_walk(&v, vaddr, &w) != HW_WALK_PAGE || w.base != vaddr)
        return false;
    *pte = w.pte;
    return true;
}

bool os_interp_pt_mem(const struct os_consts *c, const struct os_vars *s, struct hw_interp *out,
                      char *why, size_t len)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct hw_interp_diag d;
    if (hw_interp_pt_mem(&v, out, &d) != HW_INTERP_OK) {
        char msg[200];
        hw_interp_diag_format(&d, msg, sizeof msg);
        return model_refuse(why, len, "page table malformed: %s", msg);
    }
    return true;
}

/* definitions_t.rs: candidate_mapping_overlaps_existing_pmem(interp_pt_mem(global_pt), pte),
 * without building the interpretation. */
struct pmem_ctx {
    struct hw_mem_region frame;
    struct hw_mem_region vregion; /* size 0: every page */
    bool found;
};

static bool pmem_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                       const struct hw_pde *pde, const struct hw_pte *combined)
{
    struct pmem_ctx *p = ctx;
    struct hw_mem_region v = { vaddr, combined->frame.size };
    (void)layer, (void)entry_pa;
    if (pde->kind == HW_PDE_PAGE && hw_overlap(p->frame, combined->frame) &&
        (!p->vregion.size || hw_overlap(p->vregion, v)))
        p->found = true;
    return !p->found;
}

/* ... of the pages that intersect vregion (size 0: of every page) */
static bool overlaps_pt_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte,
                             struct hw_mem_region vregion)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct pmem_ctx p = { pte->frame, vregion, false };
    if (!pte->frame.size)
        return false;
    hw_pt_visit(&v, pmem_visit, &p, NULL);
    return p.found;
}

static bool overlaps_existing_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte)
{
    struct hw_mem_region all = { 0, 0 };
    return overlaps_pt_pmem(c, s, pte, all);
}

/* os.rs: CoreState::vmem_pte_size */
uint64_t os_core_vmem_size(const struct os_consts *c, const struct os_vars *s, const struct os_core_state *cs)
{
    struct hw_pte p;
    switch (cs->kind) {
    case OS_MAP_WAITING:
    case OS_MAP_EXECUTING:
        return cs->pte.frame.size;
    case OS_UNMAP_WAITING:
    case OS_PROTECT_WAITING:
        return os_pt_get(c, s, cs->vaddr, &p) ? p.frame.size : 0;
    case OS_IDLE:
        return 0;
    default:
        return cs->result_ok ? cs->result.frame.size : 0;
    }
}

struct hw_mem_region os_core_vregion(const struct os_consts *c, const struct os_vars *s,
                                     const struct os_core_state *cs)
{
    struct hw_mem_region r = { cs->vaddr, 0 };
    if (cs->range) {
        r.base = cs->rg.lo;
        r.size = cs->rg.hi - cs->rg.lo;
    } else {
        r.size = os_core_vmem_size(c, s, cs);
    }
    return r;
}

bool os_tlb_entry_in_shootdown(const struct os_shootdown *sd, const struct hw_mapping *e)
{
    struct hw_mem_region a = { sd->lo, sd->hi - sd->lo }, b = { e->base, e->pte.frame.size };
    return sd->all || (a.size && hw_overlap(a, b));
}

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

/* Range extension: a range unmap/protect needs a shootdown when mappings go, permissions
 * shrink or a huge page was split; one that only adds permissions (or changed nothing) does
 * not. */
bool os_range_needs_shootdown(const struct os_core_state *cs)
{
    return cs->range && cs->result_ok && cs->rg.stored && (os_core_is_unmap(cs->kind) || cs->rg.shrinks || cs->rg.splits);
}

/* os.rs: candidate_mapping_overlaps_inflight_vmem (a Protect state counts like an Unmap; a
 * range operation by its region) */
bool os_overlaps_inflight_vmem(const struct os_consts *c, const struct os_vars *s, uint64_t base, uint64_t size)
{
    struct hw_mem_region cand = { base, size };
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (cs->kind == OS_IDLE)
            continue;
        if (hw_overlap(os_core_vregion(c, s, cs), cand))
            return true;
    }
    return false;
}

/* os.rs: candidate_mapping_overlaps_inflight_pmem (a Protect's frame stays mapped) */
bool os_overlaps_inflight_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *cand)
{
    struct hw_pte p;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (cs->range) {
            /* MapRange: its frames; UnmapRange: the frames of the pages in its region (the
             * recorded ones once it runs), stricter than the HL spec (hlspec.h) */
            struct hw_mem_region fr = { cs->rg.paddr, cs->rg.length }, vr = { cs->rg.lo, cs->rg.hi - cs->rg.lo };
            if (os_core_is_protect(cs->kind) || !cs->rg.length)
                continue;
            if (cs->kind == OS_MAP_WAITING || cs->kind == OS_MAP_EXECUTING) {
                if (hw_overlap(cand->frame, fr))
                    return true;
            } else if (s->plan.buf && cs->kind != OS_UNMAP_WAITING) {
                for (unsigned j = 0; j < s->plan.buf->nold; j++)
                    if (hw_overlap(cand->frame, s->plan.buf->old[j].pte.frame))
                        return true;
            } else if (overlaps_pt_pmem(c, s, cand, vr)) {
                return true;
            }
            continue;
        }
        switch (cs->kind) {
        case OS_MAP_WAITING:
        case OS_MAP_EXECUTING:
            if (hw_overlap(cand->frame, cs->pte.frame))
                return true;
            break;
        case OS_UNMAP_WAITING:
            if (os_pt_get(c, s, cs->vaddr, &p) && hw_overlap(cand->frame, p.frame))
                return true;
            break;
        case OS_UNMAP_OP_EXECUTING:
        case OS_UNMAP_OP_DONE:
        case OS_UNMAP_SHOOTDOWN_WAITING:
            if (cs->result_ok && hw_overlap(cand->frame, cs->result.frame))
                return true;
            break;
        default:
            break;
        }
    }
    return false;
}

/* ---- steps ------------------------------------------------------------------------------- */

void os_step_format(const struct os_consts *c, const struct os_step *st, char *buf, size_t len)
{
    struct hw_core k = os_core_of(c, st->core);
    switch (st->kind) {
    case OS_STEP_HW:
        switch (st->hw.kind) {
        case HW_STEP_READ_WRITE:
            snprintf(buf, len, "thread %u (core %u.%u) HW ReadWrite %s 0x%" PRIx64 "%s -> %s", st->ULT_id,
                     st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.op.kind == HW_RW_STORE ? "store" : (st->hw.op.is_exec ? "exec" : "load"),
                     st->hw.vaddr, st->hw.has_pte ? " via TLB" : " (no TLB entry)",
                     st->rw.kind == HW_RESULT_PAGEFAULT ? "page fault"
                     : st->rw.kind == HW_RESULT_OK      ? "ok"
                                                        : "value");
            break;
        case HW_STEP_TLB_FILL:
            snprintf(buf, len, "core %u.%u HW TLBFill 0x%" PRIx64 " -> frame 0x%" PRIx64, st->hw.core.NUMA_id,
                     st->hw.core.core_id, st->hw.vaddr, st->hw.pte.frame.base);
            break;
        case HW_STEP_TLB_EVICT:
            snprintf(buf, len, "core %u.%u HW TLBEvict 0x%" PRIx64, st->hw.core.NUMA_id, st->hw.core.core_id,
                     st->hw.vaddr);
            break;
        case HW_STEP_ACCESSED_DIRTY:
            snprintf(buf, len, "MMU HW AccessedDirty 0x%" PRIx64 "%s", st->hw.vaddr, st->hw.is_write ? " (write)" : "");
            break;
        default:
            snprintf(buf, len, "HW ?");
        }
        return;
    case OS_STEP_MAP_START:
        snprintf(buf, len, "thread %u MapStart 0x%" PRIx64 " -> frame 0x%" PRIx64 " size 0x%" PRIx64 "%s%s%s",
                 st->ULT_id, st->vaddr, st->pte.frame.base, st->pte.frame.size,
                 st->pte.flags.is_writable ? " W" : "", st->pte.flags.is_supervisor ? " S" : " U",
                 st->pte.flags.disable_execute ? " XD" : "");
        return;
    case OS_STEP_UNMAP_START:
        snprintf(buf, len, "thread %u UnmapStart 0x%" PRIx64, st->ULT_id, st->vaddr);
        return;
    case OS_STEP_PROTECT_START:
        snprintf(buf, len, "thread %u ProtectStart 0x%" PRIx64 "%s%s%s", st->ULT_id, st->vaddr,
                 st->flags.is_writable ? " W" : "", st->flags.is_supervisor ? " S" : " U",
                 st->flags.disable_execute ? " XD" : "");
        return;
    case OS_STEP_MAP_RANGE_START: {
        static const char *const pol[] = { "largest fit", "only 4K", "only 2M", "only 1G" };
        snprintf(buf, len, "thread %u MapRangeStart [0x%" PRIx64 ", 0x%" PRIx64 ") -> frame 0x%" PRIx64 " (%s)%s%s%s",
                 st->ULT_id, st->vaddr, st->vaddr + st->length, st->paddr, pol[st->policy & 3],
                 st->flags.is_writable ? " W" : "", st->flags.is_supervisor ? " S" : " U",
                 st->flags.disable_execute ? " XD" : "");
        return;
    }
    case OS_STEP_UNMAP_RANGE_START:
    case OS_STEP_PROTECT_RANGE_START:
        snprintf(buf, len, "thread %u %s [0x%" PRIx64 ", 0x%" PRIx64 ")%s%s%s (%s)", st->ULT_id, os_step_name(st->kind),
                 st->vaddr, st->vaddr + st->length,
                 st->kind == OS_STEP_UNMAP_RANGE_START ? "" : st->flags.is_writable ? " W" : " RO",
                 st->kind == OS_STEP_UNMAP_RANGE_START ? "" : st->flags.is_supervisor ? " S" : " U",
                 st->kind == OS_STEP_PROTECT_RANGE_START && st->flags.disable_execute ? " XD" : "",
                 st->split ? "split straddlers" : "straddle fails");
        return;
    default:
        break;
    }
    int n = snprintf(buf, len, "core %u.%u %s", k.NUMA_id, k.core_id, os_step_name(st->kind));
    if (n < 0 || (size_t)n >= len)
        return;
    if (st->nhidden && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ": %u stores into unreachable directory 0x%" PRIx64 ", then",
                      st->nhidden, st->hidden_frame);
    if (st->wrote && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "%sstore [0x%" PRIx64 "] 0x%" PRIx64 " -> 0x%" PRIx64,
                      st->nhidden ? " " : ": ", st->write_pa, st->write_old, st->write_value);
    if (n >= 0 && (size_t)n < len && st->nfreed)
        n += snprintf(buf + n, len - (size_t)n, ", freed %u director%s", st->nfreed, st->nfreed > 1 ? "ies" : "y");
    if (n >= 0 && (size_t)n < len &&
        (st->kind == OS_STEP_MAP_END || st->kind == OS_STEP_UNMAP_OP_START || st->kind == OS_STEP_PROTECT_OP_START ||
         st->kind == OS_STEP_MAP_OP_START || st->kind == OS_STEP_UNMAP_END || st->kind == OS_STEP_PROTECT_END))
        snprintf(buf + n, len - (size_t)n, " (%s)", st->result_ok ? "Ok" : "Err");
}

static struct os_core_state *cs_of(struct os_vars *s, unsigned core) { return &s->core_states[core]; }

/* Apply the next recorded store (and the frees that follow it) to s2 (already a copy). A run
 * of stores the recorder marked hidden, all into one frame that this operation took and that
 * no walk reaches, goes in the same step: no MMU and no other core can see that memory, so
 * applying them one per step would only multiply interleavings (a split fills 512 entries). */
static enum os_step_status apply_next(const struct os_consts *c, struct os_vars *s2, struct os_step *st,
                                      char *why, size_t len)
{
    struct os_plan *p = &s2->plan;
    const struct os_pt_event *ev = p->buf ? p->buf->ev : NULL;
    if (p->pos >= p->n || ev[p->pos].kind != OS_EV_WRITE)
        return model_refuse(why, len, "no store left to apply"), OS_STEP_VIOLATION;
    if (ev[p->pos].hidden) {
        uint64_t frame = ev[p->pos].pa & ~(HW_PAGE_SIZE - 1);
        unsigned end = p->pos;
        while (end < p->n && ev[end].kind == OS_EV_WRITE && ev[end].hidden &&
               (ev[end].pa & ~(HW_PAGE_SIZE - 1)) == frame)
            end++;
        if (end < p->n && ev[end].kind == OS_EV_WRITE && frame / HW_PAGE_SIZE < c->pt_frames &&
            !frame_is_free(s2, frame / HW_PAGE_SIZE) && !frame_reachable(c, &s2->hw, frame)) {
            for (; p->pos < end; p->pos++) {
                if (!hw_pmem_write(&s2->hw.global_pt.mem, ev[p->pos].pa, ev[p->pos].value))
                    return OS_STEP_NOMEM;
                st->nhidden++;
            }
            st->hidden_frame = frame;
        }
    }
    const struct os_pt_event *e = &ev[p->pos++];
    struct hw_vars nhw;
    if (e->pa >= hw_pmem_bytes(&s2->hw.global_pt.mem) || e->pa % 8)
        return model_refuse(why, len, "store to 0x%" PRIx64 ", outside page-table memory", e->pa), OS_STEP_VIOLATION;
    st->wrote = true;
    st->write_pa = e->pa;
    st->write_value = e->value;
    st->write_old = hw_pmem_read(&s2->hw.global_pt.mem, e->pa);
    if (hw_step_PTMemOp(&c->hw, &s2->hw, e->pa, e->value, &nhw) != HW_STEP_OK)
        return OS_STEP_NOMEM;
    hw_vars_fini(&s2->hw);
    s2->hw = nhw;
    while (p->pos < p->n && ev[p->pos].kind == OS_EV_FREE) {
        if (!give_frame(c, s2, ev[p->pos].pa, why, len))
            return OS_STEP_VIOLATION;
        p->pos++;
        st->nfreed++;
    }
    return OS_STEP_OK;
}

static unsigned writes_left(const struct os_plan *p)
{
    unsigned n = 0;
    for (unsigned i = p->pos; i < p->n; i++)
        n += p->buf->ev[i].kind == OS_EV_WRITE;
    return n;
}

static uint64_t plan_hash(const struct os_plan_buf *b)
{
    uint64_t h = mix(b->n, b->nold);
    for (unsigned i = 0; i < b->n; i++)
        h = mix(mix(mix(h, b->ev[i].kind | (uint64_t)b->ev[i].hidden << 1), b->ev[i].pa), b->ev[i].value);
    for (unsigned i = 0; i < b->nold; i++)
        h = hash_pte(mix(h, b->old[i].base), &b->old[i].pte);
    return h;
}

/* Run the implementation for core's operation, recording its plan into s2 (old: the
 * snapshot for a range operation, taken over; may be NULL). */
static enum os_step_status run_impl(const struct os_consts *c, const struct os_vars *s1, struct os_vars *s2,
                                    const struct os_pt_request *rq, struct os_pt_outcome *out,
                                    struct hw_mapping *old, unsigned nold, char *why, size_t len)
{
    uint16_t counts[OS_PT_FRAMES_MAX];
    memcpy(counts, s1->pt_counts, sizeof counts);
    if (!c->impl->run(c->impl->ctx, c, s1, rq, counts, out, why, len))
        return free(old), OS_STEP_VIOLATION;
    if (out->nomem)
        return free(old), OS_STEP_DISABLED; /* the caller decides (step_op_start) */
    if (out->nev && out->ev[0].kind != OS_EV_WRITE)
        return free(old), model_refuse(why, len, "a directory freed before any store"), OS_STEP_VIOLATION;
    if (!take_frames(c, s2, out, why, len))
        return free(old), OS_STEP_VIOLATION;
    memcpy(s2->pt_counts, counts, sizeof counts);
    s2->pt_private = out->private_state;
    plan_drop(&s2->plan);
    if (out->nev || old) {
        struct os_plan_buf *b = calloc(1, sizeof *b);
        if (!b)
            return free(old), OS_STEP_NOMEM;
        b->refs = 1;
        b->n = out->nev;
        b->ev = out->ev; /* taken over */
        out->ev = NULL;
        out->nev = out->cap = 0;
        b->old = old;
        b->nold = nold;
        b->hash = plan_hash(b);
        s2->plan.buf = b;
        s2->plan.n = b->n;
    }
    return OS_STEP_OK;
}

static bool ult_ok(const struct os_consts *c, const struct os_vars *s1, unsigned ult, char *why, size_t len)
{
    if (ult >= c->ULT_no)
        return model_refuse(why, len, "thread %u not valid", ult);
    if (s1->core_states[os_core_index(c, c->ULT2core[ult])].kind != OS_IDLE)
        return model_refuse(why, len, "thread %u's core is not Idle", ult);
    return true;
}

static enum os_step_status step_HW(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                   struct os_vars *s2, struct os_delta *d, char *why, size_t len)
{
    struct hw_step *h = &st->hw;
    if (h->kind == HW_STEP_PT_MEM_OP)
        return model_refuse(why, len, "PTMemOp is not a HW step of a thread"), OS_STEP_DISABLED;
    if (h->kind == HW_STEP_READ_WRITE) {
        /* step_HW: the thread's core is Idle; x86pt: it uses its own core's TLB */
        if (st->ULT_id >= c->ULT_no)
            return model_refuse(why, len, "thread not valid"), OS_STEP_DISABLED;
        h->core = c->ULT2core[st->ULT_id];
        if (s1->core_states[os_core_index(c, h->core)].kind != OS_IDLE)
            return model_refuse(why, len, "thread %u's core is not Idle", st->ULT_id), OS_STEP_DISABLED;
    }
    st->core = os_core_index(c, h->core);
    memcpy(s2, s1, sizeof *s2);
    plan_hold(&s2->plan); /* hw_next_step makes s2->hw; s2 shares the plan */
    enum hw_step_status r = hw_next_step(&c->hw, &s1->hw, h, &s2->hw, &st->rw);
    if (r != HW_STEP_OK)
        plan_drop(&s2->plan);
    if (r == HW_STEP_E_NOMEM)
        return OS_STEP_NOMEM;
    if (r != HW_STEP_OK)
        return model_refuse(why, len, "%s", hw_step_status_str(r)), OS_STEP_DISABLED;
    if (h->kind == HW_STEP_READ_WRITE && h->op.kind == HW_RW_STORE && st->rw.kind == HW_RESULT_OK) {
        d->n = 1;
        d->pa[0] = st->rw.paddr;
        d->old[0] = hw_pmem_read(&s1->hw.mem, st->rw.paddr);
    }
    return OS_STEP_OK;
}

/* MapStart / UnmapStart / ProtectStart: Idle -> Waiting; soundness as os.rs says. */
static enum os_step_status step_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                      struct os_vars *s2, char *why, size_t len)
{
    if (!ult_ok(c, s1, st->ULT_id, why, len))
        return OS_STEP_DISABLED;
    unsigned core = os_core_index(c, c->ULT2core[st->ULT_id]);
    struct hl_consts hc = { c->ULT_no, c->hw.phys_mem_size, c->hw.maxphyaddr };
    struct os_core_state ns = { .ULT_id = st->ULT_id, .vaddr = st->vaddr };
    bool sound;
    st->core = core;
    if (st->kind == OS_STEP_MAP_START) {
        /* step_Map_enabled (incl. alloc_available_pages() >= 3) */
        if (!hl_step_Map_enabled(&hc, st->vaddr, &st->pte) || os_pt_free_count(c, s1) < 3)
            return model_refuse(why, len, "not step_Map_enabled"), OS_STEP_DISABLED;
        ns.kind = OS_MAP_WAITING;
        ns.pte = st->pte;
        /* step_Map_sound */
        sound = !overlaps_existing_pmem(c, s1, &st->pte) && !os_overlaps_inflight_pmem(c, s1, &st->pte) &&
                !os_overlaps_inflight_vmem(c, s1, st->vaddr, st->pte.frame.size);
    } else {
        struct hw_pte p;
        if (!hl_step_Unmap_enabled(st->vaddr))
            return model_refuse(why, len, "not step_Unmap_enabled"), OS_STEP_DISABLED;
        ns.kind = st->kind == OS_STEP_UNMAP_START ? OS_UNMAP_WAITING : OS_PROTECT_WAITING;
        ns.flags = st->flags;
        sound = !os_overlaps_inflight_vmem(c, s1, st->vaddr, os_pt_get(c, s1, st->vaddr, &p) ? p.frame.size : 0);
    }
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->core_states[core] = ns;
    s2->sound = s1->sound && sound;
    return OS_STEP_OK;
}

/* Range extension (hlspec.h): MapRangeStart / UnmapRangeStart / ProtectRangeStart: Idle ->
 * the Waiting state of the operation, with its region and the contract's result fixed now
 * (hl_range_region over interp_pt_mem, the same definition the HL spec uses). */
static enum os_step_status step_range_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                            struct os_vars *s2, char *why, size_t len)
{
    static const enum hl_args_kind kinds[] = { HL_ARGS_MAP_RANGE, HL_ARGS_UNMAP_RANGE, HL_ARGS_PROTECT_RANGE };
    static const enum os_core_kind waiting[] = { OS_MAP_WAITING, OS_UNMAP_WAITING, OS_PROTECT_WAITING };
    unsigned op = (unsigned)(st->kind - OS_STEP_MAP_RANGE_START);
    if (!ult_ok(c, s1, st->ULT_id, why, len))
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
    hw_interp_fini(&pt);
    bool sound = !os_overlaps_inflight_vmem(c, s1, ns.rg.lo, ns.rg.hi - ns.rg.lo);
    if (op == 0 && st->length) {
        struct hw_pte fr = { { st->paddr, st->length }, st->flags };
        sound = sound && !overlaps_existing_pmem(c, s1, &fr) && !os_overlaps_inflight_pmem(c, s1, &fr);
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

/* Range extension: Map/Unmap/ProtectOpStart of a range operation. Takes the lock, runs the
 * implementation, records its stores (none applied yet: each is a RangeStore step) and the
 * snapshot. */
static enum os_step_status step_range_op_start(const struct os_consts *c, const struct os_vars *s1,
                                               struct os_step *st, struct os_vars *s2, unsigned op, char *why,
                                               size_t len)
{
    static const enum os_core_kind executing[] = { OS_MAP_EXECUTING, OS_UNMAP_OP_EXECUTING, OS_PROTECT_OP_EXECUTING };
    const struct os_core_state *cs = &s1->core_states[st->core];
    struct os_pt_request rq = { .op = (enum os_pt_op)op, .vaddr = cs->vaddr, .flags = cs->flags, .range = true,
                                .length = cs->rg.length, .paddr = cs->rg.paddr, .policy = cs->rg.policy,
                                .split = cs->rg.split };
    unsigned bound = range_dirs_bound(cs);
    if (os_pt_free_count(c, s1) < bound)
        return model_refuse(why, len, "the pool holds fewer than the %u directories the operation may need", bound),
               OS_STEP_DISABLED;
    struct hw_mapping *old;
    unsigned nold;
    if (!range_snapshot(c, s1, cs, &old, &nold, why, len))
        return OS_STEP_NOMEM;
    struct os_pt_outcome out;
    memset(&out, 0, sizeof out);
    if (!os_vars_copy(s2, s1)) {
        free(old);
        return OS_STEP_NOMEM;
    }
    enum os_step_status r = run_impl(c, s1, s2, &rq, &out, old, nold, why, len);
    os_pt_outcome_fini(&out);
    if (r == OS_STEP_DISABLED) /* out.nomem although the pool held the bound */
        return model_refuse(why, len, "the implementation ran out of directories with %u free (bound %u)",
                   os_pt_free_count(c, s1), bound), OS_STEP_VIOLATION;
    if (r != OS_STEP_OK)
        return r;
    struct os_core_state *ns = cs_of(s2, st->core);
    ns->kind = executing[op];
    ns->result_ok = out.ok;
    st->result_ok = out.ok;
    ns->rg.stored = s2->plan.n > 0;
    for (unsigned i = 0; i < s2->plan.n && !ns->rg.splits; i++)
        ns->rg.splits = s2->plan.buf->ev[i].hidden;
    ns->rg.flush_lo = out.flush_lo;
    ns->rg.flush_hi = out.flush_hi;
    ns->rg.flush_all = out.flush_all;
    if (op == OS_PT_PROTECT && cs->rg.length)
        for (unsigned i = 0; i < nold; i++) {
            struct hw_mem_region m = { old[i].base, old[i].pte.frame.size }, rr = { cs->vaddr, cs->rg.length };
            if (hw_overlap(m, rr) && !hl_flags_le(old[i].pte.flags, cs->flags))
                ns->rg.shrinks = true;
        }
    /* (in an unsound state another operation may have changed the region since Start) */
    if (s1->sound && out.ok != cs->rg.will_ok)
        return model_refuse(why, len, "the implementation returns %s but the contract says %s", out.ok ? "Ok" : "Err",
                   cs->rg.will_ok ? "Ok" : "Err"), OS_STEP_VIOLATION;
    if (!out.ok && s2->plan.n)
        return model_refuse(why, len, "the implementation failed but made stores"), OS_STEP_VIOLATION;
    if (op != OS_PT_MAP && s2->plan.n && !out.flush_requested)
        return model_refuse(why, len, "the implementation changed the table but asked for no TLB invalidation"),
               OS_STEP_VIOLATION;
    return OS_STEP_OK;
}

/* Range extension: RangeStore: the next store (with the frees that follow it) of the range
 * operation of core. */
static enum os_step_status step_range_store(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                            struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c))
        return OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    bool exec = cs->kind == OS_MAP_EXECUTING || cs->kind == OS_UNMAP_OP_EXECUTING || cs->kind == OS_PROTECT_OP_EXECUTING;
    if (!cs->range || !exec || s1->plan.pos >= s1->plan.n)
        return model_refuse(why, len, "no range store to apply"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    return apply_next(c, s2, st, why, len);
}

/* MapOpStart / UnmapOpStart / ProtectOpStart: take the lock, run the implementation. */
static enum os_step_status step_op_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                         struct os_vars *s2, char *why, size_t len)
{
    static const enum os_core_kind waiting[] = { OS_MAP_WAITING, OS_UNMAP_WAITING, OS_PROTECT_WAITING };
    static const enum os_core_kind executing[] = { OS_MAP_EXECUTING, OS_UNMAP_OP_EXECUTING, OS_PROTECT_OP_EXECUTING };
    enum os_pt_op op = st->kind == OS_STEP_MAP_OP_START ? OS_PT_MAP
                       : st->kind == OS_STEP_UNMAP_OP_START ? OS_PT_UNMAP : OS_PT_PROTECT;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != waiting[op])
        return model_refuse(why, len, "core is not %s", os_core_kind_name(waiting[op])), OS_STEP_DISABLED;
    if (os_kernel_lock(c, s1) >= 0)
        return model_refuse(why, len, "kernel lock is held"), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (cs->range)
        return step_range_op_start(c, s1, st, s2, op, why, len);
    struct os_pt_request rq = { .op = op, .vaddr = cs->vaddr, .pte = cs->pte, .flags = cs->flags };
    struct os_pt_outcome out;
    struct hw_pte old;
    bool had = os_pt_get(c, s1, cs->vaddr, &old);
    memset(&out, 0, sizeof out);
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    enum os_step_status r = run_impl(c, s1, s2, &rq, &out, NULL, 0, why, len);
    os_pt_outcome_fini(&out);
    if (r == OS_STEP_DISABLED)
        return model_refuse(why, len, "the implementation says NOMEM for a single operation"), OS_STEP_VIOLATION;
    if (r != OS_STEP_OK)
        return r;
    struct os_core_state *ns = cs_of(s2, st->core);
    ns->kind = executing[op];
    ns->result_ok = out.ok;
    st->result_ok = out.ok;
    if (op == OS_PT_MAP)
        return OS_STEP_OK; /* spec_pt::step_Map_Start: no store */
    /* UnmapOpStart: result Ok(s1.interp_pt_mem()[vaddr]) or Err; the first store is the one
     * that changes the view. */
    if (out.ok) {
        ns->result = had ? old : out.reported;
        if (!had)
            memset(&ns->result, 0, sizeof ns->result);
        if (s2->plan.n == 0)
            return model_refuse(why, len, "the implementation says Ok but made no store"), OS_STEP_VIOLATION;
        if (op == OS_PT_UNMAP && out.has_reported && had && !hw_pte_equal(&out.reported, &old))
            return model_refuse(why, len, "unmap reports a mapping that is not the one at 0x%" PRIx64, cs->vaddr),
                   OS_STEP_VIOLATION;
        if (!out.flush_requested)
            return model_refuse(why, len, "the implementation asked for no TLB invalidation"), OS_STEP_VIOLATION;
        return apply_next(c, s2, st, why, len);
    }
    if (s2->plan.n)
        return model_refuse(why, len, "the implementation failed but made stores"), OS_STEP_VIOLATION;
    return OS_STEP_OK;
}

static enum os_step_status step_view_stutter(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                             struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c))
        return OS_STEP_DISABLED;
    enum os_core_kind k = s1->core_states[st->core].kind;
    if (s1->core_states[st->core].range || !s1->plan.buf)
        return model_refuse(why, len, "no store to apply as a ViewStutter"), OS_STEP_DISABLED;
    unsigned left = writes_left(&s1->plan);
    /* a map's last store belongs to MapEnd */
    bool ok = (k == OS_MAP_EXECUTING && left >= 2) ||
              ((k == OS_UNMAP_OP_EXECUTING || k == OS_PROTECT_OP_EXECUTING) && left >= 1);
    if (!ok)
        return model_refuse(why, len, "no store to apply as a ViewStutter"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    return apply_next(c, s2, st, why, len);
}

static enum os_step_status step_map_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != OS_MAP_EXECUTING)
        return model_refuse(why, len, "core is not MapExecuting"), OS_STEP_DISABLED;
    if (s1->core_states[st->core].range) { /* MapRangeEnd: every store made */
        if (s1->plan.pos != s1->plan.n)
            return model_refuse(why, len, "stores left"), OS_STEP_DISABLED;
        if (!os_vars_copy(s2, s1))
            return OS_STEP_NOMEM;
        st->result_ok = s1->core_states[st->core].result_ok;
        st->range = true;
        plan_drop(&s2->plan);
        memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
        return OS_STEP_OK;
    }
    if (s1->plan.buf && writes_left(&s1->plan) > 1)
        return model_refuse(why, len, "stores left before the last one"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    st->result_ok = s1->core_states[st->core].result_ok;
    if (s1->plan.buf && writes_left(&s1->plan) == 1) {
        enum os_step_status r = apply_next(c, s2, st, why, len);
        if (r != OS_STEP_OK)
            return r;
    }
    if (s2->plan.pos != s2->plan.n)
        return model_refuse(why, len, "events left after the map's last store"), OS_STEP_VIOLATION;
    plan_drop(&s2->plan);
    cs_of(s2, st->core)->kind = OS_IDLE;
    memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

static enum os_step_status step_op_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                       struct os_vars *s2, char *why, size_t len)
{
    enum os_core_kind from = st->kind == OS_STEP_UNMAP_OP_END ? OS_UNMAP_OP_EXECUTING : OS_PROTECT_OP_EXECUTING;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != from)
        return model_refuse(why, len, "core is not %s", os_core_kind_name(from)), OS_STEP_DISABLED;
    if (s1->plan.pos != s1->plan.n)
        return model_refuse(why, len, "stores left"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    if (!s1->core_states[st->core].range) /* a range operation keeps its snapshot until it ends */
        plan_drop(&s2->plan);
    cs_of(s2, st->core)->kind = from + 1; /* *OpDone */
    return OS_STEP_OK;
}

static bool protect_shrinks(const struct os_core_state *cs)
{
    return cs->result_ok && !hl_flags_le(cs->result.flags, cs->flags);
}

static enum os_step_status step_initiate_shootdown(const struct os_consts *c, const struct os_vars *s1,
                                                   struct os_step *st, struct os_vars *s2, char *why, size_t len)
{
    bool prot = st->kind == OS_STEP_PROTECT_INITIATE_SHOOTDOWN;
    enum os_core_kind from = prot ? OS_PROTECT_OP_DONE : OS_UNMAP_OP_DONE;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != from)
        return model_refuse(why, len, "core is not %s", os_core_kind_name(from)), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (cs->range ? !os_range_needs_shootdown(cs) : (!cs->result_ok || (prot && !protect_shrinks(cs))))
        return model_refuse(why, len, "nothing to shoot down"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    cs_of(s2, st->core)->kind = from + 1; /* *ShootdownWaiting */
    s2->TLB_Shootdown.vaddr = cs->vaddr;
    s2->TLB_Shootdown.open_requests = (uint32_t)((UINT64_C(1) << os_ncores(c)) - 1);
    s2->TLB_Shootdown.for_protect = prot;
    s2->TLB_Shootdown.for_range = cs->range; /* the reported flush range, or everything */
    s2->TLB_Shootdown.all = cs->range && cs->rg.flush_all;
    s2->TLB_Shootdown.lo = cs->range ? cs->rg.flush_lo : 0;
    s2->TLB_Shootdown.hi = cs->range ? cs->rg.flush_hi : 0;
    return OS_STEP_OK;
}

/* os.rs: step_Ack_Shootdown_IPI (+ the protect variant, os.h) */
static enum os_step_status step_ack(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || !(s1->TLB_Shootdown.open_requests >> st->core & 1))
        return model_refuse(why, len, "no open request for this core"), OS_STEP_DISABLED;
    if (s1->TLB_Shootdown.for_range) {
        const struct hw_tlb *tlb = hw_core_tlb_const(&c->hw, &s1->hw, os_core_of(c, st->core));
        for (uint32_t e = 0; e < tlb->len; e++)
            if (os_tlb_entry_in_shootdown(&s1->TLB_Shootdown, &tlb->entries[e]) &&
                !os_agrees_with_pt(c, s1, &tlb->entries[e]))
                return model_refuse(why, len, "TLB holds 0x%" PRIx64 " unlike the table, inside the flush range",
                           tlb->entries[e].base), OS_STEP_DISABLED;
        if (!os_vars_copy(s2, s1))
            return OS_STEP_NOMEM;
        s2->TLB_Shootdown.open_requests &= ~(UINT32_C(1) << st->core);
        return OS_STEP_OK;
    }
    uint64_t v = s1->TLB_Shootdown.vaddr;
    const struct hw_pte *t = hw_tlb_get(hw_core_tlb_const(&c->hw, &s1->hw, os_core_of(c, st->core)), v);
    struct hw_pte now;
    bool mapped = os_pt_get(c, s1, v, &now);
    if (!s1->TLB_Shootdown.for_protect) {
        if (t || mapped)
            return model_refuse(why, len, "TLB still holds 0x%" PRIx64 " (or it is mapped)", v), OS_STEP_DISABLED;
    } else if (t && !(mapped && t->frame.base == now.frame.base && t->frame.size == now.frame.size &&
                      hl_flags_le(t->flags, now.flags))) {
        return model_refuse(why, len, "TLB holds 0x%" PRIx64 " with more permissions than the table", v), OS_STEP_DISABLED;
    }
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->TLB_Shootdown.open_requests &= ~(UINT32_C(1) << st->core);
    return OS_STEP_OK;
}

/* os.rs: step_Unmap_End (+ ProtectEnd) */
static enum os_step_status step_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c))
        return OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    bool ok;
    if (cs->range && (os_core_is_unmap(cs->kind) || os_core_is_protect(cs->kind)))
        ok = (cs->kind == OS_UNMAP_SHOOTDOWN_WAITING || cs->kind == OS_PROTECT_SHOOTDOWN_WAITING)
                 ? !s1->TLB_Shootdown.open_requests
                 : (cs->kind == OS_UNMAP_OP_DONE || cs->kind == OS_PROTECT_OP_DONE) && !os_range_needs_shootdown(cs);
    else if (st->kind == OS_STEP_UNMAP_END)
        ok = (cs->kind == OS_UNMAP_SHOOTDOWN_WAITING && !s1->TLB_Shootdown.open_requests) ||
             (cs->kind == OS_UNMAP_OP_DONE && !cs->result_ok);
    else
        ok = (cs->kind == OS_PROTECT_SHOOTDOWN_WAITING && !s1->TLB_Shootdown.open_requests) ||
             (cs->kind == OS_PROTECT_OP_DONE && !protect_shrinks(cs));
    if (!ok)
        return model_refuse(why, len, "not ready to end"), OS_STEP_DISABLED;
    if (cs->range && (st->kind == OS_STEP_UNMAP_END) != os_core_is_unmap(cs->kind))
        return model_refuse(why, len, "not this operation's end"), OS_STEP_DISABLED;
    st->result_ok = cs->result_ok;
    st->range = cs->range;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    if (cs->range) {
        plan_drop(&s2->plan);
        if (s1->TLB_Shootdown.for_range)
            memset(&s2->TLB_Shootdown, 0, sizeof s2->TLB_Shootdown);
    }
    memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

enum os_step_status os_next_step(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                 struct os_vars *s2, struct os_delta *delta, char *why, size_t len)
{
    enum os_step_status r;
    delta->n = 0;
    st->wrote = false;
    st->range = false;
    st->nhidden = 0;
    st->nfreed = 0;
    switch (st->kind) {
    case OS_STEP_HW:
        return step_HW(c, s1, st, s2, delta, why, len);
    case OS_STEP_MAP_START:
    case OS_STEP_UNMAP_START:
    case OS_STEP_PROTECT_START:
        return step_start(c, s1, st, s2, why, len);
    case OS_STEP_MAP_RANGE_START:
    case OS_STEP_UNMAP_RANGE_START:
    case OS_STEP_PROTECT_RANGE_START:
        return step_range_start(c, s1, st, s2, why, len);
    case OS_STEP_RANGE_STORE:
        r = step_range_store(c, s1, st, s2, why, len);
        break;
    case OS_STEP_MAP_OP_START:
    case OS_STEP_UNMAP_OP_START:
    case OS_STEP_PROTECT_OP_START:
        r = step_op_start(c, s1, st, s2, why, len);
        break;
    case OS_STEP_VIEW_STUTTER:
        r = step_view_stutter(c, s1, st, s2, why, len);
        break;
    case OS_STEP_MAP_END:
        r = step_map_end(c, s1, st, s2, why, len);
        break;
    case OS_STEP_UNMAP_OP_END:
    case OS_STEP_PROTECT_OP_END:
        return step_op_end(c, s1, st, s2, why, len);
    case OS_STEP_UNMAP_INITIATE_SHOOTDOWN:
    case OS_STEP_PROTECT_INITIATE_SHOOTDOWN:
        return step_initiate_shootdown(c, s1, st, s2, why, len);
    case OS_STEP_ACK_SHOOTDOWN_IPI:
        return step_ack(c, s1, st, s2, why, len);
    case OS_STEP_UNMAP_END:
    case OS_STEP_PROTECT_END:
        return step_end(c, s1, st, s2, why, len);
    default:
        return model_refuse(why, len, "unknown step"), OS_STEP_DISABLED;
    }
    /* the steps that copied s1 before failing must not leak */
    if (r == OS_STEP_VIOLATION || r == OS_STEP_NOMEM)
        os_vars_fini(s2);
    return r;
}
