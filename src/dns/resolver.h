/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous DNS on our event loop, through c-ares: one query in flight
 * per name however many sessions ask, answers cached for their TTL (or
 * `valid=`), failures for a short while. Only DNS is asked: never
 * /etc/hosts, never a search domain (on a proxy for hosts-file users the
 * hosts file invites forwarding loops).
 */
#ifndef SNIRELAY_DNS_RESOLVER_H
#define SNIRELAY_DNS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/srv.h"

struct loop;
struct resolver;
struct resolver_entry;

#define RESOLVER_MAX_ADDRS 16 /* addresses kept per name */
#define RESOLVER_NAME_MAX 253
#define RESOLVER_MAX_SRV 8    /* SRV records kept per answer */
#define RESOLVER_DEFAULT_MAX_ENTRIES 10000 /* names cached, LRU beyond */

enum resolver_status {
    RESOLVER_OK,
    RESOLVER_NXDOMAIN, /* the name does not exist, or has no address */
    RESOLVER_SERVFAIL, /* the server failed or refused */
    RESOLVER_TIMEOUT,  /* no answer within resolver_timeout */
    RESOLVER_ERROR,    /* anything else (a malformed answer, no memory) */
};

struct resolver_conf {
    const char *servers; /* "127.0.0.1:5353,[::1]:53" (c-ares CSV form) */
    int64_t valid_ms;    /* cache time overriding TTLs; -1: use TTLs */
    bool ipv4;           /* ask A */
    bool ipv6;           /* ask AAAA */
    int64_t timeout_ms;  /* resolver_timeout: a whole lookup's deadline */
    size_t max_entries;  /* names cached at most (answers, NXDOMAIN and
                            lookups in flight); 0: the default */
};

/* What a lookup found; valid during a callback, or until the next loop batch.
 */
struct resolver_result {
    enum resolver_status status;
    int64_t expires_ms; /* monotonic time the answer stops being cached */
    size_t naddrs;
    struct sockaddr_storage addrs[RESOLVER_MAX_ADDRS]; /* port 0 */
    socklen_t addrlens[RESOLVER_MAX_ADDRS];
};

typedef void (*resolver_fn)(void *data, const struct resolver_result *res);

/* A session's place in a pending lookup's waiter list; owned by the caller. */
struct resolver_wait {
    struct resolver_wait *prev;
    struct resolver_wait *next;
    struct resolver_entry *entry; /* NULL when not waiting */
    resolver_fn fn;
    void *data;
};

/*
 * Starts a resolver for c on loop l. Returns it, or NULL with a message in
 * err (e.g. a bad server address).
 */
struct resolver *resolver_new(struct loop *l, const struct resolver_conf *c,
                              char *err, size_t errcap);

/* Stops every lookup (waiters are dropped without a call) and frees r. */
void resolver_free(struct resolver *r);

/* What resolver_lookup() did with a name. */
enum resolver_lookup_rc {
    RESOLVER_LOOKUP_ANSWERED, /* the answer was cached: it is in *res */
    RESOLVER_LOOKUP_QUEUED,   /* w waits: fn will be (or was) called */
    RESOLVER_LOOKUP_REFUSED,  /* nothing queued and no answer: errno says
                                 why (ENAMETOOLONG, ENOMEM; ENOBUFS when
                                 every cached name is a lookup in flight) */
};

/*
 * Looks up name (already validated and lower-cased, len bytes).
 *   ANSWERED: *res is the cached answer (valid until the next loop batch);
 *             w is unused.
 *   QUEUED:   w waits; fn(data, result) is called once, unless
 *             resolver_cancel(w) comes first. A query is sent only if none
 *             is in flight for the name. fn may already have been called
 *             when this returns (c-ares may fail a query at once).
 *   REFUSED:  the lookup could not start; w is unused and fn never called.
 * *res is set only for ANSWERED.
 */
enum resolver_lookup_rc resolver_lookup(struct resolver *r, const char *name,
                                        size_t len, struct resolver_wait *w,
                                        resolver_fn fn, void *data,
                                        const struct resolver_result **res);

/* Removes w from its lookup; a no-op when w is not waiting. */
void resolver_cancel(struct resolver_wait *w);

/* What an SRV lookup found; valid during the callback only. */
struct resolver_srv_result {
    enum resolver_status status; /* NXDOMAIN also for "no SRV records" */
    int64_t expires_ms;          /* monotonic time to ask again */
    size_t n;
    struct srv_record recs[RESOLVER_MAX_SRV]; /* in the answer's order */
};

typedef void (*resolver_srv_fn)(void *data,
                                const struct resolver_srv_result *res);

struct resolver_srv_query;

/*
 * Asks for name's SRV records (a CNAME-only answer is chased, as for
 * addresses), for `server ... service=`: not cached, since each server
 * asks for its own name once per TTL. Calls fn(data, result) once, later
 * or at once, unless resolver_srv_cancel(slot) comes first. *slot (the
 * caller's) holds the query while it is in flight and is cleared before
 * fn is called. Returns 0, or -1 when the query cannot be started
 * (errno ENAMETOOLONG, or ENOMEM: no memory for it or for its deadline):
 * fn is not called, and the caller asks again later.
 */
int resolver_srv_lookup(struct resolver *r, const char *name,
                        resolver_srv_fn fn, void *data,
                        struct resolver_srv_query **slot);

/* Drops the callback of the query in *slot, if any, and clears *slot; the
 * query itself is freed when c-ares lets go of it. */
void resolver_srv_cancel(struct resolver_srv_query **slot);

/* Text for a status, as nginx's resolver prints it ("Host not found"). */
const char *resolver_status_text(enum resolver_status st);

#endif
