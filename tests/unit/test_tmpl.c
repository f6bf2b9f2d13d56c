/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for stream/tmpl: compiling nginx-style complex values and
 * rendering them with escaped values and unescaped literals.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/str.h"
#include "stream/tmpl.h"


/* Ids the test resolver hands out. */
enum {
    VAR_SNI = 1,
    VAR_ADDR = 2,
    VAR_MISSING = 3, /* known, but its value is never found */
    CAP_HOST = 4,    /* a named regex capture: group 4 */
};

/* Values the test renderer hands out, by id. */
struct values {
    const char *sni;
    const char *caps[10]; /* by group number; NULL: unset */
    int calls;            /* value() calls seen */
};


static int
resolve(void *data, const char *name, size_t len, bool *is_capture)
{
    int *calls = data;

    (*calls)++;
    if (len == 23 && memcmp(name, "ssl_preread_server_name", len) == 0) {
        return VAR_SNI;
    }
    if (len == 11 && memcmp(name, "remote_addr", len) == 0) {
        return VAR_ADDR;
    }
    if (len == 7 && memcmp(name, "missing", len) == 0) {
        return VAR_MISSING;
    }
    if (len == 4 && memcmp(name, "host", len) == 0) {
        *is_capture = true;
        return CAP_HOST;
    }
    return -1;
}


static int
value(void *data, const struct tmpl_part *p, const char **val, size_t *len)
{
    struct values *v = data;

    v->calls++;
    if (p->kind == TMPL_CAPTURE) {
        if (p->id < 0 || p->id >= 10 || v->caps[p->id] == NULL) {
            return -1;
        }
        *val = v->caps[p->id];
        *len = strlen(*val);
        return 0;
    }
    switch (p->id) {
    case VAR_SNI:
        *val = v->sni;
        *len = strlen(v->sni);
        return 0;
    case VAR_ADDR:
        *val = "192.0.2.1";
        *len = 9;
        return 0;
    default:
        return -1;
    }
}


/* Compiles text (a C string) and returns the error, or NULL. */
static const char *
compile(struct arena *a, const char *text, struct tmpl *t, char *err,
        size_t errcap)
{
    int calls = 0;

    return tmpl_compile(a, text, strlen(text), resolve, &calls, t, err, errcap);
}


/* Renders t into a NUL-terminated buffer; returns the needed length. */
static size_t
render(const struct tmpl *t, struct values *v, enum str_escape esc, char *out,
       size_t cap)
{
    const size_t n = tmpl_render(t, value, v, esc, out, cap - 1);

    out[n < cap - 1 ? n : cap - 1] = '\0';
    return n;
}


static int
setup(void **state)
{
    *state = arena_new();
    return *state == NULL ? -1 : 0;
}


static int
teardown(void **state)
{
    arena_free(*state);
    return 0;
}


static void
test_literal_only(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];
    char out[64];
    struct values v = {.sni = "x"};

    assert_null(compile(a, "backend.example:443", &t, err, sizeof(err)));
    assert_int_equal(t.nparts, 1);
    assert_false(t.has_vars);
    assert_int_equal(t.parts[0].kind, TMPL_LITERAL);
    assert_int_equal(t.parts[0].len, 19);
    assert_memory_equal(t.parts[0].text, "backend.example:443", 19);
    assert_int_equal(render(&t, &v, STR_ESCAPE_DEFAULT, out, sizeof(out)), 19);
    assert_string_equal(out, "backend.example:443");
    assert_int_equal(v.calls, 0);

    /* Constant templates render without a value function. */
    assert_int_equal(tmpl_render(&t, NULL, NULL, STR_ESCAPE_NONE, out, 64), 19);

    /* A literal with an unsafe byte is not escaped: only values are. */
    assert_null(compile(a, "a\"b", &t, err, sizeof(err)));
    assert_int_equal(render(&t, &v, STR_ESCAPE_DEFAULT, out, sizeof(out)), 3);
    assert_string_equal(out, "a\"b");

    assert_null(compile(a, "", &t, err, sizeof(err)));
    assert_int_equal(t.nparts, 0);
    assert_false(t.has_vars);
    assert_int_equal(tmpl_render(&t, NULL, NULL, STR_ESCAPE_NONE, NULL, 0), 0);
}


