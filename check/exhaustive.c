/*
 * Exhaustive mode: breadth-first search over every interleaving of a small configuration.
 * Successors of a state: every step over the configuration's finite sets (each idle thread
 * starts each operation on each vaddr/size/frame, loads and stores the first word of each
 * vaddr through each TLB entry or none; each core takes each of its operation's next steps or
 * acknowledges; each core fills each mapping and evicts each entry; optionally the A/D step).
 * Only sound successors are explored. States are deduplicated by a 64-bit hash of the whole
 * OS state (a collision would prune a state: probability ~ states^2 / 2^65). Each discovered
 * step is fully checked, so the first violation found has a shortest trace.
 */
#include "check.h"
#include "ptlib.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct node {
    uint32_t parent;
    uint32_t depth;
    struct os_step st;
};

struct search {
    const struct check_config *cfg;
    struct os_consts c;
    struct node *nodes;
    size_t nnodes, cap;
    struct os_vars *queue;  /* frontier states, parallel to qidx */
    uint32_t *qidx;
    size_t qhead, qtail, qcap;
    uint64_t *set;          /* open addressing, 0 = empty */
    size_t setcap, setlen;
    struct violation *v;
    bool bounded;
    unsigned last_nallocs;  /* the allocations the step emit() last tried asked for */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool set_grow(struct search *S)
{
    size_t ncap = S->setcap ? 2 * S->setcap : 1 << 16;
    uint64_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return false;
    for (size_t i = 0; i < S->setcap; i++)
        if (S->set[i]) {
            size_t j = S->set[i] & (ncap - 1);
            while (n[j])
                j = (j + 1) & (ncap - 1);
            n[j] = S->set[i];
        }
    free(S->set);
    S->set = n;
    S->setcap = ncap;
    return true;
}

/* Insert h; false if it was there. */
static bool set_add(struct search *S, uint64_t h)
{
    h |= 1; /* never 0 */
    if (2 * (S->setlen + 1) > S->setcap && !set_grow(S))
        return false;
    size_t j = h & (S->setcap - 1);
    while (S->set[j]) {
        if (S->set[j] == h)
            return false;
        j = (j + 1) & (S->setcap - 1);
    }
    S->set[j] = h;
    S->setlen++;
    return true;
}

static bool push_node(struct search *S, uint32_t parent, uint32_t depth, const struct os_step *st)
{
    if (S->nnodes == S->cap) {
        size_t cap = S->cap ? 2 * S->cap : 4096;
        struct node *n = realloc(S->nodes, cap * sizeof *n);
        if (!n)
            return false;
        S->nodes = n;
        S->cap = cap;
    }
    S->nodes[S->nnodes].parent = parent;
    S->nodes[S->nnodes].depth = depth;
    if (st)
        S->nodes[S->nnodes].st = *st;
    S->nnodes++;
    return true;
}

static bool enqueue(struct search *S, const struct os_vars *s, uint32_t idx)
{
    if (S->qtail == S->qcap) {
        /* compact, then grow */
        size_t live = S->qtail - S->qhead;
        if (live) { /* the queue starts out NULL: no memmove from it */
            memmove(S->queue, S->queue + S->qhead, live * sizeof *S->queue);
            memmove(S->qidx, S->qidx + S->qhead, live * sizeof *S->qidx);
        }
        S->qhead = 0;
        S->qtail = live;
        if (S->qtail == S->qcap) {
            size_t cap = S->qcap ? 2 * S->qcap : 4096;
            struct os_vars *q = realloc(S->queue, cap * sizeof *q);
            if (!q)
                return false;
            S->queue = q;
            uint32_t *qi = realloc(S->qidx, cap * sizeof *qi);
            if (!qi)
                return false;
            S->qidx = qi;
            S->qcap = cap;
        }
    }
    S->queue[S->qtail] = *s;
    S->qidx[S->qtail++] = idx;
    return true;
}

static void build_trace(struct search *S, uint32_t idx, const struct os_step *last)
{
    size_t depth = S->nodes[idx].depth;
    struct os_step *path = malloc((depth + 1) * sizeof *path);
    if (!path)
        return;
    for (size_t d = depth; d > 0; d--) {
        path[d - 1] = S->nodes[idx].st;
        idx = S->nodes[idx].parent;
    }
    for (size_t i = 0; i < depth; i++)
        trace_push(&S->v->trace, &path[i]);
    trace_push(&S->v->trace, last);
    free(path);
}

/* Try one candidate step from s (node idx, checker k). false: stop the search. */
static bool emit(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                 struct os_step st)
{
    struct os_vars s2;
    struct os_delta d;
    char why[512];
    enum os_step_status r = os_next_step(&S->c, s, &st, &s2, &d, why, sizeof why);
    S->last_nallocs = st.nallocs;
    if (r == OS_STEP_DISABLED)
        return true;
    if (r == OS_STEP_NOMEM)
        return false;
    if (r == OS_STEP_VIOLATION) {
        S->v->found = true;
        S->v->check = os_check_of_step(&st);
        snprintf(S->v->why, sizeof S->v->why, "%s", why);
        build_trace(S, idx, &st);
        return false;
    }
    if (s->sound && !s2.sound) {
        os_vars_fini(&s2);
        return true;
    }
    struct os_checker kc;
    if (!os_checker_copy(&kc, k)) {
        os_vars_fini(&s2);
        return false;
    }
    bool ok = os_checker_step(&kc, s, &s2, &st, &d, &S->v->check, S->v->why, sizeof S->v->why);
    os_checker_fini(&kc);
    if (!ok) {
        S->v->found = true;
        build_trace(S, idx, &st);
        os_vars_fini(&s2);
        return false;
    }
    uint32_t depth = S->nodes[idx].depth + 1;
    if (!set_add(S, os_vars_hash(&s2)) || (S->cfg->max_depth && depth > S->cfg->max_depth)) {
        if (S->cfg->max_depth && depth > S->cfg->max_depth)
            S->bounded = true;
        os_vars_fini(&s2);
        return true;
    }
    if (S->nnodes >= S->cfg->max_states) {
        S->bounded = true;
        os_vars_fini(&s2);
        return true;
    }
    if (!push_node(S, idx, depth, &st) || !enqueue(S, &s2, (uint32_t)(S->nnodes - 1))) {
        os_vars_fini(&s2);
        return false;
    }
    return true;
}

/* The range operations of the small range configuration, around the 2 MiB boundary: a map
 * of two 4 KiB pages across it (frames elsewhere, so that it is sound next to a 2 MiB page at
 * 0), an unmap of the same two pages and a read-only protect of the two pages below it, both
 * splitting what straddles (a 2 MiB page at 0). */
static bool range_starts(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                         unsigned t)
{
    static const struct {
        enum os_step_kind kind;
        uint64_t vaddr, length, paddr;
    } ops[] = {
        { OS_STEP_MAP_RANGE_START, 0x1ff000, 0x2000, 0x3ff000 },
        { OS_STEP_UNMAP_RANGE_START, 0x1ff000, 0x2000, 0 },
        { OS_STEP_PROTECT_RANGE_START, 0x1fe000, 0x2000, 0 },
    };
    for (unsigned i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct os_step st;
        memset(&st, 0, sizeof st);
        st.kind = ops[i].kind;
        st.ULT_id = t;
        st.vaddr = ops[i].vaddr;
        st.length = ops[i].length;
        st.paddr = ops[i].paddr;
        st.policy = HL_POLICY_LARGEST_FIT;
        st.split = true;
        st.flags.is_writable = ops[i].kind == OS_STEP_MAP_RANGE_START;
        if (!emit(S, s, idx, k, st))
            return false;
    }
    return true;
}

/* With ranges, a split leaves 512 pages: TLBs fill only the pages holding one of these
 * addresses (the ends of the configuration's ranges and vaddr 0), or the state space is the
 * powerset of 512 TLB entries. */
static bool watched(const struct hw_mapping *m)
{
    static const uint64_t at[] = { 0, 0x1fe000, 0x1ff000, 0x200000 };
    for (unsigned i = 0; i < sizeof at / sizeof at[0]; i++)
        if (hw_between(at[i], m->base, m->base + m->pte.frame.size))
            return true;
    return false;
}

/* Does some core's in-flight walk or paging-structure cache point into the frame? */
static bool referenced(const struct os_consts *c, const struct os_vars *s, uint64_t frame)
{
    for (unsigned i = 0; i < os_ncores(c); i++) {
        const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, os_core_of(c, i));
        for (unsigned w = 0; m && w < m->nwalks; w++)
            for (unsigned l = 0; l < HW_NUM_LAYERS; l++)
                if (m->walks[w].table[l] == frame)
                    return true;
        for (unsigned l = 0; m && l < HW_PSCACHE_LEVELS; l++)
            for (unsigned e = 0; e < m->npscache[l]; e++)
                if (m->pscache[l][e].table == frame)
                    return true;
    }
    return false;
}

