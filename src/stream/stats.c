/* SPDX-License-Identifier: MIT */
/*
 * Session counts into the metrics store, and the store shown as
 * Prometheus text, JSON, HTML and a man page section; see stats.h.
 *
 * Bytes are counted as they move: the relay calls stats_bytes() after each
 * pump, which adds what the session's four byte counters grew by since the
 * last call. A series id that is not registered (config test, unit tests,
 * the store not open) makes every count a no-op in core/metrics.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/version.h"
#include "log/errlog.h"
#include "stream/map.h"
#include "stream/session.h"
#include "stream/stats.h"
#include "stream/stream.h"


/* The failure reasons of snirelay_upstream_failures_total, in order. */
enum stats_fail {
    STATS_FAIL_REFUSED,
    STATS_FAIL_TIMEOUT,
    STATS_FAIL_RESET,
    STATS_FAIL_UNREACHABLE,
    STATS_FAIL_ERROR,
};

/* The states of snirelay_upstream_state, in order. */
enum stats_state {
    STATS_STATE_UP,
    STATS_STATE_FAILED,
    STATS_STATE_DOWN,
    STATS_STATE_BACKUP,
};

/* Indexes of the `how` label of snirelay_sessions_ended_total. */
enum stats_how {
    STATS_HOW_CLIENT_CLOSED,
    STATS_HOW_UPSTREAM_CLOSED,
    STATS_HOW_IDLE_TIMEOUT,
    STATS_HOW_RELAY_ERROR,
    STATS_HOW_SHUTDOWN,
    STATS_HOW_PREREAD,
    STATS_HOW_RETURNED,
    STATS_HOW_BAD_REQUEST,
    STATS_HOW_REFUSED,
    STATS_HOW_LIMITED,
    STATS_HOW_UPSTREAM_FAILED,
    STATS_HOW_INTERNAL_ERROR,
};

/* What a renderer needs besides the buffer. */
struct stats_view {
    struct stats_buf *b;
    const struct stream_conf *conf;
    const struct metrics_snapshot *snap;
    int64_t wall_ms;
};


static uint32_t stats_peer_series(const struct session *s);
static int stats_status_index(int status);
static enum stats_how stats_how(const struct session *s);
static void stats_note(struct session *s);
static enum stats_state stats_peer_state(const struct stats_view *v,
                                         const struct balance_peer *p,
                                         uint32_t id);
static void stats_prom_family(const struct stats_view *v,
                              enum metrics_family f);
static void stats_prom_labels(struct stats_buf *b,
                              const struct metrics_entry *e, const char *extra,
                              const char *extra_value, const char *le);
static void stats_prom_series(const struct stats_view *v, enum metrics_family f,
                              uint32_t id);
static void stats_prom_state(const struct stats_view *v);
static void stats_json(const struct stats_view *v);
static void stats_json_str(struct stats_buf *b, const char *s);
static void stats_html(const struct stats_view *v);
static void stats_html_str(struct stats_buf *b, const char *s);
static uint64_t stats_sum(const struct stats_view *v, uint32_t id,
                          enum metrics_family f);
static void stats_fmt_seconds(char *dst, size_t cap, uint64_t ms);
static void stats_fmt_bytes(char *dst, size_t cap, uint64_t n);


static const int stats_statuses[] = {200, 400, 403, 500, 502, 503};

static const char *const stats_state_names[] = {"up", "failed", "down",
                                                "backup"};

static const char *const stats_type_names[] = {
    [METRICS_COUNTER] = "counter",     [METRICS_GAUGE] = "gauge",
    [METRICS_HISTOGRAM] = "histogram", [METRICS_LATEST] = "gauge",
    [METRICS_STATE] = "gauge",
};


void
stats_conf_register(struct stream_conf *conf)
{
    size_t shared = 0;

    if (!metrics_is_open()) {
        return;
    }
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        ls->metrics = metrics_series(METRICS_G_LISTEN, ls->text, NULL);
    }
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        u->metrics =
            arena_alloc(conf->arena, (u->bal.npeers > 0 ? u->bal.npeers : 1) *
                                         sizeof(*u->metrics));
        if (u->metrics == NULL) {
            continue; /* not counted: checked where it is used */
        }
        for (size_t i = 0; i < u->bal.npeers; i++) {
            const char *name = u->bal.peers[i].name;

            u->metrics[i] = metrics_series(METRICS_G_SERVER, u->name,
                                           name != NULL ? name : "");
        }
    }
    for (struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        char where[METRICS_LABEL_MAX];

        if (srv->pass_kind == PASS_NONE) {
            srv->metrics_route = METRICS_NO_SERIES; /* return, status */
            srv->metrics_dynamic = METRICS_NO_SERIES;
            continue;
        }
        snprintf(where, sizeof(where), "%s:%u", srv->file, srv->line);
        srv->metrics_route = metrics_series(
            METRICS_G_ROUTE, srv->names != NULL ? "server_name" : "server",
            srv->names != NULL ? srv->names->name : where);
        srv->metrics_dynamic =
            srv->pass_kind == PASS_VALUE
                ? metrics_series(METRICS_G_SERVER, srv->pass_text, "*")
                : METRICS_NO_SERIES;
    }
    for (size_t i = 0; i < conf->nmaps; i++) {
        struct stream_map *m = conf->maps[i];
        char source[METRICS_LABEL_MAX];

        if (m->geo != NULL || m->split != NULL) {
            continue;
        }
        snprintf(source, sizeof(source), "map $%s", m->var_name);
        for (struct stream_map_value *mv = m->values; mv != NULL;
             mv = mv->next) {
            mv->metrics = metrics_series(METRICS_G_ROUTE, source,
                                         mv->key != NULL ? mv->key : "");
        }
        m->default_metrics = metrics_series(METRICS_G_ROUTE, source, "default");
        shared += metrics_is_other(m->default_metrics);
        for (const struct stream_map_value *mv = m->values; mv != NULL;
             mv = mv->next) {
            shared += metrics_is_other(mv->metrics);
        }
    }
    for (const struct stream_listen *ls = conf->listens; ls != NULL;
         ls = ls->next) {
        shared += metrics_is_other(ls->metrics);
    }
    for (const struct stream_upstream *u = conf->upstreams; u != NULL;
         u = u->next) {
        for (size_t i = 0; u->metrics != NULL && i < u->bal.npeers; i++) {
            shared += metrics_is_other(u->metrics[i]);
        }
    }
    for (const struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        shared += metrics_is_other(srv->metrics_route) +
                  metrics_is_other(srv->metrics_dynamic);
    }
    if (shared > 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "%zu listener(s), server(s) or route(s) have no metric "
                     "series of their own (more than %d routes, or the "
                     "registry is full): they count under \"other\"",
                     shared, METRICS_MAX_ROUTES);
    }
}


