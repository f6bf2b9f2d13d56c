/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/proto/hostname.c. The input is the raw name,
 * copied into an exact-size heap buffer so ASan sees any read past it; the
 * output buffer is exactly HOSTNAME_MAX + 1 bytes, so any write past cap is
 * seen too. On HOSTNAME_OK the output must be at most HOSTNAME_MAX bytes
 * of [a-z0-9._-], NUL-terminated, with no leading or trailing dot, labels
 * of 1..63 bytes, no label starting or ending with '-', a last label that
 * is neither numeric nor "localhost", and normalising it again must give
 * HOSTNAME_OK and the same bytes; and it must be the input lowercased,
 * less one trailing dot. Any broken rule traps.
 *
 * Build: clang -Isrc -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
 *        -fno-sanitize-recover=all tests/fuzz/fuzz_hostname.c
 *        src/proto/hostname.c
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/hostname.h"
#include "fuzz.h"


#define OUT_CAP (HOSTNAME_MAX + 1)


static void check_ok_output(const char *out, size_t out_len);
static void check_same_as_input(const uint8_t *data, size_t size,
                                const char *out, size_t out_len);
static bool is_name_byte(char c);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *const in = malloc(size > 0 ? size : 1);
    char *const out = malloc(OUT_CAP);
    char *const again = malloc(OUT_CAP);
    CHECK(in != NULL && out != NULL && again != NULL);
    if (size > 0) {
        memcpy(in, data, size);
    }

    size_t out_len = 0;
    const char *reason = NULL;
    const enum hostname_rc rc =
        hostname_normalize(in, size, out, OUT_CAP, &out_len, &reason);

    CHECK(reason != NULL);
    CHECK(rc == HOSTNAME_OK || rc == HOSTNAME_IP_LITERAL ||
          rc == HOSTNAME_INVALID);
    if (rc != HOSTNAME_OK) {
        CHECK(out[0] == '\0');
    } else {
        check_ok_output(out, out_len);
        check_same_as_input(data, size, out, out_len);

        /* Idempotent: the output is its own normal form. */
        size_t again_len = 0;
        const char *again_reason = NULL;
        CHECK(hostname_normalize(out, out_len, again, OUT_CAP, &again_len,
                                 &again_reason) == HOSTNAME_OK);
        CHECK(again_len == out_len);
        CHECK(memcmp(again, out, out_len + 1) == 0);
    }

    free(again);
    free(out);
    free(in);
    return 0;
}


/* The rules an OK output must meet, checked independently of the code. */
static void
check_ok_output(const char *out, size_t out_len)
{
    CHECK(out_len >= 1 && out_len <= HOSTNAME_MAX);
    CHECK(out[out_len] == '\0');
    CHECK(out[0] != '.' && out[out_len - 1] != '.');

    size_t label = 0;
    for (size_t i = 0; i <= out_len; i++) {
        if (i < out_len) {
            CHECK(is_name_byte(out[i]));
            if (out[i] != '.') {
                continue;
            }
        }
        const size_t label_len = i - label;
        CHECK(label_len >= 1 && label_len <= HOSTNAME_LABEL_MAX);
        CHECK(out[label] != '-' && out[i - 1] != '-');
        if (i < out_len) {
            label = i + 1;
        }
    }

    /* The last label names no IPv4 number and is not localhost. */
    const char *const last = out + label;
    const size_t last_len = out_len - label;
    bool has_letter = false;
    bool is_digits = true;
    for (size_t i = 0; i < last_len; i++) {
        has_letter |= last[i] >= 'a' && last[i] <= 'z';
        is_digits &= last[i] >= '0' && last[i] <= '9';
    }
    CHECK(has_letter && !is_digits);
    if (last_len >= 2 && last[0] == '0' && last[1] == 'x') {
        bool is_hex = true;
        for (size_t i = 2; i < last_len; i++) {
            is_hex &= (last[i] >= '0' && last[i] <= '9') ||
                      (last[i] >= 'a' && last[i] <= 'f');
        }
        CHECK(!is_hex);
    }
    CHECK(!(last_len == 9 && memcmp(last, "localhost", 9) == 0));
}


/* The output is the input lowercased, less one trailing dot. */
static void
check_same_as_input(const uint8_t *data, size_t size, const char *out,
                    size_t out_len)
{
    CHECK(size == out_len || (size == out_len + 1 && data[out_len] == '.'));
    for (size_t i = 0; i < out_len; i++) {
        const uint8_t c = data[i];
        const char lc = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : (char)c;
        CHECK(out[i] == lc);
    }
}


static bool
is_name_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}
