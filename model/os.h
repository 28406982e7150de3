/*
 * The OS state machine (spec_t/os.rs): user-level threads pinned to cores, a state per core,
 * the kernel lock (held by whichever core is past its Waiting state), the TLB shootdown
 * vector, and every step. interp (os.rs OSVariables::interp) lives in os_refinement.c, the
 * invariants (os.rs inv, tlb_inv, os_invariant.rs) in os_invariant.c.
 *
 * The page-table component. Where os.rs says spec_pt (a relation saying what each write of the
 * page-table code may do), x86pt runs an implementation through struct os_pt_impl, one action
 * at a time on the current state (os_lib.c): every load, store and compare-exchange of a
 * reachable entry is a step of its own, so that every other core's hardware steps (TLB fills,
 * reads and writes, A/D updates) can come between any two; the state holds the responses the
 * implementation received (struct os_run), so it stays a plain value. The checker holds each
 * store to spec_pt (see os_refinement.h). The real implementation is libx86pt
 * (check/ptlib.c); tests plug in deliberately wrong ones.
 *
 * Which access goes with which step:
 *   map:     MapOpStart (takes the lock; no access, spec_pt::step_Map_Start), ViewStutter (each
 *            access but the last store), MapEnd (the last store: the one that adds the mapping,
 *            and the return; on error only the return)
 *   unmap:   UnmapOpStart (takes the lock, fixes the result from the table), ViewStutter (each
 *            access; the first store removes the mapping, later ones reclaim), UnmapOpEnd (the
 *            return, with the flush report), Unmap InitiateShootdown / Ack / End as the report
 *            asks (os_flush_needed); freed directories return to the pool at the End
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
 *   ProtectInitiateShootdown { core }: ProtectOpDone and the flush report asks for anything:
 *       shootdown vector = { the reported range, every core }
 *   AckShootdownIPI { core }: the core invalidates the reported range, acknowledges
 *   ProtectEnd { core }: ProtectShootdownWaiting with no open request, or ProtectOpDone when
 *       the report asks for nothing -> Idle
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
 *       may need free (else disabled: the OS waits); records the snapshot of the mappings
 *       meeting the region; the implementation starts.
 *   RangeStore { core }: the implementation's next access (os_lib.c). Each store is held to
 *       the range write discipline (spec_pt_range.c).
 *   MapEnd { core } (MapRange): the return -> Idle. Its result must equal will_ok (in a sound
 *       state); Err must make no store.
 *   Unmap/ProtectOpEnd { core }: the return -> *OpDone (the snapshot stays).
 *   Unmap/ProtectInitiateShootdown { core }: as the flush report asks: shootdown vector =
 *       { the reported flush range, or everything if flush_all, every core }.
 *   AckShootdownIPI { core }: the core invalidates every TLB entry that meets the range.
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
    unsigned fail_alloc;    /* Unmap/ProtectRange: the allocator refuses the split's
                               fail_alloc-th directory (0: none); fixed at Start (hlspec.h:
                               nomem), counted by allocs */
    unsigned allocs;
    bool shrinks;           /* ProtectRange: some page inside loses permissions (from OpStart) */
};

/* What the library reported when it returned (struct x86pt_flush), and what the model saw it
 * change while it ran (os_lib.c): the OS shoots down exactly the reported range. */
struct os_flush {
    uint64_t lo, hi;        /* the reported range [lo, hi) (48-bit), empty if lo == hi */
    bool all;               /* flush_all */
    bool global;            /* a global page changed: what reloads CR3 flushes globals too */
    unsigned dirs_freed;    /* reported */
};

struct os_core_state {
    enum os_core_kind kind;
    unsigned ULT_id;
    uint64_t vaddr;
    struct hw_pte pte;      /* Map*: the requested mapping */
    struct hw_flags flags;  /* Protect*: the new permissions; MapRange: the permissions */
    unsigned ad_clear;      /* Protect*: a test-and-clear of these A/D bits (x86pt_ad_bit; the
                               A/D extension, os_lib.c), its flags the mapping's own; 0: protect */
    bool result_ok;         /* Unmap/Protect Op*: result is Ok(result) / Err(()), fixed by the
                               model at OpStart; MapExecuting: what MapEnd will return */
    struct hw_pte result;
    bool range;             /* a range operation (the same states, x86pt's extension) */
    struct os_range rg;
    /* the library's run (from OpStart on) */
    bool stored;            /* it made a store (to a reachable directory) */
    bool splits;            /* a store replaced a huge page by a directory of its parts */
    uint64_t chg_lo, chg_hi;/* hull of the translations its stores changed or removed */
    unsigned freed;         /* directories it freed */
    bool alloc_failed;      /* the allocator refused it a frame: it may return X86PT_E_NOMEM */
    struct os_flush flush;  /* its report, once it returned */
    unsigned removed_ad;    /* Unmap: the A/D bits of the page's entry when its store removed it */
};

