/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/cidr.c: parsing networks (inputs placed flush
 * against a guard page, as they are not NUL-terminated), matching socket
 * addresses including IPv4-mapped ones, and classifying the first and last
 * address of every special-purpose range and the addresses just outside
 * it, and every way IPv6 embeds IPv4 with refused and public addresses
 * inside.
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

#include "core/cidr.h"
#include "guardpage.h"


/* A string literal as (bytes, length), so embedded NULs count. */
#define S(lit) lit, sizeof(lit) - 1

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))


/* A parse that must succeed, and what it must produce. */
struct parse_ok {
    const char *text;    /* input, NUL-terminated here for convenience */
    int family;          /* expected family */
    const char *network; /* expected network address, as inet_pton text */
    unsigned prefix;     /* expected prefix */
};

/* A parse that must fail. */
struct parse_bad {
    const char *text; /* input bytes */
    size_t len;       /* bytes in text */
};

/* One cidr_match() expectation. */
struct match_case {
    const char *cidr; /* network text */
    const char *addr; /* address text (v4 or v6) */
    bool match;       /* expected result */
};

/* One cidr_classify() expectation. */
struct class_case {
    const char *addr;      /* address text (v4 or v6) */
    enum cidr_class class; /* expected class */
};


static int setup_guard(void **state);
static int teardown_guard(void **state);
static void make_sockaddr(const char *text, struct sockaddr_storage *ss);
static int parse_guarded(struct guardpage *g, const char *text, size_t len,
                         struct cidr *out);
static void check_classes(const struct class_case *cases, size_t n);
static void test_parse_good(void **state);
static void test_parse_bad(void **state);
static void test_parse_masks_host_bits(void **state);
static void test_match(void **state);
static void test_match_other_family(void **state);
static void test_match_unix(void **state);
static void test_classify_v4_boundaries(void **state);
static void test_classify_v6_boundaries(void **state);
static void test_classify_v6_embedded(void **state);
static void test_classify_non_ip(void **state);
static void test_class_names(void **state);
static void test_embedded_v4(void **state);


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_parse_masks_host_bits),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_match_other_family),
        cmocka_unit_test(test_match_unix),
        cmocka_unit_test(test_classify_v4_boundaries),
        cmocka_unit_test(test_classify_v6_boundaries),
        cmocka_unit_test(test_classify_v6_embedded),
        cmocka_unit_test(test_classify_non_ip),
        cmocka_unit_test(test_class_names),
        cmocka_unit_test(test_embedded_v4),
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


/* Fills ss from an IPv4 or IPv6 address text, failing the test if bad. */
static void
make_sockaddr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *const sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *const sin6 = (struct sockaddr_in6 *)ss;

    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(443);
        return;
    }
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(443);
        return;
    }
    print_error("bad test address \"%s\"\n", text);
    fail();
}


/* cidr_parse() on len bytes of text placed flush against the guard. */
static int
parse_guarded(struct guardpage *g, const char *text, size_t len,
              struct cidr *out)
{
    const uint8_t *const p = guardpage_place(g, text, len);
    assert_non_null(p);
    return cidr_parse((const char *)p, len, out);
}


