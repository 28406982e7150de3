/*
 * x86pt's extension of os.rs: calls the contract refuses (x86pt.h). A thread whose core is Idle
 * makes a call with exactly one bad argument while no operation holds the kernel lock (the
 * kernel takes it for every call). The contract says which error it returns and that it changes
 * nothing: the library must return exactly that error, may only load from the table, and leaves
 * its own state as it was. The high-level step is a Stutter.
 *
 * The argument rules, from x86pt.h (the model's own statement of them, one defect at a time: a
 * call with two defects names no error order, so the step is disabled for it):
 *   - a virtual address is canonical (bits 63..47 all equal); a range lies on one side of the
 *     canonical hole (its last byte canonical and on the first byte's side);
 *   - map: size is 4 KiB, 2 MiB or 1 GiB; vaddr and paddr are aligned to it; unmap, protect:
 *     vaddr 4 KiB-aligned; ranges: vaddr, paddr and length multiples of 4 KiB;
 *   - flags hold no unknown bit;
 *   - map, map_range: [paddr, paddr + size) lies below 2^MAXPHYADDR.
 */
#include "os_internal.h"
#include "why.h"

#include <inttypes.h>
#include <string.h>

const char *os_pt_error_name(enum os_pt_error e)
{
    static const char *const n[] = { "OK", "E_NONCANONICAL", "E_MISALIGNED", "E_BADSIZE", "E_BADFLAGS",
                                     "E_PHYSRANGE", "another error", "E_MALFORMED" };
    return (unsigned)e < sizeof n / sizeof n[0] ? n[e] : "?";
}

static bool canonical(uint64_t va) { return (uint64_t)((int64_t)(va << 16) >> 16) == va; }

/* The defects of the call, as a bit set of enum os_pt_error (1 << e). */
static unsigned defects(const struct os_consts *c, const struct os_pt_request *rq)
{
    const uint64_t K4 = HW_L3_ENTRY_SIZE, limit = UINT64_C(1) << c->hw.maxphyaddr;
    unsigned d = 0;
    bool maps = rq->op == OS_PT_MAP, flags = maps || rq->op == OS_PT_PROTECT;
    if (!canonical(rq->vaddr))
        d |= 1u << OS_ERR_NONCANONICAL;
    if (flags && rq->bad_flag)
        d |= 1u << OS_ERR_BADFLAGS;
    if (rq->range) {
        uint64_t last = rq->vaddr + rq->length - 1;
        if (canonical(rq->vaddr) && rq->length &&
            (last < rq->vaddr || !canonical(last) || ((rq->vaddr ^ last) >> 47)))
            d |= 1u << OS_ERR_NONCANONICAL;
        if ((rq->vaddr | rq->length | (maps ? rq->paddr : 0)) & (K4 - 1))
            d |= 1u << OS_ERR_MISALIGNED;
        if (maps && (rq->paddr >= limit || rq->length > limit - rq->paddr))
            d |= 1u << OS_ERR_PHYSRANGE;
        return d;
    }
    if (maps) {
        uint64_t size = rq->pte.frame.size, pa = rq->pte.frame.base;
        if (size != HW_L3_ENTRY_SIZE && size != HW_L2_ENTRY_SIZE && size != HW_L1_ENTRY_SIZE)
            return d | 1u << OS_ERR_BADSIZE; /* alignment is relative to a size */
        if ((rq->vaddr | pa) & (size - 1))
            d |= 1u << OS_ERR_MISALIGNED;
        if (pa >= limit || size > limit - pa)
            d |= 1u << OS_ERR_PHYSRANGE;
    } else if (rq->op != OS_PT_RESOLVE && (rq->vaddr & (K4 - 1))) {
        d |= 1u << OS_ERR_MISALIGNED;
    }
    return d;
}

enum os_step_status os_step_bad_call(const struct os_consts *c, const struct os_vars *s1, struct os_step *st,
                                     struct os_vars *s2, char *why, size_t len)
{
    if (!os_ult_ok(c, s1, st->ULT_id, why, len))
        return OS_STEP_DISABLED;
    if (!os_table_idle(c, s1))
        return model_refuse(why, len, "an operation holds the kernel lock"), OS_STEP_DISABLED;
    if (st->bad.range && st->bad.op == OS_PT_RESOLVE)
        return model_refuse(why, len, "no range resolve"), OS_STEP_DISABLED;
    unsigned d = defects(c, &st->bad);
    if (!d || (d & (d - 1)))
        return model_refuse(why, len, "not a call with exactly one bad argument"), OS_STEP_DISABLED;
    st->core = os_core_index(c, c->ULT2core[st->ULT_id]);
    st->bad_expected = (enum os_pt_error)__builtin_ctz(d);
    st->bad.raw = true;
    if (!os_vars_copy(s2, s1))
        return OS_STEP_NOMEM;
    struct os_lib_result res;
    enum os_step_status r = os_lib_call_readonly(c, s2, &st->bad, &res, why, len);
    st->bad_got = r == OS_STEP_OK ? res.error : OS_ERR_OTHER;
    if (r == OS_STEP_OK && (res.error != st->bad_expected || res.ok)) {
        model_refuse(why, len, "the call returns %s, but its one bad argument makes it %s", os_pt_error_name(res.error),
                     os_pt_error_name(st->bad_expected));
        r = OS_STEP_VIOLATION;
    } else if (r == OS_STEP_OK && (res.private_state != s1->pt_private ||
                                   memcmp(res.counts, s1->pt_counts, sizeof res.counts))) {
        model_refuse(why, len, "the refused call changed the library's own state");
        r = OS_STEP_VIOLATION;
    }
    if (r != OS_STEP_OK) {
        if (r == OS_STEP_VIOLATION)
            st->check = OS_CHECKID_BADCALL;
        os_vars_fini(s2);
    }
    return r;
}
