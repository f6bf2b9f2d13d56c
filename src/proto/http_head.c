/* SPDX-License-Identifier: MIT */
/*
 * Incremental HTTP/1.x request-head scanner. A byte-driven state machine
 * in three layers: the line layer walks the request line and the header
 * lines; the request-target layer spots an absolute-form target and hands
 * its authority to the host layer; the host layer checks one uri-host
 * [":" port], from the target or from a Host value, and copies the host
 * lower-cased into h->auth. Every byte is looked at once and nothing is
 * buffered but the host being read, so any split works and no pointer into
 * the input outlives a call. The first bytes decide NOT_HTTP early: until
 * the version reads "HTTP/1", a request line that does not parse is
 * NOT_HTTP; after that everything invalid is MALFORMED. A bad authority in
 * the target is therefore remembered and reported only once the version is
 * known. Known limits: authority-form (CONNECT) targets are not used for
 * routing, only the Host header is; pct-encoding in a host is not decoded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/http_head.h"


/*
 * Request head, RFC 9112 §2.1, §3 and §5:
 *
 *   *( CRLF )                                 ignored, §2.2 (at most
 *                                             HTTP_HEAD_LEAD_MAX)
 *   method SP request-target SP HTTP-version CRLF
 *   *( field-name ":" OWS field-value OWS CRLF )
 *   CRLF
 *
 *   method       = token (tchar, RFC 9110 §5.6.2), at most 32 bytes here
 *   HTTP-version = "HTTP/" DIGIT "." DIGIT    case-sensitive, §2.3
 *   CRLF         may be a bare LF (§2.2); a bare CR is rejected
 *   field-name   = token, no whitespace before ":" (§5.1); a line that
 *                  starts with SP or HTAB is obs-fold (§5.2), rejected
 *
 * request-target, RFC 9112 §3.2:
 *
 *   origin-form    "/" path [ "?" query ]          host from Host
 *   absolute-form  scheme "://" authority path...  host from the target,
 *                                                  §3.2.2; Host must agree
 *   authority-form host ":" port (CONNECT)         host from Host
 *   asterisk-form  "*"                             host from Host
 *
 * Host, RFC 9110 §7.2 and RFC 3986 §3.2.2:
 *
 *   Host       = uri-host [ ":" port ]       port = 1*5DIGIT here
 *   uri-host   = IP-literal / IPv4address / reg-name
 *   IP-literal = "[" ( IPv6address / IPvFuture ) "]"
 *   reg-name   = *( unreserved / pct-encoded / sub-delims )
 *     unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
 *     sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / ","
 *                  / ";" / "="
 */
#define HEAD_HTTP_NAME "HTTP/"
#define HEAD_HTTP_NAME_LEN 5
#define HEAD_HOST_NAME "host"
#define HEAD_HOST_NAME_LEN 4
#define HEAD_PORT_DIGITS_MAX 5


/* Line-layer states, in wire order. */
enum head_state {
    ST_LEAD = 0,   /* before the request line: empty lines or a method */
    ST_LEAD_LF,    /* CR of a leading empty line read; LF must follow */
    ST_METHOD,     /* method token, up to SP */
    ST_TARGET,     /* request-target, up to SP */
    ST_PROTO,      /* "HTTP/", h->match bytes of it read */
    ST_MAJOR,      /* major version digit */
    ST_DOT,        /* "." */
    ST_MINOR,      /* minor version digit */
    ST_RL_END,     /* CR or LF ending the request line */
    ST_RL_LF,      /* LF after the request line's CR */
    ST_LINE_START, /* first byte of a header line or of the empty line */
    ST_END_LF,     /* LF after the empty line's CR */
    ST_NAME,       /* field name, up to ":" */
    ST_OWS,        /* whitespace after ":" */
    ST_VALUE,      /* field value, up to CR or LF */
    ST_VALUE_LF,   /* LF after a header line's CR */
};

