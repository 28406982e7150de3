/* Deferred frees (x86pt_gather): the directories an unmap empties go into the
 * caller's gather, zeroed and unlinked, and reach free_frame only through
 * x86pt_gather_release; a gather without room refuses the call before it
 * changes anything. Expected directories are found by walking the raw tree
 * here (SDM vol. 3A §4.5: an entry's bits 51..12 hold the next directory). */
#include "fixture.h"

#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
#define K4 X86PT_PAGE_4K
#define M2 X86PT_PAGE_2M
#define G1 X86PT_PAGE_1G
#define ADDR_BITS 0x000ffffffffff000ull

/* Every free_frame call, then forwarded to the simulated allocator. */
struct free_log {
    struct sim_phys *s;
    unsigned n;
    uint64_t frames[1024];
};

static void logged_free(void *ctx, x86pt_paddr_t frame)
{
    struct free_log *log = ctx;
    assert_true(log->n < 1024);
    log->frames[log->n++] = frame.pa;
    struct x86pt_mem m = sim_phys_mem(log->s);
    m.free_frame(log->s, frame);
}

static bool logged_alloc(void *ctx, x86pt_paddr_t *frame)
{
    struct free_log *log = ctx;
    struct x86pt_mem m = sim_phys_mem(log->s);
    return m.alloc_frame(log->s, frame);
}

static struct fx *fresh(struct free_log *log)
{
    struct fx *f = fx_new(16ull << 20, 52, false);
    log->s = &f->s;
    log->n = 0;
    f->pt.mem.ctx = log;
    f->pt.mem.alloc_frame = logged_alloc;
    f->pt.mem.free_frame = logged_free;
    return f;
}

/* The directory at layer (1 PDPT, 2 PD, 3 PT) on the way to va, read from raw memory. */
static uint64_t dir_on_path(struct fx *f, uint64_t va, unsigned layer)
{
    uint64_t dir = f->pt.root.pa;
    for (unsigned l = 0; l < layer; l++) {
        uint64_t e = ((const uint64_t *)(f->s.mem + dir))[(va >> (39 - 9 * l)) & 511];
        assert_true(e & 1);
        dir = e & ADDR_BITS;
    }
    return dir;
}

static uint64_t root_entry(struct fx *f, uint64_t va)
{
    return ((const uint64_t *)(f->s.mem + f->pt.root.pa))[(va >> 39) & 511];
}

static bool frame_is_zero(struct fx *f, uint64_t pa)
{
    static const uint8_t zero[4096];
    return memcmp(f->s.mem + pa, zero, sizeof zero) == 0;
}

/* Directories reachable now; the tree's invariants hold (its count of live
 * frames is not the tree's while frames sit in a gather). */
static uint64_t tree_dirs(struct fx *f)
{
    struct tree_report r = tree_scan(&f->s, f->pt.root.pa, f->pt.maxphyaddr, NULL);
    if (r.violation)
        fail_msg("tree invariant broken: %s at %#llx", r.violation, (unsigned long long)r.where);
    return r.dirs;
}

static void map4k(struct fx *f, uint64_t va)
{
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x40000000), K4, X86PT_WRITABLE, NULL), X86PT_OK);
}

/* The last page under a PML4 slot: its PT, PD and PDPT land in the gather, bottom
 * up, zeroed and unlinked; free_frame is not called; the report is the usual one. */
static void unmap_gathers_emptied_directories(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    uint64_t va = 0x0000008000201000ull; /* PML4 1, PDPT 0, PD 1, PT 1 */
    map4k(f, va);
    uint64_t pdpt = dir_on_path(f, va, 1), pd = dir_on_path(f, va, 2), pt = dir_on_path(f, va, 3);
    x86pt_paddr_t storage[3];
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 3);
    struct x86pt_flush fl;
    struct x86pt_mapping m;
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(va), &m, &fl, &g), X86PT_OK);
    assert_int_equal(m.frame.pa, 0x40000000);
    assert_int_equal(g.count, 3);
    assert_int_equal(storage[0].pa, pt);
    assert_int_equal(storage[1].pa, pd);
    assert_int_equal(storage[2].pa, pdpt);
    assert_int_equal(log.n, 0);
    for (unsigned i = 0; i < 3; i++)
        assert_true(frame_is_zero(f, storage[i].pa));
    assert_int_equal(root_entry(f, va), 0);
    assert_int_equal(tree_dirs(f), 1);
    assert_int_equal(f->s.live, 4); /* still the caller's: root + 3 gathered */
    assert_int_equal(fl.start.va, va);
    assert_int_equal(fl.length, K4);
    assert_int_equal(fl.dirs_freed, 3);
    assert_int_equal(x86pt_resolve(&f->pt, VA(va), &m), X86PT_E_NOTMAPPED);
    fx_free(f);
}

