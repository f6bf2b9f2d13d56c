/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the blocks whose lines are keys, not directives:
 * map{} (src/stream/map.c, keys in src/stream/hostmatch.c, values as
 * templates), geo{} (src/stream/geo.c: networks, ranges, delete, default)
 * and split_clients{} (src/stream/split_clients.c: percentages).
 *
 * The input is configuration text for the inside of stream{}, parsed with
 * conf_tree_parse_text() (no file is opened). Its top-level map, geo and
 * split_clients blocks are declared and compiled as stream{} does (all
 * declared first, then compiled in order until one fails), over an empty
 * stream{} and with warnings formatted but written nowhere. Then every
 * key text is looked up in its table: a lookup must give NULL or one of
 * the block's values; in a map without hostnames every plain key must
 * find a value. Everything is freed as stream_conf_free() does. Any broken
 * rule traps.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "log/errlog.h"
#include "stream/geo.h"
#include "stream/hostmatch.h"
#include "stream/map.h"
#include "stream/split_clients.h"
#include "stream/stream.h"
#include "fuzz.h"


static bool is_ours(const struct conf_node *n);
static bool is_value_of(const struct stream_map *m, const void *v);
static void check_lookups(const struct stream_map *m);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct errlog quiet = {.fd = -1, .level = ERRLOG_DEBUG,
                                  .path = "quiet"};
    char *const text = malloc(size > 0 ? size : 1);
    struct conf_err err;

    CHECK(text != NULL);
    memcpy(text, data, size);
    errlog_set_default(&quiet);

    struct conf_tree *const t =
        conf_tree_parse_text("fuzz.conf", text, size, &err);

    free(text);
    if (t == NULL) {
        return 0;
    }

    struct stream_conf conf;
    struct conf_ctx cf;
    const char *rv = NULL;

    memset(&conf, 0, sizeof(conf));
    memset(&cf, 0, sizeof(cf));
    conf.tree = t;
    conf.arena = t->arena;
    cf.arena = t->arena;
    for (const struct conf_node *n = t->root; n != NULL && rv == NULL;
         n = n->next) {
        if (is_ours(n)) {
            rv = map_declare(&cf, &conf, n);
        }
    }
    size_t compiled = 0;
    for (; compiled < conf.nmaps && rv == NULL; compiled++) {
        struct stream_map *const m = conf.maps[compiled];

        if (strcmp(m->node->args[0], "geo") == 0) {
            rv = geo_compile(&cf, &conf, m);
        } else if (strcmp(m->node->args[0], "split_clients") == 0) {
            rv = split_clients_compile(&cf, &conf, m);
        } else {
            rv = map_compile(&cf, &conf, m);
        }
        if (rv == NULL) {
            check_lookups(m);
        }
    }
    if (rv != NULL) {
        CHECK(rv[0] != '\0');
    }
    for (size_t i = 0; i < conf.nmaps; i++) {
        map_free(conf.maps[i]);
    }
    free(conf.maps);
    conf_tree_free(t);
    return 0;
}


/* A block conf_dispatch() would hand to core_map(). */
static bool
is_ours(const struct conf_node *n)
{
    if (!n->is_block) {
        return false;
    }
    if (strcmp(n->args[0], "geo") == 0) {
        return n->nargs == 2 || n->nargs == 3;
    }
    return (strcmp(n->args[0], "map") == 0 ||
            strcmp(n->args[0], "split_clients") == 0) &&
           n->nargs == 3;
}


static bool
is_value_of(const struct stream_map *m, const void *v)
{
    if (v == NULL || v == &m->default_value) {
        return true;
    }
    for (const struct stream_map_value *mv = m->values; mv != NULL;
         mv = mv->next) {
        if (v == &mv->t) {
            return true;
        }
    }
    return false;
}


static void
check_lookups(const struct stream_map *m)
{
    for (const struct conf_node *c = m->node->children; c != NULL;
         c = c->next) {
        for (size_t i = 0; i < c->nargs; i++) {
            const char *const key = c->args[i];
            const size_t len = strlen(key);

            if (m->geo != NULL) {
                CHECK(is_value_of(m, geo_find_text(m->geo, key, len)));
                continue;
            }
            if (m->split != NULL) {
                (void)split_clients_find(m->split, key, len);
                continue;
            }
            struct hostmatch_caps caps;
            const void *const v = hostmatch_find(m->keys, key, len, &caps);

            CHECK(is_value_of(m, v));
            if (i == 0 && c->nargs == 2 && !m->hostnames && len > 0 &&
                key[0] != '~' && key[0] != '\\' &&
                strcmp(key, "default") != 0) {
                CHECK(v != NULL);
            }
        }
    }
}
