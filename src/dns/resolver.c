/* SPDX-License-Identifier: MIT */
/*
 * c-ares driven by our loop. c-ares tells us which sockets it wants watched
 * (sock_state_cb) and when it wants a timeout; we call ares_process_fd().
 * Each name has one cache entry: pending (with its waiters) or answered
 * (with an expiry). A pending entry has our own deadline too, because
 * c-ares' retries add up to more than resolver_timeout.
 */

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/bug.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "dns/cname.h"
#include "dns/resolver.h"
#include "dns/srv.h"
#include "event/loop.h"
#include "log/errlog.h"


#define RESOLVER_BUCKETS 1024       /* hash buckets; chains grow beyond */
#define RESOLVER_NEGATIVE_MS 5000   /* how long failures are remembered */
#define RESOLVER_MAX_SOCKS 16       /* c-ares sockets watched at once */
#define RESOLVER_SWEEP_MS 60000     /* expired entries are freed this often */
#define RESOLVER_TRIES_PER_SERVER 3 /* c-ares tries, per server */
#define RESOLVER_MAX_CNAMES 8       /* CNAME-only answers followed per name */


struct resolver_entry {
    struct resolver_entry *next;     /* hash chain */
    struct resolver_entry *lru_prev; /* more recently used */
    struct resolver_entry *lru_next; /* less recently used */
    struct resolver *r;
    char name[RESOLVER_NAME_MAX + 1];
    size_t len;
    bool pending;       /* a query is in flight */
    bool orphan;        /* unlinked; freed when c-ares calls back */
    bool completing;    /* its waiters are being called: not evicted */
    char qname[RESOLVER_NAME_MAX + 1]; /* asked now: name or a CNAME's */
    unsigned cnames;    /* CNAME-only answers followed in this lookup */
    int64_t cname_ttl_ms; /* lowest TTL along those CNAMEs; -1: none */
    int64_t expires_ms; /* answered: when to ask again */
    struct resolver_result result;
    struct resolver_wait *waiters; /* sessions waiting for this name */
    struct loop_timer deadline;    /* resolver_timeout of the lookup */
};

struct resolver_sock {
    struct loop_io io;
    struct resolver *r;
};

struct resolver {
    struct loop *loop;
    ares_channel channel;
    struct resolver_conf conf;
    struct resolver_entry *buckets[RESOLVER_BUCKETS];
    size_t nentries;
    size_t max_entries;              /* conf.max_entries or the default */
    struct resolver_entry *lru;      /* most recently used entry */
    struct resolver_entry *lru_tail; /* least recently used entry */
    bool full_logged;                /* the bound was logged once */
    bool timer_failed;               /* c-ares' timer could not be armed:
                                        logged once until it can again */
    struct resolver_sock socks[RESOLVER_MAX_SOCKS];
    struct loop_timer ares_timer; /* c-ares' own retransmit timeouts */
    struct loop_timer sweep;
};


static void resolver_sock_state(void *data, ares_socket_t fd, int readable,
                                int writable);
static void resolver_sock_io(struct loop_io *io, uint32_t events);
static void resolver_ares_timer(struct loop_timer *t);
static void resolver_rearm(struct resolver *r);
static void resolver_answer(void *arg, int status, int timeouts,
                            struct ares_addrinfo *ai);
static void resolver_deadline(struct loop_timer *t);
static void resolver_complete(struct resolver_entry *e);
static void resolver_query(struct resolver_entry *e, const char *name);
static void resolver_cname_answer(void *arg, int status, int timeouts,
                                  unsigned char *abuf, int alen);
static void resolver_sweep(struct loop_timer *t);
static uint32_t resolver_hash(const char *name, size_t len);
static void resolver_unlink(struct resolver_entry *e);
static void resolver_lru_remove(struct resolver_entry *e);
static void resolver_lru_front(struct resolver_entry *e);
static bool resolver_evict(struct resolver *r);
static void resolver_ares_timing(const struct resolver_conf *c, int *timeout_ms,
                                 int *tries);