/* The rl3 hardware's steps (hw_consts mmu_*): every core may start a walk of every workload
 * address (a write, which sets A and D; a read walk does a subset of what it does), from CR3 or
 * from each cached entry that matches, step any walk, cache what it read, fill its TLB from it,
 * abandon it, evict a cache entry; the page allocator may fill any free pool frame. */
static bool emit_mmu(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k)
{
    const struct check_config *cfg = S->cfg;
    const struct os_consts *c = &S->c;
    struct os_step st;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        struct hw_core core = os_core_of(c, i);
        const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, core);
        for (unsigned v = 0; v < cfg->nvaddrs; v++)
            for (unsigned l = 0; l <= HW_PSCACHE_LEVELS; l++)
                for (unsigned e = 0; e < (l == HW_PSCACHE_LEVELS ? 1u : m ? m->npscache[l] : 0u); e++) {
                    memset(&st, 0, sizeof st);
                    st.kind = OS_STEP_HW;
                    st.hw.kind = HW_STEP_WALK_INIT;
                    st.hw.core = core;
                    st.hw.vaddr = cfg->vaddrs[v];
                    st.hw.access = HW_ACCESS_WRITE;
                    if (l < HW_PSCACHE_LEVELS) {
                        if (m->pscache[l][e].key != hw_pscache_key(st.hw.vaddr, l))
                            continue;
                        st.hw.use_cache = true, st.hw.cache_level = l, st.hw.cache_index = e;
                    }
                    if (!emit(S, s, idx, k, st))
                        return false;
                }
        for (unsigned w = 0; m && w < m->nwalks; w++) {
            static const enum hw_step_kind kinds[] = { HW_STEP_WALK_STEP, HW_STEP_WALK_TLB_FILL, HW_STEP_WALK_ABORT };
            for (unsigned j = 0; j < 3 + (c->hw.mmu_pscache ? HW_PSCACHE_LEVELS : 0); j++) {
                memset(&st, 0, sizeof st);
                st.kind = OS_STEP_HW;
                st.hw.core = core;
                st.hw.walk_index = w;
                st.hw.kind = j < 3 ? kinds[j] : HW_STEP_CACHE_FILL;
                st.hw.cache_level = j < 3 ? 0 : j - 3;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
        }
        for (unsigned l = 0; m && l < HW_PSCACHE_LEVELS; l++)
            for (unsigned e = 0; e < m->npscache[l]; e++) {
                memset(&st, 0, sizeof st);
                st.kind = OS_STEP_HW;
                st.hw.kind = HW_STEP_CACHE_EVICT;
                st.hw.core = core;
                st.hw.cache_level = l, st.hw.cache_index = e;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
    }
    /* the page allocator's other users: a free frame filled with a user page entry. Only a
     * frame some core's walk or cached entry points into: a write to any other free frame
     * commutes with every step until the frame is allocated again, which overwrites it. */
    uint64_t reuse = (cfg->phys_mem_size - HW_PAGE_SIZE) | 0x67;
    for (unsigned f = 0; f < c->pt_frames; f++)
        if ((s->pt_free[f / 64] >> (f % 64) & 1) && referenced(c, s, (uint64_t)f * HW_PAGE_SIZE) &&
            hw_pmem_read(&s->hw.global_pt.mem, (uint64_t)f * HW_PAGE_SIZE) != reuse) {
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_FRAME_REUSE;
            st.reuse_pa = (uint64_t)f * HW_PAGE_SIZE;
            st.reuse_value = reuse;
            if (!emit(S, s, idx, k, st))
                return false;
        }
    return true;
}

