/* SPDX-License-Identifier: MIT */
/*
 * Incremental ClientHello parser in two layers. The record layer collects
 * each 5-byte record header, checks it and hands the payload bytes to the
 * handshake layer, so a hello may be split over any number of records and
 * each record over any number of reads. The handshake layer is a byte-
 * driven state machine: integer fields are assembled in h->field one byte at
 * a time, and every length-prefixed container (message, vector, extension,
 * list, item) is a counter in h->left[] that every consumed byte decrements.
 * A field is only read after checking that it fits in its innermost
 * container, and a container is only opened after checking that it fits in
 * its parent, so no length can make the parser read past what it declared.
 * Nothing is buffered but a partial record header, a partial integer and
 * the results, so input bytes are read exactly once and no pointer into
 * them outlives a call. Known limit: duplicate extensions are found by
 * remembering every type, so a hello may carry TLS_HELLO_EXT_MAX of them.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/tls_hello.h"


/*
 * Record layer, RFC 8446 §5.1 (and RFC 5246 §6.2.1):
 *
 *   +------+---------+---------+-------------------+
 *   | type | version | length  | fragment          |
 *   |  1   |    2    |    2    | length bytes      |
 *   +------+---------+---------+-------------------+
 *     22 = handshake; version major 3; length <= 2^14, never 0 for
 *     handshake records (RFC 8446 §5.1).
 */
#define REC_HDR_LEN 5
#define REC_TYPE_HANDSHAKE 22
#define REC_MAJOR 3
#define REC_LEN_MAX 16384

/*
 * SSLv2-compatible CLIENT-HELLO, RFC 5246 appendix E.2 (sent by old
 * clients that still speak SSLv2 framing):
 *
 *   +-------------------+----------+---------+----------------------+
 *   | 1, msg_length(15) | msg_type | version | cipher_spec_length...|
 *   |        2          |  1 (=1)  |    2    |                      |
 *   +-------------------+----------+---------+----------------------+
 *
 * It has no extensions, so no SNI. Like nginx we accept version major 0
 * (SSLv2 itself, 0x0002) or 3 and stop after the version.
 */
#define SSLV2_HIGH_BIT 0x80
#define SSLV2_CLIENT_HELLO 1

/*
 * Handshake layer, RFC 8446 §4 and §4.1.2:
 *
 *   Handshake:   msg_type(1) = 1 (client_hello) | length(3) | body
 *
 *   ClientHello body:
 *     legacy_version(2)
 *     random(32)
 *     legacy_session_id<0..32>            1-byte length
 *     cipher_suites<2..2^16-2>            2-byte length, even
 *     legacy_compression_methods<1..2^8-1> 1-byte length
 *     extensions<0..2^16-1>               2-byte length; the whole block may
 *                                         be absent (body ends here)
 *
 *   Extension (§4.2):  extension_type(2) | extension_data<0..2^16-1>
 *     Each type may appear once (§4.2: "MUST NOT be more than one").
 *
 *   server_name (0), RFC 6066 §3:
 *     ServerNameList<1..2^16-1> of { name_type(1) | HostName<1..2^16-1> }
 *     name_type 0 = host_name, at most one; other types are skipped.
 *
 *   application_layer_protocol_negotiation (16), RFC 7301 §3.1:
 *     ProtocolNameList<2..2^16-1> of ProtocolName<1..2^8-1>
 *
 *   supported_versions (43), RFC 8446 §4.2.1:
 *     ProtocolVersion versions<2..254>   1-byte length, 2 bytes each
 *     GREASE values (RFC 8701 §2: 0x0A0A, 0x1A1A, ... 0xFAFA) are ignored.
 *
 *   encrypted_client_hello (0xfe0d), draft-ietf-tls-esni: only noted.
 */
#define HS_CLIENT_HELLO 1
#define HS_RANDOM_LEN 32
#define HS_SESSION_ID_MAX 32
#define EXT_SERVER_NAME 0x0000
#define EXT_ALPN 0x0010
#define EXT_SUPPORTED_VERSIONS 0x002b
#define EXT_ECH 0xfe0d
#define SNI_HOST_NAME 0
#define ALPN_LIST_MIN 2
#define SV_LIST_MIN 2

