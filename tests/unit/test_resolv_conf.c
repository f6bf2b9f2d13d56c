/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/dns/resolv_conf.c. Every input is copied flush against
 * a PROT_NONE guard page, so reading one byte past the file faults at once.
 * Covered: IPv4 (and inet_aton()'s short forms), IPv6, scopes, comments,
 * other keywords, words after the address, glibc's limit of three servers,
 * lines that name no address, CRLF, NUL bytes, a file with no final
 * newline, and every truncation of a sample file.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dns/resolv_conf.h"
#include "guardpage.h"


/* A string literal as (bytes, length), so embedded NULs count. */
#define S(lit) lit, sizeof(lit) - 1


static int setup_guard(void **state);
static int teardown_guard(void **state);
static void parse(void **state, const char *buf, size_t len,
                  struct resolv_conf *rc);
static void check_server(const struct resolv_conf_server *srv, int family,
                         const char *addr, const char *scope, unsigned line);
static void test_empty(void **state);
static void test_ipv4_and_ipv6(void **state);
static void test_scope(void **state);
static void test_comments_and_keywords(void **state);
static void test_keyword_must_start_the_line(void **state);
static void test_three_at_most(void **state);
static void test_bad_values(void **state);
static void test_no_final_newline(void **state);
static void test_every_truncation(void **state);


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_ipv4_and_ipv6),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_comments_and_keywords),
        cmocka_unit_test(test_keyword_must_start_the_line),
        cmocka_unit_test(test_three_at_most),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_no_final_newline),
        cmocka_unit_test(test_every_truncation),
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


/* Parses len bytes of buf placed flush against the guard page. */
static void
parse(void **state, const char *buf, size_t len, struct resolv_conf *rc)
{
    const uint8_t *const in = guardpage_place(*state, buf, len);

    assert_non_null(in);
    memset(rc, 0xa5, sizeof(*rc));
    resolv_conf_parse((const char *)in, len, rc);
}


static void
check_server(const struct resolv_conf_server *srv, int family, const char *addr,
             const char *scope, unsigned line)
{
    char text[INET6_ADDRSTRLEN];

    assert_int_equal(srv->family, family);
    assert_non_null(inet_ntop(family, srv->addr, text, sizeof(text)));
    assert_string_equal(text, addr);
    assert_string_equal(srv->scope, scope);
    assert_int_equal(srv->line, line);
}


static void
test_empty(void **state)
{
    struct resolv_conf rc;

    parse(state, S(""), &rc);
    assert_int_equal(rc.n, 0);
    assert_int_equal(rc.n_bad, 0);
    assert_int_equal(rc.n_past_max, 0);
    assert_int_equal(rc.first_bad_line, 0);
    parse(state, S("\n\n\n"), &rc);
    assert_int_equal(rc.n, 0);
    parse(state, S("nameserver"), &rc);
    assert_int_equal(rc.n, 0);
    assert_int_equal(rc.n_bad, 0);
}


static void
test_ipv4_and_ipv6(void **state)
{
    struct resolv_conf rc;

    parse(state,
          S("nameserver 192.0.2.53\n"
            "nameserver\t \t2001:db8::53   # a comment after it\n"
            "nameserver 10.1 trailing words\n"),
          &rc);
    assert_int_equal(rc.n, 3);
    check_server(&rc.servers[0], AF_INET, "192.0.2.53", "", 1);
    check_server(&rc.servers[1], AF_INET6, "2001:db8::53", "", 2);
    /* inet_aton()'s short form, as glibc reads it. */
    check_server(&rc.servers[2], AF_INET, "10.0.0.1", "", 3);
    assert_int_equal(rc.n_bad, 0);
}


static void
test_scope(void **state)
{
    struct resolv_conf rc;

    parse(state,
          S("nameserver fe80::1%eth0\n"
            "nameserver fe80::2%3\n"
            "nameserver fe80::3%\n"                 /* empty scope */
            "nameserver fe80::4%a%b\n"              /* two */
            "nameserver fe80::5%0123456789abcdef\n" /* 16 bytes: too long */
            "nameserver 127.0.0.1%lo\n"),           /* IPv4 has none */
          &rc);
    assert_int_equal(rc.n, 2);
    check_server(&rc.servers[0], AF_INET6, "fe80::1", "eth0", 1);
    check_server(&rc.servers[1], AF_INET6, "fe80::2", "3", 2);
    assert_int_equal(rc.n_bad, 4);
    assert_int_equal(rc.first_bad_line, 3);

    parse(state, S("nameserver fe80::5%0123456789abcde\n"), &rc);
    assert_int_equal(rc.n, 1);
    check_server(&rc.servers[0], AF_INET6, "fe80::5", "0123456789abcde", 1);
}


