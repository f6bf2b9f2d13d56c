/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for conf/slots: conf_dispatch()'s checks and messages, the
 * generic setters, conf_block() for nested blocks, and the merge macros.
 * Configs are parsed from text named "t.conf", so every message ends in
 * " in t.conf:LINE".
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"

/* A module's conf struct as the setters see it. */
struct test_conf {
    int flag;
    int num;
    int64_t msec;
    int64_t size;
    char *str;
    int main_dual;
    int stream_dual;
    size_t last_nargs;
    int inner_seen;
};

static const char *set_pair(struct conf_ctx *cf, const struct conf_node *n,
                            const struct conf_cmd *cmd, void *conf);
static const char *set_count_args(struct conf_ctx *cf,
                                  const struct conf_node *n,
                                  const struct conf_cmd *cmd, void *conf);
static const char *set_block(struct conf_ctx *cf, const struct conf_node *n,
                             const struct conf_cmd *cmd, void *conf);

static const struct conf_cmd test_cmds[] = {
    {"on_off", CONF_MAIN | CONF_STREAM, CONF_FLAG, conf_set_flag,
     offsetof(struct test_conf, flag)},
    {"count", CONF_MAIN, CONF_TAKE1, conf_set_num,
     offsetof(struct test_conf, num)},
    {"timeout", CONF_MAIN | CONF_STREAM, CONF_TAKE1, conf_set_msec,
     offsetof(struct test_conf, msec)},
    {"buffer", CONF_MAIN, CONF_TAKE1, conf_set_size,
     offsetof(struct test_conf, size)},
    {"name", CONF_MAIN, CONF_TAKE1, conf_set_str,
     offsetof(struct test_conf, str)},
    {"dual", CONF_MAIN, CONF_TAKE1, conf_set_num,
     offsetof(struct test_conf, main_dual)},
    {"dual", CONF_STREAM, CONF_TAKE1, conf_set_num,
     offsetof(struct test_conf, stream_dual)},
    {"pair", CONF_MAIN, CONF_TAKE12, set_pair, 0},
    {"none", CONF_MAIN, CONF_NOARGS, set_count_args, 0},
    {"take13", CONF_MAIN, CONF_TAKE13, set_count_args, 0},
    {"take7", CONF_MAIN, CONF_TAKE7, set_count_args, 0},
    {"one_more", CONF_MAIN, CONF_1MORE, set_count_args, 0},
    {"two_more", CONF_MAIN, CONF_2MORE, set_count_args, 0},
    {"any", CONF_MAIN, CONF_ANY, set_count_args, 0},
    {"block", CONF_MAIN | CONF_STREAM, CONF_BLOCK | CONF_NOARGS, set_block, 0},
    {"stream_only", CONF_STREAM, CONF_TAKE1, set_count_args, 0},
    {NULL, 0, 0, NULL, 0},
};

static const char *
set_refuse(struct conf_ctx *cf, const struct conf_node *n,
           const struct conf_cmd *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    return conf_msg(cf, "\"%s\" is refused", n->args[0]);
}

/* A fallback table: wildcards, a refusal, and one plain directive. */
static const struct conf_cmd test_fallback[] = {
    {"stream_only", 0, CONF_REFUSE, set_refuse, 0},
    {"st*", CONF_MAIN | CONF_STREAM, CONF_REFUSE, set_refuse, 0},
    {"extra", CONF_MAIN, CONF_TAKE1, set_count_args, 0},
    {"on_*", CONF_MAIN, CONF_REFUSE, set_refuse, 0},
    {NULL, 0, 0, NULL, 0},
};

static void
conf_init(struct test_conf *c)
{
    memset(c, 0, sizeof(*c));
    c->flag = CONF_UNSET;
    c->num = CONF_UNSET;
    c->msec = CONF_UNSET;
    c->size = CONF_UNSET;
    c->str = NULL;
    c->main_dual = CONF_UNSET;
    c->stream_dual = CONF_UNSET;
}

/* A custom setter: "pair PORT [x]" with a message of its own. */
static const char *
set_pair(struct conf_ctx *cf, const struct conf_node *n,
         const struct conf_cmd *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    if (strcmp(n->args[1], "bad") == 0) {
        return conf_msg(cf, "invalid port \"%s\"", n->args[1]);
    }
    return NULL;
}

