/* SPDX-License-Identifier: MIT */
/*
 * Host-name validation for names from the network. The name is checked in
 * one pass over its bytes that folds case into the output as it goes and
 * tracks the current label; what the last label looks like then decides
 * between a DNS name, an IPv4 literal in any of inet_aton()'s spellings,
 * and a name no resolver should see. IPv6 literals are recognised up front,
 * because ':' and '[' never appear in a DNS name. Nothing is allocated;
 * the output is written into the caller's buffer, bounded by its cap, and
 * every loop is bounded by the input length.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "proto/hostname.h"


/*
 * Textual IPv6 address, RFC 4291 §2.2, optionally followed by a zone,
 * RFC 4007 §11.2, and optionally in brackets, RFC 3986 §3.2.2:
 *
 *   [ x:x:x:x:x:x:x:x | x:x::x | x:x:x:x:x:x:d.d.d.d ] [ "%" zone ]
 *
 * The longest address text is 45 bytes (INET6_ADDRSTRLEN - 1); anything
 * longer before the '%' is not an address.
 */
#define V6_TEXT_MAX 45
/* Longest zone (an interface name or index) looked at after the '%'. */
#define V6_ZONE_MAX 64


static bool is_ipv6_literal(const char *s, size_t len);
static bool is_ipv6_bracketed(const char *s, size_t len);
static const char *bad_byte_reason(unsigned char c);
static bool is_numeric_label(const char *s, size_t len);
static bool has_letter(const char *s, size_t len);
static enum hostname_rc finish(enum hostname_rc rc, const char *why, char *out,
                               size_t cap, const char **reason);


enum hostname_rc
hostname_normalize(const char *name, size_t len, char *out, size_t cap,
                   size_t *out_len, const char **reason)
{
    if (len == 0) {
        return finish(HOSTNAME_INVALID, "empty name", out, cap, reason);
    }
    if (name[0] == '[') {
        if (is_ipv6_bracketed(name, len)) {
            return finish(HOSTNAME_IP_LITERAL, "IPv6 literal", out, cap,
                          reason);
        }
        return finish(HOSTNAME_INVALID, "bracket", out, cap, reason);
    }
    if (memchr(name, ':', len) != NULL) {
        if (is_ipv6_literal(name, len)) {
            return finish(HOSTNAME_IP_LITERAL, "IPv6 literal", out, cap,
                          reason);
        }
        return finish(HOSTNAME_INVALID, "colon", out, cap, reason);
    }

    /* One trailing dot marks a fully qualified name; it is not a label. */
    const size_t n = name[len - 1] == '.' ? len - 1 : len;

    if (n == 0) {
        return finish(HOSTNAME_INVALID, "empty label", out, cap, reason);
    }
    if (n > HOSTNAME_MAX) {
        return finish(HOSTNAME_INVALID, "name too long", out, cap, reason);
    }
    if (cap < n + 1) {
        return finish(HOSTNAME_INVALID, "output buffer too small", out, cap,
                      reason);
    }

    size_t label = 0; /* offset of the current label in out */
    for (size_t i = 0; i <= n; i++) {
        if (i == n || name[i] == '.') {
            const size_t label_len = i - label;
            if (label_len == 0) {
                return finish(HOSTNAME_INVALID, "empty label", out, cap,
                              reason);
            }
            if (label_len > HOSTNAME_LABEL_MAX) {
                return finish(HOSTNAME_INVALID, "label too long", out, cap,
                              reason);
            }
            if (out[label] == '-' || out[i - 1] == '-') {
                return finish(HOSTNAME_INVALID, "hyphen at label edge", out,
                              cap, reason);
            }
            if (i < n) {
                out[i] = '.';
                label = i + 1;
            }
            continue;
        }
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_')) {
            return finish(HOSTNAME_INVALID, bad_byte_reason(c), out, cap,
                          reason);
        }
        out[i] = (char)c;
    }

    /* label is now the offset of the last label, which is not empty. */
    const char *const last = out + label;
    const size_t last_len = n - label;

    if (is_numeric_label(last, last_len)) {
        return finish(HOSTNAME_IP_LITERAL, "IPv4 literal", out, cap, reason);
    }
    if (!has_letter(last, last_len)) {
        return finish(HOSTNAME_INVALID, "no letter in last label", out, cap,
                      reason);
    }
    if (last_len == sizeof("localhost") - 1 &&
        memcmp(last, "localhost", last_len) == 0) {
        return finish(HOSTNAME_INVALID, "localhost", out, cap, reason);
    }

    out[n] = '\0';
    if (out_len != NULL) {
        *out_len = n;
    }
    if (reason != NULL) {
        *reason = "ok";
    }
    return HOSTNAME_OK;
}


