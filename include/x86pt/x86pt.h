/*
 * libx86pt — a freestanding manager for x86-64 4-level page tables.
 *
 * Semantics follow the Verus-verified NrOS page table (impl_u/spec_pt.rs for the
 * operations, spec_t/hlspec.rs for when map/unmap succeed).
 *
 * Concurrency: the library takes no lock. Callers serialize every mutating call
 * on one page table (as spec_t/os.rs does with its kernel lock); resolve may run
 * concurrently with other resolves. Other cores' MMUs may walk the tables at any
 * time: every write keeps the MMU's view valid (see "write discipline" in
 * README.md), and the hardware's Accessed/Dirty updates never confuse the library.
 *
 * TLBs: the library never flushes. Every mutating call fills a struct
 * x86pt_flush saying what the caller must invalidate on every core.
 */
#ifndef X86PT_X86PT_H
#define X86PT_X86PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Distinct address types, so that passing a physical address where a virtual
 * one is wanted does not compile. */
typedef struct { uint64_t va; } x86pt_vaddr_t;
typedef struct { uint64_t pa; } x86pt_paddr_t;

static inline x86pt_vaddr_t x86pt_va(uint64_t va) { x86pt_vaddr_t v = { va }; return v; }
static inline x86pt_paddr_t x86pt_pa(uint64_t pa) { x86pt_paddr_t p = { pa }; return p; }

#define X86PT_PAGE_4K (UINT64_C(1) << 12)
#define X86PT_PAGE_2M (UINT64_C(1) << 21)
#define X86PT_PAGE_1G (UINT64_C(1) << 30)

/*
 * Mapping flags: the permissions and the attributes of a page, in one word.
 * 0 is read-only, supervisor-only, executable, PAT index 0 (write-back in both
 * PAT layouts below), not global, software field 0, protection key 0.
 * Directory entries always grant everything (P|RW|US): a page's flags live in
 * its leaf entry alone, and resolve reports the leaf's attributes.
 */
enum x86pt_flag {
    X86PT_WRITABLE = 1u << 0,
    X86PT_USER = 1u << 1,
    X86PT_NO_EXECUTE = 1u << 2,
    X86PT_GLOBAL = 1u << 3, /* G: with CR4.PGE, kept across CR3 reloads (SDM vol. 3A 4.10.2.4) */
};
#define X86PT_PERMISSIONS (X86PT_WRITABLE | X86PT_USER | X86PT_NO_EXECUTE)

/* Memory type: a PAT index 0..7 (PAT:PCD:PWT, SDM vol. 3A 11.12.3), which the
 * library encodes per level (PWT bit 3, PCD bit 4, PAT bit 7 of a 4 KiB entry,
 * bit 12 of a 2 MiB / 1 GiB entry). What each index means is the IA32_PAT MSR's
 * choice: the names below give the power-on layout and the one Linux programs. */
#define X86PT_MEMTYPE_SHIFT 4u
#define X86PT_MEMTYPE_MASK (7u << X86PT_MEMTYPE_SHIFT)
#define X86PT_MEMTYPE(index) (((unsigned)(index) & 7u) << X86PT_MEMTYPE_SHIFT)
#define X86PT_MEMTYPE_OF(flags) (((unsigned)(flags) >> X86PT_MEMTYPE_SHIFT) & 7u)

/* IA32_PAT at power-on (SDM vol. 3A table 11-12): WB WT UC- UC, twice. */
#define X86PT_IA32_PAT_POWER_ON UINT64_C(0x0007040600070406)
#define X86PT_PAT_POWER_ON_WB 0u
#define X86PT_PAT_POWER_ON_WT 1u
#define X86PT_PAT_POWER_ON_UC_MINUS 2u
#define X86PT_PAT_POWER_ON_UC 3u
/* IA32_PAT as Linux programs it (arch/x86/mm/pat/memtype.c): WB WC UC- UC WB WP UC- WT. */
#define X86PT_IA32_PAT_LINUX UINT64_C(0x0407050600070106)
#define X86PT_PAT_LINUX_WB 0u
#define X86PT_PAT_LINUX_WC 1u
#define X86PT_PAT_LINUX_UC_MINUS 2u
#define X86PT_PAT_LINUX_UC 3u
#define X86PT_PAT_LINUX_WP 5u
#define X86PT_PAT_LINUX_WT 7u

