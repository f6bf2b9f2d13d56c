/* SPDX-License-Identifier: MIT */
/*
 * IP networks: parsing "addr/prefix" for allow and deny lists, matching a
 * socket address against one, and classifying a resolved address against
 * the special-purpose ranges a forwarding proxy must not connect to by
 * default (SSRF, ROBUSTNESS.md §3.2). Pure functions over caller storage.
 */
#ifndef SNIRELAY_CORE_CIDR_H
#define SNIRELAY_CORE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* One network. Plain value: the caller owns it, it holds no pointers. */
struct cidr {
    int family;       /* AF_INET or AF_INET6; AF_UNIX (set by the caller,
                         never by cidr_parse) stands for every unix-domain
                         peer, as nginx's "unix:" in allow/deny and
                         set_real_ip_from */
    uint8_t addr[16]; /* network address, network byte order, host bits
                         zero; 4 bytes used for AF_INET, the rest zero */
    unsigned prefix;  /* 0..32 for AF_INET, 0..128 for AF_INET6 */
};

/*
 * Parses the len bytes of text (not NUL-terminated) as "10.0.0.0/8",
 * "fc00::/7", "1.2.3.4" (a /32) or "::1" (a /128) into *out. IPv4 is
 * strict dotted decimal (inet_pton: no "127.1", no hex, no octal); IPv6 is
 * any inet_pton() form without a zone; the prefix is 1 to 3 decimal
 * digits, at most 32 or 128. Host bits set beyond the prefix are accepted
 * and cleared, as nginx's "allow 10.1.2.3/8" does (nginx warns; the caller
 * may compare with the text to do the same). Returns 0, or -1 if text is
 * not such a network (*out is then zeroed).
 */
int cidr_parse(const char *text, size_t len, struct cidr *out);

/*
 * Whether sa (an AF_INET sockaddr_in or AF_INET6 sockaddr_in6; any other
 * family never matches) lies in c. An AF_UNIX c matches every AF_UNIX sa
 * and nothing else. The families must agree, except that
 * an IPv4-mapped IPv6 address (::ffff:a.b.c.d) also matches an AF_INET c
 * through its a.b.c.d, as nginx's access module does. sa must not be NULL.
 */
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);

/* Why an address is refused by default; names from cidr_class_name(). */
enum cidr_class {
    CIDR_PUBLIC = 0,         /* none of the below: allowed */
    CIDR_LOOPBACK,           /* 127/8, ::1 */
    CIDR_UNSPECIFIED,        /* 0.0.0.0/8 ("this network"), :: */
    CIDR_LINK_LOCAL,         /* 169.254/16 (incl. 169.254.169.254 cloud
                                metadata), fe80::/10 */
    CIDR_PRIVATE,            /* 10/8, 172.16/12, 192.168/16, 100.64/10
                                (CGNAT), fc00::/7 (ULA, incl. fd00:ec2::254
                                metadata), fec0::/10 (deprecated
                                site-local) */
    CIDR_DOCUMENTATION,      /* 192.0.2/24, 198.51.100/24, 203.0.113/24,
                                2001:db8::/32, 3fff::/20; benchmarking
                                198.18/15, 2001:2::/48; IETF protocol
                                assignments 192.0.0/24 */
    CIDR_MULTICAST,          /* 224/4, ff00::/8 */
    CIDR_BROADCAST_RESERVED, /* 240/4 incl. 255.255.255.255; discard-only
                                100::/64; deprecated ORCHID 2001:10::/28;
                                SRv6 SIDs 5f00::/16; any non-IP family */
};

/*
 * Classifies sa (AF_INET or AF_INET6; must not be NULL) against the IANA
 * IPv4 and IPv6 special-purpose registries (RFC 6890 and successors). An
 * IPv6 address that embeds an IPv4 address is classified by the embedded
 * address when that is not CIDR_PUBLIC, by its own ranges otherwise:
 *   ::ffff:a.b.c.d          IPv4-mapped (RFC 4291 §2.5.5.2)
 *   ::a.b.c.d               IPv4-compatible, deprecated (RFC 4291
 *                           §2.5.5.1); "::" and "::1" stay IPv6
 *   ::ffff:0:a.b.c.d        IPv4-translated (RFC 2765 §2.1)
 *   64:ff9b::a.b.c.d        NAT64 well-known prefix (RFC 6052 §2.1)
 *   64:ff9b:1::/48          local-use NAT64 (RFC 8215); the operator's
 *                           prefix length is unknown, so every RFC 6052
 *                           §2.2 position that fits is tried (/48, /56,
 *                           /64 when the u octet and suffix are zero, then
 *                           /96) and the first refused class wins; so an
 *                           address in the /48 or /56 layout is always
 *                           refused (its /96 reading is 0.0.0.0)
 *   2002:AABB:CCDD::/48     6to4 (RFC 3056 §2), v4 in bits 16-47
 *   2001:0:S:S:F:P:C:C      Teredo (RFC 4380 §4): the client (last 32 bits
 *                           XOR 0xffffffff) and the server (bits 32-63)
 * Returns CIDR_PUBLIC when nothing refuses the address.
 */
enum cidr_class cidr_classify(const struct sockaddr *sa);

/* At most this many IPv4 readings of one IPv6 address (local NAT64). */
#define CIDR_EMBED_MAX 4

/*
 * The IPv4 addresses that the IPv6 sa carries in one of the forms listed
 * at cidr_classify() (mapped, compatible, translated, NAT64, 6to4, Teredo
 * client and server), written to out, the most likely first. Returns how
 * many: 0 when sa is not AF_INET6, is "::" or "::1", or embeds nothing;
 * up to CIDR_EMBED_MAX for a local-use NAT64 address whose prefix length
 * is unknown. For comparing addresses across families (the loop guard).
 */
size_t cidr_embedded_v4(const struct sockaddr *sa,
                        uint8_t out[CIDR_EMBED_MAX][4]);

/*
 * Static name of c for logs: "public", "loopback", "unspecified",
 * "link-local", "private", "documentation", "multicast", "reserved"; and
 * "unknown" for a value outside the enum.
 */
const char *cidr_class_name(enum cidr_class c);

#endif
