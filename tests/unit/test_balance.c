/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for stream/balance: nginx's smooth weighted round-robin
 * sequence, passive health, backup, the tried set, hash (checked against
 * nginx's formula computed here independently), hash consistent
 * stability, least_conn, random and the balance_init() errors.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stream/upstream/balance.h"

#define TEST_MAX_PEERS 8

/* Not a peer index: a pick returned NULL. */
#define TEST_NONE ((size_t)-1)

static void peers_setup(struct balance_peer *peers, size_t n,
                        const int *weights);
static void balancer_setup(struct balancer *b, enum balance_method method,
                           struct balance_peer *peers, size_t n);
static size_t peer_index(const struct balancer *b,
                         const struct balance_peer *p);
static size_t session_once(struct balancer *b, const char *key, bool failed,
                           int64_t now_ms);
static uint32_t ref_crc32(const void *data, size_t len);
static size_t ref_hash_pick(const char *key, const int *weights, size_t n,
                            const bool *blocked);

static char test_names[TEST_MAX_PEERS][32];

/* Fills n peers with nginx defaults, names "10.0.0.<i+1>:80", weights. */
static void
peers_setup(struct balance_peer *peers, size_t n, const int *weights)
{
    memset(peers, 0, n * sizeof(*peers));
    for (size_t i = 0; i < n; i++) {
        snprintf(test_names[i], sizeof(test_names[i]), "10.0.0.%zu:80", i + 1);
        balance_peer_defaults(&peers[i]);
        peers[i].name = test_names[i];
        peers[i].weight = weights != NULL ? weights[i] : 1;
    }
}

static void
balancer_setup(struct balancer *b, enum balance_method method,
               struct balance_peer *peers, size_t n)
{
    memset(b, 0, sizeof(*b));
    b->method = method;
    b->peers = peers;
    b->npeers = n;
    b->seed = 42;
    assert_null(balance_init(b));
}

static size_t
peer_index(const struct balancer *b, const struct balance_peer *p)
{
    if (p == NULL) {
        return TEST_NONE;
    }
    assert_true(p >= b->peers && p < b->peers + b->npeers);
    return (size_t)(p - b->peers);
}

/* One session: one pick, reported at once. Returns the index or NONE. */
static size_t
session_once(struct balancer *b, const char *key, bool failed, int64_t now_ms)
{
    struct balance_try t;

    balance_try_init(b, &t, key, key != NULL ? strlen(key) : 0);
    struct balance_peer *p = balance_pick(b, &t, now_ms);
    if (p != NULL) {
        balance_done(b, p, failed, now_ms);
    }
    return peer_index(b, p);
}

/* Bitwise CRC-32, written apart from the module's nibble-table one. */
static uint32_t
ref_crc32(const void *data, size_t len)
{
    const unsigned char *s = data;
    uint32_t c = 0xffffffffu;

    for (size_t i = 0; i < len; i++) {
        c ^= s[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0xedb88320u : c >> 1;
        }
    }
    return c ^ 0xffffffffu;
}

/*
 * nginx's hash draw sequence (ngx_stream_upstream_get_hash_peer): sum of
 * ((crc32([rehash] key) >> 16) & 0x7fff), modulo the total weight, walked
 * over the weights; blocked peers cause another draw.
 */
static size_t
ref_hash_pick(const char *key, const int *weights, size_t n,
              const bool *blocked)
{
    uint32_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += (uint32_t)weights[i];
    }

    uint32_t sum = 0;
    for (unsigned r = 0; r <= 20; r++) {
        char buf[256];
        const int len = r == 0 ? snprintf(buf, sizeof(buf), "%s", key)
                               : snprintf(buf, sizeof(buf), "%u%s", r, key);
        sum += (ref_crc32(buf, (size_t)len) >> 16) & 0x7fff;

        uint32_t w = sum % total;
        size_t i = 0;
        while (w >= (uint32_t)weights[i]) {
            w -= (uint32_t)weights[i];
            i++;
        }
        if (!blocked[i]) {
            return i;
        }
    }
    return TEST_NONE;
}

/* nginx's documented smooth sequence for weights 5, 1, 1. */
static void
test_rr_smooth_sequence(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;
    const int weights[] = {5, 1, 1};

    peers_setup(peers, 3, weights);
    balancer_setup(&b, BALANCE_RR, peers, 3);

    const char *expect = "aabacaaaabacaa";
    for (size_t k = 0; expect[k] != '\0'; k++) {
        const size_t i = session_once(&b, NULL, false, 1000);
        assert_int_equal('a' + (int)i, expect[k]);
    }
    balance_free(&b);
}

