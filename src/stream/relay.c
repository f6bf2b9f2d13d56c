/* SPDX-License-Identifier: MIT */
/*
 * The relay: two byte pumps, client -> upstream and upstream -> client.
 * Interest follows buffer state (sniproxy's rule): a side is read only while
 * the buffer toward the other side has room, and written only while bytes
 * wait for it, so a slow reader stops the fast writer and memory stays at
 * one buffer per direction.
 *
 * Zero-copy (proxy_splice on, our default): a bulk direction's bytes go
 * from one socket into a pipe and from the pipe to the other socket with
 * splice(), never through user space. A direction is bulk once a read
 * filled its buffer (HAProxy's splice-auto): short exchanges (a request, a
 * 1-byte ping-pong) stay on the copy, one recv() and one send(), cheaper
 * than two splice() calls and a pipe. The pipe comes from a per-worker
 * pool (net/pipe_pool.c) when the direction reads and goes back when it is
 * empty, as buffers do. The buffered copy stays for what splice cannot
 * carry or must not: the preread bytes and a PROXY header (already in a
 * buffer: sent first, then the direction may splice), a direction with a
 * rate (nginx's accounting reads in small pieces), a moment with no pipe
 * to take (the pool's bound, EMFILE) and sockets splice() refuses. A pipe
 * and a buffer never both hold a direction's bytes, so order is kept.
 * splice() into a pipe says EAGAIN both when the socket is drained and
 * when the pipe is full; as HAProxy, a pipe with bytes in it is then taken
 * as full (`pipe_full`): no read interest until it drains. A direction
 * that fills its pipe too is enlarged to
 * proxy_splice_pipe_size (F_SETPIPE_SZ) and the read goes on, within the
 * pool's bound on enlarged pipes; a short session never pays the call. A
 * refused enlargement leaves the pipe as it is ([notice], once per worker,
 * which then stops trying).
 *
 * Each wake-up moves a direction round after round (read, write) while a
 * read filled its buffer or pipe and the write emptied it, up to
 * RELAY_WAKEUP_BYTES, as nginx reads and writes on before going back to
 * epoll_wait(); a short read means the socket is drained (nginx).
 *
 * Half-close (proxy_half_close on, our default): a FIN read from one side is
 * passed on as shutdown(SHUT_WR) once that direction's buffer is empty,
 * while the other direction goes on. Off: the session ends when either side
 * has closed and its bytes are delivered (nginx's default).
 *
 * proxy_timeout is checked lazily: the timer is armed for the full timeout
 * and, when it fires, re-armed for what is left since the last activity.
 *
 * proxy_upload_rate / proxy_download_rate (nginx's algorithm): before a
 * read, the direction may take rate * (seconds since the upstream phase
 * began + 1) - bytes received so far; at or under zero it is `delayed` for
 * the time that debt takes to clear, and after each read for n / rate
 * seconds. A delayed direction has no read interest at all (its socket
 * may leave epoll), so the wait costs a timer, never a wake-up; while a
 * direction is delayed proxy_timeout does not run (nginx).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/clock.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/pipe_pool.h"
#include "proto/proxy_proto.h"
#include "stream/proxy.h"
#include "stream/realip.h"
#include "stream/session.h"
#include "stream/stats.h"
#include "stream/stream.h"


#define RELAY_BUFFER_SIZE (16 * 1024)
#define RELAY_POOL_MAX 256 /* idle buffers kept for reuse */

/*
 * How long a session whose upstream has closed (its bytes delivered) may
 * stay once the worker drains: the client may still be sending its last
 * bytes, but a graceful stop does not wait for it any longer.
 */
#define RELAY_LINGER_MS 1000

/* Bytes a direction may move in one wake-up before others get a turn. */
#define RELAY_WAKEUP_BYTES (512 * 1024)

/* At most one "no pipe" line this often: the copy goes on meanwhile. */
#define RELAY_PIPE_LOG_MS 60000

/*
 * With LOOP_READ from the relay itself, not from epoll: the side may have
 * nothing (a bit no LOOP_* flag uses).
 */
#define RELAY_UNPOLLED 0x100u


