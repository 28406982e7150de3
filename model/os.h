/*
 * The OS state machine (spec_t/os.rs): user-level threads pinned to cores, a state per core,
 * the kernel lock (held by whichever core is past its Waiting state), the TLB shootdown
 * vector, and every step. interp (os.rs OSVariables::interp) lives in os_refinement.c, the
 * invariants (os.rs inv, tlb_inv, os_invariant.rs) in os_invariant.c.
 *
 * The page-table component. Where os.rs says spec_pt (a relation saying what each write of the
 * page-table code may do), x86pt runs an implementation through struct os_pt_impl: at the
 * OpStart step it runs the whole operation on a copy of the page-table memory and records
 * the stores (and directory frees) it makes, in order (struct os_plan); later OS steps apply
 * them one store per step, so that every other core's hardware steps (TLB fills, reads and
 * writes, A/D updates) can come between any two stores, and a state stays a plain value.
 * The checker holds each applied store to spec_pt (see os_refinement.h). The real
 * implementation is libx86pt (check/ptlib.c); tests plug in deliberately wrong ones.
 *
 * Which store goes with which step (os.rs):
 *   map:     MapOpStart (no store, spec_pt::step_Map_Start), ViewStutter (each store but the
 *            last), MapEnd (the last store: the one that adds the mapping; none on error)
 *   unmap:   UnmapOpStart (the first store: the one that removes the mapping; none on error),
 *            ViewStutter (each later store: reclaiming directories), UnmapOpEnd (no store)
 *   protect: the same shape as unmap (x86pt's extension, below).
 *
 * x86pt's extension, PROTECT (see hlspec.h for the high-level side). Core states
 *   ProtectWaiting { ULT_id, vaddr, flags }                      (no lock)
 *   ProtectOpExecuting / ProtectOpDone / ProtectShootdownWaiting
 *       { ULT_id, vaddr, flags, result: Result<PageTableEntry, ()> }   (hold the lock)
 * steps
 *   ProtectStart { ULT_id, vaddr, flags }: Idle -> ProtectWaiting; enabled like UnmapStart;
 *       sound &&= !candidate_mapping_overlaps_inflight_vmem(pt, core_states, vaddr, pte_size)
 *   ProtectOpStart { core }: lock free; the store that changes the permissions
 *       (spec_pt: interp' == interp.insert(vaddr, pte with flags), or Err and no change)
 *   ViewStutter, ProtectOpEnd { core }: as for unmap
 *   ProtectInitiateShootdown { core }: ProtectOpDone, Ok(old), old.flags not <= flags (the
 *       permissions shrink): shootdown vector = { vaddr, every core, protect }
 *   AckShootdownIPI { core }: for a protect shootdown, enabled when the core's TLB holds no
 *       entry at vaddr that grants more than the page table now does
 *   ProtectEnd { core }: ProtectShootdownWaiting with no open request, or ProtectOpDone when
 *       the result is Err or the permissions did not shrink -> Idle
 * In-flight core states of a protect count like an unmap's for every overlap check (size of
 * the mapping at vaddr, or 0). interp: the mapping at vaddr carries the join of the old and
 * new permissions from ProtectStart to ProtectEnd; thread state Protect { vaddr, pte, flags }.
 *
 * x86pt's extension, RANGES (see hlspec.h for the high-level side). A range operation uses
 * the states of its single counterpart with range set in the core state (struct os_range):
 *   MapRangeStart / UnmapRangeStart / ProtectRangeStart { ULT_id, vaddr, length, ... }:
 *       Idle -> *Waiting; enabled as step_*Range_enabled; the region and the contract's
 *       result (will_ok) fixed now by hl_range_region over interp_pt_mem;
 *       sound &&= !overlaps_inflight_vmem(region) (MapRange: && its frames overlap no
 *       existing or in-flight frame; an in-flight UnmapRange counts the frames of its region)
 *   Map/Unmap/ProtectOpStart { core }: lock free and at least the directories the operation
 *       may need free (else disabled: the OS waits); runs the implementation, records its
 *       stores and the snapshot of the mappings meeting the region; no store yet. Result
 *       must equal will_ok (in a sound state); Err must make no store; stores need a flush
 *       report.
 *   RangeStore { core }: the next recorded store (and the frees after it; a run of stores into
 *       a directory this operation took and no walk reaches goes in one step). Each is held
 *       to the range write discipline (os_refinement.c range_store_ok).
 *   MapEnd { core } (MapRange): every store made -> Idle.
 *   Unmap/ProtectOpEnd { core }: every store made -> *OpDone (the snapshot stays).
 *   Unmap/ProtectInitiateShootdown { core }: when mappings went, permissions shrank or a huge
 *       page was split (os_range_needs_shootdown): shootdown vector = { the reported flush
 *       range, or everything if flush_all, every core }.
 *   AckShootdownIPI { core }: for a range shootdown, enabled when no entry of the core's TLB
 *       that meets the flush range (every entry, for flush_all) disagrees with the table.
 *   Unmap/ProtectEnd { core }: ShootdownWaiting with no open request, or OpDone when no
 *       shootdown is needed -> Idle.
 * interp: each mapping straddling an in-flight split range is split as the library will
 * split it (so the split store is a stutter); pieces inside an in-flight Ok UnmapRange are
 * not effective; pieces inside an in-flight Ok ProtectRange carry the join of the old (the
 * snapshot's) and new permissions. A TLB entry may agree with the table per address (a huge
 * page the table now has split) or, while the operation is in flight, with its snapshot.
 *
 * Model assumptions beyond os.rs (documented where they are used): a ReadWrite goes through
 * the TLB of the thread's own core; the A/D step of the hardware model is a HW step that may
 * run at any time; the page-table frame pool is sized so that a map never lacks 3 frames.
 */
