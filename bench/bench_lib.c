/*
 * Library benchmark: one line per workload, `<workload> <median ns/op> ns/op`,
 * the median of RUNS runs (spread on a `#` line). Directories come from a
 * pre-faulted pool handed out by a free list, as a kernel's page allocator
 * would; no lock around the calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "physmem.h"

#define PAGES (1u << 20)
#define RUNS 7
#define BASE_VA 0x0000100000000000ull

enum phase { MAP, PROTECT, RESOLVE, UNMAP, PHASES };
static const char *const phase_names[PHASES] = {"map", "protect", "resolve", "unmap"};

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fail(const char *what)
{
    fprintf(stderr, "bench: %s failed\n", what);
    exit(1);
}

/* One run over all pages in the given order; ns/op per phase. */
static void run_once(struct sim_phys *s, const uint32_t *order, double ns[PHASES])
{
    struct x86pt pt;
    struct x86pt_mem mem = sim_phys_mem(s);
    struct x86pt_mapping m;
    uint64_t sink = 0;
    if (x86pt_init(&pt, &mem, 52) != X86PT_OK)
        fail("init");
    double t0 = now_ns();
    for (uint32_t i = 0; i < PAGES; i++)
        if (x86pt_map(&pt, x86pt_va(BASE_VA + ((uint64_t)order[i] << 12)), x86pt_pa((uint64_t)order[i] << 12),
                      X86PT_PAGE_4K, X86PT_WRITABLE, NULL) != X86PT_OK)
            fail("map");
    double t1 = now_ns();
    for (uint32_t i = 0; i < PAGES; i++)
        if (x86pt_protect(&pt, x86pt_va(BASE_VA + ((uint64_t)order[i] << 12)), X86PT_NO_EXECUTE, NULL) != X86PT_OK)
            fail("protect");
    double t2 = now_ns();
    for (uint32_t i = 0; i < PAGES; i++) {
        if (x86pt_resolve(&pt, x86pt_va(BASE_VA + ((uint64_t)order[i] << 12)), &m) != X86PT_OK)
            fail("resolve");
        sink += m.frame.pa;
    }
    double t3 = now_ns();
    for (uint32_t i = 0; i < PAGES; i++)
        if (x86pt_unmap(&pt, x86pt_va(BASE_VA + ((uint64_t)order[i] << 12)), NULL, NULL) != X86PT_OK)
            fail("unmap");
    double t4 = now_ns();
    if (s->live != 1 || sink != (uint64_t)PAGES * (PAGES - 1) / 2 * 4096)
        fail("post-condition");
    x86pt_destroy(&pt);
    ns[MAP] = (t1 - t0) / PAGES;
    ns[PROTECT] = (t2 - t1) / PAGES;
    ns[RESOLVE] = (t3 - t2) / PAGES;
    ns[UNMAP] = (t4 - t3) / PAGES;
}

static void report(struct sim_phys *s, const uint32_t *order, const char *suffix)
{
    double ns[RUNS][PHASES];
    for (int r = 0; r < RUNS; r++)
        run_once(s, order, ns[r]);
    for (int p = 0; p < PHASES; p++) {
        double v[RUNS];
        for (int r = 0; r < RUNS; r++)
            v[r] = ns[r][p];
        qsort(v, RUNS, sizeof v[0], cmp_double);
        printf("%s_4k_%s %.2f ns/op\n", phase_names[p], suffix, v[RUNS / 2]);
        printf("# %s_4k_%s min %.2f max %.2f over %d runs of %u ops\n", phase_names[p], suffix, v[0], v[RUNS - 1],
               RUNS, PAGES);
    }
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return v[n / 2];
}

static void print_median(const char *name, double *v, const char *unit_note)
{
    double lo, hi;
    double m = median(v, RUNS);
    lo = v[0], hi = v[RUNS - 1];
    printf("%s %.2f ns/op\n", name, m);
    printf("# %s min %.2f max %.2f over %d runs; op = %s\n", name, lo, hi, RUNS, unit_note);
}