/* How a read went, for the round loop. */
struct relay_read_rc {
    int progress; /* 1 bytes (or EOF) came, 0 none, -1 error */
    bool full;    /* stopped for want of room: read again once written */
    bool refused; /* splice() does not take this socket: copy instead */
};


static void relay_log_connected(struct session *s);
static void relay_start(struct session *s);
static void relay_client_io(struct loop_io *io, uint32_t events);
static void relay_upstream_io(struct loop_io *io, uint32_t events);
static void relay_timer(struct loop_timer *t);
static void relay_delay_timer(struct loop_timer *t);
static int64_t relay_rate_wait(struct session *s, const struct relay_dir *d,
                               uint64_t count, size_t *room);
static int relay_delay(struct session *s, struct relay_dir *d,
                       int64_t delay_ms);
static void relay_pump(struct session *s, uint32_t client_ev,
                       uint32_t upstream_ev);
static int relay_move(struct session *s, struct loop_io *from,
                      struct loop_io *to, struct relay_dir *d, uint32_t ev,
                      uint64_t *in_count, uint64_t *out_count);
static struct relay_read_rc relay_read(struct session *s, struct loop_io *from,
                                       struct relay_dir *d, uint64_t *count,
                                       bool hup, bool polled);
static bool relay_take_pipe(struct session *s, struct relay_dir *d);
static bool relay_grow_pipe(struct session *s, struct relay_dir *d);
static struct relay_read_rc relay_splice_in(struct session *s,
                                            struct loop_io *from,
                                            struct relay_dir *d,
                                            uint64_t *count, bool hup);
static struct relay_read_rc relay_recv(struct session *s, struct loop_io *from,
                                       struct relay_dir *d, uint64_t *count,
                                       bool hup);
static void relay_got(struct session *s, struct relay_dir *d, size_t n);
static int relay_write(struct session *s, struct loop_io *to,
                       struct relay_dir *d, uint64_t *count);
static int relay_splice_out(struct session *s, struct loop_io *to,
                            struct relay_dir *d, uint64_t *count);
static int relay_send(struct session *s, struct loop_io *to,
                      struct relay_dir *d, uint64_t *count);
static bool relay_splice_unsupported(struct session *s, struct relay_dir *d,
                                     int err);
static size_t relay_pending(const struct relay_dir *d);
static bool relay_has_room(const struct relay_dir *d);
static bool relay_bulk_waits(const struct relay_dir *d);
static size_t relay_buf_size(const struct session *s,
                             const struct relay_dir *d);
static int relay_buf_get(struct relay_dir *d, size_t size);
static void relay_buf_put(struct relay_dir *d);
static void relay_pipe_release(struct relay_dir *d);
static int relay_upstream_done(struct session *s);


static unsigned char *relay_pool[RELAY_POOL_MAX]; /* free buffers */
static size_t relay_pool_len;
static int64_t relay_pipe_logged_ms = -RELAY_PIPE_LOG_MS;
static bool relay_unsupported_logged;
static bool relay_grow_failed; /* F_SETPIPE_SZ refused once: no more tries */


/*
 * The buffer a direction copies through: proxy_buffer_size, but at most
 * RELAY_BUFFER_SIZE for one that may splice, which copies only until a
 * read fills it (then it is bulk and splices): a large proxy_buffer_size
 * must not hold megabytes in the worker before the pipe takes over.
 */
static size_t
relay_buf_size(const struct session *s, const struct relay_dir *d)
{
    const size_t size = (size_t)s->server->set.proxy_buffer_size;

    return d->can_splice && size > RELAY_BUFFER_SIZE ? RELAY_BUFFER_SIZE
                                                      : size;
}


/*
 * Buffers of size bytes (relay_buf_size()). Those of the
 * default size come from a per-process pool and go back to it as soon as a
 * direction is drained, so an idle session holds none (DESIGN.md: memory
 * per idle session is small); other sizes are allocated and freed each
 * time, which costs a malloc per burst.
 */
