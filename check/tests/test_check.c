/* The checker end to end: short random and small exhaustive runs hold; a deliberately wrong
 * write sequence is caught with a readable trace; same seed, same output; shards combine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#include "check.h"
#include "ptlib.h"

#define K4 UINT64_C(0x1000)
#define M2 UINT64_C(0x200000)

/* A short random run of the default configuration: refinement holds. */
static void random_run_holds(void **st)
{
    (void)st;
    struct check_config cfg;
    struct check_stats s;
    struct violation v;
    check_config_default(&cfg);
    cfg.steps = 50000;
    cfg.progress = false;
    memset(&s, 0, sizeof s);
    assert_int_equal(check_random(&cfg, &s, &v), 0);
    assert_false(v.found);
    assert_true(s.steps > 49000);
    assert_true(s.ops_ok[0] > 0 && s.ops_ok[1] > 0 && s.ops_ok[2] > 0 && s.shootdowns > 0);
    assert_true(s.nomem > 0 && s.nomem == s.allocs_refused); /* every refusal ends in X86PT_E_NOMEM */
}

/* One exhaustive run and what it reports. */
struct exhaustive_run {
    struct violation v;
    uint64_t states;
    bool complete;
    double secs;
};

/* check_exhaustive_visit into r; returns its status. */
static int run_exhaustive(const struct check_config *cfg, check_visit_fn *visit, void *arg, struct exhaustive_run *r)
{
    return check_exhaustive_visit(cfg, visit, arg, &r->states, &r->complete, &r->v, &r->secs);
}

/* A small exhaustive run (2 cores, 2 threads, 2 vaddrs, 2 sizes, no protect) is complete and holds. */
static void exhaustive_small_holds(void **st)
{
    (void)st;
#if !SANITIZED /* 106,216 states, 5 s here and a minute under the sanitizers, whose search is
                  exercised by the other exhaustive tests: the other builds run it (CI time) */
    struct check_config cfg;
    struct exhaustive_run r;
    check_config_small(&cfg);
    cfg.protect = false;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r), 0);
    assert_true(r.complete);
    assert_true(r.states > 1000);
#endif
}

/* The states of a search, each without its walks in flight, without the cached entries a walk
 * from CR3 would fill now setting no A bit, without the TLB entries a walk from CR3 would fill
 * now (A and D aside), and with every A bit clear, as a sorted set of hashes. */
struct projection {
    uint64_t *h;
    size_t n, cap;
};

static void projection_add(struct projection *p, uint64_t h)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 4096;
        p->h = realloc(p->h, p->cap * sizeof *p->h);
        assert_non_null(p->h);
    }
    p->h[p->n++] = h;
}

