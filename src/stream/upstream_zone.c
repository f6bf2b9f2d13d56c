/* SPDX-License-Identifier: MIT */
/*
 * Upstream zones: shared run-time state of upstream servers; see
 * upstream_zone.h.
 *
 * A zone's data: a header, one struct peer_state per server of every
 * upstream naming the zone (in the order the upstreams were read, each
 * upstream's servers from u->zone_first on), then a table of connection
 * counts keyed by (server index + 1, worker pid). So the size a zone
 * needs is 32 bytes per server plus 16 per (server, worker) with
 * connections open; nginx's minimum (8 pages) holds over a thousand.
 */

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/owned_counts.h"
#include "core/shm.h"
#include "core/units.h"
#include "log/errlog.h"
#include "stream/upstream/balance.h"
#include "stream/core.h"
#include "stream/limit_conn.h"
#include "stream/peer_state.h"
#include "stream/stream.h"
#include "stream/upstream_zone.h"


/* nginx: a zone of fewer than 8 pages "is too small". */
#define UPSTREAM_ZONE_MIN_PAGES 8


struct upstream_zone_data {
    uint64_t npeers; /* states in peers[] */
    uint64_t pad;
    struct peer_state peers[]; /* then the counts table */
};


static struct upstream_zone_data *upstream_zone_data(struct shm_zone *z);
static struct owned_counts *upstream_zone_table(struct shm_zone *z);
static enum shm_lock_rc upstream_zone_lock(struct upstream_zone *z);
static bool upstream_zone_is_used(const struct stream_upstream *u,
                                  const struct balancer *b);
static void upstream_zone_load(struct stream_upstream *u);
static uint64_t upstream_zone_key(const struct stream_upstream *u,
                                  const struct balance_peer *p);


static struct upstream_zone_data *
upstream_zone_data(struct shm_zone *z)
{
    return (struct upstream_zone_data *)(void *)z->data;
}


static struct owned_counts *
upstream_zone_table(struct shm_zone *z)
{
    struct upstream_zone_data *const d = upstream_zone_data(z);

    return (struct owned_counts *)(void *)&d->peers[d->npeers];
}


const char *
upstream_zone_set(struct conf_ctx *cf, const struct conf_node *n,
                  const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_upstream *u = conf;
    struct upstream_zone *z;
    int64_t size = 0;

    (void)cmd;
    if (n->args[1][0] == '\0') {
        return conf_msg(cf, "invalid zone name \"%s\"", n->args[1]);
    }
    if (n->nargs == 3) {
        const long page = sysconf(_SC_PAGESIZE);

        if (units_parse_size(n->args[2], strlen(n->args[2]), &size) == -1) {
            return conf_msg(cf, "invalid zone size \"%s\"", n->args[2]);
        }
        if (size <
            (int64_t)UPSTREAM_ZONE_MIN_PAGES * (page > 0 ? page : 4096)) {
            return conf_msg(cf, "zone \"%s\" is too small", n->args[1]);
        }
    }
    /* One name space for every shared zone, as nginx. */
    for (const struct limit_conn_zone *o = st->conf->zones; o != NULL;
         o = o->next) {
        if (strcmp(o->name, n->args[1]) == 0) {
            return conf_msg(cf,
                            "the shared memory zone \"%s\" is already "
                            "declared for a different use",
                            n->args[1]);
        }
    }
    z = upstream_zone_find(st->conf, n->args[1]);
    if (z == NULL) {
        z = arena_alloc(cf->arena, sizeof(*z));
        if (z == NULL) {
            return "out of memory";
        }
        memset(z, 0, sizeof(*z));
        z->name = n->args[1];
        z->file = n->file;
        z->line = n->line;
        z->next = st->conf->upzones;
        st->conf->upzones = z;
    }
    if (z->size == 0) {
        z->size = (size_t)size;
    }
    if (size != 0 && (size_t)size != z->size) {
        return conf_msg(cf,
                        "the size %lld of shared memory zone \"%s\" "
                        "conflicts with already declared size %zu",
                        (long long)size, z->name, z->size);
    }
    /* A second `zone` line in one upstream wins, as in nginx. */
    u->zone = z;
    return NULL;
}


struct upstream_zone *
upstream_zone_find(const struct stream_conf *conf, const char *name)
{
    for (struct upstream_zone *z = conf->upzones; z != NULL; z = z->next) {
        if (strcmp(z->name, name) == 0) {
            return z;
        }
    }
    return NULL;
}


