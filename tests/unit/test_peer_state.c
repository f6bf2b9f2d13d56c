/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for stream/peer_state: two balancers ("workers") that load,
 * pick and store through one shared state array behave as one balancer
 * (smooth round-robin sequence, failures seen by both), and mending a
 * state a dead worker left half stored restores exact proportions.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "stream/upstream/balance.h"
#include "stream/peer_state.h"

#define NPEERS 3


struct worker {
    struct balance_peer peers[NPEERS];
    struct balancer b;
};


static void
worker_setup(struct worker *w, const int *weights)
{
    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < NPEERS; i++) {
        balance_peer_defaults(&w->peers[i]);
        w->peers[i].weight = weights[i];
        w->peers[i].name = "x";
    }
    w->b.method = BALANCE_RR;
    w->b.peers = w->peers;
    w->b.npeers = NPEERS;
    assert_null(balance_init(&w->b));
}


/* One session's first pick through the shared state; returns its index. */
static size_t
shared_pick(struct worker *w, struct peer_state *st, int64_t now_ms,
            bool failed)
{
    struct balance_try t;
    struct balance_peer *p;

    peer_state_load(w->peers, st, NPEERS);
    balance_try_init(&w->b, &t, NULL, 0);
    p = balance_pick(&w->b, &t, now_ms);
    assert_non_null(p);
    balance_done(&w->b, p, failed, now_ms);
    peer_state_store(st, w->peers, NPEERS);
    return (size_t)(p - w->peers);
}


static void
test_two_workers_make_one_smooth_sequence(void **state)
{
    static const int weights[NPEERS] = {5, 1, 1};
    struct worker one, two, alone;
    struct peer_state st[NPEERS];
    struct peer_state st_alone[NPEERS];

    (void)state;
    worker_setup(&one, weights);
    worker_setup(&two, weights);
    worker_setup(&alone, weights);
    peer_state_init(st, one.peers, NPEERS);
    peer_state_init(st_alone, alone.peers, NPEERS);
    assert_int_equal(st[0].weight, 5);
    assert_int_equal(st[0].effective_weight, 5);
    /* Alternating workers pick exactly what one balancer would. */
    for (int i = 0; i < 70; i++) {
        struct worker *w = (i % 3 == 0) ? &two : &one;
        const size_t got = shared_pick(w, st, 1000, false);
        const size_t want = shared_pick(&alone, st_alone, 1000, false);

        assert_int_equal(got, want);
    }
    balance_free(&one.b);
    balance_free(&two.b);
    balance_free(&alone.b);
}


static void
test_failure_in_one_worker_is_seen_by_the_other(void **state)
{
    static const int weights[NPEERS] = {1, 1, 1};
    struct worker one, two;
    struct peer_state st[NPEERS];

    (void)state;
    worker_setup(&one, weights);
    worker_setup(&two, weights);
    peer_state_init(st, one.peers, NPEERS);
    /* Worker one's first pick is peer 0, and it fails (max_fails 1). */
    assert_int_equal(shared_pick(&one, st, 1000, true), 0);
    assert_int_equal(st[0].fails, 1);
    /* Worker two, which never tried peer 0, skips it for fail_timeout. */
    for (int i = 0; i < 10; i++) {
        assert_int_not_equal(shared_pick(&two, st, 2000 + i, false), 0);
    }
    /* After fail_timeout (10s) it is picked again, once its effective
     * weight has regrown. */
    bool seen = false;
    for (int i = 0; i < 10; i++) {
        seen = seen || shared_pick(&two, st, 20000, false) == 0;
    }
    assert_true(seen);
    balance_free(&one.b);
    balance_free(&two.b);
}


static void
test_mend_restores_ranges_and_proportions(void **state)
{
    static const int weights[NPEERS] = {5, 1, 1};
    struct worker w;
    struct peer_state st[NPEERS];
    size_t counts[NPEERS] = {0};

    (void)state;
    worker_setup(&w, weights);
    peer_state_init(st, w.peers, NPEERS);
    /* What a worker killed between stores may leave. */
    st[0].current_weight = 1000;
    st[1].current_weight = -7;
    st[1].effective_weight = 9;
    st[2].effective_weight = -3;
    st[2].fails = -1;
    st[0].checked_ms = 1234;
    peer_state_mend(st, NPEERS);
    for (size_t i = 0; i < NPEERS; i++) {
        assert_int_equal(st[i].current_weight, 0);
        assert_true(st[i].effective_weight >= 0);
        assert_true(st[i].effective_weight <= st[i].weight);
        assert_true(st[i].fails >= 0);
    }
    assert_int_equal(st[1].effective_weight, 1);
    assert_int_equal(st[0].checked_ms, 1234); /* failure windows kept */
    /* Effective weights regrow; then each round of 7 is 5:1:1 exactly. */
    for (int i = 0; i < 7; i++) {
        shared_pick(&w, st, 1000, false);
    }
    for (int i = 0; i < 70; i++) {
        counts[shared_pick(&w, st, 1000, false)]++;
    }
    assert_int_equal(counts[0], 50);
    assert_int_equal(counts[1], 10);
    assert_int_equal(counts[2], 10);
    balance_free(&w.b);
}


static void
test_store_writes_back_what_the_balancer_changed(void **state)
{
    static const int weights[NPEERS] = {2, 1, 1};
    struct worker w;
    struct peer_state st[NPEERS];

    (void)state;
    worker_setup(&w, weights);
    peer_state_init(st, w.peers, NPEERS);
    w.peers[1].fails = 3;
    w.peers[1].checked_ms = 77;
    w.peers[1].accessed_ms = 66;
    w.peers[2].current_weight = -4;
    w.peers[2].effective_weight = 0;
    w.peers[0].conns = 9; /* not part of the shared state */
    peer_state_store(st, w.peers, NPEERS);
    assert_int_equal(st[1].fails, 3);
    assert_int_equal(st[1].checked_ms, 77);
    assert_int_equal(st[1].accessed_ms, 66);
    assert_int_equal(st[2].current_weight, -4);
    assert_int_equal(st[2].effective_weight, 0);
    memset(w.peers, 0, sizeof(w.peers));
    peer_state_load(w.peers, st, NPEERS);
    assert_int_equal(w.peers[1].fails, 3);
    assert_int_equal(w.peers[2].current_weight, -4);
    assert_int_equal(w.peers[0].effective_weight, 2);
    assert_int_equal(w.peers[0].conns, 0);
    w.b.npeers = NPEERS;
    balance_free(&w.b);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_workers_make_one_smooth_sequence),
        cmocka_unit_test(test_failure_in_one_worker_is_seen_by_the_other),
        cmocka_unit_test(test_mend_restores_ranges_and_proportions),
        cmocka_unit_test(test_store_writes_back_what_the_balancer_changed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
