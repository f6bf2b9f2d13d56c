/* SPDX-License-Identifier: MIT */
/*
 * Bump allocator: blocks of at least 16 KiB chained in a list; a request
 * larger than a block gets a block of its own.
 */

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"


#define ARENA_BLOCK_SIZE (16 * 1024)


struct arena_block {
    struct arena_block *next; /* older block, or NULL */
    size_t cap;               /* bytes in data[] */
    size_t used;              /* bytes handed out from data[] */
    alignas(max_align_t) unsigned char data[];
};

struct arena {
    struct arena_block *head; /* block being filled, newest first */
};


struct arena *
arena_new(void)
{
    return calloc(1, sizeof(struct arena));
}


void *
arena_alloc(struct arena *a, size_t len)
{
    const size_t align = alignof(max_align_t);
    size_t need = (len + align - 1) & ~(align - 1);
    struct arena_block *b = a->head;

    if (need < len) {
        return NULL;
    }
    if (b == NULL || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK_SIZE ? need : ARENA_BLOCK_SIZE;

        b = malloc(sizeof(*b) + cap);
        if (b == NULL) {
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, len);
    return p;
}


char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);

    if (p != NULL) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}


void
arena_free(struct arena *a)
{
    if (a == NULL) {
        return;
    }
    struct arena_block *b = a->head;
    while (b != NULL) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
