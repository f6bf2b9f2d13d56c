/* SPDX-License-Identifier: MIT */
/*
 * Upstream peer selection, following nginx's stream balancers
 * (ngx_stream_upstream_round_robin.c and the hash, least_conn and random
 * modules): the same choices for the same state, in milliseconds instead
 * of seconds. This file holds what every method shares: validation and
 * set-up, the per-session tried set, the primary/backup tiers, "all peers
 * failed" recovery and failure accounting; each method is in its own
 * balance_<method>.c. Peer indexes are positions in b->peers; the primary
 * set is [0, nprimary) and the backup set [nprimary, npeers), so one tried
 * bitmap covers both and nothing needs clearing when a session moves to
 * backups.
 *
 * Deviations from nginx: a session whose first pick finds every peer
 * failed has the fails cleared and picks again at once, instead of
 * answering 502; hash consistent clears fails in that case too (nginx's
 * chash does not); a consistent-hash walk stops early when no peer at all
 * is usable, rather than visiting every ring point to find that out.
 */

#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "stream/upstream/balance.h"
#include "stream/upstream/balance_impl.h"


static const char *balance_validate(const struct balancer *b);
static void balance_rewind(struct balancer *b, struct balance_try *t);
static struct balance_peer *
balance_pick_once(struct balancer *b, struct balance_try *t, int64_t now_ms);
static bool balance_revive(struct balancer *b, int64_t now_ms);
static struct balance_peer *
balance_pick_tiered(struct balancer *b, struct balance_try *t, int64_t now_ms);


void
balance_peer_defaults(struct balance_peer *p)
{
    p->weight = 1;
    p->max_fails = 1;
    p->fail_timeout_ms = 10000;
    p->max_conns = 0;
    p->backup = false;
    p->down = false;
}


const char *
balance_init(struct balancer *b)
{
    BUG_ON(b == NULL);

    b->nprimary = 0;
    b->single = false;
    b->total_weight = 0;
    b->rng = b->seed;
    b->ranges = NULL;
    b->ring = NULL;
    b->nring = 0;
    b->group_next = NULL;

    const char *err = balance_validate(b);
    if (err != NULL) {
        return err;
    }

    for (size_t i = 0; i < b->npeers; i++) {
        struct balance_peer *p = &b->peers[i];

        p->current_weight = 0;
        p->effective_weight = p->weight;
        p->fails = 0;
        p->checked_ms = 0;
        p->accessed_ms = 0;
        p->conns = 0;
        if (!p->backup) {
            b->nprimary++;
            b->total_weight += (uint32_t)p->weight;
        }
    }
    b->single = (b->npeers == 1);

    if (b->method == BALANCE_RANDOM) {
        b->ranges = malloc(b->nprimary * sizeof(*b->ranges));
        if (b->ranges == NULL) {
            return "out of memory";
        }
        uint32_t sum = 0;
        for (size_t i = 0; i < b->nprimary; i++) {
            b->ranges[i] = sum;
            sum += (uint32_t)b->peers[i].weight;
        }
    }

    if (b->method == BALANCE_HASH_CONSISTENT) {
        err = balance_build_ring(b);
        if (err != NULL) {
            balance_free(b);
            return err;
        }
    }

    return NULL;
}


void
balance_reweigh(struct balancer *b)
{
    uint32_t sum = 0;

    for (size_t i = 0; i < b->nprimary; i++) {
        if (b->ranges != NULL) {
            b->ranges[i] = sum;
        }
        sum += (uint32_t)b->peers[i].weight;
    }
    b->total_weight = sum;
}


/*
 * Checks what balance_init() documents; returns NULL or the static
 * message. The backup text is nginx's.
 */
