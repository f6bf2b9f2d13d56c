/* SPDX-License-Identifier: MIT */
/*
 * bench/backend.c: the benchmark's backend, a single-threaded epoll TCP
 * server on loopback that is cheap enough not to be the bottleneck.
 *
 * Usage: backend CTLPORT PORT [PORT...]
 *
 * Every PORT speaks the same tiny protocol. A connection first sends one
 * TLS record (the ClientHello the proxy forwarded; skipped unread), then
 * any number of 16-byte commands:
 *
 *     op(1) pad(3) n(uint32 LE) m(uint64 LE)
 *
 *     'S'  sink: read m bytes (discarded with MSG_TRUNC), then answer with
 *          the count as 8 bytes (uint64 LE)
 *     'G'  generate: write m bytes of zeros
 *     'R'  request/response: read n bytes, then write m bytes
 *     'Q'  as 'R', then close: the server ends the session, so TIME_WAIT
 *          stays on the listening side and never blocks a client's ports
 *     'P'  port: answer with the local port of this connection, 2 bytes
 *          (uint16 LE), so the harness can check the proxy's routing
 *
 * After a command is done the next one may follow; EOF closes.
 * CTLPORT answers each connection with one line of counters and closes it:
 *     "conns=N hellos=N accepted=N\n"
 * (open connections, open connections whose hello has been read, total
 * accepted). SIGTERM/SIGINT end the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


#define BACKEND_MAX_LISTEN 8
#define BACKEND_IOBUF      (256 * 1024)
#define BACKEND_CMD_LEN    16

enum backend_phase {
    BACKEND_HELLO_HDR,
    BACKEND_HELLO_BODY,
    BACKEND_CMD,
    BACKEND_READ,
    BACKEND_WRITE
};

struct backend_conn {
    int fd;
    enum backend_phase phase;
    unsigned char hdr[BACKEND_CMD_LEN];
    size_t hdr_len;
    uint64_t to_read;       /* bytes left to read in this phase */
    uint64_t to_write;      /* bytes left to write */
    uint64_t write_after;   /* what to write once to_read reaches 0 */
    size_t reply_len;       /* 'S', 'P': the reply is reply[], not zeros */
    int close_after;        /* 'Q': close once the reply is written */
    unsigned char reply[8];
    size_t reply_off;
    uint64_t count;
    int hello_done;
};


static volatile sig_atomic_t backend_stop;
static unsigned char backend_zeros[BACKEND_IOBUF];
static unsigned char backend_scratch[BACKEND_IOBUF];
static long backend_conns;
static long backend_hellos;
static long backend_accepted;


static void
backend_on_signal(int sig)
{
    (void) sig;
    backend_stop = 1;
}


static int
backend_listen(int port)
{
    struct sockaddr_in sa;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        || listen(fd, 4096) < 0)
    {
        fprintf(stderr, "backend: cannot listen on %d: %s\n", port,
                strerror(errno));
        exit(1);
    }
    return fd;
}


static void
backend_close(int ep, struct backend_conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    backend_conns--;
    if (c->hello_done) {
        backend_hellos--;
    }
    free(c);
}


static void
backend_want(int ep, struct backend_conn *c, int out)
{
    struct epoll_event ev;

    ev.events = out ? EPOLLOUT : EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}


static uint64_t
backend_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    size_t i;

    for (i = n; i > 0; i--) {
        v = (v << 8) | p[i - 1];
    }
    return v;
}


/* Starts the command in c->hdr. Returns 0, or -1 on an unknown op. */
static int
backend_command(struct backend_conn *c)
{
    uint64_t n = backend_le(c->hdr + 4, 4);
    uint64_t m = backend_le(c->hdr + 8, 8);

    c->reply_len = 0;
    c->close_after = 0;
    c->count = 0;
    switch (c->hdr[0]) {
    case 'S':
        c->to_read = m;
        c->write_after = 8;
        c->reply_len = 8;
        break;
    case 'P':
        c->to_read = 0;
        c->write_after = 2;
        c->reply_len = 2;
        break;
    case 'G':
        c->to_read = 0;
        c->write_after = m;
        break;
    case 'Q':
        c->close_after = 1;
        c->to_read = n;
        c->write_after = m;
        break;
    case 'R':
        c->to_read = n;
        c->write_after = m;
        break;
    default:
        return -1;
    }
    c->phase = BACKEND_READ;
    return 0;
}


/* Moves c past a finished read phase. Returns -1 when c must close. */
static int
backend_read_done(struct backend_conn *c)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    uint64_t v = c->count;
    size_t i;

    if (c->reply_len == 2) {
        memset(&sa, 0, sizeof(sa));
        getsockname(c->fd, (struct sockaddr *) &sa, &sl);
        v = ntohs(sa.sin_port);
    }
    for (i = 0; i < c->reply_len; i++) {
        c->reply[i] = (unsigned char) (v >> (8 * i));
    }
    c->reply_off = 0;
    c->to_write = c->write_after;
    c->phase = c->to_write ? BACKEND_WRITE : BACKEND_CMD;
    c->hdr_len = 0;
    if (c->phase == BACKEND_CMD && c->close_after) {
        return -1;
    }
    return 0;
}


