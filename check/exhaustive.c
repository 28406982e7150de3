/*
 * Exhaustive mode: breadth-first search over every interleaving of a small configuration.
 * Successors of a state: every step over the configuration's finite sets (each idle thread
 * starts each operation on each vaddr/size/frame, loads and stores the first word of each
 * vaddr through each TLB entry or none; each core takes each of its operation's next steps or
 * acknowledges; each core fills each mapping and evicts each entry; optionally the A/D step),
 * with the rl3 hardware as lazy walks, TLBs and A/D (below). Only sound successors are
 * explored. States are deduplicated by a 64-bit key, the hash of the whole OS state or, with
 * two alike cores, the smaller of it and the hash with the cores swapped (state_key; a
 * collision would prune a state: probability ~ states^2 / 2^65). Each discovered step is fully
 * checked, so the first violation found has a shortest trace. Worker threads expand batches of
 * the queue and the main thread merges them in order (the driver, at the end).
 */
#include "check.h"
#include "ptlib.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Lazy walks: one walk a core may take from the state being expanded (its in-flight walk, or a
 * fresh one from CR3 or from a cached entry), as the reads it would make, each simulated. */
#define PLANS_MAX 64
#define CHAIN_MAX 64
#define RANGE_SPLIT_DIRS_MAX 4 /* a split needs at most a 1 GiB page and one 2 MiB part per end */
struct walk_plan {
    struct os_step init;            /* WalkInit of a fresh walk */
    bool fresh, from_cache;
    unsigned nreads;                /* reads until the walk completes or faults */
    uint64_t pa[HW_NUM_LAYERS];     /* the entry each read reads */
    unsigned layer[HW_NUM_LAYERS];
    bool faults;                    /* the last read finds no valid entry: the walk ends there */
    bool completes;                 /* the last read maps a page */
    struct hw_mapping result;       /* then: the translation its TLB fill gives */
};

/* A node of the search tree: its step, zero-run encoded in the step arena (a step is mostly
 * zero bytes: ~40 bytes instead of sizeof(struct os_step), which bounded the search by memory). */
struct node {
    uint32_t parent;
    uint32_t depth;
    uint64_t step_at;
};

/* A set of 64-bit hashes: open addressing, 0 = empty. */
struct hset {
    uint64_t *v;
    size_t cap, len;
};

/* What the workers share: the search tree, the queue and the sets. Only the main thread
 * changes it, between batches (merge), so the workers read it without locks. */
struct store {
    struct node *nodes;
    size_t nnodes, cap;
    uint8_t *steps;          /* the step arena */
    size_t nsteps, steps_cap;
    struct os_vars *queue;  /* frontier states, parallel to qidx */
    uint32_t *qidx;
    size_t qhead, qtail, qcap;
    struct hset seen;       /* keys of the states found (state_key) */
    struct hset probed;     /* probes found right (emit_probe) */
    size_t nstates;         /* states enqueued (the root included) */
    struct hw_frame_set frames; /* one copy of each page content the queued states hold */
    check_visit_fn *visit;
    void *visit_arg;
    const struct os_consts *c; /* for visit */
};

/* A state a worker found new in its part of a batch, with the chain of steps to it from the
 * queued state at node parent. */
struct found {
    uint32_t parent;
    unsigned n;
    struct os_step *chain;
    struct os_vars state;
    uint64_t key;
};

struct pool;

/* One worker of the search (the main thread is worker 0). Each batch of queued states is cut
 * into one contiguous part per worker; a worker expands its part in queue order and keeps what
 * it finds new; the main thread then merges the parts in worker order. So the states, their
 * order and the first violation are those of a search by one thread (README, "Core symmetry"). */
struct search {
    const struct check_config *cfg;
    struct os_consts c;
    struct ptlib *lib;
    struct store *G;
    struct pool *pool;
    struct violation *v, vbuf;
    bool bounded;
    unsigned last_nallocs;  /* the allocations the step emit() last tried asked for */
    bool lazy;              /* lazy walks (below): walk steps only as blocks before what they race */
    bool symmetric;         /* two cores with a thread each and one workload: states are kept up to
                               swapping the cores (state_key) */
    struct walk_plan *plans; /* lazy: per core, PLANS_MAX walks it may take from the state expanded */
    unsigned *nplans;
    struct found *out;       /* found new in this batch */
    size_t nout, outcap;
    struct hset local;       /* their keys */
    struct hset local_probed; /* probes found right in this batch */
    size_t lo, hi;           /* its part of the batch: queue positions */
    bool failed;             /* it stopped at failed_at: a violation (v->found) or out of memory */
    size_t failed_at;
};

static bool walk_is_current(const struct os_consts *c, const struct os_vars *s, unsigned i);
static bool cache_entry_is_current(const struct os_consts *c, const struct os_vars *s, unsigned i, unsigned level,
                                   unsigned e);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A hardware step of core, its other fields zero. */
static struct os_step hw_step(enum hw_step_kind kind, struct hw_core core)
{
    struct os_step st;
    memset(&st, 0, sizeof st);
    st.kind = OS_STEP_HW;
    st.hw.kind = kind;
    st.hw.core = core;
    return st;
}

/* WalkInit of vaddr on core (a write walk: a read walk does a subset of what it does), from
 * CR3 when level is HW_PSCACHE_LEVELS, else from m's cached entry (level, e); false if that
 * entry does not match vaddr. */
static bool walk_init_step(const struct hw_mmu_core *m, struct hw_core core, uint64_t vaddr, unsigned level,
                           unsigned e, struct os_step *st)
{
    *st = hw_step(HW_STEP_WALK_INIT, core);
    st->hw.vaddr = vaddr;
    st->hw.access = HW_ACCESS_WRITE;
    if (level == HW_PSCACHE_LEVELS)
        return true;
    if (m->pscache[level][e].key != hw_pscache_key(vaddr, level))
        return false;
    st->hw.use_cache = true, st->hw.cache_level = level, st->hw.cache_index = e;
    return true;
}

/* The number of starts of a walk on a core with mmu state m at a level: CR3 (level
 * HW_PSCACHE_LEVELS) or each entry cached at the level. */
static unsigned walk_starts(const struct hw_mmu_core *m, unsigned level)
{
    return level == HW_PSCACHE_LEVELS ? 1u : m ? m->npscache[level] : 0u;
}

static bool hset_grow(struct hset *H)
{
    size_t ncap = H->cap ? 2 * H->cap : 1 << 16;
    uint64_t *n = calloc(ncap, sizeof *n);
    if (!n)
        return false;
    for (size_t i = 0; i < H->cap; i++)
        if (H->v[i]) {
            size_t j = H->v[i] & (ncap - 1);
            while (n[j])
                j = (j + 1) & (ncap - 1);
            n[j] = H->v[i];
        }
    free(H->v);
    H->v = n;
    H->cap = ncap;
    return true;
}

/* Insert h; false if it was there (or there is no memory for it). */
static bool hset_add(struct hset *H, uint64_t h)
{
    h |= 1; /* never 0 */
    if (2 * (H->len + 1) > H->cap && !hset_grow(H))
        return false;
    size_t j = h & (H->cap - 1);
    while (H->v[j]) {
        if (H->v[j] == h)
            return false;
        j = (j + 1) & (H->cap - 1);
    }
    H->v[j] = h;
    H->len++;
    return true;
}

static void hset_clear(struct hset *H)
{
    if (H->len)
        memset(H->v, 0, H->cap * sizeof *H->v);
    H->len = 0;
}