void
stats_session_start(struct session *s)
{
    s->m_listen = s->listen->metrics;
    s->m_route = METRICS_NO_SERIES;
    s->m_map_route = METRICS_NO_SERIES;
    s->m_peer = METRICS_NO_SERIES;
    metrics_add(s->m_listen, METRIC_LISTEN_SESSIONS, 0, 1);
    metrics_gauge(s->m_listen, METRIC_LISTEN_ACTIVE, 1);
    stats_fds(1);
}


void
stats_preread(struct session *s)
{
    if (s->m_preread_counted || s->preread == PREREAD_NONE) {
        return;
    }
    s->m_preread_counted = true;
    metrics_add(METRICS_GLOBAL, METRIC_PREREAD, (size_t)s->preread - 1, 1);
}


void
stats_route(struct session *s)
{
    s->m_route = s->m_map_route != METRICS_NO_SERIES ? s->m_map_route
                                                     : s->server->metrics_route;
    metrics_add(s->m_route, METRIC_ROUTE_SESSIONS, 0, 1);
    if (metrics_is_other(s->m_route)) {
        metrics_add(METRICS_GLOBAL, METRIC_ROUTE_OVERFLOW, 0, 1);
    }
}


void
stats_bytes(struct session *s)
{
    const uint64_t rx = s->bytes_received - s->m_rx;
    const uint64_t tx = s->bytes_sent - s->m_tx;
    const uint64_t urx = s->upstream_bytes_received - s->m_urx;
    const uint64_t utx = s->upstream_bytes_sent - s->m_utx;

    if (rx > 0) {
        metrics_add(s->m_listen, METRIC_LISTEN_RX, 0, rx);
        metrics_add(s->m_route, METRIC_ROUTE_RX, 0, rx);
        s->m_rx = s->bytes_received;
    }
    if (tx > 0) {
        metrics_add(s->m_listen, METRIC_LISTEN_TX, 0, tx);
        metrics_add(s->m_route, METRIC_ROUTE_TX, 0, tx);
        s->m_tx = s->bytes_sent;
    }
    if (urx > 0) {
        metrics_add(s->m_peer, METRIC_UP_RX, 0, urx);
        s->m_urx = s->upstream_bytes_received;
    }
    if (utx > 0) {
        metrics_add(s->m_peer, METRIC_UP_TX, 0, utx);
        s->m_utx = s->upstream_bytes_sent;
    }
}


/* The series of the upstream server s->peer is. */
static uint32_t
stats_peer_series(const struct session *s)
{
    if (s->peer == NULL) {
        return METRICS_NO_SERIES;
    }
    if (s->up != NULL && s->bal == &s->up->bal && s->up->metrics != NULL) {
        const size_t i = (size_t)(s->peer - s->up->bal.peers);

        return i < s->up->bal.npeers ? s->up->metrics[i] : METRICS_NO_SERIES;
    }
    return s->server->metrics_dynamic;
}


void
stats_try(struct session *s)
{
    /* Bytes of an earlier attempt went to the earlier server. */
    stats_bytes(s);
    s->m_peer = stats_peer_series(s);
    metrics_add(s->m_peer, METRIC_UP_TRIES, 0, 1);
}


void
stats_failed(struct session *s, int err)
{
    const struct balance_peer *p = s->peer;
    enum stats_fail why;
    const int64_t wall = clock_wall_ms();

    switch (err) {
    case ECONNREFUSED:
        why = STATS_FAIL_REFUSED;
        break;
    case ETIMEDOUT:
        why = STATS_FAIL_TIMEOUT;
        break;
    case ECONNRESET:
    case EPIPE:
        why = STATS_FAIL_RESET;
        break;
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EADDRNOTAVAIL:
        why = STATS_FAIL_UNREACHABLE;
        break;
    default:
        why = STATS_FAIL_ERROR;
        break;
    }
    metrics_add(s->m_peer, METRIC_UP_FAILURES, why, 1);
    /* The reason rides in the low bits: the latest failure keeps its own. */
    metrics_latest(s->m_peer, METRIC_UP_LAST_FAILURE,
                   (uint64_t)wall * 8 + (uint64_t)why);
    if (p != NULL && p->max_fails > 0 && p->fails >= p->max_fails) {
        metrics_latest(s->m_peer, METRIC_UP_FAILED_UNTIL,
                       (uint64_t)(wall + p->fail_timeout_ms));
    }
}


