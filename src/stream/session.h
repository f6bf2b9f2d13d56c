/* SPDX-License-Identifier: MIT */
/*
 * One client connection and its upstream: the session object and the phase
 * engine that moves it along one table (session.c), as nginx's
 * ngx_stream_core_run_phases():
 *
 *   POST_ACCEPT (PROXY header, realip) -> PREACCESS (set, limit_conn)
 *   -> ACCESS (allow/deny) -> PREREAD (ssl/http preread, server_name,
 *   deny_if) -> CONTENT (return | proxy_pass: route, [resolve], connect,
 *   relay) -> finalize: log, cancel timer, close, free
 *
 * Every path out goes through session_finalize().
 */
#ifndef SNIRELAY_STREAM_SESSION_H
#define SNIRELAY_STREAM_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "event/loop.h"
#include "net/pipe_pool.h"
#include "net/sock.h"
#include "proto/http_head.h"
#include "proto/http_req.h"
#include "proto/proxy_proto.h"
#include "proto/tls_hello.h"
#include "stream/limit_conn.h"
#include "stream/stream.h"
#include "stream/upstream/balance.h"

/* Where a session is: nginx's stream phases, in their order. */
enum session_phase {
    SESSION_PHASE_POST_ACCEPT, /* PROXY header in, realip */
    SESSION_PHASE_PREACCESS,   /* set, limit_conn */
    SESSION_PHASE_ACCESS,      /* allow/deny */
    SESSION_PHASE_PREREAD,     /* ssl_preread/http_preread, deny_if */
    SESSION_PHASE_CONTENT,     /* return, or proxy_pass to relay */
    SESSION_PHASE_CLOSED,      /* finalized; freed after this loop batch */
};

/* What a phase handler did; the engine acts on it. */
enum phase_rc {
    PHASE_NEXT,  /* finished: run the next handler now */
    PHASE_AGAIN, /* waits for an event; its completion calls
                    session_phase_next() (or finalizes the session) */
    PHASE_DONE,  /* the session was finalized, or the handler owns it
                    until it ends (return, relay) */
};

struct session;

/* One step of the phase table (session.c). */
typedef enum phase_rc (*session_phase_fn)(struct session *s);

/* A value given by `set` in this session ($var, or over a map's value). */
struct session_var {
    char *data; /* malloc'd, NUL-terminated; NULL until set */
    size_t len;
    bool is_set;
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

/*
 * One direction of the relay: bytes read from one side, not yet written.
 * They wait in a buffer (the copy path) or in a pipe (splice), never in
 * both at once; each is taken when bytes come and given back when they
 * are gone, so an idle direction holds neither.
 */
struct relay_dir {
    unsigned char *buf; /* from relay.c's pool while bytes wait; NULL when
                           empty (the preread buffer first, for c2u) */
    size_t cap;
    bool adopted;               /* buf is the preread buffer: freed, never
                                   pooled */
    size_t pos;                 /* first byte not yet written */
    size_t last;                /* end of bytes read */
    struct pipe_pool_pipe pipe; /* taken while bytes wait in it; rd -1
                                   otherwise (set by relay_start()) */
    size_t piped;               /* bytes in the pipe */
    bool pipe_full;  /* splice() found no room: no reading until drained */
    bool can_splice; /* proxy_splice on and no rate: a pipe may be used */
    bool bulk;       /* a read filled the buffer: pipes from now on */
    bool eof;        /* the source sent FIN */
    bool shut;       /* FIN passed on to the destination */
    bool delayed;    /* over its rate: the source is not read until `delay` */
    uint64_t rate;   /* proxy_upload_rate / proxy_download_rate, 0: none */
    struct loop_timer delay; /* set up by relay_start(); fn NULL before */
};

/*
 * The parsers' state while preread runs (about 1.8 KiB): malloc'd by
 * preread_phase(), freed as soon as preread is over, when only the
 * results below are kept.
 */
struct preread_parse {
    struct tls_hello hello;
    struct http_head http;
};

/*
 * What preread found, for variables and the PROXY header we send: one
 * malloc'd block sized to its strings, made when preread ends (NULL if
 * preread did not run). Each string is NUL-terminated in `text`.
 */
struct preread_names {
    size_t sni_len;   /* TLS server name as sent; "" unless
                         $ssl_preread_status is ok */
    size_t alpn_len;  /* "h2,http/1.1" */
    size_t host_len;  /* HTTP Host; "" unless the HTTP preread ok */
    uint16_t version; /* tls_hello's version (0: none) */
    bool has_ech;     /* encrypted_client_hello was present */
    char text[];      /* sni NUL alpn NUL host NUL */
};

/*
 * A proxy_pass value that names an address or a host name: the one-off
 * balancer over it, and the lookup of the name. malloc'd by proxy.c only
 * for such sessions.
 */
struct session_target {
    struct balancer single_bal; /* for a literal address from a value */
    struct balance_peer single_peer;
    char single_name[SOCK_ADDR_TEXT_MAX]; /* single_peer's name */
    struct resolver_wait rwait;           /* while the name is being resolved */
    struct stream_resolver *resolver;     /* the one rwait waits on */
    char name[RESOLVER_NAME_MAX + 8];     /* the name being resolved */
    int port;
};

struct session {
    uint64_t id;          /* $connection */
    struct session *prev; /* live sessions of this process */
    struct session *next;
    enum session_phase phase; /* where the session is */
    unsigned phase_handler;   /* index of the running handler in the table */
    struct stream_conf *conf; /* generation the session started in */
    struct stream_listen *listen;
    struct stream_server *server; /* default until preread picks one */
    struct loop *loop;
    struct loop_io client;   /* client socket */
    bool client_nodelay;     /* TCP_NODELAY set on it */
    struct loop_io upstream; /* upstream socket, fd -1 if none */
    struct loop_timer timer; /* preread, connect or idle deadline */
    const char *action;      /* "while ..." text for the error log: the
                                running handler's, refined by it */

