/* SPDX-License-Identifier: MIT */
/*
 * `set $variable VALUE;` (server context), as nginx's ngx_stream_set_module
 * (1.19.3): in the PREACCESS phase, before limit_conn, each `set` of the
 * session's server evaluates VALUE (text and variables) and stores it in
 * the session. A variable that only `set` defines is empty where no `set`
 * ran; `set` on a map's variable overrides the map's value from then on.
 */
#ifndef SNIRELAY_STREAM_SET_H
#define SNIRELAY_STREAM_SET_H

#include <stddef.h>

#include "stream/tmpl.h"

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct session;
struct stream_conf;

/* Ids of variables only `set` defines: SET_VAR_BASE + slot. */
#define SET_VAR_BASE 0x100000

struct stream_set_cmd;

/* One variable that `set` writes (lives in the generation's arena). */
struct stream_set_var {
    const char *name;            /* without '$' */
    int var_id;                  /* its id in templates */
    size_t slot;                 /* index in struct session's vars */
    struct stream_set_cmd *cmds; /* every `set` of it (vars_is_client) */
    struct stream_set_var *next;
};

/* One `set` line of a server. */
struct stream_set_cmd {
    struct stream_set_var *var;
    struct tmpl value;
    unsigned line;
    struct stream_set_cmd *next;        /* the server's next `set`, in order */
    struct stream_set_cmd *next_of_var; /* the next `set` of the same var */
};

/*
 * First pass over stream{} (after the maps are declared): registers the
 * variable of the `set` line n so any directive may use it. A built-in
 * name is refused; a map's name is taken over. NULL or a message.
 */
const char *set_declare(struct conf_ctx *cf, struct stream_conf *conf,
                        const struct conf_node *n);

/* The `set` directive: compiles VALUE for the server being read. */
const char *set_directive(struct conf_ctx *cf, const struct conf_node *n,
                          const struct conf_cmd *cmd, void *conf);

/* The declared variable of that name (len bytes), or NULL. */
const struct stream_set_var *set_find(const struct stream_conf *conf,
                                      const char *name, size_t len);

/* The `set` variable of id (>= SET_VAR_BASE), or NULL. */
const struct stream_set_var *set_by_id(const struct stream_conf *conf, int id);

/* Frees what `set` gave s (session_finalize()). */
void set_release(struct session *s);

#endif