#ifndef X86PT_MODEL_OS_H
#define X86PT_MODEL_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hardware.h"
#include "hlspec.h"

#define OS_MAX_CORES 16u
#define OS_PT_FRAMES_MAX 128u

/* os.rs: CoreState (+ the Protect states) */
enum os_core_kind {
    OS_IDLE,
    OS_MAP_WAITING,
    OS_MAP_EXECUTING,
    OS_UNMAP_WAITING,
    OS_UNMAP_OP_EXECUTING,
    OS_UNMAP_OP_DONE,
    OS_UNMAP_SHOOTDOWN_WAITING,
    OS_PROTECT_WAITING,
    OS_PROTECT_OP_EXECUTING,
    OS_PROTECT_OP_DONE,
    OS_PROTECT_SHOOTDOWN_WAITING,
};

/* x86pt's range extension: the arguments and bookkeeping of a range operation in flight. */
struct os_range {
    uint64_t length;
    uint64_t paddr;         /* MapRange */
    unsigned policy;        /* MapRange: enum hl_policy */
    bool split;             /* Unmap/ProtectRange: X86PT_STRADDLE_SPLIT */
    uint64_t lo, hi;        /* the region in flight [lo, hi): the range, widened (split mode) to
                               the pages straddling its ends; fixed at Start */
    bool will_ok;           /* the contract's result, fixed at Start (hl_range_region) */
    /* from OpStart on */
    bool stored;            /* the implementation made stores */
    bool shrinks;           /* ProtectRange: some page inside loses permissions */
    bool splits;            /* the operation splits a huge page (a TLB may hold the huge page:
                               invalidate, as for a page-size change, SDM 4.10.4.2) */
    uint64_t flush_lo, flush_hi;  /* the reported flush range [flush_lo, flush_hi) */
    bool flush_all;
};

struct os_core_state {
    enum os_core_kind kind;
    unsigned ULT_id;
    uint64_t vaddr;
    struct hw_pte pte;      /* Map*: the requested mapping */
    struct hw_flags flags;  /* Protect*: the new permissions; MapRange: the permissions */
    bool result_ok;         /* Unmap/Protect Op*: result is Ok(result) / Err(());
                               MapExecuting: what MapEnd will return */
    struct hw_pte result;
    bool range;             /* a range operation (the same states, x86pt's extension) */
    struct os_range rg;
};

