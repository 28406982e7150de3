/* x86pt's extension of spec_t/hlspec.rs: RANGES (map_range / unmap_range / protect_range;
 * hlspec.h writes it down). The definitions (enabled, pages, straddles, split, region and
 * the contract's result) and the steps RangeStart, RangeStore and RangeEnd. The other places
 * ranges touch, each marked there: an in-flight range operation's region counts in hlspec.c's
 * overlap checks, and a ReadWrite may go through a pte that agrees per address
 * (hlspec.c rw_pte_allowed). */
#include "hlspec_internal.h"
#include "why.h"

#include <inttypes.h>
#include <string.h>

/* ---- the range extension: definitions (hlspec.h) --------------------------------------- */

static uint64_t policy_size(unsigned policy)
{
    return policy == HL_POLICY_ONLY_2M ? HW_L2_ENTRY_SIZE : policy == HL_POLICY_ONLY_1G ? HW_L1_ENTRY_SIZE : HW_L3_ENTRY_SIZE;
}

bool hl_step_Range_enabled(const struct hl_consts *c, enum hl_args_kind kind, uint64_t vaddr, uint64_t length,
                           uint64_t paddr, unsigned policy)
{
    if (!hw_aligned(vaddr, HW_L3_ENTRY_SIZE) || !hw_aligned(length, HW_L3_ENTRY_SIZE) || vaddr >= HW_MAX_BASE ||
        length > HW_MAX_BASE - vaddr)
        return false;
    if (length && ((vaddr ^ (vaddr + length - 1)) >> 47)) /* the canonical hole */
        return false;
    if (kind != HL_ARGS_MAP_RANGE)
        return true;
    uint64_t size = policy_size(policy);
    uint64_t limit = UINT64_C(1) << c->maxphyaddr;
    return policy <= HL_POLICY_ONLY_1G && hw_aligned(vaddr, size) && hw_aligned(paddr, size) &&
           hw_aligned(length, size) && paddr < limit && length <= limit - paddr;
}

bool hl_straddles(const struct hw_mapping *m, uint64_t first, uint64_t last)
{
    uint64_t mlast = m->base + m->pte.frame.size - 1;
    bool meets = m->base <= last && mlast >= first;
    return meets && (m->base < first || mlast > last);
}

void hl_range_region(const struct hw_mapping *m, size_t n, enum hl_args_kind kind, uint64_t vaddr, uint64_t length,
                     bool split, uint64_t *lo, uint64_t *hi, bool *ok)
{
    *lo = vaddr;
    *hi = vaddr + length;
    *ok = true;
    if (!length)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = m[i].base, e = b + m[i].pte.frame.size;
        if (e <= vaddr || b >= vaddr + length)
            continue;
        if (kind == HL_ARGS_MAP_RANGE) {
            *ok = false; /* candidate_mapping_overlaps_existing_vmem */
        } else if (hl_straddles(&m[i], vaddr, vaddr + length - 1)) {
            if (!split)
                *ok = false;
            else if (b < *lo)
                *lo = b;
            if (split && e > *hi)
                *hi = e;
        }
    }
    if (!*ok)
        *lo = vaddr, *hi = vaddr + length;
}

/* Directories split(page) makes: one for the page, and those of its parts that straddle too
 * (only a part holding an end of the range can; both ends may share one). */
static unsigned split_dirs(uint64_t base, uint64_t size, uint64_t first, uint64_t last)
{
    struct hw_mapping m = { .base = base, .pte = { .frame = { 0, size } } };
    if (size <= HW_L3_ENTRY_SIZE || !hl_straddles(&m, first, last))
        return 0;
    uint64_t sub = size / 512, a = base + (first - base) / sub * sub, b = base + (last - base) / sub * sub;
    unsigned n = 1;
    if (first > base)
        n += split_dirs(a, sub, first, last);
    if (last < base + size - 1 && (first <= base || b != a))
        n += split_dirs(b, sub, first, last);
    return n;
}

unsigned hl_range_split_dirs(const struct hw_mapping *m, size_t n, uint64_t vaddr, uint64_t length)
{
    unsigned dirs = 0;
    for (size_t i = 0; length && i < n; i++)
        dirs += split_dirs(m[i].base, m[i].pte.frame.size, vaddr, vaddr + length - 1);
    return dirs;
}

void hl_map_range_page(uint64_t vaddr, uint64_t length, uint64_t paddr, unsigned policy, uint64_t b,
                       uint64_t *base, uint64_t *size)
{
    static const uint64_t sizes[3] = { HW_L1_ENTRY_SIZE, HW_L2_ENTRY_SIZE, HW_L3_ENTRY_SIZE };
    for (unsigned l = 0; l < 3; l++) {
        uint64_t sz = sizes[l], s = b & ~(sz - 1);
        if (policy != HL_POLICY_LARGEST_FIT && sz != policy_size(policy))
            continue;
        if (s >= vaddr && s - vaddr + sz <= length && hw_aligned(s - vaddr + paddr, sz)) {
            *base = s;
            *size = sz;
            return;
        }
    }
    *base = b & ~(HW_L3_ENTRY_SIZE - 1); /* not reached for b inside an enabled range */
    *size = HW_L3_ENTRY_SIZE;
}