static void
test_parse_good(void **state)
{
    static const struct parse_ok cases[] = {
        {"10.0.0.0/8", AF_INET, "10.0.0.0", 8},
        {"172.16.0.0/12", AF_INET, "172.16.0.0", 12},
        {"1.2.3.4", AF_INET, "1.2.3.4", 32},
        {"1.2.3.4/32", AF_INET, "1.2.3.4", 32},
        {"0.0.0.0/0", AF_INET, "0.0.0.0", 0},
        {"10.0.0.0/08", AF_INET, "10.0.0.0", 8},
        {"255.255.255.255/32", AF_INET, "255.255.255.255", 32},
        {"fc00::/7", AF_INET6, "fc00::", 7},
        {"::1", AF_INET6, "::1", 128},
        {"::/0", AF_INET6, "::", 0},
        {"2001:db8::/32", AF_INET6, "2001:db8::", 32},
        {"::ffff:10.0.0.0/104", AF_INET6, "::ffff:10.0.0.0", 104},
        {"FE80::/10", AF_INET6, "fe80::", 10},
        {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128", AF_INET6,
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct cidr c;
        uint8_t want[16] = {0};
        assert_int_equal(
            parse_guarded(*state, cases[i].text, strlen(cases[i].text), &c), 0);
        assert_int_equal(c.family, cases[i].family);
        assert_int_equal(c.prefix, cases[i].prefix);
        assert_int_equal(inet_pton(cases[i].family, cases[i].network, want), 1);
        assert_memory_equal(c.addr, want, 16);
    }
}


static void
test_parse_bad(void **state)
{
    static const struct parse_bad cases[] = {
        {S("")},
        {S("/8")},
        {S("10.0.0.0/")},
        {S("10.0.0.0/33")},
        {S("::/129")},
        {S("10.0.0.0/-1")},
        {S("10.0.0.0/+8")},
        {S("10.0.0.0/8/8")},
        {S("10.0.0.0/1000")},
        {S("10.0.0.0/0008")},
        {S("10.0.0.0/8a")},
        {S("10.0.0.0/ 8")},
        {S("10.0.0.0 /8")},
        {S(" 10.0.0.0/8")},
        {S("10.0.0.0/8 ")},
        {S("127.1")},
        {S("2130706433")},
        {S("0x7f.0.0.1")},
        {S("0177.0.0.1")},
        {S("10.0.0.256")},
        {S("1.2.3.4.5")},
        {S("fe80::1%eth0")},
        {S("[::1]")},
        {S("::1::")},
        {S("example.com")},
        {S("1.2.3.4\0/8")},
        {S("1.2.3.4/8\0")},
        {S("\0")},
        {S("0000:0000:0000:0000:0000:0000:0000:0000:0000/8")},
    };
    struct cidr c;

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        memset(&c, 0xa5, sizeof(c));
        if (parse_guarded(*state, cases[i].text, cases[i].len, &c) != -1) {
            print_error("parsed bad input \"%.*s\"\n", (int)cases[i].len,
                        cases[i].text);
            fail();
        }
        assert_int_equal(c.family, 0);
        assert_int_equal(c.prefix, 0);
    }

    /* A valid network cut short by len: "10.0.0.0/" is not one. */
    assert_int_equal(parse_guarded(*state, "10.0.0.0/8", 9, &c), -1);
    /* ...but "10.0.0.0" is. */
    assert_int_equal(parse_guarded(*state, "10.0.0.0/8", 8, &c), 0);
    assert_int_equal(c.prefix, 32);
    /* NULL text with no bytes. */
    assert_int_equal(cidr_parse(NULL, 0, &c), -1);
}


/* Host bits past the prefix are cleared, as nginx's allow does. */
static void
test_parse_masks_host_bits(void **state)
{
    static const struct parse_ok cases[] = {
        {"10.1.2.3/8", AF_INET, "10.0.0.0", 8},
        {"172.31.255.255/12", AF_INET, "172.16.0.0", 12},
        {"192.168.1.255/31", AF_INET, "192.168.1.254", 31},
        {"255.255.255.255/1", AF_INET, "128.0.0.0", 1},
        {"255.255.255.255/0", AF_INET, "0.0.0.0", 0},
        {"2001:db8:1:2::1/32", AF_INET6, "2001:db8::", 32},
        {"fdff:ffff::1/7", AF_INET6, "fc00::", 7},
        {"febf::1/10", AF_INET6, "fe80::", 10},
        {"::ffff/127", AF_INET6, "::fffe", 127},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct cidr c;
        uint8_t want[16] = {0};
        assert_int_equal(
            parse_guarded(*state, cases[i].text, strlen(cases[i].text), &c), 0);
        assert_int_equal(c.prefix, cases[i].prefix);
        assert_int_equal(inet_pton(cases[i].family, cases[i].network, want), 1);
        assert_memory_equal(c.addr, want, 16);
    }
}


