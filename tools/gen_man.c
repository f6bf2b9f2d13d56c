/* SPDX-License-Identifier: MIT */
/*
 * Writes the man pages snirelay(8) and snirelay.conf(5) at build time, from
 * the directive tables the parser dispatches on (core_directives())
 * and from the README's reference: every table entry must be documented
 * by a row of the README section of its context (a refused one in "Out of
 * scope"), or this tool fails and names it, and so does the build.
 *
 *     gen_man [-x EXTRA.roff] [-f CONF_PATH] README.md OUTDIR
 *
 * EXTRA.roff, when given, is a section appended to snirelay(8) (the
 * metrics families, written by the binary itself). CONF_PATH is named in
 * FILES (default /etc/snirelay/snirelay.conf). The date is that of
 * $SOURCE_DATE_EPOCH when set (reproducible builds), else today's.
 *
 * Text is set ragged-right (.ad l): long code words cannot be justified.
 * The README's Markdown is turned into man(7): paragraphs, "- " lists,
 * tables (a .TP per row) and ``` blocks; `code` and **strong** in bold,
 * *emphasis* in italics, links as their text, other characters than ASCII
 * as \[uXXXX], and text lines wrapped at 80 bytes (mandoc -Tlint's limit).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "core/version.h"
#include "stream/core.h"


#define GEN_MAX_LINES 4096
#define GEN_WIDTH 78 /* text bytes per output line, escapes included */
#define GEN_MAX_CELLS 8
#define GEN_MAX_NAMES 16 /* directive names one reference row documents */


/* The README, split into lines (NUL-terminated, in one buffer). */
struct readme {
    char *text;
    char *lines[GEN_MAX_LINES];
    size_t n;
};

/* A section's body: lines [start, end). */
struct span {
    size_t start;
    size_t end;
};

/* Where a reference table's rows go, and what each row documents. */
struct ref_section {
    const char *heading; /* "### Main context" */
    const char *title;   /* the man page's .SH */
    unsigned contexts;   /* table entries whose contexts meet these */
};


static const struct ref_section gen_refs[] = {
    {"### Main context", "MAIN CONTEXT", CONF_MAIN | CONF_EVENTS},
    {"### stream {} and server {}", "STREAM AND SERVER",
     CONF_STREAM | CONF_SERVER},
    {"### upstream {}", "UPSTREAM", CONF_UPSTREAM},
};

static const struct {
    unsigned bit;
    const char *name;
} gen_ctx_names[] = {
    {CONF_MAIN, "main"},         {CONF_EVENTS, "events"},
    {CONF_STREAM, "stream"},     {CONF_SERVER, "server"},
    {CONF_UPSTREAM, "upstream"},
};


/* Whether the last thing written was .SH or .SS: a paragraph then needs
 * no .PP (mandoc warns of one). */
static bool gen_fresh;


static int gen_read(const char *path, struct readme *r);
static struct span gen_section(const struct readme *r, const char *heading,
                               bool lead_only);
static void gen_roff(const char *md, char *out, size_t cap);
static void gen_text(FILE *f, const char *roff);
static void gen_block(FILE *f, const struct readme *r, struct span s,
                      const struct ref_section *ref);
static size_t gen_cells(char *row, char **cells);
static size_t gen_row_names(const char *cell, bool first, char names[][64],
                            size_t n);
static const struct conf_cmd *gen_find(const char *name, unsigned contexts);
static bool gen_matches(const char *pattern, const char *name);
static bool gen_documented(const struct readme *r, const struct conf_cmd *c);
static void gen_page8(FILE *f, const struct readme *r, const char *date,
                      const char *extra, const char *conf_path);
static void gen_page5(FILE *f, const struct readme *r, const char *date);


