/* SPDX-License-Identifier: MIT */
/*
 * Variable values for a session. Values are computed when asked for, into a
 * per-process scratch area (workers are single-threaded) that each top-level
 * evaluation resets; nothing is cached on the session, so map results are
 * always current (nginx's `volatile`).
 */

#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/str.h"
#include "core/version.h"
#include "net/sock.h"
#include "proto/proxy_proto.h"
#include "stream/geo.h"
#include "stream/hostmatch.h"
#include "stream/map.h"
#include "stream/session.h"
#include "stream/set.h"
#include "stream/split_clients.h"
#include "stream/vars.h"


#define VARS_SCRATCH_SIZE (64 * 1024)
#define VARS_MAX_DEPTH 16   /* maps of maps of ... */
#define VARS_VALUE_MAX 2048 /* longest map key or value */


struct vars_ctx {
    struct session *s;
    bool for_log;
    const struct hostmatch_caps *caps; /* captures of the map being valued */
    unsigned depth;
    bool reset_each; /* each part's value may reuse the scratch area (the
                        rendering copies it before asking for the next) */
    bool *client_colon; /* NULL, or set when a piece a client supplied
                           put a ':' into the output (vars_eval_client) */
};


static const char *vars_scratch_copy(const char *src, size_t len);
static const struct session_var *vars_set_value(const struct session *s,
                                                int slot);
static bool vars_is_client_depth(const struct stream_conf *conf,
                                 const struct tmpl *t, unsigned depth);
static bool vars_set_is_client(const struct stream_conf *conf,
                               const struct stream_set_var *v, unsigned depth);
static bool vars_builtin_is_client(int id);
static bool vars_part_is_client(const struct session *s,
                                const struct tmpl_part *p);
static int vars_value(void *data, const struct tmpl_part *p, const char **val,
                      size_t *len);
static int vars_value_of(struct vars_ctx *ctx, const struct tmpl_part *p,
                         const char **val, size_t *len);
static const char *vars_upstream_bytes(unsigned tries, uint64_t last,
                                       size_t *len);
