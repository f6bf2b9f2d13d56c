/* SPDX-License-Identifier: MIT */
/*
 * PROXY protocol (HAProxy doc/proxy-protocol.txt, versions 1 and 2): an
 * incremental parser for the header a trusted proxy puts in front of a
 * connection, and a builder for the header we send to a backend. Pure: no
 * allocation, no I/O, no globals; all state lives in struct proxy_proto,
 * owned by the caller. Whether a listener expects the header at all, and
 * from which sources, is the caller's decision (spec §5: never guess).
 */
#ifndef SNIRELAY_PROTO_PROXY_PROTO_H
#define SNIRELAY_PROTO_PROXY_PROTO_H

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proxy_proto_rc {
    PROXY_PROTO_NEED_MORE, /* all input consumed, header not complete */
    PROXY_PROTO_DONE,      /* a complete valid header; results valid;
                              `consumed` bytes belong to it */
    PROXY_PROTO_MALFORMED, /* not a valid v1/v2 header (including no
                              signature at all): the caller closes */
};

/* Longest v1 line, CRLF included (spec §2.1: the UNKNOWN worst case). */
#define PROXY_PROTO_V1_MAX_LEN 107

/* The fixed part of a v2 header: signature, ver_cmd, fam, len (§2.2). */
#define PROXY_PROTO_V2_HDR_LEN 16

/*
 * Largest v2 length field accepted. nginx caps the whole header at 4096
 * bytes (NGX_PROXY_PROTOCOL_MAX_HEADER), so we accept 16 + 4080 at most;
 * a larger length is MALFORMED as soon as the length field is read, which
 * bounds how long a peer can keep us waiting inside the header.
 */
#define PROXY_PROTO_V2_MAX_LEN (4096 - PROXY_PROTO_V2_HDR_LEN)

/* Longest PP2_TYPE_AUTHORITY value kept; a longer one is MALFORMED. */
#define PROXY_PROTO_AUTHORITY_MAX 255

/*
 * Bytes proxy_proto_build() may write at most: a v2 TCP6 header with a
 * 255-byte AUTHORITY TLV (16 + 36 + 3 + 255); a v1 line is shorter.
 */
#define PROXY_PROTO_BUILD_MAX 310

/*
 * One connection's parser state and results. The caller owns it (usually
 * inside its session object). It holds no pointers into caller buffers,
 * so input buffers may be reused or freed between calls. The v2 TLV area
 * is parsed as it streams by, so the object stays small (704 bytes on
 * x86-64) whatever the length field says.
 *
 * Results are valid after PROXY_PROTO_DONE. is_local is set for a v2
 * LOCAL command, a v2 PROXY command with AF_UNSPEC, and v1 UNKNOWN: there
 * are no addresses and the caller uses the socket's own; src and dst are
 * then all zero (AF_UNSPEC). authority holds the raw bytes of the v2
 * AUTHORITY TLV (0x02), NUL-terminated, "" if none: it is untrusted and
 * may hold any byte, so it must pass hostname_validate() before any use.
 */
struct proxy_proto {
    /* results */
    unsigned version; /* 1 or 2 once the first byte decided, else 0 */
    bool is_local;    /* no addresses: use the socket's (see above) */
    struct sockaddr_storage src; /* client address and port, AF_INET or
                                    AF_INET6, when !is_local */
    struct sockaddr_storage dst; /* the address the client connected to,
                                    same family as src */

    char authority[PROXY_PROTO_AUTHORITY_MAX + 1]; /* raw, NUL-ended */

    size_t authority_len; /* bytes in authority */
    size_t tlvs_off;      /* v2 PROXY with addresses: where the TLV area
                             starts among the header's bytes, else 0 */
    size_t tlvs_len;      /* its length: the header's last bytes */
    size_t consumed;      /* header bytes read so far; after DONE the
                             bytes to skip before the payload */
    const char *reason;   /* static text: why MALFORMED, else "ok" */

    /* private parser state: read and written by proxy_proto.c only */
    enum proxy_proto_rc rc; /* sticky outcome; NEED_MORE while parsing */
    uint8_t state;          /* parser state (enum in .c) */
    uint8_t v1_proto;       /* v1 protocol token (enum in .c) */

    uint8_t buf[PROXY_PROTO_V1_MAX_LEN]; /* v1 line, or v2 16 + addrs */

    size_t buf_len;        /* bytes used in buf */
    size_t left;           /* v2: bytes of the block not read yet */
    uint8_t tlv_hdr[3];    /* v2 TLV type + length being read */
    uint8_t tlv_hdr_len;   /* 0..3 bytes of tlv_hdr collected */
    size_t tlv_left;       /* value bytes left in the current TLV */
    bool tlv_is_authority; /* the current TLV is copied */
    bool has_authority;    /* an AUTHORITY TLV was seen */
};

/* Prepares p for a new connection; p must not be NULL. */
void proxy_proto_init(struct proxy_proto *p);

