/* SPDX-License-Identifier: MIT */
/*
 * random [two] (ngx_stream_upstream_random_module.c): draws in proportion
 * to weight from a splitmix64 generator seeded per upstream, so runs are
 * repeatable.
 */

#include <stdbool.h>
#include <stdint.h>

#include "stream/upstream/balance.h"
#include "stream/upstream/balance_impl.h"


static size_t balance_random_peek(struct balancer *b);
static uint64_t balance_random_next(struct balancer *b);


/*
 * random [two]: draw peers with probability proportional to weight,
 * redrawing tried or unusable ones; "two" draws a second, different peer
 * and keeps the one with fewer connections per unit of weight (the first
 * on ties). After 20 redraws the session goes round-robin.
 */
struct balance_peer *
balance_random_pick(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    struct balance_peer *first = NULL;
    size_t first_i = 0;

    while (t->hash_tries <= BALANCE_MAX_DRAWS) {
        const size_t i = balance_random_peek(b);
        struct balance_peer *p = &b->peers[i];

        if (p != first && !balance_is_tried(t, i) &&
            balance_is_usable(p, now_ms)) {
            if (!b->random_two) {
                balance_took(p, t, i, now_ms);
                return p;
            }
            if (first != NULL) {
                size_t pick_i = i;

                if ((uint64_t)p->conns * (uint64_t)first->weight >
                    (uint64_t)first->conns * (uint64_t)p->weight) {
                    p = first;
                    pick_i = first_i;
                }
                balance_took(p, t, pick_i, now_ms);
                return p;
            }
            first = p;
            first_i = i;
        }
        t->hash_tries++;
    }

    return balance_rr_select(b, t, 0, b->nprimary, now_ms);
}


/* Draws a primary peer index with probability proportional to weight. */
static size_t
balance_random_peek(struct balancer *b)
{
    const uint32_t x = (uint32_t)(balance_random_next(b) % b->total_weight);
    size_t lo = 0;
    size_t hi = b->nprimary;

    /* Last i with ranges[i] <= x; ranges[0] is 0. */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;

        if (x < b->ranges[mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return lo;
}


/* splitmix64: small, fast, and repeatable from b->seed. */
static uint64_t
balance_random_next(struct balancer *b)
{
    b->rng += 0x9e3779b97f4a7c15u;
    uint64_t z = b->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
