/* Helpers the OS model's files share (not part of the model's interface). */
#ifndef X86PT_MODEL_OS_INTERNAL_H
#define X86PT_MODEL_OS_INTERNAL_H

#include "os.h"

static inline uint64_t os_mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h * UINT64_C(0xff51afd7ed558ccd);
}

static inline bool os_bit(const uint64_t *set, uint64_t f) { return (set[f / 64] >> (f % 64)) & 1; }
static inline void os_bit_set(uint64_t *set, uint64_t f) { set[f / 64] |= UINT64_C(1) << (f % 64); }
static inline void os_bit_clear(uint64_t *set, uint64_t f) { set[f / 64] &= ~(UINT64_C(1) << (f % 64)); }

/* os.c: the seed's steps and the helpers the extensions' steps share with them. */
static inline struct os_core_state *os_cs_of(struct os_vars *s, unsigned core) { return &s->core_states[core]; }
/* A valid thread whose core is Idle. */
bool os_ult_ok(const struct os_consts *c, const struct os_vars *s1, unsigned ult, char *why, size_t len);
/* definitions_t.rs: candidate_mapping_overlaps_existing_pmem(interp_pt_mem(global_pt), pte), of
 * the pages that intersect vregion (size 0: of every page) / of every page. */
bool os_overlaps_pt_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte,
                         struct hw_mem_region vregion);
bool os_overlaps_existing_pmem(const struct os_consts *c, const struct os_vars *s, const struct hw_pte *pte);

/* os_range.c: the range extension's steps (st->kind *RangeStart; a range operation's OpStart,
 * op: enum os_pt_op), and the frames an in-flight range operation (cs) occupies. */
enum os_step_status os_step_range_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len);
enum os_step_status os_step_range_op_start(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                           struct os_vars *s2, unsigned op, char *why, size_t len);
bool os_range_overlaps_inflight_pmem(const struct os_consts *c, const struct os_vars *s, const struct os_core_state *cs,
                                     const struct hw_pte *cand);

/* os_badcall.c: a call with one argument the contract refuses. */
enum os_step_status os_step_bad_call(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                     struct os_vars *s2, char *why, size_t len);

/* os_shootdown.c: core k's invalidation for the shootdown sd, on hw (replaced by the result);
 * the FrameReuse step. */
enum hw_step_status os_shootdown_invalidate(const struct os_consts *c, const struct os_shootdown *sd, struct hw_core k,
                                            struct hw_vars *hw);
enum os_step_status os_step_frame_reuse(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len);

/* Is the frame at frame_pa a directory reachable from cr3 (or the root)? */
bool os_frame_reachable(const struct hw_pt_view *v, uint64_t frame_pa);
bool os_frame_zero(const struct hw_pmem *m, uint64_t frame_pa);

/* os_storebuf.c: store buffers at the OS level. The writer's page-table memory (rl3.rs
 * writer_mem: memory with the one non-empty store buffer applied), valid until s changes;
 * get is false on OOM. */
struct os_wmem {
    const struct hw_pmem *mem;
    struct hw_pmem own;
    bool owned;
};
bool os_wmem_get(const struct os_consts *c, const struct os_vars *s, struct os_wmem *w);
void os_wmem_put(struct os_wmem *w);
struct hw_pt_view os_wmem_view(const struct os_consts *c, const struct os_vars *s, const struct os_wmem *w);
/* The kernel lock can be taken: no core's page-table stores are still buffered. */
bool os_sbuf_lock_free(const struct os_consts *c, const struct os_vars *s, char *why, size_t len);
/* A barrier of the protocol (named for the message): core's store buffer is empty. */
bool os_sbuf_drained(const struct os_consts *c, const struct os_vars *s, unsigned core, const char *barrier,
                     char *why, size_t len);

/* os_lib.c: the run of the lock holder's operation. */
void os_run_hold(struct os_run *r);
void os_run_drop(struct os_run *r);
/* A new, empty run (old: the snapshot of a range operation, taken over; may be NULL). */
bool os_run_start(struct os_run *r, struct hw_mapping *old, unsigned nold);
/* The run ends; a range operation keeps its snapshot until it ends (keep_snapshot). */
void os_run_finish(struct os_run *r, bool keep_snapshot);
uint64_t os_run_hash(const struct os_run *r);
/* The mapping of a range operation's snapshot containing vaddr (NULL if none or no snapshot). */
const struct hw_mapping *os_snapshot_find(const struct os_snapshot *b, uint64_t vaddr);
bool os_run_equal(const struct os_run *a, const struct os_run *b);

struct os_pt_request os_core_request(const struct os_core_state *cs);

/* How far os_lib_advance takes the operation of a core. */
enum os_lib_until {
    OS_LIB_UNTIL_ACCESS,     /* its next access to reachable memory (disabled: it returns next, or
                                for a map, the access is the store its return follows) */
    OS_LIB_UNTIL_RETURN,     /* its return (disabled: an access to reachable memory comes first) */
    OS_LIB_UNTIL_MAP_END,    /* its return, after at most one store (a map's last) */
};

/* Take core's operation forward in s2 (the caller's copy of the state): allocations, frees and
 * accesses to directories no walk can reach are made as they come (os_lib.c says why that is
 * sound), then the access or the return that `until` names. On a return, *res is filled and the
 * run is dropped. */
enum os_step_status os_lib_advance(const struct os_consts *c, struct os_vars *s2, struct os_step *st,
                                   unsigned core, enum os_lib_until until, struct os_lib_result *res, char *why,
                                   size_t len);
/* A read-only call (RESOLVE) run to its return at once on s (os_lib.c). */
enum os_step_status os_lib_call_readonly(const struct os_consts *c, struct os_vars *s, const struct os_pt_request *rq,
                                         struct os_lib_result *res, char *why, size_t len);
/* x86pt_destroy run to its return on s, a scratch copy (os_lib.c); *nfreed: directories. */
enum os_step_status os_lib_destroy(const struct os_consts *c, struct os_vars *s, unsigned *nfreed, char *why,
                                   size_t len);
/* x86pt_adopt of s's table (cr3) run to its return on s, a scratch copy (os_lib.c): *res is
 * what it returned, back the directories it gave back (each checked: of the pool, once,
 * zeroed), *nfreed their number. os_adopt.c judges the rest. */
enum os_step_status os_lib_adopt(const struct os_consts *c, struct os_vars *s, uint64_t *back, unsigned *nfreed,
                                 struct os_lib_result *res, char *why, size_t len);
/* os_adopt.c: the AdoptProbe step. */
/* May st's thread make a read-only call (Resolve, Iterate) now: its core Idle, no operation holding
 * the kernel lock or buffering stores? Sets st->core (os.c). */
bool os_reader_ready(const struct os_consts *c, const struct os_vars *s1, struct os_step *st, char *why, size_t len);
/* x86pt's extension: Iterate (os_iterate.c). */
enum os_step_status os_step_iterate(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                    struct os_vars *s2, char *why, size_t len);
enum os_step_status os_step_adopt_probe(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len);
/* A Writeback step of st->core keeps the A/D bits the MMU set (else why, st->check). */
bool os_lib_writeback_ok(const struct os_consts *c, const struct os_vars *s1, struct os_step *st, char *why,
                         size_t len);
/* Directories freed by the operation that ends go back to the pool (after its shootdown). */
void os_release_pending(struct os_vars *s);

#endif