static void
test_comments_and_keywords(void **state)
{
    struct resolv_conf rc;

    parse(state,
          S("# nameserver 192.0.2.1\n"
            "; nameserver 192.0.2.2\n"
            "#nameserver 192.0.2.3\n"
            "search example.org\n"
            "domain example.org\n"
            "options ndots:2 timeout:1\n"
            "sortlist 130.155.160.0/255.255.240.0\n"
            "nameservers 192.0.2.4\n"
            "NAMESERVER 192.0.2.5\n"
            "nameserver 192.0.2.6\n"),
          &rc);
    assert_int_equal(rc.n, 1);
    check_server(&rc.servers[0], AF_INET, "192.0.2.6", "", 10);
    assert_int_equal(rc.n_bad, 0);
}


/* glibc matches the keyword at the very start, followed by a blank. */
static void
test_keyword_must_start_the_line(void **state)
{
    struct resolv_conf rc;

    parse(state,
          S(" nameserver 192.0.2.1\n"
            "\tnameserver 192.0.2.2\n"
            "nameserver192.0.2.3\n"
            "nameserver:192.0.2.4\n"),
          &rc);
    assert_int_equal(rc.n, 0);
    assert_int_equal(rc.n_bad, 0);
}


static void
test_three_at_most(void **state)
{
    struct resolv_conf rc;

    parse(state,
          S("nameserver 192.0.2.1\n"
            "nameserver bogus\n"
            "nameserver 192.0.2.2\n"
            "nameserver 192.0.2.3\n"
            "nameserver 192.0.2.4\n"
            "nameserver bogus\n"),
          &rc);
    assert_int_equal(rc.n, 3);
    check_server(&rc.servers[0], AF_INET, "192.0.2.1", "", 1);
    check_server(&rc.servers[1], AF_INET, "192.0.2.2", "", 3);
    check_server(&rc.servers[2], AF_INET, "192.0.2.3", "", 4);
    assert_int_equal(rc.n_past_max, 2);
    assert_int_equal(rc.n_bad, 1);
    assert_int_equal(rc.first_bad_line, 2);
}


static void
test_bad_values(void **state)
{
    struct resolv_conf rc;
    char longline[256];

    parse(state,
          S("nameserver \n"
            "nameserver ns1.example.org\n"
            "nameserver 192.0.2.1\r\n" /* CRLF: glibc fails it too */
            "nameserver 1.2.3.4.5\n"
            "nameserver 2001:db8::1::2\n"
            "nameserver [2001:db8::1]\n"
            "nameserver 192.0.2.1:53\n"
            "nameserver 192.0\0.2.1\n"),
          &rc);
    assert_int_equal(rc.n, 0);
    assert_int_equal(rc.n_bad, 8);
    assert_int_equal(rc.first_bad_line, 1);

    /* A value longer than RESOLV_CONF_VALUE_MAX is refused, not cut. */
    memcpy(longline, "nameserver ", 11);
    memset(longline + 11, '1', RESOLV_CONF_VALUE_MAX + 1);
    parse(state, longline, 11 + RESOLV_CONF_VALUE_MAX + 1, &rc);
    assert_int_equal(rc.n, 0);
    assert_int_equal(rc.n_bad, 1);
}


static void
test_no_final_newline(void **state)
{
    struct resolv_conf rc;

    parse(state, S("search x\nnameserver 192.0.2.9"), &rc);
    assert_int_equal(rc.n, 1);
    check_server(&rc.servers[0], AF_INET, "192.0.2.9", "", 2);
}


/* Every prefix of a file parses under the guard, to at most three servers
 * on lines the prefix holds; the whole file to its three. */
static void
test_every_truncation(void **state)
{
    static const char file[] = "# generated\n"
                               "nameserver 192.0.2.1\n"
                               "options edns0\n"
                               "nameserver 2001:db8::53%eth0\n"
                               "nameserver 198.51.100.7\n";
    struct resolv_conf rc;

    for (size_t len = 0; len <= sizeof(file) - 1; len++) {
        unsigned lines = 1;
        for (size_t i = 0; i < len; i++) {
            lines += file[i] == '\n';
        }
        parse(state, file, len, &rc);
        assert_true(rc.n <= 3);
        for (size_t i = 0; i < rc.n; i++) {
            assert_true(rc.servers[i].family == AF_INET ||
                        rc.servers[i].family == AF_INET6);
            assert_true(rc.servers[i].line >= 1 && rc.servers[i].line <= lines);
        }
    }
    assert_int_equal(rc.n, 3);
    check_server(&rc.servers[1], AF_INET6, "2001:db8::53", "eth0", 4);
}
