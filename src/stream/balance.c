/* SPDX-License-Identifier: MIT */
/*
 * Upstream peer selection, following nginx's stream balancers
 * (ngx_stream_upstream_round_robin.c and the hash, least_conn and random
 * modules): the same choices for the same state, in milliseconds instead
 * of seconds. Peer indexes are positions in b->peers; the primary set is
 * [0, nprimary) and the backup set [nprimary, npeers), so one tried bitmap
 * covers both and nothing needs clearing when a session moves to backups.
 *
 * Deviations from nginx: a session whose first pick finds every peer
 * failed has the fails cleared and picks again at once, instead of
 * answering 502; hash consistent clears fails in that case too (nginx's
 * chash does not); a consistent-hash walk stops early when no peer at all
 * is usable, rather than visiting every ring point to find that out.
 */

#include "stream/balance.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bug.h"

/* nginx's ring density for hash consistent: points per unit of weight. */
#define BALANCE_POINTS_PER_WEIGHT 160

/* nginx gives up hashing (and random draws) after more rejections than
 * this ("++tries > 20"). */
#define BALANCE_MAX_DRAWS 20

/* Reflected CRC-32 polynomial (IEEE 802.3), as zlib and ngx_crc32. */
#define BALANCE_CRC32_POLY 0xedb88320u

/* One point of the consistent-hash ring. */
struct balance_point {
    uint32_t hash; /* crc32 point value; the ring is sorted on it */
    uint32_t peer; /* index of the first peer with this point's name */
};

static const char *balance_validate(const struct balancer *b);
static const char *balance_build_ring(struct balancer *b);
static void balance_ring_add(struct balance_point *ring, size_t *n,
                             const char *name, uint32_t leader,
                             uint32_t npoints);
static int balance_point_cmp(const void *one, const void *two);
static void balance_rewind(struct balancer *b, struct balance_try *t);
static struct balance_peer *
balance_pick_once(struct balancer *b, struct balance_try *t, int64_t now_ms);
static bool balance_revive(struct balancer *b, int64_t now_ms);
static struct balance_peer *
balance_pick_tiered(struct balancer *b, struct balance_try *t, int64_t now_ms);
static struct balance_peer *balance_rr_select(struct balancer *b,
                                              struct balance_try *t, size_t lo,
                                              size_t hi, int64_t now_ms);
static struct balance_peer *balance_lc_select(struct balancer *b,
                                              struct balance_try *t, size_t lo,
                                              size_t hi, int64_t now_ms);
static struct balance_peer *
balance_hash_pick(struct balancer *b, struct balance_try *t, int64_t now_ms);
static struct balance_peer *
balance_chash_pick(struct balancer *b, struct balance_try *t, int64_t now_ms);
static size_t balance_ring_find(const struct balancer *b, uint32_t hash);
static struct balance_peer *
balance_random_pick(struct balancer *b, struct balance_try *t, int64_t now_ms);
static size_t balance_random_peek(struct balancer *b);
static uint64_t balance_random_next(struct balancer *b);
static void balance_took(struct balance_peer *p, struct balance_try *t,
                         size_t i, int64_t now_ms);
static bool balance_is_tried(const struct balance_try *t, size_t i);
static void balance_set_tried(struct balance_try *t, size_t i);
static bool balance_is_failed(const struct balance_peer *p, int64_t now_ms);
static bool balance_is_full(const struct balance_peer *p);
static bool balance_is_usable(const struct balance_peer *p, int64_t now_ms);
static uint32_t balance_crc32(const void *data, size_t len);
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

void
balance_peer_defaults(struct balance_peer *p)
{
    p->weight = 1;
    p->max_fails = 1;
    p->fail_timeout_ms = 10000;
    p->max_conns = 0;
    p->backup = false;
    p->down = false;
}

