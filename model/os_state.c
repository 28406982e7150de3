/* Plumbing of the OS model (spec_t/os.rs OSVariables as a C value): init, copy, fini, hash and
 * equality of a state, and the page-table frame pool (spec_t/mem.rs alloc_page/dealloc_page).
 * The steps are in os.c. */
#include "os_internal.h"

#include <string.h>

/* ---- state as a value ---------------------------------------------------------------------- */

bool os_init(const struct os_consts *c, struct os_vars *s)
{
    memset(s, 0, sizeof *s);
    if (os_ncores(c) > OS_MAX_CORES || c->ULT_no > HL_MAX_THREADS || c->pt_frames > OS_PT_FRAMES_MAX ||
        c->pt_frames < 2)
        return false;
    struct hw_pmem pt;
    uint64_t root;
    if (!hw_pmem_init(&pt, (uint64_t)c->pt_frames * HW_PAGE_SIZE))
        return false;
    if (!c->impl->init(c->impl->ctx, c, &pt, s->pt_counts, &root) || root / HW_PAGE_SIZE >= c->pt_frames) {
        hw_pmem_fini(&pt);
        return false;
    }
    bool ok = hw_init(&c->hw, &s->hw, &pt, root);
    hw_pmem_fini(&pt);
    if (!ok)
        return false;
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        if (f != root / HW_PAGE_SIZE)
            s->pt_free[f / 64] |= UINT64_C(1) << (f % 64);
    s->sound = true; /* os.rs init: every core Idle, no open request, sound */
    return true;
}

bool os_vars_copy(struct os_vars *dst, const struct os_vars *src)
{
    memcpy(dst, src, sizeof *dst);
    os_run_hold(&dst->run);
    if (!hw_vars_copy(&dst->hw, &src->hw)) {
        os_run_drop(&dst->run);
        return false;
    }
    return true;
}

void os_vars_fini(struct os_vars *s)
{
    hw_vars_fini(&s->hw);
    os_run_drop(&s->run);
}

#define mix os_mix

static uint64_t hash_pte(uint64_t h, const struct hw_pte *p)
{
    return mix(mix(mix(h, p->frame.base), p->frame.size), hw_flags_bits(p->flags));
}

static uint64_t hash_core(uint64_t h, const struct os_core_state *cs, const unsigned *ult_map)
{
    h = mix(h, cs->kind);
    if (cs->kind == OS_IDLE)
        return h;
    h = mix(mix(h, ult_map && cs->ULT_id < HL_MAX_THREADS ? ult_map[cs->ULT_id] : cs->ULT_id), cs->vaddr);
    h = hash_pte(h, &cs->pte);
    h = mix(mix(h, hw_flags_bits(cs->flags)), cs->result_ok);
    h = hash_pte(h, &cs->result);
    h = os_mix(os_mix(os_mix(h, (uint64_t)cs->stored | (uint64_t)cs->splits << 1 | (uint64_t)cs->flush.all << 2 |
                                     (uint64_t)cs->flush.global << 3),
                      cs->chg_lo), cs->chg_hi);
    h = os_mix(os_mix(os_mix(os_mix(h, cs->freed | (uint64_t)cs->alloc_failed << 32 | (uint64_t)cs->removed_ad << 40 |
                                          (uint64_t)cs->ad_clear << 44),
                             cs->flush.lo), cs->flush.hi),
               cs->flush.dirs_freed);
    if (!cs->range)
        return h;
    const struct os_range *r = &cs->rg;
    h = mix(mix(mix(mix(h, r->length), r->paddr), r->policy),
            (uint64_t)r->split | (uint64_t)r->will_ok << 1 | (uint64_t)r->shrinks << 3 |
                (uint64_t)r->fail_alloc << 8 | (uint64_t)r->allocs << 16);
    return mix(mix(h, r->lo), r->hi);
}

uint64_t os_vars_hash(const struct os_vars *s)
{
    return os_vars_hash_perm(s, NULL, NULL);
}

/* Core i of the renumbered state is core core_perm[i] of s (and thread u is ult_map[u]). */
static uint32_t permute_requests(uint32_t open, const unsigned *core_perm)
{
    uint32_t r = 0;
    for (unsigned i = 0; i < OS_MAX_CORES && i < 32; i++)
        r |= ((open >> core_perm[i]) & 1u) << i;
    return r;
}

uint64_t os_vars_hash_perm(const struct os_vars *s, const unsigned *core_perm, const unsigned *ult_map)
{
    uint64_t h = hw_vars_hash_perm(&s->hw, core_perm);
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        h = hash_core(h, &s->core_states[core_perm ? core_perm[i] : i], ult_map);
    uint32_t open = core_perm ? permute_requests(s->TLB_Shootdown.open_requests, core_perm)
                              : s->TLB_Shootdown.open_requests;
    h = mix(mix(mix(h, s->TLB_Shootdown.vaddr), open), s->TLB_Shootdown.for_protect);
    h = mix(mix(mix(h, s->TLB_Shootdown.lo), s->TLB_Shootdown.hi),
            2 + s->TLB_Shootdown.all + 4 * s->TLB_Shootdown.dirs + 8 * s->TLB_Shootdown.global);
    h = mix(mix(h, s->sound), s->pt_private);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX / 64; i++)
        h = mix(mix(mix(h, s->pt_free[i]), s->pt_pending[i]), s->pt_fresh[i]);
    for (unsigned i = 0; i < OS_PT_FRAMES_MAX; i++)
        if (s->pt_counts[i])
            h = mix(mix(h, i), s->pt_counts[i]);
    return mix(h, os_run_hash(&s->run)); /* the library's run: its responses and where it stands */
}