bool os_core_holds_lock(const struct os_core_state *cs);
bool os_core_is_unmap(enum os_core_kind k);
bool os_core_is_protect(enum os_core_kind k);
const char *os_core_kind_name(enum os_core_kind k);

/* One recorded event of a page-table operation. hidden: a store into a directory this
 * operation allocated and has not linked yet (the recorder's claim; the model checks that the
 * frame is unreachable before it applies such stores together, see os.c apply_next). */
enum os_pt_event_kind { OS_EV_WRITE, OS_EV_FREE };
struct os_pt_event {
    enum os_pt_event_kind kind;
    bool hidden;
    uint64_t pa;     /* WRITE: entry address; FREE: the frame */
    uint64_t value;  /* WRITE */
};

/* A recorded operation, stored once and shared (reference counted) by every state that
 * holds it; states keep only an index into it. old: for range operations, the mappings of
 * interp_pt_mem that intersect the region in flight when the operation took the lock (what a
 * TLB may still hold until the operation ends), sorted by base. */
struct os_plan_buf {
    unsigned refs;
    unsigned n;
    uint64_t hash;
    struct os_pt_event *ev;
    unsigned nold;
    struct hw_mapping *old;
};

/* The rest of the in-flight operation (only the lock holder has one). */
struct os_plan {
    struct os_plan_buf *buf;  /* NULL: none */
    unsigned n, pos;
};

/* os.rs: ShootdownVector (+ which kind of operation sent it: x86pt's protect extension; and
 * for range operations the reported flush range [lo, hi), or every entry) */
struct os_shootdown {
    uint64_t vaddr;
    uint32_t open_requests;  /* bit i: core index i (NUMA_id * core_no + core_id) */
    bool for_protect;
    bool for_range;
    bool all;
    uint64_t lo, hi;
};

/* ---- the page-table implementation (spec_pt) ---------------------------------------------- */

enum os_pt_op { OS_PT_MAP, OS_PT_UNMAP, OS_PT_PROTECT };

struct os_pt_request {
    enum os_pt_op op;
    uint64_t vaddr;
    struct hw_pte pte;      /* MAP */
    struct hw_flags flags;  /* PROTECT, range MAP */
    bool range;             /* x86pt_map_range / unmap_range / protect_range */
    uint64_t length, paddr; /* range */
    unsigned policy;        /* range MAP: enum hl_policy */
    bool split;             /* range UNMAP/PROTECT */
};

struct os_pt_outcome {
    bool ok;                     /* the operation succeeded (else: Err, nothing written) */
    bool nomem;                  /* range: the allocator ran dry (X86PT_E_NOMEM) */
    bool has_reported;           /* UNMAP: the mapping the implementation says it removed */
    struct hw_pte reported;
    bool flush_requested;        /* UNMAP/PROTECT: the implementation asked for invalidation */
    uint64_t flush_lo, flush_hi; /* range: the reported flush range (48-bit), and flush_all */
    bool flush_all;
    unsigned nalloc;
    uint64_t alloc[OS_PT_FRAMES_MAX]; /* frames taken from the pool, in order */
    uint64_t private_state;      /* the implementation's other private state afterwards */
    unsigned nev, cap;           /* the recorded events (grown by os_pt_outcome_push) */
    struct os_pt_event *ev;
};

/* Record an event; false if out of host memory. */
bool os_pt_outcome_push(struct os_pt_outcome *o, enum os_pt_event_kind k, uint64_t pa, uint64_t value,
                        bool hidden);
void os_pt_outcome_fini(struct os_pt_outcome *o);

struct os_vars;
struct os_consts;

/* Run one operation against the page-table memory of s (read only). counts: the
 * implementation's private per-frame state (in/out, OS_PT_FRAMES_MAX entries). alloc: the
 * implementation must take frames with os_pt_alloc (from a copy of s's pool). Returns false
 * if the implementation itself failed a check made while running it (its message in why). */
struct os_pt_impl {
    void *ctx;
    bool (*run)(void *ctx, const struct os_consts *c, const struct os_vars *s,
                const struct os_pt_request *rq, uint16_t *counts, struct os_pt_outcome *out,
                char *why, size_t len);
    /* Build the initial page table: write the (zeroed) root into pt memory; returns its frame. */
    bool (*init)(void *ctx, const struct os_consts *c, struct hw_pmem *pt, uint16_t *counts,
                 uint64_t *root);
};