/*
 * Whether the len bytes of s are an IPv6 address that inet_pton() accepts,
 * optionally followed by "%zone" with a zone of 1..V6_ZONE_MAX bytes from
 * [A-Za-z0-9._-] (an interface name or index, as getaddrinfo() takes).
 */
static bool
is_ipv6_literal(const char *s, size_t len)
{
    const char *const pct = memchr(s, '%', len);
    const size_t addr_len = pct != NULL ? (size_t)(pct - s) : len;

    if (addr_len == 0 || addr_len > V6_TEXT_MAX) {
        return false;
    }
    if (pct != NULL) {
        const size_t zone_len = len - addr_len - 1;
        if (zone_len == 0 || zone_len > V6_ZONE_MAX) {
            return false;
        }
        for (size_t i = 0; i < zone_len; i++) {
            const unsigned char c = (unsigned char)pct[1 + i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_')) {
                return false;
            }
        }
    }

    /* inet_pton() wants a C string; an inner NUL must not end it early. */
    char text[V6_TEXT_MAX + 1];
    if (memchr(s, '\0', addr_len) != NULL) {
        return false;
    }
    memcpy(text, s, addr_len);
    text[addr_len] = '\0';

    struct in6_addr addr;
    return inet_pton(AF_INET6, text, &addr) == 1;
}


/* Whether s is "[" IPv6-literal "]" with nothing after the ']'. */
static bool
is_ipv6_bracketed(const char *s, size_t len)
{
    if (len < 2 || s[0] != '[' || s[len - 1] != ']') {
        return false;
    }
    return is_ipv6_literal(s + 1, len - 2);
}


/* The log reason for a byte that may not appear in a label. */
static const char *
bad_byte_reason(unsigned char c)
{
    if (c == '\0') {
        return "NUL byte";
    }
    if (c < 0x20 || c == 0x7f) {
        return "control byte";
    }
    if (c >= 0x80) {
        return "non-ASCII byte";
    }
    if (c == ' ') {
        return "space";
    }
    return "invalid character";
}


/*
 * Whether a lowercase label is a number in one of inet_aton()'s bases:
 * decimal or octal (all digits; "09" is not valid octal, but is refused
 * all the same) or hex ("0x" and zero or more hex digits; WHATWG reads a
 * bare "0x" as 0).
 */
static bool
is_numeric_label(const char *s, size_t len)
{
    size_t i = 0;
    bool is_hex = false;

    if (len >= 2 && s[0] == '0' && s[1] == 'x') {
        is_hex = true;
        i = 2;
    }
    for (; i < len; i++) {
        const char c = s[i];
        if (c >= '0' && c <= '9') {
            continue;
        }
        if (is_hex && c >= 'a' && c <= 'f') {
            continue;
        }
        return false;
    }
    return true;
}


/* Whether a lowercase label holds at least one letter. */
static bool
has_letter(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] >= 'a' && s[i] <= 'z') {
            return true;
        }
    }
    return false;
}


/* Ends a call that did not produce a name: empties out, sets *reason. */
static enum hostname_rc
finish(enum hostname_rc rc, const char *why, char *out, size_t cap,
       const char **reason)
{
    if (cap > 0) {
        out[0] = '\0';
    }
    if (reason != NULL) {
        *reason = why;
    }
    return rc;
}
