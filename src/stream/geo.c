/* SPDX-License-Identifier: MIT */
/*
 * geo{} tables and the reading of a geo block. CIDR tables are two binary
 * tries (IPv4, IPv6), one node per prefix bit, as nginx's radix trees: a
 * lookup walks at most 32 or 128 nodes and keeps the last value it passes,
 * which is the longest matching prefix. Ranges tables are built as nginx
 * builds them, one sorted array of pieces per /16, because its rules
 * (duplicate, split, overlap) are per /16 piece; geo_finish() then packs
 * them into one sorted array searched by bisection. Known cost: a trie
 * node is 24 bytes per prefix bit not shared with another network.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/cidr.h"
#include "log/errlog.h"
#include "stream/geo.h"
#include "stream/map.h"
#include "stream/tmpl.h"
#include "stream/vars.h"


#define GEO_CHUNKS 0x10000   /* /16 pieces of the IPv4 space */
#define GEO_ADDR_TEXT_MAX 45 /* INET6_ADDRSTRLEN - 1 */
#define GEO_V4_TEXT_MAX 15   /* "255.255.255.255" */


/* A trie node; the root stands for the /0 network. */
struct geo_node {
    struct geo_node *child[2]; /* next bit 0 and 1; NULL when none */
    const void *value;         /* this prefix's value; NULL when none */
};

/* One range piece; never crosses a /16 boundary. */
struct geo_piece {
    uint32_t start;    /* first address, host byte order */
    uint32_t end;      /* last address, inclusive */
    const void *value; /* never NULL */
};

/* The pieces of one /16 while a ranges table is built. */
struct geo_chunk {
    struct geo_piece *pieces; /* sorted, disjoint; malloc'd */
    size_t n;                 /* pieces used */
    size_t cap;               /* pieces allocated */
};

/* A geo table; lives in its arena (chunks: malloc'd until finished). */
struct geo {
    struct arena *arena;
    bool is_ranges;
    bool has_cidr_lines;      /* a CIDR entry was given: no `ranges` now */
    struct geo_node *root[2]; /* CIDR: [0] IPv4, [1] IPv6; NULL if empty */
    struct geo_chunk *chunks; /* ranges being built: GEO_CHUNKS of them */
    struct geo_piece *pieces; /* ranges after geo_finish(), sorted */
    size_t npieces;
    const void *range_default; /* ranges: value outside every range */
};

/* geo_compile()'s state: the values seen, to share equal ones. */
struct geo_values {
    struct stream_map_value **slots; /* open addressing, malloc'd */
    size_t cap;                      /* a power of two, or 0 */
    size_t n;                        /* slots used */
};

/* What the duplicate callback needs to warn as nginx does. */
struct geo_dup_ctx {
    const struct conf_node *c; /* the line */
    const char *net;           /* the range as written */
    const struct tmpl *value;  /* the new value */
};


static struct geo_node *geo_node_new(struct geo *g);
static bool geo_bit(const uint8_t *addr, unsigned i);
static const void *geo_trie_find(const struct geo_node *root,
                                 const uint8_t *addr, unsigned bits);
static int geo_chunk_insert(struct geo_chunk *c, size_t at, size_t count);
static enum geo_rc geo_chunk_add(struct geo_chunk *c, uint32_t s, uint32_t e,
                                 const void *value, geo_duplicate_fn dup,
                                 void *data, uint32_t *ov_start,
                                 uint32_t *ov_end);