/* Protection key 0..15 (bits 62..59 of the leaf; SDM vol. 3A 4.6.2), carried as is. */
#define X86PT_PKEY_SHIFT 8u
#define X86PT_PKEY_MASK (15u << X86PT_PKEY_SHIFT)
#define X86PT_PKEY(key) (((unsigned)(key) & 15u) << X86PT_PKEY_SHIFT)
#define X86PT_PKEY_OF(flags) (((unsigned)(flags) >> X86PT_PKEY_SHIFT) & 15u)

/* Software field 0..1023, the leaf's bits the MMU ignores, carried as is: its low
 * 3 bits are the leaf's bits 11..9, its high 7 bits the leaf's bits 58..52. */
#define X86PT_SOFTWARE_SHIFT 12u
#define X86PT_SOFTWARE_MASK (1023u << X86PT_SOFTWARE_SHIFT)
#define X86PT_SOFTWARE(value) (((unsigned)(value) & 1023u) << X86PT_SOFTWARE_SHIFT)
#define X86PT_SOFTWARE_OF(flags) (((unsigned)(flags) >> X86PT_SOFTWARE_SHIFT) & 1023u)

#define X86PT_ATTRIBUTES (X86PT_GLOBAL | X86PT_MEMTYPE_MASK | X86PT_PKEY_MASK | X86PT_SOFTWARE_MASK)
#define X86PT_FLAGS_ALL (X86PT_PERMISSIONS | X86PT_ATTRIBUTES)

typedef enum x86pt_status {
    X86PT_OK = 0,
    X86PT_E_NONCANONICAL,   /* virtual address is not canonical (bits 63..47 differ) */
    X86PT_E_MISALIGNED,     /* an address is not aligned to the page size */
    X86PT_E_BADSIZE,        /* size is not 4 KiB, 2 MiB or 1 GiB */
    X86PT_E_BADFLAGS,       /* flags outside X86PT_FLAGS_ALL */
    X86PT_E_PHYSRANGE,      /* physical range reaches beyond MAXPHYADDR */
    X86PT_E_OVERLAP,        /* map: the range overlaps an existing mapping */
    X86PT_E_NOTMAPPED,      /* unmap/protect/remap: no mapping starts at this address;
                               resolve: nothing maps this address */
    X86PT_E_NOMEM,          /* the frame allocator failed; nothing was changed */
    X86PT_E_BADFRAME,       /* the allocator returned a frame the library cannot use
                               (misaligned, above MAXPHYADDR or outside the count table) */
    X86PT_E_MALFORMED,      /* adopt: the image is not a well-formed page table */
    X86PT_E_INVAL,          /* bad configuration (MAXPHYADDR width, missing callbacks) */
    X86PT_E_STRADDLE,       /* range op: a mapping straddles an end of the range */
    X86PT_E_GATHER_FULL,    /* unmap with a gather: it has no room for every directory the
                               call would free; nothing was changed */
    X86PT_STATUS_COUNT
} x86pt_status_t;

/* A name for every status ("X86PT_E_OVERLAP: ..."); never NULL. */
const char *x86pt_strerror(x86pt_status_t status);

/*
 * The page-table memory interface (spec_t/mem.rs).
 *
 * alloc_frame returns a 4 KiB-aligned physical frame, or false on failure; its
 * contents may be garbage: the library zeroes it before linking it. free_frame
 * receives only frames that alloc_frame returned, zeroed — except one the
 * library could not use (X86PT_E_BADFRAME), which goes back untouched.
 *
 * Translation: if direct_map is non-NULL the frame at pa is at direct_map + pa
 * (the spec's linear mapping, and the fast path); otherwise phys_to_virt is called.
 *
 * used_counts: the side table for reclaim in O(1). One uint16_t per physical
 * frame, indexed by pa >> 12, for every frame alloc_frame may return
 * (used_counts_len entries). The library keeps there the number of non-empty
 * entries of each directory. One table may serve every page table over the same
 * memory; the caller zeroes it once, before the first x86pt_init or x86pt_adopt.
 * It lives outside the directories so that the MMU's Accessed/Dirty writes and
 * the library's count updates never race on the same word.
 *
 * observe_write: NULL in a kernel. If set, the library calls it right after
 * each store to a page-table entry (entry_pa is the entry's physical address),
 * so that a checker can record the exact sequence of writes and replay them.
 * Stores into a directory that is not reachable yet are not reported: zeroing
 * a fresh directory (the spec's alloc_page returns zeroed frames) and filling
 * the new directory of a huge-page split. Both end before the one reported
 * store that links the directory, so its contents can be read at that store.
 */