/* x86pt's extension (issue 12): the Accessed/Dirty bits a call reports of a page's entry. */
#define OS_AD_ACCESSED 1u
#define OS_AD_DIRTY 2u
static inline unsigned os_entry_ad(uint64_t entry)
{
    return (entry & HW_BIT_A ? OS_AD_ACCESSED : 0u) | (entry & HW_BIT_D ? OS_AD_DIRTY : 0u);
}

static inline uint64_t os_ad_entry_bits(unsigned ad)
{
    return (ad & OS_AD_ACCESSED ? HW_BIT_A : 0u) | (ad & OS_AD_DIRTY ? HW_BIT_D : 0u);
}

bool os_core_holds_lock(const struct os_core_state *cs);
/* May the core's next step ask the allocator for frames? A map that has not stored yet: the
 * library takes every frame before its first store (x86pt.h: all or nothing). */
bool os_core_may_allocate(const struct os_core_state *cs);
bool os_core_is_unmap(enum os_core_kind k);
bool os_core_is_protect(enum os_core_kind k);
const char *os_core_kind_name(enum os_core_kind k);

/* ---- the page-table implementation, access by access (os_lib.c) ---------------------------
 *
 * The implementation runs as a sequence of actions, each a load, store or compare-exchange of
 * one page-table entry, the zeroing of a directory, a frame taken from or given back to the
 * pool, or its return. The OS model performs each on the current state (os_lib.c says which
 * become steps of their own), so every other core's hardware step may fall between any two.
 * The implementation is deterministic: its next action is a function of the request, its
 * private state at the operation's start and the responses so far (the value of each load and
 * compare-exchange, each frame allocated). That is what a state holds (struct os_run), so a
 * state stays a plain value; check/ptlib.c replays or resumes the real library to answer. */
enum os_lib_kind { OS_LIB_LOAD, OS_LIB_STORE, OS_LIB_CAS, OS_LIB_ZERO, OS_LIB_ALLOC, OS_LIB_FREE, OS_LIB_RETURN };

struct os_lib_action {
    enum os_lib_kind kind;
    uint64_t pa;        /* LOAD, STORE, CAS: the entry; ZERO, FREE: the frame */
    uint64_t value;     /* STORE: the value; CAS: the desired value */
    uint64_t expected;  /* CAS */
};

#define OS_LIB_ALLOC_FAILED UINT64_MAX  /* the response to an ALLOC when the pool is empty */

/* x86pt's contract: the argument errors a call may return (os_badcall.c), and the others. */
enum os_pt_error {
    OS_ERR_NONE, OS_ERR_NONCANONICAL, OS_ERR_MISALIGNED, OS_ERR_BADSIZE, OS_ERR_BADFLAGS, OS_ERR_PHYSRANGE,
    OS_ERR_OTHER, OS_ERR_MALFORMED /* adopt: not a well-formed page table */
};
const char *os_pt_error_name(enum os_pt_error e);

/* RETURN: what the operation returned. */
#define OS_LISTED_MAX 16 /* the mappings of an iteration the checker compares */
struct os_lib_result {
    bool ok;                     /* the operation succeeded (else: Err) */
    bool nomem;                  /* X86PT_E_NOMEM */
    enum os_pt_error error;      /* the status, as far as the contract's argument rules name it */
    bool has_reported;           /* UNMAP: the mapping the implementation says it removed;
                                    RESOLVE: the mapping it found, at reported_base */
    struct hw_pte reported;
    uint64_t reported_base;
    unsigned reported_ad;        /* RESOLVE, UNMAP: the Accessed/Dirty bits it reports of that
                                    mapping's entry (OS_AD_ACCESSED | OS_AD_DIRTY) */
    unsigned nlisted;            /* ITERATE: the mappings it visited, the first OS_LISTED_MAX of */
    struct hw_mapping listed[OS_LISTED_MAX]; /* them kept (base as a 48-bit address) */
    unsigned listed_ad[OS_LISTED_MAX];
    struct os_flush flush;       /* its flush report */
    uint64_t gathered[OS_PT_FRAMES_MAX / 64]; /* UNMAP: the directories it put in the kernel's
                                                 gather (x86pt_unmap_gather), by frame */
    uint64_t private_state;      /* its other private state afterwards (libx86pt: the walk hint) */
    uint16_t counts[OS_PT_FRAMES_MAX]; /* its per-frame private state afterwards */
};

