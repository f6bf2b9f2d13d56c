/* SPDX-License-Identifier: MIT */
/*
 * DNS messages built byte by byte for the unit tests of the answer
 * parsers (test_cname.c, test_srv.c). Include after <cmocka.h>.
 */
#ifndef SNIRELAY_TESTS_DNSMSG_H
#define SNIRELAY_TESTS_DNSMSG_H

#include <stdint.h>
#include <string.h>

struct msg {
    uint8_t b[1024];
    size_t n;
};


static inline void
put(struct msg *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof(m->b));
    memcpy(m->b + m->n, p, n);
    m->n += n;
}


static inline void
put16(struct msg *m, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(m, b, 2);
}


static inline void
put_name(struct msg *m, const char *name)
{
    while (*name != '\0') {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        uint8_t len = (uint8_t)n;
        put(m, &len, 1);
        put(m, name, n);
        name += n + (dot ? 1 : 0);
    }
    put(m, "", 1);
}


/* Header for one question and an answers; then the question for qname. */
static inline void
start(struct msg *m, const char *qname, uint16_t qtype, uint16_t an)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, 0x8180);
    put16(m, 1);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
    put_name(m, qname);
    put16(m, qtype);
    put16(m, 1);
}


/* One CNAME record owner -> target (names uncompressed), TTL ttl. */
static inline void
add_cname(struct msg *m, const char *owner, const char *target, uint32_t ttl)
{
    struct msg rd = {.n = 0};
    put_name(m, owner);
    put16(m, 5);
    put16(m, 1);
    put16(m, (uint16_t)(ttl >> 16));
    put16(m, (uint16_t)ttl);
    put_name(&rd, target);
    put16(m, (uint16_t)rd.n);
    put(m, rd.b, rd.n);
}



/* A record of type type owner -> rdata rd (already built), TTL ttl. */
static inline void
add_rr(struct msg *m, const char *owner, uint16_t type, const struct msg *rd,
       uint32_t ttl)
{
    put_name(m, owner);
    put16(m, type);
    put16(m, 1);
    put16(m, (uint16_t)(ttl >> 16));
    put16(m, (uint16_t)ttl);
    put16(m, (uint16_t)rd->n);
    put(m, rd->b, rd->n);
}

#endif
