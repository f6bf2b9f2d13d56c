/* SPDX-License-Identifier: MIT */
/*
 * Shared counters. A zone is a shared mapping (core/shm) made by the
 * master before the workers fork, holding a salt and a table of counts
 * per (key hash, worker pid) (core/owned_counts). Keys are hashed to 64
 * bits (FNV-1a, salted per zone) and only the hash is kept, so an entry
 * has a fixed size (16 bytes: a 10m zone holds about 450,000 keys at the
 * table's bounded probing, more than nginx's 64-byte nodes).
 *
 * A worker that dies gives nothing back itself: the master reaps its pid
 * from every zone (limit_conn_reap()), and the zone's robust lock tells
 * the next locker when the dead worker held it, which then rebuilds the
 * table. So a kill -9 at any instruction leaks no count and stops no one.
 */

#include <stdio.h>
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
#include "stream/core.h"
#include "stream/limit_conn.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/upstream_zone.h"
#include "stream/vars.h"


#define LIMIT_CONN_MIN_SIZE 4096


/* The zone's data: the key salt, then the table. */
struct limit_conn_data {
    uint64_t salt;
    uint64_t pad;
    struct owned_counts table;
};


static enum shm_lock_rc limit_conn_lock(struct shm_zone *z);
static uint64_t limit_conn_hash(uint64_t salt, const char *key, size_t len);
static struct limit_conn_data *limit_conn_data(struct shm_zone *z);


static struct limit_conn_data *
limit_conn_data(struct shm_zone *z)
{
    return (struct limit_conn_data *)(void *)z->data;
}


/*
 * Takes z's lock; when its holder died inside, rebuilds the table first
 * (what the dead one held is reaped by the master when it sees the
 * death).
 */
static enum shm_lock_rc
limit_conn_lock(struct shm_zone *z)
{
    int32_t dead = 0;
    const enum shm_lock_rc rc = shm_lock(z, &dead);

    if (rc == SHM_LOCKED_HOLDER_DIED) {
        struct owned_counts *const t = &limit_conn_data(z)->table;
        void *const scratch = malloc(owned_counts_size(t->nslots));

        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "process %d died holding a limit_conn zone lock: "
                     "table rebuilt%s",
                     (int)dead, scratch == NULL ? " empty (out of memory)" : "");
        owned_counts_repair(t, scratch);
        free(scratch);
    }
    return rc;
}


static uint64_t
limit_conn_hash(uint64_t salt, const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ull ^ salt;

    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
    }
    return h == 0 ? 1 : h;
}


const char *
limit_conn_zone_set(struct conf_ctx *cf, const struct conf_node *n,
                    const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct limit_conn_zone *z;
    const char *spec = n->args[2];
    const char *colon;
    int64_t size;
    char err[256];

    (void)cmd;
    (void)conf;
    if (strncmp(spec, "zone=", 5) != 0 || (colon = strchr(spec, ':')) == NULL) {
        return conf_msg(cf, "invalid zone \"%s\"", spec);
    }
    if (units_parse_size(colon + 1, strlen(colon + 1), &size) == -1 ||
        size < LIMIT_CONN_MIN_SIZE) {
        return conf_msg(cf, "zone \"%.*s\" is too small",
                        (int)(colon - spec - 5), spec + 5);
    }
    z = arena_alloc(cf->arena, sizeof(*z));
    if (z == NULL) {
        return "out of memory";
    }
    z->name = arena_strndup(cf->arena, spec + 5, (size_t)(colon - spec - 5));
    for (struct limit_conn_zone *o = st->conf->zones; o != NULL; o = o->next) {
        if (strcmp(o->name, z->name) == 0) {
            return conf_msg(cf, "duplicate zone \"%s\"", z->name);
        }
    }
    /* One name space for every shared zone, as nginx. */
    if (upstream_zone_find(st->conf, z->name) != NULL) {
        return conf_msg(cf,
                        "the shared memory zone \"%s\" is already declared "
                        "for a different use",
                        z->name);
    }
    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     st->conf, &z->key, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    z->size = (size_t)size;
    z->shm = shm_zone_new(z->size);
    if (z->shm == NULL) {
        return conf_msg(cf, "mmap(%zu) failed for zone \"%s\"", z->size,
                        z->name);
    }

    struct limit_conn_data *const d = limit_conn_data(z->shm);

    if (owned_counts_init(&d->table,
                          z->shm->data_len - offsetof(struct limit_conn_data,
                                                      table)) == NULL) {
        return conf_msg(cf, "zone \"%s\" is too small", z->name);
    }
    d->salt = (uint64_t)(uintptr_t)z->shm ^ 0x9e3779b97f4a7c15ull;
    z->next = st->conf->zones;
    st->conf->zones = z;
    return NULL;
}


