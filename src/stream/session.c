/* SPDX-License-Identifier: MIT */
/*
 * Accepting sessions, moving them through the phase table and ending them.
 *
 * The order of a session's steps lives in session_phases[] alone, as nginx's
 * ngx_stream_core_run_phases(): each handler returns PHASE_NEXT (go on),
 * PHASE_AGAIN (it waits for an event, and its completion calls
 * session_phase_next()) or PHASE_DONE (the session is finalized, or the
 * handler keeps it until it ends). No handler calls another by name. A
 * handler with nothing to do for the session's server returns PHASE_NEXT.
 *
 * session_finalize() is the one exit: access log, timer, sockets, buffers,
 * then the object itself after the loop's current batch (events already
 * fetched for it are skipped).
 */

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "stream/limit_conn.h"
#include "stream/log.h"
#include "stream/proxy.h"
#include "stream/realip.h"
#include "stream/session.h"
#include "stream/set.h"
#include "stream/stats.h"
#include "stream/stream.h"


#define SESSION_ACCEPT_BATCH 64     /* accepts per wake-up, for fairness */
#define SESSION_ACCEPT_PAUSE_MS 100 /* after EMFILE/ENFILE */
#define SESSION_EMFILE_LOG_MS 1000  /* at most one such line a second */

/*
 * Giving memory back after a burst: once at most a quarter of the peak
 * number of sessions (at least SESSION_TRIM_MIN) is left, the idle relay
 * buffers are freed and malloc_trim() returns the free pages, a second
 * later (the sessions ending together are freed first, in one go).
 * Blocks of SESSION_MMAP_THRESHOLD bytes and more (grown preread buffers,
 * large proxy_buffer_size) come from mmap(), so they go back when freed.
 */
#define SESSION_TRIM_MIN 256
#define SESSION_TRIM_DELAY_MS 1000
#define SESSION_MMAP_THRESHOLD (32 * 1024)


/* One row of the phase table. */
struct session_phase_handler {
    enum session_phase phase;
    const char *action; /* "while ..." in error-log lines (nginx's texts) */
    session_phase_fn fn;
};


static void session_accept(struct loop_io *io, uint32_t events);
static void session_free(void *data);
static void session_resume_timer(struct loop_timer *t);
static void session_pause(void);
static void session_resume(void);
static void session_resume_later(void);
static void session_trim_timer(struct loop_timer *t);


/*
 * nginx's order. Within PREACCESS, set runs before limit_conn (nginx runs a
 * phase's handlers in reverse module order, and the set module comes after
 * limit_conn), so a limit_conn_zone key may use a `set` variable. deny_if,
 * our extension, decides once preread has set the names and chosen the
 * server. CONTENT is return or proxy_pass; proxy_pass is three steps, each
 * waiting for its event: route (and DNS), connect (next upstream on
 * failure), relay.
 */
static const struct session_phase_handler session_phases[] = {
    {SESSION_PHASE_POST_ACCEPT, "reading PROXY protocol", realip_phase},
    {SESSION_PHASE_PREACCESS, "initializing session", set_phase},
    {SESSION_PHASE_PREACCESS, "initializing session", limit_conn_phase},
    {SESSION_PHASE_ACCESS, "initializing session", access_phase},
    {SESSION_PHASE_PREREAD, "prereading client data", preread_phase},
    {SESSION_PHASE_PREREAD, "prereading client data", access_deny_if_phase},
    {SESSION_PHASE_CONTENT, "serving status", status_phase},
    {SESSION_PHASE_CONTENT, "returning text", return_phase},
    {SESSION_PHASE_CONTENT, "connecting to upstream", proxy_phase},
    {SESSION_PHASE_CONTENT, "connecting to upstream", proxy_connect_phase},
    {SESSION_PHASE_CONTENT, "proxying connection", relay_phase},
};

#define SESSION_NPHASES (sizeof(session_phases) / sizeof(session_phases[0]))

static uint64_t session_next_id = 1;
static uint64_t session_alive;
static struct session *session_list; /* live sessions, newest first */

/* Accepting, for the whole process. */
static struct loop *session_loop;
static struct stream_conf *session_conf; /* listeners being served */
static uint64_t session_max;             /* from worker_connections */
static bool session_paused;              /* at the limit, or EMFILE */
static bool session_accepting;           /* false once draining */
static bool session_draining;            /* stopped accepting for good */
static struct loop_timer session_resume_t;
static int64_t session_emfile_logged_ms;
static uint64_t session_peak; /* most sessions alive since the last trim */
static struct loop_timer session_trim_t;
static void (*session_idle_fn)(void *);
static void *session_idle_data;