static void project(void *arg, const struct os_consts *c, const struct os_vars *s)
{
    struct projection *p = arg;
    struct os_vars t;
    assert_true(os_vars_copy(&t, s));
    for (unsigned i = 0; i < os_ncores(c); i++) {
        struct hw_mmu_core *m = hw_core_mmu(&c->hw, &t.hw, os_core_of(c, i));
        if (!m)
            continue;
        m->nwalks = 0;
        for (unsigned l = 0; l < HW_PSCACHE_LEVELS; l++)
            for (unsigned e = m->npscache[l]; e-- > 0;) {
                const struct hw_pscache_entry *p = &m->pscache[l][e];
                if (hw_mmu_path_current(&c->hw, &s->hw, os_core_of(c, i), p->key << (39 - 9 * l), l, p->table,
                                        p->rights))
                    hw_pscache_remove(m, l, e);
            }
    }
    for (unsigned i = 0; i < os_ncores(c); i++) {
        struct hw_core core = os_core_of(c, i);
        struct hw_tlb *tlb = hw_core_tlb(&c->hw, &t.hw, core);
        for (uint32_t e = tlb->len; e-- > 0;)
            if (hw_mmu_tlb_current(&c->hw, &s->hw, core, &tlb->entries[e], true))
                hw_tlb_remove(tlb, tlb->entries[e].base);
    }
    for (uint64_t pa = 0; pa < hw_pmem_bytes(&t.hw.global_pt.mem); pa += 8) {
        if (!t.hw.global_pt.mem.frames[pa / HW_PAGE_SIZE]) { /* a zero frame */
            pa += HW_PAGE_SIZE - 8;
            continue;
        }
        uint64_t w = hw_pmem_read(&t.hw.global_pt.mem, pa);
        if (w & (HW_BIT_A | HW_BIT_D))
            assert_true(hw_pmem_write(&t.hw.global_pt.mem, pa, w & ~(HW_BIT_A | HW_BIT_D)));
    }
    projection_add(p, os_vars_hash(&t));
    os_vars_fini(&t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sorted_set(struct projection *p)
{
    qsort(p->h, p->n, sizeof *p->h, cmp_u64);
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!n || p->h[n - 1] != p->h[i])
            p->h[n++] = p->h[i];
    return p->n = n;
}

/* Full and lazy searches of cfg reach the same states up to walks in flight and A bits, the
 * lazy one with fewer than half as many states. */
static void lazy_matches_full(struct check_config *cfg)
{
    struct projection full = { 0 }, lazy = { 0 };
    struct exhaustive_run rf, rl;
    cfg->no_symmetry = true; /* each search would keep its own state of a swap class */
    cfg->no_lazy = true;
    assert_int_equal(run_exhaustive(cfg, project, &full, &rf), 0);
    assert_true(rf.complete);
    cfg->no_lazy = false;
    assert_int_equal(run_exhaustive(cfg, project, &lazy, &rl), 0);
    assert_true(rl.complete);
    assert_true(rl.states < rf.states / 2);
    assert_true(sorted_set(&full) > 100);
    assert_int_equal(sorted_set(&lazy), full.n);
    assert_memory_equal(lazy.h, full.h, full.n * sizeof *full.h);
    free(full.h);
    free(lazy.h);
}

/* Lazy walks (exhaustive.c) are a reduction, not a restriction: on configurations where the
 * full enumeration of walk steps completes, both searches reach the same states once walks in
 * flight and A bits are set aside (the reads lazy walks drop would only have set A bits, and a
 * walk or cached entry they end early is one a fresh walk replays, and a stale walk it turns
 * into cache entries is a state the full search reaches with a fill and an abort; the test
 * fails when walk_to_cache ends the walk without caching it). Map, unmap and protect of
 * a 4 KiB page at 0 with A/D on: two cores with a thread each and no paging-structure caches;
 * one core with caches (its own walks and caches race its operations and its invalidations). */
static void lazy_walks_reach_every_state(void **st)
{
    (void)st;
    struct check_config cfg;
    check_config_small(&cfg);
    cfg.progress = false;
    cfg.mmu_walks = 1;
    cfg.nvaddrs = cfg.nframes = cfg.nsizes = 1;
    cfg.mmu_sbuf = 0;
    cfg.alloc_fail = 0;
    /* a test-and-clear's `was` reads the A bits lazy walks set later than full ones: both are
     * runs the hardware allows, but they are different states (the comparison is of states) */
    cfg.harvest = false;
    lazy_matches_full(&cfg);
    cfg.cores = cfg.threads = 1;
    cfg.mmu_pscache = 1;
    lazy_matches_full(&cfg);
#if !SANITIZED /* a state-space comparison, a minute under sanitizers: the other builds run it */
    check_config_small(&cfg); /* two addresses, 4 KiB and 2 MiB pages: where lazy A/D counts */
    cfg.progress = false;
    cfg.mmu_walks = 1;
    cfg.nframes = 1;
    cfg.mmu_sbuf = 0;
    cfg.alloc_fail = 0;
    cfg.bad_calls = false;
    cfg.protect = false;
    lazy_matches_full(&cfg);
#endif
}

/* The states of a search as a sorted set of symmetry classes: each state's hash taken with the
 * two cores (and their threads) swapped, and without; the smaller. Each state's swapped hash
 * is also checked against the hash of the swapped state built in full (os_vars_permute). */
static const unsigned swapped[16] = { 1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

static void project_class(void *arg, const struct os_consts *c, const struct os_vars *s)
{
    (void)c;
    struct projection *p = arg;
    struct os_vars t;
    assert_true(os_vars_permute(s, swapped, swapped, &t));
    uint64_t h = os_vars_hash(s), w = os_vars_hash_perm(s, swapped, swapped);
    assert_true(w == os_vars_hash(&t));
    os_vars_fini(&t);
    projection_add(p, w < h ? w : h);
}

/* Core symmetry (exhaustive.c state_key) is a reduction, not a restriction: with two cores
 * and a thread on each, the search that keeps one state per swap class reaches every class
 * the search without it reaches, with about half the states (map, unmap and protect of a
 * 4 KiB page at 0, A/D, non-atomic walks, every flag combination). */
static void core_symmetry_reaches_every_class(void **st)
{
    (void)st;
    struct check_config cfg;
    struct projection all = { 0 }, sym = { 0 };
    struct exhaustive_run ra, rs;
    check_config_small_hw(&cfg);
    cfg.progress = false;
    cfg.mmu_pscache = 0;
    cfg.no_symmetry = true;
    assert_int_equal(run_exhaustive(&cfg, project_class, &all, &ra), 0);
    assert_true(ra.complete);
    cfg.no_symmetry = false;
    assert_int_equal(run_exhaustive(&cfg, project_class, &sym, &rs), 0);
    assert_true(rs.complete);
    assert_true(rs.states < ra.states * 6 / 10);
    assert_true(sorted_set(&all) > 100);
    assert_int_equal(sorted_set(&sym), all.n);
    assert_memory_equal(sym.h, all.h, all.n * sizeof *all.h);
    free(all.h);
    free(sym.h);
}

/* The exhaustive search's workers (--jobs) find what one thread finds: the same states, and the
 * same first violation with the same trace (exhaustive.c merges their parts in queue order). */
static void workers_search_as_one_thread(void **st)
{
    (void)st;
    struct check_config cfg;
    struct exhaustive_run r1, r3;
    check_config_small_hw(&cfg);
    cfg.progress = false;
    cfg.mmu_pscache = 0;
    cfg.jobs = 1;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r1), 0);
    cfg.jobs = 3;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r3), 0);
    assert_true(r1.complete && r3.complete);
    assert_true(r1.states == r3.states);
    cfg.mmu_pscache = 1;
    cfg.free_early = true;
    cfg.jobs = 1;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r1), 1);
    cfg.jobs = 3;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r3), 1);
    assert_int_equal(r1.v.check, r3.v.check);
    assert_int_equal(r1.v.trace.n, r3.v.trace.n);
    for (size_t i = 0; i < r1.v.trace.n; i++)
        assert_memory_equal(&r1.v.trace.v[i].st, &r3.v.trace.v[i].st, sizeof r1.v.trace.v[i].st);
    trace_free(&r1.v.trace);
    trace_free(&r3.v.trace);
}

