/* SPDX-License-Identifier: MIT */
/*
 * upstream{}: server lines (addresses or names resolved once at load, as
 * nginx does without `resolve`), weight/max_fails/fail_timeout/backup/down,
 * and the method: round-robin (default), hash [consistent], least_conn,
 * random [two]. Peers are collected in a list while reading and laid out,
 * primaries first, in one array for the balancer at the end.
 */

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/shm.h"
#include "core/units.h"
#include "dns/resolver.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "proto/hostname.h"
#include "stream/upstream/balance.h"
#include "stream/core.h"
#include "stream/resolve.h"
#include "stream/stream.h"
#include "stream/upstream.h"
#include "stream/upstream_resolve.h"
#include "stream/upstream_zone.h"
#include "stream/vars.h"


struct upstream_pending {
    struct balance_peer peer;
    struct upstream_resolve *res; /* a `resolve` server's slot, or NULL */
    size_t slot;                  /* which of res's slots */
    struct upstream_pending *next;
};

/* Peers being collected while the config is read. */
struct upstream_build {
    struct upstream_pending *head;
    struct upstream_pending **tail;
    size_t count;
    bool method_set;
};


static const char *upstream_server(struct conf_ctx *cf,
                                   const struct conf_node *n,
                                   const struct conf_cmd *cmd, void *conf);
static const char *upstream_hash(struct conf_ctx *cf, const struct conf_node *n,
                                 const struct conf_cmd *cmd, void *conf);
static const char *upstream_resolver(struct conf_ctx *cf,
                                     const struct conf_node *n,
                                     const struct conf_cmd *cmd, void *conf);
static const char *upstream_method(struct conf_ctx *cf,
                                   const struct conf_node *n,
                                   const struct conf_cmd *cmd, void *conf);
static const char *upstream_add_addrs(struct conf_ctx *cf,
                                      struct upstream_build *b,
                                      const char *text,
                                      const struct balance_peer *proto);
static const char *upstream_add_resolve(struct conf_ctx *cf,
                                        struct stream_upstream *u,
                                        const char *text, const char *service,
                                        const struct balance_peer *proto);
static struct stream_upstream *upstream_new(struct conf_ctx *cf,
                                            struct stream_conf *conf,
                                            const char *name, const char *file,
                                            unsigned line);


static const struct conf_cmd upstream_cmds[] = {
    {"server", CONF_UPSTREAM, CONF_1MORE, upstream_server, 0},
    {"hash", CONF_UPSTREAM, CONF_TAKE12, upstream_hash, 0},
    {"least_conn", CONF_UPSTREAM, CONF_NOARGS, upstream_method, 0},
    {"random", CONF_UPSTREAM, CONF_NOARGS | CONF_TAKE12, upstream_method, 0},
    {"zone", CONF_UPSTREAM, CONF_TAKE12, upstream_zone_set, 0},
    {"resolver", CONF_UPSTREAM, CONF_1MORE, upstream_resolver, 0},
    {"resolver_timeout", CONF_UPSTREAM, CONF_TAKE1, conf_set_msec,
     offsetof(struct stream_upstream, resolver_timeout_ms)},
    {NULL, 0, 0, NULL, 0},
};


const struct conf_cmd *
upstream_directives(void)
{
    return upstream_cmds;
}


static struct stream_upstream *
upstream_new(struct conf_ctx *cf, struct stream_conf *conf, const char *name,
             const char *file, unsigned line)
{
    struct stream_upstream *u = arena_alloc(cf->arena, sizeof(*u));
    struct upstream_build *b = arena_alloc(cf->arena, sizeof(*b));

    if (u == NULL || b == NULL) {
        return NULL;
    }
    b->tail = &b->head;
    u->name = name;
    u->file = file;
    u->line = line;
    u->bal.method = BALANCE_RR;
    u->resolver_timeout_ms = CONF_UNSET;
    u->build = b;
    u->next = conf->upstreams;
    conf->upstreams = u;
    return u;
}


