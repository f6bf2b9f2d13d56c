/* SPDX-License-Identifier: MIT */
/*
 * hash KEY and hash KEY consistent (ngx_stream_upstream_hash_module.c):
 * nginx's Cache::Memcached-compatible draws, the ketama ring, and the
 * CRC-32 both use.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bug.h"
#include "stream/upstream/balance.h"
#include "stream/upstream/balance_impl.h"


/* Reflected CRC-32 polynomial (IEEE 802.3), as zlib and ngx_crc32. */
#define BALANCE_CRC32_POLY 0xedb88320u


/* One point of the consistent-hash ring. */
struct balance_point {
    uint32_t hash; /* crc32 point value; the ring is sorted on it */
    uint32_t peer; /* index of the first peer with this point's name */
};


static void balance_ring_add(struct balance_point *ring, size_t *n,
                             const char *name, uint32_t leader,
                             uint32_t npoints);
static int balance_point_cmp(const void *one, const void *two);
static uint32_t balance_crc32_update(uint32_t crc, const void *data,
                                     size_t len);
static uint32_t balance_crc32_combine(uint32_t crc1, uint32_t crc2,
                                      size_t len2);
static uint32_t balance_gf2_mul(uint32_t a, uint32_t b);


/* CRC-32 of each 4-bit value; two lookups per byte. */
static const uint32_t balance_crc32_nibble[16] = {
    0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
    0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
    0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
};


/*
 * Builds the ketama ring of nginx's hash consistent: each peer gets
 * 160 * weight points, chained crc32 values seeded by its host and port.
 * Peers sharing a name share points (nginx keys points by server name), so
 * each point names the group's first peer and group_next links the group.
 */
const char *
balance_build_ring(struct balancer *b)
{
    b->group_next = malloc(b->nprimary * sizeof(*b->group_next));
    b->ring = malloc((size_t)b->total_weight * BALANCE_POINTS_PER_WEIGHT *
                     sizeof(*b->ring));
    if (b->group_next == NULL || b->ring == NULL) {
        return "out of memory";
    }

    /* Link each peer to the next one with the same name, cyclically. */
    for (size_t i = 0; i < b->nprimary; i++) {
        b->group_next[i] = (uint16_t)i;
    }
    for (size_t i = 0; i < b->nprimary; i++) {
        size_t leader = i;

        for (size_t j = 0; j < i; j++) {
            if (strcmp(b->peers[j].name, b->peers[i].name) == 0) {
                leader = j;
                break;
            }
        }
        if (leader != i) {
            /* Insert i after the leader in the leader's cycle. */
            b->group_next[i] = b->group_next[leader];
            b->group_next[leader] = (uint16_t)i;
        }

        size_t n = b->nring;
        balance_ring_add(b->ring, &n, b->peers[i].name, (uint32_t)leader,
                         (uint32_t)b->peers[i].weight *
                             BALANCE_POINTS_PER_WEIGHT);
        b->nring = n;
    }

    qsort(b->ring, b->nring, sizeof(*b->ring), balance_point_cmp);

    /* Equal values keep the first point, the lowest peer index. */
    size_t kept = 0;
    for (size_t j = 1; j < b->nring; j++) {
        if (b->ring[j].hash != b->ring[kept].hash) {
            b->ring[++kept] = b->ring[j];
        }
    }
    b->nring = kept + 1;
    return NULL;
}


/*
 * Appends npoints ring points for name at ring[*n]. As nginx (compatible
 * with Cache::Memcached::Fast): "host:port" splits at the last colon
 * followed only by digits, "unix:path" has host path and no port, and
 * point k is crc32(host "\0" port prev) where prev is point k-1 as four
 * little-endian bytes (zero for the first).
 */
static void
balance_ring_add(struct balance_point *ring, size_t *n, const char *name,
                 uint32_t leader, uint32_t npoints)
{
    const size_t len = strlen(name);
    const char *host = name;
    size_t host_len = len;
    const char *port = "";
    size_t port_len = 0;

    if (len >= 5 && strncasecmp(name, "unix:", 5) == 0) {
        host = name + 5;
        host_len = len - 5;
    } else {
        for (size_t j = 0; j < len; j++) {
            const char c = name[len - j - 1];

            if (c == ':') {
                host_len = len - j - 1;
                port = name + len - j;
                port_len = j;
                break;
            }
            if (c < '0' || c > '9') {
                break;
            }
        }
    }

    uint32_t base = balance_crc32_update(0xffffffffu, host, host_len);
    base = balance_crc32_update(base, "", 1);
    base = balance_crc32_update(base, port, port_len);

    uint32_t prev = 0;
    for (uint32_t k = 0; k < npoints; k++) {
        const unsigned char bytes[4] = {
            (unsigned char)(prev & 0xff),
            (unsigned char)((prev >> 8) & 0xff),
            (unsigned char)((prev >> 16) & 0xff),
            (unsigned char)((prev >> 24) & 0xff),
        };
        const uint32_t hash =
            balance_crc32_update(base, bytes, sizeof(bytes)) ^ 0xffffffffu;

        ring[*n].hash = hash;
        ring[*n].peer = leader;
        (*n)++;
        prev = hash;
    }
}


/* qsort order of ring points: by value, then by peer for determinism. */
static int
balance_point_cmp(const void *one, const void *two)
{
    const struct balance_point *a = one;
    const struct balance_point *b = two;

    if (a->hash != b->hash) {
        return a->hash < b->hash ? -1 : 1;
    }
    if (a->peer != b->peer) {
        return a->peer < b->peer ? -1 : 1;
    }
    return 0;
}


