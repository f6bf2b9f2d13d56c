/* SPDX-License-Identifier: MIT */
/*
 * Run time of `server ... resolve`: each worker looks the name up again as
 * its answer's TTL runs out, puts the addresses into the server's slots and
 * stores them in the server's shared zone. SRV (`service=`): the records of
 * the lowest priority fill the primary slots and the others the backup
 * slots (with `backup` on the line: the lowest ones are the backups and
 * the others are not used), each with its record's port and weight, as
 * nginx does; a failure of the SRV lookup or of any target's keeps the
 * slots as they are.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/bug.h"
#include "core/clock.h"
#include "core/shm.h"
#include "dns/resolver.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "proto/hostname.h"
#include "stream/stream.h"
#include "stream/upstream.h"
#include "stream/upstream_resolve.h"
#include "stream/upstream_zone.h"
#include "stream/upstream/balance.h"


#define UPSTREAM_RESOLVE_MIN_MS 1000   /* lookups at most this often */
#define UPSTREAM_RESOLVE_RETRY_MS 5000 /* after a failed lookup */
#define UPSTREAM_ANSWER_MAX (2 * UPSTREAM_RESOLVE_SLOTS)


/* One address of an answer, as applied and shared. */
struct upstream_addr {
    struct sockaddr_storage addr; /* with its port (SRV) */
    socklen_t addrlen;
    uint16_t weight; /* SRV: the record's (0 made 1); 0: the line's */
    uint8_t back;    /* SRV: goes to the backup slots */
};

/*
 * A server's latest answer in its shared zone, written by whichever worker
 * got it (under the zone's lock).
 */
struct upstream_shared {
    uint64_t version; /* answers stored; 0: none yet */
    uint32_t n;       /* 0: the name has no address */
    struct upstream_addr a[UPSTREAM_ANSWER_MAX];
};

/* An SRV record's target being looked up. */
struct upstream_srv_target {
    struct upstream_resolve *res;
    struct srv_record rec;
    struct resolver_wait wait;
    struct resolver_result result; /* its answer, once in */
    bool answered;
};


static struct loop *upstream_loop; /* this worker's, for the timers */

static void upstream_apply(struct upstream_resolve *res,
                           const struct upstream_addr *a, size_t n);
static void upstream_share(struct upstream_resolve *res,
                           const struct upstream_addr *a, size_t n);
static void upstream_next(struct upstream_resolve *res, int64_t next_ms);
static void upstream_srv_answer(void *data,
                                const struct resolver_srv_result *sr);
static void upstream_srv_target_answer(void *data,
                                       const struct resolver_result *rr);
static void upstream_srv_finish(struct upstream_resolve *res);
static int upstream_resolve_now(struct upstream_resolve *res);


size_t
upstream_resolve_shared_size(void)
{
    return sizeof(struct upstream_shared);
}


/* The peer of res's slot i. */
static struct balance_peer *
upstream_slot(struct upstream_resolve *res, size_t i)
{
    return i < res->nfront ? &res->u->bal.peers[res->first + i]
                           : &res->u->bal.peers[res->first_back + i -
                                                res->nfront];
}


static size_t
upstream_slot_index(const struct upstream_resolve *res, size_t i)
{
    return i < res->nfront ? res->first + i
                           : res->first_back + i - res->nfront;
}


/* Schedules res's next lookup next_ms from now (at least the minimum). */
static void
upstream_next(struct upstream_resolve *res, int64_t next_ms)
{
    if (next_ms < UPSTREAM_RESOLVE_MIN_MS) {
        next_ms = UPSTREAM_RESOLVE_MIN_MS;
    }
    /* Armed since the lookup began (upstream_resolve_now): only moved. */
    const int rc = loop_timer_set(upstream_loop, &res->timer, next_ms);
    BUG_ON(rc == -1);
}