    struct sockaddr_storage client_addr; /* $remote_addr (after realip) */
    const struct sockaddr *local_addr;   /* $server_addr: the listener's
                                            address, or local_in */
    struct sockaddr_in6 local_in;        /* on a wildcard listener, what
                                            getsockname() said (inet only) */
    struct proxy_proto *pp; /* malloc'd on proxy_protocol listens */
    bool has_pp;            /* a PROXY header was read */
    struct sockaddr_storage *realip_addr; /* malloc'd: the peer, when
                                             client_addr came from the
                                             PROXY header; else NULL */

    /* preread */
    struct preread_parse *parse;      /* while preread runs: the worker's
                                         scratch, or malloc'd once it waits */
    struct preread_names *names;      /* malloc'd when preread ends */
    enum preread_status preread;      /* TLS preread: $ssl_preread_status */
    enum preread_status http_preread; /* HTTP preread (PREREAD_OK: a Host) */
    unsigned char *pre_buf;           /* client bytes read during preread */
    size_t pre_len;
    size_t pre_cap;
    struct session *pre_prev; /* sessions counted in the preread budget */
    struct session *pre_next; /* (preread.c) */
    size_t pre_counted;       /* bytes of pre_len counted there */
    bool pre_listed;          /* on that list */

    /* upstream */
    struct stream_upstream *up; /* upstream being tried, or NULL */
    struct balancer *bal;       /* up->bal, or target->single_bal */
    struct session_target *target; /* malloc'd for a proxy_pass value
                                      naming an address or a name */
    struct balance_peer *peer;     /* peer being connected/used */
    bool peer_held; /* peer still counted in its conns (proxy_release) */
    bool peer_shared; /* and counted in its upstream's shared zone */
    bool lingering;   /* draining: ends when the timer fires (relay_drain) */
    struct balance_peer *dyn_peers; /* malloc'd: a resolved name's addresses */
    struct balance_try *try;        /* malloc'd while connecting, else NULL */
    unsigned tries;            /* connect attempts made */
    int64_t start_ms;          /* accept time */
    int64_t upstream_start_ms; /* first connect attempt */
    int64_t connect_start_ms;  /* current connect attempt */
    int64_t connected_ms;      /* current upstream connected */
    int64_t first_byte_ms;     /* first byte from upstream, or 0 */
    int64_t last_active_ms;    /* last read or write (proxy_timeout) */
    char *upstream_addrs; /* malloc'd "a:1, b:2" ($upstream_addr), or NULL */
    char *connect_times;  /* malloc'd "0.001, -", or NULL */

    /* relay */
    struct relay_dir c2u; /* client -> upstream */
    struct relay_dir u2c; /* upstream -> client */

    /* counters for the log */
    uint64_t bytes_received; /* from the client, preread included */
    uint64_t bytes_sent;     /* to the client */
    uint64_t upstream_bytes_sent;
    uint64_t upstream_bytes_received;
    int status;               /* $status: 200 400 403 500 502 503 */
    struct session_var *vars; /* `set` values: conf->nset_vars entries,
                                 malloc'd by the first set; or NULL */
    char *ret_buf;            /* `return` text being sent, malloc'd */
    size_t ret_len;
    size_t ret_pos; /* bytes of ret_buf already sent */
    struct http_req *req;           /* a status request being read, malloc'd */
    struct limit_conn_held *limits; /* counted: LIMIT_CONN_MAX_RULES
                                       malloc'd by the first, or NULL */
    size_t nlimits;
    uint8_t limit_conn_status; /* enum limit_conn_status */

