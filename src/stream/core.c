/* SPDX-License-Identifier: MIT */
/*
 * One configuration generation from a parsed tree. Holds the directive
 * tables of the main, events{}, stream{} and server{} contexts (the explicit
 * list of what snirelay understands), listen and server_name, and the final
 * pass that merges settings into servers, groups servers by listening
 * address and resolves proxy_pass names to upstreams.
 */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/units.h"
#include "log/errlog.h"
#include "net/listen.h"
#include "net/sock.h"
#include "stream/access.h"
#include "stream/compat.h"
#include "stream/core.h"
#include "stream/geo.h"
#include "stream/guard.h"
#include "stream/hostmatch.h"
#include "stream/limit_conn.h"
#include "stream/log.h"
#include "stream/map.h"
#include "stream/proxy.h"
#include "stream/realip.h"
#include "stream/resolve.h"
#include "stream/return.h"
#include "stream/set.h"
#include "stream/split_clients.h"
#include "stream/status.h"
#include "stream/stream.h"
#include "stream/upstream.h"
#include "stream/vars.h"


/* proxy_splice_pipe_size: the kernel's default pipe size up to 64m. */
#define CORE_PIPE_SIZE_DEFAULT (1024 * 1024)
#define CORE_PIPE_SIZE_MIN (64 * 1024)
#define CORE_PIPE_SIZE_MAX (64 * 1024 * 1024)
#define CORE_SETTING(field) offsetof(struct stream_settings, field)
#define CORE_MAIN(field) offsetof(struct stream_conf, field)


static const char *core_events(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);
static const char *core_stream(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);
static const char *core_http(struct conf_ctx *cf, const struct conf_node *n,
                             const struct conf_cmd *cmd, void *conf);
static const char *core_error_log(struct conf_ctx *cf,
                                  const struct conf_node *n,
                                  const struct conf_cmd *cmd, void *conf);
static const char *core_splice_pipe_size(struct conf_ctx *cf,
                                         const struct conf_node *n,
                                         const struct conf_cmd *cmd,
                                         void *conf);
static const char *core_worker_processes(struct conf_ctx *cf,
                                         const struct conf_node *n,
                                         const struct conf_cmd *cmd,
                                         void *conf);
static const char *core_user(struct conf_ctx *cf, const struct conf_node *n,
                             const struct conf_cmd *cmd, void *conf);
static const char *core_server(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);
static const char *core_listen(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);
static const char *core_listen_params(struct conf_ctx *cf,
                                      const struct conf_node *n,
                                      struct stream_listen_ref *ref);
static const char *core_listen_keepalive(struct conf_ctx *cf, const char *p,
                                         struct stream_listen_ref *ref);
static const char *core_listen_addrs(struct conf_ctx *cf,
                                     struct stream_server *srv, const char *a,
                                     const struct stream_listen_ref *proto);
static const char *core_listen_add(struct conf_ctx *cf,
                                   struct stream_server *srv,
                                   const struct stream_listen_ref *proto,
                                   const struct sockaddr_storage *ss,
                                   socklen_t sslen);
static const char *core_server_name(struct conf_ctx *cf,
                                    const struct conf_node *n,
                                    const struct conf_cmd *cmd, void *conf);
static const char *core_map(struct conf_ctx *cf, const struct conf_node *n,
                            const struct conf_cmd *cmd, void *conf);
static void core_check_names(struct stream_conf *conf,
                             struct stream_server *srv);
static void core_settings_init(struct stream_settings *set);
static void core_settings_merge(struct stream_settings *child,
                                const struct stream_settings *parent);
static const char *core_finish(struct conf_ctx *cf, struct stream_conf *conf,
                               struct conf_err *err);
static const char *core_share_listen(struct conf_ctx *cf,
                                     struct stream_listen *ls,
                                     struct stream_server *srv,
                                     const struct stream_listen_ref *ref);
static void core_check_nameless(struct stream_listen *ls,
                                const struct stream_server *srv);
static void core_unlink_unix(const struct stream_listen *ls, bool log);
static const char *core_group_listeners(struct conf_ctx *cf,
                                        struct stream_conf *conf,
                                        struct stream_server *srv);
static void core_listener_options(struct stream_conf *conf);
static const char *core_preread_budget(struct conf_ctx *cf,
                                       const struct conf_node *n,
                                       const struct conf_cmd *cmd, void *conf);


static const struct conf_cmd core_main_cmds[] = {
    {"daemon", CONF_MAIN, CONF_FLAG, conf_set_flag, CORE_MAIN(daemon)},
    {"pid", CONF_MAIN, CONF_TAKE1, conf_set_str, CORE_MAIN(pid_path)},
    {"error_log", CONF_MAIN, CONF_1MORE, core_error_log, 0},
    {"worker_processes", CONF_MAIN, CONF_TAKE1, core_worker_processes, 0},
    {"user", CONF_MAIN, CONF_TAKE12, core_user, 0},
    {"worker_rlimit_nofile", CONF_MAIN, CONF_TAKE1, conf_set_num,
     CORE_MAIN(worker_rlimit_nofile)},
    {"worker_shutdown_timeout", CONF_MAIN, CONF_TAKE1, conf_set_msec,
     CORE_MAIN(worker_shutdown_timeout_ms)},
    {"sandbox", CONF_MAIN, CONF_FLAG, conf_set_flag, CORE_MAIN(sandbox)},
    {"events", CONF_MAIN, CONF_BLOCK | CONF_NOARGS, core_events, 0},
    {"stream", CONF_MAIN, CONF_BLOCK | CONF_NOARGS, core_stream, 0},
    {"http", CONF_MAIN, CONF_BLOCK | CONF_NOARGS, core_http, 0},
    {NULL, 0, 0, NULL, 0},
};

static const struct conf_cmd core_events_cmds[] = {
    {"worker_connections", CONF_EVENTS, CONF_TAKE1, conf_set_num,
     CORE_MAIN(worker_connections)},
    /* Accepted for nginx configs; epoll is the only method. */
    {"use", CONF_EVENTS, CONF_TAKE1, conf_set_ignore, 0},
    {"multi_accept", CONF_EVENTS, CONF_FLAG, conf_set_ignore, 0},
    {"accept_mutex", CONF_EVENTS, CONF_FLAG, conf_set_ignore, 0},
    {NULL, 0, 0, NULL, 0},
};

#define SS (CONF_STREAM | CONF_SERVER)