int
main(int argc, char **argv)
{
    static struct readme r;
    const char *extra = NULL;
    const char *conf_path = "/etc/snirelay/snirelay.conf";
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t t = sde != NULL ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
    char date[32];
    char path[4096];
    int i = 1;
    int missing = 0;
    FILE *f;

    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-x") == 0) {
            extra = argv[i + 1];
        } else if (strcmp(argv[i], "-f") == 0) {
            conf_path = argv[i + 1];
        } else {
            break;
        }
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: gen_man [-x EXTRA.roff] [-f CONF_PATH] "
                        "README.md OUTDIR\n");
        return 2;
    }
    if (gen_read(argv[i], &r) == -1) {
        return 1;
    }
    strftime(date, sizeof(date), "%Y-%m-%d", gmtime(&t));

    for (size_t k = 0; core_directives(k) != NULL; k++) {
        for (const struct conf_cmd *c = core_directives(k); c->name != NULL;
             c++) {
            if (c->contexts != 0 && !gen_documented(&r, c)) {
                fprintf(stderr,
                        "gen_man: directive \"%s\" is not documented in "
                        "%s (a row of its context's reference table)\n",
                        c->name, argv[i]);
                missing++;
            }
        }
    }
    if (missing > 0) {
        free(r.text);
        return 1;
    }

    snprintf(path, sizeof(path), "%s/snirelay.8", argv[i + 1]);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "gen_man: %s: %s\n", path, strerror(errno));
        free(r.text);
        return 1;
    }
    gen_page8(f, &r, date, extra, conf_path);
    if (fclose(f) != 0) {
        fprintf(stderr, "gen_man: %s: %s\n", path, strerror(errno));
        free(r.text);
        return 1;
    }
    snprintf(path, sizeof(path), "%s/snirelay.conf.5", argv[i + 1]);
    f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "gen_man: %s: %s\n", path, strerror(errno));
        free(r.text);
        return 1;
    }
    gen_page5(f, &r, date);
    if (fclose(f) != 0) {
        fprintf(stderr, "gen_man: %s: %s\n", path, strerror(errno));
        free(r.text);
        return 1;
    }
    free(r.text);
    return 0;
}


/* Reads path whole into r, split at '\n'. Returns 0, or -1 (printed). */
static int
gen_read(const char *path, struct readme *r)
{
    FILE *f = fopen(path, "r");
    long len;
    char *p;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "gen_man: %s: %s\n", path, strerror(errno));
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    r->text = malloc((size_t)len + 1);
    if (r->text == NULL || fread(r->text, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "gen_man: %s: cannot read\n", path);
        fclose(f);
        return -1;
    }
    fclose(f);
    r->text[len] = '\0';
    r->n = 0;
    p = r->text;
    while (*p != '\0' && r->n < GEN_MAX_LINES) {
        char *nl = strchr(p, '\n');
        r->lines[r->n++] = p;
        if (nl == NULL) {
            break;
        }
        *nl = '\0';
        p = nl + 1;
    }
    return 0;
}


/*
 * The body of the section whose heading line is heading: up to the next
 * heading of the same or a higher level, or (lead_only) up to the next
 * heading at all. Empty when there is none.
 */
static struct span
gen_section(const struct readme *r, const char *heading, bool lead_only)
{
    const size_t level = strspn(heading, "#");
    struct span s = {0, 0};

    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->lines[i], heading) != 0) {
            continue;
        }
        s.start = i + 1;
        s.end = r->n;
        for (size_t j = i + 1; j < r->n; j++) {
            const size_t l = strspn(r->lines[j], "#");
            if (l > 0 && (l <= level || lead_only) && r->lines[j][l] == ' ') {
                s.end = j;
                break;
            }
        }
        break;
    }
    return s;
}


/* Appends s to out (cap bytes, NUL-terminated), cutting what does not fit. */
static void
gen_put(char *out, size_t cap, const char *s)
{
    const size_t at = strlen(out);

    snprintf(out + at, cap - at, "%s", s);
}


