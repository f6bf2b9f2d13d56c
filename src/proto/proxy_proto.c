/* SPDX-License-Identifier: MIT */
/*
 * Incremental PROXY protocol parser and builder. The first byte decides
 * the version ('P' for v1, CR for v2, anything else is MALFORMED). A v1
 * line is collected in p->buf while every byte is judged as it arrives
 * (the "PROXY " prefix, the protocol token, the characters the protocol
 * allows, CR only before LF), and the fields are decoded once the CRLF is
 * in, as the spec requires. A v2 header is a byte-driven state machine:
 * the 16 fixed bytes and the address block are collected in p->buf, and
 * the TLVs after them are read as they stream by, each checked to fit in
 * what the length field left, so nothing past 16 + len is ever read and
 * the state stays small. Addresses are decoded with inet_pton(), which
 * does not depend on the locale.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/proxy_proto.h"


/*
 * Version 1, spec §2.1: one line of US-ASCII.
 *
 *   "PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF
 *   "PROXY" SP "UNKNOWN" [ SP <anything but CRLF> ] CRLF
 *
 * At most 107 bytes with the CRLF. Addresses in canonical form for the
 * family, ports 0..65535 in decimal, no heading zeroes.
 */
#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6
#define V1_TCP_TOKEN_LEN 4     /* "TCP4" or "TCP6" */
#define V1_UNKNOWN_TOKEN_LEN 7 /* "UNKNOWN" */
#define V1_ADDR_MAX 45         /* longest IPv6 text, with a dotted quad */
#define V1_PORT_MAX 65535

/*
 * Version 2, spec §2.2:
 *
 *   +-----------+---------+-----+-----+------------------+-------------+
 *   | signature | ver_cmd | fam | len | addresses        | TLVs        |
 *   |    12     |    1    |  1  |  2  | 12 (TCP4), 36    | up to the   |
 *   |           |         |     |     | (TCP6), or none  | end of len  |
 *   +-----------+---------+-----+-----+------------------+-------------+
 *     signature: 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
 *     ver_cmd:   version (high nibble) = 2; command (low) 0 LOCAL, 1 PROXY
 *     fam:       family (high) 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX;
 *                transport (low) 0 UNSPEC, 1 STREAM, 2 DGRAM
 *     len:       bytes after these 16, big-endian
 *
 *   TCP4 addresses: src_addr(4) dst_addr(4) src_port(2) dst_port(2)
 *   TCP6 addresses: src_addr(16) dst_addr(16) src_port(2) dst_port(2)
 *   (all in network byte order)
 *
 *   TLV (§2.2): type(1) | length(2, big-endian) | value(length)
 *     PP2_TYPE_AUTHORITY (0x02, §2.2.2) is the client's host name.
 */
#define V2_SIG_LEN 12
#define V2_VERSION 2
#define V2_CMD_LOCAL 0
#define V2_CMD_PROXY 1
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21
#define V2_ADDR_LEN_TCP4 12
#define V2_ADDR_LEN_TCP6 36
#define V2_TLV_HDR_LEN 3
#define PP2_TYPE_AUTHORITY 0x02
#define PP2_TYPE_SSL 0x20
#define PP2_SSL_FIXED_LEN 5 /* client(1) verify(4), then sub-TLVs */


/* Parser states. */
enum pp_state {
    ST_START = 0,  /* nothing read: the first byte picks the version */
    ST_V1_LINE,    /* collecting the v1 line up to CRLF */
    ST_V2_HDR,     /* collecting the 16 fixed v2 bytes */
    ST_V2_ADDR,    /* collecting the v2 address block */
    ST_V2_SKIP,    /* skipping a LOCAL/UNSPEC block unparsed */
    ST_V2_TLV_HDR, /* collecting a TLV's type and length */
    ST_V2_TLV_VAL, /* reading (or skipping) a TLV's value */
};

/* The v1 protocol token, once recognised. */
enum v1_proto {
    V1_UNDECIDED = 0, /* the token is not complete yet */
    V1_TCP4,
    V1_TCP6,
    V1_UNKNOWN,
};


