/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the template compiler and renderer
 * (src/stream/tmpl.c) and for log_format (src/stream/log.c), which compiles
 * its arguments into one template with the real variable registry.
 *
 * Input: byte 0 chooses the escaping of the render; the rest is compiled as
 * one template, copied into an exact-size heap buffer, with a resolver that
 * knows the names starting with a..m (those starting with c are named
 * captures). Then the rest, split at '\n', is the arguments of
 * `log_format NAME [escape=X] PART...`.
 *
 * A compiled template must hold literals without '$' and names made of
 * [A-Za-z0-9_], must compile again from its "${name}" form to the same
 * parts, and must render with snprintf's contract: the same length for
 * every cap, the first cap bytes of the whole output and never a byte
 * past cap (buffers are exact-size heap blocks). A failed compile leaves
 * no parts and a message. A log_format accepted once is refused as a
 * duplicate the second time. Any broken rule traps.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/str.h"
#include "log/errlog.h"
#include "stream/core.h"
#include "stream/log.h"
#include "stream/stream.h"
#include "stream/tmpl.h"
#include "fuzz.h"


/* Arguments of one log_format, at most; more are dropped. */
#define ARGS_MAX 64


static int fuzz_resolve(void *data, const char *name, size_t len,
                        bool *is_capture);
static int fuzz_value(void *data, const struct tmpl_part *p, const char **val,
                      size_t *len);
static void check_compiled(struct arena *a, const struct tmpl *t);
static void check_render(const struct tmpl *t, enum str_escape esc);
static void check_log_format(struct arena *a, const char *text, size_t len,
                             enum str_escape esc);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum str_escape escapes[] = {
        STR_ESCAPE_DEFAULT, STR_ESCAPE_JSON, STR_ESCAPE_NONE};
    struct arena *const a = arena_new();
    struct tmpl t;
    char err[128];

    if (size < 1) {
        arena_free(a);
        return 0;
    }
    CHECK(a != NULL);

    const enum str_escape esc = escapes[data[0] % 3];
    const size_t len = size - 1;
    char *const text = malloc(len > 0 ? len : 1);

    CHECK(text != NULL);
    memcpy(text, data + 1, len);
    if (tmpl_compile(a, text, len, fuzz_resolve, NULL, &t, err, sizeof(err)) ==
        NULL) {
        CHECK(len > 0 || t.nparts == 0);
        check_compiled(a, &t);
        check_render(&t, esc);
    } else {
        CHECK(t.nparts == 0 && t.parts == NULL && !t.has_vars);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
    }
    /* Without a message buffer a failure still has a message. */
    if (tmpl_compile(a, text, len, fuzz_resolve, NULL, &t, NULL, 0) != NULL) {
        CHECK(t.nparts == 0);
    }
    check_log_format(a, text, len, esc);
    free(text);
    arena_free(a);
    return 0;
}


/* Names a..m are known; those starting with 'c' are named captures. */
static int
fuzz_resolve(void *data, const char *name, size_t len, bool *is_capture)
{
    (void)data;
    CHECK(len > 0 && !*is_capture);
    if (name[0] < 'a' || name[0] > 'm') {
        return -1;
    }
    if (name[0] == 'c') {
        *is_capture = true;
        return (int)(len % 10);
    }
    return (int)len;
}


/*
 * A value made from the part: bytes every escaping must handle, of a
 * length that depends on the name; some values are missing.
 */
static int
fuzz_value(void *data, const struct tmpl_part *p, const char **val,
           size_t *len)
{
    static const char bytes[] = "v\"\\\x01\n\x7f\xc3\xa9\xff/ok\ttail";

    (void)data;
    if (p->id % 5 == 4) {
        return -1;
    }
    *val = p->len % 2 == 0 ? bytes : p->text;
    *len = p->len % 2 == 0 ? (size_t)p->id % sizeof(bytes) : p->len;
    return 0;
}


static bool
is_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_';
}


/*
 * The parts are well formed, and their "${name}" form compiles to the
 * same parts.
 */
