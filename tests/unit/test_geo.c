/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the tables of src/stream/geo.c: longest-prefix matching
 * over IPv4 and IPv6 networks, replacing and deleting networks, the
 * ranges rules nginx applies per /16 piece (add before, after, inside,
 * same start, same end, duplicate, overlap, delete across /16s) with
 * lookups at every boundary, source addresses given as text (including
 * text that is no address, which nginx looks up as 255.255.255.255), and
 * the range parser on good and malformed input placed flush against a
 * guard page (it is not NUL-terminated).
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/cidr.h"
#include "guardpage.h"
#include "stream/geo.h"


#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* An IPv4 address in host byte order from its four bytes. */
#define V4(a, b, c, d)                                                         \
    ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |          \
     (uint32_t)(d))


/* One lookup and the value (a string, or NULL) it must give. */
struct lookup {
    const char *addr; /* text */
    const char *want; /* NULL: no value */
};

/* A range text and whether geo_parse_range() must accept it. */
struct range_case {
    const char *text;
    bool ok;
    uint32_t start; /* when ok */
    uint32_t end;
};


static int setup(void **state);
static int teardown(void **state);
static struct geo *new_geo(void **state);
static void add_net(struct geo *g, const char *net, const char *value);
static void add_range(struct geo *g, uint32_t s, uint32_t e, const char *value);
static void check(const struct geo *g, const struct lookup *l, size_t n);
static void count_dup(void *data, const void *old_value);
static void test_cidr_longest_prefix(void **state);
static void test_cidr_replace_and_delete(void **state);
static void test_cidr_ipv6_and_mapped(void **state);
static void test_cidr_not_an_address(void **state);
static void test_cidr_unix_client(void **state);
static void test_ranges_must_come_first(void **state);
static void test_ranges_boundaries(void **state);
static void test_ranges_insert_rules(void **state);
static void test_ranges_duplicate_per_piece(void **state);
static void test_ranges_overlap(void **state);
static void test_ranges_delete(void **state);
static void test_ranges_ipv6(void **state);
static void test_ranges_many_ascending(void **state);
static void test_parse_range(void **state);


/* The test's arena and guard page. */
struct fixture {
    struct arena *arena;
    struct guardpage guard;
    int dups; /* count_dup() calls */
};


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cidr_longest_prefix, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cidr_replace_and_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cidr_ipv6_and_mapped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cidr_not_an_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cidr_unix_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_must_come_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ranges_boundaries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ranges_insert_rules, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ranges_duplicate_per_piece, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ranges_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges_many_ascending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parse_range, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}


static int
setup(void **state)
{
    static struct fixture f;

    memset(&f, 0, sizeof(f));
    f.arena = arena_new();
    if (f.arena == NULL || guardpage_init(&f.guard, 0) == -1) {
        return -1;
    }
    *state = &f;
    return 0;
}


static int
teardown(void **state)
{
    struct fixture *f = *state;

    arena_free(f->arena);
    guardpage_free(&f->guard);
    return 0;
}


static struct geo *
new_geo(void **state)
{
    struct fixture *f = *state;
    struct geo *g = geo_new(f->arena);

    assert_non_null(g);
    return g;
}


static void
add_net(struct geo *g, const char *net, const char *value)
{
    struct cidr c;

    assert_int_equal(cidr_parse(net, strlen(net), &c), 0);
    assert_int_equal(geo_net_add(g, &c, value, NULL), GEO_OK);
}


static void
add_range(struct geo *g, uint32_t s, uint32_t e, const char *value)
{
    uint32_t os = 0;
    uint32_t oe = 0;

    assert_int_equal(geo_range_add(g, s, e, value, NULL, NULL, &os, &oe),
                     GEO_OK);
}


static void
check(const struct geo *g, const struct lookup *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = geo_find_text(g, l[i].addr, strlen(l[i].addr));
        if (l[i].want == NULL) {
            if (got != NULL) {
                fail_msg("%s: want no value, got \"%s\"", l[i].addr, got);
            }
        } else if (got == NULL || strcmp(got, l[i].want) != 0) {
            fail_msg("%s: want \"%s\", got \"%s\"", l[i].addr, l[i].want,
                     got == NULL ? "(none)" : got);
        }
    }
}


