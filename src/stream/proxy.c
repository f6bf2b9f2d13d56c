/* SPDX-License-Identifier: MIT */
/*
 * proxy_pass and the connect phase. A fixed proxy_pass names an upstream{}
 * or an address (an implicit upstream); one with variables is evaluated per
 * session and then names an upstream{} or a literal address. A name that
 * would need DNS fails with 500 ("no resolver defined"), as nginx does
 * without a resolver.
 *
 * Connect failures and timeouts move to the next server while
 * proxy_next_upstream, _tries and _timeout allow; then 502.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/units.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "proto/hostname.h"
#include "stream/core.h"
#include "stream/guard.h"
#include "stream/proxy.h"
#include "stream/resolve.h"
#include "stream/session.h"
#include "stream/stats.h"
#include "stream/stream.h"
#include "stream/upstream.h"
#include "stream/upstream/balance.h"
#include "stream/upstream_zone.h"
#include "stream/vars.h"


/* Longest $upstream_addr and $upstream_connect_time texts kept, NUL
 * included. */
#define PROXY_ADDRS_MAX 160
#define PROXY_TIMES_MAX 64


static void proxy_connect_next(struct session *s);
static void proxy_connect_io(struct loop_io *io, uint32_t events);
static void proxy_connect_timer(struct loop_timer *t);
static void proxy_failed(struct session *s, int err, const char *what);
static void proxy_note(struct session *s, char **dst, size_t cap,
                       const char *text);
static int proxy_choose(struct session *s);
static int proxy_use_peers(struct session *s, struct balance_peer *peers,
                           size_t n);
static int proxy_name(struct session *s, const char *value, size_t len);
static int proxy_unix(struct session *s, const char *value, size_t len);
static void proxy_refuse(struct session *s, int status, const char *fmt,
                         const char *value, size_t len);
static bool proxy_is_loop(struct session *s, const struct sockaddr *sa);
static bool proxy_peer_is_resolved(const struct session *s,
                                   const struct balance_peer *p);
static void proxy_log_value(struct session *s, const char *fmt,
                            const char *value, size_t len);
static bool proxy_local(struct session *s, struct sockaddr_storage *local,
                        socklen_t *len, char *text, size_t cap);
static int proxy_open(struct session *s, const struct balance_peer *p);
static void proxy_client_io(struct loop_io *io, uint32_t events);


const char *
proxy_pass_set(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_server *srv = st->server;
    char err[256];

    (void)cmd;
    (void)conf;
    if (srv->pass_kind != PASS_NONE) {
        return "is duplicate";
    }
    srv->pass_text = n->args[1];
    srv->pass_line = n->line;
    if (strchr(n->args[1], '$') != NULL) {
        if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]),
                         vars_resolve, st->conf, &srv->pass_value, err,
                         sizeof(err)) != NULL) {
            return conf_msg(cf, "%s", err);
        }
        srv->pass_kind = PASS_VALUE;
        return NULL;
    }
    /* The upstream{} it names may come later: resolved in proxy_finish. */
    srv->pass_kind = PASS_UPSTREAM;
    return NULL;
}


const char *
proxy_finish(struct conf_ctx *cf, struct stream_conf *conf,
             struct stream_server *srv)
{
    const char *msg;
    const char *text = srv->pass_text;

    if (srv->pass_kind != PASS_UPSTREAM || srv->pass_upstream != NULL) {
        return NULL;
    }
    srv->pass_upstream = upstream_find(conf, text, strlen(text));
    if (srv->pass_upstream != NULL) {
        return NULL;
    }
    srv->pass_upstream =
        upstream_implicit(cf, conf, text, srv->file, srv->pass_line, &msg);
    if (srv->pass_upstream == NULL) {
        char why[sizeof(cf->msg)];
        /* msg may be conf_msg()'s own buffer: copy it before reuse. */
        snprintf(why, sizeof(why), "%s", msg);
        return conf_msg(cf, "%s in %s:%u", why, srv->file, srv->pass_line);
    }
    return NULL;
}


/*
 * Appends ", text" (or text) to a log list such as $upstream_addr, a
 * malloc'd string (*dst, NULL when empty) of at most cap - 1 bytes: the
 * common one-try session holds just its one entry.
 */
