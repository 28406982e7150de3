#include "tree.h"

#include <stdlib.h>

/* SDM vol. 3A tables 4-14..4-20, spelled out independently of src/entry.h. */
#define P 0x1ull
#define RW 0x2ull
#define US 0x4ull
#define A 0x20ull
#define D 0x40ull
#define BIT7 0x80ull
#define PWT 0x8ull
#define PCD 0x10ull
#define G 0x100ull
#define PAT_HUGE 0x1000ull
#define SOFT_LOW (7ull << 9)      /* bits 11..9 */
#define SOFT_HIGH (0x7full << 52) /* bits 58..52 */
#define PKEY (15ull << 59)        /* bits 62..59 */
#define XD (1ull << 63)

/* x86pt.h's attribute word of a leaf: memory type PAT:PCD:PWT (SDM vol. 3A 11.12.3),
 * G, the protection key and the software field (bits 11..9 low, 58..52 high). */
static unsigned leaf_attributes(uint64_t v, unsigned level)
{
    uint64_t pat = level == 3 ? BIT7 : PAT_HUGE;
    unsigned type = ((v & PWT) ? 1u : 0u) | ((v & PCD) ? 2u : 0u) | ((v & pat) ? 4u : 0u);
    unsigned soft = (unsigned)((v >> 9) & 7) | (unsigned)((v >> 52) & 0x7f) << 3;
    return X86PT_MEMTYPE(type) | ((v & G) ? X86PT_GLOBAL : 0u) | X86PT_PKEY((v >> 59) & 15) | X86PT_SOFTWARE(soft);
}

struct scan {
    const struct sim_phys *s;
    unsigned width;
    struct refmap *out;
    uint8_t *seen;
    struct tree_report rep;
};

static void fail(struct scan *sc, const char *why, uint64_t where)
{
    if (!sc->rep.violation) {
        sc->rep.violation = why;
        sc->rep.where = where;
    }
}

static uint64_t sign_extend(uint64_t va) { return (uint64_t)((int64_t)(va << 16) >> 16); }

static void scan_dir(struct scan *sc, uint64_t dir, unsigned level, uint64_t va_base)
{
    static const unsigned shift[4] = {39, 30, 21, 12};
    if (dir + 4096 > sc->s->bytes) {
        fail(sc, "directory outside physical memory", dir);
        return;
    }
    if (sc->seen[dir / 4096]++) {
        fail(sc, "directory reached twice", dir);
        return;
    }
    sc->rep.dirs++;
    const uint64_t *e = (const uint64_t *)(sc->s->mem + dir);
    uint64_t addr_bits = ((1ull << sc->width) - 1) & ~0xfffull;
    unsigned present = 0;
    for (unsigned i = 0; i < 512; i++) {
        uint64_t v = e[i];
        uint64_t here = dir + 8 * i;
        if (v == 0)
            continue;
        if (!(v & P)) {
            fail(sc, "not-present entry with bits set", here);
            continue;
        }
        present++;
        uint64_t va = va_base + ((uint64_t)i << shift[level]);
        bool leaf = level == 3 || (level > 0 && (v & BIT7));
        if (!leaf) {
            if ((v & ~(addr_bits | A)) != (P | RW | US))
                fail(sc, "directory entry not exactly addr|P|RW|US", here);
            scan_dir(sc, v & addr_bits, level + 1, va);
            continue;
        }
        uint64_t size = 1ull << shift[level];
        uint64_t frame_bits = addr_bits & ~(size - 1);
        uint64_t allowed = frame_bits | P | RW | US | A | D | XD | BIT7 | PWT | PCD | G | SOFT_LOW | SOFT_HIGH | PKEY |
                           (level < 3 ? PAT_HUGE : 0);
        if (v & ~allowed)
            fail(sc, "reserved or unexpected bit in a leaf", here);
        if (sc->out) {
            struct x86pt_mapping m = {
                .base = x86pt_va(sign_extend(va)),
                .frame = x86pt_pa(v & frame_bits),
                .size = size,
                .flags = ((v & RW) ? X86PT_WRITABLE : 0) | ((v & US) ? X86PT_USER : 0) |
                         ((v & XD) ? X86PT_NO_EXECUTE : 0) | leaf_attributes(v, level),
            };
            refmap_insert(sc->out, m);
        }
    }
    if (sc->s->counts[dir / 4096] != present)
        fail(sc, "used count differs from present entries", dir);
    if (level > 0 && present == 0)
        fail(sc, "empty directory left linked", dir);
}

struct tree_report tree_scan(const struct sim_phys *s, uint64_t root, unsigned maxphyaddr, struct refmap *out)
{
    struct scan sc = {.s = s, .width = maxphyaddr, .out = out, .seen = calloc(s->frames, 1)};
    if (!sc.seen)
        abort();
    scan_dir(&sc, root, 0, 0);
    free(sc.seen);
    return sc.rep;
}

bool tree_translate(const struct sim_phys *s, uint64_t root, uint64_t va, uint64_t *pa)
{
    static const unsigned shift[4] = {39, 30, 21, 12};
    uint64_t dir = root;
    for (unsigned level = 0; level < 4; level++) {
        uint64_t v = ((const uint64_t *)(s->mem + dir))[(va >> shift[level]) & 511];
        if (!(v & P))
            return false;
        if (level == 3 || (level > 0 && (v & BIT7))) {
            uint64_t size = 1ull << shift[level];
            *pa = (v & 0x000ffffffffff000ull & ~(size - 1)) + (va & (size - 1));
            return true;
        }
        dir = v & 0x000ffffffffff000ull;
    }
    return false;
}