static bool expand(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k)
{
    const struct check_config *cfg = S->cfg;
    const struct os_consts *c = &S->c;
    struct os_step st;
    for (unsigned t = 0; t < c->ULT_no; t++) {
        struct hw_core core = c->ULT2core[t];
        if (s->core_states[os_core_index(c, core)].kind != OS_IDLE)
            continue;
        const struct hw_tlb *tlb = hw_core_tlb_const(&c->hw, &s->hw, core);
        for (unsigned i = 0; i < cfg->nvaddrs; i++) {
            uint64_t va = cfg->vaddrs[i];
            for (int op = 0; op < 2; op++) {
                memset(&st, 0, sizeof st);
                st.kind = OS_STEP_HW;
                st.ULT_id = t;
                st.hw.kind = HW_STEP_READ_WRITE;
                st.hw.core = core;
                st.hw.vaddr = va;
                st.hw.op.kind = op ? HW_RW_STORE : HW_RW_LOAD;
                st.hw.op.new_value = 1;
                if (!emit(S, s, idx, k, st))
                    return false;
                for (uint32_t e = 0; e < tlb->len; e++) {
                    const struct hw_mapping *m = &tlb->entries[e];
                    if (!hw_between(va, m->base, m->base + m->pte.frame.size))
                        continue;
                    st.hw.has_pte = true;
                    st.hw.tlb_entry = *m;
                    if (!emit(S, s, idx, k, st))
                        return false;
                }
            }
            if (cfg->ranges && i == 0 && !range_starts(S, s, idx, k, t))
                return false;
            for (uint64_t off = 0; off <= 0x800; off += 0x800) { /* its first word and one inside */
                memset(&st, 0, sizeof st);
                st.kind = OS_STEP_RESOLVE;
                st.ULT_id = t;
                st.vaddr = va + off;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
            memset(&st, 0, sizeof st);
            st.ULT_id = t;
            st.vaddr = va;
            st.kind = OS_STEP_UNMAP_START;
            if (!emit(S, s, idx, k, st))
                return false;
            for (unsigned p = 0; cfg->protect && p < (cfg->flags_all ? 2u : 1u); p++) {
                st.kind = OS_STEP_PROTECT_START;
                st.flags.is_writable = p == 1; /* read-only, user, executable; writable, no-execute */
                st.flags.disable_execute = p == 1;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
            for (unsigned z = 0; z < cfg->nsizes; z++)
                for (unsigned f = 0; f < cfg->nframes; f++)
                    for (unsigned fl = 0; fl < (cfg->flags_all ? 4u : 1u); fl++) {
                        memset(&st, 0, sizeof st);
                        st.kind = OS_STEP_MAP_START;
                        st.ULT_id = t;
                        st.vaddr = va;
                        st.pte.frame.base = cfg->frames[f];
                        st.pte.frame.size = cfg->sizes[z];
                        st.pte.flags.is_writable = !(fl & 1);
                        st.pte.flags.disable_execute = (fl & 2) != 0;
                        if (!emit(S, s, idx, k, st))
                            return false;
                    }
        }
    }
    for (unsigned i = 0; i < os_ncores(c); i++) {
        static const enum os_step_kind kinds[] = {
            OS_STEP_MAP_OP_START, OS_STEP_MAP_END, OS_STEP_UNMAP_OP_START, OS_STEP_UNMAP_OP_END,
            OS_STEP_UNMAP_INITIATE_SHOOTDOWN, OS_STEP_ACK_SHOOTDOWN_IPI, OS_STEP_UNMAP_END, OS_STEP_VIEW_STUTTER,
            OS_STEP_PROTECT_OP_START, OS_STEP_PROTECT_OP_END, OS_STEP_PROTECT_INITIATE_SHOOTDOWN, OS_STEP_PROTECT_END,
            OS_STEP_RANGE_STORE,
        };
        for (unsigned j = 0; j < sizeof kinds / sizeof kinds[0]; j++) {
            memset(&st, 0, sizeof st);
            st.kind = kinds[j];
            st.core = i;
            if (!emit(S, s, idx, k, st))
                return false;
            /* and with the allocator refusing each of the frames the step asks for in turn
             * (a map's; os_lib.c: the library takes them all before its first store) */
            const struct os_core_state *cs = &s->core_states[i];
            unsigned n = cfg->alloc_fail && cs->kind == OS_MAP_EXECUTING && !cs->stored ? S->last_nallocs : 0;
            for (st.fail_alloc = 1; st.fail_alloc <= n; st.fail_alloc++)
                if (!emit(S, s, idx, k, st))
                    return false;
        }
        struct hw_core core = os_core_of(c, i);
        for (size_t m = 0; m < k->pt.len; m++) {
            if (cfg->ranges && !watched(&k->pt.map[m]))
                continue;
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_HW;
            st.hw.kind = HW_STEP_TLB_FILL;
            st.hw.core = core;
            st.hw.vaddr = k->pt.map[m].base;
            st.hw.pte = k->pt.map[m].pte;
            if (!emit(S, s, idx, k, st))
                return false;
        }
        /* with stores buffered, memory may still map what the writer's table no longer does */
        for (unsigned v = 0; os_sbuf_writer(c, s) >= 0 && v < cfg->nvaddrs; v++) {
            struct hw_pt_view pv = hw_vars_pt_view(&c->hw, &s->hw);
            struct hw_walk w;
            if (hw_pt_walk(&pv, cfg->vaddrs[v], &w) != HW_WALK_PAGE || hw_interp_get(&k->pt, w.base))
                continue;
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_HW;
            st.hw.kind = HW_STEP_TLB_FILL;
            st.hw.core = core;
            st.hw.vaddr = w.base;
            st.hw.pte = w.pte;
            if (!emit(S, s, idx, k, st))
                return false;
        }
        const struct hw_tlb *tlb = hw_core_tlb_const(&c->hw, &s->hw, core);
        for (uint32_t e = 0; e < tlb->len; e++) {
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_HW;
            st.hw.kind = HW_STEP_TLB_EVICT;
            st.hw.core = core;
            st.hw.vaddr = tlb->entries[e].base;
            if (!emit(S, s, idx, k, st))
                return false;
        }
    }
    if (c->hw.mmu_walks && !emit_mmu(S, s, idx, k))
        return false;
    memset(&st, 0, sizeof st); /* destroy, on a copy: a Stutter when it is right */
    st.kind = OS_STEP_DESTROY_PROBE;
    if (!emit(S, s, idx, k, st))
        return false;
    for (unsigned i = 0; i < os_ncores(c); i++) /* the oldest buffered store reaches memory */
        if (os_sbuf_len(c, s, i)) {
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_HW;
            st.hw.kind = HW_STEP_WRITEBACK;
            st.hw.core = os_core_of(c, i);
            if (!emit(S, s, idx, k, st))
                return false;
        }
    if (cfg->ad)
        for (size_t m = 0; m < k->pt.len; m++)
            for (int w = 0; w < 2; w++) {
                memset(&st, 0, sizeof st);
                st.kind = OS_STEP_HW;
                st.hw.kind = HW_STEP_ACCESSED_DIRTY;
                st.hw.vaddr = k->pt.map[m].base;
                st.hw.is_write = w;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
    return true;
}

int check_exhaustive(const struct check_config *cfg, uint64_t *states, bool *complete, struct violation *v,
                     double *seconds)
{
    struct search S;
    memset(&S, 0, sizeof S);
    memset(v, 0, sizeof *v);
    S.cfg = cfg;
    S.v = v;
    double t0 = now();
    struct ptlib *lib = ptlib_new(cfg->pt_frames, cfg->seed);
    if (!lib)
        return 2;
    check_consts(cfg, &S.c, ptlib_impl(lib));
    struct os_vars s0;
    struct os_checker k;
    int rc = 2;
    if (!os_init(&S.c, &s0))
        goto out;
    if (!os_checker_init(&k, &S.c, &s0, &v->check, v->why, sizeof v->why)) {
        v->found = true;
        os_checker_fini(&k);
        os_vars_fini(&s0);
        rc = 1;
        goto out;
    }
    os_checker_fini(&k);
    set_add(&S, os_vars_hash(&s0));
    if (!push_node(&S, 0, 0, NULL) || !enqueue(&S, &s0, 0))
        goto out;
    bool ok = true;
    while (ok && S.qhead < S.qtail) {
        struct os_vars s = S.queue[S.qhead];
        uint32_t idx = S.qidx[S.qhead++];
        if (!os_checker_at(&k, &S.c, &s, v->why, sizeof v->why)) {
            v->found = true;
            v->check = OS_CHECK_WELL_FORMED;
            ok = false;
        } else {
            ok = expand(&S, &s, idx, &k);
        }
        os_checker_fini(&k);
        os_vars_fini(&s);
    }
    rc = v->found ? 1 : (ok ? 0 : 2);
    while (S.qhead < S.qtail)
        os_vars_fini(&S.queue[S.qhead++]);
out:
    *states = S.nnodes;
    *complete = !S.bounded && rc == 0;
    *seconds = now() - t0;
    free(S.nodes);
    free(S.queue);
    free(S.qidx);
    free(S.set);
    ptlib_free(lib);
    return rc;
}