/* exhaustive --hw finds the kernel that gives a freed directory back before its shootdown
 * (mutant 101): a walk read the entry that pointed to it, the frame is reused, and the walk
 * fills a translation the table never had. */
static void exhaustive_hw_catches_early_free(void **st)
{
    (void)st;
    struct check_config cfg;
    struct exhaustive_run r;
    check_config_small_hw(&cfg);
    cfg.progress = false;
    cfg.free_early = true;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r), 1);
    assert_true(r.v.found);
    assert_int_equal(r.v.check, OS_CHECK_OS_INVARIANT);
    bool frame_reuse = false, walk_fill = false;
    for (size_t i = 0; i < r.v.trace.n; i++) {
        const struct os_step *t = &r.v.trace.v[i].st;
        frame_reuse |= t->kind == OS_STEP_FRAME_REUSE;
        walk_fill |= t->kind == OS_STEP_HW && t->hw.kind == HW_STEP_WALK_TLB_FILL;
    }
    assert_true(frame_reuse && walk_fill);
    trace_free(&r.v.trace);
}

/* exhaustive --hw-full, the hostile hardware whole (non-atomic walks, paging-structure caches,
 * store buffers, A/D; two addresses, one inside a 2 MiB page; both sizes; every flag
 * combination), is complete on the real library and holds; with the shootdown IPI sent before
 * the store buffer drained (mutant 103) it is not. */
static void exhaustive_hw_full_holds(void **st)
{
    (void)st;
#if !SANITIZED && !defined(__clang__) /* two and a half minutes here, ten under sanitizers: the
                                          gcc build runs it (CI runs both compilers; the clang
                                          build's searches are the same code, and same_run_*
                                          compares the two) */
    struct check_config cfg;
    struct exhaustive_run r;
    check_config_hw_full(&cfg);
    cfg.progress = false;
    assert_true(cfg.mmu_walks && cfg.mmu_pscache && cfg.mmu_sbuf && cfg.ad && cfg.flags_all);
    assert_true(cfg.nvaddrs == 2 && cfg.nsizes == 2);
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r), 0);
    assert_true(r.complete);
    cfg.no_shootdown_fence = true;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r), 1);
    assert_int_equal(r.v.check, OS_CHECK_OS_INVARIANT);
    trace_free(&r.v.trace);
#endif
}

/* A wrong page-table component: its map's last store points the leaf at the wrong frame, and
 * its unmap_range links a split's new directory without RW (the only compare-exchange of an
 * unmap_range is the swap of a split). */
struct wrong {
    struct os_pt_impl impl;
    const struct os_pt_impl *inner;
};

static bool wrong_next(void *ctx, const struct os_consts *c, const struct os_pt_request *rq, const uint16_t *counts0,
                       uint64_t private0, const struct os_run_buf *run, unsigned done, struct os_lib_action *a,
                       struct os_lib_result *res, char *why, size_t len)
{
    struct wrong *w = ctx;
    const struct os_pt_impl *in = w->inner;
    if (!in->next(in->ctx, c, rq, counts0, private0, run, done, a, res, why, len))
        return false;
    if (rq->op == OS_PT_MAP && !rq->range && a->kind == OS_LIB_STORE) {
        struct os_lib_action after;
        struct os_lib_result r2;
        struct os_lib_action store = *a;
        if (!in->next(in->ctx, c, rq, counts0, private0, run, done + 1, &after, &r2, why, len))
            return false;
        *a = store;
        if (after.kind == OS_LIB_RETURN)
            a->value += K4;
    }
    if (rq->range && rq->op == OS_PT_UNMAP && a->kind == OS_LIB_CAS)
        a->value &= ~UINT64_C(2);
    return true;
}

static bool wrong_init(void *ctx, const struct os_consts *c, struct hw_pmem *pt, uint16_t *counts, uint64_t *root)
{
    struct wrong *w = ctx;
    return w->inner->init(w->inner->ctx, c, pt, counts, root);
}

/* Apply steps in order, skipping disabled ones, until the checker objects. */
/* Take one step, checked; a step that waits for a store buffer (a barrier, a locked
 * instruction, the kernel lock) gets the Writeback steps it waits for first. A step that is
 * still disabled is skipped. */
static void take(const struct os_consts *c, struct os_vars *s, struct os_checker *k, const struct os_step *step,
                 struct violation *v)
{
    for (;;) {
        struct os_vars s2;
        struct os_delta d;
        struct os_step st = *step;
        char why[512];
        enum os_step_status r = os_next_step(c, s, &st, &s2, &d, why, sizeof why);
        int w = os_sbuf_writer(c, s);
        if (r == OS_STEP_DISABLED && w >= 0) {
            struct os_step wb;
            memset(&wb, 0, sizeof wb);
            wb.kind = OS_STEP_HW;
            wb.hw.kind = HW_STEP_WRITEBACK;
            wb.hw.core = os_core_of(c, (unsigned)w);
            take(c, s, k, &wb, v);
            if (v->found)
                return;
            continue;
        }
        if (r == OS_STEP_DISABLED)
            return;
        if (r == OS_STEP_VIOLATION) {
            v->found = true;
            v->check = os_check_of_step(&st);
            snprintf(v->why, sizeof v->why, "%s", why);
            return;
        }
        assert_int_equal(r, OS_STEP_OK);
        trace_push(&v->trace, &st);
        if (!os_checker_step(k, s, &s2, &st, &d, &v->check, v->why, sizeof v->why))
            v->found = true;
        os_vars_fini(s);
        *s = s2;
        return;
    }
}