static void
test_rr_down_skipped(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;

    peers_setup(peers, 3, NULL);
    peers[1].down = true;
    balancer_setup(&b, BALANCE_RR, peers, 3);

    size_t count[3] = {0};
    for (int k = 0; k < 30; k++) {
        const size_t i = session_once(&b, NULL, false, 1000);
        assert_int_not_equal(i, TEST_NONE);
        count[i]++;
    }
    assert_int_equal(count[0], 15);
    assert_int_equal(count[1], 0);
    assert_int_equal(count[2], 15);

    /* Down may change at run time: the peer comes back. */
    peers[1].down = false;
    count[1] = 0;
    for (int k = 0; k < 6; k++) {
        count[session_once(&b, NULL, false, 1000)]++;
    }
    assert_true(count[1] >= 1);
    balance_free(&b);
}

/* One failure (max_fails 1) takes a peer out for fail_timeout exactly. */
static void
test_rr_fail_timeout(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;

    peers_setup(peers, 2, NULL);
    balancer_setup(&b, BALANCE_RR, peers, 2);

    assert_int_equal(session_once(&b, NULL, true, 1000), 0);
    assert_int_equal(peers[0].fails, 1);
    assert_int_equal(peers[0].checked_ms, 1000);
    assert_int_equal(peers[0].accessed_ms, 1000);
    assert_int_equal(peers[0].effective_weight, 0);

    for (int64_t now = 1000; now <= 11000; now += 500) {
        assert_int_equal(session_once(&b, NULL, false, now), 1);
    }

    /* fail_timeout has passed: peer 0 is tried again and, as it works,
     * its fails are cleared. */
    size_t count0 = 0;
    for (int k = 0; k < 4; k++) {
        if (session_once(&b, NULL, false, 11001) == 0) {
            count0++;
        }
    }
    assert_true(count0 >= 1);
    assert_int_equal(peers[0].fails, 0);

    /* The window is inclusive, as nginx's "now - checked <= timeout":
     * exactly fail_timeout after the failure the peer is still out. */
    peers[0].fails = 1;
    peers[0].checked_ms = 50000;
    struct balance_try t;
    balance_try_init(&b, &t, NULL, 0);
    struct balance_peer *p = balance_pick(&b, &t, 60000);
    assert_ptr_equal(p, &peers[1]);
    assert_null(balance_pick(&b, &t, 60000));
    balance_done(&b, p, false, 60000);

    peers[0].fails = 1;
    peers[0].checked_ms = 50000;
    balance_try_init(&b, &t, NULL, 0);
    for (int k = 0; k < 2; k++) {
        p = balance_pick(&b, &t, 60001);
        assert_non_null(p);
        balance_done(&b, p, false, 60001);
    }
    balance_free(&b);
}

/*
 * A failed peer picked again after fail_timeout is live for every session
 * as soon as its connection is made, while that session still holds it;
 * balance_release() alone never clears failures.
 */
static void
test_connected_revives_before_release(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;
    struct balance_try t;

    peers_setup(peers, 2, NULL);
    balancer_setup(&b, BALANCE_RR, peers, 2);
    assert_int_equal(session_once(&b, NULL, true, 1000), 0);

    /* After the window, peer 0 is picked; its connect is still pending. */
    struct balance_peer *held = NULL;
    for (int k = 0; k < 4 && held == NULL; k++) {
        balance_try_init(&b, &t, NULL, 0);
        struct balance_peer *p = balance_pick(&b, &t, 11001);
        if (p == &peers[0]) {
            held = p;
        } else {
            balance_done(&b, p, false, 11001);
        }
    }
    assert_non_null(held);
    /* Not connected yet: still failed for the other sessions. */
    for (int k = 0; k < 3; k++) {
        assert_int_equal(session_once(&b, NULL, false, 11002), 1);
    }
    balance_connected(&b, held);
    assert_int_equal(peers[0].fails, 0);
    assert_int_equal(peers[0].conns, 1);
    size_t count0 = 0;
    for (int k = 0; k < 4; k++) {
        count0 += session_once(&b, NULL, false, 11003) == 0;
    }
    assert_true(count0 >= 1);
    balance_release(&b, held);
    assert_int_equal(peers[0].conns, 0);

    /* A release without a connect keeps the failure. */
    peers[0].fails = 1;
    peers[0].checked_ms = 20000;
    peers[0].accessed_ms = 20000;
    held = NULL;
    for (int k = 0; k < 4 && held == NULL; k++) {
        balance_try_init(&b, &t, NULL, 0);
        struct balance_peer *p = balance_pick(&b, &t, 31000);
        if (p == &peers[0]) {
            held = p;
        } else {
            balance_done(&b, p, false, 31000);
        }
    }
    assert_non_null(held);
    balance_release(&b, held);
    assert_int_equal(peers[0].fails, 1);
    balance_free(&b);
}

