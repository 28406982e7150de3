/*
 * The executable hardware model: spec_t/hardware.rs and the parts of definitions_t.rs it uses,
 * written from the spec and the Intel SDM vol. 3A ch. 4 (4-level paging, IA32_EFER.NXE = 1).
 *
 * This is the judge of the library: it shares no code, constant or header with src/ or
 * include/x86pt/. Everything here is pure over its arguments (no global state).
 *
 * Addresses: virtual addresses are the spec's 48-bit numbers in [0, HW_MAX_BASE). A canonical
 * x86-64 address converts with hw_vaddr_from_canonical / hw_vaddr_to_canonical.
 *
 * Layers (hardware.rs): 0 = PML4, 1 = PDPT, 2 = PD, 3 = PT.
 */
#ifndef X86PT_MODEL_HARDWARE_H
#define X86PT_MODEL_HARDWARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hw_mem.h"

/* ---- definitions_t.rs ------------------------------------------------------------------ */

#define HW_NUM_LAYERS 4u      /* X86_NUM_LAYERS */
#define HW_NUM_ENTRIES 512u   /* X86_NUM_ENTRIES */
#define HW_L3_ENTRY_SIZE UINT64_C(0x1000)          /* 4 KiB */
#define HW_L2_ENTRY_SIZE UINT64_C(0x200000)        /* 2 MiB */
#define HW_L1_ENTRY_SIZE UINT64_C(0x40000000)      /* 1 GiB */
#define HW_L0_ENTRY_SIZE UINT64_C(0x8000000000)    /* 512 GiB */
#define HW_MAX_BASE UINT64_C(0x1000000000000)      /* MAX_BASE = 512 * L0_ENTRY_SIZE = 2^48 */
#define HW_MAXPHYADDR_WIDTH_MIN 32u                /* axiom_max_phyaddr_width_facts */
#define HW_MAXPHYADDR_WIDTH_MAX 52u

/* x86_arch_spec.entry_size(layer), layer <= 3. */
static inline uint64_t hw_entry_size(unsigned layer) { return UINT64_C(1) << (39 - 9 * layer); }

/* definitions_t.rs: Flags, and x86pt's extension (issue 12): the attributes of the page's leaf
 * entry, which the spec abstracts away (hw_codec.h decodes them). */
struct hw_flags {
    bool is_writable;
    bool is_supervisor;
    bool disable_execute;
    uint8_t pat_index;   /* PAT:PCD:PWT of the leaf (SDM vol. 3A 11.12.3): the memory type */
    bool global;         /* G of the leaf (SDM 4.10.2.4): kept by MOV to CR3 */
    uint8_t pkey;        /* bits 62..59 of the leaf (SDM 4.6.2) */
    uint16_t software;   /* bits 11..9 (low 3) and 58..52 (high 7) of the leaf, ignored by the MMU */
    bool attrs_either;   /* only in hl_flags_join of flags whose attributes differ: either's
                            attributes are allowed (the table holds one or the other) */
};

/* The attribute part of two flags agree (x86pt extension). */
bool hw_attrs_equal(struct hw_flags a, struct hw_flags b);
/* Every field of flags in one word (for hashes). */
uint64_t hw_flags_bits(struct hw_flags f);

/* definitions_t.rs: MemRegion */
struct hw_mem_region {
    uint64_t base;
    uint64_t size;
};

/* definitions_t.rs: PageTableEntry (frame + flags combined along the walk) */
struct hw_pte {
    struct hw_mem_region frame;
    struct hw_flags flags;
};

/* One (base, pte) pair of a Map<nat, PageTableEntry> (interpretation, TLB). */
struct hw_mapping {
    uint64_t base;
    struct hw_pte pte;
};

bool hw_pte_equal(const struct hw_pte *a, const struct hw_pte *b);

/* definitions_t.rs: aligned, between, overlap */
static inline bool hw_aligned(uint64_t addr, uint64_t size) { return addr % size == 0; }
static inline bool hw_between(uint64_t x, uint64_t a, uint64_t b) { return a <= x && x < b; }
bool hw_overlap(struct hw_mem_region r1, struct hw_mem_region r2);

/* Canonical x86-64 address <-> spec's 48-bit number. from_canonical returns false if va is
 * not canonical (bits 63..47 not all equal). */
bool hw_vaddr_from_canonical(uint64_t va, uint64_t *spec_vaddr);
uint64_t hw_vaddr_to_canonical(uint64_t spec_vaddr);