static const char *vars_scratch_printf(size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static const char *vars_seconds(int64_t ms, size_t *len);
static const char *vars_port(const void *sa, size_t *len);
static size_t vars_render_ctx(struct vars_ctx *ctx, const struct tmpl *t,
                              enum str_escape esc, char *dst, size_t cap);


static const char *const vars_names[VAR_BUILTIN_COUNT] = {
    [VAR_REMOTE_ADDR] = "remote_addr",
    [VAR_REMOTE_PORT] = "remote_port",
    [VAR_SERVER_ADDR] = "server_addr",
    [VAR_SERVER_PORT] = "server_port",
    [VAR_PROTOCOL] = "protocol",
    [VAR_STATUS] = "status",
    [VAR_BYTES_SENT] = "bytes_sent",
    [VAR_BYTES_RECEIVED] = "bytes_received",
    [VAR_SESSION_TIME] = "session_time",
    [VAR_TIME_LOCAL] = "time_local",
    [VAR_TIME_ISO8601] = "time_iso8601",
    [VAR_MSEC] = "msec",
    [VAR_CONNECTION] = "connection",
    [VAR_PID] = "pid",
    [VAR_HOSTNAME] = "hostname",
    [VAR_UPSTREAM_ADDR] = "upstream_addr",
    [VAR_UPSTREAM_BYTES_SENT] = "upstream_bytes_sent",
    [VAR_UPSTREAM_BYTES_RECEIVED] = "upstream_bytes_received",
    [VAR_UPSTREAM_CONNECT_TIME] = "upstream_connect_time",
    [VAR_UPSTREAM_FIRST_BYTE_TIME] = "upstream_first_byte_time",
    [VAR_UPSTREAM_SESSION_TIME] = "upstream_session_time",
    [VAR_SSL_PREREAD_SERVER_NAME] = "ssl_preread_server_name",
    [VAR_SSL_PREREAD_ALPN_PROTOCOLS] = "ssl_preread_alpn_protocols",
    [VAR_SSL_PREREAD_PROTOCOL] = "ssl_preread_protocol",
    [VAR_SSL_PREREAD_STATUS] = "ssl_preread_status",
    [VAR_SSL_PREREAD_ECH] = "ssl_preread_ech",
    [VAR_PROXY_PROTOCOL_ADDR] = "proxy_protocol_addr",
    [VAR_PROXY_PROTOCOL_PORT] = "proxy_protocol_port",
    [VAR_HTTP_PREREAD_HOST] = "http_preread_host",
    [VAR_PROXY_PROTOCOL_SERVER_ADDR] = "proxy_protocol_server_addr",
    [VAR_PROXY_PROTOCOL_SERVER_PORT] = "proxy_protocol_server_port",
    [VAR_REALIP_REMOTE_ADDR] = "realip_remote_addr",
    [VAR_REALIP_REMOTE_PORT] = "realip_remote_port",
    [VAR_BINARY_REMOTE_ADDR] = "binary_remote_addr",
    [VAR_NGINX_VERSION] = "nginx_version",
    [VAR_LIMIT_CONN_STATUS] = "limit_conn_status",
};

static const char *const vars_preread_names[] = {
    [PREREAD_NONE] = "",
    [PREREAD_OK] = "ok",
    [PREREAD_NO_SNI] = "no_sni",
    [PREREAD_NOT_TLS] = "not_tls",
    [PREREAD_MALFORMED] = "malformed",
    [PREREAD_TOO_LARGE] = "too_large",
    [PREREAD_TIMEOUT] = "timeout",
};

static char vars_scratch[VARS_SCRATCH_SIZE];
static size_t vars_scratch_used;
static char vars_hostname[256];


int
vars_builtin_id(const char *name, size_t len)
{
    for (int i = 0; i < VAR_BUILTIN_COUNT; i++) {
        if (strlen(vars_names[i]) == len &&
            memcmp(vars_names[i], name, len) == 0) {
            return i;
        }
    }
    return -1;
}


int
vars_resolve(void *data, const char *name, size_t len, bool *is_capture)
{
    const struct stream_conf *conf = data;
    const int id = vars_builtin_id(name, len);

    *is_capture = false;
    if (id >= 0) {
        return id;
    }
    if (len > sizeof(VAR_PP_TLV_PREFIX) - 1 &&
        memcmp(name, VAR_PP_TLV_PREFIX, sizeof(VAR_PP_TLV_PREFIX) - 1) == 0) {
        const int type =
            proxy_proto_tlv_type(name + sizeof(VAR_PP_TLV_PREFIX) - 1,
                                 len - (sizeof(VAR_PP_TLV_PREFIX) - 1));
        /* Sessions on proxy_protocol listeners now keep the TLV area. */
        ((struct stream_conf *)data)->keep_pp_tlvs = true;
        return type < 0 ? VAR_PP_TLV_BAD : VAR_PP_TLV_BASE + type;
    }
    for (size_t i = 0; i < conf->nmaps; i++) {
        const char *v = conf->maps[i]->var_name;
        if (strlen(v) == len && memcmp(v, name, len) == 0) {
            return conf->maps[i]->var_id;
        }
    }
    const struct stream_set_var *sv = set_find(conf, name, len);
    return sv != NULL ? sv->var_id : -1;
}


/* Whether any `set` of v can store bytes the client chose. */
static bool
vars_set_is_client(const struct stream_conf *conf,
                   const struct stream_set_var *v, unsigned depth)
{
    for (const struct stream_set_cmd *c = v->cmds; c != NULL;
         c = c->next_of_var) {
        if (vars_is_client_depth(conf, &c->value, depth + 1)) {
            return true;
        }
    }
    return false;
}


static bool
vars_is_client_depth(const struct stream_conf *conf, const struct tmpl *t,
                     unsigned depth)
{
    if (depth > VARS_MAX_DEPTH) {
        return true; /* cannot tell: assume the worst */
    }
    for (size_t i = 0; i < t->nparts; i++) {
        const struct tmpl_part *p = &t->parts[i];
        if (p->kind == TMPL_CAPTURE) {
            return true;
        }
        if (p->kind != TMPL_VAR) {
            continue;
        }
        if (vars_builtin_is_client(p->id)) {
            return true;
        }
        if (p->id >= SET_VAR_BASE) {
            const struct stream_set_var *sv = set_by_id(conf, p->id);
            if (sv == NULL || vars_set_is_client(conf, sv, depth)) {
                return true;
            }
            continue;
        }
        if (p->id >= VAR_BUILTIN_COUNT &&
            (size_t)(p->id - VAR_BUILTIN_COUNT) < conf->nmaps) {
            const struct stream_map *m = conf->maps[p->id - VAR_BUILTIN_COUNT];
            if (m->set_var != NULL &&
                vars_set_is_client(conf, m->set_var, depth)) {
                return true;
            }
            if (vars_is_client_depth(conf, &m->default_value, depth + 1)) {
                return true;
            }
            for (const struct stream_map_value *v = m->values; v != NULL;
                 v = v->next) {
                if (vars_is_client_depth(conf, &v->t, depth + 1)) {
                    return true;
                }
            }
        }
    }
    return false;
}


bool
vars_is_client(const struct stream_conf *conf, const struct tmpl *t)
{
    return vars_is_client_depth(conf, t, 0);
}


/* Whether the variable id holds bytes a client (or PROXY sender) chose. */
static bool
vars_builtin_is_client(int id)
{
    if (id >= VAR_PP_TLV_BASE && id <= VAR_PP_TLV_BAD) {
        return true; /* bytes the PROXY header's sender chose */
    }
    switch (id) {
    case VAR_SSL_PREREAD_SERVER_NAME:
    case VAR_SSL_PREREAD_ALPN_PROTOCOLS:
    case VAR_HTTP_PREREAD_HOST:
    case VAR_PROXY_PROTOCOL_ADDR:
    case VAR_PROXY_PROTOCOL_PORT:
    case VAR_PROXY_PROTOCOL_SERVER_ADDR:
    case VAR_PROXY_PROTOCOL_SERVER_PORT:
        return true;
    default:
        return false;
    }
}


/*
 * Whether the value p gives in session s is, as a whole, bytes a client
 * chose: a capture, a client variable, or a `set` value built from them. A
 * map's value is not: the parts of the map value that is rendered answer
 * for themselves.
 */
static bool
vars_part_is_client(const struct session *s, const struct tmpl_part *p)
{
    const struct stream_conf *conf = s->conf;

    if (p->kind == TMPL_CAPTURE) {
        return true;
    }
    if (p->kind != TMPL_VAR) {
        return false;
    }
    if (vars_builtin_is_client(p->id)) {
        return true;
    }
    if (p->id >= SET_VAR_BASE) {
        const struct stream_set_var *sv = set_by_id(conf, p->id);
        return sv == NULL || vars_set_is_client(conf, sv, 0);
    }
    if (p->id >= VAR_BUILTIN_COUNT &&
        (size_t)(p->id - VAR_BUILTIN_COUNT) < conf->nmaps) {
        const struct stream_map *m = conf->maps[p->id - VAR_BUILTIN_COUNT];
        /* A `set` on the map's variable overrides the map, as a set value. */
        return m->set_var != NULL &&
               vars_set_value(s, (int)m->set_var->slot) != NULL &&
               vars_set_is_client(conf, m->set_var, 0);
    }
    return false;
}


const char *
vars_preread_status_text(int status)
{
    if (status < 0 || status > PREREAD_TIMEOUT) {
        return "";
    }
    return vars_preread_names[status];
}


void
vars_reset(void)
{
    vars_scratch_used = 0;
}


static const char *
vars_scratch_printf(size_t *len, const char *fmt, ...)
{
    char *p = vars_scratch + vars_scratch_used;
    const size_t room = VARS_SCRATCH_SIZE - vars_scratch_used;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(p, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        *len = 0;
        return "";
    }
    vars_scratch_used += (size_t)n + 1;
    *len = (size_t)n;
    return p;
}


/*
 * One count per tried server, ", "-separated as $upstream_addr (nginx):
 * only the last try carried bytes, the earlier ones failed to connect.
 */
static const char *
vars_upstream_bytes(unsigned tries, uint64_t last, size_t *len)
{
    char *const p = vars_scratch + vars_scratch_used;
    const size_t room = VARS_SCRATCH_SIZE - vars_scratch_used;
    size_t n = 0;

    for (unsigned i = 0; i + 1 < tries; i++) {
        if (room - n < 4) {
            *len = 0;
            return "";
        }
        memcpy(p + n, "0, ", 3);
        n += 3;
    }
    const int k = snprintf(p + n, room - n, "%llu", (unsigned long long)last);
    if (k < 0 || (size_t)k >= room - n) {
        *len = 0;
        return "";
    }
    n += (size_t)k;
    vars_scratch_used += n + 1;
    *len = n;
    return p;
}


static const char *
vars_seconds(int64_t ms, size_t *len)
{
    if (ms < 0) {
        ms = 0;
    }
    return vars_scratch_printf(len, "%lld.%03lld", (long long)(ms / 1000),
                               (long long)(ms % 1000));
}


/* The port of ss, or "" for one without (unix-domain), as nginx. */
static const char *
vars_port(const void *sa, size_t *len)
{
    const int port = sock_addr_port((const struct sockaddr *)sa);

    if (port == 0) {
        *len = 0;
        return "";
    }
    return vars_scratch_printf(len, "%d", port);
}


static const char *
vars_scratch_copy(const char *src, size_t len)
{
    char *p = vars_scratch + vars_scratch_used;

    if (len + 1 > VARS_SCRATCH_SIZE - vars_scratch_used) {
        return NULL;
    }
    memcpy(p, src, len);
    p[len] = '\0';
    vars_scratch_used += len + 1;
    return p;
}


static int
vars_map_value(struct vars_ctx *ctx, const struct stream_map *m,
               const char **val, size_t *len)
{
    /* The key only chooses: its bytes never reach the output. */
    struct vars_ctx inner = {ctx->s, false, NULL, ctx->depth + 1, false, NULL};
    struct hostmatch_caps caps;
    const struct tmpl *value;
    const char *key;
    size_t key_len;
    char buf[VARS_VALUE_MAX];

    if (inner.depth > VARS_MAX_DEPTH) {
        return -1;
    }
    caps.count = 0;
    if (m->geo != NULL && m->source.nparts == 0) {
        /* geo without $address: the client's address ($remote_addr). */
        value = geo_find_addr(m->geo, (struct sockaddr *)&ctx->s->client_addr);
    } else {
        /* The key is rendered raw (not escaped) and kept for the captures. */
        key_len = vars_render_ctx(&inner, &m->source, STR_ESCAPE_NONE, buf,
                                  sizeof(buf));
        if (key_len > sizeof(buf) ||
            (key = vars_scratch_copy(buf, key_len)) == NULL) {
            return -1;
        }
        if (m->geo != NULL) {
            value = geo_find_text(m->geo, key, key_len);
        } else if (m->split != NULL) {
            value = split_clients_find(m->split, key, key_len);
        } else {
            value = hostmatch_find(m->keys, key, key_len, &caps);
            /* The route of snirelay_route_*: this entry, a config word. */
            if (ctx->s != NULL) {
                ctx->s->m_map_route =
                    value != NULL
                        ? ((const struct stream_map_value *)value)->metrics
                        : m->default_metrics;
            }
        }
    }
    if (value == NULL) {
        value = &m->default_value;
    }
    inner.caps = &caps;
    inner.client_colon = ctx->client_colon;
    *len = vars_render_ctx(&inner, value, STR_ESCAPE_NONE, buf, sizeof(buf));
    if (*len > sizeof(buf) || (*val = vars_scratch_copy(buf, *len)) == NULL) {
        return -1;
    }
    return 0;
}


/*
 * $proxy_protocol_tlv_NAME: from the TLV area realip.c kept after the
 * session's pp (only when the config uses such a variable). nginx's
 * errors: an unknown name or a TLV overrunning its area are logged and
 * the variable has no value.
 */
static int
vars_pp_tlv(struct session *s, const struct tmpl_part *p, const char **val,
            size_t *len)
{
    char verify[PROXY_PROTO_TLV_VERIFY_MAX];
    const uint8_t *v;
    size_t n;

    if (p->id == VAR_PP_TLV_BAD) {
        session_log(s, ERRLOG_ERR, "unknown PROXY protocol TLV \"%s\"",
                    p->text + sizeof(VAR_PP_TLV_PREFIX) - 1);
        return -1;
    }
    if (!s->has_pp || s->pp->tlvs_len == 0 || !s->conf->keep_pp_tlvs) {
        return -1;
    }
    switch (proxy_proto_tlv_get((const uint8_t *)(s->pp + 1), s->pp->tlvs_len,
                                p->id - VAR_PP_TLV_BASE, &v, &n, verify)) {
    case PROXY_PROTO_TLV_FOUND:
        *val = vars_scratch_copy((const char *)v, n);
        *len = n;
        return *val != NULL ? 0 : -1;
    case PROXY_PROTO_TLV_BROKEN:
        session_log(s, ERRLOG_ERR, "broken PROXY protocol TLV");
        return -1;
    case PROXY_PROTO_TLV_NONE:
    default:
        return -1;
    }
}


/* What `set` stored in s's slot, or NULL when nothing was set there. */
static const struct session_var *
vars_set_value(const struct session *s, int slot)
{
    if (s->vars == NULL || slot < 0 || (size_t)slot >= s->conf->nset_vars ||
        !s->vars[slot].is_set) {
        return NULL;
    }
    return &s->vars[slot];
}


/* tmpl_value_fn: the value of one variable or capture part. */
/*
 * tmpl_value_fn: p's value. Under vars_eval_client() it also notes a ':'
 * in a value a client supplied.
 */
static int
vars_value(void *data, const struct tmpl_part *p, const char **val, size_t *len)
{
    struct vars_ctx *ctx = data;
    const int rc = vars_value_of(ctx, p, val, len);

    if (rc == 0 && ctx->client_colon != NULL && !*ctx->client_colon &&
        *len > 0 && memchr(*val, ':', *len) != NULL &&
        vars_part_is_client(ctx->s, p)) {
        *ctx->client_colon = true;
    }
    return rc;
}


static int
vars_value_of(struct vars_ctx *ctx, const struct tmpl_part *p,
              const char **val, size_t *len)
{
    struct session *s = ctx->s;
    char host[SOCK_ADDR_TEXT_MAX];
    int64_t now = clock_now_ms();

    if (ctx->reset_each) {
        vars_reset();
    }
    if (p->kind == TMPL_CAPTURE) {
        if (ctx->caps == NULL) {
            return -1;
        }
        return hostmatch_cap(ctx->caps, (size_t)p->id, val, len);
    }
    switch (p->id) {
    case VAR_REMOTE_ADDR:
        sock_addr_host((struct sockaddr *)&s->client_addr, host, sizeof(host));
        *val = vars_scratch_printf(len, "%s", host);
        return 0;
    case VAR_REMOTE_PORT:
        *val = vars_port(&s->client_addr, len);
        return 0;
    case VAR_SERVER_ADDR:
        sock_addr_host(s->local_addr, host, sizeof(host));
        *val = vars_scratch_printf(len, "%s", host);
        return 0;
    case VAR_SERVER_PORT:
        *val = vars_port(s->local_addr, len);
        return 0;
    case VAR_PROTOCOL:
        *val = "TCP";
        *len = 3;
        return 0;
    case VAR_STATUS:
        *val = vars_scratch_printf(len, "%03d", s->status);
        return 0;
    case VAR_BYTES_SENT:
        *val =
            vars_scratch_printf(len, "%llu", (unsigned long long)s->bytes_sent);
        return 0;
    case VAR_BYTES_RECEIVED:
        *val = vars_scratch_printf(len, "%llu",
                                   (unsigned long long)s->bytes_received);
        return 0;
    case VAR_SESSION_TIME:
        *val = vars_seconds(now - s->start_ms, len);
        return 0;
    case VAR_TIME_LOCAL:
        *val = clock_time_local();
        *len = strlen(*val);
        return 0;
    case VAR_TIME_ISO8601:
        *val = clock_time_iso8601();
        *len = strlen(*val);
        return 0;
    case VAR_MSEC: {
        const int64_t w = clock_wall_ms();
        *val = vars_scratch_printf(len, "%lld.%03lld", (long long)(w / 1000),
                                   (long long)(w % 1000));
        return 0;
    }
    case VAR_CONNECTION:
        *val = vars_scratch_printf(len, "%llu", (unsigned long long)s->id);
        return 0;
    case VAR_PID:
        *val = vars_scratch_printf(len, "%d", (int)getpid());
        return 0;
    case VAR_HOSTNAME:
        if (vars_hostname[0] == '\0') {
            gethostname(vars_hostname, sizeof(vars_hostname) - 1);
        }
        *val = vars_hostname;
        *len = strlen(vars_hostname);
        return 0;
    case VAR_UPSTREAM_ADDR:
        if (s->upstream_addrs == NULL) {
            return -1;
        }
        *val = s->upstream_addrs;
        *len = strlen(s->upstream_addrs);
        return 0;
    case VAR_UPSTREAM_BYTES_SENT:
        if (s->tries == 0) {
            return -1;
        }
        *val = vars_upstream_bytes(s->tries, s->upstream_bytes_sent, len);
        return 0;
    case VAR_UPSTREAM_BYTES_RECEIVED:
        if (s->tries == 0) {
            return -1;
        }
        *val = vars_upstream_bytes(s->tries, s->upstream_bytes_received, len);
        return 0;
    case VAR_UPSTREAM_CONNECT_TIME:
        if (s->connect_times == NULL) {
            return -1;
        }
        *val = s->connect_times;
        *len = strlen(s->connect_times);
        return 0;
    case VAR_UPSTREAM_FIRST_BYTE_TIME:
        if (s->first_byte_ms == 0) {
            return -1;
        }
        *val = vars_seconds(s->first_byte_ms - s->connect_start_ms, len);
        return 0;
    case VAR_UPSTREAM_SESSION_TIME:
        if (s->connected_ms == 0) {
            return -1;
        }
        *val = vars_seconds(now - s->connected_ms, len);
        return 0;
    case VAR_SSL_PREREAD_SERVER_NAME:
        if (s->preread == PREREAD_NONE) {
            return -1;
        }
        *val = preread_sni(s, len);
        return 0;
    case VAR_SSL_PREREAD_ALPN_PROTOCOLS:
        if (s->preread == PREREAD_NONE) {
            return -1;
        }
        *val = preread_alpn(s, len);
        return 0;
    case VAR_SSL_PREREAD_PROTOCOL: {
        const char *name = NULL;
        if (s->preread == PREREAD_NONE) {
            return -1;
        }
        if (s->preread == PREREAD_OK || s->preread == PREREAD_NO_SNI) {
            name = tls_hello_protocol_name(s->names != NULL ? s->names->version
                                                            : 0);
        }
        *val = name != NULL ? name : "";
        *len = strlen(*val);
        return 0;
    }
    case VAR_SSL_PREREAD_STATUS:
        if (s->preread == PREREAD_NONE) {
            return -1;
        }
        *val = vars_preread_status_text(s->preread);
        *len = strlen(*val);
        return 0;
    case VAR_SSL_PREREAD_ECH:
        if (s->preread == PREREAD_NONE) {
            return -1;
        }
        *val = s->names != NULL && s->names->has_ech ? "1" : "";
        *len = strlen(*val);
        return 0;
    case VAR_HTTP_PREREAD_HOST:
        if (s->http_preread == PREREAD_NONE) {
            return -1;
        }
        *val = preread_host(s, len);
        return 0;
    case VAR_PROXY_PROTOCOL_ADDR:
    case VAR_PROXY_PROTOCOL_SERVER_ADDR:
        if (!s->has_pp || s->pp->is_local) {
            return -1;
        }
        sock_addr_host((struct sockaddr *)(p->id == VAR_PROXY_PROTOCOL_ADDR
                                               ? &s->pp->src
                                               : &s->pp->dst),
                       host, sizeof(host));
        *val = vars_scratch_printf(len, "%s", host);
        return 0;
    case VAR_PROXY_PROTOCOL_PORT:
    case VAR_PROXY_PROTOCOL_SERVER_PORT:
        if (!s->has_pp || s->pp->is_local) {
            return -1;
        }
        *val = vars_scratch_printf(
            len, "%d",
            sock_addr_port((struct sockaddr *)(p->id == VAR_PROXY_PROTOCOL_PORT
                                                   ? &s->pp->src
                                                   : &s->pp->dst)));
        return 0;
    case VAR_REALIP_REMOTE_ADDR:
        sock_addr_host((struct sockaddr *)(s->realip_addr != NULL
                                               ? s->realip_addr
                                               : &s->client_addr),
                       host, sizeof(host));
        *val = vars_scratch_printf(len, "%s", host);
        return 0;
    case VAR_REALIP_REMOTE_PORT:
        *val = vars_port(
            s->realip_addr != NULL ? s->realip_addr : &s->client_addr, len);
        return 0;
    case VAR_BINARY_REMOTE_ADDR:
        if (s->client_addr.ss_family == AF_UNIX) {
            /*
             * nginx's stream module reads 4 bytes past the family here
             * (undefined for a unix peer); its http module gives the text,
             * as we do: every unbound unix client is one key, "unix:".
             */
            sock_addr_host((struct sockaddr *)&s->client_addr, host,
                           sizeof(host));
            *val = vars_scratch_printf(len, "%s", host);
        } else if (s->client_addr.ss_family == AF_INET6) {
            *val = (const char *)&((struct sockaddr_in6 *)&s->client_addr)
                       ->sin6_addr;
            *len = 16;
        } else {
            *val = (const char *)&((struct sockaddr_in *)&s->client_addr)
                       ->sin_addr;
            *len = 4;
        }
        return 0;
    case VAR_LIMIT_CONN_STATUS:
        if (s->limit_conn_status == LIMIT_CONN_STATUS_NONE) {
            return -1;
        }
        *val = s->limit_conn_status == LIMIT_CONN_STATUS_PASSED ? "PASSED"
               : s->limit_conn_status == LIMIT_CONN_STATUS_REJECTED
                   ? "REJECTED"
                   : "REJECTED_DRY_RUN";
        *len = strlen(*val);
        return 0;
    case VAR_NGINX_VERSION:
        *val = SNIRELAY_VERSION;
        *len = sizeof(SNIRELAY_VERSION) - 1;
        return 0;
    default:
        break;
    }
    if (p->id >= SET_VAR_BASE) {
        /* Not set in this session: empty, as nginx's null value. */
        const struct session_var *sv = vars_set_value(s, p->id - SET_VAR_BASE);
        *val = sv != NULL ? sv->data : "";
        *len = sv != NULL ? sv->len : 0;
        return 0;
    }
    if (p->id >= VAR_PP_TLV_BASE && p->id <= VAR_PP_TLV_BAD) {
        return vars_pp_tlv(s, p, val, len);
    }
    if (p->id >= VAR_BUILTIN_COUNT &&
        (size_t)(p->id - VAR_BUILTIN_COUNT) < s->conf->nmaps) {
        const struct stream_map *m = s->conf->maps[p->id - VAR_BUILTIN_COUNT];
        const struct session_var *sv =
            m->set_var != NULL ? vars_set_value(s, (int)m->set_var->slot)
                               : NULL;
        if (sv != NULL) {
            *val = sv->data;
            *len = sv->len;
            return 0;
        }
        return vars_map_value(ctx, m, val, len);
    }
    return -1;
}


/* nginx's access log writes "-" for a variable that has no value (with
 * escape=default only: json and none write nothing, as nginx). */
static int
vars_log_value(void *data, const struct tmpl_part *p, const char **val,
               size_t *len)
{
    if (vars_value(data, p, val, len) == -1) {
        *val = "-";
        *len = 1;
    }
    return 0;
}


static size_t
vars_render_ctx(struct vars_ctx *ctx, const struct tmpl *t, enum str_escape esc,
                char *dst, size_t cap)
{
    const bool dash = ctx->for_log && esc == STR_ESCAPE_DEFAULT;

    return tmpl_render(t, dash ? vars_log_value : vars_value, ctx, esc, dst,
                       cap);
}


size_t
vars_render(struct session *s, const struct tmpl *t, bool for_log,
            enum str_escape esc, char *dst, size_t cap)
{
    struct vars_ctx ctx = {s, for_log, NULL, 0, false, NULL};
    size_t n;

    if (cap == 0) {
        return 0;
    }
    n = vars_render_ctx(&ctx, t, esc, dst, cap - 1);
    if (n > cap - 1) {
        n = cap - 1;
    }
    dst[n] = '\0';
    return n;
}


const char *
vars_eval(struct session *s, const struct tmpl *t, size_t *len)
{
    bool unused = false;

    return vars_eval_client(s, t, len, &unused);
}


const char *
vars_eval_client(struct session *s, const struct tmpl *t, size_t *len,
                 bool *client_colon)
{
    struct vars_ctx ctx = {s, false, NULL, 0, false, client_colon};
    char buf[VARS_VALUE_MAX];
    const size_t n =
        vars_render_ctx(&ctx, t, STR_ESCAPE_NONE, buf, sizeof(buf));

    if (n > sizeof(buf)) {
        *len = 0;
        return NULL;
    }
    *len = n;
    return vars_scratch_copy(buf, n);
}


char *
vars_eval_alloc(struct session *s, const struct tmpl *t, size_t *len)
{
    struct vars_ctx ctx = {s, false, NULL, 0, true, NULL};
    size_t cap = 256;

    /* Twice at most: the first render tells the length when it is over. */
    for (int i = 0; i < 2; i++) {
        char *p = malloc(cap + 1);
        size_t n;

        if (p == NULL) {
            return NULL;
        }
        vars_reset();
        n = vars_render_ctx(&ctx, t, STR_ESCAPE_NONE, p, cap);
        if (n <= cap) {
            p[n] = '\0';
            *len = n;
            return p;
        }
        free(p);
        cap = n;
    }
    return NULL;
}