static const char *
set_count_args(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct test_conf *const c = conf;

    (void)cf;
    (void)cmd;
    c->last_nargs = n->nargs;
    return NULL;
}

/* "block { ... }" holds stream-context directives, nested blocks too. */
static const char *
set_block(struct conf_ctx *cf, const struct conf_node *n,
          const struct conf_cmd *cmd, void *conf)
{
    struct test_conf *const c = conf;

    (void)cmd;
    c->inner_seen++;
    return conf_block(cf, n, CONF_STREAM, test_cmds, conf);
}

/*
 * Parses text and dispatches its top-level directives in CONF_MAIN into c,
 * with cf's arena set to a. Returns conf_dispatch()'s result for the first
 * failure, or 0.
 */
static int
run(const char *text, struct conf_ctx *cf, struct test_conf *c,
    struct conf_err *err)
{
    struct conf_tree *const t =
        conf_tree_load_text("t.conf", text, strlen(text), err);
    int rc = 0;

    if (t == NULL) {
        fail_msg("\"%s\" did not parse: %s", text, err->msg);
    }
    for (const struct conf_node *n = t->root; n != NULL; n = n->next) {
        rc = conf_dispatch(cf, n, CONF_MAIN, test_cmds, c, err);
        if (rc != 0) {
            break;
        }
    }
    conf_tree_free(t);
    return rc;
}

/* Checks that text fails to dispatch with exactly msg. */
static void
expect_error(const char *text, const char *msg)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a};
    struct test_conf c;
    struct conf_err err;

    assert_non_null(a);
    conf_init(&c);
    memset(&err, 0, sizeof(err));
    if (run(text, &cf, &c, &err) != -1) {
        fail_msg("\"%s\" was accepted; want %s", text, msg);
    }
    assert_string_equal(err.msg, msg);
    arena_free(a);
}

/* Checks that text dispatches and returns the filled conf. */
static void
expect_ok(const char *text, struct conf_ctx *cf, struct test_conf *c)
{
    struct conf_err err;

    conf_init(c);
    if (run(text, cf, c, &err) != 0) {
        fail_msg("\"%s\" failed: %s", text, err.msg);
    }
}

static void
test_unknown_and_context(void **state)
{
    (void)state;
    expect_error("on_off on;\n\nfoo 1;",
                 "unknown directive \"foo\" in t.conf:3");
    expect_error("stream_only x;",
                 "\"stream_only\" directive is not allowed here in t.conf:1");
    /* Inside a block the inner context applies, and the child's line. */
    expect_error("block {\n    stream_only x;\n    count 1;\n}",
                 "\"count\" directive is not allowed here in t.conf:3");
}

/* Checks text against test_cmds with test_fallback behind it. */
static void
expect_fallback_error(const char *text, const char *msg)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a, .fallback = test_fallback};
    struct test_conf c;
    struct conf_err err;

    assert_non_null(a);
    conf_init(&c);
    memset(&err, 0, sizeof(err));
    if (run(text, &cf, &c, &err) != -1) {
        fail_msg("\"%s\" was accepted; want %s", text, msg);
    }
    assert_string_equal(err.msg, msg);
    arena_free(a);
}

static void
test_fallback_and_wildcards(void **state)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a, .fallback = test_fallback};
    struct test_conf c;

    (void)state;
    assert_non_null(a);
    /* A plain fallback entry works as one of the table's. */
    expect_ok("extra 1 ;", &cf, &c);
    assert_int_equal(c.last_nargs, 2);
    expect_fallback_error("extra;", "invalid number of arguments in "
                                    "\"extra\" directive in t.conf:1");
    /* A prefix entry catches names nobody spells out, in any shape. */
    expect_fallback_error("stx { a; }", "\"stx\" is refused in t.conf:1");
    expect_fallback_error("start 1 2 3;", "\"start\" is refused in t.conf:1");
    /* ...but never a name a table has: on_off stays a flag. */
    expect_ok("on_off on;", &cf, &c);
    assert_int_equal(c.flag, 1);
    /* A known name out of place stays "not allowed here". */
    expect_fallback_error("stream_only x;", "\"stream_only\" directive is "
                                            "not allowed here in t.conf:1");
    /* Without a fallback the wildcard does not exist. */
    expect_error("stx;", "unknown directive \"stx\" in t.conf:1");
    arena_free(a);
}

