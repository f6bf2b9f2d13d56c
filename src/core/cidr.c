/* SPDX-License-Identifier: MIT */
/*
 * Networks and address classes. Addresses are handled as byte strings in
 * network order (4 or 16 bytes), so one prefix comparison serves both
 * families. Classification is two small tables from the IANA special-
 * purpose registries, walked in order, plus a decoder for each way IPv6
 * can carry an IPv4 address: an embedded address is pulled out and run
 * through the IPv4 table, because a v6 socket connects to it (mapped) or a
 * translator or tunnel delivers to it (NAT64, 6to4, Teredo). Known cost:
 * the tables are searched linearly, about 30 prefix comparisons at most.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/bug.h"
#include "core/cidr.h"


/* Longest address text before the '/': INET6_ADDRSTRLEN - 1. */
#define ADDR_TEXT_MAX 45
/* Digits allowed in the prefix length ("128"). */
#define PREFIX_DIGITS_MAX 3


/* One special-purpose range and the class it gives. */
struct range {
    uint8_t addr[16];      /* network address, network byte order */
    unsigned prefix;       /* bits of addr that count */
    enum cidr_class class; /* what an address inside is */
};

/* One RFC 6052 §2.2 position of an IPv4 address inside an IPv6 address. */
struct nat64_layout {
    uint8_t at[4];    /* byte offsets of the four IPv4 bytes */
    size_t zero_from; /* bytes zero_from..15 must be zero (suffix) */
    bool has_u_octet; /* byte 8 (bits 64-71) must be zero */
};


static bool sockaddr_bytes(const struct sockaddr *sa, int *family,
                           uint8_t bytes[16]);
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits);
static void mask_host_bits(uint8_t *addr, size_t addr_len, unsigned bits);
static enum cidr_class classify_table(const struct range *t, size_t n,
                                      const uint8_t *addr);
static enum cidr_class classify_v4(const uint8_t v4[4]);
static enum cidr_class classify_v6(const uint8_t a[16]);
static enum cidr_class classify_embedded(const uint8_t a[16]);
static size_t embedded_v4(const uint8_t a[16], uint8_t out[CIDR_EMBED_MAX][4]);
static bool all_zero(const uint8_t *p, size_t len);


/*
 * IANA IPv4 Special-Purpose Address Registry entries that are not
 * globally reachable, plus multicast and 240/4. 192.0.0.0/24 is refused
 * whole, although a few /32s in it are anycast (RFC 7723, RFC 8155).
 */
static const struct range v4_ranges[] = {
    {{0, 0, 0, 0}, 8, CIDR_UNSPECIFIED},          /* RFC 791 "this net" */
    {{10, 0, 0, 0}, 8, CIDR_PRIVATE},             /* RFC 1918 */
    {{100, 64, 0, 0}, 10, CIDR_PRIVATE},          /* RFC 6598 CGNAT */
    {{127, 0, 0, 0}, 8, CIDR_LOOPBACK},           /* RFC 1122 */
    {{169, 254, 0, 0}, 16, CIDR_LINK_LOCAL},      /* RFC 3927, IMDS */
    {{172, 16, 0, 0}, 12, CIDR_PRIVATE},          /* RFC 1918 */
    {{192, 0, 0, 0}, 24, CIDR_DOCUMENTATION},     /* RFC 6890 IETF */
    {{192, 0, 2, 0}, 24, CIDR_DOCUMENTATION},     /* RFC 5737 TEST-NET-1 */
    {{192, 168, 0, 0}, 16, CIDR_PRIVATE},         /* RFC 1918 */
    {{198, 18, 0, 0}, 15, CIDR_DOCUMENTATION},    /* RFC 2544 benchmark */
    {{198, 51, 100, 0}, 24, CIDR_DOCUMENTATION},  /* RFC 5737 TEST-NET-2 */
    {{203, 0, 113, 0}, 24, CIDR_DOCUMENTATION},   /* RFC 5737 TEST-NET-3 */
    {{224, 0, 0, 0}, 4, CIDR_MULTICAST},          /* RFC 5771 */
    {{240, 0, 0, 0}, 4, CIDR_BROADCAST_RESERVED}, /* RFC 1112, RFC 919 */
};

