/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <string.h>

#include "dns/cname.h"
#include "dns/srv.h"


enum srv_rc
srv_records(const uint8_t *buf, size_t len, const char *owner,
            struct srv_record *out, size_t cap, size_t *n, char *chase,
            uint32_t *ttl_s)
{
    char end[DNS_NAME_MAX + 1];
    const uint8_t *answers = NULL, *p;
    unsigned an;
    uint32_t ttl = UINT32_MAX;
    bool aliased = false;
    struct dns_rr rr;

    *n = 0;
    if (strlen(owner) > DNS_NAME_MAX ||
        dns_answers(buf, len, &answers, &an) != 0) {
        return SRV_BAD;
    }
    switch (cname_target(buf, len, owner, end, sizeof(end), &ttl)) {
    case CNAME_FOUND:
        aliased = true;
        break;
    case CNAME_NONE:
        for (size_t i = 0; i <= strlen(owner); i++) {
            const char c = owner[i];
            end[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        ttl = UINT32_MAX;
        break;
    default:
        return SRV_BAD;
    }
    p = answers;
    for (unsigned i = 0; i < an; i++) {
        const uint8_t *r;
        struct srv_record rec;

        if (dns_take_rr(buf, len, &p, &rr) != 0) {
            *n = 0;
            return SRV_BAD;
        }
        if (rr.type != DNS_TYPE_SRV || rr.klass != DNS_CLASS_IN ||
            strcmp(rr.owner, end) != 0) {
            continue;
        }
        if (rr.rdlen < 7) {
            *n = 0;
            return SRV_BAD;
        }
        rec.priority = dns_get16(rr.rdata);
        rec.weight = dns_get16(rr.rdata + 2);
        rec.port = dns_get16(rr.rdata + 4);
        r = rr.rdata + 6;
        if (dns_take_name(buf, len, &r, rec.target, sizeof(rec.target)) != 0 ||
            r != rr.rdata + rr.rdlen) {
            *n = 0;
            return SRV_BAD;
        }
        if (rr.ttl < ttl) {
            ttl = rr.ttl;
        }
        if (rec.target[0] == '\0' || *n >= cap) {
            continue; /* "." means no service; beyond cap is dropped */
        }
        out[(*n)++] = rec;
    }
    if (*n > 0) {
        *ttl_s = ttl;
        return SRV_FOUND;
    }
    if (aliased) {
        memcpy(chase, end, strlen(end) + 1);
        *ttl_s = ttl;
        return SRV_CNAME;
    }
    return SRV_NONE;
}
