/*
 * x86pt's extension: x86pt_adopt judged on images made from the table in the state. The seed
 * has no adopt (its page table is built by its own init and maps). x86pt.h's contract: adopt
 * takes a well-formed image (every pointer inside the count table's frames, no directory
 * reachable twice, no must-be-zero bit set in a present entry, directories granting every
 * permission), keeps its view, clears not-present garbage, unlinks and frees (zeroed) every
 * directory that maps nothing and sets the counts; it refuses any other image with
 * X86PT_E_MALFORMED and writes nothing, the count table included.
 *
 * The probe, like DestroyProbe, runs while no operation holds the lock, on a copy of the state
 * that is then dropped, so the step is a Stutter. Its images: the table as the workload built
 * it; the same with an empty directory and a not-present garbage word added in the root
 * (adopt must free the one and clear the other); and five hostile variants, one defect each
 * (SDM vol. 3A §4.5: PS is reserved in a PML4E, and bits MAXPHYADDR..51 of every present
 * entry; the rest are the contract's own rules).
 */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>
#include <string.h>

/* Root slots no workload address uses (the upper half starts at slot 256). */
#define SLOT_EXTRA 300u
#define SLOT_GARBAGE 301u
#define DIR_BITS (HW_BIT_P | HW_BIT_RW | HW_BIT_US)
#define NOT_PRESENT_GARBAGE UINT64_C(0x00000000deadb006)

const char *os_adopt_image_name(enum os_adopt_image i)
{
    static const char *const n[] = { "the table as it is", "with an empty directory and not-present garbage",
                                     "with PS set in a PML4 entry", "with a directory beyond the pool",
                                     "with a root entry pointing to the root",
                                     "with a directory entry without RW",
                                     "with a reserved address bit in its deepest present entry" };
    return (unsigned)i < sizeof n / sizeof n[0] ? n[i] : "?";
}

static bool hostile(enum os_adopt_image i) { return i >= OS_ADOPT_PS_IN_PML4E; }

/* The lowest pool frame that is free (not waiting for a shootdown), zeroed and taken out of
 * the pool in s, as a directory of the image; false if the pool is empty. */
static bool take_frame(const struct os_consts *c, struct os_vars *s, uint64_t *pa)
{
    for (unsigned f = c->pt_reserved; f < c->pt_frames; f++) {
        if (!os_bit(s->pt_free, f) || os_bit(s->pt_pending, f))
            continue;
        *pa = (uint64_t)f * HW_PAGE_SIZE;
        for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE)
            if (!hw_pmem_write(&s->hw.global_pt.mem, *pa + off, 0))
                return false;
        os_bit_clear(s->pt_free, f);
        return true;
    }
    return false;
}

/* The physical address of the deepest present entry met by descending through each
 * directory's first present entry from the root (the root's slot SLOT_EXTRA if it has none). */
static uint64_t deepest_present(const struct os_consts *c, const struct os_vars *s)
{
    const struct hw_pmem *m = &s->hw.global_pt.mem;
    uint64_t dir = s->hw.global_pt.cr3, found = dir + SLOT_EXTRA * HW_WORD_SIZE;
    for (unsigned layer = 0; layer < HW_NUM_LAYERS; layer++) {
        uint64_t pa = 0, e = 0;
        for (unsigned i = 0; i < HW_NUM_ENTRIES && !(e & HW_BIT_P); i++)
            e = hw_pmem_read(m, pa = dir + (uint64_t)i * HW_WORD_SIZE);
        if (!(e & HW_BIT_P))
            break;
        found = pa;
        struct hw_pde d = hw_pde_view(e, layer, c->hw.maxphyaddr);
        if (d.kind != HW_PDE_DIRECTORY || d.addr >= hw_pmem_bytes(m))
            break;
        dir = d.addr;
    }
    return found;
}

