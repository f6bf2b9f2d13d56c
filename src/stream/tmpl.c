/* SPDX-License-Identifier: MIT */
/*
 * Template compiler and renderer. A text is split once, at config time,
 * into literal runs and variable references, following the scanning rules
 * of nginx's ngx_stream_script_compile(): "$name", "${name}" and "$1".."$9".
 * Rendering walks the parts and never allocates.
 */

#include <stdarg.h>
#include <stdio.h>

#include "core/arena.h"
#include "core/str.h"
#include "stream/tmpl.h"


/* Limit on how many bytes of an offending text an error message quotes. */
#define TMPL_ERR_QUOTE_MAX 1024


static const char *tmpl_scan(struct arena *a, const char *text, size_t len,
                             tmpl_resolve_fn resolve, void *data,
                             struct tmpl *t, char *errbuf, size_t errcap);
static bool tmpl_is_name_char(unsigned char ch);
static int tmpl_add_part(struct arena *a, struct tmpl *t, enum tmpl_kind kind,
                         const char *text, size_t len, int id);
static const char *tmpl_error(char *errbuf, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tmpl_quote_len(size_t len);
static size_t tmpl_emit(char *dst, size_t cap, size_t pos, const char *src,
                        size_t len, enum str_escape esc);


const char *
tmpl_compile(struct arena *a, const char *text, size_t len,
             tmpl_resolve_fn resolve, void *data, struct tmpl *t, char *errbuf,
             size_t errcap)
{
    size_t nmax = 1;

    t->parts = NULL;
    t->nparts = 0;
    t->has_vars = false;

    if (len == 0) {
        return NULL;
    }

    /*
     * Each '$' can end one literal and add one variable, so 1 + 2 * '$'
     * parts always suffice; counting first keeps the parts in one array.
     */
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '$') {
            nmax += 2;
        }
    }
    t->parts = arena_alloc(a, nmax * sizeof(struct tmpl_part));
    if (t->parts == NULL) {
        return tmpl_error(errbuf, errcap, "memory allocation failed");
    }

    const char *err = tmpl_scan(a, text, len, resolve, data, t, errbuf, errcap);

    if (err != NULL) {
        t->parts = NULL;
        t->nparts = 0;
        t->has_vars = false;
    }
    return err;
}


/*
 * Splits text into t->parts (room for every part is already there).
 * Returns NULL, or the error message as tmpl_compile() does.
 */
static const char *
tmpl_scan(struct arena *a, const char *text, size_t len,
          tmpl_resolve_fn resolve, void *data, struct tmpl *t, char *errbuf,
          size_t errcap)
{
    size_t i = 0;

    while (i < len) {
        if (text[i] != '$') {
            const size_t start = i;

            while (i < len && text[i] != '$') {
                i++;
            }
            if (tmpl_add_part(a, t, TMPL_LITERAL, text + start, i - start, 0) ==
                -1) {
                goto nomem;
            }
            continue;
        }

        if (++i == len) {
            goto invalid;
        }

        if (text[i] >= '1' && text[i] <= '9') {
            if (tmpl_add_part(a, t, TMPL_CAPTURE, text + i, 1, text[i] - '0') ==
                -1) {
                goto nomem;
            }
            i++;
            continue;
        }

        bool bracket = false;

        if (text[i] == '{') {
            bracket = true;
            if (++i == len) {
                goto invalid;
            }
        }

        const char *name = text + i;
        size_t nlen = 0;

        for (; i < len; i++, nlen++) {
            const unsigned char ch = (unsigned char)text[i];

            if (ch == '}' && bracket) {
                i++;
                bracket = false;
                break;
            }
            if (!tmpl_is_name_char(ch)) {
                break;
            }
        }

        if (bracket) {
            return tmpl_error(errbuf, errcap,
                              "the closing bracket in \"%.*s\" variable is "
                              "missing",
                              tmpl_quote_len(nlen), name);
        }
        if (nlen == 0) {
            goto invalid;
        }

        enum tmpl_kind kind = TMPL_CAPTURE;
        int id;

        if (nlen == 1 && name[0] >= '1' && name[0] <= '9') {
            /* "${1}": the bracketed form of a numeric capture. */
            id = name[0] - '0';
        } else {
            bool is_capture = false;

            id = resolve != NULL ? resolve(data, name, nlen, &is_capture) : -1;
            if (id < 0) {
                return tmpl_error(errbuf, errcap, "unknown \"%.*s\" variable",
                                  tmpl_quote_len(nlen), name);
            }
            kind = is_capture ? TMPL_CAPTURE : TMPL_VAR;
        }
        if (tmpl_add_part(a, t, kind, name, nlen, id) == -1) {
            goto nomem;
        }
    }

    return NULL;

invalid:
    return tmpl_error(errbuf, errcap, "invalid variable name in \"%.*s\"",
                      tmpl_quote_len(len), text);

nomem:
    return tmpl_error(errbuf, errcap, "memory allocation failed");
}


