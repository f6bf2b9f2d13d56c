/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/proto/tls_hello.c. Every input is copied flush
 * against a PROT_NONE guard page (guardpage.h) before it is fed, so any
 * over-read faults. Inputs come from an annotated fixture and from a small
 * builder that lays out the same fields (and is checked against the
 * fixture byte for byte); the builder also records where every length
 * field is, which drives the +-1 tests. The recipe follows DESIGN.md:
 * whole, every split, byte by byte, across records, every truncation, +-1
 * on every length.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guardpage.h"
#include "proto/tls_hello.h"


#define BUILD_CAP 24576    /* largest hello (or record stream) built */
#define BUILD_MAX_LENS 256 /* length fields the builder remembers */
#define BUILD_MAX_DEPTH 8  /* nesting of open length fields */
#define OPT_MAX 8          /* ALPN names / versions in struct hello_opts */
#define REC_HDR_LEN 5


/* One length prefix written by the builder. */
struct len_field {
    size_t off;  /* offset of the first length byte */
    size_t size; /* 1, 2 or 3 bytes */
    bool parsed; /* the parser reads this length (false: inside opaque
                    data it skips, e.g. key_share internals) */
};

/* A byte buffer that remembers its length fields. */
struct builder {
    uint8_t buf[BUILD_CAP];
    size_t len;                            /* bytes used in buf */
    struct len_field lens[BUILD_MAX_LENS]; /* every length written */
    size_t n_lens;                         /* entries used in lens */
    size_t open[BUILD_MAX_DEPTH];          /* indexes of open lens */
    size_t depth;                          /* entries used in open */
};

/* What build_hello() puts in the ClientHello. */
struct hello_opts {
    const char *server_name;    /* host_name entry; NULL: no extension */
    const char *alpn[OPT_MAX];  /* ALPN protocol names */
    size_t n_alpn;              /* 0: no ALPN extension */
    uint16_t versions[OPT_MAX]; /* supported_versions entries */
    size_t n_versions;          /* 0: no supported_versions extension */
    size_t key_share_len;       /* 0: no key_share extension */
    uint16_t group;             /* key_share and supported_groups group */
    bool ech;                   /* add encrypted_client_hello */
    bool grease;                /* add GREASE extensions */
    bool no_extensions;         /* end the hello after compression */
    bool dup_extension;         /* send supported_groups twice */
    bool second_host_name;      /* add a second host_name entry */
    bool unknown_name_type;     /* add a name_type 1 entry first */
    size_t padding;             /* padding extension of this many zeros */
    size_t extra_exts;          /* extra empty extensions, types 0x7000+ */
};

/* Results a test expects after DONE. */
struct expect {
    const char *server_name; /* NULL: has_sni false */
    const char *alpn;        /* "" when absent */
    uint16_t version;
    bool has_ech;
};


static int setup_guard(void **state);
static int teardown_guard(void **state);
static void b_u8(struct builder *b, uint8_t v);
static void b_u16(struct builder *b, uint16_t v);
static void b_bytes(struct builder *b, const void *p, size_t n);
static void b_fill(struct builder *b, uint8_t first, size_t n);
static void b_open(struct builder *b, size_t size, bool parsed);
static void b_close(struct builder *b);
static void b_ext_open(struct builder *b, uint16_t type, bool parsed);
static void build_hello(struct builder *b, const struct hello_opts *o);
static void build_records(struct builder *out, const uint8_t *hs, size_t len,
                          const size_t *sizes, size_t n_sizes);
static struct hello_opts fixture_opts(void);
static enum tls_hello_rc feed_guarded(struct tls_hello *h, struct guardpage *g,
                                      const uint8_t *data, size_t len,
                                      bool bare);
static enum tls_hello_rc parse_whole(struct tls_hello *h, struct guardpage *g,
                                     const uint8_t *data, size_t len,
                                     bool bare);
static enum tls_hello_rc parse_chunked(struct tls_hello *h, struct guardpage *g,
                                       const uint8_t *data, size_t len,
                                       size_t chunk, bool bare);
static void assert_expect(const struct tls_hello *h, const struct expect *e);
static void assert_same_results(const struct tls_hello *a,
                                const struct tls_hello *b);
static void assert_fixture_results(const struct tls_hello *h);
static void check_all_ways(struct guardpage *g, const uint8_t *data, size_t len,
                           bool bare, const struct expect *e);
static void check_rc(struct guardpage *g, const uint8_t *data, size_t len,
                     bool bare, enum tls_hello_rc want);
static void check_hello_opts(struct guardpage *g, const struct hello_opts *o,
                             enum tls_hello_rc want, const char *reason);
static size_t find_bytes(const uint8_t *hay, size_t hay_len, const char *s);
static enum tls_hello_rc parse_with_ext_block(struct tls_hello *h,
                                              struct guardpage *g,
                                              const uint8_t *ext_block,
                                              size_t len);


/*
 * A TLS 1.3 ClientHello in one record, laid out as build_hello() does for
 * fixture_opts(): server_name example.com, ALPN h2 and http/1.1,
 * supported_versions with a GREASE value, an x25519 key share.
 */
/* clang-format off */
static const uint8_t fixture_hello[] = {
    /* TLSPlaintext (RFC 8446 §5.1) */
    0x16,             /* type: handshake (22) */
    0x03, 0x01,       /* legacy_record_version: 3.1 */
    0x00, 0xb6,       /* length: 182 */
    /* Handshake (§4) */
    0x01,             /* msg_type: client_hello */
    0x00, 0x00, 0xb2, /* length: 178 */
    /* ClientHello (§4.1.2) */
    0x03, 0x03,       /* legacy_version: TLS 1.2 */
    /* random[32] */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x20,             /* legacy_session_id length: 32 */
    0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7,
    0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
    0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
    0x00, 0x06,       /* cipher_suites length: 6 */
    0x13, 0x01,       /* TLS_AES_128_GCM_SHA256 */
    0x13, 0x02,       /* TLS_AES_256_GCM_SHA384 */
    0x13, 0x03,       /* TLS_CHACHA20_POLY1305_SHA256 */
    0x01,             /* legacy_compression_methods length: 1 */
    0x00,             /* null */
    0x00, 0x63,       /* extensions length: 99 */
    /* server_name (RFC 6066 §3) */
    0x00, 0x00,       /* extension_type: server_name */
    0x00, 0x10,       /* extension_data length: 16 */
    0x00, 0x0e,       /* ServerNameList length: 14 */
    0x00,             /* name_type: host_name */
    0x00, 0x0b,       /* HostName length: 11 */
    'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
    /* supported_groups (RFC 8446 §4.2.7) */
    0x00, 0x0a,       /* extension_type: supported_groups */
    0x00, 0x04,       /* extension_data length: 4 */
    0x00, 0x02,       /* named_group_list length: 2 */
    0x00, 0x1d,       /* x25519 */
    /* application_layer_protocol_negotiation (RFC 7301 §3.1) */
    0x00, 0x10,       /* extension_type: ALPN (16) */
    0x00, 0x0e,       /* extension_data length: 14 */
    0x00, 0x0c,       /* ProtocolNameList length: 12 */
    0x02, 'h', '2',   /* ProtocolName "h2" */
    0x08, 'h', 't', 't', 'p', '/', '1', '.', '1', /* "http/1.1" */
    /* supported_versions (RFC 8446 §4.2.1) */
    0x00, 0x2b,       /* extension_type: supported_versions (43) */
    0x00, 0x07,       /* extension_data length: 7 */
    0x06,             /* versions length: 6 */
    0x3a, 0x3a,       /* GREASE (RFC 8701) */
    0x03, 0x04,       /* TLS 1.3 */
    0x03, 0x03,       /* TLS 1.2 */
    /* key_share (RFC 8446 §4.2.8) */
    0x00, 0x33,       /* extension_type: key_share (51) */
    0x00, 0x26,       /* extension_data length: 38 */
    0x00, 0x24,       /* client_shares length: 36 */
    0x00, 0x1d,       /* group: x25519 */
    0x00, 0x20,       /* key_exchange length: 32 */
    0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
    0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
    0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57,
    0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};
