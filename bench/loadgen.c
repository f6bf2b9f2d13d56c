/* SPDX-License-Identifier: MIT */
/*
 * bench/loadgen.c: the benchmark's client. Speaks bench/backend.c's
 * protocol through a proxy: each session starts with a real ClientHello
 * (one TLS record, read from a file that bench.py builds with
 * tests/integration/hello.py), then 16-byte commands.
 *
 * Usage:
 *   loadgen up   PORT HELLO BYTES            one session, BYTES to the backend
 *   loadgen down PORT HELLO BYTES            one session, BYTES from it
 *   loadgen rate PORT HELLO[,HELLO..] CONC SECONDS MAX REQ RESP
 *                                            short sessions, CONC at once
 *   loadgen lat  PORT HELLO COUNT SECONDS    sequential 1-byte exchanges
 *   loadgen ping PORT HELLO COUNT SECONDS    one session, COUNT 1-byte
 *                                            request/1-byte reply round trips
 *   loadgen pace PORT HELLO CHUNKS SIZE up|down
 *                                            one session, CHUNKS exchanges
 *                                            of SIZE bytes one way and 1 byte
 *                                            back: a transfer whose reads do
 *                                            not depend on the proxy's speed
 *                                            (bench/callgrind.py)
 *
 * In rate and lat the backend closes after its reply ('Q') and the client
 * reads to EOF before it closes: TIME_WAIT then stays on the listening
 * sides, where it never blocks the choice of an ephemeral port, so a long
 * run does not slow the kernel's connect() down for whoever runs next.
 *
 * Every mode is bounded in time and count and prints one JSON object.
 * Sessions come from source addresses 127.0.0.2..127.0.0.251 in turn so
 * that TIME_WAIT on one address does not run out of ports. Loopback only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif


#define LOADGEN_IOBUF     (256 * 1024)
#define LOADGEN_MAX_HELLO 8
#define LOADGEN_MAX_CONC  1024
#define LOADGEN_SESSION_TIMEOUT 5.0

struct loadgen_msg {
    unsigned char *data;
    size_t len;
};

enum loadgen_state {
    LOADGEN_IDLE,
    LOADGEN_CONNECTING,
    LOADGEN_SENDING,
    LOADGEN_READING
};

struct loadgen_slot {
    int fd;
    enum loadgen_state state;
    const struct loadgen_msg *msg;
    size_t sent;
    size_t got;
    double started;
};


static unsigned char loadgen_zeros[LOADGEN_IOBUF];
static unsigned char loadgen_scratch[LOADGEN_IOBUF];
static int loadgen_port;
static unsigned loadgen_src;


static double
loadgen_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static void
loadgen_die(const char *what)
{
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(1);
}


/* Reads a whole file into a fresh buffer with room for extra bytes. */
static unsigned char *
loadgen_read_file(const char *path, size_t extra, size_t *len)
{
    unsigned char *buf;
    FILE *f;
    long n;

    f = fopen(path, "rb");
    if (f == NULL) {
        loadgen_die(path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t) n + extra);
    if (buf == NULL || fread(buf, 1, (size_t) n, f) != (size_t) n) {
        loadgen_die("read hello");
    }
    fclose(f);
    *len = (size_t) n;
    return buf;
}


/* Appends the 16-byte command op/n/m at p. */
static void
loadgen_cmd(unsigned char *p, int op, uint32_t n, uint64_t m)
{
    int i;

    memset(p, 0, 16);
    p[0] = (unsigned char) op;
    for (i = 0; i < 4; i++) {
        p[4 + i] = (unsigned char) (n >> (8 * i));
    }
    for (i = 0; i < 8; i++) {
        p[8 + i] = (unsigned char) (m >> (8 * i));
    }
}


/* Hello file + command (+ n zero bytes of request) as one message. */
static void
loadgen_msg_make(struct loadgen_msg *msg, const char *path, int op,
                 uint32_t n, uint64_t m)
{
    size_t hl;

    msg->data = loadgen_read_file(path, 16 + n, &hl);
    loadgen_cmd(msg->data + hl, op, n, m);
    msg->len = hl + 16 + n;
}


