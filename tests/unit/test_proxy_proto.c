/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/proto/proxy_proto.c. Every input is copied flush
 * against a PROT_NONE guard page (guardpage.h) before it is fed, so any
 * over-read faults. Fixtures are annotated byte arrays from the examples
 * of HAProxy's doc/proxy-protocol.txt. The recipe follows DESIGN.md:
 * whole, every split in two and in three, byte by byte, every truncation,
 * the header fused with its payload; every malformed input is refused at
 * the first byte that shows it, and never later.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guardpage.h"
#include "proto/proxy_proto.h"


#define GUARD_CAP 8192 /* largest input placed against the guard */
#define BUF_CAP 8192   /* largest input built by a test */


/* Results a test expects after DONE. */
struct expect {
    unsigned version;
    bool is_local;
    const char *src; /* address text; NULL when is_local */
    uint16_t sport;
    const char *dst;
    uint16_t dport;
    const char *authority; /* "" when none */
    size_t consumed;
};

/* A byte buffer a test assembles an input in. */
struct bytes {
    uint8_t buf[BUF_CAP];
    size_t len;
};


static int setup_guard(void **state);
static int teardown_guard(void **state);
static void by_add(struct bytes *b, const void *p, size_t n);
static void by_str(struct bytes *b, const char *s);
static void by_u8(struct bytes *b, uint8_t v);
static void by_u16(struct bytes *b, uint16_t v);
static void by_v2_hdr(struct bytes *b, uint8_t ver_cmd, uint8_t fam,
                      uint16_t len);
static struct sockaddr_storage make_sa(const char *text, uint16_t port);
static enum proxy_proto_rc feed_guarded(struct proxy_proto *p,
                                        struct guardpage *g,
                                        const uint8_t *data, size_t len);
static enum proxy_proto_rc parse_whole(struct proxy_proto *p,
                                       struct guardpage *g, const uint8_t *data,
                                       size_t len);
static enum proxy_proto_rc parse_chunked(struct proxy_proto *p,
                                         struct guardpage *g,
                                         const uint8_t *data, size_t len,
                                         size_t chunk);
static void assert_expect(const struct proxy_proto *p, const struct expect *e);
static void assert_same_results(const struct proxy_proto *a,
                                const struct proxy_proto *b);
static void check_all_ways(struct guardpage *g, const uint8_t *data, size_t len,
                           const struct expect *e);
static void check_three_way_splits(struct guardpage *g, const uint8_t *data,
                                   size_t len);
static void check_malformed(struct guardpage *g, const uint8_t *data,
                            size_t len, size_t decided_at, const char *reason);
static void check_v1_line(struct guardpage *g, const char *line,
                          const char *reason);
static void check_round_trip(struct guardpage *g, unsigned version,
                             const char *src, uint16_t sport, const char *dst,
                             uint16_t dport, const char *authority);


/* ---- fixtures (spec examples) --------------------------------------- */


/* Spec §2.1's example line, followed by the HTTP request it carries. */
static const char v1_tcp4_line[] =
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
static const char v1_tcp4_payload[] =
    "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n";

static const struct expect v1_tcp4_expect = {
    .version = 1,
    .src = "192.168.0.1",
    .sport = 56324,
    .dst = "192.168.0.11",
    .dport = 443,
    .authority = "",
    .consumed = sizeof(v1_tcp4_line) - 1,
};

/* Spec §2.1's longest TCP6 line: 104 bytes. */
static const char v1_tcp6_line[] =
    "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

static const struct expect v1_tcp6_expect = {
    .version = 1,
    .src = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    .sport = 65535,
    .dst = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    .dport = 65535,
    .authority = "",
    .consumed = 104,
};

/* Spec §2.1's short UNKNOWN form (15 bytes) and worst case (107 bytes). */
static const char v1_unknown_short[] = "PROXY UNKNOWN\r\n";
static const char v1_unknown_worst[] =
    "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

/* The same connection as v1_tcp4_line in the binary format (§2.2). */
/* clang-format off */
static const uint8_t v2_tcp4[] = {
    /* signature */
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x21,                   /* version 2, command PROXY */
    0x11,                   /* AF_INET, STREAM */
    0x00, 0x0c,             /* len: 12 */
    192, 168, 0, 1,         /* src_addr */
    192, 168, 0, 11,        /* dst_addr */
    0xdc, 0x04,             /* src_port: 56324 */
    0x01, 0xbb,             /* dst_port: 443 */
};
/* clang-format on */

static const struct expect v2_tcp4_expect = {
    .version = 2,
    .src = "192.168.0.1",
    .sport = 56324,
    .dst = "192.168.0.11",
    .dport = 443,
    .authority = "",
    .consumed = sizeof(v2_tcp4),
};

/* TCP over IPv6 with a NOOP TLV, an AUTHORITY TLV and a CRC32C TLV. */
/* clang-format off */
static const uint8_t v2_tcp6_tlvs[] = {
    /* signature */
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x21,                   /* version 2, command PROXY */
    0x21,                   /* AF_INET6, STREAM */
    0x00, 0x42,             /* len: 36 + 5 + 14 + 7 + 4 = 66 */
    /* src_addr 2001:db8::1 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    /* dst_addr 2001:db8::2 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xc3, 0x50,             /* src_port: 50000 */
    0x01, 0xbb,             /* dst_port: 443 */
    0x04, 0x00, 0x02,       /* PP2_TYPE_NOOP, length 2 */
    0x00, 0x00,             /* padding */
    0x02, 0x00, 0x0b,       /* PP2_TYPE_AUTHORITY, length 11 */
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    0x03, 0x00, 0x04,       /* PP2_TYPE_CRC32C, length 4 (not checked) */
    0xde, 0xad, 0xbe, 0xef,
    0x05, 0x00, 0x01,       /* PP2_TYPE_UNIQUE_ID, length 1 */
    0x2a,
};
/* clang-format on */

static const struct expect v2_tcp6_tlvs_expect = {
    .version = 2,
    .src = "2001:db8::1",
    .sport = 50000,
    .dst = "2001:db8::2",
    .dport = 443,
    .authority = "example.com",
    .consumed = sizeof(v2_tcp6_tlvs),
};

/* A LOCAL header (health check), as the spec says senders send it. */
/* clang-format off */
static const uint8_t v2_local[] = {
    /* signature */
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x20,                   /* version 2, command LOCAL */
    0x00,                   /* AF_UNSPEC, UNSPEC */
    0x00, 0x00,             /* len: 0 */
};
/* clang-format on */

/*
 * LOCAL with a family and an address block: "Receivers MUST always
 * consider this field to skip the appropriate number of bytes and must
 * not assume zero is presented for LOCAL connections" (§2.2).
 */
/* clang-format off */
static const uint8_t v2_local_with_block[] = {
    /* signature */
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x20,                   /* version 2, command LOCAL */
    0x31,                   /* AF_UNIX, STREAM: ignored for LOCAL */
    0x00, 0x0f,             /* len: 15 */
    10, 0, 0, 1, 10, 0, 0, 2, 0x00, 0x50, 0x00, 0x51, /* ignored */
    0x02, 0x00, 0x00,       /* an AUTHORITY TLV: not parsed for LOCAL */
};
/* clang-format on */