/* least_conn counts a peer until its pick is released, not connected. */
static void
test_least_conn_release(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;
    struct balance_try t1, t2, t3;

    peers_setup(peers, 2, NULL);
    balancer_setup(&b, BALANCE_LEAST_CONN, peers, 2);
    balance_try_init(&b, &t1, NULL, 0);
    struct balance_peer *p1 = balance_pick(&b, &t1, 1000);
    balance_connected(&b, p1);
    assert_int_equal(p1->conns, 1);
    balance_try_init(&b, &t2, NULL, 0);
    struct balance_peer *p2 = balance_pick(&b, &t2, 1000);
    assert_ptr_not_equal(p1, p2);
    /* p1's upstream closed: released while its session goes on. */
    balance_release(&b, p1);
    balance_try_init(&b, &t3, NULL, 0);
    assert_ptr_equal(balance_pick(&b, &t3, 1000), p1);
    balance_release(&b, p1);
    balance_release(&b, p2);
    balance_free(&b);
}

/* An empty hash key means round-robin, plain or consistent (nginx). */
static void
test_hash_empty_key_round_robin(void **state)
{
    (void)state;
    const enum balance_method methods[] = {BALANCE_HASH,
                                           BALANCE_HASH_CONSISTENT};

    for (size_t m = 0; m < 2; m++) {
        struct balance_peer peers[3];
        struct balancer b;

        peers_setup(peers, 3, NULL);
        balancer_setup(&b, methods[m], peers, 3);
        for (int k = 0; k < 9; k++) {
            assert_int_equal(session_once(&b, "", false, 1000), (size_t)k % 3);
        }
        /* NULL with length 0 is the same empty key. */
        assert_int_equal(session_once(&b, NULL, false, 1000), 0);
        /* A non-empty key still hashes: always the same peer. */
        const size_t first = session_once(&b, "key", false, 1000);
        for (int k = 0; k < 5; k++) {
            assert_int_equal(session_once(&b, "key", false, 1000), first);
        }
        balance_free(&b);
    }
}

/* max_conns: a full peer is skipped by every method; all full is NULL. */
static void
test_max_conns(void **state)
{
    (void)state;
    const enum balance_method methods[] = {
        BALANCE_RR, BALANCE_LEAST_CONN, BALANCE_HASH, BALANCE_HASH_CONSISTENT,
        BALANCE_RANDOM};

    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        struct balance_peer peers[2];
        struct balancer b;
        struct balance_try t[3];
        struct balance_peer *held[2];

        peers_setup(peers, 2, NULL);
        peers[0].max_conns = 1;
        peers[1].max_conns = 1;
        balancer_setup(&b, methods[m], peers, 2);
        for (size_t k = 0; k < 2; k++) {
            balance_try_init(&b, &t[k], "k", 1);
            held[k] = balance_pick(&b, &t[k], 1000);
            assert_non_null(held[k]);
        }
        assert_ptr_not_equal(held[0], held[1]);
        balance_try_init(&b, &t[2], "k", 1);
        assert_null(balance_pick(&b, &t[2], 1000));
        /* Full peers are not failed ones: nothing was revived. */
        assert_int_equal(peers[0].fails, 0);
        balance_release(&b, held[1]);
        balance_try_init(&b, &t[2], "k", 1);
        assert_ptr_equal(balance_pick(&b, &t[2], 1000), held[1]);
        balance_release(&b, held[1]);
        balance_release(&b, held[0]);
        balance_free(&b);
    }

    /* A single peer, too. */
    struct balance_peer one[1];
    struct balancer b;
    struct balance_try t1, t2;
    peers_setup(one, 1, NULL);
    one[0].max_conns = 1;
    balancer_setup(&b, BALANCE_RR, one, 1);
    balance_try_init(&b, &t1, NULL, 0);
    struct balance_peer *p = balance_pick(&b, &t1, 1000);
    assert_ptr_equal(p, &one[0]);
    balance_try_init(&b, &t2, NULL, 0);
    assert_null(balance_pick(&b, &t2, 1000));
    balance_release(&b, p);
    balance_free(&b);
}