/* Release gives each gathered frame to free_frame exactly once, in gather order,
 * and empties the gather; a second release frees nothing; nothing leaks. */
static void release_frees_each_frame_once(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    uint64_t va = 0x1000;
    map4k(f, va);
    uint64_t pdpt = dir_on_path(f, va, 1), pd = dir_on_path(f, va, 2), pt = dir_on_path(f, va, 3);
    x86pt_paddr_t storage[4];
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 4);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(va), NULL, NULL, &g), X86PT_OK);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(g.count, 0);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.frames[0], pt);
    assert_int_equal(log.frames[1], pd);
    assert_int_equal(log.frames[2], pdpt);
    x86pt_gather_release(&f->pt, &g);
    x86pt_gather_release(&f->pt, NULL);
    assert_int_equal(log.n, 3);
    assert_int_equal(f->s.live, 1);
    assert_int_equal(f->s.bad_frees, 0); /* zeroed and owned, as free_frame requires */
    assert_int_equal(fx_check_tree(f, NULL), 1);
    x86pt_destroy(&f->pt);
    assert_int_equal(f->s.live, 0);
    fx_free(f);
}

/* Gathered frames stay allocated, so a map before the release cannot be given
 * one of them: the whole point (no reuse while a stale walk may read them). */
static void gathered_frames_are_not_reused_before_release(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    map4k(f, 0x1000);
    x86pt_paddr_t storage[3];
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 3);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x1000), NULL, NULL, &g), X86PT_OK);
    map4k(f, 0x1000);
    for (unsigned l = 1; l <= 3; l++)
        for (unsigned i = 0; i < 3; i++)
            assert_int_not_equal(dir_on_path(f, 0x1000, l), storage[i].pa);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(f->s.live, 4);
    assert_int_equal(fx_check_tree(f, NULL), 4);
    fx_free(f);
}

/* An unmap that empties nothing needs no room: a gather of capacity 0 serves it.
 * One that empties only its page table needs exactly 1. The last page then goes
 * through a hinted walk (the page table's hint) and still finds the 2 above. */
static void room_needed_is_exactly_what_empties(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    /* PD 0 holds PT a (pages 0x1000, 0x2000); PD slot 1 holds PT b (page 0x200000). */
    map4k(f, 0x1000);
    map4k(f, 0x2000);
    map4k(f, 0x200000);
    uint64_t pt_a = dir_on_path(f, 0x1000, 3), pt_b = dir_on_path(f, 0x200000, 3);
    uint64_t pd = dir_on_path(f, 0x1000, 2), pdpt = dir_on_path(f, 0x1000, 1);
    struct x86pt_gather none;
    x86pt_gather_init(&none, NULL, 0);
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x2000), NULL, &fl, &none), X86PT_OK);
    assert_int_equal(fl.dirs_freed, 0);
    assert_int_equal(none.count, 0);
    /* 0x1000 is now the last page of PT a: 1 directory; capacity 0 is refused. */
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x1000), NULL, &fl, &none), X86PT_E_GATHER_FULL);
    x86pt_paddr_t one[1];
    struct x86pt_gather g1;
    x86pt_gather_init(&g1, one, 1);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x1000), NULL, &fl, &g1), X86PT_OK);
    assert_int_equal(g1.count, 1);
    assert_int_equal(one[0].pa, pt_a);
    assert_int_equal(fl.dirs_freed, 1);
    /* 0x200000: its PT, then PD and PDPT empty too; resolve first so the unmap walks from the hint. */
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x200000), &m), X86PT_OK);
    x86pt_paddr_t three[3];
    struct x86pt_gather g3;
    x86pt_gather_init(&g3, three, 3);
    g3.count = 1; /* room for 2: refused */
    three[0] = PA(0xdead000);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x200000), NULL, &fl, &g3), X86PT_E_GATHER_FULL);
    assert_int_equal(g3.count, 1);
    assert_int_equal(three[0].pa, 0xdead000);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x200000), &m), X86PT_OK);
    g3.count = 0;
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x200000), NULL, &fl, &g3), X86PT_OK);
    assert_int_equal(g3.count, 3);
    assert_int_equal(three[0].pa, pt_b);
    assert_int_equal(three[1].pa, pd);
    assert_int_equal(three[2].pa, pdpt);
    assert_int_equal(fl.dirs_freed, 3);
    assert_int_equal(log.n, 0);
    x86pt_gather_release(&f->pt, &g1);
    x86pt_gather_release(&f->pt, &g3);
    assert_int_equal(log.n, 4);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* GATHER_FULL: all page-table memory, the counts, the live frames, the gather,
 * *removed and the report are as before, and nothing was freed. */