struct stream_upstream *
upstream_find(const struct stream_conf *conf, const char *name, size_t len)
{
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        if (strlen(u->name) == len && strncasecmp(u->name, name, len) == 0) {
            return u;
        }
    }
    return NULL;
}


bool
upstream_peer_is_resolved(const struct stream_upstream *u,
                          const struct balance_peer *p)
{
    const size_t i = (size_t)(p - u->bal.peers);

    for (const struct upstream_resolve *r = u->resolves; r != NULL;
         r = r->next) {
        if ((i >= r->first && i < r->first + r->nfront) ||
            (i >= r->first_back &&
             i < r->first_back + (r->nslots - r->nfront))) {
            return true;
        }
    }
    return false;
}


const char *
upstream_block(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_upstream *u;
    const char *rv;

    (void)cmd;
    (void)conf;
    u = upstream_find(st->conf, n->args[1], strlen(n->args[1]));
    if (u != NULL && !u->implicit) {
        return conf_msg(cf, "duplicate upstream \"%s\"", n->args[1]);
    }
    u = upstream_new(cf, st->conf, n->args[1], n->file, n->line);
    if (u == NULL) {
        return "out of memory";
    }
    st->upstream = u;
    rv = conf_block(cf, n, CONF_UPSTREAM, upstream_cmds, u);
    st->upstream = NULL;
    if (rv == NULL && (u->build)->count == 0) {
        return conf_msg(cf, "no servers are inside upstream");
    }
    return rv;
}


static const char *
upstream_hash(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_upstream *u = conf;
    struct upstream_build *b = u->build;
    char err[256];

    (void)cmd;
    if (b->method_set) {
        return "load balancing method redefined";
    }
    b->method_set = true;
    if (n->nargs == 3 && strcmp(n->args[2], "consistent") != 0) {
        return conf_msg(cf, "invalid parameter \"%s\"", n->args[2]);
    }
    u->bal.method = n->nargs == 3 ? BALANCE_HASH_CONSISTENT : BALANCE_HASH;
    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     st->conf, &u->hash_key, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    return NULL;
}


/*
 * `resolver ADDR ...` inside upstream{} (nginx 1.27.3): the resolver of
 * this upstream's `resolve` servers, instead of the stream{} one.
 */
static const char *
upstream_resolver(struct conf_ctx *cf, const struct conf_node *n,
                  const struct conf_cmd *cmd, void *conf)
{
    struct stream_upstream *u = conf;
    struct stream_settings set;
    const char *rv;

    memset(&set, 0, sizeof(set));
    set.resolver = u->resolver; /* its "is duplicate" check */
    rv = resolve_resolver_set(cf, n, cmd, &set);
    if (rv == NULL) {
        u->resolver = set.resolver;
    }
    return rv;
}


static const char *
upstream_method(struct conf_ctx *cf, const struct conf_node *n,
                const struct conf_cmd *cmd, void *conf)
{
    struct stream_upstream *u = conf;
    struct upstream_build *b = u->build;

    (void)cmd;
    if (b->method_set) {
        return "load balancing method redefined";
    }
    b->method_set = true;
    if (strcmp(n->args[0], "least_conn") == 0) {
        u->bal.method = BALANCE_LEAST_CONN;
        return NULL;
    }
    u->bal.method = BALANCE_RANDOM;
    if (n->nargs >= 2) {
        if (strcmp(n->args[1], "two") != 0) {
            return conf_msg(cf, "invalid parameter \"%s\"", n->args[1]);
        }
        u->bal.random_two = true;
        if (n->nargs == 3 && strcmp(n->args[2], "least_conn") != 0) {
            return conf_msg(cf, "invalid parameter \"%s\"", n->args[2]);
        }
    }
    return NULL;
}


