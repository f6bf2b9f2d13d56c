/* SPDX-License-Identifier: MIT */
/*
 * Asks the kernel whether an address is this host: one route lookup over
 * NETLINK_ROUTE, as `ip route get ADDR` does.
 */
#ifndef SNIRELAY_NET_ROUTE_H
#define SNIRELAY_NET_ROUTE_H

#include <sys/socket.h>

enum route_rc {
    ROUTE_LOCAL,     /* a packet to the address is delivered to this host */
    ROUTE_NOT_LOCAL, /* it is routed away, or there is no route to it */
    ROUTE_ERROR,     /* the kernel could not be asked; errno says why */
};

/*
 * Whether sa (AF_INET or AF_INET6; the port is ignored) is delivered
 * locally: the kernel's route for it, rules and all tables included, has
 * type RTN_LOCAL. Unlike a list from getifaddrs() this sees addresses
 * added after start and `local` routes that make a whole prefix ours
 * (AnyIP). Never blocks: the kernel answers a route request before
 * sendto() returns. Costs a netlink socket and two syscalls on it.
 * Returns ROUTE_ERROR with errno set for any other family, when no socket
 * can be had (EMFILE, no netlink in a sandbox) or the answer is not one.
 */
enum route_rc route_is_local(const struct sockaddr *sa);

#endif
