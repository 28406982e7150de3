/* The library's operations, one property per test, checked against hand-derived
 * entry values (Intel SDM vol. 3A §4.5) and the raw tree. */
#include "fixture.h"

#define MB16 (16ull << 20)
#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
static bool translated_mode;

static struct fx *fresh(void) { return fx_new(MB16, 52, translated_mode); }

static uint64_t *entry_at(struct fx *f, uint64_t dir, unsigned idx)
{
    return (uint64_t *)(f->s.mem + dir) + idx;
}

/* Follows directory entries down from the root, by the given indices. */
static uint64_t dir_by_path(struct fx *f, const unsigned *idx, unsigned depth)
{
    uint64_t dir = f->pt.root.pa;
    for (unsigned l = 0; l < depth; l++)
        dir = *entry_at(f, dir, idx[l]) & 0x000ffffffffff000ull;
    return dir;
}

/* A new page table is one zeroed root and nothing else. */
static void init_gives_one_zeroed_root(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(f->s.live, 1);
    for (unsigned i = 0; i < 512; i++)
        assert_int_equal(*entry_at(f, f->pt.root.pa, i), 0);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* va 0x0000008040201000 has index 1 at every layer; the leaf is pa|P|RW|US|XD and
 * each directory entry is its frame|P|RW|US (SDM tables 4-15, 4-17, 4-19, 4-20). */
static void map_4k_writes_sdm_encoding(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    assert_int_equal(x86pt_map(&f->pt, VA(0x0000008040201000ull), PA(0x123456000ull), X86PT_PAGE_4K,
                               X86PT_WRITABLE | X86PT_USER | X86PT_NO_EXECUTE, &fl),
                     X86PT_OK);
    assert_int_equal(fl.length, 0); /* not-present entries are never cached */
    unsigned path[3] = {1, 1, 1};
    for (unsigned l = 0; l < 3; l++) {
        uint64_t e = *entry_at(f, dir_by_path(f, path, l), 1);
        assert_int_equal(e & 0xfff0000000000fffull, 0x7);
    }
    assert_int_equal(*entry_at(f, dir_by_path(f, path, 3), 1), 0x8000000123456007ull);
    assert_int_equal(fx_check_tree(f, NULL), 4);
    fx_free(f);
}

/* A 2 MiB leaf sits in the PD with PS (bit 7); a 1 GiB leaf in the PDPT with PS. */
static void map_huge_sets_ps_at_right_layer(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x40200000ull), PA(0x80000000ull), X86PT_PAGE_2M, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x8000000000ull), PA(0xc0000000ull), X86PT_PAGE_1G, X86PT_WRITABLE, NULL),
                     X86PT_OK);
    unsigned p2[2] = {0, 1};
    assert_int_equal(*entry_at(f, dir_by_path(f, p2, 2), 1), 0x80000081ull);
    unsigned p1[1] = {1};
    assert_int_equal(*entry_at(f, dir_by_path(f, p1, 1), 0), 0xc0000083ull);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* Resolve reports the mapping containing an address: base, frame, size, flags. */
static void resolve_finds_containing_mapping(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_mapping m;
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000ull), PA(0x400000ull), X86PT_PAGE_2M, X86PT_USER, NULL), X86PT_OK);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x2fffffull), &m), X86PT_OK);
    assert_int_equal(m.base.va, 0x200000ull);
    assert_int_equal(m.frame.pa, 0x400000ull);
    assert_int_equal(m.size, X86PT_PAGE_2M);
    assert_int_equal(m.flags, X86PT_USER);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x400000ull), &m), X86PT_E_NOTMAPPED);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x0000800000000000ull), &m), X86PT_E_NONCANONICAL);
    fx_free(f);
}