/* ---- entries: hardware.rs PageDirectoryEntry::view, all_mb0_bits_are_zero ---------------- */

/* hardware.rs: GhostPageDirectoryEntry. flag_D, flag_G, flag_PAT are meaningful for pages
 * only (false in directories). */
enum hw_pde_kind { HW_PDE_EMPTY, HW_PDE_DIRECTORY, HW_PDE_PAGE };

struct hw_pde {
    enum hw_pde_kind kind;
    uint64_t addr;  /* directory or frame physical address */
    bool flag_P, flag_RW, flag_US, flag_PWT, flag_PCD, flag_A, flag_D, flag_G, flag_PAT, flag_XD;
    uint8_t pkey;       /* x86pt extension, pages only: bits 62..59 (SDM 4.6.2) */
    uint16_t software;  /* x86pt extension, pages only: bits 11..9, 58..52 (ignored, SDM 4.5) */
};

/* maxphyaddr in [HW_MAXPHYADDR_WIDTH_MIN, HW_MAXPHYADDR_WIDTH_MAX], layer <= 3. */
bool hw_all_mb0_bits_are_zero(uint64_t entry, unsigned layer, unsigned maxphyaddr);
struct hw_pde hw_pde_view(uint64_t entry, unsigned layer, unsigned maxphyaddr);

/* Bit positions (SDM 4.5, tables 4-14..4-20), for tests and the A/D step. */
#define HW_BIT_P    (UINT64_C(1) << 0)
#define HW_BIT_RW   (UINT64_C(1) << 1)
#define HW_BIT_US   (UINT64_C(1) << 2)
#define HW_BIT_PWT  (UINT64_C(1) << 3)
#define HW_BIT_PCD  (UINT64_C(1) << 4)
#define HW_BIT_A    (UINT64_C(1) << 5)
#define HW_BIT_D    (UINT64_C(1) << 6)
#define HW_BIT_PS   (UINT64_C(1) << 7)   /* layers 1, 2; PAT at layer 3 */
#define HW_BIT_G    (UINT64_C(1) << 8)
#define HW_BIT_PAT_LARGE (UINT64_C(1) << 12)  /* PAT of 1 GiB / 2 MiB pages */
#define HW_BIT_XD   (UINT64_C(1) << 63)

/* ---- page-table memory and the walk: hardware.rs read_entry, valid_pt_walk ---------------- */

/* spec_t/mem.rs PageTableMemory as the MMU sees it: memory, cr3 (physical address of the
 * PML4, 4 KiB aligned) and the MAXPHYADDR width. */
struct hw_pt_view {
    struct hw_mem_view mem;
    uint64_t cr3;
    unsigned maxphyaddr;
};

enum hw_walk_status {
    HW_WALK_PAGE,     /* reached a Page entry: base, pte, layer valid */
    HW_WALK_FAULT,    /* reached an Empty entry at `layer` (or vaddr >= HW_MAX_BASE) */
    HW_WALK_OUTSIDE,  /* the table at `layer` lies outside physical memory */
};

struct hw_walk {
    enum hw_walk_status status;
    unsigned layer;          /* layer of the leaf, of the Empty entry, or of the missing table */
    uint64_t base;           /* vaddr rounded down to the leaf's entry size */
    struct hw_pte pte;       /* frame + flags combined along the path */
    uint64_t entry_pa[HW_NUM_LAYERS];  /* physical address of the entry read at each layer
                                          0..layer (for the A/D step and diagnostics) */
};

/* hardware.rs: read_entry (one entry of the directory at dir_addr). False if outside memory. */
bool hw_read_entry(const struct hw_pt_view *pt, uint64_t dir_addr, unsigned layer, unsigned idx,
                   struct hw_pde *out);

/* The MMU's walk for any vaddr (not necessarily aligned): where it ends, and the mapping. */
enum hw_walk_status hw_pt_walk(const struct hw_pt_view *pt, uint64_t vaddr, struct hw_walk *out);

/* hardware.rs: valid_pt_walk(pt_mem, addr, pte): the walk of addr reaches a Page entry, addr is
 * aligned to its size and pte is exactly the (combined) mapping. */
bool hw_valid_pt_walk(const struct hw_pt_view *pt, uint64_t addr, const struct hw_pte *pte);

/* ---- interpretation: hardware.rs interp_pt_mem ------------------------------------------- */