/* Markdown inline text -> roff text (one logical line, not yet wrapped). */
static void
gen_roff(const char *md, char *out, size_t cap)
{
    bool in_code = false;
    bool in_strong = false;
    bool in_em = false;
    char buf[16];

    out[0] = '\0';
    for (const unsigned char *p = (const unsigned char *)md; *p != '\0'; p++) {
        if (*p == '\\' && p[1] == '|') {
            gen_put(out, cap, "|");
            p++;
        } else if (*p == '\\') {
            gen_put(out, cap, "\\e");
        } else if (*p >= 0x80) {
            /* One UTF-8 sequence -> \[uXXXX]. */
            const int more = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : 1;
            unsigned cp = *p & (0x3fu >> more);
            for (int k = 0; k < more && (p[1] & 0xc0) == 0x80; k++) {
                cp = (cp << 6) | (*++p & 0x3fu);
            }
            snprintf(buf, sizeof(buf), "\\[u%04X]", cp);
            gen_put(out, cap, buf);
        } else if (*p == '`') {
            in_code = !in_code;
            gen_put(out, cap, in_code ? "\\fB" : "\\fR");
        } else if (in_code) {
            buf[0] = (char)*p;
            buf[1] = '\0';
            gen_put(out, cap, buf);
        } else if (*p == '*' && p[1] == '*') {
            in_strong = !in_strong;
            gen_put(out, cap, in_strong ? "\\fB" : "\\fR");
            p++;
        } else if (*p == '*' && (in_em || (p[1] != ' ' && p[1] != '\0'))) {
            in_em = !in_em;
            gen_put(out, cap, in_em ? "\\fI" : "\\fR");
        } else if (*p == '[' && strstr((const char *)p, "](") != NULL &&
                   strchr((const char *)p, ']') ==
                       strstr((const char *)p, "](")) {
            /* A link: its text only. */
            const char *close = strchr((const char *)p, ']');
            const char *end = strchr(close, ')');
            char text[512];
            char sub[1024];
            const size_t tl = (size_t)(close - (const char *)p - 1);

            if (end == NULL || tl >= sizeof(text)) {
                gen_put(out, cap, "[");
                continue;
            }
            memcpy(text, p + 1, tl);
            text[tl] = '\0';
            gen_roff(text, sub, sizeof(sub));
            gen_put(out, cap, sub);
            p = (const unsigned char *)end;
        } else {
            buf[0] = (char)*p;
            buf[1] = '\0';
            gen_put(out, cap, buf);
        }
    }
    if (in_code || in_strong || in_em) {
        gen_put(out, cap, "\\fR");
    }
}


/* Bytes of the roff atom at p: one escape sequence, or one character. */
static size_t
gen_atom(const char *p)
{
    if (p[0] != '\\' || p[1] == '\0') {
        return 1;
    }
    if (p[1] == 'f') {
        return p[2] != '\0' ? 3 : 2;
    }
    if (p[1] == '[') {
        const char *close = strchr(p, ']');
        return close != NULL ? (size_t)(close - p) + 1 : 2;
    }
    return 2;
}


/*
 * Writes roff text wrapped at GEN_WIDTH bytes, at spaces; a word longer
 * than that is cut between atoms with an escaped newline. A line that would
 * start with '.' or '\'' is guarded with "\&".
 */
static void
gen_text(FILE *f, const char *roff)
{
    size_t col = 0;
    const char *p = roff;

    while (*p == ' ') {
        p++;
    }
    while (*p != '\0') {
        size_t wlen = 0;
        while (p[wlen] != '\0' && p[wlen] != ' ') {
            wlen += gen_atom(p + wlen);
        }
        if (col > 0 && col + 1 + wlen > GEN_WIDTH) {
            fputc('\n', f);
            col = 0;
        } else if (col > 0) {
            fputc(' ', f);
            col++;
        }
        for (size_t at = 0; at < wlen;) {
            const size_t a = gen_atom(p + at);
            if (col == 0 && (p[at] == '.' || p[at] == '\'')) {
                fputs("\\&", f);
                col += 2;
            }
            if (col + a > GEN_WIDTH) {
                fputs("\\\n", f);
                col = 0;
                continue;
            }
            fwrite(p + at, 1, a, f);
            col += a;
            at += a;
        }
        p += wlen;
        while (*p == ' ') {
            p++;
        }
    }
    if (col > 0) {
        fputc('\n', f);
    }
}