/* PROXY with AF_UNSPEC: the receiver may accept it and use the socket. */
/* clang-format off */
static const uint8_t v2_proxy_unspec[] = {
    /* signature */
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
    0x21,                   /* version 2, command PROXY */
    0x00,                   /* AF_UNSPEC, UNSPEC */
    0x00, 0x04,             /* len: 4 */
    0xff, 0xff, 0xff, 0xff, /* skipped unparsed */
};
/* clang-format on */

static const struct expect local_expect_v1 = {
    .version = 1,
    .is_local = true,
    .authority = "",
};

static const struct expect local_expect_v2 = {
    .version = 2,
    .is_local = true,
    .authority = "",
};


/* ---- helpers -------------------------------------------------------- */


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
by_add(struct bytes *b, const void *p, size_t n)
{
    assert_true(n <= BUF_CAP - b->len);
    if (n > 0) {
        memcpy(b->buf + b->len, p, n);
    }
    b->len += n;
}


static void
by_str(struct bytes *b, const char *s)
{
    by_add(b, s, strlen(s));
}


static void
by_u8(struct bytes *b, uint8_t v)
{
    by_add(b, &v, 1);
}


static void
by_u16(struct bytes *b, uint16_t v)
{
    by_u8(b, (uint8_t)(v >> 8));
    by_u8(b, (uint8_t)v);
}


/* Appends the 16 fixed v2 bytes. */
static void
by_v2_hdr(struct bytes *b, uint8_t ver_cmd, uint8_t fam, uint16_t len)
{
    by_add(b, v2_local, 12);
    by_u8(b, ver_cmd);
    by_u8(b, fam);
    by_u16(b, len);
}


/* The sockaddr the parser must give for an address text and port. */
static struct sockaddr_storage
make_sa(const char *text, uint16_t port)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') == NULL) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, text, &sin->sin_addr), 1);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
    }
    return ss;
}


/* Feeds data placed flush against the guard page. */
static enum proxy_proto_rc
feed_guarded(struct proxy_proto *p, struct guardpage *g, const uint8_t *data,
             size_t len)
{
    const uint8_t *q = guardpage_place(g, data, len);

    assert_non_null(q);
    return proxy_proto_feed(p, q, len);
}


static enum proxy_proto_rc
parse_whole(struct proxy_proto *p, struct guardpage *g, const uint8_t *data,
            size_t len)
{
    proxy_proto_init(p);
    return feed_guarded(p, g, data, len);
}


/* Feeds data in chunks of chunk bytes; a final outcome must be sticky. */
static enum proxy_proto_rc
parse_chunked(struct proxy_proto *p, struct guardpage *g, const uint8_t *data,
              size_t len, size_t chunk)
{
    enum proxy_proto_rc rc = PROXY_PROTO_NEED_MORE;

    proxy_proto_init(p);
    for (size_t pos = 0; pos < len; pos += chunk) {
        const size_t n = len - pos < chunk ? len - pos : chunk;
        const enum proxy_proto_rc prev = rc;
        rc = feed_guarded(p, g, data + pos, n);
        if (prev != PROXY_PROTO_NEED_MORE) {
            assert_int_equal(rc, prev);
        }
    }
    return rc;
}


static void
assert_expect(const struct proxy_proto *p, const struct expect *e)
{
    struct sockaddr_storage zero;

    memset(&zero, 0, sizeof(zero));
    assert_string_equal(p->reason, "ok");
    assert_int_equal(p->version, e->version);
    assert_int_equal(p->is_local, e->is_local);
    if (e->is_local) {
        assert_memory_equal(&p->src, &zero, sizeof(zero));
        assert_memory_equal(&p->dst, &zero, sizeof(zero));
    } else {
        const struct sockaddr_storage src = make_sa(e->src, e->sport);
        const struct sockaddr_storage dst = make_sa(e->dst, e->dport);
        assert_memory_equal(&p->src, &src, sizeof(src));
        assert_memory_equal(&p->dst, &dst, sizeof(dst));
    }
    assert_int_equal(p->authority_len, strlen(e->authority));
    assert_string_equal(p->authority, e->authority);
    if (e->consumed != 0) {
        assert_int_equal(p->consumed, e->consumed);
    }
}


static void
assert_same_results(const struct proxy_proto *a, const struct proxy_proto *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->is_local, b->is_local);
    assert_memory_equal(&a->src, &b->src, sizeof(a->src));
    assert_memory_equal(&a->dst, &b->dst, sizeof(a->dst));
    assert_int_equal(a->authority_len, b->authority_len);
    assert_memory_equal(a->authority, b->authority, a->authority_len + 1);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->tlvs_off, b->tlvs_off);
    assert_int_equal(a->tlvs_len, b->tlvs_len);
}


/*
 * The core recipe on one complete header: whole, every split point in two
 * calls, byte by byte, 7-byte chunks, every truncation is NEED_MORE, and
 * the header fused with payload in one buffer, split anywhere, gives
 * consumed == the header length.
 */
static void
check_all_ways(struct guardpage *g, const uint8_t *data, size_t len,
               const struct expect *e)
{
    struct proxy_proto whole, p;
    struct bytes fused = {0};

    assert_int_equal(parse_whole(&whole, g, data, len), PROXY_PROTO_DONE);
    assert_expect(&whole, e);
    assert_int_equal(whole.consumed, len);

    for (size_t split = 0; split <= len; split++) {
        proxy_proto_init(&p);
        const enum proxy_proto_rc first = feed_guarded(&p, g, data, split);
        if (split < len) {
            assert_int_equal(first, PROXY_PROTO_NEED_MORE);
            assert_int_equal(p.consumed, split);
        }
        assert_int_equal(feed_guarded(&p, g, data + split, len - split),
                         PROXY_PROTO_DONE);
        assert_same_results(&p, &whole);
    }

    assert_int_equal(parse_chunked(&p, g, data, len, 1), PROXY_PROTO_DONE);
    assert_same_results(&p, &whole);
    assert_int_equal(parse_chunked(&p, g, data, len, 7), PROXY_PROTO_DONE);
    assert_same_results(&p, &whole);

    for (size_t n = 0; n < len; n++) {
        assert_int_equal(parse_whole(&p, g, data, n), PROXY_PROTO_NEED_MORE);
        assert_string_equal(p.reason, "ok");
        assert_int_equal(p.consumed, n);
    }

    /* Header and payload in one buffer, and split anywhere. */
    by_add(&fused, data, len);
    by_str(&fused, v1_tcp4_payload);
    assert_int_equal(parse_whole(&p, g, fused.buf, fused.len),
                     PROXY_PROTO_DONE);
    assert_same_results(&p, &whole);
    for (size_t split = 0; split <= fused.len; split++) {
        proxy_proto_init(&p);
        const enum proxy_proto_rc first = feed_guarded(&p, g, fused.buf, split);
        assert_int_equal(first, split < len ? PROXY_PROTO_NEED_MORE
                                            : PROXY_PROTO_DONE);
        assert_int_equal(
            feed_guarded(&p, g, fused.buf + split, fused.len - split),
            PROXY_PROTO_DONE);
        assert_same_results(&p, &whole);
    }
}