/* Map base -> pte, sorted by base (the walk visits bases in increasing order). */
struct hw_interp {
    struct hw_mapping *map;
    size_t len, cap;
};

enum hw_interp_status {
    HW_INTERP_OK,
    HW_INTERP_E_OUTSIDE,  /* a Directory entry points outside physical memory (or cr3 does) */
    HW_INTERP_E_SHARED,   /* a directory is reachable twice (cycle or shared subtree) */
    HW_INTERP_E_CR3,      /* cr3 is not 4 KiB aligned */
    HW_INTERP_E_NOMEM,    /* out of host memory */
};

/* Where the interpretation stopped, for a message. */
struct hw_interp_diag {
    enum hw_interp_status status;
    unsigned layer;     /* layer of the offending Directory entry */
    uint64_t entry_pa;  /* its physical address */
    uint64_t vaddr;     /* first virtual address it covers */
    uint64_t target;    /* the directory address it points to (or cr3) */
    bool at_cr3;        /* the fault is cr3 itself, not an entry */
};

/* Compute the interpretation by walking the tree (every directory at most once). On any error
 * `out` holds the mappings found so far (still sorted). diag may be NULL. out must be zeroed
 * or a previous result (it is reused). Free with hw_interp_fini. */
enum hw_interp_status hw_interp_pt_mem(const struct hw_pt_view *pt, struct hw_interp *out,
                                       struct hw_interp_diag *diag);
void hw_interp_fini(struct hw_interp *in);
/* A one-line message for diag ("directory 0x... reachable twice: entry 0x... (layer 1) ..."). */
void hw_interp_diag_format(const struct hw_interp_diag *diag, char *buf, size_t len);
const char *hw_interp_status_str(enum hw_interp_status st);

/* contains_key / index: the pte at exactly base, or NULL. O(log n). */
const struct hw_pte *hw_interp_get(const struct hw_interp *in, uint64_t base);
/* The mapping whose range contains vaddr, or NULL. O(log n). */
const struct hw_mapping *hw_interp_find(const struct hw_interp *in, uint64_t vaddr);
bool hw_interp_equal(const struct hw_interp *a, const struct hw_interp *b);

/* Generic traversal used by interp and by `x86pt dump --dot`: calls visit for every entry of
 * every reachable directory that is not Empty (pde.kind != HW_PDE_EMPTY), parents before
 * children, in increasing vaddr order. vaddr is the first virtual address the entry covers.
 * Same robustness and return values as hw_interp_pt_mem. visit returns false to stop
 * (the traversal then returns HW_INTERP_OK). */
typedef bool (*hw_pt_visit_fn)(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr,
                               const struct hw_pde *pde, const struct hw_pte *combined);
enum hw_interp_status hw_pt_visit(const struct hw_pt_view *pt, hw_pt_visit_fn visit, void *ctx,
                                  struct hw_interp_diag *diag);

/* ---- TLB: CoreVariables.tlb, a Map<nat, PageTableEntry> ---------------------------------- */

/* A small set of (base, pte) pairs sorted by base; at most one pte per base (it is a Map). */
struct hw_tlb {
    uint32_t len, cap;
    struct hw_mapping *entries;
};

const struct hw_pte *hw_tlb_get(const struct hw_tlb *t, uint64_t base);
/* Map::insert (replaces the pte at base). False on OOM. */
bool hw_tlb_insert(struct hw_tlb *t, uint64_t base, const struct hw_pte *pte);
/* Map::remove; false if base was not in the domain. */
bool hw_tlb_remove(struct hw_tlb *t, uint64_t base);
bool hw_tlb_copy(struct hw_tlb *dst, const struct hw_tlb *src);
void hw_tlb_fini(struct hw_tlb *t);
bool hw_tlb_equal(const struct hw_tlb *a, const struct hw_tlb *b);
uint64_t hw_tlb_hash(const struct hw_tlb *t);

/* ---- the hardware state machine: HWConstants, HWVariables, HWStep ------------------------- */

/* Bounds of the rl3-level MMU state per core (the hw_consts fields below may ask for less). */
#define HW_MMU_MAX_WALKS 2u       /* in-flight walks per core */
#define HW_PSCACHE_LEVELS 3u      /* PML4E, PDPTE and PDE caches (SDM 4.10.3.1) */
#define HW_PSCACHE_MAX 4u         /* entries per cache level per core */
#define HW_SBUF_MAX 4u            /* page-table stores buffered per core */