/* The responses of an operation in flight, stored once and shared (reference counted) by
 * every state that holds them; each step that gets a response makes a new buffer. The prefix
 * hashes let the implementation tell a continuation of what it last ran from another branch
 * without comparing whole arrays. */
struct os_run_buf {
    _Atomic unsigned refs;  /* states of several search threads share it */
    unsigned nresp, cap;
    uint64_t *resp;
    uint64_t *phash;    /* phash[i]: hash of resp[0..i), i <= nresp */
};

/* Range operations: the mappings of interp_pt_mem that intersect the region in flight when the
 * operation took the lock (what a TLB may still hold until the operation ends), sorted by
 * base; shared like the responses. */
struct os_snapshot {
    _Atomic unsigned refs;
    unsigned n;
    uint64_t hash;
    struct hw_mapping *map;
};

/* The lock holder's operation in flight: its responses, how many actions it has done, and for
 * a range operation its snapshot. */
struct os_run {
    struct os_run_buf *buf;  /* NULL: no operation in flight */
    struct os_snapshot *snap;
    unsigned done;
};

/* os.rs: ShootdownVector (+ which kind of operation sent it: x86pt's protect extension; and
 * the flush range the library reported [lo, hi), or every entry) */
struct os_shootdown {
    uint64_t vaddr;
    uint32_t open_requests;  /* bit i: core index i (NUMA_id * core_no + core_id) */
    bool for_protect;
    bool all;
    bool dirs;               /* directories were freed: paging-structure caches go too */
    bool global;             /* x86pt: a global page changed: a full flush includes globals */
    uint64_t lo, hi;
};

/* ---- the page-table implementation (spec_pt) ---------------------------------------------- */

enum os_pt_op { OS_PT_MAP, OS_PT_UNMAP, OS_PT_PROTECT, OS_PT_INIT /* os_pt_impl.init only */, OS_PT_RESOLVE,
                 OS_PT_DESTROY, OS_PT_ADOPT /* of the table at cr3 */, OS_PT_ITERATE /* vaddr, length */ };

struct os_pt_request {
    enum os_pt_op op;
    /* raw (a refused call, os_badcall.c): vaddr is the 64-bit address as passed, pte.frame the
     * physical address and size as passed (ranges: paddr, length), bad_flag adds an unknown
     * flag bit */
    bool raw, bad_flag;
    uint64_t vaddr;
    struct hw_pte pte;      /* MAP */
    struct hw_flags flags;  /* PROTECT, range MAP */
    bool range;             /* x86pt_map_range / unmap_range / protect_range */
    uint64_t length, paddr; /* range */
    unsigned policy;        /* range MAP: enum hl_policy */
    bool split;             /* range UNMAP/PROTECT */
    unsigned ad_clear;      /* PROTECT: x86pt_test_and_clear_ad of these bits instead */
    bool gather;            /* UNMAP: through the kernel's gather (x86pt_unmap_gather); the kernel
                               passes one to every range unmap and to single unmaps at addresses
                               with bit 12 clear, so both ways of freeing are judged */
};

struct os_vars;
struct os_consts;

