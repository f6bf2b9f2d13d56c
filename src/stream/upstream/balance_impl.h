/* SPDX-License-Identifier: MIT */
/*
 * What the balancing methods (balance_<method>.c) share with the common
 * code in balance.c; not for use outside src/stream/upstream/.
 */
#ifndef SNIRELAY_STREAM_UPSTREAM_BALANCE_IMPL_H
#define SNIRELAY_STREAM_UPSTREAM_BALANCE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct balance_peer;
struct balance_try;
struct balancer;

/* nginx's ring density for hash consistent: points per unit of weight. */
#define BALANCE_POINTS_PER_WEIGHT 160

/* nginx gives up hashing (and random draws) after more rejections than
 * this ("++tries > 20"). */
#define BALANCE_MAX_DRAWS 20

/* Marks peers[i] tried in t and opens a new fail_timeout window. */
void balance_took(struct balance_peer *p, struct balance_try *t, size_t i,
                  int64_t now_ms);

/* Whether t has tried peers[i]. */
bool balance_is_tried(const struct balance_try *t, size_t i);

/* Marks peers[i] tried in t. */
void balance_set_tried(struct balance_try *t, size_t i);

/* True when p may be picked: not down and not held back by failures. */
bool balance_is_usable(const struct balance_peer *p, int64_t now_ms);

/* True while p has failed max_fails times within fail_timeout. */
bool balance_is_failed(const struct balance_peer *p, int64_t now_ms);

/*
 * Smooth weighted round-robin over the usable untried peers in [lo, hi).
 * NULL when none is usable.
 */
struct balance_peer *balance_rr_select(struct balancer *b,
                                       struct balance_try *t, size_t lo,
                                       size_t hi, int64_t now_ms);

/*
 * least_conn over the usable untried peers in [lo, hi). NULL when none is
 * usable.
 */
struct balance_peer *balance_lc_select(struct balancer *b,
                                       struct balance_try *t, size_t lo,
                                       size_t hi, int64_t now_ms);

/* hash KEY: a draw per try, then round-robin; NULL when nothing is left. */
struct balance_peer *balance_hash_pick(struct balancer *b,
                                       struct balance_try *t, int64_t now_ms);

/* hash KEY consistent: walks the ring from t's position; NULL if none. */
struct balance_peer *balance_chash_pick(struct balancer *b,
                                        struct balance_try *t, int64_t now_ms);

/* Index of the first ring point whose value is >= hash (nring if none). */
size_t balance_ring_find(const struct balancer *b, uint32_t hash);

/*
 * Builds b's consistent-hash ring and peer groups (malloc'd; freed by
 * balance_free()). NULL, or a static message.
 */
const char *balance_build_ring(struct balancer *b);

/* Standard CRC-32 of data (init and final xor all ones), as ngx_crc32. */
uint32_t balance_crc32(const void *data, size_t len);

/* random [two]: weighted draws, then round-robin; NULL when none. */
struct balance_peer *balance_random_pick(struct balancer *b,
                                         struct balance_try *t, int64_t now_ms);

/* True when p holds max_conns sessions already. */
bool balance_is_full(const struct balance_peer *p);

#endif
