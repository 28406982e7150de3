/* spec_t/os.rs: state, steps. See os.h. */
#include "os.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool say(char *why, size_t len, const char *fmt, ...)
{
    if (why && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
    return false;
}

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
                                     "ProtectEnd" };
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
    for (unsigned f = 0; f < c->pt_frames; f++)
        if (f != root / HW_PAGE_SIZE)
            s->pt_free[f / 64] |= UINT64_C(1) << (f % 64);
    s->sound = true; /* os.rs init: every core Idle, no open request, sound */
    return true;
}

bool os_vars_copy(struct os_vars *dst, const struct os_vars *src)
{
    memcpy(dst, src, sizeof *dst);
    return hw_vars_copy(&dst->hw, &src->hw);
}

void os_vars_fini(struct os_vars *s) { hw_vars_fini(&s->hw); }

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
    return hash_pte(h, &cs->result);
}

uint64_t os_vars_hash(const struct os_vars *s)
{
    uint64_t h = hw_vars_hash(&s->hw);
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        h = hash_core(h, &s->core_states[i]);
    h = mix(mix(mix(h, s->TLB_Shootdown.vaddr), s->TLB_Shootdown.open_requests), s->TLB_Shootdown.for_protect);
    h = mix(mix(h, s->sound), s->pt_private);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX / 64; i++)
        h = mix(h, s->pt_free[i]);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX; i++)
        if (s->pt_counts[i])
            h = mix(mix(h, i), s->pt_counts[i]);
    h = mix(mix(h, s->plan.n), s->plan.pos);
    for (unsigned i = s->plan.pos; i < s->plan.n; i++)
        h = mix(mix(mix(h, s->plan.ev[i].kind), s->plan.ev[i].pa), s->plan.ev[i].value);
    return h;
}

static bool core_equal(const struct os_core_state *a, const struct os_core_state *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == OS_IDLE)
        return true;
    return a->ULT_id == b->ULT_id && a->vaddr == b->vaddr && hw_pte_equal(&a->pte, &b->pte) &&
           hl_flags_equal(a->flags, b->flags) && a->result_ok == b->result_ok &&
           hw_pte_equal(&a->result, &b->result);
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
        memcmp(a->pt_counts, b->pt_counts, sizeof a->pt_counts) || a->plan.n - a->plan.pos != b->plan.n - b->plan.pos)
        return false;
    for (unsigned i = 0; i < a->plan.n - a->plan.pos; i++) {
        const struct os_pt_event *x = &a->plan.ev[a->plan.pos + i], *y = &b->plan.ev[b->plan.pos + i];
        if (x->kind != y->kind || x->pa != y->pa || x->value != y->value)
            return false;
    }
    return hw_vars_equal(&a->hw, &b->hw);
}

/* ---- the page-table frame pool ------------------------------------------------------------ */

bool os_pt_alloc(const struct os_consts *c, uint64_t *pool, uint64_t *frame)
{
    for (unsigned f = 0; f < c->pt_frames; f++)
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
            return say(why, len, "alloc: frame 0x%" PRIx64 " is not a free pool frame", pa);
        if (!frame_zero(&s->hw, pa) || frame_reachable(c, &s->hw, pa))
            return say(why, len, "alloc: free frame 0x%" PRIx64 " is not a zeroed, unlinked frame", pa);
        s->pt_free[f / 64] &= ~(UINT64_C(1) << (f % 64));
    }
    return true;
}

/* spec_t/mem.rs dealloc_page: only a zeroed directory nothing points to any more. */
static bool give_frame(const struct os_consts *c, struct os_vars *s, uint64_t pa, char *why, size_t len)
{
    uint64_t f = pa / HW_PAGE_SIZE;
    if (pa % HW_PAGE_SIZE || f >= c->pt_frames || frame_is_free(s, f) || pa == s->hw.global_pt.cr3)
        return say(why, len, "free: frame 0x%" PRIx64 " is not an allocated directory", pa);
    if (frame_reachable(c, &s->hw, pa))
        return say(why, len, "free: directory 0x%" PRIx64 " is still linked into the table", pa);
    if (!frame_zero(&s->hw, pa))
        return say(why, len, "free: directory 0x%" PRIx64 " is not zeroed", pa);
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
        return say(why, len, "page table malformed: %s", msg);
    }
    return true;
}