struct x86pt_mem {
    void *ctx;
    bool (*alloc_frame)(void *ctx, x86pt_paddr_t *frame);
    void (*free_frame)(void *ctx, x86pt_paddr_t frame);
    void *(*phys_to_virt)(void *ctx, x86pt_paddr_t pa);
    uint8_t *direct_map;
    uint16_t *used_counts;
    uint64_t used_counts_len;
    void (*observe_write)(void *ctx, x86pt_paddr_t entry_pa, uint64_t value);
};

/* A page-table handle: one root (PML4). Opaque in spirit; fields are public only
 * so that callers can embed it without an allocator. */
struct x86pt {
    struct x86pt_mem mem;
    x86pt_paddr_t root;
    uint64_t phys_limit; /* 1 << MAXPHYADDR width */
    unsigned maxphyaddr;
    uint64_t walk_hint;  /* internal: the last page table walked through */
};

/* What the caller must invalidate after a mutating call, on every core that may
 * have used this page table. length == 0: nothing. */
struct x86pt_flush {
    x86pt_vaddr_t start;
    uint64_t length;
    unsigned dirs_freed;  /* > 0: paging-structure caches must be flushed too */
    bool flush_all;       /* range ops: the range is large, flush the whole TLB */
    bool global;          /* a global page (X86PT_GLOBAL) was changed or removed: a CR3 reload
                             keeps its TLB entries; invlpg each page (invlpg drops global
                             entries too), or flush including globals (toggle CR4.PGE,
                             or INVPCID type 2) where the report says to flush everything */
    bool accessed_only;   /* x86pt_test_and_clear_ad cleared only Accessed: the invalidation
                             may be skipped (as Linux does), at the cost of a page that stays
                             "not accessed" while a stale TLB entry keeps serving it */
};

/* The Accessed and Dirty bits of a page's entry, which the MMU sets (SDM vol. 3A 4.8). */
enum x86pt_ad_bit {
    X86PT_ACCESSED = 1u << 0,
    X86PT_DIRTY = 1u << 1,
};

/* What the MMU sees at an address: a mapping. flags: the permissions combined
 * along the walk (writable = RW everywhere, user = US everywhere, no_execute =
 * XD anywhere) and the leaf's attributes (memory type, global, key, software).
 * ad: the leaf's Accessed/Dirty bits (x86pt_ad_bit) — as read by
 * resolve and iterate (the MMU may set them any time after), and exactly as they
 * were at the removal by unmap (which then clears the entry with a locked
 * exchange, like Linux's ptep_get_and_clear). */
struct x86pt_mapping {
    x86pt_vaddr_t base;
    x86pt_paddr_t frame;
    uint64_t size;
    unsigned flags;
    unsigned ad;
};

/* The default and accepted range of MAXPHYADDR widths (definitions_t.rs). */
#define X86PT_MAXPHYADDR_MIN 32u
#define X86PT_MAXPHYADDR_MAX 52u

/* Create a page table with one zeroed root. */
x86pt_status_t x86pt_init(struct x86pt *pt, const struct x86pt_mem *mem, unsigned maxphyaddr);

/* Take over an existing page-table image rooted at root: validates it (every
 * pointer inside used_counts_len, within MAXPHYADDR, no directory reachable twice,
 * no must-be-zero bit set in a present entry, directories granting every
 * permission), rebuilds the counts of its own directories (others' counts in
 * the shared table are left alone) and frees directories that map nothing, at
 * once: adopt a table no core is using, or flush paging-structure caches
 * everywhere afterwards. On any error nothing is written and *pt is unchanged. */
x86pt_status_t x86pt_adopt(struct x86pt *pt, const struct x86pt_mem *mem, unsigned maxphyaddr,
                           x86pt_paddr_t root);

/* Free every directory, the root included (not the mapped frames). The table
 * must be in no core's CR3; the handle is dead afterwards. */
void x86pt_destroy(struct x86pt *pt);

/* Add the mapping [vaddr, vaddr+size) -> [paddr, paddr+size). */
x86pt_status_t x86pt_map(struct x86pt *pt, x86pt_vaddr_t vaddr, x86pt_paddr_t paddr, uint64_t size,
                         unsigned flags, struct x86pt_flush *flush);

/* Remove the mapping that starts at vaddr; *removed (may be NULL) receives it,
 * with its final Accessed/Dirty bits (then the clearing store is a locked
 * exchange; with removed NULL a plain store). Every directory that empties is
 * unlinked and given to free_frame at once (x86pt_unmap_gather defers that). */