/* clang-format on */

/* The results fixture_hello must give. */
static const struct expect fixture_expect = {
    .server_name = "example.com",
    .alpn = "h2,http/1.1",
    .version = 0x0304,
    .has_ech = false,
};

/*
 * A real ClientHello, captured from `openssl s_client -tls1_3 -servername
 * example.com -alpn h2,http/1.1` (OpenSSL 3.0.19).
 */
/* clang-format off */
static const uint8_t openssl_hello[] = {
    0x16,                 /* type: handshake (22) */
    0x03, 0x01,           /* legacy_record_version: 3.1 */
    0x01, 0x02,           /* length: 258 */
    0x01,                 /* msg_type: client_hello */
    0x00, 0x00, 0xfe,     /* length: 254 */
    0x03, 0x03,           /* legacy_version: TLS 1.2 */
    /* random[32] */
    0xe1, 0xf9, 0xd9, 0xbd, 0xf1, 0x6d, 0x2c, 0x2b,
    0xf0, 0x98, 0xa0, 0x89, 0xe8, 0x61, 0x03, 0x97,
    0x85, 0x20, 0x72, 0x3d, 0xe6, 0x4d, 0x7d, 0x20,
    0x0b, 0xa4, 0x66, 0x6d, 0xb9, 0x42, 0x68, 0x0e,
    0x20,                 /* legacy_session_id length: 32 */
    /* legacy_session_id */
    0x9b, 0x92, 0xc7, 0x7e, 0x99, 0x0e, 0x19, 0x1b,
    0xc8, 0x52, 0xce, 0x85, 0x7e, 0x52, 0xd0, 0x27,
    0x6d, 0x96, 0xc9, 0xc6, 0xff, 0x9f, 0x2d, 0xef,
    0x0c, 0x13, 0x89, 0x1e, 0xbd, 0x0d, 0x14, 0xe0,
    0x00, 0x08,           /* cipher_suites length: 8 */
    /* cipher_suites */
    0x13, 0x02, 0x13, 0x03, 0x13, 0x01, 0x00, 0xff,
    0x01,                 /* compression_methods length: 1 */
    0x00,                 /* null */
    0x00, 0xad,           /* extensions length: 173 */
    0x00, 0x00, 0x00, 0x10, /* extension server_name (0), 16 bytes */
    0x00, 0x0e,           /* ServerNameList length */
    0x00,                 /* host_name */
    0x00, 0x0b,           /* HostName length */
    /* "example.com" */
    0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x63, 0x6f, 0x6d,
    0x00, 0x0b, 0x00, 0x04, /* extension ec_point_formats (11), 4 bytes */
    0x03, 0x00, 0x01, 0x02, /* extension_data */
    0x00, 0x0a, 0x00, 0x16, /* extension supported_groups (10), 22 bytes */
    /* extension_data */
    0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e,
    0x00, 0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01,
    0x01, 0x02, 0x01, 0x03, 0x01, 0x04,
    0x00, 0x23, 0x00, 0x00, /* extension session_ticket (35), 0 bytes */
    0x00, 0x10, 0x00, 0x0e, /* extension ALPN (16), 14 bytes */
    0x00, 0x0c,           /* ProtocolNameList length */
    0x02, 0x68, 0x32,     /* "h2" */
    0x08, 0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31, /* "http/1.1" */
    0x00, 0x16, 0x00, 0x00, /* extension encrypt_then_mac (22), 0 bytes */
    0x00, 0x17, 0x00, 0x00, /* extension extended_master_secret (23), 0 bytes */
    0x00, 0x0d, 0x00, 0x1e, /* extension signature_algorithms (13), 30 bytes */
    /* extension_data */
    0x00, 0x1c, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03,
    0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a,
    0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06,
    0x04, 0x01, 0x05, 0x01, 0x06, 0x01,
    0x00, 0x2b, 0x00, 0x03, /* extension supported_versions (43), 3 bytes */
    0x02, 0x03, 0x04,     /* versions: TLS 1.3 */
    0x00, 0x2d, 0x00, 0x02, /* extension psk_key_exchange_modes (45), 2 bytes */
    0x01, 0x01,           /* extension_data */
    0x00, 0x33, 0x00, 0x26, /* extension key_share (51), 38 bytes */
    /* extension_data */
    0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0xfb, 0x7b,
    0x8d, 0x7d, 0x3d, 0x22, 0xa9, 0x7f, 0x11, 0xee,
    0x21, 0x66, 0xfd, 0x23, 0xfd, 0x5f, 0xb6, 0xa6,
    0x40, 0xfb, 0x9c, 0xcc, 0xa8, 0x92, 0x8f, 0x6b,
    0x53, 0x3e, 0x0c, 0x8f, 0x61, 0x2a,
};
/* clang-format on */

/*
 * An SSLv2-compatible CLIENT-HELLO (RFC 5246 appendix E.2), as old
 * clients sent to probe for SSLv3/TLS servers.
 */
/* clang-format off */
static const uint8_t sslv2_hello[] = {
    0x80, 0x2e,       /* high bit set + msg_length: 46 */
    0x01,             /* msg_type: CLIENT-HELLO */
    0x00, 0x02,       /* version: SSL 2.0 */
    0x00, 0x15,       /* cipher_spec_length: 21 (7 specs) */
    0x00, 0x00,       /* session_id_length: 0 */
    0x00, 0x10,       /* challenge_length: 16 */
    0x01, 0x00, 0x80, 0x02, 0x00, 0x80, 0x03, 0x00, 0x80, 0x04, 0x00,
    0x80, 0x06, 0x00, 0x40, 0x07, 0x00, 0xc0, 0x00, 0x00, 0x2f,
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
};
/* clang-format on */


/* ---- fixtures and builder ---------------------------------------- */


static int
setup_guard(void **state)
{
    static struct guardpage g;

    if (guardpage_init(&g, BUILD_CAP) == -1) {
        return -1;
    }
    *state = &g;
    return 0;
}


static int
teardown_guard(void **state)
{
    guardpage_free(*state);
    return 0;
}


static void
b_u8(struct builder *b, uint8_t v)
{
    assert_true(b->len < BUILD_CAP);
    b->buf[b->len++] = v;
}


static void
b_u16(struct builder *b, uint16_t v)
{
    b_u8(b, (uint8_t)(v >> 8));
    b_u8(b, (uint8_t)v);
}


static void
b_bytes(struct builder *b, const void *p, size_t n)
{
    assert_true(n <= BUILD_CAP - b->len);
    memcpy(b->buf + b->len, p, n);
    b->len += n;
}


/* Appends n bytes first, first+1, ... (mod 256): recognisable filler. */
static void
b_fill(struct builder *b, uint8_t first, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        b_u8(b, (uint8_t)(first + i));
    }
}


/* Starts a length prefix of size bytes; b_close() fills it in. */
static void
b_open(struct builder *b, size_t size, bool parsed)
{
    assert_true(b->n_lens < BUILD_MAX_LENS);
    assert_true(b->depth < BUILD_MAX_DEPTH);
    b->lens[b->n_lens] = (struct len_field){b->len, size, parsed};
    b->open[b->depth++] = b->n_lens++;
    for (size_t i = 0; i < size; i++) {
        b_u8(b, 0);
    }
}


