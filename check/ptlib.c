/* libx86pt as the OS model's page-table component. See ptlib.h. */
#include "ptlib.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x86pt/x86pt.h"

#define AD_BITS (HW_BIT_A | HW_BIT_D)

struct run {
    struct ptlib *p;
    const struct os_consts *c;
    const struct os_vars *s;
    uint64_t pool[OS_PT_FRAMES_MAX / 64];
    struct os_pt_outcome *out;
    bool randomize_ad;
    bool overflow;
    bool outside;            /* the library touched memory outside page-table memory */
    char bad[200];           /* first unreported store / unzeroed link found */
};

struct ptlib {
    struct os_pt_impl impl;
    unsigned frames;
    uint8_t *flat;       /* scratch page-table memory */
    uint8_t *expect;     /* the same frames as the model sees them: copy + reported stores */
    uint8_t *fresh;      /* per frame: 1 allocated in this run and not yet linked, 2 linked */
    uint8_t trash[HW_PAGE_SIZE] __attribute__((aligned(4096)));
    uint32_t *stamp;     /* per frame: generation it was copied in */
    uint32_t gen;
    uint64_t rng;
    bool ad_check;
    struct run *cur;
};

static uint64_t rng_next(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Copy frame f of the model's memory into the scratch buffer on first touch in this run. */
static void *lazy_frame(struct ptlib *p, uint64_t pa)
{
    uint64_t f = pa / HW_PAGE_SIZE;
    if (f >= p->frames) {
        p->cur->outside = true;
        return p->trash + pa % HW_PAGE_SIZE;
    }
    uint8_t *dst = p->flat + f * HW_PAGE_SIZE;
    if (p->stamp[f] != p->gen) {
        p->fresh[f] = 0;
        const struct hw_frame *src = p->cur->s->hw.global_pt.mem.frames[f];
        if (src)
            memcpy(dst, src->words, HW_PAGE_SIZE);
        else
            memset(dst, 0, HW_PAGE_SIZE);
        if (p->cur->randomize_ad) {
            uint64_t *w = (uint64_t *)(void *)dst;
            for (unsigned i = 0; i < HW_WORDS_PER_FRAME; i++)
                if (w[i] & HW_BIT_P)
                    w[i] = (w[i] & ~AD_BITS) | (rng_next(&p->rng) & AD_BITS);
        }
        memcpy(p->expect + f * HW_PAGE_SIZE, dst, HW_PAGE_SIZE);
        p->stamp[f] = p->gen;
    }
    return dst + pa % HW_PAGE_SIZE;
}

static void *cb_phys_to_virt(void *ctx, x86pt_paddr_t pa) { return lazy_frame(ctx, pa.pa); }

static void push(struct run *r, enum os_pt_event_kind k, uint64_t pa, uint64_t v, bool hidden)
{
    if (!os_pt_outcome_push(r->out, k, pa, v, hidden))
        r->overflow = true;
}

/* Every frame touched in this run must look as the model will see it (its copy plus the
 * reported stores), except frames allocated in this run and not yet linked: a difference is a
 * store the library did not report, or a directory linked before it was zeroed. */
static void verify(struct ptlib *p, const char *when)
{
    struct run *r = p->cur;
    if (r->bad[0])
        return;
    for (unsigned f = 0; f < p->frames; f++) {
        if (p->stamp[f] != p->gen || p->fresh[f] == 1)
            continue;
        if (memcmp(p->flat + (size_t)f * HW_PAGE_SIZE, p->expect + (size_t)f * HW_PAGE_SIZE, HW_PAGE_SIZE))
            snprintf(r->bad, sizeof r->bad,
                     "page-table frame 0x%" PRIx64 " holds data the model never saw stored (%s): "
                     "an unreported store, or a directory linked before it was zeroed",
                     (uint64_t)f * HW_PAGE_SIZE, when);
    }
}

/* A store links a directory allocated in this run (fresh == 1): whatever the library wrote
 * into it while it was unreachable (a split fills all 512 entries before one store swaps it
 * in; alloc_frame's garbage is zeroed first and not reported, x86pt.h) becomes a run of
 * hidden stores recorded before the linking store, so that the model's memory holds it. */
static void record_fill(struct ptlib *p, uint64_t target)
{
    const uint64_t *w = (const uint64_t *)(const void *)(p->flat + target * HW_PAGE_SIZE);
    uint64_t *x = (uint64_t *)(void *)(p->expect + target * HW_PAGE_SIZE);
    for (unsigned i = 0; i < HW_WORDS_PER_FRAME; i++)
        if (w[i] != x[i]) {
            push(p->cur, OS_EV_WRITE, target * HW_PAGE_SIZE + 8u * i, w[i], true);
            x[i] = w[i];
        }
}

static void cb_observe(void *ctx, x86pt_paddr_t pa, uint64_t value)
{
    struct ptlib *p = ctx;
    uint64_t f = pa.pa / HW_PAGE_SIZE;
    uint64_t target = (value & (((UINT64_C(1) << 52) - 1) & ~UINT64_C(0xfff))) / HW_PAGE_SIZE;
    bool links_fresh = (value & HW_BIT_P) && target < p->frames && p->stamp[target] == p->gen &&
                       p->fresh[target] == 1 && f != target;
    if (links_fresh)
        record_fill(p, target);
    push(p->cur, OS_EV_WRITE, pa.pa, value, false);
    if (f < p->frames && p->stamp[f] == p->gen)
        memcpy(p->expect + pa.pa, &value, sizeof value);
    if (links_fresh)
        p->fresh[target] = 2;
    verify(p, "at a store");
}

static bool cb_alloc(void *ctx, x86pt_paddr_t *frame)
{
    struct ptlib *p = ctx;
    struct run *r = p->cur;
    uint64_t f;
    if (r->out->nalloc >= OS_PT_FRAMES_MAX || !os_pt_alloc(r->c, r->pool, &f))
        return false;
    r->out->alloc[r->out->nalloc++] = f;
    frame->pa = f;
    /* alloc_frame may return garbage (x86pt.h); the model's alloc_page is zeroed */
    uint64_t i = f / HW_PAGE_SIZE;
    if (i < p->frames) {
        memset(p->flat + f, 0xA5, HW_PAGE_SIZE);
        memset(p->expect + f, 0, HW_PAGE_SIZE);
        p->stamp[i] = p->gen;
        p->fresh[i] = 1;
    }
    return true;
}

static void cb_free(void *ctx, x86pt_paddr_t frame)
{
    struct ptlib *p = ctx;
    uint64_t i = frame.pa / HW_PAGE_SIZE;
    push(p->cur, OS_EV_FREE, frame.pa, 0, false);
    if (i < p->frames && p->fresh[i] == 1)
        p->fresh[i] = 0, p->stamp[i] = 0; /* an unused fresh frame goes back untouched */
}

static unsigned to_lib_flags(struct hw_flags f)
{
    return (f.is_writable ? X86PT_WRITABLE : 0u) | (f.is_supervisor ? 0u : X86PT_USER) |
           (f.disable_execute ? X86PT_NO_EXECUTE : 0u);
}

static struct hw_flags from_lib_flags(unsigned f)
{
    struct hw_flags h = { (f & X86PT_WRITABLE) != 0, (f & X86PT_USER) == 0, (f & X86PT_NO_EXECUTE) != 0 };
    return h;
}

static struct x86pt handle(struct ptlib *p, const struct os_consts *c, uint64_t root, uint16_t *counts,
                           uint64_t hint)
{
    struct x86pt pt;
    memset(&pt, 0, sizeof pt);
    pt.mem.ctx = p;
    pt.mem.alloc_frame = cb_alloc;
    pt.mem.free_frame = cb_free;
    pt.mem.phys_to_virt = cb_phys_to_virt;
    pt.mem.direct_map = NULL;
    pt.mem.used_counts = counts;
    pt.mem.used_counts_len = c->pt_frames;
    pt.mem.observe_write = cb_observe;
    pt.root = x86pt_pa(root);
    pt.maxphyaddr = c->hw.maxphyaddr;
    pt.phys_limit = UINT64_C(1) << c->hw.maxphyaddr;
    pt.walk_hint = hint;
    return pt;
}

/* One run of the operation; false if the library returned a status the spec does not allow. */
static bool run_once(struct ptlib *p, struct run *r, const struct os_pt_request *rq, uint16_t *counts,
                     char *why, size_t len)
{
    struct x86pt pt = handle(p, r->c, r->s->hw.global_pt.cr3, counts, r->s->pt_private);
    struct x86pt_flush flush;
    x86pt_status_t st;
    x86pt_vaddr_t va = x86pt_va(hw_vaddr_to_canonical(rq->vaddr));
    memcpy(r->pool, r->s->pt_free, sizeof r->pool);
    p->cur = r;
    p->gen++;
    if (rq->range) {
        static const enum x86pt_page_policy pol[] = { X86PT_LARGEST_FIT, X86PT_ONLY_4K, X86PT_ONLY_2M, X86PT_ONLY_1G };
        enum x86pt_straddle sm = rq->split ? X86PT_STRADDLE_SPLIT : X86PT_STRADDLE_FAIL;
        x86pt_status_t err;
        if (rq->op == OS_PT_MAP) {
            st = x86pt_map_range(&pt, va, x86pt_pa(rq->paddr), rq->length, to_lib_flags(rq->flags), pol[rq->policy & 3],
                                 &flush);
            err = X86PT_E_OVERLAP;
        } else if (rq->op == OS_PT_UNMAP) {
            st = x86pt_unmap_range(&pt, va, rq->length, sm, &flush);
            err = X86PT_E_STRADDLE;
        } else {
            st = x86pt_protect_range(&pt, va, rq->length, to_lib_flags(rq->flags), sm, &flush);
            err = X86PT_E_STRADDLE;
        }
        r->out->ok = st == X86PT_OK;
        r->out->nomem = st == X86PT_E_NOMEM;
        if (st != X86PT_OK && st != err && st != X86PT_E_NOMEM)
            return snprintf(why, len, "x86pt_%s_range returned %s", rq->op == OS_PT_MAP ? "map" : rq->op == OS_PT_UNMAP ? "unmap" : "protect",
                            x86pt_strerror(st)), false;
        uint64_t start;
        if (flush.length && !hw_vaddr_from_canonical(flush.start.va, &start))
            return snprintf(why, len, "the flush report starts at a non-canonical address"), false;
        r->out->flush_lo = flush.length ? start : 0;
        r->out->flush_hi = flush.length ? start + flush.length : 0;
        r->out->flush_all = flush.flush_all;
    } else if (rq->op == OS_PT_MAP) {
        st = x86pt_map(&pt, va, x86pt_pa(rq->pte.frame.base), rq->pte.frame.size, to_lib_flags(rq->pte.flags), &flush);
        r->out->ok = st == X86PT_OK;
        if (st != X86PT_OK && st != X86PT_E_OVERLAP)
            return snprintf(why, len, "x86pt_map returned %s", x86pt_strerror(st)), false;
    } else if (rq->op == OS_PT_UNMAP) {
        struct x86pt_mapping removed;
        st = x86pt_unmap(&pt, va, &removed, &flush);
        r->out->ok = st == X86PT_OK;
        if (st != X86PT_OK && st != X86PT_E_NOTMAPPED)
            return snprintf(why, len, "x86pt_unmap returned %s", x86pt_strerror(st)), false;
        if (st == X86PT_OK) {
            uint64_t b;
            r->out->has_reported = hw_vaddr_from_canonical(removed.base.va, &b) && b == rq->vaddr;
            r->out->reported.frame.base = removed.frame.pa;
            r->out->reported.frame.size = removed.size;
            r->out->reported.flags = from_lib_flags(removed.flags);
        }
    } else {
        st = x86pt_protect(&pt, va, to_lib_flags(rq->flags), &flush);
        r->out->ok = st == X86PT_OK;
        if (st != X86PT_OK && st != X86PT_E_NOTMAPPED)
            return snprintf(why, len, "x86pt_protect returned %s", x86pt_strerror(st)), false;
    }
    r->out->flush_requested = flush.length > 0 || flush.flush_all;
    r->out->private_state = pt.walk_hint;
    verify(p, "after the operation");
    if (r->outside)
        return snprintf(why, len, "the library touched memory outside page-table memory"), false;
    if (r->bad[0])
        return snprintf(why, len, "%s", r->bad), false;
    if (r->overflow)
        return snprintf(why, len, "out of host memory recording the operation"), false;
    return true;
}

static bool same_modulo_ad(const struct os_pt_outcome *a, const struct os_pt_outcome *b, const uint16_t *ca,
                           const uint16_t *cb, unsigned frames, char *why, size_t len)
{
    if (a->ok != b->ok)
        return snprintf(why, len, "A/D independence: result %s with the table's A/D bits, %s with random ones",
                        a->ok ? "Ok" : "Err", b->ok ? "Ok" : "Err"), false;
    if (a->nalloc != b->nalloc || memcmp(a->alloc, b->alloc, a->nalloc * sizeof a->alloc[0]))
        return snprintf(why, len, "A/D independence: allocations differ with random A/D bits"), false;
    if (a->nev != b->nev)
        return snprintf(why, len, "A/D independence: %u events with the table's A/D bits, %u with random ones",
                        a->nev, b->nev), false;
    for (unsigned i = 0; i < a->nev; i++) {
        const struct os_pt_event *x = &a->ev[i], *y = &b->ev[i];
        if (x->kind != y->kind || x->pa != y->pa || (x->value & ~AD_BITS) != (y->value & ~AD_BITS) ||
            x->hidden != y->hidden)
            return snprintf(why, len, "A/D independence: event %u differs: [0x%" PRIx64 "]=0x%" PRIx64
                            " vs [0x%" PRIx64 "]=0x%" PRIx64, i, x->pa, x->value, y->pa, y->value), false;
    }
    if (memcmp(ca, cb, frames * sizeof *ca))
        return snprintf(why, len, "A/D independence: the library's counts differ with random A/D bits"), false;
    return true;
}

static bool impl_run(void *ctx, const struct os_consts *c, const struct os_vars *s, const struct os_pt_request *rq,
                     uint16_t *counts, struct os_pt_outcome *out, char *why, size_t len)
{
    struct ptlib *p = ctx;
    struct run r = { .p = p, .c = c, .s = s, .out = out };
    uint16_t counts2[OS_PT_FRAMES_MAX];
    memcpy(counts2, counts, sizeof counts2);
    if (!run_once(p, &r, rq, counts, why, len))
        return false;
    if (!p->ad_check)
        return true;
    struct os_pt_outcome out2;
    memset(&out2, 0, sizeof out2);
    struct run r2 = { .p = p, .c = c, .s = s, .out = &out2, .randomize_ad = true };
    bool ok = run_once(p, &r2, rq, counts2, why, len);
    if (!ok)
        snprintf(why, len, "A/D independence: with random A/D bits the library fails");
    else
        ok = same_modulo_ad(out, &out2, counts, counts2, c->pt_frames, why, len);
    os_pt_outcome_fini(&out2);
    return ok;
}

static bool impl_init(void *ctx, const struct os_consts *c, struct hw_pmem *ptm, uint16_t *counts, uint64_t *root)
{
    struct ptlib *p = ctx;
    struct os_vars tmp;
    struct os_pt_outcome out;
    memset(&tmp, 0, sizeof tmp);
    memset(&out, 0, sizeof out);
    tmp.hw.global_pt.mem = *ptm; /* read only */
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        tmp.pt_free[f / 64] |= UINT64_C(1) << (f % 64);
    struct run r = { .p = p, .c = c, .s = &tmp, .out = &out };
    memcpy(r.pool, tmp.pt_free, sizeof r.pool);
    p->cur = &r;
    p->gen++;
    struct x86pt pt = handle(p, c, 0, counts, 0);
    struct x86pt_mem mem = pt.mem;
    bool ok = x86pt_init(&pt, &mem, c->hw.maxphyaddr) == X86PT_OK;
    for (unsigned i = 0; ok && i < out.nev; i++)
        if (out.ev[i].kind == OS_EV_WRITE && !hw_pmem_write(ptm, out.ev[i].pa, out.ev[i].value))
            ok = false;
    os_pt_outcome_fini(&out);
    if (!ok)
        return false;
    *root = pt.root.pa;
    return true;
}

struct ptlib *ptlib_new(unsigned pt_frames, uint64_t seed)
{
    /* trash is page-aligned inside the struct: the struct must be too */
    struct ptlib *p = aligned_alloc(HW_PAGE_SIZE, (sizeof *p + HW_PAGE_SIZE - 1) / HW_PAGE_SIZE * HW_PAGE_SIZE);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->frames = pt_frames;
    p->flat = aligned_alloc(HW_PAGE_SIZE, (size_t)pt_frames * HW_PAGE_SIZE);
    p->stamp = calloc(pt_frames, sizeof *p->stamp);
    p->expect = aligned_alloc(HW_PAGE_SIZE, (size_t)pt_frames * HW_PAGE_SIZE);
    p->fresh = calloc(pt_frames, 1);
    p->rng = seed ^ UINT64_C(0xad0ad0ad);
    p->ad_check = true;
    p->impl.ctx = p;
    p->impl.run = impl_run;
    p->impl.init = impl_init;
    if (!p->flat || !p->stamp || !p->expect || !p->fresh) {
        ptlib_free(p);
        return NULL;
    }
    return p;
}

void ptlib_free(struct ptlib *p)
{
    if (!p)
        return;
    free(p->flat);
    free(p->stamp);
    free(p->expect);
    free(p->fresh);
    free(p);
}

const struct os_pt_impl *ptlib_impl(struct ptlib *p) { return &p->impl; }
void ptlib_set_ad_check(struct ptlib *p, bool on) { p->ad_check = on; }
