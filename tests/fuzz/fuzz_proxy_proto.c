/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/proto/proxy_proto.c. The first input byte
 * picks a chunking schedule; the rest is fed once in one call and once in
 * chunks, each chunk copied into its own exact-size heap buffer so ASan
 * sees any read past a chunk. Both runs must agree on the outcome and
 * every result, and the results must respect their bounds: consumed never
 * exceeds what was fed, a v1 line is at most 107 bytes and ends in CRLF, a
 * v2 header is exactly 16 + its length field. The outcome must be decided
 * by exactly `consumed` bytes (one fewer is NEED_MORE) and be sticky. A
 * DONE header with addresses is rebuilt with proxy_proto_build() in both
 * versions and parsed again: the addresses (and v2 authority) must come
 * back unchanged. The TLV area of a DONE header (tlvs_off, tlvs_len) must
 * lie inside it, and every $proxy_protocol_tlv_* name is looked up in it,
 * and in the whole input taken as a TLV area, from an exact-size copy: a
 * found value lies inside the area, and the top level of a DONE header's
 * area is never broken (the parser took whole TLVs). Any difference
 * traps.
 *
 * Build: clang -Isrc -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
 *        -fno-sanitize-recover=all tests/fuzz/fuzz_proxy_proto.c
 *        src/proto/proxy_proto.c
 */

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proxy_proto.h"
#include "fuzz.h"


static enum proxy_proto_rc feed_copy(struct proxy_proto *p, const uint8_t *data,
                                     size_t len);
static enum proxy_proto_rc parse_copy(struct proxy_proto *p,
                                      const uint8_t *data, size_t len);
static size_t next_chunk(unsigned schedule, unsigned param, uint32_t *rng,
                         size_t index, size_t total);
static void check_bounds(const struct proxy_proto *p, const uint8_t *stream,
                         size_t len);
static void check_same(const struct proxy_proto *a,
                       const struct proxy_proto *b);
static void check_decided_by_consumed(const struct proxy_proto *p,
                                      const uint8_t *stream);
static void check_round_trip(const struct proxy_proto *p);
static void check_tlvs(const uint8_t *area, size_t len, bool whole_tlvs);


/*
 * Input: selector(1) | stream. Selector bits 0-2: chunking schedule.
 * Bits 3-7: a parameter for it.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const unsigned sel = data[0];
    const unsigned schedule = sel & 7;
    const unsigned param = sel >> 3;
    const uint8_t *stream = data + 1;
    const size_t len = size - 1;
    struct proxy_proto whole, chunked;

    const enum proxy_proto_rc rc_whole = parse_copy(&whole, stream, len);
    CHECK(rc_whole == whole.rc);
    check_bounds(&whole, stream, len);

    proxy_proto_init(&chunked);
    uint32_t rng = 0x9e3779b9u ^ sel;
    enum proxy_proto_rc rc = PROXY_PROTO_NEED_MORE;
    size_t pos = 0;
    for (size_t i = 0; pos < len; i++) {
        size_t n = next_chunk(schedule, param, &rng, i, len);
        if (n > len - pos) {
            n = len - pos;
        }
        const enum proxy_proto_rc prev = rc;
        rc = feed_copy(&chunked, stream + pos, n);
        if (prev != PROXY_PROTO_NEED_MORE) {
            CHECK(rc == prev); /* sticky */
        }
        CHECK(chunked.consumed <= pos + n);
        pos += n;
    }
    CHECK(rc == rc_whole);
    check_bounds(&chunked, stream, len);
    check_same(&whole, &chunked);

    if (rc_whole != PROXY_PROTO_NEED_MORE) {
        check_decided_by_consumed(&whole, stream);
        /* Feeding more after a final outcome changes nothing. */
        CHECK(feed_copy(&whole, stream, len) == rc_whole);
        check_same(&whole, &chunked);
    } else {
        CHECK(whole.consumed == len);
    }
    if (rc_whole == PROXY_PROTO_DONE) {
        check_round_trip(&whole);
        CHECK(whole.tlvs_len == 0 ||
              whole.tlvs_off + whole.tlvs_len == whole.consumed);
        CHECK(whole.tlvs_off + whole.tlvs_len <= whole.consumed);
        check_tlvs(stream + whole.tlvs_off, whole.tlvs_len, true);
    }
    check_tlvs(stream, len, false);
    return 0;
}


