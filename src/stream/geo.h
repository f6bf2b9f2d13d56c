/* SPDX-License-Identifier: MIT */
/*
 * geo{}: a variable whose value depends on an IP address (the client's, or
 * the value of another variable), as nginx's ngx_stream_geo_module. Two
 * kinds of table: networks in CIDR notation, longest prefix wins (IPv4 and
 * IPv6), or, after `ranges;`, IPv4 ranges "FROM-TO" kept as nginx keeps
 * them (cut at /16 boundaries, so its duplicate and overlap rules hold).
 *
 * The tables are pure: values are opaque pointers the caller owns, and
 * lookups neither allocate nor log. geo_compile() reads a geo block of the
 * configuration into them.
 */
#ifndef SNIRELAY_STREAM_GEO_H
#define SNIRELAY_STREAM_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct cidr;
struct conf_ctx;
struct sockaddr;
struct stream_conf;
struct stream_map;

/* nginx's stand-in for "not an address": INADDR_NONE, 255.255.255.255. */
#define GEO_ADDR_NONE 0xffffffffu

struct geo;

/* How an update went. */
enum geo_rc {
    GEO_OK,        /* added or deleted */
    GEO_REPLACED,  /* CIDR: the network had a value; it now has the new one */
    GEO_NOT_FOUND, /* delete: no such network or range */
    GEO_OVERLAP,   /* ranges: crosses a range already there (see below) */
    GEO_NO_MEMORY,
};

/*
 * Called by geo_range_add() for each /16 piece of the new range that
 * equals a piece already there (its old value is replaced): nginx warns
 * "duplicate range" once per such piece.
 */
typedef void (*geo_duplicate_fn)(void *data, const void *old_value);

/*
 * A new, empty table whose nodes come from arena a (they live as long as
 * the arena). Ranges tables also use malloc() while they are built, until
 * geo_finish() or geo_discard(). NULL when out of memory.
 */
struct geo *geo_new(struct arena *a);

/*
 * Makes g a ranges table (nginx's `ranges;`). Returns 0, or -1 when a CIDR
 * entry (or default, or delete) was already given: `ranges` must come first.
 */
int geo_set_ranges(struct geo *g);

/* True after geo_set_ranges(). */
bool geo_is_ranges(const struct geo *g);

/*
 * CIDR tables: gives network net (host bits already clear, as cidr_parse()
 * leaves them) the value. GEO_REPLACED when net had a value: *old (if old
 * is not NULL) is then that value. GEO_NO_MEMORY otherwise on failure.
 */
enum geo_rc geo_net_add(struct geo *g, const struct cidr *net,
                        const void *value, const void **old);

/* CIDR tables: removes net's own value. GEO_OK or GEO_NOT_FOUND. */
enum geo_rc geo_net_delete(struct geo *g, const struct cidr *net);

/*
 * Ranges tables: gives start..end (host byte order, start <= end) the
 * value, with nginx's rules, applied to each /16 piece on its own: a piece
 * equal to one already there replaces its value (dup is called), a piece
 * inside one already there splits it, a piece next to others is added;
 * anything else is GEO_OVERLAP with *ov_start and *ov_end set to the piece
 * it crosses. Pieces already added stay when a later one fails.
 */
enum geo_rc geo_range_add(struct geo *g, uint32_t start, uint32_t end,
                          const void *value, geo_duplicate_fn dup, void *data,
                          uint32_t *ov_start, uint32_t *ov_end);

/*
 * Ranges tables: removes start..end, which must equal pieces added before,
 * /16 piece by /16 piece. GEO_NOT_FOUND when some piece was not there
 * (the others are removed all the same, as nginx does).
 */
enum geo_rc geo_range_delete(struct geo *g, uint32_t start, uint32_t end);

/* Ranges tables: the value for addresses in no range; NULL for none. */
void geo_range_default(struct geo *g, const void *value);

/*
 * Ends building: a ranges table is packed into one sorted array in the
 * arena and its build memory freed. 0, or -1 when out of memory. Lookups
 * are allowed only after it.
 */
int geo_finish(struct geo *g);

/* Frees build memory of a table that will not be finished; NULL is fine. */
void geo_discard(struct geo *g);

/*
 * The value for IPv4 address addr (host byte order): the longest matching
 * network's, or the value of the range holding addr, or the ranges default.
 * NULL when none matches (the caller's empty default).
 */
const void *geo_find_v4(const struct geo *g, uint32_t addr);

/*
 * The value for IPv6 address a (16 bytes). An IPv4-mapped address
 * (::ffff:a.b.c.d) is looked up as a.b.c.d; in a ranges table any other
 * IPv6 address is looked up as GEO_ADDR_NONE, as nginx does.
 */
const void *geo_find_v6(const struct geo *g, const uint8_t a[16]);

/*
 * The value for sa: AF_INET and AF_INET6 as above, any other family (a
 * unix-domain client) as GEO_ADDR_NONE. sa must not be NULL.
 */
const void *geo_find_addr(const struct geo *g, const struct sockaddr *sa);

/*
 * The value for an address written as text (len bytes, not NUL-ended): an
 * IPv4 or IPv6 address without port or brackets. Text that is not one is
 * looked up as GEO_ADDR_NONE ("255.255.255.255 is used", nginx's docs).
 */
const void *geo_find_text(const struct geo *g, const char *text, size_t len);

/*
 * Parses "A.B.C.D-E.F.G.H" (len bytes) into *start and *end, host byte
 * order. As nginx, 255.255.255.255 is no valid end (it is INADDR_NONE
 * there) and start must not be above end. 0, or -1 when invalid.
 */
int geo_parse_range(const char *text, size_t len, uint32_t *start,
                    uint32_t *end);

/*
 * Second pass over stream{}: reads the geo block of m->node (declared by
 * map_declare()) into a table and sets m->geo, m->source (when the block
 * names an address variable) and m->values. NULL or a message; messages
 * about a line inside the block carry that line's location.
 */
const char *geo_compile(struct conf_ctx *cf, struct stream_conf *conf,
                        struct stream_map *m);

#endif
