/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/stream/split_clients.c: MurmurHash2 against values
 * computed by an independent implementation (the Python one in
 * tests/integration/test_split_clients.py), nginx's percentage syntax
 * (ngx_atofp with two decimals) on good and malformed input flush against a
 * guard page, the 100% total rule, the cumulative bounds, and the buckets of
 * the keys "1".."20" that nginx-tests stream_split_clients.t expects
 * (12 / 2 / 6 for 51.2% / 10% / `*`).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guardpage.h"
#include "stream/split_clients.h"


#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))


/* One known hash. */
struct hash_case {
    const char *text;
    uint32_t hash;
};

/* One percentage and the hundredths it reads as (-1: invalid). */
struct percent_case {
    const char *text;
    int64_t want;
};


static int setup_guard(void **state);
static int teardown_guard(void **state);
static void test_murmur2_known_values(void **state);
static void test_murmur2_reads_only_len_bytes(void **state);
static void test_percent(void **state);
static void test_finish_total(void **state);
static void test_finish_bounds(void **state);
static void test_find_nginx_tests_distribution(void **state);
static void test_find_below_hundred_percent(void **state);


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_known_values),
        cmocka_unit_test(test_murmur2_reads_only_len_bytes),
        cmocka_unit_test(test_percent),
        cmocka_unit_test(test_finish_total),
        cmocka_unit_test(test_finish_bounds),
        cmocka_unit_test(test_find_nginx_tests_distribution),
        cmocka_unit_test(test_find_below_hundred_percent),
    };
    return cmocka_run_group_tests(tests, setup_guard, teardown_guard);
}


static int
setup_guard(void **state)
{
    static struct guardpage g;

    if (guardpage_init(&g, 0) == -1) {
        return -1;
    }
    *state = &g;
    return 0;
}


static int
teardown_guard(void **state)
{
    guardpage_free(*state);
    return 0;
}


static void
test_murmur2_known_values(void **state)
{
    /* From an independent Python implementation of MurmurHash2, seed 0. */
    static const struct hash_case cases[] = {
        {"", 0x00000000},
        {"a", 0x92685f5e},
        {"ab", 0x1aa14063},
        {"abc", 0x13577c9b},
        {"abcd", 0x26873021},
        {"abcde", 0x5f09a8de},
        {"hello, world", 0x4b4c9d80},
        {"127.0.0.1", 0xb6131d91},
        {"1", 0x49342faf},
        {"2", 0x2e11797d},
        {"3", 0x889ff2e3},
    };
    struct guardpage *g = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const size_t len = strlen(cases[i].text);
        const void *p = guardpage_place(g, cases[i].text, len);
        const uint32_t h = split_clients_murmur2(p, len);
        if (h != cases[i].hash) {
            fail_msg("\"%s\": 0x%08x, want 0x%08x", cases[i].text, h,
                     cases[i].hash);
        }
    }
}


static void
test_murmur2_reads_only_len_bytes(void **state)
{
    (void)state;
    /* Bytes after len change nothing; bytes above 0x7f are unsigned. */
    assert_int_equal(split_clients_murmur2("abcdXYZ", 4),
                     split_clients_murmur2("abcd", 4));
    assert_int_not_equal(split_clients_murmur2("\xff\xfe\xfd", 3),
                         split_clients_murmur2("\x7f\x7e\x7d", 3));
}


static void
test_percent(void **state)
{
    static const struct percent_case cases[] = {
        {"51.2", 5120},  {"10", 1000},
        {"100", 10000},  {"0.01", 1},
        {".5", 50},      {"7.", 700},
        {"33.33", 3333}, {"100.00", 10000},
        {"200", 20000},  {"0", -1},
        {"0.00", -1},    {".", -1},
        {"", -1},        {"1.234", -1},
        {"1..2", -1},    {"1.2.3", -1},
        {"a", -1},       {"-1", -1},
        {"1e2", -1},     {" 1", -1},
        {"+1", -1},      {"99999999999999999999", -1},
    };
    struct guardpage *g = *state;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const size_t len = strlen(cases[i].text);
        const char *p = (const char *)guardpage_place(g, cases[i].text, len);
        const int64_t got = split_clients_percent(p, len);
        if (got != cases[i].want) {
            fail_msg("\"%s\": %lld, want %lld", cases[i].text, (long long)got,
                     (long long)cases[i].want);
        }
    }
}