static void
proxy_note(struct session *s, char **dst, size_t cap, const char *text)
{
    const size_t len = *dst != NULL ? strlen(*dst) : 0;
    size_t want = len + (len ? 2 : 0) + strlen(text) + 1;
    char *p;

    if (len + 1 >= cap) {
        return; /* full: cut, as the fixed buffers were */
    }
    if (want > cap) {
        want = cap;
    }
    p = realloc(*dst, want);
    if (p == NULL) {
        session_log(s, ERRLOG_ALERT,
                    "realloc() failed (%d: %s): \"%s\" is left out of the "
                    "log",
                    errno, strerror(errno), text);
        return;
    }
    snprintf(p + len, want - len, "%s%s", len ? ", " : "", text);
    *dst = p;
}


/*
 * Picks the upstream for s: the fixed one, or the evaluated value. Returns
 * 0, or -1 after finalizing s.
 */
static int
proxy_choose(struct session *s)
{
    const struct stream_server *srv = s->server;
    bool client_colon = false;
    const char *value;
    size_t len;

    if (srv->pass_kind == PASS_UPSTREAM) {
        s->up = srv->pass_upstream;
        s->bal = &s->up->bal;
        stats_route(s);
        return 0;
    }
    vars_reset();
    s->m_map_route = METRICS_NO_SERIES;
    value = vars_eval_client(s, &srv->pass_value, &len, &client_colon);
    stats_route(s);
    if (value == NULL || len == 0) {
        session_log(s, ERRLOG_ERR, "empty proxy_pass value \"%s\"",
                    srv->pass_text);
        session_finalize(s, 500);
        return -1;
    }
    s->up = upstream_find(s->conf, value, len);
    /*
     * A client-chosen value names only upstream{} blocks: an implicit
     * upstream is an address some fixed proxy_pass wrote, and reaching it
     * by its text would skip the literal, SSRF and loop checks below.
     */
    if (s->up != NULL && s->up->implicit && srv->pass_is_client) {
        s->up = NULL;
    }
    if (s->up != NULL && s->up->build == NULL) {
        s->bal = &s->up->bal;
        return 0;
    }
    s->up = NULL;
    s->target = calloc(1, sizeof(*s->target));
    if (s->target == NULL) {
        session_fail(s, "calloc()");
        return -1;
    }
    if (value[0] == ':') {
        proxy_refuse(s, srv->pass_is_client ? 403 : 500,
                     "no host in upstream \"%s\"", value, len);
        return -1;
    }
    if (sock_is_unix(value, len)) {
        return proxy_unix(s, value, len);
    }
    if (sock_parse_peer(value, len, &s->target->single_peer.addr,
                        &s->target->single_peer.addrlen) == 0) {
        if (srv->pass_is_client) {
            /* A client could name any address: only names are taken. */
            stats_guard(STATS_GUARD_IP_LITERAL);
            proxy_refuse(s, 403,
                         "the client-supplied value \"%s\" is an "
                         "address, not a name",
                         value, len);
            return -1;
        }
        balance_peer_defaults(&s->target->single_peer);
        sock_addr_text((struct sockaddr *)&s->target->single_peer.addr,
                       s->target->single_name, sizeof(s->target->single_name));
        s->target->single_peer.name = s->target->single_name;
        return proxy_use_peers(s, &s->target->single_peer, 1);
    }
    /*
     * A ':' from the client would give it the port: the text after the
     * last ':' (an address or a unix path was refused above).
     */
    if (srv->pass_is_client && client_colon) {
        proxy_refuse(s, 403,
                     "the client-supplied value \"%s\" has a \":\" where "
                     "only a name may be",
                     value, len);
        return -1;
    }
    return proxy_name(s, value, len);
}


/*
 * value is "unix:PATH". Only the config may name a unix-domain socket: a
 * value that can carry a name the client chose never does, whatever it
 * holds (no SNI or Host may reach a local socket). 0, or -1 after
 * finalizing s.
 */