uint64_t
session_count(void)
{
    return session_alive;
}


int
session_serve(struct loop *l, struct stream_conf *conf, uint64_t max)
{
    session_loop = l;
    session_conf = conf;
    session_max = max > 0 ? max : 1;
    session_paused = false;
    session_accepting = true;
    session_draining = false;
    loop_timer_init(&session_resume_t, session_resume_timer, NULL);
    loop_timer_init(&session_trim_t, session_trim_timer, NULL);
    session_peak = 0;
    if (mallopt(M_MMAP_THRESHOLD, SESSION_MMAP_THRESHOLD) != 1) {
        errlog_write(NULL, ERRLOG_NOTICE, 0,
                     "mallopt(M_MMAP_THRESHOLD) failed: large buffers stay "
                     "in the heap");
    }
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        loop_io_init(&ls->io, ls->fd, session_accept, ls);
        /* Shared sockets wake one worker; reuseport ones are ours alone. */
        if (loop_io_set(l, &ls->io,
                        LOOP_READ | (ls->nfds > 1 ? 0 : LOOP_EXCLUSIVE)) ==
            -1) {
            return -1;
        }
    }
    return 0;
}


bool
session_is_draining(void)
{
    return session_draining;
}


void
session_stop_accepting(void)
{
    session_accepting = false;
    session_draining = true;
    /* relay_drain() may end s (and unlink it): take the next one first. */
    for (struct session *s = session_list, *next; s != NULL; s = next) {
        next = s->next;
        relay_drain(s);
    }
    loop_timer_cancel(session_loop, &session_resume_t);
    for (struct stream_listen *ls = session_conf->listens; ls != NULL;
         ls = ls->next) {
        if (ls->io.fd >= 0) {
            loop_io_del(session_loop, &ls->io);
        }
    }
}


void
session_on_idle(void (*fn)(void *), void *data)
{
    session_idle_fn = fn;
    session_idle_data = data;
}


/*
 * Stops asking for connections: no busy loop at a limit. Every listener is
 * set each time (a no-op for those already out), since a resume may have
 * brought back only some of them.
 */
static void
session_pause(void)
{
    session_paused = true;
    for (struct stream_listen *ls = session_conf->listens; ls != NULL;
         ls = ls->next) {
        if (ls->io.fd >= 0 && loop_io_set(session_loop, &ls->io, 0) == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "epoll_ctl() failed (%d: %s) while pausing "
                         "listener %s",
                         errno, strerror(errno), ls->text);
        }
    }
}


/*
 * Listens again. A listener that cannot be put back leaves the process
 * paused: every session end tries again, and so does the resume timer.
 */
static void
session_resume(void)
{
    bool is_resumed = true;

    if (!session_paused || !session_accepting || session_alive >= session_max) {
        return;
    }
    session_paused = false;
    loop_timer_cancel(session_loop, &session_resume_t);
    for (struct stream_listen *ls = session_conf->listens; ls != NULL;
         ls = ls->next) {
        if (ls->io.fd >= 0 &&
            loop_io_set(session_loop, &ls->io,
                        LOOP_READ | (ls->nfds > 1 ? 0 : LOOP_EXCLUSIVE)) ==
                -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "epoll_ctl() failed (%d: %s) while resuming "
                         "listener %s",
                         errno, strerror(errno), ls->text);
            is_resumed = false;
        }
    }
    if (!is_resumed) {
        session_paused = true;
        session_resume_later();
    }
}


/*
 * Arms the resume timer. It can fail only when the timer heap must grow,
 * that is with as many timers armed as it ever held: sessions hold all
 * but a few, and each session end resumes too, so accepting never stays
 * paused for want of the timer.
 */
static void
session_resume_later(void)
{
    if (loop_timer_set(session_loop, &session_resume_t,
                       SESSION_ACCEPT_PAUSE_MS) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "adding a timer failed (%d: %s): accepting resumes "
                     "when a session ends",
                     errno, strerror(errno));
    }
}


static void
session_resume_timer(struct loop_timer *t)
{
    (void)t;
    session_resume();
}


