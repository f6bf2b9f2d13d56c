/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/proto/hostname.c. Every input is copied flush against
 * a PROT_NONE guard page before the call, and the output buffer ends flush
 * against a second guard page, so reading one byte past the name or
 * writing one byte past cap faults at once. The main table covers valid
 * names, case and trailing-dot folding, every IP-literal spelling
 * inet_aton() and getaddrinfo() accept, and the bytes a name must not
 * hold; generated names cover the 63/64-byte label and 253/254-byte total
 * limits, every byte value, every truncation and small output buffers.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guardpage.h"
#include "proto/hostname.h"


/* A string literal as (bytes, length), so embedded NULs count. */
#define S(lit) lit, sizeof(lit) - 1

#define OUT_CAP (HOSTNAME_MAX + 1)
#define LEN_SENTINEL ((size_t)0xdeadbeef)


/* One table case. */
struct hcase {
    const char *in;      /* raw input bytes */
    size_t in_len;       /* bytes in in */
    enum hostname_rc rc; /* expected outcome */
    const char *out;     /* expected output for HOSTNAME_OK, else NULL */
    const char *reason;  /* expected reason, or NULL not to check */
};

/* The two guard-page buffers every test uses. */
struct guards {
    struct guardpage in;  /* input, placed flush against its guard */
    struct guardpage out; /* output, ending flush against its guard */
};


static int setup_guards(void **state);
static int teardown_guards(void **state);
static enum hostname_rc run(struct guards *g, const char *in, size_t in_len,
                            size_t cap, char **out, size_t *out_len,
                            const char **reason);
static void check_case(struct guards *g, const struct hcase *c);
static void fill_name(char *buf, const size_t *labels, size_t n_labels);
static void test_table(void **state);
static void test_idempotent(void **state);
static void test_label_length(void **state);
static void test_total_length(void **state);
static void test_every_byte(void **state);
static void test_every_truncation(void **state);
static void test_output_cap(void **state);
static void test_null_arguments(void **state);