/*
 * Feeds the next len bytes the peer sent; data may be NULL when len is 0.
 * Resumable at any split down to one byte per call; earlier bytes are
 * never re-read. Never reads past the header: on PROXY_PROTO_DONE,
 * p->consumed says how many of all the bytes fed since proxy_proto_init()
 * are the header; the rest of this call's bytes are payload the caller
 * must keep. Returns PROXY_PROTO_NEED_MORE when every byte was taken and
 * the header is not complete, PROXY_PROTO_DONE when the results are
 * valid, or PROXY_PROTO_MALFORMED (see p->reason) as soon as a byte shows
 * the input is not a valid header. Once the result is not NEED_MORE,
 * later calls return it again and read nothing.
 *
 * Accepted (everything else is MALFORMED):
 *  - v1: "PROXY TCP4 a b p q\r\n", "PROXY TCP6 ...", with single spaces,
 *    addresses valid for the family (inet_pton rules: dotted quads
 *    without leading zeros; IPv6 may end in a dotted quad), ports 0..65535
 *    in decimal without sign or leading zero; "PROXY UNKNOWN" followed by
 *    CRLF or by a space and anything up to CRLF. CRLF must end the line
 *    within PROXY_PROTO_V1_MAX_LEN bytes; a CR not followed by LF, or an
 *    LF not preceded by CR, is MALFORMED at once.
 *  - v2: the signature, version 2, command LOCAL (family byte ignored,
 *    is_local) or PROXY with family/transport 0x11 (TCP4), 0x21 (TCP6) or
 *    0x00 (UNSPEC: is_local). UDP and UNIX families are MALFORMED: this is
 *    a TCP proxy. The length field must be at most PROXY_PROTO_V2_MAX_LEN
 *    and at least the address block (12 or 36). After the addresses, the
 *    rest must be whole TLVs; an AUTHORITY TLV (at most one, at most 255
 *    bytes) is kept, other TLVs (CRC32C included) are skipped unchecked.
 *    For is_local headers the whole block is skipped unparsed.
 */
enum proxy_proto_rc proxy_proto_feed(struct proxy_proto *p, const uint8_t *data,
                                     size_t len);

/*
 * $proxy_protocol_tlv_NAME (nginx 1.23.2): the TLV area of a v2 header
 * (header bytes [tlvs_off, tlvs_off + tlvs_len) of a DONE parse) is kept
 * by the caller and searched on demand.
 */
enum proxy_proto_tlv_rc {
    PROXY_PROTO_TLV_FOUND,  /* *val, *vlen set */
    PROXY_PROTO_TLV_NONE,   /* no such TLV */
    PROXY_PROTO_TLV_BROKEN, /* a TLV overruns its area (nginx: "broken
                               PROXY protocol TLV") */
};

/* Flags on a type from proxy_proto_tlv_type(). */
#define PROXY_PROTO_TLV_SSL_SUB 0x100    /* a sub-TLV of PP2_TYPE_SSL */
#define PROXY_PROTO_TLV_SSL_VERIFY 0x200 /* the SSL TLV's verify field */
#define PROXY_PROTO_TLV_UNKNOWN (-1)     /* not a name nginx knows */
#define PROXY_PROTO_TLV_INVALID (-2)     /* "0x" without a hex byte */

/* Room for the verify field as decimal text, NUL included. */
#define PROXY_PROTO_TLV_VERIFY_MAX 11

/*
 * The type for a variable name (len bytes after "proxy_protocol_tlv_"),
 * as nginx: alpn, authority, unique_id, ssl, netns; ssl_version, ssl_cn,
 * ssl_cipher, ssl_sig_alg, ssl_key_alg (sub-TLVs of ssl, with
 * PROXY_PROTO_TLV_SSL_SUB); ssl_verify (PROXY_PROTO_TLV_SSL_VERIFY); or
 * "0x" and hex digits for any type 0..255 ("0x000ae" is 0xae). Returns the
 * type with its flags, PROXY_PROTO_TLV_UNKNOWN or PROXY_PROTO_TLV_INVALID.
 */
int proxy_proto_tlv_type(const char *name, size_t len);

/*
 * Finds the first TLV of type (from proxy_proto_tlv_type()) in the TLV
 * area tlvs (len bytes): *val points into tlvs, or for ssl_verify to the
 * decimal text written into verify. Sub-TLVs are looked up after the SSL
 * TLV's 5 fixed bytes (client, verify). Bounded by len; never reads
 * outside tlvs.
 */
enum proxy_proto_tlv_rc
proxy_proto_tlv_get(const uint8_t *tlvs, size_t len, int type,
                    const uint8_t **val, size_t *vlen,
                    char verify[PROXY_PROTO_TLV_VERIFY_MAX]);

/*
 * Builds a header into buf (cap bytes; PROXY_PROTO_BUILD_MAX always
 * suffices). src and dst are sockaddr_in or sockaddr_in6 of the same
 * family (read by sa_family), or src NULL for "no addresses": then dst is
 * ignored. version 1: "PROXY TCP4 src dst sport dport\r\n" (TCP6 for
 * IPv6), or "PROXY UNKNOWN\r\n" when src is NULL; v1 has no TLVs, so
 * authority must be NULL or empty. version 2: command PROXY, family AF_INET or
 * AF_INET6 over STREAM, the addresses, then an AUTHORITY TLV when authority is
 * non-NULL and authority_len > 0 (at most 255 bytes, copied as is); with
 * src NULL, a LOCAL header with family UNSPEC and length 0, and authority
 * must be NULL or empty. Returns the bytes written, or 0 (buf untouched)
 * if cap is too small or an input is invalid.
 */
size_t proxy_proto_build(unsigned version, const struct sockaddr *src,
                         const struct sockaddr *dst, const char *authority,
                         size_t authority_len, uint8_t *buf, size_t cap);

#endif
