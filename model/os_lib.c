/*
 * x86pt's extension of os.rs: the page-table implementation's accesses as steps (os.h).
 *
 * os.rs lets one PTMemOp of the lock holder change the page table per step and abstracts the
 * implementation's reads away. x86pt runs the real library instead, one action at a time
 * (struct os_lib_action), on the current state. What becomes a step of its own:
 *   - every load, store and compare-exchange of an entry of a directory some walk can reach,
 *     and the zeroing of such a directory: the hardware of other cores (walks, TLB fills, A/D
 *     updates) may act between any two of them, as on a real machine;
 *   - nothing else: allocations and frees (only the lock holder uses the pool), and accesses
 *     to a directory this operation took from the pool and has not linked yet (no walk can
 *     reach it, so they commute with every other step) are made together with the next step.
 *     A frame freed by an operation goes back to the pool only when the operation ends, after
 *     its shootdown, so no core can still hold a cached pointer to a pool frame.
 * Checks made here, beyond spec_pt (spec_pt.c judges the view):
 *   - Accessed/Dirty: a store that keeps a page (its permissions change, or a split replaces it
 *     by a directory of its parts) must keep every A and D bit the MMU set in it, up to the
 *     moment of the store. Removing a page drops its bits by design (x86pt_unmap reports no
 *     A/D yet);
 *   - the flush report: when the library returns, its reported range must cover every
 *     translation its stores removed, moved, split or made less permissive, and dirs_freed
 *     must be non-zero if it freed a directory that had been reachable.
 */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a frame from the pool holds (x86pt.h: alloc_frame's frame may be garbage): a present,
 * writable, user entry in every word, pointing outside page-table memory, so that linking it
 * unzeroed changes the MMU's view or breaks the table at every layer. */
#define POOL_GARBAGE UINT64_C(0x00000000deadb007)

/* ---- the run, as a value ------------------------------------------------------------------- */

void os_run_hold(struct os_run *r)
{
    if (r->buf)
        atomic_fetch_add_explicit(&r->buf->refs, 1, memory_order_relaxed);
    if (r->snap)
        atomic_fetch_add_explicit(&r->snap->refs, 1, memory_order_relaxed);
}

static void buf_drop(struct os_run_buf *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        free(b->resp);
        free(b->phash);
        free(b);
    }
}

static void snap_drop(struct os_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        free(s->map);
        free(s);
    }
}

void os_run_drop(struct os_run *r)
{
    buf_drop(r->buf);
    snap_drop(r->snap);
    memset(r, 0, sizeof *r);
}

void os_run_finish(struct os_run *r, bool keep_snapshot)
{
    buf_drop(r->buf);
    r->buf = NULL;
    r->done = 0;
    if (!keep_snapshot) {
        snap_drop(r->snap);
        r->snap = NULL;
    }
}

static struct os_run_buf *buf_new(unsigned cap)
{
    struct os_run_buf *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->cap = cap;
    b->resp = malloc((cap ? cap : 1) * sizeof *b->resp);
    b->phash = malloc((cap + 1) * sizeof *b->phash);
    if (!b->resp || !b->phash) {
        buf_drop(b);
        return NULL;
    }
    b->phash[0] = UINT64_C(0x6c62272e07bb0142);
    return b;
}

bool os_run_start(struct os_run *r, struct hw_mapping *old, unsigned nold)
{
    os_run_drop(r);
    r->buf = buf_new(16);
    if (!r->buf) {
        free(old);
        return false;
    }
    if (old) {
        r->snap = calloc(1, sizeof *r->snap);
        if (!r->snap) {
            free(old);
            os_run_drop(r);
            return false;
        }
        atomic_init(&r->snap->refs, 1);
        r->snap->n = nold;
        r->snap->map = old;
        uint64_t h = nold;
        for (unsigned i = 0; i < nold; i++)
            h = os_mix(os_mix(os_mix(os_mix(h, old[i].base), old[i].pte.frame.base), old[i].pte.frame.size),
                       hw_flags_bits(old[i].pte.flags));
        r->snap->hash = h;
    }
    return true;
}

uint64_t os_run_hash(const struct os_run *r)
{
    if (!r->buf)
        return 0;
    return os_mix(os_mix(r->buf->phash[r->buf->nresp], r->done), r->snap ? r->snap->hash : 1);
}

bool os_run_equal(const struct os_run *a, const struct os_run *b)
{
    if (!a->buf || !b->buf)
        return a->buf == b->buf && a->snap == b->snap;
    if (a->done != b->done || a->buf->nresp != b->buf->nresp ||
        memcmp(a->buf->resp, b->buf->resp, a->buf->nresp * sizeof *a->buf->resp))
        return false;
    if (!a->snap || !b->snap)
        return a->snap == b->snap;
    return a->snap->n == b->snap->n && !memcmp(a->snap->map, b->snap->map, a->snap->n * sizeof *a->snap->map);
}

/* The snapshot's mapping containing vaddr (NULL if none; b may be NULL). The snapshot is an
 * interpretation: sorted by base. */
