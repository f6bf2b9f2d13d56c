/* SPDX-License-Identifier: MIT */
/*
 * Upstream peer selection, as nginx's stream upstream balancers do it:
 * smooth weighted round-robin, hash, hash consistent, least_conn and
 * random (optionally "two"), with passive health (max_fails/fail_timeout),
 * backup and down peers, and the per-session tried set that
 * proxy_next_upstream walks. Pure logic: no I/O, no clock, no logging.
 * Memory is taken only by balance_init(); balance_pick(),
 * balance_connected(), balance_release() and balance_done() never allocate.
 *
 * Ownership: the caller owns struct balancer, its peers array and the
 * peers' name strings; balance_init() adds private tables that
 * balance_free() releases. One struct balance_try lives in each session.
 * Nothing here is thread-safe: one worker's loop uses one balancer.
 */
#ifndef SNIRELAY_STREAM_UPSTREAM_BALANCE_H
#define SNIRELAY_STREAM_UPSTREAM_BALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The tried set is a bitmap of this many bits, so no upstream is larger. */
#define BALANCE_MAX_PEERS 1024

/* Keeps weight sums well inside an int, as smooth round-robin adds them. */
#define BALANCE_MAX_WEIGHT 1000000

/*
 * Hash consistent places 160 ring points per unit of weight (as nginx);
 * the ring is capped at this many points (8 bytes each), which bounds the
 * total weight of a consistent-hash upstream at 104857.
 */
#define BALANCE_MAX_RING_POINTS (1u << 24)

struct balance_point;

/*
 * One upstream address. The configuration fields are filled by the caller
 * (balance_peer_defaults() sets nginx's defaults); the runtime fields are
 * reset by balance_init() and then belong to this module.
 */
struct balance_peer {
    struct sockaddr_storage addr; /* where to connect */
    socklen_t addrlen;            /* used length of addr */
    const char *name;        /* "127.0.0.1:8080", for $upstream_addr and the
                                consistent-hash points; caller-owned, NUL-
                                terminated; required for HASH_CONSISTENT */
    int weight;              /* 1..BALANCE_MAX_WEIGHT, default 1 */
    int max_fails;           /* default 1; 0 = never marked failed */
    unsigned max_conns;      /* default 0 = no limit; else a peer with this
                                many conns is skipped (per balancer, so
                                per worker, as nginx without a zone) */
    int64_t fail_timeout_ms; /* default 10000 */
    bool backup;             /* only with BALANCE_RR and BALANCE_LEAST_CONN */
    bool down;               /* never picked; may be toggled at run time */

    /* Runtime state, reset by balance_init(). */
    int current_weight;   /* smooth round-robin accumulator */
    int effective_weight; /* weight lowered by failures, regrows by 1 */
    int fails;            /* failures since last cleared */
    int64_t checked_ms;   /* as nginx's peer->checked: start of the
                             current fail_timeout window */
    int64_t accessed_ms;  /* as nginx's peer->accessed: last failure */
    unsigned conns;       /* picks not yet released (balance_release()
                             or balance_done()) */
};

enum balance_method {
    BALANCE_RR,              /* smooth weighted round-robin (default) */
    BALANCE_HASH,            /* hash $key */
    BALANCE_HASH_CONSISTENT, /* hash $key consistent (ketama ring) */
    BALANCE_LEAST_CONN,      /* least_conn */
    BALANCE_RANDOM           /* random [two] */
};

/*
 * One upstream's selection state. The caller fills the public fields, then
 * calls balance_init(); the private fields are overwritten there.
 */
struct balancer {
    enum balance_method method; /* how to pick */
    struct balance_peer *peers; /* primary peers first, then backup peers
                                   (caller-owned array of npeers) */
    size_t npeers;              /* total, primary + backup */
    bool random_two;            /* BALANCE_RANDOM: nginx "random two":
                                   draw two, keep the less loaded */
    uint64_t seed;              /* seeds the PRNG of BALANCE_RANDOM, so runs
                                   are repeatable */

    /* Private, set by balance_init(). */
    size_t nprimary;            /* peers[0..nprimary) are primary */
    bool single;                /* one peer, no backup: as nginx's
                                   peers->single, failures are ignored */
    uint32_t total_weight;      /* sum of primary weights */
    uint64_t rng;               /* splitmix64 state for BALANCE_RANDOM */
    uint32_t *ranges;           /* BALANCE_RANDOM: cumulative weight before
                                   each primary peer; malloc'd */
    struct balance_point *ring; /* HASH_CONSISTENT: sorted points; malloc'd */
    size_t nring;               /* points in ring */
    uint16_t *group_next;       /* HASH_CONSISTENT: next peer with the same
                                   name, cyclic; malloc'd */
};

