/* SPDX-License-Identifier: MIT */
/*
 * Stream variables: the registry of names (built-in ones and those `map`
 * defines) and their values for a session.
 */
#ifndef SNIRELAY_STREAM_VARS_H
#define SNIRELAY_STREAM_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"
#include "stream/tmpl.h"

struct session;
struct stream_conf;

enum var_id {
    VAR_REMOTE_ADDR,
    VAR_REMOTE_PORT,
    VAR_SERVER_ADDR,
    VAR_SERVER_PORT,
    VAR_PROTOCOL,
    VAR_STATUS,
    VAR_BYTES_SENT,
    VAR_BYTES_RECEIVED,
    VAR_SESSION_TIME,
    VAR_TIME_LOCAL,
    VAR_TIME_ISO8601,
    VAR_MSEC,
    VAR_CONNECTION,
    VAR_PID,
    VAR_HOSTNAME,
    VAR_UPSTREAM_ADDR,
    VAR_UPSTREAM_BYTES_SENT,
    VAR_UPSTREAM_BYTES_RECEIVED,
    VAR_UPSTREAM_CONNECT_TIME,
    VAR_UPSTREAM_FIRST_BYTE_TIME,
    VAR_UPSTREAM_SESSION_TIME,
    VAR_SSL_PREREAD_SERVER_NAME,
    VAR_SSL_PREREAD_ALPN_PROTOCOLS,
    VAR_SSL_PREREAD_PROTOCOL,
    VAR_SSL_PREREAD_STATUS,
    VAR_SSL_PREREAD_ECH,
    VAR_PROXY_PROTOCOL_ADDR,
    VAR_PROXY_PROTOCOL_PORT,
    VAR_HTTP_PREREAD_HOST,
    VAR_PROXY_PROTOCOL_SERVER_ADDR,
    VAR_PROXY_PROTOCOL_SERVER_PORT,
    VAR_REALIP_REMOTE_ADDR,
    VAR_REALIP_REMOTE_PORT,
    VAR_BINARY_REMOTE_ADDR,
    VAR_NGINX_VERSION,
    VAR_LIMIT_CONN_STATUS,
    VAR_BUILTIN_COUNT,
};

/*
 * $proxy_protocol_tlv_NAME: ids VAR_PP_TLV_BASE + the type from
 * proxy_proto_tlv_type() (flags included), or VAR_PP_TLV_BAD for a name
 * nginx does not know (accepted, as nginx does; logged per use). Far
 * above the ids of map variables (VAR_BUILTIN_COUNT + index) and below
 * 0x100000, where ids of `set` variables start.
 */
#define VAR_PP_TLV_BASE 0x80000
#define VAR_PP_TLV_BAD (VAR_PP_TLV_BASE + 0x400)
#define VAR_PP_TLV_PREFIX "proxy_protocol_tlv_"

/* The id of a built-in variable, or -1. */
int vars_builtin_id(const char *name, size_t len);

/*
 * tmpl_resolve_fn over a stream_conf (data): built-in names, then the
 * variables its maps define.
 */
int vars_resolve(void *data, const char *name, size_t len, bool *is_capture);

/*
 * Renders t for session s into dst (cap bytes, NUL-terminated, truncated to
 * fit). for_log renders a variable that has no value as "-" (nginx's
 * access-log rule) and escapes values with esc. Returns the length written.
 */
size_t vars_render(struct session *s, const struct tmpl *t, bool for_log,
                   enum str_escape esc, char *dst, size_t cap);

/* Like vars_render() but into scratch memory valid until vars_reset(). */
const char *vars_eval(struct session *s, const struct tmpl *t, size_t *len);

/*
 * vars_eval(), and sets *client_colon (not NULL; left alone otherwise) when
 * a piece of the output that a client supplied (a variable vars_is_client()
 * counts, a capture, a `set` value made of them) holds a ':'. A host name
 * never does, so such a value carries a port or an IPv6 address of the
 * client's choosing. A map key's bytes do not count: they only choose.
 */
const char *vars_eval_client(struct session *s, const struct tmpl *t,
                             size_t *len, bool *client_colon);

/*
 * Renders t for s into a malloc'd, NUL-terminated string of any length
 * (the caller frees it), with *len set: no bound but memory, as the
 * scratch area is reused for each variable. Resets the scratch area (a
 * value from vars_eval() is gone). Returns NULL when out of memory (or when
 * a value changed length between the two renders it may take).
 */
char *vars_eval_alloc(struct session *s, const struct tmpl *t, size_t *len);

/* Ends an evaluation: scratch memory from vars_eval() is reused. */
void vars_reset(void);

/*
 * True when t's value can carry bytes the client chose: the preread names,
 * a regex capture, or a map whose value does. Such a value is never used as
 * an address, and what its name resolves to passes the SSRF guard.
 */
bool vars_is_client(const struct stream_conf *conf, const struct tmpl *t);

/* The text of enum preread_status values ("ok", "no_sni", ...). */
const char *vars_preread_status_text(int status);

#endif