/* Starts a paragraph, with .PP unless a heading was just written. */
static void
gen_para(FILE *f)
{
    if (!gen_fresh) {
        fputs(".PP\n", f);
    }
    gen_fresh = false;
}


/* Writes a .SH (level 1) or .SS heading. */
static void
gen_heading(FILE *f, bool is_sub, const char *roff)
{
    fprintf(f, "%s \"%s\"\n", is_sub ? ".SS" : ".SH", roff);
    gen_fresh = true;
}


/* Splits a table row in place at '|' (not "\|"); returns the cell count. */
static size_t
gen_cells(char *row, char **cells)
{
    size_t n = 0;
    char *p = row;

    if (*p == '|') {
        p++;
    }
    while (*p != '\0' && n < GEN_MAX_CELLS) {
        char *start = p;
        while (*p != '\0' && !(*p == '|' && (p == row || p[-1] != '\\'))) {
            p++;
        }
        if (*p == '\0' && start == p) {
            break;
        }
        if (*p == '|') {
            *p++ = '\0';
        }
        while (*start == ' ') {
            start++;
        }
        for (char *e = start + strlen(start); e > start && e[-1] == ' ';) {
            *--e = '\0';
        }
        cells[n++] = start;
    }
    return n;
}


/*
 * The directive names a cell documents, into names[] (at most n):
 * first cell, each `code` span's leading word and a word after "{ " in it
 * (`events { worker_connections N; }`); other cells, a span that is a bare
 * word (`use`: gen_documented() takes those only for directives that are
 * accepted and ignored). Returns how many.
 */
static size_t
gen_row_names(const char *cell, bool first, char names[][64], size_t n)
{
    size_t k = 0;
    const char *p = cell;

    while ((p = strchr(p, '`')) != NULL && k < n) {
        const char *end = strchr(p + 1, '`');
        const char *q = p + 1;
        if (end == NULL) {
            break;
        }
        for (int word = 0; q < end && k < n; word++) {
            size_t len = strspn(q, "abcdefghijklmnopqrstuvwxyz0123456789_*");
            if (len == 0 || len >= 64) {
                break;
            }
            if (first || q + len == end) {
                memcpy(names[k], q, len);
                names[k++][len] = '\0';
            }
            if (!first) {
                break;
            }
            q = strstr(q + len, "{ ");
            if (q == NULL || q > end) {
                break;
            }
            q += 2;
        }
        p = end + 1;
    }
    return k;
}


/* Whether README name pattern (maybe ending in '*') covers name. */
static bool
gen_matches(const char *pattern, const char *name)
{
    const size_t len = strlen(pattern);

    if (len > 0 && pattern[len - 1] == '*') {
        return strncmp(pattern, name, len - 1) == 0;
    }
    return strcmp(pattern, name) == 0;
}


/* Whether a reference row of c's context, or (for a refused directive)
 * the "Out of scope" text, names c. */
static bool
gen_documented(const struct readme *r, const struct conf_cmd *c)
{
    if ((c->args & CONF_REFUSE) != 0) {
        const struct span s =
            gen_section(r, "### Out of scope, refused with the reason", false);
        char pat[80];
        snprintf(pat, sizeof(pat), "`%s", c->name);
        for (size_t i = s.start; i < s.end; i++) {
            if (strstr(r->lines[i], pat) != NULL) {
                return true;
            }
        }
        return false;
    }
    for (size_t k = 0; k < sizeof(gen_refs) / sizeof(gen_refs[0]); k++) {
        const struct span s = gen_section(r, gen_refs[k].heading, false);
        if ((c->contexts & gen_refs[k].contexts) == 0) {
            continue;
        }
        for (size_t i = s.start; i < s.end; i++) {
            char row[8192];
            char *cells[GEN_MAX_CELLS];
            char names[GEN_MAX_NAMES][64];
            size_t nc;

            if (r->lines[i][0] != '|') {
                continue;
            }
            snprintf(row, sizeof(row), "%s", r->lines[i]);
            nc = gen_cells(row, cells);
            /* Only a directive accepted and ignored may be documented by
             * a mention in the notes (`use`, in the events row). */
            for (size_t j = 0; j < nc && (j == 0 || c->set == conf_set_ignore);
                 j++) {
                const size_t nn =
                    gen_row_names(cells[j], j == 0, names, GEN_MAX_NAMES);
                for (size_t m = 0; m < nn; m++) {
                    if (gen_matches(names[m], c->name)) {
                        return true;
                    }
                }
            }
        }
    }
    return false;
}