void
stats_connected(struct session *s)
{
    metrics_observe(s->m_peer, METRIC_UP_CONNECT,
                    s->connected_ms - s->connect_start_ms);
    metrics_gauge(s->m_peer, METRIC_UP_ACTIVE, 1);
    s->m_peer_active = true;
}


void
stats_released(struct session *s)
{
    if (s->m_peer_active) {
        s->m_peer_active = false;
        metrics_gauge(s->m_peer, METRIC_UP_ACTIVE, -1);
    }
}


void
stats_first_byte(struct session *s)
{
    if (!s->m_first_byte) {
        s->m_first_byte = true;
        metrics_observe(s->m_peer, METRIC_UP_FIRST_BYTE,
                        s->first_byte_ms - s->upstream_start_ms);
    }
}


void
stats_guard(enum stats_guard reason)
{
    metrics_add(METRICS_GLOBAL, METRIC_GUARD, reason, 1);
}


void
stats_fds(int delta)
{
    static int64_t fds;

    fds += delta;
    metrics_set(METRIC_WORKER_FDS, (uint64_t)(fds < 0 ? 0 : fds));
}


static int
stats_status_index(int status)
{
    for (size_t i = 0; i < sizeof(stats_statuses) / sizeof(stats_statuses[0]);
         i++) {
        if (stats_statuses[i] == status) {
            return (int)i;
        }
    }
    return -1;
}


/* How s ended, when the relay did not say. */
static enum stats_how
stats_how(const struct session *s)
{
    switch (s->m_end) {
    case STATS_END_CLIENT_CLOSED:
        return STATS_HOW_CLIENT_CLOSED;
    case STATS_END_UPSTREAM_CLOSED:
        return STATS_HOW_UPSTREAM_CLOSED;
    case STATS_END_IDLE_TIMEOUT:
        return STATS_HOW_IDLE_TIMEOUT;
    case STATS_END_RELAY_ERROR:
        return STATS_HOW_RELAY_ERROR;
    case STATS_END_SHUTDOWN:
        return STATS_HOW_SHUTDOWN;
    default:
        break;
    }
    switch (s->status) {
    case 400:
        return STATS_HOW_BAD_REQUEST;
    case 403:
        return STATS_HOW_REFUSED;
    case 503:
        return STATS_HOW_LIMITED;
    case 502:
        return STATS_HOW_UPSTREAM_FAILED;
    case 500:
        return STATS_HOW_INTERNAL_ERROR;
    default:
        break;
    }
    if (s->phase == SESSION_PHASE_CONTENT &&
        (s->server->return_value != NULL || s->server->status)) {
        return STATS_HOW_RETURNED;
    }
    if (s->phase == SESSION_PHASE_CONTENT && s->connected_ms > 0) {
        return STATS_HOW_CLIENT_CLOSED;
    }
    return STATS_HOW_PREREAD;
}


void
stats_session_end(struct session *s)
{
    const int idx = stats_status_index(s->status);

    stats_preread(s);
    stats_bytes(s);
    stats_released(s);
    if (idx >= 0) {
        metrics_add(METRICS_GLOBAL, METRIC_SESSIONS, (size_t)idx, 1);
    }
    metrics_add(METRICS_GLOBAL, METRIC_ENDED, stats_how(s), 1);
    metrics_observe(METRICS_GLOBAL, METRIC_DURATION,
                    clock_now_ms() - s->start_ms);
    metrics_gauge(s->m_listen, METRIC_LISTEN_ACTIVE, -1);
    stats_fds(-(1 + (s->upstream.fd >= 0)));
    if (s->status >= 400) {
        metrics_add(s->m_listen, METRIC_LISTEN_ERRORS, 0, 1);
        stats_note(s);
    }
}


/* The last refused session, for the status page: listener, status, name. */
static void
stats_note(struct session *s)
{
    char name[4 * 64 + 1];
    char text[METRICS_NOTE_MAX];
    const char *raw = "";
    size_t len = 0;
    size_t n;

    if (s->preread == PREREAD_OK) {
        raw = preread_sni(s, &len);
    } else if (s->http_preread == PREREAD_OK) {
        raw = preread_host(s, &len);
    }
    /* Client bytes: \xHH-escaped here, HTML-escaped when shown. */
    n = str_escape(name, sizeof(name) - 1, raw, len > 64 ? 64 : len,
                   STR_ESCAPE_DEFAULT);
    name[n < sizeof(name) - 1 ? n : sizeof(name) - 1] = '\0';
    snprintf(text, sizeof(text), "%.64s\t%d\t%.140s", s->listen->text,
             s->status, name);
    metrics_note(clock_wall_ms(), text);
}


/* ---- showing ---- */