static const struct conf_cmd core_stream_cmds[] = {
    {"server", CONF_STREAM, CONF_BLOCK | CONF_NOARGS, core_server, 0},
    {"upstream", CONF_STREAM, CONF_BLOCK | CONF_TAKE1, upstream_block, 0},
    {"map", CONF_STREAM, CONF_BLOCK | CONF_TAKE2, core_map, 0},
    {"geo", CONF_STREAM, CONF_BLOCK | CONF_TAKE12, core_map, 0},
    {"split_clients", CONF_STREAM, CONF_BLOCK | CONF_TAKE2, core_map, 0},
    {"log_format", CONF_STREAM, CONF_2MORE, log_format_set, 0},
    {"access_log", SS, CONF_1MORE, log_access_set, 0},
    {"error_log", SS, CONF_1MORE, core_error_log, 0},
    {"listen", CONF_SERVER, CONF_1MORE, core_listen, 0},
    {"server_name", CONF_SERVER, CONF_1MORE, core_server_name, 0},
    {"ssl_preread", SS, CONF_FLAG, conf_set_flag, CORE_SETTING(ssl_preread)},
    {"preread_timeout", SS, CONF_TAKE1, conf_set_msec,
     CORE_SETTING(preread_timeout_ms)},
    {"preread_buffer_size", SS, CONF_TAKE1, conf_set_size,
     CORE_SETTING(preread_buffer_size)},
    {"preread_budget", CONF_STREAM, CONF_TAKE1, core_preread_budget, 0},
    {"proxy_pass", CONF_SERVER, CONF_TAKE1, proxy_pass_set, 0},
    {"return", CONF_SERVER, CONF_TAKE1, return_directive, 0},
    {"status", CONF_SERVER, CONF_NOARGS, status_directive, 0},
    {"set", CONF_SERVER, CONF_TAKE2, set_directive, 0},
    {"proxy_connect_timeout", SS, CONF_TAKE1, conf_set_msec,
     CORE_SETTING(proxy_connect_timeout_ms)},
    {"proxy_timeout", SS, CONF_TAKE1, conf_set_msec,
     CORE_SETTING(proxy_timeout_ms)},
    {"proxy_next_upstream", SS, CONF_FLAG, conf_set_flag,
     CORE_SETTING(proxy_next_upstream)},
    {"proxy_next_upstream_tries", SS, CONF_TAKE1, conf_set_num,
     CORE_SETTING(proxy_next_upstream_tries)},
    {"proxy_next_upstream_timeout", SS, CONF_TAKE1, conf_set_msec,
     CORE_SETTING(proxy_next_upstream_timeout_ms)},
    {"proxy_half_close", SS, CONF_FLAG, conf_set_flag,
     CORE_SETTING(proxy_half_close)},
    {"tcp_nodelay", SS, CONF_FLAG, conf_set_flag, CORE_SETTING(tcp_nodelay)},
    {"proxy_buffer_size", SS, CONF_TAKE1, conf_set_size,
     CORE_SETTING(proxy_buffer_size)},
    {"proxy_splice", SS, CONF_FLAG, conf_set_flag, CORE_SETTING(proxy_splice)},
    {"proxy_splice_pipe_size", SS, CONF_TAKE1, core_splice_pipe_size,
     CORE_SETTING(proxy_splice_pipe_size)},
    {"proxy_socket_keepalive", SS, CONF_FLAG, conf_set_flag,
     CORE_SETTING(proxy_socket_keepalive)},
    {"proxy_upload_rate", SS, CONF_TAKE1, proxy_rate_set,
     CORE_SETTING(upload_rate)},
    {"proxy_download_rate", SS, CONF_TAKE1, proxy_rate_set,
     CORE_SETTING(download_rate)},
    {"proxy_bind", SS, CONF_TAKE12, proxy_bind_set, 0},
    {"http_preread", SS, CONF_FLAG, conf_set_flag, CORE_SETTING(http_preread)},
    {"resolver", SS, CONF_1MORE, resolve_resolver_set, 0},
    {"resolver_timeout", SS, CONF_TAKE1, conf_set_msec,
     CORE_SETTING(resolver_timeout_ms)},
    {"deny_if", SS, CONF_TAKE1, access_deny_if_set, 0},
    {"allow", SS, CONF_TAKE1, access_rule_set, 0},
    {"set_real_ip_from", SS, CONF_TAKE1, realip_from_set, 0},
    {"proxy_protocol", SS, CONF_TAKE1, realip_proxy_protocol_set, 0},
    {"proxy_protocol_timeout", SS, CONF_TAKE1, conf_set_msec,
     CORE_SETTING(proxy_protocol_timeout_ms)},
    {"deny", SS, CONF_TAKE1, access_rule_set, 0},
    {"limit_conn_zone", CONF_STREAM, CONF_TAKE2, limit_conn_zone_set, 0},
    {"limit_conn", SS, CONF_TAKE2, limit_conn_set, 0},
    {"limit_conn_log_level", SS, CONF_TAKE1, limit_conn_log_level_set, 0},
    {"limit_conn_dry_run", SS, CONF_FLAG, conf_set_flag,
     CORE_SETTING(limit_conn_dry_run)},
    {"proxy_target_allow", SS, CONF_1MORE, guard_target_allow_set, 0},
    /* nginx sizes its hash tables with these; ours need no tuning. */
    {"map_hash_bucket_size", CONF_STREAM, CONF_TAKE1, conf_set_ignore, 0},
    {"map_hash_max_size", CONF_STREAM, CONF_TAKE1, conf_set_ignore, 0},
    {"server_names_hash_bucket_size", CONF_STREAM, CONF_TAKE1, conf_set_ignore,
     0},
    {"server_names_hash_max_size", CONF_STREAM, CONF_TAKE1, conf_set_ignore, 0},
    {"variables_hash_bucket_size", CONF_STREAM, CONF_TAKE1, conf_set_ignore, 0},
    {"variables_hash_max_size", CONF_STREAM, CONF_TAKE1, conf_set_ignore, 0},
    {NULL, 0, 0, NULL, 0},
};


static const char *
core_events(struct conf_ctx *cf, const struct conf_node *n,
            const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;

    (void)cmd;
    (void)conf;
    return conf_block(cf, n, CONF_EVENTS, core_events_cmds, st->conf);
}


static const char *
core_http(struct conf_ctx *cf, const struct conf_node *n,
          const struct conf_cmd *cmd, void *conf)
{
    (void)cf;
    (void)cmd;
    (void)conf;
    errlog_write(NULL, ERRLOG_WARN, 0,
                 "\"http\" block skipped: snirelay serves stream{} only, "
                 "in %s:%u",
                 n->file, n->line);
    return NULL;
}


/*
 * proxy_splice_pipe_size SIZE: what a bulk direction's pipe grows to,
 * from the kernel's default 64k (never enlarge) to 64m (the kernel also
 * caps unprivileged users at fs.pipe-max-size, 1m by default: above it
 * the enlargement is refused at run time, with a notice).
 */
static const char *
core_splice_pipe_size(struct conf_ctx *cf, const struct conf_node *n,
                      const struct conf_cmd *cmd, void *conf)
{
    const char *rv = conf_set_size(cf, n, cmd, conf);
    if (rv != NULL) {
        return rv;
    }
    const int64_t v = *(int64_t *)((char *)conf + cmd->offset);
    if (v < CORE_PIPE_SIZE_MIN || v > CORE_PIPE_SIZE_MAX) {
        return conf_msg(cf,
                        "\"%s\" must be between 64k and 64m, not \"%s\"",
                        n->args[0], n->args[1]);
    }
    return NULL;
}