struct hw_consts {
    unsigned NUMA_no;        /* > 0 */
    unsigned core_no;        /* cores per NUMA node, > 0 */
    uint64_t phys_mem_size;  /* bytes of the word-indexed memory `mem` (multiple of 8) */
    unsigned maxphyaddr;     /* MAX_PHYADDR_WIDTH, 32..52 (x86pt: a constant of the machine) */
    /* The rl3.rs hardware (mmu-verimm), each off when zero, so that a zero-initialised
     * hw_consts is the hardware.rs machine exactly:
     *   mmu_walks: in-flight non-atomic walks per core (<= HW_MMU_MAX_WALKS); 0 = none, the
     *     only TLB fill is the atomic hw_step_TLBFill.
     *   mmu_pscache: paging-structure cache entries per level per core (<= HW_PSCACHE_MAX);
     *     needs mmu_walks (a cache is filled from and used by walks).
     *   mmu_sbuf: TSO store-buffer depth per core (<= HW_SBUF_MAX); 0 = page-table stores go
     *     straight to memory. */
    unsigned mmu_walks;
    unsigned mmu_pscache;
    unsigned mmu_sbuf;
};

struct hw_core {
    unsigned NUMA_id;
    unsigned core_id;
};

/* spec_t/mem.rs PageTableMemory: the memory the MMU walks, and cr3. */
struct hw_pt_mem {
    struct hw_pmem mem;
    uint64_t cr3;
};

/* ---- rl3.rs per-core MMU state: walks, paging-structure caches, store buffers ---------- */

/* The access a walk translates for (rl3 walks have none; x86pt needs it for D). */
enum hw_access { HW_ACCESS_READ, HW_ACCESS_WRITE, HW_ACCESS_EXEC };

/* Access rights combined along a walk (valid_pt_walk): RW AND-ed, US AND-ed, XD OR-ed. */
#define HW_RIGHT_W  1u
#define HW_RIGHT_U  2u
#define HW_RIGHT_XD 4u
#define HW_RIGHTS_TOP (HW_RIGHT_W | HW_RIGHT_U)  /* before any entry: everything allowed */

/* rl3.rs: Walk, an in-flight non-atomic walk. It read the entries of layers [from, next);
 * table[l] is the layer-l table it reads or read (known for from <= l <= next, except
 * table[next] once complete); rights[l] combines layers < l. Unused fields are zero, so
 * equal walks are equal field by field. */
struct hw_mmu_walk {
    uint64_t vaddr;                       /* 8-byte aligned, < HW_MAX_BASE */
    uint64_t table[HW_NUM_LAYERS];
    uint64_t entry[HW_NUM_LAYERS];        /* the values as this walk read them */
    uint8_t rights[HW_NUM_LAYERS + 1];
    uint8_t access;                       /* enum hw_access */
    uint8_t from;                         /* 0 = from CR3, > 0 = after a PS-cache hit */
    uint8_t next;                         /* next layer to read (leaf + 1 once complete) */
    bool complete;                        /* the last entry read maps a page */
};

/* SDM 4.10.3.1: one PML4E- (level 0), PDPTE- (1) or PDE-cache (2) entry: for linear
 * addresses whose bits 47:(39 - 9 * level) equal key, the next table and combined rights. */
struct hw_pscache_entry {
    uint64_t key;
    uint64_t table;   /* physical address of the layer level + 1 table */
    uint8_t rights;   /* HW_RIGHT_* combined over layers 0..level */
};

/* rl3.rs sbuf: one buffered page-table store. */
struct hw_sbuf_entry {
    uint64_t pa, value;
};

/* One core's rl3 state. walks and each cache level are sets kept sorted (a canonical form,
 * so that equal sets are equal arrays); sbuf is a FIFO, oldest first. */
struct hw_mmu_core {
    struct hw_mmu_walk walks[HW_MMU_MAX_WALKS];
    struct hw_pscache_entry pscache[HW_PSCACHE_LEVELS][HW_PSCACHE_MAX];
    struct hw_sbuf_entry sbuf[HW_SBUF_MAX];
    uint8_t nwalks, npscache[HW_PSCACHE_LEVELS], nsbuf;
};

/* hardware.rs HWVariables. tlbs[NUMA_id * core_no + core_id] is that core's TLB, mmu[same] its
 * rl3 state. */