static enum proxy_proto_rc pp_fail(struct proxy_proto *p, const char *reason);
static void pp_done(struct proxy_proto *p);
static size_t pp_start(struct proxy_proto *p, uint8_t b);
static void v1_byte(struct proxy_proto *p, uint8_t b);
static void v1_token_byte(struct proxy_proto *p, size_t pos);
static bool v1_char_ok(enum v1_proto proto, uint8_t b);
static void v1_line_done(struct proxy_proto *p);
static bool v1_parse_addr(int family, const uint8_t *s, size_t len,
                          struct sockaddr_storage *ss);
static bool v1_parse_port(const uint8_t *s, size_t len, uint16_t *port);
static void v2_hdr_byte(struct proxy_proto *p, uint8_t b);
static void v2_len_done(struct proxy_proto *p);
static size_t v2_addr_len(uint8_t fam);
static void v2_addr_done(struct proxy_proto *p);
static void v2_next_tlv(struct proxy_proto *p);
static void v2_tlv_hdr_done(struct proxy_proto *p);
static size_t v2_tlv_value(struct proxy_proto *p, const uint8_t *data,
                           size_t n);
static size_t build_v1(const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *out);
static size_t build_v2(const struct sockaddr *src, const struct sockaddr *dst,
                       const char *authority, size_t authority_len,
                       uint8_t *out);
static size_t put_str(uint8_t *out, size_t pos, const char *s);
static size_t put_uint(uint8_t *out, size_t pos, unsigned v);
static bool addr_pair_ok(const struct sockaddr *src,
                         const struct sockaddr *dst);


static const uint8_t v2_sig[V2_SIG_LEN] = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
};


void
proxy_proto_init(struct proxy_proto *p)
{
    memset(p, 0, sizeof(*p));
    p->reason = "ok";
    p->rc = PROXY_PROTO_NEED_MORE;
    p->state = ST_START;
    p->v1_proto = V1_UNDECIDED;
}


/*
 * Each pass of the loop consumes at least one byte and counts it in
 * p->consumed, so the loop is bounded by len, and it stops at the first
 * final outcome: bytes after the header are never looked at.
 */
enum proxy_proto_rc
proxy_proto_feed(struct proxy_proto *p, const uint8_t *data, size_t len)
{
    size_t pos = 0;

    while (pos < len && p->rc == PROXY_PROTO_NEED_MORE) {
        size_t n = 1;

        switch (p->state) {
        case ST_START:
            n = pp_start(p, data[pos]);
            break;
        case ST_V1_LINE:
            v1_byte(p, data[pos]);
            break;
        case ST_V2_HDR:
            v2_hdr_byte(p, data[pos]);
            break;
        case ST_V2_ADDR:
            p->buf[p->buf_len++] = data[pos];
            p->left--;
            if (p->buf_len ==
                PROXY_PROTO_V2_HDR_LEN + v2_addr_len(p->buf[13])) {
                v2_addr_done(p);
            }
            break;
        case ST_V2_SKIP:
            n = len - pos < p->left ? len - pos : p->left;
            p->left -= n;
            if (p->left == 0) {
                pp_done(p);
            }
            break;
        case ST_V2_TLV_HDR:
            p->tlv_hdr[p->tlv_hdr_len++] = data[pos];
            p->left--;
            if (p->tlv_hdr_len == V2_TLV_HDR_LEN) {
                v2_tlv_hdr_done(p);
            }
            break;
        case ST_V2_TLV_VAL:
            n = v2_tlv_value(p, data + pos, len - pos);
            break;
        default:
            return pp_fail(p, "internal: bad parser state");
        }
        pos += n;
        p->consumed += n;
    }
    return p->rc;
}


size_t
proxy_proto_build(unsigned version, const struct sockaddr *src,
                  const struct sockaddr *dst, const char *authority,
                  size_t authority_len, uint8_t *buf, size_t cap)
{
    uint8_t out[PROXY_PROTO_BUILD_MAX];
    const bool has_authority = authority != NULL && authority_len > 0;
    size_t n;

    if (buf == NULL || authority_len > PROXY_PROTO_AUTHORITY_MAX) {
        return 0;
    }
    if (src != NULL && !addr_pair_ok(src, dst)) {
        return 0;
    }
    if (src == NULL && has_authority) {
        return 0;
    }
    if (version == 1) {
        if (has_authority) {
            return 0;
        }
        n = build_v1(src, dst, out);
    } else if (version == 2) {
        n = build_v2(src, dst, has_authority ? authority : NULL,
                     has_authority ? authority_len : 0, out);
    } else {
        return 0;
    }
    if (n == 0 || n > cap) {
        return 0;
    }
    memcpy(buf, out, n);
    return n;
}


