/* SPDX-License-Identifier: MIT */
/*
 * Owner-tagged counters in caller memory; see owned_counts.h.
 */

#include <string.h>

#include "core/owned_counts.h"


static size_t owned_home(const struct owned_counts *t, uint64_t key);
static size_t owned_dist(const struct owned_counts *t, size_t from,
                         size_t to);
static void owned_place(struct owned_slot *dst, uint64_t key, uint32_t owner,
                        uint32_t count);
static void owned_remove(struct owned_counts *t, size_t i);


struct owned_counts *
owned_counts_init(void *mem, size_t len)
{
    struct owned_counts *const t = mem;

    if (len < owned_counts_size(OWNED_COUNTS_PROBE_MAX)) {
        return NULL;
    }
    t->nslots = (len - sizeof(*t)) / sizeof(t->slots[0]);
    memset(t->slots, 0, t->nslots * sizeof(t->slots[0]));
    return t;
}


size_t
owned_counts_size(size_t nslots)
{
    return sizeof(struct owned_counts) + nslots * sizeof(struct owned_slot);
}


enum owned_counts_rc
owned_counts_take(struct owned_counts *t, uint64_t key, uint32_t owner,
                  uint32_t limit)
{
    const size_t home = owned_home(t, key);
    struct owned_slot *mine = NULL;
    struct owned_slot *empty = NULL;
    uint64_t total = 0;

    for (size_t d = 0; d < OWNED_COUNTS_PROBE_MAX && d < t->nslots; d++) {
        struct owned_slot *const sl = &t->slots[(home + d) % t->nslots];

        if (sl->key == 0) {
            empty = sl;
            break; /* the end of this key's cluster */
        }
        if (sl->key == key) {
            total += sl->count;
            if (sl->owner == owner) {
                mine = sl;
            }
        }
    }
    if (limit != 0 && total >= limit) {
        return OWNED_COUNTS_OVER;
    }
    if (mine != NULL) {
        mine->count++;
        return OWNED_COUNTS_OK;
    }
    if (empty == NULL) {
        return OWNED_COUNTS_FULL;
    }
    owned_place(empty, key, owner, 1);
    return OWNED_COUNTS_OK;
}


bool
owned_counts_give(struct owned_counts *t, uint64_t key, uint32_t owner)
{
    const size_t home = owned_home(t, key);

    for (size_t d = 0; d < OWNED_COUNTS_PROBE_MAX && d < t->nslots; d++) {
        const size_t i = (home + d) % t->nslots;
        struct owned_slot *const sl = &t->slots[i];

        if (sl->key == 0) {
            break;
        }
        if (sl->key == key && sl->owner == owner) {
            if (sl->count > 1) {
                sl->count--;
            } else {
                owned_remove(t, i);
            }
            return true;
        }
    }
    return false;
}


uint64_t
owned_counts_total(const struct owned_counts *t, uint64_t key)
{
    const size_t home = owned_home(t, key);
    uint64_t total = 0;

    for (size_t d = 0; d < OWNED_COUNTS_PROBE_MAX && d < t->nslots; d++) {
        const struct owned_slot *const sl = &t->slots[(home + d) % t->nslots];

        if (sl->key == 0) {
            break;
        }
        if (sl->key == key) {
            total += sl->count;
        }
    }
    return total;
}


uint64_t
owned_counts_reap(struct owned_counts *t, uint32_t owner)
{
    uint64_t freed = 0;

    /*
     * A removal shifts entries from ahead of i back into i and the holes
     * after it, never behind: looking at i again after each removal
     * visits every entry once.
     */
    for (size_t i = 0; i < t->nslots;) {
        struct owned_slot *const sl = &t->slots[i];

        if (sl->key != 0 && sl->owner == owner) {
            freed += sl->count;
            owned_remove(t, i);
            continue;
        }
        i++;
    }
    return freed;
}


void
owned_counts_repair(struct owned_counts *t, void *scratch)
{
    struct owned_counts *const old = scratch;
    const uint64_t n = t->nslots;

    if (old == NULL) {
        memset(t->slots, 0, n * sizeof(t->slots[0]));
        return;
    }
    memcpy(old, t, owned_counts_size(n));
    memset(t->slots, 0, n * sizeof(t->slots[0]));
    for (uint64_t i = 0; i < n; i++) {
        const struct owned_slot *const e = &old->slots[i];
        if (e->key == 0 || e->count == 0) {
            continue;
        }

        const size_t home = owned_home(t, e->key);

        /* A second copy of (key, owner) was left by a move cut short. */
        for (size_t d = 0; d < OWNED_COUNTS_PROBE_MAX && d < n; d++) {
            struct owned_slot *const sl = &t->slots[(home + d) % n];

            if (sl->key == 0) {
                owned_place(sl, e->key, e->owner, e->count);
                break;
            }
            if (sl->key == e->key && sl->owner == e->owner) {
                break;
            }
        }
    }
}


static size_t
owned_home(const struct owned_counts *t, uint64_t key)
{
    /* Keys are hashes already; mix once more so sequential keys spread. */
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)(key % t->nslots);
}


/* Slots from `from` forward to `to`, wrapping. */
static size_t
owned_dist(const struct owned_counts *t, size_t from, size_t to)
{
    return to >= from ? to - from : to + t->nslots - from;
}


static void
owned_place(struct owned_slot *dst, uint64_t key, uint32_t owner,
            uint32_t count)
{
    dst->owner = owner;
    dst->count = count;
    /* Occupied only once the rest is in place (see the header). */
    __atomic_store_n(&dst->key, key, __ATOMIC_RELEASE);
}


/*
 * Empties slot i and shifts back the entries after it that may move closer
 * to their home, so no lookup ever needs a tombstone.
 */
static void
owned_remove(struct owned_counts *t, size_t i)
{
    __atomic_store_n(&t->slots[i].key, 0, __ATOMIC_RELEASE);
    for (size_t j = (i + 1) % t->nslots; t->slots[j].key != 0;
         j = (j + 1) % t->nslots) {
        struct owned_slot *const sl = &t->slots[j];
        const size_t home = owned_home(t, sl->key);

        /* sl may fill the hole when the hole lies between home and j. */
        if (owned_dist(t, home, i) < owned_dist(t, home, j)) {
            owned_place(&t->slots[i], sl->key, sl->owner, sl->count);
            __atomic_store_n(&sl->key, 0, __ATOMIC_RELEASE);
            i = j;
        }
    }
}