/* Upper-half canonical addresses use PML4 slots 256..511 and come back canonical. */
static void upper_half_is_supported(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_mapping m;
    uint64_t va = 0xffff800000001000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x5000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_not_equal(*entry_at(f, f->pt.root.pa, 256), 0);
    assert_int_equal(x86pt_resolve(&f->pt, VA(va + 0x10), &m), X86PT_OK);
    assert_int_equal(m.base.va, va);
    assert_int_equal(x86pt_map(&f->pt, VA(0xfffffffffffff000ull), PA(0x6000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_not_equal(*entry_at(f, f->pt.root.pa, 511), 0);
    fx_check_tree(f, NULL);
    fx_free(f);
}

static void expect_map_refused(struct fx *f, uint64_t va, uint64_t pa, uint64_t size, unsigned flags,
                               x86pt_status_t want)
{
    struct snapshot sn = snap_take(f);
    struct x86pt_flush fl = {.length = 99};
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(pa), size, flags, &fl), want);
    assert_int_equal(fl.length, 0);
    snap_assert_same(f, &sn);
}

/* Every kind of bad map argument has its own code and changes nothing. */
static void map_rejects_bad_arguments(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    expect_map_refused(f, 0x0000800000000000ull, 0, X86PT_PAGE_4K, 0, X86PT_E_NONCANONICAL);
    expect_map_refused(f, 0xffff7fffffff0000ull, 0, X86PT_PAGE_4K, 0, X86PT_E_NONCANONICAL);
    expect_map_refused(f, 0x2800, 0x2000, X86PT_PAGE_4K, 0, X86PT_E_MISALIGNED);
    expect_map_refused(f, 0x2000, 0x2800, X86PT_PAGE_4K, 0, X86PT_E_MISALIGNED);
    expect_map_refused(f, 0x201000, 0x200000, X86PT_PAGE_2M, 0, X86PT_E_MISALIGNED);
    expect_map_refused(f, 0x200000, 0x201000, X86PT_PAGE_2M, 0, X86PT_E_MISALIGNED);
    expect_map_refused(f, 0x40000000, 0x200000, X86PT_PAGE_1G, 0, X86PT_E_MISALIGNED);
    expect_map_refused(f, 0x2000, 0x2000, 0, 0, X86PT_E_BADSIZE);
    expect_map_refused(f, 0x2000, 0x2000, 8192, 0, X86PT_E_BADSIZE);
    expect_map_refused(f, 0, 0, 4ull << 20, 0, X86PT_E_BADSIZE);
    expect_map_refused(f, 0, 0, 512ull << 30, 0, X86PT_E_BADSIZE);
    expect_map_refused(f, 0x2000, 0x2000, X86PT_PAGE_4K, X86PT_FLAGS_ALL + 1u, X86PT_E_BADFLAGS);
    expect_map_refused(f, 0x2000, 1ull << 52, X86PT_PAGE_4K, 0, X86PT_E_PHYSRANGE);
    expect_map_refused(f, 0x1000, 0x1000, X86PT_PAGE_4K, 0, X86PT_E_OVERLAP);
    fx_free(f);
}

/* MAXPHYADDR bounds the frames: at width 40 the last 4 KiB frame below 2^40 maps,
 * the next one and a 1 GiB page reaching past 2^40 do not. */
static void physrange_follows_maxphyaddr(void **state)
{
    (void)state;
    struct fx *f = fx_new(MB16, 40, translated_mode);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA((1ull << 40) - 4096), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    expect_map_refused(f, 0x2000, 1ull << 40, X86PT_PAGE_4K, 0, X86PT_E_PHYSRANGE);
    expect_map_refused(f, 0x40000000, (1ull << 40), X86PT_PAGE_1G, 0, X86PT_E_PHYSRANGE);
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000), PA((1ull << 40) - X86PT_PAGE_1G), X86PT_PAGE_1G, 0, NULL),
                     X86PT_OK);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* A new mapping may not overlap one above it (a huge page) or below it. */
