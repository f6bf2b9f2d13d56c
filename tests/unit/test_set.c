/* SPDX-License-Identifier: MIT */
/*
 * `set` and `return` as the loader builds them: variable ids, values stored
 * by the PREACCESS handler for a session object filled by the test, a map
 * overridden by `set`, whether a `set` value can carry client bytes, and
 * which of `return` / `proxy_pass` a server keeps.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "stream/core.h"
#include "stream/return.h"
#include "stream/session.h"
#include "stream/set.h"
#include "stream/stream.h"
#include "stream/vars.h"


static struct stream_conf *
load(const char *text)
{
    struct conf_err err = {{0}};
    struct conf_tree *t =
        conf_tree_load_text("test.conf", text, strlen(text), &err);
    struct stream_conf *conf;

    assert_non_null(t);
    conf = stream_conf_build(t, "test.conf", &err);
    if (conf == NULL) {
        fail_msg("%s", err.msg);
    }
    return conf;
}


/* The build's message for text, which must fail. */
static void
load_fails(const char *text, const char *want)
{
    struct conf_err err = {{0}};
    struct conf_tree *t =
        conf_tree_load_text("test.conf", text, strlen(text), &err);

    assert_non_null(t);
    assert_null(stream_conf_build(t, "test.conf", &err));
    if (strstr(err.msg, want) == NULL) {
        fail_msg("got \"%s\", want \"%s\"", err.msg, want);
    }
}


/* The server whose `listen` port is port. */
static struct stream_server *
server(struct stream_conf *conf, int port)
{
    for (struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        const struct sockaddr_in *a =
            (const struct sockaddr_in *)&srv->listen_refs->addr;
        if (ntohs(a->sin_port) == port) {
            return srv;
        }
    }
    fail_msg("no server on %d", port);
    return NULL;
}


static void
session_fill(struct session *s, struct stream_conf *conf,
             struct stream_server *srv)
{
    struct sockaddr_in *c = (struct sockaddr_in *)&s->client_addr;

    memset(s, 0, sizeof(*s));
    s->conf = conf;
    s->server = srv;
    s->listen = conf->listens;
    c->sin_family = AF_INET;
    c->sin_port = htons(40000);
    inet_pton(AF_INET, "192.0.2.7", &c->sin_addr);
    s->status = 200;
}


/* The server's `return` value, rendered for s. */
static char *
returned(struct session *s)
{
    size_t len;
    char *v = vars_eval_alloc(s, s->server->return_value, &len);

    assert_non_null(v);
    assert_int_equal(strlen(v), len);
    return v;
}


static void
test_set_values_chain_in_order(void **state)
{
    struct stream_conf *conf =
        load("stream { server { listen 127.0.0.1:8001;"
             " set $a \"x-$remote_addr\"; set $b $a-y; set $a z;"
             " return \"$a|$b\"; } }");
    struct session s;
    char *v;

    (void)state;
    session_fill(&s, conf, server(conf, 8001));
    v = returned(&s);
    assert_string_equal(v, "|"); /* before the phase: empty, not unknown */
    free(v);
    assert_int_equal(set_phase(&s), PHASE_NEXT);
    v = returned(&s);
    assert_string_equal(v, "z|x-192.0.2.7-y");
    free(v);
    set_release(&s);
    assert_null(s.vars);
    stream_conf_free(conf);
}


static void
test_set_overrides_a_map_only_once_run(void **state)
{
    struct stream_conf *conf =
        load("stream { map 0 $m { default original; }"
             " server { listen 127.0.0.1:8001; return \"$m:$copy\";"
             " set $copy $m; set $m new; }"
             " server { listen 127.0.0.1:8002; return \"$m:[$copy]\"; } }");
    struct session s;
    char *v;

    (void)state;
    session_fill(&s, conf, server(conf, 8001));
    assert_int_equal(set_phase(&s), PHASE_NEXT);
    v = returned(&s);
    assert_string_equal(v, "new:original");
    free(v);
    set_release(&s);

    /* The other server sets nothing: the map's own value, $copy empty. */
    session_fill(&s, conf, server(conf, 8002));
    assert_int_equal(set_phase(&s), PHASE_NEXT);
    assert_null(s.vars);
    v = returned(&s);
    assert_string_equal(v, "original:[]");
    free(v);
    stream_conf_free(conf);
}