static int
relay_buf_get(struct relay_dir *d, size_t size)
{
    if (d->buf != NULL) {
        return 0;
    }
    if (size == RELAY_BUFFER_SIZE && relay_pool_len > 0) {
        d->buf = relay_pool[--relay_pool_len];
    } else {
        d->buf = malloc(size);
        if (d->buf == NULL) {
            return -1;
        }
    }
    d->cap = size;
    d->pos = 0;
    d->last = 0;
    return 0;
}


static void
relay_buf_put(struct relay_dir *d)
{
    if (d->buf == NULL) {
        return;
    }
    /* The preread buffer was not taken from the pool: giving it to the
     * pool would grow it by one buffer per session, up to its bound. */
    if (!d->adopted && d->cap == RELAY_BUFFER_SIZE &&
        relay_pool_len < RELAY_POOL_MAX) {
        relay_pool[relay_pool_len++] = d->buf;
    } else {
        free(d->buf);
    }
    d->buf = NULL;
    d->cap = 0;
    d->adopted = false;
    d->pos = 0;
    d->last = 0;
}


void
relay_pool_trim(void)
{
    while (relay_pool_len > 0) {
        free(relay_pool[--relay_pool_len]);
        relay_pool[relay_pool_len] = NULL;
    }
}


/* An empty pipe goes back to the pool; one with bytes in it is closed. */
static void
relay_pipe_release(struct relay_dir *d)
{
    if (d->pipe.rd < 0) {
        return;
    }
    if (d->piped == 0) {
        pipe_pool_put(&d->pipe);
    } else {
        pipe_pool_close(&d->pipe);
    }
    d->piped = 0;
    d->pipe_full = false;
}


void
relay_release(struct session *s)
{
    relay_buf_put(&s->c2u);
    relay_buf_put(&s->u2c);
    if (s->c2u.delay.fn != NULL) {
        /* relay_start() ran: the pipe fields are set. */
        relay_pipe_release(&s->c2u);
        relay_pipe_release(&s->u2c);
        loop_timer_cancel(s->loop, &s->c2u.delay);
        loop_timer_cancel(s->loop, &s->u2c.delay);
    }
}


/* nginx's info line for a connected upstream: "proxy LOCAL connected to
 * PEER". getsockname() is paid only when the line is wanted; when it
 * fails the line says so instead (the session needs no more than the
 * line). */
static void
relay_log_connected(struct session *s)
{
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    char text[SOCK_ADDR_TEXT_MAX];

    if (!errlog_enabled(s->server->set.errlog, ERRLOG_INFO)) {
        return;
    }
    if (getsockname(s->upstream.fd, (struct sockaddr *)&local, &len) == -1) {
        session_log(s, ERRLOG_ALERT, "getsockname() failed (%d: %s)", errno,
                    strerror(errno));
        return;
    }
    session_log(s, ERRLOG_INFO, "proxy %s connected to %s",
                sock_addr_text((struct sockaddr *)&local, text, sizeof(text)),
                s->peer != NULL ? s->peer->name : "?");
}


/*
 * CONTENT, last step of proxy_pass: moves bytes both ways until the
 * session ends (the relay finalizes it).
 */
enum phase_rc
relay_phase(struct session *s)
{
    relay_start(s);
    return PHASE_DONE;
}