static void
check_compiled(struct arena *a, const struct tmpl *t)
{
    size_t cap = 1;
    bool has_vars = false;

    CHECK((t->nparts == 0) == (t->parts == NULL));
    for (size_t i = 0; i < t->nparts; i++) {
        const struct tmpl_part *p = &t->parts[i];

        CHECK(p->len > 0 && p->text[p->len] == '\0');
        cap += p->len + 3;
        if (p->kind == TMPL_LITERAL) {
            CHECK(memchr(p->text, '$', p->len) == NULL);
            CHECK(p->id == 0);
            /* Two literals in a row would have been one. */
            CHECK(i == 0 || t->parts[i - 1].kind != TMPL_LITERAL);
            continue;
        }
        has_vars = true;
        CHECK(p->kind == TMPL_VAR || p->kind == TMPL_CAPTURE);
        CHECK(p->id >= 0);
        for (size_t j = 0; j < p->len; j++) {
            CHECK(is_name_char(p->text[j]));
        }
    }
    CHECK(has_vars == t->has_vars);

    char *const again = arena_alloc(a, cap);
    size_t at = 0;
    struct tmpl u;

    CHECK(again != NULL);
    for (size_t i = 0; i < t->nparts; i++) {
        const struct tmpl_part *p = &t->parts[i];

        if (p->kind != TMPL_LITERAL) {
            memcpy(again + at, "${", 2);
            at += 2;
        }
        memcpy(again + at, p->text, p->len);
        at += p->len;
        if (p->kind != TMPL_LITERAL) {
            again[at++] = '}';
        }
    }
    CHECK(tmpl_compile(a, again, at, fuzz_resolve, NULL, &u, NULL, 0) == NULL);
    CHECK(u.nparts == t->nparts && u.has_vars == t->has_vars);
    for (size_t i = 0; i < t->nparts; i++) {
        CHECK(u.parts[i].kind == t->parts[i].kind);
        CHECK(u.parts[i].id == t->parts[i].id);
        CHECK(u.parts[i].len == t->parts[i].len);
        CHECK(memcmp(u.parts[i].text, t->parts[i].text, u.parts[i].len) == 0);
    }
}


/* snprintf's contract, with exact-size buffers. */
static void
check_render(const struct tmpl *t, enum str_escape esc)
{
    const size_t need = tmpl_render(t, fuzz_value, NULL, esc, NULL, 0);
    char *const full = malloc(need > 0 ? need : 1);

    CHECK(full != NULL);
    CHECK(tmpl_render(t, fuzz_value, NULL, esc, full, need) == need);
    for (size_t cap = need / 2; cap > 0; cap /= 3) {
        char *const part = malloc(cap);

        CHECK(part != NULL);
        CHECK(tmpl_render(t, fuzz_value, NULL, esc, part, cap) == need);
        CHECK(memcmp(part, full, cap) == 0);
        free(part);
    }
    if (esc == STR_ESCAPE_NONE || !t->has_vars) {
        size_t sum = 0;

        for (size_t i = 0; i < t->nparts; i++) {
            const char *val = t->parts[i].text;
            size_t vlen = t->parts[i].len;

            if (t->parts[i].kind != TMPL_LITERAL &&
                fuzz_value(NULL, &t->parts[i], &val, &vlen) == -1) {
                continue;
            }
            sum += vlen;
        }
        CHECK(sum == need);
    }
    free(full);
}


/*
 * `log_format` with the input's lines as arguments, through its setter
 * and the real variable registry of an empty stream{}.
 */
static void
check_log_format(struct arena *a, const char *text, size_t len,
                 enum str_escape esc)
{
    char *args[ARGS_MAX + 2] = {"log_format"};
    size_t nargs = 1;
    const char *at = text;
    const char *const end = text + len;

    while (at <= end && nargs < ARGS_MAX) {
        const char *nl = memchr(at, '\n', (size_t)(end - at));
        const size_t n = nl != NULL ? (size_t)(nl - at) : (size_t)(end - at);

        args[nargs] = arena_strndup(a, at, n);
        CHECK(args[nargs] != NULL);
        nargs++;
        at += n + 1;
    }
    args[nargs] = NULL;
    if (nargs < 3) {
        return; /* the table's CONF_2MORE refuses it before the setter */
    }

    static struct errlog quiet = {.fd = -1, .level = ERRLOG_DEBUG,
                                  .path = "quiet"};
    struct stream_conf conf;
    struct core_state st = {.conf = &conf};
    struct conf_ctx cf = {.arena = a, .data = &st};
    struct conf_node n = {.args = args, .nargs = nargs, .file = "fuzz",
                          .line = 1};

    errlog_set_default(&quiet);
    memset(&conf, 0, sizeof(conf));
    conf.arena = a;
    const char *const rv = log_format_set(&cf, &n, NULL, &conf.set);
    if (rv != NULL) {
        CHECK(rv[0] != '\0');
        CHECK(conf.formats == NULL);
        return;
    }
    CHECK(conf.formats != NULL && conf.formats->next == NULL);
    CHECK(strcmp(conf.formats->name, args[1]) == 0);
    check_render(&conf.formats->t, esc);
    CHECK(log_format_set(&cf, &n, NULL, &conf.set) != NULL);
    CHECK(conf.formats->next == NULL);
}