const char *
limit_conn_set(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_settings *set = conf;
    struct limit_conn_rule *r;
    struct limit_conn_rule **tail = &set->limit_conns;
    size_t count = 0;
    int limit;

    (void)cmd;
    r = arena_alloc(cf->arena, sizeof(*r));
    if (r == NULL) {
        return "out of memory";
    }
    for (r->zone = st->conf->zones; r->zone != NULL; r->zone = r->zone->next) {
        if (strcmp(r->zone->name, n->args[1]) == 0) {
            break;
        }
    }
    if (r->zone == NULL) {
        return conf_msg(cf, "unknown limit_conn_zone \"%s\"", n->args[1]);
    }
    if (units_parse_int(n->args[2], strlen(n->args[2]), &limit) == -1 ||
        limit < 1) {
        return conf_msg(cf, "invalid number of connections \"%s\"", n->args[2]);
    }
    r->limit = limit;
    while (*tail != NULL) {
        if ((*tail)->zone == r->zone) {
            return "is duplicate";
        }
        tail = &(*tail)->next;
        count++;
    }
    if (count >= LIMIT_CONN_MAX_RULES) {
        return conf_msg(cf, "at most %d \"limit_conn\" per server",
                        LIMIT_CONN_MAX_RULES);
    }
    *tail = r;
    return NULL;
}


const char *
limit_conn_log_level_set(struct conf_ctx *cf, const struct conf_node *n,
                         const struct conf_cmd *cmd, void *conf)
{
    struct stream_settings *set = conf;
    const int level = errlog_level_parse(n->args[1]);

    (void)cmd;
    if (set->limit_conn_log_level != CONF_UNSET) {
        return "is duplicate";
    }
    /* nginx takes these four only. */
    if (level < ERRLOG_ERR || level > ERRLOG_INFO) {
        return conf_msg(cf, "invalid value \"%s\" in \"%s\" directive, it "
                            "must be \"info\", \"notice\", \"warn\" or "
                            "\"error\"",
                        n->args[1], n->args[0]);
    }
    set->limit_conn_log_level = level;
    return NULL;
}


void
limit_conn_take_zones(struct stream_conf *conf, struct stream_conf *old)
{
    for (struct limit_conn_zone *z = conf->zones; z != NULL; z = z->next) {
        for (struct limit_conn_zone *o = old->zones; o != NULL; o = o->next) {
            if (o->shm != NULL && strcmp(o->name, z->name) == 0 &&
                o->size == z->size) {
                shm_zone_free(z->shm);
                z->shm = o->shm;
                o->shm = NULL;
                break;
            }
        }
    }
}


void
limit_conn_free_zones(struct stream_conf *conf)
{
    for (struct limit_conn_zone *z = conf->zones; z != NULL; z = z->next) {
        shm_zone_free(z->shm);
        z->shm = NULL;
    }
}