void
stats_buf_printf(struct stats_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed) {
        return;
    }
    for (int round = 0; round < 2; round++) {
        const size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->data != NULL ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap == 0 ? 16384 : b->cap;
        while (cap - b->len <= (size_t)n) {
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
}


void
stats_buf_free(struct stats_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}


int
stats_render(struct stats_buf *b, const struct stream_conf *conf,
             enum stats_format f)
{
    struct metrics_snapshot snap;
    struct stats_view v = {b, conf, &snap, clock_wall_ms()};

    if (metrics_snapshot(&snap) == -1) {
        return -1;
    }
    switch (f) {
    case STATS_PROMETHEUS:
        for (size_t i = 0; i < METRICS_NFAMILIES; i++) {
            stats_prom_family(&v, (enum metrics_family)i);
        }
        break;
    case STATS_JSON:
        stats_json(&v);
        break;
    case STATS_HTML:
        stats_html(&v);
        break;
    }
    metrics_snapshot_free(&snap);
    return b->failed ? -1 : 0;
}


/* Prometheus label value: \\, \" and \n escaped (exposition format). */
static void
stats_prom_value(struct stats_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"') {
            stats_buf_printf(b, "\\%c", *s);
        } else if (*s == '\n') {
            stats_buf_printf(b, "\\n");
        } else {
            stats_buf_printf(b, "%c", *s);
        }
    }
}


static void
stats_prom_labels(struct stats_buf *b, const struct metrics_entry *e,
                  const char *extra, const char *extra_value, const char *le)
{
    bool first = true;

    for (size_t i = 0; i < 2; i++) {
        const char *name = metrics_group_label(e->group, i);

        if (name == NULL || e->group == METRICS_G_WORKER) {
            continue;
        }
        stats_buf_printf(b, "%s%s=\"", first ? "{" : ",", name);
        stats_prom_value(b, e->label[i]);
        stats_buf_printf(b, "\"");
        first = false;
    }
    if (extra != NULL) {
        stats_buf_printf(b, "%s%s=\"", first ? "{" : ",", extra);
        stats_prom_value(b, extra_value);
        stats_buf_printf(b, "\"");
        first = false;
    }
    if (le != NULL) {
        stats_buf_printf(b, "%sle=\"%s\"", first ? "{" : ",", le);
        first = false;
    }
    if (!first) {
        stats_buf_printf(b, "}");
    }
}


static void
stats_fmt_seconds(char *dst, size_t cap, uint64_t ms)
{
    snprintf(dst, cap, "%llu.%03llu", (unsigned long long)(ms / 1000),
             (unsigned long long)(ms % 1000));
}


static void
stats_prom_series(const struct stats_view *v, enum metrics_family f,
                  uint32_t id)
{
    const struct metrics_family_info *fi = metrics_family(f);
    const struct metrics_entry *e = metrics_entry(id);
    struct stats_buf *const b = v->b;
    char num[48];

    if (fi->type == METRICS_HISTOGRAM) {
        uint64_t cum = 0;

        for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
            const int64_t bound = metrics_bucket_ms(i);

            cum += metrics_get(v->snap, id, f, i);
            if (bound < 0) {
                snprintf(num, sizeof(num), "+Inf");
            } else {
                stats_fmt_seconds(num, sizeof(num), (uint64_t)bound);
            }
            stats_buf_printf(b, "snirelay_%s_bucket", fi->name);
            stats_prom_labels(b, e, NULL, NULL, num);
            stats_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
        stats_fmt_seconds(num, sizeof(num),
                          metrics_get(v->snap, id, f, METRICS_NBUCKETS));
        stats_buf_printf(b, "snirelay_%s_sum", fi->name);
        stats_prom_labels(b, e, NULL, NULL, NULL);
        stats_buf_printf(b, " %s\n", num);
        stats_buf_printf(b, "snirelay_%s_count", fi->name);
        stats_prom_labels(b, e, NULL, NULL, NULL);
        stats_buf_printf(b, " %llu\n", (unsigned long long)cum);
        return;
    }
    for (size_t i = 0; i < fi->nlabel_values; i++) {
        uint64_t val = metrics_get(v->snap, id, f, i);

        stats_buf_printf(b, "snirelay_%s", fi->name);
        stats_prom_labels(b, e, fi->label,
                          fi->label != NULL ? fi->label_values[i] : NULL, NULL);
        if (f == METRIC_UP_LAST_FAILURE) {
            val /= 8; /* the low bits hold the reason */
        }
        if (fi->type == METRICS_LATEST) {
            stats_fmt_seconds(num, sizeof(num), val);
            stats_buf_printf(b, " %s\n", num);
        } else {
            stats_buf_printf(b, " %llu\n", (unsigned long long)val);
        }
    }
}


static void
stats_prom_family(const struct stats_view *v, enum metrics_family f)
{
    const struct metrics_family_info *fi = metrics_family(f);
    struct stats_buf *const b = v->b;

    stats_buf_printf(b, "# HELP snirelay_%s %s\n# TYPE snirelay_%s %s\n",
                     fi->name, fi->help, fi->name, stats_type_names[fi->type]);
    if (fi->type == METRICS_STATE) {
        stats_prom_state(v);
        return;
    }
    if (fi->group == METRICS_G_WORKER) {
        for (uint32_t k = 0; k < v->snap->nslots; k++) {
            stats_buf_printf(
                b, "snirelay_%s{worker=\"%u\",pid=\"%d\"} %llu\n", fi->name,
                v->snap->slot_index[k], (int)v->snap->slot_pid[k],
                (unsigned long long)
                    v->snap->slot_worker[k][f == METRIC_WORKER_FDS]);
        }
        return;
    }
    for (uint32_t id = 0; id < v->snap->nseries; id++) {
        if (metrics_entry(id)->group == (uint32_t)fi->group) {
            stats_prom_series(v, f, id);
        }
    }
}


