/* SPDX-License-Identifier: MIT */
/*
 * Socket helpers. Addresses here come from trusted config or from the kernel;
 * names from the network never reach sock_parse_addr() as a routing input
 * before validation (STYLE rule 31).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/sock.h"


static int sock_parse_port(const char *p, size_t len);


static int
sock_parse_port(const char *p, size_t len)
{
    int port = 0;

    if (len == 0 || len > 5) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        port = port * 10 + (p[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}


int
sock_parse_addr(const char *text, size_t len, int default_port,
                struct sockaddr_storage *ss, socklen_t *sslen)
{
    char host[64];
    const char *port_p = NULL;
    size_t host_len = len;
    int port = default_port;

    memset(ss, 0, sizeof(*ss));
    if (len > 0 && text[0] == '[') {
        const char *end = memchr(text, ']', len);
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        if (end == NULL || (size_t)(end - text - 1) >= sizeof(host)) {
            return -1;
        }
        host_len = (size_t)(end - text - 1);
        memcpy(host, text + 1, host_len);
        host[host_len] = '\0';
        if ((size_t)(end - text) + 1 < len) {
            if (end[1] != ':') {
                return -1;
            }
            port_p = end + 2;
            port = sock_parse_port(port_p, len - (size_t)(port_p - text));
        }
        if (port <= 0 || inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*sin6);
        return 0;
    }

    const char *colon = memchr(text, ':', len);
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;

    if (colon != NULL) {
        host_len = (size_t)(colon - text);
        port = sock_parse_port(colon + 1, len - host_len - 1);
    } else if (sock_parse_port(text, len) > 0) {
        /* "80" alone means *:80, as in nginx's listen. */
        port = sock_parse_port(text, len);
        host_len = 0;
    }
    if (port <= 0 || host_len >= sizeof(host)) {
        return -1;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *sslen = sizeof(*sin);
    if (host_len == 0 || (host_len == 1 && text[0] == '*')) {
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        return 0;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    /* inet_pton takes only dotted quads, never "127.1" or "0x7f.1". */
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}


bool
sock_is_unix(const char *text, size_t len)
{
    /* Any case, as nginx's ngx_parse_url(). */
    return len >= 5 && strncasecmp(text, "unix:", 5) == 0;
}


int
sock_parse_unix(const char *text, size_t len, struct sockaddr_storage *ss,
                socklen_t *sslen, const char **err)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    const char *path = text + 5;
    const size_t path_len = len - 5;

    memset(ss, 0, sizeof(*ss));
    if (!sock_is_unix(text, len) || path_len == 0) {
        *err = "no path in the unix domain socket";
        return -1;
    }
    /* nginx's limit: the path and its NUL fit in sun_path. */
    if (path_len >= sizeof(sun->sun_path) ||
        memchr(path, '\0', path_len) != NULL) {
        *err = "too long path in the unix domain socket";
        return -1;
    }
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, path_len);
    *sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + 1);
    return 0;
}


int
sock_parse_peer(const char *text, size_t len, struct sockaddr_storage *ss,
                socklen_t *sslen)
{
    const char *colon = len > 0 ? memrchr(text, ':', len) : NULL;

    if (colon == NULL || colon == text || text[0] == '*') {
        return -1;
    }
    return sock_parse_addr(text, len, 0, ss, sslen);
}


/* "unix:" and the path of sun, which may lack one (an unbound peer). */
static char *
sock_unix_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
    const size_t n = strnlen(sun->sun_path, sizeof(sun->sun_path));

    snprintf(buf, cap, "unix:%.*s", (int)n, sun->sun_path);
    return buf;
}


char *
sock_addr_host(const struct sockaddr *sa, char *buf, size_t cap)
{
    const void *src =
        sa->sa_family == AF_INET6
            ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
            : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;

    if (sa->sa_family == AF_UNIX) {
        return sock_unix_text(sa, buf, cap);
    }
    if ((sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
        inet_ntop(sa->sa_family, src, buf, (socklen_t)cap) == NULL) {
        snprintf(buf, cap, "?");
    }
    return buf;
}


int
sock_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    }
    if (sa->sa_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    }
    return 0;
}