static int
proxy_unix(struct session *s, const char *value, size_t len)
{
    const char *why = NULL;

    if (s->server->pass_is_client) {
        proxy_refuse(s, 403,
                     "the client-supplied value \"%s\" names a unix-domain "
                     "socket",
                     value, len);
        return -1;
    }
    if (sock_parse_unix(value, len, &s->target->single_peer.addr,
                        &s->target->single_peer.addrlen, &why) == -1) {
        proxy_refuse(s, 500,
                     len == 5 ? "no path in the unix domain socket in "
                                "upstream \"%s\""
                              : "too long path in the unix domain socket in "
                                "upstream \"%s\"",
                     value, len);
        return -1;
    }
    balance_peer_defaults(&s->target->single_peer);
    sock_addr_text((struct sockaddr *)&s->target->single_peer.addr,
                   s->target->single_name, sizeof(s->target->single_name));
    s->target->single_peer.name = s->target->single_name;
    return proxy_use_peers(s, &s->target->single_peer, 1);
}


/*
 * Logs why s is refused, with the value (which may hold client bytes)
 * escaped and cut, and ends s with status.
 */
static void
proxy_refuse(struct session *s, int status, const char *fmt, const char *value,
             size_t len)
{
    char shown[512];
    const size_t n = str_escape(shown, sizeof(shown) - 1, value,
                                len > 120 ? 120 : len, STR_ESCAPE_DEFAULT);

    shown[n < sizeof(shown) - 1 ? n : sizeof(shown) - 1] = '\0';
    session_log(s, ERRLOG_ERR, fmt, shown);
    session_finalize(s, status);
}


/* Balances over peers (owned by s) as a one-off upstream. 0 or -1. */
static int
proxy_use_peers(struct session *s, struct balance_peer *peers, size_t n)
{
    s->target->single_bal.method = BALANCE_RR;
    s->target->single_bal.peers = peers;
    s->target->single_bal.npeers = n;
    const char *const err = balance_init(&s->target->single_bal);

    if (err != NULL) {
        session_log(s, ERRLOG_ALERT, "balancer set-up failed: %s", err);
        session_finalize(s, 500);
        return -1;
    }
    s->bal = &s->target->single_bal;
    return 0;
}


/*
 * value is "name:port": validates the name (it may come from the client),
 * then resolves it; the port is the config's, after the last ':'.
 * Returns 1 when resolution is under way, -1 after finalizing s.
 */
static int
proxy_name(struct session *s, const char *value, size_t len)
{
    const bool is_client = s->server->pass_is_client;
    const char *colon = memrchr(value, ':', len);
    const char *reason = NULL;
    size_t name_len = 0;
    int port;

    if (colon == NULL) {
        proxy_refuse(s, 500, "no port in upstream \"%s\"", value, len);
        return -1;
    }
    if (units_parse_int(colon + 1, len - (size_t)(colon + 1 - value), &port) ==
            -1 ||
        port < 1 || port > 65535) {
        proxy_refuse(s, 500, "invalid port in upstream \"%s\"", value, len);
        return -1;
    }
    switch (hostname_normalize(value, (size_t)(colon - value), s->target->name,
                               sizeof(s->target->name), &name_len, &reason)) {
    case HOSTNAME_OK:
        break;
    case HOSTNAME_IP_LITERAL:
        if (is_client) {
            stats_guard(STATS_GUARD_IP_LITERAL);
        }
        proxy_refuse(s, is_client ? 403 : 500,
                     "\"%s\" is an address in a form that is never "
                     "resolved",
                     value, len);
        return -1;
    case HOSTNAME_INVALID:
        proxy_refuse(s, is_client ? 403 : 500, "invalid host name in \"%s\"",
                     value, len);
        return -1;
    }
    s->target->port = port;
    resolve_start(s);
    return 1;
}


