/* Range operations: page choice, all-or-nothing, straddles and splitting, the
 * flush report, and a differential run against a reference that expands ranges
 * into pages by the greedy rule. */
#include "fixture.h"

#define VA(x) x86pt_va(x)
#define PA(x) x86pt_pa(x)
#define K4 X86PT_PAGE_4K
#define M2 X86PT_PAGE_2M
#define G1 X86PT_PAGE_1G

static struct fx *fresh(void) { return fx_new(16ull << 20, 52, false); }

static void tree_list(struct fx *f, struct refmap *out)
{
    refmap_init(out);
    fx_check_tree(f, out);
}

static void expect_mapping(const struct refmap *r, size_t i, uint64_t va, uint64_t pa, uint64_t size)
{
    assert_true(i < r->n);
    assert_int_equal(r->m[i].base.va, va);
    assert_int_equal(r->m[i].frame.pa, pa);
    assert_int_equal(r->m[i].size, size);
}

/* The largest page that fits both addresses is chosen at every step:
 * 4K up to a 1G boundary, one 1G page, one 2M page, then 4K. */
static void map_range_picks_largest_fit(void **state)
{
    (void)state;
    struct fx *f = fresh();
    uint64_t va = G1 - K4, len = K4 + G1 + M2 + K4;
    assert_int_equal(x86pt_map_range(&f->pt, VA(va), PA(va + 4 * G1), len, X86PT_WRITABLE, X86PT_LARGEST_FIT, NULL),
                     X86PT_OK);
    struct refmap r;
    tree_list(f, &r);
    assert_int_equal(r.n, 4);
    expect_mapping(&r, 0, G1 - K4, 5 * G1 - K4, K4);
    expect_mapping(&r, 1, G1, 5 * G1, G1);
    expect_mapping(&r, 2, 2 * G1, 6 * G1, M2);
    expect_mapping(&r, 3, 2 * G1 + M2, 6 * G1 + M2, K4);
    refmap_fini(&r);
    fx_free(f);
}

/* When the physical address is only 4 KiB-aligned relative to the virtual one,
 * only 4 KiB pages fit. */
static void map_range_respects_physical_alignment(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map_range(&f->pt, VA(M2), PA(M2 + K4), M2, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    struct refmap r;
    tree_list(f, &r);
    assert_int_equal(r.n, 512);
    refmap_fini(&r);
    fx_free(f);
}

/* A forced size needs both addresses and the length aligned to it. */
static void map_range_forced_size(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map_range(&f->pt, VA(M2), PA(0), M2 + K4, 0, X86PT_ONLY_2M, NULL), X86PT_E_BADSIZE);
    assert_int_equal(x86pt_map_range(&f->pt, VA(M2 + K4), PA(0), M2, 0, X86PT_ONLY_2M, NULL), X86PT_E_MISALIGNED);
    assert_int_equal(x86pt_map_range(&f->pt, VA(M2), PA(K4), M2, 0, X86PT_ONLY_2M, NULL), X86PT_E_MISALIGNED);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), G1, 0, (enum x86pt_page_policy)9, NULL), X86PT_E_INVAL);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), 2 * G1, 0, X86PT_ONLY_4K, NULL), X86PT_OK);
    struct refmap r;
    tree_list(f, &r);
    assert_int_equal(r.n, 2 * 262144);
    refmap_fini(&r);
    fx_free(f);
}

static void expect_range_refused(struct fx *f, uint64_t va, uint64_t pa, uint64_t len, x86pt_status_t want)
{
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_map_range(&f->pt, VA(va), PA(pa), len, 0, X86PT_LARGEST_FIT, NULL), want);
    snap_assert_same(f, &sn);
}

/* Bad arguments and an overlap anywhere in the range change nothing. */
static void map_range_refusals_change_nothing(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(5 * G1 + 7 * M2 + 9 * K4), PA(0), K4, 0, NULL), X86PT_OK);
    expect_range_refused(f, 4 * G1, 0, 2 * G1, X86PT_E_OVERLAP);            /* overlap at the far end */
    expect_range_refused(f, 5 * G1 + 7 * M2 + 9 * K4, 0, K4, X86PT_E_OVERLAP);
    expect_range_refused(f, 0x00007ffffffff000ull, 0, 2 * K4, X86PT_E_NONCANONICAL); /* the canonical hole */
    expect_range_refused(f, 0x0000800000000000ull, 0, K4, X86PT_E_NONCANONICAL);
    expect_range_refused(f, K4 + 1, 0, K4, X86PT_E_MISALIGNED);
    expect_range_refused(f, K4, 1, K4, X86PT_E_MISALIGNED);
    expect_range_refused(f, K4, 0, K4 + 8, X86PT_E_MISALIGNED);
    expect_range_refused(f, K4, (1ull << 52) - K4, 2 * K4, X86PT_E_PHYSRANGE);
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), K4, 1u << 22, X86PT_LARGEST_FIT, NULL), X86PT_E_BADFLAGS);
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), 0, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    snap_assert_same(f, &sn);
    fx_free(f);
}

