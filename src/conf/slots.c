/* SPDX-License-Identifier: MIT */
/*
 * Directive dispatch (nginx's ngx_conf_handler()) and the generic setters
 * (ngx_conf_set_*_slot()), with nginx's messages. The setters' messages are
 * whole sentences naming the directive; conf_dispatch() only adds where
 * the directive is.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/parser.h"
#include "conf/slots.h"
#include "core/arena.h"
#include "core/bug.h"
#include "core/units.h"

/* More words than this (name included) fail a CONF_TAKEn check. */
#define SLOTS_MAX_ARGS 8

static bool slots_args_ok(const struct conf_cmd *cmd, size_t nargs);
static const struct conf_cmd *slots_find(const struct conf_cmd *table,
                                         const char *name, unsigned ctx,
                                         bool is_prefix, bool *is_found);
static int slots_fail(struct conf_err *err, const struct conf_node *n,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *slots_field(const struct conf_cmd *cmd, void *conf);

/* The CONF_TAKEn bit wanted for each count of words, name included. */
static const unsigned slots_argument_number[SLOTS_MAX_ARGS] = {
    CONF_NOARGS, CONF_TAKE1, CONF_TAKE2, CONF_TAKE3,
    CONF_TAKE4,  CONF_TAKE5, CONF_TAKE6, CONF_TAKE7,
};

int
conf_dispatch(struct conf_ctx *cf, const struct conf_node *n, unsigned ctx,
              const struct conf_cmd *table, void *conf, struct conf_err *err)
{
    const char *const name = n->args[0];
    const struct conf_cmd *const fallback =
        cf->fallback != table ? cf->fallback : NULL;
    bool is_found = false;
    const struct conf_cmd *cmd = slots_find(table, name, ctx, false, &is_found);

    if (cmd == NULL && fallback != NULL) {
        cmd = slots_find(fallback, name, ctx, false, &is_found);
    }
    if (cmd == NULL && !is_found) {
        cmd = slots_find(table, name, ctx, true, &is_found);
        if (cmd == NULL && fallback != NULL) {
            cmd = slots_find(fallback, name, ctx, true, &is_found);
        }
    }
    if (cmd == NULL) {
        if (is_found) {
            return slots_fail(err, n, "\"%s\" directive is not allowed here",
                              name);
        }
        return slots_fail(err, n, "unknown directive \"%s\"", name);
    }
    if ((cmd->args & CONF_REFUSE) != 0) {
        /* The setter explains the refusal; shape does not matter. */
    } else if ((cmd->args & CONF_BLOCK) == 0 && n->is_block) {
        return slots_fail(err, n, "directive \"%s\" is not terminated by \";\"",
                          name);
    } else if ((cmd->args & CONF_BLOCK) != 0 && !n->is_block) {
        return slots_fail(err, n, "directive \"%s\" has no opening \"{\"",
                          name);
    } else if (!slots_args_ok(cmd, n->nargs)) {
        return slots_fail(
            err, n, "invalid number of arguments in \"%s\" directive", name);
    }

    BUG_ON(cmd->set == NULL);
    const char *const rv = cmd->set(cf, n, cmd, conf);

    if (rv == NULL) {
        return 0;
    }
    if (rv == cf->nested.msg) {
        /* Already located by a conf_block() below us. */
        if (err != &cf->nested) {
            snprintf(err->msg, sizeof(err->msg), "%s", rv);
        }
        return -1;
    }
    return slots_fail(err, n, "%s", rv);
}

/*
 * The first entry of table for name that is allowed in ctx, or NULL. With
 * is_prefix only entries ending in '*' are tried, as prefixes; without it
 * only the others, whole. *is_found is set when a matching entry exists
 * even if it is not allowed in ctx.
 */
static const struct conf_cmd *
slots_find(const struct conf_cmd *table, const char *name, unsigned ctx,
           bool is_prefix, bool *is_found)
{
    for (const struct conf_cmd *cmd = table; cmd->name != NULL; cmd++) {
        const size_t len = strlen(cmd->name);
        const bool is_wild = len > 0 && cmd->name[len - 1] == '*';

        if (is_wild != is_prefix) {
            continue;
        }
        if (is_wild ? strncmp(cmd->name, name, len - 1) != 0
                    : strcmp(cmd->name, name) != 0) {
            continue;
        }
        *is_found = true;
        if ((cmd->contexts & ctx) != 0) {
            return cmd;
        }
    }
    return NULL;
}

const char *
conf_block(struct conf_ctx *cf, const struct conf_node *n, unsigned ctx,
           const struct conf_cmd *table, void *conf)
{
    for (const struct conf_node *c = n->children; c != NULL; c = c->next) {
        if (conf_dispatch(cf, c, ctx, table, conf, &cf->nested) == -1) {
            return cf->nested.msg;
        }
    }
    return NULL;
}

const char *
conf_msg(struct conf_ctx *cf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cf->msg, sizeof(cf->msg), fmt, ap);
    va_end(ap);
    return cf->msg;
}