static const char *
core_worker_processes(struct conf_ctx *cf, const struct conf_node *n,
                      const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    const char *v = n->args[1];
    int num;

    (void)cmd;
    (void)conf;
    if (strcmp(v, "auto") == 0) {
        st->conf->worker_processes = 0;
        return NULL;
    }
    if (units_parse_int(v, strlen(v), &num) == -1 || num < 1) {
        return conf_msg(cf, "invalid value \"%s\" in \"%s\" directive", v,
                        n->args[0]);
    }
    st->conf->worker_processes = num;
    return NULL;
}


static const char *
core_user(struct conf_ctx *cf, const struct conf_node *n,
          const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;

    (void)cmd;
    (void)conf;
    st->conf->user = n->args[1];
    st->conf->group = n->nargs > 2 ? n->args[2] : NULL;
    if (geteuid() != 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "the \"user\" directive makes "
                     "sense only if the master process runs with super-user "
                     "privileges, ignored in %s:%u",
                     n->file, n->line);
        st->conf->user = NULL;
        st->conf->group = NULL;
        return NULL;
    }
    if (getpwnam(n->args[1]) == NULL) {
        return conf_msg(cf, "getpwnam(\"%s\") failed", n->args[1]);
    }
    if (n->nargs > 2 && getgrnam(n->args[2]) == NULL) {
        return conf_msg(cf, "getgrnam(\"%s\") failed", n->args[2]);
    }
    return NULL;
}


static const char *
core_error_log(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct errlog *log;
    struct errlog **head;
    struct errlog_syslog *sl;
    int level = ERRLOG_ERR;
    char err[256];

    (void)cmd;
    if (n->nargs > 3) {
        return conf_msg(cf, "invalid number of arguments in \"%s\" directive",
                        n->args[0]);
    }
    if (n->nargs == 3) {
        level = errlog_level_parse(n->args[2]);
        if (level == -1) {
            return conf_msg(cf, "invalid log level \"%s\"", n->args[2]);
        }
    }
    sl = arena_alloc(cf->arena, sizeof(*sl));
    if (sl == NULL) {
        return "out of memory";
    }
    /*
     * Several error_log lines in one context all get every line their
     * level lets through (nginx). The main context's first one is
     * conf->errlog itself; the others are chained after it.
     */
    if (conf == st->conf && !st->conf->has_errlog) {
        log = &st->conf->errlog;
        st->conf->has_errlog = true;
        head = NULL;
    } else {
        log = arena_alloc(cf->arena, sizeof(*log));
        if (log == NULL) {
            return "out of memory";
        }
        if (conf == st->conf) {
            head = &st->conf->errlog.also;
        } else if (st->server != NULL) {
            head = &st->server->set.errlog;
        } else {
            head = &st->conf->set.errlog;
        }
        log->next = st->conf->errlogs;
        st->conf->errlogs = log;
    }
    log->level = (enum errlog_level)level;
    log->also = NULL;
    log->fd = -1;
    if (errlog_open(log, sl, n->args[1], err, sizeof(err)) == -1) {
        return conf_msg(cf, "%s", err);
    }
    if (head != NULL) {
        while (*head != NULL) {
            head = &(*head)->also;
        }
        *head = log;
    }
    return NULL;
}


static const char *
core_stream(struct conf_ctx *cf, const struct conf_node *n,
            const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    const char *rv;

    (void)cmd;
    (void)conf;
    if (st->conf->has_stream) {
        return conf_msg(cf, "\"stream\" directive is duplicate");
    }
    st->conf->has_stream = true;
    /* Map variables exist wherever their map stands, as in nginx. */
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        if (strcmp(c->args[0], "map") == 0 || strcmp(c->args[0], "geo") == 0 ||
            strcmp(c->args[0], "split_clients") == 0) {
            rv = map_declare(cf, st->conf, c);
            if (rv != NULL) {
                snprintf(cf->nested.msg, sizeof(cf->nested.msg), "%s in %s:%u",
                         rv, c->file, c->line);
                return cf->nested.msg;
            }
        }
    }
    /* So are the variables of `set`, after the maps (it may take one). */
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        if (strcmp(c->args[0], "server") != 0) {
            continue;
        }
        for (const struct conf_node *d = c->children; d != NULL; d = d->next) {
            if (strcmp(d->args[0], "set") != 0) {
                continue;
            }
            rv = set_declare(cf, st->conf, d);
            if (rv != NULL) {
                snprintf(cf->nested.msg, sizeof(cf->nested.msg), "%s in %s:%u",
                         rv, d->file, d->line);
                return cf->nested.msg;
            }
        }
    }
    return conf_block(cf, n, CONF_STREAM, core_stream_cmds, &st->conf->set);
}


static const char *
core_map(struct conf_ctx *cf, const struct conf_node *n,
         const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;

    (void)cmd;
    (void)conf;
    for (size_t i = 0; i < st->conf->nmaps; i++) {
        struct stream_map *m = st->conf->maps[i];
        if (m->node != n) {
            continue;
        }
        if (strcmp(n->args[0], "geo") == 0) {
            return geo_compile(cf, st->conf, m);
        }
        if (strcmp(n->args[0], "split_clients") == 0) {
            return split_clients_compile(cf, st->conf, m);
        }
        return map_compile(cf, st->conf, m);
    }
    return "map was not declared";
}


static void
core_settings_init(struct stream_settings *set)
{
    memset(set, 0, sizeof(*set));
    set->ssl_preread = CONF_UNSET;
    set->preread_timeout_ms = CONF_UNSET;
    set->preread_buffer_size = CONF_UNSET;
    set->proxy_connect_timeout_ms = CONF_UNSET;
    set->proxy_timeout_ms = CONF_UNSET;
    set->proxy_next_upstream = CONF_UNSET;
    set->proxy_next_upstream_tries = CONF_UNSET;
    set->proxy_next_upstream_timeout_ms = CONF_UNSET;
    set->proxy_half_close = CONF_UNSET;
    set->limit_conn_log_level = CONF_UNSET;
    set->limit_conn_dry_run = CONF_UNSET;
    set->tcp_nodelay = CONF_UNSET;
    set->proxy_buffer_size = CONF_UNSET;
    set->proxy_splice = CONF_UNSET;
    set->proxy_splice_pipe_size = CONF_UNSET;
    set->proxy_socket_keepalive = CONF_UNSET;
    set->http_preread = CONF_UNSET;
    set->resolver_timeout_ms = CONF_UNSET;
    set->proxy_protocol = CONF_UNSET;
    set->proxy_protocol_timeout_ms = CONF_UNSET;
}


