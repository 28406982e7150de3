/* Iteration: every mapping that meets a range, in address order, read-only
 * (fork, teardown, debuggers, pagemap). */
#include "range.h"

struct iteration {
    struct range r;
    const struct x86pt_visitor *v;
};

/* A 48-bit address in canonical form. */
static uint64_t canonical(uint64_t va48) { return (uint64_t)((int64_t)(va48 << 16) >> 16); }

/* The slots of dir (at layer, first slot mapping base) inside the range, with the
 * permissions combined above it; false once a callback said stop. */
static bool visit_dir(struct x86pt *pt, const struct iteration *it, uint64_t dir, unsigned layer, uint64_t base,
                      unsigned flags)
{
    unsigned lo, hi;
    range_slots(&it->r, base, layer, &lo, &hi);
    const uint64_t *d = dir_at(pt, dir);
#if X86PT_MUTANT == 30 /* mutant 30 (check/mutants.def): the range's last slot of a directory is skipped */
    for (unsigned i = lo; i < hi; i++) {
#else
    for (unsigned i = lo; i <= hi; i++) {
#endif
        uint64_t e = entry_load(d, i);
        if (!entry_present(e))
            continue;
        uint64_t at = base + (uint64_t)i * layer_size(layer);
        unsigned here = flags_combine(flags, entry_flags(e));
        if (entry_is_page(e, layer)) {
            struct x86pt_mapping m = mapping_of(canonical(at), e, layer, here);
            if (!it->v->mapping(it->v->ctx, &m))
                return false;
            continue;
        }
        uint64_t sub = entry_addr(e, layer);
        if (it->v->directory && !it->v->directory(it->v->ctx, x86pt_va(canonical(at)), layer + 1, x86pt_pa(sub)))
            return false;
        if (!visit_dir(pt, it, sub, layer + 1, at, here))
            return false;
    }
    return true;
}

x86pt_status_t x86pt_iterate(struct x86pt *pt, x86pt_vaddr_t vaddr, uint64_t length, const struct x86pt_visitor *v)
{
    struct iteration it = { .v = v };
    if (!v || !v->mapping)
        return X86PT_E_INVAL;
    x86pt_status_t st = range_init(&it.r, vaddr.va, length);
    if (st != X86PT_OK || length == 0)
        return st;
    visit_dir(pt, &it, pt->root.pa, 0, 0, X86PT_WRITABLE | X86PT_USER);
    return X86PT_OK;
}
