/* SPDX-License-Identifier: MIT */
/*
 * Incremental HTTP/1.x request-head scanner, the plain-HTTP twin of
 * tls_hello. It checks the request line and the header lines as they
 * arrive and keeps only what routing needs: the host (from an absolute-form
 * request-target, else from the Host header), the version and where the
 * head ends. Pure: no allocation, no I/O, no globals; all state lives in
 * struct http_head, owned by the caller.
 */
#ifndef SNIRELAY_PROTO_HTTP_HEAD_H
#define SNIRELAY_PROTO_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_head_rc {
    HTTP_HEAD_NEED_MORE, /* all input consumed; the head has not ended yet */
    HTTP_HEAD_DONE,      /* the head ended (empty line); results valid */
    HTTP_HEAD_NOT_HTTP,  /* the first bytes cannot start an HTTP/1.x
                            request line */
    HTTP_HEAD_MALFORMED, /* HTTP, but invalid or ambiguous for routing */
};

/* Longest host kept (lower-cased, port removed); a longer one is MALFORMED. */
#define HTTP_HEAD_HOST_MAX 255

/* Longest method token; a longer one is NOT_HTTP. */
#define HTTP_HEAD_METHOD_MAX 32

/*
 * Longest line, request line or header line, counting its CR LF (or LF).
 * A longer line is MALFORMED.
 */
#define HTTP_HEAD_LINE_MAX 8192

/* Most header lines in one head; one more is MALFORMED. */
#define HTTP_HEAD_FIELDS_MAX 100

/*
 * Most empty lines (CR LF or LF) ignored before the request line (RFC 9112
 * §2.2 asks for at least one); one more is NOT_HTTP.
 */
#define HTTP_HEAD_LEAD_MAX 4

/*
 * One connection's scanner state and results. The caller owns it (usually
 * inside its session object); it holds no pointers into caller buffers, so
 * input buffers may be reused or freed between calls.
 */
struct http_head {
    /* results, valid after HTTP_HEAD_DONE */
    char host[HTTP_HEAD_HOST_MAX + 1]; /* lower-cased, port and one trailing
                                          dot removed, IPv6 literal without
                                          brackets; NUL-terminated; "" if
                                          none */
    size_t host_len;                   /* bytes in host */
    bool has_host;      /* host came from the target or a non-empty Host */
    unsigned version;   /* 10 or 11 (HTTP/1.0, HTTP/1.1) */
    size_t head_len;    /* bytes consumed: the whole head, leading empty
                           lines and the final empty line included */
    const char *reason; /* static text: why NOT_HTTP/MALFORMED, else "ok" */

    /* private scanner state: read and written by http_head.c only */
    enum http_head_rc rc;   /* sticky outcome; NEED_MORE while scanning */
    uint8_t state;          /* line-level state (enum in .c) */
    uint8_t target_state;   /* request-target state (enum in .c) */
    uint8_t auth_state;     /* host / authority state (enum in .c) */
    uint8_t lead_lines;     /* empty lines seen before the request line */
    uint8_t match;          /* bytes of "HTTP/" matched */
    uint8_t port_digits;    /* digits of the port being read */
    size_t line_len;        /* bytes of the current line, ending included */
    size_t fields;          /* header lines seen */
    size_t name_len;        /* bytes of the current field name */
    bool name_is_host;      /* the field name so far is a prefix of "host" */
    bool in_host;           /* the current field is Host */
    bool host_ws;           /* whitespace seen after the Host value */
    bool seen_host_field;   /* a Host field was seen (for duplicates) */
    bool target_has_host;   /* host came from an absolute-form target */
    const char *target_err; /* invalid target authority, reported as
                               MALFORMED once the version says HTTP/1.x */
    char auth[HTTP_HEAD_HOST_MAX + 1]; /* host being read, NUL-terminated */
    size_t auth_len;                   /* bytes in auth */
};

/* Prepares h for a new connection; h must not be NULL. */
void http_head_init(struct http_head *h);

/*
 * Feeds the next len bytes of the client's byte stream. The scanner is
 * resumable at any split, down to one byte per call, and never re-reads
 * earlier bytes; data may be NULL when len is 0. Returns
 * HTTP_HEAD_NEED_MORE when every byte was consumed and the head has not
 * ended, HTTP_HEAD_DONE when the empty line ending the head was read (the
 * results are valid and h->head_len says where the body starts; bytes
 * after it are not read), or HTTP_HEAD_NOT_HTTP / HTTP_HEAD_MALFORMED (see
 * h->reason). Once the result is not NEED_MORE, later calls return it
 * again and read nothing. The caller bounds the total head by its buffer;
 * the line and field limits above bound it at about 800 KiB anyway.
 */
enum http_head_rc http_head_feed(struct http_head *h, const uint8_t *data,
                                 size_t len);

#endif