static bool hset_has(const struct hset *H, uint64_t h)
{
    h |= 1;
    for (size_t j = H->cap ? h & (H->cap - 1) : 0; H->cap && H->v[j]; j = (j + 1) & (H->cap - 1))
        if (H->v[j] == h)
            return true;
    return false;
}

/* The step arena's code: runs of (zero bytes: one byte, 0..255; then literal bytes: one byte
 * n, 0..255, and the n bytes), until the step's bytes are covered. */
static bool arena_put(struct store *G, const struct os_step *st)
{
    const uint8_t *b = (const uint8_t *)st;
    size_t n = sizeof *st, i = 0;
    if (G->steps_cap - G->nsteps < 2 * n + 4) {
        size_t cap = G->steps_cap ? 2 * G->steps_cap : 1 << 20;
        uint8_t *a = realloc(G->steps, cap);
        if (!a)
            return false;
        G->steps = a, G->steps_cap = cap;
    }
    uint8_t *out = G->steps + G->nsteps;
    while (i < n) {
        size_t z = 0, l = 0;
        while (i + z < n && z < 255 && !b[i + z])
            z++;
        i += z;
        while (i + l < n && l < 255 && b[i + l])
            l++;
        *out++ = (uint8_t)z;
        *out++ = (uint8_t)l;
        memcpy(out, b + i, l);
        out += l, i += l;
    }
    G->nsteps = (size_t)(out - G->steps);
    return true;
}

static void arena_get(const struct store *G, uint64_t at, struct os_step *st)
{
    uint8_t *b = (uint8_t *)st;
    const uint8_t *in = G->steps + at;
    size_t n = sizeof *st, i = 0;
    while (i < n) {
        size_t z = *in++, l = *in++;
        memset(b + i, 0, z);
        i += z;
        memcpy(b + i, in, l);
        in += l, i += l;
    }
}

/* Symmetry: with two cores, a thread pinned to each and one workload for both threads, the
 * state with the two cores (and threads) swapped has the same futures up to the same swap, and
 * every check is indifferent to core and thread numbers; so a state is known by the smaller of
 * its hash and its swapped hash, and only one of the two is explored. */
static const unsigned swap_two[OS_MAX_CORES > HL_MAX_THREADS ? OS_MAX_CORES : HL_MAX_THREADS] = {
    1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
};

static uint64_t state_key(const struct search *S, const struct os_vars *s)
{
    uint64_t h = os_vars_hash(s);
    if (!S->symmetric)
        return h;
    uint64_t w = os_vars_hash_perm(s, swap_two, swap_two);
    return w < h ? w : h;
}

static bool push_node(struct store *G, uint32_t parent, uint32_t depth, const struct os_step *st)
{
    if (G->nnodes == G->cap) {
        size_t cap = G->cap ? 2 * G->cap : 4096;
        struct node *n = realloc(G->nodes, cap * sizeof *n);
        if (!n)
            return false;
        G->nodes = n;
        G->cap = cap;
    }
    G->nodes[G->nnodes].parent = parent;
    G->nodes[G->nnodes].depth = depth;
    G->nodes[G->nnodes].step_at = G->nsteps;
    if (st && !arena_put(G, st))
        return false;
    G->nnodes++;
    return true;
}

/* Queue s (the queue takes it over), its pages shared with the queued states' equal ones. */
static bool enqueue(struct store *G, struct os_vars *s, uint32_t idx)
{
    if (G->qtail == G->qcap) {
        /* compact, then grow */
        size_t live = G->qtail - G->qhead;
        if (live) { /* the queue starts out NULL: no memmove from it */
            memmove(G->queue, G->queue + G->qhead, live * sizeof *G->queue);
            memmove(G->qidx, G->qidx + G->qhead, live * sizeof *G->qidx);
        }
        G->qhead = 0;
        G->qtail = live;
        if (G->qtail == G->qcap) {
            size_t cap = G->qcap ? 2 * G->qcap : 4096;
            struct os_vars *q = realloc(G->queue, cap * sizeof *q);
            if (!q)
                return false;
            G->queue = q;
            uint32_t *qi = realloc(G->qidx, cap * sizeof *qi);
            if (!qi)
                return false;
            G->qidx = qi;
            G->qcap = cap;
        }
    }
    if (G->visit)
        G->visit(G->visit_arg, G->c, s);
    hw_pmem_intern(&s->hw.global_pt.mem, &G->frames); /* out of memory: it keeps its own */
    hw_pmem_intern(&s->hw.mem, &G->frames);
    G->queue[G->qtail] = *s;
    G->qidx[G->qtail++] = idx;
    return true;
}

/* The trace to node idx into the worker's violation. */
static void build_trace(struct search *S, uint32_t idx)
{
    const struct store *G = S->G;
    size_t depth = G->nodes[idx].depth;
    struct os_step *path = malloc((depth + 1) * sizeof *path);
    if (!path)
        return;
    for (size_t d = depth; d > 0; d--) {
        arena_get(G, G->nodes[idx].step_at, &path[d - 1]);
        idx = G->nodes[idx].parent;
    }
    for (size_t i = 0; i < depth; i++)
        trace_push(&S->v->trace, &path[i]);
    free(path);
}

/* Does the core's level-`level` cache hold the entry for vaddr leading to table with rights? */
static bool cache_holds(const struct hw_mmu_core *m, unsigned level, uint64_t vaddr, uint64_t table, uint8_t rights)
{
    for (unsigned e = 0; e < m->npscache[level]; e++)
        if (m->pscache[level][e].key == hw_pscache_key(vaddr, level) && m->pscache[level][e].table == table &&
            m->pscache[level][e].rights == rights)
            return true;
    return false;
}

/* Cache a stale walk and end it (drop_current). A walk that has read directory entries and not
 * its leaf can do nothing that walks from the cache entries it would fill cannot: read on from
 * its deepest one, fill the others. So when every level it read has room for its entry (or
 * holds it, or would have it from a walk from CR3 now), the search takes the state with the
 * entries and without the walk, which can do more: it may also evict them, start another walk
 * and outlive an INVLPG of a neighbour in the walk's PML4 slot. */
static unsigned walk_to_cache(const struct os_consts *c, const struct os_vars *s, unsigned i,
                              const unsigned *evicted, struct os_step *chain, unsigned n)
{
    struct hw_core core = os_core_of(c, i);
    const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, core);
    if (!c->hw.mmu_pscache || m->nwalks != 1)
        return n;
    const struct hw_mmu_walk *w = &m->walks[0];
    if (w->complete || w->next == w->from || w->next > HW_PSCACHE_LEVELS)
        return n;
    unsigned fills = 0;
    for (unsigned l = w->from; l < w->next; l++) {
        if (cache_holds(m, l, w->vaddr, w->table[l + 1], w->rights[l + 1]) ||
            hw_mmu_path_current(&c->hw, &s->hw, core, w->vaddr, l, w->table[l + 1], w->rights[l + 1]))
            continue;
        /* drop_current evicts the current ones first */
        if (m->npscache[l] - evicted[l] >= c->hw.mmu_pscache || n + fills + 2 > CHAIN_MAX)
            return n;
        chain[n + fills] = hw_step(HW_STEP_CACHE_FILL, core);
        chain[n + fills++].hw.cache_level = l;
    }
    n += fills;
    chain[n++] = hw_step(HW_STEP_WALK_ABORT, core);
    return n;
}

/* Lazy walks: a walk that read only what memory still holds ends, a cached entry that a walk
 * from CR3 would fill now is evicted (walk_is_current, cache_entry_is_current), and another
 * walk becomes cache entries where it can (walk_to_cache): the steps that do it go at the
 * chain's end, which emit_chain then takes too. */