/* The first table entry named name (or matched by it, a pattern) allowed
 * in one of contexts; NULL if none. */
static const struct conf_cmd *
gen_find(const char *name, unsigned contexts)
{
    for (size_t k = 0; core_directives(k) != NULL; k++) {
        for (const struct conf_cmd *c = core_directives(k); c->name != NULL;
             c++) {
            if ((c->contexts & contexts) != 0 && gen_matches(name, c->name)) {
                return c;
            }
        }
    }
    return NULL;
}


/* One table row as .TP: the first cell as the tag; for a reference row,
 * "Context:" from the tables and "Default:" from the row. */
static void
gen_row(FILE *f, char **cells, size_t nc, char **head,
        const struct ref_section *ref)
{
    static char roff[65536];
    unsigned contexts = 0;
    const char *def = NULL;
    const char *notes = NULL;

    fputs(".TP\n", f);
    gen_fresh = false;
    gen_roff(cells[0], roff, sizeof(roff));
    gen_text(f, roff);
    if (ref == NULL) {
        /* A plain table: each further cell in turn, the header naming it
         * when there are more than two columns. */
        for (size_t j = 1; j < nc; j++) {
            char md[16384];
            if (cells[j][0] == '\0') {
                continue;
            }
            if (nc > 2) {
                snprintf(md, sizeof(md), "%s: %s.", head[j], cells[j]);
            } else {
                snprintf(md, sizeof(md), "%s", cells[j]);
            }
            gen_roff(md, roff, sizeof(roff));
            gen_text(f, roff);
        }
        return;
    }
    for (size_t j = 1; j < nc; j++) {
        if (strcmp(head[j], "default") == 0 && cells[j][0] != '\0') {
            def = cells[j];
        } else if (strcmp(head[j], "notes") == 0 && cells[j][0] != '\0') {
            notes = cells[j];
        }
    }
    {
        char names[GEN_MAX_NAMES][64];
        const size_t nn = gen_row_names(cells[0], true, names, GEN_MAX_NAMES);
        for (size_t m = 0; m < nn; m++) {
            const struct conf_cmd *c = gen_find(names[m], ref->contexts);
            if (c != NULL) {
                contexts |= c->contexts & ref->contexts;
            }
        }
    }
    if (contexts != 0 || def != NULL) {
        char md[1024] = "";
        bool first = true;
        if (contexts != 0) {
            gen_put(md, sizeof(md), "Context: ");
            for (size_t k = 0;
                 k < sizeof(gen_ctx_names) / sizeof(gen_ctx_names[0]); k++) {
                if ((contexts & gen_ctx_names[k].bit) != 0) {
                    gen_put(md, sizeof(md), first ? "" : ", ");
                    gen_put(md, sizeof(md), gen_ctx_names[k].name);
                    first = false;
                }
            }
            gen_put(md, sizeof(md), ".");
        }
        if (def != NULL) {
            gen_put(md, sizeof(md), contexts != 0 ? " Default: " : "Default: ");
            gen_put(md, sizeof(md), def);
            gen_put(md, sizeof(md), ".");
        }
        gen_roff(md, roff, sizeof(roff));
        gen_text(f, roff);
        if (notes != NULL) {
            fputs(".br\n", f);
        }
    }
    if (notes != NULL) {
        gen_roff(notes, roff, sizeof(roff));
        gen_text(f, roff);
    }
}