static void
count_dup(void *data, const void *old_value)
{
    struct fixture *f = data;

    (void)old_value;
    f->dups++;
}


static void
test_cidr_longest_prefix(void **state)
{
    struct geo *g = new_geo(state);
    static const struct lookup l[] = {
        {"127.0.0.1", "one"},         {"127.0.0.2", "lo"},
        {"127.255.255.255", "lo"},    {"126.255.255.255", "world"},
        {"128.0.0.0", "world"},       {"10.1.0.0", "ten-one"},
        {"10.1.255.255", "ten-one"},  {"10.2.0.0", "ten"},
        {"10.0.0.0", "ten"},          {"0.0.0.0", "world"},
        {"255.255.255.255", "world"},
    };

    /* Added in an order where shorter prefixes come after longer ones. */
    add_net(g, "127.0.0.1", "one");
    add_net(g, "10.1.0.0/16", "ten-one");
    add_net(g, "127.0.0.0/8", "lo");
    add_net(g, "10.0.0.0/8", "ten");
    add_net(g, "0.0.0.0/0", "world");
    assert_int_equal(geo_finish(g), 0);
    check(g, l, N_ELEMS(l));
    assert_string_equal(geo_find_v4(g, V4(127, 0, 0, 1)), "one");
}


static void
test_cidr_replace_and_delete(void **state)
{
    struct geo *g = new_geo(state);
    const void *old = NULL;
    struct cidr c;

    add_net(g, "192.0.2.0/24", "test");
    add_net(g, "0.0.0.0/0", "world");
    assert_int_equal(cidr_parse("192.0.2.0/24", 12, &c), 0);
    assert_int_equal(geo_net_add(g, &c, "test2", &old), GEO_REPLACED);
    assert_string_equal(old, "test");

    /* Only the exact network is deleted; lookups fall back to /0. */
    assert_int_equal(cidr_parse("192.0.2.0/25", 12, &c), 0);
    assert_int_equal(geo_net_delete(g, &c), GEO_NOT_FOUND);
    assert_int_equal(cidr_parse("192.0.0.0/16", 12, &c), 0);
    assert_int_equal(geo_net_delete(g, &c), GEO_NOT_FOUND); /* inner node */
    assert_int_equal(cidr_parse("192.0.2.0/24", 12, &c), 0);
    assert_int_equal(geo_net_delete(g, &c), GEO_OK);
    assert_int_equal(geo_net_delete(g, &c), GEO_NOT_FOUND);
    assert_int_equal(cidr_parse("2001:db8::/32", 13, &c), 0);
    assert_int_equal(geo_net_delete(g, &c), GEO_NOT_FOUND); /* no v6 tree */
    assert_int_equal(geo_finish(g), 0);

    static const struct lookup l[] = {{"192.0.2.1", "world"}};
    check(g, l, N_ELEMS(l));

    /* Deleting the /0 leaves no value at all: the caller's default. */
    assert_int_equal(cidr_parse("0.0.0.0/0", 9, &c), 0);
    assert_int_equal(geo_net_delete(g, &c), GEO_OK);
    static const struct lookup none[] = {{"192.0.2.1", NULL}};
    check(g, none, N_ELEMS(none));
}


static void
test_cidr_ipv6_and_mapped(void **state)
{
    struct geo *g = new_geo(state);
    static const struct lookup l[] = {
        {"::1", "loopback"},
        {"::2", "world6"},
        {"2001:db8::1", "test"},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "test"},
        {"2001:db9::", "world6"},
        {"::ffff:192.0.2.1", "test4"}, /* IPv4-mapped: the IPv4 table */
        {"::ffff:10.0.0.1", "world4"},
        {"192.0.2.255", "test4"},
    };

    add_net(g, "::1/128", "loopback");
    add_net(g, "2001:0db8::/32", "test");
    add_net(g, "::/0", "world6");
    add_net(g, "192.0.2.0/24", "test4");
    add_net(g, "0.0.0.0/0", "world4");
    assert_int_equal(geo_finish(g), 0);
    check(g, l, N_ELEMS(l));

    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr),
                     1);
    assert_string_equal(geo_find_addr(g, (struct sockaddr *)&sin6), "test4");
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(V4(192, 0, 2, 9));
    assert_string_equal(geo_find_addr(g, (struct sockaddr *)&sin), "test4");
}