static uint32_t
resolver_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    }
    return h;
}


/*
 * c-ares' first-try timeout and number of tries from resolver_timeout, so
 * that its retransmits spread over the whole of it: c-ares (1.18) sends a
 * query to each server in turn and doubles the timeout after each round
 * over the servers, so with n servers and RESOLVER_TRIES tries the wait
 * adds up to timeout * sum(2^(i / n)) for i < tries. The first timeout is
 * chosen so that the sum is at least resolver_timeout: our own deadline
 * (resolver_deadline) ends the lookup at resolver_timeout, not c-ares
 * earlier. A late answer to an earlier try is still taken (same query id,
 * same socket).
 */
static void
resolver_ares_timing(const struct resolver_conf *c, int *timeout_ms, int *tries)
{
    size_t nservers = 1;
    int64_t units = 0;
    int64_t t;

    for (const char *p = c->servers; p != NULL && *p != '\0'; p++) {
        nservers += *p == ',';
    }
    *tries = RESOLVER_TRIES_PER_SERVER * (int)nservers;
    for (int i = 0; i < *tries; i++) {
        units += (int64_t)1 << (i / (int)nservers);
    }
    t = (c->timeout_ms + units - 1) / units;
    *timeout_ms = (int)(t < 1 ? 1 : t > 1000000 ? 1000000 : t);
}


struct resolver *
resolver_new(struct loop *l, const struct resolver_conf *c, char *err,
             size_t errcap)
{
    struct resolver *r = calloc(1, sizeof(*r));
    struct ares_options o;
    int rc;
    char lookups[] = "b"; /* DNS only: never the hosts file */

    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errcap, "ares_library_init() failed: %s",
                 ares_strerror(rc));
        free(r);
        return NULL;
    }
    r->loop = l;
    r->conf = *c;
    r->max_entries =
        c->max_entries > 0 ? c->max_entries : RESOLVER_DEFAULT_MAX_ENTRIES;
    for (size_t i = 0; i < RESOLVER_MAX_SOCKS; i++) {
        loop_io_init(&r->socks[i].io, -1, resolver_sock_io, &r->socks[i]);
        r->socks[i].r = r;
    }
    memset(&o, 0, sizeof(o));
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    resolver_ares_timing(c, &o.timeout, &o.tries);
    o.ndots = 0;
    o.ndomains = 0;
    o.domains = NULL;
    o.lookups = lookups;
    o.sock_state_cb = resolver_sock_state;
    o.sock_state_cb_data = r;
    rc = ares_init_options(
        &r->channel, &o,
        ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_NDOTS |
            ARES_OPT_DOMAINS | ARES_OPT_LOOKUPS | ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errcap, "ares_init_options() failed: %s",
                 ares_strerror(rc));
        free(r);
        return NULL;
    }
    rc = ares_set_servers_ports_csv(r->channel, c->servers);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errcap, "invalid resolver address \"%s\": %s", c->servers,
                 ares_strerror(rc));
        ares_destroy(r->channel);
        free(r);
        return NULL;
    }
    loop_timer_init(&r->ares_timer, resolver_ares_timer, r);
    loop_timer_init(&r->sweep, resolver_sweep, r);
    if (loop_timer_set(l, &r->sweep, RESOLVER_SWEEP_MS) == -1) {
        snprintf(err, errcap, "adding the resolver's timer failed (%d: %s)",
                 errno, strerror(errno));
        ares_destroy(r->channel);
        free(r);
        return NULL;
    }
    return r;
}


