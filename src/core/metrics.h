/* SPDX-License-Identifier: MIT */
/*
 * Metrics in shared memory: counters that survive reloads and a killed
 * worker, and never go backwards.
 *
 * One mapping, made by the master before it forks the first worker and
 * kept for the life of the master (a reload does not replace it):
 *
 *   a registry of series     each series is a label set of one group
 *                            (a listener, an upstream server, a route...)
 *                            and owns a run of values: one per value of
 *                            every family of its group. Only the master
 *                            registers, when it loads a generation, so
 *                            workers never allocate; a series is never
 *                            removed, so its counters outlive a reload
 *                            that drops it.
 *   a slot per worker        the worker's own copy of every value; only
 *                            that worker writes it, with plain stores, so
 *                            counting takes no lock and no atomic
 *                            read-modify-write.
 *   retired                  what dead workers counted: when the master
 *                            reaps a worker it folds the worker's slot in
 *                            (counters added, maxima kept, gauges dropped)
 *                            and clears the slot for the next one.
 *
 * A value read is retired plus every live slot. The fold runs inside a
 * sequence count, so a reader that overlapped one reads again and never
 * sees a value counted twice or not at all.
 *
 * Labels come from the configuration only (listen addresses, upstream and
 * server names, map keys, server_name): never from a client. Every group
 * has an `other` series that takes what no longer fits (and routes past
 * METRICS_MAX_ROUTES), so the number of series is bounded whatever the
 * traffic.
 *
 * The families, their help text, types, units and labels are one table,
 * METRICS_FAMILIES below: the Prometheus exposition, the JSON and the man
 * page section are all generated from it (stream/metrics.c).
 */
#ifndef SNIRELAY_CORE_METRICS_H
#define SNIRELAY_CORE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SLOTS                                                      \
    256                          /* workers counted at once (the master's      \
                                    worker table) */
#define METRICS_MAX_SERIES 1024  /* label sets of every group */
#define METRICS_MAX_VALUES 16384 /* values of every series */
#define METRICS_MAX_ROUTES 256   /* route series; the rest count in other */
#define METRICS_LABEL_MAX                                                      \
    96 /* bytes of a label value, NUL included;                                \
          longer ones are cut */
#define METRICS_NO_SERIES UINT32_MAX

/* Histogram bucket upper bounds in milliseconds, then +Inf. */
#define METRICS_BUCKETS_MS                                                     \
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,    \
        300000, 1800000
#define METRICS_NBUCKETS 17 /* the bounds above and +Inf */

/* What a series labels; the label names of each are in metrics.c. */
enum metrics_group {
    METRICS_G_GLOBAL, /* no label */
    METRICS_G_LISTEN, /* listen="ADDR" */
    METRICS_G_SERVER, /* upstream="NAME", server="ADDR" */
    METRICS_G_ROUTE,  /* source="map $VAR"|"server_name", route="KEY" */
    METRICS_G_WORKER, /* worker="SLOT", pid="PID": shown per slot */
    METRICS_G_MASTER, /* no label; counted by the master only */
    METRICS_NGROUPS,
};

enum metrics_type {
    METRICS_COUNTER,   /* summed; folded into retired */
    METRICS_GAUGE,     /* summed over live workers; dropped at a death */
    METRICS_HISTOGRAM, /* METRICS_NBUCKETS counts, then the sum in ms */
    METRICS_LATEST,    /* the largest over workers; kept at a death */
    METRICS_STATE,     /* computed from the configuration when shown:
                          no value stored */
};

/*
 * X(ID, GROUP, TYPE, NAME, UNIT, LABEL, VALUES, HELP)
 *   NAME without the snirelay_ prefix; UNIT for the man page;
 *   LABEL: the name of a label whose values are fixed (one value stored
 *   per entry of VALUES, a NULL-terminated list), or NULL.
 */