static void map_detects_overlap_at_every_layer(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x40000000), PA(0), X86PT_PAGE_1G, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0), X86PT_PAGE_2M, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x80000000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    expect_map_refused(f, 0x40000000 + 0x3ff000, 0, X86PT_PAGE_4K, 0, X86PT_E_OVERLAP); /* under a 1G page */
    expect_map_refused(f, 0x40200000, 0, X86PT_PAGE_2M, 0, X86PT_E_OVERLAP);
    expect_map_refused(f, 0x3ff000, 0, X86PT_PAGE_4K, 0, X86PT_E_OVERLAP);              /* under a 2M page */
    expect_map_refused(f, 0, 0, X86PT_PAGE_1G, 0, X86PT_E_OVERLAP);                     /* over a 2M page */
    expect_map_refused(f, 0x80000000, 0, X86PT_PAGE_1G, 0, X86PT_E_OVERLAP);            /* over a 4K page */
    expect_map_refused(f, 0x80000000, 0, X86PT_PAGE_2M, 0, X86PT_E_OVERLAP);
    /* neighbours are fine */
    assert_int_equal(x86pt_map(&f->pt, VA(0x400000), PA(0), X86PT_PAGE_2M, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1ff000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x80001000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* Unmap returns what it removed and what to flush; reclaim leaves only the root. */
static void unmap_returns_mapping_and_reclaims(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_mapping m;
    struct x86pt_flush fl;
    uint64_t va = 0x00007f0000123000ull;
    assert_int_equal(x86pt_map(&f->pt, VA(va), PA(0x777000), X86PT_PAGE_4K, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(f->s.live, 4);
    assert_int_equal(x86pt_unmap(&f->pt, VA(va), &m, &fl), X86PT_OK);
    assert_int_equal(m.base.va, va);
    assert_int_equal(m.frame.pa, 0x777000);
    assert_int_equal(m.size, X86PT_PAGE_4K);
    assert_int_equal(m.flags, X86PT_WRITABLE);
    assert_int_equal(fl.start.va, va);
    assert_int_equal(fl.length, X86PT_PAGE_4K);
    assert_int_equal(fl.dirs_freed, 3);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    assert_int_equal(f->s.bad_frees, 0); /* every freed directory was zero */
    fx_free(f);
}

/* Reclaim stops at the first directory that still maps something. */
static void unmap_keeps_directories_in_use(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x1000), NULL, &fl), X86PT_OK);
    assert_int_equal(fl.dirs_freed, 1); /* the PT only; the PD still holds 0x200000 */
    assert_int_equal(fx_check_tree(f, NULL), 4);
    fx_free(f);
}

static void expect_unmap_refused(struct fx *f, uint64_t va, x86pt_status_t want)
{
    struct snapshot sn = snap_take(f);
    struct x86pt_flush fl = {.length = 99};
    assert_int_equal(x86pt_unmap(&f->pt, VA(va), NULL, &fl), want);
    assert_int_equal(fl.length, 0);
    snap_assert_same(f, &sn);
}

/* Unmap needs the exact base of a mapping; anything else changes nothing. */
static void unmap_rejects_non_base(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0), X86PT_PAGE_2M, 0, NULL), X86PT_OK);
    expect_unmap_refused(f, 0x201000, X86PT_E_NOTMAPPED);  /* inside a huge page */
    expect_unmap_refused(f, 0x400000, X86PT_E_NOTMAPPED);  /* nothing there */
    expect_unmap_refused(f, 0x200800, X86PT_E_MISALIGNED);
    expect_unmap_refused(f, 0x0000800000000000ull, X86PT_E_NONCANONICAL);
    fx_free(f);
}

/* Protect rewrites only the permission bits: frame, PS and Accessed/Dirty stay. */
static void protect_changes_only_permissions(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    struct x86pt_mapping m;
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0x600000), X86PT_PAGE_2M, X86PT_WRITABLE, NULL), X86PT_OK);
    unsigned p[2] = {0, 0};
    uint64_t *leaf = entry_at(f, dir_by_path(f, p, 2), 1);
    *leaf |= 0x60; /* the MMU set Accessed and Dirty */
    assert_int_equal(x86pt_protect(&f->pt, VA(0x200000), X86PT_USER | X86PT_NO_EXECUTE, &fl), X86PT_OK);
    assert_int_equal(*leaf, 0x80000000006000e5ull);
    assert_int_equal(fl.start.va, 0x200000);
    assert_int_equal(fl.length, X86PT_PAGE_2M);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x200000), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_USER | X86PT_NO_EXECUTE);
    fx_free(f);
}

/* Protect refuses a non-base address and unknown flags, changing nothing. */
static void protect_rejects_bad_arguments(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x200000), PA(0), X86PT_PAGE_2M, 0, NULL), X86PT_OK);
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_protect(&f->pt, VA(0x201000), 0, NULL), X86PT_E_NOTMAPPED);
    assert_int_equal(x86pt_protect(&f->pt, VA(0x600000), 0, NULL), X86PT_E_NOTMAPPED);
    assert_int_equal(x86pt_protect(&f->pt, VA(0x200000), 1u << 31, NULL), X86PT_E_BADFLAGS);
    assert_int_equal(x86pt_protect(&f->pt, VA(0x200004), 0, NULL), X86PT_E_MISALIGNED);
    assert_int_equal(x86pt_protect(&f->pt, VA(0x0100000000000000ull), 0, NULL), X86PT_E_NONCANONICAL);
    snap_assert_same(f, &sn);
    fx_free(f);
}

/* Resolve combines flags along the walk (hardware.rs: valid_pt_walk): a directory
 * without RW or US, or with XD, restricts the leaf below it. */