static void
relay_start(struct session *s)
{
    s->c2u.pipe.rd = s->c2u.pipe.wr = -1;
    s->u2c.pipe.rd = s->u2c.pipe.wr = -1;
    relay_log_connected(s);
    /* The preread bytes go first, unchanged: they become c2u's buffer. */
    if (s->pre_buf != NULL && s->pre_len > 0) {
        s->c2u.buf = s->pre_buf;
        s->c2u.cap = s->pre_cap;
        s->c2u.adopted = true;
        s->c2u.pos = 0;
        s->c2u.last = s->pre_len;
        s->pre_buf = NULL;
        s->pre_len = 0;
        s->pre_cap = 0;
    } else {
        free(s->pre_buf);
        s->pre_buf = NULL;
    }
    s->c2u.rate = proxy_rate_eval(s, s->server->set.upload_rate);
    s->u2c.rate = proxy_rate_eval(s, s->server->set.download_rate);
    /* nginx's rate accounting reads in pieces: a rated direction copies. */
    s->c2u.can_splice = s->server->set.proxy_splice && s->c2u.rate == 0;
    s->u2c.can_splice = s->server->set.proxy_splice && s->u2c.rate == 0;
    /* A PROXY header for the upstream goes before the client's bytes. */
    uint8_t hdr[PROXY_PROTO_BUILD_MAX];
    size_t hdr_len = 0;
    if (realip_upstream_header(s, hdr, sizeof(hdr), &hdr_len) == -1) {
        session_log(s, ERRLOG_ERR, "could not build PROXY protocol header");
        session_finalize(s, 500);
        return;
    }
    if (hdr_len > 0) {
        if (relay_buf_get(&s->c2u, relay_buf_size(s, &s->c2u)) == -1) {
            session_fail(s, "malloc()");
            return;
        }
        if (s->c2u.cap - s->c2u.last < hdr_len) {
            unsigned char *p = realloc(s->c2u.buf, s->c2u.last + hdr_len);
            if (p == NULL) {
                session_fail(s, "realloc()");
                return;
            }
            s->c2u.buf = p;
            s->c2u.cap = s->c2u.last + hdr_len;
        }
        memmove(s->c2u.buf + hdr_len, s->c2u.buf, s->c2u.last);
        memcpy(s->c2u.buf, hdr, hdr_len);
        s->c2u.last += hdr_len;
    }
    loop_timer_init(&s->c2u.delay, relay_delay_timer, s);
    loop_timer_init(&s->u2c.delay, relay_delay_timer, s);
    s->client.fn = relay_client_io;
    s->upstream.fn = relay_upstream_io;
    s->last_active_ms = clock_now_ms();
    s->timer.fn = relay_timer;
    if (session_timer_set(s, &s->timer, s->server->set.proxy_timeout_ms) ==
        -1) {
        return;
    }
    /*
     * The preread bytes go at once. Neither side is read unasked: the
     * client stayed watched (level-triggered, so bytes or a FIN left in
     * its socket are reported again once the relay asks), and an
     * upstream that was just sent the first bytes has rarely answered
     * yet, so a read now would mostly be a wasted system call.
     */
    relay_pump(s, 0, 0);
}


/* Bytes read but not yet written, in the buffer or the pipe. */
static size_t
relay_pending(const struct relay_dir *d)
{
    return d->last - d->pos + d->piped;
}


/* Whether the source may be read: no buffer or pipe means an empty one. */
static bool
relay_has_room(const struct relay_dir *d)
{
    if (d->pipe.rd >= 0) {
        return !d->pipe_full && d->piped < d->pipe.cap;
    }
    if (relay_bulk_waits(d)) {
        return false;
    }
    return d->buf == NULL || d->last < d->cap;
}


/*
 * A bulk direction that may splice still has bytes in its buffer: it
 * reads nothing more until they are written, then reads into a pipe, so
 * its buffer never grows past the read that made it bulk.
 */
static bool
relay_bulk_waits(const struct relay_dir *d)
{
    return d->bulk && d->can_splice && d->buf != NULL && d->pos < d->last;
}


/*
 * One direction's turn in a wake-up: read (only if epoll said the source
 * is ready, in the first round) and write, round after round while a read
 * filled the buffer or pipe and the write emptied it, up to
 * RELAY_WAKEUP_BYTES. Returns 1 progress, 0 none, -1 error (logged).
 */
static int
relay_move(struct session *s, struct loop_io *from, struct loop_io *to,
           struct relay_dir *d, uint32_t ev, uint64_t *in_count,
           uint64_t *out_count)
{
    const uint64_t start = *in_count;
    int progress = 0;

    /* Bounded by RELAY_WAKEUP_BYTES: a round that goes on read bytes. */
    for (bool first = true;; first = false) {
        struct relay_read_rc r = {0, false, false};

        if (!first || (ev & LOOP_READ)) {
            r = relay_read(s, from, d, in_count, ev & LOOP_HUP,
                           first && !(ev & RELAY_UNPOLLED));
            if (r.progress == -1) {
                return -1;
            }
        }
        const int w = relay_write(s, to, d, out_count);
        if (w == -1) {
            return -1;
        }
        progress |= r.progress | w;
        if (!r.full || relay_pending(d) > 0 ||
            *in_count - start >= RELAY_WAKEUP_BYTES) {
            return progress;
        }
    }
}