static unsigned drop_current(struct search *S, const struct os_vars *s, struct os_step *chain, unsigned n)
{
    const struct os_consts *c = &S->c;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        struct hw_core core = os_core_of(c, i);
        const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, core);
        if (!m)
            continue;
        bool current = walk_is_current(c, s, i);
        if (current && n < CHAIN_MAX)
            chain[n++] = hw_step(HW_STEP_WALK_ABORT, core);
        unsigned evicted[HW_PSCACHE_LEVELS] = { 0 };
        for (unsigned l = 0; l < HW_PSCACHE_LEVELS; l++)
            for (unsigned e = m->npscache[l]; e-- > 0;) /* from the top: eviction keeps lower indices */
                if (cache_entry_is_current(c, s, i, l, e) && n < CHAIN_MAX) {
                    chain[n] = hw_step(HW_STEP_CACHE_EVICT, core);
                    chain[n].hw.cache_level = l, chain[n].hw.cache_index = e;
                    n++, evicted[l]++;
                }
        if (!current) /* after the evictions, whose indices are those of s */
            n = walk_to_cache(c, s, i, evicted, chain, n);
        const struct hw_tlb *tlb = hw_core_tlb_const(&c->hw, &s->hw, core);
        for (uint32_t e = 0; e < tlb->len; e++)
            if (hw_mmu_tlb_current(&c->hw, &s->hw, core, &tlb->entries[e], false) && n < CHAIN_MAX) {
                chain[n] = hw_step(HW_STEP_TLB_EVICT, core);
                chain[n++].hw.vaddr = tlb->entries[e].base;
            }
    }
    return n;
}

/* The trace to node idx, then the chain's steps up to and including chain[j]. */
static void build_trace_chain(struct search *S, uint32_t idx, const struct os_step *chain, unsigned j)
{
    build_trace(S, idx);
    for (unsigned i = 0; i <= j; i++)
        trace_push(&S->v->trace, &chain[i]);
}

/* Take the steps of chain from s (node idx, checker k) one after the other, each fully checked;
 * the state after the last one is a state of the search (the ones between are not hashed:
 * lazy walks make them only as part of the chain). The steps get their outputs. *enabled:
 * every step was enabled and sound. false: stop the search. */
static bool emit_chain(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                       struct os_step *chain, unsigned n, bool *enabled)
{
    struct os_vars cur, next;
    bool have = false, ok = true;
    struct os_checker kc;
    char why[512];
    const unsigned last = n; /* drop_current appends to the chain after its last step */
    *enabled = false;
    if (!os_checker_copy(&kc, k))
        return false;
    for (unsigned j = 0; j < n; j++) {
        const struct os_vars *from = have ? &cur : s;
        struct os_delta d;
        enum os_step_status r = os_next_step(&S->c, from, &chain[j], &next, &d, why, sizeof why);
        if (j + 1 == n)
            S->last_nallocs = chain[j].nallocs;
        if (r == OS_STEP_DISABLED)
            goto done;
        if (r == OS_STEP_NOMEM) {
            ok = false;
            goto done;
        }
        if (r == OS_STEP_VIOLATION) {
            S->v->found = true;
            S->v->check = os_check_of_step(&chain[j]);
            snprintf(S->v->why, sizeof S->v->why, "%s", why);
            build_trace_chain(S, idx, chain, j);
            ok = false;
            goto done;
        }
        if (from->sound && !next.sound) {
            os_vars_fini(&next);
            goto done;
        }
        if (!os_checker_step(&kc, from, &next, &chain[j], &d, &S->v->check, S->v->why, sizeof S->v->why)) {
            S->v->found = true;
            build_trace_chain(S, idx, chain, j);
            os_vars_fini(&next);
            ok = false;
            goto done;
        }
        if (have)
            os_vars_fini(&cur);
        cur = next, have = true;
        if (S->lazy && j + 1 == last)
            n = drop_current(S, &cur, chain, n);
    }
    *enabled = true;
    uint32_t depth = S->G->nodes[idx].depth + n;
    if (S->cfg->max_depth && depth > S->cfg->max_depth) {
        S->bounded = true;
        goto done;
    }
    uint64_t key = state_key(S, &cur);
    if (hset_has(&S->G->seen, key) || !hset_add(&S->local, key))
        goto done;
    if (S->nout == S->outcap) {
        size_t cap = S->outcap ? 2 * S->outcap : 256;
        struct found *o = realloc(S->out, cap * sizeof *o);
        if (!o) {
            ok = false;
            goto done;
        }
        S->out = o, S->outcap = cap;
    }
    struct found *f = &S->out[S->nout];
    f->chain = malloc(n * sizeof *f->chain);
    if (!f->chain) {
        ok = false;
        goto done;
    }
    memcpy(f->chain, chain, n * sizeof *chain);
    f->parent = idx, f->n = n, f->state = cur, f->key = key;
    S->nout++;
    have = false; /* the found list owns it */
done:
    if (have)
        os_vars_fini(&cur);
    os_checker_fini(&kc);
    return ok;
}

static bool emit_blocks(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                        const struct os_step *in, const struct os_step *out);

/* Try one candidate step from s (node idx, checker k). With lazy walks, also every block of
 * walk reads that must come right before it (emit_blocks). false: stop the search. */
static bool emit(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                 struct os_step st)
{
    struct os_step out[CHAIN_MAX]; /* st, then what drop_current adds */
    out[0] = st;
    bool enabled;
    if (!emit_chain(S, s, idx, k, out, 1, &enabled))
        return false;
    if (!S->lazy || !enabled)
        return true;
    unsigned nallocs = S->last_nallocs;
    bool ok = emit_blocks(S, s, idx, k, &st, &out[0]);
    S->last_nallocs = nallocs;
    return ok;
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
        /* and with the allocator refusing each directory the split needs (hlspec.h: nomem;
         * the model disables a refusal beyond them) */
        unsigned refusals = S->cfg->alloc_fail && ops[i].kind != OS_STEP_MAP_RANGE_START ? RANGE_SPLIT_DIRS_MAX : 0;
        for (st.fail_alloc = 0; st.fail_alloc <= refusals; st.fail_alloc++)
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

/* ---- Lazy walks: the exhaustive mode's partial-order reduction (README, "Lazy walks") ------
 *
 * A walk's read commutes with every step that does not access the entry it reads: the library's
 * accesses elsewhere, user loads and stores, TLB and cache steps, other walks' reads and the
 * MMU's A/D updates (a read records no A/D; setting A is idempotent). So every run can be
 * reordered, step by step over such pairs, into one in which each read comes as late as it can:
 * right before the first later step it does not commute with. Those are: an access of the same
 * entry (a library load, store or compare-exchange, a Writeback, a directory's zeroing, the
 * page allocator's reuse of its frame), the acknowledgement of a shootdown by the walking core
 * (its invalidation ends the walk), and the walk's own next steps. A read that nothing follows
 * is dropped (it would only have set an A bit nobody reads). So the search makes walk reads only
 * in blocks: reads of one walk per core, then the step they race (emit_blocks); reads to the
 * end, then the TLB fill; reads to a directory entry, then its cache fill and the walk's end
 * (a walk that goes on after a cache fill reads what a walk from that cache entry would read:
 * an INVLPG that removes the entry removes the walk too, since the key covers its PML4 slot).
 * Runs reordered so reach the same states after every step that is not a walk read, and every
 * check reads only such states and steps, so the reduced search finds every violation the full
 * one does. Assumed: resolve, destroy and adopt probes do not look at A bits (they answer with
 * frames and rights); a core has at most one walk in flight (--walks 1). */

/* Does core i's walk hold only what a fresh walk would read now: every entry it read is still
 * there (A and D aside, through the core's own store buffer), and the cached entry it started
 * from is still cached? Then a fresh walk, whose reads the search makes right before any change
 * to those entries, does all it can do: the search ends it (a state equal to one without it). */
static bool walk_is_current(const struct os_consts *c, const struct os_vars *s, unsigned i)
{
    struct hw_core core = os_core_of(c, i);
    const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, core);
    if (!m || m->nwalks != 1)
        return false;
    const struct hw_mmu_walk *w = &m->walks[0];
    for (unsigned l = w->from; l < w->next; l++) {
        uint64_t now = hw_pt_load(&c->hw, &s->hw, core, hw_mmu_walk_entry_pa(w, l));
        if ((now & ~(HW_BIT_A | HW_BIT_D)) != w->entry[l])
            return false;
    }
    if (w->from == 0)
        return true;
    unsigned level = w->from - 1u;
    if (cache_holds(m, level, w->vaddr, w->table[w->from], w->rights[w->from]))
        return true;
    return hw_mmu_path_current(&c->hw, &s->hw, core, w->vaddr, level, w->table[w->from], w->rights[w->from]);
}

