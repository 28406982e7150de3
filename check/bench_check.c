/*
 * Checker benchmark, `make bench` format `<workload> <median> ns/op`, a `#` line with the spread:
 *   check_step              one fully checked random step of the default configuration
 *                           (2 NUMA nodes x 2 cores, 4 threads, the rl3 hardware on), median of
 *                           5 runs of 200k steps
 *   check_op                one fully checked library operation with everything interleaved
 *                           with it (the same runs: their time over the operations they ended)
 *   check_exhaustive_small  one whole exhaustive run of the small configuration (2 cores,
 *                           2 threads, 2 vaddrs, 2 sizes), with its state count
 *   check_exhaustive_hw     the same of `exhaustive --hw` (non-atomic walks, caches, A/D,
 *                           every flag combination; lazy walks)
 *   check_exhaustive_hw_full  the same of `exhaustive --hw-full` (all of that with store
 *                           buffers, two addresses and 4 KiB and 2 MiB pages)
 */
#include "check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define RUNS 5

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, double *v)
{
    qsort(v, RUNS, sizeof v[0], cmp);
    printf("%s %.0f ns/op\n# %s: min %.0f, max %.0f over %d runs\n", name, v[RUNS / 2], name, v[0], v[RUNS - 1],
           RUNS);
}

int main(void)
{
    struct check_config cfg;
    double step_ns[RUNS], op_ns[RUNS];
    check_config_default(&cfg);
    cfg.steps = 200000;
    cfg.progress = false;
    for (int i = 0; i < RUNS; i++) {
        struct check_stats st;
        struct violation v;
        memset(&st, 0, sizeof st);
        if (!check_random_run(&cfg, 1 + (uint64_t)i, &st, &v) || v.found) {
            fprintf(stderr, "bench_check: the random run failed\n");
            return 1;
        }
        uint64_t ops = 0;
        for (int k = 0; k < 6; k++)
            ops += st.ops_ok[k] + st.ops_err[k];
        step_ns[i] = st.seconds * 1e9 / (double)(st.steps ? st.steps : 1);
        op_ns[i] = st.seconds * 1e9 / (double)(ops ? ops : 1);
        trace_free(&v.trace);
    }
    report("check_step", step_ns);
    report("check_op", op_ns);

    static const struct {
        const char *name;
        void (*config)(struct check_config *);
    } ex[] = { { "check_exhaustive_small", check_config_small },
               { "check_exhaustive_hw", check_config_small_hw },
               { "check_exhaustive_hw_full", check_config_hw_full } };
    for (unsigned i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        ex[i].config(&cfg);
        cfg.progress = false;
        uint64_t states;
        bool complete;
        double secs;
        struct violation v;
        int rc = check_exhaustive(&cfg, &states, &complete, &v, &secs);
        trace_free(&v.trace);
        if (rc != 0) {
            fprintf(stderr, "bench_check: the exhaustive run %s failed\n", ex[i].name);
            return 1;
        }
        printf("%s %.0f ns/op (%" PRIu64 " states, %s)\n", ex[i].name, secs * 1e9, states,
               complete ? "complete" : "bounded");
    }
    return 0;
}