void
resolver_free(struct resolver *r)
{
    if (r == NULL) {
        return;
    }
    /* Waiters are dropped: their owners are going away with r. */
    for (size_t b = 0; b < RESOLVER_BUCKETS; b++) {
        for (struct resolver_entry *e = r->buckets[b]; e != NULL; e = e->next) {
            for (struct resolver_wait *w = e->waiters; w != NULL; w = w->next) {
                w->entry = NULL;
            }
            e->waiters = NULL;
        }
    }
    /* Calls resolver_answer() with ARES_EDESTRUCTION for pending ones. */
    ares_destroy(r->channel);
    for (size_t b = 0; b < RESOLVER_BUCKETS; b++) {
        struct resolver_entry *e = r->buckets[b];
        while (e != NULL) {
            struct resolver_entry *next = e->next;
            loop_timer_cancel(r->loop, &e->deadline);
            free(e);
            e = next;
        }
    }
    for (size_t i = 0; i < RESOLVER_MAX_SOCKS; i++) {
        if (r->socks[i].io.fd >= 0) {
            loop_io_del(r->loop, &r->socks[i].io);
        }
    }
    loop_timer_cancel(r->loop, &r->ares_timer);
    loop_timer_cancel(r->loop, &r->sweep);
    free(r);
}


/*
 * c-ares opened, changed or closed a socket. A socket we cannot watch
 * (epoll_ctl() failed, or no free slot) is logged: its queries get no
 * answer, and every lookup still ends at its resolver_timeout deadline.
 */
static void
resolver_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    struct resolver_sock *free_slot = NULL;
    const uint32_t mask =
        (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);

    for (size_t i = 0; i < RESOLVER_MAX_SOCKS; i++) {
        struct resolver_sock *rs = &r->socks[i];
        if (rs->io.fd == fd) {
            if (mask == 0) {
                loop_io_del(r->loop, &rs->io);
            } else if (loop_io_set(r->loop, &rs->io, mask) == -1) {
                errlog_write(NULL, ERRLOG_ALERT, 0,
                             "epoll_ctl() failed (%d: %s) for a resolver "
                             "socket: its lookups end at resolver_timeout",
                             errno, strerror(errno));
            }
            return;
        }
        if (rs->io.fd < 0 && free_slot == NULL) {
            free_slot = rs;
        }
    }
    if (mask == 0) {
        return;
    }
    if (free_slot == NULL) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "more than %d resolver sockets: the lookups on another "
                     "one end at resolver_timeout",
                     RESOLVER_MAX_SOCKS);
        return;
    }
    loop_io_init(&free_slot->io, fd, resolver_sock_io, free_slot);
    if (loop_io_set(r->loop, &free_slot->io, mask) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "epoll_ctl() failed (%d: %s) for a resolver socket: its "
                     "lookups end at resolver_timeout",
                     errno, strerror(errno));
        loop_io_del(r->loop, &free_slot->io); /* the slot stays free */
    }
}


static void
resolver_sock_io(struct loop_io *io, uint32_t events)
{
    struct resolver_sock *rs = io->data;
    struct resolver *r = rs->r;
    const ares_socket_t fd = io->fd;

    ares_process_fd(r->channel,
                    events & (LOOP_READ | LOOP_ERROR) ? fd : ARES_SOCKET_BAD,
                    events & LOOP_WRITE ? fd : ARES_SOCKET_BAD);
    resolver_rearm(r);
}


static void
resolver_ares_timer(struct loop_timer *t)
{
    struct resolver *r = t->data;

    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    resolver_rearm(r);
}


/*
 * Arms our timer for c-ares' next retransmit or timeout. Without it no
 * retransmit is sent, but each lookup still ends at its own deadline
 * (resolver_deadline); the failure is logged once until it passes.
 */
static void
resolver_rearm(struct resolver *r)
{
    struct timeval tv;
    struct timeval *next = ares_timeout(r->channel, NULL, &tv);

    if (next == NULL) {
        loop_timer_cancel(r->loop, &r->ares_timer);
        return;
    }
    if (loop_timer_set(r->loop, &r->ares_timer,
                       (int64_t)next->tv_sec * 1000 + next->tv_usec / 1000 +
                           1) == -1) {
        if (!r->timer_failed) {
            r->timer_failed = true;
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "adding a timer failed (%d: %s): DNS queries are "
                         "not retransmitted, lookups end at resolver_timeout",
                         errno, strerror(errno));
        }
        return;
    }
    r->timer_failed = false;
}


