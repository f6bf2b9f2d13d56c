/* SPDX-License-Identifier: MIT */
/*
 * Preread: reads the client's first bytes into a buffer that grows only as
 * the hello does (4k first, doubling up to preread_buffer_size) and feeds
 * each new piece to the pure ClientHello parser, which never re-reads what
 * it has seen. Then the server is chosen by the name (server_name) and the
 * session goes on to proxy_pass; every byte read goes upstream first.
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
#include "proto/tls_hello.h"
#include "stream/hostmatch.h"
#include "stream/session.h"
#include "stream/stream.h"


#define PREREAD_FIRST_SIZE 4096


static void preread_io(struct loop_io *io, uint32_t events);
static void preread_timer(struct loop_timer *t);
static void preread_done(struct session *s, enum preread_status status);
static int preread_grow(struct session *s, size_t max);


void
preread_start(struct session *s)
{
    s->action = "prereading client data";
    tls_hello_init(&s->hello);
    s->client.fn = preread_io;
    s->timer.fn = preread_timer;
    loop_timer_set(s->loop, &s->timer, s->server->set.preread_timeout_ms);
    if (loop_io_set(s->loop, &s->client, LOOP_READ) == -1) {
        session_log(s, ERRLOG_ALERT, errno, "epoll_ctl() failed (%d: %s)",
                    errno, strerror(errno));
        session_finalize(s, 500);
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
    const size_t max = (size_t)s->server->set.preread_buffer_size;

    (void)events;
    /* Bounded by max: each round reads at least one byte or returns. */
    for (;;) {
        enum tls_hello_rc rc;
        ssize_t n;

        if (s->pre_len == s->pre_cap) {
            if (s->pre_cap >= max) {
                session_log(s, ERRLOG_ERR, 0, "preread buffer full");
                s->preread = PREREAD_TOO_LARGE;
                session_finalize(s, 400);
                return;
            }
            if (preread_grow(s, max) == -1) {
                session_finalize(s, 500);
                return;
            }
        }
        n = recv(io->fd, s->pre_buf + s->pre_len, s->pre_cap - s->pre_len, 0);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            session_log(s, ERRLOG_INFO, errno, "recv() failed (%d: %s)",
                        errno, strerror(errno));
            s->preread = PREREAD_MALFORMED;
            session_finalize(s, 200);
            return;
        }
        if (n == 0) {
            /* nginx closes such a session with 200 and no upstream. */
            session_log(s, ERRLOG_INFO, 0, "client closed connection");
            s->preread = PREREAD_MALFORMED;
            session_finalize(s, 200);
            return;
        }
        s->bytes_received += (uint64_t)n;
        rc = tls_hello_feed(&s->hello, s->pre_buf + s->pre_len, (size_t)n);
        s->pre_len += (size_t)n;
        switch (rc) {
        case TLS_HELLO_NEED_MORE:
            continue;
        case TLS_HELLO_DONE:
            preread_done(s, s->hello.has_sni ? PREREAD_OK : PREREAD_NO_SNI);
            return;
        case TLS_HELLO_NOT_TLS:
            preread_done(s, PREREAD_NOT_TLS);
            return;
        case TLS_HELLO_MALFORMED:
            session_log(s, ERRLOG_INFO, 0, "malformed ClientHello: %s",
                        s->hello.reason);
            preread_done(s, PREREAD_MALFORMED);
            return;
        }
    }
}


static void
preread_done(struct session *s, enum preread_status status)
{
    s->preread = status;
    loop_timer_cancel(s->loop, &s->timer);
    if (loop_io_set(s->loop, &s->client, 0) == -1) {
        session_finalize(s, 500);
        return;
    }
    if (status == PREREAD_OK && s->listen->names != NULL) {
        struct stream_server *srv =
            hostmatch_find(s->listen->names, s->hello.server_name,
                           s->hello.server_name_len, NULL);
        if (srv != NULL) {
            s->server = srv;
        }
    }
    proxy_start(s);
}


static void
preread_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    session_log(s, ERRLOG_INFO, ETIMEDOUT, "preread timed out");
    s->preread = PREREAD_TIMEOUT;
    session_finalize(s, 200);
}