/* An A/AAAA answer for a plain `resolve` server. */
static void
upstream_resolved(void *data, const struct resolver_result *rr)
{
    struct upstream_resolve *res = data;
    int64_t next_ms = UPSTREAM_RESOLVE_RETRY_MS;

    if (rr->status == RESOLVER_OK || rr->status == RESOLVER_NXDOMAIN) {
        /*
         * NXDOMAIN and an empty answer are answers: the name has no
         * address now, so its servers go down (nginx drops them too).
         */
        struct upstream_addr a[UPSTREAM_ANSWER_MAX];
        const size_t n = rr->status == RESOLVER_OK ? rr->naddrs : 0;
        bool was_up = false;

        for (size_t i = 0; i < res->nslots; i++) {
            was_up = was_up || !upstream_slot(res, i)->down;
        }
        if (rr->status == RESOLVER_NXDOMAIN && was_up) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "%s has no address (%s) for upstream \"%s\"; "
                         "its servers are down until it has",
                         res->host, resolver_status_text(rr->status),
                         res->u->name);
        }
        memset(a, 0, sizeof(a));
        for (size_t i = 0; i < n && i < UPSTREAM_ANSWER_MAX; i++) {
            memcpy(&a[i].addr, &rr->addrs[i], rr->addrlens[i]);
            a[i].addrlen = rr->addrlens[i];
        }
        upstream_apply(res, a, n < UPSTREAM_ANSWER_MAX ? n : UPSTREAM_ANSWER_MAX);
        upstream_share(res, a, n < UPSTREAM_ANSWER_MAX ? n : UPSTREAM_ANSWER_MAX);
        next_ms = rr->expires_ms - clock_now_ms();
    } else {
        /* A failure is no answer: keep the last good addresses, as nginx
         * does, and ask again. */
        errlog_write(NULL, ERRLOG_ERR, 0,
                     "%s could not be resolved (%d: %s) "
                     "for upstream \"%s\"",
                     res->host, (int)rr->status,
                     resolver_status_text(rr->status), res->u->name);
    }
    upstream_next(res, next_ms);
}


/*
 * Fills res's slots from the n addresses of an answer: the front ones in
 * order, then (SRV) the back ones; slots left over are down, as are all
 * when the line says `down`. A slot whose address changed forgets its
 * failures. Not SRV: every address gets the line's port.
 */
static void
upstream_apply(struct upstream_resolve *res, const struct upstream_addr *a,
               size_t n)
{
    bool filled[UPSTREAM_ANSWER_MAX] = {false};
    bool reweigh = false;
    size_t front = 0, back = res->nfront;

    for (size_t k = 0; k < n; k++) {
        size_t i;
        struct balance_peer *p;
        struct sockaddr *sa;
        struct sockaddr_storage want;

        if (a[k].addrlen > sizeof(want) || a[k].addrlen == 0) {
            continue;
        }
        if (!a[k].back && front < res->nfront) {
            i = front++;
        } else if (a[k].back && back < res->nslots) {
            i = back++;
        } else {
            continue; /* more than the slots hold */
        }
        p = upstream_slot(res, i);
        memcpy(&want, &a[k].addr, a[k].addrlen);
        sa = (struct sockaddr *)&want;
        if (!res->srv) {
            if (sa->sa_family == AF_INET) {
                ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)res->port);
            } else {
                ((struct sockaddr_in6 *)sa)->sin6_port =
                    htons((uint16_t)res->port);
            }
        }
        if (p->down || p->addrlen != a[k].addrlen ||
            memcmp(&p->addr, &want, a[k].addrlen) != 0) {
            memcpy(&p->addr, &want, a[k].addrlen);
            p->addrlen = a[k].addrlen;
            p->fails = 0;
            upstream_zone_forget(res->u, upstream_slot_index(res, i));
            sock_addr_text(sa, res->names[i], SOCK_ADDR_TEXT_MAX);
        }
        if (a[k].weight != 0 && p->weight != a[k].weight) {
            p->weight = a[k].weight;
            p->effective_weight = a[k].weight;
            p->current_weight = 0;
            reweigh = true;
        }
        p->down = res->down;
        filled[i] = true;
    }
    for (size_t i = 0; i < res->nslots; i++) {
        if (!filled[i]) {
            upstream_slot(res, i)->down = true;
        }
    }
    if (reweigh) {
        balance_reweigh(&res->u->bal);
    }
}