/* Runs c as far as its socket allows. Returns -1 when it must close. */
static int
backend_run(int ep, struct backend_conn *c)
{
    ssize_t r;
    size_t want;

    for (;;) {
        switch (c->phase) {
        case BACKEND_HELLO_HDR:
        case BACKEND_CMD:
            want = (c->phase == BACKEND_CMD ? BACKEND_CMD_LEN : 5) - c->hdr_len;
            r = recv(c->fd, c->hdr + c->hdr_len, want, 0);
            if (r == 0) {
                return -1;
            }
            if (r < 0) {
                return errno == EAGAIN ? 0 : -1;
            }
            c->hdr_len += (size_t) r;
            if (c->phase == BACKEND_HELLO_HDR && c->hdr_len == 5) {
                c->to_read = ((uint64_t) c->hdr[3] << 8) | c->hdr[4];
                c->phase = BACKEND_HELLO_BODY;
            } else if (c->phase == BACKEND_CMD
                       && c->hdr_len == BACKEND_CMD_LEN)
            {
                if (backend_command(c) < 0) {
                    return -1;
                }
                if (c->to_read == 0 && backend_read_done(c) < 0) {
                    return -1;
                }
            }
            break;

        case BACKEND_HELLO_BODY:
        case BACKEND_READ:
            if (c->to_read > 0) {
                want = c->to_read < BACKEND_IOBUF
                       ? (size_t) c->to_read : BACKEND_IOBUF;
                r = recv(c->fd, backend_scratch, want, MSG_TRUNC);
                if (r == 0) {
                    return -1;
                }
                if (r < 0) {
                    return errno == EAGAIN ? 0 : -1;
                }
                c->to_read -= (uint64_t) r;
                c->count += (uint64_t) r;
            }
            if (c->to_read == 0) {
                if (c->phase == BACKEND_HELLO_BODY) {
                    c->hello_done = 1;
                    backend_hellos++;
                    c->phase = BACKEND_CMD;
                    c->hdr_len = 0;
                } else {
                    if (backend_read_done(c) < 0) {
                        return -1;
                    }
                    if (c->phase == BACKEND_WRITE) {
                        backend_want(ep, c, 1);
                    }
                }
            }
            break;

        case BACKEND_WRITE:
            if (c->reply_len) {
                r = send(c->fd, c->reply + c->reply_off,
                         c->reply_len - c->reply_off, MSG_NOSIGNAL);
            } else {
                want = c->to_write < BACKEND_IOBUF
                       ? (size_t) c->to_write : BACKEND_IOBUF;
                r = send(c->fd, backend_zeros, want, MSG_NOSIGNAL);
            }
            if (r < 0) {
                if (errno == EAGAIN) {
                    backend_want(ep, c, 1);
                    return 0;
                }
                return -1;
            }
            c->to_write -= (uint64_t) r;
            c->reply_off += (size_t) r;
            if (c->to_write == 0) {
                if (c->close_after) {
                    return -1;
                }
                c->phase = BACKEND_CMD;
                c->hdr_len = 0;
                backend_want(ep, c, 0);
            }
            break;
        }
    }
}


static void
backend_accept(int ep, int lfd)
{
    struct backend_conn *c;
    struct epoll_event ev;
    int fd, one = 1;

    for (;;) {
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->phase = BACKEND_HELLO_HDR;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        backend_conns++;
        backend_accepted++;
    }
}


static void
backend_control(int cfd)
{
    char line[128];
    int fd, n;

    while ((fd = accept4(cfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        n = snprintf(line, sizeof(line), "conns=%ld hellos=%ld accepted=%ld\n",
                     backend_conns, backend_hellos, backend_accepted);
        if (write(fd, line, (size_t) n) < 0) {
            /* the asker went away: nothing to do */
        }
        close(fd);
    }
}


int
main(int argc, char **argv)
{
    static int lfds[BACKEND_MAX_LISTEN];
    struct epoll_event evs[256], ev;
    struct sigaction sa;
    int ep, cfd, nl, i, n, k;

    if (argc < 3 || argc - 2 > BACKEND_MAX_LISTEN) {
        fprintf(stderr, "usage: backend CTLPORT PORT [PORT...]\n");
        return 2;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = backend_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ep = epoll_create1(EPOLL_CLOEXEC);
    cfd = backend_listen(atoi(argv[1]));
    ev.events = EPOLLIN;
    ev.data.ptr = &cfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
    nl = argc - 2;
    for (i = 0; i < nl; i++) {
        lfds[i] = backend_listen(atoi(argv[i + 2]));
        ev.events = EPOLLIN;
        ev.data.ptr = &lfds[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, lfds[i], &ev);
    }
    printf("ready\n");
    fflush(stdout);

    while (!backend_stop) {
        n = epoll_wait(ep, evs, 256, 500);
        for (i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;

            if (p == &cfd) {
                backend_control(cfd);
                continue;
            }
            for (k = 0; k < nl; k++) {
                if (p == &lfds[k]) {
                    break;
                }
            }
            if (k < nl) {
                backend_accept(ep, lfds[k]);
                continue;
            }
            if (backend_run(ep, p) < 0) {
                backend_close(ep, p);
            }
        }
    }
    return 0;
}
