/* SPDX-License-Identifier: MIT */
/*
 * Preread: reads the client's first bytes into a buffer and feeds each new
 * piece to the pure ClientHello parser, which never re-reads what it has
 * seen. Then the server is chosen by the name (server_name) and the
 * session goes on to its next phase; every byte read goes upstream first.
 *
 * Memory is paid by the byte: the buffer is 4k first (most hellos fit);
 * past that it becomes one block of preread_buffer_size, which malloc()
 * maps (session.c sets its mmap threshold below 64k) so that only the
 * pages bytes were written into cost memory, and no copy is made again.
 * The parsers' state (about 1.8 KiB) lives only while preread runs.
 *
 * A per-worker budget (preread_budget) bounds the bytes all sessions in
 * preread hold at once: past it, the sessions holding the most are closed
 * first (503, logged at error), whoever's read went over.
 *
 * The deadline is absolute from accept (a byte now and then does not extend
 * it). On expiry the session closes without an upstream, logged 200 as
 * nginx does; a full buffer closes it with 400.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/bug.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "proto/http_head.h"
#include "proto/tls_hello.h"
#include "stream/hostmatch.h"
#include "stream/session.h"
#include "stream/stats.h"
#include "stream/stream.h"


#define PREREAD_FIRST_SIZE 4096


/*
 * A session's first read goes here, and its parsers start in the scratch
 * state: both are per worker, used by one session at a time (preread_park()
 * moves a session that waits out of them).
 */
static unsigned char preread_first[PREREAD_FIRST_SIZE];
static struct preread_parse preread_scratch;

/* Sessions holding preread bytes, newest first, and their bytes in all. */
static struct session *preread_list;
static uint64_t preread_held;


static void preread_io(struct loop_io *io, uint32_t events);
static int preread_read(struct session *s);
static int preread_park(struct session *s);
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
static int preread_keep(struct session *s);
static void preread_count(struct session *s, size_t n);
static int preread_enforce(struct session *s);


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
    tls_hello_init(&preread_scratch.hello);
    http_head_init(&preread_scratch.http);
    s->parse = &preread_scratch;
    s->client.fn = preread_io;
    s->timer.fn = preread_timer;
    if (session_timer_set(s, &s->timer, s->server->set.preread_timeout_ms) ==
        -1) {
        return PHASE_DONE;
    }
    /* Bytes that came with a PROXY protocol header are parsed first. */
    if (s->pre_len > 0) {
        if (preread_feed(s, s->pre_buf, s->pre_len)) {
            return preread_done(s) == 0 ? PHASE_NEXT : PHASE_DONE;
        }
        preread_count(s, s->pre_len);
        if (preread_enforce(s) == -1) {
            return PHASE_DONE;
        }
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
    if (preread_park(s) == -1 ||
        session_io_set(s, &s->client, LOOP_READ) == -1) {
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
    /* The session ends: the variables in its log line need the results. */
    if (preread_keep(s) == -1) {
        session_log(s, ERRLOG_ALERT,
                    "malloc() failed (%d: %s): the preread variables of this "
                    "session are empty",
                    errno, strerror(errno));
    }
}


/*
 * Preread is over: keeps what the parsers found in s->names (a block the
 * size of its strings) and frees their state. 0, or -1 with errno set
 * (s->names stays NULL: the variables read as empty).
 */
static int
preread_keep(struct session *s)
{
    struct preread_parse *const p = s->parse;

    if (p == NULL) {
        return 0;
    }
    const size_t sni_len =
        s->preread == PREREAD_OK ? p->hello.server_name_len : 0;
    const size_t alpn_len = s->preread != PREREAD_NONE ? p->hello.alpn_len : 0;
    const size_t host_len =
        s->http_preread == PREREAD_OK ? p->http.host_len : 0;
    struct preread_names *n =
        malloc(sizeof(*n) + sni_len + alpn_len + host_len + 3);

    if (n != NULL) {
        n->sni_len = sni_len;
        n->alpn_len = alpn_len;
        n->host_len = host_len;
        n->version = p->hello.version;
        n->has_ech = p->hello.has_ech;
        memcpy(n->text, p->hello.server_name, sni_len);
        n->text[sni_len] = '\0';
        memcpy(n->text + sni_len + 1, p->hello.alpn, alpn_len);
        n->text[sni_len + 1 + alpn_len] = '\0';
        memcpy(n->text + sni_len + alpn_len + 2, p->http.host, host_len);
        n->text[sni_len + alpn_len + 2 + host_len] = '\0';
    }
    if (p != &preread_scratch) {
        free(p);
    }
    s->parse = NULL;
    free(s->names);
    s->names = n;
    return n != NULL ? 0 : -1;
}


const char *
preread_sni(const struct session *s, size_t *len)
{
    *len = s->names != NULL ? s->names->sni_len : 0;
    return s->names != NULL ? s->names->text : "";
}


const char *
preread_alpn(const struct session *s, size_t *len)
{
    *len = s->names != NULL ? s->names->alpn_len : 0;
    return s->names != NULL ? s->names->text + s->names->sni_len + 1 : "";
}


const char *
preread_host(const struct session *s, size_t *len)
{
    const struct preread_names *n = s->names;

    *len = n != NULL ? n->host_len : 0;
    return n != NULL ? n->text + n->sni_len + n->alpn_len + 2 : "";
}


/*
 * 4k, then the whole preread_buffer_size at once: a block that large is
 * mapped, and its pages cost memory only once written.
 */
static int
preread_grow(struct session *s, size_t max)
{
    size_t cap = s->pre_cap < PREREAD_FIRST_SIZE ? PREREAD_FIRST_SIZE : max;
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
        const bool is_first = s->pre_buf == NULL;
        unsigned char *dst;
        size_t room;
        ssize_t n;

        if (is_first) {
            /* Into the worker's scratch: kept at its exact size below. */
            dst = preread_first;
            room = max < sizeof(preread_first) ? max : sizeof(preread_first);
        } else {
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
            dst = s->pre_buf + s->pre_len;
            room = s->pre_cap - s->pre_len;
        }
        n = recv(io->fd, dst, room, 0);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return preread_park(s);
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
        const int over = preread_feed(s, dst, (size_t)n);
        if (is_first) {
            /* A whole hello is kept at its size; a part of one in the
             * mapped buffer it grows into. */
            const size_t cap = over || max <= (size_t)n ? (size_t)n : max;
            s->pre_buf = malloc(cap);
            if (s->pre_buf == NULL) {
                session_fail(s, "malloc()");
                return -1;
            }
            memcpy(s->pre_buf, dst, (size_t)n);
            s->pre_cap = cap;
        }
        s->pre_len += (size_t)n;
        if (over) {
            return preread_done(s) == 0 ? 1 : -1;
        }
        preread_count(s, (size_t)n);
        if (preread_enforce(s) == -1) {
            return -1;
        }
    }
}