static void gather_full_changes_nothing(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    uint64_t va = 0xffff800000000000ull; /* upper half, PML4 256 */
    map4k(f, va);
    x86pt_paddr_t storage[2] = {PA(0x111000), PA(0x222000)};
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 2);
    struct x86pt_mapping m;
    memset(&m, 0x5a, sizeof m);
    struct x86pt_mapping m_before = m;
    struct x86pt_flush fl = {VA(1), 2, 3, true, true, true};
    struct snapshot sn = snap_take(f);
    uint8_t *whole = malloc(f->s.bytes);
    assert_non_null(whole);
    memcpy(whole, f->s.mem, f->s.bytes);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(va), &m, &fl, &g), X86PT_E_GATHER_FULL);
    assert_memory_equal(f->s.mem, whole, f->s.bytes); /* every byte of memory, free frames too */
    snap_assert_same(f, &sn);
    assert_memory_equal(&m, &m_before, sizeof m);
    assert_int_equal(fl.length, 0);
    assert_int_equal(fl.dirs_freed, 0);
    assert_int_equal(g.count, 0);
    assert_int_equal(storage[0].pa, 0x111000);
    assert_int_equal(storage[1].pa, 0x222000);
    assert_int_equal(log.n, 0);
    assert_int_equal(x86pt_resolve(&f->pt, VA(va), &m), X86PT_OK);
    free(whole);
    fx_free(f);
}

/* A malformed gather is X86PT_E_INVAL and changes nothing; its release does nothing. */
static void malformed_gather_is_refused(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    map4k(f, 0x1000);
    x86pt_paddr_t storage[3];
    struct x86pt_gather over = {storage, 3, 4}, no_storage = {NULL, 3, 0};
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x1000), NULL, NULL, &over), X86PT_E_INVAL);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x1000), NULL, NULL, &no_storage), X86PT_E_INVAL);
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), M2, X86PT_STRADDLE_FAIL, NULL, &over), X86PT_E_INVAL);
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), M2, X86PT_STRADDLE_FAIL, NULL, &no_storage),
                     X86PT_E_INVAL);
    x86pt_gather_release(&f->pt, &over);
    assert_int_equal(over.count, 4);
    snap_assert_same(f, &sn);
    assert_int_equal(log.n, 0);
    fx_free(f);
}

/* Gather NULL is the plain call: directories go to free_frame inside it. */
static void gather_null_frees_at_once(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    map4k(f, 0x1000);
    uint64_t pt = dir_on_path(f, 0x1000, 3);
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(0x1000), NULL, &fl, NULL), X86PT_OK);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.frames[0], pt);
    assert_int_equal(fl.dirs_freed, 3);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    /* 8 MiB of 4 KiB pages: 4 PTs, their PD and PDPT; all 6 freed inside the range call. */
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), 8ull << 20, 0, X86PT_ONLY_4K, NULL), X86PT_OK);
    log.n = 0;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), 8ull << 20, X86PT_STRADDLE_FAIL, &fl, NULL), X86PT_OK);
    assert_int_equal(log.n, 6);
    assert_int_equal(fl.dirs_freed, 6);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* One gather across calls accumulates, in call order, until its release. */