/*
 * Containers tracked in h->left[], outermost first (h->open of them are
 * open): [0] the ClientHello body; [1] session_id, cipher_suites,
 * compression_methods or the extensions block; [2] one extension's data;
 * [3] a server_name, ALPN or supported_versions list; [4] one host name or
 * protocol name. TLS_HELLO_DEPTH is 5 for these five.
 */


/* Which API fed h first; the two framings cannot be mixed. */
enum hello_mode {
    MODE_UNSET = 0, /* nothing fed yet */
    MODE_RECORDS,   /* tls_hello_feed(): TLS records */
    MODE_HANDSHAKE, /* tls_hello_feed_handshake(): bare handshake stream */
};

/* Handshake-layer states, in wire order. */
enum hs_state {
    HS_MSG_TYPE = 0,      /* msg_type(1) */
    HS_MSG_LEN,           /* length(3); opens LV_MSG */
    HS_LEGACY_VERSION,    /* legacy_version(2) */
    HS_RANDOM,            /* random[32], skipped */
    HS_SESSION_ID_LEN,    /* session_id length(1) */
    HS_SESSION_ID,        /* session_id, skipped */
    HS_CIPHER_SUITES_LEN, /* cipher_suites length(2) */
    HS_CIPHER_SUITES,     /* cipher_suites, skipped */
    HS_COMPRESSION_LEN,   /* compression_methods length(1) */
    HS_COMPRESSION,       /* compression_methods, skipped */
    HS_EXTENSIONS_LEN,    /* extensions length(2) */
    HS_EXT_TYPE,          /* extension_type(2) */
    HS_EXT_LEN,           /* extension_data length(2); opens LV_EXT */
    HS_EXT_SKIP,          /* extension_data we do not read, skipped */
    HS_SNI_LIST_LEN,      /* ServerNameList length(2) */
    HS_SNI_TYPE,          /* name_type(1) */
    HS_SNI_NAME_LEN,      /* HostName length(2) */
    HS_SNI_NAME,          /* HostName bytes: copied if host_name */
    HS_ALPN_LIST_LEN,     /* ProtocolNameList length(2) */
    HS_ALPN_NAME_LEN,     /* ProtocolName length(1) */
    HS_ALPN_NAME,         /* ProtocolName bytes: copied while they fit */
    HS_SV_LIST_LEN,       /* versions length(1) */
    HS_SV_VERSION,        /* one ProtocolVersion(2) */
    HS_STATE_COUNT
};

/* How each state reads its bytes. */
struct hs_state_info {
    uint8_t size;        /* bytes of the big-endian integer; 0: bulk bytes */
    const char *overrun; /* reason when the integer overruns its container */
};


static enum tls_hello_rc hello_fail(struct tls_hello *h, enum tls_hello_rc rc,
                                    const char *reason);
static enum tls_hello_rc rec_feed(struct tls_hello *h, const uint8_t *data,
                                  size_t len);
static void rec_header_byte(struct tls_hello *h, uint8_t b);
static void hs_feed(struct tls_hello *h, const uint8_t *data, size_t len);
static void hs_bulk_bytes(struct tls_hello *h, const uint8_t *data, size_t pos,
                          size_t n);
static void hs_field_done(struct tls_hello *h, uint32_t v);
static void hs_bulk_done(struct tls_hello *h);
static void hs_extension_start(struct tls_hello *h, uint32_t len);
static void hs_extension_done(struct tls_hello *h);
static void hs_sni_name_len(struct tls_hello *h, uint32_t len);
static void hs_alpn_name_len(struct tls_hello *h, uint32_t len);
static void hs_sv_version(struct tls_hello *h, uint16_t v);
static bool hs_push(struct tls_hello *h, size_t len);
static void hs_pop(struct tls_hello *h);
static void hs_consume(struct tls_hello *h, size_t n);
static size_t hs_inner_left(const struct tls_hello *h);
static bool hello_is_grease(uint16_t v);