static void drive(const struct os_consts *c, struct os_vars *s, struct os_checker *k, const struct os_step *steps,
                  size_t n, struct violation *v)
{
    for (size_t i = 0; i < n && !v->found; i++)
        take(c, s, k, &steps[i], v);
}

/* The OS model over impl, driven step by step by a test (drive), with its checker. */
struct driven {
    struct os_consts c;
    struct os_vars s;
    struct os_checker k;
    struct violation v;
};

static void driven_start(struct driven *d, const struct check_config *cfg, const struct os_pt_impl *impl)
{
    check_consts(cfg, &d->c, impl);
    memset(&d->v, 0, sizeof d->v);
    assert_true(os_init(&d->c, &d->s));
    assert_true(os_checker_init(&d->k, &d->c, &d->s, &d->v.check, d->v.why, sizeof d->v.why));
}

/* Frees all but the verdict (d->v.found, .check, .why). */
static void driven_end(struct driven *d)
{
    trace_free(&d->v.trace);
    os_checker_fini(&d->k);
    os_vars_fini(&d->s);
}

static void wrong_write_is_caught(void **st)
{
    (void)st;
    struct check_config cfg;
    check_config_default(&cfg);
    struct ptlib *lib = ptlib_new(cfg.pt_frames, 1);
    struct wrong w = { { NULL, wrong_next, wrong_init }, ptlib_impl(lib) };
    w.impl.ctx = &w;
    struct driven d;
    driven_start(&d, &cfg, &w.impl);
    struct os_step steps[12];
    memset(steps, 0, sizeof steps);
    steps[0].kind = OS_STEP_MAP_START;
    steps[0].vaddr = K4;
    steps[0].pte.frame.base = 2 * K4;
    steps[0].pte.frame.size = K4;
    steps[0].pte.flags.is_writable = true;
    steps[1].kind = OS_STEP_MAP_OP_START;
    for (int i = 2; i < 11; i++) /* the walk's loads and the links of new directories */
        steps[i].kind = OS_STEP_VIEW_STUTTER;
    steps[11].kind = OS_STEP_MAP_END;
    drive(&d.c, &d.s, &d.k, steps, 12, &d.v);
    assert_true(d.v.found);
    /* caught at MapEnd, the store that changes the view */
    assert_int_equal(d.v.trace.v[d.v.trace.n - 1].st.kind, OS_STEP_MAP_END);
    assert_int_equal(d.v.check, OS_CHECK_WRITE_DISCIPLINE);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    check_print_trace(f, &cfg, &d.v);
    fclose(f);
    assert_non_null(strstr(buf, "MapStart 0x1000 -> frame 0x2000"));
    assert_non_null(strstr(buf, "MapEnd: store"));
    assert_non_null(strstr(buf, "FAILED write discipline"));
    free(buf);
    driven_end(&d);
    ptlib_free(lib);
}

/* The range workload: short random runs hold, and among a few seeds' runs every range
 * operation completes both ways (Ok and Err), with splits among the stores. The seeds are
 * searched rather than one fixed: a straddle is rare, and which seed shows one moves with
 * every change to the generator. */
static void random_ranges_hold(void **st)
{
    (void)st;
    struct check_config cfg;
    struct check_stats sum;
    check_config_ranges(&cfg);
    cfg.steps = 100000;
    cfg.progress = false;
    memset(&sum, 0, sizeof sum);
    bool all_seen = false;
    for (uint64_t seed = 1; seed <= 8 && !all_seen; seed++) {
        struct check_stats s;
        struct violation v;
        cfg.seed = seed;
        memset(&s, 0, sizeof s);
        assert_int_equal(check_random(&cfg, &s, &v), 0);
        assert_false(v.found);
        trace_free(&v.trace);
        for (int i = 3; i < 6; i++) {
            sum.ops_ok[i] += s.ops_ok[i];
            sum.ops_err[i] += s.ops_err[i];
        }
        sum.range_stores += s.range_stores;
        sum.splits += s.splits;
        sum.shootdowns += s.shootdowns;
        all_seen = sum.range_stores > 1000 && sum.splits > 0 && sum.shootdowns > 0;
        for (int i = 3; i < 6; i++)
            all_seen = all_seen && sum.ops_ok[i] > 0 && sum.ops_err[i] > 0;
    }
    assert_true(all_seen);
}

/* The small exhaustive configuration with ranges (a 2 MiB page, a map/unmap/protect range
 * across its end) holds over its first 10000 states (x86pt check exhaustive --ranges: all). */