static const char *
balance_validate(const struct balancer *b)
{
    if (b->method != BALANCE_RR && b->method != BALANCE_HASH &&
        b->method != BALANCE_HASH_CONSISTENT &&
        b->method != BALANCE_LEAST_CONN && b->method != BALANCE_RANDOM) {
        return "unknown balancing method";
    }
    if (b->npeers == 0 || b->peers == NULL) {
        return "no servers in upstream";
    }
    if (b->npeers > BALANCE_MAX_PEERS) {
        return "too many servers in upstream";
    }

    bool seen_backup = false;
    uint64_t total = 0;

    for (size_t i = 0; i < b->npeers; i++) {
        const struct balance_peer *p = &b->peers[i];

        if (p->weight < 1 || p->weight > BALANCE_MAX_WEIGHT) {
            return "invalid weight";
        }
        if (p->max_fails < 0) {
            return "invalid max_fails";
        }
        if (p->fail_timeout_ms < 0) {
            return "invalid fail_timeout";
        }
        if (p->backup) {
            if (b->method != BALANCE_RR && b->method != BALANCE_LEAST_CONN) {
                return "balancing method does not support parameter "
                       "\"backup\"";
            }
            seen_backup = true;
        } else {
            if (seen_backup) {
                return "backup servers must follow primary servers";
            }
            total += (uint64_t)p->weight;
        }
        if (b->method == BALANCE_HASH_CONSISTENT && p->name == NULL) {
            return "hash consistent needs a name for every server";
        }
    }

    if (total == 0) {
        return "no servers in upstream";
    }
    if (b->method == BALANCE_HASH_CONSISTENT &&
        total * BALANCE_POINTS_PER_WEIGHT > BALANCE_MAX_RING_POINTS) {
        return "total weight too large for hash consistent";
    }
    return NULL;
}


void
balance_free(struct balancer *b)
{
    if (b == NULL) {
        return;
    }
    free(b->ranges);
    b->ranges = NULL;
    free(b->ring);
    b->ring = NULL;
    b->nring = 0;
    free(b->group_next);
    b->group_next = NULL;
}


void
balance_try_init(struct balancer *b, struct balance_try *t, const char *key,
                 size_t keylen)
{
    BUG_ON(b == NULL || t == NULL);
    BUG_ON(key == NULL && keylen != 0);

    memset(t->tried, 0, sizeof(t->tried));
    t->use_backup = false;
    t->picks = 0;
    t->key_len = keylen;
    t->key_crc = 0;
    if (b->method == BALANCE_HASH || b->method == BALANCE_HASH_CONSISTENT) {
        t->key_crc = balance_crc32(key, keylen);
    }
    balance_rewind(b, t);
}


/*
 * Puts t's walk back at its start (hash position, draw counters, primary
 * set) without touching the tried set.
 */
static void
balance_rewind(struct balancer *b, struct balance_try *t)
{
    t->use_backup = false;
    t->hash_tries = 0;
    t->rehash = 0;
    t->hash = 0;
    if (b->method == BALANCE_HASH_CONSISTENT) {
        t->hash = (uint32_t)balance_ring_find(b, t->key_crc);
    }
}


struct balance_peer *
balance_pick(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    BUG_ON(b == NULL || t == NULL || b->npeers == 0);

    if (b->single) {
        /* As nginx's peers->single: the one peer is tried whatever its
         * failures, but never when down. */
        struct balance_peer *p = &b->peers[0];

        if (p->down || balance_is_full(p) || balance_is_tried(t, 0)) {
            return NULL;
        }
        balance_set_tried(t, 0);
        p->conns++;
        t->picks++;
        return p;
    }

    struct balance_peer *p = balance_pick_once(b, t, now_ms);

    /*
     * nginx reaches "all peers failed" only while the session still has
     * tries left, that is while some peer is untried; a session that has
     * tried everything simply ends.
     */
    if (p == NULL && t->picks < b->npeers) {
        const bool revived = balance_revive(b, now_ms);

        if (revived && t->picks == 0) {
            balance_rewind(b, t);
            p = balance_pick_once(b, t, now_ms);
        }
    }

    if (p != NULL) {
        p->conns++;
        t->picks++;
    }
    return p;
}


/* One selection with b's method; NULL when no peer is usable for t. */
static struct balance_peer *
balance_pick_once(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    switch (b->method) {
    case BALANCE_RR:
    case BALANCE_LEAST_CONN:
        return balance_pick_tiered(b, t, now_ms);
    case BALANCE_HASH:
    case BALANCE_HASH_CONSISTENT:
        /* nginx: an empty key has nothing to hash, so round-robin. */
        if (t->key_len == 0) {
            return balance_rr_select(b, t, 0, b->nprimary, now_ms);
        }
        return b->method == BALANCE_HASH ? balance_hash_pick(b, t, now_ms)
                                         : balance_chash_pick(b, t, now_ms);
    case BALANCE_RANDOM:
        return balance_random_pick(b, t, now_ms);
    }
    BUG_ON(1);
    return NULL;
}


