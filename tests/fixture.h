/* Shared set-up for the library's tests: a page table over simulated physical
 * memory that scribbles on every allocated frame. */
#ifndef X86PT_TESTS_FIXTURE_H
#define X86PT_TESTS_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "physmem.h"
#include "refmap.h"
#include "tree.h"

struct fx {
    struct sim_phys s;
    struct x86pt_mem mem;
    struct x86pt pt;
    unsigned width;
};

static inline struct fx *fx_new(uint64_t bytes, unsigned width, bool translated)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_true(sim_phys_init(&f->s, bytes, 1));
    f->s.scribble = true;
    f->mem = translated ? sim_phys_mem_translated(&f->s) : sim_phys_mem(&f->s);
    f->width = width;
    assert_int_equal(x86pt_init(&f->pt, &f->mem, width), X86PT_OK);
    return f;
}

static inline void fx_free(struct fx *f)
{
    sim_phys_fini(&f->s);
    free(f);
}

/* The entry that maps va (the walk's last present entry: a 4 KiB entry, or one
 * with PS at layer 1 or 2; SDM vol. 3A 4.5), in simulated memory. */
static inline uint64_t *fx_leaf_of(struct fx *f, uint64_t va)
{
    uint64_t dir = f->pt.root.pa;
    for (unsigned l = 0; l < 4; l++) {
        uint64_t *e = (uint64_t *)(f->s.mem + dir) + ((va >> (39 - 9 * l)) & 511);
        assert_true(*e & 1);
        if (l == 3 || (l > 0 && (*e & 0x80)))
            return e;
        dir = *e & 0x000ffffffffff000ull;
    }
    return NULL;
}

/* The tree must satisfy every structural invariant; returns its directory count. */
static inline uint64_t fx_check_tree(struct fx *f, struct refmap *out)
{
    struct tree_report r = tree_scan(&f->s, f->pt.root.pa, f->pt.maxphyaddr, out);
    if (r.violation)
        fail_msg("tree invariant broken: %s at %#llx", r.violation, (unsigned long long)r.where);
    assert_int_equal(r.dirs, f->s.live);
    assert_int_equal(f->s.bad_frees, 0);
    return r.dirs;
}

/* A snapshot of everything a failed call must leave alone. */
struct snapshot {
    uint8_t *mem;
    uint16_t *counts;
    uint64_t live;
};

static inline struct snapshot snap_take(const struct fx *f)
{
    struct snapshot sn = {malloc(f->s.bytes), malloc(f->s.frames * 2), f->s.live};
    assert_non_null(sn.mem);
    assert_non_null(sn.counts);
    memcpy(sn.mem, f->s.mem, f->s.bytes);
    memcpy(sn.counts, f->s.counts, f->s.frames * 2);
    return sn;
}

/* Memory of every allocated frame, the counts and the live total are unchanged
 * (free frames may differ: a rolled-back allocation scribbles then zeroes them). */
static inline void snap_assert_same(const struct fx *f, struct snapshot *sn)
{
    assert_int_equal(f->s.live, sn->live);
    for (uint64_t fr = 0; fr < f->s.frames; fr++) {
        if (!f->s.owned[fr])
            continue;
        assert_memory_equal(f->s.mem + fr * 4096, sn->mem + fr * 4096, 4096);
        assert_int_equal(f->s.counts[fr], sn->counts[fr]);
    }
    free(sn->mem);
    free(sn->counts);
}

#endif