/* Records MALFORMED; it is sticky, later feeds return it. */
static enum proxy_proto_rc
pp_fail(struct proxy_proto *p, const char *reason)
{
    p->rc = PROXY_PROTO_MALFORMED;
    p->reason = reason;
    return p->rc;
}


/* Records DONE; the byte being processed is counted by the caller. */
static void
pp_done(struct proxy_proto *p)
{
    p->rc = PROXY_PROTO_DONE;
}


/*
 * The first byte decides, as the spec's §2.2 detection does: "P" starts
 * "PROXY" (v1), CR starts the v2 signature. It is then handed to that
 * version's byte handler. Returns the bytes consumed (1).
 */
static size_t
pp_start(struct proxy_proto *p, uint8_t b)
{
    if (b == (uint8_t)V1_PREFIX[0]) {
        p->version = 1;
        p->state = ST_V1_LINE;
        v1_byte(p, b);
    } else if (b == v2_sig[0]) {
        p->version = 2;
        p->state = ST_V2_HDR;
        v2_hdr_byte(p, b);
    } else {
        pp_fail(p, "not a PROXY protocol header");
    }
    return 1;
}


/*
 * Appends one byte to the v1 line and judges it at once, so garbage is
 * refused at the first byte that shows it, not at the 107-byte limit.
 */
static void
v1_byte(struct proxy_proto *p, uint8_t b)
{
    const size_t pos = p->buf_len;

    /* The 107-byte check below keeps pos inside buf. */
    p->buf[p->buf_len++] = b;
    if (pos < V1_PREFIX_LEN) {
        if (b != (uint8_t)V1_PREFIX[pos]) {
            pp_fail(p, "not a PROXY protocol header");
        }
        return;
    }
    if (p->buf[pos - 1] == '\r') {
        if (b != '\n') {
            pp_fail(p, "v1: CR not followed by LF");
            return;
        }
        v1_line_done(p);
        return;
    }
    if (b == '\n') {
        pp_fail(p, "v1: LF without CR");
        return;
    }
    if (p->v1_proto == V1_UNDECIDED) {
        v1_token_byte(p, pos);
    } else if (!v1_char_ok(p->v1_proto, b)) {
        pp_fail(p, "v1: bad character");
    } else if (p->v1_proto != V1_UNKNOWN && b == ' ' &&
               p->buf[pos - 1] == ' ') {
        pp_fail(p, "v1: two spaces in a row");
    }
    if (p->rc == PROXY_PROTO_NEED_MORE && p->buf_len == sizeof(p->buf)) {
        pp_fail(p, "v1: no CRLF within 107 bytes");
    }
}


/*
 * Judges byte pos of the protocol token (it starts at V1_PREFIX_LEN) and
 * the separator after it: a space for TCP4/TCP6, a space or the CR of
 * CRLF for UNKNOWN.
 */
static void
v1_token_byte(struct proxy_proto *p, size_t pos)
{
    const uint8_t *tok = p->buf + V1_PREFIX_LEN;
    const size_t n = pos - V1_PREFIX_LEN + 1; /* token bytes so far */
    const uint8_t b = p->buf[pos];

    if (n == V1_TCP_TOKEN_LEN + 1 && b == ' ') {
        if (memcmp(tok, "TCP4", V1_TCP_TOKEN_LEN) == 0) {
            p->v1_proto = V1_TCP4;
            return;
        }
        if (memcmp(tok, "TCP6", V1_TCP_TOKEN_LEN) == 0) {
            p->v1_proto = V1_TCP6;
            return;
        }
    }
    if (n == V1_UNKNOWN_TOKEN_LEN + 1 &&
        memcmp(tok, "UNKNOWN", V1_UNKNOWN_TOKEN_LEN) == 0 &&
        (b == ' ' || b == '\r')) {
        p->v1_proto = V1_UNKNOWN;
        return;
    }
    if ((n <= V1_TCP_TOKEN_LEN &&
         (memcmp(tok, "TCP4", n) == 0 || memcmp(tok, "TCP6", n) == 0)) ||
        (n <= V1_UNKNOWN_TOKEN_LEN && memcmp(tok, "UNKNOWN", n) == 0)) {
        return; /* still a prefix of a valid token */
    }
    pp_fail(p, "v1: unknown protocol");
}