static void
test_match(void **state)
{
    static const struct match_case cases[] = {
        /* IPv4, byte and non-byte prefixes, both edges. */
        {"10.0.0.0/8", "10.0.0.0", true},
        {"10.0.0.0/8", "10.255.255.255", true},
        {"10.0.0.0/8", "9.255.255.255", false},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"172.16.0.0/12", "172.16.0.0", true},
        {"172.16.0.0/12", "172.31.255.255", true},
        {"172.16.0.0/12", "172.15.255.255", false},
        {"172.16.0.0/12", "172.32.0.0", false},
        {"1.2.3.4", "1.2.3.4", true},
        {"1.2.3.4", "1.2.3.5", false},
        {"192.168.1.0/31", "192.168.1.1", true},
        {"192.168.1.0/31", "192.168.1.2", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "255.255.255.255", true},
        /* IPv6. */
        {"fc00::/7", "fc00::", true},
        {"fc00::/7", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
        {"fc00::/7", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
        {"fc00::/7", "fe00::", false},
        {"::1", "::1", true},
        {"::1", "::2", false},
        {"::/0", "2001:db8::1", true},
        {"2001:db8::/127", "2001:db8::1", true},
        {"2001:db8::/127", "2001:db8::2", false},
        /* An IPv4-mapped address matches a v4 network through its v4. */
        {"127.0.0.0/8", "::ffff:127.0.0.1", true},
        {"127.0.0.0/8", "::ffff:128.0.0.1", false},
        {"0.0.0.0/0", "::ffff:8.8.8.8", true},
        /* ...but no other v4-carrying form does. */
        {"127.0.0.0/8", "::127.0.0.1", false},
        {"127.0.0.0/8", "64:ff9b::7f00:1", false},
        {"127.0.0.0/8", "::ffff:0:7f00:1", false},
        {"0.0.0.0/0", "::1", false},
        /* Families must agree: a v4 address never matches a v6 network. */
        {"::ffff:0:0/96", "127.0.0.1", false},
        {"::/0", "127.0.0.1", false},
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct cidr c;
        struct sockaddr_storage ss;
        assert_int_equal(cidr_parse(cases[i].cidr, strlen(cases[i].cidr), &c),
                         0);
        make_sockaddr(cases[i].addr, &ss);
        const bool got = cidr_match(&c, (const struct sockaddr *)&ss);
        if (got != cases[i].match) {
            print_error("%s in %s: got %d\n", cases[i].addr, cases[i].cidr,
                        (int)got);
        }
        assert_int_equal(got, cases[i].match);
    }
}


/* A non-IP socket address matches nothing. */
static void
test_match_other_family(void **state)
{
    struct cidr c;
    struct sockaddr_un un;

    (void)state;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_int_equal(cidr_parse(S("0.0.0.0/0"), &c), 0);
    assert_false(cidr_match(&c, (const struct sockaddr *)&un));
    assert_int_equal(cidr_parse(S("::/0"), &c), 0);
    assert_false(cidr_match(&c, (const struct sockaddr *)&un));
}


/*
 * An AF_UNIX network (nginx's "unix:", made by the caller) matches every
 * unix-domain peer and no IP address; cidr_parse() never makes one.
 */
static void
test_match_unix(void **state)
{
    struct cidr c;
    struct sockaddr_un un;
    struct sockaddr_storage in;

    (void)state;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    memset(&c, 0, sizeof(c));
    c.family = AF_UNIX;
    assert_true(cidr_match(&c, (const struct sockaddr *)&un));
    strcpy(un.sun_path, "/run/x.sock");
    assert_true(cidr_match(&c, (const struct sockaddr *)&un));
    make_sockaddr("127.0.0.1", &in);
    assert_false(cidr_match(&c, (const struct sockaddr *)&in));
    make_sockaddr("::1", &in);
    assert_false(cidr_match(&c, (const struct sockaddr *)&in));
    assert_int_equal(cidr_parse(S("unix:"), &c), -1);
}


/* Runs cidr_classify() over cases and names the first mismatch. */
static void
check_classes(const struct class_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        make_sockaddr(cases[i].addr, &ss);
        const enum cidr_class got = cidr_classify((const struct sockaddr *)&ss);
        if (got != cases[i].class) {
            print_error("%s: got %s, want %s\n", cases[i].addr,
                        cidr_class_name(got), cidr_class_name(cases[i].class));
        }
        assert_int_equal(got, cases[i].class);
    }
}