/* The top of the upper half maps, up to the very last page. */
static void map_range_reaches_top_of_upper_half(void **state)
{
    (void)state;
    struct fx *f = fresh();
    uint64_t va = 0xffffffffffe00000ull;
    assert_int_equal(x86pt_map_range(&f->pt, VA(va), PA(M2), M2, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(0xffffffffffffffffull), &m), X86PT_OK);
    assert_int_equal(m.size, M2);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(va), M2, X86PT_STRADDLE_FAIL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* An allocation failure at each point of a range map leaves everything as it
 * was; there is one failure point per directory the range needs. */
static void map_range_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    struct fx *f = fresh();
    uint64_t va = 0x00007f0000000000ull - 3 * M2 - 5 * K4, len = 8 * M2 + 9 * K4 + G1;
    for (uint64_t n = 1;; n++) {
        uint64_t live = f->s.live;
        struct snapshot sn = snap_take(f);
        sim_phys_fail_nth(&f->s, n);
        x86pt_status_t st = x86pt_map_range(&f->pt, VA(va), PA(G1 - 5 * K4), len, 0, X86PT_LARGEST_FIT, NULL);
        sim_phys_fail_nth(&f->s, 0);
        if (st == X86PT_OK) {
            free(sn.mem);
            free(sn.counts);
            assert_int_equal(n - 1, f->s.live - live);
            break;
        }
        assert_int_equal(st, X86PT_E_NOMEM);
        snap_assert_same(f, &sn);
    }
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* unmap_range removes what lies inside, keeps what lies outside, tolerates
 * holes, frees each emptied directory, and reports one flush. */
static void unmap_range_removes_inside_only(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), 4 * M2, 0, X86PT_ONLY_4K, NULL), X86PT_OK);
    assert_int_equal(x86pt_map_range(&f->pt, VA(G1), PA(0), G1, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(K4), 2 * M2, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_int_equal(fl.start.va, K4);
    assert_int_equal(fl.length, 2 * M2);
    assert_true(fl.flush_all);
    assert_int_equal(fl.dirs_freed, 1); /* the second page table emptied */
    struct refmap r;
    tree_list(f, &r);
    assert_int_equal(r.n, 1 + 1023 + 1); /* page 0, [4M + 4K, 8M), the 1G page */
    refmap_fini(&r);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0), 2 * G1, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    fx_free(f);
}

/* The flush report names every page up to 33, then says flush everything. */
static void flush_ceiling_is_33_pages(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    assert_int_equal(x86pt_map_range(&f->pt, VA(0), PA(0), 100 * K4, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(0), 33 * K4, 0, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_false(fl.flush_all);
    assert_int_equal(fl.length, 33 * K4);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(0), 34 * K4, 0, X86PT_STRADDLE_FAIL, &fl), X86PT_OK);
    assert_true(fl.flush_all);
    fx_free(f);
}

/* A huge page straddling an end: refused without change, or split so that the
 * part outside keeps its exact translation and flags. */
