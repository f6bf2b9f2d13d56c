/* SPDX-License-Identifier: MIT */
/*
 * `resolver ADDR[:PORT] ... [valid=TIME] [ipv4=on|off] [ipv6=on|off]
 * [cache_entries=N]` and `resolver_timeout` (nginx's syntax and defaults:
 * port 53, TTLs, both families, 30s), with two extensions of ours:
 * `cache_entries=` and `system[=FILE]` (the name servers of
 * /etc/resolv.conf or FILE, read at each load); and the hand-off from a
 * session to dns/resolver.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/units.h"
#include "dns/resolv_conf.h"
#include "dns/resolver.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "stream/core.h"
#include "stream/proxy.h"
#include "stream/resolve.h"
#include "stream/session.h"
#include "stream/stream.h"


#define RESOLVE_SYSTEM_FILE "/etc/resolv.conf"
#define RESOLVE_SYSTEM_MAX_BYTES 65536 /* a longer resolv.conf is refused */
#define RESOLVE_CSV_CAP 1024


static const char *resolve_system(struct conf_ctx *cf,
                                  const struct conf_node *n, const char *path,
                                  char *csv, size_t *at);
static const char *resolve_system_read(struct conf_ctx *cf, const char *path,
                                       char *buf, size_t *len);
static void resolve_done(void *data, const struct resolver_result *res);


const char *
resolve_resolver_set(struct conf_ctx *cf, const struct conf_node *n,
                     const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_settings *set = conf;
    struct stream_resolver *sr;
    char csv[RESOLVE_CSV_CAP] = "";
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
        } else if (strcmp(a, "system") == 0 || strncmp(a, "system=", 7) == 0) {
            /* Our extension: the name servers of resolv.conf. */
            const char *path = a[6] == '=' ? a + 7 : RESOLVE_SYSTEM_FILE;
            const char *rv;
            if (*path == '\0') {
                return conf_msg(cf, "invalid parameter \"%s\"", a);
            }
            rv = resolve_system(cf, n, a[6] == '=' ? path : NULL, csv, &at);
            if (rv != NULL) {
                return rv;
            }
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


/*
 * Appends the name servers of path (NULL: /etc/resolv.conf, where a
 * missing file means what it means to the C library) to csv, which holds
 * *at bytes. What glibc would ignore is ignored with a warning; so are
 * scoped IPv6 servers (fe80::1%eth0), which c-ares 1.18 cannot use. A file
 * with no usable server gives 127.0.0.1, as glibc does, with a warning.
 * Returns NULL, or a message.
 */
static const char *
resolve_system(struct conf_ctx *cf, const struct conf_node *n, const char *path,
               char *csv, size_t *at)
{
    const char *const name = path != NULL ? path : RESOLVE_SYSTEM_FILE;
    char *const buf = malloc(RESOLVE_SYSTEM_MAX_BYTES + 1);
    struct resolv_conf rc;
    size_t len = 0;
    size_t used = 0;
    const char *rv;

    if (buf == NULL) {
        return "out of memory";
    }
    rv = resolve_system_read(cf, name, buf, &len);
    if (rv != NULL && (path != NULL || errno != ENOENT)) {
        free(buf);
        return rv;
    }
    resolv_conf_parse(buf, len, &rc);
    free(buf);
    if (rc.n_bad > 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "%zu \"nameserver\" line(s) of \"%s\" name no IP "
                     "address and are ignored (the first at line %u) in "
                     "%s:%u",
                     rc.n_bad, name, rc.first_bad_line, n->file, n->line);
    }
    if (rc.n_past_max > 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "only the first %d name servers of \"%s\" are used, as "
                     "the C library does in %s:%u",
                     RESOLV_CONF_MAX_SERVERS, name, n->file, n->line);
    }
    for (size_t i = 0; i < rc.n; i++) {
        const struct resolv_conf_server *srv = &rc.servers[i];
        char text[INET6_ADDRSTRLEN];

        inet_ntop(srv->family, srv->addr, text, sizeof(text));
        if (srv->scope[0] != '\0') {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "name server \"%s%%%s\" of \"%s\" line %u is "
                         "ignored: a scoped address is not supported in %s:%u",
                         text, srv->scope, name, srv->line, n->file, n->line);
            continue;
        }
        *at +=
            (size_t)snprintf(csv + *at, RESOLVE_CSV_CAP - *at,
                             srv->family == AF_INET6 ? "%s[%s]:53" : "%s%s:53",
                             *at ? "," : "", text);
        if (*at >= RESOLVE_CSV_CAP) {
            return "too many resolver addresses";
        }
        used++;
    }
    if (used == 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "no usable name server in \"%s\", using 127.0.0.1 as "
                     "the C library does in %s:%u",
                     name, n->file, n->line);
        *at += (size_t)snprintf(csv + *at, RESOLVE_CSV_CAP - *at,
                                "%s127.0.0.1:53", *at ? "," : "");
        if (*at >= RESOLVE_CSV_CAP) {
            return "too many resolver addresses";
        }
    }
    return NULL;
}


