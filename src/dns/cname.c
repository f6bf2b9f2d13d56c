/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "dns/cname.h"
#include "dns/wire.h"


#define CNAME_LINKS_MAX 16 /* links of one chain followed within an answer */


enum cname_rc
cname_target(const uint8_t *buf, size_t len, const char *owner, char *target,
             size_t cap, uint32_t *ttl_s)
{
    char cur[CNAME_NAME_MAX + 1], start[CNAME_NAME_MAX + 1];
    const uint8_t *answers = NULL, *p;
    unsigned an, links = 0;
    uint32_t ttl = UINT32_MAX;
    struct dns_rr rr;

    if (cap <= CNAME_NAME_MAX || strlen(owner) > CNAME_NAME_MAX ||
        dns_answers(buf, len, &answers, &an) != 0) {
        return CNAME_BAD;
    }
    for (size_t i = 0; i <= strlen(owner); i++) {
        start[i] = (char)tolower((unsigned char)owner[i]);
    }
    memcpy(cur, start, sizeof(cur));
    /* Each pass finds the next link; a chain longer than that is a loop. */
    for (;;) {
        bool found = false;

        p = answers;
        for (unsigned i = 0; i < an; i++) {
            if (dns_take_rr(buf, len, &p, &rr) != 0) {
                return CNAME_BAD;
            }
            if (rr.type == DNS_TYPE_CNAME && rr.klass == DNS_CLASS_IN &&
                strcmp(rr.owner, cur) == 0) {
                const uint8_t *r = rr.rdata;
                if (dns_take_name(buf, len, &r, target, cap) != 0 ||
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