/* Every split into three calls (spec matrix row 25: three writes). */
static void
check_three_way_splits(struct guardpage *g, const uint8_t *data, size_t len)
{
    struct proxy_proto whole, p;

    assert_int_equal(parse_whole(&whole, g, data, len), PROXY_PROTO_DONE);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            proxy_proto_init(&p);
            feed_guarded(&p, g, data, i);
            feed_guarded(&p, g, data + i, j - i);
            assert_int_equal(feed_guarded(&p, g, data + j, len - j),
                             PROXY_PROTO_DONE);
            assert_same_results(&p, &whole);
        }
    }
}


/*
 * data is MALFORMED with reason, decided by its first decided_at bytes:
 * every shorter prefix is NEED_MORE, the decided_at-byte prefix and the
 * whole input are MALFORMED, byte by byte too, and consumed stops at
 * decided_at.
 */
static void
check_malformed(struct guardpage *g, const uint8_t *data, size_t len,
                size_t decided_at, const char *reason)
{
    struct proxy_proto p;

    assert_true(decided_at >= 1 && decided_at <= len);
    assert_int_equal(parse_whole(&p, g, data, len), PROXY_PROTO_MALFORMED);
    assert_string_equal(p.reason, reason);
    assert_int_equal(p.consumed, decided_at);
    assert_int_equal(parse_chunked(&p, g, data, len, 1), PROXY_PROTO_MALFORMED);
    assert_string_equal(p.reason, reason);
    assert_int_equal(p.consumed, decided_at);
    for (size_t n = 0; n < decided_at; n++) {
        assert_int_equal(parse_whole(&p, g, data, n), PROXY_PROTO_NEED_MORE);
    }
    assert_int_equal(parse_whole(&p, g, data, decided_at),
                     PROXY_PROTO_MALFORMED);
    /* Sticky: more bytes change nothing. */
    assert_int_equal(feed_guarded(&p, g, data, len), PROXY_PROTO_MALFORMED);
    assert_int_equal(p.consumed, decided_at);
}


/* A v1 line that must be MALFORMED with reason once it is all in. */
static void
check_v1_line(struct guardpage *g, const char *line, const char *reason)
{
    struct proxy_proto p;
    const size_t len = strlen(line);

    assert_int_equal(parse_whole(&p, g, (const uint8_t *)line, len),
                     PROXY_PROTO_MALFORMED);
    assert_string_equal(p.reason, reason);
    assert_int_equal(parse_chunked(&p, g, (const uint8_t *)line, len, 1),
                     PROXY_PROTO_MALFORMED);
    assert_string_equal(p.reason, reason);
}


/* build -> parse gives the same addresses and authority, every way. */
static void
check_round_trip(struct guardpage *g, unsigned version, const char *src,
                 uint16_t sport, const char *dst, uint16_t dport,
                 const char *authority)
{
    const struct sockaddr_storage s = make_sa(src, sport);
    const struct sockaddr_storage d = make_sa(dst, dport);
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    const size_t alen = authority != NULL ? strlen(authority) : 0;
    const struct expect e = {
        .version = version,
        .src = src,
        .sport = sport,
        .dst = dst,
        .dport = dport,
        .authority = authority != NULL ? authority : "",
    };

    const size_t n = proxy_proto_build(version, (const struct sockaddr *)&s,
                                       (const struct sockaddr *)&d, authority,
                                       alen, out, sizeof(out));
    assert_true(n > 0);
    if (version == 1) {
        assert_true(n <= PROXY_PROTO_V1_MAX_LEN);
    }
    check_all_ways(g, out, n, &e);

    /* Every cap short of n fails and writes nothing. */
    for (size_t cap = 0; cap < n; cap++) {
        uint8_t small[PROXY_PROTO_BUILD_MAX];
        memset(small, 0xa5, sizeof(small));
        assert_int_equal(proxy_proto_build(version, (const struct sockaddr *)&s,
                                           (const struct sockaddr *)&d,
                                           authority, alen, small, cap),
                         0);
        for (size_t i = 0; i < sizeof(small); i++) {
            assert_int_equal(small[i], 0xa5);
        }
    }
}


/* ---- v1 ------------------------------------------------------------- */


static void
test_v1_tcp4_spec_example(void **state)
{
    check_all_ways(*state, (const uint8_t *)v1_tcp4_line, strlen(v1_tcp4_line),
                   &v1_tcp4_expect);
    check_three_way_splits(*state, (const uint8_t *)v1_tcp4_line,
                           strlen(v1_tcp4_line));
}


static void
test_v1_tcp6_longest(void **state)
{
    assert_int_equal(strlen(v1_tcp6_line), 104);
    check_all_ways(*state, (const uint8_t *)v1_tcp6_line, strlen(v1_tcp6_line),
                   &v1_tcp6_expect);
}


static void
test_v1_tcp6_forms(void **state)
{
    static const char line[] = "PROXY TCP6 ::1 ::ffff:10.0.0.1 0 1\r\n";
    const struct expect e = {
        .version = 1,
        .src = "::1",
        .sport = 0,
        .dst = "::ffff:10.0.0.1",
        .dport = 1,
        .authority = "",
    };
    static const char upper[] =
        "PROXY TCP6 2001:DB8::A 2001:db8::b 80 8080\r\n";
    const struct expect eu = {
        .version = 1,
        .src = "2001:db8::a",
        .sport = 80,
        .dst = "2001:db8::b",
        .dport = 8080,
        .authority = "",
    };

    check_all_ways(*state, (const uint8_t *)line, strlen(line), &e);
    check_all_ways(*state, (const uint8_t *)upper, strlen(upper), &eu);
}


static void
test_v1_unknown(void **state)
{
    struct expect e = local_expect_v1;

    e.consumed = 15;
    check_all_ways(*state, (const uint8_t *)v1_unknown_short,
                   strlen(v1_unknown_short), &e);
    assert_int_equal(strlen(v1_unknown_worst), PROXY_PROTO_V1_MAX_LEN);
    e.consumed = PROXY_PROTO_V1_MAX_LEN;
    check_all_ways(*state, (const uint8_t *)v1_unknown_worst,
                   strlen(v1_unknown_worst), &e);

    /* Anything after "UNKNOWN " is ignored, even bytes TCP4 refuses. */
    static const char odd[] = "PROXY UNKNOWN x\x01\xff  garbage\r\n";
    e.consumed = strlen(odd);
    check_all_ways(*state, (const uint8_t *)odd, strlen(odd), &e);
}


static void
test_v1_no_crlf_within_107(void **state)
{
    struct bytes b = {0};

    /* 107 bytes without CRLF: refused at the 107th byte. */
    by_str(&b, "PROXY UNKNOWN ");
    while (b.len < PROXY_PROTO_V1_MAX_LEN) {
        by_u8(&b, 'a');
    }
    by_str(&b, "\r\n");
    check_malformed(*state, b.buf, b.len, PROXY_PROTO_V1_MAX_LEN,
                    "v1: no CRLF within 107 bytes");

    /* 106 bytes then CRLF: the CR is the 107th byte, no room for LF. */
    b.len = PROXY_PROTO_V1_MAX_LEN - 1;
    by_str(&b, "\r\n");
    check_malformed(*state, b.buf, b.len, PROXY_PROTO_V1_MAX_LEN,
                    "v1: no CRLF within 107 bytes");

    /* TCP4 digits without end. */
    b.len = 0;
    by_str(&b, "PROXY TCP4 ");
    while (b.len < 200) {
        by_u8(&b, '1');
    }
    check_malformed(*state, b.buf, b.len, PROXY_PROTO_V1_MAX_LEN,
                    "v1: no CRLF within 107 bytes");
}