static void
test_rr_max_fails(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;

    const int weights[] = {4, 1};

    peers_setup(peers, 2, weights);
    peers[0].max_fails = 2;
    peers[0].fail_timeout_ms = 5000;
    peers[1].max_fails = 0; /* never marked failed */
    balancer_setup(&b, BALANCE_RR, peers, 2);

    struct balance_try t;
    balance_try_init(&b, &t, NULL, 0);
    struct balance_peer *p = balance_pick(&b, &t, 100);
    assert_ptr_equal(p, &peers[0]);
    balance_done(&b, p, true, 100);
    /* One failure of two allowed: still usable, but effective weight
     * drops by weight / max_fails. */
    assert_int_equal(peers[0].effective_weight, 2);
    assert_int_equal(peers[0].fails, 1);

    /* Fail peer 0 whenever it comes: it is out after its second. */
    for (int k = 0; k < 10; k++) {
        balance_try_init(&b, &t, NULL, 0);
        p = balance_pick(&b, &t, 200);
        assert_non_null(p);
        balance_done(&b, p, p == &peers[0], 200);
    }
    assert_int_equal(peers[0].fails, 2);
    assert_int_equal(peers[0].checked_ms, 200);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(session_once(&b, NULL, false, 5000), 1);
    }

    /* max_fails 0: failures never take peer 1 out. */
    peers[1].fails = 100;
    assert_int_equal(session_once(&b, NULL, true, 5100), 1);
    balance_free(&b);
}

static void
test_single_peer(void **state)
{
    (void)state;
    struct balance_peer peers[1];
    struct balancer b;

    peers_setup(peers, 1, NULL);
    balancer_setup(&b, BALANCE_RR, peers, 1);

    for (int k = 0; k < 5; k++) {
        assert_int_equal(session_once(&b, NULL, true, 1000), 0);
    }
    assert_int_equal(peers[0].fails, 0);
    assert_int_equal(peers[0].conns, 0);

    struct balance_try t;
    balance_try_init(&b, &t, NULL, 0);
    struct balance_peer *p = balance_pick(&b, &t, 1000);
    assert_ptr_equal(p, &peers[0]);
    assert_int_equal(peers[0].conns, 1);
    assert_null(balance_pick(&b, &t, 1000));
    balance_done(&b, p, true, 1000);

    peers[0].down = true;
    assert_int_equal(session_once(&b, NULL, false, 1000), TEST_NONE);
    balance_free(&b);
}

static void
test_backup(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;

    peers_setup(peers, 3, NULL);
    peers[2].backup = true;
    balancer_setup(&b, BALANCE_RR, peers, 3);

    for (int k = 0; k < 100; k++) {
        assert_int_not_equal(session_once(&b, NULL, false, 1000), 2);
    }

    /* One session walks both primaries, then the backup, then ends. */
    struct balance_try t;
    balance_try_init(&b, &t, NULL, 0);
    bool seen[3] = {false, false, false};
    for (int k = 0; k < 2; k++) {
        struct balance_peer *p = balance_pick(&b, &t, 2000);
        const size_t i = peer_index(&b, p);
        assert_true(i < 2);
        assert_false(seen[i]);
        seen[i] = true;
        balance_done(&b, p, true, 2000);
    }
    struct balance_peer *p = balance_pick(&b, &t, 2000);
    assert_ptr_equal(p, &peers[2]);
    assert_true(t.use_backup);
    balance_done(&b, p, false, 2000);
    assert_null(balance_pick(&b, &t, 2000));

    /* Primaries are failed: new sessions go straight to the backup. */
    for (int k = 0; k < 5; k++) {
        assert_int_equal(session_once(&b, NULL, false, 3000), 2);
    }
    /* Until fail_timeout passes. */
    assert_true(session_once(&b, NULL, false, 12001) < 2);
    balance_free(&b);
}

static void
test_least_conn_backup(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;

    peers_setup(peers, 3, NULL);
    peers[0].down = true;
    peers[1].down = true;
    peers[2].backup = true;
    balancer_setup(&b, BALANCE_LEAST_CONN, peers, 3);
    assert_int_equal(session_once(&b, NULL, false, 1000), 2);
    peers[1].down = false;
    assert_int_equal(session_once(&b, NULL, false, 1000), 1);
    balance_free(&b);
}