static int geo_parse_v4(const char *text, size_t len, uint32_t *addr);
static const char *geo_located(struct conf_ctx *cf, const struct conf_node *c,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *geo_text(const struct tmpl *t);
static uint32_t geo_hash(const char *text);
static const struct tmpl *geo_value(struct conf_ctx *cf, struct stream_map *m,
                                    struct geo_values *vs, const char *text);
static const char *geo_source(struct conf_ctx *cf, struct stream_conf *conf,
                              struct stream_map *m, const char *text);
static const char *geo_line(struct conf_ctx *cf, struct stream_map *m,
                            struct geo *g, struct geo_values *vs,
                            const struct conf_node *c);
static const char *geo_line_cidr(struct conf_ctx *cf, struct stream_map *m,
                                 struct geo *g, struct geo_values *vs,
                                 const struct conf_node *c);
static const char *geo_net_set(struct conf_ctx *cf, struct geo *g,
                               const struct conf_node *c,
                               const struct cidr *net, const char *net_text,
                               const struct tmpl *value);
static const char *geo_line_range(struct conf_ctx *cf, struct stream_map *m,
                                  struct geo *g, struct geo_values *vs,
                                  const struct conf_node *c);
static void geo_range_duplicate(void *data, const void *old_value);


struct geo *
geo_new(struct arena *a)
{
    struct geo *g = arena_alloc(a, sizeof(*g));

    if (g != NULL) {
        g->arena = a;
    }
    return g;
}


int
geo_set_ranges(struct geo *g)
{
    if (g->has_cidr_lines) {
        return -1;
    }
    g->is_ranges = true;
    return 0;
}


bool
geo_is_ranges(const struct geo *g)
{
    return g->is_ranges;
}


static struct geo_node *
geo_node_new(struct geo *g)
{
    return arena_alloc(g->arena, sizeof(struct geo_node));
}


/* Bit i of addr, counting from the most significant bit of addr[0]. */
static bool
geo_bit(const uint8_t *addr, unsigned i)
{
    return (addr[i / 8] >> (7 - i % 8)) & 1;
}


enum geo_rc
geo_net_add(struct geo *g, const struct cidr *net, const void *value,
            const void **old)
{
    const int v6 = net->family == AF_INET6;
    struct geo_node *node;

    g->has_cidr_lines = true;
    if (g->root[v6] == NULL && (g->root[v6] = geo_node_new(g)) == NULL) {
        return GEO_NO_MEMORY;
    }
    node = g->root[v6];
    for (unsigned i = 0; i < net->prefix; i++) {
        const bool bit = geo_bit(net->addr, i);
        if (node->child[bit] == NULL &&
            (node->child[bit] = geo_node_new(g)) == NULL) {
            return GEO_NO_MEMORY;
        }
        node = node->child[bit];
    }
    if (node->value != NULL) {
        if (old != NULL) {
            *old = node->value;
        }
        node->value = value;
        return GEO_REPLACED;
    }
    node->value = value;
    return GEO_OK;
}


enum geo_rc
geo_net_delete(struct geo *g, const struct cidr *net)
{
    struct geo_node *node = g->root[net->family == AF_INET6];

    g->has_cidr_lines = true;
    for (unsigned i = 0; node != NULL && i < net->prefix; i++) {
        node = node->child[geo_bit(net->addr, i)];
    }
    if (node == NULL || node->value == NULL) {
        return GEO_NOT_FOUND;
    }
    node->value = NULL;
    return GEO_OK;
}


/* Makes room for count pieces at index at of c. 0, or -1. */
static int
geo_chunk_insert(struct geo_chunk *c, size_t at, size_t count)
{
    if (c->n + count > c->cap) {
        const size_t cap = c->cap == 0 ? 8 : c->cap * 2;
        struct geo_piece *p = realloc(c->pieces, cap * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        c->pieces = p;
        c->cap = cap;
    }
    memmove(&c->pieces[at + count], &c->pieces[at],
            (c->n - at) * sizeof(c->pieces[0]));
    c->n += count;
    return 0;
}


/*
 * nginx's ngx_stream_geo_add_range() for one /16: s..e (both inside the
 * chunk) is compared with the last piece that starts at or before e.
 */
static enum geo_rc
geo_chunk_add(struct geo_chunk *c, uint32_t s, uint32_t e, const void *value,
              geo_duplicate_fn dup, void *data, uint32_t *ov_start,
              uint32_t *ov_end)
{
    size_t i = c->n;

    while (i > 0) {
        i--;
        struct geo_piece *p = &c->pieces[i];
        const struct geo_piece old = *p;

        if (e < old.start) {
            continue;
        }
        if (s > old.end) {
            /* after this piece */
            if (geo_chunk_insert(c, i + 1, 1) == -1) {
                return GEO_NO_MEMORY;
            }
            c->pieces[i + 1] = (struct geo_piece){s, e, value};
            return GEO_OK;
        }
        if (s == old.start && e == old.end) {
            if (dup != NULL) {
                dup(data, old.value);
            }
            p->value = value;
            return GEO_OK;
        }
        if (s > old.start && e < old.end) {
            /* inside: split the piece around the new one */
            if (geo_chunk_insert(c, i + 1, 2) == -1) {
                return GEO_NO_MEMORY;
            }
            c->pieces[i].end = s - 1;
            c->pieces[i + 1] = (struct geo_piece){s, e, value};
            c->pieces[i + 2] = (struct geo_piece){e + 1, old.end, old.value};
            return GEO_OK;
        }
        if (s == old.start && e < old.end) {
            /* the same start: the old piece now begins after e */
            if (geo_chunk_insert(c, i, 1) == -1) {
                return GEO_NO_MEMORY;
            }
            c->pieces[i] = (struct geo_piece){s, e, value};
            c->pieces[i + 1].start = e + 1;
            return GEO_OK;
        }
        if (s > old.start && e == old.end) {
            /* the same end: the old piece now ends before s */
            if (geo_chunk_insert(c, i + 1, 1) == -1) {
                return GEO_NO_MEMORY;
            }
            c->pieces[i].end = s - 1;
            c->pieces[i + 1] = (struct geo_piece){s, e, value};
            return GEO_OK;
        }
        *ov_start = old.start;
        *ov_end = old.end;
        return GEO_OVERLAP;
    }
    if (geo_chunk_insert(c, 0, 1) == -1) {
        return GEO_NO_MEMORY;
    }
    c->pieces[0] = (struct geo_piece){s, e, value};
    return GEO_OK;
}


enum geo_rc
geo_range_add(struct geo *g, uint32_t start, uint32_t end, const void *value,
              geo_duplicate_fn dup, void *data, uint32_t *ov_start,
              uint32_t *ov_end)
{
    if (g->chunks == NULL) {
        g->chunks = calloc(GEO_CHUNKS, sizeof(*g->chunks));
        if (g->chunks == NULL) {
            return GEO_NO_MEMORY;
        }
    }
    for (uint32_t h = start >> 16; h <= end >> 16; h++) {
        const uint32_t s = h == start >> 16 ? start : h << 16;
        const uint32_t e = h == end >> 16 ? end : (h << 16) | 0xffff;
        const enum geo_rc rc = geo_chunk_add(&g->chunks[h], s, e, value, dup,
                                             data, ov_start, ov_end);
        if (rc != GEO_OK) {
            return rc;
        }
    }
    return GEO_OK;
}


enum geo_rc
geo_range_delete(struct geo *g, uint32_t start, uint32_t end)
{
    enum geo_rc rc = GEO_OK;

    for (uint32_t h = start >> 16; h <= end >> 16; h++) {
        const uint32_t s = h == start >> 16 ? start : h << 16;
        const uint32_t e = h == end >> 16 ? end : (h << 16) | 0xffff;
        struct geo_chunk *c = g->chunks != NULL ? &g->chunks[h] : NULL;
        size_t i = 0;

        while (c != NULL && i < c->n &&
               (c->pieces[i].start != s || c->pieces[i].end != e)) {
            i++;
        }
        if (c == NULL || i == c->n) {
            rc = GEO_NOT_FOUND;
            continue;
        }
        memmove(&c->pieces[i], &c->pieces[i + 1],
                (c->n - i - 1) * sizeof(c->pieces[0]));
        c->n--;
    }
    return rc;
}


void
geo_range_default(struct geo *g, const void *value)
{
    g->range_default = value;
}


int
geo_finish(struct geo *g)
{
    size_t n = 0;

    if (g->chunks == NULL) {
        return 0;
    }
    for (size_t h = 0; h < GEO_CHUNKS; h++) {
        n += g->chunks[h].n;
    }
    if (n > 0) {
        g->pieces = arena_alloc(g->arena, n * sizeof(*g->pieces));
        if (g->pieces == NULL) {
            geo_discard(g);
            return -1;
        }
    }
    for (size_t h = 0; h < GEO_CHUNKS; h++) {
        const struct geo_chunk *c = &g->chunks[h];
        if (c->n > 0) {
            memcpy(&g->pieces[g->npieces], c->pieces,
                   c->n * sizeof(*c->pieces));
            g->npieces += c->n;
        }
    }
    geo_discard(g);
    return 0;
}


void
geo_discard(struct geo *g)
{
    if (g == NULL || g->chunks == NULL) {
        return;
    }
    for (size_t h = 0; h < GEO_CHUNKS; h++) {
        free(g->chunks[h].pieces);
    }
    free(g->chunks);
    g->chunks = NULL;
}


static const void *
geo_trie_find(const struct geo_node *root, const uint8_t *addr, unsigned bits)
{
    const struct geo_node *node = root;
    const void *found = NULL;

    for (unsigned i = 0; node != NULL; i++) {
        if (node->value != NULL) {
            found = node->value;
        }
        if (i == bits) {
            break;
        }
        node = node->child[geo_bit(addr, i)];
    }
    return found;
}


const void *
geo_find_v4(const struct geo *g, uint32_t addr)
{
    if (!g->is_ranges) {
        const uint8_t b[4] = {addr >> 24, addr >> 16, addr >> 8, addr};
        return geo_trie_find(g->root[0], b, 32);
    }
    /* The last piece starting at or before addr, by bisection. */
    size_t lo = 0;
    size_t hi = g->npieces;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (g->pieces[mid].start <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0 && addr <= g->pieces[lo - 1].end) {
        return g->pieces[lo - 1].value;
    }
    return g->range_default;
}


const void *
geo_find_v6(const struct geo *g, const uint8_t a[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0,    0,
                                       0, 0, 0, 0, 0xff, 0xff};

    if (memcmp(a, mapped, sizeof(mapped)) == 0) {
        return geo_find_v4(g, (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 |
                                  (uint32_t)a[14] << 8 | a[15]);
    }
    if (g->is_ranges) {
        return geo_find_v4(g, GEO_ADDR_NONE);
    }
    return geo_trie_find(g->root[1], a, 128);
}


const void *
geo_find_addr(const struct geo *g, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return geo_find_v4(g, ntohl(sin->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        return geo_find_v6(g, sin6->sin6_addr.s6_addr);
    }
    return geo_find_v4(g, GEO_ADDR_NONE);
}


const void *
geo_find_text(const struct geo *g, const char *text, size_t len)
{
    char buf[GEO_ADDR_TEXT_MAX + 1];
    uint8_t a[16];

    if (len == 0 || len > GEO_ADDR_TEXT_MAX ||
        memchr(text, '\0', len) != NULL) {
        return geo_find_v4(g, GEO_ADDR_NONE);
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, a) == 1) {
        return geo_find_v4(g, (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 |
                                  (uint32_t)a[2] << 8 | a[3]);
    }
    if (inet_pton(AF_INET6, buf, a) == 1) {
        return geo_find_v6(g, a);
    }
    return geo_find_v4(g, GEO_ADDR_NONE);
}


/* Strict dotted decimal, as cidr_parse(); 0 or -1. */
static int
geo_parse_v4(const char *text, size_t len, uint32_t *addr)
{
    char buf[GEO_V4_TEXT_MAX + 1];
    uint8_t a[4];

    if (len == 0 || len > GEO_V4_TEXT_MAX || memchr(text, '\0', len) != NULL) {
        return -1;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, a) != 1) {
        return -1;
    }
    *addr = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 |
            a[3];
    return 0;
}


int
geo_parse_range(const char *text, size_t len, uint32_t *start, uint32_t *end)
{
    const char *dash = memchr(text, '-', len);

    if (dash == NULL ||
        geo_parse_v4(text, (size_t)(dash - text), start) == -1 ||
        geo_parse_v4(dash + 1, len - (size_t)(dash - text) - 1, end) == -1 ||
        *start == GEO_ADDR_NONE || *end == GEO_ADDR_NONE || *start > *end) {
        return -1;
    }
    return 0;
}


/*
 * A message about a line inside the block, located at that line; returned
 * in cf->nested so conf_dispatch() passes it on as it is.
 */
static const char *
geo_located(struct conf_ctx *cf, const struct conf_node *c, const char *fmt,
            ...)
{
    char text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(cf->nested.msg, sizeof(cf->nested.msg), "%s in %s:%u", text,
             c->file, c->line);
    return cf->nested.msg;
}


/* The text of a constant value, for messages. */
static const char *
geo_text(const struct tmpl *t)
{
    return t->nparts == 0 ? "" : t->parts[0].text;
}


/* FNV-1a of a NUL-terminated text, to share equal values. */
static uint32_t
geo_hash(const char *text)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; text[i] != '\0'; i++) {
        h = (h ^ (unsigned char)text[i]) * 16777619u;
    }
    return h;
}


/*
 * The value for text: one constant per distinct text, listed in
 * m->values. NULL when out of memory.
 */
static const struct tmpl *
geo_value(struct conf_ctx *cf, struct stream_map *m, struct geo_values *vs,
          const char *text)
{
    struct stream_map_value *mv;
    size_t i;

    /* Kept at most half full, so a probe always ends at an empty slot. */
    if (vs->n * 2 >= vs->cap) {
        const size_t cap = vs->cap == 0 ? 64 : vs->cap * 2;
        struct stream_map_value **slots = calloc(cap, sizeof(*slots));
        if (slots == NULL) {
            return NULL;
        }
        for (i = 0; i < vs->cap; i++) {
            if (vs->slots[i] == NULL) {
                continue;
            }
            size_t j = geo_hash(geo_text(&vs->slots[i]->t)) & (cap - 1);
            while (slots[j] != NULL) {
                j = (j + 1) & (cap - 1);
            }
            slots[j] = vs->slots[i];
        }
        free(vs->slots);
        vs->slots = slots;
        vs->cap = cap;
    }
    for (i = geo_hash(text) & (vs->cap - 1); vs->slots[i] != NULL;
         i = (i + 1) & (vs->cap - 1)) {
        if (strcmp(geo_text(&vs->slots[i]->t), text) == 0) {
            return &vs->slots[i]->t;
        }
    }
    mv = arena_alloc(cf->arena, sizeof(*mv));
    if (mv == NULL ||
        tmpl_literal(cf->arena, text, strlen(text), &mv->t) == -1) {
        return NULL;
    }
    mv->next = m->values;
    m->values = mv;
    vs->slots[i] = mv;
    vs->n++;
    return &mv->t;
}


/* `geo $address $var`: the address comes from one variable. */
static const char *
geo_source(struct conf_ctx *cf, struct stream_conf *conf, struct stream_map *m,
           const char *text)
{
    char err[256];

    if (text[0] != '$') {
        return conf_msg(cf, "invalid variable name \"%s\"", text);
    }
    if (tmpl_compile(cf->arena, text, strlen(text), vars_resolve, conf,
                     &m->source, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    if (m->source.nparts != 1 || m->source.parts[0].kind != TMPL_VAR) {
        return conf_msg(cf, "invalid variable name \"%s\"", text);
    }
    return NULL;
}


const char *
geo_compile(struct conf_ctx *cf, struct stream_conf *conf, struct stream_map *m)
{
    const struct conf_node *n = m->node;
    struct geo_values vs = {NULL, 0, 0};
    struct geo *g;
    const char *rv = NULL;

    if (n->nargs == 3) {
        rv = geo_source(cf, conf, m, n->args[1]);
        if (rv != NULL) {
            return rv;
        }
    }
    g = geo_new(cf->arena);
    if (g == NULL) {
        return "out of memory";
    }
    for (const struct conf_node *c = n->children; c != NULL && rv == NULL;
         c = c->next) {
        rv = geo_line(cf, m, g, &vs, c);
    }
    free(vs.slots);
    if (rv != NULL) {
        geo_discard(g);
        return rv;
    }
    if (geo_finish(g) == -1) {
        return "out of memory";
    }
    m->geo = g;
    return NULL;
}


/* One line of the block, as nginx's ngx_stream_geo(). */
static const char *
geo_line(struct conf_ctx *cf, struct stream_map *m, struct geo *g,
         struct geo_values *vs, const struct conf_node *c)
{
    const char *key = c->args[0];

    if (c->is_block) {
        return geo_located(cf, c, "unexpected \"{\"");
    }
    if (c->nargs == 1) {
        if (strcmp(key, "ranges") == 0) {
            if (geo_set_ranges(g) == -1) {
                return geo_located(cf, c,
                                   "the \"ranges\" directive must be the "
                                   "first directive inside \"geo\" block");
            }
            return NULL;
        }
        if (strcmp(key, "volatile") == 0) {
            return NULL; /* values are never cached anyway */
        }
        if (strcmp(key, "proxy_recursive") == 0) {
            return geo_located(cf, c,
                               "\"proxy_recursive\" is a parameter of the "
                               "http geo module only; stream geo has no "
                               "\"proxy\" (use set_real_ip_from)");
        }
    }
    if (c->nargs != 2) {
        return geo_located(cf, c, "invalid number of the geo parameters");
    }
    if (strcmp(key, "proxy") == 0) {
        return geo_located(cf, c,
                           "\"proxy\" is a parameter of the http geo module "
                           "only; stream geo has none (use set_real_ip_from)");
    }
    if (g->is_ranges) {
        return geo_line_range(cf, m, g, vs, c);
    }
    return geo_line_cidr(cf, m, g, vs, c);
}


static const char *
geo_line_cidr(struct conf_ctx *cf, struct stream_map *m, struct geo *g,
              struct geo_values *vs, const struct conf_node *c)
{
    const bool is_delete = strcmp(c->args[0], "delete") == 0;
    const char *net_text = is_delete ? c->args[1] : c->args[0];
    const struct tmpl *value;
    struct cidr net;
    struct cidr host;

    g->has_cidr_lines = true;
    if (strcmp(c->args[0], "default") == 0) {
        const char *rv;

        value = geo_value(cf, m, vs, c->args[1]);
        if (value == NULL) {
            return "out of memory";
        }
        /* nginx's default is the /0 network of both families. */
        memset(&net, 0, sizeof(net));
        net.family = AF_INET;
        rv = geo_net_set(cf, g, c, &net, "default", value);
        if (rv == NULL) {
            net.family = AF_INET6;
            rv = geo_net_set(cf, g, c, &net, "default", value);
        }
        return rv;
    }
    if (cidr_parse(net_text, strlen(net_text), &net) == -1) {
        return geo_located(cf, c, "invalid network \"%s\"", net_text);
    }
    /* Host bits past the prefix: cidr_parse() cleared them; say so. */
    const char *slash = strchr(net_text, '/');
    if (slash != NULL &&
        cidr_parse(net_text, (size_t)(slash - net_text), &host) == 0 &&
        memcmp(host.addr, net.addr, sizeof(net.addr)) != 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "low address bits of %s are meaningless in %s:%u",
                     net_text, c->file, c->line);
    }
    if (is_delete) {
        if (geo_net_delete(g, &net) == GEO_NOT_FOUND) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "no network \"%s\" to delete in %s:%u", net_text,
                         c->file, c->line);
        }
        return NULL;
    }
    value = geo_value(cf, m, vs, c->args[1]);
    if (value == NULL) {
        return "out of memory";
    }
    return geo_net_set(cf, g, c, &net, net_text, value);
}