static void
test_v1_line_endings(void **state)
{
    static const char lone_lf[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nGET /";
    static const char lone_cr[] = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET /";
    static const char lf_early[] = "PROXY TCP4 1.2\n";
    static const char unknown_lf[] = "PROXY UNKNOWN\n";
    static const char unknown_lf2[] = "PROXY UNKNOWN foo\nbar\r\n";
    static const char crcrlf[] = "PROXY UNKNOWN \r\r\n";

    check_malformed(*state, (const uint8_t *)lone_lf, strlen(lone_lf), 31,
                    "v1: LF without CR");
    check_malformed(*state, (const uint8_t *)lone_cr, strlen(lone_cr), 32,
                    "v1: CR not followed by LF");
    check_malformed(*state, (const uint8_t *)lf_early, strlen(lf_early),
                    strlen(lf_early), "v1: LF without CR");
    check_malformed(*state, (const uint8_t *)unknown_lf, strlen(unknown_lf),
                    strlen(unknown_lf), "v1: LF without CR");
    check_malformed(*state, (const uint8_t *)unknown_lf2, strlen(unknown_lf2),
                    18, "v1: LF without CR");
    check_malformed(*state, (const uint8_t *)crcrlf, strlen(crcrlf), 16,
                    "v1: CR not followed by LF");
}


static void
test_v1_prefix_and_token(void **state)
{
    static const struct {
        const char *in;
        size_t decided_at;
        const char *reason;
    } cases[] = {
        {"GET / HTTP/1.1\r\n", 1, "not a PROXY protocol header"},
        {"\x16\x03\x01\x00\x10", 1, "not a PROXY protocol header"},
        {"proxy TCP4 ", 1, "not a PROXY protocol header"},
        {"PROXZ TCP4 ", 5, "not a PROXY protocol header"},
        {"PROXY\r\n", 6, "not a PROXY protocol header"},
        {"PROXYTCP4 ", 6, "not a PROXY protocol header"},
        {"PROXY  TCP4 ", 7, "v1: unknown protocol"},
        {"PROXY TCP5 1.2.3.4", 10, "v1: unknown protocol"},
        {"PROXY tcp4 1.2.3.4", 7, "v1: unknown protocol"},
        {"PROXY TCP4\r\n", 11, "v1: unknown protocol"},
        {"PROXY TCP44 ", 11, "v1: unknown protocol"},
        {"PROXY UDP4 ", 8, "v1: unknown protocol"},
        {"PROXY UNKNOWNX\r\n", 14, "v1: unknown protocol"},
        {"PROXY UNKNOWN\t\r\n", 14, "v1: unknown protocol"},
        {"PROXY TCP4  1.2.3.4", 12, "v1: two spaces in a row"},
        {"PROXY TCP4 1.2.3.4  5", 20, "v1: two spaces in a row"},
        {"PROXY TCP4 ::1 ::1 1 2\r\n", 12, "v1: bad character"},
        {"PROXY TCP6 ::g ::1 1 2\r\n", 14, "v1: bad character"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", 28, "v1: bad character"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", 28, "v1: bad character"},
        {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 19, "v1: bad character"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_malformed(*state, (const uint8_t *)cases[i].in,
                        strlen(cases[i].in), cases[i].decided_at,
                        cases[i].reason);
    }
}


static void
test_v1_bad_fields(void **state)
{
    static const char *const bad_addr[] = {
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
        "PROXY TCP4 256.1.1.1 5.6.7.8 1 2\r\n",
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8. 1 2\r\n",
        "PROXY TCP4 1.2.3.4 1234567890123456 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 ::1 ::: 1 2\r\n",
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",
        "PROXY TCP6 12345::1 ::1 1 2\r\n",
        "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
        "PROXY TCP6 ::ffff:1.2.3 ::1 1 2\r\n",
        ("PROXY TCP6 "
         "1111:2222:3333:4444:5555:6666:7777:8888.1.2.3.4 ::1 1 2\r\n"),
    };
    static const char *const bad_port[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 000001 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1.5 2\r\n",
        "PROXY TCP6 ::1 ::2 1 ab\r\n",
        "PROXY TCP6 ::1 ::2 1 1:\r\n",
    };
    static const char *const bad_layout[] = {
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY TCP4 1.2.3.4\r\n",
        "PROXY TCP4 \r\n",
        "PROXY TCP6 ::1 ::2\r\n",
    };

    for (size_t i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
        check_v1_line(*state, bad_addr[i], "v1: bad address");
    }
    for (size_t i = 0; i < sizeof(bad_port) / sizeof(bad_port[0]); i++) {
        check_v1_line(*state, bad_port[i], "v1: bad port");
    }
    for (size_t i = 0; i < sizeof(bad_layout) / sizeof(bad_layout[0]); i++) {
        check_v1_line(*state, bad_layout[i], "v1: wrong number of fields");
    }
}


static void
test_v1_port_limits(void **state)
{
    static const char line[] = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
    const struct expect e = {
        .version = 1,
        .src = "0.0.0.0",
        .sport = 0,
        .dst = "255.255.255.255",
        .dport = 65535,
        .authority = "",
    };

    check_all_ways(*state, (const uint8_t *)line, strlen(line), &e);
}


/* ---- v2 ------------------------------------------------------------- */


static void
test_v2_tcp4(void **state)
{
    check_all_ways(*state, v2_tcp4, sizeof(v2_tcp4), &v2_tcp4_expect);
    check_three_way_splits(*state, v2_tcp4, sizeof(v2_tcp4));
}


static void
test_v2_tcp6_with_tlvs(void **state)
{
    check_all_ways(*state, v2_tcp6_tlvs, sizeof(v2_tcp6_tlvs),
                   &v2_tcp6_tlvs_expect);
    check_three_way_splits(*state, v2_tcp6_tlvs, sizeof(v2_tcp6_tlvs));
}


static void
test_v2_local_and_unspec(void **state)
{
    struct expect e = local_expect_v2;

    e.consumed = sizeof(v2_local);
    check_all_ways(*state, v2_local, sizeof(v2_local), &e);
    e.consumed = sizeof(v2_local_with_block);
    check_all_ways(*state, v2_local_with_block, sizeof(v2_local_with_block),
                   &e);
    e.consumed = sizeof(v2_proxy_unspec);
    check_all_ways(*state, v2_proxy_unspec, sizeof(v2_proxy_unspec), &e);

    /* LOCAL ignores the family byte, whatever it holds. */
    for (unsigned fam = 0; fam < 256; fam++) {
        struct bytes b = {0};
        struct proxy_proto p;
        by_v2_hdr(&b, 0x20, (uint8_t)fam, 0);
        assert_int_equal(parse_whole(&p, *state, b.buf, b.len),
                         PROXY_PROTO_DONE);
        assert_true(p.is_local);
    }
}


static void
test_v2_signature_version_command(void **state)
{
    uint8_t in[sizeof(v2_tcp4)];

    /* A wrong byte anywhere in the signature is decisive at once. */
    for (size_t i = 0; i < 12; i++) {
        memcpy(in, v2_tcp4, sizeof(in));
        in[i] ^= 0x40;
        check_malformed(*state, in, sizeof(in), i + 1,
                        "not a PROXY protocol header");
    }
    /* Version nibble: only 2. */
    for (unsigned v = 0; v < 16; v++) {
        if (v == 2) {
            continue;
        }
        memcpy(in, v2_tcp4, sizeof(in));
        in[12] = (uint8_t)(v << 4 | 1);
        check_malformed(*state, in, sizeof(in), 13, "v2: bad version");
    }
    /* Command nibble: LOCAL or PROXY. */
    for (unsigned c = 2; c < 16; c++) {
        memcpy(in, v2_tcp4, sizeof(in));
        in[12] = (uint8_t)(0x20 | c);
        check_malformed(*state, in, sizeof(in), 13, "v2: bad command");
    }
}


static void
test_v2_family_transport(void **state)
{
    uint8_t in[sizeof(v2_tcp4)];

    for (unsigned fam = 0; fam < 256; fam++) {
        if (fam == 0x00 || fam == 0x11 || fam == 0x21) {
            continue;
        }
        memcpy(in, v2_tcp4, sizeof(in));
        in[13] = (uint8_t)fam;
        check_malformed(*state, in, sizeof(in), 14,
                        "v2: family not TCP over IPv4/IPv6");
    }
}


static void
test_v2_length_field(void **state)
{
    struct bytes b = {0};
    struct proxy_proto p;

    /* len=0xffff: refused at the length field, nothing more is read. */
    by_v2_hdr(&b, 0x21, 0x11, 0xffff);
    by_add(&b, v2_tcp4 + 16, 12);
    check_malformed(*state, b.buf, b.len, 16, "v2: length field over the cap");

    b.len = 0;
    by_v2_hdr(&b, 0x20, 0x00, PROXY_PROTO_V2_MAX_LEN + 1);
    check_malformed(*state, b.buf, b.len, 16, "v2: length field over the cap");

    /* Shorter than the address block. */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 11);
    by_add(&b, v2_tcp4 + 16, 12);
    check_malformed(*state, b.buf, b.len, 16,
                    "v2: length shorter than the address block");
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x21, 35);
    by_add(&b, v2_tcp6_tlvs + 16, 36);
    check_malformed(*state, b.buf, b.len, 16,
                    "v2: length shorter than the address block");
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 0);
    check_malformed(*state, b.buf, b.len, 16,
                    "v2: length shorter than the address block");

    /* The cap itself is fine: addresses then one big NOOP TLV. */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, PROXY_PROTO_V2_MAX_LEN);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x04);
    by_u16(&b, PROXY_PROTO_V2_MAX_LEN - 12 - 3);
    while (b.len < 16 + PROXY_PROTO_V2_MAX_LEN) {
        by_u8(&b, 0x02); /* looks like AUTHORITY TLVs: must be skipped */
    }
    assert_int_equal(b.len, 4096);
    struct expect e = v2_tcp4_expect;
    e.consumed = 4096;
    check_all_ways(*state, b.buf, b.len, &e);

    /* A LOCAL block of the largest size is skipped. */
    b.len = 0;
    by_v2_hdr(&b, 0x20, 0x00, PROXY_PROTO_V2_MAX_LEN);
    while (b.len < 16 + PROXY_PROTO_V2_MAX_LEN) {
        by_u8(&b, 0xff);
    }
    assert_int_equal(parse_chunked(&p, *state, b.buf, b.len, 100),
                     PROXY_PROTO_DONE);
    assert_true(p.is_local);
    assert_int_equal(p.consumed, 4096);
}


