/* Differential test: millions of random operations on the library and on the
 * plain reference map must agree on every result; the raw tree is checked
 * against the reference at intervals, and unmapping everything leaves the root. */
#include "fixture.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64: reproducible from the seed printed on failure */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Addresses crowd a few slots at every layer so that overlaps, shared
 * directories and reclaim happen often; PML4 slots 0, 1, 255 and 511 include
 * the canonical hole's both sides. */
static uint64_t random_va(uint64_t size)
{
    static const uint64_t l0[] = {0, 1, 255, 511};
    uint64_t va = (l0[rnd() % 4] << 39) | ((rnd() % 3) << 30) | ((rnd() % 6) << 21) | ((rnd() % 10) << 12);
    va &= ~(size - 1);
    if (rnd() % 64 == 0)
        va |= 0x800; /* misaligned */
    if (rnd() % 128 == 0)
        va ^= 1ull << 50; /* non-canonical */
    return (uint64_t)((int64_t)(va << 16) >> 16) ^ (va & (1ull << 50));
}

static uint64_t random_size(void)
{
    static const uint64_t s[] = {X86PT_PAGE_4K, X86PT_PAGE_4K, X86PT_PAGE_4K, X86PT_PAGE_4K, X86PT_PAGE_2M, X86PT_PAGE_2M, X86PT_PAGE_1G};
    return s[rnd() % 7];
}

static x86pt_status_t ref_va_status(uint64_t va)
{
    if ((uint64_t)((int64_t)(va << 16) >> 16) != va)
        return X86PT_E_NONCANONICAL;
    return va & 0xfff ? X86PT_E_MISALIGNED : X86PT_OK;
}

static void compare_tree(struct fx *f, const struct refmap *ref)
{
    struct refmap seen;
    refmap_init(&seen);
    fx_check_tree(f, &seen);
    assert_int_equal(seen.n, ref->n);
    for (size_t i = 0; i < ref->n; i++) {
        assert_int_equal(seen.m[i].base.va, ref->m[i].base.va);
        assert_int_equal(seen.m[i].frame.pa, ref->m[i].frame.pa);
        assert_int_equal(seen.m[i].size, ref->m[i].size);
        assert_int_equal(seen.m[i].flags, ref->m[i].flags);
    }
    refmap_fini(&seen);
}

static void one_op(struct fx *f, struct refmap *ref)
{
    unsigned kind = (unsigned)(rnd() % 8);
    uint64_t size = random_size(), va = random_va(size);
    /* permissions; one op in four also draws attributes (the tree scan decodes them independently) */
    unsigned flags = (unsigned)(rnd() % 8) | (rnd() % 4 == 0 ? (unsigned)rnd() & X86PT_ATTRIBUTES : 0u);
    struct x86pt_mapping got, *want;
    x86pt_status_t st, expect = ref_va_status(va);
    if (kind < 3) { /* map */
        uint64_t pa = (rnd() % 64) * X86PT_PAGE_1G + (rnd() % 4) * size;
        if (expect == X86PT_OK && (va & (size - 1)))
            expect = X86PT_E_MISALIGNED;
        if (expect == X86PT_OK && refmap_overlaps(ref, va, size))
            expect = X86PT_E_OVERLAP;
        st = x86pt_map(&f->pt, x86pt_va(va), x86pt_pa(pa), size, flags, NULL);
        assert_int_equal(st, expect);
        if (st == X86PT_OK)
            refmap_insert(ref, (struct x86pt_mapping){x86pt_va(va), x86pt_pa(pa), size, flags, 0});
    } else if (kind < 5) { /* unmap, usually of an existing base */
        if (ref->n && rnd() % 4) {
            va = ref->m[rnd() % ref->n].base.va;
            expect = X86PT_OK;
        }
        want = expect == X86PT_OK ? refmap_at(ref, va) : NULL;
        if (expect == X86PT_OK && !want)
            expect = X86PT_E_NOTMAPPED;
        st = x86pt_unmap(&f->pt, x86pt_va(va), &got, NULL);
        assert_int_equal(st, expect);
        if (st == X86PT_OK) {
            assert_int_equal(got.frame.pa, want->frame.pa);
            assert_int_equal(got.size, want->size);
            assert_int_equal(got.flags, want->flags);
            refmap_remove(ref, va);
        }
    } else if (kind < 6) { /* protect */
        if (ref->n && rnd() % 2) {
            va = ref->m[rnd() % ref->n].base.va;
            expect = X86PT_OK;
        }
        want = expect == X86PT_OK ? refmap_at(ref, va) : NULL;
        if (expect == X86PT_OK && !want)
            expect = X86PT_E_NOTMAPPED;
        st = x86pt_protect(&f->pt, x86pt_va(va), flags, NULL);
        assert_int_equal(st, expect);
        if (st == X86PT_OK)
            want->flags = flags;
    } else { /* resolve anywhere, byte-granular */
        va = (va & ~0xfffull) + (rnd() % 4096);
        if (ref->n && rnd() % 2)
            va = ref->m[rnd() % ref->n].base.va + rnd() % ref->m[0].size;
        const struct x86pt_mapping *c = refmap_containing(ref, va);
        expect = (uint64_t)((int64_t)(va << 16) >> 16) != va ? X86PT_E_NONCANONICAL : c ? X86PT_OK : X86PT_E_NOTMAPPED;
        st = x86pt_resolve(&f->pt, x86pt_va(va), &got);
        assert_int_equal(st, expect);
        if (st == X86PT_OK) {
            assert_int_equal(got.base.va, c->base.va);
            assert_int_equal(got.frame.pa, c->frame.pa);
            assert_int_equal(got.flags, c->flags);
        }
    }
}

static void run(uint64_t seed, uint64_t ops, bool translated)
{
    struct fx *f = fx_new(64ull << 20, 52, translated);
    struct refmap ref;
    refmap_init(&ref);
    rng_state = seed;
    print_message("seed %llu, %llu ops\n", (unsigned long long)seed, (unsigned long long)ops);
    for (uint64_t i = 0; i < ops; i++) {
        one_op(f, &ref);
        if (i % 20000 == 0)
            compare_tree(f, &ref);
    }
    compare_tree(f, &ref);
    while (ref.n) {
        assert_int_equal(x86pt_unmap(&f->pt, ref.m[ref.n - 1].base, NULL, NULL), X86PT_OK);
        refmap_remove(&ref, ref.m[ref.n - 1].base.va);
    }
    assert_int_equal(fx_check_tree(f, NULL), 1);
    assert_int_equal(f->s.live, 1);
    refmap_fini(&ref);
    fx_free(f);
}

/* Two million operations agree with the reference map (direct-mapped memory). */
static void differential_direct(void **state) { (void)state; run(1, 2000000, false); }
/* The same through the phys_to_virt callback, other seeds. */
static void differential_translated(void **state)
{
    (void)state;
    for (uint64_t seed = 2; seed < 6; seed++)
        run(seed, 100000, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(differential_direct),
        cmocka_unit_test(differential_translated),
    };
    return cmocka_run_group_tests_name("differential", tests, NULL, NULL);
}