    /* metrics (stream/stats.c): series ids, METRICS_NO_SERIES for none */
    uint32_t m_listen;    /* the listener's */
    uint32_t m_route;     /* the route's, once routed */
    uint32_t m_map_route; /* the last map entry a lookup matched */
    uint32_t m_peer;      /* the upstream server's being tried or used */
    uint8_t m_end;        /* enum stats_end; UNSET: told by $status */
    bool m_preread_counted;
    bool m_peer_active; /* counted in its server's active sessions */
    bool m_first_byte;  /* first byte observed */
    uint64_t m_rx;      /* bytes_received already counted */
    uint64_t m_tx;      /* bytes_sent already counted */
    uint64_t m_urx;     /* upstream_bytes_received already counted */
    uint64_t m_utx;     /* upstream_bytes_sent already counted */
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

/*
 * Ends s after an internal failure (no memory, epoll_ctl()): logs "WHAT
 * failed (errno: text)" at alert, with errno as the failed call left it,
 * and finalizes s with 500.
 */
void session_fail(struct session *s, const char *what);

/*
 * loop_timer_set() for one of s's timers. A session is never left without
 * its deadline: on failure s is ended with session_fail(). Returns 0, or
 * -1 once s is finalized (the caller must leave it alone).
 */
int session_timer_set(struct session *s, struct loop_timer *t,
                      int64_t delay_ms);

/*
 * loop_io_set() for one of s's sockets; on failure s is ended with
 * session_fail(). Returns 0, or -1 once s is finalized.
 */
int session_io_set(struct session *s, struct loop_io *io, uint32_t mask);

/* Ends every live session (fast stop). */
void session_close_all(void);

/* Number of sessions alive in this process. */
uint64_t session_count(void);

/*
 * Runs s's phase handlers from s->phase_handler on, until one waits
 * (PHASE_AGAIN) or ends the session's walk (PHASE_DONE).
 */
void session_run_phases(struct session *s);

/*
 * The running handler's asynchronous work completed (PROXY header read,
 * preread over, name resolved, upstream connected): moves s to the next
 * handler and runs the engine. Does nothing once s is finalized.
 */
void session_phase_next(struct session *s);

/* The phase handlers, in table order (each in its module). */
enum phase_rc realip_phase(struct session *s);
enum phase_rc set_phase(struct session *s);
enum phase_rc limit_conn_phase(struct session *s);
enum phase_rc access_phase(struct session *s);
enum phase_rc preread_phase(struct session *s);
enum phase_rc access_deny_if_phase(struct session *s);
enum phase_rc status_phase(struct session *s);
enum phase_rc return_phase(struct session *s);
enum phase_rc proxy_phase(struct session *s);
enum phase_rc proxy_connect_phase(struct session *s);
enum phase_rc relay_phase(struct session *s);

/*
 * What preread found (preread.c), each a NUL-terminated string valid until
 * s is freed, with its length in *len: the TLS server name (empty unless
 * $ssl_preread_status is ok), the ALPN list, the HTTP Host (empty unless
 * that preread found one). "" before preread ended or when it did not run.
 */
const char *preread_sni(const struct session *s, size_t *len);
const char *preread_alpn(const struct session *s, size_t *len);
const char *preread_host(const struct session *s, size_t *len);

/*
 * Takes s's bytes out of the worker's preread budget and frees its parser
 * state (s ends: session_finalize()). A no-op when it has neither.
 */
void preread_release(struct session *s);

/* Gives s's relay buffers back (session_finalize()). */
void relay_release(struct session *s);

/* Frees the relay's idle pooled buffers (after a burst of sessions). */
void relay_pool_trim(void);

/*
 * On a graceful stop: a relaying session whose upstream has closed (its
 * bytes delivered) ends after a short linger instead of being waited for.
 * Other sessions are left alone. Returns 0, or -1 once s is finalized (its
 * linger timer could not be armed).
 */
int relay_drain(struct session *s);

/* True once the process stopped accepting for good (graceful stop). */
bool session_is_draining(void);

/* Formats an error-log line for s with nginx's context suffix. */
void session_log(struct session *s, enum errlog_level level, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));

#endif