static void
test_v2_tlv_overruns(void **state)
{
    struct bytes b = {0};

    /* A TLV whose length runs 2 bytes past the header. */
    by_v2_hdr(&b, 0x21, 0x11, 12 + 3 + 3);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x04);
    by_u16(&b, 5);
    by_str(&b, "abcde"); /* 2 of these are payload */
    check_malformed(*state, b.buf, b.len, 16 + 12 + 3,
                    "v2: TLV overruns the header");

    /* +-1 on a TLV length: exactly filling the header is fine, one more
     * byte overruns it, one fewer leaves a 1-byte tail. */
    for (uint16_t tlv_len = 4; tlv_len <= 6; tlv_len++) {
        b.len = 0;
        by_v2_hdr(&b, 0x21, 0x11, 12 + 3 + 5);
        by_add(&b, v2_tcp4 + 16, 12);
        by_u8(&b, 0x02);
        by_u16(&b, tlv_len);
        by_str(&b, "a.bcd");
        if (tlv_len == 5) {
            struct expect e = v2_tcp4_expect;
            e.authority = "a.bcd";
            e.consumed = b.len;
            check_all_ways(*state, b.buf, b.len, &e);
        } else if (tlv_len == 6) {
            check_malformed(*state, b.buf, b.len, 16 + 12 + 3,
                            "v2: TLV overruns the header");
        } else {
            check_malformed(*state, b.buf, b.len, 16 + 12 + 3 + 4,
                            "v2: TLV overruns the header");
        }
    }

    /* AUTHORITY claiming 0xffff bytes (HAProxy 488ee7fb's shape). */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 12 + 3 + 4);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x02);
    by_u16(&b, 0xffff);
    by_str(&b, "abcd");
    check_malformed(*state, b.buf, b.len, 16 + 12 + 3,
                    "v2: TLV overruns the header");

    /* 1 or 2 bytes after the addresses cannot be a TLV header: decided
     * at the end of the address block, before reading them. */
    for (uint16_t extra = 1; extra <= 2; extra++) {
        b.len = 0;
        by_v2_hdr(&b, 0x21, 0x11, (uint16_t)(12 + extra));
        by_add(&b, v2_tcp4 + 16, 12);
        by_str(&b, "\x02\x00");
        check_malformed(*state, b.buf, b.len, 16 + 12,
                        "v2: TLV overruns the header");
    }

    /* The same after a complete TLV. */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 12 + 3 + 1 + 2);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x04);
    by_u16(&b, 1);
    by_u8(&b, 0);
    by_str(&b, "\x02\x00");
    check_malformed(*state, b.buf, b.len, 16 + 12 + 4,
                    "v2: TLV overruns the header");
}


static void
test_v2_authority_rules(void **state)
{
    struct bytes b = {0};
    char name[256];

    memset(name, 'a', sizeof(name));

    /* 255 bytes: kept. */
    by_v2_hdr(&b, 0x21, 0x11, 12 + 3 + 255);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x02);
    by_u16(&b, 255);
    by_add(&b, name, 255);
    struct expect e = v2_tcp4_expect;
    char want[256];
    memcpy(want, name, 255);
    want[255] = '\0';
    e.authority = want;
    e.consumed = b.len;
    check_all_ways(*state, b.buf, b.len, &e);

    /* 256 bytes: refused at its TLV header. */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 12 + 3 + 256);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x02);
    by_u16(&b, 256);
    by_add(&b, name, 256);
    check_malformed(*state, b.buf, b.len, 16 + 12 + 3,
                    "v2: AUTHORITY TLV too long");

    /* Two AUTHORITY TLVs: ambiguous, refused at the second. */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 12 + 4 + 4);
    by_add(&b, v2_tcp4 + 16, 12);
    by_str(&b, "\x02");
    by_u16(&b, 1);
    by_str(&b, "a\x02");
    by_u16(&b, 1);
    by_str(&b, "b");
    check_malformed(*state, b.buf, b.len, 16 + 12 + 4 + 3,
                    "v2: duplicate AUTHORITY TLV");

    /* An empty AUTHORITY is accepted and gives "". */
    b.len = 0;
    by_v2_hdr(&b, 0x21, 0x11, 12 + 3);
    by_add(&b, v2_tcp4 + 16, 12);
    by_u8(&b, 0x02);
    by_u16(&b, 0);
    e = v2_tcp4_expect;
    e.consumed = b.len;
    check_all_ways(*state, b.buf, b.len, &e);
}