struct hw_vars {
    struct hw_pmem mem;           /* word-indexed physical memory (user data) */
    struct hw_pt_mem global_pt;   /* the page table; changed only by PTMemOp and A/D steps */
    unsigned ntlbs;               /* NUMA_no * core_no */
    struct hw_tlb *tlbs;
    /* NULL unless some hw_consts mmu_* field is set. A NULL mmu equals all-empty per-core
     * states (equality and hash), so states without anything in flight hash as before. */
    struct hw_mmu_core *mmu;
};

/* hardware.rs init: every TLB empty, mem zeroed, global_pt = pt (copied) with the given cr3.
 * False on bad constants or OOM. */
bool hw_init(const struct hw_consts *c, struct hw_vars *s, const struct hw_pmem *pt_mem,
             uint64_t cr3);
bool hw_vars_copy(struct hw_vars *dst, const struct hw_vars *src);
void hw_vars_fini(struct hw_vars *s);
uint64_t hw_vars_hash(const struct hw_vars *s);
/* The hash of s with its cores renumbered: core i's TLB and rl3 state are core perm[i]'s
 * (NULL: none renumbered). */
uint64_t hw_vars_hash_perm(const struct hw_vars *s, const unsigned *perm);
bool hw_vars_equal(const struct hw_vars *a, const struct hw_vars *b);

/* valid_core */
bool hw_valid_core(const struct hw_consts *c, struct hw_core core);
struct hw_tlb *hw_core_tlb(const struct hw_consts *c, struct hw_vars *s, struct hw_core core);
const struct hw_tlb *hw_core_tlb_const(const struct hw_consts *c, const struct hw_vars *s,
                                       struct hw_core core);
/* The MMU's view of s.global_pt (valid while s is unchanged). */
struct hw_pt_view hw_vars_pt_view(const struct hw_consts *c, const struct hw_vars *s);

/* definitions_t.rs HWRWOp (the request; the result is an output of the step). */
enum hw_rw_kind { HW_RW_LOAD, HW_RW_STORE };
struct hw_rw_op {
    enum hw_rw_kind kind;
    bool is_exec;        /* Load: an instruction fetch */
    uint64_t new_value;  /* Store */
};

/* HWLoadResult / HWStoreResult */
enum hw_rw_result_kind { HW_RESULT_PAGEFAULT, HW_RESULT_VALUE, HW_RESULT_OK };
struct hw_rw_result {
    enum hw_rw_result_kind kind;
    uint64_t value;  /* HW_RESULT_VALUE */
    uint64_t paddr;  /* the physical address used (when a TLB entry was given) */
};

enum hw_step_kind {
    HW_STEP_READ_WRITE,
    HW_STEP_PT_MEM_OP,
    HW_STEP_TLB_FILL,
    HW_STEP_TLB_EVICT,
    HW_STEP_ACCESSED_DIRTY,  /* x86pt's addition: the spec's FIXME in mem.rs */
    /* rl3.rs steps (off unless the hw_consts mmu_* fields enable them): */
    HW_STEP_WALK_INIT,       /* rl3 WalkInit, or CacheUse when use_cache */
    HW_STEP_WALK_STEP,       /* rl3 WalkStep */
    HW_STEP_WALK_ABORT,      /* rl3 WalkAbort */
    HW_STEP_WALK_TLB_FILL,   /* rl3 TLBFill from a completed walk */
    HW_STEP_CACHE_FILL,      /* rl3 CacheFill */
    HW_STEP_CACHE_EVICT,     /* rl3 CacheEvict */
    HW_STEP_INVLPG,          /* rl3 Invlpg */
    HW_STEP_FLUSH_ALL,       /* MOV to CR3 with the same value (keeps global entries) */
    HW_STEP_FLUSH_GLOBAL,    /* x86pt: MOV to CR4 toggling PGE (drops global entries too) */
    HW_STEP_PT_STORE,        /* rl3 Write */
    HW_STEP_PT_CAS,          /* LOCK CMPXCHG on page-table memory */
    HW_STEP_PT_XCHG,         /* XCHG (implicitly locked) on page-table memory */
    HW_STEP_WRITEBACK,       /* rl3 Writeback */
    HW_STEP_FENCE,           /* rl3 Barrier */
};

