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

/* $limit_conn_status (nginx 1.17.6); NONE: no key was counted. */
enum limit_conn_status {
    LIMIT_CONN_STATUS_NONE,
    LIMIT_CONN_STATUS_PASSED,
    LIMIT_CONN_STATUS_REJECTED,
    LIMIT_CONN_STATUS_REJECTED_DRY_RUN,
};

struct shm_zone;

struct limit_conn_zone {
    const char *name;
    struct tmpl key;
    size_t size;           /* bytes of shared memory */
    struct shm_zone *shm;  /* mapped by the master, shared by every worker;
                              NULL once a newer generation took it over */
    bool is_full_logged;   /* "zone is full" said once by this process */
    struct limit_conn_zone *next;
};

/* What a session holds, to give back when it ends. */
struct limit_conn_held {
    struct shm_zone *shm; /* stays mapped for the worker's life */
    uint64_t hash;        /* the key's hash in that zone */
};

const char *limit_conn_zone_set(struct conf_ctx *cf, const struct conf_node *n,
                                const struct conf_cmd *cmd, void *conf);
const char *limit_conn_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);
/* limit_conn_log_level info|notice|warn|error (default error). */
const char *limit_conn_log_level_set(struct conf_ctx *cf,
                                     const struct conf_node *n,
                                     const struct conf_cmd *cmd, void *conf);

/*
 * Reload: zones of conf with the name and size of one of old's take over
 * its shared memory (and so its counts), as nginx keeps zones.
 */
void limit_conn_take_zones(struct stream_conf *conf, struct stream_conf *old);

/* Unmaps conf's zones (this process's mapping). */
void limit_conn_free_zones(struct stream_conf *conf);

/*
 * The master, after reaping a worker: gives back every count the dead
 * process pid held in conf's zones, and mends a zone whose lock it died
 * holding. Returns the number of counts given back.
 */
uint64_t limit_conn_reap(struct stream_conf *conf, int pid);

/*
 * Counts s against every limit_conn of its server. Returns true when s may
 * go on; false after finalizing it with 503. limit_conn_phase()
 * (stream/session.h) runs it in the PREACCESS phase.
 */
bool limit_conn_acquire(struct session *s);

/* Gives back what s counted (from session_finalize()). */
void limit_conn_release(struct session *s);

#endif