const char *
balance_init(struct balancer *b)
{
    BUG_ON(b == NULL);

    b->nprimary = 0;
    b->single = false;
    b->total_weight = 0;
    b->rng = b->seed;
    b->ranges = NULL;
    b->ring = NULL;
    b->nring = 0;
    b->group_next = NULL;

    const char *err = balance_validate(b);
    if (err != NULL) {
        return err;
    }

    for (size_t i = 0; i < b->npeers; i++) {
        struct balance_peer *p = &b->peers[i];

        p->current_weight = 0;
        p->effective_weight = p->weight;
        p->fails = 0;
        p->checked_ms = 0;
        p->accessed_ms = 0;
        p->conns = 0;
        if (!p->backup) {
            b->nprimary++;
            b->total_weight += (uint32_t)p->weight;
        }
    }
    b->single = (b->npeers == 1);

    if (b->method == BALANCE_RANDOM) {
        b->ranges = malloc(b->nprimary * sizeof(*b->ranges));
        if (b->ranges == NULL) {
            return "out of memory";
        }
        uint32_t sum = 0;
        for (size_t i = 0; i < b->nprimary; i++) {
            b->ranges[i] = sum;
            sum += (uint32_t)b->peers[i].weight;
        }
    }

    if (b->method == BALANCE_HASH_CONSISTENT) {
        err = balance_build_ring(b);
        if (err != NULL) {
            balance_free(b);
            return err;
        }
    }

    return NULL;
}

/*
 * Checks what balance_init() documents; returns NULL or the static
 * message. The backup text is nginx's.
 */
static const char *
balance_validate(const struct balancer *b)
{
    if (b->method != BALANCE_RR && b->method != BALANCE_HASH &&
        b->method != BALANCE_HASH_CONSISTENT &&
        b->method != BALANCE_LEAST_CONN && b->method != BALANCE_RANDOM) {
        return "unknown balancing method";
    }
    if (b->npeers == 0 || b->peers == NULL) {
        return "no servers in upstream";
    }
    if (b->npeers > BALANCE_MAX_PEERS) {
        return "too many servers in upstream";
    }

    bool seen_backup = false;
    uint64_t total = 0;

    for (size_t i = 0; i < b->npeers; i++) {
        const struct balance_peer *p = &b->peers[i];

        if (p->weight < 1 || p->weight > BALANCE_MAX_WEIGHT) {
            return "invalid weight";
        }
        if (p->max_fails < 0) {
            return "invalid max_fails";
        }
        if (p->fail_timeout_ms < 0) {
            return "invalid fail_timeout";
        }
        if (p->backup) {
            if (b->method != BALANCE_RR && b->method != BALANCE_LEAST_CONN) {
                return "balancing method does not support parameter "
                       "\"backup\"";
            }
            seen_backup = true;
        } else {
            if (seen_backup) {
                return "backup servers must follow primary servers";
            }
            total += (uint64_t)p->weight;
        }
        if (b->method == BALANCE_HASH_CONSISTENT && p->name == NULL) {
            return "hash consistent needs a name for every server";
        }
    }

    if (total == 0) {
        return "no servers in upstream";
    }
    if (b->method == BALANCE_HASH_CONSISTENT &&
        total * BALANCE_POINTS_PER_WEIGHT > BALANCE_MAX_RING_POINTS) {
        return "total weight too large for hash consistent";
    }
    return NULL;
}

/*
 * Builds the ketama ring of nginx's hash consistent: each peer gets
 * 160 * weight points, chained crc32 values seeded by its host and port.
 * Peers sharing a name share points (nginx keys points by server name), so
 * each point names the group's first peer and group_next links the group.
 */
static const char *
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

void
balance_free(struct balancer *b)
{
    if (b == NULL) {
        return;
    }
    free(b->ranges);
    b->ranges = NULL;
    free(b->ring);
    b->ring = NULL;
    b->nring = 0;
    free(b->group_next);
    b->group_next = NULL;
}

void
balance_try_init(struct balancer *b, struct balance_try *t, const char *key,
                 size_t keylen)
{
    BUG_ON(b == NULL || t == NULL);
    BUG_ON(key == NULL && keylen != 0);

    memset(t->tried, 0, sizeof(t->tried));
    t->use_backup = false;
    t->picks = 0;
    t->key_len = keylen;
    t->key_crc = 0;
    if (b->method == BALANCE_HASH || b->method == BALANCE_HASH_CONSISTENT) {
        t->key_crc = balance_crc32(key, keylen);
    }
    balance_rewind(b, t);
}

