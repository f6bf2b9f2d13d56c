/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/metrics.c: the store's sums, the fold of a dead
 * worker's slot (counters kept, maxima kept, gauges dropped, the slot
 * cleared), series lookup and the `other` series past the route cap. The
 * test process plays both master and workers (metrics_bind() on slots).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/metrics.h"


static uint64_t
value(uint32_t id, enum metrics_family f, size_t idx)
{
    struct metrics_snapshot snap;
    uint64_t v;

    assert_int_equal(metrics_snapshot(&snap), 0);
    v = metrics_get(&snap, id, f, idx);
    metrics_snapshot_free(&snap);
    return v;
}


static void
test_before_open(void **state)
{
    struct metrics_snapshot snap;

    (void)state;
    /* Nothing is counted, nothing fails. */
    metrics_add(METRICS_GLOBAL, METRIC_PREREAD, 0, 1);
    metrics_bind(0, 1);
    assert_int_equal(metrics_series(METRICS_G_LISTEN, "x", NULL),
                     METRICS_NO_SERIES);
    assert_int_equal(metrics_snapshot(&snap), -1);
}


static void
test_count_fold(void **state)
{
    uint32_t ls;
    uint32_t srv;

    (void)state;
    assert_int_equal(metrics_open(), 0);
    ls = metrics_series(METRICS_G_LISTEN, "127.0.0.1:1", NULL);
    srv = metrics_series(METRICS_G_SERVER, "u", "127.0.0.1:2");
    assert_int_equal(metrics_series(METRICS_G_LISTEN, "127.0.0.1:1", NULL), ls);
    assert_int_not_equal(ls, srv);

    /* Two workers count. */
    metrics_bind(0, 100);
    metrics_add(METRICS_GLOBAL, METRIC_PREREAD, 2, 3);
    metrics_add(ls, METRIC_LISTEN_RX, 0, 1000);
    metrics_gauge(ls, METRIC_LISTEN_ACTIVE, 2);
    metrics_latest(srv, METRIC_UP_FAILED_UNTIL, 50);
    metrics_observe(srv, METRIC_UP_CONNECT, 7); /* bucket le=10 ms */
    metrics_bind(1, 101);
    metrics_add(METRICS_GLOBAL, METRIC_PREREAD, 2, 4);
    metrics_add(ls, METRIC_LISTEN_RX, 0, 24);
    metrics_gauge(ls, METRIC_LISTEN_ACTIVE, 1);
    metrics_latest(srv, METRIC_UP_FAILED_UNTIL, 40);
    /* A family of another group is not counted in this series. */
    metrics_add(ls, METRIC_UP_TRIES, 0, 9);

    assert_int_equal(value(METRICS_GLOBAL, METRIC_PREREAD, 2), 7);
    assert_int_equal(value(ls, METRIC_LISTEN_RX, 0), 1024);
    assert_int_equal(value(ls, METRIC_LISTEN_ACTIVE, 0), 3);
    assert_int_equal(value(srv, METRIC_UP_FAILED_UNTIL, 0), 50);
    assert_int_equal(value(srv, METRIC_UP_CONNECT, 2), 1);
    assert_int_equal(value(srv, METRIC_UP_CONNECT, METRICS_NBUCKETS), 7);
    assert_int_equal(value(ls, METRIC_UP_TRIES, 0), 0);

    /* Worker 0 dies: its counts stay, its gauge goes, its maximum stays. */
    metrics_fold(0);
    assert_int_equal(value(METRICS_GLOBAL, METRIC_PREREAD, 2), 7);
    assert_int_equal(value(ls, METRIC_LISTEN_RX, 0), 1024);
    assert_int_equal(value(ls, METRIC_LISTEN_ACTIVE, 0), 1);
    assert_int_equal(value(srv, METRIC_UP_FAILED_UNTIL, 0), 50);
    assert_int_equal(value(srv, METRIC_UP_CONNECT, 2), 1);

    /* A new worker in the slot starts from zero: no double count. */
    metrics_bind(0, 102);
    metrics_add(METRICS_GLOBAL, METRIC_PREREAD, 2, 1);
    assert_int_equal(value(METRICS_GLOBAL, METRIC_PREREAD, 2), 8);

    /* The master's own counters. */
    metrics_master_add(METRIC_RELOADS, 1, 2);
    metrics_master_set(METRIC_GENERATION, 5);
    assert_int_equal(value(METRICS_MASTER, METRIC_RELOADS, 1), 2);
    assert_int_equal(value(METRICS_MASTER, METRIC_GENERATION, 0), 5);
}


static void
test_route_cap(void **state)
{
    char key[32];
    uint32_t id = 0;

    (void)state;
    /* Route series stop at the cap; the rest share `other`. */
    for (int i = 0; i < METRICS_MAX_ROUTES + 10; i++) {
        snprintf(key, sizeof(key), "r%d", i);
        id = metrics_series(METRICS_G_ROUTE, "map $x", key);
    }
    assert_true(metrics_is_other(id));
    assert_false(metrics_is_other(METRICS_GLOBAL));
    assert_int_equal(value(METRICS_MASTER, METRIC_SERIES_OVERFLOW, 0), 10);
    snprintf(key, sizeof(key), "r%d", 3);
    assert_false(
        metrics_is_other(metrics_series(METRICS_G_ROUTE, "map $x", key)));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_open),
        cmocka_unit_test(test_count_fold),
        cmocka_unit_test(test_route_cap),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
