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
 *
 * x86pt's extension: RANGES (x86pt_map_range / unmap_range / protect_range), a spec of its
 * own, written as the seed writes map and unmap. A range is [vaddr, vaddr + length).
 *
 *   AbstractArguments::MapRange     { vaddr, length, paddr, flags, policy, region, ok }
 *   AbstractArguments::UnmapRange   { vaddr, length, split, region, ok, nomem }
 *   AbstractArguments::ProtectRange { vaddr, length, flags, split, region, ok, nomem }
 *
 *   pages(MapRange): the pages the range is made of, P. The page containing address b is the
 *       first layer l (1 GiB, 2 MiB, 4 KiB; only the forced one under ONLY_*) whose slot
 *       s = b rounded down to size(l) lies inside the range with s + (paddr - vaddr) aligned
 *       to size(l) (hl_map_range_page); its frame is s + (paddr - vaddr), its flags flags.
 *   straddles(m, range): m intersects the range and is not inside it.
 *   split(m, range): m replaced by its 512 parts of the next size (same frames, same flags),
 *       each part that straddles split again (4 KiB parts never straddle). Every address keeps
 *       its translation: split is invisible per address.
 *   region: MapRange: the range; Unmap/ProtectRange: the range, widened (split mode) to every
 *       mapping that straddles it (hl_range_region). This is what counts for every in-flight
 *       overlap check (candidate_mapping_overlaps_inflight_vmem).
 *   ok, the result the library's contract gives, fixed at Start (soundness keeps every
 *       mapping that intersects the region away from every other operation, so it cannot
 *       change before the operation takes the lock):
 *       MapRange:   !candidate_mapping_overlaps_existing_vmem(mappings, vaddr, length)
 *                   (else Err(overlap));
 *       Unmap/ProtectRange: split || no mapping straddles the range (else Err(straddle)).
 *   split_dirs(mappings, range): the directories split(every straddler) makes, one per page
 *       it splits (a 1 GiB page, and each of its 2 MiB parts split again; hl_range_split_dirs).
 *   nomem (Unmap/ProtectRange, x86pt's extension): the allocator will refuse the split one of
 *       its split_dirs directories, so the operation returns X86PT_E_NOMEM and changes
 *       nothing. The environment's choice, fixed at Start like ok (a prophecy: the library
 *       takes every directory before its first store, and nothing else can change the region
 *       meanwhile); only with ok and split_dirs > 0.
 *
 *   step_MapRange_enabled: vaddr, paddr, length 4 KiB-aligned; under ONLY_* all three aligned
 *       to that size; [vaddr, vaddr + length) inside [0, MAX_BASE) on one side of 2^47 (the
 *       canonical hole); paddr + length <= 2^MAX_PHYADDR_WIDTH.
 *   step_MapRange_sound: !overlaps_inflight_vmem(region) && the frames [paddr, paddr+length)
 *       overlap no existing mapping's frame and no in-flight map's (overlaps_existing/
 *       inflight_pmem).
 *   step_Unmap/ProtectRange_enabled: vaddr, length 4 KiB-aligned, inside [0, MAX_BASE) on one
 *       side of 2^47.   _sound: !overlaps_inflight_vmem(region).
 *
 *   step_XRange_start(c, s1, s2, thread_id, args): enabled, valid thread, thread Empty;
 *       if sound: thread_state[thread_id] = args (with region and ok), and
 *         MapRange:     mappings unchanged;
 *         Unmap/ProtectRange with nomem: mappings unchanged;
 *         UnmapRange:   if ok: mappings = split(every straddler) minus every mapping inside
 *                       the range (like the seed's UnmapStart, the whole effect is at Start);
 *         ProtectRange: if ok: mappings = split(every straddler), each mapping inside the
 *                       range with flags_join(its flags, flags) (either may be in use);
 *         mem agrees on the remaining domain; sound unchanged.
 *       else unsound_state.
 *   step_RangeStore(c, s1, s2, thread_id): one store of the thread's range operation, which is
 *       MapRange with ok: mappings == s1.mappings, or s1.mappings.insert(base, pte) for one
 *       page of P not yet in mappings; otherwise (Unmap/ProtectRange) mappings unchanged.
 *       mem agrees on s1's domain; thread states and sound unchanged.
 *   step_XRange_end(c, s1, s2, thread_id, result): thread_state[thread_id] is the range
 *       operation, becomes Empty; result == ok, or Err(X86PT_E_NOMEM) exactly when nomem
 *       (MapRange: whenever the allocator refused a frame, hlspec_nomem.c); and
 *         MapRange, ok:  every page of P is in mappings (all of it, none missing);
 *         ProtectRange, ok: mappings = s1.mappings with each mapping inside the range set to
 *                       flags;
 *         otherwise mappings unchanged. mem unchanged; sound unchanged.
 *   Err changes nothing: no RangeStore, mappings as at Start (with nomem: as before Start).
 *
 * and one more change to step_ReadWrite, per address: after a split a TLB may still hold the
 * huge page, whose base is no longer a mapping. The ReadWrite's pte may then be any pte that
 * agrees with mappings at the accessed address (same physical address, at most the
 * permissions of the mapping that contains it). The seed's rule is the case pte ==
 * mappings[base].
 *
 * Deviations, documented: ok is decided at Start (the seed decides MapEnd's result at End;
 * here the pages appear one by one, so End would see its own pages); in-flight Unmap/
 * ProtectRange arguments carry no frames, so overlaps_inflight_pmem does not see the frames
 * an unmap_range removes (the OS model is stricter: it counts them, os_range.c).
 */
#ifndef X86PT_MODEL_HLSPEC_H
#define X86PT_MODEL_HLSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hardware.h"

#define HL_MAX_THREADS 16u
#define HL_MAX_MAPPINGS 4096u
#define HL_MAX_OVERLAY 2u

/* hlspec.rs: AbstractConstants (phys_mem_size in bytes here: the spec's word count times 8) */
struct hl_consts {
    unsigned thread_no;
    uint64_t phys_mem_size;
    unsigned maxphyaddr; /* MAX_PHYADDR_WIDTH: MAX_PHYADDR = 2^maxphyaddr - 1 */
};

/* hlspec.rs: AbstractArguments (+ PROTECT and the RANGES, x86pt's extensions) */
enum hl_args_kind {
    HL_ARGS_EMPTY,
    HL_ARGS_MAP,
    HL_ARGS_UNMAP,
    HL_ARGS_PROTECT,
    HL_ARGS_MAP_RANGE,
    HL_ARGS_UNMAP_RANGE,
    HL_ARGS_PROTECT_RANGE,
};

/* x86pt.h enum x86pt_page_policy, by the same numbers */
enum hl_policy { HL_POLICY_LARGEST_FIT, HL_POLICY_ONLY_4K, HL_POLICY_ONLY_2M, HL_POLICY_ONLY_1G };

struct hl_args {
    enum hl_args_kind kind;
    uint64_t vaddr;
    bool has_pte;          /* Map: always true; Unmap/Protect: pte is Some */
    struct hw_pte pte;
    struct hw_flags flags; /* Protect: the new permissions; MapRange: the permissions */
    /* ranges */
    uint64_t length, paddr;
    unsigned policy;
    bool split;
    uint64_t lo, hi;       /* region */
    bool ok;
    bool nomem;            /* Unmap/ProtectRange: the split will be refused a directory */
};

static inline bool hl_args_is_range(enum hl_args_kind k) { return k >= HL_ARGS_MAP_RANGE; }

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
    HL_STEP_MAP_RANGE_START,
    HL_STEP_MAP_RANGE_END,
    HL_STEP_UNMAP_RANGE_START,
    HL_STEP_UNMAP_RANGE_END,
    HL_STEP_PROTECT_RANGE_START,
    HL_STEP_PROTECT_RANGE_END,
    HL_STEP_RANGE_STORE,
};