/*
 * nginx's defaults, except preread_buffer_size (64k, nginx 16k) and
 * proxy_half_close (on, nginx off): see README "Deviations". proxy_splice
 * is ours (on).
 */
static void
core_settings_merge(struct stream_settings *child,
                    const struct stream_settings *parent)
{
    CONF_MERGE(child->ssl_preread, parent->ssl_preread, 0);
    CONF_MERGE(child->preread_timeout_ms, parent->preread_timeout_ms, 30000);
    CONF_MERGE(child->preread_buffer_size, parent->preread_buffer_size,
               64 * 1024);
    CONF_MERGE(child->proxy_connect_timeout_ms,
               parent->proxy_connect_timeout_ms, 60000);
    CONF_MERGE(child->proxy_timeout_ms, parent->proxy_timeout_ms,
               10 * 60 * 1000);
    CONF_MERGE(child->proxy_next_upstream, parent->proxy_next_upstream, 1);
    CONF_MERGE(child->proxy_next_upstream_tries,
               parent->proxy_next_upstream_tries, 0);
    CONF_MERGE(child->proxy_next_upstream_timeout_ms,
               parent->proxy_next_upstream_timeout_ms, 0);
    CONF_MERGE(child->proxy_half_close, parent->proxy_half_close, 1);
    CONF_MERGE(child->limit_conn_log_level, parent->limit_conn_log_level,
               ERRLOG_ERR);
    CONF_MERGE(child->limit_conn_dry_run, parent->limit_conn_dry_run, 0);
    CONF_MERGE(child->tcp_nodelay, parent->tcp_nodelay, 1);
    CONF_MERGE(child->proxy_buffer_size, parent->proxy_buffer_size, 16 * 1024);
    CONF_MERGE(child->proxy_splice, parent->proxy_splice, 1);
    CONF_MERGE(child->proxy_splice_pipe_size, parent->proxy_splice_pipe_size,
               CORE_PIPE_SIZE_DEFAULT);
    CONF_MERGE(child->proxy_socket_keepalive, parent->proxy_socket_keepalive,
               0);
    if (!child->access_log_set) {
        child->access_logs = parent->access_logs;
        child->access_log_off = parent->access_log_off;
    }
    if (!child->log_cache_set) {
        child->log_cache_max = parent->log_cache_max;
        child->log_cache_inactive_ms = parent->log_cache_inactive_ms;
        child->log_cache_min_uses = parent->log_cache_min_uses;
        child->log_cache_valid_ms = parent->log_cache_valid_ms;
    }
    if (child->errlog == NULL) {
        child->errlog = parent->errlog;
    }
    CONF_MERGE(child->http_preread, parent->http_preread, 0);
    CONF_MERGE(child->resolver_timeout_ms, parent->resolver_timeout_ms, 30000);
    CONF_MERGE_PTR(child->resolver, parent->resolver, NULL);
    CONF_MERGE_PTR(child->deny_if, parent->deny_if, NULL);
    CONF_MERGE_PTR(child->access_rules, parent->access_rules, NULL);
    CONF_MERGE(child->proxy_protocol, parent->proxy_protocol, 0);
    CONF_MERGE(child->proxy_protocol_timeout_ms,
               parent->proxy_protocol_timeout_ms, 30000);
    if (child->real_ip_from == NULL) {
        child->real_ip_from = parent->real_ip_from;
        child->nreal_ip_from = parent->nreal_ip_from;
    }
    CONF_MERGE_PTR(child->limit_conns, parent->limit_conns, NULL);
    CONF_MERGE_PTR(child->upload_rate, parent->upload_rate, NULL);
    CONF_MERGE_PTR(child->download_rate, parent->download_rate, NULL);
    CONF_MERGE_PTR(child->proxy_bind, parent->proxy_bind, NULL);
    if (!child->target_allow_set) {
        child->target_allow = parent->target_allow;
        child->ntarget_allow = parent->ntarget_allow;
    }
}


static const char *
core_server(struct conf_ctx *cf, const struct conf_node *n,
            const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_server *srv = arena_alloc(cf->arena, sizeof(*srv));
    struct stream_server **tail = &st->conf->servers;
    const char *rv;

    (void)cmd;
    (void)conf;
    if (srv == NULL) {
        return "out of memory";
    }
    core_settings_init(&srv->set);
    srv->file = n->file;
    srv->line = n->line;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = srv;
    st->server = srv;
    rv = conf_block(cf, n, CONF_SERVER, core_stream_cmds, &srv->set);
    st->server = NULL;
    return rv;
}


static const char *
core_listen(struct conf_ctx *cf, const struct conf_node *n,
            const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_listen_ref ref = {0};
    const char *rv;

    (void)cmd;
    (void)conf;
    ref.opts.backlog = 511; /* nginx's NGX_LISTEN_BACKLOG on Linux */
    ref.opts.keepalive = -1;
    ref.opts.ipv6only = -1;
    ref.opts.rcvbuf = -1;
    ref.opts.sndbuf = -1;
    ref.opts.fastopen = -1;
    ref.line = n->line;
    rv = core_listen_params(cf, n, &ref);
    if (rv != NULL) {
        return rv;
    }
    return core_listen_addrs(cf, st->server, n->args[1], &ref);
}


/*
 * The parameters of a listen line after its address, into ref, with
 * nginx's checks and messages (ngx_stream_core_listen()).
 */
static const char *
core_listen_params(struct conf_ctx *cf, const struct conf_node *n,
                   struct stream_listen_ref *ref)
{
    for (size_t i = 2; i < n->nargs; i++) {
        const char *p = n->args[i];
        int num;
        int64_t size;

        if (strcmp(p, "default_server") == 0 || strcmp(p, "default") == 0) {
            ref->default_server = true;
            continue;
        }
        if (strcmp(p, "proxy_protocol") == 0) {
            ref->proxy_protocol = true;
            continue;
        }
        if (strcmp(p, "ssl") == 0) {
            return conf_msg(cf, "the \"ssl\" parameter is not supported: "
                                "snirelay never terminates TLS (passthrough "
                                "only)");
        }
        if (strcmp(p, "udp") == 0) {
            return conf_msg(cf, "the \"udp\" parameter is not supported: "
                                "snirelay relays TCP only");
        }
        /* Everything below is a socket option: nginx's lsopt.set. */
        ref->has_opts = true;
        if (strcmp(p, "reuseport") == 0) {
            ref->opts.reuseport = true;
        } else if (strcmp(p, "bind") == 0) {
            /* Every listen is bound on its own already. */
        } else if (strcmp(p, "deferred") == 0) {
            ref->opts.deferred = true;
        } else if (strncmp(p, "backlog=", 8) == 0) {
            if (units_parse_int(p + 8, strlen(p + 8), &num) == -1 || num == 0) {
                return conf_msg(cf, "invalid backlog \"%s\"", p);
            }
            ref->opts.backlog = num;
        } else if (strncmp(p, "fastopen=", 9) == 0) {
            if (units_parse_int(p + 9, strlen(p + 9), &num) == -1) {
                return conf_msg(cf, "invalid fastopen \"%s\"", p);
            }
            ref->opts.fastopen = num;
        } else if (strncmp(p, "rcvbuf=", 7) == 0 ||
                   strncmp(p, "sndbuf=", 7) == 0) {
            if (units_parse_size(p + 7, strlen(p + 7), &size) == -1 ||
                size > INT_MAX) {
                return conf_msg(cf, "invalid %.6s \"%s\"", p, p);
            }
            *(p[0] == 'r' ? &ref->opts.rcvbuf : &ref->opts.sndbuf) = (int)size;
        } else if (strncmp(p, "ipv6only=o", 10) == 0) {
            if (strcmp(p + 10, "n") == 0) {
                ref->opts.ipv6only = 1;
            } else if (strcmp(p + 10, "ff") == 0) {
                ref->opts.ipv6only = 0;
            } else {
                return conf_msg(cf, "invalid ipv6only flags \"%s\"", p + 9);
            }
        } else if (strncmp(p, "so_keepalive=", 13) == 0) {
            const char *rv = core_listen_keepalive(cf, p, ref);

            if (rv != NULL) {
                return rv;
            }
        } else {
            return conf_msg(cf, "invalid parameter \"%s\"", p);
        }
    }
    return NULL;
}