static void
resolver_unlink(struct resolver_entry *e)
{
    struct resolver *r = e->r;
    struct resolver_entry **p =
        &r->buckets[resolver_hash(e->name, e->len) % RESOLVER_BUCKETS];

    while (*p != NULL && *p != e) {
        p = &(*p)->next;
    }
    if (*p == e) {
        *p = e->next;
        r->nentries--;
        resolver_lru_remove(e);
    }
    e->next = NULL;
}


/* Takes e out of the recency list (a no-op when it is not in it). */
static void
resolver_lru_remove(struct resolver_entry *e)
{
    struct resolver *r = e->r;

    if (e->lru_prev != NULL) {
        e->lru_prev->lru_next = e->lru_next;
    } else if (r->lru == e) {
        r->lru = e->lru_next;
    }
    if (e->lru_next != NULL) {
        e->lru_next->lru_prev = e->lru_prev;
    } else if (r->lru_tail == e) {
        r->lru_tail = e->lru_prev;
    }
    e->lru_prev = e->lru_next = NULL;
}


/* Makes e the most recently used entry. */
static void
resolver_lru_front(struct resolver_entry *e)
{
    struct resolver *r = e->r;

    resolver_lru_remove(e);
    e->lru_next = r->lru;
    if (r->lru != NULL) {
        r->lru->lru_prev = e;
    }
    r->lru = e;
    if (r->lru_tail == NULL) {
        r->lru_tail = e;
    }
}


/*
 * Frees the least recently used entry that no lookup is using (answers,
 * NXDOMAIN and failures alike; a pending one is in flight and stays).
 * Returns false when every entry is pending.
 */
static bool
resolver_evict(struct resolver *r)
{
    for (struct resolver_entry *e = r->lru_tail; e != NULL; e = e->lru_prev) {
        if (!e->pending && e->waiters == NULL && !e->completing) {
            resolver_unlink(e);
            free(e);
            return true;
        }
    }
    return false;
}


/* Hands e's result to every waiter; each is unlinked before its call. */
static void
resolver_complete(struct resolver_entry *e)
{
    struct resolver_result res = e->result;

    /* A waiter's callback may cancel others or start new lookups. */
    e->completing = true;
    while (e->waiters != NULL) {
        struct resolver_wait *w = e->waiters;
        e->waiters = w->next;
        if (e->waiters != NULL) {
            e->waiters->prev = NULL;
        }
        w->entry = NULL;
        w->next = w->prev = NULL;
        w->fn(w->data, &res);
    }
    e->completing = false;
}


/* Records e's answer, caches it for as long as it may be, tells waiters. */
static void
resolver_finish(struct resolver_entry *e, enum resolver_status st,
                int64_t ttl_ms)
{
    struct resolver *r = e->r;

    loop_timer_cancel(r->loop, &e->deadline);
    e->pending = false;
    e->result.status = st;
    /* The rcode label's values follow enum resolver_status. */
    metrics_add(METRICS_GLOBAL, METRIC_RESOLVER_ANSWERS, (size_t)st, 1);
    if (e->cname_ttl_ms >= 0 && (ttl_ms < 0 || e->cname_ttl_ms < ttl_ms)) {
        ttl_ms = e->cname_ttl_ms;
    }
    if (st == RESOLVER_OK) {
        e->expires_ms = clock_now_ms() +
                        (r->conf.valid_ms >= 0 ? r->conf.valid_ms
                                               : (ttl_ms < 0 ? 0 : ttl_ms));
    } else if (st == RESOLVER_NXDOMAIN) {
        /* As nginx: `valid=` is how long any answer is kept, this too. */
        e->expires_ms = clock_now_ms() + (r->conf.valid_ms >= 0
                                              ? r->conf.valid_ms
                                              : RESOLVER_NEGATIVE_MS);
    } else {
        e->expires_ms = clock_now_ms(); /* not cached: ask again */
    }
    e->result.expires_ms = e->expires_ms;
    resolver_complete(e);
}