/* nginx's "all peers failed, mark them as live" and our first-pick retry. */
static void
test_all_failed_revive(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;

    peers_setup(peers, 2, NULL);
    balancer_setup(&b, BALANCE_RR, peers, 2);

    /* A session tries both and both fail: it ends, fails stay. */
    struct balance_try t;
    balance_try_init(&b, &t, NULL, 0);
    for (int k = 0; k < 2; k++) {
        struct balance_peer *p = balance_pick(&b, &t, 1000);
        assert_non_null(p);
        balance_done(&b, p, true, 1000);
    }
    assert_null(balance_pick(&b, &t, 1000));
    assert_int_equal(peers[0].fails, 1);
    assert_int_equal(peers[1].fails, 1);

    /* The next session's first pick revives them and gets a peer. */
    balance_try_init(&b, &t, NULL, 0);
    struct balance_peer *p = balance_pick(&b, &t, 2000);
    assert_non_null(p);
    assert_int_equal(peers[0].fails, 0);
    assert_int_equal(peers[1].fails, 0);
    balance_done(&b, p, false, 2000);

    /* A later pick that finds only failed peers left returns NULL, but
     * marks them live for the next session. */
    balance_try_init(&b, &t, NULL, 0);
    p = balance_pick(&b, &t, 3000);
    assert_non_null(p);
    struct balance_peer *other = p == &peers[0] ? &peers[1] : &peers[0];
    other->fails = 1;
    other->checked_ms = 3000;
    assert_null(balance_pick(&b, &t, 3000));
    assert_int_equal(other->fails, 0);
    balance_done(&b, p, false, 3000);

    /* Down peers are not revived into use. */
    peers[0].down = true;
    peers[1].down = true;
    assert_int_equal(session_once(&b, NULL, false, 4000), TEST_NONE);
    balance_free(&b);
}

/* Within one session no peer comes twice, and the walk ends in NULL. */
static void
test_tried_never_repeats(void **state)
{
    (void)state;
    const enum balance_method methods[] = {
        BALANCE_RR,         BALANCE_HASH,   BALANCE_HASH_CONSISTENT,
        BALANCE_LEAST_CONN, BALANCE_RANDOM, BALANCE_RANDOM,
    };
    const int weights[] = {3, 1, 2, 1, 5};

    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        for (int with_down = 0; with_down < 2; with_down++) {
            struct balance_peer peers[5];
            struct balancer b;

            peers_setup(peers, 5, weights);
            peers[3].down = (with_down != 0);
            balancer_setup(&b, methods[m], peers, 5);
            b.random_two = (m == 5);

            for (int s = 0; s < 20; s++) {
                char key[16];
                snprintf(key, sizeof(key), "k%d", s);
                struct balance_try t;
                balance_try_init(&b, &t, key, strlen(key));

                bool seen[5] = {false};
                struct balance_peer *held[6];
                size_t n = 0;
                for (;;) {
                    struct balance_peer *p = balance_pick(&b, &t, 1000);
                    if (p == NULL) {
                        break;
                    }
                    const size_t i = peer_index(&b, p);
                    assert_false(seen[i]);
                    assert_false(peers[i].down);
                    seen[i] = true;
                    assert_true(n < 5);
                    held[n++] = p;
                }
                assert_int_equal(n, with_down ? 4 : 5);
                for (size_t k = 0; k < n; k++) {
                    balance_done(&b, held[k], s % 2 == 0, 1000);
                }
            }
            for (size_t i = 0; i < 5; i++) {
                assert_int_equal(peers[i].conns, 0);
            }
            balance_free(&b);
        }
    }
}

