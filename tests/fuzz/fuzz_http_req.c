/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/proto/http_req.c. The first input byte picks a
 * chunk size; the rest is fed once whole and once in chunks, each chunk in
 * its own exact-size heap copy so ASan sees any read past it. Both runs
 * must agree on the outcome and every result; results respect their bounds
 * (NUL-terminated method and target of the lengths said, a target of
 * visible ASCII, head_len within the input); a final outcome is sticky and
 * the input cut one byte before the deciding byte is still NEED_MORE.
 *
 * Build: clang -Isrc -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
 *        tests/fuzz/fuzz_http_req.c src/proto/http_req.c
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/http_req.h"


static enum http_req_rc feed_copy(struct http_req *r, const uint8_t *data,
                                  size_t len);
static void check_bounds(const struct http_req *r, size_t len);
static void check_same(const struct http_req *a, const struct http_req *b);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const size_t chunk = 1 + (data[0] & 63);
    const uint8_t *stream = data + 1;
    const size_t len = size - 1;
    struct http_req whole, chunked, prefix;

    http_req_init(&whole);
    const enum http_req_rc rc = feed_copy(&whole, stream, len);
    CHECK(rc == whole.rc);
    check_bounds(&whole, len);

    http_req_init(&chunked);
    for (size_t pos = 0; pos < len; pos += chunk) {
        const enum http_req_rc prev = chunked.rc;
        const enum http_req_rc now = feed_copy(
            &chunked, stream + pos, len - pos < chunk ? len - pos : chunk);
        if (prev != HTTP_REQ_NEED_MORE) {
            CHECK(now == prev);
        }
    }
    check_same(&whole, &chunked);

    if (rc != HTTP_REQ_NEED_MORE) {
        http_req_init(&prefix);
        CHECK(feed_copy(&prefix, stream, whole.head_len - 1) ==
              HTTP_REQ_NEED_MORE);
        CHECK(feed_copy(&whole, stream, len) == rc);
        check_same(&whole, &chunked);
    }
    return 0;
}


static enum http_req_rc
feed_copy(struct http_req *r, const uint8_t *data, size_t len)
{
    uint8_t *copy = NULL;

    if (len > 0) {
        copy = malloc(len);
        CHECK(copy != NULL);
        memcpy(copy, data, len);
    }
    const enum http_req_rc rc = http_req_feed(r, copy, len);
    free(copy);
    return rc;
}


static void
check_bounds(const struct http_req *r, size_t len)
{
    CHECK(r->reason != NULL);
    CHECK(r->head_len <= len);
    CHECK(r->head_len <= HTTP_REQ_HEAD_MAX + 1);
    CHECK(r->method_len <= HTTP_REQ_METHOD_MAX);
    CHECK(r->target_len <= HTTP_REQ_TARGET_MAX);
    CHECK(strlen(r->method) == r->method_len);
    CHECK(strlen(r->target) == r->target_len);
    for (size_t i = 0; i < r->target_len; i++) {
        CHECK(r->target[i] >= 0x21 && r->target[i] <= 0x7e);
    }
    if (r->rc == HTTP_REQ_NEED_MORE) {
        CHECK(r->head_len == len);
    }
    if (r->rc == HTTP_REQ_DONE) {
        CHECK(strcmp(r->reason, "ok") == 0);
        CHECK(r->method_len > 0 && r->target_len > 0);
        CHECK(r->version == 10 || r->version == 11);
    }
    if (r->rc == HTTP_REQ_MALFORMED) {
        CHECK(strcmp(r->reason, "ok") != 0);
    }
}


static void
check_same(const struct http_req *a, const struct http_req *b)
{
    CHECK(a->rc == b->rc);
    CHECK(strcmp(a->reason, b->reason) == 0);
    CHECK(strcmp(a->method, b->method) == 0);
    CHECK(strcmp(a->target, b->target) == 0);
    CHECK(a->version == b->version);
    CHECK(a->head_len == b->head_len);
}