static void
b_close(struct builder *b)
{
    assert_true(b->depth > 0);
    const struct len_field *f = &b->lens[b->open[--b->depth]];
    const size_t v = b->len - f->off - f->size;

    assert_true(v < (size_t)1 << (8 * f->size));
    for (size_t i = 0; i < f->size; i++) {
        b->buf[f->off + i] = (uint8_t)(v >> (8 * (f->size - 1 - i)));
    }
}


/* Opens an extension: type, then its data length (closed by b_close). */
static void
b_ext_open(struct builder *b, uint16_t type, bool parsed)
{
    b_u16(b, type);
    b_open(b, 2, parsed);
}


/*
 * Builds one ClientHello handshake message into b. The layout for
 * fixture_opts() is exactly fixture_hello without its record header.
 */
static void
build_hello(struct builder *b, const struct hello_opts *o)
{
    b_u8(b, 0x01); /* client_hello */
    b_open(b, 3, true);
    b_u16(b, 0x0303);
    b_fill(b, 0x00, 32); /* random */
    b_open(b, 1, true);  /* legacy_session_id */
    b_fill(b, 0xe0, 32);
    b_close(b);
    b_open(b, 2, true); /* cipher_suites */
    b_u16(b, 0x1301);
    b_u16(b, 0x1302);
    b_u16(b, 0x1303);
    b_close(b);
    b_u8(b, 1); /* compression_methods: null */
    b_u8(b, 0);
    if (o->no_extensions) {
        b_close(b);
        return;
    }

    b_open(b, 2, true); /* extensions */
    if (o->grease) {
        b_ext_open(b, 0x0a0a, true);
        b_close(b);
    }
    if (o->dup_extension) {
        b_ext_open(b, 0x000a, true);
        b_u16(b, 2);
        b_u16(b, 0x0017);
        b_close(b);
    }
    if (o->server_name != NULL) {
        b_ext_open(b, 0x0000, true);
        b_open(b, 2, true); /* ServerNameList */
        if (o->unknown_name_type) {
            b_u8(b, 1);
            b_open(b, 2, true);
            b_bytes(b, "opaque", 6);
            b_close(b);
        }
        b_u8(b, 0); /* host_name */
        b_open(b, 2, true);
        b_bytes(b, o->server_name, strlen(o->server_name));
        b_close(b);
        if (o->second_host_name) {
            b_u8(b, 0);
            b_open(b, 2, true);
            b_bytes(b, "other.example", 13);
            b_close(b);
        }
        b_close(b);
        b_close(b);
    }
    b_ext_open(b, 0x000a, true); /* supported_groups */
    b_open(b, 2, false);
    if (o->grease) {
        b_u16(b, 0x3a3a);
    }
    b_u16(b, o->group);
    if (o->group == 0x11ec) {
        b_u16(b, 0x001d);
    }
    b_close(b);
    b_close(b);
    if (o->n_alpn > 0) {
        b_ext_open(b, 0x0010, true);
        b_open(b, 2, true);
        for (size_t i = 0; i < o->n_alpn; i++) {
            b_open(b, 1, true);
            b_bytes(b, o->alpn[i], strlen(o->alpn[i]));
            b_close(b);
        }
        b_close(b);
        b_close(b);
    }
    if (o->n_versions > 0) {
        b_ext_open(b, 0x002b, true);
        b_open(b, 1, true);
        for (size_t i = 0; i < o->n_versions; i++) {
            b_u16(b, o->versions[i]);
        }
        b_close(b);
        b_close(b);
    }
    if (o->key_share_len > 0) {
        b_ext_open(b, 0x0033, true);
        b_open(b, 2, false); /* client_shares */
        if (o->grease) {
            b_u16(b, 0x3a3a);
            b_open(b, 2, false);
            b_u8(b, 0);
            b_close(b);
        }
        b_u16(b, o->group);
        b_open(b, 2, false);
        b_fill(b, 0x40, o->key_share_len);
        b_close(b);
        if (o->group == 0x11ec) {
            b_u16(b, 0x001d);
            b_open(b, 2, false);
            b_fill(b, 0x80, 32);
            b_close(b);
        }
        b_close(b);
        b_close(b);
    }
    if (o->ech) {
        b_ext_open(b, 0xfe0d, true);
        b_u8(b, 0);          /* ECHClientHello type: outer */
        b_u16(b, 0x0001);    /* kdf: HKDF-SHA256 */
        b_u16(b, 0x0001);    /* aead: AES-128-GCM */
        b_u8(b, 0x2a);       /* config_id */
        b_open(b, 2, false); /* enc */
        b_fill(b, 0x21, 32);
        b_close(b);
        b_open(b, 2, false); /* payload */
        b_fill(b, 0x31, 144);
        b_close(b);
        b_close(b);
    }
    for (size_t i = 0; i < o->extra_exts; i++) {
        b_ext_open(b, (uint16_t)(0x7000 + i), true);
        b_close(b);
    }
    if (o->grease) {
        b_ext_open(b, 0x1a1a, true);
        b_u8(b, 0);
        b_close(b);
    }
    if (o->padding > 0) {
        b_ext_open(b, 0x0015, true);
        for (size_t i = 0; i < o->padding; i++) {
            b_u8(b, 0);
        }
        b_close(b);
    }
    b_close(b); /* extensions */
    b_close(b); /* message */
}


/*
 * Wraps a handshake stream in records: the first n_sizes records carry
 * sizes[i] bytes, the rest goes in records of up to 16384 bytes.
 */
static void
build_records(struct builder *out, const uint8_t *hs, size_t len,
              const size_t *sizes, size_t n_sizes)
{
    size_t pos = 0;

    for (size_t i = 0; pos < len; i++) {
        size_t n = i < n_sizes ? sizes[i] : 16384;
        if (n > len - pos) {
            n = len - pos;
        }
        b_u8(out, 0x16);
        b_u16(out, 0x0301);
        b_open(out, 2, true);
        b_bytes(out, hs + pos, n);
        b_close(out);
        pos += n;
    }
}


static struct hello_opts
fixture_opts(void)
{
    return (struct hello_opts){
        .server_name = "example.com",
        .alpn = {"h2", "http/1.1"},
        .n_alpn = 2,
        .versions = {0x3a3a, 0x0304, 0x0303},
        .n_versions = 3,
        .key_share_len = 32,
        .group = 0x001d,
    };
}


/* ---- feeding helpers ---------------------------------------------- */


/* Feeds data placed flush against the guard page. */
static enum tls_hello_rc
feed_guarded(struct tls_hello *h, struct guardpage *g, const uint8_t *data,
             size_t len, bool bare)
{
    const uint8_t *p = guardpage_place(g, data, len);

    assert_non_null(p);
    return bare ? tls_hello_feed_handshake(h, p, len)
                : tls_hello_feed(h, p, len);
}


static enum tls_hello_rc
parse_whole(struct tls_hello *h, struct guardpage *g, const uint8_t *data,
            size_t len, bool bare)
{
    tls_hello_init(h);
    return feed_guarded(h, g, data, len, bare);
}


/*
 * Feeds data in chunks of chunk bytes, each flush against the guard page,
 * and checks that every call before the last one returned NEED_MORE
 * unless the outcome was already decided.
 */
static enum tls_hello_rc
parse_chunked(struct tls_hello *h, struct guardpage *g, const uint8_t *data,
              size_t len, size_t chunk, bool bare)
{
    enum tls_hello_rc rc = TLS_HELLO_NEED_MORE;

    tls_hello_init(h);
    for (size_t pos = 0; pos < len; pos += chunk) {
        const size_t n = len - pos < chunk ? len - pos : chunk;
        const enum tls_hello_rc prev = rc;
        rc = feed_guarded(h, g, data + pos, n, bare);
        if (prev != TLS_HELLO_NEED_MORE) {
            assert_int_equal(rc, prev); /* sticky */
        }
    }
    return rc;
}


