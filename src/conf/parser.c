/* SPDX-License-Identifier: MIT */
/*
 * The configuration parser: statements and blocks over conf/lexer tokens,
 * built into a tree of struct conf_node in one arena, with "include"
 * expanded in place. Blocks are tracked with an explicit stack of frames so
 * that deep nesting costs arena memory, not C stack; includes recurse, at
 * most CONF_INCLUDE_DEPTH_MAX deep. Statement-level errors use nginx's
 * wording from ngx_conf_parse() and ngx_conf_read_token().
 */

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/lexer.h"
#include "conf/parser.h"
#include "core/arena.h"

/* The name -g directives are located by in messages, as nginx. */
#define PARSER_CMDLINE "command line"

/* First read size for a file whose size fstat() does not tell. */
#define PARSER_READ_CHUNK 4096

/* One load: the tree being built and what every step needs. */
struct parser {
    struct conf_tree *tree;        /* the tree being built */
    const char *base_dir;          /* for relative includes; NULL: cwd */
    struct conf_err *err;          /* where the first error goes */
    struct conf_file **files_tail; /* where the next file record goes */
    char **argv;                   /* words of the statement being read */
    size_t argc;                   /* words in argv */
    size_t argcap;                 /* room in argv (malloc'ed) */
    bool is_pure;                  /* includes stay nodes: no file opened */
};

/* One open block of the file being parsed. */
struct parser_frame {
    struct conf_node **tail; /* where this block's next node goes */
    struct parser_frame *up; /* enclosing block in this file, or NULL */
    bool is_inert;           /* in an http{} block: includes stay unread */
};

static struct conf_tree *parser_run(struct parser *ps, const char *path,
                                    const char *text, size_t len,
                                    const char *globals);
static int parser_load_file(struct parser *ps, const char *path,
                            const struct conf_node *from, unsigned depth,
                            struct conf_node ***tailp);
static int parser_read(struct parser *ps, const char *path,
                       const struct conf_node *from, char **text, size_t *len);
static struct conf_file *parser_add_file(struct parser *ps, const char *path,
                                         const char *text, size_t len);
static int parser_parse(struct parser *ps, const char *path, const char *text,
                        size_t len, unsigned depth, struct conf_node ***tailp);
static int parser_push_word(struct parser *ps, char *word);
static struct conf_node *parser_make_node(struct parser *ps, const char *path,
                                          unsigned line, bool is_block);
static int parser_include(struct parser *ps, const struct conf_node *n,
                          unsigned depth, struct conf_node ***tailp);