struct os_pt_impl {
    void *ctx;
    /* The action number `done` of the operation rq, started with private state counts0 /
     * private0, given the responses so far (run->resp[0..nresp), one per LOAD, CAS and ALLOC
     * among the actions before it). On RETURN, *res is filled. False if the implementation
     * itself failed a check made while running it (its message in why). */
    bool (*next)(void *ctx, const struct os_consts *c, const struct os_pt_request *rq, const uint16_t *counts0,
                 uint64_t private0, const struct os_run_buf *run, unsigned done, struct os_lib_action *act,
                 struct os_lib_result *res, char *why, size_t len);
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
    bool free_early;      /* a planted OS bug: directories the library gathers go back to the
                             pool at once, before the shootdown (os_lib.c) */
    bool no_map_fence;    /* planted OS bugs (os_storebuf.c): a map returns with its last store
                             still in the store buffer; */
    bool no_shootdown_fence; /* the shootdown IPI goes out before the store buffer drained */
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
    uint64_t pt_pending[OS_PT_FRAMES_MAX / 64]; /* freed by the operation in flight; back in the
                                                    pool once its shootdown completes (os_lib.c) */
    uint64_t pt_fresh[OS_PT_FRAMES_MAX / 64];   /* taken by the operation in flight */
    uint64_t pt_private;  /* the implementation's other private state (libx86pt: walk hint) */
    struct os_run run;
};

bool os_init(const struct os_consts *c, struct os_vars *s);
bool os_vars_copy(struct os_vars *dst, const struct os_vars *src);
void os_vars_fini(struct os_vars *s);
uint64_t os_vars_hash(const struct os_vars *s);
/* Symmetry (the exhaustive mode's core-swap reduction): the hash of s with its cores and threads
 * renumbered, core i being core core_perm[i] of s and thread u becoming thread ult_map[u]
 * (NULL: none renumbered), computed without building it; os_vars_permute builds it. */
uint64_t os_vars_hash_perm(const struct os_vars *s, const unsigned *core_perm, const unsigned *ult_map);
bool os_vars_permute(const struct os_vars *s, const unsigned *core_perm, const unsigned *ult_map,
                     struct os_vars *out);
bool os_vars_equal(const struct os_vars *a, const struct os_vars *b);

/* os_storebuf.c: the core with buffered page-table stores (-1: none), the stores a core has
 * buffered. */
int os_sbuf_writer(const struct os_consts *c, const struct os_vars *s);
unsigned os_sbuf_len(const struct os_consts *c, const struct os_vars *s, unsigned core);

/* os.rs: kernel_lock: the core index holding it, or -1. */
int os_kernel_lock(const struct os_consts *c, const struct os_vars *s);
/* No operation holds the lock, runs, or has stores in a buffer: the table is still, as the
 * probes (destroy, adopt, refused calls) need it. */
bool os_table_idle(const struct os_consts *c, const struct os_vars *s);

/* Pool helpers for implementations: take the lowest free frame of pool (a copy). */
bool os_pt_alloc(const struct os_consts *c, uint64_t *pool, uint64_t *frame);
unsigned os_pt_free_count(const struct os_consts *c, const struct os_vars *s);

/* ---- steps ------------------------------------------------------------------------------- */

/* The checks a step itself makes (os_refinement.h names them all). */
enum os_check_id {
    OS_CHECKID_WRITE_DISCIPLINE,  /* spec_pt, spec_t/mem.rs alloc/dealloc, the library's result */
    OS_CHECKID_AD_LOST,           /* an Accessed/Dirty bit the hardware set was lost */
    OS_CHECKID_FLUSH_REPORT,      /* the flush report does not cover what changed */
    OS_CHECKID_RESOLVE,           /* resolve answered something the table does not map */
    OS_CHECKID_DESTROY,           /* destroy did not hand back every directory, zeroed, once */
    OS_CHECKID_ADOPT,             /* adopt took a malformed image, wrote to it, or changed a valid one's view */
    OS_CHECKID_BADCALL,           /* a refused call did not return its error, or changed something */
    OS_CHECKID_ITERATE,           /* an iteration did not visit exactly the table's mappings of its range */
};

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
    OS_STEP_RANGE_STORE,         /* the next access of the range operation of a core */
    OS_STEP_FRAME_REUSE,         /* x86pt: the rest of the kernel writes a free pool frame */
    OS_STEP_RESOLVE,             /* x86pt: a thread resolves vaddr while no operation holds the lock */
    OS_STEP_DESTROY_PROBE,       /* x86pt: destroy run on a copy of the table, judged, then dropped */
    OS_STEP_BAD_CALL,            /* x86pt: a call with one argument the contract refuses */
    OS_STEP_ADOPT_PROBE,         /* x86pt: adopt of the table (or of a hostile variant of it) on a copy */
    OS_STEP_ITERATE,             /* x86pt: a thread iterates over [vaddr, vaddr + length) while no
                                    operation holds the lock */
    OS_STEP_KIND_COUNT
};