/* hash picks exactly what nginx's formula picks, also on rehash. */
static void
test_hash_matches_nginx(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;
    const int weights[] = {1, 2, 1};

    peers_setup(peers, 3, weights);
    balancer_setup(&b, BALANCE_HASH, peers, 3);

    bool blocked[3] = {false, false, false};
    for (int k = 0; k < 300; k++) {
        char key[64];
        snprintf(key, sizeof(key), "client-%d.example.net", k);
        const size_t want = ref_hash_pick(key, weights, 3, blocked);
        assert_int_equal(session_once(&b, key, false, 1000), want);
        assert_int_equal(session_once(&b, key, false, 1000), want);
    }

    /* Peer 1 down: its keys are rehashed with "1key", "2key", ... */
    peers[1].down = true;
    blocked[1] = true;
    size_t moved = 0;
    for (int k = 0; k < 300; k++) {
        char key[64];
        snprintf(key, sizeof(key), "client-%d.example.net", k);
        const size_t want = ref_hash_pick(key, weights, 3, blocked);
        assert_int_not_equal(want, TEST_NONE);
        assert_int_equal(session_once(&b, key, false, 1000), want);
        const bool none[3] = {false, false, false};
        if (ref_hash_pick(key, weights, 3, none) == 1) {
            moved++;
        }
    }
    assert_true(moved > 50);

    /* A retry in one session continues the draw sequence. */
    peers[1].down = false;
    struct balance_try t;
    const char *key = "retry-key";
    balance_try_init(&b, &t, key, strlen(key));
    struct balance_peer *p = balance_pick(&b, &t, 1000);
    const size_t first = peer_index(&b, p);
    const bool none[3] = {false, false, false};
    assert_int_equal(first, ref_hash_pick(key, weights, 3, none));
    balance_done(&b, p, true, 1000);
    bool tried[3] = {false, false, false};
    tried[first] = true;
    p = balance_pick(&b, &t, 1000);
    assert_int_equal(peer_index(&b, p), ref_hash_pick(key, weights, 3, tried));
    balance_done(&b, p, false, 1000);
    balance_free(&b);
}

static void
test_hash_distribution(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;
    const int weights[] = {1, 1, 2};

    peers_setup(peers, 3, weights);
    balancer_setup(&b, BALANCE_HASH, peers, 3);

    size_t count[3] = {0};
    for (int k = 0; k < 10000; k++) {
        char key[32];
        snprintf(key, sizeof(key), "key%d", k);
        count[session_once(&b, key, false, 1000)]++;
    }
    /* Expected 2500, 2500, 5000. */
    assert_in_range(count[0], 2100, 2900);
    assert_in_range(count[1], 2100, 2900);
    assert_in_range(count[2], 4400, 5600);
    balance_free(&b);
}

static void
test_chash_stability(void **state)
{
    (void)state;
    enum { NKEYS = 10000 };
    static size_t before[NKEYS];
    struct balance_peer peers[4];
    struct balancer b;

    peers_setup(peers, 4, NULL);
    balancer_setup(&b, BALANCE_HASH_CONSISTENT, peers, 4);

    size_t count[4] = {0};
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof(key), "sni-%d.example.com", k);
        before[k] = session_once(&b, key, false, 1000);
        assert_int_equal(session_once(&b, key, false, 1000), before[k]);
        count[before[k]]++;
    }
    for (size_t i = 0; i < 4; i++) {
        assert_in_range(count[i], NKEYS / 10, NKEYS * 4 / 10);
    }

    peers[2].down = true;
    size_t stayed = 0;
    size_t others = 0;
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        snprintf(key, sizeof(key), "sni-%d.example.com", k);
        const size_t now = session_once(&b, key, false, 1000);
        assert_int_not_equal(now, 2);
        assert_int_not_equal(now, TEST_NONE);
        if (before[k] != 2) {
            others++;
            if (now == before[k]) {
                stayed++;
            }
        }
    }
    assert_true(stayed * 100 >= others * 90);
    balance_free(&b);

    /* A different upstream order gives the same key->name mapping. */
    struct balance_peer swapped[4];
    peers_setup(swapped, 4, NULL);
    swapped[0].name = test_names[3];
    swapped[3].name = test_names[0];
    struct balancer b2;
    balancer_setup(&b2, BALANCE_HASH_CONSISTENT, swapped, 4);
    for (int k = 0; k < 200; k++) {
        char key[32];
        snprintf(key, sizeof(key), "sni-%d.example.com", k);
        const size_t i = session_once(&b2, key, false, 1000);
        assert_string_equal(swapped[i].name, test_names[before[k]]);
    }
    balance_free(&b2);
}

/* Peers sharing a name share ring points and take turns by weight. */
static void
test_chash_same_name(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;

    peers_setup(peers, 2, NULL);
    peers[1].name = peers[0].name;
    balancer_setup(&b, BALANCE_HASH_CONSISTENT, peers, 2);
    assert_int_equal(b.nring, 160);

    size_t count[2] = {0};
    for (int k = 0; k < 10; k++) {
        count[session_once(&b, "same-key", false, 1000)]++;
    }
    assert_int_equal(count[0], 5);
    assert_int_equal(count[1], 5);
    balance_free(&b);
}