/* so_keepalive=on|off|[idle]:[intvl]:[cnt], as nginx. */
static const char *
core_listen_keepalive(struct conf_ctx *cf, const char *p,
                      struct stream_listen_ref *ref)
{
    int64_t v[3] = {0, 0, 0};
    const char *q = p + 13;

    if (strcmp(q, "on") == 0 || strcmp(q, "off") == 0) {
        ref->opts.keepalive = q[1] == 'n';
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        const char *const end = strchr(q, ':');
        const size_t len = end != NULL ? (size_t)(end - q) : strlen(q);
        int num;

        if (len > 0 && k < 2 && units_parse_msec(q, len, &v[k]) == -1) {
            return conf_msg(cf, "invalid so_keepalive value: \"%s\"", p + 13);
        }
        if (len > 0 && k < 2) {
            v[k] /= 1000;
        }
        if (len > 0 && k == 2) {
            if (units_parse_int(q, len, &num) == -1) {
                return conf_msg(cf, "invalid so_keepalive value: \"%s\"",
                                p + 13);
            }
            v[k] = num;
        }
        if (end == NULL) {
            break;
        }
        q = end + 1;
    }
    if (v[0] == 0 && v[1] == 0 && v[2] == 0) {
        return conf_msg(cf, "invalid so_keepalive value: \"%s\"", p + 13);
    }
    ref->opts.keepalive = 1;
    ref->opts.keepidle_s = (int)v[0];
    ref->opts.keepintvl_s = (int)v[1];
    ref->opts.keepcnt = (int)v[2];
    return NULL;
}


/*
 * Adds a copy of proto to srv for each address text a names: a numeric
 * address, or a host name resolved now through the system resolver
 * (getaddrinfo: /etc/hosts, then DNS), every distinct address, as nginx's
 * ngx_parse_url() with u.listen.
 */
static const char *
core_listen_addrs(struct conf_ctx *cf, struct stream_server *srv, const char *a,
                  const struct stream_listen_ref *proto)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    const char *colon = strrchr(a, ':');
    char host[256];
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    const char *rv = NULL;
    int rc;

    if (sock_is_unix(a, strlen(a))) {
        const char *why;

        if (sock_parse_unix(a, strlen(a), &ss, &sslen, &why) == -1) {
            return conf_msg(cf, "%s in \"%s\" of the \"listen\" directive",
                            why, a);
        }
        return core_listen_add(cf, srv, proto, &ss, sslen);
    }
    if (sock_parse_addr(a, strlen(a), 0, &ss, &sslen) == 0) {
        return core_listen_add(cf, srv, proto, &ss, sslen);
    }
    if (colon == NULL || a[0] == '[') {
        if (colon == NULL && strspn(a, "0123456789") != strlen(a)) {
            return conf_msg(cf,
                            "invalid port in \"%s\" of the \"listen\" "
                            "directive",
                            a);
        }
        return conf_msg(cf,
                        "host not found in \"%s\" of the \"listen\" "
                        "directive",
                        a);
    }
    if ((size_t)(colon - a) >= sizeof(host) || colon == a ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        colon[1] == '\0' || atoi(colon + 1) > 65535) {
        return conf_msg(cf,
                        "invalid port in \"%s\" of the \"listen\" "
                        "directive",
                        a);
    }
    memcpy(host, a, (size_t)(colon - a));
    host[colon - a] = '\0';
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0 || res == NULL) {
        return conf_msg(cf,
                        "host not found in \"%s\" of the \"listen\" "
                        "directive",
                        a);
    }
    for (const struct addrinfo *ai = res; ai != NULL && rv == NULL;
         ai = ai->ai_next) {
        bool is_seen = false;

        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(ss)) {
            continue;
        }
        for (const struct addrinfo *b = res; b != ai; b = b->ai_next) {
            if (b->ai_addrlen == ai->ai_addrlen &&
                sock_addr_equal(b->ai_addr, ai->ai_addr)) {
                is_seen = true;
                break;
            }
        }
        if (is_seen) {
            continue;
        }
        memset(&ss, 0, sizeof(ss));
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        rv = core_listen_add(cf, srv, proto, &ss, ai->ai_addrlen);
    }
    freeaddrinfo(res);
    return rv;
}


/* Appends a copy of proto with address ss to srv's listen lines. */
static const char *
core_listen_add(struct conf_ctx *cf, struct stream_server *srv,
                const struct stream_listen_ref *proto,
                const struct sockaddr_storage *ss, socklen_t sslen)
{
    struct stream_listen_ref *ref = arena_alloc(cf->arena, sizeof(*ref));
    struct stream_listen_ref **tail = &srv->listen_refs;

    if (ref == NULL) {
        return "out of memory";
    }
    *ref = *proto;
    ref->addr = *ss;
    ref->addrlen = sslen;
    ref->next = NULL;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = ref;
    return NULL;
}


static const char *
core_server_name(struct conf_ctx *cf, const struct conf_node *n,
                 const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;

    (void)cmd;
    (void)conf;
    for (size_t i = 1; i < n->nargs; i++) {
        struct stream_name *name = arena_alloc(cf->arena, sizeof(*name));
        if (name == NULL) {
            return "out of memory";
        }
        name->name = n->args[i];
        name->next = st->server->names;
        st->server->names = name;
    }
    return NULL;
}


/*
 * srv's listen line ref names ls, which an earlier server (or line) made:
 * checks what the two may not both say, as nginx's
 * ngx_stream_add_addresses().
 */
