/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/proto/http_req.c. Every input is copied flush
 * against a PROT_NONE guard page (guardpage.h) before it is fed, so any
 * over-read faults. The recipe follows DESIGN.md: whole, every split, byte
 * by byte, every truncation; every refused head is checked whole and byte
 * by byte with its reason.
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
#include "proto/http_req.h"


#define GUARD_CAP (16 * 1024)
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A string literal and its length, NULs included. */
#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1


/* A head that must be refused, and why. */
struct bad_case {
    const uint8_t *head;
    size_t len;
    const char *reason;
};


static int setup_guard(void **state);
static int teardown_guard(void **state);
static enum http_req_rc feed_guarded(struct http_req *r, struct guardpage *g,
                                     const uint8_t *data, size_t len);
static void check_good(struct guardpage *g, const uint8_t *data, size_t len,
                       const char *method, const char *target, unsigned version,
                       size_t head_len);
static void check_bad(struct guardpage *g, const struct bad_case *c);


static int
setup_guard(void **state)
{
    static struct guardpage g;

    if (guardpage_init(&g, GUARD_CAP) == -1) {
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


static enum http_req_rc
feed_guarded(struct http_req *r, struct guardpage *g, const uint8_t *data,
             size_t len)
{
    return http_req_feed(r, guardpage_place(g, data, len), len);
}


/* Whole, every two-way split, byte by byte and every truncation agree. */
static void
check_good(struct guardpage *g, const uint8_t *data, size_t len,
           const char *method, const char *target, unsigned version,
           size_t head_len)
{
    struct http_req r;

    http_req_init(&r);
    assert_int_equal(feed_guarded(&r, g, data, len), HTTP_REQ_DONE);
    assert_string_equal(r.reason, "ok");
    assert_string_equal(r.method, method);
    assert_int_equal(r.method_len, strlen(method));
    assert_string_equal(r.target, target);
    assert_int_equal(r.target_len, strlen(target));
    assert_int_equal(r.version, version);
    assert_int_equal(r.head_len, head_len);
    for (size_t cut = 0; cut <= len; cut++) {
        struct http_req s;

        http_req_init(&s);
        feed_guarded(&s, g, data, cut);
        assert_int_equal(feed_guarded(&s, g, data + cut, len - cut),
                         HTTP_REQ_DONE);
        assert_string_equal(s.method, method);
        assert_string_equal(s.target, target);
        assert_int_equal(s.head_len, head_len);
        if (cut < head_len) {
            http_req_init(&s);
            assert_int_equal(feed_guarded(&s, g, data, cut),
                             HTTP_REQ_NEED_MORE);
            assert_int_equal(s.head_len, cut);
        }
    }
    http_req_init(&r);
    for (size_t i = 0; i < len; i++) {
        const enum http_req_rc rc = feed_guarded(&r, g, data + i, 1);

        assert_int_equal(rc,
                         i + 1 < head_len ? HTTP_REQ_NEED_MORE : HTTP_REQ_DONE);
    }
    assert_int_equal(r.head_len, head_len);
}


static void
check_bad(struct guardpage *g, const struct bad_case *c)
{
    struct http_req r;

    http_req_init(&r);
    assert_int_equal(feed_guarded(&r, g, c->head, c->len), HTTP_REQ_MALFORMED);
    assert_string_equal(r.reason, c->reason);
    const size_t decided = r.head_len;
    http_req_init(&r);
    for (size_t i = 0; i < c->len; i++) {
        feed_guarded(&r, g, c->head + i, 1);
    }
    assert_int_equal(r.rc, HTTP_REQ_MALFORMED);
    assert_string_equal(r.reason, c->reason);
    assert_int_equal(r.head_len, decided);
    /* One byte short of the deciding byte it still waits. */
    http_req_init(&r);
    assert_int_equal(feed_guarded(&r, g, c->head, decided - 1),
                     HTTP_REQ_NEED_MORE);
    /* The outcome sticks. */
    http_req_init(&r);
    feed_guarded(&r, g, c->head, c->len);
    assert_int_equal(feed_guarded(&r, g, LIT("GET / HTTP/1.1\r\n\r\n")),
                     HTTP_REQ_MALFORMED);
}


static void
test_get_metrics(void **state)
{
    /* request-line, one field line, empty line (RFC 9112 §3, §5) */
    static const char head[] = "GET /metrics HTTP/1.1\r\n"
                               "Host: 127.0.0.1:8080\r\n"
                               "\r\n";

    check_good(*state, LIT(head), "GET", "/metrics", 11, sizeof(head) - 1);
}


static void
test_head_bare_lf_and_body_after(void **state)
{
    /* LF alone ends lines (§2.2); bytes after the head are not taken. */
    static const char head[] = "HEAD /status.json?x=1 HTTP/1.0\n"
                               "User-Agent: t\n"
                               "\n"
                               "BODY";

    check_good(*state, LIT(head), "HEAD", "/status.json?x=1", 10,
               sizeof(head) - 1 - 4);
}


static void
test_other_method_and_values(void **state)
{
    /* Any token method parses (the handler answers 405); a value may hold
       tabs, spaces and bytes >= 0x80; no field lines at all. */
    static const char head[] = "DELETE / HTTP/1.1\r\n"
                               "X-A:\t v\xc3\xa9 \r\n"
                               "X-B:\r\n"
                               "\r\n";
    static const char bare[] = "POST /x HTTP/1.1\r\n\r\n";

    check_good(*state, LIT(head), "DELETE", "/", 11, sizeof(head) - 1);
    check_good(*state, LIT(bare), "POST", "/x", 11, sizeof(bare) - 1);
}


static void
test_limits(void **state)
{
    char head[HTTP_REQ_HEAD_MAX + 64];
    char target[HTTP_REQ_TARGET_MAX + 2];
    struct http_req r;
    size_t n;

    /* A target of exactly the maximum is kept; one more is refused. */
    memset(target, 'a', sizeof(target));
    target[0] = '/';
    target[HTTP_REQ_TARGET_MAX] = '\0';
    n = (size_t)snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\n\r\n", target);
    http_req_init(&r);
    assert_int_equal(feed_guarded(&r, *state, (uint8_t *)head, n),
                     HTTP_REQ_DONE);
    assert_int_equal(r.target_len, HTTP_REQ_TARGET_MAX);
    target[HTTP_REQ_TARGET_MAX] = 'a';
    target[HTTP_REQ_TARGET_MAX + 1] = '\0';
    n = (size_t)snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\n\r\n", target);
    http_req_init(&r);
    assert_int_equal(feed_guarded(&r, *state, (uint8_t *)head, n),
                     HTTP_REQ_MALFORMED);
    assert_string_equal(r.reason, "request-target too long");

    /* Field lines: HTTP_REQ_FIELDS_MAX pass, one more is refused. */
    for (int extra = 0; extra <= 1; extra++) {
        n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < HTTP_REQ_FIELDS_MAX + extra; i++) {
            n += (size_t)snprintf(head + n, sizeof(head) - n, "A:b\r\n");
        }
        n += (size_t)snprintf(head + n, sizeof(head) - n, "\r\n");
        http_req_init(&r);
        assert_int_equal(feed_guarded(&r, *state, (uint8_t *)head, n),
                         extra ? HTTP_REQ_MALFORMED : HTTP_REQ_DONE);
    }

    /* A head of more than HTTP_REQ_HEAD_MAX bytes is refused at the byte
       past the maximum. */
    n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nA: ");
    memset(head + n, 'v', sizeof(head) - n);
    http_req_init(&r);
    assert_int_equal(feed_guarded(&r, *state, (uint8_t *)head, sizeof(head)),
                     HTTP_REQ_MALFORMED);
    assert_string_equal(r.reason, "request head too large");
    assert_int_equal(r.head_len, HTTP_REQ_HEAD_MAX + 1);
}


static void
test_bad(void **state)
{
    static const struct bad_case cases[] = {
        {LIT(" GET / HTTP/1.1\r\n\r\n"), "no method"},
        {LIT("G(T / HTTP/1.1\r\n\r\n"), "invalid method"},
        {LIT("GETGETGETGETGETGET / HTTP/1.1\r\n\r\n"), "method too long"},
        {LIT("GET  / HTTP/1.1\r\n\r\n"), "no request-target"},
        {LIT("GET /\x01 HTTP/1.1\r\n\r\n"), "invalid request-target"},
        {LIT("GET /\xff HTTP/1.1\r\n\r\n"), "invalid request-target"},
        {LIT("GET / HTTP/2.0\r\n\r\n"), "invalid HTTP version"},
        {LIT("GET / HTTP/1.1x\r\n\r\n"), "invalid HTTP version"},
        {LIT("GET / HTTP/1\r\n\r\n"), "invalid HTTP version"},
        {LIT("GET / HTTP/1.1\rX\r\n"), "CR without LF"},
        {LIT("GET / HTTP/1.1\r\n folded\r\n\r\n"), "invalid field line"},
        {LIT("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), "invalid field name"},
        {LIT("GET / HTTP/1.1\r\nHost: a\x00z\r\n\r\n"),
         "control byte in a field value"},
        {LIT("GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n"),
         "control byte in a field value"},
        {LIT("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), "CR without LF"},
        {LIT("GET / HTTP/1.1\r\n\rX"), "CR without LF"},
        {LIT("\x16\x03\x01\x02\x00\x01"), "invalid method"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        check_bad(*state, &cases[i]);
    }
}


static void
test_empty_and_partial(void **state)
{
    struct http_req r;

    http_req_init(&r);
    assert_int_equal(http_req_feed(&r, NULL, 0), HTTP_REQ_NEED_MORE);
    assert_int_equal(feed_guarded(&r, *state, LIT("GET / HTTP/1.1\r\n")),
                     HTTP_REQ_NEED_MORE);
    assert_string_equal(r.reason, "ok");
    assert_int_equal(r.version, 11);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_metrics),
        cmocka_unit_test(test_head_bare_lf_and_body_after),
        cmocka_unit_test(test_other_method_and_values),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_empty_and_partial),
    };

    return cmocka_run_group_tests(tests, setup_guard, teardown_guard);
}
