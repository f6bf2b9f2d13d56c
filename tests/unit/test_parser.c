/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for conf/parser: tree shape, include with globs (files made
 * under a mkdtemp() directory), every error message with its file:line, the
 * include depth limit, the nginx -T dump, and the seed-like config in
 * tests/data/conf (tests run from the repository root, as make unit does).
 */

#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/parser.h"

#define SEED_LIKE "tests/data/conf/seed_like.conf"

static char tmp_dir[PATH_MAX];

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/snirelay_test_parser.XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
    (void)state;
    return nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Returns tmp_dir/name in a static buffer (one of four, rotating). */
static const char *
tmp_path(const char *name)
{
    static char bufs[4][PATH_MAX];
    static unsigned next;
    char *const buf = bufs[next++ % 4];

    const int n = snprintf(buf, PATH_MAX, "%s/%s", tmp_dir, name);

    assert_true(n > 0 && n < PATH_MAX);
    return buf;
}

/* Writes text to tmp_dir/name, creating one level of directory if needed. */
static void
write_file(const char *name, const char *text)
{
    const char *const slash = strchr(name, '/');

    if (slash != NULL) {
        char dir[PATH_MAX];

        const int n = snprintf(dir, sizeof(dir), "%s/%.*s", tmp_dir,
                               (int)(slash - name), name);

        assert_true(n > 0 && (size_t)n < sizeof(dir));
        mkdir(dir, 0700);
    }

    FILE *const f = fopen(tmp_path(name), "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static struct conf_tree *
load_text(const char *text, struct conf_err *err)
{
    return conf_tree_load_text("t.conf", text, strlen(text), err);
}

/* Checks that loading text fails with exactly msg. */
static void
expect_text_error(const char *text, const char *msg)
{
    struct conf_err err;
    struct conf_tree *const t = load_text(text, &err);

    if (t != NULL) {
        conf_tree_free(t);
        fail_msg("\"%s\" loaded; want error %s", text, msg);
    }
    assert_string_equal(err.msg, msg);
}

/* Checks node n: its words (NULL-terminated list), line and block-ness. */
static void
check_node(const struct conf_node *n, const char *file, unsigned line,
           bool is_block, const char *const *words)
{
    size_t nwords = 0;

    assert_non_null(n);
    while (words[nwords] != NULL) {
        nwords++;
    }
    assert_int_equal(n->nargs, nwords);
    for (size_t i = 0; i < nwords; i++) {
        assert_string_equal(n->args[i], words[i]);
    }
    assert_null(n->args[nwords]);
    assert_string_equal(n->file, file);
    assert_int_equal(n->line, line);
    assert_int_equal(n->is_block, is_block);
    if (!is_block) {
        assert_null(n->children);
    }
}

#define NODE(n, file, line, is_block, ...)                                     \
    do {                                                                       \
        const char *const w_[] = {__VA_ARGS__, NULL};                          \
        check_node((n), (file), (line), (is_block), w_);                       \
    } while (0)

static size_t
count(const struct conf_node *n)
{
    size_t k = 0;

    for (; n != NULL; n = n->next) {
        k++;
    }
    return k;
}

static void
test_nested_blocks(void **state)
{
    static const char text[] = "a 1;\n"
                               "b x {\n"
                               "    c \"two words\";\n"
                               "    d {\n"
                               "        e;\n"
                               "    }\n"
                               "    f { }\n"
                               "}\n"
                               "g;";
    struct conf_err err;
    struct conf_tree *const t = load_text(text, &err);

    (void)state;
    assert_non_null(t);
    assert_non_null(t->arena);
    assert_int_equal(count(t->root), 3);

    const struct conf_node *const a = t->root;
    const struct conf_node *const b = a->next;
    const struct conf_node *const g = b->next;

    NODE(a, "t.conf", 1, false, "a", "1");
    NODE(b, "t.conf", 2, true, "b", "x");
    NODE(g, "t.conf", 9, false, "g");
    assert_null(g->next);
    assert_int_equal(count(b->children), 3);

    const struct conf_node *const c = b->children;
    const struct conf_node *const d = c->next;
    const struct conf_node *const f = d->next;

    NODE(c, "t.conf", 3, false, "c", "two words");
    NODE(d, "t.conf", 4, true, "d");
    NODE(d->children, "t.conf", 5, false, "e");
    assert_null(d->children->next);
    NODE(f, "t.conf", 7, true, "f");
    assert_null(f->children);

    /* The text is kept for the dump. */
    assert_non_null(t->files);
    assert_string_equal(t->files->path, "t.conf");
    assert_int_equal(t->files->len, strlen(text));
    assert_memory_equal(t->files->text, text, strlen(text));
    assert_null(t->files->next);
    conf_tree_free(t);
}

static void
test_empty(void **state)
{
    struct conf_err err;
    struct conf_tree *t;

    (void)state;
    t = load_text("", &err);
    assert_non_null(t);
    assert_null(t->root);
    conf_tree_free(t);
    t = load_text("# nothing\n\n", &err);
    assert_non_null(t);
    assert_null(t->root);
    conf_tree_free(t);
    conf_tree_free(NULL);
}

static void
test_syntax_errors(void **state)
{
    (void)state;
    expect_text_error("a {\n b;\n",
                      "unexpected end of file, expecting \"}\" in t.conf:3");
    expect_text_error("a {\n b { c; }",
                      "unexpected end of file, expecting \"}\" in t.conf:2");
    expect_text_error("a b",
                      "unexpected end of file, expecting \";\" or \"}\" in "
                      "t.conf:1");
    expect_text_error("a;\nb\n\n",
                      "unexpected end of file, expecting \";\" or \"}\" in "
                      "t.conf:4");
    expect_text_error("x \"abc\n",
                      "unexpected end of file, expecting \";\" or \"}\" in "
                      "t.conf:2");
    expect_text_error("a;\n}", "unexpected \"}\" in t.conf:2");
    expect_text_error("a { b; }\n}\n", "unexpected \"}\" in t.conf:2");
    expect_text_error("a {\n b c }", "unexpected \"}\" in t.conf:2");
    expect_text_error("\n{", "unexpected \"{\" in t.conf:2");
    expect_text_error("a { { } }", "unexpected \"{\" in t.conf:1");
    expect_text_error("x;\n ;", "unexpected \";\" in t.conf:2");
    expect_text_error("a {\n;\n}", "unexpected \";\" in t.conf:2");
    expect_text_error("a\n\"b\"c;", "unexpected \"c\" in t.conf:2");
    expect_text_error("a 'b'\"c\";", "unexpected \"\"\" in t.conf:1");
    expect_text_error("include;",
                      "invalid number of arguments in \"include\" directive "
                      "in t.conf:1");
    expect_text_error("a {\n  include x y;\n}",
                      "invalid number of arguments in \"include\" directive "
                      "in t.conf:2");
    expect_text_error("\ninclude x { }",
                      "directive \"include\" is not terminated by \";\" in "
                      "t.conf:2");
}

static void
test_main_file_errors(void **state)
{
    struct conf_err err;

    (void)state;
    assert_null(conf_tree_load("/nonexistent/snirelay.conf", &err));
    assert_string_equal(err.msg, "open() \"/nonexistent/snirelay.conf\" "
                                 "failed (2: No such file or directory)");

    char want[PATH_MAX + 64];

    snprintf(want, sizeof(want), "read() \"%s\" failed (21: Is a directory)",
             tmp_dir);
    assert_null(conf_tree_load(tmp_dir, &err));
    assert_string_equal(err.msg, want);
}

static void
test_include_glob_relative(void **state)
{
    char cwd[PATH_MAX];
    struct conf_err err;

    (void)state;
    write_file("main.conf", "user x;\n"
                            "stream {\n"
                            "    include conf.d/*.conf;\n"
                            "    server { listen 1; }\n"
                            "}\n"
                            "include none.d/*.conf;\n"
                            "last;\n");
    write_file("conf.d/b.conf", "upstream b {\n    server 2;\n}\n");
    write_file("conf.d/a.conf", "\n\nmap_hash_bucket_size 64;\nx; y;\n");
    write_file("conf.d/c.txt", "not included;\n");

    /* Relative includes follow the main file, not the cwd. */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/"), 0);

    struct conf_tree *const t = conf_tree_load(tmp_path("main.conf"), &err);

    assert_int_equal(chdir(cwd), 0);
    if (t == NULL) {
        fail_msg("load failed: %s", err.msg);
    }

    const char *const main_conf = tmp_path("main.conf");
    const char *const a_conf = tmp_path("conf.d/a.conf");
    const char *const b_conf = tmp_path("conf.d/b.conf");

    assert_int_equal(count(t->root), 3);
    NODE(t->root, main_conf, 1, false, "user", "x");

    const struct conf_node *const stream = t->root->next;

    NODE(stream, main_conf, 2, true, "stream");
    NODE(stream->next, main_conf, 7, false, "last");

    /* a.conf's three, then b.conf's one, in place of the include. */
    const struct conf_node *n = stream->children;

    assert_int_equal(count(n), 5);
    NODE(n, a_conf, 3, false, "map_hash_bucket_size", "64");
    n = n->next;
    NODE(n, a_conf, 4, false, "x");
    n = n->next;
    NODE(n, a_conf, 4, false, "y");
    n = n->next;
    NODE(n, b_conf, 1, true, "upstream", "b");
    NODE(n->children, b_conf, 2, false, "server", "2");
    n = n->next;
    NODE(n, main_conf, 4, true, "server");

    /* Files in the order read. */
    const struct conf_file *f = t->files;

    assert_string_equal(f->path, main_conf);
    f = f->next;
    assert_string_equal(f->path, a_conf);
    f = f->next;
    assert_string_equal(f->path, b_conf);
    assert_null(f->next);
    conf_tree_free(t);
}

static void
test_include_in_data_block(void **state)
{
    struct conf_err err;

    (void)state;
    write_file("map.conf", "map $a $b {\n"
                           "    include map.inc;\n"
                           "    default x;\n"
                           "}\n");
    write_file("map.inc", "k1 v1;\n~^a\\.b$ v2;\n");

    struct conf_tree *const t = conf_tree_load(tmp_path("map.conf"), &err);

    if (t == NULL) {
        fail_msg("load failed: %s", err.msg);
    }

    const char *const inc = tmp_path("map.inc");
    const struct conf_node *n = t->root->children;

    assert_int_equal(count(n), 3);
    NODE(n, inc, 1, false, "k1", "v1");
    NODE(n->next, inc, 2, false, "~^a\\.b$", "v2");
    NODE(n->next->next, tmp_path("map.conf"), 3, false, "default", "x");
    conf_tree_free(t);
}

/* Includes inside http{} are never opened: the block is skipped whole. */
static void
test_include_in_http_not_read(void **state)
{
    static const char text[] = "http {\n"
                               "    include /nonexistent/mime.types;\n"
                               "    server { include /nonexistent/*.conf; }\n"
                               "}\n"
                               "stream { include /nonexistent/s.conf; }\n";
    struct conf_err err;

    (void)state;
    expect_text_error(text, "open() \"/nonexistent/s.conf\" failed "
                            "(2: No such file or directory) in t.conf:5");

    static const char http_only[] = "http {\n"
                                    "    include /nonexistent/mime.types;\n"
                                    "    server { include /nonexistent/x; }\n"
                                    "}\n";
    struct conf_tree *const h = load_text(http_only, &err);

    if (h == NULL) {
        fail_msg("load failed: %s", err.msg);
    }
    NODE(h->root->children, "t.conf", 2, false, "include",
         "/nonexistent/mime.types");
    NODE(h->root->children->next->children, "t.conf", 3, false, "include",
         "/nonexistent/x");
    conf_tree_free(h);
}

static void
test_include_text_relative_to_cwd(void **state)
{
    static const char text[] = "a;\ninclude cwd.inc;\n";
    char cwd[PATH_MAX];
    struct conf_err err;

    (void)state;
    write_file("cwd.inc", "from_cwd 1;\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmp_dir), 0);

    struct conf_tree *const t =
        conf_tree_load_text("text", text, strlen(text), &err);

    assert_int_equal(chdir(cwd), 0);
    if (t == NULL) {
        fail_msg("load failed: %s", err.msg);
    }
    NODE(t->root->next, "cwd.inc", 1, false, "from_cwd", "1");
    conf_tree_free(t);
}

static void
test_parse_text_never_reads_includes(void **state)
{
    static const char text[] = "a;\ninclude cwd.inc;\n"
                               "m { include /nonexistent/*.conf; }\n"
                               "include a b;\n";
    char cwd[PATH_MAX];
    struct conf_err err;

    (void)state;
    /* A file that conf_tree_load_text() would read is there. */
    write_file("cwd.inc", "from_cwd 1;\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmp_dir), 0);

    struct conf_tree *const t =
        conf_tree_parse_text("text", text, strlen(text), &err);

    assert_int_equal(chdir(cwd), 0);
    if (t == NULL) {
        fail_msg("parse failed: %s", err.msg);
    }
    NODE(t->root->next, "text", 2, false, "include", "cwd.inc");
    NODE(t->root->next->next->children, "text", 3, false, "include",
         "/nonexistent/*.conf");
    NODE(t->root->next->next->next, "text", 4, false, "include", "a", "b");
    assert_null(t->files->next);
    conf_tree_free(t);

    /* Errors are still located in the pseudo file. */
    assert_null(conf_tree_parse_text("text", "a {", 3, &err));
    assert_string_equal(err.msg,
                        "unexpected end of file, expecting \"}\" in text:1");
    assert_null(conf_tree_parse_text("text", "include x {", 11, &err));
    assert_string_equal(err.msg, "directive \"include\" is not terminated by "
                                 "\";\" in text:1");
}

static void
test_include_errors(void **state)
{
    char want[2 * PATH_MAX];
    struct conf_err err;

    (void)state;

    /* A plain name must exist. */
    write_file("missing.conf", "a;\nb {\n  include nothere.conf;\n}\n");
    assert_null(conf_tree_load(tmp_path("missing.conf"), &err));
    snprintf(want, sizeof(want),
             "open() \"%s\" failed (2: No such file or directory) in %s:3",
             tmp_path("nothere.conf"), tmp_path("missing.conf"));
    assert_string_equal(err.msg, want);

    /* An error inside an included file names that file. */
    write_file("bad_outer.conf", "stream {\n    include bad_inner.conf;\n}\n");
    write_file("bad_inner.conf", "ok;\n\nbroken \"x\"y;\n");
    assert_null(conf_tree_load(tmp_path("bad_outer.conf"), &err));
    snprintf(want, sizeof(want), "unexpected \"y\" in %s:3",
             tmp_path("bad_inner.conf"));
    assert_string_equal(err.msg, want);

    /* An included file cannot close a block of the file including it. */
    write_file("close_outer.conf", "stream {\n    include close.inc;\n");
    write_file("close.inc", "a;\n}\n");
    assert_null(conf_tree_load(tmp_path("close_outer.conf"), &err));
    snprintf(want, sizeof(want), "unexpected \"}\" in %s:2",
             tmp_path("close.inc"));
    assert_string_equal(err.msg, want);

    /* Nor open one that the includer closes. */
    write_file("open_outer.conf", "include open.inc;\n}\n");
    write_file("open.inc", "stream {\n");
    assert_null(conf_tree_load(tmp_path("open_outer.conf"), &err));
    snprintf(want, sizeof(want),
             "unexpected end of file, expecting \"}\" in %s:2",
             tmp_path("open.inc"));
    assert_string_equal(err.msg, want);

    /* An error in a glob-matched file stops the load. */
    write_file("g.d/1.conf", "fine;\n");
    write_file("g.d/2.conf", "\n;\n");
    write_file("glob_err.conf", "include g.d/*.conf;\n");
    assert_null(conf_tree_load(tmp_path("glob_err.conf"), &err));
    snprintf(want, sizeof(want), "unexpected \";\" in %s:2",
             tmp_path("g.d/2.conf"));
    assert_string_equal(err.msg, want);
}

static void
test_include_recursion(void **state)
{
    char want[2 * PATH_MAX];
    char name[32];
    char text[64];
    struct conf_err err;

    (void)state;

    /* A file that includes itself. */
    write_file("self.conf", "a;\ninclude self.conf;\n");
    assert_null(conf_tree_load(tmp_path("self.conf"), &err));
    snprintf(want, sizeof(want),
             "too many nested includes (more than 32 levels) in %s:2",
             tmp_path("self.conf"));
    assert_string_equal(err.msg, want);

    /* A chain exactly CONF_INCLUDE_DEPTH_MAX deep loads... */
    for (unsigned i = 0; i < CONF_INCLUDE_DEPTH_MAX; i++) {
        snprintf(name, sizeof(name), "chain/%u.conf", i);
        snprintf(text, sizeof(text), "level %u;\ninclude %u.conf;\n", i, i + 1);
        write_file(name, text);
    }
    snprintf(name, sizeof(name), "chain/%u.conf", CONF_INCLUDE_DEPTH_MAX);
    write_file(name, "bottom;\n");

    struct conf_tree *const t = conf_tree_load(tmp_path("chain/0.conf"), &err);

    if (t == NULL) {
        fail_msg("load failed: %s", err.msg);
    }
    assert_int_equal(count(t->root), CONF_INCLUDE_DEPTH_MAX + 1);
    conf_tree_free(t);

    /* ...and one more level does not. */
    snprintf(text, sizeof(text), "bottom;\ninclude %u.conf;\n",
             CONF_INCLUDE_DEPTH_MAX + 1);
    write_file(name, text);
    snprintf(name, sizeof(name), "chain/%u.conf", CONF_INCLUDE_DEPTH_MAX + 1);
    write_file(name, "deeper;\n");
    assert_null(conf_tree_load(tmp_path("chain/0.conf"), &err));
    snprintf(name, sizeof(name), "chain/%u.conf", CONF_INCLUDE_DEPTH_MAX);
    snprintf(want, sizeof(want),
             "too many nested includes (more than 32 levels) in %s:2",
             tmp_path(name));
    assert_string_equal(err.msg, want);
}

static void
test_dump(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    char want[4 * PATH_MAX];
    struct conf_err err;

    (void)state;
    write_file("dump.conf", "a;\ninclude dump.inc;\ninclude dump.inc;");
    write_file("dump.inc", "b;\n");

    struct conf_tree *const t = conf_tree_load(tmp_path("dump.conf"), &err);

    if (t == NULL) {
        fail_msg("load failed: %s", err.msg);
    }
    assert_int_equal(count(t->root), 3);

    FILE *const out = open_memstream(&buf, &len);

    assert_non_null(out);
    conf_tree_dump(t, out);
    assert_int_equal(fclose(out), 0);
    /* Each file once, the way nginx -T prints it. */
    snprintf(want, sizeof(want),
             "# configuration file %s:\n"
             "a;\ninclude dump.inc;\ninclude dump.inc;\n"
             "# configuration file %s:\n"
             "b;\n\n",
             tmp_path("dump.conf"), tmp_path("dump.inc"));
    assert_string_equal(buf, want);
    free(buf);
    conf_tree_free(t);
}

static void
test_seed_like(void **state)
{
    struct conf_err err;

    (void)state;

    struct conf_tree *const t = conf_tree_load(SEED_LIKE, &err);

    if (t == NULL) {
        fail_msg("%s did not load: %s", SEED_LIKE, err.msg);
    }

    const struct conf_node *n = t->root;

    assert_int_equal(count(n), 6);
    NODE(n, SEED_LIKE, 1, false, "user", "nginx");
    n = n->next;
    NODE(n, SEED_LIKE, 2, false, "worker_processes", "1");
    n = n->next;
    NODE(n, SEED_LIKE, 3, false, "error_log", "/var/log/nginx/error.log",
         "warn");
    n = n->next;
    NODE(n, SEED_LIKE, 4, true, "events");
    NODE(n->children, SEED_LIKE, 4, false, "worker_connections", "1024");
    n = n->next;
    NODE(n, SEED_LIKE, 5, true, "http");
    /* Inside http{} the include stays a node, never expanded. */
    assert_int_equal(count(n->children), 4);
    NODE(n->children, SEED_LIKE, 5, false, "include",
         "/nonexistent/mime.types*");
    NODE(n->children->next, SEED_LIKE, 5, false, "default_type",
         "application/octet-stream");
    n = n->next;
    NODE(n, SEED_LIKE, 6, true, "stream");

    const struct conf_node *s = n->children;

    assert_int_equal(count(s), 5);
    NODE(s, SEED_LIKE, 7, false, "log_format", "proxy",
         "$proxy_protocol_addr $remote_addr [$time_local] ",
         "$protocol $status $bytes_sent $bytes_received ",
         "$session_time \"$upstream_addr\" ",
         "\"$upstream_bytes_sent\" \"$upstream_bytes_received\" "
         "\"$upstream_connect_time\"");
    s = s->next;
    NODE(s, SEED_LIKE, 11, false, "map_hash_bucket_size", "64");
    s = s->next;
    NODE(s, SEED_LIKE, 12, true, "map", "$ssl_preread_server_name",
         "$backend_pool");
    assert_int_equal(count(s->children), 2);
    NODE(s->children->next, SEED_LIKE, 12, false, "default", "server_baidu");
    s = s->next;
    NODE(s, SEED_LIKE, 13, true, "upstream", "server_cn");
    NODE(s->children, SEED_LIKE, 13, false, "server", "127.0.0.1:9443");
    s = s->next;
    NODE(s, SEED_LIKE, 14, true, "server");
    assert_int_equal(count(s->children), 4);
    NODE(s->children->next->next, SEED_LIKE, 14, false, "proxy_pass",
         "$backend_pool");
    conf_tree_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_blocks),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_main_file_errors),
        cmocka_unit_test(test_include_glob_relative),
        cmocka_unit_test(test_include_in_data_block),
        cmocka_unit_test(test_include_text_relative_to_cwd),
        cmocka_unit_test(test_include_in_http_not_read),
        cmocka_unit_test(test_parse_text_never_reads_includes),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_include_recursion),
        cmocka_unit_test(test_dump),
        cmocka_unit_test(test_seed_like),
    };

    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