static const char *
core_share_listen(struct conf_ctx *cf, struct stream_listen *ls,
                  struct stream_server *srv,
                  const struct stream_listen_ref *ref)
{
    for (const struct stream_listen_ref *r = srv->listen_refs; r != ref;
         r = r->next) {
        if (sock_addr_equal((struct sockaddr *)&r->addr,
                            (struct sockaddr *)&ref->addr)) {
            return conf_msg(cf, "a duplicate listen %s in %s:%u", ls->text,
                            srv->file, ref->line);
        }
    }
    if (ls->proxy_protocol != ref->proxy_protocol) {
        return conf_msg(cf,
                        "\"proxy_protocol\" must be on every listen "
                        "of %s or on none, in %s:%u",
                        ls->text, srv->file, ref->line);
    }
    if (ref->has_opts) {
        if (ls->has_opts) {
            return conf_msg(cf, "duplicate listen options for %s in %s:%u",
                            ls->text, srv->file, ref->line);
        }
        ls->opts = ref->opts;
        ls->has_opts = true;
    }
    return NULL;
}


/*
 * Warns, as nginx 1.25.5+, when a second server on ls answers to no name
 * (no server_name, or server_name ""): only one of them can ever be used.
 */
static void
core_check_nameless(struct stream_listen *ls, const struct stream_server *srv)
{
    bool is_nameless = srv->names == NULL;

    for (const struct stream_name *nm = srv->names; nm != NULL; nm = nm->next) {
        is_nameless = is_nameless || nm->name[0] == '\0';
    }
    if (!is_nameless) {
        return;
    }
    if (ls->has_nameless) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "conflicting server name \"\" on %s, ignored", ls->text);
    }
    ls->has_nameless = true;
}


/* Puts srv on the listener of each of its listen lines, making them. */
static const char *
core_group_listeners(struct conf_ctx *cf, struct stream_conf *conf,
                     struct stream_server *srv)
{
    char err[256];
    const char *rv;

    for (struct stream_listen_ref *ref = srv->listen_refs; ref != NULL;
         ref = ref->next) {
        struct stream_listen *ls = conf->listens;

        while (ls != NULL && !sock_addr_equal((struct sockaddr *)&ls->addr,
                                              (struct sockaddr *)&ref->addr)) {
            ls = ls->next;
        }
        if (ls == NULL) {
            ls = arena_alloc(cf->arena, sizeof(*ls));
            if (ls == NULL) {
                return "out of memory";
            }
            ls->addr = ref->addr;
            ls->addrlen = ref->addrlen;
            ls->opts = ref->opts;
            ls->has_opts = ref->has_opts;
            ls->fd = -1;
            ls->fds = NULL;
            sock_addr_text((struct sockaddr *)&ref->addr, ls->text,
                           sizeof(ls->text));
            ls->default_server = srv;
            ls->conf = conf;
            ls->proxy_protocol = ref->proxy_protocol;
            ls->next = conf->listens;
            conf->listens = ls;
        } else {
            rv = core_share_listen(cf, ls, srv, ref);
            if (rv != NULL) {
                return rv;
            }
        }
        if (ref->default_server) {
            if (ls->has_default_flag) {
                return conf_msg(cf,
                                "a duplicate default server for %s in "
                                "%s:%u",
                                ls->text, srv->file, ref->line);
            }
            ls->has_default_flag = true;
            ls->default_server = srv;
        }
        core_check_nameless(ls, srv);
        for (struct stream_name *nm = srv->names; nm != NULL; nm = nm->next) {
            if (nm->name[0] == '\0') {
                continue; /* server_name ""; matches no preread name */
            }
            if (ls->names == NULL) {
                ls->names = hostmatch_new(true);
                if (ls->names == NULL) {
                    return "out of memory";
                }
            }
            if (hostmatch_add(ls->names, nm->name, strlen(nm->name), srv, err,
                              sizeof(err)) == -1) {
                if (strncmp(err, "conflicting", 11) == 0) {
                    errlog_write(NULL, ERRLOG_WARN, 0,
                                 "conflicting server name \"%s\" on %s, "
                                 "ignored",
                                 nm->name, ls->text);
                    continue;
                }
                return conf_msg(cf, "%s in %s:%u", err, srv->file, srv->line);
            }
        }
    }
    return NULL;
}


/* True when a constant value names neither an upstream nor an address. */
static bool
core_is_name(const struct stream_conf *conf, const struct tmpl *t)
{
    char text[512];
    size_t len = 0;
    struct sockaddr_storage ss;
    socklen_t sslen;

    for (size_t i = 0; i < t->nparts; i++) {
        if (len + t->parts[i].len >= sizeof(text)) {
            return true;
        }
        memcpy(text + len, t->parts[i].text, t->parts[i].len);
        len += t->parts[i].len;
    }
    return upstream_find(conf, text, len) == NULL && !sock_is_unix(text, len) &&
           sock_parse_addr(text, len, 0, &ss, &sslen) == -1;
}


/*
 * Whether srv's proxy_pass value may need DNS. One answer is certain: a
 * value that is a single map variable whose every value is a constant
 * upstream name or address (the seed's config) never does.
 */
static bool
core_may_resolve(const struct stream_conf *conf,
                 const struct stream_server *srv)
{
    const struct tmpl *t = &srv->pass_value;
    const struct stream_map *m;

    if (t->nparts != 1 || t->parts[0].kind != TMPL_VAR ||
        t->parts[0].id < VAR_BUILTIN_COUNT ||
        (size_t)(t->parts[0].id - VAR_BUILTIN_COUNT) >= conf->nmaps) {
        return true;
    }
    m = conf->maps[t->parts[0].id - VAR_BUILTIN_COUNT];
    if (m->set_var != NULL || m->default_value.has_vars ||
        (m->default_value.nparts > 0 &&
         core_is_name(conf, &m->default_value))) {
        return true;
    }
    for (const struct stream_map_value *v = m->values; v != NULL; v = v->next) {
        if (v->t.has_vars || core_is_name(conf, &v->t)) {
            return true;
        }
    }
    return false;
}


/*
 * -t (and every start) warns where a server forwards to names it would
 * resolve with no resolver, or to names the client chooses with no
 * allow-list: the open-proxy configuration.
 */
static void
core_check_names(struct stream_conf *conf, struct stream_server *srv)
{
    if (srv->pass_kind != PASS_VALUE) {
        return;
    }
    srv->pass_is_client = vars_is_client(conf, &srv->pass_value);
    if (srv->set.resolver == NULL && core_may_resolve(conf, srv)) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "\"proxy_pass %s\" may need a resolver, but no "
                     "\"resolver\" is defined in %s:%u",
                     srv->pass_text, srv->file, srv->pass_line);
    }
    if (srv->pass_is_client && srv->set.deny_if == NULL) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "\"proxy_pass %s\" forwards to names the client "
                     "chooses, and no \"deny_if\" allow-list restricts them "
                     "(an open proxy) in %s:%u",
                     srv->pass_text, srv->file, srv->pass_line);
    }
}


