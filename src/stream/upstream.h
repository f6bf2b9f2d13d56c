/* SPDX-License-Identifier: MIT */
/*
 * upstream{} blocks, their server lines and balancing method, and the
 * implicit upstreams that a proxy_pass address makes.
 */
#ifndef SNIRELAY_STREAM_UPSTREAM_H
#define SNIRELAY_STREAM_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct stream_conf;
struct stream_upstream;

/* The directives of an upstream{} block, for the man page generator
 * (core_directive_tables[]); the table ends with a NULL name. */
const struct conf_cmd *upstream_directives(void);

/* The `upstream NAME { ... }` directive. */
const char *upstream_block(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);

/* The upstream named name (case-insensitive, as nginx), or NULL. */
struct stream_upstream *upstream_find(const struct stream_conf *conf,
                                      const char *name, size_t len);

struct balance_peer;

/*
 * True when p (one of u's peers) holds an address of a `resolve` server,
 * looked up at run time; false for addresses written in the config or
 * resolved once at load.
 */
bool upstream_peer_is_resolved(const struct stream_upstream *u,
                               const struct balance_peer *p);

/*
 * An implicit upstream for a proxy_pass "host:port" written in the config;
 * a name is resolved now, once. *msg is set on failure (NULL returned).
 */
struct stream_upstream *upstream_implicit(struct conf_ctx *cf,
                                          struct stream_conf *conf,
                                          const char *text, const char *file,
                                          unsigned line, const char **msg);

/* Checks every upstream and prepares its balancer. NULL or a message. */
const char *upstream_finish(struct conf_ctx *cf, struct stream_conf *conf);

struct loop;

/*
 * In a worker: starts looking up `resolve` servers again as TTLs run out.
 * Returns 0, or -1 (errno ENOMEM) when a server's timer could not be armed.
 */
int upstream_resolve_start(struct stream_conf *conf, struct loop *l);

/* Stops those lookups (before the resolvers go). */
void upstream_resolve_stop(struct stream_conf *conf);

/*
 * At an accepted reload, in the master: conf's `resolve` servers take over
 * the shared answers of old's servers with the same upstream name and
 * host (the port may differ), so the new workers start from the addresses
 * last resolved.
 */
void upstream_take_resolved(struct stream_conf *conf, struct stream_conf *old);

/* Frees the balancers' memory and the `resolve` answers' zones. */
void upstream_free_all(struct stream_conf *conf);

#endif
