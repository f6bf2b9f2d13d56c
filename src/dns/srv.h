/* SPDX-License-Identifier: MIT */
/*
 * The SRV records of a DNS answer (RFC 2782), for `server ... service=`:
 * a pure parser, bytes in, records out. A record whose target is "."
 * (the service is decidedly not there) is left out.
 */
#ifndef SNIRELAY_DNS_SRV_H
#define SNIRELAY_DNS_SRV_H

#include <stddef.h>
#include <stdint.h>

#include "dns/wire.h"

struct srv_record {
    uint16_t priority;
    uint16_t weight;
    uint16_t port;
    char target[DNS_NAME_MAX + 1]; /* lower-cased, no trailing dot */
};

enum srv_rc {
    SRV_FOUND, /* *n records (at most cap; more are dropped) */
    SRV_CNAME, /* no SRV record, but owner is a CNAME of chase: ask it */
    SRV_NONE,  /* a well-formed answer without SRV records for owner */
    SRV_BAD,   /* a malformed answer, or a CNAME loop within it; *n is 0 */
};

/*
 * Reads the SRV records of owner from the answer section of the DNS
 * message buf (len bytes); when owner's CNAME chain is in the answer, the
 * records of the chain's end. *ttl_s is the lowest TTL of what was used
 * (records and chain). chase holds at least DNS_NAME_MAX + 1 bytes.
 */
enum srv_rc srv_records(const uint8_t *buf, size_t len, const char *owner,
                        struct srv_record *out, size_t cap, size_t *n,
                        char *chase, uint32_t *ttl_s);

#endif