static const char *
core_finish(struct conf_ctx *cf, struct stream_conf *conf, struct conf_err *err)
{
    const char *rv;

    (void)err;
    core_settings_merge(&conf->set,
                        &(struct stream_settings){
                            .ssl_preread = CONF_UNSET,
                            .preread_timeout_ms = CONF_UNSET,
                            .preread_buffer_size = CONF_UNSET,
                            .proxy_connect_timeout_ms = CONF_UNSET,
                            .proxy_timeout_ms = CONF_UNSET,
                            .proxy_next_upstream = CONF_UNSET,
                            .proxy_next_upstream_tries = CONF_UNSET,
                            .proxy_next_upstream_timeout_ms = CONF_UNSET,
                            .proxy_half_close = CONF_UNSET,
                            .limit_conn_log_level = CONF_UNSET,
                            .limit_conn_dry_run = CONF_UNSET,
                            .tcp_nodelay = CONF_UNSET,
                            .proxy_buffer_size = CONF_UNSET,
                            .proxy_splice = CONF_UNSET,
                            .proxy_splice_pipe_size = CONF_UNSET,
                            .proxy_socket_keepalive = CONF_UNSET,
                            .http_preread = CONF_UNSET,
                            .resolver_timeout_ms = CONF_UNSET,
                            .proxy_protocol = CONF_UNSET,
                            .proxy_protocol_timeout_ms = CONF_UNSET,
                        });
    CONF_MERGE(conf->daemon, CONF_UNSET, 0);
    CONF_MERGE(conf->worker_processes, CONF_UNSET, 1);
    CONF_MERGE(conf->worker_rlimit_nofile, CONF_UNSET, 0);
    CONF_MERGE(conf->worker_connections, CONF_UNSET, 512);
    CONF_MERGE(conf->worker_shutdown_timeout_ms, CONF_UNSET, 0);
    CONF_MERGE(conf->sandbox, CONF_UNSET, 1);
    CONF_MERGE(conf->preread_budget, CONF_UNSET, 32 * 1024 * 1024);
    for (struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        core_settings_merge(&srv->set, &conf->set);
        if (srv->listen_refs == NULL) {
            return conf_msg(cf, "no \"listen\" is defined for server in %s:%u",
                            srv->file, srv->line);
        }
        return_finish(srv);
        if (srv->status &&
            (srv->pass_kind != PASS_NONE || srv->return_value != NULL)) {
            return conf_msg(cf,
                            "\"status\" cannot be combined with "
                            "\"proxy_pass\" or \"return\" in %s:%u",
                            srv->file, srv->line);
        }
        if (srv->pass_kind == PASS_NONE && srv->return_value == NULL &&
            !srv->status) {
            return conf_msg(cf, "no handler for server in %s:%u", srv->file,
                            srv->line);
        }
        if (srv->set.preread_buffer_size < 1) {
            return conf_msg(cf,
                            "\"preread_buffer_size\" must be at least 1 "
                            "in %s:%u",
                            srv->file, srv->line);
        }
        if (srv->set.proxy_buffer_size < 1 ||
            srv->set.proxy_buffer_size > INT_MAX) {
            return conf_msg(cf,
                            "\"proxy_buffer_size\" must be between 1 and "
                            "%d in %s:%u",
                            INT_MAX, srv->file, srv->line);
        }
        rv = proxy_finish(cf, conf, srv);
        if (rv != NULL) {
            return rv;
        }
        core_check_names(conf, srv);
    }
    rv = upstream_finish(cf, conf);
    if (rv != NULL) {
        return rv;
    }
    for (struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        rv = core_group_listeners(cf, conf, srv);
        if (rv != NULL) {
            return rv;
        }
    }
    core_listener_options(conf);
    return NULL;
}


/*
 * preread_budget SIZE (stream{}, ours): the preread bytes one worker holds
 * at once, all sessions together; past it the largest stalled hellos are
 * closed (preread.c). At least 1.
 */
static const char *
core_preread_budget(struct conf_ctx *cf, const struct conf_node *n,
                    const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    int64_t value;

    (void)cmd;
    (void)conf;
    if (st->conf->preread_budget != CONF_UNSET) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    if (units_parse_size(n->args[1], strlen(n->args[1]), &value) == -1 ||
        value < 1) {
        return conf_msg(cf, "\"%s\" directive invalid value", n->args[0]);
    }
    st->conf->preread_budget = value;
    return NULL;
}


/*
 * Options a listener takes from its default server, for the sockets it
 * accepts:
 * - where the client speaks first (it prereads, or a PROXY header must
 *   come), a connection is of no use before its first bytes:
 *   TCP_DEFER_ACCEPT keeps it in the kernel until they come, so the worker
 *   wakes once per session, not twice, and reads at once (preread.c).
 *   nginx sets it only for `deferred`; see README "Deviations";
 * - tcp_nodelay: an accepted socket inherits TCP_NODELAY from its
 *   listener, which saves a setsockopt() per session; a session routed to
 *   a server that says otherwise sets its own (proxy.c).
 */
static void
core_listener_options(struct stream_conf *conf)
{
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        const struct stream_settings *set = &ls->default_server->set;

        if (ls->addr.ss_family != AF_UNIX &&
            (set->ssl_preread || set->http_preread || ls->proxy_protocol)) {
            ls->opts.deferred = true;
        }
        ls->opts.nodelay = set->tcp_nodelay != 0;
    }
}


struct stream_conf *
stream_conf_build(struct conf_tree *tree, const char *path,
                  struct conf_err *err)
{
    struct stream_conf *conf = arena_alloc(tree->arena, sizeof(*conf));
    struct core_state st = {conf, NULL, NULL};
    struct conf_ctx cf = {0};
    const char *rv;

    if (conf == NULL) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        conf_tree_free(tree);
        return NULL;
    }
    conf->tree = tree;
    conf->arena = tree->arena;
    conf->conf_path = path;
    conf->daemon = CONF_UNSET;
    conf->worker_processes = CONF_UNSET;
    conf->worker_rlimit_nofile = CONF_UNSET;
    conf->worker_connections = CONF_UNSET;
    conf->worker_shutdown_timeout_ms = CONF_UNSET;
    conf->sandbox = CONF_UNSET;
    conf->preread_budget = CONF_UNSET;
    conf->errlog.fd = 2;
    conf->errlog.level = ERRLOG_ERR;
    conf->errlog.path = "stderr";
    core_settings_init(&conf->set);
    cf.arena = tree->arena;
    cf.data = &st;
    cf.fallback = compat_cmds;
    for (const struct conf_node *n = tree->root; n != NULL; n = n->next) {
        if (conf_dispatch(&cf, n, CONF_MAIN, core_main_cmds, conf, err) == -1) {
            stream_conf_free(conf);
            return NULL;
        }
    }
    rv = core_finish(&cf, conf, err);
    if (rv != NULL) {
        snprintf(err->msg, sizeof(err->msg), "%s", rv);
        stream_conf_free(conf);
        return NULL;
    }
    return conf;
}