static void
test_var(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];
    char out[64];
    struct values v = {.sni = "www.example.com"};

    assert_null(
        compile(a, "$ssl_preread_server_name:443", &t, err, sizeof(err)));
    assert_int_equal(t.nparts, 2);
    assert_true(t.has_vars);
    assert_int_equal(t.parts[0].kind, TMPL_VAR);
    assert_int_equal(t.parts[0].id, VAR_SNI);
    assert_int_equal(t.parts[0].len, 23);
    assert_string_equal(t.parts[0].text, "ssl_preread_server_name");
    assert_int_equal(t.parts[1].kind, TMPL_LITERAL);
    assert_string_equal(t.parts[1].text, ":443");
    assert_int_equal(render(&t, &v, STR_ESCAPE_DEFAULT, out, sizeof(out)), 19);
    assert_string_equal(out, "www.example.com:443");

    /* A name ends at the first non-name byte. */
    assert_null(compile(a, "[$remote_addr]-$ssl_preread_server_name", &t, err,
                        sizeof(err)));
    assert_int_equal(t.nparts, 4);
    assert_int_equal(render(&t, &v, STR_ESCAPE_DEFAULT, out, sizeof(out)),
                     strlen("[192.0.2.1]-www.example.com"));
    assert_string_equal(out, "[192.0.2.1]-www.example.com");
}


static void
test_braced_var(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];
    char out[64];
    struct values v = {.sni = "sni"};

    assert_null(compile(a, "${remote_addr}x${ssl_preread_server_name}_1", &t,
                        err, sizeof(err)));
    assert_int_equal(t.nparts, 4);
    assert_int_equal(t.parts[0].kind, TMPL_VAR);
    assert_int_equal(t.parts[0].id, VAR_ADDR);
    assert_string_equal(t.parts[0].text, "remote_addr");
    assert_string_equal(t.parts[1].text, "x");
    assert_int_equal(t.parts[2].id, VAR_SNI);
    assert_string_equal(t.parts[3].text, "_1");
    render(&t, &v, STR_ESCAPE_NONE, out, sizeof(out));
    assert_string_equal(out, "192.0.2.1xsni_1");
}


static void
test_captures(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];
    char out[64];
    int calls = 0;
    struct values v = {.sni = "",
                       .caps = {[1] = "one", [2] = "two", [4] = "named"}};

    /* "$12" is capture 1 then the literal "2", as in nginx. */
    assert_null(tmpl_compile(a, "$1.$2:$12-${3}|$host", 20, resolve, &calls, &t,
                             err, sizeof(err)));
    assert_int_equal(calls, 1); /* only "host" went to the resolver */
    assert_int_equal(t.nparts, 9);
    assert_int_equal(t.parts[0].kind, TMPL_CAPTURE);
    assert_int_equal(t.parts[0].id, 1);
    assert_string_equal(t.parts[0].text, "1");
    assert_int_equal(t.parts[2].kind, TMPL_CAPTURE);
    assert_int_equal(t.parts[2].id, 2);
    assert_int_equal(t.parts[4].id, 1);
    assert_string_equal(t.parts[5].text, "2-");
    assert_int_equal(t.parts[6].kind, TMPL_CAPTURE);
    assert_int_equal(t.parts[6].id, 3);
    assert_int_equal(t.parts[8].kind, TMPL_CAPTURE);
    assert_int_equal(t.parts[8].id, CAP_HOST);
    assert_string_equal(t.parts[8].text, "host");

    /* The unset capture 3 renders as empty. */
    assert_int_equal(render(&t, &v, STR_ESCAPE_DEFAULT, out, sizeof(out)),
                     strlen("one.two:one2-|named"));
    assert_string_equal(out, "one.two:one2-|named");
}


static void
test_unknown_var(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];

    assert_string_equal(compile(a, "x$foo:443", &t, err, sizeof(err)),
                        "unknown \"foo\" variable");
    assert_int_equal(t.nparts, 0);
    assert_string_equal(compile(a, "${bar}", &t, err, sizeof(err)),
                        "unknown \"bar\" variable");
    /* "$0" is a name, not a capture, as in nginx. */
    assert_string_equal(compile(a, "$0", &t, err, sizeof(err)),
                        "unknown \"0\" variable");

    /* Without a resolver every name is unknown. */
    assert_string_equal(
        tmpl_compile(a, "$remote_addr", 12, NULL, NULL, &t, err, sizeof(err)),
        "unknown \"remote_addr\" variable");
}