/*
 * Reads from `from` into d: into the buffer or pipe that holds d's bytes,
 * or, when d is empty, into a pipe if it may splice, is bulk and one can
 * be taken, else into a buffer. polled: epoll said `from` is ready (a splice() that
 * then finds nothing, with an empty pipe, is retried with recv(): TCP
 * urgent data stops splice() but not recv(), and level-triggered epoll
 * would wake us for it forever).
 */
static struct relay_read_rc
relay_read(struct session *s, struct loop_io *from, struct relay_dir *d,
           uint64_t *count, bool hup, bool polled)
{
    if (d->eof || d->delayed || relay_bulk_waits(d)) {
        return (struct relay_read_rc){0, false, false};
    }
    if (d->pipe.rd >= 0 ||
        (d->buf == NULL && d->can_splice && d->bulk &&
         relay_take_pipe(s, d))) {
        const struct relay_read_rc r = relay_splice_in(s, from, d, count, hup);
        if (d->pipe.rd >= 0 && d->piped == 0) {
            relay_pipe_release(d); /* nothing waits in it: hold no pipe */
        }
        if (r.progress != 0 || d->piped > 0 || !(polled || r.refused)) {
            return r;
        }
    }
    return relay_recv(s, from, d, count, hup);
}


/*
 * Takes a pipe for d from the pool. None: the burst is copied; if pipes
 * cannot be made at all (EMFILE...), the session copies from now on and
 * the worker says so at most once a minute.
 */
static bool
relay_take_pipe(struct session *s, struct relay_dir *d)
{
    if (pipe_pool_get(&d->pipe) == 0) {
        d->piped = 0;
        d->pipe_full = false;
        return true;
    }
    d->pipe.rd = d->pipe.wr = -1;
    if (errno == EBUSY) {
        return false;
    }
    const int err = errno;
    const int64_t now = clock_now_ms();
    s->c2u.can_splice = false;
    s->u2c.can_splice = false;
    if (now - relay_pipe_logged_ms >= RELAY_PIPE_LOG_MS) {
        relay_pipe_logged_ms = now;
        session_log(s, ERRLOG_WARN, "pipe2() failed (%d: %s), relaying by copy",
                    err, strerror(err));
    }
    return false;
}


/*
 * d filled its pipe: enlarges it to the server's proxy_splice_pipe_size
 * when the pool's bound allows. Returns whether the pipe has room now.
 */
static bool
relay_grow_pipe(struct session *s, struct relay_dir *d)
{
    const size_t size = (size_t)s->server->set.proxy_splice_pipe_size;

    if (relay_grow_failed || size <= d->pipe.cap) {
        return false;
    }
    const int rc = pipe_pool_grow(&d->pipe, size);
    if (rc == -1) {
        relay_grow_failed = true;
        session_log(s, ERRLOG_NOTICE,
                    "fcntl(F_SETPIPE_SZ, %zu) failed (%d: %s), pipes keep "
                    "their size",
                    size, errno, strerror(errno));
        return false;
    }
    return rc == 1 && d->piped < d->pipe.cap;
}


/* splice() from the source socket into d's pipe. */
static struct relay_read_rc
relay_splice_in(struct session *s, struct loop_io *from, struct relay_dir *d,
                uint64_t *count, bool hup)
{
    struct relay_read_rc r = {0, false, false};

    /* Bounded by the pipe's room: each turn fills it or ends the loop. */
    while (!d->eof) {
        if (d->piped >= d->pipe.cap && !relay_grow_pipe(s, d)) {
            r.full = true;
            break;
        }
        const size_t room = d->pipe.cap - d->piped;
        const ssize_t n = splice(from->fd, NULL, d->pipe.wr, NULL, room,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            d->piped += (size_t)n;
            relay_got(s, d, (size_t)n);
            *count += (uint64_t)n;
            r.progress = 1;
            if ((size_t)n < room && !hup) {
                break; /* the socket is drained; epoll says when it is not */
            }
            continue;
        }
        if (n == 0) {
            d->eof = true;
            r.progress = 1;
            break;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) {
            if (d->piped > 0) {
                /* Drained, or no room in the pipe: take it as full. */
                d->pipe_full = true;
                r.full = true;
            }
            break;
        }
        if (d->piped == 0 && relay_splice_unsupported(s, d, errno)) {
            r.refused = true;
            break;
        }
        session_log(s, ERRLOG_INFO, "splice() failed (%d: %s)", errno,
                    strerror(errno));
        r.progress = -1;
        break;
    }
    return r;
}


