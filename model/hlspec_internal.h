/* Helpers the high-level spec's files share (not part of the model's interface): hlspec.c (the
 * seed's definitions and steps), hlspec_state.c (mappings and mem), hlspec_protect.c and
 * hlspec_range.c (x86pt's extensions). */
#ifndef X86PT_MODEL_HLSPEC_INTERNAL_H
#define X86PT_MODEL_HLSPEC_INTERNAL_H

#include "hlspec.h"

/* hlspec.c: scratch for the mappings a step should produce (HL_MAX_MAPPINGS is large) */
extern _Thread_local struct hw_mapping hl_want[HL_MAX_MAPPINGS];

/* ---- mem (hlspec_state.c) ---------------------------------------------------------------- */

/* A word the comparison of mem leaves out (a ReadWrite's store), or none (hl_no_except). */
struct hl_except {
    bool has;
    uint64_t vaddr;
};
extern const struct hl_except hl_no_except;

/* forall idx in dom(a.mem), idx != except: b.mem[idx] == a.mem[idx] (b.mem[idx] must exist). */
bool hl_mem_agree(const struct hl_consts *c, const struct hl_vars *a, const struct hl_vars *b, struct hl_except ex,
                  char *why, size_t len);
/* s2.mem === s1.mem (when !ex.has) or s2.mem === s1.mem.insert(word(ex.vaddr), value). */
bool hl_mem_equal(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2, struct hl_except ex,
                  uint64_t value, char *why, size_t len);

/* ---- the conjuncts every step checks (hlspec.c) ------------------------------------------ */

/* s2's thread states are s1's, but thread tid's is *arg (arg NULL: all s1's). */
bool hl_thread_states_equal_except(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                                   unsigned tid, const struct hl_args *arg, char *why, size_t len);
bool hl_mappings_same(const struct hl_vars *s1, const struct hl_vars *s2, char *why, size_t len);
bool hl_valid_thread(const struct hl_consts *c, unsigned tid, char *why, size_t len);
bool hl_thread_empty(const struct hl_vars *s1, unsigned tid, char *why, size_t len);

/* ---- the extensions' steps (hlspec_protect.c, hlspec_range.c) ---------------------------- */

bool hl_step_Protect_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                           const struct hl_step *st, char *why, size_t len);
bool hl_step_Protect_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len);
bool hl_step_Range_start(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len);
bool hl_step_Range_store(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                         const struct hl_step *st, char *why, size_t len);
bool hl_step_Range_end(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                       const struct hl_step *st, char *why, size_t len);
/* hlspec_nomem.c: MapEnd / MapRangeEnd returning X86PT_E_NOMEM */
bool hl_step_End_nomem(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                       const struct hl_step *st, char *why, size_t len);

#endif