/* A socket bound to the next source address, connect started. */
static int
loadgen_connect(int nonblock)
{
    struct sockaddr_in src, dst;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC
                | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        loadgen_die("socket");
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    memset(&src, 0, sizeof(src));
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + (loadgen_src++ % 250));
    if (bind(fd, (struct sockaddr *) &src, sizeof(src)) < 0) {
        loadgen_die("bind");
    }
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t) loadgen_port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *) &dst, sizeof(dst)) < 0
        && errno != EINPROGRESS)
    {
        close(fd);
        return -1;
    }
    return fd;
}


/* Blocking send of all len bytes, bounded by the socket's timeout. */
static int
loadgen_send_all(int fd, const unsigned char *p, size_t len)
{
    ssize_t r;

    while (len > 0) {
        r = send(fd, p, len, MSG_NOSIGNAL);
        if (r <= 0) {
            return -1;
        }
        p += r;
        len -= (size_t) r;
    }
    return 0;
}


static void
loadgen_timeouts(int fd, int seconds)
{
    struct timeval tv = { seconds, 0 };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}


/* One session moving bytes one way; prints bytes and seconds. */
static int
loadgen_bulk(const char *hello, uint64_t bytes, int up)
{
    struct loadgen_msg msg;
    unsigned char reply[8];
    uint64_t left, echoed = 0;
    double t0, t1;
    size_t got = 0;
    ssize_t r;
    int fd, i;

    loadgen_msg_make(&msg, hello, up ? 'S' : 'G', 0, bytes);
    t0 = loadgen_now();
    fd = loadgen_connect(0);
    if (fd < 0) {
        loadgen_die("connect");
    }
    loadgen_timeouts(fd, 30);
    if (loadgen_send_all(fd, msg.data, msg.len) < 0) {
        loadgen_die("send hello");
    }
    left = bytes;
    if (up) {
        while (left > 0) {
            size_t n = left < LOADGEN_IOBUF ? (size_t) left : LOADGEN_IOBUF;

            if (loadgen_send_all(fd, loadgen_zeros, n) < 0) {
                loadgen_die("send");
            }
            left -= n;
        }
        while (got < 8) {
            r = recv(fd, reply + got, 8 - got, 0);
            if (r <= 0) {
                loadgen_die("recv reply");
            }
            got += (size_t) r;
        }
        for (i = 7; i >= 0; i--) {
            echoed = (echoed << 8) | reply[i];
        }
        if (echoed != bytes) {
            fprintf(stderr, "loadgen: backend counted %llu of %llu bytes\n",
                    (unsigned long long) echoed, (unsigned long long) bytes);
            return 1;
        }
    } else {
        while (left > 0) {
            size_t n = left < LOADGEN_IOBUF ? (size_t) left : LOADGEN_IOBUF;

            r = recv(fd, loadgen_scratch, n, MSG_TRUNC);
            if (r <= 0) {
                loadgen_die("recv");
            }
            left -= (uint64_t) r;
        }
    }
    t1 = loadgen_now();
    close(fd);
    printf("{\"bytes\": %llu, \"seconds\": %.6f}\n",
           (unsigned long long) bytes, t1 - t0);
    return 0;
}


static void
loadgen_slot_close(int ep, struct loadgen_slot *s)
{
    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    s->fd = -1;
    s->state = LOADGEN_IDLE;
}


static int
loadgen_slot_start(int ep, struct loadgen_slot *s,
                   const struct loadgen_msg *msg, double now)
{
    struct epoll_event ev;

    s->fd = loadgen_connect(1);
    if (s->fd < 0) {
        s->state = LOADGEN_IDLE;
        return -1;
    }
    s->state = LOADGEN_CONNECTING;
    s->msg = msg;
    s->sent = 0;
    s->got = 0;
    s->started = now;
    ev.events = EPOLLOUT;
    ev.data.ptr = s;
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
    return 0;
}