/* Adds one peer per address text resolves to (numeric or a name). */
static const char *
upstream_add_addrs(struct conf_ctx *cf, struct upstream_build *b,
                   const char *text, const struct balance_peer *proto)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    const size_t len = strlen(text);
    const char *why;

    if (sock_is_unix(text, len) &&
        sock_parse_unix(text, len, &ss, &sslen, &why) == -1) {
        return conf_msg(cf, "%s in upstream \"%s\"", why, text);
    }
    if (sock_is_unix(text, len) ||
        sock_parse_peer(text, len, &ss, &sslen) == 0) {
        struct upstream_pending *p = arena_alloc(cf->arena, sizeof(*p));
        char name[SOCK_ADDR_TEXT_MAX];
        if (p == NULL) {
            return "out of memory";
        }
        p->peer = *proto;
        p->peer.addr = ss;
        p->peer.addrlen = sslen;
        sock_addr_text((struct sockaddr *)&ss, name, sizeof(name));
        p->peer.name = arena_strndup(cf->arena, name, strlen(name));
        *b->tail = p;
        b->tail = &p->next;
        b->count++;
        return NULL;
    }

    /* A name from the config: resolved once, now (trusted input). */
    const char *colon = strrchr(text, ':');
    char host[256];
    struct addrinfo hints = {0};
    struct addrinfo *res;
    size_t host_len;

    if (colon == NULL || text[0] == '[') {
        return conf_msg(cf, "no port in upstream \"%s\"", text);
    }
    host_len = (size_t)(colon - text);
    if (host_len == 0 || host_len >= sizeof(host)) {
        return conf_msg(cf, "invalid host in upstream \"%s\"", text);
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    int port;
    if (units_parse_int(colon + 1, strlen(colon + 1), &port) == -1 ||
        port < 1 || port > 65535) {
        return conf_msg(cf, "invalid port in upstream \"%s\"", text);
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
        return conf_msg(cf, "host not found in upstream \"%s\"", text);
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        struct upstream_pending *p = arena_alloc(cf->arena, sizeof(*p));
        char name[SOCK_ADDR_TEXT_MAX];
        if (p == NULL) {
            freeaddrinfo(res);
            return "out of memory";
        }
        p->peer = *proto;
        memcpy(&p->peer.addr, ai->ai_addr, ai->ai_addrlen);
        p->peer.addrlen = ai->ai_addrlen;
        sock_addr_text(ai->ai_addr, name, sizeof(name));
        p->peer.name = arena_strndup(cf->arena, name, strlen(name));
        *b->tail = p;
        b->tail = &p->next;
        b->count++;
    }
    freeaddrinfo(res);
    return NULL;
}


static const char *
upstream_server(struct conf_ctx *cf, const struct conf_node *n,
                const struct conf_cmd *cmd, void *conf)
{
    struct stream_upstream *u = conf;
    struct upstream_build *b = u->build;
    struct balance_peer proto;
    bool resolve = false;
    const char *service = NULL;
    int num;

    (void)cmd;
    balance_peer_defaults(&proto);
    for (size_t i = 2; i < n->nargs; i++) {
        const char *p = n->args[i];

        if (strncmp(p, "weight=", 7) == 0) {
            if (units_parse_int(p + 7, strlen(p + 7), &num) == -1 || num < 1) {
                return conf_msg(cf, "invalid parameter \"%s\"", p);
            }
            proto.weight = num;
        } else if (strncmp(p, "max_fails=", 10) == 0) {
            if (units_parse_int(p + 10, strlen(p + 10), &num) == -1) {
                return conf_msg(cf, "invalid parameter \"%s\"", p);
            }
            proto.max_fails = num;
        } else if (strncmp(p, "fail_timeout=", 13) == 0) {
            int64_t ms;
            if (units_parse_msec(p + 13, strlen(p + 13), &ms) == -1) {
                return conf_msg(cf, "invalid parameter \"%s\"", p);
            }
            proto.fail_timeout_ms = ms;
        } else if (strcmp(p, "backup") == 0) {
            proto.backup = true;
        } else if (strcmp(p, "down") == 0) {
            proto.down = true;
        } else if (strncmp(p, "max_conns=", 10) == 0) {
            if (units_parse_int(p + 10, strlen(p + 10), &num) == -1 ||
                num < 0) {
                return conf_msg(cf, "invalid parameter \"%s\"", p);
            }
            proto.max_conns = (unsigned)num;
        } else if (strcmp(p, "resolve") == 0) {
            resolve = true;
        } else if (strncmp(p, "service=", 8) == 0) {
            if (p[8] == '\0') {
                return "service is empty";
            }
            service = p + 8;
        } else {
            return conf_msg(cf, "invalid parameter \"%s\"", p);
        }
    }
    if (service != NULL && !resolve) {
        return conf_msg(cf,
                        "service upstream \"%s\" requires \"resolve\" "
                        "parameter",
                        n->args[1]);
    }
    if (resolve && (service != NULL ||
                    !sock_is_unix(n->args[1], strlen(n->args[1])))) {
        /* A unix-domain path has nothing to resolve: static, as nginx. */
        return upstream_add_resolve(cf, u, n->args[1], service, &proto);
    }
    return upstream_add_addrs(cf, b, n->args[1], &proto);
}