static void gather_reused_across_calls_accumulates(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    uint64_t a = 0x1000, b = 0x0000008000000000ull, c = 0x0000010000000000ull; /* PML4 0, 1, 2 */
    map4k(f, a);
    map4k(f, b);
    map4k(f, c);
    uint64_t expect[9];
    for (unsigned i = 0; i < 3; i++)
        for (unsigned l = 0; l < 3; l++)
            expect[3 * i + l] = dir_on_path(f, (uint64_t[]){a, b, c}[i], 3 - l);
    x86pt_paddr_t storage[9];
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 9);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(a), NULL, NULL, &g), X86PT_OK);
    assert_int_equal(g.count, 3);
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(b), K4, X86PT_STRADDLE_FAIL, NULL, &g), X86PT_OK);
    assert_int_equal(g.count, 6);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(c), NULL, NULL, &g), X86PT_OK);
    assert_int_equal(g.count, 9);
    for (unsigned i = 0; i < 9; i++)
        assert_int_equal(storage[i].pa, expect[i]);
    assert_int_equal(log.n, 0);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(log.n, 9);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    /* Full gather, reused after its release. */
    map4k(f, a);
    assert_int_equal(x86pt_unmap_gather(&f->pt, VA(a), NULL, NULL, &g), X86PT_OK);
    assert_int_equal(g.count, 3);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

static bool gathered(const struct x86pt_gather *g, uint64_t pa)
{
    for (unsigned i = 0; i < g->count; i++)
        if (g->frames[i].pa == pa)
            return true;
    return false;
}

/* unmap_range over [0, 8 MiB) of 4 KiB pages with a page kept at 1 GiB: the 4 PTs
 * and PD 0 empty (5), the PDPT stays. Room for 4 is refused with nothing
 * changed and no allocation; room for 5 succeeds. A partial range keeping the
 * first and last page empties the 2 PTs in between. */
static void unmap_range_needs_exactly_the_emptied_directories(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    uint64_t len = 8ull << 20;
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), len, 0, X86PT_ONLY_4K, NULL), X86PT_OK);
    map4k(f, G1);
    uint64_t pts[4], pd = dir_on_path(f, 0, 2);
    for (unsigned i = 0; i < 4; i++)
        pts[i] = dir_on_path(f, i * M2, 3);
    x86pt_paddr_t storage[5];
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 4);
    struct snapshot sn = snap_take(f);
    uint64_t calls = f->s.alloc_calls;
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), len, X86PT_STRADDLE_SPLIT, &fl, &g), X86PT_E_GATHER_FULL);
    snap_assert_same(f, &sn);
    assert_int_equal(f->s.alloc_calls, calls);
    assert_int_equal(fl.length, 0);
    assert_int_equal(g.count, 0);
    g.capacity = 5;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), len, X86PT_STRADDLE_FAIL, &fl, &g), X86PT_OK);
    assert_int_equal(g.count, 5);
    for (unsigned i = 0; i < 4; i++)
        assert_true(gathered(&g, pts[i]));
    assert_true(gathered(&g, pd));
    for (unsigned i = 0; i < 5; i++)
        assert_true(frame_is_zero(f, storage[i].pa));
    assert_int_equal(fl.dirs_freed, 5);
    assert_true(fl.flush_all);
    assert_int_equal(log.n, 0);
    assert_int_equal(tree_dirs(f), 4); /* root, PDPT, PD and PT of 1 GiB */
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(log.n, 5);
    assert_int_equal(fx_check_tree(f, NULL), 4);

    /* Partial: pages 0 and 8 MiB - 4 KiB stay, so PTs 0 and 3 (and the PD) stay. */
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), len, 0, X86PT_ONLY_4K, NULL), X86PT_OK);
    uint64_t mid1 = dir_on_path(f, M2, 3), mid2 = dir_on_path(f, 2 * M2, 3);
    x86pt_gather_init(&g, storage, 1);
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(K4), len - 2 * K4, X86PT_STRADDLE_FAIL, &fl, &g),
                     X86PT_E_GATHER_FULL);
    g.capacity = 2;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(K4), len - 2 * K4, X86PT_STRADDLE_FAIL, &fl, &g), X86PT_OK);
    assert_int_equal(g.count, 2);
    assert_true(gathered(&g, mid1) && gathered(&g, mid2));
    assert_int_equal(fl.dirs_freed, 2);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(fx_check_tree(f, NULL), 7); /* root, PDPT, PD 0 with PTs 0 and 3, PD and PT of 1 GiB */
    fx_free(f);
}

