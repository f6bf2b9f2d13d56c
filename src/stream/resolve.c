/* SPDX-License-Identifier: MIT */
/*
 * `resolver ADDR[:PORT] ... [valid=TIME] [ipv4=on|off] [ipv6=on|off]
 * [cache_entries=N]` (the last is ours) and
 * `resolver_timeout` (nginx's syntax and defaults: port 53, TTLs, both
 * families, 30s), and the hand-off from a session to dns/resolver.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/units.h"
#include "dns/resolver.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "stream/core.h"
#include "stream/proxy.h"
#include "stream/resolve.h"
#include "stream/session.h"
#include "stream/stream.h"


static void resolve_done(void *data, const struct resolver_result *res);


const char *
resolve_resolver_set(struct conf_ctx *cf, const struct conf_node *n,
                     const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_settings *set = conf;
    struct stream_resolver *sr;
    char csv[1024] = "";
    size_t at = 0;

    (void)cmd;
    if (set->resolver != NULL) {
        return "\"resolver\" directive is duplicate";
    }
    sr = arena_alloc(cf->arena, sizeof(*sr));
    if (sr == NULL) {
        return "out of memory";
    }
    sr->rc.valid_ms = -1;
    sr->rc.ipv4 = true;
    sr->rc.ipv6 = true;
    for (size_t i = 1; i < n->nargs; i++) {
        const char *a = n->args[i];
        struct sockaddr_storage ss;
        socklen_t sslen;
        char text[SOCK_ADDR_TEXT_MAX];

        if (strncmp(a, "valid=", 6) == 0) {
            if (units_parse_msec(a + 6, strlen(a + 6), &sr->rc.valid_ms) ==
                -1) {
                return conf_msg(cf, "invalid parameter \"%s\"", a);
            }
        } else if (strcmp(a, "ipv4=on") == 0 || strcmp(a, "ipv4=off") == 0) {
            sr->rc.ipv4 = a[6] == 'n';
        } else if (strcmp(a, "ipv6=on") == 0 || strcmp(a, "ipv6=off") == 0) {
            sr->rc.ipv6 = a[6] == 'n';
        } else if (strncmp(a, "cache_entries=", 14) == 0) {
            /* Our extension: how many names the cache holds (LRU). */
            int v;
            if (units_parse_int(a + 14, strlen(a + 14), &v) == -1 || v < 1) {
                return conf_msg(cf, "invalid parameter \"%s\"", a);
            }
            sr->rc.max_entries = (size_t)v;
        } else if (strncmp(a, "status_zone=", 12) == 0) {
            /* nginx Plus statistics; nothing to do */
        } else {
            /* Addresses only: a resolver named by a name would need one. */
            if (sock_parse_addr(a, strlen(a), 53, &ss, &sslen) == -1 ||
                strcmp(a, "*") == 0) {
                return conf_msg(cf,
                                "invalid resolver address \"%s\" (an IP "
                                "address, optionally with :port)",
                                a);
            }
            sock_addr_text((struct sockaddr *)&ss, text, sizeof(text));
            at += (size_t)snprintf(csv + at, sizeof(csv) - at, "%s%s",
                                   at ? "," : "", text);
            if (at >= sizeof(csv)) {
                return "too many resolver addresses";
            }
        }
    }
    if (!sr->rc.ipv4 && !sr->rc.ipv6) {
        return "\"ipv4\" and \"ipv6\" cannot both be \"off\"";
    }
    if (at == 0) {
        return "no resolver address";
    }
    sr->rc.servers = arena_strndup(cf->arena, csv, at);
    sr->next = st->conf->resolvers;
    st->conf->resolvers = sr;
    set->resolver = sr;
    return NULL;
}


int
resolve_open_all(struct stream_conf *conf, struct loop *l, char *err,
                 size_t errcap)
{
    for (struct stream_resolver *sr = conf->resolvers; sr != NULL;
         sr = sr->next) {
        /* One deadline per resolver: the longest any server asks for. */
        int64_t timeout = 0;
        for (struct stream_server *srv = conf->servers; srv != NULL;
             srv = srv->next) {
            if (srv->set.resolver == sr &&
                srv->set.resolver_timeout_ms > timeout) {
                timeout = srv->set.resolver_timeout_ms;
            }
        }
        for (const struct stream_upstream *u = conf->upstreams; u != NULL;
             u = u->next) {
            if (u->resolver == sr) {
                const int64_t t = u->resolver_timeout_ms == CONF_UNSET
                                      ? 30000
                                      : u->resolver_timeout_ms;
                if (t > timeout) {
                    timeout = t;
                }
            }
        }
        sr->rc.timeout_ms = timeout > 0 ? timeout : 30000;
        sr->r = resolver_new(l, &sr->rc, err, errcap);
        if (sr->r == NULL) {
            return -1;
        }
    }
    return 0;
}


void
resolve_close_all(struct stream_conf *conf)
{
    for (struct stream_resolver *sr = conf->resolvers; sr != NULL;
         sr = sr->next) {
        resolver_free(sr->r);
        sr->r = NULL;
    }
}


void
resolve_start(struct session *s)
{
    struct stream_resolver *sr = s->server->set.resolver;
    const struct resolver_result *res = NULL;
    const size_t len = strlen(s->target);

    if (sr == NULL || sr->r == NULL) {
        session_log(s, ERRLOG_ERR, "no resolver defined to resolve %s",
                    s->target);
        session_finalize(s, 500);
        return;
    }
    s->action = "resolving";
    s->resolver = sr;
    switch (resolver_lookup(sr->r, s->target, len, &s->rwait, resolve_done, s,
                            &res)) {
    case RESOLVER_LOOKUP_ANSWERED:
        resolve_done(s, res);
        break;
    case RESOLVER_LOOKUP_QUEUED:
        break; /* the lookup's deadline is the session's */
    case RESOLVER_LOOKUP_REFUSED:
        session_log(s, ERRLOG_ERR,
                    "%s could not be resolved: the lookup was refused "
                    "(%d: %s)",
                    s->target, errno, strerror(errno));
        session_finalize(s, 500);
        break;
    }
}


static void
resolve_done(void *data, const struct resolver_result *res)
{
    struct session *s = data;

    if (res->status != RESOLVER_OK) {
        session_log(s, ERRLOG_ERR, "%s could not be resolved (%d: %s)",
                    s->target, (int)res->status,
                    resolver_status_text(res->status));
        session_finalize(s, 500);
        return;
    }
    proxy_resolved(s, res);
}