char *
sock_addr_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_UNIX) {
        return sock_unix_text(sa, buf, cap);
    }
    sock_addr_host(sa, host, sizeof(host));
    snprintf(buf, cap, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
             sock_addr_port(sa));
    return buf;
}


bool
sock_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) {
        return false;
    }
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
    }
    if (a->sa_family == AF_UNIX) {
        const struct sockaddr_un *x = (const struct sockaddr_un *)a;
        const struct sockaddr_un *y = (const struct sockaddr_un *)b;
        return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
    }
    return false;
}


bool
sock_addr_is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
               htonl(INADDR_ANY);
    }
    if (sa->sa_family == AF_INET6) {
        return IN6_IS_ADDR_UNSPECIFIED(
            &((const struct sockaddr_in6 *)sa)->sin6_addr);
    }
    return false;
}


int
sock_listen(const struct sockaddr *sa, socklen_t len,
            const struct sock_listen_opts *o, const char **what)
{
    const int one = 1;
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    *what = "socket()";
    if (fd == -1) {
        return -1;
    }
    *what = "setsockopt(SO_REUSEADDR)";
    if (sa->sa_family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1) {
        goto failed;
    }
    *what = "setsockopt(SO_REUSEPORT)";
    if (o->reuseport && sa->sa_family != AF_UNIX &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1) {
        goto failed;
    }
    *what = "setsockopt(IPV6_V6ONLY)";
    if (sa->sa_family == AF_INET6) {
        const int v6only = o->ipv6only != 0; /* nginx default: on */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
                       sizeof(v6only)) == -1) {
            goto failed;
        }
    }
    *what = "bind()";
    if (bind(fd, sa, len) == -1) {
        goto failed;
    }
    if (sa->sa_family == AF_UNIX) {
        /* As nginx: any local user may connect; the directory decides. */
        const char *path = ((const struct sockaddr_un *)sa)->sun_path;
        *what = "chmod()";
        if (chmod(path, S_IRUSR | S_IWUSR | S_IRGRP | S_IWGRP | S_IROTH |
                            S_IWOTH) == -1) {
            const int saved = errno;
            unlink(path);
            errno = saved;
            goto failed;
        }
    }
    if (sock_listen_configure(fd, o, what) == -1) {
        if (sa->sa_family == AF_UNIX) {
            const int saved = errno;
            unlink(((const struct sockaddr_un *)sa)->sun_path);
            errno = saved;
        }
        goto failed;
    }
    return fd;

failed:;
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}


int
sock_listen_configure(int fd, const struct sock_listen_opts *o,
                      const char **what)
{
    const int defer_s = o->deferred ? 1 : 0; /* nginx's 1 s, see sock.h */
    const int fastopen = o->fastopen >= 0 ? o->fastopen : 0;
    const int keepalive = o->keepalive > 0;
    const int nodelay = o->nodelay;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);

    /* TCP options mean nothing to a unix-domain listener: only listen(). */
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
        *what = "getsockname()";
        return -1;
    }
    if (ss.ss_family == AF_UNIX) {
        *what = "listen()";
        return listen(fd, o->backlog);
    }
    *what = "setsockopt(SO_KEEPALIVE)";
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive,
                   sizeof(keepalive)) == -1) {
        return -1;
    }
    if (keepalive) {
        /* Tuning that fails leaves the system's value: not fatal. */
        if (o->keepidle_s > 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &o->keepidle_s,
                       sizeof(int));
        }
        if (o->keepintvl_s > 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &o->keepintvl_s,
                       sizeof(int));
        }
        if (o->keepcnt > 0) {
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &o->keepcnt, sizeof(int));
        }
    }
    *what = "setsockopt(SO_RCVBUF)";
    if (o->rcvbuf >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(int)) == -1) {
        return -1;
    }
    *what = "setsockopt(SO_SNDBUF)";
    if (o->sndbuf >= 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(int)) == -1) {
        return -1;
    }
    *what = "setsockopt(TCP_FASTOPEN)";
    if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &fastopen,
                   sizeof(fastopen)) == -1) {
        return -1;
    }
    *what = "setsockopt(TCP_NODELAY)";
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay)) ==
        -1) {
        return -1;
    }
    *what = "setsockopt(TCP_DEFER_ACCEPT)";
    if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s,
                   sizeof(defer_s)) == -1) {
        return -1;
    }
    /* On a socket that listens already this only changes the backlog. */
    *what = "listen()";
    return listen(fd, o->backlog);
}