static void
test_least_conn(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;

    /* Ties broken by round-robin. */
    peers_setup(peers, 3, NULL);
    balancer_setup(&b, BALANCE_LEAST_CONN, peers, 3);
    for (int k = 0; k < 9; k++) {
        assert_int_equal(session_once(&b, NULL, false, 1000), (size_t)k % 3);
    }

    /* Held sessions spread one per peer, then wrap. */
    struct balance_try t[6];
    struct balance_peer *held[6];
    for (size_t k = 0; k < 6; k++) {
        balance_try_init(&b, &t[k], NULL, 0);
        held[k] = balance_pick(&b, &t[k], 1000);
        assert_non_null(held[k]);
    }
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(peers[i].conns, 2);
    }
    /* The least loaded wins. */
    balance_done(&b, held[4], false, 1000);
    const size_t freed = peer_index(&b, held[4]);
    for (int k = 0; k < 3; k++) {
        struct balance_try u;
        balance_try_init(&b, &u, NULL, 0);
        struct balance_peer *p = balance_pick(&b, &u, 1000);
        assert_int_equal(peer_index(&b, p), freed);
        balance_done(&b, p, false, 1000);
    }
    for (size_t k = 0; k < 6; k++) {
        if (k != 4) {
            balance_done(&b, held[k], false, 1000);
        }
    }
    balance_free(&b);

    /* Weighted: conns per unit of weight. */
    const int weights[] = {1, 3, 1};
    peers_setup(peers, 3, weights);
    balancer_setup(&b, BALANCE_LEAST_CONN, peers, 3);
    peers[0].conns = 2;
    peers[1].conns = 3;
    peers[2].conns = 2;
    assert_int_equal(session_once(&b, NULL, false, 1000), 1);

    /* Holding 50 picks lands them in proportion to weight. */
    peers[0].conns = 0;
    peers[1].conns = 0;
    peers[2].conns = 0;
    for (int k = 0; k < 50; k++) {
        struct balance_try u;
        balance_try_init(&b, &u, NULL, 0);
        assert_non_null(balance_pick(&b, &u, 1000));
    }
    assert_int_equal(peers[0].conns, 10);
    assert_int_equal(peers[1].conns, 30);
    assert_int_equal(peers[2].conns, 10);
    balance_free(&b);
}

static void
test_random(void **state)
{
    (void)state;
    struct balance_peer peers[4];
    struct balancer b;
    const int weights[] = {1, 1, 1, 3};

    peers_setup(peers, 4, weights);
    peers[1].down = true;
    balancer_setup(&b, BALANCE_RANDOM, peers, 4);
    peers[2].fails = 1;
    peers[2].checked_ms = 1000;

    size_t count[4] = {0};
    size_t seq[50];
    for (int k = 0; k < 4000; k++) {
        const size_t i = session_once(&b, NULL, false, 2000);
        assert_true(i == 0 || i == 3);
        count[i]++;
        if (k < 50) {
            seq[k] = i;
        }
    }
    /* Weights 1 and 3: about 1000 and 3000. */
    assert_in_range(count[0], 800, 1200);
    assert_in_range(count[3], 2800, 3200);
    balance_free(&b);

    /* The same seed replays the same choices. */
    peers_setup(peers, 4, weights);
    peers[1].down = true;
    balancer_setup(&b, BALANCE_RANDOM, peers, 4);
    peers[2].fails = 1;
    peers[2].checked_ms = 1000;
    for (int k = 0; k < 50; k++) {
        assert_int_equal(session_once(&b, NULL, false, 2000), seq[k]);
    }
    balance_free(&b);
}

static void
test_random_two(void **state)
{
    (void)state;
    struct balance_peer peers[2];
    struct balancer b;

    peers_setup(peers, 2, NULL);
    balancer_setup(&b, BALANCE_RANDOM, peers, 2);
    b.random_two = true;
    peers[0].conns = 100;
    for (int k = 0; k < 200; k++) {
        assert_int_equal(session_once(&b, NULL, false, 1000), 1);
    }
    peers[0].conns = 0;
    peers[1].conns = 100;
    for (int k = 0; k < 200; k++) {
        assert_int_equal(session_once(&b, NULL, false, 1000), 0);
    }
    balance_free(&b);

    /* The kept first draw is the one marked tried. */
    struct balance_peer three[3];
    peers_setup(three, 3, NULL);
    balancer_setup(&b, BALANCE_RANDOM, three, 3);
    b.random_two = true;
    three[0].conns = 50;
    for (int s = 0; s < 50; s++) {
        struct balance_try t;
        struct balance_peer *held[3];
        bool seen[3] = {false, false, false};

        balance_try_init(&b, &t, NULL, 0);
        for (size_t k = 0; k < 3; k++) {
            held[k] = balance_pick(&b, &t, 1000);
            const size_t i = peer_index(&b, held[k]);
            assert_true(i < 3);
            assert_false(seen[i]);
            seen[i] = true;
        }
        assert_null(balance_pick(&b, &t, 1000));
        for (size_t k = 0; k < 3; k++) {
            balance_done(&b, held[k], false, 1000);
        }
    }
    balance_free(&b);
}

