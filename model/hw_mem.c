/*
 * Physical memory values: copy-on-write frames with cached hashes (see hw_mem.h).
 *
 * Hashes are sums of independently mixed terms, so a word store changes a frame's hash and the
 * memory's hash in O(1): subtract the old term, add the new one. A zero word contributes 0, so
 * a NULL (zero) frame has hash 0 and needs no storage.
 */
#include "hw_mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64's finalizer: a cheap bijective mixer. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* Term of word `value` at index i of a frame; 0 for a zero word. */
static uint64_t word_term(unsigned i, uint64_t value)
{
    return value ? mix64(value ^ mix64(i + UINT64_C(0x9e3779b97f4a7c15))) : 0;
}

/* Term of a frame with hash h in slot i of a memory; 0 for a zero frame. */
static uint64_t slot_term(uint64_t i, uint64_t h)
{
    return h ? mix64(h + mix64(i ^ UINT64_C(0xd6e8feb86659fd93))) : 0;
}

static uint64_t frame_hash(const struct hw_frame *f)
{
    return f ? f->hash : 0;
}

static void frame_ref(struct hw_frame *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

static void frame_unref(struct hw_frame *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

static struct hw_frame *frame_new(const uint64_t *words)
{
    struct hw_frame *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    atomic_init(&f->refs, 1);
    f->hash = 0;
    if (words) {
        memcpy(f->words, words, sizeof f->words);
        for (unsigned i = 0; i < HW_WORDS_PER_FRAME; i++)
            f->hash += word_term(i, words[i]);
    } else {
        memset(f->words, 0, sizeof f->words);
    }
    return f;
}

bool hw_pmem_init(struct hw_pmem *m, uint64_t bytes)
{
    m->nframes = (bytes + HW_PAGE_SIZE - 1) / HW_PAGE_SIZE;
    m->hash = 0;
    m->frames = calloc(m->nframes ? m->nframes : 1, sizeof *m->frames);
    return m->frames != NULL;
}

static bool words_are_zero(const uint64_t *w)
{
    for (unsigned i = 0; i < HW_WORDS_PER_FRAME; i++)
        if (w[i])
            return false;
    return true;
}

bool hw_pmem_from_flat(struct hw_pmem *m, const void *buf, uint64_t bytes)
{
    if (!hw_pmem_init(m, bytes))
        return false;
    const uint8_t *src = buf;
    for (uint64_t i = 0; i < m->nframes; i++) {
        uint64_t words[HW_WORDS_PER_FRAME] = { 0 };
        uint64_t off = i * HW_PAGE_SIZE;
        uint64_t n = bytes - off < HW_PAGE_SIZE ? bytes - off : HW_PAGE_SIZE;
        memcpy(words, src + off, n);
        if (words_are_zero(words))
            continue;
        m->frames[i] = frame_new(words);
        if (!m->frames[i]) {
            hw_pmem_fini(m);
            return false;
        }
        m->hash += slot_term(i, m->frames[i]->hash);
    }
    return true;
}

void hw_pmem_fini(struct hw_pmem *m)
{
    if (m->frames)
        for (uint64_t i = 0; i < m->nframes; i++)
            frame_unref(m->frames[i]);
    free(m->frames);
    memset(m, 0, sizeof *m);
}

bool hw_pmem_copy(struct hw_pmem *dst, const struct hw_pmem *src)
{
    struct hw_frame **frames = malloc((src->nframes ? src->nframes : 1) * sizeof *frames);
    if (!frames)
        return false;
    for (uint64_t i = 0; i < src->nframes; i++) {
        frames[i] = src->frames[i];
        frame_ref(frames[i]);
    }
    dst->nframes = src->nframes;
    dst->frames = frames;
    dst->hash = src->hash;
    return true;
}

uint64_t hw_pmem_read(const struct hw_pmem *m, uint64_t pa)
{
    const struct hw_frame *f = m->frames[pa / HW_PAGE_SIZE];
    return f ? f->words[(pa % HW_PAGE_SIZE) / HW_WORD_SIZE] : 0;
}

bool hw_pmem_write(struct hw_pmem *m, uint64_t pa, uint64_t value)
{
    uint64_t slot = pa / HW_PAGE_SIZE;
    unsigned idx = (unsigned)((pa % HW_PAGE_SIZE) / HW_WORD_SIZE);
    struct hw_frame *f = m->frames[slot];
    uint64_t old = f ? f->words[idx] : 0;
    if (old == value)
        return true;
    /* A frame another memory also points to is immutable: write a private copy. */
    if (!f || atomic_load_explicit(&f->refs, memory_order_acquire) != 1) {
        struct hw_frame *copy = frame_new(f ? f->words : NULL);
        if (!copy)
            return false;
        frame_unref(f);
        m->frames[slot] = f = copy;
    }
    uint64_t old_hash = f->hash;
    f->words[idx] = value;
    f->hash = old_hash - word_term(idx, old) + word_term(idx, value);
    m->hash = m->hash - slot_term(slot, old_hash) + slot_term(slot, f->hash);
    return true;
}

void hw_pmem_to_flat(const struct hw_pmem *m, void *buf)
{
    uint8_t *dst = buf;
    for (uint64_t i = 0; i < m->nframes; i++) {
        if (m->frames[i])
            memcpy(dst + i * HW_PAGE_SIZE, m->frames[i]->words, HW_PAGE_SIZE);
        else
            memset(dst + i * HW_PAGE_SIZE, 0, HW_PAGE_SIZE);
    }
}

uint64_t hw_pmem_hash(const struct hw_pmem *m)
{
    return mix64(m->hash ^ m->nframes);
}

static bool frames_equal(const struct hw_frame *a, const struct hw_frame *b)
{
    if (a == b)
        return true;
    if (frame_hash(a) != frame_hash(b))
        return false;
    /* A frame that became all-zero after writes is equal to NULL. */
    if (!a || !b)
        return words_are_zero(a ? a->words : b->words);
    return memcmp(a->words, b->words, sizeof a->words) == 0;
}

bool hw_pmem_equal(const struct hw_pmem *a, const struct hw_pmem *b)
{
    if (a->nframes != b->nframes || a->hash != b->hash)
        return false;
    for (uint64_t i = 0; i < a->nframes; i++)
        if (!frames_equal(a->frames[i], b->frames[i]))
            return false;
    return true;
}

/* ---- interning: one copy of each page content among many memories ------------------------- */

static size_t set_slot(const struct hw_frame_set *t, uint64_t hash)
{
    return (size_t)mix64(hash) & (t->cap - 1);
}

static bool set_grow(struct hw_frame_set *t)
{
    size_t cap = t->cap ? 2 * t->cap : 1024;
    struct hw_frame **v = calloc(cap, sizeof *v);
    if (!v)
        return false;
    struct hw_frame_set n = { v, cap, t->len };
    for (size_t i = 0; i < t->cap; i++)
        if (t->v[i]) {
            size_t j = set_slot(&n, t->v[i]->hash);
            while (v[j])
                j = (j + 1) & (cap - 1);
            v[j] = t->v[i];
        }
    free(t->v);
    *t = n;
    return true;
}

bool hw_pmem_intern(struct hw_pmem *m, struct hw_frame_set *t)
{
    for (uint64_t i = 0; i < m->nframes; i++) {
        struct hw_frame *f = m->frames[i];
        if (!f)
            continue;
        if (2 * (t->len + 1) > t->cap && !set_grow(t))
            return false;
        size_t j = set_slot(t, f->hash);
        while (t->v[j] && !(t->v[j] == f || (t->v[j]->hash == f->hash &&
                                              !memcmp(t->v[j]->words, f->words, sizeof f->words))))
            j = (j + 1) & (t->cap - 1);
        if (!t->v[j]) { /* new content: the set keeps a reference */
            frame_ref(f);
            t->v[j] = f;
            t->len++;
        } else if (t->v[j] != f) {
            frame_ref(t->v[j]);
            m->frames[i] = t->v[j];
            frame_unref(f);
        }
    }
    return true;
}

void hw_frame_set_fini(struct hw_frame_set *t)
{
    for (size_t i = 0; i < t->cap; i++)
        frame_unref(t->v[i]);
    free(t->v);
    memset(t, 0, sizeof *t);
}