/* Whether b may appear in the rest of a line for proto (CR and LF aside). */
static bool
v1_char_ok(enum v1_proto proto, uint8_t b)
{
    const bool digit = b >= '0' && b <= '9';
    const bool hex = digit || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');

    switch (proto) {
    case V1_TCP4:
        return digit || b == '.' || b == ' ' || b == '\r';
    case V1_TCP6:
        return hex || b == ':' || b == '.' || b == ' ' || b == '\r';
    case V1_UNKNOWN:
        return true; /* the receiver must ignore it (spec §2.1) */
    default:
        return false;
    }
}


/*
 * The line ends with CRLF: decode "src dst sport dport", four fields
 * separated by exactly one space, the last one ending at the CR.
 */
static void
v1_line_done(struct proxy_proto *p)
{
    if (p->v1_proto == V1_UNDECIDED) {
        pp_fail(p, "v1: unknown protocol");
        return;
    }
    if (p->v1_proto == V1_UNKNOWN) {
        p->is_local = true;
        pp_done(p);
        return;
    }

    const int family = p->v1_proto == V1_TCP4 ? AF_INET : AF_INET6;
    const uint8_t *s = p->buf + V1_PREFIX_LEN + V1_TCP_TOKEN_LEN + 1;
    const uint8_t *const end = p->buf + p->buf_len - 2; /* at the CR */
    const uint8_t *field[4];
    size_t field_len[4];

    for (size_t i = 0; i < 4; i++) {
        const uint8_t *e = s;
        while (e < end && *e != ' ') {
            e++;
        }
        if (e == s || (i < 3 && e == end) || (i == 3 && e != end)) {
            pp_fail(p, "v1: wrong number of fields");
            return;
        }
        field[i] = s;
        field_len[i] = (size_t)(e - s);
        s = e + (i < 3 ? 1 : 0);
    }

    uint16_t sport, dport;
    if (!v1_parse_addr(family, field[0], field_len[0], &p->src) ||
        !v1_parse_addr(family, field[1], field_len[1], &p->dst)) {
        pp_fail(p, "v1: bad address");
        return;
    }
    if (!v1_parse_port(field[2], field_len[2], &sport) ||
        !v1_parse_port(field[3], field_len[3], &dport)) {
        pp_fail(p, "v1: bad port");
        return;
    }
    if (family == AF_INET) {
        ((struct sockaddr_in *)&p->src)->sin_port = htons(sport);
        ((struct sockaddr_in *)&p->dst)->sin_port = htons(dport);
    } else {
        ((struct sockaddr_in6 *)&p->src)->sin6_port = htons(sport);
        ((struct sockaddr_in6 *)&p->dst)->sin6_port = htons(dport);
    }
    pp_done(p);
}


/* Decodes len bytes of address text for family into ss (port left 0). */
static bool
v1_parse_addr(int family, const uint8_t *s, size_t len,
              struct sockaddr_storage *ss)
{
    char text[V1_ADDR_MAX + 1];

    if (len > V1_ADDR_MAX) {
        return false;
    }
    memcpy(text, s, len);
    text[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *const sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        return inet_pton(AF_INET, text, &sin->sin_addr) == 1;
    }
    struct sockaddr_in6 *const sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1;
}


/* Decodes a port: 1..5 digits, no heading zero unless it is "0". */
static bool
v1_parse_port(const uint8_t *s, size_t len, uint16_t *port)
{
    unsigned v = 0;

    if (len == 0 || len > 5 || (s[0] == '0' && len > 1)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > V1_PORT_MAX) {
        return false;
    }
    *port = (uint16_t)v;
    return true;
}


