/* x86pt's extension of the high-level spec: a map, map_range, or split of an unmap_range or
 * protect_range the allocator refuses a frame.
 *
 * The seed cannot say this: its OS starts a map only with 3 free frames (os.rs
 * step_Map_enabled), enough for any map, so its map never runs dry. x86pt's allocator is the
 * caller's and may refuse at any call; the contract (x86pt.h) then returns X86PT_E_NOMEM with
 * nothing changed. So MapEnd/MapRangeEnd with the NOMEM Err: whatever the overlap check would
 * have said, the result is Err and the mappings and memory are those of s1. An unmap or
 * protect range takes effect at its Start, so its refusal is fixed there (hlspec.h: nomem,
 * hlspec_range.c): its Start changes nothing and its End is this one. */
#include "hlspec_internal.h"
#include "why.h"

bool hl_step_End_nomem(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                       const struct hl_step *st, char *why, size_t len)
{
    if (st->result_ok)
        return model_refuse(why, len, "%s: X86PT_E_NOMEM but result is Ok", hl_step_name(st->kind));
    return hl_mappings_same(s1, s2, why, len) && hl_mem_equal(c, s1, s2, hl_no_except, 0, why, len);
}
