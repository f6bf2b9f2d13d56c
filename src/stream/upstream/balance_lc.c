/* SPDX-License-Identifier: MIT */
/*
 * least_conn (ngx_stream_upstream_least_conn_module.c): fewest connections
 * per unit of weight, ties settled by smooth round-robin.
 */

#include <stdbool.h>
#include <stdint.h>

#include "stream/upstream/balance.h"
#include "stream/upstream/balance_impl.h"


/*
 * least_conn over [lo, hi): the usable untried peer with the fewest
 * connections per unit of weight; several equal ones are settled by smooth
 * round-robin among them, starting from the first.
 */
struct balance_peer *
balance_lc_select(struct balancer *b, struct balance_try *t, size_t lo,
                  size_t hi, int64_t now_ms)
{
    struct balance_peer *best = NULL;
    size_t best_i = 0;
    bool has_many = false;

    for (size_t i = lo; i < hi; i++) {
        struct balance_peer *p = &b->peers[i];

        if (balance_is_tried(t, i) || !balance_is_usable(p, now_ms)) {
            continue;
        }
        if (best == NULL) {
            best = p;
            best_i = i;
            has_many = false;
            continue;
        }
        const uint64_t mine = (uint64_t)p->conns * (uint64_t)best->weight;
        const uint64_t theirs = (uint64_t)best->conns * (uint64_t)p->weight;
        if (mine < theirs) {
            best = p;
            best_i = i;
            has_many = false;
        } else if (mine == theirs) {
            has_many = true;
        }
    }

    if (best == NULL) {
        return NULL;
    }

    if (has_many) {
        struct balance_peer *const least = best;
        int total = 0;

        for (size_t i = best_i; i < hi; i++) {
            struct balance_peer *p = &b->peers[i];

            if (balance_is_tried(t, i) || !balance_is_usable(p, now_ms)) {
                continue;
            }
            if ((uint64_t)p->conns * (uint64_t)least->weight !=
                (uint64_t)least->conns * (uint64_t)p->weight) {
                continue;
            }
            p->current_weight += p->effective_weight;
            total += p->effective_weight;
            if (p->effective_weight < p->weight) {
                p->effective_weight++;
            }
            if (p->current_weight > best->current_weight) {
                best = p;
                best_i = i;
            }
        }
        best->current_weight -= total;
    }

    balance_took(best, t, best_i, now_ms);
    return best;
}