/* definitions_t.rs: candidate_mapping_overlaps_existing_pmem(interp_pt_mem(global_pt), pte),
 * without building the interpretation. */
struct pmem_ctx {
    struct hw_mem_region frame;
    bool found;
};

static bool pmem_visit(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                       const struct hw_pde *pde, const struct hw_pte *combined)
{
    struct pmem_ctx *p = ctx;
    (void)layer, (void)entry_pa, (void)vaddr;
    if (pde->kind == HW_PDE_PAGE && hw_overlap(p->frame, combined->frame))
        p->found = true;
    return !p->found;
}

static bool overlaps_existing_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte)
{
    struct hw_pt_view v = hw_vars_pt_view(&c->hw, &s->hw);
    struct pmem_ctx p = { pte->frame, false };
    hw_pt_visit(&v, pmem_visit, &p, NULL);
    return p.found;
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

/* os.rs: candidate_mapping_overlaps_inflight_vmem (a Protect state counts like an Unmap) */
bool os_overlaps_inflight_vmem(const struct os_consts *c, const struct os_vars *s, uint64_t base, uint64_t size)
{
    struct hw_mem_region cand = { base, size };
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct os_core_state *cs = &s->core_states[i];
        if (cs->kind == OS_IDLE)
            continue;
        struct hw_mem_region r = { cs->vaddr, os_core_vmem_size(c, s, cs) };
        if (hw_overlap(r, cand))
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
    default:
        break;
    }
    int n = snprintf(buf, len, "core %u.%u %s", k.NUMA_id, k.core_id, os_step_name(st->kind));
    if (n < 0 || (size_t)n >= len)
        return;
    if (st->wrote)
        n += snprintf(buf + n, len - (size_t)n, ": store [0x%" PRIx64 "] 0x%" PRIx64 " -> 0x%" PRIx64,
                      st->write_pa, st->write_old, st->write_value);
    if (n >= 0 && (size_t)n < len && st->nfreed)
        n += snprintf(buf + n, len - (size_t)n, ", freed %u director%s", st->nfreed, st->nfreed > 1 ? "ies" : "y");
    if (n >= 0 && (size_t)n < len &&
        (st->kind == OS_STEP_MAP_END || st->kind == OS_STEP_UNMAP_OP_START || st->kind == OS_STEP_PROTECT_OP_START))
        snprintf(buf + n, len - (size_t)n, " (%s)", st->result_ok ? "Ok" : "Err");
}

static struct os_core_state *cs_of(struct os_vars *s, unsigned core) { return &s->core_states[core]; }

