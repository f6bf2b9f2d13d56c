/* SPDX-License-Identifier: MIT */
/*
 * `set $variable VALUE;`: variables are declared in a first pass over
 * stream{} (as maps are), so a `set` variable may be used anywhere, also
 * before the line that sets it and in servers that never set it (where it
 * is empty, nginx's "uninitialized variable"). Values are evaluated in the
 * PREACCESS phase, in the order of the server's `set` lines, into memory of
 * the session's own (struct session_var), freed by session_finalize().
 */

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "log/errlog.h"
#include "stream/core.h"
#include "stream/map.h"
#include "stream/session.h"
#include "stream/set.h"
#include "stream/stream.h"
#include "stream/vars.h"


const char *
set_declare(struct conf_ctx *cf, struct stream_conf *conf,
            const struct conf_node *n)
{
    const char *name = n->nargs == 3 ? n->args[1] : NULL;
    struct stream_set_var *v;
    bool unused;
    int id;

    if (name == NULL) {
        return NULL; /* the directive's own check words the message */
    }
    if (name[0] != '$' || name[1] == '\0') {
        return conf_msg(cf, "invalid variable name \"%s\"", name);
    }
    name++;
    if (set_find(conf, name, strlen(name)) != NULL) {
        return NULL; /* another `set` of the same variable */
    }
    id = vars_resolve(conf, name, strlen(name), &unused);
    if (id >= 0 && id < VAR_BUILTIN_COUNT) {
        /* nginx's built-in stream variables cannot be changed. */
        return conf_msg(cf, "the duplicate \"%s\" variable", name);
    }
    v = arena_alloc(cf->arena, sizeof(*v));
    if (v == NULL) {
        return "out of memory";
    }
    v->name = name;
    v->slot = conf->nset_vars;
    v->var_id = SET_VAR_BASE + (int)v->slot;
    if (id >= 0) {
        /* A map's variable: `set` overrides the map's value. */
        for (size_t i = 0; i < conf->nmaps; i++) {
            if (conf->maps[i]->var_id == id) {
                conf->maps[i]->set_var = v;
                v->var_id = id;
            }
        }
    }
    v->next = conf->set_vars;
    conf->set_vars = v;
    conf->nset_vars++;
    return NULL;
}


const struct stream_set_var *
set_find(const struct stream_conf *conf, const char *name, size_t len)
{
    for (const struct stream_set_var *v = conf->set_vars; v != NULL;
         v = v->next) {
        if (strlen(v->name) == len && memcmp(v->name, name, len) == 0) {
            return v;
        }
    }
    return NULL;
}


const struct stream_set_var *
set_by_id(const struct stream_conf *conf, int id)
{
    for (const struct stream_set_var *v = conf->set_vars; v != NULL;
         v = v->next) {
        if (v->var_id == id) {
            return v;
        }
    }
    return NULL;
}


const char *
set_directive(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_server *srv = st->server;
    const char *name = n->args[1];
    struct stream_set_var *v;
    struct stream_set_cmd *c;
    struct stream_set_cmd **tail = &srv->sets;
    char err[256];

    (void)cmd;
    (void)conf;
    if (name[0] != '$' || name[1] == '\0') {
        return conf_msg(cf, "invalid variable name \"%s\"", name);
    }
    v = (struct stream_set_var *)set_find(st->conf, name + 1, strlen(name + 1));
    if (v == NULL) {
        return "the variable was not declared"; /* set_declare() saw all */
    }
    c = arena_alloc(cf->arena, sizeof(*c));
    if (c == NULL) {
        return "out of memory";
    }
    if (tmpl_compile(cf->arena, n->args[2], strlen(n->args[2]), vars_resolve,
                     st->conf, &c->value, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    c->var = v;
    c->line = n->line;
    c->next_of_var = v->cmds;
    v->cmds = c;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = c;
    return NULL;
}


/* PREACCESS: the server's `set` lines, in order. */
enum phase_rc
set_phase(struct session *s)
{
    for (const struct stream_set_cmd *c = s->server->sets; c != NULL;
         c = c->next) {
        struct session_var *sv;
        const char *val;
        size_t len;
        char *copy;

        if (s->vars == NULL) {
            s->vars = calloc(s->conf->nset_vars, sizeof(*s->vars));
            if (s->vars == NULL) {
                session_fail(s, "calloc()");
                return PHASE_DONE;
            }
        }
        vars_reset();
        val = vars_eval(s, &c->value, &len);
        if (val == NULL) {
            session_log(s, ERRLOG_ERR, "the value of \"$%s\" is too long",
                        c->var->name);
            session_finalize(s, 500);
            return PHASE_DONE;
        }
        copy = malloc(len + 1);
        if (copy == NULL) {
            session_fail(s, "malloc()");
            return PHASE_DONE;
        }
        memcpy(copy, val, len);
        copy[len] = '\0';
        sv = &s->vars[c->var->slot];
        free(sv->data);
        sv->data = copy;
        sv->len = len;
        sv->is_set = true;
    }
    return PHASE_NEXT;
}


void
set_release(struct session *s)
{
    if (s->vars == NULL) {
        return;
    }
    for (size_t i = 0; i < s->conf->nset_vars; i++) {
        free(s->vars[i].data);
        s->vars[i].data = NULL;
    }
    free(s->vars);
    s->vars = NULL;
}