/*
 * Reads path into buf (RESOLVE_SYSTEM_MAX_BYTES + 1 bytes of room), *len
 * bytes. Returns NULL, or a message with errno set (ENOENT: no such file;
 * *len is then 0).
 */
static const char *
resolve_system_read(struct conf_ctx *cf, const char *path, char *buf,
                    size_t *len)
{
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    int saved;

    *len = 0;
    if (fd == -1) {
        saved = errno;
        (void)conf_msg(cf, "open() \"%s\" failed (%d: %s)", path, saved,
                       strerror(saved));
        errno = saved;
        return cf->msg;
    }
    /* Bounded: at most RESOLVE_SYSTEM_MAX_BYTES + 1 bytes are read. */
    while (*len <= RESOLVE_SYSTEM_MAX_BYTES) {
        const ssize_t got =
            read(fd, buf + *len, RESOLVE_SYSTEM_MAX_BYTES + 1 - *len);
        if (got == -1 && errno == EINTR) {
            continue;
        }
        if (got == -1) {
            saved = errno;
            close(fd);
            *len = 0;
            (void)conf_msg(cf, "read() \"%s\" failed (%d: %s)", path, saved,
                           strerror(saved));
            errno = saved;
            return cf->msg;
        }
        if (got == 0) {
            break;
        }
        *len += (size_t)got;
    }
    close(fd);
    if (*len > RESOLVE_SYSTEM_MAX_BYTES) {
        *len = 0;
        errno = EFBIG;
        return conf_msg(cf, "\"%s\" is larger than %d bytes", path,
                        RESOLVE_SYSTEM_MAX_BYTES);
    }
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
    const size_t len = strlen(s->target->name);

    if (sr == NULL || sr->r == NULL) {
        session_log(s, ERRLOG_ERR, "no resolver defined to resolve %s",
                    s->target->name);
        session_finalize(s, 500);
        return;
    }
    s->action = "resolving";
    s->target->resolver = sr;
    switch (resolver_lookup(sr->r, s->target->name, len, &s->target->rwait,
                            resolve_done, s, &res)) {
    case RESOLVER_LOOKUP_ANSWERED:
        resolve_done(s, res);
        break;
    case RESOLVER_LOOKUP_QUEUED:
        break; /* the lookup's deadline is the session's */
    case RESOLVER_LOOKUP_REFUSED:
        session_log(s, ERRLOG_ERR,
                    "%s could not be resolved: the lookup was refused "
                    "(%d: %s)",
                    s->target->name, errno, strerror(errno));
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
                    s->target->name, (int)res->status,
                    resolver_status_text(res->status));
        session_finalize(s, 500);
        return;
    }
    proxy_resolved(s, res);
}