/* What c-ares' status means for the asker. */
static enum resolver_status
resolver_status_of(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return RESOLVER_OK;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME:
        return RESOLVER_NXDOMAIN;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ECONNREFUSED: /* c-ares 1.18: every server said REFUSED */
        return RESOLVER_SERVFAIL;
    case ARES_ETIMEOUT:
        return RESOLVER_TIMEOUT;
    default:
        return RESOLVER_ERROR;
    }
}


/*
 * Common to both c-ares callbacks: true when e is no longer ours to answer
 * (our deadline answered it, or the resolver is being freed).
 */
static bool
resolver_gone(struct resolver_entry *e, int status)
{
    if (e->orphan) {
        free(e); /* our deadline already answered the waiters */
        return true;
    }
    return status == ARES_EDESTRUCTION; /* resolver_free() frees it */
}


static void
resolver_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct resolver_entry *e = arg;
    struct resolver *r = e->r;
    int64_t ttl_ms = -1;

    (void)timeouts;
    if (resolver_gone(e, status)) {
        ares_freeaddrinfo(ai);
        return;
    }
    e->result.naddrs = 0;
    for (struct ares_addrinfo_node *n = ai ? ai->nodes : NULL;
         status == ARES_SUCCESS && n != NULL &&
         e->result.naddrs < RESOLVER_MAX_ADDRS;
         n = n->ai_next) {
        const size_t i = e->result.naddrs;
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
            n->ai_addrlen > sizeof(e->result.addrs[0])) {
            continue;
        }
        memcpy(&e->result.addrs[i], n->ai_addr, n->ai_addrlen);
        e->result.addrlens[i] = n->ai_addrlen;
        e->result.naddrs++;
        if (ttl_ms == -1 || (int64_t)n->ai_ttl * 1000 < ttl_ms) {
            ttl_ms = (int64_t)(n->ai_ttl < 0 ? 0 : n->ai_ttl) * 1000;
        }
    }
    ares_freeaddrinfo(ai);
    if (status == ARES_SUCCESS && e->result.naddrs == 0) {
        status = ARES_ENODATA;
    }
    if (status == ARES_ENODATA && e->cnames < RESOLVER_MAX_CNAMES) {
        /*
         * "No data" is also what c-ares says when a server answered with
         * the name's CNAME and left the target for us to chase (nginx's
         * resolver chases it): ask for the CNAME itself.
         */
        ares_query(r->channel, e->qname, ns_c_in, ns_t_cname,
                   resolver_cname_answer, e);
        resolver_rearm(r);
        return;
    }
    resolver_finish(e, resolver_status_of(status), ttl_ms);
}


static void
resolver_cname_answer(void *arg, int status, int timeouts,
                      unsigned char *abuf, int alen)
{
    struct resolver_entry *e = arg;
    char target[CNAME_NAME_MAX + 1];
    uint32_t ttl_s = 0;

    (void)timeouts;
    if (resolver_gone(e, status)) {
        return;
    }
    if (status != ARES_SUCCESS || abuf == NULL || alen <= 0 ||
        cname_target(abuf, (size_t)alen, e->qname, target, sizeof(target),
                     &ttl_s) != CNAME_FOUND ||
        strcmp(target, e->name) == 0) {
        /* No CNAME either (or one back to the start): no address. */
        e->result.naddrs = 0;
        resolver_finish(e, RESOLVER_NXDOMAIN, -1);
        return;
    }
    e->cnames++;
    if (e->cname_ttl_ms < 0 || (int64_t)ttl_s * 1000 < e->cname_ttl_ms) {
        e->cname_ttl_ms = (int64_t)ttl_s * 1000;
    }
    resolver_query(e, target);
}