/* A server's state: its config (down, backup), then its failures. */
static enum stats_state
stats_peer_state(const struct stats_view *v, const struct balance_peer *p,
                 uint32_t id)
{
    if (p->down) {
        return STATS_STATE_DOWN;
    }
    if (metrics_get(v->snap, id, METRIC_UP_FAILED_UNTIL, 0) >
        (uint64_t)v->wall_ms) {
        return STATS_STATE_FAILED;
    }
    return p->backup ? STATS_STATE_BACKUP : STATS_STATE_UP;
}


/* snirelay_upstream_state: the servers of the serving configuration. */
static void
stats_prom_state(const struct stats_view *v)
{
    const struct metrics_family_info *fi = metrics_family(METRIC_UP_STATE);
    struct stats_buf *const b = v->b;

    for (const struct stream_upstream *u = v->conf->upstreams; u != NULL;
         u = u->next) {
        uint32_t last = METRICS_NO_SERIES;

        for (size_t i = 0; u->metrics != NULL && i < u->bal.npeers; i++) {
            const uint32_t id = u->metrics[i];
            enum stats_state st;

            if (id >= v->snap->nseries || id == last) {
                continue; /* `resolve` slots share their line's series */
            }
            last = id;
            st = stats_peer_state(v, &u->bal.peers[i], id);
            for (size_t k = 0; k < fi->nlabel_values; k++) {
                stats_buf_printf(b, "snirelay_%s", fi->name);
                stats_prom_labels(b, metrics_entry(id), fi->label,
                                  fi->label_values[k], NULL);
                stats_buf_printf(b, " %d\n", (size_t)st == k);
            }
        }
    }
}


static void
stats_json_str(struct stats_buf *b, const char *s)
{
    char out[4 * METRICS_NOTE_MAX + 1];
    const size_t len = strlen(s);
    size_t n = str_escape(out, sizeof(out) - 1, s,
                          len > METRICS_NOTE_MAX ? METRICS_NOTE_MAX : len,
                          STR_ESCAPE_JSON);

    out[n < sizeof(out) - 1 ? n : sizeof(out) - 1] = '\0';
    stats_buf_printf(b, "\"%s\"", out);
}


/* One object per family, each series with its labels and values. */
static void
stats_json(const struct stats_view *v)
{
    struct stats_buf *const b = v->b;

    stats_buf_printf(b, "{\"version\":\"%s\",\"time\":%lld,\"families\":[",
                     SNIRELAY_VERSION, (long long)(v->wall_ms / 1000));
    for (size_t f = 0; f < METRICS_NFAMILIES; f++) {
        const struct metrics_family_info *fi = metrics_family(f);
        bool first = true;

        stats_buf_printf(b,
                         "%s{\"name\":\"snirelay_%s\",\"type\":\"%s\","
                         "\"help\":",
                         f > 0 ? "," : "", fi->name,
                         stats_type_names[fi->type]);
        stats_json_str(b, fi->help);
        stats_buf_printf(b, ",\"series\":[");
        if (fi->type == METRICS_STATE) {
            for (const struct stream_upstream *u = v->conf->upstreams;
                 u != NULL; u = u->next) {
                for (size_t i = 0; u->metrics != NULL && i < u->bal.npeers;
                     i++) {
                    const uint32_t id = u->metrics[i];

                    if (id >= v->snap->nseries) {
                        continue;
                    }
                    stats_buf_printf(
                        b, "%s{\"labels\":{\"upstream\":", first ? "" : ",");
                    stats_json_str(b, metrics_entry(id)->label[0]);
                    stats_buf_printf(b, ",\"server\":");
                    stats_json_str(b, metrics_entry(id)->label[1]);
                    stats_buf_printf(b, "},\"value\":\"%s\"}",
                                     stats_state_names[stats_peer_state(
                                         v, &u->bal.peers[i], id)]);
                    first = false;
                }
            }
        } else if (fi->group == METRICS_G_WORKER) {
            for (uint32_t k = 0; k < v->snap->nslots; k++) {
                stats_buf_printf(
                    b,
                    "%s{\"labels\":{\"worker\":\"%u\",\"pid\":\"%d\"},"
                    "\"value\":%llu}",
                    first ? "" : ",", v->snap->slot_index[k],
                    (int)v->snap->slot_pid[k],
                    (unsigned long long)
                        v->snap->slot_worker[k][f == METRIC_WORKER_FDS]);
                first = false;
            }
        } else {
            for (uint32_t id = 0; id < v->snap->nseries; id++) {
                const struct metrics_entry *e = metrics_entry(id);

                if (e->group != (uint32_t)fi->group) {
                    continue;
                }
                stats_buf_printf(b, "%s{\"labels\":{", first ? "" : ",");
                first = false;
                for (size_t l = 0; l < 2; l++) {
                    const char *name = metrics_group_label(e->group, l);

                    if (name != NULL) {
                        stats_buf_printf(b, "%s\"%s\":", l > 0 ? "," : "",
                                         name);
                        stats_json_str(b, e->label[l]);
                    }
                }
                stats_buf_printf(b, "}");
                if (fi->type == METRICS_HISTOGRAM) {
                    uint64_t count = 0;

                    stats_buf_printf(b, ",\"buckets\":[");
                    for (size_t i = 0; i < METRICS_NBUCKETS; i++) {
                        const uint64_t c = metrics_get(v->snap, id, f, i);

                        count += c;
                        stats_buf_printf(b, "%s%llu", i > 0 ? "," : "",
                                         (unsigned long long)c);
                    }
                    stats_buf_printf(b, "],\"sum_ms\":%llu,\"count\":%llu}",
                                     (unsigned long long)metrics_get(
                                         v->snap, id, f, METRICS_NBUCKETS),
                                     (unsigned long long)count);
                } else if (fi->label != NULL) {
                    stats_buf_printf(b, ",\"values\":{");
                    for (size_t i = 0; i < fi->nlabel_values; i++) {
                        stats_buf_printf(
                            b, "%s\"%s\":%llu", i > 0 ? "," : "",
                            fi->label_values[i],
                            (unsigned long long)metrics_get(v->snap, id, f, i));
                    }
                    stats_buf_printf(b, "}}");
                } else if (fi->type == METRICS_LATEST) {
                    char num[48];
                    uint64_t val = metrics_get(v->snap, id, f, 0);

                    if (f == METRIC_UP_LAST_FAILURE) {
                        val /= 8; /* the low bits hold the reason */
                    }
                    stats_fmt_seconds(num, sizeof(num), val);
                    stats_buf_printf(b, ",\"value\":%s}", num);
                } else {
                    stats_buf_printf(
                        b, ",\"value\":%llu}",
                        (unsigned long long)metrics_get(v->snap, id, f, 0));
                }
            }
        }
        stats_buf_printf(b, "]}");
    }
    stats_buf_printf(b, "]}\n");
}