/* Request-target states: only an absolute-form authority is read. */
enum target_state {
    T_START = 0, /* first byte of the target */
    T_SCHEME,    /* scheme letters, up to ":" */
    T_SLASH1,    /* first "/" after "scheme:" */
    T_SLASH2,    /* second "/" */
    T_AUTH,      /* authority bytes, fed to the host layer */
    T_REST,      /* anything else, skipped */
};

/* Host-layer states for uri-host [ ":" port ]. */
enum auth_state {
    A_START = 0, /* nothing read yet */
    A_NAME,      /* reg-name or IPv4address */
    A_V6,        /* inside "[...]" */
    A_V6_END,    /* after "]" */
    A_PORT,      /* port digits */
};


static enum http_head_rc head_fail(struct http_head *h, enum http_head_rc rc,
                                   const char *reason);
static void head_byte(struct http_head *h, uint8_t b);
static void head_request_line_byte(struct http_head *h, uint8_t b);
static void head_lead_line(struct http_head *h);
static void head_request_line_done(struct http_head *h);
static void head_field_byte(struct http_head *h, uint8_t b);
static void head_name_byte(struct http_head *h, uint8_t b);
static void head_value_byte(struct http_head *h, uint8_t b);
static void head_field_done(struct http_head *h);
static void head_host_field_done(struct http_head *h);
static void head_target_byte(struct http_head *h, uint8_t b);
static void head_target_end(struct http_head *h);
static void head_target_auth_done(struct http_head *h);
static void head_auth_start(struct http_head *h);
static const char *head_auth_byte(struct http_head *h, uint8_t b);
static const char *head_auth_store(struct http_head *h, uint8_t b);
static const char *head_auth_name_end(struct http_head *h);
static const char *head_auth_finish(struct http_head *h);
static bool head_is_tchar(uint8_t b);
static bool head_is_host_char(uint8_t b);
static bool head_is_alpha(uint8_t b);
static bool head_is_digit(uint8_t b);
static uint8_t head_lower(uint8_t b);


void
http_head_init(struct http_head *h)
{
    memset(h, 0, sizeof(*h));
    h->reason = "ok";
    h->rc = HTTP_HEAD_NEED_MORE;
    h->state = ST_LEAD;
    h->target_state = T_START;
    h->auth_state = A_START;
}


enum http_head_rc
http_head_feed(struct http_head *h, const uint8_t *data, size_t len)
{
    /* One byte per pass, and the outcome is checked before each. */
    for (size_t pos = 0; pos < len && h->rc == HTTP_HEAD_NEED_MORE; pos++) {
        h->head_len++;
        head_byte(h, data[pos]);
    }
    return h->rc;
}


/* Records a final outcome; it is sticky, later feeds return it. */
static enum http_head_rc
head_fail(struct http_head *h, enum http_head_rc rc, const char *reason)
{
    h->rc = rc;
    h->reason = reason;
    return rc;
}


/*
 * Takes one byte of the head. The line length is checked first, so the
 * byte that makes a line too long is refused whatever it is;
 * h->line_len is reset where a line ends.
 */
static void
head_byte(struct http_head *h, uint8_t b)
{
    if (++h->line_len > HTTP_HEAD_LINE_MAX) {
        head_fail(h, HTTP_HEAD_MALFORMED, "line longer than 8192 bytes");
    } else if (h->state < ST_LINE_START) {
        head_request_line_byte(h, b);
    } else {
        head_field_byte(h, b);
    }
}