static void
assert_expect(const struct tls_hello *h, const struct expect *e)
{
    assert_string_equal(h->reason, "ok");
    if (e->server_name != NULL) {
        assert_true(h->has_sni);
        assert_int_equal(h->server_name_len, strlen(e->server_name));
        assert_string_equal(h->server_name, e->server_name);
    } else {
        assert_false(h->has_sni);
        assert_int_equal(h->server_name_len, 0);
        assert_string_equal(h->server_name, "");
    }
    assert_int_equal(h->alpn_len, strlen(e->alpn));
    assert_string_equal(h->alpn, e->alpn);
    assert_int_equal(h->version, e->version);
    assert_int_equal(h->has_ech, e->has_ech);
    assert_false(h->is_sslv2);
}


static void
assert_same_results(const struct tls_hello *a, const struct tls_hello *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->has_sni, b->has_sni);
    assert_int_equal(a->server_name_len, b->server_name_len);
    assert_memory_equal(a->server_name, b->server_name, a->server_name_len + 1);
    assert_int_equal(a->alpn_len, b->alpn_len);
    assert_memory_equal(a->alpn, b->alpn, a->alpn_len + 1);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->has_ech, b->has_ech);
    assert_int_equal(a->is_sslv2, b->is_sslv2);
}


static void
assert_fixture_results(const struct tls_hello *h)
{
    assert_expect(h, &fixture_expect);
}


/*
 * The core recipe on one complete hello: whole, every split point in two
 * calls, byte by byte, and every truncation is NEED_MORE.
 */
static void
check_all_ways(struct guardpage *g, const uint8_t *data, size_t len, bool bare,
               const struct expect *e)
{
    struct tls_hello whole, h;

    assert_int_equal(parse_whole(&whole, g, data, len, bare), TLS_HELLO_DONE);
    assert_expect(&whole, e);

    for (size_t split = 0; split <= len; split++) {
        tls_hello_init(&h);
        const enum tls_hello_rc first = feed_guarded(&h, g, data, split, bare);
        if (split < len) {
            assert_int_equal(first, TLS_HELLO_NEED_MORE);
        }
        assert_int_equal(feed_guarded(&h, g, data + split, len - split, bare),
                         TLS_HELLO_DONE);
        assert_same_results(&h, &whole);
    }

    assert_int_equal(parse_chunked(&h, g, data, len, 1, bare), TLS_HELLO_DONE);
    assert_same_results(&h, &whole);
    assert_int_equal(parse_chunked(&h, g, data, len, 7, bare), TLS_HELLO_DONE);
    assert_same_results(&h, &whole);

    for (size_t n = 0; n < len; n++) {
        assert_int_equal(parse_whole(&h, g, data, n, bare),
                         TLS_HELLO_NEED_MORE);
        assert_string_equal(h.reason, "ok");
    }
}


/* Whole and byte by byte must both end in want. */
static void
check_rc(struct guardpage *g, const uint8_t *data, size_t len, bool bare,
         enum tls_hello_rc want)
{
    struct tls_hello whole, h;

    assert_int_equal(parse_whole(&whole, g, data, len, bare), want);
    assert_int_equal(parse_chunked(&h, g, data, len, 1, bare), want);
    assert_same_results(&h, &whole);
}


/* Builds a hello from o, in one record, and checks its outcome. */
static void
check_hello_opts(struct guardpage *g, const struct hello_opts *o,
                 enum tls_hello_rc want, const char *reason)
{
    struct builder hs = {0}, rec = {0};
    struct tls_hello h;

    build_hello(&hs, o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_rc(g, rec.buf, rec.len, false, want);
    check_rc(g, hs.buf, hs.len, true, want);
    assert_int_equal(parse_whole(&h, g, rec.buf, rec.len, false), want);
    assert_string_equal(h.reason, reason);
}


static size_t
find_bytes(const uint8_t *hay, size_t hay_len, const char *s)
{
    const size_t n = strlen(s);

    for (size_t i = 0; i + n <= hay_len; i++) {
        if (memcmp(hay + i, s, n) == 0) {
            return i;
        }
    }
    fail_msg("\"%s\" not found", s);
    return 0;
}


/* ---- tests -------------------------------------------------------- */


static void
test_builder_matches_fixture(void **state)
{
    (void)state;
    const struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};

    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    assert_int_equal(rec.len, sizeof(fixture_hello));
    assert_memory_equal(rec.buf, fixture_hello, sizeof(fixture_hello));
}


static void
test_whole_hello_one_call(void **state)
{
    struct tls_hello h;

    assert_int_equal(
        parse_whole(&h, *state, fixture_hello, sizeof(fixture_hello), false),
        TLS_HELLO_DONE);
    assert_fixture_results(&h);
    assert_string_equal(tls_hello_protocol_name(h.version), "TLSv1.3");
}


static void
test_every_split_byte_by_byte_truncation(void **state)
{
    check_all_ways(*state, fixture_hello, sizeof(fixture_hello), false,
                   &fixture_expect);
}


static void
test_bare_handshake_stream(void **state)
{
    check_all_ways(*state, fixture_hello + REC_HDR_LEN,
                   sizeof(fixture_hello) - REC_HDR_LEN, true, &fixture_expect);
}


static void
test_real_openssl_capture(void **state)
{
    const uint8_t *hs = openssl_hello + REC_HDR_LEN;
    const size_t hs_len = sizeof(openssl_hello) - REC_HDR_LEN;
    struct tls_hello h;

    check_all_ways(*state, openssl_hello, sizeof(openssl_hello), false,
                   &fixture_expect);
    check_all_ways(*state, hs, hs_len, true, &fixture_expect);
    for (size_t k = 1; k < hs_len; k++) {
        struct builder rec = {0};
        const size_t sizes[] = {k};
        build_records(&rec, hs, hs_len, sizes, 1);
        assert_int_equal(parse_chunked(&h, *state, rec.buf, rec.len, 1, false),
                         TLS_HELLO_DONE);
        assert_fixture_results(&h);
    }
}


/* Two records: every split point of the handshake message. */
static void
test_two_records_every_split(void **state)
{
    const uint8_t *hs = fixture_hello + REC_HDR_LEN;
    const size_t hs_len = sizeof(fixture_hello) - REC_HDR_LEN;
    struct tls_hello h;

    for (size_t k = 1; k < hs_len; k++) {
        struct builder rec = {0};
        const size_t sizes[] = {k};
        build_records(&rec, hs, hs_len, sizes, 1);
        assert_int_equal(rec.len, hs_len + 2 * REC_HDR_LEN);
        assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                         TLS_HELLO_DONE);
        assert_fixture_results(&h);
        assert_int_equal(parse_chunked(&h, *state, rec.buf, rec.len, 1, false),
                         TLS_HELLO_DONE);
        assert_fixture_results(&h);
        for (size_t n = 0; n < rec.len; n++) {
            assert_int_equal(parse_whole(&h, *state, rec.buf, n, false),
                             TLS_HELLO_NEED_MORE);
        }
    }
}


/* Three records: every pair of split points. */
static void
test_three_records_every_split(void **state)
{
    const uint8_t *hs = fixture_hello + REC_HDR_LEN;
    const size_t hs_len = sizeof(fixture_hello) - REC_HDR_LEN;
    struct tls_hello h;

    for (size_t i = 1; i < hs_len; i++) {
        for (size_t j = 1; i + j < hs_len; j++) {
            struct builder rec = {0};
            const size_t sizes[] = {i, j};
            build_records(&rec, hs, hs_len, sizes, 2);
            assert_int_equal(rec.len, hs_len + 3 * REC_HDR_LEN);
            assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                             TLS_HELLO_DONE);
            assert_fixture_results(&h);
        }
    }
}