/* Range workloads: 1 GiB in forced 4 KiB pages (per page), the same 1 GiB
 * with the largest pages (one 1 GiB page: per range), 64 GiB identity map. */
static void bench_ranges(struct sim_phys *s)
{
    double map4k[RUNS], unmap4k[RUNS], auto1g[RUNS], ident64[RUNS];
    const uint64_t pages = X86PT_PAGE_1G / X86PT_PAGE_4K;
    for (int r = 0; r < RUNS; r++) {
        struct x86pt pt;
        struct x86pt_mem mem = sim_phys_mem(s);
        if (x86pt_init(&pt, &mem, 52) != X86PT_OK)
            fail("init");
        double t0 = now_ns();
        if (x86pt_map_range(&pt, x86pt_va(BASE_VA), x86pt_pa(0), X86PT_PAGE_1G, X86PT_WRITABLE, X86PT_ONLY_4K, NULL) !=
            X86PT_OK)
            fail("map_range 4k");
        double t1 = now_ns();
        if (x86pt_unmap_range(&pt, x86pt_va(BASE_VA), X86PT_PAGE_1G, X86PT_STRADDLE_FAIL, NULL) != X86PT_OK ||
            s->live != 1)
            fail("unmap_range 4k");
        double t2 = now_ns();
        const int reps = 1000;
        for (int k = 0; k < reps; k++) {
            if (x86pt_map_range(&pt, x86pt_va(BASE_VA), x86pt_pa(0), X86PT_PAGE_1G, X86PT_WRITABLE, X86PT_LARGEST_FIT,
                                NULL) != X86PT_OK)
                fail("map_range auto");
            if (x86pt_unmap(&pt, x86pt_va(BASE_VA), NULL, NULL) != X86PT_OK)
                fail("unmap 1g");
        }
        double t3 = now_ns();
        for (int k = 0; k < reps; k++)
            if (x86pt_unmap(&pt, x86pt_va(BASE_VA), NULL, NULL) != X86PT_E_NOTMAPPED)
                fail("unmap baseline");
        double t4 = now_ns();
        if (x86pt_map_range(&pt, x86pt_va(0), x86pt_pa(0), 64 * X86PT_PAGE_1G, X86PT_WRITABLE, X86PT_LARGEST_FIT,
                            NULL) != X86PT_OK)
            fail("identity map");
        double t5 = now_ns();
        x86pt_destroy(&pt);
        map4k[r] = (t1 - t0) / (double)pages;
        unmap4k[r] = (t2 - t1) / (double)pages;
        /* minus the failing unmap's cost, which is no part of the map */
        auto1g[r] = ((t3 - t2) - (t4 - t3)) / reps;
        ident64[r] = t5 - t4;
    }
    print_median("map_range_1g_4k", map4k, "one 4 KiB page");
    print_median("unmap_range_1g_4k", unmap4k, "one 4 KiB page (reclaim included)");
    print_median("map_range_1g_auto", auto1g, "the whole 1 GiB range (plus its unmap)");
    print_median("identity_map_64g_auto", ident64, "the whole 64 GiB range");
}

int main(void)
{
    struct sim_phys s;
    if (!sim_phys_init(&s, 64ull << 20, 1))
        fail("sim_phys_init");
    memset(s.mem, 0, s.bytes); /* pre-fault the pool */
    s.trust_frees = true;      /* a kernel's free list does not scan what it gets back */
    uint32_t *order = malloc(PAGES * sizeof *order);
    if (!order)
        fail("malloc");
    for (uint32_t i = 0; i < PAGES; i++)
        order[i] = i;
    report(&s, order, "seq");
    uint64_t x = 42;
    for (uint32_t i = PAGES - 1; i > 0; i--) { /* Fisher-Yates with xorshift */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t j = (uint32_t)(x % (i + 1)), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    report(&s, order, "rand");
    bench_ranges(&s);
    free(order);
    sim_phys_fini(&s);
    return 0;
}
