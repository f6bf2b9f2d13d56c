/* SPDX-License-Identifier: MIT */
/*
 * nginx-compatible name matching. Exact keys live in an open-addressing
 * hash table. Leading wildcards ("*.a.b", ".a.b") live in a second table
 * keyed by "a.b", trailing wildcards ("a.b.*") in a third keyed by "a.b";
 * a lookup hashes each dot-suffix (or dot-prefix) of the name, longest
 * first, which gives the same answers as nginx's nested wildcard hashes
 * (ngx_hash_find_wc_head/_tail) at a cost of one probe per label. Conflict
 * rules follow ngx_hash_add_key(). Regexes are tried in order afterwards.
 *
 * Costs: a lookup is O(labels * name length) for the wildcard walks (names
 * are at most 255 bytes) plus one PCRE2 match per regex tried.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bug.h"
#include "stream/hostmatch.h"


/* Slots of a table when it first gets a key; tables grow by doubling. */
#define HOSTMATCH_TABLE_MIN 16

/* Longest group name PCRE2 accepts (MAX_NAME_SIZE in PCRE2 10.42). */
#define HOSTMATCH_GROUP_NAME_MAX 128

/* Room for pcre2_get_error_message() texts. */
#define HOSTMATCH_PCRE2_ERR_MAX 256

_Static_assert(HOSTMATCH_UNSET == PCRE2_UNSET,
               "HOSTMATCH_UNSET must equal PCRE2_UNSET");


/* One key of a table; an empty slot has key == NULL. */
struct hostmatch_entry {
    char *key;        /* lowercase bytes plus a NUL (malloc), or NULL */
    size_t len;       /* bytes in key, without the NUL */
    uint32_t hash;    /* hostmatch_hash() of key */
    bool allows_bare; /* head table only: ".a.b" form, also matches "a.b" */
    void *value;      /* caller's value, never NULL */
};

/* An open-addressing hash table with linear probing. */
struct hostmatch_table {
    struct hostmatch_entry *slots; /* cap slots (malloc), NULL when cap 0 */
    size_t cap;                    /* 0 or a power of two */
    size_t count;                  /* used slots, kept <= 3/4 of cap */
};

/* One "~regex" key. */
struct hostmatch_regex {
    pcre2_code *code; /* owned; freed with pcre2_code_free() */
    void *value;      /* caller's value */
};

struct hostmatch {
    bool hostnames;                  /* wildcards and trailing-dot rule on */
    struct hostmatch_table exact;    /* exact keys */
    struct hostmatch_table head;     /* "*.a.b" and ".a.b", keyed by "a.b" */
    struct hostmatch_table tail;     /* "a.b.*", keyed by "a.b" */
    struct hostmatch_regex *regexes; /* nregexes in order added (malloc) */
    size_t nregexes;
    size_t regexes_cap;           /* slots allocated in regexes */
    pcre2_match_data *match_data; /* shared by lookups; made with the first
                                     regex, HOSTMATCH_MAX_CAPS pairs */
};

/* How hostmatch_add() classifies a non-regex key. */
enum hostmatch_kind {
    HOSTMATCH_EXACT,     /* "a.b" */
    HOSTMATCH_HEAD_STAR, /* "*.a.b": proper subdomains of "a.b" */
    HOSTMATCH_HEAD_DOT,  /* ".a.b": "a.b" and its subdomains */
    HOSTMATCH_TAIL,      /* "a.b.*" */
    HOSTMATCH_INVALID,   /* a malformed wildcard */
};


static int hostmatch_add_regex(struct hostmatch *m, const char *key, size_t len,
                               void *value, char *err, size_t errcap);
static enum hostmatch_kind hostmatch_classify(const char *key, size_t len,
                                              size_t *start, size_t *klen);
