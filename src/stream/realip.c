/* SPDX-License-Identifier: MIT */
/*
 * PROXY protocol in and out. A listener marked proxy_protocol requires the
 * header from every client and never guesses (the spec's rule): a missing
 * or broken header closes the session. The header's addresses fill
 * $proxy_protocol_*; $remote_addr takes the header's address only when the
 * peer is in set_real_ip_from ($realip_remote_addr keeps the peer).
 */

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/cidr.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "proto/proxy_proto.h"
#include "stream/realip.h"
#include "stream/session.h"
#include "stream/stream.h"


static void realip_io(struct loop_io *io, uint32_t events);
static void realip_timer(struct loop_timer *t);
static void realip_done(struct session *s);
static const char *realip_add_from(struct conf_ctx *cf,
                                   struct stream_settings *set,
                                   const struct cidr *net);
static int realip_keep_tlvs(struct session *s);


const char *
realip_from_set(struct conf_ctx *cf, const struct conf_node *n,
                const struct conf_cmd *cmd, void *conf)
{
    struct stream_settings *set = conf;
    struct cidr one;
    const char *a = n->args[1];
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    const char *rv = NULL;

    (void)cmd;
    memset(&one, 0, sizeof(one));
    if (strcmp(a, "unix:") == 0) {
        /* Trusts every unix-domain peer, as nginx's "unix:". */
        one.family = AF_UNIX;
        return realip_add_from(cf, set, &one);
    }
    if (cidr_parse(a, strlen(a), &one) == 0) {
        return realip_add_from(cf, set, &one);
    }
    /* A host name from the config: every address it has now, as nginx. */
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (strchr(a, '/') != NULL || getaddrinfo(a, NULL, &hints, &res) != 0) {
        return conf_msg(cf, "host not found in set_real_ip_from \"%s\"", a);
    }
    for (const struct addrinfo *ai = res; ai != NULL && rv == NULL;
         ai = ai->ai_next) {
        char host[SOCK_ADDR_TEXT_MAX];
        sock_addr_host(ai->ai_addr, host, sizeof(host));
        if (cidr_parse(host, strlen(host), &one) == 0) {
            rv = realip_add_from(cf, set, &one);
        }
    }
    freeaddrinfo(res);
    return rv;
}


/* Appends net to set's set_real_ip_from list. NULL or a message. */
static const char *
realip_add_from(struct conf_ctx *cf, struct stream_settings *set,
                const struct cidr *net)
{
    struct cidr *nets =
        arena_alloc(cf->arena, sizeof(*nets) * (set->nreal_ip_from + 1));

    if (nets == NULL) {
        return "out of memory";
    }
    if (set->nreal_ip_from > 0) {
        memcpy(nets, set->real_ip_from, sizeof(*nets) * set->nreal_ip_from);
    }
    nets[set->nreal_ip_from] = *net;
    set->real_ip_from = nets;
    set->nreal_ip_from++;
    return NULL;
}


const char *
realip_proxy_protocol_set(struct conf_ctx *cf, const struct conf_node *n,
                          const struct conf_cmd *cmd, void *conf)
{
    struct stream_settings *set = conf;
    const char *v = n->args[1];

    (void)cmd;
    if (set->proxy_protocol != CONF_UNSET) {
        return "\"proxy_protocol\" directive is duplicate";
    }
    if (strcmp(v, "off") == 0) {
        set->proxy_protocol = 0;
    } else if (strcmp(v, "on") == 0 || strcmp(v, "v1") == 0) {
        set->proxy_protocol = 1;
    } else if (strcmp(v, "v2") == 0) {
        set->proxy_protocol = 2;
    } else {
        return conf_msg(cf,
                        "invalid value \"%s\" in \"proxy_protocol\" "
                        "directive, it must be \"on\", \"off\", \"v1\" or "
                        "\"v2\"",
                        v);
    }
    return NULL;
}