/*
 * IANA IPv6 Special-Purpose Address Registry entries that are not
 * globally reachable and carry no IPv4 address, plus multicast and the
 * deprecated site-local block. The IPv4-carrying blocks are decoded by
 * classify_embedded() instead.
 */
static const struct range v6_ranges[] = {
    {{0}, 128, CIDR_UNSPECIFIED},                            /* ::/128 */
    {{[15] = 1}, 128, CIDR_LOOPBACK},                        /* ::1/128 */
    {{0x01, 0x00}, 64, CIDR_BROADCAST_RESERVED},             /* RFC 6666 */
    {{0x20, 0x01, 0x00, 0x02}, 48, CIDR_DOCUMENTATION},      /* RFC 5180 */
    {{0x20, 0x01, 0x00, 0x10}, 28, CIDR_BROADCAST_RESERVED}, /* RFC 4843 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, CIDR_DOCUMENTATION},      /* RFC 3849 */
    {{0x3f, 0xff}, 20, CIDR_DOCUMENTATION},                  /* RFC 9637 */
    {{0x5f, 0x00}, 16, CIDR_BROADCAST_RESERVED},             /* RFC 9602 */
    {{0xfc}, 7, CIDR_PRIVATE},                               /* RFC 4193 */
    {{0xfe, 0x80}, 10, CIDR_LINK_LOCAL},                     /* RFC 4291 */
    {{0xfe, 0xc0}, 10, CIDR_PRIVATE},                        /* RFC 3879 */
    {{0xff}, 8, CIDR_MULTICAST},                             /* RFC 4291 */
};

/* The first 12 bytes of an IPv4-mapped address, ::ffff:0:0/96. */
static const uint8_t v4_mapped_prefix[12] = {[10] = 0xff, [11] = 0xff};

/*
 * Where a local-use NAT64 prefix (64:ff9b:1::/48 or longer, RFC 8215) puts
 * the IPv4 address, RFC 6052 §2.2 (PL = prefix length, u = bits 64-71):
 *
 *   PL |0-------32--40--48--56--64--72--80--88--96--104---------|
 *   48 |prefix         |v4(16) | u | (16)  | suffix             |
 *   56 |prefix             |(8)| u | v4(24)    | suffix         |
 *   64 |prefix                 | u |   v4(32)      | suffix     |
 *   96 |prefix                                    |    v4(32)   |
 */
static const struct nat64_layout local_nat64_layouts[] = {
    {{6, 7, 9, 10}, 11, true},     /* /48 */
    {{7, 9, 10, 11}, 12, true},    /* /56 */
    {{9, 10, 11, 12}, 13, true},   /* /64 */
    {{12, 13, 14, 15}, 16, false}, /* /96: fits every address */
};