static void
test_v2_fused_payload_not_parsed(void **state)
{
    struct bytes b = {0};
    struct proxy_proto p;

    /* The payload looks like an AUTHORITY TLV; it must stay payload. */
    by_add(&b, v2_tcp4, sizeof(v2_tcp4));
    by_str(&b, "\x02\x00\x05hello\x02\x00\x05world");
    assert_int_equal(parse_whole(&p, *state, b.buf, b.len), PROXY_PROTO_DONE);
    assert_expect(&p, &v2_tcp4_expect);
    assert_int_equal(p.consumed, sizeof(v2_tcp4));
    assert_string_equal(p.authority, "");

    /* Payload bytes that would be garbage as TLVs, byte by byte too. */
    b.len = 0;
    by_add(&b, v2_tcp6_tlvs, sizeof(v2_tcp6_tlvs));
    by_str(&b, "\xff\xff\xff\x02\xff\xff");
    assert_int_equal(parse_chunked(&p, *state, b.buf, b.len, 1),
                     PROXY_PROTO_DONE);
    assert_expect(&p, &v2_tcp6_tlvs_expect);

    /* LOCAL, len 0, then a TLS record. */
    b.len = 0;
    by_add(&b, v2_local, sizeof(v2_local));
    by_str(&b, "\x16\x03\x01\x02\x00");
    assert_int_equal(parse_whole(&p, *state, b.buf, b.len), PROXY_PROTO_DONE);
    assert_int_equal(p.consumed, sizeof(v2_local));
}


static void
test_sticky_and_empty_feeds(void **state)
{
    struct proxy_proto p;

    proxy_proto_init(&p);
    assert_int_equal(proxy_proto_feed(&p, NULL, 0), PROXY_PROTO_NEED_MORE);
    assert_int_equal(p.consumed, 0);
    assert_string_equal(p.reason, "ok");
    assert_int_equal(p.version, 0);

    assert_int_equal(parse_whole(&p, *state, v2_tcp4, sizeof(v2_tcp4)),
                     PROXY_PROTO_DONE);
    assert_int_equal(feed_guarded(&p, *state, v2_tcp4, sizeof(v2_tcp4)),
                     PROXY_PROTO_DONE);
    assert_int_equal(proxy_proto_feed(&p, NULL, 0), PROXY_PROTO_DONE);
    assert_expect(&p, &v2_tcp4_expect);

    assert_int_equal(parse_whole(&p, *state, (const uint8_t *)"X", 1),
                     PROXY_PROTO_MALFORMED);
    assert_int_equal(feed_guarded(&p, *state, v2_tcp4, sizeof(v2_tcp4)),
                     PROXY_PROTO_MALFORMED);
    assert_string_equal(p.reason, "not a PROXY protocol header");
    assert_int_equal(p.consumed, 1);
}


/* ---- build ---------------------------------------------------------- */


static void
test_build_matches_fixtures(void **state)
{
    (void)state;
    const struct sockaddr_storage s = make_sa("192.168.0.1", 56324);
    const struct sockaddr_storage d = make_sa("192.168.0.11", 443);
    const struct sockaddr_storage s6 = make_sa("2001:db8::1", 50000);
    const struct sockaddr_storage d6 = make_sa("2001:db8::2", 443);
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    size_t n;

    n = proxy_proto_build(1, (const struct sockaddr *)&s,
                          (const struct sockaddr *)&d, NULL, 0, out,
                          sizeof(out));
    assert_int_equal(n, strlen(v1_tcp4_line));
    assert_memory_equal(out, v1_tcp4_line, n);

    n = proxy_proto_build(2, (const struct sockaddr *)&s,
                          (const struct sockaddr *)&d, NULL, 0, out,
                          sizeof(out));
    assert_int_equal(n, sizeof(v2_tcp4));
    assert_memory_equal(out, v2_tcp4, n);

    /* Exact cap is enough. */
    assert_int_equal(proxy_proto_build(2, (const struct sockaddr *)&s,
                                       (const struct sockaddr *)&d, "", 0, out,
                                       sizeof(v2_tcp4)),
                     sizeof(v2_tcp4));

    n = proxy_proto_build(2, NULL, NULL, NULL, 0, out, sizeof(out));
    assert_int_equal(n, sizeof(v2_local));
    assert_memory_equal(out, v2_local, n);

    n = proxy_proto_build(1, NULL, NULL, NULL, 0, out, sizeof(out));
    assert_int_equal(n, strlen(v1_unknown_short));
    assert_memory_equal(out, v1_unknown_short, n);

    /* TCP6 + AUTHORITY: the fixture's layout without NOOP/CRC/ID TLVs. */
    n = proxy_proto_build(2, (const struct sockaddr *)&s6,
                          (const struct sockaddr *)&d6, "example.com", 11, out,
                          sizeof(out));
    assert_int_equal(n, 16 + 36 + 3 + 11);
    assert_memory_equal(out, v2_tcp6_tlvs, 13);
    assert_int_equal(out[13], 0x21);
    assert_int_equal(out[14], 0);
    assert_int_equal(out[15], 36 + 3 + 11);
    assert_memory_equal(out + 16, v2_tcp6_tlvs + 16, 36);
    assert_memory_equal(out + 52, v2_tcp6_tlvs + 16 + 36 + 5, 3 + 11);
}