/* One byte of the leading empty lines or of the request line. */
static void
head_request_line_byte(struct http_head *h, uint8_t b)
{
    switch (h->state) {
    case ST_LEAD:
        if (b == '\r') {
            h->state = ST_LEAD_LF;
        } else if (b == '\n') {
            head_lead_line(h);
        } else if (head_is_tchar(b)) {
            h->state = ST_METHOD;
        } else {
            head_fail(h, HTTP_HEAD_NOT_HTTP,
                      "first byte cannot start an HTTP method");
        }
        return;

    case ST_LEAD_LF:
        if (b == '\n') {
            head_lead_line(h);
        } else {
            head_fail(h, HTTP_HEAD_NOT_HTTP,
                      "CR not followed by LF before the request line");
        }
        return;

    case ST_METHOD:
        /* line_len counts the method alone: lead lines reset it. */
        if (head_is_tchar(b)) {
            if (h->line_len > HTTP_HEAD_METHOD_MAX) {
                head_fail(h, HTTP_HEAD_NOT_HTTP, "method longer than 32 bytes");
            }
        } else if (b == ' ') {
            h->state = ST_TARGET;
        } else {
            head_fail(h, HTTP_HEAD_NOT_HTTP, "method not followed by a space");
        }
        return;

    case ST_TARGET:
        if (b == ' ') {
            if (h->target_state == T_START) {
                head_fail(h, HTTP_HEAD_NOT_HTTP, "empty request-target");
                return;
            }
            head_target_end(h);
            h->state = ST_PROTO;
        } else if (b == '\r' || b == '\n') {
            head_fail(h, HTTP_HEAD_NOT_HTTP,
                      "request line without an HTTP version (HTTP/0.9)");
        } else if (b < 0x20 || b == 0x7f) {
            /* Bytes 0x80-0xff pass: routing never looks at the path. */
            head_fail(h, HTTP_HEAD_NOT_HTTP, "control byte in request-target");
        } else {
            head_target_byte(h, b);
        }
        return;

    case ST_PROTO:
        if (b != (uint8_t)HEAD_HTTP_NAME[h->match]) {
            head_fail(h, HTTP_HEAD_NOT_HTTP,
                      "request line does not end in an HTTP version");
            return;
        }
        if (++h->match == HEAD_HTTP_NAME_LEN) {
            h->state = ST_MAJOR;
        }
        return;

    case ST_MAJOR:
        /* From "HTTP/1" on, the client speaks HTTP/1.x. */
        if (b == '1') {
            h->state = ST_DOT;
        } else if (head_is_digit(b)) {
            head_fail(h, HTTP_HEAD_NOT_HTTP, "HTTP major version is not 1");
        } else {
            head_fail(h, HTTP_HEAD_NOT_HTTP,
                      "request line does not end in an HTTP version");
        }
        return;

    case ST_DOT:
        if (b == '.') {
            h->state = ST_MINOR;
        } else {
            head_fail(h, HTTP_HEAD_MALFORMED, "invalid HTTP version");
        }
        return;

    case ST_MINOR:
        if (b == '0' || b == '1') {
            h->version = 10 + (unsigned)(b - '0');
            h->state = ST_RL_END;
        } else if (head_is_digit(b)) {
            head_fail(h, HTTP_HEAD_MALFORMED,
                      "HTTP version is neither 1.0 nor 1.1");
        } else {
            head_fail(h, HTTP_HEAD_MALFORMED, "invalid HTTP version");
        }
        return;

    case ST_RL_END:
        if (b == '\r') {
            h->state = ST_RL_LF;
        } else if (b == '\n') {
            head_request_line_done(h);
        } else {
            head_fail(h, HTTP_HEAD_MALFORMED,
                      "bytes after the HTTP version in the request line");
        }
        return;

    case ST_RL_LF:
        if (b == '\n') {
            head_request_line_done(h);
        } else {
            head_fail(h, HTTP_HEAD_MALFORMED, "CR not followed by LF");
        }
        return;

    default:
        head_fail(h, HTTP_HEAD_MALFORMED, "internal scanner state error");
        return;
    }
}


/* An empty line before the request line ended; only a few are allowed. */
static void
head_lead_line(struct http_head *h)
{
    h->line_len = 0;
    h->state = ST_LEAD;
    if (++h->lead_lines > HTTP_HEAD_LEAD_MAX) {
        head_fail(h, HTTP_HEAD_NOT_HTTP,
                  "too many empty lines before the request line");
    }
}


/*
 * The request line ended with a valid HTTP/1.0 or 1.1 version, so an
 * invalid target authority noted earlier is now MALFORMED.
 */
static void
head_request_line_done(struct http_head *h)
{
    if (h->target_err != NULL) {
        head_fail(h, HTTP_HEAD_MALFORMED, h->target_err);
        return;
    }
    h->line_len = 0;
    h->state = ST_LINE_START;
}