/* Is the cached entry one that a walk from CR3 would fill now, setting no A bit? Then a fresh
 * walk and a cache fill, which the search makes right before any change to the entries it is
 * made of, does all it can do: the search evicts it. */
static bool cache_entry_is_current(const struct os_consts *c, const struct os_vars *s, unsigned i, unsigned level,
                                   unsigned e)
{
    struct hw_core core = os_core_of(c, i);
    const struct hw_pscache_entry *p = &hw_core_mmu_const(&c->hw, &s->hw, core)->pscache[level][e];
    return hw_mmu_path_current(&c->hw, &s->hw, core, p->key << (39 - 9 * level), level, p->table, p->rights);
}

/* Simulate the reads of plan w (its WalkInit first if fresh) on core from s, until the walk
 * completes or faults; false if the walk cannot start. */
static bool plan_reads(const struct os_consts *c, const struct os_vars *s, struct hw_core core, struct walk_plan *w)
{
    struct os_vars cur;
    bool have = false;
    struct os_delta d;
    char why[256];
    if (w->fresh) {
        struct os_step st = w->init;
        if (os_next_step(c, s, &st, &cur, &d, why, sizeof why) != OS_STEP_OK)
            return false;
        have = true;
    }
    for (;;) {
        const struct os_vars *from = have ? &cur : s;
        const struct hw_mmu_core *fm = hw_core_mmu_const(&c->hw, &from->hw, core);
        if (!fm || !fm->nwalks || fm->walks[0].complete || w->nreads == HW_NUM_LAYERS) {
            w->completes = fm && fm->nwalks && fm->walks[0].complete;
            if (w->completes)
                w->result = hw_mmu_walk_result(&fm->walks[0], c->hw.maxphyaddr);
            break;
        }
        w->pa[w->nreads] = hw_mmu_walk_entry_pa(&fm->walks[0], fm->walks[0].next);
        w->layer[w->nreads] = fm->walks[0].next;
        struct os_step st = hw_step(HW_STEP_WALK_STEP, core);
        struct os_vars nx;
        if (os_next_step(c, from, &st, &nx, &d, why, sizeof why) != OS_STEP_OK)
            break;
        w->nreads++;
        if (have)
            os_vars_fini(&cur);
        cur = nx, have = true;
        const struct hw_mmu_core *nm = hw_core_mmu_const(&c->hw, &cur.hw, core);
        if (!nm || !nm->nwalks) {
            w->faults = true;
            break;
        }
    }
    if (have)
        os_vars_fini(&cur);
    return true;
}

/* The walks core i may take from s: its in-flight walk, or a fresh one of each workload
 * address from CR3 and from each matching cached entry; each read simulated. */
static void plan_walks(struct search *S, const struct os_vars *s, unsigned i)
{
    const struct os_consts *c = &S->c;
    struct hw_core core = os_core_of(c, i);
    const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, core);
    struct walk_plan *out = &S->plans[i * PLANS_MAX];
    unsigned n = 0;
    if (m && m->nwalks) {
        memset(&out[0], 0, sizeof out[0]);
        n = plan_reads(c, s, core, &out[0]);
    }
    for (unsigned v = 0; !(m && m->nwalks) && v < S->cfg->nvaddrs; v++)
        for (unsigned l = 0; l <= HW_PSCACHE_LEVELS; l++)
            for (unsigned e = 0; e < walk_starts(m, l) && n < PLANS_MAX; e++) {
                struct walk_plan *w = &out[n];
                memset(w, 0, sizeof *w);
                w->fresh = true;
                w->from_cache = l < HW_PSCACHE_LEVELS;
                if (walk_init_step(m, core, S->cfg->vaddrs[v], l, e, &w->init) && plan_reads(c, s, core, w))
                    n++;
            }
    S->nplans[i] = n;
}

/* The chain of plan w's first `reads` reads (its WalkInit first if fresh) at chain[*n]. */
static void chain_reads(const struct walk_plan *w, unsigned reads, struct hw_core core, struct os_step *chain,
                        unsigned *n)
{
    if (w->fresh)
        chain[(*n)++] = w->init;
    for (unsigned r = 0; r < reads; r++)
        chain[(*n)++] = hw_step(HW_STEP_WALK_STEP, core);
}

/* Is plan w's read r (1-based) of a directory entry the walk goes on from? */
static bool cacheable(const struct walk_plan *w, unsigned r)
{
    return w->layer[r - 1] < HW_PSCACHE_LEVELS && !(r == w->nreads && (w->faults || w->completes));
}

/* CacheFill of the level, then WalkAbort, at chain[*n]. */
static void chain_cache_fill(unsigned level, struct hw_core core, struct os_step *chain, unsigned *n)
{
    chain[*n] = hw_step(HW_STEP_CACHE_FILL, core);
    chain[(*n)++].hw.cache_level = level;
    chain[(*n)++] = hw_step(HW_STEP_WALK_ABORT, core);
}

/* Does a walk's read at pa race step x (its outputs), taken from s? A load races it only if
 * the read sets A (a present entry without A in memory): otherwise the read changes nothing
 * the load sees, and the load nothing the read sees. */
static bool races(const struct os_vars *s, const struct os_step *x, uint64_t pa)
{
    if (x->kind == OS_STEP_FRAME_REUSE)
        return pa / HW_PAGE_SIZE == x->reuse_pa / HW_PAGE_SIZE;
    if (!x->accessed)
        return false;
    if (x->access == OS_LIB_ZERO)
        return pa / HW_PAGE_SIZE == x->write_pa / HW_PAGE_SIZE;
    if (pa != x->write_pa)
        return false;
    uint64_t now = hw_pmem_read(&s->hw.global_pt.mem, pa);
    return x->access != OS_LIB_LOAD || ((now & HW_BIT_P) && !(now & HW_BIT_A));
}

/* Every choice, per core from core i on, of no block or one block of its plans racing x,
 * each followed by x (in). */