static const struct hs_state_info hs_info[HS_STATE_COUNT] = {
    [HS_MSG_TYPE] = {1, NULL},
    [HS_MSG_LEN] = {3, NULL},
    [HS_LEGACY_VERSION] = {2, "ClientHello too short for legacy_version"},
    [HS_RANDOM] = {0, NULL},
    [HS_SESSION_ID_LEN] = {1, "ClientHello too short for session_id"},
    [HS_SESSION_ID] = {0, NULL},
    [HS_CIPHER_SUITES_LEN] = {2, "ClientHello too short for cipher_suites"},
    [HS_CIPHER_SUITES] = {0, NULL},
    [HS_COMPRESSION_LEN] = {1, "ClientHello too short for compression"},
    [HS_COMPRESSION] = {0, NULL},
    [HS_EXTENSIONS_LEN] = {2, "extensions length overruns the ClientHello"},
    [HS_EXT_TYPE] = {2, "extension header overruns the extensions"},
    [HS_EXT_LEN] = {2, "extension header overruns the extensions"},
    [HS_EXT_SKIP] = {0, NULL},
    [HS_SNI_LIST_LEN] = {2, "server_name extension too short"},
    [HS_SNI_TYPE] = {1, NULL}, /* the list is never empty here */
    [HS_SNI_NAME_LEN] = {2, "server_name entry overruns its list"},
    [HS_SNI_NAME] = {0, NULL},
    [HS_ALPN_LIST_LEN] = {2, "ALPN extension too short"},
    [HS_ALPN_NAME_LEN] = {1, NULL}, /* the list is never empty here */
    [HS_ALPN_NAME] = {0, NULL},
    [HS_SV_LIST_LEN] = {1, "supported_versions extension too short"},
    [HS_SV_VERSION] = {2, NULL}, /* the list length is even */
};


void
tls_hello_init(struct tls_hello *h)
{
    memset(h, 0, sizeof(*h));
    h->reason = "ok";
    h->rc = TLS_HELLO_NEED_MORE;
    h->mode = MODE_UNSET;
    h->rec_is_first = true;
    h->hs_state = HS_MSG_TYPE;
}


enum tls_hello_rc
tls_hello_feed(struct tls_hello *h, const uint8_t *data, size_t len)
{
    if (h->rc != TLS_HELLO_NEED_MORE) {
        return h->rc;
    }
    if (h->mode == MODE_HANDSHAKE) {
        return hello_fail(h, TLS_HELLO_MALFORMED,
                          "tls_hello_feed() after tls_hello_feed_handshake()");
    }
    h->mode = MODE_RECORDS;
    if (len == 0) {
        return h->rc;
    }
    return rec_feed(h, data, len);
}


enum tls_hello_rc
tls_hello_feed_handshake(struct tls_hello *h, const uint8_t *data, size_t len)
{
    if (h->rc != TLS_HELLO_NEED_MORE) {
        return h->rc;
    }
    if (h->mode == MODE_RECORDS) {
        return hello_fail(h, TLS_HELLO_MALFORMED,
                          "tls_hello_feed_handshake() after tls_hello_feed()");
    }
    h->mode = MODE_HANDSHAKE;
    if (len == 0) {
        return h->rc;
    }
    hs_feed(h, data, len);
    return h->rc;
}


const char *
tls_hello_protocol_name(uint16_t version)
{
    switch (version) {
    case 0x0002:
        return "SSLv2";
    case 0x0300:
        return "SSLv3";
    case 0x0301:
        return "TLSv1";
    case 0x0302:
        return "TLSv1.1";
    case 0x0303:
        return "TLSv1.2";
    case 0x0304:
        return "TLSv1.3";
    default:
        return NULL;
    }
}


/* Records a final outcome; it is sticky, later feeds return it. */
static enum tls_hello_rc
hello_fail(struct tls_hello *h, enum tls_hello_rc rc, const char *reason)
{
    h->rc = rc;
    h->reason = reason;
    return rc;
}


/*
 * Splits len bytes (len > 0) into record headers, read one byte at a time
 * so each can be judged as soon as it arrives, and payload, passed on in
 * the largest runs the input and the record allow. Each pass consumes at
 * least one byte, so the loop is bounded by len.
 */