/* Many emptied directories: one 4 KiB page in each 2 MiB of a PML4 slot's first
 * GiB gives 512 PTs under one PD under one PDPT; the range frees all 514. */
static void unmap_range_gathers_many_directories(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    uint64_t base = 0x0000058000000000ull; /* PML4 11 */
    for (unsigned i = 0; i < 512; i++)
        map4k(f, base + i * M2 + (i % 512) * K4);
    assert_int_equal(tree_dirs(f), 1 + 1 + 1 + 512);
    static x86pt_paddr_t storage[514];
    struct x86pt_gather g;
    x86pt_gather_init(&g, storage, 513);
    struct snapshot sn = snap_take(f);
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(base), G1, X86PT_STRADDLE_FAIL, &fl, &g), X86PT_E_GATHER_FULL);
    snap_assert_same(f, &sn);
    g.capacity = 514;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(base), G1, X86PT_STRADDLE_FAIL, &fl, &g), X86PT_OK);
    assert_int_equal(g.count, 514);
    assert_int_equal(fl.dirs_freed, 514);
    assert_int_equal(log.n, 0);
    assert_int_equal(root_entry(f, base), 0);
    assert_int_equal(tree_dirs(f), 1);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(log.n, 514);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* A split never feeds the gather (its new directory keeps the straddling part):
 * 4 KiB pages at 0 and 4 KiB, a 2 MiB page at 2 MiB; unmapping [0, 2 MiB + 4 KiB)
 * splits the 2 MiB page (one new PT, 511 pages left) and empties only PT 0. */
static void unmap_range_split_gathers_only_what_empties(void **state)
{
    (void)state;
    struct free_log log;
    struct fx *f = fresh(&log);
    map4k(f, 0);
    map4k(f, K4);
    assert_int_equal(x86pt_map(&f->pt, VA(M2), PA(0x40000000), M2, X86PT_WRITABLE, NULL), X86PT_OK);
    uint64_t pt0 = dir_on_path(f, 0, 3);
    struct x86pt_gather none;
    x86pt_gather_init(&none, NULL, 0);
    struct snapshot sn = snap_take(f);
    uint64_t calls = f->s.alloc_calls;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), M2 + K4, X86PT_STRADDLE_SPLIT, NULL, &none),
                     X86PT_E_GATHER_FULL);
    snap_assert_same(f, &sn);
    assert_int_equal(f->s.alloc_calls, calls); /* refused before the split's allocation */
    x86pt_paddr_t one[1];
    struct x86pt_gather g;
    x86pt_gather_init(&g, one, 1);
    struct x86pt_flush fl;
    assert_int_equal(x86pt_unmap_range_gather(&f->pt, VA(0), M2 + K4, X86PT_STRADDLE_SPLIT, &fl, &g), X86PT_OK);
    assert_int_equal(g.count, 1);
    assert_int_equal(one[0].pa, pt0);
    assert_int_equal(fl.dirs_freed, 1);
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(M2 + K4), &m), X86PT_OK);
    assert_int_equal(m.frame.pa, 0x40000000 + K4);
    assert_int_equal(m.size, K4);
    x86pt_gather_release(&f->pt, &g);
    assert_int_equal(fx_check_tree(f, NULL), 4); /* root, PDPT, PD, the split's PT */
    fx_free(f);
}

static uint64_t rng = 12;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random tables in a small space, two twins built alike: on twin A a plain
 * unmap or unmap_range frees directories at once, and the test's own walker
 * counts them (directories before + allocated - directories after); twin B, given
 * a gather one short, is refused with nothing changed, then with exactly that
 * room gathers that many; after the release both twins' memory is identical. */