static bool core_equal(const struct os_core_state *a, const struct os_core_state *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == OS_IDLE)
        return true;
    if (a->range != b->range || (a->range && memcmp(&a->rg, &b->rg, sizeof a->rg)))
        return false;
    return a->ULT_id == b->ULT_id && a->vaddr == b->vaddr && hw_pte_equal(&a->pte, &b->pte) &&
           hl_flags_equal(a->flags, b->flags) && a->result_ok == b->result_ok &&
           hw_pte_equal(&a->result, &b->result) && a->stored == b->stored && a->splits == b->splits &&
           a->chg_lo == b->chg_lo && a->chg_hi == b->chg_hi && a->freed == b->freed && a->alloc_failed == b->alloc_failed &&
           a->removed_ad == b->removed_ad && a->ad_clear == b->ad_clear &&
           !memcmp(&a->flush, &b->flush, sizeof a->flush);
}

bool os_vars_equal(const struct os_vars *a, const struct os_vars *b)
{
    for (unsigned i = 0; i < OS_MAX_CORES; i++)
        if (!core_equal(&a->core_states[i], &b->core_states[i]))
            return false;
    if (a->TLB_Shootdown.vaddr != b->TLB_Shootdown.vaddr ||
        a->TLB_Shootdown.open_requests != b->TLB_Shootdown.open_requests ||
        a->TLB_Shootdown.for_protect != b->TLB_Shootdown.for_protect || a->sound != b->sound ||
        a->pt_private != b->pt_private ||
        memcmp(a->pt_free, b->pt_free, sizeof a->pt_free) ||
        memcmp(a->pt_counts, b->pt_counts, sizeof a->pt_counts) || !os_run_equal(&a->run, &b->run) ||
        memcmp(a->pt_pending, b->pt_pending, sizeof a->pt_pending) ||
        memcmp(a->pt_fresh, b->pt_fresh, sizeof a->pt_fresh) || a->TLB_Shootdown.all != b->TLB_Shootdown.all ||
        a->TLB_Shootdown.dirs != b->TLB_Shootdown.dirs || a->TLB_Shootdown.global != b->TLB_Shootdown.global ||
        a->TLB_Shootdown.lo != b->TLB_Shootdown.lo || a->TLB_Shootdown.hi != b->TLB_Shootdown.hi)
        return false;
    return hw_vars_equal(&a->hw, &b->hw);
}

/* ---- the page-table frame pool ------------------------------------------------------------ */

bool os_pt_alloc(const struct os_consts *c, uint64_t *pool, uint64_t *frame)
{
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++)
        if (pool[f / 64] & (UINT64_C(1) << (f % 64))) {
            pool[f / 64] &= ~(UINT64_C(1) << (f % 64));
            *frame = (uint64_t)f * HW_PAGE_SIZE;
            return true;
        }
    return false;
}

unsigned os_pt_free_count(const struct os_consts *c, const struct os_vars *s)
{
    unsigned n = 0;
    for (unsigned f = 0; f < c->pt_frames; f++)
        n += (s->pt_free[f / 64] >> (f % 64)) & 1;
    return n;
}

bool os_vars_permute(const struct os_vars *s, const unsigned *core_perm, const unsigned *ult_map,
                     struct os_vars *out)
{
    if (!os_vars_copy(out, s))
        return false;
    for (unsigned i = 0; i < OS_MAX_CORES; i++) {
        struct os_core_state *cs = &out->core_states[i];
        *cs = s->core_states[core_perm[i]];
        if (cs->kind != OS_IDLE && cs->ULT_id < HL_MAX_THREADS)
            cs->ULT_id = ult_map[cs->ULT_id];
    }
    struct hw_tlb tlbs[OS_MAX_CORES]; /* out's own copies, renumbered (perm is a bijection) */
    struct hw_mmu_core mmu[OS_MAX_CORES];
    unsigned n = s->hw.ntlbs < OS_MAX_CORES ? s->hw.ntlbs : OS_MAX_CORES;
    for (unsigned i = 0; i < n; i++) {
        tlbs[i] = out->hw.tlbs[core_perm[i]];
        if (out->hw.mmu)
            mmu[i] = out->hw.mmu[core_perm[i]];
    }
    for (unsigned i = 0; i < n; i++) {
        out->hw.tlbs[i] = tlbs[i];
        if (out->hw.mmu)
            out->hw.mmu[i] = mmu[i];
    }
    out->TLB_Shootdown.open_requests = permute_requests(s->TLB_Shootdown.open_requests, core_perm);
    return true;
}