/* Sets the SOCK_CONNECT_* options of flags on a socket not yet connected. */
static void
sock_connect_options(int fd, unsigned flags)
{
    const int one = 1;

    if (flags & SOCK_CONNECT_NODELAY) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (flags & SOCK_CONNECT_KEEPALIVE) {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    }
}


int
sock_connect(const struct sockaddr *sa, socklen_t len, unsigned flags)
{
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd == -1) {
        return -1;
    }
    sock_connect_options(fd, flags);
    if (connect(fd, sa, len) == -1 && errno != EINPROGRESS) {
        const int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}


int
sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1) {
        return errno;
    }
    return err;
}


void
sock_nodelay_set(int fd, int on)
{
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}


int
sock_parse_local(const char *text, size_t len, struct sockaddr_storage *ss,
                 socklen_t *sslen)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    const char *colon;
    char host[64];
    size_t host_len = len;
    int port = 0;

    memset(ss, 0, sizeof(*ss));
    if (len == 0 || len >= sizeof(host)) {
        return -1;
    }
    /* nginx's ngx_parse_addr_port(): IPv6 only in brackets, port 1-65535. */
    if (text[0] == '[') {
        const char *end = memchr(text, ']', len);

        if (end == NULL) {
            return -1;
        }
        host_len = (size_t)(end - text - 1);
        memcpy(host, text + 1, host_len);
        host[host_len] = '\0';
        if ((size_t)(end - text) + 1 < len) {
            if (end[1] != ':') {
                return -1;
            }
            port = sock_parse_port(end + 2, len - (size_t)(end + 2 - text));
        }
        if (port < 0 || inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            return -1;
        }
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *sslen = sizeof(*sin6);
        return 0;
    }
    colon = memchr(text, ':', len);
    if (colon != NULL) {
        host_len = (size_t)(colon - text);
        port = sock_parse_port(colon + 1, len - host_len - 1);
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (port < 0 || inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        return -1;
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *sslen = sizeof(*sin);
    return 0;
}


int
sock_connect_from(const struct sockaddr *sa, socklen_t len,
                  const struct sockaddr *local, socklen_t local_len,
                  bool transparent, unsigned flags, const char **failed)
{
    const int one = 1;
    int fd =
        socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    *failed = NULL;
    if (fd == -1) {
        return -1;
    }
    sock_connect_options(fd, flags);
    if (transparent) {
        const int rc =
            sa->sa_family == AF_INET6
                ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one,
                             sizeof(one))
                : setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
        if (rc == -1) {
            *failed = sa->sa_family == AF_INET6 ? "setsockopt(IPV6_TRANSPARENT)"
                                                : "setsockopt(IP_TRANSPARENT)";
            goto fail;
        }
    }
    if (sock_addr_port(local) == 0) {
        /* The port is chosen at connect(), per destination (nginx). */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    }
    if (bind(fd, local, local_len) == -1) {
        *failed = "bind";
        goto fail;
    }
    if (connect(fd, sa, len) == -1 && errno != EINPROGRESS) {
        goto fail;
    }
    return fd;

fail : {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}
}


int
sock_transparent_probe(int family)
{
    const int one = 1;
    const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc;

    if (fd == -1) {
        return errno;
    }
    rc = family == AF_INET6
             ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
             : setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
    rc = rc == -1 ? errno : 0;
    close(fd);
    return rc;
}