static void
resolver_deadline(struct loop_timer *t)
{
    struct resolver_entry *e = t->data;

    /*
     * c-ares still holds e as its callback argument: unlink it so the next
     * lookup asks again, answer the waiters, free it when c-ares is done.
     */
    resolver_unlink(e);
    e->orphan = true;
    e->pending = false;
    e->result.status = RESOLVER_TIMEOUT;
    e->result.naddrs = 0;
    e->result.expires_ms = clock_now_ms();
    resolver_complete(e);
}


enum resolver_lookup_rc
resolver_lookup(struct resolver *r, const char *name, size_t len,
                struct resolver_wait *w, resolver_fn fn, void *data,
                const struct resolver_result **res)
{
    const uint32_t b = resolver_hash(name, len) % RESOLVER_BUCKETS;
    struct resolver_entry *e;
    bool is_new = false;

    if (len > RESOLVER_NAME_MAX) {
        errno = ENAMETOOLONG;
        return RESOLVER_LOOKUP_REFUSED;
    }
    for (e = r->buckets[b]; e != NULL; e = e->next) {
        if (e->len == len && memcmp(e->name, name, len) == 0) {
            break;
        }
    }
    if (e != NULL) {
        resolver_lru_front(e);
    }
    if (e != NULL && !e->pending) {
        if (clock_now_ms() < e->expires_ms) {
            metrics_add(METRICS_GLOBAL, METRIC_RESOLVER_HITS, 0, 1);
            *res = &e->result;
            return RESOLVER_LOOKUP_ANSWERED;
        }
        /* Expired: ask again in place. */
    }
    if (e == NULL && r->nentries >= r->max_entries) {
        if (!r->full_logged) {
            r->full_logged = true;
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "resolver cache is full (%zu names): the least "
                         "recently used ones are dropped",
                         r->max_entries);
        }
        if (!resolver_evict(r)) {
            errno = ENOBUFS; /* every entry is a lookup in flight */
            return RESOLVER_LOOKUP_REFUSED;
        }
    }
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            errno = ENOMEM;
            return RESOLVER_LOOKUP_REFUSED;
        }
        e->r = r;
        memcpy(e->name, name, len);
        e->len = len;
        loop_timer_init(&e->deadline, resolver_deadline, e);
        e->next = r->buckets[b];
        r->buckets[b] = e;
        r->nentries++;
        resolver_lru_front(e);
        is_new = true;
    }
    /* A query goes out only with its deadline: nobody waits for ever. */
    if (!e->pending &&
        loop_timer_set(r->loop, &e->deadline, r->conf.timeout_ms) == -1) {
        const int err = errno;
        if (is_new) {
            resolver_unlink(e);
            free(e);
        }
        errno = err;
        return RESOLVER_LOOKUP_REFUSED;
    }
    w->fn = fn;
    w->data = data;
    w->entry = e;
    w->prev = NULL;
    w->next = e->waiters;
    if (e->waiters != NULL) {
        e->waiters->prev = w;
    }
    e->waiters = w;
    if (e->pending) {
        return RESOLVER_LOOKUP_QUEUED; /* coalesced with the one in flight */
    }
    e->pending = true;
    e->cnames = 0;
    e->cname_ttl_ms = -1;
    resolver_query(e, e->name);
    return RESOLVER_LOOKUP_QUEUED;
}


