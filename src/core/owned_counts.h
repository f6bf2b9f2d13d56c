/* SPDX-License-Identifier: MIT */
/*
 * Counts tagged with the process that holds them, in memory the caller
 * provides (a shared zone): how many sessions each worker holds per key
 * (limit_conn) or per upstream server (active connections). When a worker
 * dies, whatever it held is given back by removing its entries
 * (owned_counts_reap()), so a crash never leaks a count.
 *
 * Layout: an open-addressed table of {key, owner, count} slots, linear
 * probing, deletion by backward shift (no tombstones, so a table that has
 * seen every key stays as fast as a fresh one). An entry lives at most
 * OWNED_COUNTS_PROBE_MAX slots from its key's home slot, so every lookup
 * reads a bounded number of slots; an insert that would go farther finds
 * the table full. The total for a key is the sum of its owners' entries,
 * which sit together in that bounded window.
 *
 * Not locked here: the caller holds the zone's lock around every call.
 * Crash safety: a slot is occupied when its key is non-zero; key is
 * written last when an entry is placed and cleared first when one is
 * removed, so a holder that dies mid-call leaves at worst a duplicate or a
 * broken probe chain, which owned_counts_repair() mends.
 */
#ifndef SNIRELAY_CORE_OWNED_COUNTS_H
#define SNIRELAY_CORE_OWNED_COUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Farthest an entry may sit from its home slot. */
#define OWNED_COUNTS_PROBE_MAX 64

struct owned_slot {
    uint64_t key;   /* 0: empty; callers' keys are never 0 */
    uint32_t owner; /* pid of the process holding these */
    uint32_t count; /* > 0 while the slot is occupied */
};

struct owned_counts {
    uint64_t nslots;                /* slots[] entries */
    struct owned_slot slots[];
};

enum owned_counts_rc {
    OWNED_COUNTS_OK,   /* counted */
    OWNED_COUNTS_OVER, /* the key's total is already at the limit */
    OWNED_COUNTS_FULL, /* no free slot near the key's home: not counted */
};

/*
 * Lays an empty table over len bytes at mem (8-byte aligned). Returns it,
 * or NULL when len holds fewer than OWNED_COUNTS_PROBE_MAX slots.
 */
struct owned_counts *owned_counts_init(void *mem, size_t len);

/* Bytes needed for a table of nslots slots. */
size_t owned_counts_size(size_t nslots);

/*
 * Counts one more for (key, owner) unless the key's total over every
 * owner is already limit or more (limit 0: no limit). key must not be 0.
 */
enum owned_counts_rc owned_counts_take(struct owned_counts *t, uint64_t key,
                                       uint32_t owner, uint32_t limit);

/*
 * Gives one back for (key, owner); false when (key, owner) holds none (a
 * count already reaped, or a caller bug).
 */
bool owned_counts_give(struct owned_counts *t, uint64_t key, uint32_t owner);

/* The key's total over every owner. */
uint64_t owned_counts_total(const struct owned_counts *t, uint64_t key);

/* Removes every entry of owner (a dead worker); returns counts freed. */
uint64_t owned_counts_reap(struct owned_counts *t, uint32_t owner);

/*
 * After a holder died inside a call: rebuilds the table from its entries,
 * dropping duplicates of one (key, owner), so every entry is reachable
 * again. scratch must hold owned_counts_size(t->nslots) bytes; with NULL
 * the table is emptied instead (every count is lost, none is leaked).
 */
void owned_counts_repair(struct owned_counts *t, void *scratch);

#endif
