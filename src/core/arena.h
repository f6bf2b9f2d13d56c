/* SPDX-License-Identifier: MIT */
/*
 * Bump allocator for one configuration generation: everything a parsed
 * config owns is taken from its arena and given back in one arena_free().
 */
#ifndef SNIRELAY_CORE_ARENA_H
#define SNIRELAY_CORE_ARENA_H

#include <stddef.h>

struct arena;

/* Returns a new empty arena, or NULL when out of memory. */
struct arena *arena_new(void);

/*
 * Returns len bytes aligned for any type, zeroed, valid until arena_free(),
 * or NULL when out of memory.
 */
void *arena_alloc(struct arena *a, size_t len);

/* Copies len bytes of s and a NUL into the arena; NULL when out of memory. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/* Frees every block of the arena and the arena itself; NULL is a no-op. */
void arena_free(struct arena *a);

#endif