/* Every name nginx knows, a few hex types, looked up in an exact copy. */
static void
check_tlvs(const uint8_t *area, size_t len, bool whole_tlvs)
{
    static const char *const names[] = {
        "alpn",        "authority",   "unique_id",   "ssl",    "netns",
        "0x3",         "ssl_verify",  "ssl_version", "ssl_cn", "ssl_cipher",
        "ssl_sig_alg", "ssl_key_alg", "0x0",         "0xff",   "0x04",
    };
    uint8_t *copy = malloc(len > 0 ? len : 1);

    CHECK(copy != NULL);
    memcpy(copy, area, len);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char verify[PROXY_PROTO_TLV_VERIFY_MAX];
        const uint8_t *v = NULL;
        size_t n = 0;
        const int type = proxy_proto_tlv_type(names[i], strlen(names[i]));
        CHECK(type >= 0);
        const enum proxy_proto_tlv_rc rc =
            proxy_proto_tlv_get(copy, len, type, &v, &n, verify);

        if (rc == PROXY_PROTO_TLV_FOUND) {
            if (v == (const uint8_t *)verify) {
                CHECK(n >= 1 && n < PROXY_PROTO_TLV_VERIFY_MAX);
            } else {
                CHECK(v >= copy && n <= len && v + n <= copy + len);
            }
        }
        if (whole_tlvs &&
            !(type & (PROXY_PROTO_TLV_SSL_SUB | PROXY_PROTO_TLV_SSL_VERIFY))) {
            CHECK(rc != PROXY_PROTO_TLV_BROKEN);
        }
    }
    free(copy);
}


/* Feeds len bytes from an exact-size heap copy (NULL when len is 0). */
static enum proxy_proto_rc
feed_copy(struct proxy_proto *p, const uint8_t *data, size_t len)
{
    uint8_t *copy = NULL;

    if (len > 0) {
        copy = malloc(len);
        CHECK(copy != NULL);
        memcpy(copy, data, len);
    }
    const enum proxy_proto_rc rc = proxy_proto_feed(p, copy, len);
    free(copy);
    return rc;
}


static enum proxy_proto_rc
parse_copy(struct proxy_proto *p, const uint8_t *data, size_t len)
{
    proxy_proto_init(p);
    return feed_copy(p, data, len);
}


/* Size of chunk number index (>= 1) under the given schedule. */
static size_t
next_chunk(unsigned schedule, unsigned param, uint32_t *rng, size_t index,
           size_t total)
{
    switch (schedule) {
    case 0:
        return 1;
    case 1:
        return 1 + param; /* fixed 1..32 */
    case 2:
        return index == 0 ? 16 : 3; /* v2 header, then TLV-header sized */
    case 3:
        /* Random 1..64: xorshift32. */
        *rng ^= *rng << 13;
        *rng ^= *rng >> 17;
        *rng ^= *rng << 5;
        return 1 + (*rng & 63);
    case 4:
        /* Two calls, split at param/32 of the input. */
        return index == 0 ? total * param / 32 + 1 : total;
    case 5:
        /* Growing: 1, 2, 3, ... */
        return index + 1;
    case 6:
        /* Three calls at param and 2 * param bytes (matrix row 25). */
        return index < 2 ? 1 + param : total;
    default:
        /* Random 1..1024, like socket reads of varied size. */
        *rng ^= *rng << 13;
        *rng ^= *rng >> 17;
        *rng ^= *rng << 5;
        return 1 + (*rng & 1023);
    }
}