/* hardware.rs HWStep. Fields used per kind:
 *   READ_WRITE: core, vaddr, op, has_pte + tlb_entry (Some((base, pte)) / None)
 *   PT_MEM_OP: pt_write_pa, pt_write_value (one word store to global_pt.mem; the spec lets
 *              PTMemOp change the page table arbitrarily, x86pt's OS changes it one word at a time)
 *   TLB_FILL: core, vaddr, pte
 *   TLB_EVICT: core, vaddr (also what invlpg does)
 *   ACCESSED_DIRTY: vaddr, is_write
 *   WALK_INIT: core, vaddr, access, use_cache (+ cache_level, cache_index)
 *   WALK_STEP, WALK_ABORT, WALK_TLB_FILL: core, walk_index
 *   CACHE_FILL: core, walk_index, cache_level;  CACHE_EVICT: core, cache_level, cache_index
 *   INVLPG: core, vaddr;  FLUSH_ALL, WRITEBACK, FENCE: core
 *   PT_STORE, PT_XCHG: core, pt_write_pa, pt_write_value
 *   PT_CAS: core, pt_write_pa, pt_expected, pt_write_value (desired)
 * PT_CAS and PT_XCHG report the old memory word as result->value (kind HW_RESULT_VALUE). */
struct hw_step {
    enum hw_step_kind kind;
    struct hw_core core;
    uint64_t vaddr;
    struct hw_rw_op op;
    bool has_pte;
    struct hw_mapping tlb_entry;
    struct hw_pte pte;
    uint64_t pt_write_pa, pt_write_value;
    bool is_write;
    enum hw_access access;
    unsigned walk_index;
    bool use_cache;
    unsigned cache_level, cache_index;
    uint64_t pt_expected;
};

/* Why a step is not enabled (or OK). */
enum hw_step_status {
    HW_STEP_OK,
    HW_STEP_E_CORE,         /* !valid_core */
    HW_STEP_E_MISALIGNED,   /* ReadWrite: vaddr not 8-byte aligned; PTMemOp: pa not aligned */
    HW_STEP_E_NOT_IN_TLB,   /* ReadWrite Some: the pair is not in the core's TLB;
                               TLBEvict: vaddr not in the TLB's domain */
    HW_STEP_E_NOT_COVERED,  /* ReadWrite Some: vaddr not in [base, base + size) */
    HW_STEP_E_MAPPED,       /* ReadWrite None: some mapping of interp_pt_mem contains vaddr */
    HW_STEP_E_NOT_MAPPED,   /* TLBFill: (vaddr, pte) is not in interp_pt_mem;
                               AccessedDirty: the walk of vaddr reaches no page */
    HW_STEP_E_OUTSIDE,      /* PTMemOp: pa outside global_pt memory; walk left memory */
    HW_STEP_E_NOMEM,        /* out of host memory */
    HW_STEP_E_KIND,         /* unknown step kind */
    HW_STEP_E_DISABLED,     /* the hw_consts mmu_* field this step needs is 0 */
    HW_STEP_E_VADDR,        /* WalkInit: vaddr not 8-byte aligned or >= HW_MAX_BASE */
    HW_STEP_E_FULL,         /* the core's walks / cache level / store buffer is at its bound */
    HW_STEP_E_NO_WALK,      /* no in-flight walk at that index */
    HW_STEP_E_WALK_STATE,   /* WalkStep: walk complete; TLBFill: not; CacheFill: no
                               directory entry read at that level */
    HW_STEP_E_NO_CACHE_ENTRY, /* no PS-cache entry at (level, index), or it does not match */
    HW_STEP_E_SBUF_NOT_EMPTY, /* a serializing or locked op with stores still buffered */
    HW_STEP_E_SBUF_EMPTY,   /* Writeback with nothing buffered */
};
const char *hw_step_status_str(enum hw_step_status st);

/* Each step: check the enabling condition on s1; if enabled, *s2 becomes a new state (free with
 * hw_vars_fini) and HW_STEP_OK is returned; otherwise *s2 is untouched and the status says why.
 * result may be NULL except for ReadWrite. */
enum hw_step_status hw_step_ReadWrite(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, uint64_t vaddr, struct hw_rw_op op,
                                      const struct hw_mapping *tlb_entry /* NULL = None */,
                                      struct hw_vars *s2, struct hw_rw_result *result);
enum hw_step_status hw_step_PTMemOp(const struct hw_consts *c, const struct hw_vars *s1,
                                    uint64_t pa, uint64_t value, struct hw_vars *s2);
