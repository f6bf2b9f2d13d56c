/* SPDX-License-Identifier: MIT */
/*
 * Validation and normalisation of a host name that came from the network
 * (an SNI host_name or an HTTP Host header without its port) before it is
 * used as a DNS name or a routing key (STYLE rule 31). Pure: no
 * allocation, no I/O, no globals; the result is copied into caller storage.
 */
#ifndef SNIRELAY_PROTO_HOSTNAME_H
#define SNIRELAY_PROTO_HOSTNAME_H

#include <stddef.h>

/* Longest normalised name, in bytes, without the NUL (RFC 1035 §2.3.4). */
#define HOSTNAME_MAX 253

/* Longest label, in bytes (RFC 1035 §2.3.4). */
#define HOSTNAME_LABEL_MAX 63

enum hostname_rc {
    HOSTNAME_OK,         /* a DNS name, normalised into out */
    HOSTNAME_IP_LITERAL, /* an IP address in a form a resolver or
                            inet_aton() would accept ("127.0.0.1", "127.1",
                            "2130706433", "0x7f.1", "0177.0.0.1", "[::1]",
                            "::1", "::ffff:1.2.3.4", "fe80::1%eth0"); never
                            to be resolved or used as a destination */
    HOSTNAME_INVALID,    /* not a usable DNS name; reason says why */
};

/*
 * Validates the len bytes of name (raw network bytes, not NUL-terminated,
 * may contain any byte; name may be NULL when len is 0) and, on
 * HOSTNAME_OK, writes the normalised name into out: ASCII letters folded
 * to lowercase, one trailing dot removed, NUL-terminated. cap is the size
 * of out and must be at least HOSTNAME_MAX + 1 to hold every valid name
 * (a smaller cap makes a longer name INVALID, never truncated). On any
 * other outcome out holds "" (when cap > 0).
 *
 * Rules (RFC 1035 §2.3.1, RFC 1123 §2.1, RFC 5890 A-labels, nginx
 * ngx_stream_validate_host):
 *   - at most HOSTNAME_MAX bytes after normalising; labels 1..63 bytes, so
 *     no empty label ("a..b", ".a", "."), and at most one trailing dot;
 *   - only [A-Za-z0-9-_] in labels ('_' is not in RFC 1123 but is seen in
 *     the wild); a label neither starts nor ends with '-'; so no NUL, no
 *     control bytes, no space, no ':', '/', '%', '*', and no byte >= 0x80
 *     (IDNs must arrive as xn-- A-labels);
 *   - a name whose last label is numeric, that is all decimal digits or
 *     "0x" and hex digits, is HOSTNAME_IP_LITERAL: this covers every
 *     spelling inet_aton() accepts (1 to 4 parts, decimal, octal, hex) and
 *     WHATWG's "ends in a number" rule; an IPv6 address, bare or in
 *     brackets, with or without a %zone, is HOSTNAME_IP_LITERAL too;
 *   - a last label with no letter at all ("a.1-2", "x._") is INVALID: no
 *     top-level domain is like that (RFC 3696 §2);
 *   - "localhost" and any name under it ("a.localhost", RFC 6761 §6.3)
 *     are INVALID with reason "localhost".
 *
 * The caller removes a port (Host: name:port) first; here ':' outside an
 * IPv6 literal is INVALID.
 *
 * Returns the outcome. On HOSTNAME_OK sets *out_len (bytes in out, without
 * the NUL) and *reason to "ok"; otherwise sets *reason to a static string
 * for the debug log and leaves *out_len alone. out_len and reason may be
 * NULL.
 */
enum hostname_rc hostname_normalize(const char *name, size_t len, char *out,
                                    size_t cap, size_t *out_len,
                                    const char **reason);

#endif