/*
 * The name an SRV server asks for, as nginx makes it: `service=http` is
 * "_http._tcp.NAME", a service with a dot is used as it is ("SERVICE.NAME").
 * Lower-cased into out; -1 when it is not a name DNS can carry.
 */
static int
upstream_srv_name(const char *service, const char *host, char *out,
                  size_t cap)
{
    const bool full = strchr(service, '.') != NULL;
    size_t label = 0;
    int n = snprintf(out, cap, full ? "%s.%s" : "_%s._tcp.%s", service, host);

    if (n < 0 || (size_t)n >= cap || n > HOSTNAME_MAX) {
        return -1;
    }
    for (char *c = out; *c != '\0'; c++) {
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        if (*c == '.') {
            if (label == 0) {
                return -1; /* an empty label */
            }
            label = 0;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                   *c == '-' || *c == '_') {
            if (++label > 63) {
                return -1;
            }
        } else {
            return -1;
        }
    }
    return label == 0 ? -1 : 0;
}


/* Appends one slot's pending peer for res. */
static const char *
upstream_add_slot(struct conf_ctx *cf, struct stream_upstream *u,
                  struct upstream_resolve *res, size_t slot,
                  const struct balance_peer *proto, bool backup)
{
    struct upstream_pending *p = arena_alloc(cf->arena, sizeof(*p));

    if (p == NULL) {
        return "out of memory";
    }
    p->peer = *proto;
    p->peer.backup = backup;
    p->peer.name = res->names[slot];
    p->peer.down = true; /* until an answer fills it */
    p->res = res;
    p->slot = slot;
    if (res->srv) {
        snprintf(res->names[slot], SOCK_ADDR_TEXT_MAX, "%s", res->host);
    } else {
        snprintf(res->names[slot], SOCK_ADDR_TEXT_MAX, "%s:%d", res->host,
                 res->port);
    }
    *u->build->tail = p;
    u->build->tail = &p->next;
    u->build->count++;
    return NULL;
}


/*
 * `server NAME:PORT resolve`: UPSTREAM_RESOLVE_SLOTS peers, filled now by
 * the system's resolver (as at any start) and later by our own, in each
 * worker, as TTLs run out. A name that does not resolve yet leaves them all
 * down; it is not an error, as in nginx. `server NAME service=S resolve`:
 * as many primary slots and as many backup slots, filled from the SRV
 * records by the workers only.
 */
