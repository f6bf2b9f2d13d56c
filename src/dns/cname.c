/* SPDX-License-Identifier: MIT */
#include <ares.h>
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "dns/cname.h"


#define CNAME_LINKS_MAX 16 /* links of one chain followed within an answer */
#define DNS_HEADER_LEN 12
#define DNS_TYPE_CNAME 5
#define DNS_CLASS_IN 1


static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}


/*
 * Expands the name at *p into out (cap bytes), lower-cased, and moves *p
 * past it. Returns 0, or -1 when it is malformed or does not fit.
 */
static int
take_name(const uint8_t *buf, size_t len, const uint8_t **p, char *out,
          size_t cap)
{
    char *name = NULL;
    long enclen = 0;
    size_t n;

    if (*p >= buf + len ||
        ares_expand_name(*p, buf, (int)len, &name, &enclen) != ARES_SUCCESS) {
        return -1;
    }
    n = strlen(name);
    if (enclen <= 0 || (size_t)enclen > (size_t)(buf + len - *p) ||
        n >= cap || n > CNAME_NAME_MAX) {
        ares_free_string(name);
        return -1;
    }
    for (size_t i = 0; i <= n; i++) {
        out[i] = (char)tolower((unsigned char)name[i]);
    }
    ares_free_string(name);
    *p += enclen;
    return 0;
}


/* One resource record of the answer section. */
struct rr {
    char owner[CNAME_NAME_MAX + 1];
    uint16_t type;
    uint16_t klass;
    uint32_t ttl;
    const uint8_t *rdata;
    uint16_t rdlen;
};


static int
take_rr(const uint8_t *buf, size_t len, const uint8_t **p, struct rr *rr)
{
    if (take_name(buf, len, p, rr->owner, sizeof(rr->owner)) != 0 ||
        (size_t)(buf + len - *p) < 10) {
        return -1;
    }
    rr->type = get16(*p);
    rr->klass = get16(*p + 2);
    rr->ttl = (uint32_t)get16(*p + 4) << 16 | get16(*p + 6);
    rr->rdlen = get16(*p + 8);
    *p += 10;
    if ((size_t)(buf + len - *p) < rr->rdlen) {
        return -1;
    }
    rr->rdata = *p;
    *p += rr->rdlen;
    return 0;
}


enum cname_rc
cname_target(const uint8_t *buf, size_t len, const char *owner, char *target,
             size_t cap, uint32_t *ttl_s)
{
    char cur[CNAME_NAME_MAX + 1], start[CNAME_NAME_MAX + 1];
    const uint8_t *answers, *p;
    unsigned qd, an, links = 0;
    uint32_t ttl = UINT32_MAX;
    struct rr rr;

    if (len < DNS_HEADER_LEN || len > 65535 || cap <= CNAME_NAME_MAX ||
        strlen(owner) > CNAME_NAME_MAX) {
        return CNAME_BAD;
    }
    qd = get16(buf + 4);
    an = get16(buf + 6);
    p = buf + DNS_HEADER_LEN;
    for (unsigned i = 0; i < qd; i++) {
        char skip[CNAME_NAME_MAX + 1];
        if (take_name(buf, len, &p, skip, sizeof(skip)) != 0 ||
            (size_t)(buf + len - p) < 4) {
            return CNAME_BAD;
        }
        p += 4;
    }
    answers = p;
    for (size_t i = 0; i <= strlen(owner); i++) {
        start[i] = (char)tolower((unsigned char)owner[i]);
    }
    memcpy(cur, start, sizeof(cur));
    /* Each pass finds the next link; a chain longer than that is a loop. */
    for (;;) {
        bool found = false;

        p = answers;
        for (unsigned i = 0; i < an; i++) {
            if (take_rr(buf, len, &p, &rr) != 0) {
                return CNAME_BAD;
            }
            if (rr.type == DNS_TYPE_CNAME && rr.klass == DNS_CLASS_IN &&
                strcmp(rr.owner, cur) == 0) {
                const uint8_t *r = rr.rdata;
                if (take_name(buf, len, &r, target, cap) != 0 ||
                    r != rr.rdata + rr.rdlen) {
                    return CNAME_BAD;
                }
                found = true;
                break;
            }
        }
        if (!found) {
            break;
        }
        if (++links > CNAME_LINKS_MAX || strcmp(target, start) == 0) {
            return CNAME_LOOP;
        }
        if (rr.ttl < ttl) {
            ttl = rr.ttl;
        }
        memcpy(cur, target, strlen(target) + 1);
    }
    if (links == 0) {
        return CNAME_NONE;
    }
    *ttl_s = ttl;
    return CNAME_FOUND;
}