static void exhaustive_ranges_hold(void **st)
{
    (void)st;
    struct check_config cfg;
    struct exhaustive_run r;
    check_config_small_ranges(&cfg);
    cfg.max_states = 10000;
    assert_int_equal(run_exhaustive(&cfg, NULL, NULL, &r), 0);
    assert_true(r.states >= 10000);
    print_message("exhaustive --ranges: %llu states in %.1f s\n", (unsigned long long)r.states, r.secs);
    trace_free(&r.v.trace);
}

/* A wrong range write sequence: an unmap_range that splits a 2 MiB page links the new
 * directory without RW. The linking store takes write permission from 512 pages: the write
 * discipline catches it at that store, and the trace says so. */
static void wrong_range_write_is_caught(void **st)
{
    (void)st;
    struct check_config cfg;
    check_config_ranges(&cfg);
    struct ptlib *lib = ptlib_new(cfg.pt_frames, 1);
    struct wrong w = { { NULL, wrong_next, wrong_init }, ptlib_impl(lib) };
    w.impl.ctx = &w;
    struct driven d;
    driven_start(&d, &cfg, &w.impl);
    struct os_step steps[40];
    memset(steps, 0, sizeof steps);
    steps[0].kind = OS_STEP_MAP_RANGE_START; /* one 2 MiB page at 0 */
    steps[0].length = 0x200000;
    steps[0].flags.is_writable = true;
    steps[1].kind = OS_STEP_MAP_OP_START;
    for (int i = 2; i < 12; i++)
        steps[i].kind = OS_STEP_RANGE_STORE;
    steps[12].kind = OS_STEP_MAP_END;
    steps[13].kind = OS_STEP_UNMAP_RANGE_START; /* the last two 4 KiB of it, splitting */
    steps[13].vaddr = 0x1fe000;
    steps[13].length = 0x2000;
    steps[13].split = true;
    steps[14].kind = OS_STEP_UNMAP_OP_START;
    for (int i = 15; i < 40; i++)
        steps[i].kind = OS_STEP_RANGE_STORE;
    drive(&d.c, &d.s, &d.k, steps, 40, &d.v);
    assert_true(d.v.found);
    assert_int_equal(d.v.check, OS_CHECK_WRITE_DISCIPLINE);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    check_print_trace(f, &cfg, &d.v);
    fclose(f);
    assert_non_null(strstr(buf, "UnmapRangeStart [0x1fe000, 0x200000)"));
    assert_non_null(strstr(buf, "FAILED write discipline"));
    assert_non_null(strstr(buf, "unmap_range's store"));
    print_message("%s", buf);
    free(buf);
    driven_end(&d);
    ptlib_free(lib);
}

/* A scripted protect (x86pt's contract, the hardware's A/D bits): it loads the leaf, then
 * writes it back read-only with a plain store, or with a compare-exchange. */
struct scripted {
    struct os_pt_impl impl;
    const struct os_pt_impl *inner; /* everything but protect */
    uint64_t leaf_pa;
    bool use_cas;
};

static bool scripted_next(void *ctx, const struct os_consts *c, const struct os_pt_request *rq, const uint16_t *counts0,
                          uint64_t private0, const struct os_run_buf *run, unsigned done, struct os_lib_action *a,
                          struct os_lib_result *res, char *why, size_t len)
{
    struct scripted *x = ctx;
    if (rq->op != OS_PT_PROTECT)
        return x->inner->next(x->inner->ctx, c, rq, counts0, private0, run, done, a, res, why, len);
    memset(a, 0, sizeof *a);
    a->pa = x->leaf_pa;
    if (done == 0) {
        a->kind = OS_LIB_LOAD;
    } else if (done == 1) {
        a->kind = x->use_cas ? OS_LIB_CAS : OS_LIB_STORE;
        a->expected = run->resp[0];
        a->value = run->resp[0] & ~UINT64_C(2); /* RW off, every other bit as loaded */
    } else if (done == 2 && x->use_cas && run->resp[1] != run->resp[0]) {
        a->kind = OS_LIB_CAS; /* the entry changed: again, from what the exchange saw */
        a->expected = run->resp[1];
        a->value = run->resp[1] & ~UINT64_C(2);
    } else {
        a->kind = OS_LIB_RETURN;
        memset(res, 0, sizeof *res);
        res->ok = true;
        memcpy(res->counts, counts0, sizeof res->counts);
        res->private_state = private0;
        res->flush.lo = rq->vaddr;
        res->flush.hi = rq->vaddr + K4;
    }
    return true;
}

static bool scripted_init(void *ctx, const struct os_consts *c, struct hw_pmem *pt, uint16_t *counts, uint64_t *root)
{
    struct scripted *x = ctx;
    return x->inner->init(x->inner->ctx, c, pt, counts, root);
}

/* Map 0x1000 writable; protect it read-only while the MMU sets Dirty between the protect's
 * load and its store (late: after the store entered the store buffer, before it reaches
 * memory). Returns the check that failed (OS_CHECK_NONE: none). */
