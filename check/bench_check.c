/*
 * Checker benchmark, `make bench` format `<workload> <median> ns/op`:
 *   check_step              one fully checked random step of the default configuration
 *                           (2 NUMA nodes x 2 cores, 4 threads), median of 5 runs of 200k steps
 *   check_exhaustive_small  one whole exhaustive run of the small configuration (2 cores,
 *                           2 threads, 2 vaddrs, 2 sizes), with its state count
 */
#include "check.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    struct check_config cfg;
    double ns[5];
    check_config_default(&cfg);
    cfg.steps = 200000;
    cfg.progress = false;
    for (int i = 0; i < 5; i++) {
        struct check_stats st;
        struct violation v;
        memset(&st, 0, sizeof st);
        if (!check_random_run(&cfg, 1 + (uint64_t)i, &st, &v) || v.found) {
            fprintf(stderr, "bench_check: the random run failed\n");
            return 1;
        }
        ns[i] = st.seconds * 1e9 / (double)(st.steps ? st.steps : 1);
        trace_free(&v.trace);
    }
    qsort(ns, 5, sizeof ns[0], cmp);
    printf("check_step %.0f ns/op\n", ns[2]);

    check_config_small(&cfg);
    uint64_t states;
    bool complete;
    double secs;
    struct violation v;
    int rc = check_exhaustive(&cfg, &states, &complete, &v, &secs);
    trace_free(&v.trace);
    if (rc != 0) {
        fprintf(stderr, "bench_check: the exhaustive run failed\n");
        return 1;
    }
    printf("check_exhaustive_small %.0f ns/op (%" PRIu64 " states, %s)\n", secs * 1e9, states,
           complete ? "complete" : "bounded");
    return 0;
}