static bool blocks_from(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                        const struct os_step *in, const struct os_step *out, unsigned i, struct os_step *chain,
                        unsigned n, bool any)
{
    const struct os_consts *c = &S->c;
    if (i == os_ncores(c)) {
        if (!any)
            return true;
        chain[n] = *in;
        bool enabled;
        return emit_chain(S, s, idx, k, chain, n + 1, &enabled);
    }
    if (!blocks_from(S, s, idx, k, in, out, i + 1, chain, n, any))
        return false;
    struct hw_core core = os_core_of(c, i);
    /* the walking core's acknowledgement ends its walks: a walk it holds, or one from a cached
     * entry (whose reads it could make no later), may read any prefix before it */
    bool ack = out->kind == OS_STEP_ACK_SHOOTDOWN_IPI && out->core == i;
    for (unsigned p = 0; p < S->nplans[i]; p++) {
        const struct walk_plan *w = &S->plans[i * PLANS_MAX + p];
        for (unsigned r = 1; r <= w->nreads; r++) {
            if (w->faults && r == w->nreads)
                break; /* a read that finds nothing only ends the walk */
            if (!(races(s, out, w->pa[r - 1]) || (ack && (!w->fresh || w->from_cache))))
                continue;
            unsigned m = n;
            chain_reads(w, r, core, chain, &m);
            if (!blocks_from(S, s, idx, k, in, out, i + 1, chain, m, true))
                return false;
        }
    }
    return true;
}

/* Lazy A/D: the MMU's A/D step of a mapping sets A in every entry of its path and D in its
 * leaf. It commutes with every step that does not access one of those entries in memory (walks
 * record entries without A/D and set A and D idempotently; a store into a store buffer does not
 * touch memory), so the search makes it only right before a step that does: a library load that
 * would see a bit it sets, a compare-exchange, a store to memory, a Writeback, a zeroing or a
 * frame reuse. Does the A/D step of the mapping with path w (a write: D too) race x? */
static bool ad_races(const struct os_vars *s, const struct hw_walk *w, bool write, const struct os_step *x)
{
    for (unsigned l = 0; l <= w->layer; l++) {
        uint64_t pa = w->entry_pa[l];
        if (x->kind == OS_STEP_FRAME_REUSE) {
            if (pa / HW_PAGE_SIZE == x->reuse_pa / HW_PAGE_SIZE)
                return true;
            continue;
        }
        if (!x->accessed)
            return false;
        if (x->access == OS_LIB_ZERO) {
            if (pa / HW_PAGE_SIZE == x->write_pa / HW_PAGE_SIZE)
                return true;
            continue;
        }
        if (pa != x->write_pa || (x->access == OS_LIB_STORE && x->buffered))
            continue;
        if (x->access != OS_LIB_LOAD)
            return true;
        uint64_t now = hw_pmem_read(&s->hw.global_pt.mem, pa);
        if (!(now & HW_BIT_A) || (l == w->layer && write && !(now & HW_BIT_D)))
            return true;
    }
    return false;
}

#define AD_MAX 4
/* Every choice, per mapping from j on, of no A/D step, a read one or a write one among those
 * racing x, each chain then followed by every choice of walk blocks and x (blocks_from). */
static bool ad_from(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                    const struct os_step *in, const struct os_step *out, const uint64_t *bases,
                    const struct hw_walk *paths, unsigned nb, unsigned j, struct os_step *chain, unsigned n)
{
    if (j == nb)
        return !n || blocks_from(S, s, idx, k, in, out, 0, chain, n, true);
    if (!ad_from(S, s, idx, k, in, out, bases, paths, nb, j + 1, chain, n))
        return false;
    for (int w = 0; w < 2; w++) {
        if (!ad_races(s, &paths[j], w, out))
            continue;
        chain[n] = hw_step(HW_STEP_ACCESSED_DIRTY, os_core_of(&S->c, 0));
        chain[n].hw.vaddr = bases[j];
        chain[n].hw.is_write = w;
        if (!ad_from(S, s, idx, k, in, out, bases, paths, nb, j + 1, chain, n + 1))
            return false;
    }
    return true;
}

static bool emit_blocks(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                        const struct os_step *in, const struct os_step *out)
{
    struct os_step chain[CHAIN_MAX];
    if (!blocks_from(S, s, idx, k, in, out, 0, chain, 0, false))
        return false;
    if (!S->cfg->ad)
        return true;
    /* the mappings memory holds at a workload address or at a mapping of the writer's table */
    uint64_t bases[AD_MAX];
    struct hw_walk paths[AD_MAX];
    unsigned nb = 0;
    struct hw_pt_view pv = hw_vars_pt_view(&S->c.hw, &s->hw);
    for (unsigned v = 0; v < S->cfg->nvaddrs + k->pt.len; v++) {
        uint64_t va = v < S->cfg->nvaddrs ? S->cfg->vaddrs[v] : k->pt.map[v - S->cfg->nvaddrs].base;
        struct hw_walk w;
        if (hw_pt_walk(&pv, va, &w) != HW_WALK_PAGE)
            continue;
        bool dup = false;
        for (unsigned i = 0; i < nb; i++)
            dup |= bases[i] == w.base;
        if (!dup && nb < AD_MAX)
            bases[nb] = w.base, paths[nb++] = w;
    }
    return ad_from(S, s, idx, k, in, out, bases, paths, nb, 0, chain, 0);
}

/* Core's cache entries, each evicted (rl3 CacheEvict: any entry, any time). */
static bool emit_cache_evicts(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                              struct hw_core core)
{
    const struct hw_mmu_core *m = hw_core_mmu_const(&S->c.hw, &s->hw, core);
    for (unsigned l = 0; m && l < HW_PSCACHE_LEVELS; l++)
        for (unsigned e = 0; e < m->npscache[l]; e++) {
            struct os_step st = hw_step(HW_STEP_CACHE_EVICT, core);
            st.hw.cache_level = l, st.hw.cache_index = e;
            if (!emit(S, s, idx, k, st))
                return false;
        }
    return true;
}

/* The walks' own ends: every plan read to its end and filled into the TLB; read up to each
 * directory entry it reads, that entry cached, and the walk ended; a walk in flight ended, or
 * cached at a level it read already; a cache entry evicted. */
static bool emit_lazy_walks(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k)
{
    const struct os_consts *c = &S->c;
    struct os_step chain[CHAIN_MAX];
    bool enabled;
    for (unsigned i = 0; i < os_ncores(c); i++) {
        struct hw_core core = os_core_of(c, i);
        const struct hw_mmu_core *m = hw_core_mmu_const(&c->hw, &s->hw, core);
        for (unsigned p = 0; p < S->nplans[i]; p++) {
            const struct walk_plan *w = &S->plans[i * PLANS_MAX + p];
            unsigned n = 0;
            /* a fresh walk from CR3 reads what memory holds now: its fill or cache fill is
             * current and dropped at once, so all it leaves are A and D bits, which lazy A/D
             * and the blocks before racing steps set where they matter */
            if (S->cfg->ad && w->fresh && !w->from_cache)
                continue;
            if (w->completes) {
                chain_reads(w, w->nreads, core, chain, &n);
                chain[n++] = hw_step(HW_STEP_WALK_TLB_FILL, core);
                if (!emit_chain(S, s, idx, k, chain, n, &enabled))
                    return false;
            }
            for (unsigned r = 1; c->hw.mmu_pscache && r <= w->nreads; r++) {
                if (!cacheable(w, r))
                    continue;
                n = 0;
                chain_reads(w, r, core, chain, &n);
                chain_cache_fill(w->layer[r - 1], core, chain, &n);
                if (!emit_chain(S, s, idx, k, chain, n, &enabled))
                    return false;
            }
        }
        if (m && m->nwalks) {
            for (unsigned l = 0; c->hw.mmu_pscache && l < HW_PSCACHE_LEVELS; l++) {
                struct os_step st = hw_step(HW_STEP_CACHE_FILL, core);
                st.hw.cache_level = l;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
            if (!emit(S, s, idx, k, hw_step(HW_STEP_WALK_ABORT, core)))
                return false;
        }
        if (!emit_cache_evicts(S, s, idx, k, core))
            return false;
    }
    return true;
}

/* The rl3 hardware's steps (hw_consts mmu_*): every core may start a walk of every workload
 * address (a write, which sets A and D; a read walk does a subset of what it does), from CR3 or
 * from each cached entry that matches, step any walk, cache what it read, fill its TLB from it,
 * abandon it, evict a cache entry (the full enumeration, --no-lazy). */
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
                for (unsigned e = 0; e < walk_starts(m, l); e++)
                    if (walk_init_step(m, core, cfg->vaddrs[v], l, e, &st) && !emit(S, s, idx, k, st))
                        return false;
        for (unsigned w = 0; m && w < m->nwalks; w++) {
            static const enum hw_step_kind kinds[] = { HW_STEP_WALK_STEP, HW_STEP_WALK_TLB_FILL, HW_STEP_WALK_ABORT };
            for (unsigned j = 0; j < 3 + (c->hw.mmu_pscache ? HW_PSCACHE_LEVELS : 0); j++) {
                st = hw_step(j < 3 ? kinds[j] : HW_STEP_CACHE_FILL, core);
                st.hw.walk_index = w;
                st.hw.cache_level = j < 3 ? 0 : j - 3;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
        }
        if (!emit_cache_evicts(S, s, idx, k, core))
            return false;
    }
    return true;
}

