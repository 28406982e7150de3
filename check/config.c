/* Configurations of the checker: the default main job and the small exhaustive one. */
#include "check.h"

#include <string.h>

#define K4 UINT64_C(0x1000)
#define M2 UINT64_C(0x200000)
#define G1 UINT64_C(0x40000000)

void check_config_default(struct check_config *cfg)
{
    static const uint64_t vaddrs[] = { 0, K4, 2 * K4, M2, M2 + K4, G1, UINT64_C(0x7fffc0000000) };
    /* 4 KiB frames inside user memory, a 2 MiB frame at 0 (overlapping them: such maps are
     * unsound and skipped) and frames beyond memory (accesses there are Undefined). */
    static const uint64_t frames[] = { K4, 2 * K4, 3 * K4, 4 * K4, 5 * K4, 0, M2, G1 };
    memset(cfg, 0, sizeof *cfg);
    cfg->nodes = 2;
    cfg->cores = 2;
    cfg->threads = 4;
    cfg->steps = 1000000;
    cfg->runs = 1;
    cfg->seed = 1;
    cfg->shard_n = 1;
    memcpy(cfg->vaddrs, vaddrs, sizeof vaddrs);
    cfg->nvaddrs = sizeof vaddrs / sizeof vaddrs[0];
    memcpy(cfg->frames, frames, sizeof frames);
    cfg->nframes = sizeof frames / sizeof frames[0];
    cfg->sizes[0] = K4;
    cfg->sizes[1] = M2;
    cfg->sizes[2] = G1;
    cfg->nsizes = 3;
    cfg->protect = true;
    cfg->ad = true;
    cfg->mmu_walks = 2;
    cfg->mmu_pscache = 2;
    cfg->mmu_sbuf = 2;
    cfg->bad_calls = true;
    cfg->alloc_fail = 4;
    cfg->phys_mem_size = 16 * K4;
    cfg->pt_frames = 48;
    cfg->maxphyaddr = 40;
    cfg->progress = true;
    cfg->max_states = 2000000;
    cfg->max_depth = 0;
}

static uint64_t fp_mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h * UINT64_C(0xff51afd7ed558ccd);
}

