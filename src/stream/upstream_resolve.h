/* SPDX-License-Identifier: MIT */
/*
 * Keeping the addresses of `server ... resolve` lines current in a worker:
 * A/AAAA answers for a name, or SRV records and their targets' addresses
 * for `service=`, applied to the server's peer slots and shared with the
 * other workers (and the next generation) through a zone.
 */
#ifndef SNIRELAY_STREAM_UPSTREAM_RESOLVE_H
#define SNIRELAY_STREAM_UPSTREAM_RESOLVE_H

#include <stddef.h>

#define UPSTREAM_RESOLVE_SLOTS 8 /* addresses kept per resolve server; SRV:
                                    per tier (primary, backup) */

struct loop_timer;

/* The timer of a struct upstream_resolve: looks its name up again. */
void upstream_resolve_timer(struct loop_timer *t);

struct arena;
struct upstream_resolve;
struct upstream_srv_target;

/* Room for an SRV server's target lookups, from a; NULL: no memory. */
struct upstream_srv_target *upstream_srv_targets_new(struct arena *a,
                                                     struct upstream_resolve *res);

/* Bytes of the shared zone that holds one server's latest answer. */
size_t upstream_resolve_shared_size(void);

#endif
