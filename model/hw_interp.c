/*
 * hardware.rs interp_pt_mem: the map of every (base, pte) with valid_pt_walk(pt_mem, base, pte),
 * computed by walking the tree once instead of testing every aligned base below MAX_BASE.
 *
 * Why this equals the spec's definition: valid_pt_walk(base, pte) holds exactly when the walk of
 * base ends in a Page entry whose entry size divides base. Walking every non-Empty entry of every
 * reachable directory in index order enumerates each such leaf once, at the base made of its
 * indices, and that base is aligned to the leaf's size by construction.
 *
 * Hostile images: each directory is entered at most once (a bitmap over physical frames), so a
 * cycle or a shared subtree stops the traversal with HW_INTERP_E_SHARED instead of multiplying
 * the work; a directory pointer outside physical memory stops it with HW_INTERP_E_OUTSIDE. The
 * recursion is bounded by the four layers.
 */
#include "hw_codec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct visit_state {
    const struct hw_pt_view *pt;
    hw_pt_visit_fn visit;
    void *ctx;
    uint64_t *seen;  /* one bit per physical frame: directory already entered */
    struct hw_interp_diag *diag;
    bool stopped;
};

static enum hw_interp_status fail(struct visit_state *st, enum hw_interp_status status,
                                  unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                                  uint64_t target)
{
    struct hw_interp_diag d = { status, layer, entry_pa, vaddr, target, false };
    *st->diag = d;
    return status;
}

/* Enter the directory at dir (a table of layer `layer`) whose entries cover vaddr upwards, with
 * flags combined so far in `above`. */
static enum hw_interp_status visit_dir(struct visit_state *st, uint64_t dir, unsigned layer,
                                       uint64_t vaddr, struct hw_flags above)
{
    const struct hw_pt_view *pt = st->pt;
    uint64_t size = hw_entry_size(layer);
    const uint64_t *words = hw_mem_view_page(&pt->mem, dir); /* inside: checked before entering */
    for (unsigned i = 0; words && i < HW_NUM_ENTRIES; i++) {
        uint64_t pa = dir + (uint64_t)i * HW_WORD_SIZE, v = words[i];
        if (!(v & HW_BIT_P))
            continue;
        struct hw_pde d = hw_codec_view(v, layer, pt->maxphyaddr);
        if (d.kind == HW_PDE_EMPTY)
            continue;
        uint64_t base = vaddr + i * size;
        struct hw_flags f = {
            .is_writable = above.is_writable && d.flag_RW,
            .is_supervisor = above.is_supervisor || !d.flag_US,
            .disable_execute = above.disable_execute || d.flag_XD,
        };
        if (d.kind == HW_PDE_PAGE)
            hw_codec_leaf_attrs(&d, &f);
        struct hw_pte pte = { { d.addr, size }, f };
        if (!st->visit(st->ctx, layer, pa, base, &d, &pte)) {
            st->stopped = true;
            return HW_INTERP_OK;
        }
        if (d.kind == HW_PDE_PAGE)
            continue;
        if (d.addr >= pt->mem.bytes || pt->mem.bytes - d.addr < HW_PAGE_SIZE)
            return fail(st, HW_INTERP_E_OUTSIDE, layer, pa, base, d.addr);
        uint64_t frame = d.addr / HW_PAGE_SIZE;
        if (st->seen[frame / 64] & (UINT64_C(1) << (frame % 64)))
            return fail(st, HW_INTERP_E_SHARED, layer, pa, base, d.addr);
        st->seen[frame / 64] |= UINT64_C(1) << (frame % 64);
        enum hw_interp_status r = visit_dir(st, d.addr, layer + 1, base, f);
        if (r != HW_INTERP_OK || st->stopped)
            return r;
    }
    return HW_INTERP_OK;
}

enum hw_interp_status hw_pt_visit(const struct hw_pt_view *pt, hw_pt_visit_fn visit, void *ctx,
                                  struct hw_interp_diag *diag)
{
    struct hw_interp_diag scratch;
    struct visit_state st = { pt, visit, ctx, NULL, diag ? diag : &scratch, false };
    memset(st.diag, 0, sizeof *st.diag);
    if (pt->cr3 % HW_PAGE_SIZE || pt->cr3 >= pt->mem.bytes ||
        pt->mem.bytes - pt->cr3 < HW_PAGE_SIZE) {
        enum hw_interp_status r = pt->cr3 % HW_PAGE_SIZE ? HW_INTERP_E_CR3 : HW_INTERP_E_OUTSIDE;
        fail(&st, r, 0, 0, 0, pt->cr3);
        st.diag->at_cr3 = true;
        return r;
    }
    uint64_t frames = pt->mem.bytes / HW_PAGE_SIZE;
    st.seen = calloc(frames / 64 + 1, sizeof *st.seen);
    if (!st.seen)
        return fail(&st, HW_INTERP_E_NOMEM, 0, 0, 0, 0);
    uint64_t root = pt->cr3 / HW_PAGE_SIZE;
    st.seen[root / 64] |= UINT64_C(1) << (root % 64);
    struct hw_flags permissive = { .is_writable = true, .is_supervisor = false,
                                   .disable_execute = false };
    enum hw_interp_status r = visit_dir(&st, pt->cr3, 0, 0, permissive);
    free(st.seen);
    return r;
}

