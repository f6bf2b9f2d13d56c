/* SPDX-License-Identifier: MIT */
/*
 * Preread: reads the client's first bytes into a buffer that grows only as
 * the hello does (4k first, doubling up to preread_buffer_size) and feeds
 * each new piece to the pure ClientHello parser, which never re-reads what
 * it has seen. Then the server is chosen by the name (server_name) and the
 * session goes on to its next phase; every byte read goes upstream first.
 *
 * The deadline is absolute from accept (a byte now and then does not extend
 * it). On expiry the session closes without an upstream, logged 200 as
 * nginx does; a full buffer closes it with 400.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "event/loop.h"
#include "log/errlog.h"
#include "proto/http_head.h"
#include "proto/tls_hello.h"
#include "stream/hostmatch.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/stats.h"


#define PREREAD_FIRST_SIZE 4096


static void preread_io(struct loop_io *io, uint32_t events);
static int preread_read(struct session *s);
static void preread_timer(struct loop_timer *t);
static int preread_done(struct session *s);
static int preread_feed(struct session *s, const unsigned char *data,
                        size_t len);
static enum preread_status preread_tls_status(enum tls_hello_rc rc,
                                              const struct tls_hello *h);
static enum preread_status preread_http_status(enum http_head_rc rc,
                                               const struct http_head *h);
static int preread_grow(struct session *s, size_t max);
static void preread_mark(struct session *s, enum preread_status status);


/*
 * PREREAD: with ssl_preread or http_preread on, reads until the parsers
 * are done; preread_io() moves the session on from there.
 */
enum phase_rc
preread_phase(struct session *s)
{
    if (!s->server->set.ssl_preread && !s->server->set.http_preread) {
        return PHASE_NEXT;
    }
    tls_hello_init(&s->hello);
    http_head_init(&s->http);
    s->client.fn = preread_io;
    s->timer.fn = preread_timer;
    if (session_timer_set(s, &s->timer, s->server->set.preread_timeout_ms) ==
        -1) {
        return PHASE_DONE;
    }
    /* Bytes that came with a PROXY protocol header are parsed first. */
    if (s->pre_len > 0 && preread_feed(s, s->pre_buf, s->pre_len)) {
        return preread_done(s) == 0 ? PHASE_NEXT : PHASE_DONE;
    }
    /*
     * A deferred listener (TCP_DEFER_ACCEPT) hands over connections whose
     * first bytes have come: read them now rather than after a round
     * through epoll (a whole hello then costs no epoll_ctl() at all).
     */
    if (s->listen->opts.deferred && !s->client.in_epoll) {
        switch (preread_read(s)) {
        case 1:
            return PHASE_NEXT;
        case -1:
            return PHASE_DONE;
        default:
            break;
        }
    }
    if (session_io_set(s, &s->client, LOOP_READ) == -1) {
        return PHASE_DONE;
    }
    return PHASE_AGAIN;
}


/* Sets how preread ended for the kinds still running. */
static void
preread_mark(struct session *s, enum preread_status status)
{
    if (s->server->set.ssl_preread && s->preread == PREREAD_NONE) {
        s->preread = status;
    }
    if (s->server->set.http_preread && s->http_preread == PREREAD_NONE) {
        s->http_preread = status;
    }
}


static int
preread_grow(struct session *s, size_t max)
{
    size_t cap = s->pre_cap == 0 ? PREREAD_FIRST_SIZE : s->pre_cap * 2;
    unsigned char *p;

    if (cap > max) {
        cap = max;
    }
    p = realloc(s->pre_buf, cap);
    if (p == NULL) {
        return -1;
    }
    s->pre_buf = p;
    s->pre_cap = cap;
    return 0;
}


static void
preread_io(struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;

    (void)events;
    if (preread_read(s) == 1) {
        session_phase_next(s);
    }
}


/*
 * Reads what the client has sent and feeds it to the parsers. Returns 1
 * when preread is over (the server is picked), 0 when more bytes are
 * needed, -1 once s is finalized.
 */
static int
preread_read(struct session *s)
{
    struct loop_io *const io = &s->client;
    const size_t max = (size_t)s->server->set.preread_buffer_size;

    /* Bounded by max: each round reads at least one byte or returns. */
    for (;;) {
        ssize_t n;

        if (s->pre_len == s->pre_cap) {
            if (s->pre_cap >= max) {
                session_log(s, ERRLOG_ERR, "preread buffer full");
                preread_mark(s, PREREAD_TOO_LARGE);
                session_finalize(s, 400);
                return -1;
            }
            if (preread_grow(s, max) == -1) {
                session_fail(s, "realloc()");
                return -1;
            }
        }
        n = recv(io->fd, s->pre_buf + s->pre_len, s->pre_cap - s->pre_len, 0);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return 0;
            }
            session_log(s, ERRLOG_INFO, "recv() failed (%d: %s)", errno,
                        strerror(errno));
            preread_mark(s, PREREAD_MALFORMED);
            session_finalize(s, 200);
            return -1;
        }
        if (n == 0) {
            /* nginx closes such a session with 200 and no upstream. */
            session_log(s, ERRLOG_INFO, "client closed connection");
            preread_mark(s, PREREAD_MALFORMED);
            session_finalize(s, 200);
            return -1;
        }
        s->bytes_received += (uint64_t)n;
        const int over = preread_feed(s, s->pre_buf + s->pre_len, (size_t)n);
        s->pre_len += (size_t)n;
        if (over) {
            return preread_done(s) == 0 ? 1 : -1;
        }
    }
}