/* Takes one of the 16 fixed v2 bytes and judges it as soon as it is in. */
static void
v2_hdr_byte(struct proxy_proto *p, uint8_t b)
{
    const size_t pos = p->buf_len;

    p->buf[p->buf_len++] = b;
    if (pos < V2_SIG_LEN) {
        if (b != v2_sig[pos]) {
            pp_fail(p, "not a PROXY protocol header");
        }
        return;
    }
    switch (pos) {
    case 12: /* ver_cmd */
        if (b >> 4 != V2_VERSION) {
            pp_fail(p, "v2: bad version");
        } else if ((b & 0x0f) != V2_CMD_LOCAL && (b & 0x0f) != V2_CMD_PROXY) {
            pp_fail(p, "v2: bad command");
        }
        return;
    case 13: /* fam: LOCAL ignores it (spec §2.2) */
        if ((p->buf[12] & 0x0f) == V2_CMD_PROXY && b != V2_FAM_UNSPEC &&
            b != V2_FAM_TCP4 && b != V2_FAM_TCP6) {
            pp_fail(p, "v2: family not TCP over IPv4/IPv6");
        }
        return;
    case 15:
        v2_len_done(p);
        return;
    default:
        return;
    }
}


/* The length field is in: check it and choose how to read the block. */
static void
v2_len_done(struct proxy_proto *p)
{
    const size_t len = (size_t)p->buf[14] << 8 | p->buf[15];
    const uint8_t fam = p->buf[13];
    const bool is_proxy = (p->buf[12] & 0x0f) == V2_CMD_PROXY;
    const size_t need = is_proxy ? v2_addr_len(fam) : 0;

    if (len > PROXY_PROTO_V2_MAX_LEN) {
        pp_fail(p, "v2: length field over the cap");
        return;
    }
    if (len < need) {
        pp_fail(p, "v2: length shorter than the address block");
        return;
    }
    p->left = len;
    if (need == 0) {
        /* LOCAL, or PROXY with UNSPEC: no addresses to use, skip it all. */
        p->is_local = true;
        p->state = ST_V2_SKIP;
        if (len == 0) {
            pp_done(p);
        }
        return;
    }
    p->state = ST_V2_ADDR;
}


/* Bytes of the address block for a PROXY command's fam byte (0: none). */
static size_t
v2_addr_len(uint8_t fam)
{
    switch (fam) {
    case V2_FAM_TCP4:
        return V2_ADDR_LEN_TCP4;
    case V2_FAM_TCP6:
        return V2_ADDR_LEN_TCP6;
    default:
        return 0;
    }
}


/* The address block is in: fill src and dst, then read the TLVs. */
static void
v2_addr_done(struct proxy_proto *p)
{
    const uint8_t *a = p->buf + PROXY_PROTO_V2_HDR_LEN;

    memset(&p->src, 0, sizeof(p->src));
    memset(&p->dst, 0, sizeof(p->dst));
    if (p->buf[13] == V2_FAM_TCP4) {
        struct sockaddr_in *const s = (struct sockaddr_in *)&p->src;
        struct sockaddr_in *const d = (struct sockaddr_in *)&p->dst;
        s->sin_family = AF_INET;
        d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
    } else {
        struct sockaddr_in6 *const s = (struct sockaddr_in6 *)&p->src;
        struct sockaddr_in6 *const d = (struct sockaddr_in6 *)&p->dst;
        s->sin6_family = AF_INET6;
        d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
    }
    /* The rest of the block is the TLV area: where it lies in the header. */
    p->tlvs_off = p->buf_len;
    p->tlvs_len = p->left;
    v2_next_tlv(p);
}


/*
 * Between TLVs: the header ends when nothing is left; otherwise a whole
 * TLV header must fit in what is left (HAProxy 488ee7fb: the header must
 * end on a TLV boundary). Decided without reading another byte.
 */
static void
v2_next_tlv(struct proxy_proto *p)
{
    if (p->left == 0) {
        pp_done(p);
        return;
    }
    if (p->left < V2_TLV_HDR_LEN) {
        pp_fail(p, "v2: TLV overruns the header");
        return;
    }
    p->tlv_hdr_len = 0;
    p->state = ST_V2_TLV_HDR;
}