void
proxy_resolved(struct session *s, const struct resolver_result *res)
{
    const struct stream_settings *set = &s->server->set;
    size_t n = 0;
    unsigned loops = 0;

    s->dyn_peers =
        calloc(res->naddrs, sizeof(*s->dyn_peers) + SOCK_ADDR_TEXT_MAX);
    if (s->dyn_peers == NULL) {
        session_fail(s, "calloc()");
        return;
    }
    char(*names)[SOCK_ADDR_TEXT_MAX] = (void *)(s->dyn_peers + res->naddrs);
    for (size_t i = 0; i < res->naddrs; i++) {
        struct balance_peer *p = &s->dyn_peers[n];
        struct sockaddr *sa = (struct sockaddr *)&p->addr;
        const char *why;

        balance_peer_defaults(p);
        memcpy(&p->addr, &res->addrs[i], res->addrlens[i]);
        p->addrlen = res->addrlens[i];
        if (sa->sa_family == AF_INET) {
            ((struct sockaddr_in *)sa)->sin_port =
                htons((uint16_t)s->target->port);
        } else {
            ((struct sockaddr_in6 *)sa)->sin6_port =
                htons((uint16_t)s->target->port);
        }
        sock_addr_text(sa, names[n], SOCK_ADDR_TEXT_MAX);
        p->name = names[n];
        /* The loop guard is for names a client chose, as the SSRF one:
         * a name the config fixes may chain to our own listener. */
        if (s->server->pass_is_client && proxy_is_loop(s, sa)) {
            session_log(s, ERRLOG_ERR,
                        "forwarding loop: %s resolved to "
                        "%s, which is this proxy",
                        s->target->name, p->name);
            loops++;
            continue;
        }
        why = s->server->pass_is_client
                  ? guard_ssrf_reason(sa, set->target_allow, set->ntarget_allow)
                  : NULL;
        if (why != NULL) {
            session_log(s, ERRLOG_ERR,
                        "%s resolved to %s, a %s address: "
                        "denied",
                        s->target->name, p->name, why);
            continue;
        }
        n++;
    }
    if (n == 0) {
        stats_guard(loops > 0 ? STATS_GUARD_LOOP : STATS_GUARD_SSRF);
        session_finalize(s, loops > 0 ? 502 : 403);
        return;
    }
    if (proxy_use_peers(s, s->dyn_peers, n) == -1) {
        return;
    }
    session_phase_next(s);
}


/*
 * CONTENT, first step of proxy_pass: picks the upstream; a name is
 * resolved first, and proxy_resolved() moves the session on.
 */
enum phase_rc
proxy_phase(struct session *s)
{
    /* Until the relay takes the client over: notice it leaving. */
    s->client.fn = proxy_client_io;
    if (session_io_set(s, &s->client, LOOP_READ) == -1) {
        return PHASE_DONE;
    }
    switch (proxy_choose(s)) {
    case 0:
        return PHASE_NEXT;
    case 1:
        return PHASE_AGAIN;
    default:
        return PHASE_DONE; /* finalized */
    }
}


/* Whether client bytes are subject to proxy_upload_rate (a variable may). */
static bool
proxy_upload_limited(const struct session *s)
{
    const struct stream_rate *r = s->server->set.upload_rate;

    return r != NULL && (r->value.has_vars || r->bytes > 0);
}


/*
 * The client's socket while its name is resolved and its upstream
 * connected (nginx does not watch it then, and a client that left kept
 * its descriptors until the lookup or connect timed out). A reset, or a
 * FIN with proxy_half_close off, ends the session now. With
 * proxy_half_close on a FIN is a half-close (preread, if any, is over: the
 * whole hello was read): the relay passes it on once connected. Bytes the
 * client sends meanwhile are kept after the preread ones (the relay sends
 * them first), up to proxy_buffer_size; beyond that, watching stops (the
 * socket is level-triggered) until the relay reads again.
 */