/*
 * Named record boundaries: inside the 4-byte handshake header, and inside
 * the host name, in 2 and 3 records, fed whole and byte by byte.
 */
static void
test_records_split_in_header_and_sni(void **state)
{
    const uint8_t *hs = fixture_hello + REC_HDR_LEN;
    const size_t hs_len = sizeof(fixture_hello) - REC_HDR_LEN;
    const size_t in_name = find_bytes(hs, hs_len, "example.com") + 4;
    const size_t cases[][2] = {
        {2, 0},           /* 01 00 | 00 b2 ... */
        {in_name, 0},     /* ...exam | ple.com... */
        {2, in_name - 2}, /* 3 records: both boundaries */
        {1, 1},           /* 3 records, 1-byte fragments first */
    };
    struct tls_hello h;

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct builder rec = {0};
        const size_t n_sizes = cases[c][1] == 0 ? 1 : 2;
        build_records(&rec, hs, hs_len, cases[c], n_sizes);
        assert_int_equal(rec.len, hs_len + (n_sizes + 1) * REC_HDR_LEN);
        check_all_ways(*state, rec.buf, rec.len, false, &fixture_expect);
        assert_int_equal(parse_chunked(&h, *state, rec.buf, rec.len, 3, false),
                         TLS_HELLO_DONE);
        assert_fixture_results(&h);
    }
}


/*
 * +-1 on every length field, in the bare stream and in one record. A
 * length the parser reads must give MALFORMED or NEED_MORE, never DONE; a
 * length inside data the parser skips (key_share internals) must not
 * matter. Raising the record length lets the hello end inside the record,
 * which is DONE with the same results.
 */
static void
test_length_fields_plus_minus_one(void **state)
{
    const struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    struct tls_hello h, ref;

    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    assert_int_equal(parse_whole(&ref, *state, rec.buf, rec.len, false),
                     TLS_HELLO_DONE);

    for (size_t i = 0; i < hs.n_lens; i++) {
        const struct len_field *f = &hs.lens[i];
        for (int delta = -1; delta <= 1; delta += 2) {
            struct builder m = rec;
            uint32_t v = 0;
            const size_t off = f->off + REC_HDR_LEN;
            for (size_t k = 0; k < f->size; k++) {
                v = (v << 8) | m.buf[off + k];
            }
            v = (uint32_t)((int64_t)v + delta);
            for (size_t k = 0; k < f->size; k++) {
                m.buf[off + k] = (uint8_t)(v >> (8 * (f->size - 1 - k)));
            }

            const enum tls_hello_rc rc =
                parse_whole(&h, *state, m.buf, m.len, false);
            if (f->parsed) {
                assert_true(rc == TLS_HELLO_MALFORMED ||
                            rc == TLS_HELLO_NEED_MORE);
                if (rc == TLS_HELLO_MALFORMED) {
                    assert_string_not_equal(h.reason, "ok");
                }
            } else {
                assert_int_equal(rc, TLS_HELLO_DONE);
                assert_same_results(&h, &ref);
            }
            check_rc(*state, m.buf, m.len, false, rc);
            check_rc(*state, m.buf + REC_HDR_LEN, m.len - REC_HDR_LEN, true,
                     rc);
        }
    }

    /* The record length itself. */
    for (int delta = -1; delta <= 1; delta += 2) {
        struct builder m = rec;
        const size_t v = (size_t)((m.buf[3] << 8 | m.buf[4]) + delta);
        m.buf[3] = (uint8_t)(v >> 8);
        m.buf[4] = (uint8_t)v;
        const enum tls_hello_rc rc =
            parse_whole(&h, *state, m.buf, m.len, false);
        if (delta > 0) {
            assert_int_equal(rc, TLS_HELLO_DONE);
            assert_same_results(&h, &ref);
        } else {
            /* The hello's last byte is read as a record type: 0x5f. */
            assert_int_equal(rc, TLS_HELLO_MALFORMED);
        }
        check_rc(*state, m.buf, m.len, false, rc);
    }
}


static void
test_no_sni(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    const struct expect e = {NULL, "h2,http/1.1", 0x0304, false};

    o.server_name = NULL;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);
}


static void
test_no_extensions_block(void **state)
{
    const struct hello_opts o = {.no_extensions = true};
    struct builder hs = {0}, rec = {0};
    const struct expect e = {NULL, "", 0x0303, false};

    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);
}


static void
test_empty_extensions_block(void **state)
{
    struct builder hs = {0}, rec = {0};
    const struct hello_opts o = {.no_extensions = true};
    const struct expect e = {NULL, "", 0x0303, false};

    build_hello(&hs, &o);
    /* Append extensions<0> and grow the message length by 2. */
    b_u16(&hs, 0);
    hs.buf[3] = (uint8_t)(hs.buf[3] + 2);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);
}


static void
test_sslv2_hello(void **state)
{
    struct tls_hello h;
    uint8_t v31[sizeof(sslv2_hello)];

    check_rc(*state, sslv2_hello, sizeof(sslv2_hello), false, TLS_HELLO_DONE);
    assert_int_equal(
        parse_whole(&h, *state, sslv2_hello, sizeof(sslv2_hello), false),
        TLS_HELLO_DONE);
    assert_true(h.is_sslv2);
    assert_false(h.has_sni);
    assert_int_equal(h.server_name_len, 0);
    assert_int_equal(h.version, 0x0002);
    assert_string_equal(tls_hello_protocol_name(h.version), "SSLv2");
    assert_string_equal(h.reason, "ok");

    /* Decided after the version, 5 bytes in. */
    for (size_t n = 0; n < 5; n++) {
        assert_int_equal(parse_whole(&h, *state, sslv2_hello, n, false),
                         TLS_HELLO_NEED_MORE);
    }
    assert_int_equal(parse_whole(&h, *state, sslv2_hello, 5, false),
                     TLS_HELLO_DONE);

    /* An SSLv2-framed hello offering TLS 1.0. */
    memcpy(v31, sslv2_hello, sizeof(v31));
    v31[3] = 0x03;
    v31[4] = 0x01;
    assert_int_equal(parse_whole(&h, *state, v31, sizeof(v31), false),
                     TLS_HELLO_DONE);
    assert_true(h.is_sslv2);
    assert_int_equal(h.version, 0x0301);
    assert_string_equal(tls_hello_protocol_name(h.version), "TLSv1");

    /* SSLv2 framing, but not a CLIENT-HELLO, or an unknown version. */
    v31[2] = 0x02;
    check_rc(*state, v31, sizeof(v31), false, TLS_HELLO_NOT_TLS);
    v31[2] = 0x01;
    v31[3] = 0x05;
    check_rc(*state, v31, sizeof(v31), false, TLS_HELLO_NOT_TLS);
}