static const char *
upstream_add_resolve(struct conf_ctx *cf, struct stream_upstream *u,
                     const char *text, const char *service,
                     const struct balance_peer *proto)
{
    struct upstream_resolve *res = arena_alloc(cf->arena, sizeof(*res));
    const char *colon = strrchr(text, ':');
    char host[HOSTNAME_MAX + 1];
    size_t host_len;
    const char *reason, *rv;
    struct addrinfo hints = {0};
    struct addrinfo *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;

    if (res == NULL) {
        return "out of memory";
    }
    if (service != NULL) {
        if (colon != NULL && text[0] != '[') {
            return conf_msg(cf, "service upstream \"%s\" may not have port",
                            text);
        }
        if (text[0] == '[' ||
            sock_parse_peer(text, strlen(text), &ss, &sslen) == 0 ||
            hostname_normalize(text, strlen(text), host, sizeof(host),
                               &host_len, &reason) != HOSTNAME_OK ||
            strspn(host, "0123456789.") == host_len) {
            return conf_msg(cf, "service upstream \"%s\" requires domain name",
                            text);
        }
        char name[HOSTNAME_MAX + 1];
        if (upstream_srv_name(service, host, name, sizeof(name)) != 0) {
            return conf_msg(cf, "invalid service \"%s\" in upstream \"%s\"",
                            service, text);
        }
        res->host = arena_strndup(cf->arena, name, strlen(name));
        res->srv = true;
        res->targets = upstream_srv_targets_new(cf->arena, res);
        if (res->targets == NULL) {
            return "out of memory";
        }
    } else {
        if (colon == NULL ||
            units_parse_int(colon + 1, strlen(colon + 1), &res->port) == -1 ||
            res->port < 1 || res->port > 65535) {
            return conf_msg(cf, "invalid port in upstream \"%s\"", text);
        }
        if (hostname_normalize(text, (size_t)(colon - text), host,
                               sizeof(host), &host_len,
                               &reason) != HOSTNAME_OK) {
            return conf_msg(cf,
                            "\"resolve\" needs a host name in upstream "
                            "\"%s\"",
                            text);
        }
        res->host = arena_strndup(cf->arena, host, host_len);
    }
    res->u = u;
    res->down = proto->down;
    res->nfront = UPSTREAM_RESOLVE_SLOTS;
    /* SRV: backup slots too, unless the line says `backup` (then the
     * lowest priority's records are the backups, the others unused). */
    res->nslots = res->srv && !proto->backup ? 2 * UPSTREAM_RESOLVE_SLOTS
                                             : UPSTREAM_RESOLVE_SLOTS;
    res->names = arena_alloc(cf->arena, sizeof(*res->names) * res->nslots);
    if (res->host == NULL || res->names == NULL) {
        return "out of memory";
    }
    loop_timer_init(&res->timer, upstream_resolve_timer, res);
    for (size_t i = 0; i < res->nslots; i++) {
        rv = upstream_add_slot(cf, u, res, i, proto,
                               i < res->nfront ? proto->backup : true);
        if (rv != NULL) {
            return rv;
        }
    }
    if (!res->srv) {
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        if (getaddrinfo(res->host, colon + 1, &hints, &ai) != 0) {
            ai = NULL;
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "host \"%s\" in upstream \"%s\" "
                         "does not resolve yet; its server stays down until "
                         "it does",
                         res->host, u->name);
        }
        /* The slots just added are the last ones of the list. */
        struct upstream_pending *p = u->build->head;
        for (size_t skip = u->build->count - res->nslots; skip > 0; skip--) {
            p = p->next;
        }
        for (const struct addrinfo *a = ai; a != NULL && p != NULL;
             a = a->ai_next, p = p->next) {
            if (a->ai_addrlen > sizeof(p->peer.addr)) {
                continue;
            }
            memcpy(&p->peer.addr, a->ai_addr, a->ai_addrlen);
            p->peer.addrlen = a->ai_addrlen;
            p->peer.down = proto->down;
            sock_addr_text(a->ai_addr, res->names[p->slot], SOCK_ADDR_TEXT_MAX);
        }
        freeaddrinfo(ai);
    }
    /* Made last: once linked, stream_conf_free() unmaps it. */
    res->shared = shm_zone_new(upstream_resolve_shared_size());
    if (res->shared == NULL) {
        return conf_msg(cf, "mmap() failed for \"%s\" in upstream \"%s\"",
                        text, u->name);
    }
    res->next = u->resolves;
    u->resolves = res;
    return NULL;
}