static const char *parser_resolve(struct parser *ps, const char *pattern);
static const char *parser_dirname(struct arena *a, const char *path);
static void parser_error(struct parser *ps, const char *file, unsigned line,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void parser_syserr(struct parser *ps, const struct conf_node *from,
                          const char *call, const char *path, int errnum);

struct conf_tree *
conf_tree_load(const char *path, struct conf_err *err)
{
    struct parser ps = {.err = err};

    return parser_run(&ps, path, NULL, 0, NULL);
}


struct conf_tree *
conf_tree_load_with(const char *path, const char *text, size_t len,
                    const char *globals, struct conf_err *err)
{
    struct parser ps = {.err = err};

    return parser_run(&ps, path, text, len, globals);
}

struct conf_tree *
conf_tree_load_text(const char *name, const char *text, size_t len,
                    struct conf_err *err)
{
    struct parser ps = {.err = err};

    if (text == NULL) {
        text = "";
        len = 0;
    }
    return parser_run(&ps, name, text, len, NULL);
}

struct conf_tree *
conf_tree_parse_text(const char *name, const char *text, size_t len,
                     struct conf_err *err)
{
    struct parser ps = {.err = err, .is_pure = true};

    if (text == NULL) {
        text = "";
        len = 0;
    }
    return parser_run(&ps, name, text, len, NULL);
}

void
conf_tree_dump(const struct conf_tree *t, FILE *out)
{
    for (const struct conf_file *f = t->files; f != NULL; f = f->next) {
        bool is_seen = false;

        /* nginx dumps a file included twice once; the list is short. */
        for (const struct conf_file *g = t->files; g != f; g = g->next) {
            if (strcmp(g->path, f->path) == 0) {
                is_seen = true;
                break;
            }
        }
        if (is_seen) {
            continue;
        }
        fprintf(out, "# configuration file %s:\n", f->path);
        fwrite(f->text, 1, f->len, out);
        fputc('\n', out);
    }
}

void
conf_tree_free(struct conf_tree *t)
{
    if (t != NULL) {
        arena_free(t->arena);
    }
}

/*
 * Builds a tree from the file at path, or from text when text is not NULL
 * (then path only names it and includes are relative to the cwd). The
 * directives in globals, when not NULL, come first, as nginx parses -g
 * before the file.
 */
static struct conf_tree *
parser_run(struct parser *ps, const char *path, const char *text, size_t len,
           const char *globals)
{
    struct arena *const a = arena_new();
    int rc = -1;

    ps->err->msg[0] = '\0';
    if (a == NULL) {
        parser_error(ps, NULL, 0, "memory allocation failed");
        return NULL;
    }
    ps->tree = arena_alloc(a, sizeof(struct conf_tree));
    if (ps->tree == NULL) {
        arena_free(a);
        parser_error(ps, NULL, 0, "memory allocation failed");
        return NULL;
    }
    ps->tree->arena = a;
    ps->files_tail = &ps->tree->files;

    struct conf_node **tail = &ps->tree->root;

    if (globals != NULL) {
        const size_t glen = strlen(globals);
        const char *const gtext = arena_strndup(a, globals, glen);

        if (gtext == NULL) {
            parser_error(ps, NULL, 0, "memory allocation failed");
        } else if (parser_parse(ps, PARSER_CMDLINE, gtext, glen, 0, &tail) ==
                   0) {
            rc = 0;
        }
        if (rc == -1) {
            free(ps->argv);
            arena_free(a);
            return NULL;
        }
    }
    if (text == NULL) {
        ps->base_dir = parser_dirname(a, path);
        rc = parser_load_file(ps, path, NULL, 0, &tail);
    } else {
        const struct conf_file *const f = parser_add_file(ps, path, text, len);

        if (f != NULL) {
            rc = parser_parse(ps, f->path, f->text, f->len, 0, &tail);
        }
    }
    free(ps->argv);
    ps->argv = NULL;
    if (rc == -1) {
        arena_free(a);
        ps->tree = NULL;
    }
    return ps->tree;
}

/*
 * Reads the file at path (included by from, or the main file when from is
 * NULL), records it, and appends its directives at **tailp.
 */
static int
parser_load_file(struct parser *ps, const char *path,
                 const struct conf_node *from, unsigned depth,
                 struct conf_node ***tailp)
{
    char *text;
    size_t len;

    if (parser_read(ps, path, from, &text, &len) == -1) {
        return -1;
    }

    const struct conf_file *const f = parser_add_file(ps, path, text, len);

    if (f == NULL) {
        return -1;
    }
    return parser_parse(ps, f->path, f->text, f->len, depth, tailp);
}

/* Reads a whole file into the arena, NUL-terminated. */
static int
parser_read(struct parser *ps, const char *path, const struct conf_node *from,
            char **text, size_t *len)
{
    const int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        parser_syserr(ps, from, "open()", path, errno);
        return -1;
    }

    struct stat st;
    size_t cap = PARSER_READ_CHUNK;

    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        cap = (size_t)st.st_size + 1;
    }

    char *buf = malloc(cap);
    size_t used = 0;

    if (buf == NULL) {
        close(fd);
        parser_error(ps, NULL, 0, "memory allocation failed");
        return -1;
    }
    for (;;) {
        if (used == cap) {
            char *const grown =
                cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);

            if (grown == NULL) {
                free(buf);
                close(fd);
                parser_error(ps, NULL, 0, "memory allocation failed");
                return -1;
            }
            buf = grown;
            cap *= 2;
        }

        const ssize_t n = read(fd, buf + used, cap - used);

        if (n == -1) {
            const int errnum = errno;

            if (errnum == EINTR) {
                continue;
            }
            free(buf);
            close(fd);
            parser_syserr(ps, from, "read()", path, errnum);
            return -1;
        }
        if (n == 0) {
            break;
        }
        used += (size_t)n;
    }
    close(fd);

    *text = arena_strndup(ps->tree->arena, buf, used);
    free(buf);
    if (*text == NULL) {
        parser_error(ps, NULL, 0, "memory allocation failed");
        return -1;
    }
    *len = used;
    return 0;
}

/*
 * Appends a record of a file to the tree, copying path and text into the
 * arena (text may already be there: then it is copied once more, which only
 * conf_tree_load_text() and small files pay).
 */
