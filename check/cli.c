/*
 * `x86pt check` command line:
 *   x86pt check [random] [options]      random mode (the default: the main job)
 *   x86pt check exhaustive [options]    breadth-first over all interleavings (default: --small)
 *   x86pt check combine FILE...         sum the `shard:` lines of shards 0..n-1 of one run
 *   x86pt check --mutants               build and check every mutant of check/mutants.def
 * options: --nodes N --cores N --threads N --steps N --runs N --seed N --shard I/N
 *          --vaddrs A,B,.. --frames A,B,.. --sizes 4k,2m,1g --phys BYTES --pt-frames N
 *          --no-protect --no-ad --walks N --pscache N --sbuf N --maxphyaddr N --no-bad-calls --alloc-fail N --free-early --no-map-fence --no-shootdown-fence --flags-all --no-harvest --no-global --hw --hw-full --no-lazy --no-symmetry --jobs N --max-states N --max-depth N --small --no-progress
 *          --pt-reserved N (frames below N are never handed out)
 *          --ranges (random: the range workload, check_config_ranges; exhaustive: the small range
 *          configuration; put it first, it resets the configuration)
 */
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t num(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 0);
    if (*end == 'k' || *end == 'K')
        v <<= 10;
    else if (*end == 'm' || *end == 'M')
        v <<= 20;
    else if (*end == 'g' || *end == 'G')
        v <<= 30;
    return v;
}

static unsigned list(const char *s, uint64_t *out, unsigned cap)
{
    unsigned n = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save, *t = strtok_r(buf, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save))
        out[n++] = num(t);
    return n;
}

static int usage(void)
{
    fprintf(stderr, "usage: x86pt check [random|exhaustive|combine FILE...|--mutants] [options]\n"
                    "  --nodes N --cores N --threads N --steps N --runs N --seed N --shard I/N\n"
                    "  --vaddrs A,B --frames A,B --sizes 4k,2m,1g --phys BYTES --pt-frames N --pt-reserved N\n"
                    "  --no-protect --no-ad --walks N --pscache N --sbuf N --maxphyaddr N --no-bad-calls --alloc-fail N --free-early --no-map-fence --no-shootdown-fence --flags-all --no-harvest --no-global --hw --hw-full --no-lazy --no-symmetry --jobs N --max-states N --max-depth N --small --no-progress\n"
                    "  --ranges (first: the range workload / the small range configuration)\n");
    return 2;
}

/* The `x86pt check` subcommand (tools/x86pt.c). */
int x86pt_check_main(int argc, char **argv) { return check_main(argc, argv); }

void x86pt_check_usage(const char *prog)
{
    (void)prog;
    usage();
}


/* Which parts of the hostile hardware and which planted bugs the run has. */
static void print_features(const struct check_config *cfg)
{
    printf("features: library accesses as steps; A/D step %s; walks %s", cfg->ad ? "on" : "off",
           cfg->mmu_walks ? "non-atomic (rl3)" : "atomic");
    if (cfg->mmu_walks)
        printf(", %u per core", cfg->mmu_walks);
    if (cfg->mmu_walks == 1 && !cfg->no_lazy)
        printf(" (exhaustive: lazy walks)");
    printf("; paging-structure caches %s", cfg->mmu_pscache ? "on" : "off");
    if (cfg->mmu_pscache)
        printf(" (%u entries per level)", cfg->mmu_pscache);
    printf("; store buffers ");
    cfg->mmu_sbuf ? printf("TSO, %u stores per core", cfg->mmu_sbuf) : printf("off");
    if (cfg->alloc_fail)
        printf("; allocator refuses a frame in 1 of %u map steps that allocate", cfg->alloc_fail);
    if (cfg->bad_calls)
        printf("; refused calls");
    if (cfg->flags_all)
        printf("; every flag combination");
    if (cfg->map_global)
        printf("; global maps");
    if (cfg->harvest)
        printf("; test-and-clear");
    printf("%s%s%s%s\n", cfg->protect ? "; protect" : "", cfg->free_early ? "; PLANTED: frees before the shootdown" : "",
           cfg->no_map_fence ? "; PLANTED: no fence at a map's end" : "",
           cfg->no_shootdown_fence ? "; PLANTED: shootdown IPI before the store buffer drains" : "");
}

static int run_exhaustive(const struct check_config *cfg)
{
    print_features(cfg);
    uint64_t states;
    bool complete;
    double secs;
    struct violation v;
    int rc = check_exhaustive(cfg, &states, &complete, &v, &secs);
    if (rc == 2) {
        fprintf(stderr, "x86pt check: out of memory\n");
        return 2;
    }
    if (v.found)
        check_print_trace(stdout, cfg, &v);
    printf("exhaustive: %" PRIu64 " states, %.2f s, %s\n", states, secs, complete ? "complete" : "bounded");
    printf("verdict: %s\n", v.found ? "VIOLATION" : "refinement holds");
    printf("checked %" PRIu64 " steps at %.0f steps/s\n", states, secs > 0 ? (double)states / secs : 0.0);
    trace_free(&v.trace);
    return v.found ? 1 : 0;
}

