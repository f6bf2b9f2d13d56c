/* SPDX-License-Identifier: MIT */
/*
 * resolv.conf(5) name servers, as glibc 2.36's res_init reads them
 * (resolv/res_init.c): line by line, a `nameserver` keyword at the start
 * of a line, then blanks, then one word.
 *
 *     # comment                 ; comment
 *     nameserver 192.0.2.53     trailing words ignored
 *     nameserver 2001:db8::53
 *     nameserver fe80::1%eth0
 *     search example.org        (skipped, as every other keyword)
 *
 * No I/O, no allocation: the caller reads the file.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/resolv_conf.h"


#define RESOLV_CONF_KEYWORD "nameserver"
#define RESOLV_CONF_KEYWORD_LEN (sizeof(RESOLV_CONF_KEYWORD) - 1)


static void resolv_conf_line(const char *p, size_t len, unsigned line,
                             struct resolv_conf *out);
static bool resolv_conf_addr(const char *p, size_t len,
                             struct resolv_conf_server *srv);


void
resolv_conf_parse(const char *buf, size_t len, struct resolv_conf *out)
{
    size_t at = 0;
    unsigned line = 0;

    memset(out, 0, sizeof(*out));
    /* One line per round: the loop ends with the input. */
    while (at < len) {
        const char *const start = buf + at;
        const char *const nl = memchr(start, '\n', len - at);
        const size_t line_len = nl != NULL ? (size_t)(nl - start) : len - at;

        line++;
        resolv_conf_line(start, line_len, line, out);
        at += line_len + (nl != NULL ? 1 : 0);
    }
}


/* One line of len bytes, without its '\n'. */
static void
resolv_conf_line(const char *p, size_t len, unsigned line,
                 struct resolv_conf *out)
{
    size_t at = RESOLV_CONF_KEYWORD_LEN;
    size_t end;

    if (len <= RESOLV_CONF_KEYWORD_LEN ||
        memcmp(p, RESOLV_CONF_KEYWORD, RESOLV_CONF_KEYWORD_LEN) != 0 ||
        (p[at] != ' ' && p[at] != '\t')) {
        return; /* a comment, another keyword, or nothing */
    }
    if (out->n == RESOLV_CONF_MAX_SERVERS) {
        out->n_past_max++;
        return;
    }
    while (at < len && (p[at] == ' ' || p[at] == '\t')) {
        at++;
    }
    end = at;
    while (end < len && p[end] != ' ' && p[end] != '\t') {
        end++;
    }
    if (!resolv_conf_addr(p + at, end - at, &out->servers[out->n])) {
        if (out->n_bad++ == 0) {
            out->first_bad_line = line;
        }
        return;
    }
    out->servers[out->n++].line = line;
}


/*
 * Whether the word p (len bytes) is an IPv4 address in a form inet_aton()
 * takes (with nothing after it), or an IPv6 address with an optional %SCOPE;
 * fills *srv if so.
 */
static bool
resolv_conf_addr(const char *p, size_t len, struct resolv_conf_server *srv)
{
    char text[RESOLV_CONF_VALUE_MAX + 1];
    const char *pct;
    struct in_addr a4;

    if (len == 0 || len > RESOLV_CONF_VALUE_MAX) {
        return false;
    }
    /* Printable ASCII only: glibc's __inet_aton_exact() refuses the
     * trailing '\r' of a CRLF line that inet_aton() would take. */
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= ' ' || p[i] > '~') {
            return false;
        }
    }
    memcpy(text, p, len);
    text[len] = '\0';
    memset(srv, 0, sizeof(*srv));
    if (inet_aton(text, &a4) != 0) {
        srv->family = AF_INET;
        memcpy(srv->addr, &a4, 4);
        return true;
    }
    pct = strchr(text, '%');
    if (pct != NULL) {
        const size_t scope_len = len - (size_t)(pct - text) - 1;
        if (scope_len == 0 || scope_len > RESOLV_CONF_SCOPE_MAX ||
            strchr(pct + 1, '%') != NULL) {
            return false;
        }
        memcpy(srv->scope, pct + 1, scope_len + 1);
        text[pct - text] = '\0';
    }
    if (inet_pton(AF_INET6, text, srv->addr) != 1) {
        memset(srv, 0, sizeof(*srv));
        return false;
    }
    srv->family = AF_INET6;
    return true;
}