enum hw_step_status hw_step_TLBFill(const struct hw_consts *c, const struct hw_vars *s1,
                                    struct hw_core core, uint64_t vaddr, const struct hw_pte *pte,
                                    struct hw_vars *s2);
enum hw_step_status hw_step_TLBEvict(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, uint64_t vaddr, struct hw_vars *s2);
/* Sets A in every entry of the walk of vaddr and, on a write, D in the leaf (SDM 4.8; any
 * write, as a supervisor write with CR0.WP = 0 may hit a read-only page). Enabled when the walk
 * reaches a page. The interpretation never changes (A and D are not part of it). */
enum hw_step_status hw_step_AccessedDirty(const struct hw_consts *c, const struct hw_vars *s1,
                                          uint64_t vaddr, bool is_write, struct hw_vars *s2);

/* ---- rl3.rs steps (model/hw_mmu_*.c) ----------------------------------------------------
 * Same contract as the steps above. Each is refused with HW_STEP_E_DISABLED when the
 * hw_consts field it needs is 0, except Invlpg, FlushAll, PTStore, PTCas, PTXchg and Fence,
 * which also make sense on the hardware.rs machine (TLB only, stores straight to memory). */

/* The core's rl3 state, or NULL when no mmu_* feature is on. */
const struct hw_mmu_core *hw_core_mmu_const(const struct hw_consts *c, const struct hw_vars *s,
                                            struct hw_core core);

/* A paging-structure-cache entry of the walking core, for CacheUse. */
struct hw_pscache_ref {
    unsigned level;   /* 0 = PML4E, 1 = PDPTE, 2 = PDE cache */
    unsigned index;   /* into hw_mmu_core.pscache[level] */
};

/* rl3.rs step_WalkInit (cache == NULL: start at CR3) and step_CacheUse (start after the
 * cached entry, which must match vaddr). Any core may start a walk for any address and
 * access at any time: speculation. */
enum hw_step_status hw_step_WalkInit(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, uint64_t vaddr, enum hw_access access,
                                     const struct hw_pscache_ref *cache, struct hw_vars *s2);
/* rl3.rs step_WalkStep: read one entry (through the core's own store buffer), set its A bit
 * in memory, then descend, complete, or fault (the walk ends, nothing is filled). */
enum hw_step_status hw_step_WalkStep(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, unsigned walk_index,
                                     struct hw_vars *s2);
/* rl3.rs step_WalkAbort */
enum hw_step_status hw_step_WalkAbort(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, unsigned walk_index,
                                      struct hw_vars *s2);
/* rl3.rs step_TLBFill from a completed walk; D in the leaf on a write access. */
enum hw_step_status hw_step_WalkTLBFill(const struct hw_consts *c, const struct hw_vars *s1,
                                        struct hw_core core, unsigned walk_index,
                                        struct hw_vars *s2);
/* rl3.rs step_CacheFill: cache the directory entry of `level` that the walk read. */
enum hw_step_status hw_step_CacheFill(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, unsigned walk_index, unsigned level,
                                      struct hw_vars *s2);
/* rl3.rs step_CacheEvict */
enum hw_step_status hw_step_CacheEvict(const struct hw_consts *c, const struct hw_vars *s1,
                                       struct hw_core core, struct hw_pscache_ref entry,
                                       struct hw_vars *s2);
/* rl3.rs step_Invlpg (SDM 4.10.4.1): needs an empty store buffer; removes the core's TLB
 * entries containing vaddr, the PS-cache entries that would translate vaddr and the walks
 * that could use them. */
enum hw_step_status hw_step_Invlpg(const struct hw_consts *c, const struct hw_vars *s1,
                                   struct hw_core core, uint64_t vaddr, struct hw_vars *s2);
/* MOV to CR3 (same value; SDM 4.10.4.1): needs an empty store buffer; empties the core's TLB,
 * PS caches and walks. */
enum hw_step_status hw_step_FlushAll(const struct hw_consts *c, const struct hw_vars *s1,
                                     struct hw_core core, struct hw_vars *s2);
enum hw_step_status hw_step_FlushGlobal(const struct hw_consts *c, const struct hw_vars *s1,
                                        struct hw_core core, struct hw_vars *s2);

/* rl3.rs core_mem / read_from_mem_tso: the word at pa as `core` sees it (its newest buffered
 * store to pa, else memory). 0 if pa is outside page-table memory or not aligned. */
