/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for stream/hostmatch: exact keys, nginx wildcards and regexes
 * with captures, their precedence, conflicts and error messages.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stream/hostmatch.h"


/* Distinct non-NULL values to store. */
static char v_exact, v_star, v_dot, v_tail, v_tail2, v_re1, v_re2, v_com;


/* Adds a C-string key and fails the test if that fails. */
static void
add_ok(struct hostmatch *m, const char *key, void *value)
{
    char err[256] = "";

    if (hostmatch_add(m, key, strlen(key), value, err, sizeof(err)) != 0) {
        fail_msg("adding \"%s\" failed: %s", key, err);
    }
}


/* Adds a C-string key that must fail; returns the message. */
static const char *
add_err(struct hostmatch *m, const char *key, char *err, size_t errcap)
{
    err[0] = '\0';
    assert_int_equal(hostmatch_add(m, key, strlen(key), &v_exact, err, errcap),
                     -1);
    return err;
}


static void *
find(const struct hostmatch *m, const char *name)
{
    return hostmatch_find(m, name, strlen(name), NULL);
}


static void
test_exact_caseless(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(false);

    assert_non_null(m);
    add_ok(m, "Example.COM", &v_exact);
    add_ok(m, "other.example", &v_star);
    assert_ptr_equal(find(m, "example.com"), &v_exact);
    assert_ptr_equal(find(m, "EXAMPLE.com"), &v_exact);
    assert_ptr_equal(find(m, "other.EXAMPLE"), &v_star);
    assert_null(find(m, "example.co"));
    assert_null(find(m, "example.comm"));
    assert_null(find(m, "www.example.com"));
    /* Without hostnames a trailing dot is part of the name. */
    assert_null(find(m, "example.com."));
    /* Nor are wildcards special: "*.a.b" is just a string. */
    add_ok(m, "*.a.b", &v_com);
    assert_null(find(m, "x.a.b"));
    assert_ptr_equal(find(m, "*.A.b"), &v_com);
    hostmatch_free(m);
}


static void
test_wildcard_forms(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);

    add_ok(m, "*.star.test", &v_star);
    add_ok(m, ".dot.test", &v_dot);
    add_ok(m, "www.tail.*", &v_tail);

    /* "*.a.b": subdomains at any depth, not "a.b" itself. */
    assert_ptr_equal(find(m, "www.star.test"), &v_star);
    assert_ptr_equal(find(m, "a.b.STAR.test"), &v_star);
    assert_null(find(m, "star.test"));
    assert_null(find(m, "xstar.test"));

    /* ".a.b": "a.b" and its subdomains. */
    assert_ptr_equal(find(m, "dot.test"), &v_dot);
    assert_ptr_equal(find(m, "www.dot.test"), &v_dot);
    assert_ptr_equal(find(m, "a.b.Dot.Test"), &v_dot);
    assert_null(find(m, "xdot.test"));
    assert_null(find(m, "dot.test.x"));

    /* "a.b.*": "a.b." followed by anything. */
    assert_ptr_equal(find(m, "www.tail.com"), &v_tail);
    assert_ptr_equal(find(m, "WWW.tail.co.uk"), &v_tail);
    assert_null(find(m, "www.tail"));
    assert_null(find(m, "www.tailx.com"));
    assert_null(find(m, "x.www.tail.com"));

    assert_null(find(m, ""));
    assert_null(hostmatch_find(m, NULL, 0, NULL));
    hostmatch_free(m);
}