static int hostmatch_error(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int hostmatch_quote_len(size_t len);
static unsigned char hostmatch_lower(unsigned char ch);
static uint32_t hostmatch_hash(const char *s, size_t len);
static struct hostmatch_entry *
hostmatch_table_find(const struct hostmatch_table *t, const char *s,
                     size_t len);
static struct hostmatch_entry *hostmatch_table_add(struct hostmatch_table *t,
                                                   const char *s, size_t len,
                                                   void *value);
static int hostmatch_table_grow(struct hostmatch_table *t);
static void hostmatch_table_free(struct hostmatch_table *t);
static void *hostmatch_find_head(const struct hostmatch *m, const char *name,
                                 size_t len);
static void *hostmatch_find_tail(const struct hostmatch *m, const char *name,
                                 size_t len);
static void *hostmatch_find_regex(const struct hostmatch *m, const char *name,
                                  size_t len, struct hostmatch_caps *caps);


struct hostmatch *
hostmatch_new(bool hostnames)
{
    struct hostmatch *m = calloc(1, sizeof(*m));

    if (m != NULL) {
        m->hostnames = hostnames;
    }
    return m;
}


int
hostmatch_add(struct hostmatch *m, const char *key, size_t len, void *value,
              char *err, size_t errcap)
{
    BUG_ON(value == NULL);

    const char *shown = key;
    const size_t shown_len = len;

    if (len > 0 && key[0] == '~') {
        return hostmatch_add_regex(m, key, len, value, err, errcap);
    }
    if (len > 0 && key[0] == '\\') {
        key++;
        len--;
    }

    size_t start = 0;
    size_t klen = len;
    const enum hostmatch_kind kind =
        m->hostnames ? hostmatch_classify(key, len, &start, &klen)
                     : HOSTMATCH_EXACT;
    const char *k = key + start;
    struct hostmatch_entry *e = NULL;

    switch (kind) {
    case HOSTMATCH_INVALID:
        return hostmatch_error(err, errcap,
                               "invalid server name or wildcard \"%.*s\"",
                               hostmatch_quote_len(shown_len), shown);

    case HOSTMATCH_EXACT:
        /* ".a.b" claims "a.b" as an exact name too (ngx_hash_add_key). */
        e = hostmatch_table_find(&m->head, k, klen);
        if (hostmatch_table_find(&m->exact, k, klen) != NULL ||
            (m->hostnames && e != NULL && e->allows_bare)) {
            goto conflict;
        }
        e = hostmatch_table_add(&m->exact, k, klen, value);
        break;

    case HOSTMATCH_HEAD_STAR:
    case HOSTMATCH_HEAD_DOT:
        /* "*.a.b" and ".a.b" share the slot "a.b" and so conflict. */
        if (hostmatch_table_find(&m->head, k, klen) != NULL ||
            (kind == HOSTMATCH_HEAD_DOT &&
             hostmatch_table_find(&m->exact, k, klen) != NULL)) {
            goto conflict;
        }
        e = hostmatch_table_add(&m->head, k, klen, value);
        if (e != NULL) {
            e->allows_bare = kind == HOSTMATCH_HEAD_DOT;
        }
        break;

    case HOSTMATCH_TAIL:
        if (hostmatch_table_find(&m->tail, k, klen) != NULL) {
            goto conflict;
        }
        e = hostmatch_table_add(&m->tail, k, klen, value);
        break;
    }

    if (e == NULL) {
        return hostmatch_error(err, errcap, "memory allocation failed");
    }
    return 0;

conflict:
    return hostmatch_error(err, errcap, "conflicting parameter \"%.*s\"",
                           hostmatch_quote_len(shown_len), shown);
}


/* Compiles "~re" or "~*re" (caseless) and appends it; 0 or -1. */
static int
hostmatch_add_regex(struct hostmatch *m, const char *key, size_t len,
                    void *value, char *err, size_t errcap)
{
    uint32_t options = 0;
    const char *re = key + 1;
    size_t re_len = len - 1;

    if (re_len > 0 && re[0] == '*') {
        options |= PCRE2_CASELESS;
        re++;
        re_len--;
    }

    if (m->match_data == NULL) {
        m->match_data = pcre2_match_data_create(HOSTMATCH_MAX_CAPS, NULL);
        if (m->match_data == NULL) {
            return hostmatch_error(err, errcap, "memory allocation failed");
        }
    }
    if (m->nregexes == m->regexes_cap) {
        const size_t cap = m->regexes_cap == 0 ? 4 : 2 * m->regexes_cap;
        struct hostmatch_regex *r =
            realloc(m->regexes, cap * sizeof(struct hostmatch_regex));

        if (r == NULL) {
            return hostmatch_error(err, errcap, "memory allocation failed");
        }
        m->regexes = r;
        m->regexes_cap = cap;
    }

    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)re, re_len, options, &errcode, &erroff, NULL);

    if (code == NULL) {
        PCRE2_UCHAR msg[HOSTMATCH_PCRE2_ERR_MAX];

        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0) {
            snprintf((char *)msg, sizeof(msg), "error %d", errcode);
        }
        if (erroff >= re_len) {
            return hostmatch_error(
                err, errcap, "pcre2_compile() failed: %s in \"%.*s\"",
                (const char *)msg, hostmatch_quote_len(re_len), re);
        }
        return hostmatch_error(
            err, errcap, "pcre2_compile() failed: %s in \"%.*s\" at \"%.*s\"",
            (const char *)msg, hostmatch_quote_len(re_len), re,
            hostmatch_quote_len(re_len - erroff), re + erroff);
    }

    /* JIT is an optimisation only: without it pcre2_match() interprets. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);

    m->regexes[m->nregexes].code = code;
    m->regexes[m->nregexes].value = value;
    m->nregexes++;
    return 0;
}


/*
 * Classifies a key in hostnames mode like ngx_hash_add_key() with
 * NGX_HASH_WILDCARD_KEY, and sets [*start, *start + *klen) to the part that
 * is hashed: "a.b" for "*.a.b", ".a.b" and "a.b.*". Unlike nginx, a '*'
 * left inside that part (".a.*") is refused rather than kept as a literal
 * that no valid host name could match.
 */
