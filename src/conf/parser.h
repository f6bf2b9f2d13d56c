/* SPDX-License-Identifier: MIT */
/*
 * The configuration file as a tree of directives, before any meaning is
 * given to them: nginx's grammar (see conf/lexer.h) with blocks and
 * "include". Directive tables and their checks are in conf/conf.h.
 *
 * include PATTERN; is expanded here, in any block (also in blocks whose
 * lines are data rather than directives, such as map { } and types { }):
 *   - PATTERN is a glob(3) pattern; a relative one is taken relative to the
 *     directory of the main configuration file (nginx resolves it against
 *     its configuration prefix, which is that directory for the usual
 *     nginx.conf). For conf_tree_load_text() it is taken relative to the
 *     current directory;
 *   - the directives of the files it matches replace the include node, in
 *     glob's sorted order; each file must be complete on its own (blocks
 *     cannot open in one file and close in another);
 *   - a pattern without any of * ? [ must name a file that opens; a pattern
 *     with them may match nothing (both as nginx);
 *   - includes nest at most CONF_INCLUDE_DEPTH_MAX files deep, which also
 *     stops a file that includes itself;
 *   - inside a block named "http" (at any depth below it) include is not
 *     expanded but kept as a plain node: snirelay skips http{} whole, and
 *     the files it includes need not exist on a proxy box.
 *
 * Every node, string and file text lives in the tree's arena and is freed
 * by conf_tree_free().
 */
#ifndef SNIRELAY_CONF_PARSER_H
#define SNIRELAY_CONF_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "conf/conf.h"

struct arena;

/* How many files deep includes may nest below the main file. */
#define CONF_INCLUDE_DEPTH_MAX 32

/* One directive: `name args... ;` or `name args... { children }`. */
struct conf_node {
    char **args;                /* args[0] is the name; NULL after the last */
    size_t nargs;               /* number of args, the name included */
    const char *file;           /* path of the file it was read from */
    unsigned line;              /* line of its first token */
    bool is_block;              /* ended with { ... } rather than ; */
    struct conf_node *children; /* first directive of the block, or NULL */
    struct conf_node *next;     /* next directive of the same block, or NULL */
};

/* One file read, kept for conf_tree_dump(). */
struct conf_file {
    const char *path;       /* as opened (or the name given for text) */
    const char *text;       /* its whole content, NUL after the last byte */
    size_t len;             /* bytes in text */
    struct conf_file *next; /* the file read after this one, or NULL */
};

/* A parsed configuration; owned by whoever loaded it. */
struct conf_tree {
    struct arena *arena;     /* owns every node, string, file text, itself */
    struct conf_node *root;  /* first directive of the main context */
    struct conf_file *files; /* every file read, in the order read */
};

/*
 * Reads and parses the file at path and every file it includes. Returns a
 * tree to give back with conf_tree_free(), or NULL with err->msg set, e.g.
 *   open() "/etc/x.conf" failed (2: No such file or directory)
 *   unexpected "}" in /etc/x.conf:7
 *   unexpected end of file, expecting ";" or "}" in /etc/x.conf:9
 *   unexpected end of file, expecting "}" in /etc/x.conf:9
 *   unexpected "{" in F:L          (a block without a name)
 *   unexpected ";" in F:L          (a ";" without a directive)
 *   unexpected "x" in F:L          (after a closing quote)
 *   open() "/x/y.conf" failed (2: No such file or directory) in F:L
 *   invalid number of arguments in "include" directive in F:L
 *   directive "include" is not terminated by ";" in F:L
 *   too many nested includes (more than 32 levels) in F:L
 * Unknown or misplaced directives are not checked here (conf_dispatch()).
 */
struct conf_tree *conf_tree_load(const char *path, struct conf_err *err);

/*
 * The same for len bytes of text already in memory (copied; need not be
 * NUL-terminated); name stands for the file in messages and dumps, and
 * relative includes are taken from the current directory.
 */
struct conf_tree *conf_tree_load_text(const char *name, const char *text,
                                      size_t len, struct conf_err *err);

/*
 * Parses len bytes of text (copied; need not be NUL-terminated) without
 * ever touching the filesystem: include directives are not expanded but
 * kept as plain nodes, as inside http{}. name stands for the file in
 * messages. A pure function of its input, for tests and fuzzing.
 */
struct conf_tree *conf_tree_parse_text(const char *name, const char *text,
                                       size_t len, struct conf_err *err);

/*
 * Either of the above (text NULL: the file at path), with the directives
 * of globals (nginx's -g; NULL for none) parsed first into the main
 * context. Errors in globals are located "in command line:LINE".
 */
struct conf_tree *conf_tree_load_with(const char *path, const char *text,
                                      size_t len, const char *globals,
                                      struct conf_err *err);

/*
 * Writes every file read, as `nginx -T` does: for each, once even if it was
 * included more than once, "# configuration file PATH:\n", its text and a
 * newline.
 */
void conf_tree_dump(const struct conf_tree *t, FILE *out);

/* Frees the tree and all it owns; NULL is a no-op. */
void conf_tree_free(struct conf_tree *t);

#endif