/* Adds net, warning as nginx does when it replaces a value. */
static const char *
geo_net_set(struct conf_ctx *cf, struct geo *g, const struct conf_node *c,
            const struct cidr *net, const char *net_text,
            const struct tmpl *value)
{
    const void *old = NULL;

    (void)cf;
    switch (geo_net_add(g, net, value, &old)) {
    case GEO_OK:
        return NULL;
    case GEO_REPLACED:
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "duplicate network \"%s\", value: \"%s\", old value: "
                     "\"%s\" in %s:%u",
                     net_text, geo_text(value), geo_text(old), c->file,
                     c->line);
        return NULL;
    default:
        return "out of memory";
    }
}


static void
geo_range_duplicate(void *data, const void *old_value)
{
    const struct geo_dup_ctx *d = data;

    errlog_write(NULL, ERRLOG_WARN, 0,
                 "duplicate range \"%s\", value: \"%s\", old value: \"%s\" "
                 "in %s:%u",
                 d->net, geo_text(d->value), geo_text(old_value), d->c->file,
                 d->c->line);
}


static const char *
geo_line_range(struct conf_ctx *cf, struct stream_map *m, struct geo *g,
               struct geo_values *vs, const struct conf_node *c)
{
    const bool is_delete = strcmp(c->args[0], "delete") == 0;
    const char *net = is_delete ? c->args[1] : c->args[0];
    const struct tmpl *value;
    uint32_t start;
    uint32_t end;
    uint32_t ov_start = 0;
    uint32_t ov_end = 0;