static enum tls_hello_rc
rec_feed(struct tls_hello *h, const uint8_t *data, size_t len)
{
    size_t pos = 0;

    while (pos < len && h->rc == TLS_HELLO_NEED_MORE) {
        if (h->rec_hdr_len < REC_HDR_LEN) {
            rec_header_byte(h, data[pos]);
            pos++;
            continue;
        }

        /* rec_left > 0 here: a zero-length record was refused. */
        size_t n = len - pos;
        if (n > h->rec_left) {
            n = h->rec_left;
        }
        hs_feed(h, data + pos, n);
        pos += n;
        h->rec_left -= n;
        if (h->rec_left == 0) {
            h->rec_hdr_len = 0;
            h->rec_is_first = false;
        }
    }
    return h->rc;
}


/*
 * Takes the next record-header byte and judges the header as far as it
 * goes. Only the first record may be SSLv2 or "not TLS": once a TLS
 * handshake record has been seen, a bad later header is MALFORMED.
 */
static void
rec_header_byte(struct tls_hello *h, uint8_t b)
{
    h->rec_hdr[h->rec_hdr_len++] = b;

    const bool first = h->rec_is_first;
    const bool sslv2 = first && h->rec_hdr[0] != REC_TYPE_HANDSHAKE;

    switch (h->rec_hdr_len) {
    case 1:
        if (b == REC_TYPE_HANDSHAKE) {
            return;
        }
        if (!first) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "non-handshake record before the ClientHello ended");
        } else if ((b & SSLV2_HIGH_BIT) == 0) {
            hello_fail(h, TLS_HELLO_NOT_TLS, "not a TLS handshake record");
        }
        return;

    case 2:
        if (!sslv2 && b != REC_MAJOR) {
            hello_fail(h, first ? TLS_HELLO_NOT_TLS : TLS_HELLO_MALFORMED,
                       "record version major is not 3");
        }
        return;

    case 3:
        if (sslv2 && b != SSLV2_CLIENT_HELLO) {
            hello_fail(h, TLS_HELLO_NOT_TLS,
                       "SSLv2 record is not a CLIENT-HELLO");
        }
        return;

    case 4:
        if (sslv2 && b != 0 && b != REC_MAJOR) {
            hello_fail(h, TLS_HELLO_NOT_TLS,
                       "SSLv2 CLIENT-HELLO with an unknown version");
        }
        return;

    default:
        break;
    }

    if (sslv2) {
        h->is_sslv2 = true;
        h->version = (uint16_t)((h->rec_hdr[3] << 8) | h->rec_hdr[4]);
        h->rc = TLS_HELLO_DONE;
        return;
    }

    h->rec_left = ((size_t)h->rec_hdr[3] << 8) | h->rec_hdr[4];
    if (h->rec_left == 0) {
        hello_fail(h, TLS_HELLO_MALFORMED, "empty handshake record");
    } else if (h->rec_left > REC_LEN_MAX) {
        hello_fail(h, TLS_HELLO_MALFORMED, "record length over 16384");
    }
}


/*
 * Runs the handshake state machine over len bytes. Each pass either
 * consumes at least one byte or closes a container; a container is only
 * opened by reading a length field, which consumed bytes, so the loop is
 * bounded by 2 * len + TLS_HELLO_DEPTH passes.
 */
static void
hs_feed(struct tls_hello *h, const uint8_t *data, size_t len)
{
    size_t pos = 0;

    while (h->rc == TLS_HELLO_NEED_MORE) {
        const struct hs_state_info *info = &hs_info[h->hs_state];

        if (info->size == 0) {
            size_t n = len - pos;
            if (n > hs_inner_left(h)) {
                n = hs_inner_left(h);
            }
            hs_bulk_bytes(h, data, pos, n);
            hs_consume(h, n);
            pos += n;
            if (hs_inner_left(h) > 0) {
                return; /* input used up inside the container */
            }
            hs_bulk_done(h);
            continue;
        }

        if (pos == len) {
            return;
        }
        if (h->field_len == 0) {
            if (h->open > 0 && info->size > hs_inner_left(h)) {
                hello_fail(h, TLS_HELLO_MALFORMED,
                           info->overrun != NULL
                               ? info->overrun
                               : "field overruns its container");
                return;
            }
            h->field = 0;
        }
        while (h->field_len < info->size && pos < len) {
            h->field = (h->field << 8) | data[pos];
            h->field_len++;
            pos++;
        }
        if (h->field_len < info->size) {
            return;
        }
        hs_consume(h, info->size);
        h->field_len = 0;
        hs_field_done(h, h->field);
    }
}