static enum hostmatch_kind
hostmatch_classify(const char *key, size_t len, size_t *start, size_t *klen)
{
    size_t stars = 0;

    for (size_t i = 0; i < len; i++) {
        if (key[i] == '*' && ++stars > 1) {
            return HOSTMATCH_INVALID;
        }
        if (key[i] == '\0' ||
            (key[i] == '.' && i + 1 < len && key[i + 1] == '.')) {
            return HOSTMATCH_INVALID;
        }
    }

    if (len > 1 && key[0] == '.') {
        *start = 1;
        *klen = len - 1;
        return stars ? HOSTMATCH_INVALID : HOSTMATCH_HEAD_DOT;
    }
    if (len > 2 && key[0] == '*' && key[1] == '.') {
        *start = 2;
        *klen = len - 2;
        return HOSTMATCH_HEAD_STAR;
    }
    if (len > 2 && key[len - 2] == '.' && key[len - 1] == '*') {
        *start = 0;
        *klen = len - 2;
        return HOSTMATCH_TAIL;
    }
    *start = 0;
    *klen = len;
    return stars ? HOSTMATCH_INVALID : HOSTMATCH_EXACT;
}


/* Formats a message into err (when there is room) and returns -1. */
static int
hostmatch_error(char *err, size_t errcap, const char *fmt, ...)
{
    if (err != NULL && errcap > 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}


/* The precision for "%.*s" quoting len bytes of a key. */
static int
hostmatch_quote_len(size_t len)
{
    return len > 1024 ? 1024 : (int)len;
}


int
hostmatch_last_group(const struct hostmatch *m, const char *name, size_t len)
{
    char buf[HOSTMATCH_GROUP_NAME_MAX + 1];

    if (m->nregexes == 0 || len == 0 || len > HOSTMATCH_GROUP_NAME_MAX ||
        memchr(name, '\0', len) != NULL) {
        return -1;
    }
    memcpy(buf, name, len);
    buf[len] = '\0';

    const int n = pcre2_substring_number_from_name(
        m->regexes[m->nregexes - 1].code, (PCRE2_SPTR)buf);

    return n > 0 ? n : -1;
}


void *
hostmatch_find(const struct hostmatch *m, const char *name, size_t len,
               struct hostmatch_caps *caps)
{
    if (name == NULL) {
        BUG_ON(len != 0);
        name = "";
    }
    if (caps != NULL) {
        caps->subject = name;
        caps->count = 0;
    }
    if (m->hostnames && len > 0 && name[len - 1] == '.') {
        len--;
    }

    const struct hostmatch_entry *e =
        hostmatch_table_find(&m->exact, name, len);

    if (e != NULL) {
        return e->value;
    }

    /* As ngx_hash_find_combined(): wildcards never match an empty name. */
    if (len > 0) {
        void *value = hostmatch_find_head(m, name, len);

        if (value == NULL) {
            value = hostmatch_find_tail(m, name, len);
        }
        if (value != NULL) {
            return value;
        }
    }

    return hostmatch_find_regex(m, name, len, caps);
}


/*
 * Longest leading wildcard: the whole name may match ".name"; then each
 * suffix after a dot, longest first, may match "*.suffix" or ".suffix".
 */
static void *
hostmatch_find_head(const struct hostmatch *m, const char *name, size_t len)
{
    if (m->head.count == 0) {
        return NULL;
    }

    const struct hostmatch_entry *e = hostmatch_table_find(&m->head, name, len);

    if (e != NULL && e->allows_bare) {
        return e->value;
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] != '.') {
            continue;
        }
        e = hostmatch_table_find(&m->head, name + i + 1, len - i - 1);
        if (e != NULL) {
            return e->value;
        }
    }
    return NULL;
}