/* Status of a finished HTTP head, in $ssl_preread_status's words. */
static enum preread_status
preread_http_status(enum http_head_rc rc, const struct http_head *h)
{
    switch (rc) {
    case HTTP_HEAD_DONE:
        return h->has_host ? PREREAD_OK : PREREAD_NO_SNI;
    case HTTP_HEAD_NOT_HTTP:
        return PREREAD_NOT_TLS;
    case HTTP_HEAD_MALFORMED:
        return PREREAD_MALFORMED;
    case HTTP_HEAD_NEED_MORE:
        break;
    }
    return PREREAD_NONE;
}


static enum preread_status
preread_tls_status(enum tls_hello_rc rc, const struct tls_hello *h)
{
    switch (rc) {
    case TLS_HELLO_DONE:
        return h->has_sni ? PREREAD_OK : PREREAD_NO_SNI;
    case TLS_HELLO_NOT_TLS:
        return PREREAD_NOT_TLS;
    case TLS_HELLO_MALFORMED:
        return PREREAD_MALFORMED;
    case TLS_HELLO_NEED_MORE:
        break;
    }
    return PREREAD_NONE;
}


/*
 * Feeds new bytes to the parsers the server enabled. Both may be on: the
 * first bytes tell TLS from HTTP, so one of them gives up at once. Returns
 * 1 when preread is over, 0 when more bytes are needed.
 */
static int
preread_feed(struct session *s, const unsigned char *data, size_t len)
{
    const struct stream_settings *set = &s->server->set;
    bool tls_open = false;
    bool http_open = false;

    if (set->ssl_preread && s->preread == PREREAD_NONE) {
        const enum tls_hello_rc rc = tls_hello_feed(&s->hello, data, len);
        s->preread = preread_tls_status(rc, &s->hello);
        tls_open = s->preread == PREREAD_NONE;
        if (rc == TLS_HELLO_MALFORMED) {
            session_log(s, ERRLOG_INFO, "malformed ClientHello: %s",
                        s->hello.reason);
        }
    }
    if (set->http_preread && s->http_preread == PREREAD_NONE) {
        const enum http_head_rc rc = http_head_feed(&s->http, data, len);
        s->http_preread = preread_http_status(rc, &s->http);
        http_open = s->http_preread == PREREAD_NONE;
        if (rc == HTTP_HEAD_MALFORMED) {
            session_log(s, ERRLOG_INFO, "malformed HTTP request head: %s",
                        s->http.reason);
        }
    }
    if (s->preread == PREREAD_OK || s->preread == PREREAD_NO_SNI ||
        s->http_preread == PREREAD_OK || s->http_preread == PREREAD_NO_SNI) {
        return 1; /* one protocol recognised: the other does not matter */
    }
    return tls_open || http_open ? 0 : 1;
}


/*
 * Preread is over: stops reading and picks the server by the name. Returns
 * 0, or -1 after finalizing s.
 */
static int
preread_done(struct session *s)
{
    const char *name = NULL;
    size_t len = 0;

    /*
     * The client stays watched: the next handler that waits (proxy_pass)
     * wants its reads too, and every one before it runs now, so leaving
     * the interest as it is saves an epoll_ctl() to remove it and one to
     * add it back.
     */
    loop_timer_cancel(s->loop, &s->timer);
    stats_preread(s);
    if (s->preread == PREREAD_OK) {
        name = s->hello.server_name;
        len = s->hello.server_name_len;
    } else if (s->http_preread == PREREAD_OK) {
        name = s->http.host;
        len = s->http.host_len;
    }
    /* nginx 1.25.5: the preread name picks among the listen's servers. */
    if (name != NULL && s->listen->names != NULL) {
        struct stream_server *srv =
            hostmatch_find(s->listen->names, name, len, NULL);
        if (srv != NULL) {
            s->server = srv;
        }
    }
    return 0;
}


static void
preread_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    session_log(s, ERRLOG_INFO, "preread timed out");
    preread_mark(s, PREREAD_TIMEOUT);
    session_finalize(s, 200);
}
