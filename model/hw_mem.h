/*
 * Physical memory as a value (the model's own; shares nothing with src/ or include/).
 *
 * spec_t/hardware.rs keeps two memories in HWVariables: `mem` (word-indexed physical memory
 * that user threads read and write) and `global_pt` (spec_t/mem.rs PageTableMemory, the memory
 * the MMU walks). Both are a struct hw_pmem here.
 *
 * A hw_pmem is an array of pointers to immutable, reference-counted 4 KiB frames (NULL = an
 * all-zero frame), copied on write. So:
 *   - copying a memory is O(frames) pointer copies (no frame contents are copied);
 *   - every frame caches its hash, and the memory keeps a running hash that a word write
 *     updates in O(1), so hashing a memory is O(1);
 *   - equality compares hashes first, then frame pointers, then contents.
 * Reference counts are atomic, so that copies of one memory may live in different threads; a
 * single hw_pmem must not be written by two threads at once.
 *
 * A struct hw_mem_view is a read-only window for walking: either over a hw_pmem or over a flat
 * buffer (the fast path for a table the library built in sim/physmem's memory: pa is at
 * flat + pa).
 */
#ifndef X86PT_MODEL_HW_MEM_H
#define X86PT_MODEL_HW_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* definitions_t.rs: PAGE_SIZE, WORD_SIZE */
#define HW_PAGE_SIZE UINT64_C(4096)
#define HW_WORD_SIZE UINT64_C(8)
#define HW_WORDS_PER_FRAME 512u

/* One immutable frame. Read-only outside hw_mem.c. */
struct hw_frame {
    uint64_t hash;          /* hash of the contents (sum of hw_word_hash over the words) */
    _Atomic uint32_t refs;  /* number of hw_pmem slots pointing here */
    uint64_t words[HW_WORDS_PER_FRAME];
};

struct hw_pmem {
    uint64_t nframes;
    struct hw_frame **frames;  /* nframes slots; NULL stands for a zero frame */
    uint64_t hash;             /* running hash: sum over slots of hw_slot_hash(i, frame hash) */
};

/* Zeroed memory of `bytes` (rounded up to whole frames). False if out of host memory. */
bool hw_pmem_init(struct hw_pmem *m, uint64_t bytes);
/* Memory holding a copy of buf[0, bytes) (bytes rounded up; the rest zero). Zero frames of the
 * buffer take no space. False if out of host memory. */
bool hw_pmem_from_flat(struct hw_pmem *m, const void *buf, uint64_t bytes);
void hw_pmem_fini(struct hw_pmem *m);
/* dst becomes an equal, independent value (frames shared until written). False on OOM. */
bool hw_pmem_copy(struct hw_pmem *dst, const struct hw_pmem *src);

static inline uint64_t hw_pmem_bytes(const struct hw_pmem *m) { return m->nframes * HW_PAGE_SIZE; }

/* The word at physical address pa (8-byte aligned, < hw_pmem_bytes). */
uint64_t hw_pmem_read(const struct hw_pmem *m, uint64_t pa);
/* Store a word at pa (8-byte aligned, < hw_pmem_bytes); copies the frame first if it is
 * shared. False (memory unchanged) if out of host memory. */
bool hw_pmem_write(struct hw_pmem *m, uint64_t pa, uint64_t value);
/* Copy the whole memory out to a flat buffer of hw_pmem_bytes(m) bytes. */
void hw_pmem_to_flat(const struct hw_pmem *m, void *buf);

uint64_t hw_pmem_hash(const struct hw_pmem *m);
bool hw_pmem_equal(const struct hw_pmem *a, const struct hw_pmem *b);

/* A read-only window on physical memory [0, bytes). Exactly one of flat / frames is set. */
struct hw_mem_view {
    const uint8_t *flat;
    struct hw_frame *const *frames;
    uint64_t bytes;
};

static inline struct hw_mem_view hw_mem_view_flat(const void *buf, uint64_t bytes)
{
    struct hw_mem_view v = { (const uint8_t *)buf, NULL, bytes };
    return v;
}

static inline struct hw_mem_view hw_pmem_view(const struct hw_pmem *m)
{
    struct hw_mem_view v = { NULL, m->frames, hw_pmem_bytes(m) };
    return v;
}

/* Read the aligned word at pa; false (and *out = 0) if pa is outside the view. */
static inline bool hw_mem_view_read(const struct hw_mem_view *v, uint64_t pa, uint64_t *out)
{
    if (pa >= v->bytes || pa % HW_WORD_SIZE) {
        *out = 0;
        return false;
    }
    if (v->flat) {
        *out = *(const uint64_t *)(const void *)(v->flat + pa);
        return true;
    }
    const struct hw_frame *f = v->frames[pa / HW_PAGE_SIZE];
    *out = f ? f->words[(pa % HW_PAGE_SIZE) / HW_WORD_SIZE] : 0;
    return true;
}

/* A set of frames, one of each content, holding a reference to each: hw_pmem_intern makes m's
 * slots point to the set's frame of equal content (adding m's own when it has none), so that
 * many memories with equal pages keep one copy of each (the exhaustive search's queue). The
 * memory's value and hash do not change. False if out of host memory (m is then still valid). */
struct hw_frame_set {
    struct hw_frame **v;
    size_t cap, len;
};
bool hw_pmem_intern(struct hw_pmem *m, struct hw_frame_set *set);
void hw_frame_set_fini(struct hw_frame_set *set);

/* The words of the page at pa (page-aligned, inside the view), or NULL when it is all zero: a
 * directory scan reads them in a plain loop and skips an untouched page at once. */
static inline const uint64_t *hw_mem_view_page(const struct hw_mem_view *v, uint64_t pa)
{
    if (v->flat)
        return (const uint64_t *)(const void *)(v->flat + pa);
    const struct hw_frame *f = v->frames[pa / HW_PAGE_SIZE];
    return f ? f->words : NULL;
}

#endif /* X86PT_MODEL_HW_MEM_H */