/*
 * Puts t's walk back at its start (hash position, draw counters, primary
 * set) without touching the tried set.
 */
static void
balance_rewind(struct balancer *b, struct balance_try *t)
{
    t->use_backup = false;
    t->hash_tries = 0;
    t->rehash = 0;
    t->hash = 0;
    if (b->method == BALANCE_HASH_CONSISTENT) {
        t->hash = (uint32_t)balance_ring_find(b, t->key_crc);
    }
}

struct balance_peer *
balance_pick(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    BUG_ON(b == NULL || t == NULL || b->npeers == 0);

    if (b->single) {
        /* As nginx's peers->single: the one peer is tried whatever its
         * failures, but never when down. */
        struct balance_peer *p = &b->peers[0];

        if (p->down || balance_is_full(p) || balance_is_tried(t, 0)) {
            return NULL;
        }
        balance_set_tried(t, 0);
        p->conns++;
        t->picks++;
        return p;
    }

    struct balance_peer *p = balance_pick_once(b, t, now_ms);

    /*
     * nginx reaches "all peers failed" only while the session still has
     * tries left, that is while some peer is untried; a session that has
     * tried everything simply ends.
     */
    if (p == NULL && t->picks < b->npeers) {
        const bool revived = balance_revive(b, now_ms);

        if (revived && t->picks == 0) {
            balance_rewind(b, t);
            p = balance_pick_once(b, t, now_ms);
        }
    }

    if (p != NULL) {
        p->conns++;
        t->picks++;
    }
    return p;
}

/* One selection with b's method; NULL when no peer is usable for t. */
static struct balance_peer *
balance_pick_once(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    switch (b->method) {
    case BALANCE_RR:
    case BALANCE_LEAST_CONN:
        return balance_pick_tiered(b, t, now_ms);
    case BALANCE_HASH:
    case BALANCE_HASH_CONSISTENT:
        /* nginx: an empty key has nothing to hash, so round-robin. */
        if (t->key_len == 0) {
            return balance_rr_select(b, t, 0, b->nprimary, now_ms);
        }
        return b->method == BALANCE_HASH ? balance_hash_pick(b, t, now_ms)
                                         : balance_chash_pick(b, t, now_ms);
    case BALANCE_RANDOM:
        return balance_random_pick(b, t, now_ms);
    }
    BUG_ON(1);
    return NULL;
}

/*
 * nginx's "all peers failed, mark them as live for quick recovery": clears
 * every peer's fails. Returns true when that made some peer usable again,
 * i.e. a peer not down was held back by its failures.
 */
static bool
balance_revive(struct balancer *b, int64_t now_ms)
{
    bool revived = false;

    for (size_t i = 0; i < b->npeers; i++) {
        struct balance_peer *p = &b->peers[i];

        if (!p->down && balance_is_failed(p, now_ms)) {
            revived = true;
        }
        p->fails = 0;
    }
    return revived;
}

/*
 * RR and LEAST_CONN: select from the primary set, and once that has
 * nothing usable, from the backup set for the rest of the session.
 */
static struct balance_peer *
balance_pick_tiered(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    const bool is_lc = (b->method == BALANCE_LEAST_CONN);

    if (!t->use_backup) {
        struct balance_peer *p =
            is_lc ? balance_lc_select(b, t, 0, b->nprimary, now_ms)
                  : balance_rr_select(b, t, 0, b->nprimary, now_ms);
        if (p != NULL || b->nprimary == b->npeers) {
            return p;
        }
        t->use_backup = true;
    }
    return is_lc ? balance_lc_select(b, t, b->nprimary, b->npeers, now_ms)
                 : balance_rr_select(b, t, b->nprimary, b->npeers, now_ms);
}

