/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/str: the nginx-compatible log escaper, checked byte by
 * byte against the rules written out independently here, and str_lower().
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/str.h"


/*
 * The expected escape of one byte, spelled out from nginx's tables
 * (ngx_stream_log_escape(), ngx_escape_json()) rather than from str.c.
 */
static size_t
expect_byte(unsigned char ch, enum str_escape mode, char *out)
{
    if (mode == STR_ESCAPE_DEFAULT) {
        if (ch <= 0x1f || ch >= 0x7f || ch == 0x22 || ch == 0x5c) {
            return (size_t)sprintf(out, "\\x%02X", ch);
        }
    } else if (mode == STR_ESCAPE_JSON) {
        static const char *const named[] = {
            ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t",  ['\b'] = "\\b",
            ['\f'] = "\\f", ['"'] = "\\\"", ['\\'] = "\\\\",
        };

        if (ch < sizeof(named) / sizeof(named[0]) && named[ch] != NULL) {
            return (size_t)sprintf(out, "%s", named[ch]);
        }
        if (ch < 0x20) {
            return (size_t)sprintf(out, "\\u%04X", ch);
        }
    }
    out[0] = (char)ch;
    out[1] = '\0';
    return 1;
}


static void
check_every_byte(enum str_escape mode)
{
    for (unsigned b = 0; b < 256; b++) {
        const char src = (char)b;
        char want[16];
        char got[16];
        const size_t want_len = expect_byte((unsigned char)b, mode, want);

        memset(got, 0x55, sizeof(got));
        const size_t n = str_escape(got, sizeof(got), &src, 1, mode);

        if (n != want_len || memcmp(got, want, want_len) != 0) {
            fail_msg("mode %d byte 0x%02X: got %zu bytes \"%.*s\", want "
                     "\"%s\"",
                     (int)mode, b, n, (int)n, got, want);
        }
        /* Nothing is written past the escaped bytes (no NUL either). */
        assert_int_equal((unsigned char)got[n], 0x55);
    }
}


static void
test_default_every_byte(void **state)
{
    (void)state;
    check_every_byte(STR_ESCAPE_DEFAULT);
}


static void
test_json_every_byte(void **state)
{
    (void)state;
    check_every_byte(STR_ESCAPE_JSON);
}


static void
test_none_every_byte(void **state)
{
    (void)state;
    char src[256];
    char got[256];

    for (unsigned b = 0; b < 256; b++) {
        src[b] = (char)b;
    }
    assert_int_equal(
        str_escape(got, sizeof(got), src, sizeof(src), STR_ESCAPE_NONE), 256);
    assert_memory_equal(got, src, sizeof(src));
}


static void
test_default_examples(void **state)
{
    (void)state;
    const char src[] = "a\"b\\c\x7f\xff~ z";
    char got[64];
    const char want[] = "a\\x22b\\x5Cc\\x7F\\xFF~ z";
    const size_t n =
        str_escape(got, sizeof(got), src, sizeof(src) - 1, STR_ESCAPE_DEFAULT);

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(got, want, n);
}


static void
test_json_examples(void **state)
{
    (void)state;
    const char src[] = "q\"b\\\n\r\t\b\f\x01\x1f\x7f\xc3\xa9";
    char got[64];
    const char want[] = "q\\\"b\\\\\\n\\r\\t\\b\\f\\u0001\\u001F\x7f\xc3\xa9";
    const size_t n =
        str_escape(got, sizeof(got), src, sizeof(src) - 1, STR_ESCAPE_JSON);

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(got, want, n);
}


static void
test_truncation(void **state)
{
    (void)state;
    const char src[] = "a\"b";
    char got[8];

    /* The whole output is "a\x22b": 6 bytes. */
    for (size_t cap = 0; cap <= 7; cap++) {
        memset(got, '#', sizeof(got));
        const size_t n = str_escape(got, cap, src, 3, STR_ESCAPE_DEFAULT);

        assert_int_equal(n, 6);
        assert_memory_equal(got, "a\\x22b", cap < 6 ? cap : 6);
        for (size_t i = cap < 6 ? cap : 6; i < sizeof(got); i++) {
            assert_int_equal(got[i], '#');
        }
    }

    /* cap 0 with no buffer only measures. */
    assert_int_equal(str_escape(NULL, 0, "\n\n", 2, STR_ESCAPE_JSON), 4);
    assert_int_equal(str_escape(NULL, 0, "\x01", 1, STR_ESCAPE_JSON), 6);
    assert_int_equal(str_escape(NULL, 0, "abc", 3, STR_ESCAPE_NONE), 3);
    assert_int_equal(str_escape(NULL, 0, "", 0, STR_ESCAPE_DEFAULT), 0);
}


static void
test_sni_log_injection(void **state)
{
    (void)state;
    /* An SNI trying to forge a second log line and close a quoted field. */
    const char sni[] = "\n2026 ALLOWED evil\"";
    char line[128];
    const size_t n = str_escape(line, sizeof(line), sni, sizeof(sni) - 1,
                                STR_ESCAPE_DEFAULT);
    const char want[] = "\\x0A2026 ALLOWED evil\\x22";

    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(line, want, n);
    assert_null(memchr(line, '\n', n));
    assert_null(memchr(line, '"', n));

    /* JSON mode keeps it on one line and inside its string as well. */
    const size_t j =
        str_escape(line, sizeof(line), sni, sizeof(sni) - 1, STR_ESCAPE_JSON);

    assert_int_equal(j, sizeof("\\n2026 ALLOWED evil\\\"") - 1);
    assert_memory_equal(line, "\\n2026 ALLOWED evil\\\"", j);
    assert_null(memchr(line, '\n', j));
}


static void
test_lower(void **state)
{
    (void)state;
    char src[256];
    char got[256];

    for (unsigned b = 0; b < 256; b++) {
        src[b] = (char)b;
    }
    str_lower(got, src, sizeof(src));
    for (unsigned b = 0; b < 256; b++) {
        const unsigned want = b >= 'A' && b <= 'Z' ? b + 32 : b;

        assert_int_equal((unsigned char)got[b], want);
    }

    char inplace[] = "WWW.Example.COM\xc4";

    str_lower(inplace, inplace, sizeof(inplace) - 1);
    assert_string_equal(inplace, "www.example.com\xc4");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_every_byte),
        cmocka_unit_test(test_json_every_byte),
        cmocka_unit_test(test_none_every_byte),
        cmocka_unit_test(test_default_examples),
        cmocka_unit_test(test_json_examples),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_sni_log_injection),
        cmocka_unit_test(test_lower),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
