/*
 * Model benchmark, `make bench` format `<workload> <median> ns/op`, median of 7 runs:
 *   walk         one page walk (hw_pt_walk) on a table of 1 M 4 KiB mappings built by the
 *                library, every mapped page once in address order, as a checker sweeping the
 *                table does (target <= 20 ns)
 *   walk_random  the same in a pseudo-random page order: mostly cache misses on the 8 MiB of
 *                tables, so it measures the machine's memory latency more than the walk
 *   interp_1m  one whole interpretation (hw_interp_pt_mem) of that table (target <= 50 ms)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hardware.h"
#include "physmem.h"
#include "x86pt/x86pt.h"

#define PAGES (1u << 20)
#define RUNS 7
#define VA_BASE UINT64_C(0x7f0000000000)

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v)
{
    qsort(v, RUNS, sizeof *v, cmp_double);
    return v[RUNS / 2];
}

/* Walk PAGES addresses; index i -> page (i * stride) mod PAGES (stride odd: a permutation). */
static double walk_run(const struct hw_pt_view *pt, uint64_t stride)
{
    uint64_t sink = 0;
    struct hw_walk w;
    double t0 = now_ns();
    for (uint64_t i = 0; i < PAGES; i++) {
        uint64_t page = (i * stride) & (PAGES - 1);
        hw_pt_walk(pt, VA_BASE + page * 4096 + 8, &w);
        sink += w.pte.frame.base;
    }
    double t = (now_ns() - t0) / PAGES;
    if (sink != (uint64_t)PAGES * (PAGES - 1) / 2 * 4096) {
        fprintf(stderr, "bench_model: walk found wrong frames\n");
        exit(1);
    }
    return t;
}

int main(void)
{
    struct sim_phys s;
    if (!sim_phys_init(&s, 32u << 20, 1)) {
        fprintf(stderr, "bench_model: no memory\n");
        return 1;
    }
    struct x86pt_mem mem = sim_phys_mem(&s);
    struct x86pt pt;
    if (x86pt_init(&pt, &mem, 40) != X86PT_OK)
        return 1;
    for (uint64_t i = 0; i < PAGES; i++)
        if (x86pt_map(&pt, x86pt_va(VA_BASE + i * 4096), x86pt_pa(i * 4096), 4096,
                      X86PT_WRITABLE | X86PT_USER, NULL) != X86PT_OK) {
            fprintf(stderr, "bench_model: map failed\n");
            return 1;
        }
    struct hw_pt_view view = { hw_mem_view_flat(s.mem, s.bytes), x86pt_root(&pt).pa, 40 };
    double v[RUNS];
    for (int r = 0; r < RUNS; r++)
        v[r] = walk_run(&view, 1);
    printf("walk %.2f ns/op\n", median(v));
    for (int r = 0; r < RUNS; r++)
        v[r] = walk_run(&view, UINT64_C(0x9e3779b9) | 1);
    printf("walk_random %.2f ns/op\n", median(v));
    struct hw_interp in = { 0 };
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        enum hw_interp_status st = hw_interp_pt_mem(&view, &in, NULL);
        v[r] = now_ns() - t0;
        if (st != HW_INTERP_OK || in.len != PAGES) {
            fprintf(stderr, "bench_model: interp found %zu mappings\n", in.len);
            return 1;
        }
    }
    printf("interp_1m %.0f ns/op\n", median(v));
    hw_interp_fini(&in);
    x86pt_destroy(&pt);
    sim_phys_fini(&s);
    return 0;
}