static void
test_cidr_not_an_address(void **state)
{
    struct geo *g = new_geo(state);
    struct fixture *f = *state;
    static const struct lookup l[] = {
        {"loopback", "none"},
        {"", "none"},
        {"127.0.0.1:80", "none"},
        {"[::1]", "none"},
        {"127.1", "none"},      /* strict dotted decimal */
        {"fe80::1%lo", "none"}, /* zones are no part of an address */
        {"1234567890123456789012345678901234567890123456789", "none"},
        {"127.0.0.1", "lo"},
        {"255.255.255.255", "none"},
    };

    add_net(g, "255.255.255.255", "none");
    add_net(g, "127.0.0.0/8", "lo");
    add_net(g, "::/0", "six");
    assert_int_equal(geo_finish(g), 0);
    check(g, l, N_ELEMS(l));

    /* Text with a NUL inside, and text flush against the guard page. */
    assert_string_equal(geo_find_text(g, "127.0.0.1\0x", 11), "none");
    const char *p = (const char *)guardpage_place(&f->guard, "127.0.0.9", 9);
    assert_string_equal(geo_find_text(g, p, 9), "lo");
    p = (const char *)guardpage_place(&f->guard, "::1", 3);
    assert_string_equal(geo_find_text(g, p, 3), "six");
}


static void
test_cidr_unix_client(void **state)
{
    struct geo *g = new_geo(state);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    assert_null(geo_find_addr(g, (struct sockaddr *)&sun));
    add_net(g, "255.255.255.255/32", "none");
    add_net(g, "0.0.0.0/0", "world");
    assert_int_equal(geo_finish(g), 0);
    assert_string_equal(geo_find_addr(g, (struct sockaddr *)&sun), "none");
}


static void
test_ranges_must_come_first(void **state)
{
    struct geo *g = new_geo(state);
    struct geo *h = new_geo(state);
    struct cidr c;

    assert_int_equal(geo_set_ranges(g), 0);
    assert_true(geo_is_ranges(g));
    assert_int_equal(geo_set_ranges(g), 0); /* twice is fine */
    add_net(h, "10.0.0.0/8", "x");
    assert_int_equal(geo_set_ranges(h), -1);
    assert_false(geo_is_ranges(h));
    /* A delete counts too, even of a network that is not there. */
    struct geo *k = new_geo(state);
    assert_int_equal(cidr_parse("10.0.0.0/8", 10, &c), 0);
    assert_int_equal(geo_net_delete(k, &c), GEO_NOT_FOUND);
    assert_int_equal(geo_set_ranges(k), -1);
}


static void
test_ranges_boundaries(void **state)
{
    struct geo *g = new_geo(state);
    static const struct lookup l[] = {
        {"9.255.255.255", "dflt"},   {"10.0.0.0", "a"},
        {"10.0.0.255", "a"},         {"10.0.1.0", "dflt"},
        {"10.10.2.255", "dflt"},     {"10.10.3.0", "foo"},
        {"10.10.255.255", "foo"},    {"10.11.0.0", "foo"},
        {"10.11.2.255", "foo"},      {"10.11.3.0", "dflt"},
        {"0.0.0.0", "zero"},         {"255.255.255.254", "top"},
        {"255.255.255.255", "dflt"}, {"not-an-address", "dflt"},
    };

    assert_int_equal(geo_set_ranges(g), 0);
    geo_range_default(g, "dflt");
    add_range(g, V4(10, 0, 0, 0), V4(10, 0, 0, 255), "a");
    /* Two /16s, the second with the greater low octets (nginx f927ab882). */
    add_range(g, V4(10, 10, 3, 0), V4(10, 11, 2, 255), "foo");
    add_range(g, V4(0, 0, 0, 0), V4(0, 0, 0, 0), "zero");
    add_range(g, V4(255, 255, 255, 0), V4(255, 255, 255, 254), "top");
    assert_int_equal(geo_finish(g), 0);
    check(g, l, N_ELEMS(l));
}