/* Asks the servers for name's addresses on behalf of e. */
static void
resolver_query(struct resolver_entry *e, const char *name)
{
    struct resolver *r = e->r;
    struct ares_addrinfo_hints hints;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = r->conf.ipv4 && r->conf.ipv6 ? AF_UNSPEC
                      : r->conf.ipv6               ? AF_INET6
                                                   : AF_INET;
    hints.ai_flags = ARES_AI_NOSORT;
    /* May call resolver_answer() at once (e.g. a bad name). */
    if (name != e->qname) {
        memcpy(e->qname, name, strlen(name) + 1);
    }
    metrics_add(METRICS_GLOBAL, METRIC_RESOLVER_QUERIES, 0, 1);
    ares_getaddrinfo(r->channel, e->qname, NULL, &hints, resolver_answer, e);
    resolver_rearm(r);
}


void
resolver_cancel(struct resolver_wait *w)
{
    struct resolver_entry *e = w->entry;

    if (e == NULL) {
        return;
    }
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        e->waiters = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->entry = NULL;
    w->next = w->prev = NULL;
}


static void
resolver_sweep(struct loop_timer *t)
{
    struct resolver *r = t->data;
    const int64_t now = clock_now_ms();

    for (size_t b = 0; b < RESOLVER_BUCKETS; b++) {
        struct resolver_entry **p = &r->buckets[b];
        while (*p != NULL) {
            struct resolver_entry *e = *p;
            if (!e->pending && e->waiters == NULL && e->expires_ms <= now) {
                *p = e->next;
                r->nentries--;
                resolver_lru_remove(e);
                free(e);
                continue;
            }
            p = &e->next;
        }
    }
    /* Re-armed from its own callback: the heap has its slot (loop.h). */
    const int rc = loop_timer_set(r->loop, &r->sweep, RESOLVER_SWEEP_MS);
    BUG_ON(rc == -1);
}


const char *
resolver_status_text(enum resolver_status st)
{
    switch (st) {
    case RESOLVER_OK:
        return "ok";
    case RESOLVER_NXDOMAIN:
        return "Host not found";
    case RESOLVER_SERVFAIL:
        return "Server failure";
    case RESOLVER_TIMEOUT:
        return "Operation timed out";
    case RESOLVER_ERROR:
        break;
    }
    return "Resolver error";
}


/* An SRV lookup in flight. */
struct resolver_srv_query {
    struct resolver *r;
    resolver_srv_fn fn; /* NULL once answered or cancelled: an orphan */
    void *data;
    struct resolver_srv_query **slot; /* the asker's handle, cleared */
    char name[RESOLVER_NAME_MAX + 1];  /* asked for */
    char qname[RESOLVER_NAME_MAX + 1]; /* asked now: name or a CNAME's */
    unsigned cnames;
    int64_t cname_ttl_ms; /* lowest TTL along the CNAMEs chased; -1: none */
    struct loop_timer deadline;
};


static void
resolver_srv_done(struct resolver_srv_query *q,
                  struct resolver_srv_result *res, int64_t ttl_ms)
{
    const struct resolver *r = q->r;
    const resolver_srv_fn fn = q->fn;
    int64_t keep_ms;

    loop_timer_cancel(q->r->loop, &q->deadline);
    q->fn = NULL; /* an orphan from now on */
    *q->slot = NULL;
    if (q->cname_ttl_ms >= 0 && (ttl_ms < 0 || q->cname_ttl_ms < ttl_ms)) {
        ttl_ms = q->cname_ttl_ms;
    }
    if (res->status == RESOLVER_OK) {
        keep_ms = r->conf.valid_ms >= 0 ? r->conf.valid_ms
                                        : (ttl_ms < 0 ? 0 : ttl_ms);
    } else if (res->status == RESOLVER_NXDOMAIN) {
        keep_ms = r->conf.valid_ms >= 0 ? r->conf.valid_ms
                                        : RESOLVER_NEGATIVE_MS;
    } else {
        keep_ms = 0;
    }
    res->expires_ms = clock_now_ms() + keep_ms;
    fn(q->data, res);
}