/* First and last address of every IPv4 range, and the neighbours. */
static void
test_classify_v4_boundaries(void **state)
{
    static const struct class_case cases[] = {
        {"0.0.0.0", CIDR_UNSPECIFIED},
        {"0.255.255.255", CIDR_UNSPECIFIED},
        {"1.0.0.0", CIDR_PUBLIC},
        {"9.255.255.255", CIDR_PUBLIC},
        {"10.0.0.0", CIDR_PRIVATE},
        {"10.255.255.255", CIDR_PRIVATE},
        {"11.0.0.0", CIDR_PUBLIC},
        {"100.63.255.255", CIDR_PUBLIC},
        {"100.64.0.0", CIDR_PRIVATE},
        {"100.127.255.255", CIDR_PRIVATE},
        {"100.128.0.0", CIDR_PUBLIC},
        {"126.255.255.255", CIDR_PUBLIC},
        {"127.0.0.0", CIDR_LOOPBACK},
        {"127.0.0.1", CIDR_LOOPBACK},
        {"127.255.255.255", CIDR_LOOPBACK},
        {"128.0.0.0", CIDR_PUBLIC},
        {"169.253.255.255", CIDR_PUBLIC},
        {"169.254.0.0", CIDR_LINK_LOCAL},
        {"169.254.169.254", CIDR_LINK_LOCAL},
        {"169.254.255.255", CIDR_LINK_LOCAL},
        {"169.255.0.0", CIDR_PUBLIC},
        {"172.15.255.255", CIDR_PUBLIC},
        {"172.16.0.0", CIDR_PRIVATE},
        {"172.31.255.255", CIDR_PRIVATE},
        {"172.32.0.0", CIDR_PUBLIC},
        {"191.255.255.255", CIDR_PUBLIC},
        {"192.0.0.0", CIDR_DOCUMENTATION},
        {"192.0.0.255", CIDR_DOCUMENTATION},
        {"192.0.1.0", CIDR_PUBLIC},
        {"192.0.1.255", CIDR_PUBLIC},
        {"192.0.2.0", CIDR_DOCUMENTATION},
        {"192.0.2.255", CIDR_DOCUMENTATION},
        {"192.0.3.0", CIDR_PUBLIC},
        {"192.167.255.255", CIDR_PUBLIC},
        {"192.168.0.0", CIDR_PRIVATE},
        {"192.168.255.255", CIDR_PRIVATE},
        {"192.169.0.0", CIDR_PUBLIC},
        {"198.17.255.255", CIDR_PUBLIC},
        {"198.18.0.0", CIDR_DOCUMENTATION},
        {"198.19.255.255", CIDR_DOCUMENTATION},
        {"198.20.0.0", CIDR_PUBLIC},
        {"198.51.99.255", CIDR_PUBLIC},
        {"198.51.100.0", CIDR_DOCUMENTATION},
        {"198.51.100.255", CIDR_DOCUMENTATION},
        {"198.51.101.0", CIDR_PUBLIC},
        {"203.0.112.255", CIDR_PUBLIC},
        {"203.0.113.0", CIDR_DOCUMENTATION},
        {"203.0.113.255", CIDR_DOCUMENTATION},
        {"203.0.114.0", CIDR_PUBLIC},
        {"223.255.255.255", CIDR_PUBLIC},
        {"224.0.0.0", CIDR_MULTICAST},
        {"239.255.255.255", CIDR_MULTICAST},
        {"240.0.0.0", CIDR_BROADCAST_RESERVED},
        {"255.255.255.254", CIDR_BROADCAST_RESERVED},
        {"255.255.255.255", CIDR_BROADCAST_RESERVED},
        {"8.8.8.8", CIDR_PUBLIC},
        {"1.1.1.1", CIDR_PUBLIC},
        {"192.88.99.1", CIDR_PUBLIC},
    };

    (void)state;
    check_classes(cases, N_ELEMS(cases));
}