/* Longest trailing wildcard: each prefix before a dot, longest first. */
static void *
hostmatch_find_tail(const struct hostmatch *m, const char *name, size_t len)
{
    if (m->tail.count == 0) {
        return NULL;
    }
    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] != '.') {
            continue;
        }

        const struct hostmatch_entry *e =
            hostmatch_table_find(&m->tail, name, i - 1);

        if (e != NULL) {
            return e->value;
        }
    }
    return NULL;
}


/* The first regex, in the order added, that matches; fills caps. */
static void *
hostmatch_find_regex(const struct hostmatch *m, const char *name, size_t len,
                     struct hostmatch_caps *caps)
{
    for (size_t i = 0; i < m->nregexes; i++) {
        const int rc = pcre2_match(m->regexes[i].code, (PCRE2_SPTR)name, len, 0,
                                   0, m->match_data, NULL);

        if (rc == PCRE2_ERROR_NOMATCH) {
            continue;
        }
        if (rc < 0) {
            return NULL;
        }
        if (caps != NULL) {
            const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->match_data);

            /* rc 0: more groups than the match data holds; all kept. */
            caps->count = rc == 0 ? HOSTMATCH_MAX_CAPS : (size_t)rc;
            for (size_t g = 0; g < HOSTMATCH_MAX_CAPS; g++) {
                const bool kept = g < caps->count;

                caps->ovector[2 * g] = kept ? ov[2 * g] : HOSTMATCH_UNSET;
                caps->ovector[2 * g + 1] =
                    kept ? ov[2 * g + 1] : HOSTMATCH_UNSET;
            }
        }
        return m->regexes[i].value;
    }
    return NULL;
}


int
hostmatch_cap(const struct hostmatch_caps *caps, size_t n, const char **val,
              size_t *len)
{
    if (n >= caps->count || n >= HOSTMATCH_MAX_CAPS) {
        return -1;
    }

    const size_t start = caps->ovector[2 * n];
    const size_t end = caps->ovector[2 * n + 1];

    if (start == HOSTMATCH_UNSET || end == HOSTMATCH_UNSET || end < start) {
        return -1;
    }
    *val = caps->subject + start;
    *len = end - start;
    return 0;
}