/* Apply the next recorded store (and the frees that follow it) to s2 (already a copy). */
static enum os_step_status apply_next(const struct os_consts *c, struct os_vars *s2, struct os_step *st,
                                      char *why, size_t len)
{
    struct os_plan *p = &s2->plan;
    if (p->pos >= p->n || p->ev[p->pos].kind != OS_EV_WRITE)
        return say(why, len, "no store left to apply"), OS_STEP_VIOLATION;
    const struct os_pt_event *e = &p->ev[p->pos++];
    struct hw_vars nhw;
    if (e->pa >= hw_pmem_bytes(&s2->hw.global_pt.mem) || e->pa % 8)
        return say(why, len, "store to 0x%" PRIx64 ", outside page-table memory", e->pa), OS_STEP_VIOLATION;
    st->wrote = true;
    st->write_pa = e->pa;
    st->write_value = e->value;
    st->write_old = hw_pmem_read(&s2->hw.global_pt.mem, e->pa);
    if (hw_step_PTMemOp(&c->hw, &s2->hw, e->pa, e->value, &nhw) != HW_STEP_OK)
        return OS_STEP_NOMEM;
    hw_vars_fini(&s2->hw);
    s2->hw = nhw;
    while (p->pos < p->n && p->ev[p->pos].kind == OS_EV_FREE) {
        if (!give_frame(c, s2, p->ev[p->pos].pa, why, len))
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
        n += p->ev[i].kind == OS_EV_WRITE;
    return n;
}

/* Run the implementation for core's operation, recording its plan into s2. */
static enum os_step_status run_impl(const struct os_consts *c, const struct os_vars *s1, struct os_vars *s2,
                                    const struct os_pt_request *rq, struct os_pt_outcome *out,
                                    char *why, size_t len)
{
    memset(out, 0, sizeof *out);
    uint16_t counts[OS_PT_FRAMES_MAX];
    memcpy(counts, s1->pt_counts, sizeof counts);
    if (!c->impl->run(c->impl->ctx, c, s1, rq, counts, out, why, len))
        return OS_STEP_VIOLATION;
    if (out->plan.n > OS_PLAN_MAX)
        return say(why, len, "operation too long for the checker"), OS_STEP_VIOLATION;
    if (out->plan.n && out->plan.ev[0].kind != OS_EV_WRITE)
        return say(why, len, "a directory freed before any store"), OS_STEP_VIOLATION;
    if (!take_frames(c, s2, out, why, len))
        return OS_STEP_VIOLATION;
    memcpy(s2->pt_counts, counts, sizeof counts);
    s2->pt_private = out->private_state;
    s2->plan = out->plan;
    s2->plan.pos = 0;
    return OS_STEP_OK;
}

static bool ult_ok(const struct os_consts *c, const struct os_vars *s1, unsigned ult, char *why, size_t len)
{
    if (ult >= c->ULT_no)
        return say(why, len, "thread %u not valid", ult);
    if (s1->core_states[os_core_index(c, c->ULT2core[ult])].kind != OS_IDLE)
        return say(why, len, "thread %u's core is not Idle", ult);
    return true;
}

static enum os_step_status step_HW(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                   struct os_vars *s2, struct os_delta *d, char *why, size_t len)
{
    struct hw_step *h = &st->hw;
    if (h->kind == HW_STEP_PT_MEM_OP)
        return say(why, len, "PTMemOp is not a HW step of a thread"), OS_STEP_DISABLED;
    if (h->kind == HW_STEP_READ_WRITE) {
        /* step_HW: the thread's core is Idle; x86pt: it uses its own core's TLB */
        if (st->ULT_id >= c->ULT_no)
            return say(why, len, "thread not valid"), OS_STEP_DISABLED;
        h->core = c->ULT2core[st->ULT_id];
        if (s1->core_states[os_core_index(c, h->core)].kind != OS_IDLE)
            return say(why, len, "thread %u's core is not Idle", st->ULT_id), OS_STEP_DISABLED;
    }
    st->core = os_core_index(c, h->core);
    memcpy(s2, s1, sizeof *s2);
    enum hw_step_status r = hw_next_step(&c->hw, &s1->hw, h, &s2->hw, &st->rw);
    if (r == HW_STEP_E_NOMEM)
        return OS_STEP_NOMEM;
    if (r != HW_STEP_OK)
        return say(why, len, "%s", hw_step_status_str(r)), OS_STEP_DISABLED;
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
            return say(why, len, "not step_Map_enabled"), OS_STEP_DISABLED;
        ns.kind = OS_MAP_WAITING;
        ns.pte = st->pte;
        /* step_Map_sound */
        sound = !overlaps_existing_pmem(c, s1, &st->pte) && !os_overlaps_inflight_pmem(c, s1, &st->pte) &&
                !os_overlaps_inflight_vmem(c, s1, st->vaddr, st->pte.frame.size);
    } else {
        struct hw_pte p;
        if (!hl_step_Unmap_enabled(st->vaddr))
            return say(why, len, "not step_Unmap_enabled"), OS_STEP_DISABLED;
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

/* MapOpStart / UnmapOpStart / ProtectOpStart: take the lock, run the implementation. */
static enum os_step_status step_op_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                         struct os_vars *s2, char *why, size_t len)
{
    static const enum os_core_kind waiting[] = { OS_MAP_WAITING, OS_UNMAP_WAITING, OS_PROTECT_WAITING };
    static const enum os_core_kind executing[] = { OS_MAP_EXECUTING, OS_UNMAP_OP_EXECUTING, OS_PROTECT_OP_EXECUTING };
    enum os_pt_op op = st->kind == OS_STEP_MAP_OP_START ? OS_PT_MAP
                       : st->kind == OS_STEP_UNMAP_OP_START ? OS_PT_UNMAP : OS_PT_PROTECT;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != waiting[op])
        return say(why, len, "core is not %s", os_core_kind_name(waiting[op])), OS_STEP_DISABLED;
    if (os_kernel_lock(c, s1) >= 0)
        return say(why, len, "kernel lock is held"), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    struct os_pt_request rq = { op, cs->vaddr, cs->pte, cs->flags };
    struct os_pt_outcome out;
    struct hw_pte old;
    bool had = os_pt_get(c, s1, cs->vaddr, &old);
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    enum os_step_status r = run_impl(c, s1, s2, &rq, &out, why, len);
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
            return say(why, len, "the implementation says Ok but made no store"), OS_STEP_VIOLATION;
        if (op == OS_PT_UNMAP && out.has_reported && had && !hw_pte_equal(&out.reported, &old))
            return say(why, len, "unmap reports a mapping that is not the one at 0x%" PRIx64, cs->vaddr),
                   OS_STEP_VIOLATION;
        if (!out.flush_requested)
            return say(why, len, "the implementation asked for no TLB invalidation"), OS_STEP_VIOLATION;
        return apply_next(c, s2, st, why, len);
    }
    if (s2->plan.n)
        return say(why, len, "the implementation failed but made stores"), OS_STEP_VIOLATION;
    return OS_STEP_OK;
}

