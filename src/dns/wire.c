/* SPDX-License-Identifier: MIT */
#include <ares.h>
#include <ctype.h>
#include <string.h>

#include "dns/wire.h"


uint16_t
dns_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}


int
dns_take_name(const uint8_t *buf, size_t len, const uint8_t **p, char *out,
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
        n >= cap || n > DNS_NAME_MAX) {
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


int
dns_take_rr(const uint8_t *buf, size_t len, const uint8_t **p,
            struct dns_rr *rr)
{
    if (dns_take_name(buf, len, p, rr->owner, sizeof(rr->owner)) != 0 ||
        (size_t)(buf + len - *p) < 10) {
        return -1;
    }
    rr->type = dns_get16(*p);
    rr->klass = dns_get16(*p + 2);
    rr->ttl = (uint32_t)dns_get16(*p + 4) << 16 | dns_get16(*p + 6);
    rr->rdlen = dns_get16(*p + 8);
    *p += 10;
    if ((size_t)(buf + len - *p) < rr->rdlen) {
        return -1;
    }
    rr->rdata = *p;
    *p += rr->rdlen;
    return 0;
}


int
dns_answers(const uint8_t *buf, size_t len, const uint8_t **answers,
            unsigned *an)
{
    const uint8_t *p;
    unsigned qd;

    if (len < DNS_HEADER_LEN || len > 65535) {
        return -1;
    }
    qd = dns_get16(buf + 4);
    *an = dns_get16(buf + 6);
    p = buf + DNS_HEADER_LEN;
    for (unsigned i = 0; i < qd; i++) {
        char skip[DNS_NAME_MAX + 1];
        if (dns_take_name(buf, len, &p, skip, sizeof(skip)) != 0 ||
            (size_t)(buf + len - p) < 4) {
            return -1;
        }
        p += 4;
    }
    *answers = p;
    return 0;
}