int check_main(int argc, char **argv)
{
    struct check_config cfg;
    enum { RANDOM, EXHAUSTIVE, MUTANTS } mode = RANDOM;
    int i = 1;
    check_config_default(&cfg);
    if (i < argc && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
        usage();
        return 0;
    }
    if (i < argc && !strcmp(argv[i], "combine"))
        return argc > 2 ? check_combine(argc - 2, argv + 2, stdout, stderr) : usage();
    if (i < argc && !strcmp(argv[i], "random"))
        i++;
    else if (i < argc && !strcmp(argv[i], "exhaustive")) {
        mode = EXHAUSTIVE;
        check_config_small(&cfg);
        i++;
    }
    for (; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && (i++, 1))
        if (!strcmp(a, "--mutants"))
            mode = MUTANTS;
        else if (!strcmp(a, "--small"))
            check_config_small(&cfg);
        else if (!strcmp(a, "--hw"))
            check_config_small_hw(&cfg);
        else if (!strcmp(a, "--hw-full"))
            check_config_hw_full(&cfg);
        else if (!strcmp(a, "--ranges"))
            mode == EXHAUSTIVE ? check_config_small_ranges(&cfg) : check_config_ranges(&cfg);
        else if (!strcmp(a, "--no-protect"))
            cfg.protect = false;
        else if (!strcmp(a, "--protect"))
            cfg.protect = true;
        else if (!strcmp(a, "--no-ad"))
            cfg.ad = false;
        else if (!strcmp(a, "--ad"))
            cfg.ad = true;
        else if (OPT("--walks"))
            cfg.mmu_walks = (unsigned)num(v);
        else if (OPT("--pscache"))
            cfg.mmu_pscache = (unsigned)num(v);
        else if (!strcmp(a, "--flags-all"))
            cfg.flags_all = true;
        else if (!strcmp(a, "--no-lazy"))
            cfg.no_lazy = true;
        else if (!strcmp(a, "--no-harvest"))
            cfg.harvest = false;
        else if (!strcmp(a, "--no-global"))
            cfg.map_global = false;
        else if (!strcmp(a, "--no-symmetry"))
            cfg.no_symmetry = true;
        else if (OPT("--jobs"))
            cfg.jobs = (unsigned)num(v);
        else if (OPT("--maxphyaddr"))
            cfg.maxphyaddr = (unsigned)num(v);
        else if (!strcmp(a, "--no-bad-calls"))
            cfg.bad_calls = false;
        else if (OPT("--alloc-fail"))
            cfg.alloc_fail = (unsigned)num(v);
        else if (OPT("--sbuf"))
            cfg.mmu_sbuf = (unsigned)num(v);
        else if (!strcmp(a, "--free-early"))
            cfg.free_early = true;
        else if (!strcmp(a, "--no-map-fence"))
            cfg.no_map_fence = true;
        else if (!strcmp(a, "--no-shootdown-fence"))
            cfg.no_shootdown_fence = true;
        else if (!strcmp(a, "--no-progress"))
            cfg.progress = false;
        else if (OPT("--nodes"))
            cfg.nodes = (unsigned)num(v);
        else if (OPT("--cores"))
            cfg.cores = (unsigned)num(v);
        else if (OPT("--threads"))
            cfg.threads = (unsigned)num(v);
        else if (OPT("--steps"))
            cfg.steps = num(v);
        else if (OPT("--runs"))
            cfg.runs = num(v);
        else if (OPT("--seed"))
            cfg.seed = num(v);
        else if (OPT("--phys"))
            cfg.phys_mem_size = num(v);
        else if (OPT("--pt-reserved"))
            cfg.pt_reserved = (unsigned)num(v);
        else if (OPT("--pt-frames"))
            cfg.pt_frames = (unsigned)num(v);
        else if (OPT("--max-states"))
            cfg.max_states = num(v);
        else if (OPT("--max-depth"))
            cfg.max_depth = num(v);
        else if (OPT("--vaddrs"))
            cfg.nvaddrs = list(v, cfg.vaddrs, CHECK_MAX_SET);
        else if (OPT("--frames"))
            cfg.nframes = list(v, cfg.frames, CHECK_MAX_SET);
        else if (OPT("--sizes"))
            cfg.nsizes = list(v, cfg.sizes, 3);
        else if (OPT("--shard")) {
            if (sscanf(v, "%u/%u", &cfg.shard_i, &cfg.shard_n) != 2 || !cfg.shard_n || cfg.shard_i >= cfg.shard_n)
                return usage();
        } else
            return usage();
#undef OPT
    }
    if (!cfg.nodes || !cfg.cores || !cfg.threads || cfg.threads > HL_MAX_THREADS ||
        cfg.nodes * cfg.cores > OS_MAX_CORES || !cfg.nvaddrs || !cfg.nframes || !cfg.nsizes ||
        cfg.pt_frames < 4 || cfg.pt_frames > OS_PT_FRAMES_MAX || cfg.phys_mem_size % 4096 ||
        cfg.mmu_walks > HW_MMU_MAX_WALKS || cfg.mmu_pscache > HW_PSCACHE_MAX || (cfg.mmu_pscache && !cfg.mmu_walks) ||
        cfg.mmu_sbuf > HW_SBUF_MAX || cfg.maxphyaddr < 32 || cfg.maxphyaddr > 52)
        return usage();
    if (mode == MUTANTS)
        return check_mutants(argv[0], &cfg);
    if (mode == EXHAUSTIVE)
        return run_exhaustive(&cfg);

    struct check_stats stats;
    struct violation v;
    memset(&stats, 0, sizeof stats);
    printf("x86pt check: %u NUMA nodes x %u cores, %u threads, %" PRIu64 " steps x %" PRIu64
           " runs (shard %u/%u), seed %" PRIu64 "\n",
           cfg.nodes, cfg.cores, cfg.threads, cfg.steps, cfg.runs, cfg.shard_i, cfg.shard_n, cfg.seed);
    print_features(&cfg);
    fflush(stdout);
    int rc = check_random(&cfg, &stats, &v);
    if (rc == 2)
        return 2;
    if (v.found)
        check_print_trace(stdout, &cfg, &v);
    check_print_shard_line(stdout, &cfg, &stats);
    check_print_summary(stdout, &stats, v.found);
    trace_free(&v.trace);
    return rc;
}
