/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/owned_counts.c: counts per (key, owner) against
 * an independent model under long random sequences, limits, a full table,
 * reaping a dead owner's counts, and repair after a holder died inside a
 * call (a duplicate left by a move, a probe chain cut by a hole).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/owned_counts.h"


#define MODEL_KEYS 40
#define MODEL_OWNERS 5


/* The model: counts[key][owner], kept by plain arrays. */
struct model {
    uint32_t counts[MODEL_KEYS][MODEL_OWNERS];
};


static uint64_t rng_state = 88172645463325252ull;

static uint64_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}


static uint64_t
model_total(const struct model *m, size_t k)
{
    uint64_t sum = 0;

    for (size_t o = 0; o < MODEL_OWNERS; o++) {
        sum += m->counts[k][o];
    }
    return sum;
}


/* Keys chosen to collide: a small table makes long clusters. */
static uint64_t
key_of(size_t k)
{
    return 1000 + k * 7;
}


static struct owned_counts *
table_new(size_t nslots, void **mem)
{
    const size_t len = owned_counts_size(nslots);

    *mem = malloc(len);
    assert_non_null(*mem);
    return owned_counts_init(*mem, len);
}


static void
check_against_model(const struct owned_counts *t, const struct model *m)
{
    uint64_t slots_total = 0;

    for (size_t k = 0; k < MODEL_KEYS; k++) {
        assert_int_equal(owned_counts_total(t, key_of(k)), model_total(m, k));
    }
    for (size_t i = 0; i < t->nslots; i++) {
        if (t->slots[i].key != 0) {
            assert_true(t->slots[i].count > 0);
            slots_total += t->slots[i].count;
        }
    }
    uint64_t model_sum = 0;
    for (size_t k = 0; k < MODEL_KEYS; k++) {
        model_sum += model_total(m, k);
    }
    assert_int_equal(slots_total, model_sum);
}


static void
test_random_operations_match_the_model(void **state)
{
    void *mem;
    struct owned_counts *t = table_new(257, &mem);
    struct model m;

    (void)state;
    memset(&m, 0, sizeof(m));
    for (int step = 0; step < 200000; step++) {
        const size_t k = rng() % MODEL_KEYS;
        const size_t o = rng() % MODEL_OWNERS;
        const uint32_t limit = (uint32_t)(rng() % 6); /* 0: none */

        if (rng() % 3 != 0) {
            const enum owned_counts_rc rc =
                owned_counts_take(t, key_of(k), (uint32_t)o + 100, limit);
            if (limit != 0 && model_total(&m, k) >= limit) {
                assert_int_equal(rc, OWNED_COUNTS_OVER);
            } else {
                assert_int_equal(rc, OWNED_COUNTS_OK);
                m.counts[k][o]++;
            }
        } else {
            const bool held = m.counts[k][o] > 0;

            assert_int_equal(owned_counts_give(t, key_of(k), (uint32_t)o + 100),
                             held);
            if (held) {
                m.counts[k][o]--;
            }
        }
        if (step % 1000 == 0) {
            check_against_model(t, &m);
        }
        if (step % 25000 == 24999) {
            /* An owner dies now and then: all it held goes back. */
            const size_t dead = rng() % MODEL_OWNERS;
            uint64_t held = 0;

            for (size_t kk = 0; kk < MODEL_KEYS; kk++) {
                held += m.counts[kk][dead];
                m.counts[kk][dead] = 0;
            }
            assert_int_equal(owned_counts_reap(t, (uint32_t)dead + 100), held);
            check_against_model(t, &m);
        }
    }
    check_against_model(t, &m);
    free(mem);
}


static void
test_limit_counts_every_owner(void **state)
{
    void *mem;
    struct owned_counts *t = table_new(64, &mem);

    (void)state;
    assert_int_equal(owned_counts_take(t, 5, 1, 2), OWNED_COUNTS_OK);
    assert_int_equal(owned_counts_take(t, 5, 2, 2), OWNED_COUNTS_OK);
    assert_int_equal(owned_counts_take(t, 5, 3, 2), OWNED_COUNTS_OVER);
    assert_int_equal(owned_counts_take(t, 5, 1, 2), OWNED_COUNTS_OVER);
    assert_true(owned_counts_give(t, 5, 2));
    assert_false(owned_counts_give(t, 5, 2));
    assert_int_equal(owned_counts_take(t, 5, 3, 2), OWNED_COUNTS_OK);
    assert_int_equal(owned_counts_total(t, 5), 2);
    free(mem);
}