const char *
upstream_zone_finish(struct conf_ctx *cf, struct stream_conf *conf)
{
    for (struct upstream_zone *z = conf->upzones; z != NULL; z = z->next) {
        size_t need;

        if (z->size == 0) {
            return conf_msg(cf, "zero size shared memory zone \"%s\" in %s:%u",
                            z->name, z->file, z->line);
        }
        z->npeers = 0;
        for (struct stream_upstream *u = conf->upstreams; u != NULL;
             u = u->next) {
            if (u->zone == z) {
                u->zone_first = z->npeers;
                z->npeers += u->bal.npeers;
            }
        }
        need = sizeof(struct upstream_zone_data) +
               z->npeers * sizeof(struct peer_state) +
               owned_counts_size(OWNED_COUNTS_PROBE_MAX);
        if (need > z->size) {
            return conf_msg(cf,
                            "zone \"%s\" is too small for its %zu servers "
                            "(%zu bytes needed) in %s:%u",
                            z->name, z->npeers, need, z->file, z->line);
        }
        z->shm = shm_zone_new(z->size);
        if (z->shm == NULL) {
            return conf_msg(cf, "mmap(%zu) failed for zone \"%s\" in %s:%u",
                            z->size, z->name, z->file, z->line);
        }

        struct upstream_zone_data *const d = upstream_zone_data(z->shm);

        d->npeers = z->npeers;
        for (struct stream_upstream *u = conf->upstreams; u != NULL;
             u = u->next) {
            if (u->zone == z) {
                peer_state_init(&d->peers[u->zone_first], u->bal.peers,
                                u->bal.npeers);
            }
        }
        owned_counts_init(
            upstream_zone_table(z->shm),
            z->shm->data_len -
                (size_t)((unsigned char *)upstream_zone_table(z->shm) -
                         z->shm->data));
    }
    return NULL;
}


void
upstream_zone_free_all(struct stream_conf *conf)
{
    for (struct upstream_zone *z = conf->upzones; z != NULL; z = z->next) {
        shm_zone_free(z->shm);
        z->shm = NULL;
    }
}


/*
 * Takes z's lock; when its holder died inside, mends the states and the
 * counts table first (what the dead one held is reaped by the master).
 */
static enum shm_lock_rc
upstream_zone_lock(struct upstream_zone *z)
{
    int32_t dead = 0;
    const enum shm_lock_rc rc = shm_lock(z->shm, &dead);

    if (rc == SHM_LOCKED_HOLDER_DIED) {
        struct upstream_zone_data *const d = upstream_zone_data(z->shm);
        struct owned_counts *const t = upstream_zone_table(z->shm);
        void *const scratch = malloc(owned_counts_size(t->nslots));

        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "process %d died holding upstream zone \"%s\" lock: "
                     "state mended%s",
                     (int)dead, z->name,
                     scratch == NULL ? ", counts emptied (out of memory)" : "");
        peer_state_mend(d->peers, (size_t)d->npeers);
        owned_counts_repair(t, scratch);
        free(scratch);
    }
    return rc;
}


uint64_t
upstream_zone_reap(struct stream_conf *conf, int pid)
{
    uint64_t freed = 0;

    for (struct upstream_zone *z = conf->upzones; z != NULL; z = z->next) {
        if (z->shm == NULL || upstream_zone_lock(z) == SHM_LOCK_FAILED) {
            continue;
        }
        freed += owned_counts_reap(upstream_zone_table(z->shm), (uint32_t)pid);
        shm_unlock(z->shm);
    }
    return freed;
}


/* True when b is u's own balancer and u keeps its state in a zone. */
static bool
upstream_zone_is_used(const struct stream_upstream *u, const struct balancer *b)
{
    return u != NULL && u->zone != NULL && u->zone->shm != NULL && b == &u->bal;
}


static uint64_t
upstream_zone_key(const struct stream_upstream *u, const struct balance_peer *p)
{
    return (uint64_t)(u->zone_first + (size_t)(p - u->bal.peers)) + 1;
}