/* ---- constants and state ----------------------------------------------------------------- */

/* os.rs: OSConstants */
struct os_consts {
    struct hw_consts hw;
    unsigned ULT_no;
    struct hw_core ULT2core[HL_MAX_THREADS];
    unsigned pt_frames;  /* frames of page-table memory (pool + root), <= OS_PT_FRAMES_MAX */
    unsigned pt_reserved; /* frames [0, pt_reserved) are never handed out (0: physical address 0
                             is a frame like any other, as spec_t/mem.rs allows) */
    const struct os_pt_impl *impl;
};

static inline unsigned os_ncores(const struct os_consts *c) { return c->hw.NUMA_no * c->hw.core_no; }
static inline unsigned os_core_index(const struct os_consts *c, struct hw_core k)
{
    return k.NUMA_id * c->hw.core_no + k.core_id;
}
static inline struct hw_core os_core_of(const struct os_consts *c, unsigned i)
{
    struct hw_core k = { i / c->hw.core_no, i % c->hw.core_no };
    return k;
}

/* os.rs: OSVariables, plus the page-table frame pool (spec_t/mem.rs alloc_page/dealloc_page)
 * and the implementation's private state, which belong to the page table. */
struct os_vars {
    struct hw_vars hw;
    struct os_core_state core_states[OS_MAX_CORES];
    struct os_shootdown TLB_Shootdown;
    bool sound;
    uint64_t pt_free[OS_PT_FRAMES_MAX / 64];  /* bit set: frame free */
    uint16_t pt_counts[OS_PT_FRAMES_MAX];
    uint64_t pt_private;  /* the implementation's other private state (libx86pt: walk hint) */
    struct os_plan plan;
};

bool os_init(const struct os_consts *c, struct os_vars *s);
bool os_vars_copy(struct os_vars *dst, const struct os_vars *src);
void os_vars_fini(struct os_vars *s);
uint64_t os_vars_hash(const struct os_vars *s);
bool os_vars_equal(const struct os_vars *a, const struct os_vars *b);

/* os.rs: kernel_lock: the core index holding it, or -1. */
int os_kernel_lock(const struct os_consts *c, const struct os_vars *s);

/* Pool helpers for implementations: take the lowest free frame of pool (a copy). */
bool os_pt_alloc(const struct os_consts *c, uint64_t *pool, uint64_t *frame);
unsigned os_pt_free_count(const struct os_consts *c, const struct os_vars *s);

/* ---- steps ------------------------------------------------------------------------------- */

/* os.rs: OSStep (+ Protect*) */
enum os_step_kind {
    OS_STEP_HW,
    OS_STEP_MAP_START,
    OS_STEP_MAP_OP_START,
    OS_STEP_MAP_END,
    OS_STEP_UNMAP_START,
    OS_STEP_UNMAP_OP_START,
    OS_STEP_UNMAP_OP_END,
    OS_STEP_UNMAP_INITIATE_SHOOTDOWN,
    OS_STEP_ACK_SHOOTDOWN_IPI,
    OS_STEP_UNMAP_END,
    OS_STEP_VIEW_STUTTER,
    OS_STEP_PROTECT_START,
    OS_STEP_PROTECT_OP_START,
    OS_STEP_PROTECT_OP_END,
    OS_STEP_PROTECT_INITIATE_SHOOTDOWN,
    OS_STEP_PROTECT_END,
    OS_STEP_MAP_RANGE_START,     /* x86pt's range extension: thread steps with range arguments */
    OS_STEP_UNMAP_RANGE_START,
    OS_STEP_PROTECT_RANGE_START,
    OS_STEP_RANGE_STORE,         /* the next store of the range operation of a core */
    OS_STEP_KIND_COUNT
};

