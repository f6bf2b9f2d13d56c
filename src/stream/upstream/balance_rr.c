/* SPDX-License-Identifier: MIT */
/*
 * Smooth weighted round-robin, nginx's default method
 * (ngx_stream_upstream_round_robin.c); also the fallback of hash and
 * random after too many rejected draws.
 */

#include "stream/upstream/balance.h"
#include "stream/upstream/balance_impl.h"


/*
 * Smooth weighted round-robin over the usable untried peers in [lo, hi):
 * each adds its effective weight to its current weight, the largest
 * current weight wins (first on ties) and gives back the sum. Failed-down
 * effective weights regrow by one per round.
 */
struct balance_peer *
balance_rr_select(struct balancer *b, struct balance_try *t, size_t lo,
                  size_t hi, int64_t now_ms)
{
    struct balance_peer *best = NULL;
    size_t best_i = 0;
    int total = 0;

    for (size_t i = lo; i < hi; i++) {
        struct balance_peer *p = &b->peers[i];

        if (balance_is_tried(t, i) || !balance_is_usable(p, now_ms)) {
            continue;
        }
        p->current_weight += p->effective_weight;
        total += p->effective_weight;
        if (p->effective_weight < p->weight) {
            p->effective_weight++;
        }
        if (best == NULL || p->current_weight > best->current_weight) {
            best = p;
            best_i = i;
        }
    }

    if (best == NULL) {
        return NULL;
    }
    best->current_weight -= total;
    balance_took(best, t, best_i, now_ms);
    return best;
}