static enum os_check protect_racing_dirty(bool use_cas, bool late)
{
    struct check_config cfg;
    check_config_default(&cfg);
    struct ptlib *lib = ptlib_new(cfg.pt_frames, 1);
    struct scripted x = { { NULL, scripted_next, scripted_init }, ptlib_impl(lib), 0, use_cas };
    x.impl.ctx = &x;
    struct driven d;
    driven_start(&d, &cfg, &x.impl);
    struct os_step map[12];
    memset(map, 0, sizeof map);
    map[0].kind = OS_STEP_MAP_START;
    map[0].vaddr = K4;
    map[0].pte.frame.base = 2 * K4;
    map[0].pte.frame.size = K4;
    map[0].pte.flags.is_writable = true;
    map[1].kind = OS_STEP_MAP_OP_START;
    for (int i = 2; i < 11; i++)
        map[i].kind = OS_STEP_VIEW_STUTTER;
    map[11].kind = OS_STEP_MAP_END;
    drive(&d.c, &d.s, &d.k, map, 12, &d.v);
    assert_false(d.v.found);
    struct hw_pt_view view = hw_vars_pt_view(&d.c.hw, &d.s.hw);
    struct hw_walk w;
    assert_int_equal(hw_pt_walk(&view, K4, &w), HW_WALK_PAGE);
    x.leaf_pa = w.entry_pa[3];
    struct os_step prot[8];
    memset(prot, 0, sizeof prot);
    prot[0].kind = OS_STEP_PROTECT_START;
    prot[0].vaddr = K4;
    /* flags: read-only, user, executable: as mapped but for RW */
    prot[1].kind = OS_STEP_PROTECT_OP_START;
    prot[2].kind = OS_STEP_VIEW_STUTTER; /* load */
    prot[3].kind = OS_STEP_HW;           /* the MMU: a write through 0x1000 sets A and D */
    prot[3].hw.kind = HW_STEP_ACCESSED_DIRTY;
    prot[3].hw.vaddr = K4;
    prot[3].hw.is_write = true;
    prot[4].kind = OS_STEP_VIEW_STUTTER; /* store / cmpxchg */
    prot[5].kind = OS_STEP_VIEW_STUTTER; /* cmpxchg again */
    prot[6].kind = OS_STEP_HW;           /* the buffered store reaches memory */
    prot[6].hw.kind = HW_STEP_WRITEBACK;
    prot[6].hw.core = d.c.ULT2core[0];
    prot[7].kind = OS_STEP_PROTECT_OP_END;
    if (late) { /* the store first, then the MMU's update */
        struct os_step ad = prot[3];
        prot[3] = prot[4];
        prot[4] = ad;
    }
    drive(&d.c, &d.s, &d.k, prot, 8, &d.v);
    if (!d.v.found) { /* the leaf kept A and D */
        uint64_t leaf = hw_pmem_read(&d.s.hw.global_pt.mem, x.leaf_pa);
        assert_true((leaf & 0x60) == 0x60 && !(leaf & 2));
    }
    driven_end(&d);
    ptlib_free(lib);
    if (d.v.found)
        print_message("%s: %s\n", os_check_name(d.v.check), d.v.why);
    return d.v.found ? d.v.check : OS_CHECK_NONE;
}

/* A Dirty bit the MMU sets between a protect's load and its plain store is lost: caught by the
 * A/D check; with compare-exchange (retried on the changed entry) nothing is lost. */
static void plain_store_loses_dirty(void **st)
{
    (void)st;
    assert_int_equal(protect_racing_dirty(false, false), OS_CHECK_AD_LOST);
    assert_int_equal(protect_racing_dirty(true, false), OS_CHECK_NONE);
}

/* TSO: the plain store waits in the store buffer; the MMU sets Dirty in memory meanwhile; the
 * Writeback overwrites it: caught at the Writeback step. A locked cmpxchg goes to memory (its
 * buffer drained), so the MMU's later update lands on the new entry and stays. */
static void buffered_store_loses_dirty(void **st)
{
    (void)st;
    assert_int_equal(protect_racing_dirty(false, true), OS_CHECK_AD_LOST);
    assert_int_equal(protect_racing_dirty(true, true), OS_CHECK_NONE);
}

/* A library whose map, refused a frame, returns another error than X86PT_E_NOMEM */
static bool nomem_hidden_next(void *ctx, const struct os_consts *c, const struct os_pt_request *rq,
                              const uint16_t *counts0, uint64_t private0, const struct os_run_buf *run, unsigned done,
                              struct os_lib_action *a, struct os_lib_result *res, char *why, size_t len)
{
    struct wrong *w = ctx;
    if (!w->inner->next(w->inner->ctx, c, rq, counts0, private0, run, done, a, res, why, len))
        return false;
    if (a->kind == OS_LIB_RETURN)
        res->nomem = false;
    return true;
}

/* Map 0x1000 with the allocator refusing its n-th frame (the map needs three directories) on
 * impl; returns the check that failed. The table and the pool must be as before. */