/* The page allocator's other users: a free frame filled with a user page entry. Only a frame
 * some core's walk or cached entry points into: a write to any other free frame commutes with
 * every step until the frame is allocated again, which overwrites it. */
static bool emit_frame_reuse(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k)
{
    const struct check_config *cfg = S->cfg;
    const struct os_consts *c = &S->c;
    struct os_step st;
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

/* Probes (destroy, adopt, refused calls) are Stutters whose verdict is a function of page-table
 * memory, the library's own state (counts, walk hint) and the pool, and which need the lock
 * free: one found right is not run again on a state that differs only elsewhere (TLBs, walks,
 * caches, threads, user memory). variant tells probes of one kind apart. */
static uint64_t probe_key(const struct os_vars *s, const struct os_step *st, unsigned variant)
{
    uint64_t h = UINT64_C(0x70726f6265);
    const uint64_t scalars[] = { st->kind, variant, hw_pmem_hash(&s->hw.global_pt.mem), s->hw.global_pt.cr3,
                                 s->pt_private };
    for (unsigned i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        h = (h ^ scalars[i]) * UINT64_C(0x100000001b3) + (h >> 29);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX / 64; i++)
        h = (h ^ s->pt_free[i] ^ s->pt_pending[i] << 1 ^ s->pt_fresh[i] << 2) * UINT64_C(0xff51afd7ed558ccd) + (h >> 31);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX; i += 4) {
        uint64_t w = 0;
        memcpy(&w, &s->pt_counts[i], sizeof w);
        h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53) + (h >> 27);
    }
    return h;
}

static bool emit_probe(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                       struct os_step st, unsigned variant)
{
    if (!os_table_idle(&S->c, s))
        return true; /* disabled */
    uint64_t key = probe_key(s, &st, variant);
    if (hset_has(&S->G->probed, key) || hset_has(&S->local_probed, key))
        return true;
    struct os_step out[CHAIN_MAX]; /* st, then what drop_current adds (nothing: s is canonical) */
    out[0] = st;
    bool enabled;
    if (!emit_chain(S, s, idx, k, out, 1, &enabled))
        return false;
    if (enabled)
        hset_add(&S->local_probed, key);
    return true;
}

/* Refused calls (os_badcall.c), by each thread in every state where no operation holds the lock:
 * the workload's first address, frame and size, each with one defect, the kinds the random
 * workload draws (random.c gen_bad). Each is a Stutter when the library refuses it rightly. */
static bool emit_bad_calls(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k)
{
    const struct check_config *cfg = S->cfg;
    const uint64_t limit = UINT64_C(1) << S->c.hw.maxphyaddr;
    const uint64_t va = cfg->vaddrs[0] & ~(HW_L1_ENTRY_SIZE - 1), pa = cfg->frames[0] & ~(HW_L1_ENTRY_SIZE - 1);
    enum { MAP = OS_PT_MAP, UNMAP = OS_PT_UNMAP, PROTECT = OS_PT_PROTECT, RESOLVE = OS_PT_RESOLVE };
    static const struct {
        int op;
        bool range, bad_flag;
        uint64_t vaddr, frame_add, size, length;  /* vaddr 1: the workload's; frame_add, size: map */
        int frame;                                 /* 0: the workload's, 1: at the limit, 2: limit - 4 KiB */
    } calls[] = {
        { MAP, false, false, UINT64_C(0x0000800000000000), 0, 0x1000, 0, 0 },    /* above the low half */
        { MAP, false, false, UINT64_C(0x0001000000000000), 0, 0x1000, 0, 0 },    /* bit 48 */
        { UNMAP, false, false, UINT64_C(0xffff7fffc0000000), 0, 0, 0, 0 },       /* below the high half */
        { PROTECT, false, false, UINT64_C(0x8000000000000000), 0, 0, 0, 0 },     /* bit 63 only */
        { RESOLVE, false, false, UINT64_C(0x0001000000000000), 0, 0, 0, 0 },
        { MAP, true, false, UINT64_C(0x00007fffffffe000), 0, 0, 0x4000, 0 },     /* across the hole */
        { MAP, false, false, 1, 8, 0x1000, 0, 0 },                                /* frame misaligned */
        { MAP, false, false, 1, 0x1000, 0x200000, 0, 0 },                         /* by 4 KiB for 2 MiB */
        { UNMAP, true, false, 1, 0, 0, 0x1008, 0 },                               /* length misaligned */
        { MAP, false, false, 1, 0, 0x2000, 0, 0 },                                /* no such size */
        { MAP, false, false, 1, 0, 0, 0, 0 },                                     /* size 0 */
        { MAP, false, true, 1, 0, 0x1000, 0, 0 },                                 /* unknown flag */
        { PROTECT, false, true, 1, 0, 0, 0, 0 },
        { MAP, false, false, 1, 0, 0x1000, 0, 1 },                                /* frame at 2^MAXPHYADDR */
        { MAP, true, false, 1, 0, 0, 0x2000, 2 },                                 /* range across it */
    };
    const unsigned ncalls = sizeof calls / sizeof calls[0];
    for (unsigned t = 0; cfg->bad_calls && t < S->c.ULT_no; t++) /* every thread, as symmetry needs */
        for (unsigned i = 0; i < ncalls; i++) {
            struct os_step st;
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_BAD_CALL;
            st.ULT_id = t;
            struct os_pt_request *b = &st.bad;
            b->op = (enum os_pt_op)calls[i].op;
            b->range = calls[i].range;
            b->bad_flag = calls[i].bad_flag;
            b->vaddr = calls[i].vaddr == 1 ? va : calls[i].vaddr;
            uint64_t frame = calls[i].frame == 1 ? limit : calls[i].frame == 2 ? limit - 0x1000 : pa;
            b->pte.frame.base = frame + calls[i].frame_add;
            b->pte.frame.size = calls[i].size;
            b->pte.flags.is_writable = true;
            b->flags = b->pte.flags;
            b->paddr = frame;
            b->length = calls[i].length;
            if (!emit_probe(S, s, idx, k, st, i))
                return false;
        }
    return true;
}

/* Lazy TLBs: a user access st (no TLB entry in it yet) through the translation each walk its
 * core may take fills, if it covers the address: the walk's reads, its TLB fill, the access. */