const struct hw_mapping *os_snapshot_find(const struct os_snapshot *b, uint64_t vaddr)
{
    unsigned lo = 0, hi = b ? b->n : 0;
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

/* Record a response. The first one of a step copies the shared buffer (*own then says the
 * step owns it); later ones of the same step append in place. */
static bool respond(struct os_run *r, bool *own, uint64_t v)
{
    struct os_run_buf *b = r->buf;
    if (!*own || b->nresp == b->cap) {
        struct os_run_buf *n = buf_new(2 * b->nresp + 16);
        if (!n)
            return false;
        n->nresp = b->nresp;
        memcpy(n->resp, b->resp, b->nresp * sizeof *b->resp);
        memcpy(n->phash, b->phash, (b->nresp + 1) * sizeof *b->phash);
        buf_drop(b);
        r->buf = b = n;
        *own = true;
    }
    b->resp[b->nresp] = v;
    b->phash[b->nresp + 1] = os_mix(b->phash[b->nresp], v);
    b->nresp++;
    return true;
}

struct os_pt_request os_core_request(const struct os_core_state *cs)
{
    struct os_pt_request rq = { .vaddr = cs->vaddr, .pte = cs->pte, .flags = cs->flags, .range = cs->range,
                                .ad_clear = cs->ad_clear };
    rq.op = os_core_is_unmap(cs->kind) ? OS_PT_UNMAP : os_core_is_protect(cs->kind) ? OS_PT_PROTECT : OS_PT_MAP;
    rq.gather = rq.op == OS_PT_UNMAP && (cs->range || !(cs->vaddr & HW_PAGE_SIZE));
    if (cs->range) {
        rq.length = cs->rg.length;
        rq.paddr = cs->rg.paddr;
        rq.policy = cs->rg.policy;
        rq.split = cs->rg.split;
    }
    return rq;
}

/* ---- frames --------------------------------------------------------------------------------- */

struct reach_ctx {
    uint64_t frame_pa;
    bool found;
};

static bool reach_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr, const struct hw_pde *pde,
                        const struct hw_pte *combined)
{
    struct reach_ctx *r = ctx;
    (void)layer, (void)entry_pa, (void)vaddr, (void)combined;
    if (pde->kind == HW_PDE_DIRECTORY && pde->addr == r->frame_pa)
        r->found = true;
    return !r->found;
}

bool os_frame_reachable(const struct hw_pt_view *v, uint64_t frame_pa)
{
    struct reach_ctx r = { frame_pa, frame_pa == v->cr3 };
    if (!r.found)
        hw_pt_visit(v, reach_visit, &r, NULL);
    return r.found;
}

bool os_frame_zero(const struct hw_pmem *m, uint64_t frame_pa)
{
    for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE)
        if (hw_pmem_read(m, frame_pa + off))
            return false;
    return true;
}

static bool fill_frame(struct hw_vars *hw, uint64_t frame_pa, uint64_t word)
{
    for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE)
        if (!hw_pmem_write(&hw->global_pt.mem, frame_pa + off, word))
            return false;
    return true;
}

/* spec_t/mem.rs alloc_page, as x86pt's contract has it: the lowest free frame, its contents
 * garbage (the library must zero it). */
static uint64_t take_frame(const struct os_consts *c, struct os_vars *s)
{
    uint64_t f;
    if (!os_pt_alloc(c, s->pt_free, &f))
        return OS_LIB_ALLOC_FAILED;
    os_bit_set(s->pt_fresh, f / HW_PAGE_SIZE);
    return fill_frame(&s->hw, f, POOL_GARBAGE) ? f : OS_LIB_ALLOC_FAILED;
}

/* spec_t/mem.rs dealloc_page: only a zeroed directory nothing points to. A frame this
 * operation took and never linked goes straight back. The kernel holds (held) what the
 * library frees during a call without a gather, or gathers (issue 12: x86pt_unmap_gather), in
 * pt_pending until the end of the operation, after its shootdown (unless the OS is planted with
 * free_early); a directory the library frees itself during a call given a gather goes to the
 * allocator at once, as a gather-using kernel does (it holds nothing else back). */
static bool give_frame(const struct os_consts *c, struct os_vars *s, struct os_core_state *cs, uint64_t pa,
                       bool held, char *why, size_t len)
{
    uint64_t f = pa / HW_PAGE_SIZE;
    if (pa % HW_PAGE_SIZE || f >= c->pt_frames || os_bit(s->pt_free, f) || os_bit(s->pt_pending, f) ||
        pa == s->hw.global_pt.cr3)
        return model_refuse(why, len, "free: frame 0x%" PRIx64 " is not an allocated directory", pa);
    struct os_wmem m;
    if (!os_wmem_get(c, s, &m))
        return model_refuse(why, len, "out of memory");
    struct hw_pt_view v = os_wmem_view(c, s, &m);
    bool linked = os_frame_reachable(&v, pa), zero = os_frame_zero(m.mem, pa);
    os_wmem_put(&m);
    if (linked)
        return model_refuse(why, len, "free: directory 0x%" PRIx64 " is still linked into the table", pa);
    if (!zero)
        return model_refuse(why, len, "free: directory 0x%" PRIx64 " is not zeroed", pa);
    if (os_bit(s->pt_fresh, f)) {
        os_bit_clear(s->pt_fresh, f);
        os_bit_set(s->pt_free, f);
        return true;
    }
    cs->freed++;
    os_bit_set(held && !c->free_early ? s->pt_pending : s->pt_free, f);
    return true;
}