x86pt_status_t x86pt_unmap(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *removed,
                           struct x86pt_flush *flush);

/*
 * Deferred frees (Linux's mmu_gather). An unmap unlinks every directory it
 * empties, but another core's MMU may still walk one through its
 * paging-structure caches until the caller's shootdown completes: its frame must
 * not be reused before then. Given a gather, x86pt_unmap_gather and
 * x86pt_unmap_range_gather zero and unlink those directories exactly as the
 * plain calls do, but append their frames to gather->frames instead of calling
 * free_frame; after the shootdown, x86pt_gather_release hands them to
 * free_frame. The storage is the caller's (no allocation inside the library):
 * a single-page unmap frees at most 3 directories (PT, PD, PDPT; never the
 * root). Before its first store a call computes exactly how many directories
 * it will free; if more than capacity - count, it returns X86PT_E_GATHER_FULL
 * and changes nothing (so a gather with no room at all still serves every
 * unmap that frees nothing). A gather may be reused across calls: frames
 * accumulate until the release. count > capacity, or frames NULL with a
 * capacity, is X86PT_E_INVAL.
 *
 * Frees that stay immediate, whatever the gather: directories no walk could
 * ever reach — those a failed map (or map_range) allocated and gives back
 * before linking them, and the unused part of a range operation's directory
 * pool — and those of x86pt_adopt and x86pt_destroy (documented above). Split
 * and protect (and their range forms) never free a directory.
 */
struct x86pt_gather {
    x86pt_paddr_t *frames;  /* caller-owned, capacity entries */
    unsigned capacity;
    unsigned count;         /* frames[0 .. count) await x86pt_gather_release */
};

static inline void x86pt_gather_init(struct x86pt_gather *g, x86pt_paddr_t *storage, unsigned capacity)
{
    g->frames = storage;
    g->capacity = capacity;
    g->count = 0;
}

/* The most directories one x86pt_unmap_gather can free. */
#define X86PT_UNMAP_MAX_DIRS_FREED 3u

/* x86pt_unmap, with the directories it frees gathered instead of freed (gather
 * NULL: exactly x86pt_unmap). The flush report is the same either way. */
x86pt_status_t x86pt_unmap_gather(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *removed,
                                  struct x86pt_flush *flush, struct x86pt_gather *gather);

/* Send every gathered frame to mem.free_frame, once, and empty the gather.
 * Call it after the shootdown for the calls that gathered them has completed
 * on every core. gather NULL, or not valid (count > capacity): nothing. */
void x86pt_gather_release(struct x86pt *pt, struct x86pt_gather *gather);

/* Set the flags of the mapping that starts at vaddr: permissions and attributes,
 * the whole word (to change permissions only, pass the attributes it has:
 * resolve's flags & X86PT_ATTRIBUTES). One locked store; frame and A/D kept. */
x86pt_status_t x86pt_protect(struct x86pt *pt, x86pt_vaddr_t vaddr, unsigned flags,
                             struct x86pt_flush *flush);

/* Point the mapping that starts at vaddr (any page size; the size stays) at
 * paddr, with the flags `flags` (the whole word, as x86pt_protect), in one
 * locked exchange: no walk ever sees the page unmapped in between, and *old
 * (may be NULL) receives the mapping replaced (base, frame, size, flags) with its
 * Accessed/Dirty bits exactly as they were at the exchange (so a write the old
 * frame received up to then is known: a copy-on-write break, a migration). The
 * new entry starts with A and D clear. The flush report names the page (the old
 * translation must go on every core), global if the old entry was global.
 * Checks, in this order, each refusal changing nothing: flags (X86PT_E_BADFLAGS),
 * vaddr canonical (X86PT_E_NONCANONICAL) and 4 KiB-aligned (X86PT_E_MISALIGNED),
 * a mapping starting at vaddr (X86PT_E_NOTMAPPED), then paddr against that
 * page: aligned to its size (X86PT_E_MISALIGNED), below MAXPHYADDR to its end
 * (X86PT_E_PHYSRANGE). */
x86pt_status_t x86pt_remap(struct x86pt *pt, x86pt_vaddr_t vaddr, x86pt_paddr_t paddr, unsigned flags,
                           struct x86pt_mapping *old, struct x86pt_flush *flush);

/* The mapping that contains vaddr. Resolves may run concurrently with each
 * other (they share the walk hint through single-word atomic accesses). */
x86pt_status_t x86pt_resolve(struct x86pt *pt, x86pt_vaddr_t vaddr, struct x86pt_mapping *out);