static void
session_accept(struct loop_io *io, uint32_t events)
{
    struct stream_listen *ls = io->data;

    (void)events;
    for (int i = 0; i < SESSION_ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer = {0}; /* an unbound unix peer: "unix:" */
        socklen_t peer_len = sizeof(peer);
        socklen_t local_len = sizeof(struct sockaddr_in6);
        struct session *s;
        int fd;

        if (session_alive >= session_max) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "%llu worker_connections are "
                         "not enough: not accepting until sessions end",
                         (unsigned long long)session_max * 2);
            session_pause();
            return;
        }
        fd = accept4(io->fd, (struct sockaddr *)&peer, &peer_len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                const int64_t now = clock_now_ms();
                if (now - session_emfile_logged_ms >= SESSION_EMFILE_LOG_MS) {
                    session_emfile_logged_ms = now;
                    errlog_write(NULL, ERRLOG_CRIT, 0,
                                 "accept4() failed (%d: %s)", errno,
                                 strerror(errno));
                }
                /* Until a session ends, or a while has passed. */
                session_pause();
                session_resume_later();
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
        if (session_alive > session_peak) {
            session_peak = session_alive;
        }
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
        s->start_ms = clock_now_ms();
        s->status = 200;
        loop_io_init(&s->client, fd, NULL, s);
        loop_io_init(&s->upstream, -1, NULL, s);
        loop_timer_init(&s->timer, NULL, s);
        s->action = "initializing session";
        stats_session_start(s);
        metrics_set(METRIC_WORKER_SESSIONS, session_alive);
        /*
         * $server_addr and the PROXY header we send need it. A listener
         * on one address (or a unix path) tells it: getsockname() only
         * for a wildcard one.
         */
        s->local_addr = (const struct sockaddr *)&ls->addr;
        if (sock_addr_is_wildcard(s->local_addr)) {
            s->local_addr = (const struct sockaddr *)&s->local_in;
            if (getsockname(fd, (struct sockaddr *)&s->local_in, &local_len) ==
                -1) {
                session_fail(s, "getsockname()");
                continue;
            }
        }
        if (errlog_enabled(s->server->set.errlog, ERRLOG_INFO)) {
            char text[SOCK_ADDR_TEXT_MAX];

            /* nginx's line, before any context is known. */
            errlog_write(s->server->set.errlog, ERRLOG_INFO, s->id,
                         "client %s connected to %s",
                         sock_addr_text((struct sockaddr *)&peer, text,
                                        sizeof(text)),
                         ls->text);
        }
        /* Inherited from the listener (core_listener_options()). */
        s->client_nodelay = ls->opts.nodelay;
        s->phase_handler = 0;
        session_run_phases(s);
    }
}


void
session_run_phases(struct session *s)
{
    /* Bounded by the table: each round moves one row on or returns. */
    while (s->phase != SESSION_PHASE_CLOSED &&
           s->phase_handler < SESSION_NPHASES) {
        const struct session_phase_handler *h =
            &session_phases[s->phase_handler];
        enum phase_rc rc;

        s->phase = h->phase;
        s->action = h->action;
        rc = h->fn(s);
        if (rc != PHASE_NEXT) {
            return;
        }
        s->phase_handler++;
    }
    /* The last handler (relay) never says NEXT: reaching here is a bug. */
    BUG_ON(s->phase != SESSION_PHASE_CLOSED);
}


void
session_phase_next(struct session *s)
{
    if (s->phase == SESSION_PHASE_CLOSED) {
        return;
    }
    s->phase_handler++;
    session_run_phases(s);
}


