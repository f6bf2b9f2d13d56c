/* SPDX-License-Identifier: MIT */
/*
 * Socket helpers: address text, listening sockets, non-blocking connect.
 */
#ifndef SNIRELAY_NET_SOCK_H
#define SNIRELAY_NET_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "[ffff:...:ffff]:65535" and "unix:" with the longest path (107) fit. */
#define SOCK_ADDR_TEXT_MAX 120

struct sock_listen_opts {
    int backlog;     /* listen(2) backlog */
    bool reuseport;  /* SO_REUSEPORT */
    int keepalive;   /* -1 unset, 0 off, 1 on */
    int keepidle_s;  /* TCP_KEEPIDLE, 0 = system default */
    int keepintvl_s; /* TCP_KEEPINTVL, 0 = system default */
    int keepcnt;     /* TCP_KEEPCNT, 0 = system default */
    int ipv6only;    /* -1 unset, 0, 1 */
    int rcvbuf;      /* SO_RCVBUF bytes, -1 unset */
    int sndbuf;      /* SO_SNDBUF bytes, -1 unset */
    int fastopen;    /* TCP_FASTOPEN queue length, -1 unset */
    bool deferred;   /* TCP_DEFER_ACCEPT (1 s, as nginx) */
    bool nodelay;    /* TCP_NODELAY, which accepted sockets inherit */
};

/*
 * Parses "1.2.3.4:80", "[::1]:80", "*:80" or "80" (wildcard IPv4) into ss.
 * A missing port gives default_port (0: port required). Returns 0, or -1
 * when text is not a numeric address (a name, or malformed).
 */
int sock_parse_addr(const char *text, size_t len, int default_port,
                    struct sockaddr_storage *ss, socklen_t *sslen);

/*
 * Parses a peer address: "1.2.3.4:80" or "[::1]:80" only, with an explicit
 * host (no "*", no empty host, no bare port) and port. 0 or -1.
 */
int sock_parse_peer(const char *text, size_t len, struct sockaddr_storage *ss,
                    socklen_t *sslen);

/* True when text starts with "unix:" (any case, as nginx): a unix path. */
bool sock_is_unix(const char *text, size_t len);

/*
 * Parses "unix:PATH" (trusted config text only: never a value a client
 * chose) into an AF_UNIX address. Returns 0, or -1 with *err set to
 * nginx's reason ("no path in the unix domain socket", "too long path in
 * the unix domain socket": PATH is 1 to 107 bytes, no NUL).
 */
int sock_parse_unix(const char *text, size_t len, struct sockaddr_storage *ss,
                    socklen_t *sslen, const char **err);

/*
 * Formats "1.2.3.4:80" / "[::1]:80" / "unix:/path" into buf; returns buf.
 * A unix-domain address without a path (an unbound client) is "unix:", as
 * nginx shows it. AF_UNIX addresses must come in zeroed storage.
 */
char *sock_addr_text(const struct sockaddr *sa, char *buf, size_t cap);

/*
 * Formats only the address ("1.2.3.4", "::1") into buf; returns buf. A
 * unix-domain address has no port: it is formatted whole ("unix:/path").
 */
char *sock_addr_host(const struct sockaddr *sa, char *buf, size_t cap);

/* The port of sa in host order; 0 for a unix-domain address. */
int sock_addr_port(const struct sockaddr *sa);

/*
 * True when both addresses (family, address, port; or both unix-domain
 * with the same path) are equal.
 */
bool sock_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

/*
 * True for a wildcard address (0.0.0.0 or ::, any port): a socket accepted
 * on it may have any local address, which only getsockname() tells.
 */
bool sock_addr_is_wildcard(const struct sockaddr *sa);

/*
 * Opens a non-blocking, close-on-exec listening stream socket: TCP, or a
 * unix-domain one whose file bind() creates (an existing file fails with
 * EADDRINUSE, as in nginx) and which is then made 0666, as nginx does.
 * Returns the fd, or -1 with errno set and *what naming the failing call.
 */
int sock_listen(const struct sockaddr *sa, socklen_t len,
                const struct sock_listen_opts *o, const char **what);

/*
 * Applies o's options that may change on a socket already listening
 * (SO_KEEPALIVE and its tuning, SO_RCVBUF, SO_SNDBUF, TCP_FASTOPEN,
 * TCP_DEFER_ACCEPT of 1 s as nginx, TCP_NODELAY, the listen(2) backlog)
 * to bound socket fd, resetting those o leaves unset to off. Used by
 * sock_listen(), for sockets handed over on reload, and to put the old
 * options back when a reload is given up. 0, or -1 with errno set and
 * *what naming the failing call.
 */
int sock_listen_configure(int fd, const struct sock_listen_opts *o,
                          const char **what);

/* Options sock_connect() sets on the socket before connect(). */
#define SOCK_CONNECT_NODELAY 0x1u   /* TCP_NODELAY */
#define SOCK_CONNECT_KEEPALIVE 0x2u /* SO_KEEPALIVE */

/*
 * Starts a non-blocking connect, with the SOCK_CONNECT_* options in flags
 * set first (a failure to set one is not fatal: the system's value stays).
 * Returns the fd (connecting or connected), or -1 with errno set.
 */
int sock_connect(const struct sockaddr *sa, socklen_t len, unsigned flags);

/*
 * Parses a local address for bind() as nginx's ngx_parse_addr_port():
 * "1.2.3.4", "1.2.3.4:PORT", "[::1]" or "[::1]:PORT" (PORT 1-65535; no
 * port: 0, any). 0 or -1.
 */
int sock_parse_local(const char *text, size_t len, struct sockaddr_storage *ss,
                     socklen_t *sslen);

/*
 * As sock_connect(), from the local address `local` (port 0: any, chosen
 * at connect time), with IP_TRANSPARENT first when transparent (so any
 * address may be used, even one this host does not own; needs
 * CAP_NET_ADMIN or CAP_NET_RAW). Returns the fd, or -1 with errno set and
 * *failed naming the step that failed ("setsockopt(IP_TRANSPARENT)",
 * "bind"), or NULL when socket() or connect() failed.
 */
/*
 * Whether this process may set IP_TRANSPARENT (IPV6_TRANSPARENT for
 * AF_INET6) on a socket of family: 0, or the errno (EPERM without
 * CAP_NET_RAW or CAP_NET_ADMIN).
 */
int sock_transparent_probe(int family);

int sock_connect_from(const struct sockaddr *sa, socklen_t len,
                      const struct sockaddr *local, socklen_t local_len,
                      bool transparent, unsigned flags, const char **failed);

/* Reads SO_ERROR: 0 when a connect succeeded, else the errno value. */
int sock_error(int fd);

/* Sets TCP_NODELAY on fd to on (1) or off (0); errors are ignored. */
void sock_nodelay_set(int fd, int on);

#endif
