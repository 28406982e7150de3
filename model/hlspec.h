/*
 * The high-level specification (spec_t/hlspec.rs): what a user process may rely on. Word-indexed
 * virtual memory, the mappings, per-thread in-flight arguments and `sound`; steps ReadWrite,
 * MapStart/MapEnd, UnmapStart/UnmapEnd, Stutter, each checked as the spec's relation
 * next_step(c, s1, s2, step).
 *
 * Representation of `mem` (Map<nat, nat> from word index to value). In a sound state its domain
 * is always mem_domain_from_mappings(phys_mem_size, mappings) (init: both empty; every step
 * keeps it), so x86pt stores only the values: word v of the domain lives at the physical word
 * its mapping translates it to, in a struct hw_pmem, optionally overlaid by a few (pa, value)
 * pairs. Two states whose mem share the same hw_pmem differ at most in their overlays; this
 * lets the checker compare a 1 GiB mapping's memory in O(overlay) instead of O(words). Where
 * the translations of two states differ the comparison falls back to word by word (bounded by
 * phys_mem_size).
 *
 * x86pt's extension (not in the seed): PROTECT. The seed has no protect; the library has
 * x86pt_protect. Written as the seed writes map and unmap:
 *
 *   AbstractArguments::Protect { vaddr, pte: Option<PageTableEntry>, flags }
 *
 *   step_Protect_enabled(vaddr)  == step_Unmap_enabled(vaddr)
 *   step_Protect_sound(inflight, vaddr, pte_size) ==
 *       !candidate_mapping_overlaps_inflight_vmem(inflight, vaddr, pte_size)
 *   step_Protect_start(c, s1, s2, thread_id, vaddr, flags):
 *       enabled, valid thread, thread Empty;
 *       if sound:  thread_state[thread_id] = Protect { vaddr, pte: mappings.get(vaddr), flags },
 *                  if pte is Some: mappings[vaddr] = pte with flags_join(pte.flags, flags)
 *                  (while the operation is in flight a core may use either the old or the new
 *                  permissions, so the mapping grants what either grants), mem unchanged,
 *                  sound unchanged
 *       else unsound_state
 *   step_Protect_end(c, s1, s2, thread_id, result):
 *       thread_state[thread_id] is Protect { vaddr, pte, flags }, becomes Empty;
 *       pte is Some ==> result is Ok, mappings[vaddr] = pte with flags;
 *       pte is None ==> result is Err, mappings unchanged;  mem unchanged, sound unchanged.
 *   candidate_mapping_overlaps_inflight_vmem: a Protect counts like an Unmap (size of pte or 0).
 *
 * and one change to step_ReadWrite, for spurious faults (SDM 4.10.4.3: after permissions grow,
 * the OS need not invalidate; a stale, less permissive TLB entry makes an access fault): the
 * ReadWrite's pte need not be mappings[base] itself but may be one with the same frame and at
 * most its permissions (flags_le). The result follows the ReadWrite's pte, as in the seed, so a
 * less permissive pte can only turn an Ok/Value into Undefined. With no protect in the
 * workload every TLB entry equals its mapping and this is the seed's rule.
 */
#ifndef X86PT_MODEL_HLSPEC_H
#define X86PT_MODEL_HLSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hardware.h"

#define HL_MAX_THREADS 16u
#define HL_MAX_MAPPINGS 64u
#define HL_MAX_OVERLAY 2u

/* hlspec.rs: AbstractConstants (phys_mem_size in bytes here: the spec's word count times 8) */
struct hl_consts {
    unsigned thread_no;
    uint64_t phys_mem_size;
    unsigned maxphyaddr; /* MAX_PHYADDR_WIDTH: MAX_PHYADDR = 2^maxphyaddr - 1 */
};

/* hlspec.rs: AbstractArguments (+ PROTECT, x86pt's extension) */
enum hl_args_kind { HL_ARGS_EMPTY, HL_ARGS_MAP, HL_ARGS_UNMAP, HL_ARGS_PROTECT };

struct hl_args {
    enum hl_args_kind kind;
    uint64_t vaddr;
    bool has_pte;          /* Map: always true; Unmap/Protect: pte is Some */
    struct hw_pte pte;
    struct hw_flags flags; /* Protect: the new permissions */
};

/* The values of mem (see the comment at the top). */
struct hl_mem {
    const struct hw_pmem *phys;
    unsigned n_overlay;
    uint64_t overlay_pa[HL_MAX_OVERLAY];
    uint64_t overlay_val[HL_MAX_OVERLAY];
};

/* hlspec.rs: AbstractVariables. mappings sorted by base, bases distinct (it is a Map). */
struct hl_vars {
    struct hl_mem mem;
    unsigned nmappings;
    struct hw_mapping mappings[HL_MAX_MAPPINGS];
    struct hl_args thread_state[HL_MAX_THREADS];
    bool sound;
};