static void
test_finish_total(void **state)
{
    struct split_clients_part p[4];
    struct split_clients sc = {p, 0};
    size_t bad = 99;

    (void)state;
    p[0] = (struct split_clients_part){5000, "a"};
    p[1] = (struct split_clients_part){5000, "b"};
    p[2] = (struct split_clients_part){0, "c"};
    sc.nparts = 3;
    assert_int_equal(split_clients_finish(&sc, &bad), 0);

    p[0] = (struct split_clients_part){6000, "a"};
    p[1] = (struct split_clients_part){4001, "b"};
    sc.nparts = 2;
    assert_int_equal(split_clients_finish(&sc, &bad), -1);
    assert_int_equal(bad, 1);

    /* `*` takes the rest: anything after it is over 100%. */
    p[0] = (struct split_clients_part){0, "a"};
    p[1] = (struct split_clients_part){1, "b"};
    assert_int_equal(split_clients_finish(&sc, &bad), -1);
    assert_int_equal(bad, 1);

    p[0] = (struct split_clients_part){10001, "a"};
    sc.nparts = 1;
    assert_int_equal(split_clients_finish(&sc, &bad), -1);
    assert_int_equal(bad, 0);

    /* Two stars are fine, as in nginx. */
    p[0] = (struct split_clients_part){0, "a"};
    p[1] = (struct split_clients_part){0, "b"};
    sc.nparts = 2;
    assert_int_equal(split_clients_finish(&sc, &bad), 0);
}


static void
test_finish_bounds(void **state)
{
    struct split_clients_part p[3] = {{5000, "a"}, {2500, "b"}, {2500, "c"}};
    struct split_clients sc = {p, 3};
    size_t bad = 0;

    (void)state;
    assert_int_equal(split_clients_finish(&sc, &bad), 0);
    /* Each share is rounded down on its own: 0xffffffff / 2, then / 4. */
    assert_int_equal(p[0].percent, 0x7fffffffu);
    assert_int_equal(p[1].percent, 0x7fffffffu + 0x3fffffffu);
    assert_int_equal(p[2].percent, 0x7fffffffu + 2 * 0x3fffffffu);
}


static void
test_find_nginx_tests_distribution(void **state)
{
    /* Buckets of "1".."20" from the Python reference implementation. */
    static const char want[] = "ffsffftfsfftftftftft";
    struct split_clients_part p[3] = {{5120, "f"}, {1000, "s"}, {0, "t"}};
    struct split_clients sc = {p, 3};
    size_t bad = 0;
    int count[3] = {0, 0, 0};

    (void)state;
    assert_int_equal(split_clients_finish(&sc, &bad), 0);
    for (int i = 1; i <= 20; i++) {
        char key[8];
        const int len = snprintf(key, sizeof(key), "%d", i);
        const char *v = split_clients_find(&sc, key, (size_t)len);
        assert_non_null(v);
        if (v[0] != want[i - 1]) {
            fail_msg("key \"%s\": bucket %s, want %c", key, v, want[i - 1]);
        }
        count[v[0] == 'f' ? 0 : v[0] == 's' ? 1 : 2]++;
    }
    assert_int_equal(count[0], 12);
    assert_int_equal(count[1], 2);
    assert_int_equal(count[2], 6);
}


static void
test_find_below_hundred_percent(void **state)
{
    /* 1% and no `*`: most keys fall in no part (nginx's empty value). */
    struct split_clients_part p[1] = {{100, "one"}};
    struct split_clients sc = {p, 1};
    struct split_clients empty = {NULL, 0};
    size_t bad = 0;
    int hits = 0;

    (void)state;
    assert_int_equal(split_clients_finish(&sc, &bad), 0);
    for (int i = 0; i < 1000; i++) {
        char key[8];
        const int len = snprintf(key, sizeof(key), "%d", i);
        const uint32_t h = split_clients_murmur2(key, (size_t)len);
        const char *v = split_clients_find(&sc, key, (size_t)len);
        /* The bound itself is outside: hash < bound. */
        assert_true((v != NULL) == (h < p[0].percent));
        hits += v != NULL;
    }
    assert_in_range(hits, 1, 50);
    assert_null(split_clients_find(&empty, "x", 1));
}