/* The images an AdoptProbe hands x86pt_adopt (os_adopt.c): the table as it is; with an empty
 * directory and not-present garbage added (adopt must free the one and clear the other); and
 * five hostile ones it must refuse (X86PT_E_MALFORMED) without a write. */
enum os_adopt_image {
    OS_ADOPT_AS_IS, OS_ADOPT_UNTIDY, OS_ADOPT_PS_IN_PML4E, OS_ADOPT_BEYOND_POOL, OS_ADOPT_RECURSIVE,
    OS_ADOPT_READ_ONLY_DIR, OS_ADOPT_RESERVED_BIT, OS_ADOPT_IMAGE_COUNT
};
const char *os_adopt_image_name(enum os_adopt_image i);

struct os_step {
    enum os_step_kind kind;
    unsigned ULT_id;        /* HW (ReadWrite), *Start */
    unsigned core;          /* core index: the *Op*, *End, Ack, ViewStutter steps; HW fill/evict */
    uint64_t vaddr;         /* *Start */
    struct hw_pte pte;      /* MapStart */
    struct hw_flags flags;  /* ProtectStart, *RangeStart */
    unsigned ad_clear;      /* ProtectStart: x86pt_test_and_clear_ad of these bits (1 A, 2 D)
                               instead of x86pt_protect; flags are then the mapping's own */
    uint64_t length;        /* *RangeStart */
    uint64_t paddr;         /* MapRangeStart */
    unsigned policy;        /* MapRangeStart: enum hl_policy */
    bool split;             /* Unmap/ProtectRangeStart */
    unsigned fail_alloc;    /* Unmap/ProtectRangeStart: the split's; a step that runs the
                               library: the allocator fails its fail_alloc-th
                               allocation of this step (1-based; 0: none). Only a map's or a
                               map_range's (x86pt's extension, os_lib.c) */
    uint64_t reuse_pa, reuse_value; /* FrameReuse: a free frame, filled with the value */
    struct os_pt_request bad;       /* BadCall: the call, raw; ULT_id: the calling thread */
    unsigned adopt_image;           /* AdoptProbe: enum os_adopt_image */
    enum os_pt_error bad_expected, bad_got; /* BadCall outputs */
    struct hw_step hw;      /* HW */
    /* outputs, filled by os_next_step */
    struct hw_rw_result rw;          /* HW ReadWrite */
    bool result_ok;                  /* MapEnd, UnmapOpStart, ProtectOpStart, *End */
    bool range;                      /* *End: the operation was a range operation */
    struct hw_mapping resolved;      /* Resolve, result_ok: the mapping the library found */
    unsigned nlisted;                /* Iterate: the mappings the library visited */
    bool accessed;                   /* the library made a visible access (access, write_*) */
    enum os_lib_kind access;         /* LOAD, STORE, CAS or ZERO */
    bool wrote;                      /* it changed page-table memory */
    bool buffered;                   /* its store went into the core's store buffer */
    uint64_t write_pa, write_value, write_old;
    unsigned nsilent;                /* accesses to memory no walk can reach, made before it */
    unsigned nfreed;
    unsigned nallocs;                /* allocations the library asked for in this step (also
                                        when the step turned out disabled) */
    bool alloc_failed;               /* one of them failed (fail_alloc) */
    bool nomem;                      /* MapEnd: the operation returned X86PT_E_NOMEM, an Err */
    enum os_check_id check;          /* on OS_STEP_VIOLATION: which check failed */
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
/* The library's flush report (once it returned) asks for a shootdown. */
bool os_flush_needed(const struct os_core_state *cs);
/* interp_pt_mem(global_pt).get(vaddr), by one walk. */
bool os_pt_get(const struct os_consts *c, const struct os_vars *s, uint64_t vaddr,
               struct hw_pte *pte);

/* interp_pt_mem of s (computed by walking). False (msg in why) if the table is malformed. */
bool os_interp_pt_mem(const struct os_consts *c, const struct os_vars *s, struct hw_interp *out,
                      char *why, size_t len);

#endif /* X86PT_MODEL_OS_H */
