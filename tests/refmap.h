/* The plain reference for differential tests: a sorted array of mappings, with
 * the spec's overlap rule (definitions_t.rs: candidate_mapping_overlaps_existing_vmem).
 * Addresses are canonical virtual addresses. */
#ifndef X86PT_TESTS_REFMAP_H
#define X86PT_TESTS_REFMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86pt/x86pt.h"

struct refmap {
    struct x86pt_mapping *m;
    size_t n, cap;
};

void refmap_init(struct refmap *r);
void refmap_fini(struct refmap *r);
bool refmap_overlaps(const struct refmap *r, uint64_t base, uint64_t size);
/* The mapping starting exactly at base, or NULL. */
struct x86pt_mapping *refmap_at(const struct refmap *r, uint64_t base);
/* The mapping containing va, or NULL. */
const struct x86pt_mapping *refmap_containing(const struct refmap *r, uint64_t va);
void refmap_insert(struct refmap *r, struct x86pt_mapping m);
void refmap_remove(struct refmap *r, uint64_t base);

#endif