/* Stores the answer a (n addresses) as res's latest, for the others. */
static void
upstream_share(struct upstream_resolve *res, const struct upstream_addr *a,
               size_t n)
{
    struct upstream_shared *sh;

    if (res->shared == NULL || shm_lock(res->shared, NULL) == SHM_LOCK_FAILED) {
        return;
    }
    sh = (struct upstream_shared *)res->shared->data;
    sh->n = (uint32_t)n;
    if (n > 0) { /* an empty answer may come with a == NULL */
        memcpy(sh->a, a, n * sizeof(*a));
    }
    sh->version++;
    shm_unlock(res->shared);
}


/* The SRV records of res's name: now the targets' addresses. */
static void
upstream_srv_answer(void *data, const struct resolver_srv_result *sr)
{
    struct upstream_resolve *res = data;

    if (sr->status == RESOLVER_NXDOMAIN) {
        /* No records (or no such name): no servers, as nginx. */
        bool was_up = false;
        for (size_t i = 0; i < res->nslots; i++) {
            was_up = was_up || !upstream_slot(res, i)->down;
        }
        if (was_up) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "%s has no SRV records for upstream \"%s\"; its "
                         "servers are down until it has",
                         res->host, res->u->name);
        }
        upstream_apply(res, NULL, 0);
        upstream_share(res, NULL, 0);
        upstream_next(res, sr->expires_ms - clock_now_ms());
        return;
    }
    if (sr->status != RESOLVER_OK) {
        errlog_write(NULL, ERRLOG_ERR, 0,
                     "%s could not be resolved (%d: %s) for upstream \"%s\"",
                     res->host, (int)sr->status,
                     resolver_status_text(sr->status), res->u->name);
        upstream_next(res, UPSTREAM_RESOLVE_RETRY_MS);
        return;
    }
    res->srv_expires_ms = sr->expires_ms;
    res->ntargets = sr->n;
    res->targets_pending = sr->n;
    for (size_t i = 0; i < sr->n; i++) {
        res->targets[i].rec = sr->recs[i];
        res->targets[i].answered = false;
    }
    /* Counted down by each answer; the last one (here or later) ends it. */
    for (size_t i = 0; i < sr->n; i++) {
        struct upstream_srv_target *t = &res->targets[i];
        const struct resolver_result *rr = NULL;
        char name[HOSTNAME_MAX + 1];
        size_t len;
        const char *why;

        if (hostname_normalize(t->rec.target, strlen(t->rec.target), name,
                               sizeof(name), &len, &why) != HOSTNAME_OK) {
            static const struct resolver_result bad = {.status = RESOLVER_ERROR};
            errlog_write(NULL, ERRLOG_ERR, 0,
                         "SRV target \"%s\" of %s for upstream \"%s\" is "
                         "not a host name (%s)",
                         t->rec.target, res->host, res->u->name, why);
            rr = &bad;
        } else {
            switch (resolver_lookup(res->resolver->r, name, len, &t->wait,
                                    upstream_srv_target_answer, t, &rr)) {
            case RESOLVER_LOOKUP_ANSWERED:
                break;
            case RESOLVER_LOOKUP_QUEUED:
                continue; /* answered later */
            case RESOLVER_LOOKUP_REFUSED: {
                static const struct resolver_result refused = {
                    .status = RESOLVER_ERROR};
                errlog_write(NULL, ERRLOG_ERR, 0,
                             "SRV target \"%s\" of %s for upstream \"%s\": "
                             "the lookup was refused (%d: %s)",
                             t->rec.target, res->host, res->u->name, errno,
                             strerror(errno));
                rr = &refused;
                break;
            }
            }
        }
        upstream_srv_target_answer(t, rr);
    }
}