/* Make image i out of s's table (s: the scratch copy). false: i cannot be made here (why). */
static bool make_image(const struct os_consts *c, struct os_vars *s, enum os_adopt_image i, char *why, size_t len)
{
    struct hw_pmem *m = &s->hw.global_pt.mem;
    const uint64_t root = s->hw.global_pt.cr3, extra = root + SLOT_EXTRA * HW_WORD_SIZE;
    uint64_t frame;
    switch (i) {
    case OS_ADOPT_AS_IS:
        return true;
    case OS_ADOPT_UNTIDY:
        if (!take_frame(c, s, &frame))
            return model_refuse(why, len, "no free frame for the empty directory");
        return hw_pmem_write(m, extra, frame | DIR_BITS) &&
               hw_pmem_write(m, root + SLOT_GARBAGE * HW_WORD_SIZE, NOT_PRESENT_GARBAGE);
    case OS_ADOPT_PS_IN_PML4E:
        return hw_pmem_write(m, extra, HW_L1_ENTRY_SIZE | DIR_BITS | HW_BIT_PS);
    case OS_ADOPT_BEYOND_POOL:
        return hw_pmem_write(m, extra, (uint64_t)c->pt_frames * HW_PAGE_SIZE | DIR_BITS);
    case OS_ADOPT_RECURSIVE:
        return hw_pmem_write(m, extra, root | DIR_BITS);
    case OS_ADOPT_READ_ONLY_DIR:
        if (!take_frame(c, s, &frame))
            return model_refuse(why, len, "no free frame for the directory");
        return hw_pmem_write(m, extra, frame | HW_BIT_P | HW_BIT_US);
    case OS_ADOPT_RESERVED_BIT: {
        if (c->hw.maxphyaddr >= 52)
            return model_refuse(why, len, "MAXPHYADDR 52 reserves no address bit");
        uint64_t pa = deepest_present(c, s), e = hw_pmem_read(m, pa);
        if (!(e & HW_BIT_P))
            e = HW_L1_ENTRY_SIZE | DIR_BITS;
        return hw_pmem_write(m, pa, e | UINT64_C(1) << 51);
    }
    default:
        return model_refuse(why, len, "no such image");
    }
}

/* The directories reachable from the root (the root included), as a frame set. */
struct dirs_ctx {
    uint64_t *set;
};

static bool mark_dir(void *ctx, unsigned layer, uint64_t entry_pa, uint64_t vaddr, const struct hw_pde *pde,
                     const struct hw_pte *combined)
{
    (void)layer, (void)entry_pa, (void)vaddr, (void)combined;
    struct dirs_ctx *d = ctx;
    if (pde->kind == HW_PDE_DIRECTORY && pde->addr / HW_PAGE_SIZE < OS_PT_FRAMES_MAX)
        os_bit_set(d->set, pde->addr / HW_PAGE_SIZE);
    return true;
}

static bool reachable_dirs(const struct os_vars *s, unsigned maxphyaddr, uint64_t *set)
{
    struct hw_pt_view v = { hw_pmem_view(&s->hw.global_pt.mem), s->hw.global_pt.cr3, maxphyaddr };
    struct dirs_ctx d = { set };
    memset(set, 0, OS_PT_FRAMES_MAX / 8);
    os_bit_set(set, s->hw.global_pt.cr3 / HW_PAGE_SIZE);
    return hw_pt_visit(&v, mark_dir, &d, NULL) == HW_INTERP_OK;
}

/* A valid image after adopt (s) against before it (its view, its directories): the same view,
 * every directory given back that is no longer linked and none that is, and in every linked
 * directory no not-present garbage, the count of its present entries, and (but for the root)
 * at least one of them. */
static bool judge_valid(const struct os_consts *c, const struct os_vars *s, const struct os_lib_result *res,
                        const struct hw_interp *view0, const uint64_t *dirs0, const uint64_t *back, char *why,
                        size_t len)
{
    struct hw_interp view = { 0 };
    uint64_t dirs[OS_PT_FRAMES_MAX / 64];
    if (!res->ok)
        return model_refuse(why, len, "adopt refuses a well-formed image (%s)", os_pt_error_name(res->error));
    if (!os_interp_pt_mem(c, s, &view, why, len))
        return false;
    bool same = hw_interp_equal(view0, &view);
    hw_interp_fini(&view);
    if (!same)
        return model_refuse(why, len, "adopt changed the mappings of the table");
    if (!reachable_dirs(s, c->hw.maxphyaddr, dirs))
        return model_refuse(why, len, "adopt left a table that is not a tree");
    for (unsigned f = 0; f < c->pt_frames; f++) {
        uint64_t pa = (uint64_t)f * HW_PAGE_SIZE;
        if (os_bit(dirs0, f) && !os_bit(dirs, f) && !os_bit(back, f))
            return model_refuse(why, len, "adopt unlinked directory 0x%" PRIx64 " and kept it", pa);
        if (!os_bit(dirs, f))
            continue;
        if (os_bit(back, f))
            return model_refuse(why, len, "adopt gave back directory 0x%" PRIx64 ", which is still linked", pa);
        unsigned present = 0;
        for (uint64_t off = 0; off < HW_PAGE_SIZE; off += HW_WORD_SIZE) {
            uint64_t e = hw_pmem_read(&s->hw.global_pt.mem, pa + off);
            if (e && !(e & HW_BIT_P))
                return model_refuse(why, len, "adopt left not-present garbage 0x%" PRIx64 " at 0x%" PRIx64, e,
                                    pa + off);
            present += (e & HW_BIT_P) != 0;
        }
        if (res->counts[f] != present)
            return model_refuse(why, len, "adopt counts %u entries in directory 0x%" PRIx64 ", which has %u",
                                res->counts[f], pa, present);
        if (!present && pa != s->hw.global_pt.cr3)
            return model_refuse(why, len, "adopt kept directory 0x%" PRIx64 ", which maps nothing", pa);
    }
    return true;
}

