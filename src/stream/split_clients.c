/* SPDX-License-Identifier: MIT */
/*
 * split_clients{}: percentages become cumulative bounds over the 32-bit
 * hash space exactly as nginx computes them (each share is rounded down on
 * its own), so a value lands in the group nginx would pick; values are
 * constants, as in nginx.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "stream/map.h"
#include "stream/split_clients.h"
#include "stream/tmpl.h"
#include "stream/vars.h"


#define SPLIT_MURMUR_M 0x5bd1e995u
#define SPLIT_HUNDRED_PERCENT 10000 /* in hundredths */


static const char *split_clients_located(struct conf_ctx *cf,
                                         const struct conf_node *c,
                                         const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *split_clients_part(struct conf_ctx *cf, struct stream_map *m,
                                      struct split_clients_part *part,
                                      const struct conf_node *c);


uint32_t
split_clients_murmur2(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = (uint32_t)len; /* seed 0 ^ len, truncated as nginx's */

    while (len >= 4) {
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                     (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= SPLIT_MURMUR_M;
        k ^= k >> 24;
        k *= SPLIT_MURMUR_M;
        h *= SPLIT_MURMUR_M;
        h ^= k;
        p += 4;
        len -= 4;
    }
    switch (len) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= p[0];
        h *= SPLIT_MURMUR_M;
        break;
    default:
        break;
    }
    h ^= h >> 13;
    h *= SPLIT_MURMUR_M;
    h ^= h >> 15;
    return h;
}


int64_t
split_clients_percent(const char *text, size_t len)
{
    int64_t value = 0;
    unsigned point = 2; /* decimals still allowed */
    bool dot = false;

    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (point == 0) {
            return -1;
        }
        if (text[i] == '.') {
            if (dot) {
                return -1;
            }
            dot = true;
            continue;
        }
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        if (value > (INT64_MAX - 9) / 10) {
            return -1;
        }
        value = value * 10 + (text[i] - '0');
        point -= dot;
    }
    while (point-- > 0) {
        if (value > INT64_MAX / 10) {
            return -1;
        }
        value *= 10;
    }
    return value == 0 ? -1 : value;
}


int
split_clients_finish(struct split_clients *sc, size_t *bad)
{
    uint64_t sum = 0;
    uint32_t last = 0;

    for (size_t i = 0; i < sc->nparts; i++) {
        struct split_clients_part *part = &sc->parts[i];

        sum = part->percent != 0 ? sum + part->percent : SPLIT_HUNDRED_PERCENT;
        if (sum > SPLIT_HUNDRED_PERCENT) {
            *bad = i;
            return -1;
        }
        if (part->percent != 0) {
            last += (uint32_t)(part->percent * (uint64_t)0xffffffff /
                               SPLIT_HUNDRED_PERCENT);
            part->percent = last;
        }
    }
    return 0;
}


const void *
split_clients_find(const struct split_clients *sc, const char *key, size_t len)
{
    const uint32_t hash = split_clients_murmur2(key, len);

    for (size_t i = 0; i < sc->nparts; i++) {
        const struct split_clients_part *part = &sc->parts[i];
        if (hash < part->percent || part->percent == 0) {
            return part->value;
        }
    }
    return NULL;
}


/* A message located at line c of the block, passed on as it is. */
static const char *
split_clients_located(struct conf_ctx *cf, const struct conf_node *c,
                      const char *fmt, ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(cf->nested.msg, sizeof(cf->nested.msg), "%s in %s:%u", text,
             c->file, c->line);
    return cf->nested.msg;
}


const char *
split_clients_compile(struct conf_ctx *cf, struct stream_conf *conf,
                      struct stream_map *m)
{
    const struct conf_node *n = m->node;
    struct split_clients *sc;
    size_t count = 0;
    size_t bad = 0;
    char err[512];

    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     conf, &m->source, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        count++;
    }
    sc = arena_alloc(cf->arena, sizeof(*sc));
    if (sc == NULL ||
        (count > 0 && (sc->parts = arena_alloc(
                           cf->arena, count * sizeof(*sc->parts))) == NULL)) {
        return "out of memory";
    }
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        const char *rv = split_clients_part(cf, m, &sc->parts[sc->nparts], c);
        if (rv != NULL) {
            return rv;
        }
        sc->nparts++;
    }
    if (split_clients_finish(sc, &bad) == -1) {
        const struct conf_node *c = n->children;
        for (size_t i = 0; i < bad; i++) {
            c = c->next;
        }
        return split_clients_located(cf, c,
                                     "percent total is greater than 100%%");
    }
    m->split = sc;
    return NULL;
}


/* One line, `PERCENT% VALUE;` or `* VALUE;`, as nginx's handler. */
static const char *
split_clients_part(struct conf_ctx *cf, struct stream_map *m,
                   struct split_clients_part *part, const struct conf_node *c)
{
    const char *key = c->args[0];
    const size_t len = strlen(key);
    struct stream_map_value *mv;

    if (c->is_block) {
        return split_clients_located(cf, c, "unexpected \"{\"");
    }
    if (c->nargs != 2) {
        return split_clients_located(cf, c,
                                     "invalid number of the split_clients "
                                     "parameters");
    }
    if (strcmp(key, "*") == 0) {
        part->percent = 0;
    } else {
        const int64_t pct = len > 0 && key[len - 1] == '%'
                                ? split_clients_percent(key, len - 1)
                                : -1;
        if (pct == -1 || pct > UINT32_MAX) {
            return split_clients_located(cf, c, "invalid percent value \"%s\"",
                                         key);
        }
        part->percent = (uint32_t)pct;
    }
    mv = arena_alloc(cf->arena, sizeof(*mv));
    if (mv == NULL ||
        tmpl_literal(cf->arena, c->args[1], strlen(c->args[1]), &mv->t) == -1) {
        return "out of memory";
    }
    mv->next = m->values;
    m->values = mv;
    part->value = &mv->t;
    return NULL;
}