/* Keeps the bytes data[pos..pos+n) of a bulk state that we want. */
static void
hs_bulk_bytes(struct tls_hello *h, const uint8_t *data, size_t pos, size_t n)
{
    if (n == 0) {
        return;
    }
    if (h->hs_state == HS_SNI_NAME && h->name_type == SNI_HOST_NAME) {
        /* n <= HostName length <= TLS_HELLO_NAME_MAX, checked when read. */
        memcpy(h->server_name + h->server_name_len, data + pos, n);
        h->server_name_len += n;
        h->server_name[h->server_name_len] = '\0';
    } else if (h->hs_state == HS_ALPN_NAME && h->alpn_keep) {
        /* The whole name fits: checked in hs_alpn_name_len(). */
        memcpy(h->alpn + h->alpn_len, data + pos, n);
        h->alpn_len += n;
        h->alpn[h->alpn_len] = '\0';
    }
}


/* Acts on a complete integer field v of the current state. */
static void
hs_field_done(struct tls_hello *h, uint32_t v)
{
    switch (h->hs_state) {
    case HS_MSG_TYPE:
        if (v != HS_CLIENT_HELLO) {
            hello_fail(h, TLS_HELLO_NOT_TLS,
                       "handshake message is not a ClientHello");
            return;
        }
        h->hs_state = HS_MSG_LEN;
        return;

    case HS_MSG_LEN:
        (void)hs_push(h, v); /* outermost: nothing to overrun */
        h->hs_state = HS_LEGACY_VERSION;
        return;

    case HS_LEGACY_VERSION:
        h->version = (uint16_t)v;
        if (!hs_push(h, HS_RANDOM_LEN)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "ClientHello too short for random");
            return;
        }
        h->hs_state = HS_RANDOM;
        return;

    case HS_SESSION_ID_LEN:
        if (v > HS_SESSION_ID_MAX) {
            hello_fail(h, TLS_HELLO_MALFORMED, "session_id over 32 bytes");
        } else if (!hs_push(h, v)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "session_id overruns the ClientHello");
        } else {
            h->hs_state = HS_SESSION_ID;
        }
        return;

    case HS_CIPHER_SUITES_LEN:
        /* RFC 8446 wants at least one suite; nginx reads a hello with
         * none (nginx-tests do send one), and we only route by it. */
        if (v % 2 != 0) {
            hello_fail(h, TLS_HELLO_MALFORMED, "cipher_suites length is odd");
        } else if (!hs_push(h, v)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "cipher_suites overrun the ClientHello");
        } else {
            h->hs_state = HS_CIPHER_SUITES;
        }
        return;

    case HS_COMPRESSION_LEN:
        /* Empty is accepted, as nginx does (see cipher_suites). */
        if (!hs_push(h, v)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "compression_methods overrun the ClientHello");
        } else {
            h->hs_state = HS_COMPRESSION;
        }
        return;

    case HS_EXTENSIONS_LEN:
        if (v > hs_inner_left(h)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "extensions overrun the ClientHello");
            return;
        }
        if (v < hs_inner_left(h)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "extensions end before the ClientHello");
            return;
        }
        (void)hs_push(h, v);
        if (v == 0) {
            hs_pop(h);
            hs_pop(h);
            h->rc = TLS_HELLO_DONE;
            return;
        }
        h->hs_state = HS_EXT_TYPE;
        return;

    case HS_EXT_TYPE:
        for (size_t i = 0; i < h->ext_count; i++) {
            if (h->ext_seen[i] == v) {
                hello_fail(h, TLS_HELLO_MALFORMED, "duplicate extension");
                return;
            }
        }
        if (h->ext_count == TLS_HELLO_EXT_MAX) {
            hello_fail(h, TLS_HELLO_MALFORMED, "over 128 extensions");
            return;
        }
        h->ext_seen[h->ext_count++] = (uint16_t)v;
        h->ext_type = (uint16_t)v;
        h->hs_state = HS_EXT_LEN;
        return;

    case HS_EXT_LEN:
        hs_extension_start(h, v);
        return;

    case HS_SNI_LIST_LEN:
        if (v == 0) {
            hello_fail(h, TLS_HELLO_MALFORMED, "server_name list is empty");
        } else if (v != hs_inner_left(h)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "server_name list does not fill its extension");
        } else {
            (void)hs_push(h, v);
            h->hs_state = HS_SNI_TYPE;
        }
        return;

    case HS_SNI_TYPE:
        h->name_type = (uint8_t)v;
        h->hs_state = HS_SNI_NAME_LEN;
        return;

    case HS_SNI_NAME_LEN:
        hs_sni_name_len(h, v);
        return;

    case HS_ALPN_LIST_LEN:
        if (v < ALPN_LIST_MIN) {
            hello_fail(h, TLS_HELLO_MALFORMED, "ALPN list under 2 bytes");
        } else if (v != hs_inner_left(h)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "ALPN list does not fill its extension");
        } else {
            (void)hs_push(h, v);
            h->hs_state = HS_ALPN_NAME_LEN;
        }
        return;

    case HS_ALPN_NAME_LEN:
        hs_alpn_name_len(h, v);
        return;

    case HS_SV_LIST_LEN:
        if (v < SV_LIST_MIN || v % 2 != 0) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "supported_versions length is under 2 or odd");
        } else if (v != hs_inner_left(h)) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "supported_versions list does not fill its extension");
        } else {
            (void)hs_push(h, v);
            h->hs_state = HS_SV_VERSION;
        }
        return;

    case HS_SV_VERSION:
        hs_sv_version(h, (uint16_t)v);
        return;

    default:
        /* Bulk states never complete a field. */
        hello_fail(h, TLS_HELLO_MALFORMED, "internal parser state error");
        return;
    }
}


