/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/proto/http_head.c. The first input byte picks a
 * chunking schedule; the rest is fed once in one call and once in chunks,
 * each chunk copied into its own exact-size heap buffer so ASan sees any
 * read past a chunk. Both runs must agree on the outcome and every result,
 * the results must respect their bounds (host length and charset, head_len
 * within the input, a DONE head ending in an empty line), the outcome must
 * be sticky, and the input cut one byte before the deciding byte must
 * still be NEED_MORE. Any difference traps.
 *
 * Build: clang -Isrc -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
 *        -fno-sanitize-recover=all tests/fuzz/fuzz_http_head.c
 *        src/proto/http_head.c
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http_head.h"
#include "fuzz.h"


/* Bytes a returned host may hold: reg-name, lower-cased, and ':' (IPv6). */
#define HOST_CHARSET                                                           \
    "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=%:"


static enum http_head_rc feed_copy(struct http_head *h, const uint8_t *data,
                                   size_t len);
static size_t next_chunk(unsigned schedule, unsigned param, uint32_t *rng,
                         size_t index, size_t total);
static void check_bounds(const struct http_head *h, const uint8_t *stream,
                         size_t len);
static void check_same(const struct http_head *a, const struct http_head *b);


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
    struct http_head whole, chunked, prefix;

    http_head_init(&whole);
    const enum http_head_rc rc_whole = feed_copy(&whole, stream, len);
    CHECK(rc_whole == whole.rc);
    check_bounds(&whole, stream, len);

    http_head_init(&chunked);
    uint32_t rng = 0x9e3779b9u ^ sel;
    enum http_head_rc rc = HTTP_HEAD_NEED_MORE;
    size_t pos = 0;
    for (size_t i = 0; pos < len; i++) {
        size_t n = next_chunk(schedule, param, &rng, i, len);
        if (n > len - pos) {
            n = len - pos;
        }
        const enum http_head_rc prev = rc;
        rc = feed_copy(&chunked, stream + pos, n);
        if (prev != HTTP_HEAD_NEED_MORE) {
            CHECK(rc == prev); /* sticky */
        }
        pos += n;
    }
    CHECK(rc == rc_whole);
    check_bounds(&chunked, stream, len);
    check_same(&whole, &chunked);

    if (rc_whole != HTTP_HEAD_NEED_MORE) {
        /* The outcome was decided by byte head_len, not before. */
        http_head_init(&prefix);
        CHECK(feed_copy(&prefix, stream, whole.head_len - 1) ==
              HTTP_HEAD_NEED_MORE);
        CHECK(prefix.head_len == whole.head_len - 1);

        /* Feeding more after a final outcome changes nothing. */
        CHECK(feed_copy(&whole, stream, len) == rc_whole);
        check_same(&whole, &chunked);
    }
    return 0;
}


/* Feeds len bytes from an exact-size heap copy (NULL when len is 0). */
static enum http_head_rc
feed_copy(struct http_head *h, const uint8_t *data, size_t len)
{
    uint8_t *copy = NULL;

    if (len > 0) {
        copy = malloc(len);
        CHECK(copy != NULL);
        memcpy(copy, data, len);
    }
    const enum http_head_rc rc = http_head_feed(h, copy, len);
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
        return 1 + param; /* fixed 1..32 */
    case 2:
        return 2; /* splits every CR LF pair somewhere */
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
check_bounds(const struct http_head *h, const uint8_t *stream, size_t len)
{
    CHECK(h->reason != NULL);
    CHECK(h->host_len <= HTTP_HEAD_HOST_MAX);
    CHECK(h->host[h->host_len] == '\0');
    CHECK(strlen(h->host) == h->host_len);
    CHECK(strspn(h->host, HOST_CHARSET) == h->host_len);
    CHECK(h->head_len <= len);
    if (h->rc == HTTP_HEAD_DONE || h->rc == HTTP_HEAD_NEED_MORE) {
        CHECK(strcmp(h->reason, "ok") == 0);
    } else {
        CHECK(strcmp(h->reason, "ok") != 0);
    }
    if (h->rc == HTTP_HEAD_NEED_MORE) {
        CHECK(h->head_len == len);
        return;
    }
    CHECK(h->head_len >= 1);
    if (h->rc != HTTP_HEAD_DONE) {
        return;
    }

    /* The head ends in an empty line: LF LF or LF CR LF. */
    const size_t n = h->head_len;
    CHECK(n >= 2 && stream[n - 1] == '\n');
    CHECK(stream[n - 2] == '\n' ||
          (n >= 3 && stream[n - 2] == '\r' && stream[n - 3] == '\n'));
    CHECK(h->version == 10 || h->version == 11);
    CHECK(h->has_host == (h->host_len > 0));
}


static void
check_same(const struct http_head *a, const struct http_head *b)
{
    CHECK(a->rc == b->rc);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(a->host_len == b->host_len);
    CHECK(memcmp(a->host, b->host, a->host_len + 1) == 0);
    CHECK(a->has_host == b->has_host);
    CHECK(a->version == b->version);
    CHECK(a->head_len == b->head_len);
}