static void straddle_fails_or_splits(void **state)
{
    (void)state;
    struct fx *f = fresh();
    struct x86pt_flush fl;
    uint64_t pa = 7 * G1;
    assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(pa), G1, X86PT_WRITABLE | X86PT_USER, NULL), X86PT_OK);
    uint64_t from = G1 + 3 * M2 + 5 * K4, len = 2 * M2;
    struct snapshot sn = snap_take(f);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(from), len, X86PT_STRADDLE_FAIL, &fl), X86PT_E_STRADDLE);
    assert_int_equal(fl.length, 0);
    snap_assert_same(f, &sn);
    uint64_t live = f->s.live;
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(from), len, X86PT_STRADDLE_SPLIT, &fl), X86PT_OK);
    assert_int_equal(f->s.live, live + 3); /* a PD and two PTs */
    assert_int_equal(fl.start.va, G1);     /* the whole split page may sit in TLBs */
    assert_int_equal(fl.length, G1);
    for (uint64_t va = G1; va < 2 * G1; va += K4) {
        struct x86pt_mapping m;
        bool inside = va >= from && va < from + len;
        x86pt_status_t st = x86pt_resolve(&f->pt, VA(va), &m);
        assert_int_equal(st, inside ? X86PT_E_NOTMAPPED : X86PT_OK);
        if (!inside) {
            assert_int_equal(m.frame.pa + (va - m.base.va), pa + (va - G1));
            assert_int_equal(m.flags, X86PT_WRITABLE | X86PT_USER);
        }
    }
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* protect_range splits the same way and changes only what lies inside. */
static void protect_range_splits_and_protects_inside(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(M2), PA(M2), M2, X86PT_WRITABLE, NULL), X86PT_OK);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(M2 + K4), K4, X86PT_NO_EXECUTE, X86PT_STRADDLE_FAIL, NULL),
                     X86PT_E_STRADDLE);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(M2 + K4), K4, 1u << 25, X86PT_STRADDLE_SPLIT, NULL), X86PT_E_BADFLAGS);
    assert_int_equal(x86pt_protect_range(&f->pt, VA(M2 + K4), K4, X86PT_NO_EXECUTE, X86PT_STRADDLE_SPLIT, NULL),
                     X86PT_OK);
    struct x86pt_mapping m;
    assert_int_equal(x86pt_resolve(&f->pt, VA(M2 + K4), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_NO_EXECUTE);
    assert_int_equal(m.frame.pa, M2 + K4);
    assert_int_equal(x86pt_resolve(&f->pt, VA(M2 + 2 * K4), &m), X86PT_OK);
    assert_int_equal(m.flags, X86PT_WRITABLE);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* A split that cannot get its directories changes nothing. */
static void split_allocation_failure_changes_nothing(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(G1), G1, 0, NULL), X86PT_OK);
    for (uint64_t n = 1; n <= 2; n++) {
        struct snapshot sn = snap_take(f);
        sim_phys_fail_nth(&f->s, n);
        assert_int_equal(x86pt_unmap_range(&f->pt, VA(G1 + K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_E_NOMEM);
        sim_phys_fail_nth(&f->s, 0);
        snap_assert_same(f, &sn);
    }
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(G1 + K4), K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* Through a split, after every single store, every address outside the range
 * keeps its translation and every address inside has its own or none. */
static struct {
    struct fx *f;
    uint64_t page, page_pa, page_size, from, to;
    unsigned writes;
} watch;

static void check_view(void *ctx, x86pt_paddr_t pa, uint64_t v)
{
    (void)ctx, (void)pa, (void)v;
    watch.writes++;
    for (uint64_t va = watch.page; va < watch.page + watch.page_size; va += K4 * 7) {
        uint64_t got;
        bool mapped = tree_translate(&watch.f->s, watch.f->pt.root.pa, va, &got);
        bool inside = va >= watch.from && va < watch.to;
        if (mapped)
            assert_int_equal(got, watch.page_pa + (va - watch.page));
        else
            assert_true(inside);
    }
}

static void split_keeps_the_view_at_every_write(void **state)
{
    (void)state;
    struct fx *f = fresh();
    assert_int_equal(x86pt_map(&f->pt, VA(G1), PA(3 * G1), G1, 0, NULL), X86PT_OK);
    watch.f = f, watch.page = G1, watch.page_pa = 3 * G1, watch.page_size = G1;
    watch.from = G1 + 5 * M2 + 3 * K4, watch.to = watch.from + 40 * K4;
    f->pt.mem.observe_write = check_view;
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(watch.from), 40 * K4, X86PT_STRADDLE_SPLIT, NULL), X86PT_OK);
    assert_int_equal(watch.writes, 2 + 40); /* two swaps (1G -> 2M, 2M -> 4K), 40 removals */
    fx_free(f);
}

/* Physical address 0 is a directory like any other: with the root there,
 * map_range still sees what is mapped (found by the checker). */