/* The innermost container of a bulk state has been read to its end. */
static void
hs_bulk_done(struct tls_hello *h)
{
    switch (h->hs_state) {
    case HS_RANDOM:
        hs_pop(h);
        h->hs_state = HS_SESSION_ID_LEN;
        return;

    case HS_SESSION_ID:
        hs_pop(h);
        h->hs_state = HS_CIPHER_SUITES_LEN;
        return;

    case HS_CIPHER_SUITES:
        hs_pop(h);
        h->hs_state = HS_COMPRESSION_LEN;
        return;

    case HS_COMPRESSION:
        hs_pop(h);
        if (hs_inner_left(h) == 0) {
            /* No extensions block at all: allowed before TLS 1.3. */
            hs_pop(h);
            h->rc = TLS_HELLO_DONE;
            return;
        }
        h->hs_state = HS_EXTENSIONS_LEN;
        return;

    case HS_EXT_SKIP:
        hs_extension_done(h);
        return;

    case HS_SNI_NAME:
        hs_pop(h);
        if (hs_inner_left(h) == 0) {
            hs_pop(h);
            hs_extension_done(h);
        } else {
            h->hs_state = HS_SNI_TYPE;
        }
        return;

    case HS_ALPN_NAME:
        hs_pop(h);
        if (hs_inner_left(h) == 0) {
            hs_pop(h);
            hs_extension_done(h);
        } else {
            h->hs_state = HS_ALPN_NAME_LEN;
        }
        return;

    default:
        hello_fail(h, TLS_HELLO_MALFORMED, "internal parser state error");
        return;
    }
}


/* Opens an extension of len bytes and picks the state that reads it. */
static void
hs_extension_start(struct tls_hello *h, uint32_t len)
{
    if (!hs_push(h, len)) {
        hello_fail(h, TLS_HELLO_MALFORMED,
                   "extension overruns the extensions block");
        return;
    }
    switch (h->ext_type) {
    case EXT_SERVER_NAME:
        h->hs_state = HS_SNI_LIST_LEN;
        return;
    case EXT_ALPN:
        h->hs_state = HS_ALPN_LIST_LEN;
        return;
    case EXT_SUPPORTED_VERSIONS:
        h->hs_state = HS_SV_LIST_LEN;
        return;
    case EXT_ECH:
        h->has_ech = true;
        h->hs_state = HS_EXT_SKIP;
        return;
    default:
        h->hs_state = HS_EXT_SKIP;
        return;
    }
}


