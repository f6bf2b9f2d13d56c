/* SPDX-License-Identifier: MIT */
/*
 * map{}: declared in a first pass (so its variable may be used anywhere in
 * stream{}), compiled when its directive is reached. Keys go into a
 * hostmatch; each value is a template that may use variables and the
 * captures of a regex key ($1, or $name for (?<name>...)).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "stream/hostmatch.h"
#include "stream/map.h"
#include "stream/stream.h"
#include "stream/vars.h"


/* Lets a value name a capture group of the regex key it belongs to. */
struct map_resolve {
    struct stream_conf *conf;
    const struct hostmatch *keys; /* NULL when the key is not a regex */
};


static const char *map_located(struct conf_ctx *cf, const struct conf_node *c,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int map_value_resolve(void *data, const char *name, size_t len,
                             bool *is_capture);
static const char *map_value(struct conf_ctx *cf, struct stream_conf *conf,
                             struct stream_map *m, const char *text,
                             bool is_regex, struct tmpl *t);


/*
 * A message about a line inside the map, located at that line; returned in
 * cf->nested so conf_dispatch() passes it on as it is.
 */
static const char *
map_located(struct conf_ctx *cf, const struct conf_node *c, const char *fmt,
            ...)
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
map_declare(struct conf_ctx *cf, struct stream_conf *conf,
            const struct conf_node *n)
{
    struct stream_map *m;
    struct stream_map **maps;
    const char *dst;
    bool unused;

    /* geo takes an optional source: `geo [$address] $variable`. */
    if (n->nargs != 3 && !(n->nargs == 2 && strcmp(n->args[0], "geo") == 0)) {
        return conf_msg(cf, "invalid number of arguments in \"%s\" directive",
                        n->args[0]);
    }
    dst = n->args[n->nargs - 1];
    if (dst[0] != '$' || dst[1] == '\0') {
        return conf_msg(cf, "invalid variable name \"%s\"", dst);
    }
    dst++;
    if (vars_resolve(conf, dst, strlen(dst), &unused) >= 0) {
        return conf_msg(cf, "the duplicate \"%s\" variable", dst);
    }
    m = arena_alloc(cf->arena, sizeof(*m));
    maps = realloc(conf->maps, (conf->nmaps + 1) * sizeof(*maps));
    if (m == NULL || maps == NULL) {
        free(maps == conf->maps ? NULL : maps);
        return "out of memory";
    }
    conf->maps = maps;
    m->var_name = dst;
    m->var_id = VAR_BUILTIN_COUNT + (int)conf->nmaps;
    m->node = n;
    conf->maps[conf->nmaps++] = m;
    return NULL;
}


static int
map_value_resolve(void *data, const char *name, size_t len, bool *is_capture)
{
    const struct map_resolve *r = data;

    if (r->keys != NULL) {
        const int group = hostmatch_last_group(r->keys, name, len);
        if (group >= 0) {
            *is_capture = true;
            return group;
        }
    }
    return vars_resolve(r->conf, name, len, is_capture);
}


static const char *
map_value(struct conf_ctx *cf, struct stream_conf *conf, struct stream_map *m,
          const char *text, bool is_regex, struct tmpl *t)
{
    struct map_resolve r = {conf, is_regex ? m->keys : NULL};
    char err[256];

    if (tmpl_compile(cf->arena, text, strlen(text), map_value_resolve, &r, t,
                     err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    return NULL;
}


const char *
map_compile(struct conf_ctx *cf, struct stream_conf *conf, struct stream_map *m)
{
    const struct conf_node *n = m->node;
    char err[512];
    const char *rv;
    struct tmpl *value;

    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     conf, &m->source, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    /* hostnames changes how keys are read, so look for it first. */
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        if (c->nargs == 1 && strcmp(c->args[0], "hostnames") == 0) {
            m->hostnames = true;
        }
    }
    m->keys = hostmatch_new(m->hostnames);
    if (m->keys == NULL) {
        return "out of memory";
    }
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        const char *key = c->args[0];

        if (c->is_block) {
            return map_located(cf, c, "unexpected \"{\"");
        }
        if (c->nargs == 1 &&
            (strcmp(key, "hostnames") == 0 || strcmp(key, "volatile") == 0)) {
            m->is_volatile = m->is_volatile || key[0] == 'v';
            continue;
        }
        if (c->nargs != 2) {
            return map_located(cf, c, "invalid number of the map parameters");
        }
        if (strcmp(key, "default") == 0) {
            rv = map_value(cf, conf, m, c->args[1], false, &m->default_value);
            if (rv != NULL) {
                return map_located(cf, c, "%s", rv);
            }
            continue;
        }
        /*
         * The value is compiled after its key is added, so that it can name
         * the key's capture groups; the key holds the value's address.
         */
        struct stream_map_value *mv = arena_alloc(cf->arena, sizeof(*mv));
        if (mv == NULL) {
            return "out of memory";
        }
        mv->key = key;
        mv->next = m->values;
        m->values = mv;
        value = &mv->t;
        if (hostmatch_add(m->keys, key, strlen(key), value, err, sizeof(err)) ==
            -1) {
            return map_located(cf, c, "%s", err);
        }
        rv = map_value(cf, conf, m, c->args[1], key[0] == '~', value);
        if (rv != NULL) {
            return map_located(cf, c, "%s", rv);
        }
    }
    return NULL;
}


void
map_free(struct stream_map *m)
{
    hostmatch_free(m->keys);
    m->keys = NULL;
}