static void
test_build_invalid_inputs(void **state)
{
    (void)state;
    const struct sockaddr_storage s4 = make_sa("10.0.0.1", 1);
    const struct sockaddr_storage s6 = make_sa("::1", 2);
    struct sockaddr_storage un;
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    char name[256];
    const struct sockaddr *a4 = (const struct sockaddr *)&s4;
    const struct sockaddr *a6 = (const struct sockaddr *)&s6;

    memset(&un, 0, sizeof(un));
    un.ss_family = AF_UNIX;
    memset(name, 'a', sizeof(name));

    assert_int_equal(proxy_proto_build(0, a4, a4, NULL, 0, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(3, a4, a4, NULL, 0, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(1, a4, a6, NULL, 0, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(2, a6, a4, NULL, 0, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(2, a4, NULL, NULL, 0, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(2, (const struct sockaddr *)&un,
                                       (const struct sockaddr *)&un, NULL, 0,
                                       out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(2, a4, a4, name, 256, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(2, a4, a4, name, 255, out, sizeof(out)),
                     16 + 12 + 3 + 255);
    assert_int_equal(proxy_proto_build(1, a4, a4, "x", 1, out, sizeof(out)), 0);
    assert_int_equal(proxy_proto_build(2, NULL, NULL, "x", 1, out, sizeof(out)),
                     0);
    assert_int_equal(proxy_proto_build(2, a4, a4, NULL, 0, NULL, 100), 0);
    /* The largest header fits in PROXY_PROTO_BUILD_MAX. */
    assert_int_equal(
        proxy_proto_build(2, a6, a6, name, 255, out, PROXY_PROTO_BUILD_MAX),
        PROXY_PROTO_BUILD_MAX);
}


static void
test_round_trips(void **state)
{
    check_round_trip(*state, 1, "192.168.0.1", 56324, "192.168.0.11", 443,
                     NULL);
    check_round_trip(*state, 1, "0.0.0.0", 0, "255.255.255.255", 65535, NULL);
    check_round_trip(*state, 1, "2001:db8::1", 1, "::ffff:10.1.2.3", 65535,
                     NULL);
    check_round_trip(*state, 1, "1:2:3:4:5:6:7:8", 80, "::", 0, NULL);
    check_round_trip(*state, 2, "192.168.0.1", 56324, "192.168.0.11", 443,
                     NULL);
    check_round_trip(*state, 2, "192.168.0.1", 56324, "192.168.0.11", 443,
                     "example.com");
    check_round_trip(*state, 2, "2001:db8::1", 50000, "2001:db8::2", 443, NULL);
    check_round_trip(*state, 2, "2001:db8::1", 50000, "2001:db8::2", 443,
                     "www.example.org");
}


static void
test_round_trip_local(void **state)
{
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    struct proxy_proto p;

    for (unsigned v = 1; v <= 2; v++) {
        const size_t n =
            proxy_proto_build(v, NULL, NULL, NULL, 0, out, sizeof(out));
        assert_true(n > 0);
        assert_int_equal(parse_whole(&p, *state, out, n), PROXY_PROTO_DONE);
        assert_expect(&p, v == 1 ? &local_expect_v1 : &local_expect_v2);
        assert_int_equal(p.consumed, n);
    }
}


/* ---- $proxy_protocol_tlv_* ------------------------------------------ */


/* Where the TLV area lies: after the addresses, to the header's end. */
static void
test_tlv_area_offsets(void **state)
{
    struct proxy_proto p;

    assert_int_equal(
        parse_whole(&p, *state, v2_tcp6_tlvs, sizeof(v2_tcp6_tlvs)),
        PROXY_PROTO_DONE);
    assert_int_equal(p.tlvs_off, 16 + 36);
    assert_int_equal(p.tlvs_len, sizeof(v2_tcp6_tlvs) - 16 - 36);
    /* Every split gives the same (assert_same_results compares them). */
    check_all_ways(*state, v2_tcp6_tlvs, sizeof(v2_tcp6_tlvs),
                   &v2_tcp6_tlvs_expect);
    assert_int_equal(parse_whole(&p, *state, v2_tcp4, sizeof(v2_tcp4)),
                     PROXY_PROTO_DONE);
    assert_int_equal(p.tlvs_off, 16 + 12);
    assert_int_equal(p.tlvs_len, 0);
    assert_int_equal(parse_whole(&p, *state, v2_local_with_block,
                                 sizeof(v2_local_with_block)),
                     PROXY_PROTO_DONE);
    assert_int_equal(p.tlvs_len, 0);
    assert_int_equal(parse_whole(&p, *state, (const uint8_t *)v1_tcp4_line,
                                 strlen(v1_tcp4_line)),
                     PROXY_PROTO_DONE);
    assert_int_equal(p.tlvs_len, 0);
}


static void
test_tlv_names(void **state)
{
    static const struct {
        const char *name;
        int type;
    } cases[] = {
        {"alpn", 0x01},
        {"authority", 0x02},
        {"unique_id", 0x05},
        {"ssl", 0x20},
        {"netns", 0x30},
        {"ssl_verify", PROXY_PROTO_TLV_SSL_VERIFY},
        {"ssl_version", 0x21 | PROXY_PROTO_TLV_SSL_SUB},
        {"ssl_cn", 0x22 | PROXY_PROTO_TLV_SSL_SUB},
        {"ssl_cipher", 0x23 | PROXY_PROTO_TLV_SSL_SUB},
        {"ssl_sig_alg", 0x24 | PROXY_PROTO_TLV_SSL_SUB},
        {"ssl_key_alg", 0x25 | PROXY_PROTO_TLV_SSL_SUB},
        {"0x3", 0x03},
        {"0x000ae", 0xae},
        {"0xAE", 0xae},
        {"0xff", 0xff},
        {"0x0", 0x00},
        {"0x", PROXY_PROTO_TLV_INVALID},
        {"0x100", PROXY_PROTO_TLV_INVALID},
        {"0xg1", PROXY_PROTO_TLV_INVALID},
        {"0x1 ", PROXY_PROTO_TLV_INVALID},
        {"crc32c", PROXY_PROTO_TLV_UNKNOWN},
        {"ALPN", PROXY_PROTO_TLV_UNKNOWN},
        {"ssl_", PROXY_PROTO_TLV_UNKNOWN},
        {"", PROXY_PROTO_TLV_UNKNOWN},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            proxy_proto_tlv_type(cases[i].name, strlen(cases[i].name)),
            cases[i].type);
    }
}


/* Looks name up in an area placed flush against the guard page. */
static enum proxy_proto_tlv_rc
tlv_get_guarded(struct guardpage *g, const uint8_t *area, size_t len,
                const char *name, const uint8_t **val, size_t *vlen,
                char *verify)
{
    const uint8_t *q = guardpage_place(g, area, len);
    const int type = proxy_proto_tlv_type(name, strlen(name));

    assert_non_null(q);
    assert_true(type >= 0);
    return proxy_proto_tlv_get(q, len, type, val, vlen, verify);
}


static void
assert_tlv(struct guardpage *g, const uint8_t *area, size_t len,
           const char *name, const void *want, size_t want_len)
{
    char verify[PROXY_PROTO_TLV_VERIFY_MAX];
    const uint8_t *v = NULL;
    size_t n = 0;

    assert_int_equal(tlv_get_guarded(g, area, len, name, &v, &n, verify),
                     PROXY_PROTO_TLV_FOUND);
    assert_int_equal(n, want_len);
    assert_memory_equal(v, want, want_len);
}


static void
assert_tlv_rc(struct guardpage *g, const uint8_t *area, size_t len,
              const char *name, enum proxy_proto_tlv_rc want)
{
    char verify[PROXY_PROTO_TLV_VERIFY_MAX];
    const uint8_t *v = NULL;
    size_t n = 0;

    assert_int_equal(tlv_get_guarded(g, area, len, name, &v, &n, verify), want);
}


/* The TLV area of v2_tcp6_tlvs: NOOP, AUTHORITY, CRC32C, UNIQUE_ID. */
static void
test_tlv_get_top_level(void **state)
{
    const uint8_t *area = v2_tcp6_tlvs + 16 + 36;
    const size_t len = sizeof(v2_tcp6_tlvs) - 16 - 36;

    assert_tlv(*state, area, len, "authority", "example.com", 11);
    assert_tlv(*state, area, len, "0x02", "example.com", 11);
    assert_tlv(*state, area, len, "unique_id", "\x2a", 1);
    assert_tlv(*state, area, len, "0x3", "\xde\xad\xbe\xef", 4);
    assert_tlv(*state, area, len, "0x04", "\0\0", 2);
    assert_tlv_rc(*state, area, len, "alpn", PROXY_PROTO_TLV_NONE);
    assert_tlv_rc(*state, area, len, "ssl", PROXY_PROTO_TLV_NONE);
    assert_tlv_rc(*state, area, len, "ssl_cn", PROXY_PROTO_TLV_NONE);
    assert_tlv_rc(*state, area, len, "ssl_verify", PROXY_PROTO_TLV_NONE);
    assert_tlv_rc(*state, area, 0, "authority", PROXY_PROTO_TLV_NONE);
}


/* clang-format off */
static const uint8_t tlv_ssl_area[] = {
    0x01, 0x00, 0x05,       /* PP2_TYPE_ALPN, length 5 */
    'A', 'L', 'P', 'N', '1',
    0x20, 0x00, 0x26,       /* PP2_TYPE_SSL, length 5 + 33 = 38 */
    0x01,                   /* client: PP2_CLIENT_SSL */
    0x00, 0x00, 0x00, 0xff, /* verify: 255 */
    0x21, 0x00, 0x07,       /* PP2_SUBTYPE_SSL_VERSION, length 7 */
    'T', 'L', 'S', 'v', '1', '.', '2',
    0x22, 0x00, 0x0b,       /* PP2_SUBTYPE_SSL_CN, length 11 */
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    0x25, 0x00, 0x06,       /* PP2_SUBTYPE_SSL_KEY_ALG, length 6 */
    'R', 'S', 'A', '5', '1', '2',
    0x30, 0x00, 0x05,       /* PP2_TYPE_NETNS, length 5 */
    'N', 'E', 'T', 'N', 'S',
};
/* clang-format on */


static void
test_tlv_get_ssl(void **state)
{
    uint8_t area[sizeof(tlv_ssl_area)];

    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "alpn", "ALPN1", 5);
    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "netns", "NETNS", 5);
    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "ssl",
               tlv_ssl_area + 11, 38);
    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "ssl_verify", "255",
               3);
    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "ssl_version",
               "TLSv1.2", 7);
    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "ssl_cn",
               "example.com", 11);
    assert_tlv(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "ssl_key_alg",
               "RSA512", 6);
    assert_tlv_rc(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "ssl_cipher",
                  PROXY_PROTO_TLV_NONE);
    /* A sub-TLV type is not a top-level one, nor the reverse. */
    assert_tlv_rc(*state, tlv_ssl_area, sizeof(tlv_ssl_area), "0x21",
                  PROXY_PROTO_TLV_NONE);
    /* The largest verify value. */
    memcpy(area, tlv_ssl_area, sizeof(area));
    memset(area + 12, 0xff, 4);
    assert_tlv(*state, area, sizeof(area), "ssl_verify", "4294967295", 10);
    memset(area + 12, 0, 4);
    assert_tlv(*state, area, sizeof(area), "ssl_verify", "0", 1);
}