/*
 * A README section body as man(7): paragraphs (lines joined), "- " lists
 * (indented continuation lines joined), tables (a .TP per row, through
 * gen_row; ref says how to read a reference table, or NULL) and ``` blocks
 * (.nf, verbatim but escaped). Headings inside it become .SS.
 */
static void
gen_block(FILE *f, const struct readme *r, struct span s,
          const struct ref_section *ref)
{
    static char md[65536];
    static char roff[131072];
    char *head[GEN_MAX_CELLS] = {0};
    char head_row[1024];
    size_t i = s.start;

    while (i < s.end) {
        const char *line = r->lines[i];

        if (line[0] == '\0') {
            i++;
        } else if (strncmp(line, "```", 3) == 0) {
            gen_para(f);
            fputs(".nf\n", f);
            for (i++; i < s.end && strncmp(r->lines[i], "```", 3) != 0; i++) {
                char esc[4096] = "";
                for (const char *p = r->lines[i]; *p != '\0'; p++) {
                    char one[2] = {*p, '\0'};
                    gen_put(esc, sizeof(esc), *p == '\\' ? "\\e" : one);
                }
                fprintf(f, "%s%s\n",
                        esc[0] == '.' || esc[0] == '\'' ? "\\&" : "", esc);
            }
            fputs(".fi\n", f);
            i++;
        } else if (line[0] == '#') {
            gen_roff(line + strspn(line, "#") + 1, roff, sizeof(roff));
            gen_heading(f, true, roff);
            i++;
        } else if (line[0] == '|') {
            char *cells[GEN_MAX_CELLS];
            size_t nh;

            snprintf(head_row, sizeof(head_row), "%s", line);
            nh = gen_cells(head_row, head);
            (void)nh;
            i += 2; /* the header and the --- row */
            for (; i < s.end && r->lines[i][0] == '|'; i++) {
                size_t nc;
                snprintf(md, sizeof(md), "%s", r->lines[i]);
                nc = gen_cells(md, cells);
                if (nc > 0) {
                    gen_row(f, cells, nc, head, ref);
                }
            }
        } else if (strncmp(line, "- ", 2) == 0) {
            md[0] = '\0';
            gen_put(md, sizeof(md), line + 2);
            for (i++; i < s.end && strncmp(r->lines[i], "  ", 2) == 0; i++) {
                gen_put(md, sizeof(md), " ");
                gen_put(md, sizeof(md), r->lines[i] + strspn(r->lines[i], " "));
            }
            fputs(".IP \\(bu 2\n", f);
            gen_fresh = false;
            gen_roff(md, roff, sizeof(roff));
            gen_text(f, roff);
        } else {
            md[0] = '\0';
            for (;
                 i < s.end && r->lines[i][0] != '\0' && r->lines[i][0] != '|' &&
                 r->lines[i][0] != '#' && strncmp(r->lines[i], "```", 3) != 0 &&
                 strncmp(r->lines[i], "- ", 2) != 0;
                 i++) {
                gen_put(md, sizeof(md), md[0] != '\0' ? " " : "");
                gen_put(md, sizeof(md), r->lines[i] + strspn(r->lines[i], " "));
            }
            gen_para(f);
            gen_roff(md, roff, sizeof(roff));
            gen_text(f, roff);
        }
    }
}


/* The part of the README before its first "## ": the description. */
static struct span
gen_intro(const struct readme *r)
{
    struct span s = {0, 0};

    for (size_t i = 0; i < r->n; i++) {
        if (strncmp(r->lines[i], "# ", 2) == 0) {
            s.start = i + 1;
        } else if (strncmp(r->lines[i], "## ", 3) == 0) {
            s.end = i;
            break;
        }
    }
    return s;
}


