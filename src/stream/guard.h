/* SPDX-License-Identifier: MIT */
/*
 * Guards on where a session may connect: forwarding loops (a target that is
 * this host on a port we listen on) and SSRF (an address resolved from a
 * client-supplied name that is loopback, private, link-local, ...).
 */
#ifndef SNIRELAY_STREAM_GUARD_H
#define SNIRELAY_STREAM_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct cidr;
struct stream_conf;

/* Reads this host's addresses (getifaddrs) and conf's listen ports. */
void guard_init(const struct stream_conf *conf);

/*
 * True when sa's port is one we listen on and sa is this host: 127/8, ::1,
 * an address found at start, or one the kernel routes here now (an
 * address added since, a `local` route), IPv4 addresses embedded in an
 * IPv6 sa included. Never for a unix-domain sa: only the config names
 * those, and chaining one server into another's unix listener is the
 * operator's choice. *route_err is 0, or the errno of a route lookup that
 * failed (the answer then rests on the start-up list; the caller says so
 * in the log); route_err must not be NULL.
 */
bool guard_is_loop(const struct sockaddr *sa, int *route_err);

/*
 * True when a connection to sa must be refused because its target came
 * from a value a client can choose (is_client) and sa is a unix-domain
 * socket: no SNI or Host may ever reach a local socket file.
 */
bool guard_client_unix(bool is_client, const struct sockaddr *sa);

/*
 * Why an address resolved from a client-supplied name is refused, as a
 * static text ("loopback", "private", ...), or NULL when it may be used:
 * public, or inside one of the n allowed networks.
 */
const char *guard_ssrf_reason(const struct sockaddr *sa,
                              const struct cidr *allow, size_t n);

/*
 * `proxy_target_allow CIDR|all ...;`: networks that names from clients may
 * resolve to after all (e.g. an intranet's own 10/8 services).
 */
struct conf_cmd;
struct conf_ctx;
struct conf_node;
const char *guard_target_allow_set(struct conf_ctx *cf,
                                   const struct conf_node *n,
                                   const struct conf_cmd *cmd, void *conf);

#endif