/* Clear the Accessed and/or Dirty bits (x86pt_ad_bit) of the mapping that starts
 * at vaddr, atomically (lock cmpxchg: the other bit and an update the MMU makes
 * meanwhile are kept); *was (may be NULL) receives the bits as they were. The
 * flush report names the page when a set Dirty bit was cleared (a TLB entry that
 * has seen the page dirty lets later writes through without setting D again);
 * when only a set Accessed bit was cleared it names the page with accessed_only. */
x86pt_status_t x86pt_test_and_clear_ad(struct x86pt *pt, x86pt_vaddr_t vaddr, unsigned bits, unsigned *was,
                                       struct x86pt_flush *flush);

/* Iteration, read-only: every mapping that meets [vaddr, vaddr + length) (the
 * range rules below; a huge page that straddles an end is reported whole), in
 * address order, and optionally every directory on the way, before what it maps.
 * A callback returning false stops the iteration (the call still returns
 * X86PT_OK). It reads entries as resolve does: run it beside resolves, not beside
 * a mutating call. */
struct x86pt_visitor {
    void *ctx;
    bool (*mapping)(void *ctx, const struct x86pt_mapping *m);
    bool (*directory)(void *ctx, x86pt_vaddr_t base, unsigned layer, x86pt_paddr_t pa); /* may be NULL */
};
x86pt_status_t x86pt_iterate(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length, const struct x86pt_visitor *v);

/*
 * Range operations. A range is [vaddr, vaddr + length): length a multiple of
 * 4 KiB (0 does nothing), not crossing the canonical hole. Each fills one
 * flush report; above X86PT_FLUSH_ALL_PAGES pages it sets flush_all (cheaper
 * than that many invlpg, the ceiling Linux uses).
 */
#define X86PT_FLUSH_ALL_PAGES 33u

enum x86pt_page_policy {
    X86PT_LARGEST_FIT = 0, /* the largest page that fits the alignment of both addresses */
    X86PT_ONLY_4K,
    X86PT_ONLY_2M,         /* both addresses and length must be 2 MiB-aligned */
    X86PT_ONLY_1G,
};

enum x86pt_straddle {
    X86PT_STRADDLE_FAIL = 0, /* a huge page straddling an end is an error */
    X86PT_STRADDLE_SPLIT,    /* split it into smaller pages of the same frames first */
};

/* Map the whole range, all or nothing: on an overlap or an allocation failure
 * anywhere the table is exactly as before and no frame is leaked. */
x86pt_status_t x86pt_map_range(struct x86pt *pt, x86pt_vaddr_t vaddr, x86pt_paddr_t paddr, uint64_t length,
                               unsigned flags, enum x86pt_page_policy policy, struct x86pt_flush *flush);

/* Remove every mapping inside the range (holes are fine); every directory
 * that empties is freed once, at once (x86pt_unmap_range_gather defers that).
 * A huge page straddling an end: X86PT_E_STRADDLE, or split first (may need
 * directories: X86PT_E_NOMEM with nothing changed). */
x86pt_status_t x86pt_unmap_range(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length,
                                 enum x86pt_straddle straddle, struct x86pt_flush *flush);

/* x86pt_unmap_range with deferred frees (the gather above; NULL: exactly
 * x86pt_unmap_range). The read-only first pass counts exactly the directories
 * the range will empty; X86PT_E_GATHER_FULL if the gather lacks room for them,
 * checked before any allocation or store. */
x86pt_status_t x86pt_unmap_range_gather(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length,
                                        enum x86pt_straddle straddle, struct x86pt_flush *flush,
                                        struct x86pt_gather *gather);

/* Set the flags (permissions and attributes, as x86pt_protect) of every mapping
 * inside the range, same straddle rule; a split keeps every bit of the page. */
x86pt_status_t x86pt_protect_range(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length, unsigned flags,
                                   enum x86pt_straddle straddle, struct x86pt_flush *flush);

/* The handle remembers the last page table it walked through. If anything but
 * this handle's own calls changes the tables (a debugger, a test editing
 * entries, a checker restoring a snapshot), call this before the next call. */
static inline void x86pt_forget_hint(struct x86pt *pt) { pt->walk_hint = 0; }

/* Physical address of the root, for CR3. */
static inline x86pt_paddr_t x86pt_root(const struct x86pt *pt) { return pt->root; }

#ifdef __cplusplus
}
#endif

#endif /* X86PT_X86PT_H */