/* HTML text: & < > " ' escaped. */
static void
stats_html_str(struct stats_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            stats_buf_printf(b, "&amp;");
            break;
        case '<':
            stats_buf_printf(b, "&lt;");
            break;
        case '>':
            stats_buf_printf(b, "&gt;");
            break;
        case '"':
            stats_buf_printf(b, "&quot;");
            break;
        case '\'':
            stats_buf_printf(b, "&#39;");
            break;
        default:
            stats_buf_printf(b, "%c", *s);
            break;
        }
    }
}


/* The sum of every value of f in series id (all its label values). */
static uint64_t
stats_sum(const struct stats_view *v, uint32_t id, enum metrics_family f)
{
    const struct metrics_family_info *fi = metrics_family(f);
    uint64_t n = 0;

    for (size_t i = 0; i < fi->nlabel_values; i++) {
        n += metrics_get(v->snap, id, f, i);
    }
    return n;
}


static void
stats_fmt_bytes(char *dst, size_t cap, uint64_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t u = 0;
    double d = (double)n;

    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    if (u == 0) {
        snprintf(dst, cap, "%llu B", (unsigned long long)n);
    } else {
        snprintf(dst, cap, "%.1f %s", d, units[u]);
    }
}


static const char stats_css[] =
    "body{font:14px/1.4 sans-serif;margin:0 auto;padding:8px;max-width:64em;"
    "color:#222;background:#fff}"
    "h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1em 0 .3em;"
    "border-bottom:2px solid #456}"
    ".wrap{overflow-x:auto}table{border-collapse:collapse;width:100%}"
    "th,td{padding:3px 6px;border-bottom:1px solid #ddd;text-align:right;"
    "white-space:nowrap}th{background:#e8eef4}"
    "td.l,th.l{text-align:left}.up{background:#c8f0c8}"
    ".failed{background:#f4b8b8}.down{background:#ccc}"
    ".backup{background:#e0e0f8}.muted{color:#777}"
    "dl{display:flex;flex-wrap:wrap;gap:4px 16px;margin:0}"
    "dl div{min-width:9em}dt{color:#555;font-size:.85em}dd{margin:0;"
    "font-weight:bold}";