static void
test_ranges_insert_rules(void **state)
{
    /* nginx-tests stream_geo.t: before, after, insert, insert before/after */
    struct geo *before = new_geo(state);
    struct geo *after = new_geo(state);
    struct geo *insert = new_geo(state);
    struct geo *ins_before = new_geo(state);
    struct geo *ins_after = new_geo(state);
    struct geo *all[] = {before, after, insert, ins_before, ins_after};

    for (size_t i = 0; i < N_ELEMS(all); i++) {
        assert_int_equal(geo_set_ranges(all[i]), 0);
        geo_range_default(all[i], "default");
    }
    add_range(before, V4(127, 0, 0, 1), V4(127, 0, 0, 255), "loopback");
    add_range(before, V4(127, 0, 0, 0), V4(127, 0, 0, 0), "test");
    add_range(after, V4(127, 0, 0, 0), V4(127, 0, 0, 1), "loopback");
    add_range(after, V4(127, 0, 0, 2), V4(127, 0, 0, 255), "test");
    add_range(insert, V4(127, 0, 0, 0), V4(127, 0, 0, 255), "test");
    add_range(insert, V4(127, 0, 0, 1), V4(127, 0, 0, 2), "test2");
    add_range(insert, V4(127, 0, 0, 1), V4(127, 0, 0, 1), "loopback");
    add_range(ins_before, V4(127, 0, 0, 0), V4(127, 0, 0, 255), "test");
    add_range(ins_before, V4(127, 0, 0, 0), V4(127, 0, 0, 1), "loopback");
    add_range(ins_after, V4(127, 0, 0, 0), V4(127, 0, 0, 255), "test");
    add_range(ins_after, V4(127, 0, 0, 1), V4(127, 0, 0, 255), "loopback");
    for (size_t i = 0; i < N_ELEMS(all); i++) {
        assert_int_equal(geo_finish(all[i]), 0);
    }

    static const struct lookup lb[] = {{"127.0.0.0", "test"},
                                       {"127.0.0.1", "loopback"},
                                       {"127.0.0.255", "loopback"},
                                       {"127.0.1.0", "default"}};
    check(before, lb, N_ELEMS(lb));
    static const struct lookup la[] = {{"127.0.0.1", "loopback"},
                                       {"127.0.0.2", "test"}};
    check(after, la, N_ELEMS(la));
    static const struct lookup li[] = {{"127.0.0.0", "test"},
                                       {"127.0.0.1", "loopback"},
                                       {"127.0.0.2", "test2"},
                                       {"127.0.0.3", "test"},
                                       {"127.0.0.255", "test"}};
    check(insert, li, N_ELEMS(li));
    static const struct lookup lib[] = {{"127.0.0.0", "loopback"},
                                        {"127.0.0.1", "loopback"},
                                        {"127.0.0.2", "test"}};
    check(ins_before, lib, N_ELEMS(lib));
    static const struct lookup lia[] = {{"127.0.0.0", "test"},
                                        {"127.0.0.1", "loopback"},
                                        {"127.0.0.255", "loopback"}};
    check(ins_after, lia, N_ELEMS(lia));
}


static void
test_ranges_duplicate_per_piece(void **state)
{
    struct fixture *f = *state;
    struct geo *g = new_geo(state);
    uint32_t os = 0;
    uint32_t oe = 0;

    assert_int_equal(geo_set_ranges(g), 0);
    add_range(g, V4(10, 0, 0, 0), V4(10, 1, 255, 255), "old");
    /* Equal in both /16 pieces: two duplicates, the value replaced. */
    assert_int_equal(geo_range_add(g, V4(10, 0, 0, 0), V4(10, 1, 255, 255),
                                   "new", count_dup, f, &os, &oe),
                     GEO_OK);
    assert_int_equal(f->dups, 2);
    /*
     * Equal to the first piece only, and new in the next /16: nginx
     * accepts this piece by piece (one duplicate), where a whole-range
     * rule would call it an overlap.
     */
    add_range(g, V4(10, 5, 0, 0), V4(10, 5, 255, 255), "five");
    assert_int_equal(geo_range_add(g, V4(10, 5, 0, 0), V4(10, 6, 0, 5),
                                   "five-six", count_dup, f, &os, &oe),
                     GEO_OK);
    assert_int_equal(f->dups, 3);
    assert_int_equal(geo_finish(g), 0);
    static const struct lookup l[] = {{"10.1.2.3", "new"},
                                      {"10.5.1.1", "five-six"},
                                      {"10.6.0.5", "five-six"},
                                      {"10.6.0.6", NULL}};
    check(g, l, N_ELEMS(l));
}