void os_release_pending(struct os_vars *s)
{
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX / 64; i++) {
        s->pt_free[i] |= s->pt_pending[i];
        s->pt_pending[i] = 0;
    }
}

/* A fresh frame stops being fresh when a store makes it reachable, in the writer's view: from
 * then on the stores to it are buffered behind the one that links it, as on the hardware. */
static void fresh_now_linked(const struct os_consts *c, struct os_vars *s, const struct hw_pt_view *v)
{
    for (unsigned f = 0; f < c->pt_frames; f++)
        if (os_bit(s->pt_fresh, f) && os_frame_reachable(v, (uint64_t)f * HW_PAGE_SIZE))
            os_bit_clear(s->pt_fresh, f);
}

/* ---- the checks of a store ---------------------------------------------------------------- */

struct locate_ctx {
    uint64_t entry_pa;
    unsigned layer;
    uint64_t vaddr;
    bool found;
};

static bool locate_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr, const struct hw_pde *pde,
                         const struct hw_pte *combined)
{
    struct locate_ctx *l = ctx;
    (void)pde, (void)combined;
    if (entry_pa == l->entry_pa) {
        l->layer = layer;
        l->vaddr = vaddr;
        l->found = true;
    }
    return !l->found;
}

/* The layer of the (non-empty, reachable) entry at pa. */
static bool locate_entry(const struct hw_pt_view *v, uint64_t pa, unsigned *layer)
{
    struct locate_ctx l = { pa, 0, 0, false };
    hw_pt_visit(v, locate_visit, &l, NULL);
    *layer = l.layer;
    return l.found;
}

/* Is pa the leaf entry of the page that starts at vaddr? */
static bool is_leaf_of(const struct hw_pt_view *v, uint64_t vaddr, uint64_t pa)
{
    struct hw_walk w;
    return hw_pt_walk(v, vaddr, &w) == HW_WALK_PAGE && w.base == vaddr && w.entry_pa[w.layer] == pa;
}

/* The A/D bits core state cs may clear with a store to pa: those a test-and-clear was asked
 * to clear, in the leaf of its page (A/D extension); none otherwise. */
static uint64_t ad_may_clear(const struct os_core_state *cs, const struct hw_pt_view *v, uint64_t pa)
{
    if (!os_core_is_protect(cs->kind) || !cs->ad_clear || !is_leaf_of(v, cs->vaddr, pa))
        return 0;
    return os_ad_entry_bits(cs->ad_clear);
}

/* SDM vol. 3A 4.8: the MMU sets A and D with locked operations at any time; software that
 * rewrites a page entry must not clear them (x86pt.h: protect keeps every other bit), except
 * the bits may_clear a test-and-clear was asked to clear. Called before the store of v over
 * cur at pa reaches the memory m (pv: its view). */
static bool ad_kept(const struct os_consts *c, const struct hw_pt_view *pv, const struct hw_pmem *m, uint64_t pa,
                    uint64_t cur, uint64_t v, uint64_t may_clear, char *why, size_t len)
{
    const uint64_t ad = HW_BIT_A | HW_BIT_D;
    unsigned layer;
    if (!(cur & HW_BIT_P) || !(cur & ad) || !locate_entry(pv, pa, &layer))
        return true;
    struct hw_pde o = hw_pde_view(cur, layer, c->hw.maxphyaddr), n = hw_pde_view(v, layer, c->hw.maxphyaddr);
    uint64_t lost = 0;
    if (o.kind != HW_PDE_PAGE)
        return true; /* a directory entry's A bit says nothing once its directory goes */
    if (n.kind == HW_PDE_PAGE && n.addr == o.addr) {
        lost = cur & ad & ~v & ~may_clear;
    } else if (n.kind == HW_PDE_DIRECTORY && layer + 1 < HW_NUM_LAYERS) {
        /* a split: every part of the page must carry the page's bits */
        for (unsigned j = 0; j < HW_NUM_ENTRIES && n.addr + HW_PAGE_SIZE <= hw_pmem_bytes(m); j++)
            lost |= cur & ad & ~hw_pmem_read(m, n.addr + 8u * j);
    } else {
        return true; /* the page goes (unmapped, or another frame): its bits go with it */
    }
    if (!lost)
        return true;
    return model_refuse(why, len, "store [0x%" PRIx64 "] 0x%" PRIx64 " over 0x%" PRIx64 " loses the %s the MMU set", pa,
                        v, cur, (lost & HW_BIT_D) ? (lost & HW_BIT_A ? "Accessed and Dirty bits" : "Dirty bit")
                                                  : "Accessed bit");
}

