/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/proto/http_head.c. Every input is copied flush
 * against a PROT_NONE guard page (guardpage.h) before it is fed, so any
 * over-read faults. Inputs are annotated request heads, plus heads built
 * to the limits by a small text builder. The recipe follows DESIGN.md:
 * whole, every split, byte by byte, every truncation; every rejected head
 * is checked whole, split and byte by byte with its reason.
 */

#include <sys/mman.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guardpage.h"
#include "proto/http_head.h"


#define GUARD_CAP (128 * 1024) /* largest input placed at the guard page */
#define BUILD_CAP (96 * 1024)  /* largest head (plus body) built */
#define BODY_LEN (64 * 1024)   /* body after the head in the body tests */
#define ALL_SPLITS_MAX 4096    /* inputs up to this size: every split */
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A string literal and its length, NULs included. */
#define LIT(s) (const uint8_t *)(s), sizeof(s) - 1


/* A text buffer for heads built to the limits. */
struct builder {
    uint8_t buf[BUILD_CAP];
    size_t len; /* bytes used in buf */
};

/* Results a test expects after DONE. */
struct expect {
    const char *host; /* NULL: has_host false */
    unsigned version; /* 10 or 11 */
    size_t head_len;  /* 0: the whole input */
};

/* A head that must be refused, and why. */
struct bad_case {
    const uint8_t *head;
    size_t len; /* bytes in head (it may hold NULs) */
    enum http_head_rc rc;
    const char *reason;
};


static int setup_guard(void **state);
static int teardown_guard(void **state);
static void b_str(struct builder *b, const char *s);
static void b_fill(struct builder *b, uint8_t c, size_t n);
static enum http_head_rc feed_guarded(struct http_head *h, struct guardpage *g,
                                      const uint8_t *data, size_t len);
static enum http_head_rc parse_whole(struct http_head *h, struct guardpage *g,
                                     const uint8_t *data, size_t len);
static enum http_head_rc parse_chunked(struct http_head *h, struct guardpage *g,
                                       const uint8_t *data, size_t len,
                                       size_t chunk);
static void assert_expect(const struct http_head *h, const struct expect *e,
                          size_t len);
static void assert_same_results(const struct http_head *a,
                                const struct http_head *b);
static void check_all_ways(struct guardpage *g, const uint8_t *data, size_t len,
                           const struct expect *e);
static void check_rc(struct guardpage *g, const uint8_t *data, size_t len,
                     enum http_head_rc want, const char *reason);
static void check_bad_cases(struct guardpage *g, const struct bad_case *c,
                            size_t n);
static void check_host(struct guardpage *g, const char *head, const char *host);


/* What curl 7.88.1 sends for `curl http://example.com/`. */
static const char curl_head[] =
    "GET / HTTP/1.1\r\n"          /* request line, origin-form target */
    "Host: example.com\r\n"       /* Host (RFC 9110 §7.2) */
    "User-Agent: curl/7.88.1\r\n" /* other fields are only checked */
    "Accept: */*\r\n"
    "\r\n"; /* empty line: the head ends here */

/* A browser-like head: many fields, mixed case, Host in the middle. */
static const char browser_head[] =
    "POST /api/v1/items?id=7&x=%20 HTTP/1.1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Firefox/115.0\r\n"
    "Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "HOST: WWW.Example.ORG.:8443\r\n" /* upper case, trailing dot, port */
    "Content-Type: application/json\r\n"
    "Content-Length: 2\r\n"
    "X-Empty:\r\n"                /* empty value */
    "X-Tabs:\t a\tb \t\r\n"       /* HTAB inside and around */
    "X-Obs-Text: caf\xc3\xa9\r\n" /* obs-text is kept */
    "\r\n"
    "{}"; /* body: not part of the head */

/* A proxy request: absolute-form target (RFC 9112 §3.2.2). */
static const char proxy_head[] =
    "GET http://Other.Example:8080/path?q=1 HTTP/1.1\r\n"
    "Host: other.example:8080\r\n" /* agrees with the target */
    "Proxy-Connection: keep-alive\r\n"
    "\r\n";

/* HTTP/1.0 with LF-only line endings and no Host at all. */
static const char lf_http10_head[] = "GET /index.html HTTP/1.0\n"
                                     "Accept: */*\n"
                                     "\n";


/* ---- fixtures and helpers ----------------------------------------- */


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


static void
b_str(struct builder *b, const char *s)
{
    const size_t n = strlen(s);

    assert_true(n <= BUILD_CAP - b->len);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}


static void
b_fill(struct builder *b, uint8_t c, size_t n)
{
    assert_true(n <= BUILD_CAP - b->len);
    memset(b->buf + b->len, c, n);
    b->len += n;
}


