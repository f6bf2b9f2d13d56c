/* SPDX-License-Identifier: MIT */
/*
 * split_clients{}: a variable that splits clients into groups by the
 * MurmurHash2 of a value, as nginx's ngx_stream_split_clients_module (for
 * A/B tests and gradual roll-outs). The same value always lands in the
 * same group, and for a given config the groups are those nginx picks.
 */
#ifndef SNIRELAY_STREAM_SPLIT_CLIENTS_H
#define SNIRELAY_STREAM_SPLIT_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

struct conf_ctx;
struct stream_conf;
struct stream_map;

/* One line of the block. */
struct split_clients_part {
    uint32_t percent;  /* hundredths of a percent (51.2% is 5120), 0 for
                          `*`; after split_clients_finish(): the bound below
                          which a hash lands here */
    const void *value; /* the caller's value; never NULL */
};

/* The parts in order; owned by the configuration's arena. */
struct split_clients {
    struct split_clients_part *parts;
    size_t nparts;
};

/*
 * nginx's ngx_murmur_hash2(): MurmurHash2 with seed 0 (as the seed is
 * XORed with the length, h starts at len), bytes read little-endian.
 */
uint32_t split_clients_murmur2(const void *data, size_t len);

/*
 * Parses a percentage as nginx's ngx_atofp(text, len, 2) reads it, without
 * the '%': digits with at most one '.' and at most two digits after it
 * ("51.2" is 5120, ".5" is 50, "7." is 700). Returns the value in
 * hundredths, or -1 when malformed, zero or too large.
 */
int64_t split_clients_percent(const char *text, size_t len);

/*
 * Turns the parts' percentages into cumulative bounds, as nginx does.
 * Returns 0, or -1 when the total is greater than 100% with *bad set to
 * the index of the part that exceeds it. A `*` part counts as the rest up
 * to 100%, so any percentage after it exceeds.
 */
int split_clients_finish(struct split_clients *sc, size_t *bad);

/*
 * The value of the part the hash of key (len bytes) falls in, or NULL when
 * it falls in none (percentages below 100% and no `*`: nginx's empty
 * value).
 */
const void *split_clients_find(const struct split_clients *sc, const char *key,
                               size_t len);

/*
 * Second pass over stream{}: compiles m->node (`split_clients STRING $var
 * { PERCENT% VALUE; ... * VALUE; }`, declared by map_declare()): sets
 * m->source, m->split and m->values. NULL or a message; messages about a
 * line inside the block carry that line's location.
 */
const char *split_clients_compile(struct conf_ctx *cf, struct stream_conf *conf,
                                  struct stream_map *m);

#endif