static struct conf_file *
parser_add_file(struct parser *ps, const char *path, const char *text,
                size_t len)
{
    struct arena *const a = ps->tree->arena;
    struct conf_file *const f = arena_alloc(a, sizeof(*f));

    if (f == NULL || (f->path = arena_strndup(a, path, strlen(path))) == NULL ||
        (f->text = arena_strndup(a, text, len)) == NULL) {
        parser_error(ps, NULL, 0, "memory allocation failed");
        return NULL;
    }
    f->len = len;
    *ps->files_tail = f;
    ps->files_tail = &f->next;
    return f;
}

/*
 * Parses one file's text (path names it; it stays valid with the tree) and
 * appends its top-level directives at **tailp, moving *tailp past them.
 * depth is how many includes deep this file is.
 */
static int
parser_parse(struct parser *ps, const char *path, const char *text, size_t len,
             unsigned depth, struct conf_node ***tailp)
{
    struct lexer lx;
    struct lexer_token tok;
    struct parser_frame top = {
        .tail = *tailp, .up = NULL, .is_inert = ps->is_pure};
    struct parser_frame *frame = &top;
    unsigned first_line = 0;

    lexer_init(&lx, text, len, ps->tree->arena);
    ps->argc = 0;
    for (;;) {
        switch (lexer_next(&lx, &tok)) {
        case LEXER_WORD:
            if (ps->argc == 0) {
                first_line = tok.line;
            }
            if (parser_push_word(ps, tok.text) == -1) {
                return -1;
            }
            break;

        case LEXER_SEMICOLON: {
            if (ps->argc == 0) {
                parser_error(ps, path, tok.line, "unexpected \";\"");
                return -1;
            }

            struct conf_node *const n =
                parser_make_node(ps, path, first_line, false);

            if (n == NULL) {
                return -1;
            }
            if (strcmp(n->args[0], "include") == 0 && !frame->is_inert) {
                if (parser_include(ps, n, depth, &frame->tail) == -1) {
                    return -1;
                }
            } else {
                *frame->tail = n;
                frame->tail = &n->next;
            }
            break;
        }

        case LEXER_BLOCK_START: {
            if (ps->argc == 0) {
                parser_error(ps, path, tok.line, "unexpected \"{\"");
                return -1;
            }
            if (strcmp(ps->argv[0], "include") == 0) {
                parser_error(ps, path, first_line,
                             "directive \"include\" is not terminated by "
                             "\";\"");
                return -1;
            }

            struct conf_node *const n =
                parser_make_node(ps, path, first_line, true);
            struct parser_frame *const inner =
                arena_alloc(ps->tree->arena, sizeof(*inner));

            if (n == NULL || inner == NULL) {
                parser_error(ps, NULL, 0, "memory allocation failed");
                return -1;
            }
            *frame->tail = n;
            frame->tail = &n->next;
            inner->tail = &n->children;
            inner->up = frame;
            /*
             * An http{} block is skipped whole (stream/core.c), so what its
             * includes name (mime.types, http-module files a proxy box may
             * not have) is never opened: they stay plain nodes.
             */
            inner->is_inert =
                frame->is_inert || strcmp(n->args[0], "http") == 0;
            frame = inner;
            break;
        }

        case LEXER_BLOCK_END:
            if (ps->argc != 0 || frame->up == NULL) {
                parser_error(ps, path, tok.line, "unexpected \"}\"");
                return -1;
            }
            frame = frame->up;
            break;

        case LEXER_EOF:
            if (ps->argc != 0) {
                parser_error(ps, path, tok.line,
                             "unexpected end of file, expecting \";\" or "
                             "\"}\"");
                return -1;
            }
            if (frame->up != NULL) {
                parser_error(ps, path, tok.line,
                             "unexpected end of file, expecting \"}\"");
                return -1;
            }
            *tailp = top.tail;
            return 0;

        case LEXER_ERROR:
            parser_error(ps, path, tok.line, "%s", lx.err);
            return -1;
        }
    }
}

/* Appends a word to the statement being read. */
static int
parser_push_word(struct parser *ps, char *word)
{
    if (ps->argc == ps->argcap) {
        const size_t cap = ps->argcap == 0 ? 8 : ps->argcap * 2;
        char **const grown = realloc(ps->argv, cap * sizeof(*grown));

        if (grown == NULL) {
            parser_error(ps, NULL, 0, "memory allocation failed");
            return -1;
        }
        ps->argv = grown;
        ps->argcap = cap;
    }
    ps->argv[ps->argc++] = word;
    return 0;
}