static void
proxy_client_io(struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    const size_t max = (size_t)s->server->set.proxy_buffer_size;
    ssize_t n;

    if (proxy_upload_limited(s)) {
        /*
         * Bytes read now would skip proxy_upload_rate (the relay counts
         * them only once it runs): look, do not take. Waiting data is the
         * relay's, FIN or not; with none, a FIN or reset is handled below.
         */
        unsigned char c;

        n = recv(io->fd, &c, 1, MSG_PEEK);
        if (n > 0) {
            session_io_set(s, &s->client, 0);
            return;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                        errno == EINTR)) {
            return;
        }
        goto gone;
    }
    (void)events;
    for (;;) {
        if (s->pre_len == s->pre_cap) {
            size_t cap = s->pre_cap == 0 ? 4096 : s->pre_cap * 2;
            unsigned char *p;

            if (cap > max) {
                cap = max;
            }
            if (cap <= s->pre_cap) {
                /* Full: the rest waits in the socket for the relay. */
                session_io_set(s, &s->client, 0);
                return;
            }
            p = realloc(s->pre_buf, cap);
            if (p == NULL) {
                session_fail(s, "realloc()");
                return;
            }
            s->pre_buf = p;
            s->pre_cap = cap;
        }
        n = recv(io->fd, s->pre_buf + s->pre_len, s->pre_cap - s->pre_len, 0);
        if (n > 0) {
            s->pre_len += (size_t)n;
            s->bytes_received += (uint64_t)n;
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        break;
    }
gone:
    if (n == 0 && s->server->set.proxy_half_close) {
        /* The FIN stays readable: the relay passes it on. */
        session_io_set(s, &s->client, 0);
        return;
    }
    if (n == 0) {
        session_log(s, ERRLOG_INFO, "client closed connection");
    } else {
        session_log(s, ERRLOG_INFO, "recv() failed (%d: %s)", errno,
                    strerror(errno));
    }
    session_finalize(s, 200);
}


/*
 * CONTENT, second step: connects to a server of the upstream, moving on to
 * the next on failure; proxy_connect_io() moves a connected session on.
 */
enum phase_rc
proxy_connect_phase(struct session *s)
{
    char key[1024];
    size_t key_len = 0;

    if (s->up != NULL && s->up->hash_key.nparts > 0) {
        vars_reset();
        key_len = vars_render(s, &s->up->hash_key, false, STR_ESCAPE_NONE, key,
                              sizeof(key));
    }
    s->try = malloc(sizeof(*s->try));
    if (s->try == NULL) {
        session_fail(s, "malloc()");
        return PHASE_DONE;
    }
    balance_try_init(s->bal, s->try, key, key_len);
    s->upstream_start_ms = clock_now_ms();
    proxy_connect_next(s);
    return PHASE_AGAIN; /* or finalized: the engine stops either way */
}


static void
proxy_connect_next(struct session *s)
{
    const struct stream_settings *set = &s->server->set;
    const int64_t now = clock_now_ms();

    for (;;) {
        struct balance_peer *p;
        int fd;

        if (s->tries > 0 &&
            (!set->proxy_next_upstream ||
             (set->proxy_next_upstream_tries > 0 &&
              s->tries >= (unsigned)set->proxy_next_upstream_tries) ||
             (set->proxy_next_upstream_timeout_ms > 0 &&
              now - s->upstream_start_ms >=
                  set->proxy_next_upstream_timeout_ms))) {
            session_finalize(s, 502);
            return;
        }
        p = upstream_peer_pick(s->up, s->bal, s->try, now, &s->peer_shared);
        if (p == NULL) {
            if (s->tries == 0) {
                session_log(s, ERRLOG_ERR, "no live upstreams");
                /* nginx: $upstream_addr then names the upstream. */
                if (s->up != NULL && s->bal == &s->up->bal) {
                    proxy_note(s, &s->upstream_addrs, PROXY_ADDRS_MAX,
                               s->up->name);
                }
            }
            session_finalize(s, 502);
            return;
        }
        s->peer = p;
        s->peer_held = true;
        s->tries++;
        s->connect_start_ms = now;
        stats_try(s);
        proxy_note(s, &s->upstream_addrs, PROXY_ADDRS_MAX, p->name);
        if (guard_client_unix(s->server->pass_is_client && s->up == NULL,
                              (struct sockaddr *)&p->addr)) {
            /* proxy_unix() refused it already: never reached. */
            session_log(s, ERRLOG_ERR,
                        "%s: a client-chosen value never names a "
                        "unix-domain socket",
                        p->name);
            session_finalize(s, 403);
            return;
        }
        if (proxy_peer_is_resolved(s, p) &&
            proxy_is_loop(s, (struct sockaddr *)&p->addr)) {
            session_log(s, ERRLOG_ERR, "forwarding loop: %s is this proxy",
                        p->name);
            stats_guard(STATS_GUARD_LOOP);
            proxy_note(s, &s->connect_times, PROXY_TIMES_MAX, "-");
            proxy_release(s);
            s->peer = NULL;
            continue;
        }
        fd = proxy_open(s, p);
        if (fd == -2) {
            return; /* finalized */
        }
        if (fd == -1) {
            proxy_failed(s, errno, "connect()");
            continue;
        }
        loop_io_init(&s->upstream, fd, proxy_connect_io, s);
        stats_fds(1);
        if (loop_io_set(s->loop, &s->upstream, LOOP_WRITE) == -1) {
            stats_fds(-1);
            close(fd);
            s->upstream.fd = -1;
            proxy_failed(s, errno, "epoll_ctl()");
            continue;
        }
        s->timer.fn = proxy_connect_timer;
        /* Without its deadline the attempt could wait for ever: fail. */
        session_timer_set(s, &s->timer, set->proxy_connect_timeout_ms);
        return;
    }
}