static void resolve_combines_flags_along_walk(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_mapping m;
    unsigned all = X86PT_WRITABLE | X86PT_USER;
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), X86PT_PAGE_4K, all, NULL), X86PT_OK);
    unsigned p[1] = {0};
    uint64_t *pdpte = entry_at(f, dir_by_path(f, p, 1), 0);
    *pdpte &= ~0x2ull;
    x86pt_forget_hint(&f->pt); /* the tables changed behind the library's back */
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x1000), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_USER);
    *pdpte = (*pdpte | 0x2) & ~0x4ull;
    x86pt_forget_hint(&f->pt);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x1000), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_WRITABLE);
    *pdpte |= 0x4 | (1ull << 63);
    x86pt_forget_hint(&f->pt);
    assert_int_equal(x86pt_resolve(&f->pt, VA(0x1000), &m), X86PT_OK);
    assert_int_equal(m.flags, all | X86PT_NO_EXECUTE);
    fx_free(f);
}

/* Accessed/Dirty bits the MMU sets anywhere fool neither overlap checks nor reclaim. */
static void accessed_dirty_bits_are_harmless(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x1000), X86PT_PAGE_4K, X86PT_WRITABLE, NULL), X86PT_OK);
    unsigned p[3] = {0, 0, 0};
    for (unsigned l = 0; l < 3; l++)
        *entry_at(f, dir_by_path(f, p, l), 0) |= 0x20;
    *entry_at(f, dir_by_path(f, p, 3), 1) |= 0x60;
    assert_int_equal(x86pt_map(&f->pt, VA(0x2000), PA(0x2000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x2000), X86PT_PAGE_4K, 0, NULL), X86PT_E_OVERLAP);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x1000), NULL, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x2000), NULL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* Destroy hands every directory back, zeroed; mapped frames are not touched. */
static void destroy_frees_every_directory(void **state)
{
    (void)state;
    struct fx *f = fresh();
    for (uint64_t i = 0; i < 40; i++)
        assert_int_equal(x86pt_map(&f->pt, VA(i * 0x40201000ull), PA(0x1000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_true(f->s.live > 40);
    x86pt_destroy(&f->pt);
    assert_int_equal(f->s.live, 0);
    assert_int_equal(f->s.bad_frees, 0);
    fx_free(f);
}

/* Each entry store is reported in order: links top-down, then the leaf; unmap's
 * first write removes the leaf, the rest unlink directories bottom-up. */
struct wlog { uint64_t pa[8], v[8]; unsigned n; };
static void log_write(void *ctx, x86pt_paddr_t pa, uint64_t v)
{
    struct sim_phys *s = ctx;
    struct wlog *w = (struct wlog *)(s->mem); /* frame 0 is reserved: scratch space */
    if (w->n < 8) {
        w->pa[w->n] = pa.pa;
        w->v[w->n] = v;
    }
    w->n++;
}

static void writes_follow_the_spec_discipline(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct wlog *w = (struct wlog *)f->s.mem;
    memset(w, 0, sizeof *w);
    f->pt.mem.observe_write = log_write;
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x9000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    assert_int_equal(w->n, 4);
    assert_int_equal(w->pa[0], f->pt.root.pa);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(w->v[i] & 0xfff, 0x7);                        /* a directory link */
        assert_int_equal(w->pa[i + 1] & ~0xfffull, w->v[i] & ~0xfffull); /* the next write is inside it */
    }
    assert_int_equal(w->v[3], 0x9001);
    memset(w, 0, sizeof *w);
    assert_int_equal(x86pt_unmap(&f->pt, VA(0x1000), NULL, NULL), X86PT_OK);
    assert_int_equal(w->n, 4);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(w->v[i], 0);
    assert_int_equal(w->pa[3], f->pt.root.pa);
    fx_free(f);
}

/* The library zeroes a frame before use however dirty the allocator hands it. */
static void scribbled_frames_are_zeroed(void **state)
{
    (void)state;
    struct fx *f = fresh(); /* the fixture scribbles 0xA5 on every allocated frame */
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0x9000), X86PT_PAGE_4K, 0, NULL), X86PT_OK);
    struct refmap r;
    refmap_init(&r);
    fx_check_tree(f, &r);
    assert_int_equal(r.n, 1);
    refmap_fini(&r);
    fx_free(f);
}

