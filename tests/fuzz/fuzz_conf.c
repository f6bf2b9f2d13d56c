/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration lexer and parser
 * (src/conf/lexer.c, src/conf/parser.c) through conf_tree_parse_text(),
 * which never opens a file (includes stay plain nodes). The input is the
 * text, copied into an exact-size heap buffer so ASan sees any read past
 * it; it need not end in NUL.
 *
 * A tree parsed must be well formed (every node has a name, args ends in
 * NULL, lines lie within the text, a block's children start on or after
 * its own line) and must print back, every word quoted, to text that
 * parses to the same tree. A failure must leave a message that names the
 * pseudo file. The dump (as `-T`) must hold the text whole. Any broken
 * rule traps.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "fuzz.h"


#define NAME "fuzz.conf"


/* A growing output buffer. */
struct out {
    char *buf;
    size_t len;
    size_t cap;
};

static void check_nodes(const struct conf_node *n, unsigned min_line,
                        unsigned max_line);
static void print_nodes(struct out *o, const struct conf_node *n);
static void put(struct out *o, const char *s, size_t len);
static void same_nodes(const struct conf_node *a, const struct conf_node *b);
static void check_dump(const struct conf_tree *t, const char *text,
                       size_t len);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *const text = malloc(size > 0 ? size : 1);
    struct conf_err err;
    unsigned lines = 1;

    CHECK(text != NULL);
    memcpy(text, data, size);
    for (size_t i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }

    struct conf_tree *const t = conf_tree_parse_text(NAME, text, size, &err);

    if (t == NULL) {
        CHECK(memchr(err.msg, '\0', sizeof(err.msg)) != NULL);
        CHECK(err.msg[0] != '\0');
        /* Every parse error is located in the text. */
        CHECK(strstr(err.msg, " in " NAME ":") != NULL ||
              strcmp(err.msg, "memory allocation failed") == 0);
        free(text);
        return 0;
    }
    CHECK(err.msg[0] == '\0');
    CHECK(t->files != NULL && t->files->next == NULL);
    CHECK(strcmp(t->files->path, NAME) == 0);
    CHECK(t->files->len == size && memcmp(t->files->text, data, size) == 0);
    check_nodes(t->root, 1, lines);
    check_dump(t, text, size);

    /* Printed back with every word quoted, it parses to the same tree. */
    struct out o = {NULL, 0, 0};
    print_nodes(&o, t->root);

    struct conf_tree *const u =
        conf_tree_parse_text(NAME, o.buf != NULL ? o.buf : "", o.len, &err);

    CHECK(u != NULL);
    same_nodes(t->root, u->root);
    conf_tree_free(u);
    free(o.buf);
    conf_tree_free(t);
    free(text);
    return 0;
}


static void
check_nodes(const struct conf_node *n, unsigned min_line, unsigned max_line)
{
    for (; n != NULL; n = n->next) {
        CHECK(n->nargs >= 1);
        CHECK(n->args[n->nargs] == NULL);
        for (size_t i = 0; i < n->nargs; i++) {
            CHECK(n->args[i] != NULL);
        }
        CHECK(strcmp(n->file, NAME) == 0);
        CHECK(n->line >= min_line && n->line <= max_line);
        CHECK(n->is_block || n->children == NULL);
        if (n->is_block) {
            check_nodes(n->children, n->line, max_line);
        }
        min_line = n->line;
    }
}


static void
put(struct out *o, const char *s, size_t len)
{
    if (o->len + len > o->cap) {
        const size_t cap = (o->len + len) * 2 + 64;
        char *const grown = realloc(o->buf, cap);

        CHECK(grown != NULL);
        o->buf = grown;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, len);
    o->len += len;
}


/*
 * Each word between double quotes with '"' and '\' escaped: the lexer
 * gives back exactly the word (a NUL inside a word ends it in C, so words
 * are printed up to their first NUL, as every reader of args sees them).
 */
static void
print_nodes(struct out *o, const struct conf_node *n)
{
    for (; n != NULL; n = n->next) {
        for (size_t i = 0; i < n->nargs; i++) {
            const char *w = n->args[i];

            put(o, i == 0 ? "\"" : " \"", i == 0 ? 1 : 2);
            for (; *w != '\0'; w++) {
                if (*w == '"' || *w == '\\') {
                    put(o, "\\", 1);
                }
                put(o, w, 1);
            }
            put(o, "\"", 1);
        }
        if (n->is_block) {
            put(o, " {\n", 3);
            print_nodes(o, n->children);
            put(o, "}\n", 2);
        } else {
            put(o, ";\n", 2);
        }
    }
}


static void
same_nodes(const struct conf_node *a, const struct conf_node *b)
{
    for (; a != NULL; a = a->next, b = b->next) {
        CHECK(b != NULL);
        CHECK(a->nargs == b->nargs && a->is_block == b->is_block);
        for (size_t i = 0; i < a->nargs; i++) {
            CHECK(strcmp(a->args[i], b->args[i]) == 0);
        }
        same_nodes(a->children, b->children);
    }
    CHECK(b == NULL);
}


/* `-T`: the header, the text whole, a newline. */
static void
check_dump(const struct conf_tree *t, const char *text, size_t len)
{
    static const char head[] = "# configuration file " NAME ":\n";
    char *buf = NULL;
    size_t blen = 0;
    FILE *const f = open_memstream(&buf, &blen);

    CHECK(f != NULL);
    conf_tree_dump(t, f);
    CHECK(fclose(f) == 0);
    CHECK(blen == sizeof(head) - 1 + len + 1);
    CHECK(memcmp(buf, head, sizeof(head) - 1) == 0);
    CHECK(memcmp(buf + sizeof(head) - 1, text, len) == 0);
    CHECK(buf[blen - 1] == '\n');
    free(buf);
}