static void
test_invalid_name(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];

    assert_string_equal(compile(a, "abc$", &t, err, sizeof(err)),
                        "invalid variable name in \"abc$\"");
    assert_int_equal(t.nparts, 0);
    assert_false(t.has_vars);
    assert_string_equal(compile(a, "a$-b", &t, err, sizeof(err)),
                        "invalid variable name in \"a$-b\"");
    assert_string_equal(compile(a, "$$remote_addr", &t, err, sizeof(err)),
                        "invalid variable name in \"$$remote_addr\"");
    assert_string_equal(compile(a, "x${", &t, err, sizeof(err)),
                        "invalid variable name in \"x${\"");
    assert_string_equal(compile(a, "${}", &t, err, sizeof(err)),
                        "invalid variable name in \"${}\"");
}


static void
test_missing_bracket(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];

    assert_string_equal(compile(a, "${foo", &t, err, sizeof(err)),
                        "the closing bracket in \"foo\" variable is missing");
    assert_string_equal(compile(a, "${remote_addr:443", &t, err, sizeof(err)),
                        "the closing bracket in \"remote_addr\" variable is "
                        "missing");
    assert_int_equal(t.nparts, 0);

    /* A short errbuf gets a truncated, terminated message. */
    char small[8];

    assert_ptr_equal(compile(a, "${foo", &t, small, sizeof(small)), small);
    assert_string_equal(small, "the clo");

    /* No errbuf: still an error, with a static message. */
    assert_non_null(compile(a, "${foo", &t, NULL, 0));
}


static void
test_render_escaping(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];
    char out[128];
    struct values v = {.sni = "\n2026 ALLOWED evil\""};

    assert_null(compile(a, "sni=\"$ssl_preread_server_name\"\t$missing.", &t,
                        err, sizeof(err)));

    size_t n = render(&t, &v, STR_ESCAPE_DEFAULT, out, sizeof(out));

    /* The literal quotes and tab stay; the value's are escaped. */
    assert_string_equal(out, "sni=\"\\x0A2026 ALLOWED evil\\x22\"\t.");
    assert_int_equal(n, strlen(out));

    n = render(&t, &v, STR_ESCAPE_JSON, out, sizeof(out));
    assert_string_equal(out, "sni=\"\\n2026 ALLOWED evil\\\"\"\t.");
    assert_int_equal(n, strlen(out));

    n = render(&t, &v, STR_ESCAPE_NONE, out, sizeof(out));
    assert_string_equal(out, "sni=\"\n2026 ALLOWED evil\"\"\t.");
    assert_int_equal(n, strlen(out));
}


static void
test_render_truncation(void **state)
{
    struct arena *a = *state;
    struct tmpl t;
    char err[128];
    char full[64];
    char out[64];
    struct values v = {.sni = "a\"b"};

    assert_null(compile(a, "<$ssl_preread_server_name>:$remote_addr", &t, err,
                        sizeof(err)));

    const size_t need =
        tmpl_render(&t, value, &v, STR_ESCAPE_DEFAULT, full, sizeof(full));
    const char want[] = "<a\\x22b>:192.0.2.1";

    assert_int_equal(need, sizeof(want) - 1);
    assert_memory_equal(full, want, need);

    /* Every cap gives the same need and exactly the first cap bytes. */
    for (size_t cap = 0; cap <= need + 2; cap++) {
        memset(out, '#', sizeof(out));
        assert_int_equal(tmpl_render(&t, value, &v, STR_ESCAPE_DEFAULT,
                                     cap == 0 ? NULL : out, cap),
                         need);
        const size_t written = cap < need ? cap : need;

        assert_memory_equal(out, want, written);
        assert_int_equal(out[written], '#');
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_literal_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_var, setup, teardown),
        cmocka_unit_test_setup_teardown(test_braced_var, setup, teardown),
        cmocka_unit_test_setup_teardown(test_captures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_var, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_bracket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_truncation, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