static void random_gathers_match_plain_frees(void **state)
{
    (void)state;
    struct fx *a = fx_new(4ull << 20, 52, false), *b = fx_new(4ull << 20, 52, false);
    static x86pt_paddr_t storage[1024];
    unsigned ops = 0, refused = 0, freed_total = 0;
    for (unsigned i = 0; i < 3000; i++) {
        uint64_t size = (uint64_t[]){K4, K4, K4, M2}[rnd() % 4];
        uint64_t va = ((rnd() % 2) << 39 | (rnd() % 2) << 30 | (rnd() % 4) << 21 | (rnd() % 8) << 12) & ~(size - 1);
        unsigned what = rnd() % 3;
        if (what == 0) {
            x86pt_status_t sa = x86pt_map(&a->pt, VA(va), PA(0), size, 0, NULL);
            assert_int_equal(x86pt_map(&b->pt, VA(va), PA(0), size, 0, NULL), sa);
            continue;
        }
        uint64_t len = what == 2 ? (1 + rnd() % 1024) * K4 : 0;
        enum x86pt_straddle how = rnd() % 2 ? X86PT_STRADDLE_SPLIT : X86PT_STRADDLE_FAIL;
        uint64_t dirs_before = tree_dirs(a), allocs_before = a->s.allocs;
        struct x86pt_flush fa, fb;
        x86pt_status_t sa = len ? x86pt_unmap_range(&a->pt, VA(va), len, how, &fa) : x86pt_unmap(&a->pt, VA(va), NULL, &fa);
        if (sa != X86PT_OK) {
            assert_true(sa == X86PT_E_NOTMAPPED || sa == X86PT_E_STRADDLE);
            continue;
        }
        unsigned freed = (unsigned)(dirs_before + (a->s.allocs - allocs_before) - tree_dirs(a));
        assert_int_equal(fa.dirs_freed, freed);
        struct x86pt_gather g;
        if (freed > 0) {
            x86pt_gather_init(&g, storage, freed - 1);
            struct snapshot sn = snap_take(b);
            x86pt_status_t sb = len ? x86pt_unmap_range_gather(&b->pt, VA(va), len, how, &fb, &g)
                                    : x86pt_unmap_gather(&b->pt, VA(va), NULL, &fb, &g);
            assert_int_equal(sb, X86PT_E_GATHER_FULL);
            assert_int_equal(g.count, 0);
            snap_assert_same(b, &sn);
            refused++;
        }
        x86pt_gather_init(&g, storage, freed);
        x86pt_status_t sb = len ? x86pt_unmap_range_gather(&b->pt, VA(va), len, how, &fb, &g)
                                : x86pt_unmap_gather(&b->pt, VA(va), NULL, &fb, &g);
        assert_int_equal(sb, X86PT_OK);
        assert_int_equal(g.count, freed);
        assert_int_equal(fa.start.va, fb.start.va);
        assert_int_equal(fa.length, fb.length);
        assert_int_equal(fa.dirs_freed, fb.dirs_freed);
        assert_int_equal(fa.flush_all, fb.flush_all);
        x86pt_gather_release(&b->pt, &g);
        assert_memory_equal(a->s.mem, b->s.mem, a->s.bytes);
        freed_total += freed;
        ops++;
    }
    print_message("%u unmaps, %u refused one short, %u directories gathered\n", ops, refused, freed_total);
    assert_true(refused > 100);
    fx_check_tree(a, NULL);
    fx_check_tree(b, NULL);
    fx_free(a);
    fx_free(b);
}

/* The new status has its own name. */
static void gather_full_has_a_name(void **state)
{
    (void)state;
    assert_non_null(strstr(x86pt_strerror(X86PT_E_GATHER_FULL), "X86PT_E_GATHER_FULL"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unmap_gathers_emptied_directories),
        cmocka_unit_test(release_frees_each_frame_once),
        cmocka_unit_test(gathered_frames_are_not_reused_before_release),
        cmocka_unit_test(room_needed_is_exactly_what_empties),
        cmocka_unit_test(gather_full_changes_nothing),
        cmocka_unit_test(malformed_gather_is_refused),
        cmocka_unit_test(gather_null_frees_at_once),
        cmocka_unit_test(gather_reused_across_calls_accumulates),
        cmocka_unit_test(unmap_range_needs_exactly_the_emptied_directories),
        cmocka_unit_test(unmap_range_gathers_many_directories),
        cmocka_unit_test(unmap_range_split_gathers_only_what_empties),
        cmocka_unit_test(random_gathers_match_plain_frees),
        cmocka_unit_test(gather_full_has_a_name),
    };
    return cmocka_run_group_tests_name("deferred frees (gather)", tests, NULL, NULL);
}