/* Makes a node of the words read so far and starts a new statement. */
static struct conf_node *
parser_make_node(struct parser *ps, const char *path, unsigned line,
                 bool is_block)
{
    struct arena *const a = ps->tree->arena;
    struct conf_node *const n = arena_alloc(a, sizeof(*n));
    char **const args = arena_alloc(a, (ps->argc + 1) * sizeof(*args));

    if (n == NULL || args == NULL) {
        parser_error(ps, NULL, 0, "memory allocation failed");
        return NULL;
    }
    memcpy(args, ps->argv, ps->argc * sizeof(*args));
    args[ps->argc] = NULL;
    n->args = args;
    n->nargs = ps->argc;
    n->file = path;
    n->line = line;
    n->is_block = is_block;
    ps->argc = 0;
    return n;
}

/*
 * Expands `include PATTERN;` (node n, in a file depth includes deep):
 * parses every file the pattern names and appends their directives at
 * **tailp.
 */
static int
parser_include(struct parser *ps, const struct conf_node *n, unsigned depth,
               struct conf_node ***tailp)
{
    if (n->nargs != 2) {
        parser_error(ps, n->file, n->line,
                     "invalid number of arguments in \"include\" directive");
        return -1;
    }
    if (depth + 1 > CONF_INCLUDE_DEPTH_MAX) {
        parser_error(ps, n->file, n->line,
                     "too many nested includes (more than %d levels)",
                     CONF_INCLUDE_DEPTH_MAX);
        return -1;
    }

    const char *const pattern = parser_resolve(ps, n->args[1]);

    if (pattern == NULL) {
        return -1;
    }
    if (strpbrk(pattern, "*?[") == NULL) {
        return parser_load_file(ps, pattern, n, depth + 1, tailp);
    }

    glob_t g;
    const int rc = glob(pattern, 0, NULL, &g);

    if (rc == GLOB_NOMATCH) {
        globfree(&g);
        return 0;
    }
    if (rc != 0) {
        if (rc == GLOB_ABORTED) {
            parser_syserr(ps, n, "glob()", pattern, errno);
        } else {
            parser_error(ps, n->file, n->line, "glob() \"%s\" failed", pattern);
        }
        globfree(&g);
        return -1;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (parser_load_file(ps, g.gl_pathv[i], n, depth + 1, tailp) == -1) {
            globfree(&g);
            return -1;
        }
    }
    globfree(&g);
    return 0;
}

/* Returns pattern made absolute against the base directory, in the arena. */
static const char *
parser_resolve(struct parser *ps, const char *pattern)
{
    if (pattern[0] == '/' || ps->base_dir == NULL) {
        return pattern;
    }

    const size_t dlen = strlen(ps->base_dir);
    const size_t plen = strlen(pattern);
    const bool has_slash = dlen > 0 && ps->base_dir[dlen - 1] == '/';
    char *const full = arena_alloc(ps->tree->arena, dlen + 1 + plen + 1);

    if (full == NULL) {
        parser_error(ps, NULL, 0, "memory allocation failed");
        return NULL;
    }
    memcpy(full, ps->base_dir, dlen);
    size_t at = dlen;
    if (!has_slash) {
        full[at++] = '/';
    }
    memcpy(full + at, pattern, plen + 1);
    return full;
}

/*
 * Returns the directory part of path in the arena ("/" for "/x.conf"), or
 * NULL when path has no slash (relative includes then start from the cwd,
 * which is that directory) or memory runs out (the same fallback).
 */
static const char *
parser_dirname(struct arena *a, const char *path)
{
    const char *const slash = strrchr(path, '/');

    if (slash == NULL) {
        return NULL;
    }
    return arena_strndup(a, path, slash == path ? 1 : (size_t)(slash - path));
}

/*
 * Formats the error into ps->err, adding " in FILE:LINE" when file is not
 * NULL. Only the first error is kept.
 */
static void
parser_error(struct parser *ps, const char *file, unsigned line,
             const char *fmt, ...)
{
    char *const msg = ps->err->msg;
    const size_t cap = sizeof(ps->err->msg);
    va_list ap;

    if (msg[0] != '\0') {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    if (file != NULL) {
        const size_t used = strlen(msg);

        snprintf(msg + used, cap - used, " in %s:%u", file, line);
    }
}

/* `call "path" failed (errno: text)`, located at from when not NULL. */
static void
parser_syserr(struct parser *ps, const struct conf_node *from, const char *call,
              const char *path, int errnum)
{
    parser_error(ps, from != NULL ? from->file : NULL,
                 from != NULL ? from->line : 0, "%s \"%s\" failed (%d: %s)",
                 call, path, errnum, strerror(errnum));
}
