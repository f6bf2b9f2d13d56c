/* SPDX-License-Identifier: MIT */
/*
 * One client connection and its upstream: the session object and its state
 * machine. Every path out goes through session_finalize().
 *
 *   accept -> PREREAD -> route -> CONNECT (next upstream on failure)
 *          -> RELAY (both ways) -> finalize: log, cancel timer, close, free
 */
#ifndef SNIRELAY_STREAM_SESSION_H
#define SNIRELAY_STREAM_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "event/loop.h"
#include "net/sock.h"
#include "proto/http_head.h"
#include "proto/proxy_proto.h"
#include "proto/tls_hello.h"
#include "stream/balance.h"
#include "stream/limit_conn.h"
#include "stream/stream.h"

enum session_state {
    SESSION_PREREAD, /* reading the ClientHello */
    SESSION_CONNECT, /* waiting for an upstream connect() */
    SESSION_RELAY,   /* moving bytes both ways */
    SESSION_CLOSED,  /* finalized; freed after this loop batch */
};

/* How preread ended: $ssl_preread_status. */
enum preread_status {
    PREREAD_NONE,   /* preread not run (ssl_preread off) */
    PREREAD_OK,     /* a hello with a server name */
    PREREAD_NO_SNI, /* a hello without one */
    PREREAD_NOT_TLS,
    PREREAD_MALFORMED,
    PREREAD_TOO_LARGE,
    PREREAD_TIMEOUT,
};

/* One direction of the relay: bytes read from one side, not yet written. */
struct relay_dir {
    unsigned char *buf; /* from relay.c's pool while bytes wait; NULL when
                           empty (the preread buffer first, for c2u) */
    size_t cap;
    size_t pos;    /* first byte not yet written */
    size_t last;   /* end of bytes read */
    bool eof;      /* the source sent FIN */
    bool shut;     /* FIN passed on to the destination */
    bool delayed;  /* over its rate: the source is not read until `delay` */
    uint64_t rate; /* proxy_upload_rate / proxy_download_rate, 0: none */
    struct loop_timer delay; /* set up by relay_start(); fn NULL before */
};

struct session {
    uint64_t id;          /* $connection */
    struct session *prev; /* live sessions of this process */
    struct session *next;
    enum session_state state;
    struct stream_conf *conf; /* generation the session started in */
    struct stream_listen *listen;
    struct stream_server *server; /* default until preread picks one */
    struct loop *loop;
    struct loop_io client;   /* client socket */
    struct loop_io upstream; /* upstream socket, fd -1 if none */
    struct loop_timer timer; /* preread, connect or idle deadline */
    const char *action;      /* "while ..." text for the error log */

    struct sockaddr_storage client_addr; /* $remote_addr (after realip) */
    struct sockaddr_storage local_addr;
    struct proxy_proto *pp; /* malloc'd on proxy_protocol listens */
    bool has_pp;            /* a PROXY header was read */
    bool has_realip;        /* client_addr came from it */
    struct sockaddr_storage realip_addr; /* the peer, when has_realip */

    /* preread */
    struct tls_hello hello;
    enum preread_status preread; /* TLS preread: $ssl_preread_status */
    struct http_head http;
    enum preread_status http_preread; /* HTTP preread (PREREAD_OK: a Host) */
    unsigned char *pre_buf;           /* client bytes read during preread */
    size_t pre_len;
    size_t pre_cap;

    /* upstream */
    struct stream_upstream *up; /* upstream being tried, or NULL */
    struct balancer *bal;       /* up->bal, or single_bal */
    struct balancer single_bal; /* for a literal address from a value */
    struct balance_peer single_peer;
    char single_name[SOCK_ADDR_TEXT_MAX]; /* single_peer's name */
    struct balance_peer *peer;            /* peer being connected/used */
    bool peer_held; /* peer still counted in its conns (proxy_release) */
    bool lingering; /* draining: ends when the timer fires (relay_drain) */
    struct resolver_wait rwait;       /* while a name is being resolved */
    struct stream_resolver *resolver; /* the one rwait waits on */
    struct balance_peer *dyn_peers; /* malloc'd: a resolved name's addresses */
    char target[RESOLVER_NAME_MAX + 8]; /* the name being resolved, ":port" */
    int target_port;
    struct balance_try try;
    unsigned tries;            /* connect attempts made */
    int64_t start_ms;          /* accept time */
    int64_t upstream_start_ms; /* first connect attempt */
    int64_t connect_start_ms;  /* current connect attempt */
    int64_t connected_ms;      /* current upstream connected */
    int64_t first_byte_ms;     /* first byte from upstream, or 0 */
    int64_t last_active_ms;    /* last read or write (proxy_timeout) */
    char upstream_addrs[160];  /* "a:1, b:2" ($upstream_addr) */
    char connect_times[64];    /* "0.001, -" */

    /* relay */
    struct relay_dir c2u; /* client -> upstream */
    struct relay_dir u2c; /* upstream -> client */

    /* counters for the log */
    uint64_t bytes_received; /* from the client, preread included */
    uint64_t bytes_sent;     /* to the client */
    uint64_t upstream_bytes_sent;
    uint64_t upstream_bytes_received;
    int status; /* $status: 200 400 403 500 502 503 */
    struct limit_conn_held limits[LIMIT_CONN_MAX_RULES]; /* counted */
    size_t nlimits;
    uint8_t limit_conn_status; /* enum limit_conn_status */
};

/*
 * Accepts on conf's listeners (each one's fd) on loop l, at most max
 * sessions at once: at the limit, or when descriptors run out, accepting
 * pauses until a session ends. Returns 0 or -1.
 */
int session_serve(struct loop *l, struct stream_conf *conf, uint64_t max);

/* Stops accepting for good (graceful stop); the sockets stay open. */
void session_stop_accepting(void);

/* Calls fn(data) whenever the last live session ends. */
void session_on_idle(void (*fn)(void *), void *data);

/*
 * Ends s with status: writes the access log, cancels the timer, closes both
 * sockets and frees s after the current loop batch.
 */
void session_finalize(struct session *s, int status);

/* Ends every live session (fast stop). */
void session_close_all(void);

/* Number of sessions alive in this process. */
uint64_t session_count(void);

/*
 * After accept (and the PROXY header): allow/deny, limit_conn, then
 * preread or proxy_pass.
 */
void session_start_phases(struct session *s);

/* Entry points between the session modules. */
void preread_start(struct session *s);
void proxy_start(struct session *s);
void relay_start(struct session *s);

/* Gives s's relay buffers back (session_finalize()). */
void relay_release(struct session *s);

/*
 * On a graceful stop: a relaying session whose upstream has closed (its
 * bytes delivered) ends after a short linger instead of being waited for.
 * Other sessions are left alone.
 */
void relay_drain(struct session *s);

/* True once the process stopped accepting for good (graceful stop). */
bool session_is_draining(void);

/* Formats an error-log line for s with nginx's context suffix. */
void session_log(struct session *s, enum errlog_level level, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));

#endif