#define METRICS_L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define METRICS_FAMILIES(X)                                                    \
    X(PREREAD, GLOBAL, COUNTER, "preread_verdicts_total", "sessions",          \
      "status",                                                                \
      METRICS_L("ok", "no_sni", "not_tls", "malformed", "too_large",           \
                "timeout"),                                                    \
      "Sessions by how TLS preread ended: the value of $ssl_preread_status.")  \
    X(SESSIONS, GLOBAL, COUNTER, "sessions_total", "sessions", "status",       \
      METRICS_L("200", "400", "403", "500", "502", "503"),                     \
      "Sessions ended, by $status.")                                           \
    X(ENDED, GLOBAL, COUNTER, "sessions_ended_total", "sessions", "how",       \
      METRICS_L("client_closed", "upstream_closed", "idle_timeout",            \
                "relay_error", "shutdown", "preread", "returned",              \
                "bad_request", "refused", "limited", "upstream_failed",        \
                "internal_error"),                                             \
      "Sessions ended, by how: a side closed, proxy_timeout, an error while "  \
      "relaying, a stop, during preread (client gone or preread_timeout), "    \
      "a return or status reply, or refused with their $status.")              \
    X(DURATION, GLOBAL, HISTOGRAM, "session_duration_seconds", "seconds",      \
      NULL, NULL, "Time from accept to the end of a session.")                 \
    X(RESOLVER_QUERIES, GLOBAL, COUNTER, "resolver_queries_total", "queries",  \
      NULL, NULL, "Name lookups sent to the resolver's servers.")              \
    X(RESOLVER_HITS, GLOBAL, COUNTER, "resolver_cache_hits_total", "lookups",  \
      NULL, NULL, "Name lookups answered from the resolver cache.")            \
    X(RESOLVER_ANSWERS, GLOBAL, COUNTER, "resolver_answers_total", "answers",  \
      "rcode",                                                                 \
      METRICS_L("noerror", "nxdomain", "servfail", "timeout", "error"),        \
      "Resolver answers by outcome: NOERROR with addresses, NXDOMAIN or no "   \
      "address, SERVFAIL or REFUSED, no answer in time, anything else.")       \
    X(GUARD, GLOBAL, COUNTER, "guard_refusals_total", "sessions", "reason",    \
      METRICS_L("allow_list", "ip_literal", "ssrf", "loop"),                   \
      "Sessions refused by a guard: deny_if (a name not on the allow-list), "  \
      "a client-chosen IP literal, a private or local address (SSRF), a "      \
      "forwarding loop.")                                                      \
    X(ROUTE_OVERFLOW, GLOBAL, COUNTER, "route_overflow_total", "sessions",     \
      NULL, NULL,                                                              \
      "Sessions counted under route=\"other\": their route has no series "     \
      "of its own (more routes than the cap).")                                \
    X(LISTEN_SESSIONS, LISTEN, COUNTER, "listener_sessions_total", "sessions", \
      NULL, NULL, "Sessions accepted on the listener.")                        \
    X(LISTEN_ACTIVE, LISTEN, GAUGE, "listener_sessions_active", "sessions",    \
      NULL, NULL, "Sessions open on the listener.")                            \
    X(LISTEN_RX, LISTEN, COUNTER, "listener_received_bytes_total", "bytes",    \
      NULL, NULL, "Bytes received from clients, counted as they move.")        \
    X(LISTEN_TX, LISTEN, COUNTER, "listener_sent_bytes_total", "bytes", NULL,  \
      NULL, "Bytes sent to clients, counted as they move.")                    \
    X(LISTEN_ERRORS, LISTEN, COUNTER, "listener_errors_total", "sessions",     \
      NULL, NULL,                                                              \
      "Sessions on the listener that ended with $status 400 or "               \
      "more.")                                                                 \
    X(UP_TRIES, SERVER, COUNTER, "upstream_tries_total", "connects", NULL,     \
      NULL, "Connection attempts to the upstream server.")                     \
    X(UP_FAILURES, SERVER, COUNTER, "upstream_failures_total", "connects",     \
      "reason",                                                                \
      METRICS_L("refused", "timeout", "reset", "unreachable", "error"),        \
      "Failed connection attempts to the upstream server, by reason.")         \
    X(UP_STATE, SERVER, STATE, "upstream_state", "state", "state",             \
      METRICS_L("up", "failed", "down", "backup"),                             \
      "1 for the server's state: up, failed (max_fails reached within "        \
      "fail_timeout), down, backup.")                                          \
    X(UP_ACTIVE, SERVER, GAUGE, "upstream_sessions_active", "sessions", NULL,  \
      NULL, "Sessions connected to the upstream server.")                      \
    X(UP_CONNECT, SERVER, HISTOGRAM, "upstream_connect_seconds", "seconds",    \
      NULL, NULL, "Time to connect to the upstream server.")                   \
    X(UP_FIRST_BYTE, SERVER, HISTOGRAM, "upstream_first_byte_seconds",         \
      "seconds", NULL, NULL,                                                   \
      "Time from the first connect attempt to the first byte from the "        \
      "upstream server.")                                                      \
    X(UP_RX, SERVER, COUNTER, "upstream_received_bytes_total", "bytes", NULL,  \
      NULL, "Bytes received from the upstream server, as they move.")          \
    X(UP_TX, SERVER, COUNTER, "upstream_sent_bytes_total", "bytes", NULL,      \
      NULL, "Bytes sent to the upstream server, as they move.")                \
    X(UP_LAST_FAILURE, SERVER, LATEST,                                         \
      "upstream_last_failure_timestamp_seconds", "seconds", NULL, NULL,        \
      "Wall-clock time of the server's last failed connection attempt.")       \
    X(UP_FAILED_UNTIL, SERVER, LATEST,                                         \
      "upstream_failed_until_timestamp_seconds", "seconds", NULL, NULL,        \
      "Wall-clock time until which the server counts as failed.")              \
    X(ROUTE_SESSIONS, ROUTE, COUNTER, "route_sessions_total", "sessions",      \
      NULL, NULL, "Sessions routed by the configuration entry.")               \
    X(ROUTE_RX, ROUTE, COUNTER, "route_received_bytes_total", "bytes", NULL,   \
      NULL, "Bytes received from clients of the route, as they move.")         \
    X(ROUTE_TX, ROUTE, COUNTER, "route_sent_bytes_total", "bytes", NULL, NULL, \
      "Bytes sent to clients of the route, as they move.")                     \
    X(WORKER_SESSIONS, WORKER, GAUGE, "worker_sessions_active", "sessions",    \
      NULL, NULL, "Sessions open in the worker process.")                      \
    X(WORKER_FDS, WORKER, GAUGE, "worker_descriptors", "descriptors", NULL,    \
      NULL, "Sockets the worker's sessions hold open.")                        \
    X(GENERATION, MASTER, GAUGE, "config_generation", "generation", NULL,      \
      NULL,                                                                    \
      "Configuration generation serving: 1 at start, one more per "            \
      "successful reload.")                                                    \
    X(RELOADS, MASTER, COUNTER, "reloads_total", "reloads", "result",          \
      METRICS_L("ok", "failed"), "Reloads, by result.")                        \
    X(RESTARTS, MASTER, COUNTER, "worker_restarts_total", "workers", NULL,     \
      NULL, "Workers that exited unasked and were started again.")             \
    X(SERIES_OVERFLOW, MASTER, COUNTER, "series_overflow_total", "series",     \
      NULL, NULL,                                                              \
      "Label sets that got no series of their own (full registry or the "      \
      "route cap): they count under the label value other.")