/* Opens the sockets of ls still missing (-1). 0, or -1 with err set. */
static int
core_open_listen(struct stream_listen *ls, struct conf_err *err)
{
    const char *what;

    if (listen_fds_open(ls->fds, ls->nfds, (struct sockaddr *)&ls->addr,
                        ls->addrlen, &ls->opts, &what) == -1) {
        snprintf(err->msg, sizeof(err->msg), "%s to %s failed (%d: %s)", what,
                 ls->text, errno, strerror(errno));
        return -1;
    }
    return 0;
}


/* Gives every listener its socket array, all -1. */
static int
core_alloc_fds(struct stream_conf *conf)
{
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        if (ls->fds != NULL) {
            continue;
        }
        /* A unix path is bound once: one socket for every worker. */
        ls->nfds = listen_nfds(ls->opts.reuseport &&
                                   ls->addr.ss_family != AF_UNIX,
                               conf->worker_processes);
        ls->fds = arena_alloc(conf->arena, ls->nfds * sizeof(int));
        if (ls->fds == NULL) {
            return -1;
        }
        listen_fds_init(ls->fds, ls->nfds);
        ls->fd = -1;
    }
    return 0;
}


int
stream_conf_open_listeners(struct stream_conf *conf, struct conf_err *err)
{
    if (core_alloc_fds(conf) == -1) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        if (core_open_listen(ls, err) == -1) {
            /* The socket files made so far are ours: no stale ones. */
            stream_conf_retire_listeners(conf, false);
            return -1;
        }
    }
    return 0;
}


/* The old listener whose sockets may serve ls, or NULL. */
static struct stream_listen *
core_same_listen(struct stream_conf *old, const struct stream_listen *ls)
{
    for (struct stream_listen *o = old->listens; o != NULL; o = o->next) {
        if (listen_same((struct sockaddr *)&ls->addr, ls->opts.reuseport,
                        (struct sockaddr *)&o->addr, o->opts.reuseport)) {
            return o;
        }
    }
    return NULL;
}


/* Applies ls's options to its open sockets; failures are logged. */
static void
core_configure_listen(const struct stream_listen *ls)
{
    for (size_t i = 0; ls != NULL && i < ls->nfds; i++) {
        const char *what;

        if (ls->fds[i] >= 0 &&
            sock_listen_configure(ls->fds[i], &ls->opts, &what) == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0, "%s for %s failed (%d: %s)",
                         what, ls->text, errno, strerror(errno));
        }
    }
}


int
stream_conf_take_listeners(struct stream_conf *conf, struct stream_conf *old,
                           struct conf_err *err)
{
    if (core_alloc_fds(conf) == -1) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -1;
    }
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        struct stream_listen *o = core_same_listen(old, ls);
        if (o != NULL) {
            listen_fds_take(ls->fds, ls->nfds, o->fds, o->nfds);
        }
        if (o != NULL) {
            core_configure_listen(ls); /* as nginx: new options, kept socket */
        }
    }
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        if (core_open_listen(ls, err) == -1) {
            stream_conf_give_back_listeners(conf, old);
            return -1;
        }
    }
    return 0;
}


void
stream_conf_give_back_listeners(struct stream_conf *conf,
                                struct stream_conf *old)
{
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        struct stream_listen *o = core_same_listen(old, ls);
        if (listen_fds_give_back(ls->fds, ls->nfds, o != NULL ? o->fds : NULL,
                                 o != NULL ? o->nfds : 0) > 0) {
            core_unlink_unix(ls, false); /* bound by this reload */
        }
        /* The reload set its options on them: the old ones again. */
        core_configure_listen(o);
    }
}


void
stream_conf_close_listeners(struct stream_conf *conf)
{
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        listen_fds_close(ls->fds, ls->nfds);
        ls->fd = -1;
    }
}


void
stream_conf_retire_listeners(struct stream_conf *conf, bool log)
{
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        bool owned = false;
        for (size_t i = 0; i < ls->nfds; i++) {
            owned = owned || ls->fds[i] >= 0;
        }
        if (owned) {
            core_unlink_unix(ls, log);
        }
    }
    stream_conf_close_listeners(conf);
}


/* Removes the socket file of a unix-domain ls, as nginx. */
static void
core_unlink_unix(const struct stream_listen *ls, bool log)
{
    const char *path = ((const struct sockaddr_un *)&ls->addr)->sun_path;

    if (ls->addr.ss_family != AF_UNIX) {
        return;
    }
    if (log) {
        errlog_write(NULL, ERRLOG_WARN, 0, "deleting socket %s", path);
    }
    if (unlink(path) == -1 && errno != ENOENT) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "unlink() %s failed (%d: %s)", path,
                     errno, strerror(errno));
    }
}


void
stream_conf_close_fds(struct stream_conf *conf)
{
    stream_conf_close_listeners(conf);
    for (struct stream_log_file *f = conf->log_files; f != NULL; f = f->next) {
        if (f->fd >= 0) {
            close(f->fd);
            f->fd = -1;
        }
    }
    if (conf->has_errlog && conf->errlog.fd > 2) {
        close(conf->errlog.fd);
        conf->errlog.fd = 2;
    }
    for (struct errlog *log = conf->errlogs; log != NULL; log = log->next) {
        if (log->fd > 2) {
            close(log->fd);
            log->fd = 2;
        }
    }
}


void
stream_conf_reopen_logs(struct stream_conf *conf, uid_t owner)
{
    log_files_reopen(conf, owner);
    if (conf->has_errlog && conf->errlog.fd > 2) {
        errlog_reopen(&conf->errlog, owner);
    }
    for (struct errlog *log = conf->errlogs; log != NULL; log = log->next) {
        if (log->fd > 2) {
            errlog_reopen(log, owner);
        }
    }
}


void
stream_conf_free(struct stream_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    stream_conf_close_listeners(conf);
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        hostmatch_free(ls->names);
        ls->names = NULL;
    }
    for (size_t i = 0; i < conf->nmaps; i++) {
        map_free(conf->maps[i]);
    }
    free(conf->maps);
    conf->maps = NULL;
    upstream_free_all(conf);
    limit_conn_free_zones(conf);
    log_files_close(conf);
    if (conf->has_errlog && conf->errlog.fd > 2) {
        close(conf->errlog.fd);
    }
    for (struct errlog *log = conf->errlogs; log != NULL; log = log->next) {
        if (log->fd > 2) {
            close(log->fd);
        }
    }
    conf_tree_free(conf->tree);
}


const struct conf_cmd *
core_directives(size_t i)
{
    const struct conf_cmd *const tables[] = {
        core_main_cmds,        core_events_cmds, core_stream_cmds,
        upstream_directives(), compat_cmds,
    };

    return i < sizeof(tables) / sizeof(tables[0]) ? tables[i] : NULL;
}