const char *
conf_set_flag(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    int *const fp = slots_field(cmd, conf);
    const char *const value = n->args[1];

    if (*fp != CONF_UNSET) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    if (strcasecmp(value, "on") == 0) {
        *fp = 1;
    } else if (strcasecmp(value, "off") == 0) {
        *fp = 0;
    } else {
        return conf_msg(cf,
                        "invalid value \"%s\" in \"%s\" directive, it must "
                        "be \"on\" or \"off\"",
                        value, n->args[0]);
    }
    return NULL;
}

const char *
conf_set_num(struct conf_ctx *cf, const struct conf_node *n,
             const struct conf_cmd *cmd, void *conf)
{
    int *const np = slots_field(cmd, conf);
    int value;

    if (*np != CONF_UNSET) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    if (units_parse_int(n->args[1], strlen(n->args[1]), &value) == -1) {
        return conf_msg(cf, "\"%s\" directive invalid number", n->args[0]);
    }
    *np = value;
    return NULL;
}

const char *
conf_set_msec(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    int64_t *const msp = slots_field(cmd, conf);
    int64_t value;

    if (*msp != CONF_UNSET) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    if (units_parse_msec(n->args[1], strlen(n->args[1]), &value) == -1) {
        return conf_msg(cf, "\"%s\" directive invalid value", n->args[0]);
    }
    *msp = value;
    return NULL;
}

const char *
conf_set_size(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    int64_t *const sp = slots_field(cmd, conf);
    int64_t value;

    if (*sp != CONF_UNSET) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    if (units_parse_size(n->args[1], strlen(n->args[1]), &value) == -1) {
        return conf_msg(cf, "\"%s\" directive invalid value", n->args[0]);
    }
    *sp = value;
    return NULL;
}

const char *
conf_set_str(struct conf_ctx *cf, const struct conf_node *n,
             const struct conf_cmd *cmd, void *conf)
{
    char **const field = slots_field(cmd, conf);

    if (*field != NULL) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    *field = arena_strndup(cf->arena, n->args[1], strlen(n->args[1]));
    if (*field == NULL) {
        return "memory allocation failed";
    }
    return NULL;
}

/* Checks a directive's word count (name included) against cmd->args. */
static bool
slots_args_ok(const struct conf_cmd *cmd, size_t nargs)
{
    if (cmd->args & CONF_ANY) {
        return true;
    }
    if (cmd->args & CONF_FLAG) {
        return nargs == 2;
    }
    if (cmd->args & CONF_1MORE) {
        return nargs >= 2;
    }
    if (cmd->args & CONF_2MORE) {
        return nargs >= 3;
    }
    if (nargs == 0 || nargs > SLOTS_MAX_ARGS) {
        return false;
    }
    return (cmd->args & slots_argument_number[nargs - 1]) != 0;
}

/* Formats `MSG in F:L` for node n into err; returns -1. */
static int
slots_fail(struct conf_err *err, const struct conf_node *n, const char *fmt,
           ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);

    const size_t used = strlen(err->msg);

    snprintf(err->msg + used, sizeof(err->msg) - used, " in %s:%u", n->file,
             n->line);
    return -1;
}

/* The field a generic setter writes. */
static void *
slots_field(const struct conf_cmd *cmd, void *conf)
{
    return (char *)conf + cmd->offset;
}


const char *
conf_set_ignore(struct conf_ctx *cf, const struct conf_node *n,
                const struct conf_cmd *cmd, void *conf)
{
    (void)cf;
    (void)n;
    (void)cmd;
    (void)conf;
    return NULL;
}