static void
test_not_tls(void **state)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    static const uint8_t zeros[64] = {0};
    static const uint8_t major2[] = {0x16, 0x02, 0x00, 0x00, 0x05};
    static const uint8_t server_hello[] = {
        0x16, 0x03, 0x03, 0x00, 0x04, /* handshake record, 4 bytes */
        0x02, 0x00, 0x00, 0x00,       /* msg_type 2: server_hello */
    };
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    struct tls_hello h;

    check_rc(*state, (const uint8_t *)http, strlen(http), false,
             TLS_HELLO_NOT_TLS);
    assert_int_equal(parse_whole(&h, *state, (const uint8_t *)http, 1, false),
                     TLS_HELLO_NOT_TLS);
    assert_string_equal(h.reason, "not a TLS handshake record");
    check_rc(*state, zeros, sizeof(zeros), false, TLS_HELLO_NOT_TLS);
    check_rc(*state, major2, sizeof(major2), false, TLS_HELLO_NOT_TLS);
    check_rc(*state, server_hello, sizeof(server_hello), false,
             TLS_HELLO_NOT_TLS);
    assert_int_equal(
        parse_whole(&h, *state, server_hello, sizeof(server_hello), false),
        TLS_HELLO_NOT_TLS);
    assert_string_equal(h.reason, "handshake message is not a ClientHello");
    check_rc(*state, alert, sizeof(alert), false, TLS_HELLO_NOT_TLS);
    check_rc(*state, server_hello + REC_HDR_LEN, 4, true, TLS_HELLO_NOT_TLS);
}


static void
test_record_length_limits(void **state)
{
    static const uint8_t over[] = {0x16, 0x03, 0x01, 0x40, 0x01, 0x01};
    static const uint8_t max[] = {0x16, 0x03, 0x01, 0x40, 0x00, 0x01};
    static const uint8_t empty[] = {0x16, 0x03, 0x01, 0x00, 0x00, 0x16};
    struct tls_hello h;

    assert_int_equal(parse_whole(&h, *state, over, sizeof(over), false),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "record length over 16384");
    /* Decided on the 5th header byte, before any payload. */
    assert_int_equal(parse_whole(&h, *state, over, 5, false),
                     TLS_HELLO_MALFORMED);
    check_rc(*state, max, sizeof(max), false, TLS_HELLO_NEED_MORE);
    check_rc(*state, empty, sizeof(empty), false, TLS_HELLO_MALFORMED);
}


/* A record of another type (or bad version) before the hello ends. */
static void
test_later_record_not_handshake(void **state)
{
    const uint8_t *hs = fixture_hello + REC_HDR_LEN;
    const size_t hs_len = sizeof(fixture_hello) - REC_HDR_LEN;
    const size_t sizes[] = {40};
    struct builder rec = {0};
    struct tls_hello h;

    build_records(&rec, hs, hs_len, sizes, 1);
    const size_t second = REC_HDR_LEN + 40;
    assert_int_equal(rec.buf[second], 0x16);

    rec.buf[second] = 0x17; /* application_data */
    check_rc(*state, rec.buf, rec.len, false, TLS_HELLO_MALFORMED);
    assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason,
                        "non-handshake record before the ClientHello ended");

    rec.buf[second] = 0x16;
    rec.buf[second + 1] = 0x02;
    check_rc(*state, rec.buf, rec.len, false, TLS_HELLO_MALFORMED);

    rec.buf[second + 1] = 0x03;
    rec.buf[second + 3] = 0x00;
    rec.buf[second + 4] = 0x00;
    check_rc(*state, rec.buf, rec.len, false, TLS_HELLO_MALFORMED);
}


static void
test_duplicate_extension(void **state)
{
    struct hello_opts o = fixture_opts();

    o.dup_extension = true;
    check_hello_opts(*state, &o, TLS_HELLO_MALFORMED, "duplicate extension");
}


static void
test_server_name_entries(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};

    o.second_host_name = true;
    check_hello_opts(*state, &o, TLS_HELLO_MALFORMED, "two host_name entries");

    /* An entry of an unknown name_type is skipped. */
    o = fixture_opts();
    o.unknown_name_type = true;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &fixture_expect);

    o = fixture_opts();
    o.server_name = "";
    check_hello_opts(*state, &o, TLS_HELLO_MALFORMED, "empty server name");
}


/* 255 bytes are kept; 256 are MALFORMED. Bytes are kept raw. */
static void
test_server_name_length_limit(void **state)
{
    char name[TLS_HELLO_NAME_MAX + 2];
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    struct expect e = fixture_expect;

    memset(name, 'a', sizeof(name));
    name[TLS_HELLO_NAME_MAX] = '\0';
    o.server_name = name;
    e.server_name = name;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);

    name[TLS_HELLO_NAME_MAX] = 'a';
    name[TLS_HELLO_NAME_MAX + 1] = '\0';
    check_hello_opts(*state, &o, TLS_HELLO_MALFORMED,
                     "server name longer than 255 bytes");

    o.server_name = "ExAmPle.COM.";
    e.server_name = "ExAmPle.COM.";
    hs = (struct builder){0};
    rec = (struct builder){0};
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);
}


static void
test_alpn_joined(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    struct expect e = fixture_expect;

    o.alpn[0] = "h3";
    o.alpn[1] = "h2";
    o.alpn[2] = "http/1.1";
    o.alpn[3] = "acme-tls/1";
    o.n_alpn = 4;
    e.alpn = "h3,h2,http/1.1,acme-tls/1";
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);

    o = fixture_opts();
    o.alpn[1] = "";
    o.n_alpn = 2;
    check_hello_opts(*state, &o, TLS_HELLO_MALFORMED,
                     "empty ALPN protocol name");
}


/* A list longer than TLS_HELLO_ALPN_MAX keeps the protocols that fit. */
static void
test_alpn_truncated_at_boundary(void **state)
{
    char p200[201], q200[201], r200[201];
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    struct tls_hello h;

    memset(p200, 'p', 200);
    memset(q200, 'q', 200);
    memset(r200, 'r', 200);
    p200[200] = q200[200] = r200[200] = '\0';
    o.alpn[0] = p200;
    o.alpn[1] = q200;
    o.alpn[2] = r200; /* 200+1+200+1+200 = 602 > 511: dropped */
    o.alpn[3] = "h2"; /* would fit, but comes after a dropped one */
    o.n_alpn = 4;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_rc(*state, rec.buf, rec.len, false, TLS_HELLO_DONE);
    assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                     TLS_HELLO_DONE);
    assert_int_equal(h.alpn_len, 401);
    assert_int_equal(strlen(h.alpn), 401);
    assert_memory_equal(h.alpn, p200, 200);
    assert_int_equal(h.alpn[200], ',');
    assert_memory_equal(h.alpn + 201, q200, 200);

    /* Exactly 511 bytes fit: 255 + 1 + 255. */
    char a255[256], b255[256];
    memset(a255, 'a', 255);
    memset(b255, 'b', 255);
    a255[255] = b255[255] = '\0';
    o.alpn[0] = a255;
    o.alpn[1] = b255;
    o.alpn[2] = "x";
    o.n_alpn = 3;
    hs = (struct builder){0};
    rec = (struct builder){0};
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    assert_int_equal(parse_chunked(&h, *state, rec.buf, rec.len, 1, false),
                     TLS_HELLO_DONE);
    assert_int_equal(h.alpn_len, TLS_HELLO_ALPN_MAX);
    assert_int_equal(h.alpn[255], ',');
    assert_int_equal(h.alpn[TLS_HELLO_ALPN_MAX], '\0');
}


static void
test_supported_versions(void **state)
{
    const struct {
        uint16_t versions[4];
        size_t n;
        uint16_t want;
    } cases[] = {
        {{0x8a8a, 0x0304, 0x0303}, 3, 0x0304},
        {{0x0303, 0x0304, 0xfafa}, 3, 0x0304}, /* order does not matter */
        {{0x0303}, 1, 0x0303},
        {{0x0302, 0x0301}, 2, 0x0302},
        {{0x1a1a}, 1, 0x0303}, /* only GREASE: legacy_version */
        {{0x0a0a, 0x0300}, 2, 0x0300},
    };
    struct tls_hello h;

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct hello_opts o = fixture_opts();
        struct builder hs = {0}, rec = {0};
        memcpy(o.versions, cases[c].versions, sizeof(cases[c].versions));
        o.n_versions = cases[c].n;
        build_hello(&hs, &o);
        build_records(&rec, hs.buf, hs.len, NULL, 0);
        assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                         TLS_HELLO_DONE);
        assert_int_equal(h.version, cases[c].want);
    }

    /* No supported_versions: legacy_version (TLS 1.2). */
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    o.n_versions = 0;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                     TLS_HELLO_DONE);
    assert_int_equal(h.version, 0x0303);
    assert_string_equal(tls_hello_protocol_name(h.version), "TLSv1.2");
}