/*
 * splice() refused a socket before any byte went into d's pipe: the
 * session copies from now on (said once per worker). Returns false when
 * err is another error.
 */
static bool
relay_splice_unsupported(struct session *s, struct relay_dir *d, int err)
{
    if (err != EINVAL && err != ENOSYS && err != EOPNOTSUPP) {
        return false;
    }
    s->c2u.can_splice = false;
    s->u2c.can_splice = false;
    relay_pipe_release(d);
    if (!relay_unsupported_logged) {
        relay_unsupported_logged = true;
        session_log(s, ERRLOG_NOTICE,
                    "splice() failed (%d: %s), relaying by copy", err,
                    strerror(err));
    }
    return true;
}


/* The copy path: recv() into d's buffer. */
static struct relay_read_rc
relay_recv(struct session *s, struct loop_io *from, struct relay_dir *d,
           uint64_t *count, bool hup)
{
    struct relay_read_rc r = {0, false, false};

    if (relay_buf_get(d, relay_buf_size(s, d)) == -1) {
        session_fail(s, "malloc()");
        r.progress = -1;
        return r;
    }
    if (d->pos == d->last) {
        d->pos = d->last = 0;
    }
    /* Bounded by the buffer: each turn fills it or ends the loop. */
    while (!d->eof) {
        if (d->last == d->cap) {
            r.full = true;
            break;
        }
        size_t room = d->cap - d->last;
        const int64_t wait_ms =
            d->rate > 0 ? relay_rate_wait(s, d, *count, &room) : 0;
        if (wait_ms > 0) {
            if (relay_delay(s, d, wait_ms) == -1) {
                r.progress = -1;
                return r;
            }
            break;
        }
        const ssize_t n = recv(from->fd, d->buf + d->last, room, 0);
        if (n > 0) {
            d->last += (size_t)n;
            d->bulk = d->bulk || d->last == d->cap;
            relay_got(s, d, (size_t)n);
            *count += (uint64_t)n;
            r.progress = 1;
            if (d->rate > 0) {
                /* n bytes at rate per second: wait that long (nginx). */
                const int64_t delay = (int64_t)((uint64_t)n * 1000 / d->rate);
                if (delay > 0) {
                    if (relay_delay(s, d, delay) == -1) {
                        r.progress = -1;
                        return r;
                    }
                    break;
                }
            }
            if ((size_t)n < room && !hup) {
                break; /* the socket is drained; epoll says when it is not */
            }
            continue;
        }
        if (n == 0) {
            d->eof = true;
            r.progress = 1;
            break;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        }
        session_log(s, ERRLOG_INFO, "recv() failed (%d: %s)", errno,
                    strerror(errno));
        r.progress = -1;
        return r;
    }
    if (d->pos == d->last) {
        relay_buf_put(d); /* nothing came: hold no buffer while idle */
    }
    return r;
}


/* n bytes came in for d: $upstream_first_byte_time starts with the first. */
static void
relay_got(struct session *s, struct relay_dir *d, size_t n)
{
    if (n > 0 && d == &s->u2c && s->first_byte_ms == 0) {
        s->first_byte_ms = clock_now_ms();
        stats_first_byte(s);
    }
}


/* Writes d's pending bytes to `to`. Returns 1 progress, 0 none, -1 error. */
static int
relay_write(struct session *s, struct loop_io *to, struct relay_dir *d,
            uint64_t *count)
{
    BUG_ON(d->pos < d->last && d->piped > 0);
    if (d->piped > 0) {
        return relay_splice_out(s, to, d, count);
    }
    return relay_send(s, to, d, count);
}