static bool interp_push(struct hw_interp *in, uint64_t base, const struct hw_pte *pte)
{
    if (in->len == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        struct hw_mapping *m = realloc(in->map, cap * sizeof *m);
        if (!m)
            return false;
        in->map = m;
        in->cap = cap;
    }
    in->map[in->len].base = base;
    in->map[in->len].pte = *pte;
    in->len++;
    return true;
}

struct interp_ctx {
    struct hw_interp *out;
    bool nomem;
};

static bool collect_page(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                         const struct hw_pde *pde, const struct hw_pte *combined)
{
    struct interp_ctx *ic = ctx;
    (void)layer;
    (void)entry_pa;
    if (pde->kind != HW_PDE_PAGE)
        return true;
    if (!interp_push(ic->out, vaddr, combined)) {
        ic->nomem = true;
        return false;
    }
    return true;
}

/* hardware.rs: interp_pt_mem */
enum hw_interp_status hw_interp_pt_mem(const struct hw_pt_view *pt, struct hw_interp *out,
                                       struct hw_interp_diag *diag)
{
    struct interp_ctx ic = { out, false };
    out->len = 0;
    enum hw_interp_status r = hw_pt_visit(pt, collect_page, &ic, diag);
    if (ic.nomem) {
        if (diag)
            diag->status = HW_INTERP_E_NOMEM;
        return HW_INTERP_E_NOMEM;
    }
    return r;
}

void hw_interp_fini(struct hw_interp *in)
{
    free(in->map);
    memset(in, 0, sizeof *in);
}

/* Index of the last mapping with base <= vaddr, or -1. */
static ptrdiff_t floor_index(const struct hw_interp *in, uint64_t vaddr)
{
    size_t lo = 0, hi = in->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (in->map[mid].base <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

const struct hw_pte *hw_interp_get(const struct hw_interp *in, uint64_t base)
{
    ptrdiff_t i = floor_index(in, base);
    return i >= 0 && in->map[i].base == base ? &in->map[i].pte : NULL;
}

const struct hw_mapping *hw_interp_find(const struct hw_interp *in, uint64_t vaddr)
{
    ptrdiff_t i = floor_index(in, vaddr);
    if (i < 0)
        return NULL;
    const struct hw_mapping *m = &in->map[i];
    return hw_between(vaddr, m->base, m->base + m->pte.frame.size) ? m : NULL;
}

bool hw_interp_equal(const struct hw_interp *a, const struct hw_interp *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (a->map[i].base != b->map[i].base || !hw_pte_equal(&a->map[i].pte, &b->map[i].pte))
            return false;
    return true;
}

const char *hw_interp_status_str(enum hw_interp_status st)
{
    switch (st) {
    case HW_INTERP_OK: return "ok";
    case HW_INTERP_E_OUTSIDE: return "directory outside physical memory";
    case HW_INTERP_E_SHARED: return "directory reachable twice (cycle or shared subtree)";
    case HW_INTERP_E_CR3: return "cr3 not 4 KiB aligned";
    case HW_INTERP_E_NOMEM: return "out of host memory";
    }
    return "unknown interp status";
}

static const char *layer_name(unsigned layer)
{
    static const char *const names[] = { "PML4", "PDPT", "PD", "PT" };
    return layer < HW_NUM_LAYERS ? names[layer] : "?";
}

void hw_interp_diag_format(const struct hw_interp_diag *d, char *buf, size_t len)
{
    switch (d->status) {
    case HW_INTERP_OK:
    case HW_INTERP_E_NOMEM:
        snprintf(buf, len, "%s", hw_interp_status_str(d->status));
        return;
    case HW_INTERP_E_CR3:
        snprintf(buf, len, "cr3 %#" PRIx64 " is not 4 KiB aligned", d->target);
        return;
    case HW_INTERP_E_OUTSIDE:
        if (d->at_cr3)
            snprintf(buf, len, "cr3 %#" PRIx64 ": the PML4 lies outside physical memory",
                     d->target);
        else
            snprintf(buf, len,
                     "%s entry at pa %#" PRIx64 " (va %#" PRIx64 ") points to a directory at %#"
                     PRIx64 " outside physical memory", layer_name(d->layer), d->entry_pa,
                     d->vaddr, d->target);
        return;
    case HW_INTERP_E_SHARED:
        snprintf(buf, len,
                 "%s entry at pa %#" PRIx64 " (va %#" PRIx64 ") points to directory %#" PRIx64
                 ", which is already reachable (cycle or shared subtree)", layer_name(d->layer),
                 d->entry_pa, d->vaddr, d->target);
        return;
    }
    snprintf(buf, len, "unknown interp status");
}