/* Widen core's hull of changed translations by what changed from before to after: a page gone,
 * moved, resized or made less permissive (a page that only gains permissions needs no
 * invalidation: a stale entry can only fault, and the fault handler retries). */
static void note_changes(const struct hw_pt_view *vb, const struct hw_pt_view *va, struct os_core_state *cs)
{
    struct hw_interp ib = { 0 }, ia = { 0 };
    if (hw_interp_pt_mem(vb, &ib, NULL) == HW_INTERP_OK && hw_interp_pt_mem(va, &ia, NULL) == HW_INTERP_OK)
        for (size_t i = 0; i < ib.len; i++) {
            const struct hw_mapping *m = &ib.map[i];
            const struct hw_pte *now = hw_interp_get(&ia, m->base);
            if (now && now->frame.base == m->pte.frame.base && now->frame.size == m->pte.frame.size &&
                hl_flags_le(m->pte.flags, now->flags))
                continue;
            uint64_t lo = m->base, hi = m->base + m->pte.frame.size;
            if (cs->chg_lo == cs->chg_hi)
                cs->chg_lo = lo, cs->chg_hi = hi;
            cs->chg_lo = lo < cs->chg_lo ? lo : cs->chg_lo;
            cs->chg_hi = hi > cs->chg_hi ? hi : cs->chg_hi;
        }
    hw_interp_fini(&ib);
    hw_interp_fini(&ia);
}

/* ---- one action ------------------------------------------------------------------------------ */

static bool in_pt_memory(const struct os_vars *s, uint64_t pa)
{
    return pa % 8 == 0 && pa < hw_pmem_bytes(&s->hw.global_pt.mem);
}

/* Is the action's memory unreachable by any walk (a frame this operation took, not linked)? */
static bool silent(const struct os_vars *s, const struct os_lib_action *a)
{
    return os_bit(s->pt_fresh, a->pa / HW_PAGE_SIZE);
}

/* A store to reachable memory, with its checks, made by core: into its store buffer, or
 * (store buffers off, or fenced: a map's last store and the fence after it) to memory. The
 * checks read the writer's table (os_storebuf.c); the Writeback step checks A/D again. */
static enum os_step_status visible_store(const struct os_consts *c, struct os_vars *s, struct os_step *st,
                                         struct os_core_state *cs, unsigned core, uint64_t pa, uint64_t v,
                                         bool fenced, char *why, size_t len)
{
    struct os_wmem before, after;
    if (!os_wmem_get(c, s, &before))
        return OS_STEP_NOMEM;
    struct hw_pt_view vb = os_wmem_view(c, s, &before);
    uint64_t cur = hw_pmem_read(before.mem, pa);
    st->write_old = cur; /* for the trace, also of a store the A/D check refuses */
    bool clearing = os_core_is_protect(cs->kind) && cs->ad_clear;
    uint64_t may_clear = ad_may_clear(cs, &vb, pa);
    if (!ad_kept(c, &vb, before.mem, pa, cur, v, may_clear, why, len)) {
        os_wmem_put(&before);
        return st->check = OS_CHECKID_AD_LOST, OS_STEP_VIOLATION;
    }
    /* A/D extension: a test-and-clear stores once, into the leaf of its page, the entry as it
     * is with exactly the asked bits clear (x86pt.h: x86pt_test_and_clear_ad) */
    const uint64_t ad = HW_BIT_A | HW_BIT_D;
    if (clearing && (!may_clear || (v & ~ad) != (cur & ~ad) || (v & may_clear))) {
        os_wmem_put(&before);
        return model_refuse(why, len, "test-and-clear's store [0x%" PRIx64 "] 0x%" PRIx64 " over 0x%" PRIx64
                                      " is not the leaf of 0x%" PRIx64 " with exactly the asked bits (0x%x) clear",
                            pa, v, cur, cs->vaddr, cs->ad_clear),
               OS_STEP_VIOLATION;
    }
    if (clearing)
        cs->removed_ad = os_entry_ad(cur); /* what the store cleared from: `was` must say this */
    if (!before.owned) { /* keep the view before the store: the store changes s's memory */
        if (!hw_pmem_copy(&before.own, before.mem))
            return OS_STEP_NOMEM;
        before.owned = true, before.mem = &before.own;
        vb = os_wmem_view(c, s, &before);
    }
    bool buffered = c->hw.mmu_sbuf && s->hw.mmu && !fenced;
    if (buffered) {
        struct hw_vars hw;
        enum hw_step_status r = hw_step_PTStore(&c->hw, &s->hw, os_core_of(c, core), pa, v, &hw);
        if (r != HW_STEP_OK) {
            os_wmem_put(&before);
            if (r == HW_STEP_E_NOMEM)
                return OS_STEP_NOMEM;
            return model_refuse(why, len, "core %u's store buffer is full: a Writeback comes first", core),
                   OS_STEP_DISABLED;
        }
        hw_vars_fini(&s->hw);
        s->hw = hw;
        st->buffered = true;
    } else if (!hw_pmem_write(&s->hw.global_pt.mem, pa, v)) {
        os_wmem_put(&before);
        return OS_STEP_NOMEM;
    }
    if (!os_wmem_get(c, s, &after)) {
        os_wmem_put(&before);
        return OS_STEP_NOMEM;
    }
    struct hw_pt_view va = os_wmem_view(c, s, &after);
    if (os_core_is_unmap(cs->kind) || os_core_is_protect(cs->kind)) {
        note_changes(&vb, &va, cs);
        unsigned layer;
        /* an unmap's store that removes its page: the A/D bits it removes with it (issue 12) */
        if (!cs->range && os_core_is_unmap(cs->kind) && cs->result_ok && (cur & HW_BIT_P) &&
            locate_entry(&vb, pa, &layer) && hw_pde_view(cur, layer, c->hw.maxphyaddr).kind == HW_PDE_PAGE &&
            !(v & HW_BIT_P))
            cs->removed_ad = os_entry_ad(cur);
        if ((cur & HW_BIT_P) && locate_entry(&vb, pa, &layer) &&
            hw_pde_view(cur, layer, c->hw.maxphyaddr).kind == HW_PDE_PAGE &&
            hw_pde_view(v, layer, c->hw.maxphyaddr).kind == HW_PDE_DIRECTORY)
            cs->splits = true;
    }
    fresh_now_linked(c, s, &va);
    os_wmem_put(&after);
    os_wmem_put(&before);
    st->wrote = true;
    cs->stored = true;
    return OS_STEP_OK;
}

