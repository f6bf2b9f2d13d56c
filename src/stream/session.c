/* SPDX-License-Identifier: MIT */
/*
 * Accepting sessions and ending them. session_finalize() is the one exit:
 * access log, timer, sockets, buffers, then the object itself after the
 * loop's current batch (events already fetched for it are skipped).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "stream/access.h"
#include "stream/log.h"
#include "stream/session.h"
#include "stream/stream.h"


#define SESSION_ACCEPT_BATCH 64     /* accepts per wake-up, for fairness */
#define SESSION_ACCEPT_PAUSE_MS 100 /* after EMFILE/ENFILE */


static void session_accept(struct loop_io *io, uint32_t events);
static void session_free(void *data);
static void session_resume_accept(struct loop_timer *t);


static uint64_t session_next_id = 1;
static uint64_t session_alive;
static struct session *session_list; /* live sessions, newest first */


uint64_t
session_count(void)
{
    return session_alive;
}


int
session_listen_start(struct loop *l, struct stream_listen *ls)
{
    struct loop_timer *pause = calloc(1, sizeof(*pause));

    if (pause == NULL) {
        return -1;
    }
    loop_timer_init(pause, session_resume_accept, ls);
    loop_io_init(&ls->io, ls->fd, session_accept, pause);
    ls->io.data = pause;
    return loop_io_set(l, &ls->io, LOOP_READ);
}


void
session_listen_stop(struct loop *l, struct stream_listen *ls)
{
    struct loop_timer *pause = ls->io.data;

    if (ls->io.fd >= 0) {
        loop_io_del(l, &ls->io);
    }
    if (pause != NULL) {
        loop_timer_cancel(l, pause);
        free(pause);
        ls->io.data = NULL;
    }
}


/* The loop the listeners run on; one per process. */
static struct loop *session_loop;


static void
session_resume_accept(struct loop_timer *t)
{
    struct stream_listen *ls = t->data;

    if (ls->io.fd >= 0) {
        loop_io_set(session_loop, &ls->io, LOOP_READ);
    }
}


static void
session_accept(struct loop_io *io, uint32_t events)
{
    struct loop_timer *pause = io->data;
    struct stream_listen *ls = pause->data;

    (void)events;
    for (int i = 0; i < SESSION_ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        socklen_t local_len = sizeof(peer);
        struct session *s;
        const int fd = accept4(io->fd, (struct sockaddr *)&peer, &peer_len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE) {
                /* Stop asking until sessions end: no busy loop. */
                errlog_write(NULL, ERRLOG_CRIT, 0, "accept4() failed (%d: %s)",
                             errno, strerror(errno));
                loop_io_set(session_loop, io, 0);
                loop_timer_set(session_loop, pause, SESSION_ACCEPT_PAUSE_MS);
            }
            return;
        }
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            errlog_write(NULL, ERRLOG_ALERT, 0, "session allocation failed");
            close(fd);
            continue;
        }
        s->id = session_next_id++;
        session_alive++;
        s->next = session_list;
        if (session_list != NULL) {
            session_list->prev = s;
        }
        session_list = s;
        s->loop = session_loop;
        s->listen = ls;
        s->server = ls->default_server;
        s->conf = ls->conf;
        s->client_addr = peer;
        getsockname(fd, (struct sockaddr *)&s->local_addr, &local_len);
        s->start_ms = clock_now_ms();
        s->status = 200;
        loop_io_init(&s->client, fd, NULL, s);
        loop_io_init(&s->upstream, -1, NULL, s);
        loop_timer_init(&s->timer, NULL, s);
        s->action = "accepting";
        if (s->server->set.tcp_nodelay) {
            sock_nodelay(fd);
        }
        if (s->server->set.ssl_preread || s->server->set.http_preread) {
            preread_start(s);
        } else if (access_check(s)) {
            proxy_start(s);
        }
    }
}


void
session_set_loop(struct loop *l)
{
    session_loop = l;
}


void
session_finalize(struct session *s, int status)
{
    if (s->state == SESSION_CLOSED) {
        return;
    }
    s->state = SESSION_CLOSED;
    s->status = status;
    if (s->peer != NULL) {
        balance_done(s->bal, s->peer, false, clock_now_ms());
        s->peer = NULL;
    }
    log_session(s);
    loop_timer_cancel(s->loop, &s->timer);
    if (s->client.fd >= 0) {
        const int fd = s->client.fd;
        loop_io_del(s->loop, &s->client);
        close(fd);
    }
    if (s->upstream.fd >= 0) {
        const int fd = s->upstream.fd;
        loop_io_del(s->loop, &s->upstream);
        close(fd);
    }
    resolver_cancel(&s->rwait);
    if (s->bal == &s->single_bal) {
        balance_free(&s->single_bal);
    }
    free(s->dyn_peers);
    s->dyn_peers = NULL;
    free(s->pre_buf);
    s->pre_buf = NULL;
    free(s->c2u.buf);
    s->c2u.buf = NULL;
    free(s->u2c.buf);
    s->u2c.buf = NULL;
    session_alive--;
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        session_list = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    if (loop_defer(s->loop, session_free, s) == -1) {
        /* Nothing can still point at s after its ios are gone but the
         * current batch; leaking one object beats a use-after-free. */
        errlog_write(NULL, ERRLOG_ALERT, s->id, "session leaked");
    }
}


void
session_close_all(void)
{
    /* Each finalize unlinks the head, so this ends. */
    while (session_list != NULL) {
        session_finalize(session_list, session_list->status);
    }
}


static void
session_free(void *data)
{
    free(data);
}


void
session_log(struct session *s, enum errlog_level level, int err,
            const char *fmt, ...)
{
    struct errlog *log = s->server->set.errlog;
    char msg[1024];
    char client[SOCK_ADDR_TEXT_MAX];
    char upstream[SOCK_ADDR_TEXT_MAX + 32] = "";
    va_list ap;

    (void)err;
    if (!errlog_enabled(log, level)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sock_addr_host((struct sockaddr *)&s->client_addr, client, sizeof(client));
    if (s->peer != NULL) {
        snprintf(upstream, sizeof(upstream), ", upstream: \"%s\"",
                 s->peer->name);
    }
    errlog_write(log, level, s->id, "%s while %s, client: %s, server: %s%s",
                 msg, s->action, client, s->listen->text, upstream);
}