void
session_finalize(struct session *s, int status)
{
    if (s->phase == SESSION_PHASE_CLOSED) {
        return;
    }
    if (s->phase == SESSION_PHASE_CONTENT && (s->c2u.eof || s->u2c.eof)) {
        /* nginx's info line; "client" also when both sides sent FIN. */
        session_log(s, ERRLOG_INFO,
                    "%s disconnected, bytes from/to client:%llu/%llu, "
                    "bytes from/to upstream:%llu/%llu",
                    s->u2c.eof && !s->c2u.eof ? "upstream" : "client",
                    (unsigned long long)s->bytes_received,
                    (unsigned long long)s->bytes_sent,
                    (unsigned long long)s->upstream_bytes_received,
                    (unsigned long long)s->upstream_bytes_sent);
    }
    s->status = status;
    stats_session_end(s);
    s->phase = SESSION_PHASE_CLOSED;
    proxy_release(s);
    s->peer = NULL;
    log_session(s);
    limit_conn_release(s);
    loop_timer_cancel(s->loop, &s->timer);
    /* close() takes each socket out of epoll: no epoll_ctl() needed. */
    loop_io_close(&s->client);
    loop_io_close(&s->upstream);
    if (s->target != NULL) {
        resolver_cancel(&s->target->rwait);
        if (s->bal == &s->target->single_bal) {
            balance_free(&s->target->single_bal);
        }
    }
    free(s->dyn_peers);
    s->dyn_peers = NULL;
    free(s->target);
    s->target = NULL;
    free(s->try);
    s->try = NULL;
    free(s->names);
    s->names = NULL;
    free(s->realip_addr);
    s->realip_addr = NULL;
    free(s->upstream_addrs);
    s->upstream_addrs = NULL;
    free(s->connect_times);
    s->connect_times = NULL;
    preread_release(s);
    free(s->pre_buf);
    s->pre_buf = NULL;
    free(s->pp);
    s->pp = NULL;
    free(s->ret_buf);
    s->ret_buf = NULL;
    free(s->req);
    s->req = NULL;
    set_release(s);
    relay_release(s);
    session_alive--;
    metrics_set(METRIC_WORKER_SESSIONS, session_alive);
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        session_list = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    if (session_paused) {
        session_resume();
    }
    if (session_peak >= SESSION_TRIM_MIN && session_alive <= session_peak / 4 &&
        !loop_timer_armed(&session_trim_t) &&
        loop_timer_set(s->loop, &session_trim_t, SESSION_TRIM_DELAY_MS) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "adding a timer failed (%d: %s): memory is given back "
                     "after the next burst",
                     errno, strerror(errno));
    }
    if (session_alive == 0 && session_idle_fn != NULL) {
        session_idle_fn(session_idle_data);
    }
    if (loop_defer(s->loop, session_free, s) == -1) {
        /* Nothing can still point at s after its ios are gone but the
         * current batch; leaking one object beats a use-after-free. */
        errlog_write(NULL, ERRLOG_ALERT, s->id, "session leaked");
    }
}


void
session_fail(struct session *s, const char *what)
{
    const int err = errno;

    session_log(s, ERRLOG_ALERT, "%s failed (%d: %s)", what, err,
                strerror(err));
    session_finalize(s, 500);
}


int
session_timer_set(struct session *s, struct loop_timer *t, int64_t delay_ms)
{
    if (loop_timer_set(s->loop, t, delay_ms) == -1) {
        session_fail(s, "adding a timer");
        return -1;
    }
    return 0;
}


int
session_io_set(struct session *s, struct loop_io *io, uint32_t mask)
{
    if (loop_io_set(s->loop, io, mask) == -1) {
        session_fail(s, "epoll_ctl()");
        return -1;
    }
    return 0;
}


void
session_close_all(void)
{
    /* Each finalize unlinks the head, so this ends. */
    while (session_list != NULL) {
        if (session_list->m_end == STATS_END_UNSET) {
            session_list->m_end = STATS_END_SHUTDOWN;
        }
        session_finalize(session_list, session_list->status);
    }
}


static void
session_free(void *data)
{
    free(data);
}


/*
 * A burst is over: frees the idle relay buffers, shrinks the event loop's
 * arrays and gives the heap's free pages back to the kernel (malloc_trim(0)
 * also releases pages in the middle of the heap, with madvise()). A new burst
 * that started meanwhile trims when it ends instead.
 */
static void
session_trim_timer(struct loop_timer *t)
{
    (void)t;
    if (session_alive > session_peak / 4) {
        return;
    }
    relay_pool_trim();
    loop_shrink(session_loop);
    malloc_trim(0);
    session_peak = session_alive;
}


void
session_log(struct session *s, enum errlog_level level, const char *fmt, ...)
{
    struct errlog *log = s->server->set.errlog;
    char msg[1024];
    char client[SOCK_ADDR_TEXT_MAX];
    char upstream[SOCK_ADDR_TEXT_MAX + 32] = "";
    va_list ap;

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
    } else if (s->up != NULL) {
        /* No server chosen (yet, or none live): the group, as nginx. */
        snprintf(upstream, sizeof(upstream), ", upstream: \"%s\"",
                 s->up->name);
    }
    errlog_write(log, level, s->id, "%s while %s, client: %s, server: %s%s",
                 msg, s->action, client, s->listen->text, upstream);
}
