/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.x request-head parser; see http_req.h. One byte at a time through
 * a state machine, so a head split anywhere parses the same.
 */

#include <string.h>

#include "proto/http_req.h"


enum http_req_state {
    REQ_METHOD,   /* method token */
    REQ_TARGET,   /* request-target */
    REQ_VERSION,  /* HTTP-version */
    REQ_LINE_LF,  /* CR seen at the end of the request line */
    REQ_FIELD,    /* start of a field line, or the empty line */
    REQ_NAME,     /* field-name */
    REQ_VALUE,    /* field-value */
    REQ_VALUE_LF, /* CR seen at the end of a field line */
    REQ_END_LF,   /* CR seen on the empty line */
};


static int http_req_is_tchar(unsigned char c);
static enum http_req_rc http_req_fail(struct http_req *r, const char *why);
static enum http_req_rc http_req_byte(struct http_req *r, unsigned char c);


void
http_req_init(struct http_req *r)
{
    memset(r, 0, sizeof(*r));
    r->rc = HTTP_REQ_NEED_MORE;
    r->reason = "ok";
    r->state = REQ_METHOD;
}


/* RFC 9110 §5.6.2 tchar. */
static int
http_req_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}


static enum http_req_rc
http_req_fail(struct http_req *r, const char *why)
{
    r->rc = HTTP_REQ_MALFORMED;
    r->reason = why;
    return r->rc;
}


enum http_req_rc
http_req_feed(struct http_req *r, const unsigned char *data, size_t len)
{
    /* Bounded by len: each round consumes one byte. */
    for (size_t i = 0; i < len && r->rc == HTTP_REQ_NEED_MORE; i++) {
        r->head_len++;
        if (r->head_len > HTTP_REQ_HEAD_MAX) {
            return http_req_fail(r, "request head too large");
        }
        http_req_byte(r, data[i]);
    }
    return r->rc;
}


/* One byte of the head. */
static enum http_req_rc
http_req_byte(struct http_req *r, unsigned char c)
{
    switch ((enum http_req_state)r->state) {
    case REQ_METHOD:
        if (c == ' ') {
            if (r->method_len == 0) {
                return http_req_fail(r, "no method");
            }
            r->state = REQ_TARGET;
            return r->rc;
        }
        if (!http_req_is_tchar(c)) {
            return http_req_fail(r, "invalid method");
        }
        if (r->method_len == HTTP_REQ_METHOD_MAX) {
            return http_req_fail(r, "method too long");
        }
        r->method[r->method_len++] = (char)c;
        return r->rc;
    case REQ_TARGET:
        if (c == ' ') {
            if (r->target_len == 0) {
                return http_req_fail(r, "no request-target");
            }
            r->state = REQ_VERSION;
            return r->rc;
        }
        if (c < 0x21 || c > 0x7e) {
            return http_req_fail(r, "invalid request-target");
        }
        if (r->target_len == HTTP_REQ_TARGET_MAX) {
            return http_req_fail(r, "request-target too long");
        }
        r->target[r->target_len++] = (char)c;
        return r->rc;
    case REQ_VERSION:
        if (c == '\r' || c == '\n') {
            if (r->vers_len != 8 || memcmp(r->vers, "HTTP/1.", 7) != 0 ||
                (r->vers[7] != '0' && r->vers[7] != '1')) {
                return http_req_fail(r, "invalid HTTP version");
            }
            r->version = r->vers[7] == '0' ? 10 : 11;
            r->state = c == '\r' ? REQ_LINE_LF : REQ_FIELD;
            return r->rc;
        }
        if (r->vers_len == 8) {
            return http_req_fail(r, "invalid HTTP version");
        }
        r->vers[r->vers_len++] = (char)c;
        return r->rc;
    case REQ_LINE_LF:
    case REQ_VALUE_LF:
        if (c != '\n') {
            return http_req_fail(r, "CR without LF");
        }
        r->state = REQ_FIELD;
        return r->rc;
    case REQ_FIELD:
        if (c == '\r') {
            r->state = REQ_END_LF;
            return r->rc;
        }
        if (c == '\n') {
            r->rc = HTTP_REQ_DONE;
            return r->rc;
        }
        if (!http_req_is_tchar(c)) {
            return http_req_fail(r, "invalid field line");
        }
        if (r->fields == HTTP_REQ_FIELDS_MAX) {
            return http_req_fail(r, "too many field lines");
        }
        r->fields++;
        r->state = REQ_NAME;
        return r->rc;
    case REQ_NAME:
        if (c == ':') {
            r->state = REQ_VALUE;
            return r->rc;
        }
        if (!http_req_is_tchar(c)) {
            return http_req_fail(r, "invalid field name");
        }
        return r->rc;
    case REQ_VALUE:
        if (c == '\r') {
            r->state = REQ_VALUE_LF;
            return r->rc;
        }
        if (c == '\n') {
            r->state = REQ_FIELD;
            return r->rc;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            return http_req_fail(r, "control byte in a field value");
        }
        return r->rc;
    case REQ_END_LF:
        if (c != '\n') {
            return http_req_fail(r, "CR without LF");
        }
        r->rc = HTTP_REQ_DONE;
        return r->rc;
    }
    return http_req_fail(r, "bad state");
}