static void
resolver_srv_answer(void *arg, int status, int timeouts, unsigned char *abuf,
                    int alen)
{
    struct resolver_srv_query *q = arg;
    struct resolver_srv_result res;
    char chase[RESOLVER_NAME_MAX + 1];
    uint32_t ttl_s = 0;

    (void)timeouts;
    if (q->fn == NULL || status == ARES_EDESTRUCTION) {
        if (q->fn != NULL) {
            *q->slot = NULL; /* the resolver is going: no call */
        }
        loop_timer_cancel(q->r->loop, &q->deadline);
        free(q);
        return;
    }
    memset(&res, 0, sizeof(res));
    if (status != ARES_SUCCESS) {
        /* NOERROR with no answer is "no records": no servers. */
        res.status = resolver_status_of(status);
        resolver_srv_done(q, &res, -1);
        free(q);
        return;
    }
    switch (srv_records(abuf, alen > 0 ? (size_t)alen : 0, q->qname, res.recs,
                        RESOLVER_MAX_SRV, &res.n, chase, &ttl_s)) {
    case SRV_FOUND:
        res.status = RESOLVER_OK;
        resolver_srv_done(q, &res, (int64_t)ttl_s * 1000);
        free(q);
        return;
    case SRV_CNAME:
        if (q->cnames < RESOLVER_MAX_CNAMES && strcmp(chase, q->name) != 0) {
            q->cnames++;
            if (q->cname_ttl_ms < 0 || (int64_t)ttl_s * 1000 < q->cname_ttl_ms) {
                q->cname_ttl_ms = (int64_t)ttl_s * 1000;
            }
            struct resolver *r = q->r; /* q may be gone after the call */
            memcpy(q->qname, chase, strlen(chase) + 1);
            ares_query(r->channel, q->qname, ns_c_in, ns_t_srv,
                       resolver_srv_answer, q);
            resolver_rearm(r);
            return;
        }
        res.status = RESOLVER_NXDOMAIN; /* a loop: no service */
        break;
    case SRV_NONE:
        res.status = RESOLVER_NXDOMAIN;
        break;
    case SRV_BAD:
        res.status = RESOLVER_ERROR;
        break;
    }
    resolver_srv_done(q, &res, -1);
    free(q);
}


/* resolver_timeout ran out: answer now, free q when c-ares is done. */
static void
resolver_srv_deadline(struct loop_timer *t)
{
    struct resolver_srv_query *q = t->data;
    struct resolver_srv_result res;

    memset(&res, 0, sizeof(res));
    res.status = RESOLVER_TIMEOUT;
    resolver_srv_done(q, &res, -1);
}


int
resolver_srv_lookup(struct resolver *r, const char *name, resolver_srv_fn fn,
                    void *data, struct resolver_srv_query **slot)
{
    struct resolver_srv_query *q;
    const size_t len = strlen(name);

    *slot = NULL;
    if (len > RESOLVER_NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        errno = ENOMEM;
        return -1;
    }
    /* A query goes out only with its deadline: nobody waits for ever. */
    loop_timer_init(&q->deadline, resolver_srv_deadline, q);
    if (loop_timer_set(r->loop, &q->deadline, r->conf.timeout_ms) == -1) {
        free(q);
        errno = ENOMEM;
        return -1;
    }
    *slot = q;
    q->slot = slot;
    q->r = r;
    q->fn = fn;
    q->data = data;
    memcpy(q->name, name, len + 1);
    memcpy(q->qname, name, len + 1);
    q->cname_ttl_ms = -1;
    /* May call back at once (e.g. a bad name), clearing *slot. */
    ares_query(r->channel, q->qname, ns_c_in, ns_t_srv, resolver_srv_answer,
               q);
    resolver_rearm(r);
    return 0;
}


void
resolver_srv_cancel(struct resolver_srv_query **slot)
{
    struct resolver_srv_query *q = *slot;

    if (q != NULL) {
        *slot = NULL;
        q->fn = NULL;
        loop_timer_cancel(q->r->loop, &q->deadline);
    }
}
