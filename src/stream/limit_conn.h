/* SPDX-License-Identifier: MIT */
/*
 * limit_conn_zone / limit_conn: the number of sessions per key (e.g.
 * $binary_remote_addr), counted across all workers in shared memory, as
 * nginx does; over the limit the session ends with 503.
 */
#ifndef SNIRELAY_STREAM_LIMIT_CONN_H
#define SNIRELAY_STREAM_LIMIT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/tmpl.h"

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct session;
struct stream_conf;

#define LIMIT_CONN_MAX_RULES 8 /* limit_conn lines counted per session */

struct limit_conn_zone {
    const char *name;
    struct tmpl key;
    size_t size;                /* bytes of shared memory */
    struct limit_conn_shm *shm; /* mmap'd, shared by every worker */
    struct limit_conn_zone *next;
};

/* What a session holds, to give back when it ends. */
struct limit_conn_held {
    struct limit_conn_shm *shm;
    size_t slot;
};

const char *limit_conn_zone_set(struct conf_ctx *cf, const struct conf_node *n,
                                const struct conf_cmd *cmd, void *conf);
const char *limit_conn_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);

/*
 * Reload: zones of conf with the name and size of one of old's take over
 * its shared memory (and so its counts), as nginx keeps zones.
 */
void limit_conn_take_zones(struct stream_conf *conf, struct stream_conf *old);

/* Unmaps conf's zones (this process's mapping). */
void limit_conn_free_zones(struct stream_conf *conf);

/*
 * Counts s against every limit_conn of its server. Returns true when s may
 * go on; false after finalizing it with 503.
 */
bool limit_conn_acquire(struct session *s);

/* Gives back what s counted (from session_finalize()). */
void limit_conn_release(struct session *s);

#endif