static void
test_ranges_overlap(void **state)
{
    struct geo *g = new_geo(state);
    uint32_t os = 0;
    uint32_t oe = 0;

    assert_int_equal(geo_set_ranges(g), 0);
    add_range(g, V4(127, 0, 0, 10), V4(127, 0, 0, 20), "a");
    add_range(g, V4(127, 0, 0, 30), V4(127, 0, 0, 40), "b");
    /* Crosses the end of a piece. */
    assert_int_equal(geo_range_add(g, V4(127, 0, 0, 15), V4(127, 0, 0, 25), "x",
                                   NULL, NULL, &os, &oe),
                     GEO_OVERLAP);
    assert_int_equal(os, V4(127, 0, 0, 10));
    assert_int_equal(oe, V4(127, 0, 0, 20));
    /* Holds a piece whole. */
    assert_int_equal(geo_range_add(g, V4(127, 0, 0, 25), V4(127, 0, 0, 45), "x",
                                   NULL, NULL, &os, &oe),
                     GEO_OVERLAP);
    assert_int_equal(os, V4(127, 0, 0, 30));
    assert_int_equal(oe, V4(127, 0, 0, 40));
    /* Between the two: fine. */
    add_range(g, V4(127, 0, 0, 21), V4(127, 0, 0, 29), "between");
    assert_int_equal(geo_finish(g), 0);
    static const struct lookup l[] = {{"127.0.0.20", "a"},
                                      {"127.0.0.21", "between"},
                                      {"127.0.0.29", "between"},
                                      {"127.0.0.30", "b"}};
    check(g, l, N_ELEMS(l));
}


static void
test_ranges_delete(void **state)
{
    struct geo *g = new_geo(state);
    struct geo *two = new_geo(state);

    /* nginx-tests stream_geo.t, $geo_ranges_delete. */
    assert_int_equal(geo_set_ranges(g), 0);
    geo_range_default(g, "default");
    add_range(g, V4(127, 0, 0, 0), V4(127, 0, 0, 255), "test");
    add_range(g, V4(127, 0, 0, 1), V4(127, 0, 0, 1), "loopback");
    assert_int_equal(geo_range_delete(g, V4(127, 0, 0, 0), V4(127, 0, 0, 0)),
                     GEO_OK);
    assert_int_equal(geo_range_delete(g, V4(127, 0, 0, 2), V4(127, 0, 0, 255)),
                     GEO_OK);
    assert_int_equal(geo_range_delete(g, V4(127, 0, 0, 1), V4(127, 0, 0, 1)),
                     GEO_OK);
    /* Only whole pieces go: a part of one is not there. */
    add_range(g, V4(127, 0, 1, 0), V4(127, 0, 1, 255), "keep");
    assert_int_equal(geo_range_delete(g, V4(127, 0, 1, 0), V4(127, 0, 1, 10)),
                     GEO_NOT_FOUND);
    assert_int_equal(geo_range_delete(g, V4(128, 0, 0, 0), V4(128, 0, 0, 10)),
                     GEO_NOT_FOUND);
    assert_int_equal(geo_finish(g), 0);
    static const struct lookup l[] = {{"127.0.0.0", "default"},
                                      {"127.0.0.1", "default"},
                                      {"127.0.0.2", "default"},
                                      {"127.0.1.5", "keep"}};
    check(g, l, N_ELEMS(l));

    /* nginx-tests $geo_ranges_delete_2: one range over two /16s. */
    assert_int_equal(geo_set_ranges(two), 0);
    geo_range_default(two, "default");
    add_range(two, V4(127, 0, 0, 0), V4(127, 1, 0, 0), "loopback");
    assert_int_equal(geo_range_delete(two, V4(127, 0, 0, 0), V4(127, 1, 0, 0)),
                     GEO_OK);
    assert_int_equal(geo_finish(two), 0);
    static const struct lookup l2[] = {{"127.0.0.1", "default"},
                                       {"127.1.0.0", "default"}};
    check(two, l2, N_ELEMS(l2));
}