static void
upstream_srv_target_answer(void *data, const struct resolver_result *rr)
{
    struct upstream_srv_target *t = data;
    struct upstream_resolve *res = t->res;

    t->result = *rr;
    t->answered = true;
    if (--res->targets_pending == 0) {
        upstream_srv_finish(res);
    }
}


/*
 * Every target has answered: the lowest priority's records are the
 * primaries, the others backups (dropped when the server has no backup
 * slots), each address with its record's port and weight.
 */
static void
upstream_srv_finish(struct upstream_resolve *res)
{
    struct upstream_addr a[UPSTREAM_ANSWER_MAX];
    int64_t expires_ms = res->srv_expires_ms;
    unsigned lowest = 65536;
    size_t n = 0;

    for (size_t i = 0; i < res->ntargets; i++) {
        const struct upstream_srv_target *t = &res->targets[i];
        const enum resolver_status st = t->result.status;

        if (st != RESOLVER_OK && st != RESOLVER_NXDOMAIN) {
            /* As nginx: a failed target keeps the servers as they are. */
            errlog_write(NULL, ERRLOG_ERR, 0,
                         "%s (SRV target of %s) could not be resolved "
                         "(%d: %s) for upstream \"%s\"",
                         t->rec.target, res->host, (int)st,
                         resolver_status_text(st), res->u->name);
            upstream_next(res, UPSTREAM_RESOLVE_RETRY_MS);
            return;
        }
        if (t->rec.priority < lowest) {
            lowest = t->rec.priority;
        }
        if (t->result.expires_ms < expires_ms) {
            expires_ms = t->result.expires_ms;
        }
    }
    memset(a, 0, sizeof(a));
    for (size_t i = 0; i < res->ntargets; i++) {
        const struct upstream_srv_target *t = &res->targets[i];
        const int w = t->rec.weight == 0 ? 1 : t->rec.weight;

        for (size_t j = 0; t->result.status == RESOLVER_OK &&
                           j < t->result.naddrs && n < UPSTREAM_ANSWER_MAX;
             j++) {
            struct sockaddr *sa = (struct sockaddr *)&a[n].addr;

            memcpy(&a[n].addr, &t->result.addrs[j], t->result.addrlens[j]);
            a[n].addrlen = t->result.addrlens[j];
            if (sa->sa_family == AF_INET) {
                ((struct sockaddr_in *)sa)->sin_port = htons(t->rec.port);
            } else {
                ((struct sockaddr_in6 *)sa)->sin6_port = htons(t->rec.port);
            }
            a[n].weight = (uint16_t)(w > BALANCE_MAX_WEIGHT ? BALANCE_MAX_WEIGHT
                                                            : w);
            a[n].back = t->rec.priority != lowest;
            n++;
        }
    }
    upstream_apply(res, a, n);
    upstream_share(res, a, n);
    upstream_next(res, expires_ms - clock_now_ms());
}


/*
 * Starts res from the latest answer any worker stored (this generation's
 * or, after a reload, the one before), if there is one.
 */
static void
upstream_seed(struct upstream_resolve *res)
{
    struct upstream_shared copy;
    enum shm_lock_rc rc;

    if (res->shared == NULL) {
        return;
    }
    rc = shm_lock(res->shared, NULL);
    if (rc == SHM_LOCK_FAILED) {
        return;
    }
    if (rc == SHM_LOCKED_HOLDER_DIED) {
        /* A writer died half-way: forget the answer. */
        memset(res->shared->data, 0, res->shared->data_len);
    }
    memcpy(&copy, res->shared->data, sizeof(copy));
    shm_unlock(res->shared);
    if (copy.version > 0 && copy.n <= UPSTREAM_ANSWER_MAX) {
        upstream_apply(res, copy.a, copy.n);
    }
}


/*
 * Asks for res's name (or SRV records) again. Its timer is armed first, as
 * the retry: it then stays armed until upstream_next() moves it, which
 * needs no memory, so looking up again never stops for want of a timer.
 * Returns 0, or -1 (errno ENOMEM) when the timer could not be armed.
 */
