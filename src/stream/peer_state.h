/* SPDX-License-Identifier: MIT */
/*
 * The run-time state of an upstream's servers as it is kept in a shared
 * zone (upstream `zone`), and its copies to and from a worker's balancer.
 * Pure: no locking, no I/O. The caller holds the zone's lock around a
 * load, the balance_*() call, and the store.
 *
 * Crash safety: every field is one aligned word, written by a single
 * store, so a worker killed between two stores leaves each field with an
 * old or a new value, never a torn one. What such a half-done store can
 * break (weights of one pick applied to some servers and not to others)
 * peer_state_mend() puts right. Active connections are not kept here: they
 * are owner-tagged counts (core/owned_counts), given back when a worker
 * dies.
 */
#ifndef SNIRELAY_STREAM_PEER_STATE_H
#define SNIRELAY_STREAM_PEER_STATE_H

#include <stddef.h>
#include <stdint.h>

struct balance_peer;

/* One server's shared state: balance_peer's run-time fields but conns. */
struct peer_state {
    int64_t checked_ms;       /* as balance_peer */
    int64_t accessed_ms;      /* as balance_peer */
    int32_t current_weight;   /* as balance_peer */
    int32_t effective_weight; /* as balance_peer */
    int32_t fails;            /* as balance_peer */
    int32_t weight;           /* the configured weight, for mending */
};

/* Starts n shared states from n freshly initialised peers. */
void peer_state_init(struct peer_state *st, const struct balance_peer *p,
                     size_t n);

/* Copies n shared states into the peers' run-time fields (not conns). */
void peer_state_load(struct balance_peer *p, const struct peer_state *st,
                     size_t n);

/* Copies the peers' run-time fields (not conns) back into n states. */
void peer_state_store(struct peer_state *st, const struct balance_peer *p,
                      size_t n);

/*
 * After a worker died holding the zone's lock: puts every value back in
 * its range (effective weight in 0..weight, fails not negative) and
 * restarts smooth round-robin (current weights 0), so a pick half stored
 * leaves no lasting bias. Failure windows are kept.
 */
void peer_state_mend(struct peer_state *st, size_t n);

#endif