/* A TLV's type and length are in: its value must fit in the header. */
static void
v2_tlv_hdr_done(struct proxy_proto *p)
{
    const size_t len = (size_t)p->tlv_hdr[1] << 8 | p->tlv_hdr[2];

    if (len > p->left) {
        pp_fail(p, "v2: TLV overruns the header");
        return;
    }
    p->tlv_is_authority = p->tlv_hdr[0] == PP2_TYPE_AUTHORITY;
    if (p->tlv_is_authority) {
        if (p->has_authority) {
            pp_fail(p, "v2: duplicate AUTHORITY TLV");
            return;
        }
        if (len > PROXY_PROTO_AUTHORITY_MAX) {
            pp_fail(p, "v2: AUTHORITY TLV too long");
            return;
        }
        p->has_authority = true;
    }
    p->tlv_left = len;
    if (len == 0) {
        v2_next_tlv(p);
        return;
    }
    p->state = ST_V2_TLV_VAL;
}


/*
 * Reads up to n (> 0) value bytes of the current TLV (tlv_left > 0),
 * copying them for AUTHORITY. Returns the bytes consumed.
 */
static size_t
v2_tlv_value(struct proxy_proto *p, const uint8_t *data, size_t n)
{
    if (n > p->tlv_left) {
        n = p->tlv_left;
    }
    if (p->tlv_is_authority) {
        /* tlv_left <= 255 - authority_len, checked in v2_tlv_hdr_done(). */
        memcpy(p->authority + p->authority_len, data, n);
        p->authority_len += n;
        p->authority[p->authority_len] = '\0';
    }
    p->tlv_left -= n;
    p->left -= n;
    if (p->tlv_left == 0) {
        v2_next_tlv(p);
    }
    return n;
}


/* src and dst: both AF_INET or both AF_INET6. */
static bool
addr_pair_ok(const struct sockaddr *src, const struct sockaddr *dst)
{
    return dst != NULL && src->sa_family == dst->sa_family &&
           (src->sa_family == AF_INET || src->sa_family == AF_INET6);
}


/*
 * Writes a v1 line into out (PROXY_PROTO_BUILD_MAX bytes, more than the
 * 107 a line can take). Returns its length.
 */
static size_t
build_v1(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out)
{
    char s_text[INET6_ADDRSTRLEN], d_text[INET6_ADDRSTRLEN];
    unsigned s_port, d_port;
    size_t n;

    if (src == NULL) {
        return put_str(out, 0, "PROXY UNKNOWN\r\n");
    }
    if (src->sa_family == AF_INET) {
        struct sockaddr_in s, d;
        memcpy(&s, src, sizeof(s));
        memcpy(&d, dst, sizeof(d));
        if (inet_ntop(AF_INET, &s.sin_addr, s_text, sizeof(s_text)) == NULL ||
            inet_ntop(AF_INET, &d.sin_addr, d_text, sizeof(d_text)) == NULL) {
            return 0;
        }
        s_port = ntohs(s.sin_port);
        d_port = ntohs(d.sin_port);
        n = put_str(out, 0, "PROXY TCP4 ");
    } else {
        struct sockaddr_in6 s, d;
        memcpy(&s, src, sizeof(s));
        memcpy(&d, dst, sizeof(d));
        if (inet_ntop(AF_INET6, &s.sin6_addr, s_text, sizeof(s_text)) == NULL ||
            inet_ntop(AF_INET6, &d.sin6_addr, d_text, sizeof(d_text)) == NULL) {
            return 0;
        }
        s_port = ntohs(s.sin6_port);
        d_port = ntohs(d.sin6_port);
        n = put_str(out, 0, "PROXY TCP6 ");
    }
    n = put_str(out, n, s_text);
    n = put_str(out, n, " ");
    n = put_str(out, n, d_text);
    n = put_str(out, n, " ");
    n = put_uint(out, n, s_port);
    n = put_str(out, n, " ");
    n = put_uint(out, n, d_port);
    return put_str(out, n, "\r\n");
}