static enum os_step_status store(const struct os_consts *c, struct os_vars *s, struct os_step *st,
                                 struct os_core_state *cs, unsigned core, const struct os_lib_action *a, bool visible,
                                 bool fenced, char *why, size_t len)
{
    if (visible)
        return visible_store(c, s, st, cs, core, a->pa, a->value, fenced, why, len);
    return hw_pmem_write(&s->hw.global_pt.mem, a->pa, a->value) ? OS_STEP_OK : OS_STEP_NOMEM;
}

/* rl3.rs: step_Writeback, as the OS model sees it: the oldest store of core's buffer reaches
 * memory; it must keep the A and D bits the MMU has set in memory since (ad_kept). */
bool os_lib_writeback_ok(const struct os_consts *c, const struct os_vars *s1, struct os_step *st, char *why,
                         size_t len)
{
    const struct hw_mmu_core *m = s1->hw.mmu ? hw_core_mmu_const(&c->hw, &s1->hw, os_core_of(c, st->core)) : NULL;
    if (!m || !m->nsbuf)
        return true; /* the hardware refuses it */
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s1->hw);
    uint64_t pa = m->sbuf[0].pa, val = m->sbuf[0].value, cur = hw_pmem_read(&s1->hw.global_pt.mem, pa);
    st->accessed = true;
    st->access = OS_LIB_STORE;
    st->write_pa = pa;
    st->write_value = val;
    st->write_old = cur;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (ad_kept(c, &v, &s1->hw.global_pt.mem, pa, cur, val, ad_may_clear(cs, &v, pa), why, len))
        return true;
    st->check = OS_CHECKID_AD_LOST;
    return false;
}

static enum os_step_status perform(const struct os_consts *c, struct os_vars *s, struct os_step *st,
                                   struct os_core_state *cs, unsigned core, const struct os_lib_action *a,
                                   bool visible, bool fenced, bool *own, char *why, size_t len)
{
    struct hw_pmem *m = &s->hw.global_pt.mem;
    if (!in_pt_memory(s, a->pa))
        return model_refuse(why, len, "the library accessed 0x%" PRIx64 ", outside page-table memory", a->pa),
               OS_STEP_VIOLATION;
    if (visible) {
        st->accessed = true;
        st->access = a->kind;
        st->write_pa = a->pa;
        st->write_value = a->value;
    }
    switch (a->kind) {
    case OS_LIB_LOAD: { /* through the core's own store buffer (rl3.rs core_mem) */
        uint64_t v = visible ? hw_pt_load(&c->hw, &s->hw, os_core_of(c, core), a->pa) : hw_pmem_read(m, a->pa);
        st->write_value = v;
        return respond(&s->run, own, v) ? OS_STEP_OK : OS_STEP_NOMEM;
    }
    case OS_LIB_CAS: { /* LOCK CMPXCHG: on memory, with the buffer drained */
        if (visible && !os_sbuf_drained(c, s, core, "a locked cmpxchg", why, len))
            return OS_STEP_DISABLED;
        uint64_t v = hw_pmem_read(m, a->pa);
        if (!respond(&s->run, own, v))
            return OS_STEP_NOMEM;
        if (v != a->expected)
            return OS_STEP_OK;
        return store(c, s, st, cs, core, a, visible, true, why, len); /* the exchange succeeds */
    }
    case OS_LIB_STORE:
        return store(c, s, st, cs, core, a, visible, fenced, why, len);
    case OS_LIB_ZERO:
        if (a->pa % HW_PAGE_SIZE)
            return model_refuse(why, len, "the library zeroes 0x%" PRIx64 ", not a frame", a->pa), OS_STEP_VIOLATION;
        /* a reachable directory's zeroing waits for an empty buffer and lands at once (README:
         * a deviation; its 512 stores are not interleaved one by one) */
        if (visible && !os_sbuf_drained(c, s, core, "zeroing a reachable directory", why, len))
            return OS_STEP_DISABLED;
        if (!fill_frame(&s->hw, a->pa, 0))
            return OS_STEP_NOMEM;
        if (visible) {
            st->wrote = true, cs->stored = true;
            struct os_wmem w;
            if (!os_wmem_get(c, s, &w))
                return OS_STEP_NOMEM;
            struct hw_pt_view v = os_wmem_view(c, s, &w);
            fresh_now_linked(c, s, &v);
            os_wmem_put(&w);
        }
        return OS_STEP_OK;
    default:
        return model_refuse(why, len, "not an access"), OS_STEP_VIOLATION;
    }
}

