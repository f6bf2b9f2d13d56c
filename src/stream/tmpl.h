/* SPDX-License-Identifier: MIT */
/*
 * Compiled templates ("complex values" in nginx): text with $variables such
 * as "$ssl_preread_server_name:443" or a log_format, compiled once at
 * config time into a list of parts and rendered per session.
 */
#ifndef SNIRELAY_STREAM_TMPL_H
#define SNIRELAY_STREAM_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

struct arena;

enum tmpl_kind {
    TMPL_LITERAL, /* bytes copied as they are */
    TMPL_VAR,     /* a variable, by resolver id */
    TMPL_CAPTURE, /* a regex capture group, by number */
};

/* One piece of a template; lives in the arena given to tmpl_compile(). */
struct tmpl_part {
    enum tmpl_kind kind;
    const char *text; /* LITERAL: the bytes; VAR/CAPTURE: the name without
                         '$' (for messages); in the arena, NUL-terminated */
    size_t len;       /* bytes in text, without the NUL */
    int id;           /* VAR: id from the resolver; CAPTURE: group number
                         ($1..$9 give 1..9); LITERAL: 0, unused */
};

/* A compiled template; parts live in the arena given to tmpl_compile(). */
struct tmpl {
    struct tmpl_part *parts; /* nparts entries, in the arena; NULL if 0 */
    size_t nparts;           /* 0 for an empty text */
    bool has_vars;           /* any VAR or CAPTURE part; false: constant */
};

/*
 * Resolves a variable name (len bytes, no '$', not NUL-terminated) to an id
 * >= 0, or returns -1 when the name is unknown. A name may also resolve to a
 * regex capture (a named group such as (?<name>...)): the resolver then sets
 * *is_capture to true and returns the group number. *is_capture is false on
 * entry.
 */
typedef int (*tmpl_resolve_fn)(void *data, const char *name, size_t len,
                               bool *is_capture);

/*
 * Compiles the len bytes of text into t, allocating from arena a. Syntax as
 * nginx's: "$name" with name made of [A-Za-z0-9_]+, "${name}" so that text
 * may follow directly, and "$1".."$9" for numeric captures (one digit;
 * always TMPL_CAPTURE, the resolver is not asked). "${1}".."${9}" are
 * captures too. Every other name goes to resolve (which may be NULL: then
 * every name is unknown). A '$' not followed by a name character or '{' is
 * an error.
 *
 * Returns NULL on success. On failure returns an nginx-style message written
 * to errbuf (errcap bytes, NUL-terminated, truncated if needed), e.g.
 *     unknown "foo" variable
 *     invalid variable name in "abc$"
 *     the closing bracket in "foo" variable is missing
 *     memory allocation failed
 * or a static string when errbuf is NULL or errcap is 0; t is then left
 * with nparts 0. Parts already taken from the arena stay there.
 */
const char *tmpl_compile(struct arena *a, const char *text, size_t len,
                         tmpl_resolve_fn resolve, void *data, struct tmpl *t,
                         char *errbuf, size_t errcap);

/*
 * Gets the value of a VAR or CAPTURE part. Returns 0 with *val and *len set
 * (len 0 is the empty value; *val must stay valid until tmpl_render()
 * returns), or -1 when the value is not found, which renders as empty.
 */
typedef int (*tmpl_value_fn)(void *data, const struct tmpl_part *p,
                             const char **val, size_t *len);

/*
 * Renders t into dst: literals are copied as they are, values from value()
 * are escaped with esc (see str_escape()). At most cap bytes are written
 * and no NUL is added; dst may be NULL when cap is 0, and value may be NULL
 * when t->has_vars is false. Returns the number of bytes the full output
 * needs, like snprintf: a result greater than cap means the output was cut.
 */
size_t tmpl_render(const struct tmpl *t, tmpl_value_fn value, void *data,
                   enum str_escape esc, char *dst, size_t cap);

/*
 * Makes t the constant text (len bytes, copied into arena a, no variables
 * read from it: a '$' stays a '$'), as values of geo and split_clients
 * are. 0, or -1 when out of memory (t is then empty).
 */
int tmpl_literal(struct arena *a, const char *text, size_t len, struct tmpl *t);

#endif