uint64_t
limit_conn_reap(struct stream_conf *conf, int pid)
{
    uint64_t freed = 0;

    for (struct limit_conn_zone *z = conf->zones; z != NULL; z = z->next) {
        if (z->shm == NULL || limit_conn_lock(z->shm) == SHM_LOCK_FAILED) {
            continue;
        }
        freed += owned_counts_reap(&limit_conn_data(z->shm)->table,
                                   (uint32_t)pid);
        shm_unlock(z->shm);
    }
    return freed;
}


/* PREACCESS: limit_conn, after set. */
enum phase_rc
limit_conn_phase(struct session *s)
{
    return limit_conn_acquire(s) ? PHASE_NEXT : PHASE_DONE;
}


bool
limit_conn_acquire(struct session *s)
{
    if (s->server->set.limit_conns == NULL) {
        return true; /* and no getpid() for every session */
    }
    const uint32_t self = (uint32_t)getpid();

    s->limits = malloc(LIMIT_CONN_MAX_RULES * sizeof(*s->limits));
    if (s->limits == NULL) {
        session_fail(s, "malloc()");
        return false;
    }

    for (const struct limit_conn_rule *r = s->server->set.limit_conns;
         r != NULL; r = r->next) {
        struct limit_conn_zone *const zone = r->zone;
        struct shm_zone *const z = zone->shm; /* never NULL in a worker */
        const char *key;
        size_t len;
        enum owned_counts_rc rc;

        vars_reset();
        key = vars_eval(s, &zone->key, &len);
        if (key == NULL || len == 0) {
            continue; /* nginx: an empty key is not counted */
        }
        s->limit_conn_status = LIMIT_CONN_STATUS_PASSED;

        const uint64_t h = limit_conn_hash(limit_conn_data(z)->salt, key, len);

        if (limit_conn_lock(z) == SHM_LOCK_FAILED) {
            rc = OWNED_COUNTS_FULL;
        } else {
            rc = owned_counts_take(&limit_conn_data(z)->table, h, self,
                                   (uint32_t)r->limit);
            shm_unlock(z);
        }
        if (rc == OWNED_COUNTS_OK) {
            s->limits[s->nlimits].shm = z;
            s->limits[s->nlimits].hash = h;
            s->nlimits++;
            continue;
        }
        if (rc == OWNED_COUNTS_OVER && s->server->set.limit_conn_dry_run) {
            /* nginx: logged and let through, not counted. */
            s->limit_conn_status = LIMIT_CONN_STATUS_REJECTED_DRY_RUN;
            session_log(s,
                        (enum errlog_level)s->server->set.limit_conn_log_level,
                        "limiting connections, dry run, by zone \"%s\"",
                        zone->name);
            continue;
        }
        if (rc == OWNED_COUNTS_FULL) {
            /* nginx answers 503 when its zone has no room: so do we. */
            if (!zone->is_full_logged) {
                zone->is_full_logged = true;
                session_log(s, ERRLOG_ALERT,
                            "limit_conn zone \"%s\" is full: sessions "
                            "with new keys are refused (logged once)",
                            zone->name);
            }
        } else {
            session_log(s,
                        (enum errlog_level)s->server->set.limit_conn_log_level,
                        "limiting connections by zone \"%s\"", zone->name);
        }
        s->limit_conn_status = LIMIT_CONN_STATUS_REJECTED;
        session_finalize(s, 503);
        return false;
    }
    return true;
}


void
limit_conn_release(struct session *s)
{
    if (s->nlimits == 0) {
        free(s->limits);
        s->limits = NULL;
        return;
    }
    const uint32_t self = (uint32_t)getpid();

    for (size_t i = 0; i < s->nlimits; i++) {
        struct shm_zone *const z = s->limits[i].shm;

        if (limit_conn_lock(z) == SHM_LOCK_FAILED) {
            continue;
        }
        owned_counts_give(&limit_conn_data(z)->table, s->limits[i].hash, self);
        shm_unlock(z);
    }
    s->nlimits = 0;
    free(s->limits);
    s->limits = NULL;
}