/* init refuses a MAXPHYADDR outside 32..52 and missing callbacks; 0 means 52. */
static void init_validates_configuration(void **state)
{
    (void)state;
    struct sim_phys s;
    struct x86pt pt;
    assert_true(sim_phys_init(&s, MB16, 1));
    struct x86pt_mem mem = sim_phys_mem(&s);
    assert_int_equal(x86pt_init(&pt, &mem, 31), X86PT_E_INVAL);
    assert_int_equal(x86pt_init(&pt, &mem, 53), X86PT_E_INVAL);
    assert_int_equal(x86pt_init(&pt, NULL, 52), X86PT_E_INVAL);
    struct x86pt_mem bad = mem;
    bad.alloc_frame = NULL;
    assert_int_equal(x86pt_init(&pt, &bad, 52), X86PT_E_INVAL);
    bad = mem;
    bad.direct_map = NULL;
    assert_int_equal(x86pt_init(&pt, &bad, 52), X86PT_E_INVAL);
    bad = mem;
    bad.used_counts = NULL;
    assert_int_equal(x86pt_init(&pt, &bad, 52), X86PT_E_INVAL);
    assert_int_equal(s.live, 0);
    sim_phys_fail_nth(&s, 1);
    assert_int_equal(x86pt_init(&pt, &mem, 52), X86PT_E_NOMEM);
    assert_int_equal(s.live, 0);
    assert_int_equal(x86pt_init(&pt, &mem, 0), X86PT_OK);
    assert_int_equal(pt.maxphyaddr, 52);
    sim_phys_fini(&s);
}

/* An allocator handing out a frame the library cannot use gets it back, and
 * nothing else changes. */
static bool bad_alloc(void *ctx, x86pt_paddr_t *frame)
{
    (void)ctx;
    static const uint64_t frames[] = {0x1800, 1ull << 45};
    static unsigned next;
    frame->pa = frames[next++ % 2];
    return true;
}
static x86pt_paddr_t last_freed;
static void note_free(void *ctx, x86pt_paddr_t frame)
{
    (void)ctx;
    last_freed = frame;
}

static void unusable_frames_are_refused(void **state)
{
    (void)state;
    struct fx *f = fresh();
    f->pt.mem.alloc_frame = bad_alloc;
    f->pt.mem.free_frame = note_free;
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_E_BADFRAME);
    assert_int_equal(last_freed.pa, 0x1800);
    assert_int_equal(x86pt_map(&f->pt, VA(0x1000), PA(0), X86PT_PAGE_4K, 0, NULL), X86PT_E_BADFRAME);
    assert_int_equal(last_freed.pa, 1ull << 45);
    snap_assert_same(f, &sn);
    fx_free(f);
}

/* Every status has its own name. */
static void strerror_names_every_status(void **state)
{
    (void)state;
    for (int a = 0; a < X86PT_STATUS_COUNT; a++) {
        const char *na = x86pt_strerror((x86pt_status_t)a);
        assert_non_null(strstr(na, "X86PT_"));
        for (int b = 0; b < a; b++)
            assert_string_not_equal(na, x86pt_strerror((x86pt_status_t)b));
    }
    assert_non_null(strstr(x86pt_strerror((x86pt_status_t)999), "unknown"));
}

#define TESTS(X)                                                                                              \
    X(init_gives_one_zeroed_root), X(map_4k_writes_sdm_encoding), X(map_huge_sets_ps_at_right_layer),          \
        X(resolve_finds_containing_mapping), X(upper_half_is_supported), X(map_rejects_bad_arguments),         \
        X(physrange_follows_maxphyaddr), X(map_detects_overlap_at_every_layer),                                \
        X(unmap_returns_mapping_and_reclaims), X(unmap_keeps_directories_in_use), X(unmap_rejects_non_base),   \
        X(protect_changes_only_permissions), X(protect_rejects_bad_arguments),                                 \
        X(resolve_combines_flags_along_walk), X(accessed_dirty_bits_are_harmless),                             \
        X(destroy_frees_every_directory), X(writes_follow_the_spec_discipline), X(scribbled_frames_are_zeroed), \
        X(init_validates_configuration), X(unusable_frames_are_refused), X(strerror_names_every_status)

static int direct(void **state) { (void)state; translated_mode = false; return 0; }
static int translated(void **state) { (void)state; translated_mode = true; return 0; }

int main(void)
{
    const struct CMUnitTest tests[] = {TESTS(cmocka_unit_test)};
    int failed = cmocka_run_group_tests_name("ops (direct map)", tests, direct, NULL);
    failed += cmocka_run_group_tests_name("ops (phys_to_virt)", tests, translated, NULL);
    return failed ? 1 : 0;
}