static enum os_check map_refused(const struct os_pt_impl *impl, unsigned n, struct check_config *cfg)
{
    struct driven d;
    driven_start(&d, cfg, impl);
    unsigned free0 = os_pt_free_count(&d.c, &d.s);
    struct os_step map[4];
    memset(map, 0, sizeof map);
    map[0].kind = OS_STEP_MAP_START;
    map[0].vaddr = K4;
    map[0].pte.frame.base = 2 * K4;
    map[0].pte.frame.size = K4;
    map[1].kind = OS_STEP_MAP_OP_START;
    map[2].kind = OS_STEP_VIEW_STUTTER; /* the root's entry: empty */
    map[3].kind = OS_STEP_MAP_END;      /* the frames, the refusal, the frames given back, the return */
    map[3].fail_alloc = n;
    drive(&d.c, &d.s, &d.k, map, 4, &d.v);
    if (!d.v.found) {
        assert_int_equal(d.v.trace.n, 4);
        const struct os_step *end = &d.v.trace.v[3].st;
        assert_true(end->kind == OS_STEP_MAP_END && end->alloc_failed && end->nomem && !end->result_ok);
        assert_int_equal(end->nallocs, n);
        assert_int_equal(end->nfreed, n - 1);
        assert_int_equal(os_pt_free_count(&d.c, &d.s), free0);
        struct hw_pt_view view = hw_vars_pt_view(&d.c.hw, &d.s.hw);
        struct hw_walk w;
        assert_int_not_equal(hw_pt_walk(&view, K4, &w), HW_WALK_PAGE);
        assert_int_equal(d.s.core_states[0].kind, OS_IDLE);
    }
    driven_end(&d);
    if (d.v.found)
        print_message("%s: %s\n", os_check_name(d.v.check), d.v.why);
    return d.v.found ? d.v.check : OS_CHECK_NONE;
}

/* x86pt's extension (hlspec_nomem.c): the allocator refuses the first, second or third frame
 * a map asks for: X86PT_E_NOMEM, the table unchanged, every frame taken given back. A library
 * that reports another error is caught. */
static void refused_allocation_is_nomem(void **st)
{
    (void)st;
    struct check_config cfg;
    check_config_default(&cfg);
    struct ptlib *lib = ptlib_new(cfg.pt_frames, 1);
    for (unsigned n = 1; n <= 3; n++)
        assert_int_equal(map_refused(ptlib_impl(lib), n, &cfg), OS_CHECK_NONE);
    struct wrong w = { { NULL, nomem_hidden_next, wrong_init }, ptlib_impl(lib) };
    w.impl.ctx = &w;
    assert_int_equal(map_refused(&w.impl, 2, &cfg), OS_CHECK_WRITE_DISCIPLINE);
    ptlib_free(lib);
}

/* Map a 2 MiB page at 0, then unmap_range [0x1000, 0x2000) in split mode on impl with the
 * allocator refusing the one directory the split needs (hlspec.h: nomem, fixed at Start):
 * returns the check that failed. The table must still map 0x1000 through the 2 MiB page. */
static enum os_check split_refused(const struct os_pt_impl *impl, struct check_config *cfg)
{
    struct driven d;
    driven_start(&d, cfg, impl);
    struct os_step steps[16];
    memset(steps, 0, sizeof steps);
    steps[0].kind = OS_STEP_MAP_START;
    steps[0].pte.frame.size = M2;
    steps[0].pte.flags.is_writable = true;
    steps[1].kind = OS_STEP_MAP_OP_START;
    for (unsigned i = 2; i < 6; i++) /* its loads and stores; a step with none left is skipped */
        steps[i].kind = OS_STEP_VIEW_STUTTER;
    steps[6].kind = OS_STEP_MAP_END;
    steps[7].kind = OS_STEP_UNMAP_RANGE_START;
    steps[7].vaddr = K4;
    steps[7].length = K4;
    steps[7].split = true;
    steps[7].fail_alloc = 1;
    steps[8].kind = OS_STEP_UNMAP_OP_START;
    for (unsigned i = 9; i < 14; i++) /* pass 1 loads the PML4E, PDPTE and the 2 MiB PDE */
        steps[i].kind = OS_STEP_RANGE_STORE;
    steps[14].kind = OS_STEP_UNMAP_OP_END; /* the refusal, the return */
    steps[15].kind = OS_STEP_UNMAP_END;    /* no shootdown: nothing changed */
    drive(&d.c, &d.s, &d.k, steps, 16, &d.v);
    if (!d.v.found) {
        const struct os_step *end = &d.v.trace.v[d.v.trace.n - 1].st;
        assert_int_equal(end->kind, OS_STEP_UNMAP_END);
        assert_true(end->nomem && !end->result_ok);
        struct hw_pt_view view = hw_vars_pt_view(&d.c.hw, &d.s.hw);
        struct hw_walk w;
        assert_int_equal(hw_pt_walk(&view, K4, &w), HW_WALK_PAGE);
        assert_int_equal(w.pte.frame.size, M2);
        assert_int_equal(d.s.core_states[0].kind, OS_IDLE);
    }
    driven_end(&d);
    if (d.v.found)
        print_message("%s: %s\n", os_check_name(d.v.check), d.v.why);
    return d.v.found ? d.v.check : OS_CHECK_NONE;
}

/* x86pt's extension (hlspec.h: nomem): an unmap_range whose split the allocator refuses its
 * directory returns X86PT_E_NOMEM and changes nothing, in the table and in the abstract state;
 * a library that reports another error is caught. */
static void refused_split_is_nomem(void **st)
{
    (void)st;
    struct check_config cfg;
    check_config_default(&cfg);
    struct ptlib *lib = ptlib_new(cfg.pt_frames, 1);
    assert_int_equal(split_refused(ptlib_impl(lib), &cfg), OS_CHECK_NONE);
    struct wrong w = { { NULL, nomem_hidden_next, wrong_init }, ptlib_impl(lib) };
    w.impl.ctx = &w;
    assert_int_equal(split_refused(&w.impl, &cfg), OS_CHECK_WRITE_DISCIPLINE);
    ptlib_free(lib);
}