static void root_at_physical_zero(void **state)
{
    (void)state;
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_true(sim_phys_init(&f->s, 16ull << 20, 0));
    f->mem = sim_phys_mem(&f->s);
    assert_int_equal(x86pt_init(&f->pt, &f->mem, 52), X86PT_OK);
    assert_int_equal(f->pt.root.pa, 0);
    assert_int_equal(x86pt_map(&f->pt, VA(M2 + K4), PA(0), K4, 0, NULL), X86PT_OK);
    uint64_t live = f->s.live;
    assert_int_equal(x86pt_map_range(&f->pt, VA(M2), PA(0), 4 * K4, 0, X86PT_LARGEST_FIT, NULL), X86PT_E_OVERLAP);
    assert_int_equal(f->s.live, live);
    assert_int_equal(x86pt_map_range(&f->pt, VA(G1), PA(0), 4 * K4, 0, X86PT_LARGEST_FIT, NULL), X86PT_OK);
    assert_int_equal(f->s.live, live + 2); /* a PD and a PT under the existing PDPT */
    fx_check_tree(f, NULL);
    fx_free(f);
}

/* ---- differential run ---- */

static uint64_t rng = 2024;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

/* The reference's greedy expansion of a range into pages. */
static void ref_map_range(struct refmap *ref, uint64_t va, uint64_t pa, uint64_t len, unsigned flags)
{
    static const uint64_t sizes[3] = {G1, M2, K4};
    while (len) {
        for (int k = 0; k < 3; k++) {
            uint64_t s = sizes[k];
            if (va % s == 0 && pa % s == 0 && len >= s) {
                refmap_insert(ref, (struct x86pt_mapping){VA(va), PA(pa), s, flags, 0});
                va += s, pa += s, len -= s;
                break;
            }
        }
    }
}

/* Append m to out, split until no part straddles [from, to) (reference). */
static void push_split(struct refmap *out, struct x86pt_mapping m, uint64_t from, uint64_t to)
{
    uint64_t end = m.base.va + m.size;
    bool meets = m.base.va < to && end > from;
    bool inside = m.base.va >= from && end <= to;
    if (!meets || inside || m.size == K4) {
        out->m[out->n++] = m;
        return;
    }
    uint64_t sub = m.size == G1 ? M2 : K4;
    for (uint64_t o = 0; o < m.size; o += sub)
        push_split(out, (struct x86pt_mapping){VA(m.base.va + o), PA(m.frame.pa + o), sub, m.flags, 0}, from, to);
}

/* One pass: split what straddles [from, to); drop what lies inside if asked. */
static void ref_split(struct refmap *ref, uint64_t from, uint64_t to, bool drop_inside)
{
    if (from == to)
        return;
    struct refmap out = {calloc(ref->n + 4096, sizeof *out.m), 0, ref->n + 4096};
    assert_non_null(out.m);
    for (size_t i = 0; i < ref->n; i++)
        push_split(&out, ref->m[i], from, to);
    size_t kept = 0;
    for (size_t i = 0; i < out.n; i++)
        if (!drop_inside || !(out.m[i].base.va >= from && out.m[i].base.va + out.m[i].size <= to))
            out.m[kept++] = out.m[i];
    out.n = kept;
    refmap_fini(ref);
    *ref = out;
}

static bool ref_straddles(const struct refmap *ref, uint64_t from, uint64_t to)
{
    if (from == to)
        return false;
    for (size_t i = 0; i < ref->n; i++) {
        uint64_t b = ref->m[i].base.va, e = b + ref->m[i].size;
        if (b < to && e > from && !(b >= from && e <= to))
            return true;
    }
    return false;
}

static void compare_with(struct fx *f, const struct refmap *ref)
{
    struct refmap seen;
    tree_list(f, &seen);
    for (size_t i = 0; i < ref->n || i < seen.n; i++) {
        if (i < ref->n && i < seen.n && seen.m[i].base.va == ref->m[i].base.va && seen.m[i].size == ref->m[i].size)
            continue;
        if (i < ref->n)
            print_message("ref  %#llx size %#llx\n", (unsigned long long)ref->m[i].base.va, (unsigned long long)ref->m[i].size);
        if (i < seen.n)
            print_message("seen %#llx size %#llx\n", (unsigned long long)seen.m[i].base.va, (unsigned long long)seen.m[i].size);
        break;
    }
    assert_int_equal(seen.n, ref->n);
    for (size_t i = 0; i < ref->n; i++) {
        expect_mapping(&seen, i, ref->m[i].base.va, ref->m[i].frame.pa, ref->m[i].size);
        assert_int_equal(seen.m[i].flags, ref->m[i].flags);
    }
    refmap_fini(&seen);
}

