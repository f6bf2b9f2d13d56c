/* SPDX-License-Identifier: MIT */
/* Unit tests for core/units: nginx time, size and integer syntax. */

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/units.h"

#define SEC INT64_C(1000)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static int
msec(const char *s, int64_t *out)
{
    return units_parse_msec(s, strlen(s), out);
}

static int
size(const char *s, int64_t *out)
{
    return units_parse_size(s, strlen(s), out);
}

static int
num(const char *s, int *out)
{
    return units_parse_int(s, strlen(s), out);
}

static void
test_msec_valid(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"0", 0},
        {"30", 30 * SEC},
        {"30s", 30 * SEC},
        {"500ms", 500},
        {"15s", 15 * SEC},
        {"1m", MIN},
        {"1h30m", HOUR + 30 * MIN},
        {"1h 30m", HOUR + 30 * MIN},
        {"1s ", SEC},
        {"1s5", 6 * SEC}, /* nginx adds trailing bare digits as seconds */
        {"1m30", MIN + 30 * SEC},
        {"1s500ms", SEC + 500},
        {"2d", 2 * DAY},
        {"1w", 7 * DAY},
        {"1M", 30 * DAY},
        {"1y", 365 * DAY},
        {"1y1M1w1d1h1m1s1ms",
         365 * DAY + 30 * DAY + 7 * DAY + DAY + HOUR + MIN + SEC + 1},
        {"007s", 7 * SEC},
        {"9223372036854775807ms", INT64_MAX},
        {"9223372036854775s", INT64_C(9223372036854775) * SEC},
        {"106751991167d", INT64_C(106751991167) * DAY},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = -7;

        if (msec(cases[i].in, &out) != 0) {
            fail_msg("rejected \"%s\"", cases[i].in);
        }
        assert_int_equal(out, cases[i].ms);
    }
}

static void
test_msec_invalid(void **state)
{
    static const char *const cases[] = {
        "",
        "s",
        "ms",
        "abc",
        "10x",
        "-1s",
        "+1s",
        "1.5s",
        "1s1s",  /* a unit twice */
        "1m1h",  /* ascending */
        "1ms1s", /* ascending */
        "1s1m",  /* ascending */
        "1d1w",  /* ascending */
        "5 5s",  /* a unit after a bare number and space */
        "1 s",   /* a unit after a bare number and space */
        "1s5 ",  /* bare seconds after seconds, ended by a space */
        "9223372036854775808ms", /* overflow in the digits */
        "9223372036854775808",   /* overflow in the digits */
        "9223372036854776s",     /* overflow when scaled */
        "9223372036854775807",   /* bare seconds overflow as ms */
        "106751991168d",         /* overflow when scaled */
        "106751991167d1d",       /* overflow in the sum */
        "292471208y1y",          /* y twice */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = -7;

        if (msec(cases[i], &out) != -1) {
            fail_msg("accepted \"%s\" as %lld", cases[i], (long long)out);
        }
        assert_int_equal(out, -7);
    }
}

static void
test_msec_length_bound(void **state)
{
    int64_t out = 0;

    (void)state;
    /* Only len bytes are read: "15s" of "15sXYZ". */
    assert_int_equal(units_parse_msec("15sXYZ", 3, &out), 0);
    assert_int_equal(out, 15 * SEC);
    /* "5m" of "5ms" is minutes, not milliseconds. */
    assert_int_equal(units_parse_msec("5ms", 2, &out), 0);
    assert_int_equal(out, 5 * MIN);
}

static void
test_size_valid(void **state)
{
    static const struct {
        const char *in;
        int64_t bytes;
    } cases[] = {
        {"0", 0},
        {"512", 512},
        {"16k", 16 * 1024},
        {"16K", 16 * 1024},
        {"1m", 1024 * 1024},
        {"1M", 1024 * 1024},
        {"1g", INT64_C(1024) * 1024 * 1024},
        {"3G", INT64_C(3) * 1024 * 1024 * 1024},
        {"9223372036854775807", INT64_MAX},
        {"8589934591g", INT64_C(8589934591) * 1024 * 1024 * 1024},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = -7;

        if (size(cases[i].in, &out) != 0) {
            fail_msg("rejected \"%s\"", cases[i].in);
        }
        assert_int_equal(out, cases[i].bytes);
    }
}

static void
test_size_invalid(void **state)
{
    static const char *const cases[] = {
        "",
        "k",
        "m",
        "-1",
        "1.5k",
        "16kb",
        "16 k",
        "1t",
        "0x10",
        "9223372036854775808",
        "8589934592g", /* 2^33 GiB = 2^63 bytes */
        "9007199254740992k",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t out = -7;

        if (size(cases[i], &out) != -1) {
            fail_msg("accepted \"%s\" as %lld", cases[i], (long long)out);
        }
        assert_int_equal(out, -7);
    }
}

static void
test_int(void **state)
{
    int out = -7;

    (void)state;
    assert_int_equal(num("0", &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(num("1024", &out), 0);
    assert_int_equal(out, 1024);
    assert_int_equal(num("2147483647", &out), 0);
    assert_int_equal(out, INT_MAX);

    out = -7;
    assert_int_equal(num("2147483648", &out), -1);
    assert_int_equal(num("99999999999999999999999", &out), -1);
    assert_int_equal(num("", &out), -1);
    assert_int_equal(num("-1", &out), -1);
    assert_int_equal(num("+1", &out), -1);
    assert_int_equal(num("12a", &out), -1);
    assert_int_equal(num(" 1", &out), -1);
    assert_int_equal(num("1k", &out), -1);
    assert_int_equal(out, -7);

    /* Only len bytes are read. */
    assert_int_equal(units_parse_int("12345", 2, &out), 0);
    assert_int_equal(out, 12);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msec_valid),
        cmocka_unit_test(test_msec_invalid),
        cmocka_unit_test(test_msec_length_bound),
        cmocka_unit_test(test_size_valid),
        cmocka_unit_test(test_size_invalid),
        cmocka_unit_test(test_int),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