struct os_step {
    enum os_step_kind kind;
    unsigned ULT_id;        /* HW (ReadWrite), *Start */
    unsigned core;          /* core index: the *Op*, *End, Ack, ViewStutter steps; HW fill/evict */
    uint64_t vaddr;         /* *Start */
    struct hw_pte pte;      /* MapStart */
    struct hw_flags flags;  /* ProtectStart, *RangeStart */
    uint64_t length;        /* *RangeStart */
    uint64_t paddr;         /* MapRangeStart */
    unsigned policy;        /* MapRangeStart: enum hl_policy */
    bool split;             /* Unmap/ProtectRangeStart */
    struct hw_step hw;      /* HW */
    /* outputs, filled by os_next_step */
    struct hw_rw_result rw;          /* HW ReadWrite */
    bool result_ok;                  /* MapEnd, UnmapOpStart, ProtectOpStart, *End */
    bool range;                      /* *End: the operation was a range operation */
    bool wrote;                      /* a page-table store was applied */
    uint64_t write_pa, write_value, write_old;
    unsigned nhidden;                /* stores into an unreachable new directory before it */
    uint64_t hidden_frame;
    unsigned nfreed;
};

const char *os_step_name(enum os_step_kind k);
void os_step_format(const struct os_consts *c, const struct os_step *st, char *buf, size_t len);

/* What a step changed in user memory, for the refinement check: (pa, old value). */
struct os_delta {
    unsigned n;
    uint64_t pa[HL_MAX_OVERLAY], old[HL_MAX_OVERLAY];
};

enum os_step_status {
    OS_STEP_OK,
    OS_STEP_DISABLED,     /* the enabling condition does not hold (why says which) */
    OS_STEP_VIOLATION,    /* the page-table implementation broke a rule (why says which) */
    OS_STEP_NOMEM,
};

/* os.rs: next_step. On OS_STEP_OK *s2 is a new state (free with os_vars_fini). */
enum os_step_status os_next_step(const struct os_consts *c, const struct os_vars *s1,
                                 struct os_step *st, struct os_vars *s2, struct os_delta *delta,
                                 char *why, size_t len);

/* os.rs: candidate_mapping_overlaps_inflight_vmem / _pmem over all core states */
bool os_overlaps_inflight_vmem(const struct os_consts *c, const struct os_vars *s, uint64_t base,
                               uint64_t size);
bool os_overlaps_inflight_pmem(const struct os_consts *c, const struct os_vars *s,
                               const struct hw_pte *cand);
/* CoreState::vmem_pte_size (+ Protect) */
uint64_t os_core_vmem_size(const struct os_consts *c, const struct os_vars *s,
                           const struct os_core_state *cs);
/* The virtual region a core's operation occupies: {vaddr, vmem_pte_size}, or a range
 * operation's [lo, hi). */
struct hw_mem_region os_core_vregion(const struct os_consts *c, const struct os_vars *s,
                                     const struct os_core_state *cs);
/* Range extension, per address: every address of the TLB entry e is mapped by pt to the
 * same physical address with at least e's permissions (in_effect(ctx, m): the permissions
 * that count for pt mapping m; NULL: its own). os_agrees_with_pt: the same against s's
 * table. os_tlb_entry_in_shootdown: e meets a range shootdown's flush range. */
typedef struct hw_flags (*os_flags_fn)(const void *ctx, const struct hw_mapping *m);
bool os_interp_agrees(const struct hw_interp *pt, const struct hw_mapping *e, os_flags_fn in_effect,
                      const void *ctx);
bool os_agrees_with_pt(const struct os_consts *c, const struct os_vars *s, const struct hw_mapping *e);
bool os_tlb_entry_in_shootdown(const struct os_shootdown *sd, const struct hw_mapping *e);
/* Range operations: the core needs a TLB shootdown before it may end. */
bool os_range_needs_shootdown(const struct os_core_state *cs);
/* interp_pt_mem(global_pt).get(vaddr), by one walk. */
bool os_pt_get(const struct os_consts *c, const struct os_vars *s, uint64_t vaddr,
               struct hw_pte *pte);

/* interp_pt_mem of s (computed by walking). False (msg in why) if the table is malformed. */
bool os_interp_pt_mem(const struct os_consts *c, const struct os_vars *s, struct hw_interp *out,
                      char *why, size_t len);

#endif /* X86PT_MODEL_OS_H */
