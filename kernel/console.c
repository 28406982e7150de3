/* Serial console (COM1, 16550), a small printf, exit through isa-debug-exit,
 * and the few libc functions the compiler and libx86pt may call. */
#include "kern.h"

#define COM1 0x3F8
#define DEBUG_EXIT_PORT 0xF4 /* -device isa-debug-exit,iobase=0xf4,iosize=4 */

static struct spinlock print_lock;

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int kstrcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

void spin_lock(struct spinlock *l)
{
    uint32_t me = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
    while (__atomic_load_n(&l->owner, __ATOMIC_ACQUIRE) != me)
        cpu_relax();
}

void spin_unlock(struct spinlock *l) { __atomic_store_n(&l->owner, l->owner + 1, __ATOMIC_RELEASE); }

void console_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts */
    outb(COM1 + 3, 0x80); /* DLAB */
    outb(COM1 + 0, 0x01); /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xC7); /* FIFO */
}

static void putc_raw(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

static void put_num(uint64_t v, unsigned base, int width, char pad, bool neg)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        buf[n++] = '-';
    while (n < width--)
        putc_raw(pad);
    while (n)
        putc_raw(buf[--n]);
}

/* %s %c %d %u %x %p, with l / ll and a zero-padded width. */
static void vprint(const char *f, va_list ap)
{
    for (; *f; f++) {
        if (*f != '%') {
            if (*f == '\n')
                putc_raw('\r');
            putc_raw(*f);
            continue;
        }
        f++;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*f == '0')
            pad = '0';
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        while (*f == 'l')
            longs++, f++;
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            while (*s)
                putc_raw(*s++);
            break;
        }
        case 'c':
            putc_raw((char)va_arg(ap, int));
            break;
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(v < 0 ? (uint64_t)-v : (uint64_t)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
            put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad, false);
            break;
        case 'x':
            put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad, false);
            break;
        case 'p':
            putc_raw('0'), putc_raw('x');
            put_num((uint64_t)va_arg(ap, void *), 16, 0, pad, false);
            break;
        default:
            putc_raw(*f);
        }
    }
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spin_lock(&print_lock);
    vprint(fmt, ap);
    spin_unlock(&print_lock);
    va_end(ap);
}

void qemu_exit(uint32_t code)
{
    outl(DEBUG_EXIT_PORT, code);
    for (;;)
        __asm__ volatile("cli; hlt");
}

void panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* No lock: the holder may be the core that panics. */
    vprint("PANIC: ", ap);
    vprint(fmt, ap);
    vprint("\n", ap);
    va_end(ap);
    qemu_exit(EXIT_FAIL);
}