/* Variable names are [A-Za-z0-9_]+, as in nginx. */
static bool
tmpl_is_name_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '_';
}


/* Appends a part with a NUL-terminated arena copy of text; 0 or -1. */
static int
tmpl_add_part(struct arena *a, struct tmpl *t, enum tmpl_kind kind,
              const char *text, size_t len, int id)
{
    char *copy = arena_strndup(a, text, len);

    if (copy == NULL) {
        return -1;
    }

    struct tmpl_part *p = &t->parts[t->nparts++];

    p->kind = kind;
    p->text = copy;
    p->len = len;
    p->id = id;
    if (kind != TMPL_LITERAL) {
        t->has_vars = true;
    }
    return 0;
}


/*
 * Formats a message into errbuf and returns errbuf, or returns fmt's static
 * summary when there is no buffer to format into.
 */
static const char *
tmpl_error(char *errbuf, size_t errcap, const char *fmt, ...)
{
    if (errbuf == NULL || errcap == 0) {
        return "invalid template";
    }

    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errbuf, errcap, fmt, ap);
    va_end(ap);
    return errbuf;
}


/* The precision for "%.*s" quoting len bytes, capped for long texts. */
static int
tmpl_quote_len(size_t len)
{
    return len > TMPL_ERR_QUOTE_MAX ? TMPL_ERR_QUOTE_MAX : (int)len;
}


size_t
tmpl_render(const struct tmpl *t, tmpl_value_fn value, void *data,
            enum str_escape esc, char *dst, size_t cap)
{
    size_t pos = 0;

    for (size_t i = 0; i < t->nparts; i++) {
        const struct tmpl_part *p = &t->parts[i];

        if (p->kind == TMPL_LITERAL) {
            pos = tmpl_emit(dst, cap, pos, p->text, p->len, STR_ESCAPE_NONE);
            continue;
        }

        const char *val = NULL;
        size_t vlen = 0;

        if (value == NULL || value(data, p, &val, &vlen) == -1) {
            continue;
        }
        pos = tmpl_emit(dst, cap, pos, val, vlen, esc);
    }
    return pos;
}


/*
 * Writes src escaped at offset pos of dst, keeping within cap, and returns
 * the offset after it (which may exceed cap: the needed size so far).
 */
static size_t
tmpl_emit(char *dst, size_t cap, size_t pos, const char *src, size_t len,
          enum str_escape esc)
{
    char *at = pos < cap ? dst + pos : NULL;
    const size_t room = pos < cap ? cap - pos : 0;

    return pos + str_escape(at, room, src, len, esc);
}


int
tmpl_literal(struct arena *a, const char *text, size_t len, struct tmpl *t)
{
    t->parts = NULL;
    t->nparts = 0;
    t->has_vars = false;
    if (len == 0) {
        return 0;
    }
    t->parts = arena_alloc(a, sizeof(struct tmpl_part));
    if (t->parts == NULL ||
        tmpl_add_part(a, t, TMPL_LITERAL, text, len, 0) == -1) {
        t->parts = NULL;
        t->nparts = 0;
        return -1;
    }
    return 0;
}
