/* SPDX-License-Identifier: MIT */
/*
 * Incremental HTTP/1.x request-head parser for the status listener: it
 * keeps the method and the request-target, checks the header lines'
 * shape, and says where the head ends. Pure: no allocation, no I/O, no
 * globals; all state lives in struct http_req, owned by the caller, which
 * holds no pointer into the caller's buffers (any split of the input
 * works, down to one byte).
 *
 * RFC 9112 §3 and §5:
 *
 *   request-line = method SP request-target SP HTTP-version CRLF
 *   field-line   = field-name ":" OWS field-value OWS CRLF
 *   head         = request-line *( field-line ) CRLF
 *
 * A bare LF ends a line too (§2.2). Leading whitespace on a field line
 * (obs-fold), whitespace before the colon, control bytes in a value, an
 * unknown version and anything over the bounds below are MALFORMED.
 */
#ifndef SNIRELAY_PROTO_HTTP_REQ_H
#define SNIRELAY_PROTO_HTTP_REQ_H

#include <stddef.h>

/* Longest method kept; a longer one is MALFORMED. */
#define HTTP_REQ_METHOD_MAX 16

/* Longest request-target kept; a longer one is MALFORMED. */
#define HTTP_REQ_TARGET_MAX 256

/* Longest head, request line to the empty line; a longer one is MALFORMED. */
#define HTTP_REQ_HEAD_MAX 8192

/* Most field lines; one more is MALFORMED. */
#define HTTP_REQ_FIELDS_MAX 64

enum http_req_rc {
    HTTP_REQ_NEED_MORE, /* all input consumed, the head has not ended */
    HTTP_REQ_DONE,      /* the head ended; the results are valid */
    HTTP_REQ_MALFORMED, /* not a request head we take (reason says why) */
};

struct http_req {
    /* results */
    char method[HTTP_REQ_METHOD_MAX + 1]; /* NUL-terminated, as sent */
    size_t method_len;
    char target[HTTP_REQ_TARGET_MAX + 1]; /* NUL-terminated, as sent */
    size_t target_len;
    unsigned version; /* 10 or 11, once the request line is read */
    size_t head_len;  /* bytes consumed so far (the whole head at DONE;
                         the deciding byte included at MALFORMED) */
    enum http_req_rc rc;
    const char *reason; /* static: "ok", or why MALFORMED */

    /* scanner state */
    unsigned state; /* private */
    char vers[9];   /* the HTTP-version being read */
    size_t vers_len;
    size_t fields; /* field lines seen */
};

/* Readies r for a new request head. */
void http_req_init(struct http_req *r);

/*
 * Feeds len more bytes (data may be NULL when len is 0). Returns r->rc:
 * NEED_MORE, or a final outcome, which stays (later calls return it and
 * consume nothing). Bytes after the head are not consumed (head_len).
 */
enum http_req_rc http_req_feed(struct http_req *r, const unsigned char *data,
                               size_t len);

#endif