/* The status page: per listener, per upstream server, then totals. */
static void
stats_html(const struct stats_view *v)
{
    struct stats_buf *const b = v->b;
    const struct metrics_snapshot *snap = v->snap;
    char t1[48];
    char t2[48];
    uint64_t active = 0;

    for (uint32_t k = 0; k < snap->nslots; k++) {
        active += snap->slot_worker[k][0];
    }
    stats_buf_printf(
        b,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\"><meta http-equiv=\"refresh\" content=\"10\">"
        "<title>snirelay status</title><style>%s</style></head><body>\n"
        "<h1>snirelay %s</h1><p class=\"muted\">Generation %llu, %u worker(s), "
        "%llu session(s) open. Refreshes every 10 s: <a href=\"/\">refresh "
        "now</a> &middot; <a href=\"/metrics\">metrics</a> &middot; "
        "<a href=\"/status.json\">JSON</a></p>\n",
        stats_css, SNIRELAY_VERSION,
        (unsigned long long)metrics_get(snap, METRICS_MASTER, METRIC_GENERATION,
                                        0),
        snap->nslots, (unsigned long long)active);

    stats_buf_printf(b, "<h2>Listeners</h2><div class=\"wrap\"><table><tr>"
                        "<th class=\"l\">Listen</th><th>Active</th>"
                        "<th>Sessions</th><th>Errors</th><th>Received</th>"
                        "<th>Sent</th></tr>\n");
    for (const struct stream_listen *ls = v->conf->listens; ls != NULL;
         ls = ls->next) {
        const uint32_t id = ls->metrics;

        if (id >= snap->nseries) {
            continue;
        }
        stats_fmt_bytes(t1, sizeof(t1),
                        metrics_get(snap, id, METRIC_LISTEN_RX, 0));
        stats_fmt_bytes(t2, sizeof(t2),
                        metrics_get(snap, id, METRIC_LISTEN_TX, 0));
        stats_buf_printf(b, "<tr><td class=\"l\">");
        stats_html_str(b, ls->text);
        stats_buf_printf(
            b,
            "</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%s</td>"
            "<td>%s</td></tr>\n",
            (unsigned long long)metrics_get(snap, id, METRIC_LISTEN_ACTIVE, 0),
            (unsigned long long)metrics_get(snap, id, METRIC_LISTEN_SESSIONS,
                                            0),
            (unsigned long long)metrics_get(snap, id, METRIC_LISTEN_ERRORS, 0),
            t1, t2);
    }
    stats_buf_printf(b, "</table></div>\n");

    stats_buf_printf(b,
                     "<h2>Upstream servers</h2><div class=\"wrap\"><table>"
                     "<tr><th class=\"l\">Upstream</th><th class=\"l\">"
                     "Server</th><th class=\"l\">State</th><th>Active</th>"
                     "<th>Tries</th><th>Failures</th><th>Received</th>"
                     "<th>Sent</th><th class=\"l\">Last failure</th></tr>\n");
    for (const struct stream_upstream *u = v->conf->upstreams; u != NULL;
         u = u->next) {
        uint32_t last = METRICS_NO_SERIES;

        for (size_t i = 0; u->metrics != NULL && i < u->bal.npeers; i++) {
            const uint32_t id = u->metrics[i];
            const struct metrics_family_info *ff =
                metrics_family(METRIC_UP_FAILURES);
            uint64_t lf;
            enum stats_state st;

            if (id >= snap->nseries || id == last) {
                continue;
            }
            last = id;
            st = stats_peer_state(v, &u->bal.peers[i], id);
            lf = metrics_get(snap, id, METRIC_UP_LAST_FAILURE, 0);
            stats_fmt_bytes(t1, sizeof(t1),
                            metrics_get(snap, id, METRIC_UP_RX, 0));
            stats_fmt_bytes(t2, sizeof(t2),
                            metrics_get(snap, id, METRIC_UP_TX, 0));
            stats_buf_printf(b, "<tr><td class=\"l\">");
            stats_html_str(b, metrics_entry(id)->label[0]);
            stats_buf_printf(b, "</td><td class=\"l\">");
            stats_html_str(b, metrics_entry(id)->label[1]);
            stats_buf_printf(
                b,
                "</td><td class=\"l %s\">%s</td><td>%llu</td><td>%llu</td>"
                "<td>%llu</td><td>%s</td><td>%s</td><td class=\"l\">",
                stats_state_names[st], stats_state_names[st],
                (unsigned long long)metrics_get(snap, id, METRIC_UP_ACTIVE, 0),
                (unsigned long long)metrics_get(snap, id, METRIC_UP_TRIES, 0),
                (unsigned long long)stats_sum(v, id, METRIC_UP_FAILURES), t1,
                t2);
            if (lf == 0) {
                stats_buf_printf(b, "<span class=\"muted\">none</span>");
            } else {
                const int64_t ago = (v->wall_ms - (int64_t)(lf / 8)) / 1000;

                stats_buf_printf(
                    b, "%s, %llds ago",
                    ff->label_values[lf % 8 < ff->nlabel_values ? lf % 8 : 0],
                    (long long)(ago < 0 ? 0 : ago));
            }
            stats_buf_printf(b, "</td></tr>\n");
        }
    }
    stats_buf_printf(b, "</table></div>\n");

    stats_buf_printf(b, "<h2>Sessions</h2>");
    for (int k = 0; k < 3; k++) {
        const enum metrics_family f = k == 0   ? METRIC_SESSIONS
                                      : k == 1 ? METRIC_PREREAD
                                               : METRIC_GUARD;
        const struct metrics_family_info *fi = metrics_family(f);

        stats_buf_printf(b, "<p class=\"muted\">%s</p><dl>",
                         k == 0   ? "By $status"
                         : k == 1 ? "Preread verdicts ($ssl_preread_status)"
                                  : "Guard refusals");
        for (size_t i = 0; i < fi->nlabel_values; i++) {
            stats_buf_printf(
                b, "<div><dt>%s</dt><dd>%llu</dd></div>", fi->label_values[i],
                (unsigned long long)metrics_get(snap, METRICS_GLOBAL, f, i));
        }
        stats_buf_printf(b, "</dl>\n");
    }

    stats_buf_printf(b, "<h2>Last refused session per worker</h2>"
                        "<div class=\"wrap\"><table><tr><th class=\"l\">"
                        "Worker</th><th class=\"l\">Listen</th><th>Status"
                        "</th><th class=\"l\">Name (SNI or Host)</th>"
                        "<th>Ago</th></tr>\n");
    for (uint32_t k = 0; k < snap->nslots; k++) {
        const struct metrics_note *n = &snap->notes[k];
        char text[METRICS_NOTE_MAX];
        char *listen = text;
        char *status;
        char *name;

        if (n->wall_ms == 0) {
            continue;
        }
        memcpy(text, n->text, sizeof(text));
        status = strchr(listen, '\t');
        name = status != NULL ? strchr(status + 1, '\t') : NULL;
        if (name == NULL) {
            continue;
        }
        *status++ = '\0';
        *name++ = '\0';
        stats_buf_printf(b, "<tr><td class=\"l\">%d</td><td class=\"l\">",
                         (int)snap->slot_pid[k]);
        stats_html_str(b, listen);
        stats_buf_printf(b, "</td><td>");
        stats_html_str(b, status);
        stats_buf_printf(b, "</td><td class=\"l\">");
        stats_html_str(b, name);
        stats_buf_printf(b, "</td><td>%llds</td></tr>\n",
                         (long long)((v->wall_ms - n->wall_ms) / 1000));
    }
    stats_buf_printf(b, "</table></div>\n");

    stats_buf_printf(b, "<h2>Workers</h2><div class=\"wrap\"><table><tr>"
                        "<th class=\"l\">PID</th><th>Sessions</th>"
                        "<th>Sockets</th></tr>\n");
    for (uint32_t k = 0; k < snap->nslots; k++) {
        stats_buf_printf(b,
                         "<tr><td class=\"l\">%d</td><td>%llu</td>"
                         "<td>%llu</td></tr>\n",
                         (int)snap->slot_pid[k],
                         (unsigned long long)snap->slot_worker[k][0],
                         (unsigned long long)snap->slot_worker[k][1]);
    }
    stats_buf_printf(
        b,
        "</table></div><p class=\"muted\">Reloads: %llu ok, %llu failed; "
        "worker restarts: %llu.</p>\n</body></html>\n",
        (unsigned long long)metrics_get(snap, METRICS_MASTER, METRIC_RELOADS,
                                        0),
        (unsigned long long)metrics_get(snap, METRICS_MASTER, METRIC_RELOADS,
                                        1),
        (unsigned long long)metrics_get(snap, METRICS_MASTER, METRIC_RESTARTS,
                                        0));
}