/* ---- the return ------------------------------------------------------------------------------ */

static enum os_step_status returned(const struct os_consts *c, struct os_vars *s, struct os_step *st,
                                    struct os_core_state *cs, const struct os_lib_result *res, char *why, size_t len)
{
    const struct os_flush *f = &res->flush;
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX; i++) /* the directories it gathered (issue 12) */
        if (os_bit(res->gathered, i) && !give_frame(c, s, cs, (uint64_t)i * HW_PAGE_SIZE, true, why, len))
            return st->check = OS_CHECKID_WRITE_DISCIPLINE, OS_STEP_VIOLATION;
    if (cs->chg_lo < cs->chg_hi && !f->all && !(f->lo <= cs->chg_lo && cs->chg_hi <= f->hi))
        return st->check = OS_CHECKID_FLUSH_REPORT,
               model_refuse(why, len, "the flush report [0x%" PRIx64 ", 0x%" PRIx64 ") does not cover [0x%" PRIx64
                            ", 0x%" PRIx64 "), whose translations the operation changed", f->lo, f->hi, cs->chg_lo,
                            cs->chg_hi), OS_STEP_VIOLATION;
    /* the A/D extension, the library's contract (x86pt.h): a test-and-clear that cleared a set
     * bit names the page (a TLB entry that saw the page dirty lets later writes through without
     * setting D again: SDM vol. 3A 4.8; the model's TLB does not cache D, so this is checked as
     * the contract, not as its consequence) */
    if (cs->ad_clear && cs->stored && (cs->removed_ad & cs->ad_clear) && !f->all &&
        !(f->lo <= cs->vaddr && cs->vaddr < f->hi))
        return st->check = OS_CHECKID_FLUSH_REPORT,
               model_refuse(why, len, "test-and-clear cleared 0x%x of 0x%" PRIx64 " but its flush report [0x%" PRIx64
                            ", 0x%" PRIx64 ") leaves the page out", cs->removed_ad & cs->ad_clear, cs->vaddr, f->lo,
                            f->hi), OS_STEP_VIOLATION;
    if (cs->freed && !f->dirs_freed)
        return st->check = OS_CHECKID_FLUSH_REPORT,
               model_refuse(why, len, "the operation freed %u director%s but its flush report says dirs_freed = 0",
                            cs->freed, cs->freed > 1 ? "ies" : "y"), OS_STEP_VIOLATION;
    cs->flush = *f;
    memcpy(s->pt_counts, res->counts, sizeof s->pt_counts);
    s->pt_private = res->private_state;
    memset(s->pt_fresh, 0, sizeof s->pt_fresh); /* frames kept unlinked are leaked: os_inv_tidy */
    os_run_finish(&s->run, cs->range);
    return OS_STEP_OK;
}

/* Does the implementation return right after the store it is about to make (action `done`)? */
static bool returns_after(const struct os_consts *c, const struct os_vars *s, const struct os_pt_request *rq)
{
    struct os_lib_action a;
    struct os_lib_result res;
    char why[8];
    return c->impl->next(c->impl->ctx, c, rq, s->pt_counts, s->pt_private, s->run.buf, s->run.done + 1, &a, &res, why,
                         sizeof why) &&
           a.kind == OS_LIB_RETURN;
}