static void
test_precedence(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);

    /* Regexes first, to show order of adding does not matter. */
    add_ok(m, "~^www\\.", &v_re1);
    add_ok(m, "~example", &v_re2);
    add_ok(m, "www.example.*", &v_tail);
    add_ok(m, "www.*", &v_tail2);
    add_ok(m, "*.com", &v_com);
    add_ok(m, "*.example.com", &v_star);
    add_ok(m, "www.example.com", &v_exact);

    /* Exact beats every wildcard. */
    assert_ptr_equal(find(m, "www.example.com"), &v_exact);
    /* The longest leading wildcard wins over a shorter one. */
    assert_ptr_equal(find(m, "ftp.example.com"), &v_star);
    assert_ptr_equal(find(m, "a.b.example.com"), &v_star);
    assert_ptr_equal(find(m, "other.com"), &v_com);
    /* Leading wildcards beat trailing ones. */
    assert_ptr_equal(find(m, "www.other.com"), &v_com);
    /* The longest trailing wildcard wins. */
    assert_ptr_equal(find(m, "www.example.org"), &v_tail);
    assert_ptr_equal(find(m, "www.other.org"), &v_tail2);
    /* Regexes come last, first added first. */
    assert_ptr_equal(find(m, "www2.example.org"), &v_re2);
    assert_ptr_equal(find(m, "www.x"), &v_tail2);
    assert_ptr_equal(find(m, "wwwexample"), &v_re2);
    assert_null(find(m, "nothing.org"));
    hostmatch_free(m);

    /* ".a.b" against "*.a.b"-under: the longer suffix wins either way. */
    m = hostmatch_new(true);
    add_ok(m, ".example.com", &v_dot);
    add_ok(m, "*.www.example.com", &v_star);
    assert_ptr_equal(find(m, "x.www.example.com"), &v_star);
    assert_ptr_equal(find(m, "www.example.com"), &v_dot);
    assert_ptr_equal(find(m, "example.com"), &v_dot);
    hostmatch_free(m);
}


static void
test_trailing_dot(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);

    add_ok(m, "example.com", &v_exact);
    add_ok(m, "*.star.test", &v_star);
    add_ok(m, "www.tail.*", &v_tail);
    add_ok(m, "~^(re)\\.test$", &v_re1);

    assert_ptr_equal(find(m, "example.com."), &v_exact);
    assert_ptr_equal(find(m, "Example.Com."), &v_exact);
    assert_ptr_equal(find(m, "a.star.test."), &v_star);
    /* "www.tail." minus its dot is "www.tail": no tail match. */
    assert_null(find(m, "www.tail."));
    assert_ptr_equal(find(m, "www.tail.x."), &v_tail);

    /* The regex sees the name without the dot. */
    struct hostmatch_caps caps;
    const char *val;
    size_t len;

    assert_ptr_equal(hostmatch_find(m, "re.test.", 8, &caps), &v_re1);
    assert_int_equal(caps.count, 2);
    assert_int_equal(hostmatch_cap(&caps, 0, &val, &len), 0);
    assert_int_equal(len, 7);
    assert_memory_equal(val, "re.test", 7);

    /* Only one dot is dropped. */
    assert_null(find(m, "example.com.."));
    hostmatch_free(m);
}


