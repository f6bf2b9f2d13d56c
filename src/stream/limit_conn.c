/* SPDX-License-Identifier: MIT */
/*
 * Shared counters. A zone is one anonymous shared mapping made by the
 * master before the workers fork: a spin lock and an open-addressed table
 * of (key hash, count) slots. Keys are hashed to 64 bits (FNV-1a, salted per
 * zone) and only the hash is kept, so a slot has a fixed size; a slot whose
 * count is back at 0 may be claimed by another key.
 *
 * Known cost: a worker killed while holding the lock would stop every
 * worker at this lock; the critical section is a few dozen instructions.
 */

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/units.h"
#include "log/errlog.h"
#include "stream/core.h"
#include "stream/limit_conn.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"


#define LIMIT_CONN_MIN_SIZE 4096


struct limit_conn_slot {
    uint64_t hash;  /* 0: never used */
    uint32_t count; /* live sessions with this key */
    uint32_t pad;
};

struct limit_conn_shm {
    int lock; /* 0 free, 1 held */
    uint32_t pad;
    uint64_t salt;
    size_t nslots;
    struct limit_conn_slot slots[]; /* nslots */
};


static void limit_conn_lock(struct limit_conn_shm *z);
static void limit_conn_unlock(struct limit_conn_shm *z);
static uint64_t limit_conn_hash(uint64_t salt, const char *key, size_t len);


static void
limit_conn_lock(struct limit_conn_shm *z)
{
    /* Bounded in practice: the holder runs a short, non-blocking section. */
    while (__atomic_exchange_n(&z->lock, 1, __ATOMIC_ACQUIRE) != 0) {
        sched_yield();
    }
}


static void
limit_conn_unlock(struct limit_conn_shm *z)
{
    __atomic_store_n(&z->lock, 0, __ATOMIC_RELEASE);
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
    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     st->conf, &z->key, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    z->size = (size_t)size;
    z->shm = mmap(NULL, z->size, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (z->shm == MAP_FAILED) {
        z->shm = NULL;
        return conf_msg(cf, "mmap(%zu) failed for zone \"%s\"", z->size,
                        z->name);
    }
    z->shm->nslots = (z->size - sizeof(*z->shm)) / sizeof(z->shm->slots[0]);
    z->shm->salt = (uint64_t)(uintptr_t)z->shm ^ 0x9e3779b97f4a7c15ull;
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


void
limit_conn_take_zones(struct stream_conf *conf, struct stream_conf *old)
{
    for (struct limit_conn_zone *z = conf->zones; z != NULL; z = z->next) {
        for (struct limit_conn_zone *o = old->zones; o != NULL; o = o->next) {
            if (o->shm != NULL && strcmp(o->name, z->name) == 0 &&
                o->size == z->size) {
                munmap(z->shm, z->size);
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
        if (z->shm != NULL) {
            munmap(z->shm, z->size);
            z->shm = NULL;
        }
    }
}


bool
limit_conn_acquire(struct session *s)
{
    for (const struct limit_conn_rule *r = s->server->set.limit_conns;
         r != NULL; r = r->next) {
        struct limit_conn_shm *z = r->zone->shm;
        const char *key;
        size_t len;
        uint64_t h;
        size_t i;
        size_t free_slot = SIZE_MAX;
        bool over = false;

        vars_reset();
        key = vars_eval(s, &r->zone->key, &len);
        if (key == NULL || len == 0) {
            continue; /* nginx: an empty key is not counted */
        }
        h = limit_conn_hash(z->salt, key, len);
        limit_conn_lock(z);
        for (i = 0; i < z->nslots; i++) {
            struct limit_conn_slot *sl = &z->slots[(h + i) % z->nslots];
            if (sl->hash == h) {
                break;
            }
            if (sl->count == 0 && free_slot == SIZE_MAX) {
                free_slot = (h + i) % z->nslots;
            }
            if (sl->hash == 0) {
                i = z->nslots; /* end of the chain: not present */
                break;
            }
        }
        if (i < z->nslots) {
            free_slot = (h + i) % z->nslots;
        }
        if (free_slot == SIZE_MAX) {
            over = true; /* the zone is full */
        } else {
            struct limit_conn_slot *sl = &z->slots[free_slot];
            if (sl->hash != h) {
                sl->hash = h;
                sl->count = 0;
            }
            if ((int)sl->count >= r->limit) {
                over = true;
            } else {
                sl->count++;
                s->limits[s->nlimits].shm = z;
                s->limits[s->nlimits].slot = free_slot;
                s->nlimits++;
            }
        }
        limit_conn_unlock(z);
        if (over) {
            session_log(s, ERRLOG_ERR,
                        "limiting connections by zone "
                        "\"%s\"",
                        r->zone->name);
            session_finalize(s, 503);
            return false;
        }
    }
    return true;
}


void
limit_conn_release(struct session *s)
{
    for (size_t i = 0; i < s->nlimits; i++) {
        struct limit_conn_shm *z = s->limits[i].shm;
        limit_conn_lock(z);
        if (z->slots[s->limits[i].slot].count > 0) {
            z->slots[s->limits[i].slot].count--;
        }
        limit_conn_unlock(z);
    }
    s->nlimits = 0;
}