/*
 * Closes the current extension (every list we read fills its extension
 * exactly, so it is empty now); the hello is complete when the extensions
 * block, which ends where the message ends, is empty too.
 */
static void
hs_extension_done(struct tls_hello *h)
{
    hs_pop(h);
    if (hs_inner_left(h) > 0) {
        h->hs_state = HS_EXT_TYPE;
        return;
    }
    hs_pop(h);
    hs_pop(h);
    h->rc = TLS_HELLO_DONE;
}


/* Opens a HostName of len bytes; only a host_name entry is kept. */
static void
hs_sni_name_len(struct tls_hello *h, uint32_t len)
{
    if (len == 0) {
        hello_fail(h, TLS_HELLO_MALFORMED, "empty server name");
        return;
    }
    if (!hs_push(h, len)) {
        hello_fail(h, TLS_HELLO_MALFORMED,
                   "server name overruns the server_name list");
        return;
    }
    if (h->name_type == SNI_HOST_NAME) {
        if (h->has_sni) {
            hello_fail(h, TLS_HELLO_MALFORMED, "two host_name entries");
            return;
        }
        if (len > TLS_HELLO_NAME_MAX) {
            hello_fail(h, TLS_HELLO_MALFORMED,
                       "server name longer than 255 bytes");
            return;
        }
        h->has_sni = true;
    }
    h->hs_state = HS_SNI_NAME;
}


/*
 * Opens a ProtocolName of len bytes and decides whether it joins h->alpn:
 * it does if it fits whole after a comma, and no earlier one was dropped,
 * so the kept list is always a prefix cut at a protocol boundary.
 */
static void
hs_alpn_name_len(struct tls_hello *h, uint32_t len)
{
    if (len == 0) {
        hello_fail(h, TLS_HELLO_MALFORMED, "empty ALPN protocol name");
        return;
    }
    if (!hs_push(h, len)) {
        hello_fail(h, TLS_HELLO_MALFORMED,
                   "ALPN protocol name overruns the ALPN list");
        return;
    }

    const size_t sep = h->alpn_len > 0 ? 1 : 0;
    h->alpn_keep = !h->alpn_full && len <= TLS_HELLO_ALPN_MAX - h->alpn_len &&
                   sep <= TLS_HELLO_ALPN_MAX - h->alpn_len - len;
    if (!h->alpn_keep) {
        h->alpn_full = true;
    } else if (sep) {
        h->alpn[h->alpn_len++] = ',';
        h->alpn[h->alpn_len] = '\0';
    }
    h->hs_state = HS_ALPN_NAME;
}


/* Takes one supported_versions entry; the list ends the extension. */
static void
hs_sv_version(struct tls_hello *h, uint16_t v)
{
    if (!hello_is_grease(v) && (!h->has_sv || v > h->sv_best)) {
        h->sv_best = v;
        h->has_sv = true;
    }
    if (hs_inner_left(h) > 0) {
        return;
    }
    if (h->has_sv) {
        h->version = h->sv_best;
    }
    hs_pop(h);
    hs_extension_done(h);
}


/* Opens a container of len bytes inside the innermost one; false if it
 * does not fit there (or nesting is exhausted, which our grammar never
 * reaches). */
static bool
hs_push(struct tls_hello *h, size_t len)
{
    if (h->open == TLS_HELLO_DEPTH) {
        return false;
    }
    if (h->open > 0 && len > hs_inner_left(h)) {
        return false;
    }
    h->left[h->open++] = len;
    return true;
}


/* Closes the innermost container. */
static void
hs_pop(struct tls_hello *h)
{
    if (h->open > 0) {
        h->open--;
    }
}


/*
 * Counts n bytes against every open container. Callers never pass more
 * than hs_inner_left(), and inner containers never exceed outer ones, so
 * no counter wraps.
 */
static void
hs_consume(struct tls_hello *h, size_t n)
{
    for (size_t i = 0; i < h->open; i++) {
        h->left[i] -= n;
    }
}


/* Bytes left in the innermost open container; 0 when none is open. */
static size_t
hs_inner_left(const struct tls_hello *h)
{
    return h->open > 0 ? h->left[h->open - 1] : 0;
}


/* RFC 8701 §2: GREASE values are 0x?A?A with both bytes equal. */
static bool
hello_is_grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}