static int
upstream_resolve_now(struct upstream_resolve *res)
{
    const struct resolver_result *rr = NULL;

    if (loop_timer_set(upstream_loop, &res->timer,
                       UPSTREAM_RESOLVE_RETRY_MS) == -1) {
        return -1;
    }
    if (res->wait.entry != NULL || res->srv_q != NULL ||
        res->targets_pending > 0) {
        return 0; /* the lookup in flight ends by its own deadline */
    }
    if (res->srv) {
        if (resolver_srv_lookup(res->resolver->r, res->host,
                                upstream_srv_answer, res, &res->srv_q) != 0) {
            errlog_write(NULL, ERRLOG_ERR, 0,
                         "SRV lookup of %s for upstream \"%s\" could not "
                         "start (%d: %s); trying again",
                         res->host, res->u->name, errno, strerror(errno));
        }
        return 0;
    }
    switch (resolver_lookup(res->resolver->r, res->host, strlen(res->host),
                            &res->wait, upstream_resolved, res, &rr)) {
    case RESOLVER_LOOKUP_ANSWERED:
        upstream_resolved(res, rr);
        break;
    case RESOLVER_LOOKUP_QUEUED:
        break;
    case RESOLVER_LOOKUP_REFUSED:
        errlog_write(NULL, ERRLOG_ERR, 0,
                     "%s could not be resolved for upstream \"%s\": the "
                     "lookup was refused (%d: %s); trying again",
                     res->host, res->u->name, errno, strerror(errno));
        break;
    }
    return 0;
}


void
upstream_resolve_timer(struct loop_timer *t)
{
    struct upstream_resolve *res = t->data;

    if (res->resolver->r == NULL) {
        return;
    }
    /* Re-armed from its own callback: the heap has its slot (loop.h). */
    const int rc = upstream_resolve_now(res);
    BUG_ON(rc == -1);
}


int
upstream_resolve_start(struct stream_conf *conf, struct loop *l)
{
    upstream_loop = l;
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            upstream_seed(r);
            if (r->resolver->r != NULL && upstream_resolve_now(r) == -1) {
                return -1;
            }
        }
    }
    return 0;
}


void
upstream_resolve_stop(struct stream_conf *conf)
{
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            resolver_cancel(&r->wait);
            resolver_srv_cancel(&r->srv_q);
            for (size_t i = 0; r->targets != NULL && i < RESOLVER_MAX_SRV;
                 i++) {
                resolver_cancel(&r->targets[i].wait);
            }
            r->targets_pending = 0;
            if (upstream_loop != NULL) {
                loop_timer_cancel(upstream_loop, &r->timer);
            }
        }
    }
}


void
upstream_take_resolved(struct stream_conf *conf, struct stream_conf *old)
{
    for (struct stream_upstream *u = conf->upstreams; u != NULL; u = u->next) {
        const struct stream_upstream *ou =
            upstream_find(old, u->name, strlen(u->name));

        if (ou == NULL) {
            continue;
        }
        for (struct upstream_resolve *r = u->resolves; r != NULL; r = r->next) {
            for (struct upstream_resolve *o = ou->resolves; o != NULL;
                 o = o->next) {
                /* The port may change: the answer's addresses get the
                 * new server's port when applied. */
                if (o->shared != NULL && o->srv == r->srv &&
                    strcmp(o->host, r->host) == 0) {
                    shm_zone_free(r->shared);
                    r->shared = o->shared;
                    o->shared = NULL;
                    break;
                }
            }
        }
    }
}


/* An SRV server's target lookups: room for RESOLVER_MAX_SRV. */
struct upstream_srv_target *
upstream_srv_targets_new(struct arena *a, struct upstream_resolve *res)
{
    struct upstream_srv_target *t =
        arena_alloc(a, sizeof(*t) * RESOLVER_MAX_SRV);

    if (t != NULL) {
        memset(t, 0, sizeof(*t) * RESOLVER_MAX_SRV);
        for (size_t i = 0; i < RESOLVER_MAX_SRV; i++) {
            t[i].res = res;
        }
    }
    return t;
}
