/* SPDX-License-Identifier: MIT */
/*
 * The name servers of a resolv.conf(5) file, read as glibc reads them, for
 * `resolver system[=FILE]`: a pure parser over the file's bytes (no I/O,
 * no allocation), so a hostile or broken file can only yield fewer servers.
 */
#ifndef SNIRELAY_DNS_RESOLV_CONF_H
#define SNIRELAY_DNS_RESOLV_CONF_H

#include <stddef.h>
#include <stdint.h>

#define RESOLV_CONF_MAX_SERVERS 3 /* glibc's MAXNS: later lines are ignored */
#define RESOLV_CONF_SCOPE_MAX 15  /* IF_NAMESIZE - 1: an interface or number */
#define RESOLV_CONF_VALUE_MAX 63  /* longest "ADDR%SCOPE" text accepted */

/* One `nameserver` line that named an address. */
struct resolv_conf_server {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network byte order; the first 4 for AF_INET */
    char scope[RESOLV_CONF_SCOPE_MAX + 1]; /* after '%' (IPv6), or "" */
    unsigned line;                         /* 1-based line in the file */
};

/* What a file names; filled by resolv_conf_parse(), owned by the caller. */
struct resolv_conf {
    size_t n; /* servers[0..n) are set */
    struct resolv_conf_server servers[RESOLV_CONF_MAX_SERVERS];
    size_t n_past_max;       /* `nameserver` lines after the third server */
    size_t n_bad;            /* `nameserver` lines naming no address */
    unsigned first_bad_line; /* line of the first of those, or 0 */
};

/*
 * Reads the `nameserver ADDR` lines of a resolv.conf text of len bytes
 * (any bytes; need not be NUL-terminated) into *out, as glibc's res_init
 * does: the keyword starts the line and is followed by a space or a tab;
 * ADDR is the next word (anything after it on the line is ignored): an
 * IPv4 address in inet_aton()'s forms or an IPv6 address with an optional
 * %SCOPE; a line starting with '#' or ';' is a comment; every other line
 * (search, options, domain, sortlist, unknown words) is skipped. The first
 * RESOLV_CONF_MAX_SERVERS addresses are kept; `nameserver` lines after
 * them are counted in n_past_max and lines whose value is not an address
 * in n_bad. Never fails: a file with no server leaves out->n at 0.
 */
void resolv_conf_parse(const char *buf, size_t len, struct resolv_conf *out);

#endif