/*
 * One session's selection state: which peers it has tried, and where the
 * hash walk stands. Lives inside the session object; no pointers inside.
 */
struct balance_try {
    uint64_t tried[BALANCE_MAX_PEERS / 64]; /* bit i: peers[i] was picked */
    uint32_t hash;       /* HASH: running nginx hash sum; HASH_CONSISTENT:
                            current ring point index */
    unsigned hash_tries; /* rejected draws (HASH, RANDOM: > 20 falls back to
                            round-robin) or ring steps (HASH_CONSISTENT) */
    bool use_backup;     /* moved on to the backup set (all primaries
                            failed or tried) */
    unsigned rehash;     /* HASH: draws so far; prefixes the key from 1 on */
    uint32_t key_crc;    /* crc32 of the hash key */
    size_t key_len;      /* length of the hash key */
    unsigned picks;      /* peers returned by balance_pick() so far */
};

/*
 * After the weights of b's peers changed at run time (SRV records): the
 * totals that balance_init() derives from them are made again.
 */
void balance_reweigh(struct balancer *b);

/*
 * Sets p's configuration fields to nginx's defaults: weight 1,
 * max_fails 1, fail_timeout 10s, max_conns 0 (none), not backup, not down.
 * Leaves addr, addrlen and name alone.
 */
void balance_peer_defaults(struct balance_peer *p);

/*
 * Validates b and prepares it: npeers in 1..BALANCE_MAX_PEERS, at least one
 * primary peer, backup peers after all primary ones and only with RR or
 * LEAST_CONN, weights in 1..BALANCE_MAX_WEIGHT, max_fails and fail_timeout
 * not negative, names present for HASH_CONSISTENT. Resets every peer's
 * runtime state and builds the method's tables (the consistent ring: 160
 * points per unit of weight, crc32 over the name split into host and port
 * as nginx does). Call balance_free() before calling it again on the same
 * b. Returns NULL on success, or a static error message (b then owns no
 * memory).
 */
const char *balance_init(struct balancer *b);

/* Frees what balance_init() allocated and NULLs it; safe to call twice. */
void balance_free(struct balancer *b);

/*
 * Starts a session's selection in t. key/keylen is the evaluated `hash`
 * key (only its crc32 and length are kept, so key need not outlive the
 * call; key may be NULL when keylen is 0); other methods ignore it.
 */
void balance_try_init(struct balancer *b, struct balance_try *t,
                      const char *key, size_t keylen);

/*
 * Picks the next peer for t with b's method. Skips peers t has tried,
 * down peers, peers at max_conns, and peers that failed max_fails times
 * until fail_timeout has passed since checked_ms. RR and LEAST_CONN move on to
 * the backup peers when no primary one is usable, and stay there for the
 * session. HASH and RANDOM fall back to round-robin after 21 rejected draws,
 * and HASH and HASH_CONSISTENT use round-robin for an empty key, as nginx. When
 * nothing is usable while untried peers remain, every peer's fails is cleared
 * (nginx: "all peers failed, mark them as live"); on a session's first pick the
 * selection then runs once more, where nginx would answer that session 502. A
 * single-peer upstream ignores failures. Marks the peer tried in t and counts
 * it in conns. now_ms is a monotonic clock in milliseconds. Returns a peer of
 * b->peers, or NULL when nothing is left (the caller answers 502).
 */
struct balance_peer *balance_pick(struct balancer *b, struct balance_try *t,
                                  int64_t now_ms);

/*
 * Reports a connection to p (returned by balance_pick()) as made: when a
 * new fail_timeout window started since p's last failure, its fails are
 * cleared, so p is live again at once for every session, not only once
 * this one ends. p stays counted in conns until balance_release().
 */
void balance_connected(struct balancer *b, struct balance_peer *p);

/*
 * Ends a pick's use of p: decrements conns (what least_conn, random two
 * and max_conns count). Call exactly once per pick, when the connection
 * failed, ended, or no longer carries the upstream's traffic.
 */
void balance_release(struct balancer *b, struct balance_peer *p);

/*
 * Reports how the connection to p (returned by balance_pick()) went and
 * releases it. failed is true on connect error or timeout: fails grows,
 * checked_ms and accessed_ms become now_ms and effective_weight drops by
 * weight / max_fails. Not failed: as balance_connected(). Then as
 * balance_release().
 */
void balance_done(struct balancer *b, struct balance_peer *p, bool failed,
                  int64_t now_ms);

#endif