/* splice() from d's pipe to the destination; an empty pipe goes back. */
static int
relay_splice_out(struct session *s, struct loop_io *to, struct relay_dir *d,
                 uint64_t *count)
{
    int progress = 0;

    /* Bounded by the bytes in the pipe: each turn moves some or ends. */
    while (d->piped > 0) {
        const ssize_t n = splice(d->pipe.rd, NULL, to->fd, NULL, d->piped,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            BUG_ON((size_t)n > d->piped);
            d->piped -= (size_t)n;
            *count += (uint64_t)n;
            progress = 1;
            continue;
        }
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        session_log(s, ERRLOG_INFO, "splice() failed (%d: %s)",
                    n == 0 ? EIO : errno, strerror(n == 0 ? EIO : errno));
        return -1;
    }
    if (d->piped == 0) {
        relay_pipe_release(d);
    }
    return progress;
}


/* The copy path: send() from d's buffer. */
static int
relay_send(struct session *s, struct loop_io *to, struct relay_dir *d,
           uint64_t *count)
{
    int progress = 0;

    while (d->pos < d->last) {
        const ssize_t n =
            send(to->fd, d->buf + d->pos, d->last - d->pos, MSG_NOSIGNAL);
        if (n >= 0) {
            d->pos += (size_t)n;
            *count += (uint64_t)n;
            progress = 1;
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        }
        session_log(s, ERRLOG_INFO, "send() failed (%d: %s)", errno,
                    strerror(errno));
        return -1;
    }
    if (d->pos == d->last) {
        relay_buf_put(d);
    }
    return progress;
}


/* Moves what can move now, then sets interest from buffer state. */
static void
relay_pump(struct session *s, uint32_t client_ev, uint32_t upstream_ev)
{
    const bool half_close = s->server->set.proxy_half_close;

    /*
     * Each way in turn, reading only a side epoll said is ready (a read
     * that would find nothing is a wasted system call); level-triggered
     * epoll calls again while a side stays ready. A side whose peer has
     * closed is read to its EOF now, not in another wake-up. Writes are
     * tried whenever bytes wait.
     */
    const int a = relay_move(s, &s->client, &s->upstream, &s->c2u, client_ev,
                             &s->bytes_received, &s->upstream_bytes_sent);
    const int b =
        a == -1 ? -1
                : relay_move(s, &s->upstream, &s->client, &s->u2c, upstream_ev,
                             &s->upstream_bytes_received, &s->bytes_sent);

    stats_bytes(s);
    if (b == -1) {
        s->m_end = STATS_END_RELAY_ERROR;
        session_finalize(s, 200);
        return;
    }
    if (s->m_end == STATS_END_UNSET && (s->c2u.eof || s->u2c.eof)) {
        s->m_end =
            s->c2u.eof ? STATS_END_CLIENT_CLOSED : STATS_END_UPSTREAM_CLOSED;
    }
    if (a | b) {
        s->last_active_ms = clock_now_ms();
    }

    /*
     * A FIN whose direction is drained is passed on (or ends it). The
     * last one needs no shutdown(): the close() that ends the session
     * sends it, and sends no RST, since that socket was read to its EOF.
     */
    if (s->c2u.eof && relay_pending(&s->c2u) == 0 && !s->c2u.shut) {
        if (!half_close || s->u2c.shut) {
            session_finalize(s, 200);
            return;
        }
        shutdown(s->upstream.fd, SHUT_WR);
        s->c2u.shut = true;
    }
    if (s->u2c.eof && relay_pending(&s->u2c) == 0 && !s->u2c.shut) {
        if (!half_close || s->c2u.shut) {
            session_finalize(s, 200);
            return;
        }
        shutdown(s->client.fd, SHUT_WR);
        s->u2c.shut = true;
        if (relay_upstream_done(s) == -1) {
            return;
        }
    }
    if (s->c2u.shut && s->u2c.shut) {
        session_finalize(s, 200);
        return;
    }

    /* A delayed side waits for its timer, not for epoll. */
    const uint32_t client_mask =
        (!s->c2u.eof && !s->c2u.delayed && relay_has_room(&s->c2u) ? LOOP_READ
                                                                   : 0) |
        (relay_pending(&s->u2c) > 0 ? LOOP_WRITE : 0);
    const uint32_t upstream_mask =
        (!s->u2c.eof && !s->u2c.delayed && relay_has_room(&s->u2c) ? LOOP_READ
                                                                   : 0) |
        (relay_pending(&s->c2u) > 0 ? LOOP_WRITE : 0);

    if (session_io_set(s, &s->client, client_mask) == 0) {
        session_io_set(s, &s->upstream, upstream_mask);
    }
}