/* One byte of a header line or of the final empty line. */
static void
head_field_byte(struct http_head *h, uint8_t b)
{
    switch (h->state) {
    case ST_LINE_START:
        if (b == '\r') {
            h->state = ST_END_LF;
        } else if (b == '\n') {
            h->rc = HTTP_HEAD_DONE;
        } else if (b == ' ' || b == '\t') {
            head_fail(h, HTTP_HEAD_MALFORMED,
                      "header line starts with whitespace (obs-fold)");
        } else if (b == ':') {
            head_fail(h, HTTP_HEAD_MALFORMED, "empty header name");
        } else if (!head_is_tchar(b)) {
            head_fail(h, HTTP_HEAD_MALFORMED, "invalid byte in header name");
        } else if (++h->fields > HTTP_HEAD_FIELDS_MAX) {
            head_fail(h, HTTP_HEAD_MALFORMED, "more than 100 header fields");
        } else {
            h->name_len = 0;
            h->name_is_host = true;
            h->state = ST_NAME;
            head_name_byte(h, b);
        }
        return;

    case ST_END_LF:
        if (b == '\n') {
            h->rc = HTTP_HEAD_DONE;
        } else {
            head_fail(h, HTTP_HEAD_MALFORMED, "CR not followed by LF");
        }
        return;

    case ST_NAME:
        head_name_byte(h, b);
        return;

    case ST_OWS:
        if (b == ' ' || b == '\t') {
            return;
        }
        h->state = ST_VALUE;
        head_value_byte(h, b);
        return;

    case ST_VALUE:
        head_value_byte(h, b);
        return;

    case ST_VALUE_LF:
        if (b == '\n') {
            head_field_done(h);
        } else {
            head_fail(h, HTTP_HEAD_MALFORMED, "CR not followed by LF");
        }
        return;

    default:
        head_fail(h, HTTP_HEAD_MALFORMED, "internal scanner state error");
        return;
    }
}


/* One byte of a field name, or the colon that ends it (RFC 9112 §5.1). */
static void
head_name_byte(struct http_head *h, uint8_t b)
{
    if (head_is_tchar(b)) {
        h->name_is_host = h->name_is_host && h->name_len < HEAD_HOST_NAME_LEN &&
                          head_lower(b) == HEAD_HOST_NAME[h->name_len];
        h->name_len++;
        return;
    }
    if (b == ' ' || b == '\t') {
        head_fail(h, HTTP_HEAD_MALFORMED,
                  "whitespace between header name and colon");
        return;
    }
    if (b == '\r' || b == '\n') {
        head_fail(h, HTTP_HEAD_MALFORMED, "header line without a colon");
        return;
    }
    if (b != ':') {
        head_fail(h, HTTP_HEAD_MALFORMED, "invalid byte in header name");
        return;
    }

    h->in_host = h->name_is_host && h->name_len == HEAD_HOST_NAME_LEN;
    if (h->in_host) {
        if (h->seen_host_field) {
            head_fail(h, HTTP_HEAD_MALFORMED, "duplicate Host header");
            return;
        }
        h->seen_host_field = true;
        h->host_ws = false;
        head_auth_start(h);
    }
    h->state = ST_OWS;
}


/*
 * One byte of a field value (after the leading OWS). Other fields are
 * only checked for NUL and line endings (RFC 9110 §5.5); a Host value goes
 * to the host layer, and whitespace may only trail it.
 */
static void
head_value_byte(struct http_head *h, uint8_t b)
{
    if (b == '\r') {
        h->state = ST_VALUE_LF;
        return;
    }
    if (b == '\n') {
        head_field_done(h);
        return;
    }
    if (!h->in_host) {
        if (b == '\0') {
            head_fail(h, HTTP_HEAD_MALFORMED, "NUL in header value");
        }
        return;
    }
    if (b == ' ' || b == '\t') {
        h->host_ws = true;
        return;
    }
    if (h->host_ws) {
        head_fail(h, HTTP_HEAD_MALFORMED, "whitespace inside the Host value");
        return;
    }
    const char *const reason = head_auth_byte(h, b);
    if (reason != NULL) {
        head_fail(h, HTTP_HEAD_MALFORMED, reason);
    }
}