/*
 * Writes a v2 header into out (PROXY_PROTO_BUILD_MAX bytes). authority is
 * NULL or authority_len (1..255) bytes. Returns its length.
 */
static size_t
build_v2(const struct sockaddr *src, const struct sockaddr *dst,
         const char *authority, size_t authority_len, uint8_t *out)
{
    size_t n = PROXY_PROTO_V2_HDR_LEN;

    memcpy(out, v2_sig, V2_SIG_LEN);
    if (src == NULL) {
        out[12] = V2_VERSION << 4 | V2_CMD_LOCAL;
        out[13] = V2_FAM_UNSPEC;
        out[14] = 0;
        out[15] = 0;
        return n;
    }
    out[12] = V2_VERSION << 4 | V2_CMD_PROXY;
    if (src->sa_family == AF_INET) {
        struct sockaddr_in s, d;
        memcpy(&s, src, sizeof(s));
        memcpy(&d, dst, sizeof(d));
        out[13] = V2_FAM_TCP4;
        memcpy(out + n, &s.sin_addr, 4);
        memcpy(out + n + 4, &d.sin_addr, 4);
        memcpy(out + n + 8, &s.sin_port, 2);
        memcpy(out + n + 10, &d.sin_port, 2);
        n += V2_ADDR_LEN_TCP4;
    } else {
        struct sockaddr_in6 s, d;
        memcpy(&s, src, sizeof(s));
        memcpy(&d, dst, sizeof(d));
        out[13] = V2_FAM_TCP6;
        memcpy(out + n, &s.sin6_addr, 16);
        memcpy(out + n + 16, &d.sin6_addr, 16);
        memcpy(out + n + 32, &s.sin6_port, 2);
        memcpy(out + n + 34, &d.sin6_port, 2);
        n += V2_ADDR_LEN_TCP6;
    }
    if (authority != NULL) {
        out[n] = PP2_TYPE_AUTHORITY;
        out[n + 1] = (uint8_t)(authority_len >> 8);
        out[n + 2] = (uint8_t)authority_len;
        memcpy(out + n + V2_TLV_HDR_LEN, authority, authority_len);
        n += V2_TLV_HDR_LEN + authority_len;
    }
    const size_t len = n - PROXY_PROTO_V2_HDR_LEN;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    return n;
}


/* Appends the NUL-terminated s at out + pos; returns the new length. */
static size_t
put_str(uint8_t *out, size_t pos, const char *s)
{
    const size_t n = strlen(s);

    memcpy(out + pos, s, n);
    return pos + n;
}


/* Appends v (at most 65535) in decimal; returns the new length. */
static size_t
put_uint(uint8_t *out, size_t pos, unsigned v)
{
    char digits[5];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n < sizeof(digits));
    while (n > 0) {
        out[pos++] = (uint8_t)digits[--n];
    }
    return pos;
}


/*
 * nginx's names for $proxy_protocol_tlv_NAME (ngx_proxy_protocol.c):
 * top-level types, sub-TLVs of PP2_TYPE_SSL, and the SSL TLV's verify.
 */
static const struct {
    const char *name;
    int type;
} pp_tlv_names[] = {
    {"alpn", 0x01},
    {"authority", 0x02},
    {"unique_id", 0x05},
    {"ssl", 0x20},
    {"ssl_verify", PROXY_PROTO_TLV_SSL_VERIFY},
    {"ssl_version", 0x21 | PROXY_PROTO_TLV_SSL_SUB},
    {"ssl_cn", 0x22 | PROXY_PROTO_TLV_SSL_SUB},
    {"ssl_cipher", 0x23 | PROXY_PROTO_TLV_SSL_SUB},
    {"ssl_sig_alg", 0x24 | PROXY_PROTO_TLV_SSL_SUB},
    {"ssl_key_alg", 0x25 | PROXY_PROTO_TLV_SSL_SUB},
    {"netns", 0x30},
};