/*
 * guard_is_loop() for a peer of s. A route lookup that failed leaves the
 * answer to the addresses found at start: that is logged, at most once a
 * minute per worker (under EMFILE every lookup fails).
 */
static bool
proxy_is_loop(struct session *s, const struct sockaddr *sa)
{
    static int64_t warned_ms = -1;
    int err = 0;
    const bool loop = guard_is_loop(sa, &err);
    const int64_t now = clock_now_ms();

    if (err != 0 && (warned_ms < 0 || now - warned_ms >= 60000)) {
        warned_ms = now;
        session_log(s, ERRLOG_WARN,
                    "route lookup failed (%d: %s): forwarding loops are "
                    "told by the addresses this host had at start only",
                    err, strerror(err));
    }
    return loop;
}


/*
 * True when p's address came from DNS at run time: a name a client chose
 * in a proxy_pass value, or an upstream `resolve` server. Only those are
 * loop-checked here: an address written in the config (an upstream{} server, a
 * fixed proxy_pass, a literal from a value no client chooses) may name one of
 * our own listeners, since chaining servers is legitimate (nginx allows
 * it); the loop guard is for names the config does not fix.
 */
static bool
proxy_peer_is_resolved(const struct session *s, const struct balance_peer *p)
{
    if (s->target != NULL && s->bal == &s->target->single_bal &&
        s->bal->peers == s->dyn_peers) {
        return s->server->pass_is_client;
    }
    return s->up != NULL && upstream_peer_is_resolved(s->up, p);
}


/*
 * Records a failed attempt on the current peer and closes its socket; the
 * caller moves on. The client sees the same close whatever the reason.
 */
static void
proxy_failed(struct session *s, int err, const char *what)
{
    if (err == ETIMEDOUT && what == NULL) {
        session_log(s, ERRLOG_ERR,
                    "upstream timed out (110: Connection timed out)");
    } else {
        session_log(s, ERRLOG_ERR, "%s failed (%d: %s)", what, err,
                    strerror(err));
    }
    proxy_note(s, &s->connect_times, PROXY_TIMES_MAX, "-");
    upstream_peer_failed(s->up, s->bal, s->peer, clock_now_ms(),
                         s->peer_shared);
    stats_failed(s, err);
    s->peer_held = false;
    s->peer = NULL;
    if (s->upstream.fd >= 0) {
        stats_fds(-1);
    }
    loop_io_close(&s->upstream);
}


static void
proxy_connect_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    proxy_failed(s, ETIMEDOUT, NULL);
    proxy_connect_next(s);
}


