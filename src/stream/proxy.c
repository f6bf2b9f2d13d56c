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

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/clock.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "stream/balance.h"
#include "stream/core.h"
#include "stream/proxy.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/upstream.h"
#include "stream/vars.h"


static void proxy_connect_next(struct session *s);
static void proxy_connect_io(struct loop_io *io, uint32_t events);
static void proxy_connect_timer(struct loop_timer *t);
static void proxy_failed(struct session *s, int err, const char *what);
static void proxy_note(char *dst, size_t cap, const char *text);
static int proxy_choose(struct session *s);


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
    srv->pass_upstream = upstream_implicit(cf, conf, text, srv->file,
                                           srv->pass_line, &msg);
    if (srv->pass_upstream == NULL) {
        return conf_msg(cf, "%s in %s:%u", msg, srv->file, srv->pass_line);
    }
    return NULL;
}


/* Appends ", text" (or text) to a log list such as $upstream_addr. */
static void
proxy_note(char *dst, size_t cap, const char *text)
{
    const size_t len = strlen(dst);

    snprintf(dst + len, cap - len, "%s%s", len ? ", " : "", text);
}


/*
 * Picks the upstream for s: the fixed one, or the evaluated value. Returns
 * 0, or -1 after finalizing s.
 */
static int
proxy_choose(struct session *s)
{
    const struct stream_server *srv = s->server;
    const char *value;
    size_t len;

    if (srv->pass_kind == PASS_UPSTREAM) {
        s->up = srv->pass_upstream;
        s->bal = &s->up->bal;
        return 0;
    }
    vars_reset();
    value = vars_eval(s, &srv->pass_value, &len);
    if (value == NULL || len == 0) {
        session_log(s, ERRLOG_ERR, 0, "empty proxy_pass value \"%s\"",
                    srv->pass_text);
        session_finalize(s, 500);
        return -1;
    }
    s->up = upstream_find(s->conf, value, len);
    if (s->up != NULL && s->up->build == NULL) {
        s->bal = &s->up->bal;
        return 0;
    }
    s->up = NULL;
    if (sock_parse_addr(value, len, 0, &s->single_peer.addr,
                        &s->single_peer.addrlen) == 0) {
        balance_peer_defaults(&s->single_peer);
        sock_addr_text((struct sockaddr *)&s->single_peer.addr, s->single_name,
                       sizeof(s->single_name));
        s->single_peer.name = s->single_name;
        s->single_bal.method = BALANCE_RR;
        s->single_bal.peers = &s->single_peer;
        s->single_bal.npeers = 1;
        if (balance_init(&s->single_bal) != NULL) {
            session_finalize(s, 500);
            return -1;
        }
        s->bal = &s->single_bal;
        return 0;
    }
    {
        /* The value may hold client bytes: escaped, and cut. */
        char shown[512];
        const size_t n = str_escape(shown, sizeof(shown) - 1, value,
                                    len > 120 ? 120 : len, STR_ESCAPE_DEFAULT);
        shown[n < sizeof(shown) - 1 ? n : sizeof(shown) - 1] = '\0';
        if (memchr(value, ':', len) == NULL) {
            session_log(s, ERRLOG_ERR, 0, "no port in upstream \"%s\"",
                        shown);
        } else {
            session_log(s, ERRLOG_ERR, 0, "no resolver defined to resolve "
                        "\"%s\"", shown);
        }
    }
    session_finalize(s, 500);
    return -1;
}


void
proxy_start(struct session *s)
{
    char key[1024];
    size_t key_len = 0;

    s->action = "connecting to upstream";
    if (proxy_choose(s) == -1) {
        return;
    }
    if (s->up != NULL && s->up->hash_key.nparts > 0) {
        vars_reset();
        key_len = vars_render(s, &s->up->hash_key, false, STR_ESCAPE_NONE, key,
                              sizeof(key));
    }
    balance_try_init(s->bal, &s->try, key, key_len);
    s->upstream_start_ms = clock_now_ms();
    s->state = SESSION_CONNECT;
    proxy_connect_next(s);
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
        p = balance_pick(s->bal, &s->try, now);
        if (p == NULL) {
            if (s->tries == 0) {
                session_log(s, ERRLOG_ERR, 0, "no live upstreams");
            }
            session_finalize(s, 502);
            return;
        }
        s->peer = p;
        s->tries++;
        s->connect_start_ms = now;
        proxy_note(s->upstream_addrs, sizeof(s->upstream_addrs), p->name);
        fd = sock_connect((struct sockaddr *)&p->addr, p->addrlen);
        if (fd == -1) {
            proxy_failed(s, errno, "connect()");
            continue;
        }
        loop_io_init(&s->upstream, fd, proxy_connect_io, s);
        if (loop_io_set(s->loop, &s->upstream, LOOP_WRITE) == -1) {
            close(fd);
            s->upstream.fd = -1;
            proxy_failed(s, errno, "epoll_ctl()");
            continue;
        }
        s->timer.fn = proxy_connect_timer;
        loop_timer_set(s->loop, &s->timer, set->proxy_connect_timeout_ms);
        return;
    }
}


/*
 * Records a failed attempt on the current peer and closes its socket; the
 * caller moves on. The client sees the same close whatever the reason.
 */
static void
proxy_failed(struct session *s, int err, const char *what)
{
    if (err == ETIMEDOUT && what == NULL) {
        session_log(s, ERRLOG_ERR, ETIMEDOUT,
                    "upstream timed out (110: Connection timed out)");
    } else {
        session_log(s, ERRLOG_ERR, err, "%s failed (%d: %s)", what, err,
                    strerror(err));
    }
    proxy_note(s->connect_times, sizeof(s->connect_times), "-");
    balance_done(s->bal, s->peer, true, clock_now_ms());
    s->peer = NULL;
    if (s->upstream.fd >= 0) {
        const int fd = s->upstream.fd;
        loop_io_del(s->loop, &s->upstream);
        close(fd);
    }
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
    const int err = sock_error(io->fd);
    char took[32];

    (void)events;
    if (err != 0) {
        loop_timer_cancel(s->loop, &s->timer);
        proxy_failed(s, err, "connect()");
        proxy_connect_next(s);
        return;
    }
    loop_timer_cancel(s->loop, &s->timer);
    s->connected_ms = clock_now_ms();
    snprintf(took, sizeof(took), "%lld.%03lld",
             (long long)((s->connected_ms - s->connect_start_ms) / 1000),
             (long long)((s->connected_ms - s->connect_start_ms) % 1000));
    proxy_note(s->connect_times, sizeof(s->connect_times), took);
    if (s->server->set.tcp_nodelay) {
        sock_nodelay(io->fd);
    }
    relay_start(s);
}