enum os_step_status os_lib_advance(const struct os_consts *c, struct os_vars *s2, struct os_step *st,
                                   unsigned core, enum os_lib_until until, struct os_lib_result *res, char *why,
                                   size_t len)
{
    struct os_core_state *cs = &s2->core_states[core];
    struct os_pt_request rq = os_core_request(cs);
    bool own = false, single_map = rq.op == OS_PT_MAP && !rq.range;
    if (!s2->run.buf)
        return model_refuse(why, len, "no operation in flight"), OS_STEP_DISABLED;
    for (;;) {
        struct os_lib_action a;
        enum os_step_status r;
        if (!c->impl->next(c->impl->ctx, c, &rq, s2->pt_counts, s2->pt_private, s2->run.buf, s2->run.done, &a, res, why,
                           len))
            return OS_STEP_VIOLATION;
        switch (a.kind) {
        case OS_LIB_ALLOC: {
            /* x86pt's extension: the allocator may refuse a map or map_range any frame (the
             * seed's OS waits for 3 free frames, so its map never meets a refusal), and an
             * unmap/protect range's split the one its Start named (hlspec.h: nomem). */
            bool refuse = rq.op == OS_PT_MAP ? ++st->nallocs == st->fail_alloc
                                             : cs->range && ++cs->rg.allocs == cs->rg.fail_alloc;
            uint64_t f = refuse ? OS_LIB_ALLOC_FAILED : take_frame(c, s2);
            if (refuse && rq.op != OS_PT_MAP)
                st->fail_alloc = cs->rg.fail_alloc; /* for the trace */
            if (refuse)
                st->alloc_failed = cs->alloc_failed = true;
            if (!respond(&s2->run, &own, f))
                return OS_STEP_NOMEM;
            break;
        }
        case OS_LIB_FREE:
            if (!give_frame(c, s2, cs, a.pa, !rq.gather, why, len))
                return OS_STEP_VIOLATION;
            st->nfreed++;
            break;
        case OS_LIB_RETURN:
            if (until == OS_LIB_UNTIL_ACCESS)
                return model_refuse(why, len, "the operation returns next"), OS_STEP_DISABLED;
            return returned(c, s2, st, cs, res, why, len);
        default:
            if (silent(s2, &a)) {
                if ((r = perform(c, s2, st, cs, core, &a, false, false, &own, why, len)) != OS_STEP_OK)
                    return r;
                st->nsilent++;
                break;
            }
            if (until == OS_LIB_UNTIL_RETURN || (until == OS_LIB_UNTIL_MAP_END && st->accessed))
                return model_refuse(why, len, "an access to the table comes first"), OS_STEP_DISABLED;
            bool last = single_map && a.kind == OS_LIB_STORE && returns_after(c, s2, &rq);
            if (until == OS_LIB_UNTIL_MAP_END && !last)
                return model_refuse(why, len, "not the map's last store"), OS_STEP_DISABLED;
            if (until == OS_LIB_UNTIL_ACCESS && last)
                return model_refuse(why, len, "the map's last store belongs to MapEnd"), OS_STEP_DISABLED;
            /* a map's last store is followed by MapEnd's fence (os_storebuf.c) */
            if ((r = perform(c, s2, st, cs, core, &a, true, last && !c->no_map_fence, &own, why, len)) != OS_STEP_OK)
                return r;
            s2->run.done++;
            if (until == OS_LIB_UNTIL_ACCESS)
                return OS_STEP_OK;
            continue;
        }
        s2->run.done++;
    }
}

/* ---- a read-only call, made at once --------------------------------------------------------- */

/* Run a call that only reads the table (x86pt_resolve) to its return in one step: with no
 * operation holding the lock nothing but the MMU's A/D updates can change the table meanwhile,
 * and they change no translation, so its loads may all fall at one point. Any other action is
 * a violation. s->run is the caller's scratch and is dropped. */
enum os_step_status os_lib_call_readonly(const struct os_consts *c, struct os_vars *s, const struct os_pt_request *rq,
                                         struct os_lib_result *res, char *why, size_t len)
{
    bool own = false;
    if (!os_run_start(&s->run, NULL, 0))
        return OS_STEP_NOMEM;
    for (;;) {
        struct os_lib_action a;
        if (!c->impl->next(c->impl->ctx, c, rq, s->pt_counts, s->pt_private, s->run.buf, s->run.done, &a, res, why,
                           len)) {
            os_run_drop(&s->run);
            return OS_STEP_VIOLATION;
        }
        if (a.kind == OS_LIB_RETURN)
            break;
        if (a.kind != OS_LIB_LOAD || !in_pt_memory(s, a.pa)) {
            os_run_drop(&s->run);
            static const char *const what[] = { "loads outside page-table memory at", "stores to", "cmpxchgs",
                                                "zeroes", "takes a frame from the pool", "frees", "returns" };
            if (a.kind == OS_LIB_ALLOC)
                return model_refuse(why, len, "a call that may only read %s", what[a.kind]), OS_STEP_VIOLATION;
            return model_refuse(why, len, "a call that may only read %s 0x%" PRIx64, what[a.kind % 7], a.pa),
                   OS_STEP_VIOLATION;
        }
        if (!respond(&s->run, &own, hw_pmem_read(&s->hw.global_pt.mem, a.pa))) {
            os_run_drop(&s->run);
            return OS_STEP_NOMEM;
        }
        s->run.done++;
    }
    os_run_drop(&s->run);
    return OS_STEP_OK;
}

