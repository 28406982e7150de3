/*
 * `x86pt check`: the refinement checker's driver. A configuration (machine, threads, the
 * workload's sets of virtual addresses, frames and sizes), a random mode (seeded, reproducible,
 * shardable), an exhaustive mode (breadth-first over every interleaving, states deduplicated by
 * hash), traces of violations, and the mutant runner.
 */
#ifndef X86PT_CHECK_CHECK_H
#define X86PT_CHECK_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "os_refinement.h"

#define CHECK_MAX_SET 32u

struct check_config {
    unsigned nodes, cores, threads;  /* NUMA nodes, cores per node, threads (pinned round robin) */
    uint64_t steps;                  /* random: steps per run */
    uint64_t runs;                   /* random: number of runs (seeds seed .. seed + runs - 1) */
    uint64_t seed;
    unsigned shard_i, shard_n;       /* this process does the runs k with k % shard_n == shard_i */
    uint64_t vaddrs[CHECK_MAX_SET];
    unsigned nvaddrs;
    uint64_t frames[CHECK_MAX_SET];
    unsigned nframes;
    uint64_t sizes[3];
    unsigned nsizes;
    bool protect;                    /* include protect operations */
    bool flags_all;                  /* exhaustive: map writable and no-execute both ways (else
                                        writable, executable), protect to read-only and to
                                        writable no-execute (else read-only) */
    bool map_no_execute;             /* exhaustive without flags_all: maps are no-execute */
    bool harvest;                    /* exhaustive: test-and-clear A and D of a mapping at the
                                        first address (with protect) */
    bool map_global;                 /* exhaustive: maps are global (X86PT_GLOBAL); protects
                                        are not, so they make a global page non-global */
    bool ranges;                     /* include range operations (x86pt_map_range & co.) */
    bool ad;                         /* include the hardware's A/D step */
    unsigned mmu_walks, mmu_pscache; /* non-atomic walks per core, paging-structure-cache entries
                                        per level per core (hw_consts; 0: off) */
    unsigned mmu_sbuf;               /* store-buffer depth per core (hw_consts; 0: off) */
    bool no_lazy;                    /* exhaustive with --walks 1: enumerate every walk step
                                        instead of lazy walks (exhaustive.c) */
    unsigned jobs;                   /* exhaustive: worker threads (0: one per online CPU) */
    bool no_symmetry;                /* exhaustive: keep states that differ only by which of two
                                        alike cores is which (exhaustive.c) */
    bool free_early;                 /* the planted OS bugs os_consts.free_early, */
    bool no_map_fence, no_shootdown_fence; /* .no_map_fence, .no_shootdown_fence */
    uint64_t phys_mem_size;          /* bytes of user memory */
    unsigned pt_frames;              /* frames of page-table memory */
    unsigned pt_reserved;            /* frames [0, pt_reserved) never handed out (os_consts) */
    unsigned maxphyaddr;             /* the MAXPHYADDR width (32..52) */
    bool bad_calls;                  /* random: about 2 % of the steps are calls with a bad argument */
    unsigned alloc_fail;             /* the allocator refuses a map or map_range a frame: random, in
                                        one step of N that runs one (0: never); exhaustive, any
                                        non-zero: at each allocation both ways */
    bool progress;                   /* progress bar on stderr (only if a TTY) */
    /* exhaustive */
    uint64_t max_states, max_depth;
    bool quiet;
};

void check_config_default(struct check_config *cfg);
/* A fingerprint of everything that shapes a random run except the shard (shard lines carry it,
 * so that combine only sums shards of one configuration). */
uint64_t check_config_fingerprint(const struct check_config *cfg);
/* The small exhaustive configuration: 2 cores, 2 threads, 2 vaddrs (0, and 0x1000 inside the
 * 2 MiB page a map at 0 may make), 2 sizes, protect, the A/D step. */
void check_config_small(struct check_config *cfg);
/* The range workload (random --ranges): 2 NUMA nodes x 2 cores, 4 threads, range and single
 * operations over [0, 4M) and [1G, 1G + 4M) where 4 KiB, 2 MiB and 1 GiB pages mix. */
void check_config_ranges(struct check_config *cfg);
/* The small exhaustive configuration with ranges (exhaustive --ranges). */
void check_config_small_ranges(struct check_config *cfg);
/* x86pt check exhaustive --hw: walks, caches, A/D, all flags, one 4 KiB page (config.c). */
void check_config_small_hw(struct check_config *cfg);
/* x86pt check exhaustive --hw-full: walks, caches, store buffers, A/D, all flags, two
 * addresses, 4 KiB and 2 MiB pages. */
void check_config_hw_full(struct check_config *cfg);
/* Fill os constants (ULT2core round robin). */
void check_consts(const struct check_config *cfg, struct os_consts *c, const struct os_pt_impl *impl);

