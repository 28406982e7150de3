/*
 * The refinement of impl_u/os_refinement.rs, checked step by step: OSVariables::interp (the
 * abstract state of an OS state), OSStep::interp (the high-level step an OS step stands for),
 * the spec_pt write discipline, and the invariants (os.rs inv and tlb_inv, os_invariant.rs,
 * hlspec.rs inv). A struct os_checker carries the abstraction of the current state from one
 * step to the next, so that each state is interpreted once.
 */
#ifndef X86PT_MODEL_OS_REFINEMENT_H
#define X86PT_MODEL_OS_REFINEMENT_H

#include "hlspec.h"
#include "os.h"

/* Which check a violation failed. */
enum os_check {
    OS_CHECK_NONE,
    OS_CHECK_WRITE_DISCIPLINE,  /* spec_pt: a store changed the MMU's view as it may not, or a
                                   frame was allocated/freed against spec_t/mem.rs */
    OS_CHECK_AD_LOST,           /* a store lost an Accessed/Dirty bit the MMU had set (os_lib.c) */
    OS_CHECK_REFINEMENT,        /* hlspec next_step(interp(s1), interp(s2), OSStep::interp) */
    OS_CHECK_OS_INVARIANT,      /* os.rs inv / tlb_inv (+ x86pt's additions) */
    OS_CHECK_HL_INVARIANT,      /* hlspec.rs inv */
    OS_CHECK_WELL_FORMED,       /* the page table is not a tree (interp failed) */
    OS_CHECK_FLUSH_REPORT,      /* the library's flush report does not cover its change (os_lib.c) */
    OS_CHECK_RESOLVE,           /* x86pt_resolve's answer is not the table's mapping (os.c) */
    OS_CHECK_DESTROY,           /* x86pt_destroy did not give back every directory zeroed (os_lib.c) */
    OS_CHECK_BADCALL,           /* a call the contract refuses: wrong error, or a change (os_badcall.c) */
    OS_CHECK_ADOPT,             /* x86pt_adopt took a malformed image or mishandled a valid one (os_adopt.c) */
    OS_CHECK_ITERATE,           /* x86pt_iterate did not visit exactly the table's mappings (os_iterate.c) */
};
/* The check a step's own violation (os_next_step: OS_STEP_VIOLATION) failed. */
enum os_check os_check_of_step(const struct os_step *st);
const char *os_check_name(enum os_check k);

/* os.rs: OSVariables::interp. pt: interp_pt_mem(s). mem is read from phys (s's own memory,
 * or the memory after a step) with overlay (NULL: none). */
void os_interp(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
               const struct hw_pmem *phys, const struct os_delta *overlay, struct hl_vars *out);
/* os.rs: OSStep::interp (s1: the state before; its abstraction a1 for effective_mappings). */
void os_step_interp(const struct os_consts *c, const struct os_vars *s1, const struct hl_vars *a1,
                    const struct os_step *st, struct hl_step *out);

/* x86pt's invariant between operations: no leaked frame, no empty linked directory. */
bool os_inv_tidy(const struct os_consts *c, const struct os_vars *s, char *why, size_t len);

/* os.rs inv + tlb_inv (os_invariant.c). */
bool os_inv(const struct os_consts *c, const struct os_vars *s, const struct hw_interp *pt,
            char *why, size_t len);

struct os_checker {
    const struct os_consts *c;
    struct hl_consts hc;
    struct hw_interp pt;     /* interp_pt_mem of the current state */
    struct hl_vars a;        /* its abstraction */
    struct hw_interp pt2;    /* scratch for the next state */
    uint64_t pt_hash;
};

/* Start checking at s (checks os init's consequences: inv, hl init/inv). */
bool os_checker_init(struct os_checker *k, const struct os_consts *c, const struct os_vars *s,
                     enum os_check *failed, char *why, size_t len);
/* Start at any state s without checking it (exhaustive search: a state already checked). */
bool os_checker_at(struct os_checker *k, const struct os_consts *c, const struct os_vars *s,
                   char *why, size_t len);
void os_checker_fini(struct os_checker *k);
/* Check the step s1 -> s2 (st and delta as os_next_step filled them); on success the checker
 * moves to s2. On failure *failed says which check and why says how. */
bool os_checker_step(struct os_checker *k, const struct os_vars *s1, const struct os_vars *s2,
                     const struct os_step *st, const struct os_delta *delta, enum os_check *failed,
                     char *why, size_t len);
/* Copy the checker's cached abstraction (for exhaustive search: states keep their own). */
bool os_checker_copy(struct os_checker *dst, const struct os_checker *src);

#endif /* X86PT_MODEL_OS_REFINEMENT_H */
