/* Helpers the refinement checker's files share (not part of the model's interface):
 * os_refinement.c / os_refinement_range.c (interp), spec_pt.c / spec_pt_range.c (the write
 * discipline), os_checker.c (the driver). */
#ifndef X86PT_MODEL_OS_REFINEMENT_INTERNAL_H
#define X86PT_MODEL_OS_REFINEMENT_INTERNAL_H

#include "os_refinement.h"

/* ---- OSVariables::interp (os_refinement.c, os_refinement_range.c) ------------------------- */

/* os_refinement.c: inflight_unmap_vaddr contains base (given pt contains it) */
bool os_inflight_unmap(const struct os_consts *c, const struct os_vars *s, uint64_t base);
/* os_refinement.c, protect extension: an in-flight protect at base; *other receives the
 * permissions that hold besides the table's. */
bool os_inflight_protect(const struct os_consts *c, const struct os_vars *s, uint64_t base, struct hw_flags *other);
/* os_refinement_range.c: some range operation in flight has its effect in the abstract state;
 * effective_mappings of pt then (into out->mappings). */
bool os_interp_any_range(const struct os_consts *c, const struct os_vars *s);
bool os_range_page_landed(const struct os_consts *c, const struct os_vars *s, const struct hw_mapping *m);
void os_interp_range_mappings(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
                              struct hl_vars *out);

/* ---- spec_pt (spec_pt.c, spec_pt_range.c) ------------------------------------------------- */

/* spec_pt.c: the step s1 -> s2 keeps spec_pt's write discipline (cur, nxt: the views before
 * and after; pt_mem_same: page-table memory did not change). */
bool os_check_spec_pt(struct os_checker *k, const struct os_vars *s1, const struct os_step *st,
                      const struct hw_interp *cur, const struct hw_interp *nxt, bool pt_mem_same, char *why,
                      size_t len);
/* spec_pt_range.c: one store of the range operation of cs keeps the range write discipline. */
bool os_spec_pt_range_store_ok(const struct os_core_state *cs, const struct os_step *st, const struct hw_interp *cur, const struct hw_interp *nxt,
                               char *why, size_t len);

#endif