/*
 * Advances one slot. Returns 1 when its session completed, 0 when it
 * waits, -1 on an error (the slot is closed either way when not 0).
 */
static int
loadgen_slot_run(int ep, struct loadgen_slot *s, size_t resp)
{
    struct epoll_event ev;
    socklen_t sl = sizeof(int);
    int err = 0;
    ssize_t r;

    if (s->state == LOADGEN_CONNECTING) {
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0 || err) {
            return -1;
        }
        s->state = LOADGEN_SENDING;
    }
    if (s->state == LOADGEN_SENDING) {
        r = send(s->fd, s->msg->data + s->sent, s->msg->len - s->sent,
                 MSG_NOSIGNAL);
        if (r < 0) {
            return errno == EAGAIN ? 0 : -1;
        }
        s->sent += (size_t) r;
        if (s->sent < s->msg->len) {
            return 0;
        }
        s->state = LOADGEN_READING;
        ev.events = EPOLLIN;
        ev.data.ptr = s;
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
        return 0;
    }
    r = recv(s->fd, loadgen_scratch, sizeof(loadgen_scratch), 0);
    if (r < 0) {
        return errno == EAGAIN ? 0 : -1;
    }
    if (r == 0) {
        /* complete when the whole reply came before the server's EOF */
        return s->got == resp ? 1 : -1;
    }
    s->got += (size_t) r;
    return s->got > resp ? -1 : 0;
}