static const struct hcase cases[] = {
    /* Valid names and normalisation. */
    {S("example.com"), HOSTNAME_OK, "example.com", "ok"},
    {S("EXAMPLE.COM"), HOSTNAME_OK, "example.com", "ok"},
    {S("Www.Example.Com."), HOSTNAME_OK, "www.example.com", "ok"},
    {S("a"), HOSTNAME_OK, "a", "ok"},
    {S("A."), HOSTNAME_OK, "a", "ok"},
    {S("a.b"), HOSTNAME_OK, "a.b", "ok"},
    {S("intranet"), HOSTNAME_OK, "intranet", "ok"},
    {S("xn--bcher-kva.example"), HOSTNAME_OK, "xn--bcher-kva.example", "ok"},
    {S("XN--BCHER-KVA.EXAMPLE."), HOSTNAME_OK, "xn--bcher-kva.example", "ok"},
    {S("_dmarc.example.com"), HOSTNAME_OK, "_dmarc.example.com", "ok"},
    {S("my_host.example.com"), HOSTNAME_OK, "my_host.example.com", "ok"},
    {S("a_.b_"), HOSTNAME_OK, "a_.b_", "ok"},
    {S("a-b.c-d.example"), HOSTNAME_OK, "a-b.c-d.example", "ok"},
    {S("a--b.example"), HOSTNAME_OK, "a--b.example", "ok"},
    {S("1.2.3.com"), HOSTNAME_OK, "1.2.3.com", "ok"},
    {S("123.example"), HOSTNAME_OK, "123.example", "ok"},
    {S("127.0.0.1.nip.io"), HOSTNAME_OK, "127.0.0.1.nip.io", "ok"},
    {S("0x7f.example"), HOSTNAME_OK, "0x7f.example", "ok"},
    {S("example.com0"), HOSTNAME_OK, "example.com0", "ok"},
    {S("1e100.net"), HOSTNAME_OK, "1e100.net", "ok"},
    {S("deadbeef"), HOSTNAME_OK, "deadbeef", "ok"},
    {S("0xg"), HOSTNAME_OK, "0xg", "ok"},
    {S("a.0x7g"), HOSTNAME_OK, "a.0x7g", "ok"},
    {S("localhost.example.com"), HOSTNAME_OK, "localhost.example.com", "ok"},
    {S("localhostx"), HOSTNAME_OK, "localhostx", "ok"},
    {S("mylocalhost"), HOSTNAME_OK, "mylocalhost", "ok"},
    {S("x.localhost-"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},

    /* IPv4 literals in every spelling inet_aton() accepts, and more. */
    {S("127.0.0.1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("127.0.0.1."), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("1.2.3.4."), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("127.1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("1.2.3"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("1.2"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("2130706433"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("4294967296"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0x7f.1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0x7f000001"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0X7F000001"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0xffffffff"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0x7F.0x0.0x0.0x1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0x"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("0177.0.0.1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("017700000001"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("127.000.000.001"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("08.0.0.1"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("999.999.999.999"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("1.2.3.4.5"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("example.123"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},
    {S("a.b.0xA"), HOSTNAME_IP_LITERAL, NULL, "IPv4 literal"},

    /* IPv6 literals, bare, bracketed, with zones. */
    {S("[::1]"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("::1"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("::"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("::ffff:1.2.3.4"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("::FFFF:7F00:1"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("[::ffff:127.0.0.1]"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("2001:db8::1"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("fe80::1%eth0"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("[fe80::1%25eth0]"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},
    {S("64:ff9b::a9fe:a9fe"), HOSTNAME_IP_LITERAL, NULL, "IPv6 literal"},

    /* Empty names and labels. */
    {S(""), HOSTNAME_INVALID, NULL, "empty name"},
    {S("."), HOSTNAME_INVALID, NULL, "empty label"},
    {S(".."), HOSTNAME_INVALID, NULL, "empty label"},
    {S(".example.com"), HOSTNAME_INVALID, NULL, "empty label"},
    {S("a..b"), HOSTNAME_INVALID, NULL, "empty label"},
    {S("example.com.."), HOSTNAME_INVALID, NULL, "empty label"},
    {S("1.2.3.4.."), HOSTNAME_INVALID, NULL, "empty label"},

    /* Hyphens. */
    {S("-example.com"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},
    {S("example-.com"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},
    {S("example.-com"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},
    {S("a.b-"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},
    {S("-"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},
    {S("xn--"), HOSTNAME_INVALID, NULL, "hyphen at label edge"},

    /* Bytes that never belong in a name. */
    {S("exa mple.com"), HOSTNAME_INVALID, NULL, "space"},
    {S("example.com "), HOSTNAME_INVALID, NULL, "space"},
    {S(" example.com"), HOSTNAME_INVALID, NULL, "space"},
    {S("example.com\0evil.com"), HOSTNAME_INVALID, NULL, "NUL byte"},
    {S("127.0.0.1\0.evil.com"), HOSTNAME_INVALID, NULL, "NUL byte"},
    {S("\0"), HOSTNAME_INVALID, NULL, "NUL byte"},
    {S("example.com\r\n"), HOSTNAME_INVALID, NULL, "control byte"},
    {S("example\n.com"), HOSTNAME_INVALID, NULL, "control byte"},
    {S("x.y\t"), HOSTNAME_INVALID, NULL, "control byte"},
    {S("ex\x1b[31m.com"), HOSTNAME_INVALID, NULL, "control byte"},
    {S("example.com\x7f"), HOSTNAME_INVALID, NULL, "control byte"},
    {S("b\xc3\xbc"
       "cher.de"),
     HOSTNAME_INVALID, NULL, "non-ASCII byte"},
    {S("\xff"), HOSTNAME_INVALID, NULL, "non-ASCII byte"},
    {S("exa\"mple.com"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("exa'mple.com"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("a/b"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("example.com/"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("%31%32%37.0.0.1"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("*.example.com"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("example.com\\"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("user@example.com"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("a!b"), HOSTNAME_INVALID, NULL, "invalid character"},
    {S("a[b]"), HOSTNAME_INVALID, NULL, "invalid character"},

    /* Ports and brackets that are not an IPv6 literal. */
    {S("a:22"), HOSTNAME_INVALID, NULL, "colon"},
    {S("example.com:443"), HOSTNAME_INVALID, NULL, "colon"},
    {S("1.2.3.4:80"), HOSTNAME_INVALID, NULL, "colon"},
    {S("::1]"), HOSTNAME_INVALID, NULL, "colon"},
    {S("fe80::1%"), HOSTNAME_INVALID, NULL, "colon"},
    {S("fe80::1%eth 0"), HOSTNAME_INVALID, NULL, "colon"},
    {S("::1\0"), HOSTNAME_INVALID, NULL, "colon"},
    {S("[::1]:443"), HOSTNAME_INVALID, NULL, "bracket"},
    {S("[example.com]"), HOSTNAME_INVALID, NULL, "bracket"},
    {S("[127.0.0.1]"), HOSTNAME_INVALID, NULL, "bracket"},
    {S("[]"), HOSTNAME_INVALID, NULL, "bracket"},
    {S("["), HOSTNAME_INVALID, NULL, "bracket"},
    {S("[::1"), HOSTNAME_INVALID, NULL, "bracket"},

    /* localhost in every case and position it refers to loopback. */
    {S("localhost"), HOSTNAME_INVALID, NULL, "localhost"},
    {S("LOCALHOST"), HOSTNAME_INVALID, NULL, "localhost"},
    {S("localhost."), HOSTNAME_INVALID, NULL, "localhost"},
    {S("LocalHost."), HOSTNAME_INVALID, NULL, "localhost"},
    {S("foo.localhost"), HOSTNAME_INVALID, NULL, "localhost"},
    {S("a.b.LocalHost."), HOSTNAME_INVALID, NULL, "localhost"},

    /* A last label with no letter is no top-level domain. */
    {S("a.1-2"), HOSTNAME_INVALID, NULL, "no letter in last label"},
    {S("a._"), HOSTNAME_INVALID, NULL, "no letter in last label"},
    {S("12-34"), HOSTNAME_INVALID, NULL, "no letter in last label"},
    {S("a.1_2"), HOSTNAME_INVALID, NULL, "no letter in last label"},
    {S("0x-1"), HOSTNAME_OK, "0x-1", "ok"},
};


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_label_length),
        cmocka_unit_test(test_total_length),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, setup_guards, teardown_guards);
}


static int
setup_guards(void **state)
{
    static struct guards g;

    if (guardpage_init(&g.in, 0) == -1 || guardpage_init(&g.out, 0) == -1) {
        return -1;
    }
    *state = &g;
    return 0;
}


static int
teardown_guards(void **state)
{
    struct guards *const g = *state;

    guardpage_free(&g->in);
    guardpage_free(&g->out);
    return 0;
}


/*
 * Places in_len bytes of in against the input guard and an output buffer
 * of cap bytes against the output guard (filled with 'Z' so stale bytes
 * show), then calls hostname_normalize(). *out is the output buffer.
 */
static enum hostname_rc
run(struct guards *g, const char *in, size_t in_len, size_t cap, char **out,
    size_t *out_len, const char **reason)
{
    const uint8_t *const p = guardpage_place(&g->in, in, in_len);
    assert_non_null(p);
    assert_true(cap <= guardpage_cap(&g->out));
    *out = (char *)g->out.guard - cap;
    memset(*out, 'Z', cap);
    *out_len = LEN_SENTINEL;
    *reason = NULL;
    return hostname_normalize((const char *)p, in_len, *out, cap, out_len,
                              reason);
}


/* Runs one table case and checks rc, output, length and reason. */
static void
check_case(struct guards *g, const struct hcase *c)
{
    char *out;
    size_t out_len;
    const char *reason;
    const enum hostname_rc rc =
        run(g, c->in, c->in_len, OUT_CAP, &out, &out_len, &reason);

    if (rc != c->rc) {
        print_error("input (%zu bytes) \"%.*s\": rc %d, want %d (%s)\n",
                    c->in_len, (int)c->in_len, c->in, (int)rc, (int)c->rc,
                    reason != NULL ? reason : "no reason");
    }
    assert_int_equal(rc, c->rc);
    assert_non_null(reason);
    if (c->reason != NULL) {
        assert_string_equal(reason, c->reason);
    }
    if (rc == HOSTNAME_OK) {
        assert_string_equal(out, c->out);
        assert_int_equal(out_len, strlen(c->out));
    } else {
        assert_int_equal(out[0], '\0');
        assert_int_equal(out_len, LEN_SENTINEL);
    }
}


static void
test_table(void **state)
{
    struct guards *const g = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_case(g, &cases[i]);
    }
}


/* Every OK output, fed back in, comes out OK and unchanged. */
static void
test_idempotent(void **state)
{
    struct guards *const g = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].rc != HOSTNAME_OK) {
            continue;
        }
        char first[OUT_CAP];
        char *out;
        size_t out_len;
        const char *reason;
        assert_int_equal(run(g, cases[i].in, cases[i].in_len, OUT_CAP, &out,
                             &out_len, &reason),
                         HOSTNAME_OK);
        memcpy(first, out, out_len + 1);
        const size_t first_len = out_len;
        assert_int_equal(
            run(g, first, first_len, OUT_CAP, &out, &out_len, &reason),
            HOSTNAME_OK);
        assert_int_equal(out_len, first_len);
        assert_string_equal(out, first);
    }
}


/*
 * Writes labels of the given lengths, joined by '.', into buf and NUL-
 * terminates it. Labels are 'a'..'z' repeated, so every one is valid.
 */
static void
fill_name(char *buf, const size_t *labels, size_t n_labels)
{
    size_t at = 0;

    for (size_t i = 0; i < n_labels; i++) {
        if (i > 0) {
            buf[at++] = '.';
        }
        for (size_t j = 0; j < labels[i]; j++) {
            buf[at++] = (char)('a' + j % 26);
        }
    }
    buf[at] = '\0';
}


static void
test_label_length(void **state)
{
    struct guards *const g = *state;
    char name[512];
    char *out;
    size_t out_len;
    const char *reason;

    /* 63 is the longest label, first, middle or last. */
    static const size_t ok_sets[][3] = {{63, 3, 3}, {3, 63, 3}, {3, 3, 63}};
    for (size_t i = 0; i < 3; i++) {
        fill_name(name, ok_sets[i], 3);
        assert_int_equal(
            run(g, name, strlen(name), OUT_CAP, &out, &out_len, &reason),
            HOSTNAME_OK);
        assert_string_equal(out, name);
    }

    /* 64 is one too many, wherever it is. */
    static const size_t bad_sets[][3] = {{64, 3, 3}, {3, 64, 3}, {3, 3, 64}};
    for (size_t i = 0; i < 3; i++) {
        fill_name(name, bad_sets[i], 3);
        assert_int_equal(
            run(g, name, strlen(name), OUT_CAP, &out, &out_len, &reason),
            HOSTNAME_INVALID);
        assert_string_equal(reason, "label too long");
    }

    /* A single 63-byte label, with a trailing dot too. */
    const size_t one63[1] = {63};
    fill_name(name, one63, 1);
    strcat(name, ".");
    assert_int_equal(
        run(g, name, strlen(name), OUT_CAP, &out, &out_len, &reason),
        HOSTNAME_OK);
    assert_int_equal(out_len, 63);
}


static void
test_total_length(void **state)
{
    struct guards *const g = *state;
    char name[512];
    char upper[512];
    char *out;
    size_t out_len;
    const char *reason;

    /* 63+1+63+1+63+1+61 = 253: the longest name. */
    const size_t max_labels[4] = {63, 63, 63, 61};
    fill_name(name, max_labels, 4);
    assert_int_equal(strlen(name), HOSTNAME_MAX);
    assert_int_equal(
        run(g, name, strlen(name), OUT_CAP, &out, &out_len, &reason),
        HOSTNAME_OK);
    assert_int_equal(out_len, HOSTNAME_MAX);
    assert_string_equal(out, name);

    /* The same in uppercase and with the trailing dot: 254 bytes in. */
    for (size_t i = 0; name[i] != '\0'; i++) {
        upper[i] = name[i] == '.' ? '.' : (char)(name[i] - 'a' + 'A');
        upper[i + 1] = '\0';
    }
    strcat(upper, ".");
    assert_int_equal(
        run(g, upper, strlen(upper), OUT_CAP, &out, &out_len, &reason),
        HOSTNAME_OK);
    assert_int_equal(out_len, HOSTNAME_MAX);
    assert_string_equal(out, name);

    /* 254 bytes, with and without a trailing dot, is too long. */
    const size_t over_labels[4] = {63, 63, 63, 62};
    fill_name(name, over_labels, 4);
    assert_int_equal(strlen(name), HOSTNAME_MAX + 1);
    assert_int_equal(
        run(g, name, strlen(name), OUT_CAP, &out, &out_len, &reason),
        HOSTNAME_INVALID);
    assert_string_equal(reason, "name too long");
    strcat(name, ".");
    assert_int_equal(
        run(g, name, strlen(name), OUT_CAP, &out, &out_len, &reason),
        HOSTNAME_INVALID);
    assert_string_equal(reason, "name too long");

    /* A name far too long is refused without reading it all wrongly. */
    memset(name, 'a', sizeof(name));
    assert_int_equal(
        run(g, name, sizeof(name), OUT_CAP, &out, &out_len, &reason),
        HOSTNAME_INVALID);
    assert_string_equal(reason, "name too long");
}


/*
 * Every byte value inside a label: only [A-Za-z0-9_-] keep the name a
 * name ('.' too, as a separator); letters come out lowercase.
 */
static void
test_every_byte(void **state)
{
    struct guards *const g = *state;

    for (unsigned b = 0; b < 256; b++) {
        char name[] = "aXc.com";
        name[1] = (char)b;
        char *out;
        size_t out_len;
        const char *reason;
        const enum hostname_rc rc =
            run(g, name, sizeof(name) - 1, OUT_CAP, &out, &out_len, &reason);

        const bool is_upper = b >= 'A' && b <= 'Z';
        const bool is_ok = is_upper || (b >= 'a' && b <= 'z') ||
                           (b >= '0' && b <= '9') || b == '-' || b == '_' ||
                           b == '.';
        if (!is_ok) {
            assert_int_equal(rc, HOSTNAME_INVALID);
            continue;
        }
        assert_int_equal(rc, HOSTNAME_OK);
        char want[] = "aXc.com";
        want[1] = is_upper ? (char)(b - 'A' + 'a') : (char)b;
        assert_string_equal(out, want);
    }
}


/*
 * Every prefix of a few inputs, placed flush against the guard: no read
 * past the end, and an OK prefix comes out as the lowercased prefix
 * without its trailing dot.
 */
static void
test_every_truncation(void **state)
{
    struct guards *const g = *state;
    static const char *const inputs[] = {
        "Www.Example.COM.",
        "a-b_c.xn--bcher-kva.example.",
        "0x7F.0x0.0x0.0x1",
        "[fe80::1%25eth0]",
    };

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        const size_t len = strlen(inputs[i]);
        for (size_t n = 0; n <= len; n++) {
            char *out;
            size_t out_len;
            const char *reason;
            const enum hostname_rc rc =
                run(g, inputs[i], n, OUT_CAP, &out, &out_len, &reason);
            assert_non_null(reason);
            if (rc != HOSTNAME_OK) {
                continue;
            }
            const size_t want_len = inputs[i][n - 1] == '.' ? n - 1 : n;
            assert_int_equal(out_len, want_len);
            for (size_t k = 0; k < want_len; k++) {
                const char c = inputs[i][k];
                const char lc =
                    c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
                assert_int_equal(out[k], lc);
            }
            assert_int_equal(out[want_len], '\0');
        }
    }
}


/* The output never goes past cap; a cap too small for the name refuses. */
static void
test_output_cap(void **state)
{
    struct guards *const g = *state;
    char *out;
    size_t out_len;
    const char *reason;

    /* Exactly enough: 11 bytes and the NUL, the NUL against the guard. */
    assert_int_equal(run(g, S("Example.COM."), 12, &out, &out_len, &reason),
                     HOSTNAME_OK);
    assert_string_equal(out, "example.com");
    assert_int_equal(out_len, 11);

    /* One short. */
    assert_int_equal(run(g, S("example.com"), 11, &out, &out_len, &reason),
                     HOSTNAME_INVALID);
    assert_string_equal(reason, "output buffer too small");
    assert_int_equal(out[0], '\0');

    /* One byte: only the NUL fits, so no name does. */
    assert_int_equal(run(g, S("a"), 1, &out, &out_len, &reason),
                     HOSTNAME_INVALID);
    assert_int_equal(out[0], '\0');

    /* cap 0 with a NULL buffer: nothing is written. */
    assert_int_equal(hostname_normalize("a", 1, NULL, 0, &out_len, &reason),
                     HOSTNAME_INVALID);
    assert_string_equal(reason, "output buffer too small");
    assert_int_equal(hostname_normalize("::1", 3, NULL, 0, &out_len, &reason),
                     HOSTNAME_IP_LITERAL);
}


/* out_len and reason may be NULL; name may be NULL when len is 0. */
static void
test_null_arguments(void **state)
{
    (void)state;
    char out[OUT_CAP];

    assert_int_equal(
        hostname_normalize("Example.com", 11, out, sizeof(out), NULL, NULL),
        HOSTNAME_OK);
    assert_string_equal(out, "example.com");
    assert_int_equal(
        hostname_normalize("127.1", 5, out, sizeof(out), NULL, NULL),
        HOSTNAME_IP_LITERAL);
    assert_int_equal(hostname_normalize("a b", 3, out, sizeof(out), NULL, NULL),
                     HOSTNAME_INVALID);

    const char *reason = NULL;
    assert_int_equal(
        hostname_normalize(NULL, 0, out, sizeof(out), NULL, &reason),
        HOSTNAME_INVALID);
    assert_string_equal(reason, "empty name");
}