/* Under the lock: the shared state and counts into u's balancer. */
static void
upstream_zone_load(struct stream_upstream *u)
{
    struct shm_zone *const z = u->zone->shm;
    const struct owned_counts *const t = upstream_zone_table(z);

    peer_state_load(u->bal.peers, &upstream_zone_data(z)->peers[u->zone_first],
                    u->bal.npeers);
    for (size_t i = 0; i < u->bal.npeers; i++) {
        u->bal.peers[i].conns =
            (unsigned)owned_counts_total(t, (uint64_t)(u->zone_first + i) + 1);
    }
}


struct balance_peer *
upstream_peer_pick(struct stream_upstream *u, struct balancer *b,
                   struct balance_try *t, int64_t now_ms, bool *is_shared)
{
    struct balance_peer *p;

    *is_shared = false;
    if (!upstream_zone_is_used(u, b) ||
        upstream_zone_lock(u->zone) == SHM_LOCK_FAILED) {
        return balance_pick(b, t, now_ms);
    }
    upstream_zone_load(u);
    p = balance_pick(b, t, now_ms);
    peer_state_store(&upstream_zone_data(u->zone->shm)->peers[u->zone_first],
                     b->peers, b->npeers);
    if (p != NULL) {
        /* The limit was checked on the totals just loaded. */
        const enum owned_counts_rc rc =
            owned_counts_take(upstream_zone_table(u->zone->shm),
                              upstream_zone_key(u, p), (uint32_t)getpid(), 0);

        *is_shared = (rc == OWNED_COUNTS_OK);
        if (!*is_shared && !u->zone->is_full_logged) {
            u->zone->is_full_logged = true;
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "upstream zone \"%s\" has no room to count "
                         "connections: some are not shared (logged once)",
                         u->zone->name);
        }
    }
    shm_unlock(u->zone->shm);
    return p;
}


void
upstream_zone_forget(struct stream_upstream *u, size_t i)
{
    if (!upstream_zone_is_used(u, &u->bal) || i >= u->bal.npeers ||
        upstream_zone_lock(u->zone) == SHM_LOCK_FAILED) {
        return;
    }
    upstream_zone_data(u->zone->shm)->peers[u->zone_first + i].fails = 0;
    shm_unlock(u->zone->shm);
}


void
upstream_peer_connected(struct stream_upstream *u, struct balancer *b,
                        struct balance_peer *p)
{
    struct peer_state *st;

    if (!upstream_zone_is_used(u, b) ||
        upstream_zone_lock(u->zone) == SHM_LOCK_FAILED) {
        balance_connected(b, p);
        return;
    }
    st = &upstream_zone_data(u->zone->shm)
              ->peers[u->zone_first + (size_t)(p - b->peers)];
    peer_state_load(p, st, 1);
    balance_connected(b, p);
    peer_state_store(st, p, 1);
    shm_unlock(u->zone->shm);
}


void
upstream_peer_failed(struct stream_upstream *u, struct balancer *b,
                     struct balance_peer *p, int64_t now_ms, bool is_shared)
{
    if (!upstream_zone_is_used(u, b)) {
        balance_done(b, p, true, now_ms);
        return;
    }
    if (upstream_zone_lock(u->zone) == SHM_LOCK_FAILED) {
        if (p->conns == 0) {
            p->conns = 1; /* the local count is only a copy here */
        }
        balance_done(b, p, true, now_ms);
        return;
    }
    upstream_zone_load(u);
    if (p->conns == 0) {
        p->conns = 1; /* a count emptied by a mend: nothing to give */
    }
    balance_done(b, p, true, now_ms);
    peer_state_store(&upstream_zone_data(u->zone->shm)->peers[u->zone_first],
                     b->peers, b->npeers);
    if (is_shared) {
        owned_counts_give(upstream_zone_table(u->zone->shm),
                          upstream_zone_key(u, p), (uint32_t)getpid());
    }
    shm_unlock(u->zone->shm);
}


void
upstream_peer_release(struct stream_upstream *u, struct balancer *b,
                      struct balance_peer *p, bool is_shared)
{
    if (!upstream_zone_is_used(u, b)) {
        balance_release(b, p);
        return;
    }
    if (!is_shared) {
        /* Counted only in the local copy, which the next load replaces. */
        if (p->conns > 0) {
            p->conns--;
        }
        return;
    }
    if (upstream_zone_lock(u->zone) == SHM_LOCK_FAILED) {
        return;
    }
    owned_counts_give(upstream_zone_table(u->zone->shm),
                      upstream_zone_key(u, p), (uint32_t)getpid());
    shm_unlock(u->zone->shm);
}