static void
test_block_checks(void **state)
{
    (void)state;
    expect_error("\nblock;", "directive \"block\" has no opening \"{\" in "
                             "t.conf:2");
    expect_error("count 1 { }",
                 "directive \"count\" is not terminated by \";\" in "
                 "t.conf:1");
    expect_error("block x { }",
                 "invalid number of arguments in \"block\" directive in "
                 "t.conf:1");
}

static void
test_arg_counts(void **state)
{
    static const struct {
        const char *text;
        const char *name;
    } bad[] = {
        {"count;", "count"},
        {"count 1 2;", "count"},
        {"none x;", "none"},
        {"on_off;", "on_off"},
        {"on_off on off;", "on_off"},
        {"pair;", "pair"},
        {"pair 1 2 3;", "pair"},
        {"take13 a b;", "take13"},
        {"take13 a b c d;", "take13"},
        {"take7 1 2 3 4 5 6;", "take7"},
        {"take7 1 2 3 4 5 6 7 8;", "take7"},
        {"one_more;", "one_more"},
        {"two_more a;", "two_more"},
    };
    char want[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want),
                 "invalid number of arguments in \"%s\" directive in "
                 "t.conf:1",
                 bad[i].name);
        expect_error(bad[i].text, want);
    }

    static const struct {
        const char *text;
        size_t nargs;
    } good[] = {
        {"none;", 1},         {"take13 a;", 2},
        {"take13 a b c;", 4}, {"take7 1 2 3 4 5 6 7;", 8},
        {"one_more a;", 2},   {"one_more a b c d e f g h i j;", 11},
        {"two_more a b;", 3}, {"two_more a b c d e f g h i j;", 11},
        {"any;", 1},          {"any 1 2 3 4 5 6 7 8 9 10 11;", 12},
    };
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a};
    struct test_conf c;

    assert_non_null(a);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        expect_ok(good[i].text, &cf, &c);
        assert_int_equal(c.last_nargs, good[i].nargs);
    }
    expect_ok("pair 1;\npair 1 x;", &cf, &c);
    arena_free(a);
}

static void
test_duplicates(void **state)
{
    (void)state;
    expect_error("count 1;\ncount 2;",
                 "\"count\" directive is duplicate in t.conf:2");
    expect_error("on_off on;\non_off on;",
                 "\"on_off\" directive is duplicate in t.conf:2");
    expect_error("timeout 1s;\n\ntimeout 1s;",
                 "\"timeout\" directive is duplicate in t.conf:3");
    expect_error("buffer 1k; buffer 1k;",
                 "\"buffer\" directive is duplicate in t.conf:1");
    expect_error("name a;\nname a;",
                 "\"name\" directive is duplicate in t.conf:2");
}

static void
test_flag(void **state)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a};
    struct test_conf c;

    (void)state;
    assert_non_null(a);
    expect_ok("on_off on;", &cf, &c);
    assert_int_equal(c.flag, 1);
    expect_ok("on_off off;", &cf, &c);
    assert_int_equal(c.flag, 0);
    expect_ok("on_off ON;", &cf, &c);
    assert_int_equal(c.flag, 1);
    expect_ok("on_off Off;", &cf, &c);
    assert_int_equal(c.flag, 0);
    expect_ok("count 1;", &cf, &c);
    assert_int_equal(c.flag, CONF_UNSET);
    arena_free(a);

    expect_error("on_off yes;",
                 "invalid value \"yes\" in \"on_off\" directive, it must be "
                 "\"on\" or \"off\" in t.conf:1");
    expect_error("\non_off \"\";",
                 "invalid value \"\" in \"on_off\" directive, it must be "
                 "\"on\" or \"off\" in t.conf:2");
}