static enum os_step_status step_view_stutter(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                             struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c))
        return OS_STEP_DISABLED;
    enum os_core_kind k = s1->core_states[st->core].kind;
    unsigned left = writes_left(&s1->plan);
    /* a map's last store belongs to MapEnd */
    bool ok = (k == OS_MAP_EXECUTING && left >= 2) ||
              ((k == OS_UNMAP_OP_EXECUTING || k == OS_PROTECT_OP_EXECUTING) && left >= 1);
    if (!ok)
        return say(why, len, "no store to apply as a ViewStutter"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    return apply_next(c, s2, st, why, len);
}

static enum os_step_status step_map_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != OS_MAP_EXECUTING)
        return say(why, len, "core is not MapExecuting"), OS_STEP_DISABLED;
    if (writes_left(&s1->plan) > 1)
        return say(why, len, "stores left before the last one"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    st->result_ok = s1->core_states[st->core].result_ok;
    if (writes_left(&s1->plan) == 1) {
        enum os_step_status r = apply_next(c, s2, st, why, len);
        if (r != OS_STEP_OK)
            return r;
    }
    if (s2->plan.pos != s2->plan.n)
        return say(why, len, "events left after the map's last store"), OS_STEP_VIOLATION;
    s2->plan.n = s2->plan.pos = 0;
    cs_of(s2, st->core)->kind = OS_IDLE;
    memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

static enum os_step_status step_op_end(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                       struct os_vars *s2, char *why, size_t len)
{
    enum os_core_kind from = st->kind == OS_STEP_UNMAP_OP_END ? OS_UNMAP_OP_EXECUTING : OS_PROTECT_OP_EXECUTING;
    if (st->core >= os_ncores(c) || s1->core_states[st->core].kind != from)
        return say(why, len, "core is not %s", os_core_kind_name(from)), OS_STEP_DISABLED;
    if (s1->plan.pos != s1->plan.n)
        return say(why, len, "stores left"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    s2->plan.n = s2->plan.pos = 0;
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
        return say(why, len, "core is not %s", os_core_kind_name(from)), OS_STEP_DISABLED;
    const struct os_core_state *cs = &s1->core_states[st->core];
    if (!cs->result_ok || (prot && !protect_shrinks(cs)))
        return say(why, len, "nothing to shoot down"), OS_STEP_DISABLED;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    cs_of(s2, st->core)->kind = from + 1; /* *ShootdownWaiting */
    s2->TLB_Shootdown.vaddr = cs->vaddr;
    s2->TLB_Shootdown.open_requests = (uint32_t)((UINT64_C(1) << os_ncores(c)) - 1);
    s2->TLB_Shootdown.for_protect = prot;
    return OS_STEP_OK;
}

/* os.rs: step_Ack_Shootdown_IPI (+ the protect variant, os.h) */
static enum os_step_status step_ack(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len)
{
    if (st->core >= os_ncores(c) || !(s1->TLB_Shootdown.open_requests >> st->core & 1))
        return say(why, len, "no open request for this core"), OS_STEP_DISABLED;
    uint64_t v = s1->TLB_Shootdown.vaddr;
    const struct hw_pte *t = hw_tlb_get(hw_core_tlb_const(&c->hw, &s1->hw, os_core_of(c, st->core)), v);
    struct hw_pte now;
    bool mapped = os_pt_get(c, s1, v, &now);
    if (!s1->TLB_Shootdown.for_protect) {
        if (t || mapped)
            return say(why, len, "TLB still holds 0x%" PRIx64 " (or it is mapped)", v), OS_STEP_DISABLED;
    } else if (t && !(mapped && t->frame.base == now.frame.base && t->frame.size == now.frame.size &&
                      hl_flags_le(t->flags, now.flags))) {
        return say(why, len, "TLB holds 0x%" PRIx64 " with more permissions than the table", v), OS_STEP_DISABLED;
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
    if (st->kind == OS_STEP_UNMAP_END)
        ok = (cs->kind == OS_UNMAP_SHOOTDOWN_WAITING && !s1->TLB_Shootdown.open_requests) ||
             (cs->kind == OS_UNMAP_OP_DONE && !cs->result_ok);
    else
        ok = (cs->kind == OS_PROTECT_SHOOTDOWN_WAITING && !s1->TLB_Shootdown.open_requests) ||
             (cs->kind == OS_PROTECT_OP_DONE && !protect_shrinks(cs));
    if (!ok)
        return say(why, len, "not ready to end"), OS_STEP_DISABLED;
    st->result_ok = cs->result_ok;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    memset(cs_of(s2, st->core), 0, sizeof(struct os_core_state));
    return OS_STEP_OK;
}

enum os_step_status os_next_step(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                 struct os_vars *s2, struct os_delta *delta, char *why, size_t len)
{
    enum os_step_status r;
    delta->n = 0;
    st->wrote = false;
    st->nfreed = 0;
    switch (st->kind) {
    case OS_STEP_HW:
        return step_HW(c, s1, st, s2, delta, why, len);
    case OS_STEP_MAP_START:
    case OS_STEP_UNMAP_START:
    case OS_STEP_PROTECT_START:
        return step_start(c, s1, st, s2, why, len);
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
        return say(why, len, "unknown step"), OS_STEP_DISABLED;
    }
    /* the steps that copied s1 before failing must not leak */
    if (r == OS_STEP_VIOLATION || r == OS_STEP_NOMEM)
        os_vars_fini(s2);
    return r;
}