    if (strcmp(c->args[0], "default") == 0) {
        if (g->range_default != NULL) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "duplicate default geo range value: \"%s\", old "
                         "value: \"%s\" in %s:%u",
                         c->args[1], geo_text(g->range_default), c->file,
                         c->line);
        }
        value = geo_value(cf, m, vs, c->args[1]);
        if (value == NULL) {
            return "out of memory";
        }
        geo_range_default(g, value);
        return NULL;
    }
    if (geo_parse_range(net, strlen(net), &start, &end) == -1) {
        return geo_located(cf, c, "invalid range \"%s\"", net);
    }
    if (is_delete) {
        if (geo_range_delete(g, start, end) == GEO_NOT_FOUND) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "no address range \"%s\" to delete in %s:%u", net,
                         c->file, c->line);
        }
        return NULL;
    }
    value = geo_value(cf, m, vs, c->args[1]);
    if (value == NULL) {
        return "out of memory";
    }
    struct geo_dup_ctx d = {c, net, value};
    switch (geo_range_add(g, start, end, value, geo_range_duplicate, &d,
                          &ov_start, &ov_end)) {
    case GEO_OK:
        return NULL;
    case GEO_OVERLAP:
        return geo_located(
            cf, c, "range \"%s\" overlaps \"%u.%u.%u.%u-%u.%u.%u.%u\"", net,
            ov_start >> 24, (ov_start >> 16) & 0xff, (ov_start >> 8) & 0xff,
            ov_start & 0xff, ov_end >> 24, (ov_end >> 16) & 0xff,
            (ov_end >> 8) & 0xff, ov_end & 0xff);
    default:
        return "out of memory";
    }
}