/* hlspec.rs: AbstractStep (+ ProtectStart / ProtectEnd). RWOp carried flat. */
enum hl_step_kind {
    HL_STEP_READ_WRITE,
    HL_STEP_MAP_START,
    HL_STEP_MAP_END,
    HL_STEP_UNMAP_START,
    HL_STEP_UNMAP_END,
    HL_STEP_PROTECT_START,
    HL_STEP_PROTECT_END,
    HL_STEP_STUTTER,
};

enum hl_rw_result { HL_RW_UNDEFINED, HL_RW_OK, HL_RW_VALUE };

struct hl_step {
    enum hl_step_kind kind;
    unsigned thread_id;
    uint64_t vaddr;
    struct hw_pte pte;        /* MapStart */
    struct hw_flags flags;    /* ProtectStart */
    bool result_ok;           /* MapEnd, UnmapEnd, ProtectEnd: Ok(()) / Err(()) */
    /* ReadWrite: RWOp and pte: Option<(nat, PageTableEntry)> */
    bool is_store;
    uint64_t new_value;       /* Store */
    bool is_exec;             /* Load */
    enum hl_rw_result rw_result; /* Store: OK/UNDEFINED; Load: VALUE/UNDEFINED */
    uint64_t value;           /* Load VALUE */
    bool has_pte;
    struct hw_mapping rw_pte;
};

const char *hl_step_name(enum hl_step_kind k);
/* One line: "MapStart{thread 1, vaddr 0x..., frame 0x...+4K rw-u-x}". */
void hl_step_format(const struct hl_step *st, char *buf, size_t len);

/* ---- helpers over Map<nat, PageTableEntry> (sorted arrays) -------------------------------- */
const struct hw_pte *hl_mappings_get(const struct hw_mapping *m, unsigned n, uint64_t base);
/* insert / remove keep the array sorted; insert replaces an existing base. False if full. */
bool hl_mappings_insert(struct hw_mapping *m, unsigned *n, unsigned cap, uint64_t base,
                        const struct hw_pte *pte);
bool hl_mappings_remove(struct hw_mapping *m, unsigned *n, uint64_t base);
bool hl_mappings_equal(const struct hw_mapping *a, unsigned na, const struct hw_mapping *b,
                       unsigned nb);

/* definitions_t.rs: candidate_mapping_overlaps_existing_vmem / _pmem, candidate_mapping_in_bounds */
bool hl_overlaps_existing_vmem(const struct hw_mapping *m, unsigned n, uint64_t base,
                               uint64_t size);
bool hl_overlaps_existing_pmem(const struct hw_mapping *m, unsigned n, const struct hw_pte *pte);
bool hl_candidate_mapping_in_bounds(uint64_t base, const struct hw_pte *pte);

/* Permission order for the protect extension: a <= b when a grants nothing b does not. */
bool hl_flags_le(struct hw_flags a, struct hw_flags b);
struct hw_flags hl_flags_join(struct hw_flags a, struct hw_flags b);
bool hl_flags_equal(struct hw_flags a, struct hw_flags b);

/* hlspec.rs: candidate_mapping_overlaps_inflight_vmem / _pmem over the in-flight arguments of
 * all threads (thread_state.values()). */
bool hl_overlaps_inflight_vmem(const struct hl_consts *c, const struct hl_vars *s, uint64_t base,
                               uint64_t size);
bool hl_overlaps_inflight_pmem(const struct hl_consts *c, const struct hl_vars *s,
                               const struct hw_pte *pte);
/* hlspec.rs: step_Map_enabled, step_Map_sound, step_Unmap_enabled, step_Unmap_sound */
bool hl_step_Map_enabled(const struct hl_consts *c, uint64_t vaddr, const struct hw_pte *pte);
bool hl_step_Map_sound(const struct hl_consts *c, const struct hl_vars *s, uint64_t vaddr,
                       const struct hw_pte *pte);
bool hl_step_Unmap_enabled(uint64_t vaddr);

/* mem: the value of word vaddr (8-byte aligned); false if vaddr is not in mem's domain. */
bool hl_mem_read(const struct hl_consts *c, const struct hl_vars *s, uint64_t vaddr,
                 uint64_t *value);

/* hlspec.rs: init, wf, inv. why (may be NULL) receives a reason on false. */
bool hl_init(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len);
bool hl_wf(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len);
bool hl_inv(const struct hl_consts *c, const struct hl_vars *s, char *why, size_t len);

/* hlspec.rs: next_step(c, s1, s2, step). why receives the first conjunct that fails. */
bool hl_next_step(const struct hl_consts *c, const struct hl_vars *s1, const struct hl_vars *s2,
                  const struct hl_step *step, char *why, size_t len);

#endif /* X86PT_MODEL_HLSPEC_H */
