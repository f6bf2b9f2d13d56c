/* SPDX-License-Identifier: MIT */
/*
 * Directive tables and their dispatch, as nginx's ngx_command_t and
 * ngx_conf_handler(). A module describes its directives in a table of
 * struct conf_cmd ended by an entry whose name is NULL; conf_dispatch()
 * checks where a directive may appear, whether it takes a block and how many
 * arguments it has, then calls its setter. Generic setters fill one field of
 * the module's conf struct (at cmd->offset); custom setters do the rest.
 *
 * A setter returns NULL, or a whole message such as `"x" directive is
 * duplicate` (conf_msg() formats one); conf_dispatch() appends
 * " in FILE:LINE". A setter of a block directive walks its children with
 * conf_block() and may return that function's result as it is: such a
 * message already names the child's file and line and is passed on
 * unchanged.
 *
 * Implemented in conf/slots.c; the tree types are in conf/parser.h.
 */
#ifndef SNIRELAY_CONF_CONF_H
#define SNIRELAY_CONF_CONF_H

#include <stddef.h>

struct arena;
struct conf_node;

/* Contexts, as bits: a directive's `contexts` says where it is allowed. */
enum conf_ctx_kind {
    CONF_MAIN = 0x01,    /* top level of the main file */
    CONF_EVENTS = 0x02,  /* events { } */
    CONF_STREAM = 0x04,  /* stream { } */
    CONF_SERVER = 0x08,  /* stream { server { } } */
    CONF_UPSTREAM = 0x10 /* stream { upstream name { } } */
};

/* Argument masks (nginx's NGX_CONF_*); counts exclude the name. */
#define CONF_NOARGS 0x0001
#define CONF_TAKE1 0x0002
#define CONF_TAKE2 0x0004
#define CONF_TAKE3 0x0008
#define CONF_TAKE4 0x0010
#define CONF_TAKE5 0x0020
#define CONF_TAKE6 0x0040
#define CONF_TAKE7 0x0080
#define CONF_TAKE12 (CONF_TAKE1 | CONF_TAKE2)
#define CONF_TAKE13 (CONF_TAKE1 | CONF_TAKE3)
#define CONF_TAKE23 (CONF_TAKE2 | CONF_TAKE3)
#define CONF_TAKE123 (CONF_TAKE1 | CONF_TAKE2 | CONF_TAKE3)
#define CONF_TAKE1234 (CONF_TAKE1 | CONF_TAKE2 | CONF_TAKE3 | CONF_TAKE4)
#define CONF_FLAG 0x0100  /* exactly one argument, "on" or "off" */
#define CONF_1MORE 0x0200 /* one argument or more */
#define CONF_2MORE 0x0400 /* two arguments or more */
#define CONF_BLOCK 0x0800 /* must be a block; without it must not be one */
#define CONF_ANY 0x1000   /* any number of arguments, unchecked */
/*
 * No block or argument check at all: for entries that only explain why a
 * directive is refused (their setter always returns a message).
 */
#define CONF_REFUSE 0x2000

/* The value of a generic setter's field before the directive is seen. */
#define CONF_UNSET (-1)

/*
 * "Unset, inherit, default" for numeric fields (int, int64_t): when child is
 * CONF_UNSET it takes parent if that is set, else dflt.
 */
#define CONF_MERGE(child, parent, dflt)                                        \
    do {                                                                       \
        if ((child) == CONF_UNSET) {                                           \
            (child) = ((parent) == CONF_UNSET) ? (dflt) : (parent);            \
        }                                                                      \
    } while (0)

/* The same for pointer fields (conf_set_str), where NULL means unset. */
#define CONF_MERGE_PTR(child, parent, dflt)                                    \
    do {                                                                       \
        if ((child) == NULL) {                                                 \
            (child) = ((parent) == NULL) ? (dflt) : (parent);                  \
        }                                                                      \
    } while (0)

/* A message with its location; the caller prints it after "[emerg] ". */
struct conf_err {
    char msg[1024]; /* e.g. `unexpected "}" in /etc/x.conf:7`, NUL-ended */
};

/*
 * What a setter is given besides the node: the generation's arena, the
 * caller's pointer, and scratch room for messages. Owned by the caller of
 * conf_dispatch(), usually on its stack for the length of one load.
 */
struct conf_ctx {
    struct arena *arena; /* the generation's arena: copy strings here */
    void *data;          /* caller's pointer (the module's own state) */
    const struct conf_cmd *fallback; /* NULL, or a table searched after
                                        every table given to dispatch */
    char msg[512];                   /* room for conf_msg() */
    struct conf_err nested; /* a failure inside conf_block(), located */
};