static void
test_init_errors(void **state)
{
    (void)state;
    struct balance_peer peers[3];
    struct balancer b;

    memset(&b, 0, sizeof(b));
    peers_setup(peers, 3, NULL);
    b.peers = peers;

    b.npeers = 0;
    assert_string_equal(balance_init(&b), "no servers in upstream");

    b.npeers = BALANCE_MAX_PEERS + 1;
    assert_string_equal(balance_init(&b), "too many servers in upstream");

    b.npeers = 3;
    peers[1].weight = 0;
    assert_string_equal(balance_init(&b), "invalid weight");
    peers[1].weight = BALANCE_MAX_WEIGHT + 1;
    assert_string_equal(balance_init(&b), "invalid weight");
    peers[1].weight = 1;

    peers[2].backup = true;
    const enum balance_method no_backup[] = {
        BALANCE_HASH, BALANCE_HASH_CONSISTENT, BALANCE_RANDOM};
    for (size_t m = 0; m < 3; m++) {
        b.method = no_backup[m];
        assert_string_equal(
            balance_init(&b),
            "balancing method does not support parameter \"backup\"");
    }
    b.method = BALANCE_LEAST_CONN;
    assert_null(balance_init(&b));
    balance_free(&b);

    b.method = BALANCE_RR;
    peers[0].backup = true;
    assert_string_equal(balance_init(&b),
                        "backup servers must follow primary servers");
    peers[1].backup = true;
    assert_string_equal(balance_init(&b), "no servers in upstream");
    peers[0].backup = false;
    peers[1].backup = false;
    peers[2].backup = false;

    peers[0].max_fails = -1;
    assert_string_equal(balance_init(&b), "invalid max_fails");
    peers[0].max_fails = 1;
    peers[0].fail_timeout_ms = -1;
    assert_string_equal(balance_init(&b), "invalid fail_timeout");
    peers[0].fail_timeout_ms = 10000;

    b.method = BALANCE_HASH_CONSISTENT;
    peers[1].name = NULL;
    assert_string_equal(balance_init(&b),
                        "hash consistent needs a name for every server");
    peers[1].name = test_names[1];
    peers[1].weight = 200000;
    assert_string_equal(balance_init(&b),
                        "total weight too large for hash consistent");
    peers[1].weight = 1;

    b.method = (enum balance_method)99;
    assert_string_equal(balance_init(&b), "unknown balancing method");

    /* Success resets runtime state; free is idempotent. */
    b.method = BALANCE_HASH_CONSISTENT;
    peers[0].fails = 7;
    peers[0].conns = 3;
    peers[0].current_weight = 9;
    assert_null(balance_init(&b));
    assert_int_equal(peers[0].fails, 0);
    assert_int_equal(peers[0].conns, 0);
    assert_int_equal(peers[0].current_weight, 0);
    assert_int_equal(peers[0].effective_weight, 1);
    assert_non_null(b.ring);
    balance_free(&b);
    assert_null(b.ring);
    assert_null(b.group_next);
    balance_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rr_smooth_sequence),
        cmocka_unit_test(test_rr_down_skipped),
        cmocka_unit_test(test_rr_fail_timeout),
        cmocka_unit_test(test_connected_revives_before_release),
        cmocka_unit_test(test_least_conn_release),
        cmocka_unit_test(test_hash_empty_key_round_robin),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_rr_max_fails),
        cmocka_unit_test(test_single_peer),
        cmocka_unit_test(test_backup),
        cmocka_unit_test(test_least_conn_backup),
        cmocka_unit_test(test_all_failed_revive),
        cmocka_unit_test(test_tried_never_repeats),
        cmocka_unit_test(test_hash_matches_nginx),
        cmocka_unit_test(test_hash_distribution),
        cmocka_unit_test(test_chash_stability),
        cmocka_unit_test(test_chash_same_name),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_two),
        cmocka_unit_test(test_init_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