/* Feeds data placed flush against the guard page. */
static enum http_head_rc
feed_guarded(struct http_head *h, struct guardpage *g, const uint8_t *data,
             size_t len)
{
    const uint8_t *p = guardpage_place(g, data, len);

    assert_non_null(p);
    return http_head_feed(h, p, len);
}


static enum http_head_rc
parse_whole(struct http_head *h, struct guardpage *g, const uint8_t *data,
            size_t len)
{
    http_head_init(h);
    return feed_guarded(h, g, data, len);
}


/*
 * Feeds data in chunks of chunk bytes, each flush against the guard page,
 * and checks that the outcome is sticky once decided.
 */
static enum http_head_rc
parse_chunked(struct http_head *h, struct guardpage *g, const uint8_t *data,
              size_t len, size_t chunk)
{
    enum http_head_rc rc = HTTP_HEAD_NEED_MORE;

    http_head_init(h);
    for (size_t pos = 0; pos < len; pos += chunk) {
        const size_t n = len - pos < chunk ? len - pos : chunk;
        const enum http_head_rc prev = rc;
        rc = feed_guarded(h, g, data + pos, n);
        if (prev != HTTP_HEAD_NEED_MORE) {
            assert_int_equal(rc, prev); /* sticky */
        }
    }
    return rc;
}


static void
assert_expect(const struct http_head *h, const struct expect *e, size_t len)
{
    assert_int_equal(h->rc, HTTP_HEAD_DONE);
    assert_string_equal(h->reason, "ok");
    if (e->host != NULL) {
        assert_true(h->has_host);
        assert_int_equal(h->host_len, strlen(e->host));
        assert_string_equal(h->host, e->host);
    } else {
        assert_false(h->has_host);
        assert_int_equal(h->host_len, 0);
        assert_string_equal(h->host, "");
    }
    assert_int_equal(h->version, e->version);
    assert_int_equal(h->head_len, e->head_len != 0 ? e->head_len : len);
}


static void
assert_same_results(const struct http_head *a, const struct http_head *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->has_host, b->has_host);
    assert_int_equal(a->host_len, b->host_len);
    assert_memory_equal(a->host, b->host, a->host_len + 1);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->head_len, b->head_len);
}


/*
 * The core recipe on one complete head: whole, every split point in two
 * calls, byte by byte, in 7-byte chunks, and every truncation is
 * NEED_MORE (never DONE) with reason "ok".
 */
static void
check_all_ways(struct guardpage *g, const uint8_t *data, size_t len,
               const struct expect *e)
{
    const size_t head_len = e->head_len != 0 ? e->head_len : len;
    struct http_head whole, h;

    assert_int_equal(parse_whole(&whole, g, data, len), HTTP_HEAD_DONE);
    assert_expect(&whole, e, len);

    for (size_t split = 0; split <= len; split++) {
        http_head_init(&h);
        const enum http_head_rc first = feed_guarded(&h, g, data, split);
        if (split < head_len) {
            assert_int_equal(first, HTTP_HEAD_NEED_MORE);
        } else {
            assert_int_equal(first, HTTP_HEAD_DONE);
        }
        assert_int_equal(feed_guarded(&h, g, data + split, len - split),
                         HTTP_HEAD_DONE);
        assert_same_results(&h, &whole);
    }

    assert_int_equal(parse_chunked(&h, g, data, len, 1), HTTP_HEAD_DONE);
    assert_same_results(&h, &whole);
    assert_int_equal(parse_chunked(&h, g, data, len, 7), HTTP_HEAD_DONE);
    assert_same_results(&h, &whole);

    for (size_t n = 0; n < head_len; n++) {
        assert_int_equal(parse_whole(&h, g, data, n), HTTP_HEAD_NEED_MORE);
        assert_string_equal(h.reason, "ok");
        assert_int_equal(h.head_len, n);
    }
}


/*
 * A head that must end in want with the given reason (NULL: any), the
 * same whole, byte by byte, in 7-byte chunks and (if small) at every split.
 */
static void
check_rc(struct guardpage *g, const uint8_t *data, size_t len,
         enum http_head_rc want, const char *reason)
{
    struct http_head whole, h;

    assert_int_equal(parse_whole(&whole, g, data, len), want);
    if (reason != NULL) {
        assert_string_equal(whole.reason, reason);
    }
    if (want != HTTP_HEAD_DONE && want != HTTP_HEAD_NEED_MORE) {
        assert_string_not_equal(whole.reason, "ok");
    }
    assert_true(whole.head_len <= len);

    assert_int_equal(parse_chunked(&h, g, data, len, 1), want);
    assert_same_results(&h, &whole);
    assert_int_equal(parse_chunked(&h, g, data, len, 7), want);
    assert_same_results(&h, &whole);
    if (len > ALL_SPLITS_MAX) {
        return;
    }
    for (size_t split = 0; split <= len; split++) {
        http_head_init(&h);
        (void)feed_guarded(&h, g, data, split);
        assert_int_equal(feed_guarded(&h, g, data + split, len - split), want);
        assert_same_results(&h, &whole);
    }
}