enum metrics_family {
#define METRICS_ENUM(id, g, t, n, u, l, v, h) METRIC_##id,
    METRICS_FAMILIES(METRICS_ENUM)
#undef METRICS_ENUM
        METRICS_NFAMILIES
};

/* One family of the table, with its place in its group's values. */
struct metrics_family_info {
    const char *name; /* without the snirelay_ prefix */
    const char *unit;
    const char *help;
    enum metrics_group group;
    enum metrics_type type;
    const char *label;               /* the fixed label, or NULL */
    const char *const *label_values; /* its values, NULL-terminated */
    uint32_t nlabel_values;          /* 1 when label is NULL */
    uint32_t width;                  /* values stored per series */
    uint32_t offset;                 /* of the first, in the series */
};

/* One registered series. */
struct metrics_entry {
    uint32_t group;                   /* enum metrics_group */
    uint32_t base;                    /* its first value */
    char label[2][METRICS_LABEL_MAX]; /* the group's label values */
};

/* The families, in table order (filled on first use). */
const struct metrics_family_info *metrics_family(enum metrics_family f);

/* The names of g's labels (NULL past the last); at most 2. */
const char *metrics_group_label(enum metrics_group g, size_t i);

/* Bucket i's upper bound in ms; -1 for +Inf. */
int64_t metrics_bucket_ms(size_t i);

