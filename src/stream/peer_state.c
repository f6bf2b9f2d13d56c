/* SPDX-License-Identifier: MIT */
/*
 * Shared server state and its copies; see peer_state.h.
 */

#include "stream/peer_state.h"

#include "stream/upstream/balance.h"


void
peer_state_init(struct peer_state *st, const struct balance_peer *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        st[i].checked_ms = p[i].checked_ms;
        st[i].accessed_ms = p[i].accessed_ms;
        st[i].current_weight = p[i].current_weight;
        st[i].effective_weight = p[i].effective_weight;
        st[i].fails = p[i].fails;
        st[i].weight = p[i].weight;
    }
}


void
peer_state_load(struct balance_peer *p, const struct peer_state *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i].checked_ms = st[i].checked_ms;
        p[i].accessed_ms = st[i].accessed_ms;
        p[i].current_weight = st[i].current_weight;
        p[i].effective_weight = st[i].effective_weight;
        p[i].fails = st[i].fails;
    }
}


void
peer_state_store(struct peer_state *st, const struct balance_peer *p, size_t n)
{
    /* Only what changed: fewer stores for a death to cut short. */
    for (size_t i = 0; i < n; i++) {
        if (st[i].checked_ms != p[i].checked_ms) {
            st[i].checked_ms = p[i].checked_ms;
        }
        if (st[i].accessed_ms != p[i].accessed_ms) {
            st[i].accessed_ms = p[i].accessed_ms;
        }
        if (st[i].current_weight != p[i].current_weight) {
            st[i].current_weight = p[i].current_weight;
        }
        if (st[i].effective_weight != p[i].effective_weight) {
            st[i].effective_weight = p[i].effective_weight;
        }
        if (st[i].fails != p[i].fails) {
            st[i].fails = p[i].fails;
        }
    }
}


void
peer_state_mend(struct peer_state *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        st[i].current_weight = 0;
        if (st[i].effective_weight < 0) {
            st[i].effective_weight = 0;
        }
        if (st[i].effective_weight > st[i].weight) {
            st[i].effective_weight = st[i].weight;
        }
        if (st[i].fails < 0) {
            st[i].fails = 0;
        }
    }
}
