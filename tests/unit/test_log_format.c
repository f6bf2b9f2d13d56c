/* SPDX-License-Identifier: MIT */
/*
 * log_format rendering: a config's format compiled by the real loader and
 * rendered for a session object filled by the test, as the access log does.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "stream/core.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"


static struct stream_conf *
load(const char *text)
{
    struct conf_err err = {{0}};
    struct conf_tree *t = conf_tree_load_text("test.conf", text, strlen(text),
                                              &err);
    struct stream_conf *conf;

    assert_non_null(t);
    conf = stream_conf_build(t, "test.conf", &err);
    if (conf == NULL) {
        fail_msg("%s", err.msg);
    }
    return conf;
}


static const struct stream_log_format *
format(const struct stream_conf *conf, const char *name)
{
    for (const struct stream_log_format *f = conf->formats; f != NULL;
         f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    fail_msg("no format %s", name);
    return NULL;
}


static void
session_fill(struct session *s, struct stream_conf *conf, const char *sni,
             size_t sni_len)
{
    struct sockaddr_in *c = (struct sockaddr_in *)&s->client_addr;
    static struct sockaddr_in local;
    struct sockaddr_in *l = &local;

    memset(s, 0, sizeof(*s));
    memset(&local, 0, sizeof(local));
    s->local_addr = (const struct sockaddr *)&local;
    s->conf = conf;
    s->server = conf->servers;
    s->listen = conf->listens;
    c->sin_family = AF_INET;
    c->sin_port = htons(40000);
    inet_pton(AF_INET, "192.0.2.7", &c->sin_addr);
    l->sin_family = AF_INET;
    l->sin_port = htons(8443);
    inet_pton(AF_INET, "127.0.0.1", &l->sin_addr);
    s->status = 200;
    s->bytes_received = 517;
    s->bytes_sent = 4096;
    s->preread = PREREAD_OK;
    /* What preread keeps: "sni" NUL "alpn" NUL "host" NUL. */
    static _Alignas(max_align_t) unsigned char names_buf[512];
    struct preread_names *n = (struct preread_names *)names_buf;
    static const char alpn[] = "h2,http/1.1";

    n->sni_len = sni_len;
    n->alpn_len = strlen(alpn);
    n->host_len = 0;
    n->version = 0x0304;
    n->has_ech = false;
    memcpy(n->text, sni, sni_len);
    n->text[sni_len] = '\0';
    memcpy(n->text + sni_len + 1, alpn, n->alpn_len + 1);
    n->text[sni_len + n->alpn_len + 2] = '\0';
    s->names = n;
}


static const char *const conf_text =
    "stream {\n"
    "  log_format t '$remote_addr:$remote_port $server_port $status "
    "$bytes_sent $bytes_received \"$ssl_preread_server_name\" "
    "$ssl_preread_alpn_protocols $ssl_preread_protocol $ssl_preread_status "
    "$upstream_addr $proxy_protocol_addr [$route]';\n"
    "  log_format j escape=json '{\"sni\":\"$ssl_preread_server_name\"}';\n"
    "  map $ssl_preread_server_name $route {\n"
    "    hostnames;\n"
    "    ~^(?<sub>[a-z]+)\\.example\\.com$ sub-$sub;\n"
    "    default other;\n"
    "  }\n"
    "  server { listen 127.0.0.1:8443; ssl_preread on; proxy_pass $route; }\n"
    "}\n";


static void
test_fields_render_with_nginx_meaning(void **state)
{
    struct stream_conf *conf = load(conf_text);
    struct session s;
    char line[1024];

    (void)state;
    session_fill(&s, conf, "api.example.com", 15);
    vars_render(&s, &format(conf, "t")->t, true, STR_ESCAPE_DEFAULT, line,
                sizeof(line));
    assert_string_equal(line, "192.0.2.7:40000 8443 200 4096 517 "
                              "\"api.example.com\" h2,http/1.1 TLSv1.3 ok "
                              "- - [sub-api]");
    stream_conf_free(conf);
}


static void
test_hostile_sni_is_escaped_on_one_line(void **state)
{
    static const char sni[] = "a\n2026 ALLOWED \"evil\"\\\x1b\xff";
    struct stream_conf *conf = load(conf_text);
    struct session s;
    char line[1024];

    (void)state;
    session_fill(&s, conf, sni, sizeof(sni) - 1);
    vars_render(&s, &format(conf, "t")->t, true, STR_ESCAPE_DEFAULT, line,
                sizeof(line));
    assert_non_null(strstr(line, "\"a\\x0A2026 ALLOWED \\x22evil\\x22\\x5C"
                                 "\\x1B\\xFF\""));
    assert_null(strchr(line, '\n'));
    assert_non_null(strstr(line, "[other]"));
    vars_render(&s, &format(conf, "j")->t, true, STR_ESCAPE_JSON, line,
                sizeof(line));
    assert_string_equal(line, "{\"sni\":\"a\\n2026 ALLOWED \\\"evil\\\"\\\\"
                              "\\u001B\xff\"}");
    stream_conf_free(conf);
}


static void
test_truncated_to_the_buffer(void **state)
{
    struct stream_conf *conf = load(conf_text);
    struct session s;
    char line[16];

    (void)state;
    session_fill(&s, conf, "api.example.com", 15);
    assert_int_equal(vars_render(&s, &format(conf, "t")->t, true,
                                 STR_ESCAPE_DEFAULT, line, sizeof(line)),
                     15);
    assert_string_equal(line, "192.0.2.7:40000");
    stream_conf_free(conf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_render_with_nginx_meaning),
        cmocka_unit_test(test_hostile_sni_is_escaped_on_one_line),
        cmocka_unit_test(test_truncated_to_the_buffer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