/*
 * POST_ACCEPT: on a proxy_protocol listener, reads the header; its
 * completion (realip_done()) moves the session on.
 */
enum phase_rc
realip_phase(struct session *s)
{
    if (!s->listen->proxy_protocol) {
        return PHASE_NEXT;
    }
    s->pp = calloc(1, sizeof(*s->pp));
    if (s->pp == NULL) {
        session_fail(s, "calloc()");
        return PHASE_DONE;
    }
    proxy_proto_init(s->pp);
    s->client.fn = realip_io;
    s->timer.fn = realip_timer;
    if (session_timer_set(s, &s->timer,
                          s->server->set.proxy_protocol_timeout_ms) == -1 ||
        session_io_set(s, &s->client, LOOP_READ) == -1) {
        return PHASE_DONE;
    }
    return PHASE_AGAIN;
}


static void
realip_io(struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    /* The header is at most this long; what follows is the client's. */
    const size_t cap = PROXY_PROTO_V2_HDR_LEN + PROXY_PROTO_V2_MAX_LEN;

    (void)events;
    if (s->pre_buf == NULL) {
        s->pre_buf = malloc(cap);
        if (s->pre_buf == NULL) {
            session_fail(s, "malloc()");
            return;
        }
        s->pre_cap = cap;
    }
    /* Bounded: each round reads bytes or returns. */
    for (;;) {
        enum proxy_proto_rc rc;
        const ssize_t n =
            recv(io->fd, s->pre_buf + s->pre_len, s->pre_cap - s->pre_len, 0);

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            session_log(s, ERRLOG_INFO, "client closed connection");
            session_finalize(s, 400);
            return;
        }
        s->bytes_received += (uint64_t)n;
        rc = proxy_proto_feed(s->pp, s->pre_buf + s->pre_len, (size_t)n);
        s->pre_len += (size_t)n;
        if (rc == PROXY_PROTO_DONE) {
            if (realip_keep_tlvs(s) == -1) {
                session_fail(s, "realloc()");
                return;
            }
            /* Keep only the payload that followed the header. */
            s->pre_len -= s->pp->consumed;
            memmove(s->pre_buf, s->pre_buf + s->pp->consumed, s->pre_len);
            realip_done(s);
            return;
        }
        if (rc == PROXY_PROTO_MALFORMED) {
            session_log(s, ERRLOG_ERR, "broken PROXY protocol header: %s",
                        s->pp->reason);
            session_finalize(s, 400);
            return;
        }
        if (s->pre_len == s->pre_cap) {
            session_finalize(s, 400); /* cannot happen: the parser caps */
            return;
        }
    }
}


/*
 * With $proxy_protocol_tlv_* in the config, the header's TLV area (still
 * in pre_buf) goes right after s->pp, in the same allocation; otherwise
 * it is dropped, and so costs nothing. 0, or -1 when out of memory.
 */
static int
realip_keep_tlvs(struct session *s)
{
    struct proxy_proto *pp;
    const size_t n = s->pp->tlvs_len;

    if (!s->conf->keep_pp_tlvs || n == 0) {
        s->pp->tlvs_len = 0;
        return 0;
    }
    pp = realloc(s->pp, sizeof(*pp) + n);
    if (pp == NULL) {
        return -1;
    }
    s->pp = pp;
    memcpy(pp + 1, s->pre_buf + pp->tlvs_off, n);
    return 0;
}


static void
realip_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    session_log(s, ERRLOG_ERR, "PROXY protocol header timed out");
    session_finalize(s, 400);
}