static void
test_values(void **state)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a};
    struct test_conf c;

    (void)state;
    assert_non_null(a);
    expect_ok("count 12;\ntimeout 1m30s;\nbuffer 16k;\nname \"a b\";", &cf, &c);
    assert_int_equal(c.num, 12);
    assert_int_equal(c.msec, 90000);
    assert_int_equal(c.size, 16384);
    assert_non_null(c.str);
    assert_string_equal(c.str, "a b");
    expect_ok("timeout 15s;\nbuffer 1g;\ncount 0;", &cf, &c);
    assert_int_equal(c.msec, 15000);
    assert_int_equal(c.size, INT64_C(1) << 30);
    assert_int_equal(c.num, 0);
    /* The copy survived the tree (run() freed it) in cf's arena. */
    expect_ok("name kept;", &cf, &c);
    assert_string_equal(c.str, "kept");
    arena_free(a);

    expect_error("count -1;", "\"count\" directive invalid number in t.conf:1");
    expect_error("count 2147483648;",
                 "\"count\" directive invalid number in t.conf:1");
    expect_error("count 1k;", "\"count\" directive invalid number in t.conf:1");
    expect_error("timeout abc;",
                 "\"timeout\" directive invalid value in t.conf:1");
    expect_error("timeout 1m1h;",
                 "\"timeout\" directive invalid value in t.conf:1");
    expect_error("timeout 99999999999999999999;",
                 "\"timeout\" directive invalid value in t.conf:1");
    expect_error("buffer 1x;",
                 "\"buffer\" directive invalid value in t.conf:1");
    expect_error("buffer \"\";",
                 "\"buffer\" directive invalid value in t.conf:1");
}

static void
test_same_name_two_contexts(void **state)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a};
    struct test_conf c;

    (void)state;
    assert_non_null(a);
    expect_ok("dual 1;\nblock { dual 2; }", &cf, &c);
    assert_int_equal(c.main_dual, 1);
    assert_int_equal(c.stream_dual, 2);
    arena_free(a);
}

static void
test_custom_message(void **state)
{
    (void)state;
    expect_error("pair 1;\n\npair bad;", "invalid port \"bad\" in t.conf:3");
}

static void
test_nested_block_errors(void **state)
{
    struct arena *const a = arena_new();
    struct conf_ctx cf = {.arena = a};
    struct test_conf c;

    (void)state;
    assert_non_null(a);
    expect_ok("block {\n  on_off on;\n  block {\n    timeout 5s;\n  }\n}", &cf,
              &c);
    assert_int_equal(c.inner_seen, 2);
    assert_int_equal(c.flag, 1);
    assert_int_equal(c.msec, 5000);
    arena_free(a);

    /* A failure deep inside keeps its own file:line. */
    expect_error("block {\n  on_off on;\n  block {\n    nope;\n  }\n}",
                 "unknown directive \"nope\" in t.conf:4");
    expect_error("block {\n  block {\n\n    pair x;\n  }\n}",
                 "\"pair\" directive is not allowed here in t.conf:4");
    expect_error("block {\n  block {\n    on_off maybe;\n  }\n}",
                 "invalid value \"maybe\" in \"on_off\" directive, it must "
                 "be \"on\" or \"off\" in t.conf:3");
}

static void
test_merge(void **state)
{
    int child = CONF_UNSET;
    int64_t child64 = CONF_UNSET;
    char *str = NULL;
    char parent_str[] = "parent";
    char dflt_str[] = "default";

    (void)state;
    CONF_MERGE(child, CONF_UNSET, 7);
    assert_int_equal(child, 7);
    child = CONF_UNSET;
    CONF_MERGE(child, 3, 7);
    assert_int_equal(child, 3);
    child = 1;
    CONF_MERGE(child, 3, 7);
    assert_int_equal(child, 1);
    CONF_MERGE(child64, (int64_t)CONF_UNSET, INT64_C(60000));
    assert_int_equal(child64, 60000);

    CONF_MERGE_PTR(str, NULL, dflt_str);
    assert_ptr_equal(str, dflt_str);
    str = NULL;
    CONF_MERGE_PTR(str, parent_str, dflt_str);
    assert_ptr_equal(str, parent_str);
}

static void
test_conf_msg(void **state)
{
    struct conf_ctx cf = {.arena = NULL};
    char long_arg[1000];

    (void)state;
    assert_ptr_equal(conf_msg(&cf, "x %d \"%s\"", 5, "y"), cf.msg);
    assert_string_equal(cf.msg, "x 5 \"y\"");
    memset(long_arg, 'a', sizeof(long_arg) - 1);
    long_arg[sizeof(long_arg) - 1] = '\0';
    conf_msg(&cf, "%s", long_arg);
    assert_int_equal(strlen(cf.msg), sizeof(cf.msg) - 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_and_context),
        cmocka_unit_test(test_fallback_and_wildcards),
        cmocka_unit_test(test_block_checks),
        cmocka_unit_test(test_arg_counts),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_flag),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_same_name_two_contexts),
        cmocka_unit_test(test_custom_message),
        cmocka_unit_test(test_nested_block_errors),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_conf_msg),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