/*
 * The upstream has closed and all it sent is delivered: the session only
 * carries the client's last bytes now, so the server no longer counts it
 * as an active connection, and a draining worker gives it a short linger.
 */
static int
relay_upstream_done(struct session *s)
{
    proxy_release(s);
    if (session_is_draining()) {
        return relay_drain(s);
    }
    return 0;
}


int
relay_drain(struct session *s)
{
    /* u2c.shut is set by the relay only. */
    if (s->phase != SESSION_PHASE_CONTENT || !s->u2c.shut || s->lingering) {
        return 0;
    }
    s->lingering = true;
    return session_timer_set(s, &s->timer, RELAY_LINGER_MS);
}


static void
relay_client_io(struct loop_io *io, uint32_t events)
{
    relay_pump(io->data, events, 0);
}


static void
relay_upstream_io(struct loop_io *io, uint32_t events)
{
    relay_pump(io->data, 0, events);
}


static void
relay_timer(struct loop_timer *t)
{
    struct session *s = t->data;
    const int64_t timeout = s->server->set.proxy_timeout_ms;

    if (s->lingering) {
        session_log(s, ERRLOG_INFO,
                    "closing a session whose upstream has closed, "
                    "on shutdown");
        s->m_end = STATS_END_SHUTDOWN;
        session_finalize(s, 200);
        return;
    }
    if (s->c2u.delayed || s->u2c.delayed) {
        /* Waiting on a rate is not idleness (nginx stops the timer). */
        s->last_active_ms = clock_now_ms();
    }
    const int64_t idle = clock_now_ms() - s->last_active_ms;

    if (idle < timeout) {
        session_timer_set(s, t, timeout - idle);
        return;
    }
    session_log(s, ERRLOG_INFO,
                "timed out (110: Connection timed "
                "out)");
    s->m_end = STATS_END_IDLE_TIMEOUT;
    session_finalize(s, 200);
}


/*
 * How long d must wait before it may read, when over its rate now (> 0:
 * delay it that long); otherwise 0, with *room cut to what the rate
 * allows. nginx's limit = rate * (now - start + 1) - received, in whole
 * seconds.
 */
static int64_t
relay_rate_wait(struct session *s, const struct relay_dir *d, uint64_t count,
                size_t *room)
{
    const int64_t secs =
        clock_now_ms() / 1000 - s->upstream_start_ms / 1000 + 1;
    const int64_t limit =
        (int64_t)d->rate * (secs > 0 ? secs : 1) - (int64_t)count;

    if (limit <= 0) {
        return -limit * 1000 / (int64_t)d->rate + 1;
    }
    if ((uint64_t)limit < *room) {
        *room = (size_t)limit;
    }
    return 0;
}


/*
 * Stops reading d until its timer fires. A delayed direction has no other
 * way back: 0, or -1 once s is finalized because the timer failed.
 */
static int
relay_delay(struct session *s, struct relay_dir *d, int64_t delay_ms)
{
    d->delayed = true;
    return session_timer_set(s, &d->delay, delay_ms);
}


/* A delayed direction may read again: try at once, epoll may not tell. */
static void
relay_delay_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    s->last_active_ms = clock_now_ms();
    if (t == &s->c2u.delay) {
        s->c2u.delayed = false;
        relay_pump(s, LOOP_READ | RELAY_UNPOLLED, 0);
    } else {
        s->u2c.delayed = false;
        relay_pump(s, 0, LOOP_READ | RELAY_UNPOLLED);
    }
}