int
cidr_parse(const char *text, size_t len, struct cidr *out)
{
    BUG_ON(out == NULL);
    memset(out, 0, sizeof(*out));

    if (text == NULL || len == 0 || memchr(text, '\0', len) != NULL) {
        return -1;
    }
    const char *const slash = memchr(text, '/', len);
    const size_t addr_len = slash != NULL ? (size_t)(slash - text) : len;
    if (addr_len == 0 || addr_len > ADDR_TEXT_MAX) {
        return -1;
    }

    char addr_text[ADDR_TEXT_MAX + 1];
    memcpy(addr_text, text, addr_len);
    addr_text[addr_len] = '\0';

    unsigned max_prefix;
    size_t addr_bytes;
    if (inet_pton(AF_INET, addr_text, out->addr) == 1) {
        out->family = AF_INET;
        max_prefix = 32;
        addr_bytes = 4;
    } else if (inet_pton(AF_INET6, addr_text, out->addr) == 1) {
        out->family = AF_INET6;
        max_prefix = 128;
        addr_bytes = 16;
    } else {
        memset(out, 0, sizeof(*out));
        return -1;
    }

    unsigned prefix = max_prefix;
    if (slash != NULL) {
        const char *const digits = slash + 1;
        const size_t n_digits = len - addr_len - 1;
        if (n_digits == 0 || n_digits > PREFIX_DIGITS_MAX) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
        prefix = 0;
        for (size_t i = 0; i < n_digits; i++) {
            if (digits[i] < '0' || digits[i] > '9') {
                memset(out, 0, sizeof(*out));
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(digits[i] - '0');
        }
        if (prefix > max_prefix) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
    }

    out->prefix = prefix;
    mask_host_bits(out->addr, addr_bytes, prefix);
    return 0;
}


bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
    BUG_ON(c == NULL || sa == NULL);

    int family;
    uint8_t bytes[16];
    if (c->family == AF_UNIX || sa->sa_family == AF_UNIX) {
        return c->family == sa->sa_family;
    }
    if (!sockaddr_bytes(sa, &family, bytes)) {
        return false;
    }
    if (family == c->family) {
        return prefix_equal(bytes, c->addr, c->prefix);
    }
    if (family == AF_INET6 && c->family == AF_INET &&
        memcmp(bytes, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0) {
        return prefix_equal(bytes + 12, c->addr, c->prefix);
    }
    return false;
}


enum cidr_class
cidr_classify(const struct sockaddr *sa)
{
    BUG_ON(sa == NULL);

    int family;
    uint8_t bytes[16];
    if (!sockaddr_bytes(sa, &family, bytes)) {
        /* Not an IP address: nothing to connect to, so refuse. */
        return CIDR_BROADCAST_RESERVED;
    }
    return family == AF_INET ? classify_v4(bytes) : classify_v6(bytes);
}


const char *
cidr_class_name(enum cidr_class c)
{
    switch (c) {
    case CIDR_PUBLIC:
        return "public";
    case CIDR_LOOPBACK:
        return "loopback";
    case CIDR_UNSPECIFIED:
        return "unspecified";
    case CIDR_LINK_LOCAL:
        return "link-local";
    case CIDR_PRIVATE:
        return "private";
    case CIDR_DOCUMENTATION:
        return "documentation";
    case CIDR_MULTICAST:
        return "multicast";
    case CIDR_BROADCAST_RESERVED:
        return "reserved";
    }
    return "unknown";
}


/*
 * Copies sa's address into bytes (4 or 16 of them, network order) and its
 * family into *family. Returns false for a family other than AF_INET and
 * AF_INET6. memcpy() keeps this free of alignment assumptions about sa.
 */
static bool
sockaddr_bytes(const struct sockaddr *sa, int *family, uint8_t bytes[16])
{
    memset(bytes, 0, 16);
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        memcpy(bytes, &sin.sin_addr, 4);
        *family = AF_INET;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        memcpy(bytes, &sin6.sin6_addr, 16);
        *family = AF_INET6;
        return true;
    }
    return false;
}


/* Whether the first bits bits of a and b are equal. */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    const size_t whole = bits / 8;
    const unsigned rest = bits % 8;

    if (memcmp(a, b, whole) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    const uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}


/* Clears every bit of addr (addr_len bytes) after the first bits bits. */
static void
mask_host_bits(uint8_t *addr, size_t addr_len, unsigned bits)
{
    for (size_t i = 0; i < addr_len; i++) {
        const size_t first_bit = i * 8;
        if (first_bit >= bits) {
            addr[i] = 0;
        } else if (bits - first_bit < 8) {
            addr[i] &= (uint8_t)(0xff << (8 - (bits - first_bit)));
        }
    }
}


/* The class of the first range in t[0..n) holding addr, else PUBLIC. */
static enum cidr_class
classify_table(const struct range *t, size_t n, const uint8_t *addr)
{
    for (size_t i = 0; i < n; i++) {
        if (prefix_equal(addr, t[i].addr, t[i].prefix)) {
            return t[i].class;
        }
    }
    return CIDR_PUBLIC;
}


static enum cidr_class
classify_v4(const uint8_t v4[4])
{
    return classify_table(v4_ranges, sizeof(v4_ranges) / sizeof(v4_ranges[0]),
                          v4);
}


/*
 * The IPv6 table decides first, so "::" and "::1" are IPv6's unspecified
 * and loopback rather than the IPv4-compatible 0.0.0.0 and 0.0.0.1; no
 * other table entry overlaps an IPv4-carrying block.
 */