static void
check_bounds(const struct proxy_proto *p, const uint8_t *stream, size_t len)
{
    CHECK(p->reason != NULL);
    CHECK(p->consumed <= len);
    CHECK(p->authority_len <= PROXY_PROTO_AUTHORITY_MAX);
    CHECK(p->authority[p->authority_len] == '\0');
    if (p->rc == PROXY_PROTO_MALFORMED) {
        CHECK(strcmp(p->reason, "ok") != 0);
        CHECK(p->consumed >= 1);
        return;
    }
    CHECK(strcmp(p->reason, "ok") == 0);
    if (p->rc != PROXY_PROTO_DONE) {
        return;
    }
    if (p->version == 1) {
        CHECK(p->consumed <= PROXY_PROTO_V1_MAX_LEN);
        CHECK(p->consumed >= 15); /* "PROXY UNKNOWN\r\n" */
        CHECK(memcmp(stream, "PROXY ", 6) == 0);
        CHECK(stream[p->consumed - 2] == '\r');
        CHECK(stream[p->consumed - 1] == '\n');
        CHECK(memchr(stream, '\n', p->consumed - 1) == NULL);
        CHECK(p->authority_len == 0);
    } else {
        CHECK(p->version == 2);
        CHECK(p->consumed >= PROXY_PROTO_V2_HDR_LEN);
        const size_t field = (size_t)stream[14] << 8 | stream[15];
        CHECK(field <= PROXY_PROTO_V2_MAX_LEN);
        CHECK(p->consumed == PROXY_PROTO_V2_HDR_LEN + field);
    }
    if (p->is_local) {
        CHECK(p->src.ss_family == AF_UNSPEC);
        CHECK(p->dst.ss_family == AF_UNSPEC);
        CHECK(p->authority_len == 0);
    } else {
        CHECK(p->src.ss_family == AF_INET || p->src.ss_family == AF_INET6);
        CHECK(p->dst.ss_family == p->src.ss_family);
    }
}


static void
check_same(const struct proxy_proto *a, const struct proxy_proto *b)
{
    CHECK(a->rc == b->rc);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(a->consumed == b->consumed);
    if (a->rc != PROXY_PROTO_DONE) {
        return;
    }
    CHECK(a->version == b->version);
    CHECK(a->is_local == b->is_local);
    CHECK(memcmp(&a->src, &b->src, sizeof(a->src)) == 0);
    CHECK(memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0);
    CHECK(a->authority_len == b->authority_len);
    CHECK(memcmp(a->authority, b->authority, a->authority_len + 1) == 0);
}


/*
 * The outcome depends on the first consumed bytes only: exactly those give
 * it again, one fewer is still NEED_MORE. So nothing past the header (or
 * past the byte that made it MALFORMED) was looked at.
 */
static void
check_decided_by_consumed(const struct proxy_proto *p, const uint8_t *stream)
{
    struct proxy_proto q;

    CHECK(parse_copy(&q, stream, p->consumed) == p->rc);
    check_same(p, &q);
    CHECK(parse_copy(&q, stream, p->consumed - 1) == PROXY_PROTO_NEED_MORE);
}


/* Rebuild the parsed header in both versions; parse it back. */
static void
check_round_trip(const struct proxy_proto *p)
{
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    struct proxy_proto q;

    if (p->is_local) {
        for (unsigned v = 1; v <= 2; v++) {
            const size_t n =
                proxy_proto_build(v, NULL, NULL, NULL, 0, out, sizeof(out));
            CHECK(n > 0);
            CHECK(parse_copy(&q, out, n) == PROXY_PROTO_DONE);
            CHECK(q.is_local && q.consumed == n);
        }
        return;
    }
    const struct sockaddr *src = (const struct sockaddr *)&p->src;
    const struct sockaddr *dst = (const struct sockaddr *)&p->dst;
    for (unsigned v = 1; v <= 2; v++) {
        const char *auth = v == 2 ? p->authority : NULL;
        const size_t auth_len = v == 2 ? p->authority_len : 0;
        const size_t n =
            proxy_proto_build(v, src, dst, auth, auth_len, out, sizeof(out));
        CHECK(n > 0);
        CHECK(parse_copy(&q, out, n) == PROXY_PROTO_DONE);
        CHECK(q.consumed == n);
        CHECK(q.version == v);
        CHECK(!q.is_local);
        CHECK(memcmp(&q.src, &p->src, sizeof(q.src)) == 0);
        CHECK(memcmp(&q.dst, &p->dst, sizeof(q.dst)) == 0);
        CHECK(q.authority_len == auth_len);
        CHECK(memcmp(q.authority, p->authority, auth_len) == 0);
    }
}