void
hostmatch_free(struct hostmatch *m)
{
    if (m == NULL) {
        return;
    }
    hostmatch_table_free(&m->exact);
    hostmatch_table_free(&m->head);
    hostmatch_table_free(&m->tail);
    for (size_t i = 0; i < m->nregexes; i++) {
        pcre2_code_free(m->regexes[i].code);
        m->regexes[i].code = NULL;
    }
    free(m->regexes);
    m->regexes = NULL;
    pcre2_match_data_free(m->match_data);
    m->match_data = NULL;
    free(m);
}


/* ASCII lowercase, as nginx's ngx_tolower(); other bytes unchanged. */
static unsigned char
hostmatch_lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + ('a' - 'A')) : ch;
}


/* FNV-1a over the lowercased bytes, so lookups need no lowercase copy. */
static uint32_t
hostmatch_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= hostmatch_lower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}


/* The entry whose key equals s case-insensitively, or NULL. */
static struct hostmatch_entry *
hostmatch_table_find(const struct hostmatch_table *t, const char *s, size_t len)
{
    if (t->count == 0) {
        return NULL;
    }

    const uint32_t h = hostmatch_hash(s, len);
    const size_t mask = t->cap - 1;

    /* The table is never full, so an empty slot ends every probe. */
    for (size_t n = 0, i = h & mask; n < t->cap; n++, i = (i + 1) & mask) {
        struct hostmatch_entry *e = &t->slots[i];

        if (e->key == NULL) {
            return NULL;
        }
        if (e->hash != h || e->len != len) {
            continue;
        }

        size_t k = 0;

        while (k < len && (unsigned char)e->key[k] ==
                              hostmatch_lower((unsigned char)s[k])) {
            k++;
        }
        if (k == len) {
            return e;
        }
    }
    return NULL;
}


/*
 * Inserts a lowercase copy of s (which must not be present) with value.
 * Returns the new entry, or NULL when out of memory.
 */
static struct hostmatch_entry *
hostmatch_table_add(struct hostmatch_table *t, const char *s, size_t len,
                    void *value)
{
    if ((t->count + 1) * 4 > t->cap * 3 && hostmatch_table_grow(t) == -1) {
        return NULL;
    }
    BUG_ON(t->count + 1 >= t->cap);

    char *key = malloc(len + 1);

    if (key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        key[i] = (char)hostmatch_lower((unsigned char)s[i]);
    }
    key[len] = '\0';

    const uint32_t h = hostmatch_hash(s, len);
    const size_t mask = t->cap - 1;
    size_t i = h & mask;

    /* Growing above keeps a free slot, so this probe ends. */
    while (t->slots[i].key != NULL) {
        i = (i + 1) & mask;
    }

    struct hostmatch_entry *e = &t->slots[i];

    e->key = key;
    e->len = len;
    e->hash = h;
    e->allows_bare = false;
    e->value = value;
    t->count++;
    return e;
}


/* Doubles the slots (or makes the first ones) and rehashes; 0 or -1. */
static int
hostmatch_table_grow(struct hostmatch_table *t)
{
    const size_t cap = t->cap == 0 ? HOSTMATCH_TABLE_MIN : 2 * t->cap;

    if (cap < t->cap || cap > SIZE_MAX / sizeof(struct hostmatch_entry)) {
        return -1;
    }

    struct hostmatch_entry *slots = calloc(cap, sizeof(*slots));

    if (slots == NULL) {
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        const struct hostmatch_entry *e = &t->slots[i];

        if (e->key == NULL) {
            continue;
        }

        size_t j = e->hash & (cap - 1);

        while (slots[j].key != NULL) {
            j = (j + 1) & (cap - 1);
        }
        slots[j] = *e;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}


/* Frees every key and the slots; the table is left empty. */
static void
hostmatch_table_free(struct hostmatch_table *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].key);
        t->slots[i].key = NULL;
    }
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
}