bool hl_map_range_has_page(const struct hl_args *a, const struct hw_mapping *m)
{
    uint64_t base, size;
    if (m->base < a->vaddr || m->base - a->vaddr >= a->length)
        return false;
    hl_map_range_page(a->vaddr, a->length, a->paddr, a->policy, m->base, &base, &size);
    return base == m->base && size == m->pte.frame.size && m->pte.frame.base == m->base - a->vaddr + a->paddr &&
           hl_flags_equal(m->pte.flags, a->flags);
}

bool hl_split_append(const struct hw_mapping *m, uint64_t first, uint64_t last, struct hw_mapping *out, unsigned *n,
                     unsigned cap, hl_piece_fn keep, void *ctx)
{
    if (m->pte.frame.size > HW_L3_ENTRY_SIZE && hl_straddles(m, first, last)) {
        uint64_t sub = m->pte.frame.size / 512;
        for (unsigned j = 0; j < 512; j++) {
            struct hw_mapping part = *m;
            part.base = m->base + j * sub;
            part.pte.frame.base = m->pte.frame.base + j * sub;
            part.pte.frame.size = sub;
            if (!hl_split_append(&part, first, last, out, n, cap, keep, ctx))
                return false;
        }
        return true;
    }
    struct hw_mapping piece = *m;
    if (keep && !keep(ctx, &piece))
        return true;
    if (*n >= cap)
        return false;
    out[(*n)++] = piece;
    return true;
}

/* ---- the range extension: steps (hlspec.h) ---------------------------------------------- */

static enum hl_args_kind range_kind(enum hl_step_kind k)
{
    switch (k) {
    case HL_STEP_MAP_RANGE_START:
    case HL_STEP_MAP_RANGE_END: return HL_ARGS_MAP_RANGE;
    case HL_STEP_UNMAP_RANGE_START:
    case HL_STEP_UNMAP_RANGE_END: return HL_ARGS_UNMAP_RANGE;
    default: return HL_ARGS_PROTECT_RANGE;
    }
}

/* What a range operation does to a mapping inside its range (after the split). */
struct piece_ctx {
    uint64_t first, last;
    enum hl_args_kind kind;
    struct hw_flags flags;
    bool end; /* ProtectRangeEnd: set the flags; ProtectRangeStart: join them */
};

static bool range_piece(void *ctx, struct hw_mapping *p)
{
    struct piece_ctx *x = ctx;
    if (p->base < x->first || p->base + p->pte.frame.size - 1 > x->last)
        return true;
    if (x->kind == HL_ARGS_UNMAP_RANGE)
        return false;
    p->pte.flags = x->end ? x->flags : hl_flags_join(p->pte.flags, x->flags);
    return true;
}

/* want = every mapping of s1 through split + range_piece. */
static bool range_apply(const struct hl_vars *s1, struct piece_ctx *x, struct hw_mapping *want, unsigned *n)
{
    *n = 0;
    for (unsigned i = 0; i < s1->nmappings; i++)
        if (!hl_split_append(&s1->mappings[i], x->first, x->last, want, n, HL_MAX_MAPPINGS, range_piece, x))
            return false;
    return true;
}

