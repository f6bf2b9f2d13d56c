/* SPDX-License-Identifier: MIT */
/*
 * The upstream `zone NAME [SIZE]` directive (nginx's
 * ngx_stream_upstream_zone_module): the run-time state of the servers of
 * every upstream naming the zone is kept in shared memory, so all workers
 * see one set of failures (max_fails/fail_timeout), one smooth
 * round-robin, and one count of active connections (least_conn,
 * random two, max_conns). A zone belongs to one configuration generation:
 * a reload starts the new one fresh, as nginx re-initialises upstream
 * zones.
 *
 * Around every balancer call on a zoned upstream the zone is locked, the
 * shared state copied into the worker's balancer, balance_*() called and
 * the state copied back (stream/peer_state). Connection counts are tagged
 * with the worker's pid (core/owned_counts): a worker that dies gives
 * nothing back itself, the master reaps its pid (upstream_zone_reap()).
 */
#ifndef SNIRELAY_STREAM_UPSTREAM_ZONE_H
#define SNIRELAY_STREAM_UPSTREAM_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct balance_peer;
struct balance_try;
struct balancer;
struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct stream_conf;
struct stream_upstream;
struct upstream_zone;

/* `zone NAME [SIZE]` inside upstream{} (conf is the upstream). */
const char *upstream_zone_set(struct conf_ctx *cf, const struct conf_node *n,
                              const struct conf_cmd *cmd, void *conf);

/* The upstream zone named name in conf, or NULL. */
struct upstream_zone *upstream_zone_find(const struct stream_conf *conf,
                                         const char *name);

/*
 * Once every upstream's balancer is built: checks each zone has a size
 * and room for its servers, maps it and fills it from the balancers.
 * NULL, or a message with the zone's file:line.
 */
const char *upstream_zone_finish(struct conf_ctx *cf, struct stream_conf *conf);

/* Unmaps conf's upstream zones. */
void upstream_zone_free_all(struct stream_conf *conf);

/* In the master: gives back what worker pid held; returns counts freed. */
uint64_t upstream_zone_reap(struct stream_conf *conf, int pid);

/*
 * balance_pick() on b, with u's shared state when b is the balancer of a
 * zoned upstream u (u may be NULL). *is_shared tells whether the pick is
 * counted in the zone: pass it back to upstream_peer_failed() and
 * upstream_peer_release().
 */
struct balance_peer *upstream_peer_pick(struct stream_upstream *u,
                                        struct balancer *b,
                                        struct balance_try *t, int64_t now_ms,
                                        bool *is_shared);

/*
 * Clears the failures of u's server i in the zone (a `resolve` slot got
 * another address); nothing when u has no zone.
 */
void upstream_zone_forget(struct stream_upstream *u, size_t i);

/* balance_connected(), sharing the result as above. */
void upstream_peer_connected(struct stream_upstream *u, struct balancer *b,
                             struct balance_peer *p);

/* balance_done(failed), sharing the failure as above. */
void upstream_peer_failed(struct stream_upstream *u, struct balancer *b,
                          struct balance_peer *p, int64_t now_ms,
                          bool is_shared);

/* balance_release(), as above. */
void upstream_peer_release(struct stream_upstream *u, struct balancer *b,
                           struct balance_peer *p, bool is_shared);

#endif