/*
 * Smooth weighted round-robin over the usable untried peers in [lo, hi):
 * each adds its effective weight to its current weight, the largest
 * current weight wins (first on ties) and gives back the sum. Failed-down
 * effective weights regrow by one per round.
 */
static struct balance_peer *
balance_rr_select(struct balancer *b, struct balance_try *t, size_t lo,
                  size_t hi, int64_t now_ms)
{
    struct balance_peer *best = NULL;
    size_t best_i = 0;
    int total = 0;

    for (size_t i = lo; i < hi; i++) {
        struct balance_peer *p = &b->peers[i];

        if (balance_is_tried(t, i) || !balance_is_usable(p, now_ms)) {
            continue;
        }
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

    if (best == NULL) {
        return NULL;
    }
    best->current_weight -= total;
    balance_took(best, t, best_i, now_ms);
    return best;
}

/*
 * least_conn over [lo, hi): the usable untried peer with the fewest
 * connections per unit of weight; several equal ones are settled by smooth
 * round-robin among them, starting from the first.
 */
static struct balance_peer *
balance_lc_select(struct balancer *b, struct balance_try *t, size_t lo,
                  size_t hi, int64_t now_ms)
{
    struct balance_peer *best = NULL;
    size_t best_i = 0;
    bool has_many = false;

    for (size_t i = lo; i < hi; i++) {
        struct balance_peer *p = &b->peers[i];

        if (balance_is_tried(t, i) || !balance_is_usable(p, now_ms)) {
            continue;
        }
        if (best == NULL) {
            best = p;
            best_i = i;
            has_many = false;
            continue;
        }
        const uint64_t mine = (uint64_t)p->conns * (uint64_t)best->weight;
        const uint64_t theirs = (uint64_t)best->conns * (uint64_t)p->weight;
        if (mine < theirs) {
            best = p;
            best_i = i;
            has_many = false;
        } else if (mine == theirs) {
            has_many = true;
        }
    }

    if (best == NULL) {
        return NULL;
    }

    if (has_many) {
        struct balance_peer *const least = best;
        int total = 0;

        for (size_t i = best_i; i < hi; i++) {
            struct balance_peer *p = &b->peers[i];

            if (balance_is_tried(t, i) || !balance_is_usable(p, now_ms)) {
                continue;
            }
            if ((uint64_t)p->conns * (uint64_t)least->weight !=
                (uint64_t)least->conns * (uint64_t)p->weight) {
                continue;
            }
            p->current_weight += p->effective_weight;
            total += p->effective_weight;
            if (p->effective_weight < p->weight) {
                p->effective_weight++;
            }
            if (p->current_weight > best->current_weight) {
                best = p;
                best_i = i;
            }
        }
        best->current_weight -= total;
    }

    balance_took(best, t, best_i, now_ms);
    return best;
}

/*
 * hash $key: draw d (from 0) takes crc32 of the key, prefixed from d = 1
 * on by the decimal d; adds bits 16..30 of it to a running sum; and maps
 * the sum modulo the total weight onto the peers in weight order. That is
 * nginx's Cache::Memcached-compatible scheme. A tried or unusable peer
 * means another draw; after 21 of those the session goes round-robin.
 */
static struct balance_peer *
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
static struct balance_peer *
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
static size_t
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

/*
 * random [two]: draw peers with probability proportional to weight,
 * redrawing tried or unusable ones; "two" draws a second, different peer
 * and keeps the one with fewer connections per unit of weight (the first
 * on ties). After 20 redraws the session goes round-robin.
 */
static struct balance_peer *
balance_random_pick(struct balancer *b, struct balance_try *t, int64_t now_ms)
{
    struct balance_peer *first = NULL;
    size_t first_i = 0;

    while (t->hash_tries <= BALANCE_MAX_DRAWS) {
        const size_t i = balance_random_peek(b);
        struct balance_peer *p = &b->peers[i];

        if (p != first && !balance_is_tried(t, i) &&
            balance_is_usable(p, now_ms)) {
            if (!b->random_two) {
                balance_took(p, t, i, now_ms);
                return p;
            }
            if (first != NULL) {
                size_t pick_i = i;

                if ((uint64_t)p->conns * (uint64_t)first->weight >
                    (uint64_t)first->conns * (uint64_t)p->weight) {
                    p = first;
                    pick_i = first_i;
                }
                balance_took(p, t, pick_i, now_ms);
                return p;
            }
            first = p;
            first_i = i;
        }
        t->hash_tries++;
    }

    return balance_rr_select(b, t, 0, b->nprimary, now_ms);
}

/* Draws a primary peer index with probability proportional to weight. */
static size_t
balance_random_peek(struct balancer *b)
{
    const uint32_t x = (uint32_t)(balance_random_next(b) % b->total_weight);
    size_t lo = 0;
    size_t hi = b->nprimary;

    /* Last i with ranges[i] <= x; ranges[0] is 0. */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;

        if (x < b->ranges[mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return lo;
}

/* splitmix64: small, fast, and repeatable from b->seed. */
static uint64_t
balance_random_next(struct balancer *b)
{
    b->rng += 0x9e3779b97f4a7c15u;
    uint64_t z = b->rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void
balance_connected(struct balancer *b, struct balance_peer *p)
{
    BUG_ON(b == NULL || p == NULL);
    BUG_ON(p < b->peers || p >= b->peers + b->npeers);

    /* nginx keeps no failure accounting for a single peer. */
    if (b->single) {
        return;
    }
    if (p->accessed_ms < p->checked_ms) {
        /* A pick opened a new fail_timeout window after the last failure,
         * and it worked: the peer is live again. */
        p->fails = 0;
    }
}

void
balance_release(struct balancer *b, struct balance_peer *p)
{
    BUG_ON(b == NULL || p == NULL);
    BUG_ON(p < b->peers || p >= b->peers + b->npeers);
    BUG_ON(p->conns == 0);

    p->conns--;
}

void
balance_done(struct balancer *b, struct balance_peer *p, bool failed,
             int64_t now_ms)
{
    BUG_ON(b == NULL || p == NULL);
    BUG_ON(p < b->peers || p >= b->peers + b->npeers);

    if (!failed) {
        balance_connected(b, p);
    } else if (!b->single) {
        /* nginx keeps no failure accounting for a single peer. */
        p->fails++;
        p->accessed_ms = now_ms;
        p->checked_ms = now_ms;
        if (p->max_fails > 0) {
            p->effective_weight -= p->weight / p->max_fails;
        }
        if (p->effective_weight < 0) {
            p->effective_weight = 0;
        }
    }
    balance_release(b, p);
}

/* Common bookkeeping of a selection: tried bit, fail_timeout window. */
static void
balance_took(struct balance_peer *p, struct balance_try *t, size_t i,
             int64_t now_ms)
{
    balance_set_tried(t, i);
    if (now_ms - p->checked_ms > p->fail_timeout_ms) {
        p->checked_ms = now_ms;
    }
}

static bool
balance_is_tried(const struct balance_try *t, size_t i)
{
    return (t->tried[i / 64] >> (i % 64)) & 1u;
}

static void
balance_set_tried(struct balance_try *t, size_t i)
{
    t->tried[i / 64] |= (uint64_t)1 << (i % 64);
}

/* True while p has failed max_fails times within fail_timeout. */
static bool
balance_is_failed(const struct balance_peer *p, int64_t now_ms)
{
    return p->max_fails > 0 && p->fails >= p->max_fails &&
           now_ms - p->checked_ms <= p->fail_timeout_ms;
}

/* True when p has as many connections as its max_conns allows. */
static bool
balance_is_full(const struct balance_peer *p)
{
    return p->max_conns > 0 && p->conns >= p->max_conns;
}

/*
 * True when p may be picked: not down, not at max_conns and not held back
 * by failures.
 */
static bool
balance_is_usable(const struct balance_peer *p, int64_t now_ms)
{
    return !p->down && !balance_is_full(p) && !balance_is_failed(p, now_ms);
}

/* Standard CRC-32 of data (init and final xor all ones), as ngx_crc32. */
static uint32_t
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