/* A hostile image after adopt: refused as malformed, nothing written, nothing given back, the
 * count table as it was. */
static bool judge_hostile(const struct os_consts *c, const struct os_vars *s, const struct hw_pmem *image,
                          const struct os_lib_result *res, unsigned nfreed, char *why, size_t len)
{
    if (res->ok || res->error != OS_ERR_MALFORMED)
        return model_refuse(why, len, "adopt returns %s for a malformed image", os_pt_error_name(res->error));
    if (!hw_pmem_equal(image, &s->hw.global_pt.mem))
        return model_refuse(why, len, "adopt refused the image but wrote to it");
    if (nfreed)
        return model_refuse(why, len, "adopt refused the image but gave back %u directories", nfreed);
    for (unsigned f = 0; f < c->pt_frames; f++)
        if (res->counts[f] != s->pt_counts[f])
            return model_refuse(why, len, "adopt refused the image but left the count of frame 0x%" PRIx64
                                " at 0x%x (was 0x%x)", (uint64_t)f * HW_PAGE_SIZE, res->counts[f], s->pt_counts[f]);
    return true;
}

enum os_step_status os_step_adopt_probe(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                        struct os_vars *s2, char *why, size_t len)
{
    if (!os_table_idle(c, s1))
        return model_refuse(why, len, "an operation holds the kernel lock"), OS_STEP_DISABLED;
    enum os_adopt_image img = (enum os_adopt_image)st->adopt_image;
    struct os_vars s;
    if (!os_vars_copy(&s, s1))
        return OS_STEP_NOMEM;
    enum os_step_status r = OS_STEP_DISABLED;
    struct hw_interp view0 = { 0 };
    struct hw_pmem image;
    bool have_image = false;
    uint64_t dirs0[OS_PT_FRAMES_MAX / 64], back[OS_PT_FRAMES_MAX / 64] = { 0 };
    struct os_lib_result res;
    unsigned nfreed = 0;
    if (!make_image(c, &s, img, why, len))
        goto out;
    r = OS_STEP_NOMEM;
    if (!hw_pmem_copy(&image, &s.hw.global_pt.mem))
        goto out;
    have_image = true;
    r = OS_STEP_VIOLATION;
    if (!hostile(img) && (!os_interp_pt_mem(c, &s, &view0, why, len) || !reachable_dirs(&s, c->hw.maxphyaddr, dirs0)))
        goto out; /* the workload's table itself is malformed: the invariants say so too */
    memset(&res, 0, sizeof res);
    r = os_lib_adopt(c, &s, back, &nfreed, &res, why, len);
    st->nfreed = nfreed;
    if (r == OS_STEP_OK && !(hostile(img) ? judge_hostile(c, &s, &image, &res, nfreed, why, len)
                                          : judge_valid(c, &s, &res, &view0, dirs0, back, why, len)))
        r = OS_STEP_VIOLATION;
    if (r == OS_STEP_OK)
        r = os_vars_copy(s2, s1) ? OS_STEP_OK : OS_STEP_NOMEM;
out:
    if (r == OS_STEP_VIOLATION)
        st->check = OS_CHECKID_ADOPT;
    if (have_image)
        hw_pmem_fini(&image);
    hw_interp_fini(&view0);
    os_vars_fini(&s);
    return r;
}
