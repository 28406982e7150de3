/*
 * Random mode: a seeded workload drives the OS model (threads start map/unmap/protect
 * operations, cores advance them, MMUs fill and evict TLBs, set A/D bits, and threads load and
 * store), and every step is checked (os_checker_step). Reproducible: the seed decides every
 * choice, and the A/D-randomized second run of each library call draws from the same seed.
 */
#include "check.h"
#include "ptlib.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct runner {
    const struct check_config *cfg;
    struct os_consts c;
    struct ptlib *lib;
    struct os_vars cur;
    struct os_checker k;
    uint64_t rng;
    unsigned hot;      /* the frame most recently given back to the pool (+1; 0: none) */
};

static uint64_t rnd(struct runner *r)
{
    uint64_t z = (r->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static unsigned below(struct runner *r, unsigned n) { return n ? (unsigned)(rnd(r) % n) : 0; }

/* The draws of one expression are sequenced one statement each: the operands of + are
 * unsequenced in C, and gcc and clang draw them in different orders, so a seed would not
 * replay the same run under both compilers. */
static uint64_t workload_word(struct runner *r, unsigned words)
{
    uint64_t base = r->cfg->vaddrs[below(r, r->cfg->nvaddrs)];
    return base + 8 * (uint64_t)below(r, words);
}

/* A word in the 2 MiB region around vaddr */
static uint64_t in_2m_of(struct runner *r, uint64_t vaddr)
{
    uint64_t page = HW_PAGE_SIZE * (uint64_t)below(r, 512);
    return (vaddr & ~(HW_L2_ENTRY_SIZE - 1)) + page + 8 * (uint64_t)below(r, 512);
}

/* Half the mappings grant everything, so that user loads and stores succeed
 * often and the memory contents are checked; the rest are random. One in four is
 * global, one in four has random attributes (memory type, key, software bits). */
static struct hw_flags rnd_flags(struct runner *r)
{
    unsigned b = below(r, 2) ? 1u : below(r, 8);
    struct hw_flags f = { .is_writable = (b & 1) != 0, .is_supervisor = (b & 2) != 0, .disable_execute = (b & 4) != 0 };
    f.global = below(r, 4) == 0;
    if (below(r, 4) == 0) {
        f.pat_index = (uint8_t)below(r, 8);
        f.pkey = (uint8_t)below(r, 16);
        f.software = (uint16_t)below(r, 1024);
    }
    return f;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool trace_push(struct trace *t, const struct os_step *st)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        struct trace_step *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return false;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++].st = *st;
    return true;
}

void trace_free(struct trace *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* ---- the workload ------------------------------------------------------------------------ */

static void gen_start(struct runner *r, struct os_step *st);

/* A random mapping of the current page table; with none, the step becomes an
 * operation start instead and NULL is returned. */
static const struct hw_mapping *pick_mapping(struct runner *r, struct os_step *st)
{
    const struct hw_interp *pt = &r->k.pt;
    if (!pt->len) {
        gen_start(r, st);
        return NULL;
    }
    return &pt->map[below(r, (unsigned)pt->len)];
}

/* What page-table memory (not the writer's buffered view) maps at the address of the
 * operation in flight, if anything: the stale translation a store buffer still hides. */
static bool memory_mapping_inflight(struct runner *r, struct hw_mapping *out)
{
    int k = os_kernel_lock(&r->c, &r->cur);
    if (k < 0 || os_sbuf_writer(&r->c, &r->cur) < 0)
        return false;
    struct hw_pt_view v = hw_vars_pt_view(&r->c.hw, &r->cur.hw);
    struct hw_walk w;
    if (hw_pt_walk(&v, r->cur.core_states[k].vaddr, &w) != HW_WALK_PAGE)
        return false;
    out->base = w.base;
    out->pte = w.pte;
    return true;
}

static void gen_fill(struct runner *r, struct os_step *st)
{
    struct hw_mapping stale;
    const struct hw_mapping *m = below(r, 2) && memory_mapping_inflight(r, &stale) ? &stale : pick_mapping(r, st);
    if (!m)
        return;
    st->kind = OS_STEP_HW;
    st->hw.kind = HW_STEP_TLB_FILL;
    st->hw.core = os_core_of(&r->c, below(r, os_ncores(&r->c)));
    st->hw.vaddr = m->base;
    st->hw.pte = m->pte;
}

static void gen_evict(struct runner *r, struct os_step *st, unsigned core)
{
    struct hw_core k = os_core_of(&r->c, core);
    const struct hw_tlb *t = hw_core_tlb_const(&r->c.hw, &r->cur.hw, k);
    if (!t->len) {
        gen_fill(r, st);
        return;
    }
    st->kind = OS_STEP_HW;
    st->hw.kind = HW_STEP_TLB_EVICT;
    st->hw.core = k;
    st->hw.vaddr = t->entries[below(r, t->len)].base;
}

static void gen_rw(struct runner *r, struct os_step *st)
{
    unsigned t = below(r, r->c.ULT_no);
    struct hw_core k = r->c.ULT2core[t];
    const struct hw_tlb *tlb = hw_core_tlb_const(&r->c.hw, &r->cur.hw, k);
    st->kind = OS_STEP_HW;
    st->ULT_id = t;
    st->hw.kind = HW_STEP_READ_WRITE;
    st->hw.core = k;
    if (tlb->len && below(r, 10) < 8) {
        const struct hw_mapping *e = &tlb->entries[below(r, tlb->len)];
        uint64_t span = e->pte.frame.size < 0x8000 ? e->pte.frame.size : 0x8000;
        st->hw.vaddr = e->base + 8 * (uint64_t)below(r, (unsigned)(span / 8));
        st->hw.has_pte = true;
        st->hw.tlb_entry = *e;
    } else {
        st->hw.vaddr = workload_word(r, 64);
    }
    unsigned op = below(r, 10);
    st->hw.op.kind = op < 5 ? HW_RW_STORE : HW_RW_LOAD;
    st->hw.op.is_exec = op == 9;
    st->hw.op.new_value = below(r, 2) ? rnd(r) : below(r, 4);
}

/* The rl3 hardware (hw_consts mmu_*): any core walks any address at any time, one entry per
 * step, caches the directory entries it read, fills its TLB from what it saw. */
static void gen_mmu(struct runner *r, struct os_step *st)
{
    struct hw_core k = os_core_of(&r->c, below(r, os_ncores(&r->c)));
    const struct hw_mmu_core *m = hw_core_mmu_const(&r->c.hw, &r->cur.hw, k);
    unsigned x = below(r, 16);
    st->kind = OS_STEP_HW;
    st->hw.core = k;
    if (m && m->nwalks && x < 11) {
        unsigned w = below(r, m->nwalks);
        st->hw.walk_index = w;
        if (m->walks[w].complete)
            st->hw.kind = below(r, 8) ? HW_STEP_WALK_TLB_FILL : HW_STEP_WALK_ABORT;
        else if (x < 3 && r->c.hw.mmu_pscache)
            st->hw.kind = HW_STEP_CACHE_FILL, st->hw.cache_level = below(r, HW_PSCACHE_LEVELS);
        else
            st->hw.kind = HW_STEP_WALK_STEP;
        return;
    }
    unsigned level = below(r, HW_PSCACHE_LEVELS);
    if (m && x == 15 && m->npscache[level]) {
        st->hw.kind = HW_STEP_CACHE_EVICT;
        st->hw.cache_level = level;
        st->hw.cache_index = below(r, m->npscache[level]);
        return;
    }
    const struct hw_interp *pt = &r->k.pt;
    st->hw.kind = HW_STEP_WALK_INIT;
    st->hw.access = (enum hw_access)below(r, 3);
    if (pt->len && below(r, 2))
        st->hw.vaddr = in_2m_of(r, pt->map[below(r, (unsigned)pt->len)].base);
    else
        st->hw.vaddr = workload_word(r, 64);
    /* CacheUse: from a cached entry that matches, the deepest level first */
    for (unsigned l = HW_PSCACHE_LEVELS; m && r->c.hw.mmu_pscache && below(r, 4) && l-- > 0;)
        for (unsigned i = 0; i < m->npscache[l]; i++)
            if (m->pscache[l][i].key == hw_pscache_key(st->hw.vaddr, l)) {
                st->hw.use_cache = true;
                st->hw.cache_level = l;
                st->hw.cache_index = i;
                return;
            }
}

/* The rest of the kernel writes a free pool frame: often a present user entry pointing at data
 * memory, so that a core still walking into a freed directory finds a translation. */
static void gen_frame_reuse(struct runner *r, struct os_step *st)
{
    /* the page allocator hands out the frame freed last first (LIFO, as Linux's per-CPU lists) */
    unsigned f = r->hot && below(r, 4) ? r->hot - 1 : below(r, r->c.pt_frames);
    if (!(r->cur.pt_free[f / 64] >> (f % 64) & 1)) {
        gen_mmu(r, st);
        return;
    }
    st->kind = OS_STEP_FRAME_REUSE;
    st->reuse_pa = (uint64_t)f * HW_PAGE_SIZE + 8 * (uint64_t)below(r, 512);
    st->reuse_value = below(r, 2) ? (r->cfg->phys_mem_size - HW_PAGE_SIZE) | 0x67 : rnd(r);
}

static void gen_ad(struct runner *r, struct os_step *st)
{
    const struct hw_mapping *m = pick_mapping(r, st);
    if (!m)
        return;
    st->kind = OS_STEP_HW;
    st->hw.kind = HW_STEP_ACCESSED_DIRTY;
    st->hw.vaddr = m->base;
    st->hw.is_write = below(r, 2);
}

#define K4 UINT64_C(0x1000)
#define M2 UINT64_C(0x200000)
#define G1 UINT64_C(0x40000000)

/* Range mode: every map aliases its vaddr at one of two offsets (identity mostly, so that
 * [0, 4M) is user memory; 2^36 otherwise), so that frames overlap exactly when the
 * mappings of one alias overlap, and a map over another alias's mapping is a sound Err; a
 * third alias is not 2 MiB-aligned relative to the vaddr. */
static uint64_t alias(struct runner *r, uint64_t va)
{
    unsigned k = below(r, 8);
    /* and now and then frames 12 KiB off the virtual alignment: the page size must follow both */
    return va + (k < 6 ? 0 : k < 7 ? UINT64_C(1) << 36 : (UINT64_C(1) << 37) + 3 * K4);
}

/* One of the table's huge pages in the two 4 MiB windows, if it has any (there, cut into 4 KiB
 * pages, they stay far below the mappings the checker holds: HL_MAX_MAPPINGS) */
static const struct hw_mapping *some_huge_page(struct runner *r)
{
    const struct hw_interp *pt = &r->k.pt;
    if (!pt->len)
        return NULL;
    size_t start = below(r, (unsigned)pt->len);
    for (size_t i = 0; i < pt->len; i++) {
        const struct hw_mapping *m = &pt->map[(start + i) % pt->len];
        bool windowed = m->base < 2 * M2 || (m->base >= G1 && m->base < G1 + 2 * M2);
        if (m->pte.frame.size >= M2 && windowed)
            return m;
    }
    return NULL;
}

/* A range start: ranges of 0..5 pages around the 2 MiB boundaries of [0, 4M) and of
 * [1G, 1G + 4M), or now and then a big one (2M, 4M at 0; 2M, 1G at 1G) that makes huge pages
 * or sweeps a window clean. All policies, both straddle modes. */
static void gen_range_start(struct runner *r, struct os_step *st)
{
    static const uint64_t anchors[] = { 0,          M2 - 3 * K4, M2 - 2 * K4,      M2 - K4,     M2,
                                        M2 + K4,    4 * M2 - 2 * K4, G1,           G1 + M2 - 2 * K4,
                                        G1 + M2 - K4, G1 + M2 };
    unsigned kind = below(r, 6);
    st->ULT_id = below(r, r->c.ULT_no);
    bool big = below(r, 4) == 0;
    if (big) {
        bool low = below(r, 2);
        st->vaddr = low ? 0 : G1;
        st->length = low ? (below(r, 2) ? M2 : 2 * M2) : (below(r, 2) ? M2 : G1);
    } else {
        st->vaddr = anchors[below(r, sizeof anchors / sizeof anchors[0])];
        st->length = K4 * below(r, 6);
    }
    if (kind >= 3 && below(r, 3) == 0) { /* or cut into a huge page: a straddle to split or refuse */
        const struct hw_mapping *huge = some_huge_page(r);
        if (huge) {
            st->vaddr = huge->base + K4 * (uint64_t)below(r, 512);
            st->length = K4 * (1 + (uint64_t)below(r, 5));
        }
    }
    st->flags = rnd_flags(r);
    st->split = below(r, 2) != 0;
    if (kind < 3) {
        static const uint64_t psize[4] = { K4, K4, M2, G1 };
        unsigned pol = below(r, 10);
        st->kind = OS_STEP_MAP_RANGE_START;
        st->policy = pol < 5 || big ? HL_POLICY_LARGEST_FIT : pol < 8 ? HL_POLICY_ONLY_4K : pol < 9 ? HL_POLICY_ONLY_2M : HL_POLICY_ONLY_1G;
        if (st->policy == HL_POLICY_ONLY_4K && st->length > 2 * M2 - 1)
            st->policy = HL_POLICY_LARGEST_FIT; /* 2^18 stores: not in a random run */
        st->paddr = alias(r, st->vaddr);
        if (big && below(r, 4) == 0) /* a huge range on misaligned frames: 4 KiB pages only */
            st->paddr = st->vaddr + (UINT64_C(1) << 37) + 3 * K4;
        if (st->length > 2 * M2 && (st->paddr - st->vaddr) % M2)
            st->paddr = st->vaddr; /* not 2^18 4 KiB pages: more than the checker holds */
        uint64_t z = psize[st->policy];
        if (st->vaddr % z || st->paddr % z || st->length % z)
            st->policy = HL_POLICY_LARGEST_FIT;
    } else {
        st->kind = kind < 5 ? OS_STEP_UNMAP_RANGE_START : OS_STEP_PROTECT_RANGE_START;
        /* the allocator refuses one of the directories the split needs (hlspec.h: nomem) */
        unsigned dirs = st->split ? hl_range_split_dirs(r->k.pt.map, r->k.pt.len, st->vaddr, st->length) : 0;
        if (dirs && r->cfg->alloc_fail && below(r, r->cfg->alloc_fail) == 0)
            st->fail_alloc = 1 + below(r, dirs);
    }
}

static void gen_start(struct runner *r, struct os_step *st)
{
    const struct check_config *cfg = r->cfg;
    if (cfg->ranges && below(r, 5) < 3) {
        gen_range_start(r, st);
        return;
    }
    unsigned kind = below(r, 10);
    st->ULT_id = below(r, r->c.ULT_no);
    st->vaddr = cfg->vaddrs[below(r, cfg->nvaddrs)];
    if (kind < 5) {
        uint64_t size = cfg->sizes[below(r, cfg->nsizes)];
        st->kind = OS_STEP_MAP_START;
        for (unsigned i = 0; i < 8 && st->vaddr % size; i++)
            st->vaddr = cfg->vaddrs[below(r, cfg->nvaddrs)];
        st->pte.frame.size = size;
        st->pte.frame.base = cfg->frames[below(r, cfg->nframes)];
        for (unsigned i = 0; i < 8 && st->pte.frame.base % size; i++)
            st->pte.frame.base = cfg->frames[below(r, cfg->nframes)];
        if (cfg->ranges)
            st->pte.frame.base = alias(r, st->vaddr);
        else if (below(r, 16) == 0) /* the last frame below 2^MAXPHYADDR, valid */
            st->pte.frame.base = (UINT64_C(1) << r->c.hw.maxphyaddr) - size * (1 + below(r, 2));
        st->pte.flags = rnd_flags(r);
    } else if (kind < 8 || !cfg->protect) {
        st->kind = OS_STEP_UNMAP_START;
    } else {
        st->kind = OS_STEP_PROTECT_START;
        st->flags = rnd_flags(r);
        struct hw_pte p;
        /* one protect in three is a test-and-clear of A, D or both: a protect to the flags the
         * mapping has (the A/D extension, os_lib.c) */
        if (below(r, 3) == 0) {
            st->ad_clear = 1 + below(r, 3);
            if (os_pt_get(&r->c, &r->cur, st->vaddr, &p))
                st->flags = p.flags;
        }
    }
}

/* A map's step that asks the allocator for frames (os_core_may_allocate): in one such step of
 * cfg->alloc_fail the allocator refuses one of them, any one (a dry run of the step counts
 * them). */
static void choose_refusal(struct runner *r, struct os_step *st)
{
    const struct os_core_state *cs = &r->cur.core_states[st->core];
    if (!r->cfg->alloc_fail || !os_core_may_allocate(cs))
        return;
    struct os_step probe = *st;
    struct os_vars s2;
    struct os_delta d;
    char why[64];
    if (os_next_step(&r->c, &r->cur, &probe, &s2, &d, why, sizeof why) == OS_STEP_OK)
        os_vars_fini(&s2);
    if (probe.nallocs && below(r, r->cfg->alloc_fail) == 0)
        st->fail_alloc = 1 + below(r, probe.nallocs);
}

/* The next step of an operation in flight on some core (or a shootdown acknowledgement). */
static void gen_progress(struct runner *r, struct os_step *st)
{
    unsigned n = os_ncores(&r->c), start = below(r, n);
    for (unsigned d = 0; d < n; d++) {
        unsigned i = (start + d) % n;
        const struct os_core_state *cs = &r->cur.core_states[i];
        if (r->cur.TLB_Shootdown.open_requests >> i & 1 && below(r, 2)) {
            /* the IPI handler: invalidate the reported range, acknowledge */
            st->core = i;
            st->kind = OS_STEP_ACK_SHOOTDOWN_IPI;
            return;
        }
        if (cs->kind == OS_IDLE)
            continue;
        st->core = i;
        if (cs->kind == OS_MAP_EXECUTING || cs->kind == OS_UNMAP_OP_EXECUTING || cs->kind == OS_PROTECT_OP_EXECUTING) {
            /* the library's next access, or its return (whichever is enabled) */
            bool access = below(r, 8) != 0;
            if (access) {
                st->kind = cs->range ? OS_STEP_RANGE_STORE : OS_STEP_VIEW_STUTTER;
                choose_refusal(r, st);
                return;
            }
        }
        switch (cs->kind) {
        case OS_MAP_WAITING: st->kind = OS_STEP_MAP_OP_START; break;
        case OS_MAP_EXECUTING: st->kind = OS_STEP_MAP_END; break;
        case OS_UNMAP_WAITING: st->kind = OS_STEP_UNMAP_OP_START; break;
        case OS_UNMAP_OP_EXECUTING: st->kind = OS_STEP_UNMAP_OP_END; break;
        case OS_UNMAP_OP_DONE: st->kind = below(r, 2) ? OS_STEP_UNMAP_INITIATE_SHOOTDOWN : OS_STEP_UNMAP_END; break;
        case OS_UNMAP_SHOOTDOWN_WAITING: st->kind = OS_STEP_UNMAP_END; break;
        case OS_PROTECT_WAITING: st->kind = OS_STEP_PROTECT_OP_START; break;
        case OS_PROTECT_OP_EXECUTING: st->kind = OS_STEP_PROTECT_OP_END; break;
        case OS_PROTECT_OP_DONE: st->kind = below(r, 2) ? OS_STEP_PROTECT_INITIATE_SHOOTDOWN : OS_STEP_PROTECT_END; break;
        default: st->kind = OS_STEP_PROTECT_END; break;
        }
        choose_refusal(r, st);
        return;
    }
    gen_start(r, st);
}

/* A thread resolves an address: inside a mapping (at any offset), or one of the workload's. */
/* A probe of the calls that take the whole table: destroy, or adopt of one of its images. */
static void gen_probe(struct runner *r, struct os_step *st)
{
    unsigned i = below(r, 1 + OS_ADOPT_IMAGE_COUNT);
    st->kind = i ? OS_STEP_ADOPT_PROBE : OS_STEP_DESTROY_PROBE;
    st->adopt_image = i ? i - 1 : 0;
}

static void gen_resolve(struct runner *r, struct os_step *st)
{
    const struct hw_interp *pt = &r->k.pt;
    st->kind = OS_STEP_RESOLVE;
    st->ULT_id = below(r, r->c.ULT_no);
    if (below(r, 4) == 0) { /* or iterates over up to 4 MiB from a mapping's base or a workload address */
        st->kind = OS_STEP_ITERATE;
        uint64_t from = pt->len && below(r, 2) ? pt->map[below(r, (unsigned)pt->len)].base : workload_word(r, 512);
        st->vaddr = (from & ~(K4 - 1)) - (from >= K4 && below(r, 2) ? K4 : 0);
        st->length = K4 * (1 + (uint64_t)below(r, 1024));
        if ((st->vaddr ^ (st->vaddr + st->length - 1)) >> 47)
            st->length = K4;
        return;
    }
    if (pt->len && below(r, 4)) {
        const struct hw_mapping *m = &pt->map[below(r, (unsigned)pt->len)];
        st->vaddr = m->base + (rnd(r) % m->pte.frame.size & ~UINT64_C(7));
    } else {
        st->vaddr = workload_word(r, 512);
    }
}

/* A call with one bad argument (os_badcall.c): a valid call of the workload, then one defect —
 * a non-canonical address on either side of the hole or at the bit-47/48 boundary, a range
 * across the hole, an address or frame misaligned for the size, a size that is none, an
 * unknown flag, a frame at or across 2^MAXPHYADDR. */
static void gen_bad(struct runner *r, struct os_step *st)
{
    static const uint64_t noncanon[] = { UINT64_C(0x0000800000000000), UINT64_C(0x0001000000000000),
                                         UINT64_C(0xffff7fffc0000000), UINT64_C(0x8000000000000000) };
    const uint64_t limit = UINT64_C(1) << r->c.hw.maxphyaddr;
    struct os_pt_request *b = &st->bad;
    st->kind = OS_STEP_BAD_CALL;
    st->ULT_id = below(r, r->c.ULT_no);
    b->op = (enum os_pt_op[]){ OS_PT_MAP, OS_PT_UNMAP, OS_PT_PROTECT, OS_PT_RESOLVE }[below(r, 4)];
    b->range = b->op != OS_PT_RESOLVE && below(r, 3) == 0;
    b->vaddr = hw_vaddr_to_canonical(r->cfg->vaddrs[below(r, r->cfg->nvaddrs)] & ~(HW_L1_ENTRY_SIZE - 1));
    b->pte.frame.base = r->cfg->frames[below(r, r->cfg->nframes)] & ~(HW_L1_ENTRY_SIZE - 1);
    b->pte.frame.size = r->cfg->sizes[below(r, r->cfg->nsizes)];
    b->pte.flags.is_writable = below(r, 2);
    b->flags = b->pte.flags;
    b->paddr = b->pte.frame.base;
    b->length = K4 * (1 + below(r, 4));
    bool maps = b->op == OS_PT_MAP;
    switch (below(r, 5)) {
    case 0: /* not canonical */
        b->vaddr = noncanon[below(r, 4)];
        if (b->range && below(r, 2)) /* or a range across the hole */
            b->vaddr = UINT64_C(0x00007fffffffe000), b->length = 0x4000;
        break;
    case 1: /* misaligned */
        if (b->range)
            b->length += 8;
        else if (maps && b->pte.frame.size > K4 && below(r, 2))
            b->pte.frame.base += K4;
        else if (maps && b->pte.frame.size > K4)
            b->vaddr += K4;
        else
            b->vaddr += 8;
        break;
    case 2: /* a size that is none */
        if (maps && !b->range)
            b->pte.frame.size = (uint64_t[]){ 0, 0x2000, 0x400000, 0x80000000 }[below(r, 4)];
        else
            b->vaddr = noncanon[0];
        break;
    case 3: /* an unknown flag */
        b->bad_flag = true;
        if (b->op == OS_PT_UNMAP || b->op == OS_PT_RESOLVE)
            b->vaddr += 8, b->bad_flag = b->op == OS_PT_RESOLVE ? false : b->bad_flag;
        if (b->op == OS_PT_RESOLVE)
            b->vaddr = noncanon[1];
        break;
    default: /* beyond MAXPHYADDR: at the limit, or starting below and ending above it */
        if (b->range) {
            b->paddr = below(r, 2) ? limit : limit - K4;
            b->length = 0x2000;
        } else {
            b->pte.frame.base = limit;
        }
        if (!maps)
            b->vaddr = noncanon[2];
        break;
    }
}

static void gen(struct runner *r, struct os_step *st)
{
    memset(st, 0, sizeof *st);
    int w = os_sbuf_writer(&r->c, &r->cur);
    if (w >= 0 && below(r, 8) == 0) { /* the oldest buffered store reaches memory */
        st->kind = OS_STEP_HW;
        st->hw.kind = HW_STEP_WRITEBACK;
        st->hw.core = os_core_of(&r->c, (unsigned)w);
        return;
    }
    if (r->c.hw.mmu_walks && below(r, 5) == 0) { /* a fifth of the steps: the rl3 hardware */
        below(r, 16) ? gen_mmu(r, st) : gen_frame_reuse(r, st);
        return;
    }
    unsigned x = below(r, 100);
    if (x < 30)
        gen_rw(r, st);
    else if (x < 40)
        gen_fill(r, st);
    else if (x < 46)
        gen_evict(r, st, below(r, os_ncores(&r->c)));
    else if (x < 50 && r->cfg->ad)
        gen_ad(r, st);

    else if (x < 62)
        gen_start(r, st);
    else if (x < 66)
        gen_resolve(r, st);
    else if (x < 67)
        gen_probe(r, st);
    else if (x < 69 && r->cfg->bad_calls)
        gen_bad(r, st);
    else
        gen_progress(r, st);
}

/* ---- running steps ------------------------------------------------------------------------- */

static bool runner_init(struct runner *r, const struct check_config *cfg, uint64_t seed, struct violation *v)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->rng = seed;
    r->lib = ptlib_new(cfg->pt_frames, seed);
    if (!r->lib)
        return false;
    check_consts(cfg, &r->c, ptlib_impl(r->lib));
    if (!os_init(&r->c, &r->cur)) {
        ptlib_free(r->lib);
        return false;
    }
    if (!os_checker_init(&r->k, &r->c, &r->cur, &v->check, v->why, sizeof v->why)) {
        v->found = true;
        return true;
    }
    return true;
}

static void runner_fini(struct runner *r)
{
    os_checker_fini(&r->k);
    os_vars_fini(&r->cur);
    ptlib_free(r->lib);
}

static void count(struct check_stats *s, const struct os_step *st, bool inflight)
{
    s->steps++;
    s->by_step[st->kind]++;
    switch (st->kind) {
    case OS_STEP_HW:
        switch (st->hw.kind) {
        case HW_STEP_READ_WRITE:
            if (st->rw.kind == HW_RESULT_PAGEFAULT)
                s->page_faults++;
            else if (st->hw.op.kind == HW_RW_STORE)
                s->stores++;
            else
                s->loads++;
            break;
        case HW_STEP_TLB_FILL: s->tlb_fills++; break;
        case HW_STEP_TLB_EVICT: s->tlb_evicts++; break;
        case HW_STEP_WALK_INIT: s->walk_inits++, s->cache_uses += st->hw.use_cache; break;
        case HW_STEP_WALK_STEP: s->walk_steps++; break;
        case HW_STEP_WALK_TLB_FILL: s->walk_fills++; break;
        case HW_STEP_WALK_ABORT: break;
        case HW_STEP_CACHE_FILL: s->cache_fills++; break;
        case HW_STEP_CACHE_EVICT: s->cache_evicts++; break;
        case HW_STEP_WRITEBACK: s->writebacks++; break;
        default: s->ad_updates++; break;
        }
        break;
    case OS_STEP_MAP_END: st->result_ok ? s->ops_ok[3 * st->range]++ : s->ops_err[3 * st->range]++; break;
    case OS_STEP_UNMAP_END: st->result_ok ? s->ops_ok[1 + 3 * st->range]++ : s->ops_err[1 + 3 * st->range]++; break;
    case OS_STEP_PROTECT_END: st->result_ok ? s->ops_ok[2 + 3 * st->range]++ : s->ops_err[2 + 3 * st->range]++; break;
    case OS_STEP_RANGE_STORE:
        s->range_stores++;
        s->splits += st->nsilent >= 512; /* a split fills a new directory, then swaps it in */
        break;
    case OS_STEP_UNMAP_INITIATE_SHOOTDOWN:
    case OS_STEP_PROTECT_INITIATE_SHOOTDOWN: s->shootdowns++; break;
    case OS_STEP_ACK_SHOOTDOWN_IPI: s->invalidations++; break;
    case OS_STEP_FRAME_REUSE: s->frame_reuses++; break;
    case OS_STEP_RESOLVE: st->result_ok ? s->resolves_ok++ : s->resolves_err++; break;
    case OS_STEP_ITERATE: s->iterations++; break;
    case OS_STEP_DESTROY_PROBE: s->destroys++; break;
    case OS_STEP_ADOPT_PROBE: s->adopts++; break;
    case OS_STEP_BAD_CALL: s->bad_calls++; break;
    default: break;
    }
    s->allocs_refused += st->alloc_failed;
    s->nomem += st->nomem && st->kind != OS_STEP_UNMAP_END && st->kind != OS_STEP_PROTECT_END; /* a range's OpEnd counted */
    if (st->accessed) {
        s->lib_loads += st->access == OS_LIB_LOAD;
        s->lib_stores += st->access == OS_LIB_STORE && st->kind != OS_STEP_HW;
        s->sbuf_stores += st->buffered;
        s->lib_cas += st->access == OS_LIB_CAS;
        s->lib_zeroes += st->access == OS_LIB_ZERO;
    }
    s->lib_silent += st->nsilent;
    s->ad_races += inflight && st->kind == OS_STEP_HW && st->hw.kind == HW_STEP_ACCESSED_DIRTY;
}

enum try_result { TRY_OK, TRY_DISABLED, TRY_UNSOUND, TRY_VIOLATION, TRY_NOMEM };

/* Try one step on r->cur; on TRY_OK the runner moved on. */
static enum try_result try_step(struct runner *r, struct os_step *st, bool allow_unsound, struct violation *v)
{
    struct os_vars s2;
    struct os_delta d;
    char why[512];
    enum os_step_status rs = os_next_step(&r->c, &r->cur, st, &s2, &d, why, sizeof why);
    if (rs == OS_STEP_DISABLED)
        return TRY_DISABLED;
    if (rs == OS_STEP_NOMEM)
        return TRY_NOMEM;
    if (rs == OS_STEP_VIOLATION) {
        v->found = true;
        v->check = os_check_of_step(st);
        snprintf(v->why, sizeof v->why, "%s", why);
        return TRY_VIOLATION;
    }
    if (!allow_unsound && r->cur.sound && !s2.sound) {
        os_vars_fini(&s2);
        return TRY_UNSOUND;
    }
    if (!os_checker_step(&r->k, &r->cur, &s2, st, &d, &v->check, v->why, sizeof v->why)) {
        v->found = true;
        os_vars_fini(&s2);
        return TRY_VIOLATION;
    }
    for (unsigned f = 0; f < r->c.pt_frames; f++)
        if ((s2.pt_free[f / 64] & ~r->cur.pt_free[f / 64]) >> (f % 64) & 1)
            r->hot = f + 1;
    os_vars_fini(&r->cur);
    r->cur = s2;
    return TRY_OK;
}

/* One random step: generate until one is enabled (a fill where a thread would read through
 * a missing TLB entry). */
static enum try_result random_step(struct runner *r, struct os_step *st, struct check_stats *stats,
                                   struct violation *v)
{
    for (unsigned attempt = 0; attempt < 64; attempt++) {
        gen(r, st);
        enum try_result t = try_step(r, st, false, v);
        if (t == TRY_UNSOUND)
            stats->skipped_unsound++;
        if (t == TRY_OK || t == TRY_VIOLATION || t == TRY_NOMEM)
            return t;
    }
    stats->stuck++;
    return TRY_DISABLED;
}

static void progress(uint64_t done, uint64_t total, double t0)
{
    static const int width = 40;
    int fill = (int)(done * width / (total ? total : 1));
    double rate = done / (now() - t0 + 1e-9);
    fprintf(stderr, "\r[%.*s%*s] %3d%% %" PRIu64 " steps, %.0f steps/s", fill,
            "########################################", width - fill, "", (int)(done * 100 / (total ? total : 1)),
            done, rate);
}

/* Run `steps` steps from the initial state with this seed; if record, keep the steps. */
static bool run_seed(const struct check_config *cfg, uint64_t seed, uint64_t steps, struct check_stats *stats,
                     struct violation *v, struct trace *record, bool show_progress)
{
    struct runner r;
    memset(v, 0, sizeof *v);
    v->seed = seed;
    if (!runner_init(&r, cfg, seed, v))
        return false;
    double t0 = now();
    for (uint64_t i = 0; i < steps && !v->found; i++) {
        struct os_step st;
        enum try_result t = random_step(&r, &st, stats, v);
        if (t == TRY_NOMEM)
            break;
        if (record && (t == TRY_OK || t == TRY_VIOLATION))
            trace_push(record, &st);
        if (t == TRY_OK)
            count(stats, &st, r.cur.run.buf != NULL);
        if (show_progress && (i & 0x3fff) == 0)
            progress(i, steps, t0);
    }
    if (show_progress)
        progress(steps, steps, t0), fputc('\n', stderr);
    runner_fini(&r);
    return true;
}

bool check_replay(const struct check_config *cfg, const struct os_step *steps, size_t n, struct violation *v)
{
    struct runner r;
    uint64_t seed = v->seed;
    memset(v, 0, sizeof *v);
    v->seed = seed;
    if (!runner_init(&r, cfg, seed, v))
        return false;
    for (size_t i = 0; i < n && !v->found; i++) {
        struct os_step st = steps[i];
        enum try_result t = try_step(&r, &st, true, v);
        if (t == TRY_OK || t == TRY_VIOLATION)
            trace_push(&v->trace, &st);
    }
    runner_fini(&r);
    return v->found;
}

void check_minimize(const struct check_config *cfg, struct violation *v, double budget_s)
{
    double t0 = now();
    size_t chunk = v->trace.n / 2;
    while (chunk >= 1 && now() - t0 < budget_s) {
        bool shrunk = false;
        for (size_t start = 0; start + chunk <= v->trace.n && now() - t0 < budget_s;) {
            size_t n = v->trace.n - chunk;
            struct os_step *cand = malloc((n ? n : 1) * sizeof *cand);
            if (!cand)
                return;
            for (size_t i = 0, j = 0; i < v->trace.n; i++)
                if (i < start || i >= start + chunk)
                    cand[j++] = v->trace.v[i].st;
            struct violation w;
            memset(&w, 0, sizeof w);
            w.seed = v->seed;
            /* the shorter trace must fail the same check (a trace that shows another failure
             * would not explain the one reported) */
            if (check_replay(cfg, cand, n, &w) && w.check == v->check && w.trace.n < v->trace.n) {
                trace_free(&v->trace);
                *v = w;
                shrunk = true;
            } else {
                trace_free(&w.trace);
                start += chunk;
            }
            free(cand);
        }
        if (!shrunk)
            chunk /= 2;
    }
}

void check_print_trace(FILE *f, const struct check_config *cfg, const struct violation *v)
{
    struct os_consts c;
    check_consts(cfg, &c, NULL);
    fprintf(f, "counterexample (seed %" PRIu64 ", %zu steps):\n", v->seed, v->trace.n);
    for (size_t i = 0; i < v->trace.n; i++) {
        char line[400];
        os_step_format(&c, &v->trace.v[i].st, line, sizeof line);
        fprintf(f, "  %4zu  %s\n", i + 1, line);
    }
    fprintf(f, "  FAILED %s: %s\n", os_check_name(v->check), v->why);
}

bool check_random_run(const struct check_config *cfg, uint64_t seed, struct check_stats *stats, struct violation *v)
{
    bool tty = cfg->progress && isatty(2);
    double t0 = now();
    if (!run_seed(cfg, seed, cfg->steps, stats, v, NULL, tty))
        return false;
    stats->seconds += now() - t0;
    stats->runs++;
    if (v->found) {
        stats->violations++;
        /* re-run the same seed recording the steps, then shrink the trace */
        uint64_t n = stats->steps;
        struct check_stats scratch;
        struct violation w;
        struct trace rec = { 0 };
        memset(&scratch, 0, sizeof scratch);
        (void)n;
        if (run_seed(cfg, seed, cfg->steps, &scratch, &w, &rec, false) && w.found) {
            w.trace = rec;
            check_minimize(cfg, &w, 20.0);
            trace_free(&v->trace);
            *v = w;
        } else {
            trace_free(&rec);
        }
    }
    return true;
}

int check_random(const struct check_config *cfg, struct check_stats *stats, struct violation *v)
{
    memset(v, 0, sizeof *v);
    for (uint64_t k = 0; k < cfg->runs; k++) {
        if (k % cfg->shard_n != cfg->shard_i)
            continue;
        if (!check_random_run(cfg, cfg->seed + k, stats, v)) {
            fprintf(stderr, "x86pt check: out of memory\n");
            return 2;
        }
        if (v->found)
            return 1;
    }
    return 0;
}

static const char *const op_names[6] = { "map", "unmap", "protect", "map_range", "unmap_range", "protect_range" };

void check_print_summary(FILE *f, const struct check_stats *s, bool violation)
{
    fprintf(f, "runs: %" PRIu64 "\n", s->runs);
    fprintf(f, "steps: %" PRIu64 "\n", s->steps);
    for (unsigned i = 0; i < 6; i++)
        if (i < 3 || s->ops_ok[i] || s->ops_err[i])
            fprintf(f, "operations %s: %" PRIu64 " ok, %" PRIu64 " err\n", op_names[i], s->ops_ok[i], s->ops_err[i]);
    if (s->range_stores)
        fprintf(f, "range stores: %" PRIu64 " (%" PRIu64 " with a split directory filled before)\n", s->range_stores,
                s->splits);
    fprintf(f, "page faults: %" PRIu64 "\n", s->page_faults);
    fprintf(f, "shootdowns: %" PRIu64 "\n", s->shootdowns);
    fprintf(f, "hardware: %" PRIu64 " stores, %" PRIu64 " loads, %" PRIu64 " TLB fills, %" PRIu64
               " TLB evictions, %" PRIu64 " A/D updates\n",
            s->stores, s->loads, s->tlb_fills, s->tlb_evicts, s->ad_updates);
    fprintf(f, "library accesses as steps: %" PRIu64 " loads, %" PRIu64 " stores, %" PRIu64 " cmpxchg, %" PRIu64
               " zeroings (+%" PRIu64 " to unlinked directories, folded in); %" PRIu64
               " A/D updates raced a library operation\n",
            s->lib_loads, s->lib_stores, s->lib_cas, s->lib_zeroes, s->lib_silent, s->ad_races);
    fprintf(f, "walks (rl3): %" PRIu64 " started (%" PRIu64 " from a cached entry), %" PRIu64 " entry reads, %" PRIu64
               " TLB fills; paging-structure caches: %" PRIu64 " fills, %" PRIu64 " evictions, %" PRIu64
               " invalidations by shootdown; %" PRIu64 " free frames reused\n",
            s->walk_inits, s->cache_uses, s->walk_steps, s->walk_fills, s->cache_fills, s->cache_evicts,
            s->invalidations, s->frame_reuses);
    fprintf(f, "resolves: %" PRIu64 " found, %" PRIu64 " not mapped; iterations: %" PRIu64 "; destroy probes: %" PRIu64
               "; adopt probes: %" PRIu64 "; refused calls: %" PRIu64 "\n",
            s->resolves_ok, s->resolves_err, s->iterations, s->destroys, s->adopts, s->bad_calls);
    fprintf(f, "allocator: %" PRIu64 " allocations refused, %" PRIu64 " operations returned X86PT_E_NOMEM\n",
            s->allocs_refused, s->nomem);
    fprintf(f, "store buffers (TSO): %" PRIu64 " library stores buffered, %" PRIu64 " writebacks\n", s->sbuf_stores,
            s->writebacks);
    fprintf(f, "steps by kind:");
    for (unsigned k = 0; k < OS_STEP_KIND_COUNT; k++)
        if (s->by_step[k])
            fprintf(f, " %s=%" PRIu64, os_step_name(k), s->by_step[k]);
    fprintf(f, "\nskipped unsound starts: %" PRIu64 "\n", s->skipped_unsound);
    double rate = s->seconds > 0 ? (double)s->steps / s->seconds : 0;
    fprintf(f, "steps/s: %.0f\n", rate);
    fprintf(f, "verdict: %s\n", violation || s->violations ? "VIOLATION" : "refinement holds");
    fprintf(f, "checked %" PRIu64 " steps at %.0f steps/s\n", s->steps, rate);
}

#define SHARD_FIELDS(X)                                                                               \
    X(runs) X(steps) X(violations) X(page_faults) X(shootdowns) X(tlb_fills) X(tlb_evicts) X(ad_updates) \
        X(stores) X(loads) X(skipped_unsound) X(stuck) X(range_stores) X(splits) X(lib_loads) X(lib_stores)  \
            X(lib_cas) X(lib_zeroes) X(lib_silent) X(ad_races) X(walk_inits) X(cache_uses) X(walk_steps)       \
                X(walk_fills) X(cache_fills) X(cache_evicts) X(invalidations) X(frame_reuses) X(sbuf_stores) X(writebacks) X(resolves_ok) X(resolves_err) X(destroys) X(adopts) X(bad_calls) X(allocs_refused) X(nomem) X(iterations)

void check_print_shard_line(FILE *f, const struct check_config *cfg, const struct check_stats *s)
{
    fprintf(f, "shard: %u/%u config=%016" PRIx64 " seed=%" PRIu64, cfg->shard_i, cfg->shard_n,
            check_config_fingerprint(cfg), cfg->seed);
#define PRINT(n) fprintf(f, " " #n "=%" PRIu64, s->n);
    SHARD_FIELDS(PRINT)
#undef PRINT
    for (unsigned i = 0; i < 6; i++)
        fprintf(f, " %s_ok=%" PRIu64 " %s_err=%" PRIu64, op_names[i], s->ops_ok[i], op_names[i], s->ops_err[i]);
    fprintf(f, " seconds=%.3f\n", s->seconds);
}

bool check_parse_shard_header(const char *line, struct shard_id *id)
{
    const char *p = strstr(line, "shard:");
    unsigned long long fp, seed;
    if (!p || sscanf(p, "shard: %u/%u config=%16llx seed=%llu", &id->i, &id->n, &fp, &seed) != 4)
        return false;
    id->config = fp;
    id->seed = seed;
    return strstr(p, " seconds=") != NULL; /* the line is whole (a shard that died mid-write is not) */
}

bool check_parse_shard_line(const char *line, struct check_stats *s)
{
    const char *p = strstr(line, "shard:");
    if (!p)
        return false;
    char key[64];
    double val;
    int used;
    for (p = strstr(p, " seed="); p && sscanf(p, " %63[a-z_]=%lf%n", key, &val, &used) == 2; p += used) {
#define ADD(n)                                                                                        \
    if (!strcmp(key, #n))                                                                             \
        s->n += (uint64_t)val;
        SHARD_FIELDS(ADD)
#undef ADD
        for (unsigned i = 0; i < 6; i++) {
            char k1[32], k2[32];
            snprintf(k1, sizeof k1, "%s_ok", op_names[i]);
            snprintf(k2, sizeof k2, "%s_err", op_names[i]);
            if (!strcmp(key, k1))
                s->ops_ok[i] += (uint64_t)val;
            if (!strcmp(key, k2))
                s->ops_err[i] += (uint64_t)val;
        }
        if (!strcmp(key, "seconds"))
            s->seconds += val;
    }
    return true;
}

/* ---- combining shards ---------------------------------------------------------------------- */

#define COMBINE_MAX_SHARDS 65536u

int check_combine(int nfiles, char **files, FILE *out, FILE *err)
{
    struct check_stats s;
    struct shard_id first = { 0 }, id;
    unsigned char *seen = NULL;
    unsigned shards = 0;
    int rc = 0;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < nfiles && !rc; i++) {
        FILE *f = strcmp(files[i], "-") ? fopen(files[i], "r") : stdin;
        char line[4096];
        if (!f) {
            fprintf(err, "x86pt check combine: cannot open %s\n", files[i]);
            rc = 2;
            break;
        }
        while (!rc && fgets(line, sizeof line, f)) {
            if (!strstr(line, "shard:"))
                continue;
            if (!check_parse_shard_header(line, &id) || !id.n || id.n > COMBINE_MAX_SHARDS || id.i >= id.n) {
                fprintf(err, "x86pt check combine: %s: a malformed or cut-off shard line (did that shard die?)\n",
                        files[i]);
                rc = 2;
            } else if (!shards && !(seen = calloc(id.n, 1))) {
                rc = 2;
            } else if (shards && (id.n != first.n || id.config != first.config || id.seed != first.seed)) {
                fprintf(err, "x86pt check combine: %s: shard %u/%u (config %016llx, seed %llu) is not of the same run "
                        "as shard %u/%u (config %016llx, seed %llu)\n", files[i], id.i, id.n,
                        (unsigned long long)id.config, (unsigned long long)id.seed, first.i, first.n,
                        (unsigned long long)first.config, (unsigned long long)first.seed);
                rc = 2;
            } else if (seen[id.i]) {
                fprintf(err, "x86pt check combine: %s: shard %u/%u given twice\n", files[i], id.i, id.n);
                rc = 2;
            } else {
                if (!shards)
                    first = id;
                seen[id.i] = 1;
                shards++;
                check_parse_shard_line(line, &s);
            }
        }
        if (f != stdin)
            fclose(f);
    }
    if (!rc && !shards) {
        fprintf(err, "x86pt check combine: no shard lines\n");
        rc = 2;
    }
    for (unsigned i = 0; !rc && i < first.n; i++)
        if (!seen[i]) {
            fprintf(err, "x86pt check combine: shard %u/%u is missing (it died, or its output was not given): no "
                    "verdict\n", i, first.n);
            rc = 2;
        }
    free(seen);
    if (rc)
        return rc;
    fprintf(out, "shards: %u\n", shards);
    check_print_summary(out, &s, s.violations > 0);
    return s.violations ? 1 : 0;
}