/* Names the failing case before check_rc() runs the full recipe on it. */
static void
check_bad_cases(struct guardpage *g, const struct bad_case *c, size_t n)
{
    struct http_head h;

    for (size_t i = 0; i < n; i++) {
        const uint8_t *const head = c[i].head;
        const enum http_head_rc rc = parse_whole(&h, g, head, c[i].len);
        if (rc != c[i].rc || strcmp(h.reason, c[i].reason) != 0) {
            fail_msg("case %zu: want %d \"%s\", got %d \"%s\"", i, (int)c[i].rc,
                     c[i].reason, (int)rc, h.reason);
        }
        check_rc(g, head, c[i].len, c[i].rc, c[i].reason);
    }
}


/* head (NUL-terminated) must be DONE with host (NULL: none). */
static void
check_host(struct guardpage *g, const char *head, const char *host)
{
    const struct expect e = {.host = host, .version = 11};

    check_all_ways(g, (const uint8_t *)head, strlen(head), &e);
}


/* ---- tests -------------------------------------------------------- */


static void
test_curl_head_one_call(void **state)
{
    struct http_head h;

    assert_int_equal(parse_whole(&h, *state, LIT(curl_head)), HTTP_HEAD_DONE);
    assert_true(h.has_host);
    assert_string_equal(h.host, "example.com");
    assert_int_equal(h.host_len, 11);
    assert_int_equal(h.version, 11);
    assert_int_equal(h.head_len, sizeof(curl_head) - 1);
    assert_string_equal(h.reason, "ok");
}


static void
test_every_split_byte_by_byte_truncation(void **state)
{
    const struct expect curl = {.host = "example.com", .version = 11};
    const struct expect browser = {
        .host = "www.example.org",
        .version = 11,
        .head_len = sizeof(browser_head) - 1 - 2, /* "{}" is body */
    };
    const struct expect proxy = {.host = "other.example", .version = 11};
    const struct expect lf10 = {.host = NULL, .version = 10};

    check_all_ways(*state, LIT(curl_head), &curl);
    check_all_ways(*state, LIT(browser_head), &browser);
    check_all_ways(*state, LIT(proxy_head), &proxy);
    check_all_ways(*state, LIT(lf_http10_head), &lf10);
}


static void
test_lf_only_and_mixed_line_endings(void **state)
{
    check_host(*state, "GET / HTTP/1.1\nHost: a.example\n\n", "a.example");
    check_host(*state, "GET / HTTP/1.1\r\nHost: a.example\n\r\n", "a.example");
    check_host(*state, "GET / HTTP/1.1\nHost: a.example\r\nX: y\n\n",
               "a.example");
}