static void
test_regex_captures(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);
    struct hostmatch_caps caps;
    const char *val;
    size_t len;

    add_ok(m, "~^(?<svc>[a-z]+)\\.(\\w+)\\.example\\.net$", &v_re1);
    assert_int_equal(hostmatch_last_group(m, "svc", 3), 1);
    assert_int_equal(hostmatch_last_group(m, "svcx", 4), -1);
    assert_int_equal(hostmatch_last_group(m, "sv", 2), -1);

    add_ok(m, "~^(a)|(b)(?<tld>c)?$", &v_re2);
    assert_int_equal(hostmatch_last_group(m, "tld", 3), 3);
    /* Only the regex added last is asked. */
    assert_int_equal(hostmatch_last_group(m, "svc", 3), -1);

    const char name[] = "mail.eu.example.net";

    assert_ptr_equal(hostmatch_find(m, name, sizeof(name) - 1, &caps), &v_re1);
    assert_ptr_equal(caps.subject, name);
    assert_int_equal(caps.count, 3);
    assert_int_equal(hostmatch_cap(&caps, 1, &val, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(val, "mail", 4);
    assert_ptr_equal(val, name);
    assert_int_equal(hostmatch_cap(&caps, 2, &val, &len), 0);
    assert_memory_equal(val, "eu", len);
    assert_int_equal(len, 2);
    assert_int_equal(hostmatch_cap(&caps, 3, &val, &len), -1);
    assert_int_equal(hostmatch_cap(&caps, 99, &val, &len), -1);

    /* Group 1 unset while group 2 is set. */
    assert_ptr_equal(hostmatch_find(m, "b", 1, &caps), &v_re2);
    assert_int_equal(caps.count, 3);
    assert_int_equal(hostmatch_cap(&caps, 1, &val, &len), -1);
    assert_int_equal(caps.ovector[2], HOSTMATCH_UNSET);
    assert_int_equal(hostmatch_cap(&caps, 2, &val, &len), 0);
    assert_memory_equal(val, "b", 1);
    assert_int_equal(hostmatch_cap(&caps, 3, &val, &len), -1);

    /* No match: count 0. */
    assert_null(hostmatch_find(m, "zzz", 3, &caps));
    assert_int_equal(caps.count, 0);
    assert_int_equal(hostmatch_cap(&caps, 0, &val, &len), -1);

    /* A non-regex match leaves count 0 too. */
    add_ok(m, "exact.test", &v_exact);
    assert_ptr_equal(hostmatch_find(m, "exact.test", 10, &caps), &v_exact);
    assert_int_equal(caps.count, 0);

    /* More groups than kept: the first HOSTMATCH_MAX_CAPS are there. */
    add_ok(m, "~^(x)(x)(x)(x)(x)(x)(x)(x)(x)(x)(x)(x)$", &v_com);
    assert_ptr_equal(hostmatch_find(m, "xxxxxxxxxxxx", 12, &caps), &v_com);
    assert_int_equal(caps.count, HOSTMATCH_MAX_CAPS);
    assert_int_equal(hostmatch_cap(&caps, 9, &val, &len), 0);
    assert_ptr_equal(val, caps.subject + 8);
    assert_int_equal(hostmatch_cap(&caps, 10, &val, &len), -1);
    hostmatch_free(m);

    /* Regexes work in non-hostnames maps too, and see no lowercasing. */
    m = hostmatch_new(false);
    assert_int_equal(hostmatch_last_group(m, "x", 1), -1);
    add_ok(m, "~^Upper$", &v_re1);
    assert_ptr_equal(find(m, "Upper"), &v_re1);
    assert_null(find(m, "upper"));
    hostmatch_free(m);
}


static void
test_regex_caseless(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);

    add_ok(m, "~^api\\.", &v_re1);
    add_ok(m, "~*^web\\.", &v_re2);
    assert_ptr_equal(find(m, "api.example"), &v_re1);
    assert_null(find(m, "API.example"));
    assert_ptr_equal(find(m, "web.example"), &v_re2);
    assert_ptr_equal(find(m, "WeB.example"), &v_re2);
    hostmatch_free(m);
}


static void
test_backslash_escape(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);

    add_ok(m, "\\~literal", &v_exact);
    assert_ptr_equal(find(m, "~literal"), &v_exact);
    assert_null(find(m, "literal"));
    hostmatch_free(m);
}


static void
test_conflicts(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);
    char err[256];

    add_ok(m, "example.com", &v_exact);
    assert_string_equal(add_err(m, "EXAMPLE.com", err, sizeof(err)),
                        "conflicting parameter \"EXAMPLE.com\"");
    /* ".a.b" also claims "a.b". */
    assert_string_equal(add_err(m, ".example.com", err, sizeof(err)),
                        "conflicting parameter \".example.com\"");
    /* "*.a.b" does not. */
    add_ok(m, "*.example.com", &v_star);
    /* "*.a.b" and ".a.b" share a slot, either way round. */
    assert_string_equal(add_err(m, "*.example.com", err, sizeof(err)),
                        "conflicting parameter \"*.example.com\"");

    add_ok(m, ".example.org", &v_dot);
    assert_string_equal(add_err(m, "example.org", err, sizeof(err)),
                        "conflicting parameter \"example.org\"");
    assert_string_equal(add_err(m, "*.example.org", err, sizeof(err)),
                        "conflicting parameter \"*.example.org\"");
    assert_string_equal(add_err(m, ".Example.org", err, sizeof(err)),
                        "conflicting parameter \".Example.org\"");

    add_ok(m, "www.example.*", &v_tail);
    assert_string_equal(add_err(m, "WWW.example.*", err, sizeof(err)),
                        "conflicting parameter \"WWW.example.*\"");

    /* The failed adds changed nothing. */
    assert_ptr_equal(find(m, "example.com"), &v_exact);
    assert_ptr_equal(find(m, "a.example.com"), &v_star);
    assert_ptr_equal(find(m, "example.org"), &v_dot);
    hostmatch_free(m);

    m = hostmatch_new(false);
    add_ok(m, "key", &v_exact);
    assert_string_equal(add_err(m, "KEY", err, sizeof(err)),
                        "conflicting parameter \"KEY\"");
    /* Without hostnames ".key" is a string of its own. */
    add_ok(m, ".key", &v_dot);
    hostmatch_free(m);
}