static void
proxy_connect_io(struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    /*
     * A connect that failed is reported with EPOLLERR, and EPOLLHUP (the
     * socket is closed): only then is SO_ERROR worth a system call.
     */
    const int err = events & (LOOP_ERROR | LOOP_HUP) ? sock_error(io->fd) : 0;
    char took[32];

    if (err != 0) {
        loop_timer_cancel(s->loop, &s->timer);
        proxy_failed(s, err, "connect()");
        proxy_connect_next(s);
        return;
    }
    loop_timer_cancel(s->loop, &s->timer);
    free(s->try); /* no next upstream from here on */
    s->try = NULL;
    s->connected_ms = clock_now_ms();
    snprintf(took, sizeof(took), "%lld.%03lld",
             (long long)((s->connected_ms - s->connect_start_ms) / 1000),
             (long long)((s->connected_ms - s->connect_start_ms) % 1000));
    proxy_note(s, &s->connect_times, PROXY_TIMES_MAX, took);
    upstream_peer_connected(s->up, s->bal, s->peer);
    stats_connected(s);
    /*
     * tcp_nodelay as nginx's proxy module, on both sockets, with the
     * server that preread picked (proxy_open() set the upstream's): the
     * listener's default server set the client's at accept, and may have
     * said otherwise.
     */
    if ((s->server->set.tcp_nodelay != 0) != s->client_nodelay) {
        sock_nodelay_set(s->client.fd, s->server->set.tcp_nodelay);
        s->client_nodelay = s->server->set.tcp_nodelay != 0;
    }
    session_phase_next(s);
}


void
proxy_release(struct session *s)
{
    stats_released(s);
    if (s->peer != NULL && s->peer_held) {
        upstream_peer_release(s->up, s->bal, s->peer, s->peer_shared);
        s->peer_held = false;
    }
}


/*
 * proxy_upload_rate / proxy_download_rate RATE: a size ("1k") or a value
 * with variables, evaluated once per session (nginx's
 * ngx_stream_set_complex_value_size_slot).
 */