static void
test_grease_and_ech(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};
    struct expect e = fixture_expect;

    o.grease = true;
    o.ech = true;
    e.has_ech = true;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);

    /* GREASE alone leaves has_ech false. */
    o.ech = false;
    e.has_ech = false;
    hs = (struct builder){0};
    rec = (struct builder){0};
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &e);
}


/* Chrome-sized: X25519MLKEM768 (0x11ec) share of 1216 bytes + x25519. */
static void
test_post_quantum_key_share(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0}, two = {0};
    struct tls_hello h;
    const size_t sizes[] = {700};

    o.key_share_len = 1216;
    o.group = 0x11ec;
    o.grease = true;
    o.ech = true;
    o.padding = 180;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    assert_true(rec.len > 1750 && rec.len < 1900);

    const struct expect e = {"example.com", "h2,http/1.1", 0x0304, true};
    check_all_ways(*state, rec.buf, rec.len, false, &e);
    build_records(&two, hs.buf, hs.len, sizes, 1);
    assert_int_equal(parse_chunked(&h, *state, two.buf, two.len, 1, false),
                     TLS_HELLO_DONE);
    assert_expect(&h, &e);
    assert_int_equal(parse_chunked(&h, *state, two.buf, two.len, 1460, false),
                     TLS_HELLO_DONE);
    assert_expect(&h, &e);
}


/* Hellos of several KB, over several records, parse without a cap. */
static void
test_large_hello(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0}, small = {0};
    struct tls_hello h;
    const size_t sizes[] = {4096, 4096};

    o.padding = 18000;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    assert_true(rec.len > 16384 + 2 * REC_HDR_LEN);
    assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                     TLS_HELLO_DONE);
    assert_fixture_results(&h);
    assert_int_equal(parse_chunked(&h, *state, rec.buf, rec.len, 1, false),
                     TLS_HELLO_DONE);
    assert_fixture_results(&h);
    build_records(&small, hs.buf, hs.len, sizes, 2);
    assert_int_equal(
        parse_chunked(&h, *state, small.buf, small.len, 1000, false),
        TLS_HELLO_DONE);
    assert_fixture_results(&h);
}


static void
test_extension_count_limit(void **state)
{
    struct hello_opts o = fixture_opts();
    struct builder hs = {0}, rec = {0};

    /* The fixture has 5 extensions. */
    o.extra_exts = TLS_HELLO_EXT_MAX - 5;
    build_hello(&hs, &o);
    build_records(&rec, hs.buf, hs.len, NULL, 0);
    check_all_ways(*state, rec.buf, rec.len, false, &fixture_expect);

    o.extra_exts++;
    check_hello_opts(*state, &o, TLS_HELLO_MALFORMED, "over 128 extensions");
}


/* Fixed-field rules: session_id, cipher_suites, compression_methods. */
static void
test_fixed_field_rules(void **state)
{
    struct builder hs = {0};
    const struct hello_opts o = {.no_extensions = true};
    struct tls_hello h;
    /* Offsets in the bare handshake message. */
    const size_t sid = 4 + 2 + 32, cs = sid + 1 + 32, cm = cs + 2 + 6;

    build_hello(&hs, &o);
    assert_int_equal(hs.buf[sid], 32);
    assert_int_equal(hs.buf[cm], 1);
    check_rc(*state, hs.buf, hs.len, true, TLS_HELLO_DONE);

    struct builder m = hs;
    m.buf[sid] = 33;
    assert_int_equal(parse_whole(&h, *state, m.buf, m.len, true),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "session_id over 32 bytes");

    m = hs;
    m.buf[cs + 1] = 5;
    assert_int_equal(parse_whole(&h, *state, m.buf, m.len, true),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "cipher_suites length is odd");

    /*
     * No cipher suites and no compression methods: RFC 8446 forbids it,
     * nginx reads it (nginx-tests' stream_ssl_preread_protocol.t sends
     * such hellos), and we only route by the hello: its name is found.
     */
    static const uint8_t bare[] = {
        0x01, 0x00, 0x00, 0x34, /* ClientHello, 52 bytes */
        0x03, 0x03,             /* legacy_version */
        0xeb, 0x63, 0x57, 0xcd, 0xba, 0xa6, 0xb8, 0xd8, 0x53, 0xf1, 0xf6,
        0xac, 0x0f, 0xdf, 0x03, 0x17, 0x8c, 0x0a, 0xe4, 0x18, 0x24, 0xe7,
        0x64, 0x36, 0x82, 0x3c, 0x1b, 0x27, 0x3f, 0xbf, 0xde, 0x4b, /* random */
        0x00,                   /* session_id: none */
        0x00, 0x00,             /* cipher_suites: none */
        0x00,                   /* compression_methods: none */
        0x00, 0x0c,             /* extensions: 12 bytes */
        0x00, 0x00, 0x00, 0x08, /* server_name, 8 bytes */
        0x00, 0x06, 0x00, 0x00, 0x03, 'f', 'o', 'o',
    };
    assert_int_equal(parse_whole(&h, *state, bare, sizeof(bare), true),
                     TLS_HELLO_DONE);
    assert_int_equal(h.server_name_len, 3);
    assert_memory_equal(h.server_name, "foo", 3);

    /* A message too short for its own random. */
    static const uint8_t tiny[] = {0x01, 0x00, 0x00, 0x03, 0x03, 0x03, 0x00};
    check_rc(*state, tiny, sizeof(tiny), true, TLS_HELLO_MALFORMED);
    static const uint8_t zero_len[] = {0x01, 0x00, 0x00, 0x00, 0x03};
    check_rc(*state, zero_len, sizeof(zero_len), true, TLS_HELLO_MALFORMED);
}


/* Appends ext_block to a hello without extensions and fixes its length. */
static enum tls_hello_rc
parse_with_ext_block(struct tls_hello *h, struct guardpage *g,
                     const uint8_t *ext_block, size_t len)
{
    const struct hello_opts o = {.no_extensions = true};
    struct builder hs = {0};

    build_hello(&hs, &o);
    b_bytes(&hs, ext_block, len);
    hs.buf[1] = (uint8_t)((hs.len - 4) >> 16);
    hs.buf[2] = (uint8_t)((hs.len - 4) >> 8);
    hs.buf[3] = (uint8_t)(hs.len - 4);
    check_rc(g, hs.buf, hs.len, true, parse_whole(h, g, hs.buf, hs.len, true));
    return parse_whole(h, g, hs.buf, hs.len, true);
}