struct stream_upstream *
upstream_implicit(struct conf_ctx *cf, struct stream_conf *conf,
                  const char *text, const char *file, unsigned line,
                  const char **msg)
{
    struct stream_upstream *u = upstream_new(cf, conf, text, file, line);
    struct balance_peer proto;

    if (u == NULL) {
        *msg = "out of memory";
        return NULL;
    }
    u->implicit = true;
    balance_peer_defaults(&proto);
    *msg = upstream_add_addrs(cf, u->build, text, &proto);
    return *msg == NULL ? u : NULL;
}


const char *
upstream_finish(struct conf_ctx *cf, struct stream_conf *conf)
{
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        struct upstream_build *b = u->build;
        struct balance_peer *peers;
        size_t i = 0;
        const char *rv;

        if (b == NULL) {
            continue; /* finished by an earlier load step */
        }
        peers =
            arena_alloc(cf->arena, sizeof(*peers) * (b->count ? b->count : 1));
        if (peers == NULL) {
            return "out of memory";
        }
        /* An SRV server's backup slots only where backups exist. */
        const bool backups = u->bal.method == BALANCE_RR ||
                             u->bal.method == BALANCE_LEAST_CONN;
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            if (!backups) {
                r->nslots = r->nfront;
            }
        }
        /* Primaries first, then backups, as the balancer expects. */
        for (int pass = 0; pass < 2; pass++) {
            for (struct upstream_pending *p = b->head; p != NULL; p = p->next) {
                if (p->peer.backup != (pass == 1) ||
                    (p->res != NULL && p->slot >= p->res->nslots)) {
                    continue;
                }
                if (p->res != NULL && p->slot == 0) {
                    p->res->first = i; /* its runs of slots stay together */
                }
                if (p->res != NULL && p->slot == p->res->nfront) {
                    p->res->first_back = i;
                }
                peers[i++] = p->peer;
            }
        }
        if (u->resolves != NULL) {
            if (u->bal.method == BALANCE_HASH_CONSISTENT) {
                return conf_msg(cf,
                                "\"resolve\" cannot be used with \"hash "
                                "... consistent\" in upstream \"%s\" in "
                                "%s:%u",
                                u->name, u->file, u->line);
            }
            struct stream_resolver *const sr =
                u->resolver != NULL ? u->resolver : conf->set.resolver;

            if (sr == NULL) {
                return conf_msg(cf,
                                "no resolver defined to resolve \"%s\" "
                                "in upstream \"%s\" in %s:%u",
                                u->resolves->host, u->name, u->file, u->line);
            }
            for (struct upstream_resolve *r = u->resolves; r != NULL;
                 r = r->next) {
                r->resolver = sr;
            }
        }
        u->bal.peers = peers;
        u->bal.npeers = i;
        u->build = NULL;
        u->bal.seed = 0x5eed;
        rv = balance_init(&u->bal);
        if (rv != NULL) {
            u->bal.peers = NULL;
            u->bal.npeers = 0;
            return conf_msg(cf, "%s in upstream \"%s\" in %s:%u", rv, u->name,
                            u->file, u->line);
        }
    }
    return upstream_zone_finish(cf, conf);
}


void
upstream_free_all(struct stream_conf *conf)
{
    upstream_zone_free_all(conf);
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            shm_zone_free(r->shared);
            r->shared = NULL;
        }
        if (u->bal.npeers > 0) {
            balance_free(&u->bal);
            u->bal.npeers = 0;
        }
    }
}