/*
 * The parsers run in the worker's scratch state first: a hello that comes
 * whole in one read never needs its own. One that waits for more moves
 * into a malloc'd copy here, before another session's preread may use the
 * scratch. Returns 0, or -1 once s is finalized.
 */
static int
preread_park(struct session *s)
{
    if (s->parse != &preread_scratch) {
        return 0;
    }
    s->parse = malloc(sizeof(*s->parse));
    if (s->parse == NULL) {
        session_fail(s, "malloc()");
        return -1;
    }
    *s->parse = preread_scratch;
    return 0;
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
        struct tls_hello *const h = &s->parse->hello;
        const enum tls_hello_rc rc = tls_hello_feed(h, data, len);
        s->preread = preread_tls_status(rc, h);
        tls_open = s->preread == PREREAD_NONE;
        if (rc == TLS_HELLO_MALFORMED) {
            session_log(s, ERRLOG_INFO, "malformed ClientHello: %s", h->reason);
        }
    }
    if (set->http_preread && s->http_preread == PREREAD_NONE) {
        struct http_head *const h = &s->parse->http;
        const enum http_head_rc rc = http_head_feed(h, data, len);
        s->http_preread = preread_http_status(rc, h);
        http_open = s->http_preread == PREREAD_NONE;
        if (rc == HTTP_HEAD_MALFORMED) {
            session_log(s, ERRLOG_INFO, "malformed HTTP request head: %s",
                        h->reason);
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
    if (preread_keep(s) == -1) {
        session_fail(s, "malloc()");
        return -1;
    }
    preread_release(s); /* its bytes go upstream now: no longer held */
    if (s->preread == PREREAD_OK) {
        name = preread_sni(s, &len);
    } else if (s->http_preread == PREREAD_OK) {
        name = preread_host(s, &len);
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


/* n more preread bytes held by s, counted against the budget. */
static void
preread_count(struct session *s, size_t n)
{
    if (!s->pre_listed) {
        s->pre_prev = NULL;
        s->pre_next = preread_list;
        if (preread_list != NULL) {
            preread_list->pre_prev = s;
        }
        preread_list = s;
        s->pre_listed = true;
    }
    s->pre_counted += n;
    preread_held += n;
}


void
preread_release(struct session *s)
{
    if (s->parse != &preread_scratch) {
        free(s->parse);
    }
    s->parse = NULL;
    if (!s->pre_listed) {
        return;
    }
    if (s->pre_prev != NULL) {
        s->pre_prev->pre_next = s->pre_next;
    } else {
        preread_list = s->pre_next;
    }
    if (s->pre_next != NULL) {
        s->pre_next->pre_prev = s->pre_prev;
    }
    s->pre_prev = NULL;
    s->pre_next = NULL;
    s->pre_listed = false;
    BUG_ON(preread_held < s->pre_counted);
    preread_held -= s->pre_counted;
    s->pre_counted = 0;
}


/*
 * Over the worker's preread_budget: closes the sessions holding the most
 * preread bytes, one by one, until the rest fit (s may be one of them).
 * Each session closed costs a scan of the sessions holding preread bytes
 * (only an attack makes that list long, and each scan frees the most it
 * can). Returns 0, or -1 once s itself was closed.
 */
static int
preread_enforce(struct session *s)
{
    const uint64_t budget = (uint64_t)s->conf->preread_budget;

    /* Bounded: each round closes one listed session, which unlists it. */
    while (preread_held > budget && preread_list != NULL) {
        struct session *victim = preread_list;

        for (struct session *v = preread_list->pre_next; v != NULL;
             v = v->pre_next) {
            if (v->pre_counted > victim->pre_counted) {
                victim = v;
            }
        }
        session_log(victim, ERRLOG_ERR,
                    "preread budget of %llu bytes exceeded, closing the "
                    "largest hello held: %zu bytes",
                    (unsigned long long)budget, victim->pre_counted);
        const bool is_self = victim == s;
        session_finalize(victim, 503);
        if (is_self) {
            return -1;
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