uint64_t hw_pt_load(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core,
                    uint64_t pa);
/* rl3.rs step_Write: into the core's store buffer (refused when full), or, with mmu_sbuf = 0,
 * straight to memory as PTMemOp. */
enum hw_step_status hw_step_PTStore(const struct hw_consts *c, const struct hw_vars *s1,
                                    struct hw_core core, uint64_t pa, uint64_t value,
                                    struct hw_vars *s2);
/* Locked compare-exchange on memory; needs an empty store buffer. *observed = old word. */
enum hw_step_status hw_step_PTCas(const struct hw_consts *c, const struct hw_vars *s1,
                                  struct hw_core core, uint64_t pa, uint64_t expected,
                                  uint64_t desired, struct hw_vars *s2, uint64_t *observed);
/* Exchange on memory (implicitly locked); needs an empty store buffer. *old = old word. */
enum hw_step_status hw_step_PTXchg(const struct hw_consts *c, const struct hw_vars *s1,
                                   struct hw_core core, uint64_t pa, uint64_t value,
                                   struct hw_vars *s2, uint64_t *old);
/* rl3.rs step_Writeback: the oldest buffered store reaches memory. */
enum hw_step_status hw_step_Writeback(const struct hw_consts *c, const struct hw_vars *s1,
                                      struct hw_core core, struct hw_vars *s2);
/* rl3.rs step_Barrier (MFENCE or any serializing instruction): enabled only when the core's
 * store buffer is empty; changes nothing. */
enum hw_step_status hw_step_Fence(const struct hw_consts *c, const struct hw_vars *s1,
                                  struct hw_core core, struct hw_vars *s2);

/* Internal to model/hardware.c and model/hw_mmu_*.c: the per-core rl3 state as values. */
struct hw_mmu_core *hw_core_mmu(const struct hw_consts *c, struct hw_vars *s,
                                struct hw_core core);
/* s2 = s1 with core's rl3 state replaced by m (HW_STEP_OK or HW_STEP_E_NOMEM). */
enum hw_step_status hw_mmu_commit(const struct hw_consts *c, const struct hw_vars *s1,
                                  struct hw_core core, const struct hw_mmu_core *m,
                                  struct hw_vars *s2);
bool hw_mmu_core_is_empty(const struct hw_mmu_core *m);
bool hw_mmu_core_equal(const struct hw_mmu_core *a, const struct hw_mmu_core *b);
uint64_t hw_mmu_core_hash(const struct hw_mmu_core *m);
/* Set operations keeping the canonical (sorted, duplicate-free) order. Insert returns false
 * when the set is at `bound` and the element is not already in it. */
bool hw_mmu_walk_insert(struct hw_mmu_core *m, const struct hw_mmu_walk *w, unsigned bound);
/* The physical address of the entry the walk reads (or read) at layer (< HW_NUM_LAYERS,
 * >= w->from, <= w->next). */
uint64_t hw_mmu_walk_entry_pa(const struct hw_mmu_walk *w, unsigned layer);
bool hw_mmu_path_current(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core, uint64_t vaddr,
                         unsigned level, uint64_t table, uint8_t rights);
/* The translation a completed walk fills into the TLB (rl3.rs step_TLBFill). */
struct hw_mapping hw_mmu_walk_result(const struct hw_mmu_walk *w, unsigned maxphyaddr);
bool hw_mmu_tlb_current(const struct hw_consts *c, const struct hw_vars *s, struct hw_core core,
                        const struct hw_mapping *e, bool ignore_ad);
void hw_mmu_walk_remove(struct hw_mmu_core *m, unsigned index);
bool hw_pscache_insert(struct hw_mmu_core *m, unsigned level, const struct hw_pscache_entry *e,
                       unsigned bound);
void hw_pscache_remove(struct hw_mmu_core *m, unsigned level, unsigned index);
/* The key of vaddr (< HW_MAX_BASE) in the level's cache: bits 47:(39 - 9 * level). */
static inline uint64_t hw_pscache_key(uint64_t vaddr, unsigned level)
{
    return vaddr >> (39 - 9 * level);
}

/* hardware.rs next_step: dispatch on step->kind. */
enum hw_step_status hw_next_step(const struct hw_consts *c, const struct hw_vars *s1,
                                 const struct hw_step *step, struct hw_vars *s2,
                                 struct hw_rw_result *result);

#endif /* X86PT_MODEL_HARDWARE_H */