bool hl_step_Range_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len)
{
    enum hl_args_kind kind = range_kind(st->kind);
    const char *name = hl_step_name(st->kind);
    if (!hl_step_Range_enabled(c, kind, st->vaddr, st->length, st->paddr, st->policy))
        return model_refuse(why, len, "%s: not step_%s_enabled", name, name);
    if (!hl_valid_thread(c, st->thread_id, why, len) || !hl_thread_empty(s1, st->thread_id, why, len))
        return false;
    struct hl_args a;
    memset(&a, 0, sizeof a);
    a.kind = kind;
    a.vaddr = st->vaddr;
    a.length = st->length;
    if (kind == HL_ARGS_MAP_RANGE)
        a.paddr = st->paddr, a.policy = st->policy;
    else
        a.split = st->split;
    if (kind != HL_ARGS_UNMAP_RANGE)
        a.flags = st->flags;
    hl_range_region(s1->mappings, s1->nmappings, kind, a.vaddr, a.length, a.split, &a.lo, &a.hi, &a.ok);
    if (st->nomem) { /* x86pt's extension: the split will be refused a directory */
        if (kind == HL_ARGS_MAP_RANGE || !a.ok || !a.split ||
            !hl_range_split_dirs(s1->mappings, s1->nmappings, a.vaddr, a.length))
            return model_refuse(why, len, "%s: nomem, but the operation splits nothing", name);
        a.nomem = true;
    }
    bool sound = !hl_overlaps_inflight_vmem(c, s1, a.lo, a.hi - a.lo);
    if (kind == HL_ARGS_MAP_RANGE && a.length) {
        struct hw_pte fr = { { a.paddr, a.length }, a.flags };
        sound = sound && !hl_overlaps_existing_pmem(s1->mappings, s1->nmappings, &fr) &&
                !hl_overlaps_inflight_pmem(c, s1, &fr);
    }
    if (!sound)
        return !s2->sound || model_refuse(why, len, "%s: unsound start but the state stays sound", name);
    if (!hl_thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (kind == HL_ARGS_MAP_RANGE || !a.ok || !a.length || a.nomem)
        return hl_mappings_same(s1, s2, why, len) && hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
    struct piece_ctx x = { a.vaddr, a.vaddr + a.length - 1, kind, a.flags, false };
    unsigned n;
    if (!range_apply(s1, &x, hl_want, &n))
        return model_refuse(why, len, "%s: too many mappings for the checker", name);
    if (!hl_mappings_equal(hl_want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "%s: mappings are not s1's, split at the ends, with the range %s", name,
                    kind == HL_ARGS_UNMAP_RANGE ? "removed" : "joined with the new permissions");
    if (kind == HL_ARGS_UNMAP_RANGE)
        return hl_mem_agree(c, s2, s1, hl_no_except, why, len);
    return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
}

bool hl_step_Range_store(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len)
{
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!hl_valid_thread(c, st->thread_id, why, len) || !hl_thread_states_equal_except(c, s1, s2, 0, NULL, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (!hl_args_is_range(a->kind))
        return model_refuse(why, len, "RangeStore: thread %u has no range operation in flight", st->thread_id);
    if (hl_mappings_equal(s1->mappings, s1->nmappings, s2->mappings, s2->nmappings))
        return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
    if (a->kind != HL_ARGS_MAP_RANGE || !a->ok)
        return model_refuse(why, len, "RangeStore: mappings changed (this operation's effect was at its Start)");
    unsigned n1 = s1->nmappings, i = 0;
    if (s2->nmappings != n1 + 1)
        return model_refuse(why, len, "RangeStore: mappings are not s1's plus one page of the range");
    while (i < n1 && s1->mappings[i].base == s2->mappings[i].base &&
           hw_pte_equal(&s1->mappings[i].pte, &s2->mappings[i].pte))
        i++;
    if (!hl_mappings_equal(s1->mappings + i, n1 - i, s2->mappings + i + 1, n1 - i))
        return model_refuse(why, len, "RangeStore: mappings are not s1's plus one page of the range");
    if (!hl_map_range_has_page(a, &s2->mappings[i]))
        return model_refuse(why, len, "RangeStore: the new mapping at 0x%" PRIx64 " is not a page of the range",
                    s2->mappings[i].base);
    return hl_mem_agree(c, s1, s2, hl_no_except, why, len);
}

bool hl_step_Range_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                       const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty;
    const char *name = hl_step_name(st->kind);
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    if (!hl_valid_thread(c, st->thread_id, why, len) ||
        !hl_thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != range_kind(st->kind))
        return model_refuse(why, len, "%s: thread %u is not in this range operation", name, st->thread_id);
    if (st->nomem && a->kind == HL_ARGS_MAP_RANGE)
        return hl_step_End_nomem(c, s1, s2, st, why, len);
    if (st->nomem != a->nomem)
        return model_refuse(why, len, "%s: %s", name,
                    a->nomem ? "the split was refused a directory, yet the result is not X86PT_E_NOMEM"
                             : "X86PT_E_NOMEM, but no directory of a split was refused");
    if (a->nomem)
        return hl_step_End_nomem(c, s1, s2, st, why, len);
    if (st->result_ok != a->ok)
        return model_refuse(why, len, "%s: result is %s but the contract says %s", name, st->result_ok ? "Ok" : "Err",
                    a->ok ? "Ok" : "Err");
    if (a->kind == HL_ARGS_MAP_RANGE && a->ok) {
        for (uint64_t b = a->vaddr; b < a->vaddr + a->length;) {
            uint64_t base, size;
            hl_map_range_page(a->vaddr, a->length, a->paddr, a->policy, b, &base, &size);
            const struct hw_pte *m = hl_mappings_get(s1->mappings, s1->nmappings, base);
            struct hw_pte want = { { base - a->vaddr + a->paddr, size }, a->flags };
            if (!m || !hw_pte_equal(m, &want))
                return model_refuse(why, len, "%s: page 0x%" PRIx64 "+0x%" PRIx64 " of the range is not mapped as it should",
                            name, base, size);
            b = base + size;
        }
    }
    if (a->kind == HL_ARGS_PROTECT_RANGE && a->ok && a->length) {
        struct piece_ctx x = { a->vaddr, a->vaddr + a->length - 1, a->kind, a->flags, true };
        unsigned n;
        if (!range_apply(s1, &x, hl_want, &n))
            return model_refuse(why, len, "%s: too many mappings for the checker", name);
        if (!hl_mappings_equal(hl_want, n, s2->mappings, s2->nmappings))
            return model_refuse(why, len, "%s: the mappings inside the range should have the new permissions", name);
        return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
    }
    return hl_mappings_same(s1, s2, why, len) && hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
}