static void
test_ranges_ipv6(void **state)
{
    struct geo *g = new_geo(state);
    static const struct lookup l[] = {
        {"::1", "default"},           /* IPv6: 255.255.255.255, no range */
        {"::ffff:192.0.2.1", "test"}, /* IPv4-mapped: its IPv4 address */
        {"::ffff:127.0.0.2", "loopback"},
        {"::ffff:127.0.0.3", "default"},
    };

    assert_int_equal(geo_set_ranges(g), 0);
    geo_range_default(g, "default");
    add_range(g, V4(127, 0, 0, 1), V4(127, 0, 0, 2), "loopback");
    add_range(g, V4(192, 0, 2, 0), V4(192, 0, 2, 1), "test");
    assert_int_equal(geo_finish(g), 0);
    check(g, l, N_ELEMS(l));
}


static void
test_ranges_many_ascending(void **state)
{
    /* The shape of nginx-tests stream_geo_binary.t: 100001 ranges. */
    struct geo *g = new_geo(state);
    static const char *const values[] = {"even", "odd"};

    assert_int_equal(geo_set_ranges(g), 0);
    for (uint32_t i = 0; i <= 100000; i++) {
        add_range(g, V4(127, 0, 0, 0) + i, V4(127, 0, 0, 0) + i, values[i % 2]);
    }
    assert_int_equal(geo_finish(g), 0);
    assert_string_equal(geo_find_v4(g, V4(127, 0, 0, 1)), "odd");
    assert_string_equal(geo_find_v4(g, V4(127, 0, 0, 0) + 100000), "even");
    assert_null(geo_find_v4(g, V4(127, 0, 0, 0) + 100001));
    assert_null(geo_find_v4(g, V4(126, 255, 255, 255)));
}


static void
test_parse_range(void **state)
{
    struct fixture *f = *state;
    static const struct range_case cases[] = {
        {"127.0.0.0-127.0.0.255", true, V4(127, 0, 0, 0), V4(127, 0, 0, 255)},
        {"1.2.3.4-1.2.3.4", true, V4(1, 2, 3, 4), V4(1, 2, 3, 4)},
        {"0.0.0.0-255.255.255.254", true, 0, V4(255, 255, 255, 254)},
        {"0.0.0.0-255.255.255.255", false, 0, 0}, /* INADDR_NONE in nginx */
        {"255.255.255.255-255.255.255.255", false, 0, 0},
        {"1.2.3.5-1.2.3.4", false, 0, 0},
        {"1.2.3.4", false, 0, 0},
        {"1.2.3.4-", false, 0, 0},
        {"-1.2.3.4", false, 0, 0},
        {"-", false, 0, 0},
        {"", false, 0, 0},
        {"1.2.3.4 -1.2.3.5", false, 0, 0},
        {"1.2.3.4-1.2.3.5-1.2.3.6", false, 0, 0},
        {"1.2.3-1.2.3.5", false, 0, 0},
        {"01.2.3.4-1.2.3.5", false, 0, 0},
        {"1.2.3.256-1.2.3.255", false, 0, 0},
        {"::1-::2", false, 0, 0},
        {"10.0.0.0/8", false, 0, 0},
        {"1.2.3.4-1.2.3.4444444444444444", false, 0, 0},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        const size_t len = strlen(cases[i].text);
        const char *p =
            (const char *)guardpage_place(&f->guard, cases[i].text, len);
        uint32_t s = 0;
        uint32_t e = 0;
        const int rc = geo_parse_range(p, len, &s, &e);
        if (rc != (cases[i].ok ? 0 : -1)) {
            fail_msg("\"%s\": rc %d", cases[i].text, rc);
        }
        if (cases[i].ok) {
            assert_int_equal(s, cases[i].start);
            assert_int_equal(e, cases[i].end);
        }
    }
    /* A NUL inside is not an address. */
    uint32_t s = 0;
    uint32_t e = 0;
    assert_int_equal(geo_parse_range("1.2.3.4-1.2.3.5\0", 16, &s, &e), -1);
    assert_int_equal(geo_parse_range("1.2.3.4\0-1.2.3.5", 16, &s, &e), -1);
}