uint64_t check_config_fingerprint(const struct check_config *cfg)
{
    uint64_t h = UINT64_C(0x78383670742d6366);
    const uint64_t scalars[] = { cfg->nodes, cfg->cores, cfg->threads, cfg->steps, cfg->runs, cfg->seed,
                                 cfg->nvaddrs, cfg->nframes, cfg->nsizes, cfg->protect, cfg->flags_all, cfg->ranges,
                                 cfg->ad, cfg->mmu_walks, cfg->mmu_pscache, cfg->mmu_sbuf, cfg->free_early,
                                 cfg->no_map_fence, cfg->no_shootdown_fence, cfg->phys_mem_size, cfg->pt_frames,
                                 cfg->pt_reserved, cfg->maxphyaddr, cfg->shard_n, cfg->bad_calls,
                                 cfg->alloc_fail, cfg->map_no_execute, cfg->map_global, cfg->harvest, cfg->no_lazy,
                                 cfg->no_symmetry };
    for (unsigned i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        h = fp_mix(h, scalars[i]);
    for (unsigned i = 0; i < cfg->nvaddrs && i < CHECK_MAX_SET; i++)
        h = fp_mix(h, cfg->vaddrs[i]);
    for (unsigned i = 0; i < cfg->nframes && i < CHECK_MAX_SET; i++)
        h = fp_mix(h, cfg->frames[i]);
    for (unsigned i = 0; i < cfg->nsizes && i < 3; i++)
        h = fp_mix(h, cfg->sizes[i]);
    return h;
}

void check_config_small(struct check_config *cfg)
{
    check_config_default(cfg);
    cfg->nodes = 1;
    cfg->cores = 2;
    cfg->threads = 2;
    cfg->vaddrs[0] = 0;
    cfg->vaddrs[1] = K4; /* inside the 2 MiB page a map at 0 may make */
    cfg->nvaddrs = 2;
    cfg->frames[0] = 0;
    cfg->frames[1] = M2;
    cfg->nframes = 2;
    cfg->sizes[0] = K4;
    cfg->sizes[1] = M2;
    cfg->nsizes = 2;
    cfg->protect = true;
    cfg->ad = true; /* the MMU's A/D updates between any two accesses of the library */
    cfg->max_states = 4000000;
    cfg->mmu_walks = 0; /* atomic walks, no paging-structure caches (README: the bounded runs) */
    cfg->mmu_pscache = 0;
    cfg->mmu_sbuf = 2;  /* TSO store buffers: the library's stores race every other step */
    cfg->phys_mem_size = 2 * K4;
    cfg->pt_frames = 8;
    /* A global page's translation survives the CR3 reload of a shootdown that freed
     * directories unless the flush report says global (mutant 32); no extra states. */
    cfg->map_global = true;
    cfg->harvest = true;
}

void check_consts(const struct check_config *cfg, struct os_consts *c, const struct os_pt_impl *impl)
{
    memset(c, 0, sizeof *c);
    c->hw.NUMA_no = cfg->nodes;
    c->hw.core_no = cfg->cores;
    c->hw.phys_mem_size = cfg->phys_mem_size;
    c->hw.maxphyaddr = cfg->maxphyaddr;
    c->ULT_no = cfg->threads;
    for (unsigned t = 0; t < cfg->threads && t < HL_MAX_THREADS; t++)
        c->ULT2core[t] = os_core_of(c, t % (cfg->nodes * cfg->cores));
    c->pt_frames = cfg->pt_frames;
    c->pt_reserved = cfg->pt_reserved;
    c->hw.mmu_walks = cfg->mmu_walks;
    c->hw.mmu_pscache = cfg->mmu_pscache;
    c->hw.mmu_sbuf = cfg->mmu_sbuf;
    c->no_map_fence = cfg->no_map_fence;
    c->no_shootdown_fence = cfg->no_shootdown_fence;
    c->free_early = cfg->free_early;
    c->impl = impl;
}

void check_config_ranges(struct check_config *cfg)
{
    static const uint64_t vaddrs[] = { 0, K4, M2 - K4, M2, M2 + K4, G1, G1 + M2 };
    check_config_default(cfg);
    cfg->ranges = true;
    cfg->steps = 200000;
    memcpy(cfg->vaddrs, vaddrs, sizeof vaddrs);
    cfg->nvaddrs = sizeof vaddrs / sizeof vaddrs[0];
    /* frames: each map aliases its vaddr (random.c), so frames[] is unused */
    /* [0, 4M) is memory, so that accesses through range mappings there (aliases of their
     * virtual addresses) mostly succeed and check memory contents; frames near 1 GiB do not */
    cfg->phys_mem_size = 2 * M2;
    cfg->pt_frames = 128; /* splits and 4 KiB ranges over [0, 4M) make page tables */
    /* Frame 0 stays in the pool: with the root at physical address 0 this checker found
     * map_range's first pass taking the root for a directory yet to be made (fixed). */
    cfg->pt_reserved = 0;
}

/* One core per thread, two threads: a 2 MiB page at 0 (or a range of 4 KiB pages) meets
 * range operations around the 2 MiB boundary; a split happens when an unmap_range or
 * protect_range ends inside the 2 MiB page. */
/* The hostile hardware on one page: two cores with a thread each, non-atomic walks,
 * paging-structure caches and A/D, racing map / unmap / protect of a 4 KiB page at 0 in every
 * flag combination; small enough for the unit tests (check_config_hw_full has it all). */
void check_config_small_hw(struct check_config *cfg)
{
    check_config_small(cfg);
    cfg->nvaddrs = cfg->nframes = cfg->nsizes = 1; /* vaddr 0, frame 0, 4 KiB */
    cfg->flags_all = true;
    cfg->mmu_walks = 1;
    cfg->mmu_pscache = 1;
    cfg->mmu_sbuf = 0;
    cfg->alloc_fail = 0;
    cfg->map_global = false; /* global TLB entries double this space; the small one has them */
}

/* The hostile hardware whole (issue 10's small configuration): the small configuration's two
 * cores and threads, addresses 0 and 0x1000 (inside a 2 MiB page at 0), 4 KiB and 2 MiB pages,
 * writable and no-execute both ways, A/D, non-atomic walks, one paging-structure cache entry
 * per level and a store buffer of one store per core, frame 0; refused calls, refused
 * allocations and the probes as in the small configuration. */
void check_config_hw_full(struct check_config *cfg)
{
    check_config_small(cfg);
    cfg->nframes = 1;
    cfg->flags_all = true;
    cfg->mmu_walks = 1;
    cfg->mmu_pscache = 1;
    cfg->mmu_sbuf = 1;
    cfg->map_global = false; /* as check_config_small_hw */
}

void check_config_small_ranges(struct check_config *cfg)
{
    check_config_small(cfg);
    cfg->ranges = true;
    cfg->protect = false;
    cfg->ad = false;
    cfg->vaddrs[0] = 0;
    cfg->nvaddrs = 1;
    cfg->frames[0] = 0;
    cfg->nframes = 1;
    cfg->sizes[0] = M2;
    cfg->nsizes = 1;
    cfg->map_no_execute = true; /* a split must keep no-execute in every part (mutant 23) */
    cfg->pt_frames = 12;
    cfg->pt_reserved = 0; /* see check_config_ranges */
}