/* A header line ended. */
static void
head_field_done(struct http_head *h)
{
    h->line_len = 0;
    h->state = ST_LINE_START;
    if (h->in_host) {
        h->in_host = false;
        head_host_field_done(h);
    }
}


/*
 * A Host value ended. An empty one names no host. With an absolute-form
 * target the target's host wins (RFC 9112 §3.2.2), and a Host naming
 * another host is ambiguous, so MALFORMED.
 */
static void
head_host_field_done(struct http_head *h)
{
    const char *const reason = head_auth_finish(h);

    if (reason != NULL) {
        head_fail(h, HTTP_HEAD_MALFORMED, reason);
        return;
    }
    if (h->auth_len == 0) {
        return;
    }
    if (h->target_has_host) {
        if (h->auth_len != h->host_len ||
            memcmp(h->auth, h->host, h->auth_len) != 0) {
            head_fail(h, HTTP_HEAD_MALFORMED,
                      "Host header differs from the request-target host");
        }
        return;
    }
    memcpy(h->host, h->auth, h->auth_len + 1);
    h->host_len = h->auth_len;
    h->has_host = true;
}


/*
 * One byte of the request-target (not SP, not a control byte). Only an
 * absolute-form target ("scheme://authority...") is looked into; errors
 * in its authority are kept in h->target_err until the version is known.
 */
static void
head_target_byte(struct http_head *h, uint8_t b)
{
    switch (h->target_state) {
    case T_START:
        h->target_state = head_is_alpha(b) ? T_SCHEME : T_REST;
        return;

    case T_SCHEME:
        if (b == ':') {
            h->target_state = T_SLASH1;
        } else if (!head_is_alpha(b) && !head_is_digit(b) && b != '+' &&
                   b != '-' && b != '.') {
            h->target_state = T_REST;
        }
        return;

    case T_SLASH1:
        h->target_state = b == '/' ? T_SLASH2 : T_REST;
        return;

    case T_SLASH2:
        if (b == '/') {
            h->target_state = T_AUTH;
            head_auth_start(h);
        } else {
            h->target_state = T_REST;
        }
        return;

    case T_AUTH:
        /*
         * After an error the authority is still scanned to its end, so
         * that "user:pass@" is reported as userinfo, not as a bad port.
         */
        if (b == '/' || b == '?' || b == '#') {
            head_target_auth_done(h);
        } else if (b == '@') {
            /* RFC 9110 §4.2.4: userinfo in an http(s) URI is an error. */
            h->target_err = "userinfo in request-target";
            h->target_state = T_REST;
        } else if (h->target_err == NULL) {
            h->target_err = head_auth_byte(h, b);
        }
        return;

    default:
        return;
    }
}


/* The request-target ended at SP. */
static void
head_target_end(struct http_head *h)
{
    if (h->target_state == T_AUTH) {
        head_target_auth_done(h);
    }
}


/* The authority of an absolute-form target ended; its host is the host. */
static void
head_target_auth_done(struct http_head *h)
{
    h->target_state = T_REST;
    if (h->target_err != NULL) {
        return;
    }
    const char *const reason = head_auth_finish(h);
    if (reason != NULL) {
        h->target_err = reason;
        return;
    }
    if (h->auth_len == 0) {
        /* RFC 9110 §4.2.1: an http URI with an empty host is invalid. */
        h->target_err = "empty host in request-target";
        return;
    }
    memcpy(h->host, h->auth, h->auth_len + 1);
    h->host_len = h->auth_len;
    h->has_host = true;
    h->target_has_host = true;
}


/* Starts reading a uri-host [":" port] into h->auth. */
static void
head_auth_start(struct http_head *h)
{
    h->auth_state = A_START;
    h->auth_len = 0;
    h->auth[0] = '\0';
    h->port_digits = 0;
}