/* Counters of a run, summed over runs and shards. */
struct check_stats {
    uint64_t runs, steps, violations;
    uint64_t by_step[OS_STEP_KIND_COUNT];
    uint64_t ops_ok[6], ops_err[6];  /* map, unmap, protect, map_range, unmap_range, protect_range */
    uint64_t range_stores, splits;   /* range stores applied; split swaps among them */
    uint64_t page_faults, shootdowns, tlb_fills, tlb_evicts, ad_updates, stores, loads;
    uint64_t lib_loads, lib_stores, lib_cas, lib_zeroes; /* the library's accesses as steps */
    uint64_t lib_silent;                  /* its accesses to unlinked directories, folded into those */
    uint64_t ad_races;                    /* A/D updates while a library operation was in flight */
    uint64_t walk_inits, cache_uses, walk_steps, walk_fills, cache_fills, cache_evicts; /* rl3 */
    uint64_t sbuf_stores, writebacks;     /* library stores into the store buffer, Writeback steps */
    uint64_t resolves_ok, resolves_err, destroys; /* Resolve steps: found, not; DestroyProbe steps */
    uint64_t iterations;                          /* Iterate steps */
    uint64_t adopts;                      /* AdoptProbe steps */
    uint64_t bad_calls;                   /* BadCall steps (refused calls) */
    uint64_t allocs_refused, nomem;       /* allocations the allocator refused; X86PT_E_NOMEM returns */
    uint64_t invalidations, frame_reuses; /* shootdown acknowledgements (invlpg / CR3 reload) */
    uint64_t skipped_unsound, stuck;
    double seconds;
};

/* One checked step as the trace shows it. */
struct trace_step {
    struct os_step st;
};

struct trace {
    struct trace_step *v;
    size_t n, cap;
};
bool trace_push(struct trace *t, const struct os_step *st);
void trace_free(struct trace *t);

/* A violation: the trace from the initial state, which check failed and why. */
struct violation {
    bool found;
    enum os_check check;
    char why[512];
    struct trace trace;
    uint64_t seed;
};

/* Replay steps from the initial state; true if a violation occurs (filled in v, with the
 * steps actually taken). Disabled steps are skipped. */
bool check_replay(const struct check_config *cfg, const struct os_step *steps, size_t n, struct violation *v);
/* Shrink v's trace (greedy removal of chunks) within a time budget. */
void check_minimize(const struct check_config *cfg, struct violation *v, double budget_s);
/* One readable line per step, the failing check last. */
void check_print_trace(FILE *f, const struct check_config *cfg, const struct violation *v);

/* Random mode: all runs of this shard. Returns 0 (refinement holds) or 1 (violation). */
int check_random(const struct check_config *cfg, struct check_stats *stats, struct violation *v);
/* One random run (seed); used by check_random and the benchmark. */
bool check_random_run(const struct check_config *cfg, uint64_t seed, struct check_stats *stats,
                      struct violation *v);
void check_print_summary(FILE *f, const struct check_stats *s, bool violation);
/* "summary: k=v ..." line for combining shards, and its parser. */
void check_print_shard_line(FILE *f, const struct check_config *cfg, const struct check_stats *s);
bool check_parse_shard_line(const char *line, struct check_stats *s);
/* Which shard a whole `shard:` line is from (false: not a whole shard line). */
struct shard_id {
    unsigned i, n;
    uint64_t config, seed;
};
bool check_parse_shard_header(const char *line, struct shard_id *id);
/* x86pt check combine: sum the shard lines of the files; refuse (status 2, a message on err)
 * unless they are exactly shards 0..n-1 of one configuration and seed base. */
int check_combine(int nfiles, char **files, FILE *out, FILE *err);

/* Exhaustive mode. Returns 0 / 1 as check_random; *states, *complete for the report. */
int check_exhaustive(const struct check_config *cfg, uint64_t *states, bool *complete,
                     struct violation *v, double *seconds);
/* The same, calling visit on every state the search keeps (the first included). */
typedef void check_visit_fn(void *arg, const struct os_consts *c, const struct os_vars *s);
int check_exhaustive_visit(const struct check_config *cfg, check_visit_fn *visit, void *arg, uint64_t *states,
                           bool *complete, struct violation *v, double *seconds);

/* Mutants: build and run each (check/mutants.def). */
int check_mutants(const char *self, const struct check_config *cfg);

/* `x86pt check ...` */
int check_main(int argc, char **argv);
/* The same, as tools/x86pt.c calls it (declared in tools/cli.h). */
int x86pt_check_main(int argc, char **argv);
void x86pt_check_usage(const char *prog);

#endif /* X86PT_CHECK_CHECK_H */
