/* SPDX-License-Identifier: MIT */
/*
 * map{}: a variable whose value is looked up from another value, with
 * nginx's exact, wildcard (hostnames) and regex keys.
 */
#ifndef SNIRELAY_STREAM_MAP_H
#define SNIRELAY_STREAM_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/tmpl.h"

struct conf_ctx;
struct conf_node;
struct geo;
struct hostmatch;
struct split_clients;
struct stream_conf;
struct stream_set_var;

/* A key's value; listed so the whole map can be inspected. */
struct stream_map_value {
    struct tmpl t;    /* first: the hostmatch value points here */
    const char *key;  /* as written in the map */
    uint32_t metrics; /* its route series (stream/stats.c) */
    struct stream_map_value *next;
};

struct stream_map {
    const char *var_name;            /* the variable it defines, without '$' */
    int var_id;                      /* its id in the registry */
    struct tmpl source;              /* the value looked up */
    struct hostmatch *keys;          /* key -> struct tmpl * value */
    struct tmpl default_value;       /* empty unless `default` */
    uint32_t default_metrics;        /* the route series of `default` */
    struct stream_map_value *values; /* every key's value */
    bool hostnames;
    bool is_volatile;             /* accepted; values are never cached anyway */
    const struct conf_node *node; /* compiled in a second pass */
    struct geo *geo;              /* a geo{} variable: its table; else NULL */
    struct split_clients *split;  /* a split_clients{} variable; else NULL */
    const struct stream_set_var *set_var; /* a `set` of it overrides the
                                             map's value, or NULL */
};

/*
 * First pass over stream{}: registers the variable of every map (and of
 * every geo and split_clients, which share this registry: n->args[0] says
 * which) so that any directive may use it wherever the block stands.
 * Returns NULL or a message.
 */
const char *map_declare(struct conf_ctx *cf, struct stream_conf *conf,
                        const struct conf_node *n);

/* Second pass: compiles the map's keys and values. NULL or a message. */
const char *map_compile(struct conf_ctx *cf, struct stream_conf *conf,
                        struct stream_map *m);

/* Frees what the map holds outside the arena. */
void map_free(struct stream_map *m);

#endif