/*
 * Malformed areas (nginx: "broken PROXY protocol TLV"): a TLV header or
 * value that overruns the area, an SSL TLV shorter than its 5 fixed
 * bytes, a sub-TLV that overruns the SSL TLV. Every truncation of a good
 * area is looked up flush against the guard page: never a read past it.
 */
static void
test_tlv_get_malformed(void **state)
{
    static const uint8_t short_hdr[] = {0x02, 0x00};
    static const uint8_t overrun[] = {0x02, 0x00, 0x05, 'a', 'b'};
    static const uint8_t after_found[] = {0x02, 0x00, 0x01, 'a', 0x05, 0xff};
    static const uint8_t ssl_short[] = {0x20, 0x00, 0x04, 0x01, 0, 0, 0};
    static const uint8_t ssl_sub_overrun[] = {0x20, 0x00, 0x08, 0x01, 0,   0,
                                              0,    0,    0x21, 0x00, 0x09};
    const char *const names[] = {
        "alpn",       "authority",   "unique_id", "ssl",         "netns",
        "ssl_verify", "ssl_version", "ssl_cn",    "ssl_key_alg", "0xae"};

    assert_tlv_rc(*state, short_hdr, sizeof(short_hdr), "authority",
                  PROXY_PROTO_TLV_BROKEN);
    assert_tlv_rc(*state, overrun, sizeof(overrun), "authority",
                  PROXY_PROTO_TLV_BROKEN);
    assert_tlv_rc(*state, overrun, sizeof(overrun), "alpn",
                  PROXY_PROTO_TLV_BROKEN);
    /* As nginx: the scan stops at the first match. */
    assert_tlv(*state, after_found, sizeof(after_found), "authority", "a", 1);
    assert_tlv_rc(*state, after_found, sizeof(after_found), "unique_id",
                  PROXY_PROTO_TLV_BROKEN);
    assert_tlv(*state, ssl_short, sizeof(ssl_short), "ssl", "\x01\0\0\0", 4);
    assert_tlv_rc(*state, ssl_short, sizeof(ssl_short), "ssl_verify",
                  PROXY_PROTO_TLV_BROKEN);
    assert_tlv_rc(*state, ssl_short, sizeof(ssl_short), "ssl_cn",
                  PROXY_PROTO_TLV_BROKEN);
    assert_tlv(*state, ssl_sub_overrun, sizeof(ssl_sub_overrun), "ssl_verify",
               "0", 1);
    assert_tlv_rc(*state, ssl_sub_overrun, sizeof(ssl_sub_overrun),
                  "ssl_version", PROXY_PROTO_TLV_BROKEN);
    for (size_t cut = 0; cut < sizeof(tlv_ssl_area); cut++) {
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            char verify[PROXY_PROTO_TLV_VERIFY_MAX];
            const uint8_t *v = NULL;
            size_t n = 0;
            const enum proxy_proto_tlv_rc rc = tlv_get_guarded(
                *state, tlv_ssl_area, cut, names[i], &v, &n, verify);

            if (rc == PROXY_PROTO_TLV_FOUND && v != (const uint8_t *)verify) {
                /* A found value lies inside the area. */
                const uint8_t *const start =
                    ((struct guardpage *)*state)->guard - cut;
                assert_true(v >= start && v + n <= start + cut);
            }
        }
    }
    /* Unknown types from proxy_proto_tlv_type() are never found. */
    assert_int_equal(proxy_proto_tlv_get(tlv_ssl_area, sizeof(tlv_ssl_area),
                                         PROXY_PROTO_TLV_UNKNOWN, NULL, NULL,
                                         NULL),
                     PROXY_PROTO_TLV_NONE);
}


int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_guard, teardown_guard)
    const struct CMUnitTest tests[] = {
        T(test_v1_tcp4_spec_example),
        T(test_v1_tcp6_longest),
        T(test_v1_tcp6_forms),
        T(test_v1_unknown),
        T(test_v1_no_crlf_within_107),
        T(test_v1_line_endings),
        T(test_v1_prefix_and_token),
        T(test_v1_bad_fields),
        T(test_v1_port_limits),
        T(test_v2_tcp4),
        T(test_v2_tcp6_with_tlvs),
        T(test_v2_local_and_unspec),
        T(test_v2_signature_version_command),
        T(test_v2_family_transport),
        T(test_v2_length_field),
        T(test_v2_tlv_overruns),
        T(test_v2_authority_rules),
        T(test_v2_fused_payload_not_parsed),
        T(test_sticky_and_empty_feeds),
        T(test_build_matches_fixtures),
        T(test_build_invalid_inputs),
        T(test_round_trips),
        T(test_round_trip_local),
        T(test_tlv_area_offsets),
        T(test_tlv_names),
        T(test_tlv_get_top_level),
        T(test_tlv_get_ssl),
        T(test_tlv_get_malformed),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