/* CONC sessions at a time for SECONDS (or MAX sessions); prints counts. */
static int
loadgen_rate(char *hellos, int conc, double seconds, long max,
             uint32_t req, uint32_t resp)
{
    static struct loadgen_slot slots[LOADGEN_MAX_CONC];
    struct loadgen_msg msgs[LOADGEN_MAX_HELLO];
    struct epoll_event evs[LOADGEN_MAX_CONC];
    long done = 0, errors = 0, started = 0;
    int nmsg = 0, ep, i, n, active;
    double t0, now, last = 0, deadline;
    char *tok, *save = NULL;

    for (tok = strtok_r(hellos, ",", &save); tok && nmsg < LOADGEN_MAX_HELLO;
         tok = strtok_r(NULL, ",", &save))
    {
        loadgen_msg_make(&msgs[nmsg++], tok, 'Q', req, resp);
    }
    if (conc < 1 || conc > LOADGEN_MAX_CONC || nmsg == 0) {
        fprintf(stderr, "loadgen: bad rate arguments\n");
        return 2;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    t0 = loadgen_now();
    deadline = t0 + seconds;
    for (i = 0; i < conc; i++) {
        slots[i].fd = -1;
        if (loadgen_slot_start(ep, &slots[i], &msgs[started % nmsg], t0) < 0) {
            errors++;
        }
        started++;
    }
    for (;;) {
        n = epoll_wait(ep, evs, LOADGEN_MAX_CONC, 100);
        now = loadgen_now();
        for (i = 0; i < n; i++) {
            struct loadgen_slot *s = evs[i].data.ptr;
            int rc = loadgen_slot_run(ep, s, resp);

            if (rc == 0) {
                continue;
            }
            loadgen_slot_close(ep, s);
            if (rc > 0) {
                done++;
                last = now;
            } else {
                errors++;
            }
        }
        active = 0;
        for (i = 0; i < conc; i++) {
            struct loadgen_slot *s = &slots[i];

            if (s->state != LOADGEN_IDLE
                && now - s->started > LOADGEN_SESSION_TIMEOUT)
            {
                loadgen_slot_close(ep, s);
                errors++;
            }
            if (s->state == LOADGEN_IDLE && now < deadline && started < max) {
                if (loadgen_slot_start(ep, s, &msgs[started % nmsg], now) < 0) {
                    errors++;
                }
                started++;
            }
            if (s->state != LOADGEN_IDLE) {
                active++;
            }
        }
        if (active == 0 || now > deadline + LOADGEN_SESSION_TIMEOUT + 1) {
            break;
        }
    }
    for (i = 0; i < conc; i++) {
        if (slots[i].state != LOADGEN_IDLE) {
            loadgen_slot_close(ep, &slots[i]);
            errors++;
        }
    }
    printf("{\"sessions\": %ld, \"errors\": %ld, \"seconds\": %.6f}\n",
           done, errors, (last > t0 ? last : loadgen_now()) - t0);
    return 0;
}


static int
loadgen_cmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


/* Sorts n samples (microseconds) and prints their percentiles as JSON. */
static void
loadgen_print_samples(double *samples, long n, long errors)
{
    double sum = 0;
    long i;

    for (i = 0; i < n; i++) {
        sum += samples[i];
    }
    qsort(samples, (size_t) n, sizeof(double), loadgen_cmp);
    printf("{\"n\": %ld, \"errors\": %ld, \"p50_us\": %.1f, \"p90_us\": %.1f, "
           "\"p99_us\": %.1f, \"max_us\": %.1f, \"mean_us\": %.1f}\n",
           n, errors, samples[n / 2], samples[(n * 90) / 100],
           samples[(n * 99) / 100], samples[n - 1], sum / (double) n);
}


/* Sequential sessions: connect to first reply byte, in microseconds. */
static int
loadgen_lat(const char *hello, long count, double seconds)
{
    struct loadgen_msg msg;
    double *samples, t0, t1, start;
    long n = 0, errors = 0, i;
    unsigned char b;
    int fd;

    loadgen_msg_make(&msg, hello, 'Q', 1, 1);
    samples = calloc((size_t) count, sizeof(double));
    if (samples == NULL) {
        loadgen_die("calloc");
    }
    start = loadgen_now();
    for (i = 0; i < count && loadgen_now() - start < seconds; i++) {
        t0 = loadgen_now();
        fd = loadgen_connect(0);
        if (fd < 0) {
            errors++;
            continue;
        }
        loadgen_timeouts(fd, 5);
        if (loadgen_send_all(fd, msg.data, msg.len) < 0
            || recv(fd, &b, 1, 0) != 1)
        {
            errors++;
            close(fd);
            continue;
        }
        t1 = loadgen_now();
        while (recv(fd, loadgen_scratch, sizeof(loadgen_scratch), 0) > 0) {
            /* wait for the server's EOF: it closes first */
        }
        close(fd);
        samples[n++] = (t1 - t0) * 1e6;
    }
    if (n == 0) {
        printf("{\"n\": 0, \"errors\": %ld}\n", errors);
        return 1;
    }
    loadgen_print_samples(samples, n, errors);
    return 0;
}


/*
 * One session, then COUNT round trips of a 16-byte 'R' command carrying 1
 * byte and a 1-byte reply: the relay's own latency, without connection
 * setup. Times in microseconds.
 */
static int
loadgen_ping(const char *hello, long count, double seconds)
{
    struct loadgen_msg msg;
    unsigned char req[17], b;
    double *samples, t0, start;
    long n = 0, i;
    int fd;

    loadgen_msg_make(&msg, hello, 'R', 1, 1);
    loadgen_cmd(req, 'R', 1, 1);
    req[16] = 0;
    samples = calloc((size_t) count + 1, sizeof(double));
    if (samples == NULL) {
        loadgen_die("calloc");
    }
    fd = loadgen_connect(0);
    if (fd < 0) {
        loadgen_die("connect");
    }
    loadgen_timeouts(fd, 5);
    /* the first exchange rides with the hello: not a sample */
    if (loadgen_send_all(fd, msg.data, msg.len) < 0 || recv(fd, &b, 1, 0) != 1) {
        loadgen_die("first exchange");
    }
    start = loadgen_now();
    for (i = 0; i < count && loadgen_now() - start < seconds; i++) {
        t0 = loadgen_now();
        if (loadgen_send_all(fd, req, sizeof(req)) < 0 || recv(fd, &b, 1, 0) != 1) {
            loadgen_die("ping");
        }
        samples[n++] = (loadgen_now() - t0) * 1e6;
    }
    close(fd);
    if (n == 0) {
        printf("{\"n\": 0, \"errors\": 0}\n");
        return 1;
    }
    loadgen_print_samples(samples, n, 0);
    return 0;
}


/*
 * One session, then CHUNKS exchanges: up sends SIZE bytes and waits for a
 * 1-byte reply; down asks for SIZE bytes and reads them all. Each chunk
 * crosses the proxy before the next is sent.
 */
static int
loadgen_pace(const char *hello, long chunks, uint32_t size, int up)
{
    struct loadgen_msg msg;
    unsigned char *req, b;
    size_t reqlen;
    uint64_t got;
    double t0;
    ssize_t r;
    long i;
    int fd;

    if (size == 0 || size > LOADGEN_IOBUF) {
        fprintf(stderr, "loadgen: pace SIZE must be 1..%d\n", LOADGEN_IOBUF);
        return 2;
    }
    loadgen_msg_make(&msg, hello, 'R', 0, 1);
    reqlen = 16 + (up ? size : 0);
    req = calloc(1, reqlen);
    if (req == NULL) {
        loadgen_die("calloc");
    }
    loadgen_cmd(req, 'R', up ? size : 0, up ? 1 : size);
    t0 = loadgen_now();
    fd = loadgen_connect(0);
    if (fd < 0) {
        loadgen_die("connect");
    }
    loadgen_timeouts(fd, 30);
    if (loadgen_send_all(fd, msg.data, msg.len) < 0 || recv(fd, &b, 1, 0) != 1) {
        loadgen_die("first exchange");
    }
    for (i = 0; i < chunks; i++) {
        if (loadgen_send_all(fd, req, reqlen) < 0) {
            loadgen_die("send");
        }
        for (got = 0; got < (up ? 1 : size); got += (uint64_t) r) {
            r = recv(fd, loadgen_scratch, (up ? 1 : size) - got, 0);
            if (r <= 0) {
                loadgen_die("recv");
            }
        }
    }
    close(fd);
    printf("{\"bytes\": %llu, \"seconds\": %.6f}\n",
           (unsigned long long) chunks * size, loadgen_now() - t0);
    return 0;
}


int
main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 5 && (strcmp(argv[1], "up") == 0
                      || strcmp(argv[1], "down") == 0))
    {
        loadgen_port = atoi(argv[2]);
        return loadgen_bulk(argv[3], strtoull(argv[4], NULL, 10),
                            argv[1][0] == 'u');
    }
    if (argc >= 9 && strcmp(argv[1], "rate") == 0) {
        loadgen_port = atoi(argv[2]);
        return loadgen_rate(argv[3], atoi(argv[4]), atof(argv[5]),
                            atol(argv[6]), (uint32_t) atol(argv[7]),
                            (uint32_t) atol(argv[8]));
    }
    if (argc >= 6 && strcmp(argv[1], "lat") == 0) {
        loadgen_port = atoi(argv[2]);
        return loadgen_lat(argv[3], atol(argv[4]), atof(argv[5]));
    }
    if (argc >= 6 && strcmp(argv[1], "ping") == 0) {
        loadgen_port = atoi(argv[2]);
        return loadgen_ping(argv[3], atol(argv[4]), atof(argv[5]));
    }
    if (argc >= 7 && strcmp(argv[1], "pace") == 0) {
        loadgen_port = atoi(argv[2]);
        return loadgen_pace(argv[3], atol(argv[4]), (uint32_t) atol(argv[5]),
                            strcmp(argv[6], "up") == 0);
    }
    fprintf(stderr, "usage: see the comment at the top of bench/loadgen.c\n");
    return 2;
}