const char *
proxy_rate_set(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_rate **field =
        (struct stream_rate **)((char *)conf + cmd->offset);
    struct stream_rate *r;
    const char *v = n->args[1];
    char err[256];
    int64_t bytes;

    if (*field != NULL) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    r = arena_alloc(cf->arena, sizeof(*r));
    if (r == NULL) {
        return "memory allocation failed";
    }
    memset(r, 0, sizeof(*r));
    if (tmpl_compile(cf->arena, v, strlen(v), vars_resolve, st->conf, &r->value,
                     err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    if (!r->value.has_vars) {
        if (units_parse_size(v, strlen(v), &bytes) == -1) {
            return conf_msg(cf, "\"%s\" directive invalid value", n->args[0]);
        }
        r->bytes = (uint64_t)bytes;
    }
    *field = r;
    return NULL;
}


uint64_t
proxy_rate_eval(struct session *s, const struct stream_rate *r)
{
    const char *value;
    size_t len;
    int64_t bytes;

    if (r == NULL) {
        return 0;
    }
    if (!r->value.has_vars) {
        return r->bytes;
    }
    vars_reset();
    value = vars_eval(s, &r->value, &len);
    if (value == NULL) {
        return 0;
    }
    if (units_parse_size(value, len, &bytes) == -1) {
        proxy_log_value(s, "invalid size \"%s\"", value, len);
        return 0;
    }
    return (uint64_t)bytes;
}


/*
 * proxy_bind ADDRESS [transparent] | VALUE | off: the source address of
 * upstream connections (nginx's ngx_stream_proxy_bind).
 */
const char *
proxy_bind_set(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_settings *set = conf;
    struct stream_bind *b;
    const char *v = n->args[1];
    char err[256];

    (void)cmd;
    if (set->proxy_bind != NULL) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    b = arena_alloc(cf->arena, sizeof(*b));
    if (b == NULL) {
        return "memory allocation failed";
    }
    memset(b, 0, sizeof(*b));
    set->proxy_bind = b;
    if (n->nargs == 2 && strcmp(v, "off") == 0) {
        b->off = true;
        return NULL;
    }
    b->text = v;
    if (tmpl_compile(cf->arena, v, strlen(v), vars_resolve, st->conf, &b->value,
                     err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    if (!b->value.has_vars &&
        sock_parse_local(v, strlen(v), &b->addr, &b->addrlen) == -1) {
        return conf_msg(cf, "invalid address \"%s\"", v);
    }
    if (n->nargs > 2) {
        if (strcmp(n->args[2], "transparent") != 0) {
            return conf_msg(cf, "invalid parameter \"%s\"", n->args[2]);
        }
        /*
         * nginx accepts it and then fails every connection; we refuse a
         * config that cannot work: without CAP_NET_RAW or CAP_NET_ADMIN
         * the workers cannot set IP_TRANSPARENT (workers that switch to
         * `user` keep CAP_NET_RAW, see process/worker.c).
         */
        const int family = b->value.has_vars ? AF_INET : b->addr.ss_family;
        const int perr = sock_transparent_probe(family);
        if (perr != 0) {
            return conf_msg(cf,
                            "\"proxy_bind ... transparent\" cannot work: "
                            "setsockopt(%s) failed (%d: %s); it needs "
                            "CAP_NET_RAW or CAP_NET_ADMIN (run as root)",
                            family == AF_INET6 ? "IPV6_TRANSPARENT"
                                               : "IP_TRANSPARENT",
                            perr, strerror(perr));
        }
        b->transparent = true;
        st->conf->transparent = true;
    }
    return NULL;
}


/*
 * The source address for s's upstream connections into *local (its text
 * into text, cap bytes): true, or false for none. A value that is empty
 * means none; one that is not an address is logged and means none too
 * (nginx's ngx_stream_proxy_set_local).
 */
static bool
proxy_local(struct session *s, struct sockaddr_storage *local, socklen_t *len,
            char *text, size_t cap)
{
    const struct stream_bind *b = s->server->set.proxy_bind;
    const char *value;
    size_t vlen;

    if (b == NULL || b->off) {
        return false;
    }
    if (!b->value.has_vars) {
        memcpy(local, &b->addr, sizeof(*local));
        *len = b->addrlen;
        snprintf(text, cap, "%s", b->text);
        return true;
    }
    vars_reset();
    value = vars_eval(s, &b->value, &vlen);
    if (value == NULL || vlen == 0) {
        return false;
    }
    if (vlen >= cap || sock_parse_local(value, vlen, local, len) == -1) {
        proxy_log_value(s, "invalid local address \"%s\"", value, vlen);
        return false;
    }
    memcpy(text, value, vlen);
    text[vlen] = '\0';
    return true;
}


/* Logs fmt with value (which may hold client bytes) escaped and cut. */
static void
proxy_log_value(struct session *s, const char *fmt, const char *value,
                size_t len)
{
    char shown[512];
    const size_t n = str_escape(shown, sizeof(shown) - 1, value,
                                len > 120 ? 120 : len, STR_ESCAPE_DEFAULT);

    shown[n < sizeof(shown) - 1 ? n : sizeof(shown) - 1] = '\0';
    session_log(s, ERRLOG_ERR, fmt, shown);
}


/*
 * Opens a connection to p, from proxy_bind's address if there is one.
 * Returns the fd, -1 (errno set) when connect() failed, or -2 after
 * finalizing s when the socket could not be prepared (bind() failed: 500,
 * as nginx, which does not try the next server then).
 */
static int
proxy_open(struct session *s, const struct balance_peer *p)
{
    const struct stream_bind *b = s->server->set.proxy_bind;
    struct sockaddr_storage local;
    socklen_t local_len = 0;
    char text[SOCK_ADDR_TEXT_MAX + 8];
    const char *failed = NULL;
    int fd;

    /* Set before connect(): on at once, and no system call afterwards. */
    const unsigned flags =
        (s->server->set.tcp_nodelay ? SOCK_CONNECT_NODELAY : 0) |
        (s->server->set.proxy_socket_keepalive ? SOCK_CONNECT_KEEPALIVE : 0);

    if (!proxy_local(s, &local, &local_len, text, sizeof(text))) {
        return sock_connect((const struct sockaddr *)&p->addr, p->addrlen,
                            flags);
    }
    fd = sock_connect_from((const struct sockaddr *)&p->addr, p->addrlen,
                           (const struct sockaddr *)&local, local_len,
                           b->transparent, flags, &failed);
    if (fd == -1 && failed != NULL) {
        const int err = errno;
        if (strcmp(failed, "bind") == 0) {
            session_log(s, ERRLOG_CRIT, "bind(%s) failed (%d: %s)", text, err,
                        strerror(err));
        } else {
            session_log(s, ERRLOG_ALERT, "%s failed (%d: %s)", failed, err,
                        strerror(err));
        }
        proxy_note(s, &s->connect_times, PROXY_TIMES_MAX, "-");
        session_finalize(s, 500);
        return -2;
    }
    return fd;
}