/*
 * Writes text as man(7) lines of at most 78 bytes, broken at spaces; a
 * line that would start with '.' or '\'' gets "\&" first.
 */
static void
stats_man_text(FILE *out, const char *text)
{
    const char *p = text;

    /* Bounded by text: each round writes at least one word. */
    while (*p != '\0') {
        size_t n = strlen(p);

        if (n > 78) {
            n = 78;
            while (n > 0 && p[n] != ' ') {
                n--;
            }
            if (n == 0) {
                n = strcspn(p, " ");
            }
        }
        fprintf(out, "%s%.*s\n", *p == '.' || *p == '\'' ? "\\&" : "", (int)n,
                p);
        p += n;
        while (*p == ' ') {
            p++;
        }
    }
}


void
stats_man(FILE *out)
{
    char line[1024];

    fputs(".SH METRICS\n", out);
    stats_man_text(out,
                   "A server with the status directive serves these at "
                   "/metrics (Prometheus text, version 0.0.4) and "
                   "/status.json, and shows them on the HTML page at /. "
                   "They are counted in shared memory: a reload or a killed "
                   "worker does not reset them, and counters never go "
                   "back. Every label value comes from the configuration "
                   "(listen addresses, upstream and server names, the map "
                   "key or server_name that routed a session), never from "
                   "a client. Histograms have the buckets 0.001, 0.005, "
                   "0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, "
                   "60, 300 and 1800 seconds.");
    for (size_t f = 0; f < METRICS_NFAMILIES; f++) {
        const struct metrics_family_info *fi = metrics_family(f);
        size_t n;

        fprintf(out, ".TP\n.B snirelay_%s\n", fi->name);
        n = (size_t)snprintf(line, sizeof(line), "%s, in %s",
                             stats_type_names[fi->type], fi->unit);
        for (size_t l = 0; l < 2 && n < sizeof(line); l++) {
            const char *name =
                metrics_group_label((enum metrics_group)fi->group, l);

            if (name != NULL) {
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s",
                                      l == 0 ? "; labels: " : ", ", name);
            }
        }
        if (fi->label != NULL && n < sizeof(line)) {
            const bool has_group_label =
                metrics_group_label((enum metrics_group)fi->group, 0) != NULL;

            n += (size_t)snprintf(
                line + n, sizeof(line) - n, "%s%s (",
                has_group_label ? ", " : "; labels: ", fi->label);
            for (size_t i = 0; i < fi->nlabel_values && n < sizeof(line); i++) {
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s",
                                      i > 0 ? ", " : "", fi->label_values[i]);
            }
            if (n < sizeof(line)) {
                n += (size_t)snprintf(line + n, sizeof(line) - n, ")");
            }
        }
        if (n < sizeof(line)) {
            snprintf(line + n, sizeof(line) - n, ". %s", fi->help);
        }
        stats_man_text(out, line);
    }
}
