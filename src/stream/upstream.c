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
#include "stream/upstream_zone.h"
#include "stream/vars.h"


#define UPSTREAM_RESOLVE_SLOTS 8       /* addresses kept per resolve server */
#define UPSTREAM_RESOLVE_MIN_MS 1000   /* lookups at most this often */
#define UPSTREAM_RESOLVE_RETRY_MS 5000 /* after a failed lookup */


static struct loop *upstream_loop; /* this worker's, for the timers */

/*
 * A `resolve` name's latest answer in its shared zone, written by whichever
 * worker got it (under the zone's lock). Addresses carry the port.
 */
struct upstream_shared {
    uint64_t version; /* answers stored; 0: none yet */
    uint32_t naddrs;  /* 0: the name has no address */
    socklen_t addrlens[UPSTREAM_RESOLVE_SLOTS];
    struct sockaddr_storage addrs[UPSTREAM_RESOLVE_SLOTS];
};


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
                                        const char *text,
                                        const struct balance_peer *proto);
static void upstream_resolved(void *data, const struct resolver_result *rr);
static void upstream_apply(struct upstream_resolve *res,
                           const struct sockaddr_storage *addrs,
                           const socklen_t *addrlens, size_t naddrs);
static void upstream_share(struct upstream_resolve *res);
static void upstream_seed(struct upstream_resolve *res);
static void upstream_resolve_timer(struct loop_timer *t);
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
        if (i >= r->first && i < r->first + r->nslots) {
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
        } else {
            return conf_msg(cf, "invalid parameter \"%s\"", p);
        }
    }
    if (resolve && !sock_is_unix(n->args[1], strlen(n->args[1]))) {
        /* A unix-domain path has nothing to resolve: static, as nginx. */
        return upstream_add_resolve(cf, u, n->args[1], &proto);
    }
    return upstream_add_addrs(cf, b, n->args[1], &proto);
}


/*
 * `server NAME:PORT resolve`: UPSTREAM_RESOLVE_SLOTS peers, filled now by
 * the system's resolver (as at any start) and later by our own, in each
 * worker, as TTLs run out. A name that does not resolve yet leaves them all
 * down; it is not an error, as in nginx.
 */
