/* libFuzzer target: the input is a program of library calls (map, unmap,
 * protect, remap, resolve, ranges) over a small address space, run against the
 * reference map; any disagreement, broken tree invariant, leak or sanitizer
 * report is a finding. Unmaps take a gather of a fuzzed size at times
 * (GATHER_FULL must change nothing; the frames must match dirs_freed and come
 * back zeroed at the release). `make fuzz-lib` builds it (clang). */
#include <stdlib.h>
#include <string.h>

#include "physmem.h"
#include "refmap.h"
#include "tree.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static uint64_t take(const uint8_t **p, const uint8_t *end, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && *p < end; i++)
        v |= (uint64_t)*(*p)++ << (8 * i);
    return v;
}

/* 4 PML4 slots x 4 x 4 x 8 pages, all three sizes. */
static uint64_t addr_of(uint64_t bits, uint64_t size)
{
    static const uint64_t l0[4] = {0, 1, 256, 511};
    uint64_t va = l0[bits & 3] << 39 | ((bits >> 2) & 3) << 30 | ((bits >> 4) & 3) << 21 | ((bits >> 6) & 7) << 12;
    va = (uint64_t)((int64_t)(va << 16) >> 16) & ~(size - 1);
    return (bits & 0x200) ? va | 0x800 : va;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static const uint64_t sizes[4] = {X86PT_PAGE_4K, X86PT_PAGE_2M, X86PT_PAGE_1G, 12345};
    struct sim_phys s;
    CHECK(sim_phys_init(&s, 8ull << 20, 1));
    s.scribble = true;
    struct x86pt_mem mem = sim_phys_mem(&s);
    struct x86pt pt;
    CHECK(x86pt_init(&pt, &mem, 46) == X86PT_OK);
    struct refmap ref;
    refmap_init(&ref);
    x86pt_paddr_t gathered[8];
    struct x86pt_gather gather;
    const uint8_t *p = data, *end = data + len;
    while (p < end) {
        unsigned op = (unsigned)take(&p, end, 1);
        uint64_t size = sizes[(op >> 4) & 3], va = addr_of(take(&p, end, 2), size);
        unsigned flags = (op >> 6) & 3;
        if (op & 8)
            sim_phys_fail_nth(&s, 1 + (op >> 6));
        struct x86pt_mapping m;
        switch (op & 7) {
        case 0: {
            x86pt_status_t st = x86pt_map(&pt, x86pt_va(va), x86pt_pa(va & 0x3fffffffffull), size, flags, NULL);
            if (st == X86PT_OK) {
                CHECK(!refmap_overlaps(&ref, va, size));
                refmap_insert(&ref, (struct x86pt_mapping){x86pt_va(va), x86pt_pa(va & 0x3fffffffffull), size, flags, 0});
            } else if (st == X86PT_E_OVERLAP) {
                CHECK(refmap_overlaps(&ref, va, size));
            } else {
                CHECK(st == X86PT_E_NOMEM || st == X86PT_E_MISALIGNED || st == X86PT_E_BADSIZE);
            }
            break;
        }
        case 2: {
            /* flags picks: no gather, or one with room for 0..2 directories */
            struct x86pt_gather *g = flags ? &gather : NULL;
            x86pt_gather_init(&gather, gathered, flags ? flags - 1 : 0);
            uint64_t live = s.live;
            struct x86pt_flush fl;
            x86pt_status_t st = x86pt_unmap_gather(&pt, x86pt_va(va), &m, &fl, g);
            if (st == X86PT_E_GATHER_FULL) {
                CHECK(g && s.live == live && gather.count == 0 && refmap_at(&ref, va));
                st = x86pt_unmap_gather(&pt, x86pt_va(va), &m, &fl, NULL);
                g = NULL;
            }
            CHECK((st == X86PT_OK) == (refmap_at(&ref, va) != NULL && !(va & 0xfff)));
            if (st == X86PT_OK)
                refmap_remove(&ref, va);
            if (g) {
                unsigned held = gather.count;
                CHECK(held == (st == X86PT_OK ? fl.dirs_freed : 0) && s.live == live);
                x86pt_gather_release(&pt, &gather);
                CHECK(gather.count == 0 && s.live == live - held);
            }
            break;
        }
        case 1: {
            /* a frame aligned to 4 KiB, 2 MiB, 1 GiB, or 8 GiB (then often beyond
             * MAXPHYADDR 46); X86PT_NO_EXECUTE set from the frame's bits */
            static const unsigned shifts[4] = {12, 21, 30, 33};
            uint64_t fb = take(&p, end, 2), pa = (fb & 0x3fff) << shifts[fb >> 14];
            unsigned rflags = flags | (unsigned)(fb & 1) << 2;
            struct x86pt_mapping *want = refmap_at(&ref, va);
            struct x86pt_flush fl;
            x86pt_status_t st = x86pt_remap(&pt, x86pt_va(va), x86pt_pa(pa), rflags, &m, &fl);
            if (!want || (va & 0xfff)) {
                CHECK(st == ((va & 0xfff) ? X86PT_E_MISALIGNED : X86PT_E_NOTMAPPED) && fl.length == 0);
            } else if (pa & (want->size - 1)) {
                CHECK(st == X86PT_E_MISALIGNED && fl.length == 0);
            } else if (pa + want->size > 1ull << 46) {
                CHECK(st == X86PT_E_PHYSRANGE && fl.length == 0);
            } else {
                CHECK(st == X86PT_OK && m.base.va == va && m.frame.pa == want->frame.pa && m.size == want->size &&
                      m.flags == want->flags && m.ad == 0);
                CHECK(fl.start.va == va && fl.length == want->size && !fl.global && fl.dirs_freed == 0);
                want->frame = x86pt_pa(pa);
                want->flags = rflags;
            }
            break;
        }
        case 3: {
            struct x86pt_mapping *want = refmap_at(&ref, va);
            x86pt_status_t st = x86pt_protect(&pt, x86pt_va(va), flags, NULL);
            CHECK((st == X86PT_OK) == (want != NULL && !(va & 0xfff)));
            if (st == X86PT_OK)
                want->flags = flags;
            break;
        }
        case 4: {
            const struct x86pt_mapping *c = refmap_containing(&ref, va);
            x86pt_status_t st = x86pt_resolve(&pt, x86pt_va(va), &m);
            CHECK((st == X86PT_OK) == (c != NULL));
            CHECK(!c || (m.base.va == c->base.va && m.frame.pa == c->frame.pa && m.flags == c->flags));
            break;
        }
        default: { /* ranges: checked against the raw tree below */
            uint64_t length = (take(&p, end, 1) % 6) * X86PT_PAGE_4K * (1 + ((op >> 6) & 1) * 511);
            va &= ~0xfffull;
            /* unmap_range: with flags 3, into a gather of 8 */
            x86pt_gather_init(&gather, gathered, 8);
            struct x86pt_gather *g = flags == 3 ? &gather : NULL;
            struct x86pt_flush fl;
            x86pt_status_t st = (op & 7) == 5
                ? x86pt_map_range(&pt, x86pt_va(va), x86pt_pa(va & 0x3fffffffffull), length, flags, X86PT_LARGEST_FIT, NULL)
                : (op & 7) == 6 ? x86pt_unmap_range_gather(&pt, x86pt_va(va), length, X86PT_STRADDLE_SPLIT, &fl, g)
                                : x86pt_protect_range(&pt, x86pt_va(va), length, flags, X86PT_STRADDLE_SPLIT, NULL);
            if ((op & 7) == 6 && g) {
                CHECK(st == X86PT_OK ? gather.count == fl.dirs_freed : gather.count == 0);
                x86pt_gather_release(&pt, &gather);
            }
            /* resynchronise the reference from the tree, which tree_scan validates */
            refmap_fini(&ref);
            refmap_init(&ref);
            struct tree_report r = tree_scan(&s, pt.root.pa, 46, &ref);
            CHECK(!r.violation);
        }
        }
        sim_phys_fail_nth(&s, 0);
    }
    struct tree_report r = tree_scan(&s, pt.root.pa, 46, NULL);
    CHECK(!r.violation && r.dirs == s.live && s.bad_frees == 0);
    while (ref.n) {
        CHECK(x86pt_unmap(&pt, ref.m[0].base, NULL, NULL) == X86PT_OK);
        refmap_remove(&ref, ref.m[0].base.va);
    }
    CHECK(s.live == 1);
    x86pt_destroy(&pt);
    CHECK(s.live == 0 && s.bad_frees == 0);
    refmap_fini(&ref);
    sim_phys_fini(&s);
    return 0;
}