enum hl_rw_result { HL_RW_UNDEFINED, HL_RW_OK, HL_RW_VALUE };

struct hl_step {
    enum hl_step_kind kind;
    unsigned thread_id;
    uint64_t vaddr;
    struct hw_pte pte;        /* MapStart */
    struct hw_flags flags;    /* ProtectStart, *RangeStart */
    uint64_t length, paddr;   /* *RangeStart */
    unsigned policy;          /* MapRangeStart */
    bool split;               /* Unmap/ProtectRangeStart */
    bool result_ok;           /* MapEnd, UnmapEnd, ProtectEnd: Ok(()) / Err(()) */
    bool nomem;               /* *End: x86pt's extension, the Err is X86PT_E_NOMEM (the
                                 allocator refused a frame): nothing changed; Unmap/
                                 ProtectRangeStart: the split will be refused one (hlspec.h) */
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

/* ---- the range extension (see the top) ------------------------------------------------ */
bool hl_step_Range_enabled(const struct hl_consts *c, enum hl_args_kind kind, uint64_t vaddr,
                           uint64_t length, uint64_t paddr, unsigned policy);
/* region [*lo, *hi) and the contract's result *ok of a range operation over mappings m. */
void hl_range_region(const struct hw_mapping *m, size_t n, enum hl_args_kind kind, uint64_t vaddr,
                     uint64_t length, bool split, uint64_t *lo, uint64_t *hi, bool *ok);
/* The page of pages(MapRange) that contains address b (inside the range): base and size. */
void hl_map_range_page(uint64_t vaddr, uint64_t length, uint64_t paddr, unsigned policy, uint64_t b,
                       uint64_t *base, uint64_t *size);
/* Is m exactly a page of pages(a) (a MapRange)? */
bool hl_map_range_has_page(const struct hl_args *a, const struct hw_mapping *m);
/* split_dirs: the directories split(every mapping of m straddling the range) makes. */
unsigned hl_range_split_dirs(const struct hw_mapping *m, size_t n, uint64_t vaddr, uint64_t length);
/* m straddles [first, last] (inclusive): it intersects it without lying inside. */
bool hl_straddles(const struct hw_mapping *m, uint64_t first, uint64_t last);
/* Append split(m, [first, last]) (or m itself if it does not straddle) to out[*n]; for each
 * piece call keep(ctx, piece) first: it may edit the piece and returns false to drop it.
 * False if out is full. */
typedef bool (*hl_piece_fn)(void *ctx, struct hw_mapping *piece);
bool hl_split_append(const struct hw_mapping *m, uint64_t first, uint64_t last, struct hw_mapping *out,
                     unsigned *n, unsigned cap, hl_piece_fn keep, void *ctx);
/* The mapping whose virtual range contains vaddr (NULL if none). */
const struct hw_mapping *hl_mapping_containing(const struct hl_vars *s, uint64_t vaddr);
/* dst = src, copying only the mappings in use. */
void hl_vars_copy(struct hl_vars *dst, const struct hl_vars *src);

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