static void
gen_page8(FILE *f, const struct readme *r, const char *date, const char *extra,
          const char *conf_path)
{
    fprintf(f,
            ".\\\" Generated by tools/gen_man.c from README.md and the "
            "directive tables.\n"
            ".TH SNIRELAY 8 %s \"snirelay %s\" \"System Manager's Manual\"\n"
            ".ad l\n"
            ".SH NAME\n"
            "snirelay \\- TLS-passthrough proxy that routes by SNI,\n"
            "configured in nginx stream syntax\n"
            ".SH SYNOPSIS\n"
            ".B snirelay\n"
            "[\\fB\\-c\\fR \\fIfile\\fR]\n"
            "[\\fB\\-p\\fR \\fIprefix\\fR]\n"
            "[\\fB\\-e\\fR \\fIfile\\fR]\n"
            "[\\fB\\-g\\fR \\fIdirectives\\fR]\n"
            "[\\fB\\-t\\fR | \\fB\\-T\\fR]\n"
            "[\\fB\\-q\\fR]\n"
            "[\\fB\\-s\\fR \\fIsignal\\fR]\n"
            "[\\fB\\-v\\fR | \\fB\\-V\\fR | \\fB\\-h\\fR]\n",
            date, SNIRELAY_VERSION);
    gen_heading(f, false, "DESCRIPTION");
    gen_block(f, r, gen_intro(r), NULL);
    gen_para(f);
    fputs("The configuration is described in\n.BR snirelay.conf (5).\n", f);
    gen_heading(f, false, "OPTIONS");
    gen_block(f, r, gen_section(r, "## Command line", true), NULL);
    gen_heading(f, false, "SIGNALS");
    gen_block(f, r, gen_section(r, "### Processes and signals", false), NULL);
    gen_heading(f, false, "WORKER SANDBOX");
    gen_block(f, r, gen_section(r, "### The worker sandbox", false), NULL);
    if (extra != NULL) {
        FILE *x = fopen(extra, "r");
        char buf[4096];
        size_t got;
        if (x == NULL) {
            fprintf(stderr, "gen_man: %s: %s\n", extra, strerror(errno));
            exit(1);
        }
        while ((got = fread(buf, 1, sizeof(buf), x)) > 0) {
            fwrite(buf, 1, got, f);
        }
        fclose(x);
    }
    fprintf(f,
            ".SH FILES\n"
            ".TP\n"
            ".I %s\n"
            "The configuration file of an installed snirelay (the service's "
            "\\fB\\-c\\fR).\n"
            ".SH SEE ALSO\n"
            ".BR snirelay.conf (5),\n"
            ".BR nginx (8),\n"
            ".BR systemd.service (5)\n",
            conf_path);
}


static void
gen_page5(FILE *f, const struct readme *r, const char *date)
{
    fprintf(f,
            ".\\\" Generated by tools/gen_man.c from README.md and the "
            "directive tables.\n"
            ".TH SNIRELAY.CONF 5 %s \"snirelay %s\" \"File Formats Manual\"\n"
            ".ad l\n"
            ".SH NAME\n"
            "snirelay.conf \\- snirelay configuration file\n",
            date, SNIRELAY_VERSION);
    gen_heading(f, false, "DESCRIPTION");
    gen_block(f, r, gen_section(r, "## Configuration reference", true), NULL);
    for (size_t k = 0; k < sizeof(gen_refs) / sizeof(gen_refs[0]); k++) {
        gen_heading(f, false, gen_refs[k].title);
        gen_block(f, r, gen_section(r, gen_refs[k].heading, false),
                  &gen_refs[k]);
    }
    gen_heading(f, false, "OUT OF SCOPE");
    gen_block(
        f, r,
        gen_section(r, "### Out of scope, refused with the reason", false),
        NULL);
    gen_heading(f, false, "VARIABLES");
    gen_block(f, r, gen_section(r, "### Variables", false), NULL);
    fputs(".SH SEE ALSO\n.BR snirelay (8)\n", f);
}