static void
realip_done(struct session *s)
{
    const struct stream_settings *set = &s->server->set;
    const struct sockaddr *peer = (const struct sockaddr *)&s->client_addr;

    loop_timer_cancel(s->loop, &s->timer);
    if (session_io_set(s, &s->client, 0) == -1) {
        return;
    }
    s->has_pp = true;
    if (!s->pp->is_local) {
        for (size_t i = 0; i < set->nreal_ip_from; i++) {
            if (cidr_match(&set->real_ip_from[i], peer)) {
                s->realip_addr = malloc(sizeof(*s->realip_addr));
                if (s->realip_addr == NULL) {
                    session_fail(s, "malloc()");
                    return;
                }
                *s->realip_addr = s->client_addr;
                memcpy(&s->client_addr, &s->pp->src, sizeof(s->pp->src));
                break;
            }
        }
    }
    session_phase_next(s);
}


/*
 * The header's addresses: the client (the PROXY-in address when trusted)
 * and the address it connected to. When one side is IPv4 and the other
 * IPv6 (a trusted PROXY-in header of the other family), the IPv4 one is
 * written IPv4-mapped so both fit one TCP6 header. Returns false when the
 * pair has no place in a header (a family other than IPv4/IPv6): the
 * caller then sends "no addresses" (v1 UNKNOWN, v2 LOCAL), as nginx does.
 */
static bool
realip_header_addrs(const struct session *s, struct sockaddr_storage *src,
                    struct sockaddr_storage *dst)
{
    struct sockaddr_storage local = {0};
    const struct sockaddr_storage *in[2] = {&s->client_addr, &local};
    struct sockaddr_storage *out[2] = {src, dst};
    bool any6 = false;

    /* Only IPv4 and IPv6 go into a header; the rest is refused below. */
    if (s->local_addr->sa_family == AF_INET) {
        memcpy(&local, s->local_addr, sizeof(struct sockaddr_in));
    } else if (s->local_addr->sa_family == AF_INET6) {
        memcpy(&local, s->local_addr, sizeof(struct sockaddr_in6));
    } else {
        local.ss_family = s->local_addr->sa_family;
    }

    for (size_t i = 0; i < 2; i++) {
        const int fam = in[i]->ss_family;
        if (fam != AF_INET && fam != AF_INET6) {
            return false;
        }
        any6 = any6 || fam == AF_INET6;
    }
    for (size_t i = 0; i < 2; i++) {
        *out[i] = *in[i];
        if (any6 && in[i]->ss_family == AF_INET) {
            struct sockaddr_in v4;
            struct sockaddr_in6 v6;

            memcpy(&v4, in[i], sizeof(v4));
            memset(&v6, 0, sizeof(v6));
            v6.sin6_family = AF_INET6;
            v6.sin6_port = v4.sin_port;
            v6.sin6_addr.s6_addr[10] = 0xff;
            v6.sin6_addr.s6_addr[11] = 0xff;
            memcpy(&v6.sin6_addr.s6_addr[12], &v4.sin_addr, 4);
            memset(out[i], 0, sizeof(*out[i]));
            memcpy(out[i], &v6, sizeof(v6));
        }
    }
    return true;
}


int
realip_upstream_header(struct session *s, uint8_t *buf, size_t cap, size_t *len)
{
    const int version = s->server->set.proxy_protocol;
    struct sockaddr_storage src, dst;
    const char *name = NULL;
    size_t name_len = 0;
    bool has_addrs;

    *len = 0;
    if (version <= 0) {
        return 0;
    }
    /* Only v2 carries the name (an AUTHORITY TLV); v1 has no place for it. */
    if (version == 2 && s->preread == PREREAD_OK) {
        name = preread_sni(s, &name_len);
    } else if (version == 2 && s->http_preread == PREREAD_OK) {
        name = preread_host(s, &name_len);
    }
    has_addrs = realip_header_addrs(s, &src, &dst);
    if (!has_addrs) {
        name = NULL; /* a v2 LOCAL header carries no TLV */
        name_len = 0;
    }
    *len = proxy_proto_build((unsigned)version,
                             has_addrs ? (const struct sockaddr *)&src : NULL,
                             has_addrs ? (const struct sockaddr *)&dst : NULL,
                             name, name_len, buf, cap);
    return *len > 0 ? 0 : -1;
}