/* A call that owns the whole table (destroy, adopt), run to its return on s, the caller's
 * scratch copy: its loads, stores, compare-exchanges and zeroings act on memory at once (no
 * core uses the table), it may not allocate, and every frame it gives back must be a
 * directory of the pool, given back once and zeroed (x86pt.h: both free zeroed directories);
 * back collects them, *nfreed counts them. */
static enum os_step_status scratch_call(const struct os_consts *c, struct os_vars *s, const struct os_pt_request *rq,
                                        const char *fn, uint64_t *back, unsigned *nfreed, struct os_lib_result *res,
                                        char *why, size_t len)
{
    bool own = false;
    *nfreed = 0;
    if (!os_run_start(&s->run, NULL, 0))
        return OS_STEP_NOMEM;
    enum os_step_status r = OS_STEP_OK;
    for (;;) {
        struct os_lib_action a;
        if (!c->impl->next(c->impl->ctx, c, rq, s->pt_counts, s->pt_private, s->run.buf, s->run.done, &a, res, why,
                           len)) {
            r = OS_STEP_VIOLATION;
            break;
        }
        if (a.kind == OS_LIB_RETURN)
            break;
        uint64_t f = a.pa / HW_PAGE_SIZE;
        if (a.kind != OS_LIB_ALLOC && a.kind != OS_LIB_FREE && !in_pt_memory(s, a.pa)) {
            model_refuse(why, len, "%s accessed 0x%" PRIx64 ", outside page-table memory", fn, a.pa);
            r = OS_STEP_VIOLATION;
            break;
        }
        bool ok = true;
        switch (a.kind) {
        case OS_LIB_LOAD:
        case OS_LIB_CAS:
            ok = respond(&s->run, &own, hw_pmem_read(&s->hw.global_pt.mem, a.pa));
            if (ok && a.kind == OS_LIB_CAS && hw_pmem_read(&s->hw.global_pt.mem, a.pa) == a.expected)
                ok = hw_pmem_write(&s->hw.global_pt.mem, a.pa, a.value);
            break;
        case OS_LIB_STORE: ok = hw_pmem_write(&s->hw.global_pt.mem, a.pa, a.value); break;
        case OS_LIB_ZERO: ok = fill_frame(&s->hw, a.pa & ~(HW_PAGE_SIZE - 1), 0); break;
        case OS_LIB_ALLOC:
            model_refuse(why, len, "%s allocates a frame", fn);
            r = OS_STEP_VIOLATION;
            break;
        default: /* FREE */
            if (a.pa % HW_PAGE_SIZE || f < c->pt_reserved || f >= c->pt_frames || os_bit(s->pt_free, f) ||
                os_bit(s->pt_pending, f) || os_bit(back, f)) {
                model_refuse(why, len, "%s gives back 0x%" PRIx64 ", not an allocated directory%s", fn, a.pa,
                             f < OS_PT_FRAMES_MAX && os_bit(back, f) ? " (it gave it back already)" : "");
                r = OS_STEP_VIOLATION;
            } else if (!os_frame_zero(&s->hw.global_pt.mem, a.pa)) {
                model_refuse(why, len, "%s gives back directory 0x%" PRIx64 " not zeroed", fn, a.pa);
                r = OS_STEP_VIOLATION;
            } else {
                os_bit_set(back, f);
                (*nfreed)++;
            }
            break;
        }
        if (!ok)
            r = OS_STEP_NOMEM;
        if (r != OS_STEP_OK)
            break;
        s->run.done++;
    }
    os_run_drop(&s->run);
    return r;
}

/* x86pt_destroy on s (the caller's scratch copy): it must give back every allocated directory,
 * the root included (x86pt.h: destroy frees every directory). */
enum os_step_status os_lib_destroy(const struct os_consts *c, struct os_vars *s, unsigned *nfreed, char *why,
                                   size_t len)
{
    struct os_pt_request rq = { .op = OS_PT_DESTROY };
    struct os_lib_result res;
    uint64_t back[OS_PT_FRAMES_MAX / 64] = { 0 };
    enum os_step_status r = scratch_call(c, s, &rq, "destroy", back, nfreed, &res, why, len);
    for (unsigned f = c->pt_reserved; r == OS_STEP_OK && f < c->pt_frames; f++)
        if (!os_bit(s->pt_free, f) && !os_bit(s->pt_pending, f) && !os_bit(back, f)) {
            model_refuse(why, len, "destroy keeps directory 0x%" PRIx64 "%s", (uint64_t)f * HW_PAGE_SIZE,
                         (uint64_t)f * HW_PAGE_SIZE == s->hw.global_pt.cr3 ? " (the root)" : "");
            r = OS_STEP_VIOLATION;
        }
    return r;
}

enum os_step_status os_lib_adopt(const struct os_consts *c, struct os_vars *s, uint64_t *back, unsigned *nfreed,
                                 struct os_lib_result *res, char *why, size_t len)
{
    struct os_pt_request rq = { .op = OS_PT_ADOPT };
    return scratch_call(c, s, &rq, "adopt", back, nfreed, res, why, len);
}