static void
test_host_normalized(void **state)
{
    static const char *const cases[][2] = {
        {"GET / HTTP/1.1\r\nHost: Example.COM:8080\r\n\r\n", "example.com"},
        {"GET / HTTP/1.1\r\nHost: example.com.\r\n\r\n", "example.com"},
        {"GET / HTTP/1.1\r\nHost: EXAMPLE.com.:443\r\n\r\n", "example.com"},
        {"GET / HTTP/1.1\r\nhOsT: a.example\r\n\r\n", "a.example"},
        {"GET / HTTP/1.1\r\nHost:a.example\r\n\r\n", "a.example"},
        {"GET / HTTP/1.1\r\nHost: \t a.example \t \r\n\r\n", "a.example"},
        {"GET / HTTP/1.1\r\nHost: a.example:1\r\n\r\n", "a.example"},
        {"GET / HTTP/1.1\r\nHost: a.example:65535\r\n\r\n", "a.example"},
        {"GET / HTTP/1.1\r\nHost: 192.0.2.1:80\r\n\r\n", "192.0.2.1"},
        {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "::1"},
        {"GET / HTTP/1.1\r\nHost: [2001:DB8::1]\r\n\r\n", "2001:db8::1"},
        {"GET / HTTP/1.1\r\nHost: a_b~c-d.example\r\n\r\n", "a_b~c-d.example"},
        {"GET / HTTP/1.1\r\nHost: x!$&'()*+,;=%41\r\n\r\n", "x!$&'()*+,;=%41"},
        /* Names that only start like "host" are other fields. */
        {"GET / HTTP/1.1\r\nHostname: x\r\nHos: y\r\nHost: z\r\n\r\n", "z"},
        {"GET / HTTP/1.1\r\nX-Host: x y\r\nHost: z\r\n\r\n", "z"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        check_host(*state, cases[i][0], cases[i][1]);
    }
}


static void
test_host_length_limit(void **state)
{
    struct builder b = {0};
    struct http_head h;

    b_str(&b, "GET / HTTP/1.1\r\nHost: ");
    b_fill(&b, 'A', HTTP_HEAD_HOST_MAX);
    b_str(&b, ":80\r\n\r\n");
    assert_int_equal(parse_whole(&h, *state, b.buf, b.len), HTTP_HEAD_DONE);
    assert_int_equal(h.host_len, HTTP_HEAD_HOST_MAX);
    assert_int_equal(strlen(h.host), HTTP_HEAD_HOST_MAX);
    for (size_t i = 0; i < HTTP_HEAD_HOST_MAX; i++) {
        assert_int_equal(h.host[i], 'a');
    }
    check_rc(*state, b.buf, b.len, HTTP_HEAD_DONE, "ok");

    b.len = 0;
    b_str(&b, "GET / HTTP/1.1\r\nHost: ");
    b_fill(&b, 'a', HTTP_HEAD_HOST_MAX + 1);
    b_str(&b, "\r\n\r\n");
    check_rc(*state, b.buf, b.len, HTTP_HEAD_MALFORMED,
             "host longer than 255 bytes");

    /* The trailing dot counts while the host is read. */
    b.len = 0;
    b_str(&b, "GET / HTTP/1.1\r\nHost: ");
    b_fill(&b, 'a', HTTP_HEAD_HOST_MAX);
    b_str(&b, ".\r\n\r\n");
    check_rc(*state, b.buf, b.len, HTTP_HEAD_MALFORMED,
             "host longer than 255 bytes");

    /* The same limits apply to an absolute-form target. */
    b.len = 0;
    b_str(&b, "GET http://");
    b_fill(&b, 'a', HTTP_HEAD_HOST_MAX);
    b_str(&b, "/ HTTP/1.1\r\n\r\n");
    assert_int_equal(parse_whole(&h, *state, b.buf, b.len), HTTP_HEAD_DONE);
    assert_int_equal(h.host_len, HTTP_HEAD_HOST_MAX);
    b.len = 0;
    b_str(&b, "GET http://");
    b_fill(&b, 'a', HTTP_HEAD_HOST_MAX + 1);
    b_str(&b, "/ HTTP/1.1\r\n\r\n");
    check_rc(*state, b.buf, b.len, HTTP_HEAD_MALFORMED,
             "host longer than 255 bytes");
}


static void
test_absolute_form(void **state)
{
    static const char *const cases[][2] = {
        /* The target alone names the host (HTTP/1.1 should send Host). */
        {"GET http://A.Example/ HTTP/1.1\r\n\r\n", "a.example"},
        {"GET https://a.example HTTP/1.1\r\n\r\n", "a.example"},
        {"GET http://a.example:8080?q HTTP/1.1\r\n\r\n", "a.example"},
        {"GET http://a.example.#f HTTP/1.1\r\n\r\n", "a.example"},
        {"GET http://[::1]:80/ HTTP/1.1\r\n\r\n", "::1"},
        {"GET HTTP://a.example/x/y HTTP/1.1\r\n\r\n", "a.example"},
        {"GET svn+ssh://a.example/ HTTP/1.1\r\n\r\n", "a.example"},
        /* A Host that agrees, by host: ports and case may differ. */
        {"GET http://a.example/ HTTP/1.1\r\nHost: A.EXAMPLE.\r\n\r\n",
         "a.example"},
        {"GET http://a.example:1/ HTTP/1.1\r\nHost: a.example:2\r\n\r\n",
         "a.example"},
        /* An empty Host names nothing, so it does not disagree. */
        {"GET http://a.example/ HTTP/1.1\r\nHost:\r\n\r\n", "a.example"},
        /* Targets that are not absolute-form with an authority. */
        {"GET /http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
         "a.example"},
        {"GET urn:b.example HTTP/1.1\r\nHost: a.example\r\n\r\n", "a.example"},
        {"GET http:/b.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
         "a.example"},
        {"GET 1http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
         "a.example"},
        {"OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", "a.example"},
        /* authority-form: routing uses Host (see http_head.c). */
        {"CONNECT b.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
         "a.example"},
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        check_host(*state, cases[i][0], cases[i][1]);
    }

    const struct expect e10 = {.host = "a.example", .version = 10};
    check_all_ways(*state, LIT("GET http://a.example/ HTTP/1.0\r\n\r\n"), &e10);
}


static void
test_absolute_form_malformed(void **state)
{
    static const struct bad_case cases[] = {
        {LIT("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED,
         "Host header differs from the request-target host"},
        {LIT("GET http://a.example/ HTTP/1.1\r\nHost: a.example.com\r\n\r\n"),
         HTTP_HEAD_MALFORMED,
         "Host header differs from the request-target host"},
        {LIT("GET http://a.example/ HTTP/1.1\r\nHost: a.exampl\r\n\r\n"),
         HTTP_HEAD_MALFORMED,
         "Host header differs from the request-target host"},
        {LIT("GET http://u:p@a.example/ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "userinfo in request-target"},
        {LIT("GET http://a.example@b.example/ HTTP/1.1\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "userinfo in request-target"},
        {LIT("GET http://a%20b\"c@b.example/ HTTP/1.1\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "userinfo in request-target"},
        {LIT("GET http://a\"b/@c HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid byte in host"},
        {LIT("GET http:///x HTTP/1.1\r\nHost: a.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "empty host in request-target"},
        {LIT("GET http:// HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "empty host in request-target"},
        {LIT("GET http://a\x80.example/ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid byte in host"},
        {LIT("GET http://a.example:/ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "port is not 1 to 5 digits"},
        {LIT("GET http://[::1]x/ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "bytes after an IP literal"},
        {LIT("GET http://[::1 HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "unclosed IP literal"},
        {LIT("GET http://[::1/ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "unclosed IP literal"},
        {LIT("GET http://./ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "host is a lone dot"},
        {LIT("GET http://a.example../ HTTP/1.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "host ends with an empty label"},
        /* The target error waits for the version: not HTTP/1.x wins. */
        {LIT("GET http://u@a.example/ HTTP/2.0\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "HTTP major version is not 1"},
        /* A second Host is a duplicate even when both agree. */
        {LIT("GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n"
             "Host: a.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "duplicate Host header"},
    };

    check_bad_cases(*state, cases, N_ELEMS(cases));
}


static void
test_no_host(void **state)
{
    const struct expect e11 = {.host = NULL, .version = 11};
    const struct expect e10 = {.host = NULL, .version = 10};

    check_all_ways(*state, LIT("GET / HTTP/1.1\r\n\r\n"), &e11);
    check_all_ways(*state, LIT("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"), &e11);
    check_all_ways(*state, LIT("GET / HTTP/1.0\r\n\r\n"), &e10);
    check_all_ways(*state, LIT("GET / HTTP/1.1\r\nHost:\r\n\r\n"), &e11);
    check_all_ways(*state, LIT("GET / HTTP/1.1\r\nHost: \t \r\n\r\n"), &e11);
    check_all_ways(*state, LIT("GET / HTTP/1.0\nHost:\n\n"), &e10);
}


static void
test_host_malformed(void **state)
{
#define H(v) LIT("GET / HTTP/1.1\r\nHost: " v "\r\n\r\n"), HTTP_HEAD_MALFORMED
    static const struct bad_case cases[] = {
        {LIT("GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "duplicate Host header"},
        {LIT("GET / HTTP/1.1\r\nHost: a\r\nX: y\r\nhost: b\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "duplicate Host header"},
        {LIT("GET / HTTP/1.1\r\nHost:\r\nHost: a.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "duplicate Host header"},
        {LIT("GET / HTTP/1.1\r\nHost : a.example\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "whitespace between header name and colon"},
        {LIT("GET / HTTP/1.1\r\nHost\t: a.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "whitespace between header name and colon"},
        {LIT("GET / HTTP/1.1\r\nHost: a\r\n .example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "header line starts with whitespace (obs-fold)"},
        {LIT("GET / HTTP/1.1\r\nHost:\r\n\ta.example\r\n\r\n"),
         HTTP_HEAD_MALFORMED, "header line starts with whitespace (obs-fold)"},
        {LIT("GET / HTTP/1.1\r\n Host: a.example\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "header line starts with whitespace (obs-fold)"},
        {H("a example"), "whitespace inside the Host value"},
        {H("a.example :80"), "whitespace inside the Host value"},
        {H("a/b"), "invalid byte in host"},
        {H("a@b"), "invalid byte in host"},
        {H("a\"b"), "invalid byte in host"},
        {H("a\x80"), "invalid byte in host"},
        {H("a\x7f"), "invalid byte in host"},
        {H("a\x01"), "invalid byte in host"},
        {H("a\0b"), "invalid byte in host"},
        {H("\0"), "invalid byte in host"},
        {H("a[b]"), "invalid byte in host"},
        {H("a]"), "invalid byte in host"},
        {H("a\rb"), "CR not followed by LF"},
        {H("a.example:"), "port is not 1 to 5 digits"},
        {H("a.example:123456"), "port is not 1 to 5 digits"},
        {H("a.example:8x"), "port is not 1 to 5 digits"},
        {H("a.example:80:80"), "port is not 1 to 5 digits"},
        {H("a.example:-1"), "port is not 1 to 5 digits"},
        {H(":80"), "port without a host"},
        {H("[::1"), "unclosed IP literal"},
        {H("[::1]x"), "bytes after an IP literal"},
        {H("[::1]:"), "port is not 1 to 5 digits"},
        {H("[]"), "empty IP literal"},
        {H("[[::1]]"), "invalid byte in host"},
        {H("[::1%eth0 ]"), "whitespace inside the Host value"},
        {H("."), "host is a lone dot"},
        {H(".:80"), "host is a lone dot"},
        /* "a.example.." would become "a.example" once more downstream. */
        {H("a.example.."), "host ends with an empty label"},
        {H("a.example..:80"), "host ends with an empty label"},
        {H(".."), "host ends with an empty label"},
    };
#undef H

    check_bad_cases(*state, cases, N_ELEMS(cases));
}


static void
test_other_fields(void **state)
{
    static const struct bad_case cases[] = {
        {LIT("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "NUL in header value"},
        {LIT("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "CR not followed by LF"},
        {LIT("GET / HTTP/1.1\r\nX a\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "whitespace between header name and colon"},
        {LIT("GET / HTTP/1.1\r\nXa\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "header line without a colon"},
        {LIT("GET / HTTP/1.1\r\nXa\n\n"), HTTP_HEAD_MALFORMED,
         "header line without a colon"},
        {LIT("GET / HTTP/1.1\r\n: a\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "empty header name"},
        {LIT("GET / HTTP/1.1\r\nX(y): a\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid byte in header name"},
        {LIT("GET / HTTP/1.1\r\n\x80: a\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid byte in header name"},
        {LIT("GET / HTTP/1.1\r\nX: a\r\n\rX"), HTTP_HEAD_MALFORMED,
         "CR not followed by LF"},
    };

    check_bad_cases(*state, cases, N_ELEMS(cases));
}


static void
test_not_http(void **state)
{
    /* A TLS 1.0 record header carrying a ClientHello. */
    static const uint8_t tls_record[] = {0x16, 0x03, 0x01, 0x00, 0xb6, 0x01};
    /* The HTTP/2 connection preface (RFC 9113 §3.4). */
    static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const struct bad_case cases[] = {
        {LIT("\0GET / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "first byte cannot start an HTTP method"},
        {LIT(" GET / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "first byte cannot start an HTTP method"},
        {LIT("\tGET / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "first byte cannot start an HTTP method"},
        {LIT("\r\r\nGET / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "CR not followed by LF before the request line"},
        {LIT("\r\n\r\n\n\r\n\r\nGET / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "too many empty lines before the request line"},
        {LIT("SSH-2.0-OpenSSH_9.2p1\r\n"), HTTP_HEAD_NOT_HTTP,
         "method not followed by a space"},
        {LIT("GET\r\n"), HTTP_HEAD_NOT_HTTP, "method not followed by a space"},
        {LIT("GE(T / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "method not followed by a space"},
        {LIT("GET /\r\n"), HTTP_HEAD_NOT_HTTP,
         "request line without an HTTP version (HTTP/0.9)"},
        {LIT("GET /\n"), HTTP_HEAD_NOT_HTTP,
         "request line without an HTTP version (HTTP/0.9)"},
        {LIT("GET  / HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "empty request-target"},
        {LIT("GET /\x01 HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "control byte in request-target"},
        {LIT("GET /\x7f HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "control byte in request-target"},
        {LIT("GET / FTP/1.0\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "request line does not end in an HTTP version"},
        {LIT("GET / http/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "request line does not end in an HTTP version"},
        {LIT("GET /  HTTP/1.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "request line does not end in an HTTP version"},
        {LIT("GET / HTTP/x.1\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "request line does not end in an HTTP version"},
        {LIT("GET / HTTP/0.9\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "HTTP major version is not 1"},
        {LIT("GET / HTTP/3.0\r\n\r\n"), HTTP_HEAD_NOT_HTTP,
         "HTTP major version is not 1"},
    };
    struct http_head h;

    check_bad_cases(*state, cases, N_ELEMS(cases));
    check_rc(*state, LIT(h2_preface), HTTP_HEAD_NOT_HTTP,
             "HTTP major version is not 1");
    check_rc(*state, tls_record, sizeof(tls_record), HTTP_HEAD_NOT_HTTP,
             "first byte cannot start an HTTP method");

    /* The first byte decides at once. */
    http_head_init(&h);
    assert_int_equal(feed_guarded(&h, *state, tls_record, 1),
                     HTTP_HEAD_NOT_HTTP);
    assert_int_equal(h.head_len, 1);

    /* Up to HTTP_HEAD_LEAD_MAX empty lines are ignored. */
    const struct expect lead = {.host = "a.example", .version = 11};
    check_all_ways(*state,
                   LIT("\r\n\n\r\n\nGET / HTTP/1.1\r\nHost: a.example\r\n\r\n"),
                   &lead);
}


static void
test_method_length(void **state)
{
    struct builder b = {0};
    const struct expect e = {.host = "a.example", .version = 11};

    b_fill(&b, 'M', HTTP_HEAD_METHOD_MAX);
    b_str(&b, " / HTTP/1.1\r\nHost: a.example\r\n\r\n");
    check_all_ways(*state, b.buf, b.len, &e);

    b.len = 0;
    b_fill(&b, 'M', HTTP_HEAD_METHOD_MAX + 1);
    b_str(&b, " / HTTP/1.1\r\nHost: a.example\r\n\r\n");
    check_rc(*state, b.buf, b.len, HTTP_HEAD_NOT_HTTP,
             "method longer than 32 bytes");

    /* Any token is a method, even an odd one. */
    check_host(*state, "m!#$%&'*+-.^_`|~0 / HTTP/1.1\r\nHost: a\r\n\r\n", "a");
}


static void
test_request_line_malformed(void **state)
{
    static const struct bad_case cases[] = {
        {LIT("GET / HTTP/1.2\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "HTTP version is neither 1.0 nor 1.1"},
        {LIT("GET / HTTP/1.9\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "HTTP version is neither 1.0 nor 1.1"},
        {LIT("GET / HTTP/1.x\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid HTTP version"},
        {LIT("GET / HTTP/1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid HTTP version"},
        {LIT("GET / HTTP/11.1\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "invalid HTTP version"},
        {LIT("GET / HTTP/1.10\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "bytes after the HTTP version in the request line"},
        {LIT("GET / HTTP/1.1 \r\n\r\n"), HTTP_HEAD_MALFORMED,
         "bytes after the HTTP version in the request line"},
        {LIT("GET / HTTP/1.1\rX\r\n\r\n"), HTTP_HEAD_MALFORMED,
         "CR not followed by LF"},
    };

    check_bad_cases(*state, cases, N_ELEMS(cases));
}


/*
 * A line may hold HTTP_HEAD_LINE_MAX bytes with its ending, request line
 * and header lines alike; one more byte is MALFORMED.
 */
static void
test_line_limit(void **state)
{
    static const char *const endings[] = {"\r\n", "\n"};
    struct builder b = {0};
    struct http_head h;

    for (size_t i = 0; i < N_ELEMS(endings); i++) {
        const char *const eol = endings[i];
        const size_t eol_len = strlen(eol);

        for (size_t extra = 0; extra <= 1; extra++) {
            const enum http_head_rc want =
                extra == 0 ? HTTP_HEAD_DONE : HTTP_HEAD_MALFORMED;
            const char *const reason =
                extra == 0 ? "ok" : "line longer than 8192 bytes";

            /* Header line: "X: " + filler + eol. */
            b.len = 0;
            b_str(&b, "GET / HTTP/1.1");
            b_str(&b, eol);
            b_str(&b, "X: ");
            b_fill(&b, 'v', HTTP_HEAD_LINE_MAX - 3 - eol_len + extra);
            b_str(&b, eol);
            b_str(&b, "Host: a.example");
            b_str(&b, eol);
            b_str(&b, eol);
            check_rc(*state, b.buf, b.len, want, reason);

            /* Request line: "GET /" + filler + " HTTP/1.1" + eol. */
            b.len = 0;
            b_str(&b, "GET /");
            b_fill(&b, 'p', HTTP_HEAD_LINE_MAX - 14 - eol_len + extra);
            b_str(&b, " HTTP/1.1");
            b_str(&b, eol);
            b_str(&b, eol);
            check_rc(*state, b.buf, b.len, want, reason);

            /* Host line: the host limit is hit first, so a long port. */
            b.len = 0;
            b_str(&b, "GET / HTTP/1.1");
            b_str(&b, eol);
            b_str(&b, "Host: a");
            b_fill(&b, ' ', HTTP_HEAD_LINE_MAX - 7 - eol_len + extra);
            b_str(&b, eol);
            b_str(&b, eol);
            check_rc(*state, b.buf, b.len, want, reason);
            if (extra == 0) {
                assert_int_equal(parse_whole(&h, *state, b.buf, b.len),
                                 HTTP_HEAD_DONE);
                assert_string_equal(h.host, "a");
            }
        }
    }

    /* The line that never ends is refused as soon as it is too long. */
    b.len = 0;
    b_str(&b, "GET / HTTP/1.1\r\nX: ");
    b_fill(&b, 'v', 2 * HTTP_HEAD_LINE_MAX);
    assert_int_equal(parse_whole(&h, *state, b.buf, b.len),
                     HTTP_HEAD_MALFORMED);
    assert_int_equal(h.head_len, 16 + HTTP_HEAD_LINE_MAX + 1);
}


static void
test_field_count_limit(void **state)
{
    struct builder b = {0};
    const struct expect e = {.host = "a.example", .version = 11};

    b_str(&b, "GET / HTTP/1.1\r\nHost: a.example\r\n");
    for (size_t i = 1; i < HTTP_HEAD_FIELDS_MAX; i++) {
        b_str(&b, "X-F: v\r\n");
    }
    const size_t before_end = b.len;
    b_str(&b, "\r\n");
    check_all_ways(*state, b.buf, b.len, &e);

    b.len = before_end;
    b_str(&b, "X-F: v\r\n\r\n");
    check_rc(*state, b.buf, b.len, HTTP_HEAD_MALFORMED,
             "more than 100 header fields");
}


/* DONE comes at the empty line; the body after it is never read. */
static void
test_body_not_read(void **state)
{
    static struct builder b;
    const size_t head_len = sizeof(curl_head) - 1;
    const struct expect e = {
        .host = "example.com", .version = 11, .head_len = head_len};
    struct http_head h;

    b.len = 0;
    b_str(&b, curl_head);
    b_fill(&b, 'B', BODY_LEN);
    assert_int_equal(parse_whole(&h, *state, b.buf, b.len), HTTP_HEAD_DONE);
    assert_expect(&h, &e, b.len);
    assert_int_equal(parse_chunked(&h, *state, b.buf, b.len, 1000),
                     HTTP_HEAD_DONE);
    assert_expect(&h, &e, b.len);

    /* A body that looks like a head changes nothing either. */
    b.len = 0;
    b_str(&b, curl_head);
    b_str(&b, "GET / HTTP/1.1\r\nHost: other.example\r\n\r\n");
    check_all_ways(*state, b.buf, b.len, &e);

    /*
     * The head ends at the last readable byte and BODY_LEN unmapped bytes
     * follow: a parser that read one byte of the "body" would fault.
     */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t hole = (BODY_LEN + page - 1) / page * page;
    uint8_t *const map = mmap(NULL, page + hole, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, hole, PROT_NONE), 0);
    uint8_t *const start = map + page - head_len;
    memcpy(start, curl_head, head_len);
    http_head_init(&h);
    assert_int_equal(http_head_feed(&h, start, head_len + BODY_LEN),
                     HTTP_HEAD_DONE);
    assert_expect(&h, &e, head_len);
    munmap(map, page + hole);
}


static void
test_sticky_and_null(void **state)
{
    struct http_head h, copy;

    /* NULL with length 0 changes nothing, before and after the outcome. */
    http_head_init(&h);
    assert_int_equal(http_head_feed(&h, NULL, 0), HTTP_HEAD_NEED_MORE);
    assert_int_equal(h.head_len, 0);
    assert_int_equal(feed_guarded(&h, *state, LIT(curl_head)), HTTP_HEAD_DONE);
    copy = h;
    assert_int_equal(http_head_feed(&h, NULL, 0), HTTP_HEAD_DONE);
    assert_int_equal(feed_guarded(&h, *state, LIT("X: y\r\n\r\n")),
                     HTTP_HEAD_DONE);
    assert_int_equal(feed_guarded(&h, *state, LIT("\x16\x03")), HTTP_HEAD_DONE);
    assert_same_results(&h, &copy);

    assert_int_equal(parse_whole(&h, *state, LIT("\x16\x03\x01")),
                     HTTP_HEAD_NOT_HTTP);
    assert_int_equal(h.head_len, 1);
    assert_int_equal(feed_guarded(&h, *state, LIT(curl_head)),
                     HTTP_HEAD_NOT_HTTP);
    assert_int_equal(h.head_len, 1);

    assert_int_equal(parse_whole(&h, *state, LIT("GET / HTTP/1.5\r\n")),
                     HTTP_HEAD_MALFORMED);
    assert_int_equal(h.head_len, 14);
    assert_int_equal(feed_guarded(&h, *state, LIT(curl_head)),
                     HTTP_HEAD_MALFORMED);
    assert_int_equal(h.head_len, 14);

    /* init starts over. */
    http_head_init(&h);
    assert_int_equal(feed_guarded(&h, *state, LIT(lf_http10_head)),
                     HTTP_HEAD_DONE);
    assert_int_equal(h.version, 10);
    assert_false(h.has_host);
}


int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_guard, teardown_guard)
    const struct CMUnitTest tests[] = {
        T(test_curl_head_one_call),
        T(test_every_split_byte_by_byte_truncation),
        T(test_lf_only_and_mixed_line_endings),
        T(test_host_normalized),
        T(test_host_length_limit),
        T(test_absolute_form),
        T(test_absolute_form_malformed),
        T(test_no_host),
        T(test_host_malformed),
        T(test_other_fields),
        T(test_not_http),
        T(test_method_length),
        T(test_request_line_malformed),
        T(test_line_limit),
        T(test_field_count_limit),
        T(test_body_not_read),
        T(test_sticky_and_null),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