int
proxy_proto_tlv_type(const char *name, size_t len)
{
    int type = 0;

    if (len >= 2 && name[0] == '0' && name[1] == 'x') {
        /* nginx: "0x" and hex digits (leading zeros allowed), 0..255. */
        if (len == 2) {
            return PROXY_PROTO_TLV_INVALID;
        }
        for (size_t i = 2; i < len; i++) {
            const char c = name[i];
            int d;

            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if (c >= 'a' && c <= 'f') {
                d = c - 'a' + 10;
            } else if (c >= 'A' && c <= 'F') {
                d = c - 'A' + 10;
            } else {
                return PROXY_PROTO_TLV_INVALID;
            }
            type = type * 16 + d;
            if (type > 0xff) {
                return PROXY_PROTO_TLV_INVALID;
            }
        }
        return type;
    }
    for (size_t i = 0; i < sizeof(pp_tlv_names) / sizeof(pp_tlv_names[0]);
         i++) {
        if (strlen(pp_tlv_names[i].name) == len &&
            memcmp(pp_tlv_names[i].name, name, len) == 0) {
            return pp_tlv_names[i].type;
        }
    }
    return PROXY_PROTO_TLV_UNKNOWN;
}


/* The first TLV of `type` in the area tlvs (len bytes). */
static enum proxy_proto_tlv_rc
pp_tlv_find(const uint8_t *tlvs, size_t len, uint8_t type, const uint8_t **val,
            size_t *vlen)
{
    size_t pos = 0;

    /* Each round moves pos forward by at least V2_TLV_HDR_LEN. */
    while (pos < len) {
        size_t n;

        if (len - pos < V2_TLV_HDR_LEN) {
            return PROXY_PROTO_TLV_BROKEN;
        }
        n = (size_t)tlvs[pos + 1] << 8 | tlvs[pos + 2];
        if (n > len - pos - V2_TLV_HDR_LEN) {
            return PROXY_PROTO_TLV_BROKEN;
        }
        if (tlvs[pos] == type) {
            *val = tlvs + pos + V2_TLV_HDR_LEN;
            *vlen = n;
            return PROXY_PROTO_TLV_FOUND;
        }
        pos += V2_TLV_HDR_LEN + n;
    }
    return PROXY_PROTO_TLV_NONE;
}


enum proxy_proto_tlv_rc
proxy_proto_tlv_get(const uint8_t *tlvs, size_t len, int type,
                    const uint8_t **val, size_t *vlen,
                    char verify[PROXY_PROTO_TLV_VERIFY_MAX])
{
    const uint8_t *ssl;
    size_t ssl_len;
    enum proxy_proto_tlv_rc rc;

    if (type < 0 ||
        type > (0xff | PROXY_PROTO_TLV_SSL_SUB | PROXY_PROTO_TLV_SSL_VERIFY)) {
        return PROXY_PROTO_TLV_NONE;
    }
    if (!(type & (PROXY_PROTO_TLV_SSL_SUB | PROXY_PROTO_TLV_SSL_VERIFY))) {
        return pp_tlv_find(tlvs, len, (uint8_t)type, val, vlen);
    }
    rc = pp_tlv_find(tlvs, len, PP2_TYPE_SSL, &ssl, &ssl_len);
    if (rc != PROXY_PROTO_TLV_FOUND) {
        return rc;
    }
    if (ssl_len < PP2_SSL_FIXED_LEN) {
        return PROXY_PROTO_TLV_BROKEN;
    }
    if (type & PROXY_PROTO_TLV_SSL_VERIFY) {
        uint32_t v = (uint32_t)ssl[1] << 24 | (uint32_t)ssl[2] << 16 |
                     (uint32_t)ssl[3] << 8 | ssl[4];
        char digits[PROXY_PROTO_TLV_VERIFY_MAX];
        size_t n = 0;

        /* At most 10 digits: 4294967295. */
        do {
            digits[n++] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        for (size_t i = 0; i < n; i++) {
            verify[i] = digits[n - 1 - i];
        }
        verify[n] = '\0';
        *val = (const uint8_t *)verify;
        *vlen = n;
        return PROXY_PROTO_TLV_FOUND;
    }
    return pp_tlv_find(ssl + PP2_SSL_FIXED_LEN, ssl_len - PP2_SSL_FIXED_LEN,
                       (uint8_t)(type & 0xff), val, vlen);
}
