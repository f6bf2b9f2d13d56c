/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/proto/tls_hello.c. The first input byte picks
 * the framing and a chunking schedule; the rest is fed once in one call
 * and once in chunks, each chunk copied into its own exact-size heap
 * buffer so ASan sees any read past a chunk. Both runs must agree on the
 * outcome and every result, the results must respect their bounds, and
 * the outcome must be sticky. Any difference traps.
 *
 * Build: clang -Isrc -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
 *        -fno-sanitize-recover=all tests/fuzz/fuzz_tls_hello.c
 *        src/proto/tls_hello.c
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tls_hello.h"
#include "fuzz.h"


static enum tls_hello_rc feed_copy(struct tls_hello *h, const uint8_t *data,
                                   size_t len, bool bare);
static size_t next_chunk(unsigned schedule, unsigned param, uint32_t *rng,
                         size_t index, size_t total);
static void check_bounds(const struct tls_hello *h);
static void check_same(const struct tls_hello *a, const struct tls_hello *b);


/*
 * Input: selector(1) | stream. Selector bit 0: 0 = TLS records
 * (tls_hello_feed), 1 = bare handshake (tls_hello_feed_handshake).
 * Bits 1-3: chunking schedule. Bits 4-7: a parameter for it.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const unsigned sel = data[0];
    const bool bare = (sel & 1) != 0;
    const unsigned schedule = (sel >> 1) & 7;
    const unsigned param = sel >> 4;
    const uint8_t *stream = data + 1;
    const size_t len = size - 1;
    struct tls_hello whole, chunked;

    tls_hello_init(&whole);
    const enum tls_hello_rc rc_whole = feed_copy(&whole, stream, len, bare);
    CHECK(rc_whole == whole.rc);
    check_bounds(&whole);

    tls_hello_init(&chunked);
    uint32_t rng = 0x9e3779b9u ^ sel;
    enum tls_hello_rc rc = TLS_HELLO_NEED_MORE;
    size_t pos = 0;
    for (size_t i = 0; pos < len; i++) {
        size_t n = next_chunk(schedule, param, &rng, i, len);
        if (n > len - pos) {
            n = len - pos;
        }
        const enum tls_hello_rc prev = rc;
        rc = feed_copy(&chunked, stream + pos, n, bare);
        if (prev != TLS_HELLO_NEED_MORE) {
            CHECK(rc == prev); /* sticky */
        }
        pos += n;
    }
    CHECK(rc == rc_whole);
    check_bounds(&chunked);
    check_same(&whole, &chunked);

    /* Feeding more after a final outcome changes nothing. */
    if (rc_whole != TLS_HELLO_NEED_MORE && len > 0) {
        CHECK(feed_copy(&whole, stream, len, bare) == rc_whole);
        check_same(&whole, &chunked);
    }
    return 0;
}


/* Feeds len bytes from an exact-size heap copy (NULL when len is 0). */
static enum tls_hello_rc
feed_copy(struct tls_hello *h, const uint8_t *data, size_t len, bool bare)
{
    uint8_t *copy = NULL;

    if (len > 0) {
        copy = malloc(len);
        CHECK(copy != NULL);
        memcpy(copy, data, len);
    }
    const enum tls_hello_rc rc = bare ? tls_hello_feed_handshake(h, copy, len)
                                      : tls_hello_feed(h, copy, len);
    free(copy);
    return rc;
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
        return 1 + param; /* fixed 1..16 */
    case 2:
        return 5; /* record-header sized */
    case 3:
        /* Random 1..64: xorshift32. */
        *rng ^= *rng << 13;
        *rng ^= *rng >> 17;
        *rng ^= *rng << 5;
        return 1 + (*rng & 63);
    case 4:
        /* Two calls, split at param/16 of the input. */
        return index == 0 ? total * param / 16 + 1 : total;
    case 5:
        /* Growing: 1, 2, 3, ... */
        return index + 1;
    case 6:
        /* One byte, then the rest. */
        return index == 0 ? 1 : total;
    default:
        /* Random 1..1024, like socket reads of varied size. */
        *rng ^= *rng << 13;
        *rng ^= *rng >> 17;
        *rng ^= *rng << 5;
        return 1 + (*rng & 1023);
    }
}


static void
check_bounds(const struct tls_hello *h)
{
    CHECK(h->reason != NULL);
    CHECK(h->server_name_len <= TLS_HELLO_NAME_MAX);
    CHECK(h->server_name[h->server_name_len] == '\0');
    CHECK(h->alpn_len <= TLS_HELLO_ALPN_MAX);
    CHECK(h->alpn[h->alpn_len] == '\0');
    if (h->rc == TLS_HELLO_DONE || h->rc == TLS_HELLO_NEED_MORE) {
        CHECK(strcmp(h->reason, "ok") == 0);
    } else {
        CHECK(strcmp(h->reason, "ok") != 0);
    }
    if (h->rc == TLS_HELLO_DONE) {
        const char *name = tls_hello_protocol_name(h->version);
        CHECK(name == NULL || strncmp(name, "SSLv", 4) == 0 ||
              strncmp(name, "TLSv", 4) == 0);
        CHECK(h->has_sni == (h->server_name_len > 0));
        if (h->is_sslv2) {
            CHECK(!h->has_sni && h->alpn_len == 0 && !h->has_ech);
        }
    }
}


static void
check_same(const struct tls_hello *a, const struct tls_hello *b)
{
    CHECK(a->rc == b->rc);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(a->server_name_len == b->server_name_len);
    CHECK(memcmp(a->server_name, b->server_name, a->server_name_len) == 0);
    CHECK(a->has_sni == b->has_sni);
    CHECK(a->alpn_len == b->alpn_len);
    CHECK(memcmp(a->alpn, b->alpn, a->alpn_len) == 0);
    CHECK(a->version == b->version);
    CHECK(a->has_ech == b->has_ech);
    CHECK(a->is_sslv2 == b->is_sslv2);
}