/*
 * In the master, before the first fork: maps the store and registers the
 * global, worker and master series. 0, or -1 with errno set. Until it is
 * called every count is dropped (config tests, unit tests).
 */
int metrics_open(void);

/* True once metrics_open() succeeded (inherited by workers). */
bool metrics_is_open(void);

/*
 * In the master: the series of group g with label values l0 and l1 (NULL
 * for none), registered when new. When the registry is full (or the route
 * cap is reached) returns g's `other` series and counts an overflow. Returns
 * METRICS_NO_SERIES when the store is not open.
 */
uint32_t metrics_series(enum metrics_group g, const char *l0, const char *l1);

/* True when id is its group's `other` series. */
bool metrics_is_other(uint32_t id);

/* The fixed series: global (no label), the workers', the master's. */
#define METRICS_GLOBAL 0u
#define METRICS_WORKERS 1u
#define METRICS_MASTER 2u

/* In a worker just forked into slot: its counts go there from now on. */
void metrics_bind(unsigned slot, int pid);

/*
 * In the master, after reaping the worker of slot: folds its counts into
 * retired and clears the slot.
 */
void metrics_fold(unsigned slot);

/* Adds n to value idx of family f in series id (this worker's slot). */
void metrics_add(uint32_t id, enum metrics_family f, size_t idx, uint64_t n);

/* Moves a gauge by delta. */
void metrics_gauge(uint32_t id, enum metrics_family f, int64_t delta);

/* Sets a gauge of this worker's slot (WORKER families). */
void metrics_set(enum metrics_family f, uint64_t v);

/* Counts one observation of ms milliseconds in a histogram family. */
void metrics_observe(uint32_t id, enum metrics_family f, int64_t ms);

/* Raises a LATEST family's value to v when v is larger. */
void metrics_latest(uint32_t id, enum metrics_family f, uint64_t v);

/*
 * A worker's last note (the last refused session, for the status page):
 * text is copied (cut to METRICS_NOTE_MAX - 1 bytes) with the wall time.
 */
#define METRICS_NOTE_MAX 224
struct metrics_note {
    uint64_t seq;    /* odd while its worker writes it */
    int64_t wall_ms; /* 0: none */
    char text[METRICS_NOTE_MAX];
};

void metrics_note(int64_t wall_ms, const char *text);

/* In the master: adds n to a MASTER family's value idx (or sets a gauge). */
void metrics_master_add(enum metrics_family f, size_t idx, uint64_t n);
void metrics_master_set(enum metrics_family f, uint64_t v);

/*
 * A consistent copy of every value (retired plus live slots), for showing.
 * metrics_snapshot() fills it (malloc); 0, or -1 when the store is not open
 * or out of memory. metrics_snapshot_free() releases it.
 */
struct metrics_snapshot {
    uint32_t nseries;
    uint64_t *values; /* METRICS_MAX_VALUES, summed */
    uint32_t nslots;  /* live worker slots below */
    int32_t slot_pid[METRICS_MAX_SLOTS];
    unsigned slot_index[METRICS_MAX_SLOTS];
    uint64_t (*slot_worker)[2]; /* per live slot: WORKER values */
    struct metrics_note *notes; /* per live slot */
};

int metrics_snapshot(struct metrics_snapshot *snap);
void metrics_snapshot_free(struct metrics_snapshot *snap);

/* The entry of series id (id < snap->nseries). */
const struct metrics_entry *metrics_entry(uint32_t id);

/* Value idx of family f in series id, from a snapshot. */
uint64_t metrics_get(const struct metrics_snapshot *snap, uint32_t id,
                     enum metrics_family f, size_t idx);

#endif