static const char *
upstream_add_resolve(struct conf_ctx *cf, struct stream_upstream *u,
                     const char *text, const struct balance_peer *proto)
{
    struct upstream_resolve *res = arena_alloc(cf->arena, sizeof(*res));
    const char *colon = strrchr(text, ':');
    char host[HOSTNAME_MAX + 1];
    size_t host_len;
    const char *reason;
    struct addrinfo hints = {0};
    struct addrinfo *ai = NULL;

    if (res == NULL) {
        return "out of memory";
    }
    if (colon == NULL ||
        units_parse_int(colon + 1, strlen(colon + 1), &res->port) == -1 ||
        res->port < 1 || res->port > 65535) {
        return conf_msg(cf, "invalid port in upstream \"%s\"", text);
    }
    if (hostname_normalize(text, (size_t)(colon - text), host, sizeof(host),
                           &host_len, &reason) != HOSTNAME_OK) {
        return conf_msg(cf,
                        "\"resolve\" needs a host name in upstream "
                        "\"%s\"",
                        text);
    }
    res->host = arena_strndup(cf->arena, host, host_len);
    res->u = u;
    res->nslots = UPSTREAM_RESOLVE_SLOTS;
    res->names = arena_alloc(cf->arena, sizeof(*res->names) * res->nslots);
    if (res->host == NULL || res->names == NULL) {
        return "out of memory";
    }
    loop_timer_init(&res->timer, upstream_resolve_timer, res);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(res->host, colon + 1, &hints, &ai) != 0) {
        ai = NULL;
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "host \"%s\" in upstream \"%s\" "
                     "does not resolve yet; its server stays down until it "
                     "does",
                     res->host, u->name);
    }
    const struct addrinfo *a = ai;
    for (size_t i = 0; i < res->nslots; i++) {
        struct upstream_pending *p = arena_alloc(cf->arena, sizeof(*p));
        if (p == NULL) {
            freeaddrinfo(ai);
            return "out of memory";
        }
        p->peer = *proto;
        p->peer.name = res->names[i];
        p->res = res;
        p->slot = i;
        if (a != NULL && a->ai_addrlen <= sizeof(p->peer.addr)) {
            memcpy(&p->peer.addr, a->ai_addr, a->ai_addrlen);
            p->peer.addrlen = a->ai_addrlen;
            sock_addr_text(a->ai_addr, res->names[i], SOCK_ADDR_TEXT_MAX);
            a = a->ai_next;
        } else {
            p->peer.down = true; /* an unused slot */
            snprintf(res->names[i], SOCK_ADDR_TEXT_MAX, "%s:%d", res->host,
                     res->port);
        }
        *u->build->tail = p;
        u->build->tail = &p->next;
        u->build->count++;
    }
    freeaddrinfo(ai);
    /* Made last: once linked, stream_conf_free() unmaps it. */
    res->shared = shm_zone_new(sizeof(struct upstream_shared));
    if (res->shared == NULL) {
        return conf_msg(cf, "mmap() failed for \"%s\" in upstream \"%s\"", text,
                        u->name);
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
        /* Primaries first, then backups, as the balancer expects. */
        for (int pass = 0; pass < 2; pass++) {
            for (struct upstream_pending *p = b->head; p != NULL; p = p->next) {
                if (p->peer.backup == (pass == 1)) {
                    if (p->res != NULL && p->slot == 0) {
                        p->res->first = i; /* its slots stay together */
                    }
                    peers[i++] = p->peer;
                }
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


/* Puts res's latest answer into its slots, and shares it. */
static void
upstream_resolved(void *data, const struct resolver_result *rr)
{
    struct upstream_resolve *res = data;
    const struct balance_peer *peers = res->u->bal.peers + res->first;
    int64_t next_ms = UPSTREAM_RESOLVE_RETRY_MS;

    if (rr->status == RESOLVER_OK || rr->status == RESOLVER_NXDOMAIN) {
        /*
         * NXDOMAIN and an empty answer are answers: the name has no
         * address now, so its servers go down (nginx drops them too).
         */
        bool was_up = false;
        for (size_t i = 0; i < res->nslots; i++) {
            was_up = was_up || !peers[i].down;
        }
        if (rr->status == RESOLVER_NXDOMAIN && was_up) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "%s has no address (%s) for upstream \"%s\"; "
                         "its servers are down until it has",
                         res->host, resolver_status_text(rr->status),
                         res->u->name);
        }
        upstream_apply(res, rr->addrs, rr->addrlens,
                       rr->status == RESOLVER_OK ? rr->naddrs : 0);
        upstream_share(res);
        next_ms = rr->expires_ms - clock_now_ms();
    } else {
        /* A failure is no answer: keep the last good addresses, as nginx
         * does, and ask again. */
        errlog_write(NULL, ERRLOG_ERR, 0,
                     "%s could not be resolved (%d: %s) "
                     "for upstream \"%s\"",
                     res->host, (int)rr->status,
                     resolver_status_text(rr->status), res->u->name);
    }
    if (next_ms < UPSTREAM_RESOLVE_MIN_MS) {
        next_ms = UPSTREAM_RESOLVE_MIN_MS;
    }
    loop_timer_set(upstream_loop, &res->timer, next_ms);
}


/*
 * Fills res's slots with naddrs addresses (their ports are set to res's);
 * the slots left over are down. A slot whose address changed forgets its
 * failures.
 */
static void
upstream_apply(struct upstream_resolve *res,
               const struct sockaddr_storage *addrs, const socklen_t *addrlens,
               size_t naddrs)
{
    struct balance_peer *peers = res->u->bal.peers + res->first;

    for (size_t i = 0; i < res->nslots; i++) {
        struct balance_peer *p = &peers[i];
        struct sockaddr *sa = (struct sockaddr *)&p->addr;

        if (i >= naddrs || addrlens[i] > sizeof(p->addr)) {
            p->down = true;
            continue;
        }
        if (p->down || p->addrlen != addrlens[i] ||
            memcmp(&p->addr, &addrs[i], addrlens[i]) != 0) {
            memcpy(&p->addr, &addrs[i], addrlens[i]);
            p->addrlen = addrlens[i];
            if (sa->sa_family == AF_INET) {
                ((struct sockaddr_in *)sa)->sin_port =
                    htons((uint16_t)res->port);
            } else {
                ((struct sockaddr_in6 *)sa)->sin6_port =
                    htons((uint16_t)res->port);
            }
            p->fails = 0;
            upstream_zone_forget(res->u, res->first + i);
            sock_addr_text(sa, res->names[i], SOCK_ADDR_TEXT_MAX);
        }
        p->down = false;
    }
}


/* Stores res's slots as the latest answer, for the other workers. */
static void
upstream_share(struct upstream_resolve *res)
{
    const struct balance_peer *peers = res->u->bal.peers + res->first;
    struct upstream_shared *sh;

    if (res->shared == NULL || shm_lock(res->shared, NULL) == SHM_LOCK_FAILED) {
        return;
    }
    sh = (struct upstream_shared *)res->shared->data;
    sh->naddrs = 0;
    for (size_t i = 0; i < res->nslots && !peers[i].down; i++) {
        memcpy(&sh->addrs[i], &peers[i].addr, sizeof(sh->addrs[i]));
        sh->addrlens[i] = peers[i].addrlen;
        sh->naddrs++;
    }
    sh->version++;
    shm_unlock(res->shared);
}


/*
 * Starts res from the latest answer any worker stored (this generation's
 * or, after a reload, the one before), if there is one.
 */
static void
upstream_seed(struct upstream_resolve *res)
{
    struct upstream_shared copy;
    enum shm_lock_rc rc;

    if (res->shared == NULL) {
        return;
    }
    rc = shm_lock(res->shared, NULL);
    if (rc == SHM_LOCK_FAILED) {
        return;
    }
    if (rc == SHM_LOCKED_HOLDER_DIED) {
        /* A writer died half-way: forget the answer. */
        memset(res->shared->data, 0, res->shared->data_len);
    }
    memcpy(&copy, res->shared->data, sizeof(copy));
    shm_unlock(res->shared);
    if (copy.version > 0 && copy.naddrs <= res->nslots) {
        upstream_apply(res, copy.addrs, copy.addrlens, copy.naddrs);
    }
}


static void
upstream_resolve_timer(struct loop_timer *t)
{
    struct upstream_resolve *res = t->data;
    const struct resolver_result *rr;

    if (res->resolver->r == NULL) {
        return;
    }
    rr = resolver_lookup(res->resolver->r, res->host, strlen(res->host),
                         &res->wait, upstream_resolved, res);
    if (rr != NULL) {
        upstream_resolved(res, rr);
    }
}


void
upstream_resolve_start(struct stream_conf *conf, struct loop *l)
{
    upstream_loop = l;
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            upstream_seed(r);
            upstream_resolve_timer(&r->timer);
        }
    }
}


void
upstream_resolve_stop(struct stream_conf *conf)
{
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            resolver_cancel(&r->wait);
            if (upstream_loop != NULL) {
                loop_timer_cancel(upstream_loop, &r->timer);
            }
        }
    }
}


void
upstream_take_resolved(struct stream_conf *conf, struct stream_conf *old)
{
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        const struct stream_upstream *ou =
            upstream_find(old, u->name, strlen(u->name));

        if (ou == NULL) {
            continue;
        }
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            for (struct upstream_resolve *o = ou->resolves; o != NULL;
                 o = o->next) {
                /* The port may change: the answer's addresses get the
                 * new server's port when applied. */
                if (o->shared != NULL && strcmp(o->host, r->host) == 0) {
                    shm_zone_free(r->shared);
                    r->shared = o->shared;
                    o->shared = NULL;
                    break;
                }
            }
        }
    }
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