static bool emit_walked_access(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k,
                               const struct os_step *st)
{
    unsigned i = os_core_index(&S->c, st->hw.core);
    for (unsigned p = 0; p < S->nplans[i]; p++) {
        const struct walk_plan *w = &S->plans[i * PLANS_MAX + p];
        const struct hw_mapping *r = &w->result;
        if (!w->completes || !hw_between(st->hw.vaddr, r->base, r->base + r->pte.frame.size))
            continue;
        struct os_step chain[CHAIN_MAX];
        unsigned n = 0;
        bool enabled;
        chain_reads(w, w->nreads, st->hw.core, chain, &n);
        chain[n++] = hw_step(HW_STEP_WALK_TLB_FILL, st->hw.core);
        chain[n] = *st;
        chain[n].hw.has_pte = true;
        chain[n++].hw.tlb_entry = *r;
        if (!emit_chain(S, s, idx, k, chain, n, &enabled))
            return false;
    }
    return true;
}

static bool expand(struct search *S, const struct os_vars *s, uint32_t idx, const struct os_checker *k)
{
    const struct check_config *cfg = S->cfg;
    const struct os_consts *c = &S->c;
    struct os_step st;
    for (unsigned i = 0; S->lazy && i < os_ncores(c); i++)
        plan_walks(S, s, i);
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
                if (S->lazy && !emit_walked_access(S, s, idx, k, &st))
                    return false;
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
            /* read-only and executable; with every flag combination also writable no-execute,
             * read-only no-execute and writable executable: a protect that narrows, widens, or
             * both at once (issue 11) */
            for (unsigned p = 0; cfg->protect && p < (cfg->flags_all ? 4u : 1u); p++) {
                st.kind = OS_STEP_PROTECT_START;
                st.flags.is_writable = p == 1 || p == 3;
                st.flags.disable_execute = p == 1 || p == 2;
                if (!emit(S, s, idx, k, st))
                    return false;
            }
            /* the A/D extension: a test-and-clear of both bits, a protect to the flags the
             * mapping has (os_lib.c), of a mapping at the first address (every thread, as
             * symmetry needs) */
            struct hw_pte p;
            if (cfg->harvest && cfg->protect && i == 0 && os_pt_get(&S->c, s, va, &p)) { /* (unmapped: protect's Err) */
                st.kind = OS_STEP_PROTECT_START;
                st.flags = p.flags;
                st.ad_clear = OS_AD_ACCESSED | OS_AD_DIRTY;
                if (!emit(S, s, idx, k, st))
                    return false;
                st.ad_clear = 0;
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
                        st.pte.flags.disable_execute = (fl & 2) != 0 || cfg->map_no_execute;
                        st.pte.flags.global = cfg->map_global;
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
            unsigned n = cfg->alloc_fail && os_core_may_allocate(cs) ? S->last_nallocs : 0;
            for (st.fail_alloc = 1; st.fail_alloc <= n; st.fail_alloc++)
                if (!emit(S, s, idx, k, st))
                    return false;
        }
        struct hw_core core = os_core_of(c, i);
        for (size_t m = 0; !c->hw.mmu_walks && m < k->pt.len; m++) { /* with walks, TLBs fill from them */
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
        for (unsigned v = 0; !c->hw.mmu_walks && os_sbuf_writer(c, s) >= 0 && v < cfg->nvaddrs; v++) {
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
    if (S->lazy && !emit_lazy_walks(S, s, idx, k))
        return false;
    if (c->hw.mmu_walks && !S->lazy && !emit_mmu(S, s, idx, k))
        return false;
    if (c->hw.mmu_walks && !emit_frame_reuse(S, s, idx, k))
        return false;
    if (!emit_bad_calls(S, s, idx, k))
        return false;
    memset(&st, 0, sizeof st); /* destroy, on a copy: a Stutter when it is right */
    st.kind = OS_STEP_DESTROY_PROBE;
    if (!emit_probe(S, s, idx, k, st, 0))
        return false;
    for (unsigned i = 0; i < OS_ADOPT_IMAGE_COUNT; i++) { /* adopt of each image, likewise */
        memset(&st, 0, sizeof st);
        st.kind = OS_STEP_ADOPT_PROBE;
        st.adopt_image = i;
        if (!emit_probe(S, s, idx, k, st, i))
            return false;
    }
    for (unsigned t = 0; t < c->ULT_no; t++) { /* an iteration over the 4 MiB around the workload's first address */
        memset(&st, 0, sizeof st);
        st.kind = OS_STEP_ITERATE;
        st.ULT_id = t;
        st.vaddr = cfg->vaddrs[0] & ~(HW_L2_ENTRY_SIZE - 1);
        st.length = 2 * HW_L2_ENTRY_SIZE;
        if (!emit_probe(S, s, idx, k, st, 0))
            return false;
    }
    for (unsigned i = 0; i < os_ncores(c); i++) /* the oldest buffered store reaches memory */
        if (os_sbuf_len(c, s, i)) {
            memset(&st, 0, sizeof st);
            st.kind = OS_STEP_HW;
            st.hw.kind = HW_STEP_WRITEBACK;
            st.hw.core = os_core_of(c, i);
            if (!emit(S, s, idx, k, st))
                return false;
        }
    if (cfg->ad && !S->lazy) /* lazy: only right before what they race (emit_blocks) */
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
    return check_exhaustive_visit(cfg, NULL, NULL, states, complete, v, seconds);
}

/* ---- the driver: batches of the queue, expanded by the workers, merged in order ------------ */

#define BATCH 4096
#define JOBS_MAX 8

/* Workers 1..nth, each on a thread of its own, started for each batch (gen) and counted back
 * (pending). */
struct pool {
    pthread_t th[JOBS_MAX];
    unsigned nth;
    pthread_mutex_t lock;
    pthread_cond_t go, done;
    unsigned long gen;
    unsigned pending;
    bool quit;
};

/* Expand the worker's part of the batch, in queue order; stop at the first failure. */
static void work(struct search *S)
{
    struct os_checker k;
    for (size_t pos = S->lo; pos < S->hi; pos++) {
        const struct os_vars *s = &S->G->queue[pos];
        bool ok;
        if (!os_checker_at(&k, &S->c, s, S->v->why, sizeof S->v->why)) {
            S->v->found = true;
            S->v->check = OS_CHECK_WELL_FORMED;
            ok = false;
        } else {
            ok = expand(S, s, S->G->qidx[pos], &k);
        }
        os_checker_fini(&k);
        if (!ok) {
            S->failed = true, S->failed_at = pos;
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    struct search *S = arg;
    struct pool *P = S->pool;
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&P->lock);
        while (P->gen == seen && !P->quit)
            pthread_cond_wait(&P->go, &P->lock);
        seen = P->gen;
        bool quit = P->quit;
        pthread_mutex_unlock(&P->lock);
        if (quit)
            return NULL;
        work(S);
        pthread_mutex_lock(&P->lock);
        if (!--P->pending)
            pthread_cond_signal(&P->done);
        pthread_mutex_unlock(&P->lock);
    }
}

/* One batch: every worker's part, the main thread's (worker 0) included. */
static void run_batch(struct pool *P, struct search *W)
{
    pthread_mutex_lock(&P->lock);
    P->gen++;
    P->pending = P->nth;
    pthread_cond_broadcast(&P->go);
    pthread_mutex_unlock(&P->lock);
    work(&W[0]);
    pthread_mutex_lock(&P->lock);
    while (P->pending)
        pthread_cond_wait(&P->done, &P->lock);
    pthread_mutex_unlock(&P->lock);
}

/* The main thread, between batches: the states the workers found, in worker order (so in the
 * order one thread would have found them), each kept if no earlier one had its key. */
static bool merge(struct store *G, struct search *W, unsigned nw, const struct check_config *cfg, bool *bounded)
{
    bool ok = true;
    for (unsigned w = 0; w < nw; w++) {
        struct search *S = &W[w];
        for (size_t i = 0; i < S->nout; i++) {
            struct found *f = &S->out[i];
            bool keep = ok && G->nstates < cfg->max_states && hset_add(&G->seen, f->key);
            if (ok && G->nstates >= cfg->max_states)
                *bounded = true;
            uint32_t parent = f->parent, depth = G->nodes[f->parent].depth;
            for (unsigned j = 0; keep && j < f->n; j++) {
                keep = ok = push_node(G, parent, depth + j + 1, &f->chain[j]);
                parent = (uint32_t)(G->nnodes - 1);
            }
            if (keep && enqueue(G, &f->state, parent))
                G->nstates++; /* the queue owns it */
            else
                os_vars_fini(&f->state), ok = ok && !keep;
            free(f->chain);
        }
        S->nout = 0;
        for (size_t j = 0; j < S->local_probed.cap; j++)
            if (S->local_probed.v[j])
                hset_add(&G->probed, S->local_probed.v[j]);
        hset_clear(&S->local_probed);
        hset_clear(&S->local);
    }
    return ok;
}

/* How many workers: cfg->jobs, or one per online CPU (at most JOBS_MAX). */
static unsigned jobs(const struct check_config *cfg)
{
    long n = cfg->jobs ? (long)cfg->jobs : sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > JOBS_MAX ? JOBS_MAX : (unsigned)n;
}

/* A worker's own consts, library and scratch. */
static bool worker_init(struct search *S, const struct check_config *cfg, struct store *G, struct pool *P)
{
    memset(S, 0, sizeof *S);
    S->cfg = cfg, S->G = G, S->pool = P, S->v = &S->vbuf;
    S->lib = ptlib_new(cfg->pt_frames, cfg->seed);
    if (!S->lib)
        return false;
    check_consts(cfg, &S->c, ptlib_impl(S->lib));
    S->lazy = cfg->mmu_walks == 1 && !cfg->no_lazy;
    S->symmetric = !cfg->no_symmetry && os_ncores(&S->c) == 2 && S->c.ULT_no == 2 &&
                   os_core_index(&S->c, S->c.ULT2core[0]) == 0 && os_core_index(&S->c, S->c.ULT2core[1]) == 1;
    if (S->lazy) {
        S->plans = calloc((size_t)os_ncores(&S->c) * PLANS_MAX, sizeof *S->plans);
        S->nplans = calloc(os_ncores(&S->c), sizeof *S->nplans);
        if (!S->plans || !S->nplans)
            return false;
    }
    /* the library's handle learns its root from the initial table it builds */
    struct os_vars s0;
    if (!os_init(&S->c, &s0))
        return false;
    os_vars_fini(&s0);
    return true;
}

static void worker_fini(struct search *S)
{
    for (size_t i = 0; i < S->nout; i++) {
        os_vars_fini(&S->out[i].state);
        free(S->out[i].chain);
    }
    free(S->out);
    free(S->local.v);
    free(S->local_probed.v);
    free(S->plans);
    free(S->nplans);
    trace_free(&S->v->trace);
    ptlib_free(S->lib);
}

int check_exhaustive_visit(const struct check_config *cfg, check_visit_fn *visit, void *arg, uint64_t *states,
                           bool *complete, struct violation *v, double *seconds)
{
    struct store G;
    struct pool P;
    struct search W[JOBS_MAX];
    unsigned nw = jobs(cfg), ready = 0;
    bool bounded = false;
    memset(&G, 0, sizeof G);
    memset(&P, 0, sizeof P);
    memset(v, 0, sizeof *v);
    G.visit = visit, G.visit_arg = arg;
    double t0 = now();
    int rc = 2;
    struct os_vars s0;
    struct os_checker k;
    pthread_mutex_init(&P.lock, NULL);
    pthread_cond_init(&P.go, NULL);
    pthread_cond_init(&P.done, NULL);
    for (; ready < nw; ready++)
        if (!worker_init(&W[ready], cfg, &G, &P))
            goto out;
    G.c = &W[0].c;
    if (!os_init(&W[0].c, &s0))
        goto out;
    if (!os_checker_init(&k, &W[0].c, &s0, &v->check, v->why, sizeof v->why)) {
        v->found = true;
        os_checker_fini(&k);
        os_vars_fini(&s0);
        rc = 1;
        goto out;
    }
    os_checker_fini(&k);
    hset_add(&G.seen, state_key(&W[0], &s0));
    if (!push_node(&G, 0, 0, NULL) || !enqueue(&G, &s0, 0))
        goto out;
    G.nstates = 1;
    for (; P.nth + 1 < nw; P.nth++)
        if (pthread_create(&P.th[P.nth], NULL, worker_main, &W[P.nth + 1]))
            break;
    nw = P.nth + 1; /* fewer threads than asked: fewer workers */
    bool ok = true;
    uint32_t level = 0;
    bool show_progress = cfg->progress && isatty(2); /* not into logs: tests run it many times */
    while (ok && G.qhead < G.qtail && G.nstates < cfg->max_states) { /* at the bound: stop, not drain */
        if (show_progress && G.nodes[G.qidx[G.qhead]].depth > level) { /* the frontier's growth shows how far it is */
            level = G.nodes[G.qidx[G.qhead]].depth;
            fprintf(stderr, "exhaustive: depth %u, %zu states, %zu queued, %.0f s\n", level, G.nstates,
                    G.qtail - G.qhead, now() - t0);
        }
        size_t n = G.qtail - G.qhead < BATCH ? G.qtail - G.qhead : BATCH;
        for (unsigned w = 0; w < nw; w++)
            W[w].lo = G.qhead + n * w / nw, W[w].hi = G.qhead + n * (w + 1) / nw;
        run_batch(&P, W);
        int first = -1; /* the failure one thread would have met first */
        for (unsigned w = 0; w < nw; w++) {
            bounded |= W[w].bounded;
            if (W[w].failed && (first < 0 || W[w].failed_at < W[first].failed_at))
                first = (int)w;
        }
        if (first >= 0) {
            ok = false;
            if (W[first].v->found) {
                *v = *W[first].v; /* the trace moves to the caller */
                memset(&W[first].v->trace, 0, sizeof W[first].v->trace);
            }
        } else {
            ok = merge(&G, W, nw, cfg, &bounded);
        }
        for (size_t i = 0; i < n; i++)
            os_vars_fini(&G.queue[G.qhead++]);
    }
    rc = v->found ? 1 : (ok ? 0 : 2);
    if (G.qhead < G.qtail)
        bounded = true;
    while (G.qhead < G.qtail)
        os_vars_fini(&G.queue[G.qhead++]);
out:
    pthread_mutex_lock(&P.lock);
    P.quit = true;
    pthread_cond_broadcast(&P.go);
    pthread_mutex_unlock(&P.lock);
    for (unsigned i = 0; i < P.nth; i++)
        pthread_join(P.th[i], NULL);
    pthread_cond_destroy(&P.go);
    pthread_cond_destroy(&P.done);
    pthread_mutex_destroy(&P.lock);
    *states = G.nstates;
    *complete = !bounded && rc == 0;
    *seconds = now() - t0;
    free(G.nodes);
    free(G.steps);
    free(G.queue);
    free(G.qidx);
    free(G.seen.v);
    free(G.probed.v);
    hw_frame_set_fini(&G.frames);
    for (unsigned w = 0; w < ready; w++)
        worker_fini(&W[w]);
    return rc;
}