/*
 * nginx's "all peers failed, mark them as live for quick recovery": clears
 * every peer's fails. Returns true when that made some peer usable again,
 * i.e. a peer not down was held back by its failures.
 */
static bool
balance_revive(struct balancer *b, int64_t now_ms)
{
    bool revived = false;

    for (size_t i = 0; i < b->npeers; i++) {
        struct balance_peer *p = &b->peers[i];

        if (!p->down && balance_is_failed(p, now_ms)) {
            revived = true;
        }
        p->fails = 0;
    }
    return revived;
}


/*
 * RR and LEAST_CONN: select from the primary set, and once that has
 * nothing usable, from the backup set for the rest of the session.
 */
static struct balance_peer *
balance_pick_tiered(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    const bool is_lc = (b->method == BALANCE_LEAST_CONN);

    if (!t->use_backup) {
        struct balance_peer *p =
            is_lc ? balance_lc_select(b, t, 0, b->nprimary, now_ms)
                  : balance_rr_select(b, t, 0, b->nprimary, now_ms);
        if (p != NULL || b->nprimary == b->npeers) {
            return p;
        }
        t->use_backup = true;
    }
    return is_lc ? balance_lc_select(b, t, b->nprimary, b->npeers, now_ms)
                 : balance_rr_select(b, t, b->nprimary, b->npeers, now_ms);
}


void
balance_connected(struct balancer *b, struct balance_peer *p)
{
    BUG_ON(b == NULL || p == NULL);
    BUG_ON(p < b->peers || p >= b->peers + b->npeers);

    /* nginx keeps no failure accounting for a single peer. */
    if (b->single) {
        return;
    }
    if (p->accessed_ms < p->checked_ms) {
        /* A pick opened a new fail_timeout window after the last failure,
         * and it worked: the peer is live again. */
        p->fails = 0;
    }
}


void
balance_release(struct balancer *b, struct balance_peer *p)
{
    BUG_ON(b == NULL || p == NULL);
    BUG_ON(p < b->peers || p >= b->peers + b->npeers);
    BUG_ON(p->conns == 0);

    p->conns--;
}


void
balance_done(struct balancer *b, struct balance_peer *p, bool failed,
             int64_t now_ms)
{
    BUG_ON(b == NULL || p == NULL);
    BUG_ON(p < b->peers || p >= b->peers + b->npeers);

    if (!failed) {
        balance_connected(b, p);
    } else if (!b->single) {
        /* nginx keeps no failure accounting for a single peer. */
        p->fails++;
        p->accessed_ms = now_ms;
        p->checked_ms = now_ms;
        if (p->max_fails > 0) {
            p->effective_weight -= p->weight / p->max_fails;
        }
        if (p->effective_weight < 0) {
            p->effective_weight = 0;
        }
    }
    balance_release(b, p);
}


/* Common bookkeeping of a selection: tried bit, fail_timeout window. */
void
balance_took(struct balance_peer *p, struct balance_try *t, size_t i,
             int64_t now_ms)
{
    balance_set_tried(t, i);
    if (now_ms - p->checked_ms > p->fail_timeout_ms) {
        p->checked_ms = now_ms;
    }
}


bool
balance_is_tried(const struct balance_try *t, size_t i)
{
    return (t->tried[i / 64] >> (i % 64)) & 1u;
}


void
balance_set_tried(struct balance_try *t, size_t i)
{
    t->tried[i / 64] |= (uint64_t)1 << (i % 64);
}


/* True while p has failed max_fails times within fail_timeout. */
bool
balance_is_failed(const struct balance_peer *p, int64_t now_ms)
{
    return p->max_fails > 0 && p->fails >= p->max_fails &&
           now_ms - p->checked_ms <= p->fail_timeout_ms;
}


/* True when p has as many connections as its max_conns allows. */
bool
balance_is_full(const struct balance_peer *p)
{
    return p->max_conns > 0 && p->conns >= p->max_conns;
}


/*
 * True when p may be picked: not down, not at max_conns and not held back
 * by failures.
 */
bool
balance_is_usable(const struct balance_peer *p, int64_t now_ms)
{
    return !p->down && !balance_is_full(p) && !balance_is_failed(p, now_ms);
}