/* Vectors and lists whose length does not fit, or is below the minimum. */
static void
test_short_vectors_and_lists(void **state)
{
    static const uint8_t sni_empty_list[] = {
        0x00, 0x06,             /* extensions length: 6 */
        0x00, 0x00, 0x00, 0x02, /* server_name, 2 bytes */
        0x00, 0x00,             /* ServerNameList length: 0 */
    };
    static const uint8_t alpn_short_list[] = {
        0x00, 0x07,             /* extensions length: 7 */
        0x00, 0x10, 0x00, 0x03, /* ALPN, 3 bytes */
        0x00, 0x01,             /* ProtocolNameList length: 1 */
        0x00,                   /* an empty ProtocolName */
    };
    static const uint8_t sv_odd[] = {
        0x00, 0x08,             /* extensions length: 8 */
        0x00, 0x2b, 0x00, 0x04, /* supported_versions, 4 bytes */
        0x03,                   /* versions length: 3, odd */
        0x03, 0x04, 0x03,
    };
    static const uint8_t ext_overrun[] = {
        0x00, 0x04,             /* extensions length: 4 */
        0x00, 0x17, 0x00, 0x01, /* extended_master_secret, 1 byte: over */
    };
    /* clang-format off */
    static const uint8_t sid_overrun[] = {
        0x01, 0x00, 0x00, 0x23, /* client_hello, length 35 */
        0x03, 0x03,             /* legacy_version */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* random */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x20,                   /* session_id length 32: nothing left */
    };
    static const uint8_t cm_overrun[] = {
        0x01, 0x00, 0x00, 0x29, /* client_hello, length 41 */
        0x03, 0x03,             /* legacy_version */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* random */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0x00,                   /* session_id length 0 */
        0x00, 0x02, 0x13, 0x01, /* cipher_suites: TLS_AES_128_GCM_SHA256 */
        0x05, 0x00,             /* compression length 5: 1 byte left */
    };
    /* clang-format on */
    struct tls_hello h;

    assert_int_equal(parse_with_ext_block(&h, *state, sni_empty_list,
                                          sizeof(sni_empty_list)),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "server_name list is empty");
    assert_int_equal(parse_with_ext_block(&h, *state, alpn_short_list,
                                          sizeof(alpn_short_list)),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "ALPN list under 2 bytes");
    assert_int_equal(parse_with_ext_block(&h, *state, sv_odd, sizeof(sv_odd)),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason,
                        "supported_versions length is under 2 or odd");
    assert_int_equal(
        parse_with_ext_block(&h, *state, ext_overrun, sizeof(ext_overrun)),
        TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "extension overruns the extensions block");

    check_rc(*state, sid_overrun, sizeof(sid_overrun), true,
             TLS_HELLO_MALFORMED);
    assert_int_equal(
        parse_whole(&h, *state, sid_overrun, sizeof(sid_overrun), true),
        TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "session_id overruns the ClientHello");
    check_rc(*state, cm_overrun, sizeof(cm_overrun), true, TLS_HELLO_MALFORMED);
    assert_int_equal(
        parse_whole(&h, *state, cm_overrun, sizeof(cm_overrun), true),
        TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason,
                        "compression_methods overrun the ClientHello");
}


/* The extensions block must end exactly where the message ends. */
static void
test_extensions_must_end_with_message(void **state)
{
    struct builder hs = {0};
    const struct hello_opts o = fixture_opts();
    struct tls_hello h;

    build_hello(&hs, &o);
    /* One trailing byte inside the message, after the extensions. */
    struct builder m = hs;
    b_u8(&m, 0);
    m.buf[3] = (uint8_t)(m.buf[3] + 1);
    assert_int_equal(parse_whole(&h, *state, m.buf, m.len, true),
                     TLS_HELLO_MALFORMED);
    assert_string_equal(h.reason, "extensions end before the ClientHello");
}


/* Outcomes are sticky; bytes after the hello are ignored. */
static void
test_sticky_and_trailing_bytes(void **state)
{
    static const uint8_t app_data[] = {0x17, 0x03, 0x03, 0x00, 0x01, 0xaa};
    struct builder rec = {0};
    struct tls_hello h;

    b_bytes(&rec, fixture_hello, sizeof(fixture_hello));
    b_bytes(&rec, app_data, sizeof(app_data));
    check_rc(*state, rec.buf, rec.len, false, TLS_HELLO_DONE);
    assert_int_equal(parse_whole(&h, *state, rec.buf, rec.len, false),
                     TLS_HELLO_DONE);
    assert_fixture_results(&h);
    assert_int_equal(
        feed_guarded(&h, *state, app_data, sizeof(app_data), false),
        TLS_HELLO_DONE);
    assert_fixture_results(&h);

    assert_int_equal(parse_whole(&h, *state, (const uint8_t *)"GET", 3, false),
                     TLS_HELLO_NOT_TLS);
    assert_int_equal(
        feed_guarded(&h, *state, fixture_hello, sizeof(fixture_hello), false),
        TLS_HELLO_NOT_TLS);

    /* A NULL buffer of length 0 is fine and changes nothing. */
    tls_hello_init(&h);
    assert_int_equal(tls_hello_feed(&h, NULL, 0), TLS_HELLO_NEED_MORE);
    assert_int_equal(
        feed_guarded(&h, *state, fixture_hello, sizeof(fixture_hello), false),
        TLS_HELLO_DONE);
    assert_fixture_results(&h);
}


static void
test_mixed_framing_refused(void **state)
{
    struct tls_hello h;

    tls_hello_init(&h);
    assert_int_equal(feed_guarded(&h, *state, fixture_hello, 10, false),
                     TLS_HELLO_NEED_MORE);
    assert_int_equal(feed_guarded(&h, *state, fixture_hello + 10, 10, true),
                     TLS_HELLO_MALFORMED);

    tls_hello_init(&h);
    assert_int_equal(
        feed_guarded(&h, *state, fixture_hello + REC_HDR_LEN, 10, true),
        TLS_HELLO_NEED_MORE);
    assert_int_equal(feed_guarded(&h, *state, fixture_hello, 10, false),
                     TLS_HELLO_MALFORMED);
}


static void
test_protocol_names(void **state)
{
    (void)state;
    assert_string_equal(tls_hello_protocol_name(0x0002), "SSLv2");
    assert_string_equal(tls_hello_protocol_name(0x0300), "SSLv3");
    assert_string_equal(tls_hello_protocol_name(0x0301), "TLSv1");
    assert_string_equal(tls_hello_protocol_name(0x0302), "TLSv1.1");
    assert_string_equal(tls_hello_protocol_name(0x0303), "TLSv1.2");
    assert_string_equal(tls_hello_protocol_name(0x0304), "TLSv1.3");
    assert_null(tls_hello_protocol_name(0x0305));
    assert_null(tls_hello_protocol_name(0x7f1c));
    assert_null(tls_hello_protocol_name(0x0a0a));
    assert_null(tls_hello_protocol_name(0));
}


int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_guard, teardown_guard)
    const struct CMUnitTest tests[] = {
        T(test_builder_matches_fixture),
        T(test_whole_hello_one_call),
        T(test_every_split_byte_by_byte_truncation),
        T(test_bare_handshake_stream),
        T(test_real_openssl_capture),
        T(test_two_records_every_split),
        T(test_three_records_every_split),
        T(test_records_split_in_header_and_sni),
        T(test_length_fields_plus_minus_one),
        T(test_no_sni),
        T(test_no_extensions_block),
        T(test_empty_extensions_block),
        T(test_sslv2_hello),
        T(test_not_tls),
        T(test_record_length_limits),
        T(test_later_record_not_handshake),
        T(test_duplicate_extension),
        T(test_server_name_entries),
        T(test_server_name_length_limit),
        T(test_alpn_joined),
        T(test_alpn_truncated_at_boundary),
        T(test_supported_versions),
        T(test_grease_and_ech),
        T(test_post_quantum_key_share),
        T(test_large_hello),
        T(test_extension_count_limit),
        T(test_fixed_field_rules),
        T(test_short_vectors_and_lists),
        T(test_extensions_must_end_with_message),
        T(test_sticky_and_trailing_bytes),
        T(test_mixed_framing_refused),
        T(test_protocol_names),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