/* Thousands of random range operations agree with the reference, in the
 * lower 16 GiB where ranges cross many directories at every layer. */
static void differential_ranges(void **state)
{
    (void)state;
    struct fx *f = fx_new(256ull << 20, 52, false);
    struct refmap ref;
    refmap_init(&ref);
    for (unsigned i = 0; i < 3000; i++) {
        uint64_t unit = (uint64_t[]){K4, M2, G1}[rnd() % 3];
        uint64_t va = (rnd() % 16) * G1 + (rnd() % 4) * M2 + (rnd() % 4) * K4;
        uint64_t len = (rnd() % 3) * unit + (rnd() % 3) * K4 * (rnd() % 2) + (rnd() % 2) * M2;
        if (va + len > 16 * G1)
            continue;
        unsigned flags = (unsigned)(rnd() % 8);
        bool split = rnd() % 2;
        x86pt_status_t st;
        switch (rnd() % 3) {
        case 0: {
            uint64_t pa = va + (rnd() % 2 ? 0 : K4 * (rnd() % 3));
            bool overlap = false;
            for (size_t k = 0; k < ref.n; k++)
                if (ref.m[k].base.va < va + len && ref.m[k].base.va + ref.m[k].size > va)
                    overlap = true;
            st = x86pt_map_range(&f->pt, VA(va), PA(pa), len, flags, X86PT_LARGEST_FIT, NULL);
            assert_int_equal(st, len && overlap ? X86PT_E_OVERLAP : X86PT_OK);
            if (st == X86PT_OK)
                ref_map_range(&ref, va, pa, len, flags);
            break;
        }
        case 1:
            st = x86pt_unmap_range(&f->pt, VA(va), len, split ? X86PT_STRADDLE_SPLIT : X86PT_STRADDLE_FAIL, NULL);
            assert_int_equal(st, !split && ref_straddles(&ref, va, va + len) ? X86PT_E_STRADDLE : X86PT_OK);
            if (st == X86PT_OK) {
                ref_split(&ref, va, va + len, true);
            }
            break;
        default:
            st = x86pt_protect_range(&f->pt, VA(va), len, flags, split ? X86PT_STRADDLE_SPLIT : X86PT_STRADDLE_FAIL,
                                     NULL);
            assert_int_equal(st, !split && ref_straddles(&ref, va, va + len) ? X86PT_E_STRADDLE : X86PT_OK);
            if (st == X86PT_OK) {
                ref_split(&ref, va, va + len, false);
                for (size_t k = 0; k < ref.n; k++)
                    if (ref.m[k].base.va >= va && ref.m[k].base.va + ref.m[k].size <= va + len)
                        ref.m[k].flags = flags;
            }
        }
        if (getenv("RANGE_TRACE"))
            print_message("op %u va %#llx len %#llx\n", i, (unsigned long long)va, (unsigned long long)len);
        if (i % 100 == 0 || getenv("RANGE_TRACE"))
            compare_with(f, &ref);
    }
    compare_with(f, &ref);
    assert_int_equal(x86pt_unmap_range(&f->pt, VA(0), 16 * G1, X86PT_STRADDLE_FAIL, NULL), X86PT_OK);
    assert_int_equal(fx_check_tree(f, NULL), 1);
    refmap_fini(&ref);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(map_range_picks_largest_fit),
        cmocka_unit_test(map_range_respects_physical_alignment),
        cmocka_unit_test(map_range_forced_size),
        cmocka_unit_test(map_range_refusals_change_nothing),
        cmocka_unit_test(map_range_reaches_top_of_upper_half),
        cmocka_unit_test(map_range_fails_cleanly_at_every_allocation),
        cmocka_unit_test(unmap_range_removes_inside_only),
        cmocka_unit_test(flush_ceiling_is_33_pages),
        cmocka_unit_test(straddle_fails_or_splits),
        cmocka_unit_test(protect_range_splits_and_protects_inside),
        cmocka_unit_test(split_allocation_failure_changes_nothing),
        cmocka_unit_test(split_keeps_the_view_at_every_write),
        cmocka_unit_test(root_at_physical_zero),
        cmocka_unit_test(differential_ranges),
    };
    return cmocka_run_group_tests_name("ranges", tests, NULL, NULL);
}