static void
test_set_ids_are_apart_from_builtins_and_maps(void **state)
{
    struct stream_conf *conf =
        load("stream { map 0 $m { default 1; }"
             " server { listen 127.0.0.1:8001; set $m 2; set $own 3;"
             " return x; } }");
    bool cap = false;
    const int m = vars_resolve(conf, "m", 1, &cap);
    const int own = vars_resolve(conf, "own", 3, &cap);

    (void)state;
    assert_int_equal(m, VAR_BUILTIN_COUNT); /* still the map's id */
    assert_int_equal(own, SET_VAR_BASE + 1);
    assert_non_null(set_by_id(conf, own));
    assert_string_equal(set_find(conf, "m", 1)->name, "m");
    assert_null(set_find(conf, "none", 4));
    assert_int_equal(conf->nset_vars, 2);
    stream_conf_free(conf);
}


static void
test_set_of_a_client_name_makes_proxy_pass_client_chosen(void **state)
{
    struct stream_conf *conf =
        load("stream { resolver 127.0.0.1; server { listen 127.0.0.1:8001;"
             " ssl_preread on; set $t $ssl_preread_server_name:443;"
             " proxy_pass $t; }"
             " server { listen 127.0.0.1:8002; set $u 127.0.0.1:9;"
             " proxy_pass $u; } }");

    (void)state;
    assert_true(server(conf, 8001)->pass_is_client);
    assert_false(server(conf, 8002)->pass_is_client);
    stream_conf_free(conf);
}


static void
test_return_value_of_any_length(void **state)
{
    char text[4096];
    char conf_text[8192];
    struct stream_conf *conf;
    struct session s;
    size_t len;
    char *v;

    (void)state;
    /* 1000-byte map value x 100: past the 64k scratch area. */
    memset(text, 'x', 1000);
    text[1000] = '\0';
    snprintf(conf_text, sizeof(conf_text),
             "stream { map 0 $c { default %s; } server {"
             " listen 127.0.0.1:8001; return \"%s\"; } }",
             text,
             "$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c"
             "$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c"
             "$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c"
             "$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c$c");
    conf = load(conf_text);
    session_fill(&s, conf, server(conf, 8001));
    v = vars_eval_alloc(&s, s.server->return_value, &len);
    assert_non_null(v);
    assert_int_equal(len, 100000);
    assert_int_equal(strspn(v, "x"), 100000);
    free(v);
    stream_conf_free(conf);
}


static void
test_return_and_proxy_pass_the_later_line_wins(void **state)
{
    struct stream_conf *conf = load("stream {\n"
                                    " server { listen 127.0.0.1:8001;\n"
                                    "  proxy_pass 127.0.0.1:9;\n"
                                    "  return a; }\n"
                                    " server { listen 127.0.0.1:8002;\n"
                                    "  return b;\n"
                                    "  proxy_pass 127.0.0.1:9; }\n"
                                    "}\n");

    (void)state;
    assert_non_null(server(conf, 8001)->return_value);
    assert_int_equal(server(conf, 8001)->pass_kind, PASS_NONE);
    assert_null(server(conf, 8002)->return_value);
    assert_int_equal(server(conf, 8002)->pass_kind, PASS_UPSTREAM);
    stream_conf_free(conf);
}


static void
test_bad_set_and_return_lines(void **state)
{
    (void)state;
    load_fails("stream { server { listen 127.0.0.1:8001;\n set x 1;\n"
               " return x; } }",
               "invalid variable name \"x\" in test.conf:2");
    load_fails("stream { server { listen 127.0.0.1:8001;\n set $ 1;\n"
               " return x; } }",
               "invalid variable name \"$\" in test.conf:2");
    load_fails("stream { server { listen 127.0.0.1:8001;\n"
               " set $remote_addr 1;\n return x; } }",
               "the duplicate \"remote_addr\" variable in test.conf:2");
    load_fails("stream { server { listen 127.0.0.1:8001;\n return a;\n"
               " return b; } }",
               "\"return\" directive is duplicate in test.conf:3");
    load_fails("stream { server { listen 127.0.0.1:8001;\n return $no; } }",
               "unknown \"no\" variable");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_values_chain_in_order),
        cmocka_unit_test(test_set_overrides_a_map_only_once_run),
        cmocka_unit_test(test_set_ids_are_apart_from_builtins_and_maps),
        cmocka_unit_test(
            test_set_of_a_client_name_makes_proxy_pass_client_chosen),
        cmocka_unit_test(test_return_value_of_any_length),
        cmocka_unit_test(test_return_and_proxy_pass_the_later_line_wins),
        cmocka_unit_test(test_bad_set_and_return_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