struct conf_cmd;

/*
 * A directive's setter: n is the directive (n->args[0] its name), conf the
 * struct it fills. Returns NULL, or a message without location that stays
 * valid until the next call on cf (a string literal, or conf_msg()'s).
 */
typedef const char *(*conf_set_fn)(struct conf_ctx *cf,
                                   const struct conf_node *n,
                                   const struct conf_cmd *cmd, void *conf);

/* One directive; tables end with an entry whose name is NULL. */
struct conf_cmd {
    const char *name;  /* directive name, e.g. "proxy_timeout" */
    unsigned contexts; /* enum conf_ctx_kind bits where it is allowed */
    unsigned args;     /* CONF_NOARGS ... CONF_ANY, CONF_BLOCK */
    conf_set_fn set;   /* setter; never NULL */
    size_t offset;     /* offsetof the field, for generic setters */
};

/*
 * Handles directive n found in context ctx (one enum conf_ctx_kind bit):
 * looks its name up in table, then in cf->fallback, checks context,
 * block-ness and argument count as nginx does, then calls the setter with
 * conf. table may list a name more than once for different contexts; the
 * first entry allowed in ctx is used. An entry whose name ends in '*'
 * matches every name with that prefix, but only names that no entry of
 * either table spells out (so "ssl_*" does not shadow "ssl_preread").
 * Returns 0, or -1 with err->msg set to one of
 *   unknown directive "x" in F:L
 *   "x" directive is not allowed here in F:L
 *   directive "x" has no opening "{" in F:L
 *   directive "x" is not terminated by ";" in F:L
 *   invalid number of arguments in "x" directive in F:L
 *   <setter's message> in F:L   (or the setter's located message as is)
 * where F:L is where n starts.
 */
int conf_dispatch(struct conf_ctx *cf, const struct conf_node *n, unsigned ctx,
                  const struct conf_cmd *table, void *conf,
                  struct conf_err *err);

/*
 * Dispatches every directive inside block n (its children, in order) in
 * context ctx. Returns NULL, or cf->nested.msg holding the first failure
 * with its location; a setter may return that pointer as its own result.
 */
const char *conf_block(struct conf_ctx *cf, const struct conf_node *n,
                       unsigned ctx, const struct conf_cmd *table, void *conf);

/*
 * Formats a message into cf->msg (truncated to fit) and returns cf->msg,
 * for setters: `return conf_msg(cf, "invalid port \"%s\"", n->args[1]);`.
 */
const char *conf_msg(struct conf_ctx *cf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Generic setters. Each writes the field at (char *)conf + cmd->offset,
 * refuses a second occurrence with `"x" directive is duplicate`, and
 * returns NULL or a message as conf_set_fn says.
 *
 * conf_set_flag: int field, CONF_UNSET until set; "on" is 1, "off" 0 (any
 *   case); otherwise `invalid value "v" in "x" directive, it must be "on"
 *   or "off"`.
 * conf_set_num:  int field, CONF_UNSET until set; units_parse_int() syntax;
 *   otherwise `"x" directive invalid number`.
 * conf_set_msec: int64_t field, CONF_UNSET until set; milliseconds from
 *   units_parse_msec(); otherwise `"x" directive invalid value`.
 * conf_set_size: int64_t field, CONF_UNSET until set; bytes from
 *   units_parse_size(); otherwise `"x" directive invalid value`.
 * conf_set_str:  char * field, NULL until set; a copy of the argument in
 *   cf->arena.
 * Each reads n->args[1] only, so give them CONF_TAKE1 (or CONF_FLAG).
 */
const char *conf_set_flag(struct conf_ctx *cf, const struct conf_node *n,
                          const struct conf_cmd *cmd, void *conf);
const char *conf_set_num(struct conf_ctx *cf, const struct conf_node *n,
                         const struct conf_cmd *cmd, void *conf);
const char *conf_set_msec(struct conf_ctx *cf, const struct conf_node *n,
                          const struct conf_cmd *cmd, void *conf);
const char *conf_set_size(struct conf_ctx *cf, const struct conf_node *n,
                          const struct conf_cmd *cmd, void *conf);
const char *conf_set_str(struct conf_ctx *cf, const struct conf_node *n,
                         const struct conf_cmd *cmd, void *conf);

/*
 * For directives accepted for nginx compatibility that need no value here
 * (e.g. map_hash_bucket_size): checks nothing beyond the table's argument
 * mask and returns NULL.
 */
const char *conf_set_ignore(struct conf_ctx *cf, const struct conf_node *n,
                            const struct conf_cmd *cmd, void *conf);

#endif