/*
 * hash $key: draw d (from 0) takes crc32 of the key, prefixed from d = 1
 * on by the decimal d; adds bits 16..30 of it to a running sum; and maps
 * the sum modulo the total weight onto the peers in weight order. That is
 * nginx's Cache::Memcached-compatible scheme. A tried or unusable peer
 * means another draw; after 21 of those the session goes round-robin.
 */
struct balance_peer *
balance_hash_pick(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    while (t->hash_tries <= BALANCE_MAX_DRAWS) {
        uint32_t crc = t->key_crc;

        if (t->rehash > 0) {
            char prefix[16];
            size_t len = 0;
            unsigned v = t->rehash;

            /* Decimal digits, most significant first. */
            do {
                prefix[len++] = (char)('0' + v % 10);
                v /= 10;
            } while (v != 0 && len < sizeof(prefix));
            for (size_t i = 0; i < len / 2; i++) {
                const char c = prefix[i];
                prefix[i] = prefix[len - 1 - i];
                prefix[len - 1 - i] = c;
            }
            /* crc32(prefix key) from the two parts' crcs. */
            crc = balance_crc32_combine(balance_crc32(prefix, len), t->key_crc,
                                        t->key_len);
        }

        t->hash += (crc >> 16) & 0x7fff;
        t->rehash++;

        uint32_t w = t->hash % b->total_weight;
        size_t i = 0;
        while (w >= (uint32_t)b->peers[i].weight) {
            w -= (uint32_t)b->peers[i].weight;
            i++;
        }
        BUG_ON(i >= b->nprimary);

        struct balance_peer *p = &b->peers[i];
        if (!balance_is_tried(t, i) && balance_is_usable(p, now_ms)) {
            balance_took(p, t, i, now_ms);
            return p;
        }
        t->hash_tries++;
    }

    return balance_rr_select(b, t, 0, b->nprimary, now_ms);
}


/*
 * hash $key consistent: start at the first ring point at or after
 * crc32(key) and walk the ring until a point's peer (or, among peers
 * sharing that name, the smooth round-robin winner) is usable and
 * untried. The position is kept in t, so a retry continues the walk.
 */
struct balance_peer *
balance_chash_pick(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    /* Without a usable peer the walk would visit the whole ring. */
    bool has_usable = false;
    for (size_t i = 0; i < b->nprimary; i++) {
        if (!balance_is_tried(t, i) &&
            balance_is_usable(&b->peers[i], now_ms)) {
            has_usable = true;
            break;
        }
    }
    if (!has_usable) {
        return NULL;
    }

    while (t->hash_tries < b->nring) {
        const size_t leader = b->ring[t->hash % b->nring].peer;
        struct balance_peer *best = NULL;
        size_t best_i = 0;
        int total = 0;
        size_t i = leader;

        /* Each group cycle holds at most nprimary peers. */
        for (size_t k = 0; k < b->nprimary; k++) {
            struct balance_peer *p = &b->peers[i];

            if (!balance_is_tried(t, i) && balance_is_usable(p, now_ms)) {
                p->current_weight += p->effective_weight;
                total += p->effective_weight;
                if (p->effective_weight < p->weight) {
                    p->effective_weight++;
                }
                if (best == NULL || p->current_weight > best->current_weight) {
                    best = p;
                    best_i = i;
                }
            }
            i = b->group_next[i];
            if (i == leader) {
                break;
            }
        }

        if (best != NULL) {
            best->current_weight -= total;
            balance_took(best, t, best_i, now_ms);
            return best;
        }
        t->hash++;
        t->hash_tries++;
    }
    return NULL;
}


/* Index of the first ring point whose value is >= hash (nring if none). */
size_t
balance_ring_find(const struct balancer *b, uint32_t hash)
{
    size_t lo = 0;
    size_t hi = b->nring;

    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;

        if (b->ring[mid].hash < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}


/* Standard CRC-32 of data (init and final xor all ones), as ngx_crc32. */
uint32_t
balance_crc32(const void *data, size_t len)
{
    return balance_crc32_update(0xffffffffu, data, len) ^ 0xffffffffu;
}


/* Feeds len bytes into a raw (not final-xored) CRC-32 register. */
static uint32_t
balance_crc32_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *s = data;

    for (size_t i = 0; i < len; i++) {
        crc ^= s[i];
        crc = (crc >> 4) ^ balance_crc32_nibble[crc & 15];
        crc = (crc >> 4) ^ balance_crc32_nibble[crc & 15];
    }
    return crc;
}


/*
 * crc32(A B) from crc1 = crc32(A), crc2 = crc32(B) and len2 = |B| (the
 * identity zlib's crc32_combine uses): crc1 times x^(8 len2) modulo the
 * polynomial, xor crc2. It lets a session keep only its key's crc and
 * length, yet hash "prefix key" for nginx's rehash draws.
 */
static uint32_t
balance_crc32_combine(uint32_t crc1, uint32_t crc2, size_t len2)
{
    uint32_t power = 1u << 31;  /* x^0 in reflected bit order */
    uint32_t square = 1u << 23; /* x^8: one byte */

    /* Square-and-multiply over the bits of len2. */
    while (len2 != 0) {
        if (len2 & 1) {
            power = balance_gf2_mul(square, power);
        }
        square = balance_gf2_mul(square, square);
        len2 >>= 1;
    }
    return balance_gf2_mul(power, crc1) ^ crc2;
}


/* a times b modulo the CRC-32 polynomial, both in reflected bit order. */
static uint32_t
balance_gf2_mul(uint32_t a, uint32_t b)
{
    uint32_t product = 0;

    for (unsigned k = 0; k < 32; k++) {
        if (a & (1u << 31 >> k)) {
            product ^= b;
        }
        b = (b & 1) ? (b >> 1) ^ BALANCE_CRC32_POLY : b >> 1;
    }
    return product;
}