static void run_to(const struct check_config *cfg, struct check_stats *s, char **text)
{
    struct violation v;
    size_t len;
    FILE *f = open_memstream(text, &len);
    memset(s, 0, sizeof *s);
    check_random(cfg, s, &v);
    s->seconds = 0;
    check_print_shard_line(f, cfg, s);
    fclose(f);
}

/* The same seed gives the same run. */
static void same_seed_same_output(void **st)
{
    (void)st;
    struct check_config cfg;
    struct check_stats a, b;
    char *ta, *tb;
    check_config_default(&cfg);
    cfg.steps = 20000;
    cfg.seed = 42;
    cfg.progress = false;
    run_to(&cfg, &a, &ta);
    run_to(&cfg, &b, &tb);
    assert_string_equal(ta, tb);
    cfg.seed = 43;
    free(tb);
    run_to(&cfg, &b, &tb);
    assert_string_not_equal(ta, tb);
    free(ta);
    free(tb);
}

/* Shards 0/2 and 1/2 of 4 runs combine into the totals of the unsharded 4 runs. */
static void shards_combine(void **st)
{
    (void)st;
    struct check_config cfg;
    struct check_stats whole, s0, s1, sum;
    char *t, *t0, *t1;
    check_config_default(&cfg);
    cfg.steps = 5000;
    cfg.runs = 4;
    cfg.progress = false;
    run_to(&cfg, &whole, &t);
    cfg.shard_n = 2;
    run_to(&cfg, &s0, &t0);
    cfg.shard_i = 1;
    run_to(&cfg, &s1, &t1);
    memset(&sum, 0, sizeof sum);
    assert_true(check_parse_shard_line(t0, &sum));
    assert_true(check_parse_shard_line(t1, &sum));
    assert_int_equal(sum.runs, 4);
    assert_int_equal(sum.steps, whole.steps);
    assert_int_equal(sum.shootdowns, whole.shootdowns);
    assert_int_equal(sum.ops_ok[0], whole.ops_ok[0]);
    assert_int_equal(sum.page_faults, whole.page_faults);
    free(t);
    free(t0);
    free(t1);
}

/* Write text to a fresh temporary file; its path into path (PATH_MAX-free: 32 bytes). */
static void temp_with(char path[32], const char *text)
{
    snprintf(path, 32, "/tmp/x86pt-shard-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* combine sums exactly the shards 0..n-1 of one run and refuses anything else: a missing
 * shard (died), a shard given twice, a shard of another configuration or seed base, a line
 * cut off. */
static void shards_combine_refuses(void **st)
{
    (void)st;
    struct check_config cfg;
    struct check_stats s;
    char *t0, *t1, *tother, p0[32], p1[32], pother[32], pcut[32];
    check_config_default(&cfg);
    cfg.steps = 2000;
    cfg.runs = 2;
    cfg.progress = false;
    cfg.shard_n = 2;
    run_to(&cfg, &s, &t0);
    cfg.shard_i = 1;
    run_to(&cfg, &s, &t1);
    cfg.maxphyaddr = 36; /* another configuration */
    run_to(&cfg, &s, &tother);
    temp_with(p0, t0);
    temp_with(p1, t1);
    temp_with(pother, tother);
    char cut[64];
    snprintf(cut, sizeof cut, "%.60s\n", t1);
    temp_with(pcut, cut);
    FILE *out = fopen("/dev/null", "w"), *err = fopen("/dev/null", "w");
    char *ok[] = { p1, p0 }, *missing[] = { p0 }, *twice[] = { p0, p0, p1 }, *other[] = { p0, pother },
         *cutoff[] = { p0, pcut };
    assert_int_equal(check_combine(2, ok, out, err), 0);
    assert_int_equal(check_combine(1, missing, out, err), 2);
    assert_int_equal(check_combine(3, twice, out, err), 2);
    assert_int_equal(check_combine(2, other, out, err), 2);
    assert_int_equal(check_combine(2, cutoff, out, err), 2);
    fclose(out);
    fclose(err);
    unlink(p0), unlink(p1), unlink(pother), unlink(pcut);
    free(t0), free(t1), free(tother);
}

int main(int argc, char **argv)
{
    if (argc > 1) /* a test name pattern: run only those */
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_run_holds),      cmocka_unit_test(exhaustive_small_holds),
        cmocka_unit_test(lazy_walks_reach_every_state), cmocka_unit_test(core_symmetry_reaches_every_class),
        cmocka_unit_test(workers_search_as_one_thread), cmocka_unit_test(exhaustive_hw_catches_early_free),
        cmocka_unit_test(exhaustive_hw_full_holds),
        cmocka_unit_test(wrong_write_is_caught), cmocka_unit_test(same_seed_same_output),
        cmocka_unit_test(shards_combine),        cmocka_unit_test(shards_combine_refuses),        cmocka_unit_test(random_ranges_hold),
        cmocka_unit_test(exhaustive_ranges_hold), cmocka_unit_test(wrong_range_write_is_caught),
        cmocka_unit_test(plain_store_loses_dirty),
        cmocka_unit_test(buffered_store_loses_dirty),
        cmocka_unit_test(refused_allocation_is_nomem), cmocka_unit_test(refused_split_is_nomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
