/* SPDX-License-Identifier: MIT */
/*
 * Incremental TLS ClientHello parser. It reads the record layer and the
 * handshake message inside it, or a bare handshake stream (QUIC CRYPTO
 * frames), and keeps only what routing needs: server_name, the ALPN list,
 * the offered version and whether ECH was offered. Pure: no allocation, no
 * I/O, no globals; all state lives in struct tls_hello, owned by the caller.
 */
#ifndef SNIRELAY_PROTO_TLS_HELLO_H
#define SNIRELAY_PROTO_TLS_HELLO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tls_hello_rc {
    TLS_HELLO_NEED_MORE, /* all input consumed, the hello is not complete yet */
    TLS_HELLO_DONE,      /* the whole ClientHello was parsed; results valid */
    TLS_HELLO_NOT_TLS,   /* the first bytes are not a TLS handshake record
                            carrying a ClientHello */
    TLS_HELLO_MALFORMED, /* TLS, but a length or a field is invalid */
};

/* Longest server_name kept; a longer host_name is MALFORMED. */
#define TLS_HELLO_NAME_MAX 255

/*
 * Longest comma-joined ALPN list kept; a longer list is truncated at a
 * protocol boundary (the protocols that fit, in order).
 */
#define TLS_HELLO_ALPN_MAX 511

/*
 * Most extensions one ClientHello may carry. Duplicates are detected by
 * remembering every type seen, so the count is capped; real clients send
 * about 20. A hello with more is MALFORMED.
 */
#define TLS_HELLO_EXT_MAX 128

/* Nesting of length-prefixed containers the handshake layer tracks. */
#define TLS_HELLO_DEPTH 5

/*
 * One connection's parser state and results. The caller owns it (usually
 * inside its session object); it holds no pointers into caller buffers, so
 * input buffers may be reused or freed between calls.
 */
struct tls_hello {
    /* results, valid after TLS_HELLO_DONE */
    char server_name[TLS_HELLO_NAME_MAX + 1]; /* raw bytes sent, NUL-ended */
    size_t server_name_len;                   /* bytes in server_name */
    bool has_sni;                             /* a host_name entry was sent */
    char alpn[TLS_HELLO_ALPN_MAX + 1];        /* "h2,http/1.1", as nginx's
                                                 $ssl_preread_alpn_protocols,
                                                 NUL-terminated */
    size_t alpn_len;                          /* bytes in alpn */
    uint16_t version;   /* highest non-GREASE supported_versions entry, else
                           legacy_version; 0x0002 for an SSLv2 hello */
    bool has_ech;       /* encrypted_client_hello (0xfe0d) was present */
    bool is_sslv2;      /* SSLv2-compatible hello: no extensions, no SNI */
    const char *reason; /* static text: why NOT_TLS/MALFORMED, else "ok" */

    /* private parser state: read and written by tls_hello.c only */
    enum tls_hello_rc rc; /* sticky outcome; NEED_MORE while parsing */
    uint8_t mode;         /* records or bare handshake, set by 1st feed */
    uint8_t rec_hdr[5];   /* record header bytes being collected */
    uint8_t rec_hdr_len;  /* 0..5 bytes of rec_hdr collected */
    bool rec_is_first;    /* the record being read is the first one */
    size_t rec_left;      /* payload bytes left in the current record */
    uint8_t hs_state;     /* handshake-layer state (enum in .c) */
    uint8_t field_len;    /* bytes of the current integer field read */
    uint32_t field;       /* big-endian integer being assembled */
    size_t left[TLS_HELLO_DEPTH]; /* bytes left in each open container */
    size_t open;                  /* containers open, 0..TLS_HELLO_DEPTH */
    uint16_t ext_type;            /* type of the extension being read */
    uint8_t name_type;            /* ServerName.name_type being read */
    bool alpn_keep;               /* copy the current ALPN protocol */
    bool alpn_full;               /* a protocol did not fit: keep no more */
    bool has_sv;                  /* sv_best holds a non-GREASE version */
    uint16_t sv_best;             /* highest supported_versions entry */
    size_t ext_count;             /* entries used in ext_seen */
    uint16_t ext_seen[TLS_HELLO_EXT_MAX]; /* extension types seen so far */
};

/* Prepares h for a new connection; h must not be NULL. */
void tls_hello_init(struct tls_hello *h);

/*
 * Feeds the next len bytes of the client's TLS byte stream (records). The
 * parser is resumable at any split, down to one byte per call, and never
 * re-reads earlier bytes; data may be NULL when len is 0. Returns
 * TLS_HELLO_NEED_MORE when every byte was consumed and the hello is not
 * complete, TLS_HELLO_DONE when the results are valid, TLS_HELLO_NOT_TLS or
 * TLS_HELLO_MALFORMED (see h->reason). Once the result is not NEED_MORE,
 * later calls return it again and read nothing. Bytes after the end of the
 * ClientHello are ignored. Do not mix with tls_hello_feed_handshake() on
 * one h: that is MALFORMED.
 */
enum tls_hello_rc tls_hello_feed(struct tls_hello *h, const uint8_t *data,
                                 size_t len);

/*
 * Same as tls_hello_feed(), but data is a bare handshake-message stream
 * with no TLS record headers, as QUIC CRYPTO frames carry it.
 */
enum tls_hello_rc tls_hello_feed_handshake(struct tls_hello *h,
                                           const uint8_t *data, size_t len);

/*
 * Returns nginx's $ssl_preread_protocol text for a version: 0x0002
 * "SSLv2", 0x0300 "SSLv3", 0x0301 "TLSv1", 0x0302 "TLSv1.1", 0x0303
 * "TLSv1.2", 0x0304 "TLSv1.3"; NULL for anything else. The text is static.
 */
const char *tls_hello_protocol_name(uint16_t version);

#endif
