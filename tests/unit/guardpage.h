/* SPDX-License-Identifier: MIT */
/*
 * Guard-page buffers for parser tests (picohttpparser's trick): data pages
 * followed by one PROT_NONE page, and test input copied so that its last
 * byte is the last byte before the guard. A parser that reads even one
 * byte past the input faults at once, without any sanitizer. The default
 * is the classic two pages (one data page + the guard); guardpage_init()
 * takes a capacity for larger inputs. Header-only so any unit test can use
 * it; every function is static inline, so unused ones cost nothing.
 */
#ifndef SNIRELAY_TESTS_GUARDPAGE_H
#define SNIRELAY_TESTS_GUARDPAGE_H

#include <sys/mman.h>
#include <unistd.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One mapping: data pages [base, guard) then the PROT_NONE guard page. */
struct guardpage {
    uint8_t *base;  /* start of the mapping, or NULL when not mapped */
    uint8_t *guard; /* first byte of the PROT_NONE page */
    size_t map_len; /* bytes mapped: data pages + the guard page */
};

/*
 * Maps enough data pages for cap bytes (at least one) and a guard page
 * after them. Returns 0, or -1 if mmap() or mprotect() failed (g->base is
 * then NULL).
 */
static inline int
guardpage_init(struct guardpage *g, size_t cap)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t data_len = cap == 0 ? page : (cap + page - 1) / page * page;

    g->base = NULL;
    g->guard = NULL;
    g->map_len = data_len + page;
    void *const p = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return -1;
    }
    if (mprotect((uint8_t *)p + data_len, page, PROT_NONE) == -1) {
        munmap(p, g->map_len);
        return -1;
    }
    g->base = p;
    g->guard = g->base + data_len;
    return 0;
}

/* Bytes that guardpage_place() can hold. */
static inline size_t
guardpage_cap(const struct guardpage *g)
{
    return (size_t)(g->guard - g->base);
}

/*
 * Copies len bytes of data so they end flush against the guard page and
 * returns where they start (the guard itself when len is 0, which must
 * not be read). The copy is valid until the next place or free. Returns
 * NULL if len exceeds guardpage_cap().
 */
static inline const uint8_t *
guardpage_place(struct guardpage *g, const void *data, size_t len)
{
    if (len > guardpage_cap(g)) {
        return NULL;
    }
    uint8_t *const start = g->guard - len;
    if (len > 0) {
        memcpy(start, data, len);
    }
    return start;
}

/* Unmaps g; a g whose init failed, or one already freed, is a no-op. */
static inline void
guardpage_free(struct guardpage *g)
{
    if (g->base != NULL) {
        munmap(g->base, g->map_len);
    }
    g->base = NULL;
    g->guard = NULL;
    g->map_len = 0;
}

#endif
