/* SPDX-License-Identifier: MIT */
/*
 * Forwarding-loop and SSRF guards. Addresses are compared, never spellings
 * (ROBUSTNESS.md §3.4): all of 127/8 and ::1 count as local, and so does
 * an address the kernel routes to this host (net/route.c), which covers
 * addresses added after start and `local` routes (AnyIP); the list from
 * getifaddrs() at start answers first, and alone when the kernel cannot be
 * asked. A listener on a wildcard address listens on every local address.
 */

#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/cidr.h"
#include "net/route.h"
#include "net/sock.h"
#include "stream/guard.h"
#include "stream/stream.h"


#define GUARD_MAX_LOCAL 64
#define GUARD_MAX_PORTS 64


static bool guard_is_local(const struct sockaddr *sa, int *route_err);
static bool guard_routed_here(const struct sockaddr *sa, int *route_err);
static bool guard_v4_routed_here(const uint8_t v4[4], int *route_err);


static struct sockaddr_storage guard_local[GUARD_MAX_LOCAL];
static size_t guard_nlocal;
static int guard_ports[GUARD_MAX_PORTS];
static size_t guard_nports;


void
guard_init(const struct stream_conf *conf)
{
    struct ifaddrs *ifa = NULL;

    guard_nlocal = 0;
    guard_nports = 0;
    if (getifaddrs(&ifa) == 0) {
        for (struct ifaddrs *i = ifa;
             i != NULL && guard_nlocal < GUARD_MAX_LOCAL; i = i->ifa_next) {
            if (i->ifa_addr == NULL) {
                continue;
            }
            if (i->ifa_addr->sa_family == AF_INET) {
                memcpy(&guard_local[guard_nlocal++], i->ifa_addr,
                       sizeof(struct sockaddr_in));
            } else if (i->ifa_addr->sa_family == AF_INET6) {
                memcpy(&guard_local[guard_nlocal++], i->ifa_addr,
                       sizeof(struct sockaddr_in6));
            }
        }
        freeifaddrs(ifa);
    }
    for (const struct stream_listen *ls = conf->listens;
         ls != NULL && guard_nports < GUARD_MAX_PORTS; ls = ls->next) {
        if (ls->addr.ss_family == AF_UNIX) {
            continue; /* no port: never a TCP loop */
        }
        guard_ports[guard_nports++] =
            sock_addr_port((const struct sockaddr *)&ls->addr);
    }
}


/* Whether the IPv4 address v4 (4 bytes) is one of ours. */
static bool
guard_is_local_v4(const uint8_t v4[4])
{
    for (size_t i = 0; i < guard_nlocal; i++) {
        const struct sockaddr_in *l =
            (const struct sockaddr_in *)&guard_local[i];
        if (l->sin_family == AF_INET && memcmp(&l->sin_addr, v4, 4) == 0) {
            return true;
        }
    }
    return false;
}


/*
 * Whether sa is this host. An IPv6 address that carries an IPv4 one
 * (::ffff:a.b.c.d, 64:ff9b::a.b.c.d, 2002:AABB:CCDD::, ...: the forms
 * cidr_classify() knows) is compared by each IPv4 address it may carry as
 * well: a v6 socket reaches ::ffff:OWN, a translator or tunnel may
 * deliver the others to us. The start-up list answers first; the kernel
 * is asked about the rest (see guard_routed_here()).
 */
static bool
guard_is_local(const struct sockaddr *sa, int *route_err)
{
    const enum cidr_class c = cidr_classify(sa);
    uint8_t v4[CIDR_EMBED_MAX][4];
    size_t nv4;

    if (c == CIDR_LOOPBACK || c == CIDR_UNSPECIFIED) {
        return true;
    }
    if (sa->sa_family == AF_INET) {
        const uint8_t *a =
            (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return guard_is_local_v4(a) || guard_v4_routed_here(a, route_err);
    }
    if (sa->sa_family != AF_INET6) {
        return false;
    }
    for (size_t i = 0; i < guard_nlocal; i++) {
        const struct sockaddr_in6 *l =
            (const struct sockaddr_in6 *)&guard_local[i];
        if (l->sin6_family == AF_INET6 &&
            memcmp(&l->sin6_addr, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                   16) == 0) {
            return true;
        }
    }
    nv4 = cidr_embedded_v4(sa, v4);
    for (size_t i = 0; i < nv4; i++) {
        if (guard_is_local_v4(v4[i])) {
            return true;
        }
    }
    if (guard_routed_here(sa, route_err)) {
        return true;
    }
    for (size_t i = 0; i < nv4; i++) {
        if (guard_v4_routed_here(v4[i], route_err)) {
            return true;
        }
    }
    return false;
}


/*
 * Whether the kernel delivers sa to this host. When it cannot be asked,
 * false, with the first errno kept in *route_err for the caller to report:
 * the start-up list has answered already.
 */
static bool
guard_routed_here(const struct sockaddr *sa, int *route_err)
{
    switch (route_is_local(sa)) {
    case ROUTE_LOCAL:
        return true;
    case ROUTE_NOT_LOCAL:
        return false;
    case ROUTE_ERROR:
        if (*route_err == 0) {
            *route_err = errno != 0 ? errno : EIO;
        }
        return false;
    }
    return false;
}


static bool
guard_v4_routed_here(const uint8_t v4[4], int *route_err)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    memcpy(&sin.sin_addr, v4, 4);
    return guard_routed_here((const struct sockaddr *)&sin, route_err);
}


bool
guard_is_loop(const struct sockaddr *sa, int *route_err)
{
    const int port = sock_addr_port(sa);
    bool listened = false;

    *route_err = 0;
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        return false;
    }
    for (size_t i = 0; i < guard_nports; i++) {
        if (guard_ports[i] == port) {
            listened = true;
            break;
        }
    }
    return listened && guard_is_local(sa, route_err);
}


bool
guard_client_unix(bool is_client, const struct sockaddr *sa)
{
    return is_client && sa->sa_family == AF_UNIX;
}


const char *
guard_ssrf_reason(const struct sockaddr *sa, const struct cidr *allow, size_t n)
{
    const enum cidr_class c = cidr_classify(sa);

    if (c == CIDR_PUBLIC) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (cidr_match(&allow[i], sa)) {
            return NULL;
        }
    }
    return cidr_class_name(c);
}


const char *
guard_target_allow_set(struct conf_ctx *cf, const struct conf_node *n,
                       const struct conf_cmd *cmd, void *conf)
{
    struct stream_settings *set = conf;
    struct cidr *nets;

    (void)cmd;
    if (set->target_allow_set) {
        return "\"proxy_target_allow\" directive is duplicate";
    }
    nets = arena_alloc(cf->arena, sizeof(*nets) * (n->nargs - 1) * 2);
    if (nets == NULL) {
        return "out of memory";
    }
    set->ntarget_allow = 0;
    for (size_t i = 1; i < n->nargs; i++) {
        const char *a = n->args[i];
        if (strcmp(a, "all") == 0) {
            /* Every address: 0.0.0.0/0 and ::/0. */
            cidr_parse("0.0.0.0/0", 9, &nets[set->ntarget_allow++]);
            cidr_parse("::/0", 4, &nets[set->ntarget_allow++]);
            continue;
        }
        if (cidr_parse(a, strlen(a), &nets[set->ntarget_allow]) == -1) {
            return conf_msg(cf,
                            "invalid network \"%s\" in "
                            "\"proxy_target_allow\"",
                            a);
        }
        set->ntarget_allow++;
    }
    set->target_allow = nets;
    set->target_allow_set = true;
    return NULL;
}