static void
test_bad_wildcards(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "a.*.b", "*",    "*.",  "**.a", "*.a.*", "a.*b",
        "*a.b",  "a..b", "..a", ".*",   "w*w.a",
    };
    struct hostmatch *m = hostmatch_new(true);
    char err[256];
    char want[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want), "invalid server name or wildcard \"%s\"",
                 bad[i]);
        assert_string_equal(add_err(m, bad[i], err, sizeof(err)), want);
    }
    /* Short keys that are still fine: "." is an exact name, "a.*" a tail. */
    add_ok(m, ".", &v_exact);
    add_ok(m, "a.*", &v_tail);
    add_ok(m, ".a", &v_dot);
    assert_ptr_equal(find(m, "a.x"), &v_tail);
    assert_ptr_equal(find(m, "a"), &v_dot);
    hostmatch_free(m);

    /* Without hostnames these are plain strings. */
    m = hostmatch_new(false);
    add_ok(m, "a.*.b", &v_exact);
    add_ok(m, "*", &v_star);
    assert_ptr_equal(find(m, "*"), &v_star);
    hostmatch_free(m);
}


static void
test_bad_regex(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(false);
    char err[256];

    assert_string_equal(add_err(m, "~^(abc", err, sizeof(err)),
                        "pcre2_compile() failed: missing closing parenthesis "
                        "in \"^(abc\"");
    assert_string_equal(add_err(m, "~*a)b", err, sizeof(err)),
                        "pcre2_compile() failed: unmatched closing "
                        "parenthesis in \"a)b\" at \")b\"");
    /* A short buffer gets a truncated, terminated message. */
    char small[10];

    add_err(m, "~(", small, sizeof(small));
    assert_string_equal(small, "pcre2_com");
    /* No buffer at all is fine too. */
    assert_int_equal(hostmatch_add(m, "~(", 2, &v_re1, NULL, 0), -1);
    assert_null(find(m, "("));
    hostmatch_free(m);
}


static void
test_nothing_matches(void **state)
{
    (void)state;
    struct hostmatch *m = hostmatch_new(true);
    struct hostmatch_caps caps;

    caps.count = 7;
    assert_null(hostmatch_find(m, "any.name", 8, &caps));
    assert_int_equal(caps.count, 0);
    add_ok(m, "a.test", &v_exact);
    assert_null(find(m, "b.test"));
    assert_null(find(m, "test"));
    hostmatch_free(m);
    hostmatch_free(NULL);
}


static void
test_many_exact_keys(void **state)
{
    (void)state;
    enum { N = 10000 };
    static int values[N];
    struct hostmatch *m = hostmatch_new(true);
    char key[64];

    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "Host%d.Example.%s", i,
                 i % 2 ? "com" : "net");
        add_ok(m, key, &values[i]);
    }
    add_ok(m, "*.example.com", &v_star);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "host%d.example.%s", i,
                 i % 2 ? "com" : "net");
        assert_ptr_equal(find(m, key), &values[i]);
    }
    assert_ptr_equal(find(m, "host10000.example.com"), &v_star);
    assert_null(find(m, "host10000.example.net"));
    assert_null(find(m, "host1.example.org"));
    hostmatch_free(m);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_caseless),
        cmocka_unit_test(test_wildcard_forms),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_trailing_dot),
        cmocka_unit_test(test_regex_captures),
        cmocka_unit_test(test_regex_caseless),
        cmocka_unit_test(test_backslash_escape),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_bad_wildcards),
        cmocka_unit_test(test_bad_regex),
        cmocka_unit_test(test_nothing_matches),
        cmocka_unit_test(test_many_exact_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
