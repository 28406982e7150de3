/* x86pt's extension of spec_t/hlspec.rs: PROTECT (hlspec.h writes it down as the seed writes
 * map and unmap). The permission order, and the steps ProtectStart / ProtectEnd. The other
 * places protect touches, each marked there: an in-flight Protect counts like an Unmap in
 * hlspec.c's overlap checks, and a ReadWrite may go through a less permissive copy of its
 * mapping (hlspec.c rw_pte_allowed). */
#include "hlspec_internal.h"
#include "why.h"

#include <inttypes.h>
#include <string.h>

/* Permission order: a <= b when a grants nothing b does not, and (x86pt extension, issue 12)
 * a has b's attributes, or b is a join that allows either of two (the attributes are not
 * ordered: a translation has the memory type, key and software bits of the one entry it came
 * from). join: what either grants. */
bool hl_flags_le(struct hw_flags a, struct hw_flags b)
{
    return (!a.is_writable || b.is_writable) && (a.is_supervisor || !b.is_supervisor) &&
           (a.disable_execute || !b.disable_execute) && (b.attrs_either || hw_attrs_equal(a, b));
}

struct hw_flags hl_flags_join(struct hw_flags a, struct hw_flags b)
{
    struct hw_flags f = a;
    f.is_writable = a.is_writable || b.is_writable;
    f.is_supervisor = a.is_supervisor && b.is_supervisor;
    f.disable_execute = a.disable_execute && b.disable_execute;
    if (!hw_attrs_equal(a, b)) { /* either's attributes: one value for all such joins, so that
                                     the join is commutative and associative */
        struct hw_flags either = { .attrs_either = true };
        f.pat_index = either.pat_index, f.global = either.global, f.pkey = either.pkey, f.software = either.software;
        f.attrs_either = true;
    }
    return f;
}

bool hl_flags_equal(struct hw_flags a, struct hw_flags b)
{
    return a.is_writable == b.is_writable && a.is_supervisor == b.is_supervisor &&
           a.disable_execute == b.disable_execute && hw_attrs_equal(a, b);
}

/* Extension: ProtectStart / ProtectEnd (hlspec.h). */
bool hl_step_Protect_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len)
{
    const struct hw_pte *pte = hl_mappings_get(s1->mappings, s1->nmappings, st->vaddr);
    if (!hl_step_Unmap_enabled(st->vaddr))
        return model_refuse(why, len, "ProtectStart: not step_Protect_enabled");
    if (!hl_valid_thread(c, st->thread_id, why, len) || !hl_thread_empty(s1, st->thread_id, why, len))
        return false;
    if (hl_overlaps_inflight_vmem(c, s1, st->vaddr, pte ? pte->frame.size : 0))
        return !s2->sound || model_refuse(why, len, "ProtectStart: unsound start but the state stays sound");
    struct hl_args a = { .kind = HL_ARGS_PROTECT, .vaddr = st->vaddr, .has_pte = pte != NULL, .flags = st->flags };
    if (pte)
        a.pte = *pte;
    if (!hl_thread_states_equal_except(c, s1, s2, st->thread_id, &a, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    struct hw_mapping *want = hl_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (pte) {
        struct hw_pte joined = *pte;
        joined.flags = hl_flags_join(pte->flags, st->flags);
        hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, st->vaddr, &joined);
    }
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "ProtectStart: mapping at 0x%" PRIx64 " should have the joined permissions",
                    st->vaddr);
    return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
}

bool hl_step_Protect_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len)
{
    static const struct hl_args empty = { .kind = HL_ARGS_EMPTY };
    if (!hl_valid_thread(c, st->thread_id, why, len) ||
        !hl_thread_states_equal_except(c, s1, s2, st->thread_id, &empty, why, len))
        return false;
    if (s2->sound != s1->sound)
        return model_refuse(why, len, "sound changed");
    const struct hl_args *a = &s1->thread_state[st->thread_id];
    if (a->kind != HL_ARGS_PROTECT)
        return model_refuse(why, len, "ProtectEnd: thread %u is not protecting", st->thread_id);
    if (a->has_pte != st->result_ok)
        return model_refuse(why, len, "ProtectEnd: result is %s but pte is %s", st->result_ok ? "Ok" : "Err",
                    a->has_pte ? "Some" : "None");
    struct hw_mapping *want = hl_want;
    unsigned n = s1->nmappings;
    memcpy(want, s1->mappings, n * sizeof *want);
    if (a->has_pte) {
        struct hw_pte np = a->pte;
        np.flags = a->flags;
        hl_mappings_insert(want, &n, HL_MAX_MAPPINGS, a->vaddr, &np);
    }
    if (!hl_mappings_equal(want, n, s2->mappings, s2->nmappings))
        return model_refuse(why, len, "ProtectEnd: mapping at 0x%" PRIx64 " should have the new permissions",
                    a->vaddr);
    return hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
}