/*
 * Takes one byte of a uri-host [":" port]. Returns NULL, or the reason the
 * authority is invalid (then it must not be fed again).
 */
static const char *
head_auth_byte(struct http_head *h, uint8_t b)
{
    switch (h->auth_state) {
    case A_START:
        if (b == '[') {
            h->auth_state = A_V6;
            return NULL;
        }
        if (b == ':') {
            return "port without a host";
        }
        h->auth_state = A_NAME;
        return head_auth_store(h, b);

    case A_NAME:
        if (b == ':') {
            h->auth_state = A_PORT;
            return head_auth_name_end(h);
        }
        return head_auth_store(h, b);

    case A_V6:
        if (b == ']') {
            h->auth_state = A_V6_END;
            return h->auth_len == 0 ? "empty IP literal" : NULL;
        }
        return head_auth_store(h, b);

    case A_V6_END:
        if (b == ':') {
            h->auth_state = A_PORT;
            return NULL;
        }
        return "bytes after an IP literal";

    case A_PORT:
        if (!head_is_digit(b)) {
            return "port is not 1 to 5 digits";
        }
        if (++h->port_digits > HEAD_PORT_DIGITS_MAX) {
            return "port is not 1 to 5 digits";
        }
        return NULL;

    default:
        return "internal scanner state error";
    }
}


/*
 * Appends one host byte, lower-cased. In an IP literal ':' is allowed too
 * (the caller passes it only there); "[" and "]" never are.
 */
static const char *
head_auth_store(struct http_head *h, uint8_t b)
{
    if (!head_is_host_char(b) && !(b == ':' && h->auth_state == A_V6)) {
        return "invalid byte in host";
    }
    if (h->auth_len == HTTP_HEAD_HOST_MAX) {
        return "host longer than 255 bytes";
    }
    h->auth[h->auth_len++] = (char)head_lower(b);
    h->auth[h->auth_len] = '\0';
    return NULL;
}


/*
 * A reg-name ended: drop one trailing dot; a lone dot names nothing. A
 * second trailing dot is an empty label: kept, the name would lose it to
 * the next normaliser and reach a host other than the one checked as
 * $http_preread_host.
 */
static const char *
head_auth_name_end(struct http_head *h)
{
    if (h->auth_len > 0 && h->auth[h->auth_len - 1] == '.') {
        h->auth[--h->auth_len] = '\0';
        if (h->auth_len == 0) {
            return "host is a lone dot";
        }
        if (h->auth[h->auth_len - 1] == '.') {
            return "host ends with an empty label";
        }
    }
    return NULL;
}


/*
 * The authority ended. Returns NULL with the host in h->auth (auth_len 0
 * when nothing was read), or the reason it is incomplete.
 */
static const char *
head_auth_finish(struct http_head *h)
{
    switch (h->auth_state) {
    case A_START:
    case A_V6_END:
        return NULL;
    case A_NAME:
        return head_auth_name_end(h);
    case A_V6:
        return "unclosed IP literal";
    case A_PORT:
        return h->port_digits == 0 ? "port is not 1 to 5 digits" : NULL;
    default:
        return "internal scanner state error";
    }
}


/* RFC 9110 §5.6.2: tchar. */
static bool
head_is_tchar(uint8_t b)
{
    return head_is_alpha(b) || head_is_digit(b) ||
           (b != '\0' && strchr("!#$%&'*+-.^_`|~", b) != NULL);
}


/* RFC 3986 §3.2.2: unreserved, sub-delims and "%" of pct-encoded. */
static bool
head_is_host_char(uint8_t b)
{
    return head_is_alpha(b) || head_is_digit(b) ||
           (b != '\0' && strchr("-._~!$&'()*+,;=%", b) != NULL);
}


static bool
head_is_alpha(uint8_t b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z');
}


static bool
head_is_digit(uint8_t b)
{
    return b >= '0' && b <= '9';
}


static uint8_t
head_lower(uint8_t b)
{
    return b >= 'A' && b <= 'Z' ? (uint8_t)(b - 'A' + 'a') : b;
}