static void
test_full_table_refuses_and_recovers(void **state)
{
    void *mem;
    struct owned_counts *t = table_new(OWNED_COUNTS_PROBE_MAX, &mem);
    size_t taken = 0;

    (void)state;
    for (uint64_t k = 1; k <= 1000; k++) {
        const enum owned_counts_rc rc = owned_counts_take(t, k, 7, 0);

        assert_true(rc == OWNED_COUNTS_OK || rc == OWNED_COUNTS_FULL);
        taken += rc == OWNED_COUNTS_OK;
    }
    assert_int_equal(taken, t->nslots);
    assert_int_equal(owned_counts_take(t, 5000, 7, 0), OWNED_COUNTS_FULL);
    /* Giving back makes room again: no tombstones clog the table. */
    assert_int_equal(owned_counts_reap(t, 7), taken);
    for (uint64_t k = 2000; k < 2000 + t->nslots; k++) {
        assert_int_equal(owned_counts_take(t, k, 8, 0), OWNED_COUNTS_OK);
    }
    free(mem);
}


static void
test_churn_of_new_keys_stays_bounded(void **state)
{
    void *mem;
    struct owned_counts *t = table_new(1024, &mem);

    (void)state;
    /* Every key used once and given back: the table stays empty and every
     * lookup ends at the first empty slot. */
    for (uint64_t k = 1; k < 500000; k++) {
        assert_int_equal(owned_counts_take(t, k, 1, 1), OWNED_COUNTS_OK);
        assert_true(owned_counts_give(t, k, 1));
    }
    for (size_t i = 0; i < t->nslots; i++) {
        assert_int_equal(t->slots[i].key, 0);
    }
    free(mem);
}


static void
test_repair_drops_a_duplicate_and_mends_a_cut_chain(void **state)
{
    void *mem;
    struct owned_counts *t = table_new(97, &mem);
    void *scratch = malloc(owned_counts_size(t->nslots));
    size_t first = SIZE_MAX;

    (void)state;
    assert_non_null(scratch);
    /* A cluster of one key's owners. */
    for (uint32_t o = 1; o <= 6; o++) {
        assert_int_equal(owned_counts_take(t, 42, o, 0), OWNED_COUNTS_OK);
        assert_int_equal(owned_counts_take(t, 42, o, 0), OWNED_COUNTS_OK);
    }
    assert_int_equal(owned_counts_total(t, 42), 12);
    for (size_t i = 0; i < t->nslots; i++) {
        if (t->slots[i].key == 42 &&
            (first == SIZE_MAX || t->slots[(i + t->nslots - 1) % t->nslots]
                                          .key == 0)) {
            first = i;
        }
    }
    /* A holder died after clearing the cluster's first slot, before the
     * shift: the rest is unreachable from home. */
    const struct owned_slot lost = t->slots[first];
    t->slots[first].key = 0;
    assert_true(owned_counts_total(t, 42) < 10);
    /* And a copy of another entry sits in an empty slot far away. */
    const size_t next = (first + 1) % t->nslots;
    t->slots[(first + 40) % t->nslots] = t->slots[next];
    owned_counts_repair(t, scratch);
    assert_int_equal(owned_counts_total(t, 42), 12 - lost.count);
    /* The owner whose slot was cleared is reaped by the master anyway. */
    assert_int_equal(owned_counts_reap(t, lost.owner), 0);
    for (uint32_t o = 1; o <= 6; o++) {
        if (o != lost.owner) {
            assert_int_equal(owned_counts_reap(t, o), 2);
        }
    }
    assert_int_equal(owned_counts_total(t, 42), 0);
    /* Without scratch memory repair empties the table: nothing leaks. */
    assert_int_equal(owned_counts_take(t, 9, 1, 0), OWNED_COUNTS_OK);
    owned_counts_repair(t, NULL);
    assert_int_equal(owned_counts_total(t, 9), 0);
    free(scratch);
    free(mem);
}


static void
test_init_refuses_tiny_memory(void **state)
{
    uint64_t mem[8];

    (void)state;
    assert_null(owned_counts_init(mem, sizeof(mem)));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_the_model),
        cmocka_unit_test(test_limit_counts_every_owner),
        cmocka_unit_test(test_full_table_refuses_and_recovers),
        cmocka_unit_test(test_churn_of_new_keys_stays_bounded),
        cmocka_unit_test(test_repair_drops_a_duplicate_and_mends_a_cut_chain),
        cmocka_unit_test(test_init_refuses_tiny_memory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
