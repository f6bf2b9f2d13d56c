/* SPDX-License-Identifier: MIT */
/*
 * What sessions count into the metrics store (core/metrics), and how the
 * store is shown: Prometheus text, JSON, the HTML status page and the man
 * page section, all from the one table METRICS_FAMILIES.
 *
 * The master registers a generation's series (stats_conf_register()) before
 * its workers fork: each listener, upstream server, route (map key or
 * server_name) gets its series id in the configuration, so a worker only
 * adds to values. Nothing a client sends becomes a label.
 */
#ifndef SNIRELAY_STREAM_STATS_H
#define SNIRELAY_STREAM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct session;
struct stream_conf;

/* How a session ended: the `how` label of snirelay_sessions_ended_total. */
enum stats_end {
    STATS_END_UNSET,
    STATS_END_CLIENT_CLOSED,
    STATS_END_UPSTREAM_CLOSED,
    STATS_END_IDLE_TIMEOUT,
    STATS_END_RELAY_ERROR,
    STATS_END_SHUTDOWN,
};

/* Guard refusals: the `reason` label of snirelay_guard_refusals_total. */
enum stats_guard {
    STATS_GUARD_ALLOW_LIST,
    STATS_GUARD_IP_LITERAL,
    STATS_GUARD_SSRF,
    STATS_GUARD_LOOP,
};

/* A growing text buffer (malloc); failed once any append ran out. */
struct stats_buf {
    char *data;
    size_t len;
    size_t cap;
    bool failed;
};

/* Output formats of stats_render(). */
enum stats_format {
    STATS_PROMETHEUS,
    STATS_JSON,
    STATS_HTML,
};

/*
 * In the master, once conf is built: registers its listeners, upstream
 * servers and routes, and stores their series ids in conf. Nothing when
 * the store is not open.
 */
void stats_conf_register(struct stream_conf *conf);

/* Session hooks (no-ops while the store is not open or bound). */
void stats_session_start(struct session *s);
void stats_session_end(struct session *s);
void stats_preread(struct session *s);
void stats_route(struct session *s);
void stats_bytes(struct session *s);
void stats_try(struct session *s);
void stats_failed(struct session *s, int err);
void stats_connected(struct session *s);
void stats_released(struct session *s);
void stats_first_byte(struct session *s);
void stats_guard(enum stats_guard reason);
void stats_fds(int delta);

/*
 * Appends the store, as seen by conf's worker, to b in format f. 0, or -1
 * when the store is not open or memory ran out.
 */
int stats_render(struct stats_buf *b, const struct stream_conf *conf,
                 enum stats_format f);

/* printf into b; sets b->failed when memory runs out. */
void stats_buf_printf(struct stats_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Frees b's data. */
void stats_buf_free(struct stats_buf *b);

/*
 * Writes the METRICS section of snirelay(8), listing the families (man(7)
 * text, lines of at most 78 bytes).
 */
void stats_man(FILE *out);

#endif