static enum cidr_class
classify_v6(const uint8_t a[16])
{
    const enum cidr_class own =
        classify_table(v6_ranges, sizeof(v6_ranges) / sizeof(v6_ranges[0]), a);
    if (own != CIDR_PUBLIC) {
        return own;
    }
    return classify_embedded(a);
}


/*
 * The class of the IPv4 address a carries, if it is in one of the blocks
 * listed at cidr_classify() and that address is refused; else PUBLIC.
 * Every reading of an ambiguous block is tried, in embedded_v4()'s order,
 * and the first refused class wins.
 */
static enum cidr_class
classify_embedded(const uint8_t a[16])
{
    uint8_t v4[CIDR_EMBED_MAX][4];
    const size_t n = embedded_v4(a, v4);

    for (size_t i = 0; i < n; i++) {
        const enum cidr_class c = classify_v4(v4[i]);
        if (c != CIDR_PUBLIC) {
            return c;
        }
    }
    return CIDR_PUBLIC;
}


/*
 * The IPv4 addresses a may carry (see cidr_classify()) into out, the most
 * likely first; returns how many (0: a embeds none). 64:ff9b:1::/48 is
 * for NAT64 prefixes of the operator's choosing, of length 48 to 96, and
 * the address does not say which: each layout the address is consistent
 * with (zero u octet and suffix) is decoded, the most constrained first.
 * Erring on the safe side has a cost: an address in the /48 or /56 layout
 * always reads as 0.0.0.0 in the /96 layout and is refused, and so is a
 * /96 address of an x.0.0.0 network (it reads as 0.0.0.x in the /64
 * layout). An operator with such a prefix must allow it explicitly.
 * Teredo gives the client (obfuscated) first, then the server.
 */
static size_t
embedded_v4(const uint8_t a[16], uint8_t out[CIDR_EMBED_MAX][4])
{
    static const uint8_t translated[12] = {[8] = 0xff, [9] = 0xff};
    static const uint8_t compatible[12] = {0};
    static const uint8_t nat64_wkp[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
    static const uint8_t six_to_four[2] = {0x20, 0x02};
    static const uint8_t teredo[4] = {0x20, 0x01, 0x00, 0x00};
    size_t n = 0;

    if (memcmp(a, v4_mapped_prefix, 12) == 0 ||
        memcmp(a, translated, 12) == 0 || memcmp(a, compatible, 12) == 0 ||
        memcmp(a, nat64_wkp, 12) == 0) {
        memcpy(out[0], a + 12, 4);
        return 1;
    }
    if (memcmp(a, nat64_local, 6) == 0) {
        const size_t nl =
            sizeof(local_nat64_layouts) / sizeof(local_nat64_layouts[0]);
        for (size_t i = 0; i < nl && n < CIDR_EMBED_MAX; i++) {
            const struct nat64_layout *const l = &local_nat64_layouts[i];
            if (l->has_u_octet && a[8] != 0) {
                continue;
            }
            if (!all_zero(a + l->zero_from, 16 - l->zero_from)) {
                continue;
            }
            for (size_t k = 0; k < 4; k++) {
                out[n][k] = a[l->at[k]];
            }
            n++;
        }
        return n;
    }
    if (memcmp(a, six_to_four, 2) == 0) {
        memcpy(out[0], a + 2, 4);
        return 1;
    }
    if (memcmp(a, teredo, 4) == 0) {
        for (size_t k = 0; k < 4; k++) {
            out[0][k] = (uint8_t)~a[12 + k];
        }
        memcpy(out[1], a + 4, 4);
        return 2;
    }
    return 0;
}


size_t
cidr_embedded_v4(const struct sockaddr *sa, uint8_t out[CIDR_EMBED_MAX][4])
{
    uint8_t bytes[16];
    int family;

    if (!sockaddr_bytes(sa, &family, bytes) || family != AF_INET6) {
        return 0;
    }
    /* "::" and "::1" are IPv6's own, not IPv4-compatible addresses. */
    if (all_zero(bytes, 15) && bytes[15] <= 1) {
        return 0;
    }
    return embedded_v4(bytes, out);
}


/* Whether the len bytes at p are all zero. */
static bool
all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}