/* First and last address of every IPv6 range, and the neighbours. */
static void
test_classify_v6_boundaries(void **state)
{
    static const struct class_case cases[] = {
        {"::", CIDR_UNSPECIFIED},
        {"::1", CIDR_LOOPBACK},
        {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"fe80::", CIDR_LINK_LOCAL},
        {"fe80::1", CIDR_LINK_LOCAL},
        {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_LINK_LOCAL},
        {"fec0::", CIDR_PRIVATE},
        {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PRIVATE},
        {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"fc00::", CIDR_PRIVATE},
        {"fd00:ec2::254", CIDR_PRIVATE},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PRIVATE},
        {"fe00::", CIDR_PUBLIC},
        {"ff00::", CIDR_MULTICAST},
        {"ff02::1", CIDR_MULTICAST},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_MULTICAST},
        {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"2001:db8::", CIDR_DOCUMENTATION},
        {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_DOCUMENTATION},
        {"2001:db9::", CIDR_PUBLIC},
        {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"3fff::", CIDR_DOCUMENTATION},
        {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_DOCUMENTATION},
        {"3fff:1000::", CIDR_PUBLIC},
        {"ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"100::", CIDR_BROADCAST_RESERVED},
        {"100::ffff:ffff:ffff:ffff", CIDR_BROADCAST_RESERVED},
        {"100:0:0:1::", CIDR_PUBLIC},
        {"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"2001:2::", CIDR_DOCUMENTATION},
        {"2001:2:0:ffff:ffff:ffff:ffff:ffff", CIDR_DOCUMENTATION},
        {"2001:2:1::", CIDR_PUBLIC},
        {"2001:f:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"2001:10::", CIDR_BROADCAST_RESERVED},
        {"2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_BROADCAST_RESERVED},
        {"2001:20::", CIDR_PUBLIC},
        {"5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        {"5f00::", CIDR_BROADCAST_RESERVED},
        {"5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", CIDR_BROADCAST_RESERVED},
        {"5f01::", CIDR_PUBLIC},
        {"2606:4700:4700::1111", CIDR_PUBLIC},
        {"2a00:1450:4001::1", CIDR_PUBLIC},
    };

    (void)state;
    check_classes(cases, N_ELEMS(cases));
}


/*
 * Each way IPv6 carries IPv4, with loopback, private, link-local
 * (metadata) and other refused addresses inside, and with a public one
 * inside (then the IPv6 address is PUBLIC).
 */
static void
test_classify_v6_embedded(void **state)
{
    static const struct class_case cases[] = {
        /* IPv4-mapped ::ffff:0:0/96. */
        {"::ffff:127.0.0.1", CIDR_LOOPBACK},
        {"::ffff:10.1.2.3", CIDR_PRIVATE},
        {"::ffff:169.254.169.254", CIDR_LINK_LOCAL},
        {"::ffff:0.0.0.0", CIDR_UNSPECIFIED},
        {"::ffff:224.0.0.1", CIDR_MULTICAST},
        {"::ffff:255.255.255.255", CIDR_BROADCAST_RESERVED},
        {"::ffff:8.8.8.8", CIDR_PUBLIC},
        /* IPv4-compatible ::/96 (deprecated); :: and ::1 stay IPv6. */
        {"::127.0.0.1", CIDR_LOOPBACK},
        {"::10.0.0.1", CIDR_PRIVATE},
        {"::169.254.169.254", CIDR_LINK_LOCAL},
        {"::0.0.0.2", CIDR_UNSPECIFIED},
        {"::8.8.8.8", CIDR_PUBLIC},
        /* IPv4-translated ::ffff:0:0:0/96. */
        {"::ffff:0:127.0.0.1", CIDR_LOOPBACK},
        {"::ffff:0:192.168.0.1", CIDR_PRIVATE},
        {"::ffff:0:8.8.8.8", CIDR_PUBLIC},
        /* NAT64 well-known prefix 64:ff9b::/96. */
        {"64:ff9b::a9fe:a9fe", CIDR_LINK_LOCAL},
        {"64:ff9b::127.0.0.1", CIDR_LOOPBACK},
        {"64:ff9b::10.0.0.1", CIDR_PRIVATE},
        {"64:ff9b::100.64.0.1", CIDR_PRIVATE},
        {"64:ff9b::8.8.8.8", CIDR_PUBLIC},
        {"64:ff9b:0:0:1::7f00:1", CIDR_PUBLIC}, /* outside the /96 */
        /* Local-use NAT64 64:ff9b:1::/48, every RFC 6052 layout. */
        {"64:ff9b:1::7f00:1", CIDR_LOOPBACK},             /* /96 */
        {"64:ff9b:1:ffff:ffff:ff00:a00:1", CIDR_PRIVATE}, /* /96 */
        {"64:ff9b:1::a9fe:a9fe", CIDR_LINK_LOCAL},        /* /96 */
        {"64:ff9b:1::808:808", CIDR_PUBLIC},              /* /96 */
        {"64:ff9b:1:2::808:808", CIDR_PUBLIC},            /* /96 */
        {"64:ff9b:1:0:a:0:100:0", CIDR_PRIVATE},          /* /64 10.0.0.1 */
        {"64:ff9b:1:c0:a8:101::", CIDR_PRIVATE},          /* /56 192.168.1.1 */
        {"64:ff9b:1:7f00:0:100::", CIDR_LOOPBACK},        /* /48 127.0.0.1 */
        {"64:ff9b:1:a9fe:a9:fe00::", CIDR_LINK_LOCAL},    /* /48 IMDS */
        {"64:ff9b:1:808:8:800::", CIDR_UNSPECIFIED},      /* /48 8.8.8.8, read
                                                             as /96 0.0.0.0 */
        {"64:ff9b:2::7f00:1", CIDR_PUBLIC},               /* outside the /48 */
        /* 6to4 2002::/16, v4 in bits 16-47. */
        {"2002:7f00:1::1", CIDR_LOOPBACK},
        {"2002:a9fe:a9fe::1", CIDR_LINK_LOCAL},
        {"2002:c0a8:101::1", CIDR_PRIVATE},
        {"2002:0a00:0001:1::1", CIDR_PRIVATE},
        {"2002::", CIDR_UNSPECIFIED},
        {"2002:e000:1::", CIDR_MULTICAST},
        {"2002:0808:0808::1", CIDR_PUBLIC},
        {"2002:0808:0808:ffff:ffff:ffff:ffff:ffff", CIDR_PUBLIC},
        /* Teredo 2001::/32: client = last 32 bits inverted, server in
           bits 32-63. RFC 4380 §4's example: client 192.0.2.45. */
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", CIDR_DOCUMENTATION},
        {"2001:0:4136:e378:8000:63bf:80ff:fffe", CIDR_LOOPBACK},
        {"2001:0:4136:e378:8000:63bf:f5ff:fffe", CIDR_PRIVATE},
        {"2001:0:4136:e378:8000:63bf:5601:5601", CIDR_LINK_LOCAL},
        {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", CIDR_PUBLIC},
        {"2001:0:a00:1:8000:63bf:f7f7:f7f7", CIDR_PRIVATE}, /* server */
        {"2001:1::1", CIDR_PUBLIC}, /* outside Teredo, PCP anycast */
    };

    (void)state;
    check_classes(cases, N_ELEMS(cases));
}


/* A family that is not IP is refused, not waved through. */
static void
test_classify_non_ip(void **state)
{
    struct sockaddr_un un;

    (void)state;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_int_equal(cidr_classify((const struct sockaddr *)&un),
                     CIDR_BROADCAST_RESERVED);
}


static void
test_class_names(void **state)
{
    (void)state;
    assert_string_equal(cidr_class_name(CIDR_PUBLIC), "public");
    assert_string_equal(cidr_class_name(CIDR_LOOPBACK), "loopback");
    assert_string_equal(cidr_class_name(CIDR_UNSPECIFIED), "unspecified");
    assert_string_equal(cidr_class_name(CIDR_LINK_LOCAL), "link-local");
    assert_string_equal(cidr_class_name(CIDR_PRIVATE), "private");
    assert_string_equal(cidr_class_name(CIDR_DOCUMENTATION), "documentation");
    assert_string_equal(cidr_class_name(CIDR_MULTICAST), "multicast");
    assert_string_equal(cidr_class_name(CIDR_BROADCAST_RESERVED), "reserved");
    assert_string_equal(cidr_class_name((enum cidr_class)99), "unknown");
}


/* One IPv6 text and the IPv4 readings cidr_embedded_v4() must give. */
struct embed_case {
    const char *v6;
    size_t n;
    const char *v4[CIDR_EMBED_MAX];
};


/*
 * Normalisation for the loop guard: every form that carries an IPv4
 * address gives it back (a public one too), in order; others give none.
 */
static void
test_embedded_v4(void **state)
{
    static const struct embed_case cases[] = {
        {"::ffff:192.0.2.2", 1, {"192.0.2.2"}},
        {"::ffff:8.8.8.8", 1, {"8.8.8.8"}},
        {"::192.0.2.2", 1, {"192.0.2.2"}},
        {"::ffff:0:192.0.2.2", 1, {"192.0.2.2"}},
        {"64:ff9b::192.0.2.2", 1, {"192.0.2.2"}},
        {"2002:c000:202::1", 1, {"192.0.2.2"}},
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2",
         2,
         {"192.0.2.45", "65.54.227.120"}},
        {"64:ff9b:1::c000:202", 1, {"192.0.2.2"}},
        {"64:ff9b:1:c000:2:200::",
         4,
         {"192.0.2.2", "0.2.2.0", "2.2.0.0", "0.0.0.0"}},
        {"::", 0, {NULL}},
        {"::1", 0, {NULL}},
        {"2001:db8::1", 0, {NULL}},
        {"fd00::2", 0, {NULL}},
    };

    (void)state;
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct sockaddr_in6 sin6;
        uint8_t out[CIDR_EMBED_MAX][4];
        size_t n;

        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, cases[i].v6, &sin6.sin6_addr), 1);
        n = cidr_embedded_v4((const struct sockaddr *)&sin6, out);
        if (n != cases[i].n) {
            fail_msg("%s: %zu readings, want %zu", cases[i].v6, n, cases[i].n);
        }
        for (size_t k = 0; k < n; k++) {
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, out[k], text, sizeof(text));
            if (strcmp(text, cases[i].v4[k]) != 0) {
                fail_msg("%s: reading %zu is %s, want %s", cases[i].v6, k, text,
                         cases[i].v4[k]);
            }
        }
    }
    /* An IPv4 address is no IPv6 form: none. */
    {
        struct sockaddr_in sin;
        uint8_t out[CIDR_EMBED_MAX][4];

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        inet_pton(AF_INET, "192.0.2.2", &sin.sin_addr);
        assert_int_equal(cidr_embedded_v4((const struct sockaddr *)&sin, out),
                         0);
    }
}
