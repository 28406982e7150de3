/* A test-side walker over the raw tree, written apart from the library: lists
 * every mapping and checks the structural invariants the library promises. */
#ifndef X86PT_TESTS_TREE_H
#define X86PT_TESTS_TREE_H

#include "physmem.h"
#include "refmap.h"

struct tree_report {
    uint64_t dirs;          /* directories reached, root included */
    const char *violation;  /* NULL if every invariant holds */
    uint64_t where;         /* physical address of the offending entry */
};

/* Walks the tree at root in s; adds every mapping to out (if not NULL).
 * Invariants: directory entries are exactly addr|P|RW|US (A allowed); leaves have
 * PS at PDPT/PD, bit 7 clear at PT, no reserved bit under maxphyaddr; every
 * non-root directory maps something; used counts equal present entries; no
 * directory is reached twice. */
struct tree_report tree_scan(const struct sim_phys *s, uint64_t root, unsigned maxphyaddr, struct refmap *out);



/* Translate one address by walking the raw tree (no flags): true and *pa if
 * mapped. Independent of src/, like tree_scan. */
bool tree_translate(const struct sim_phys *s, uint64_t root, uint64_t va, uint64_t *pa);
#endif
