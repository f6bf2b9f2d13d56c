/* SPDX-License-Identifier: MIT */
/*
 * Where a CNAME chain in a DNS answer leads: a pure parser (bytes in,
 * result out) for answers that hold a name's CNAME but not its target's
 * addresses, which some servers send and c-ares' getaddrinfo then reports
 * as "no data". Names are expanded by c-ares (compression pointers and
 * their loops are its job).
 */
#ifndef SNIRELAY_DNS_CNAME_H
#define SNIRELAY_DNS_CNAME_H

#include <stddef.h>
#include <stdint.h>

#define CNAME_NAME_MAX 253

enum cname_rc {
    CNAME_FOUND, /* target holds where owner's chain ends */
    CNAME_NONE,  /* a well-formed answer with no CNAME for owner */
    CNAME_LOOP,  /* the chain in the answer comes back on itself */
    CNAME_BAD,   /* a malformed answer, or a name too long */
};

/*
 * Follows owner's CNAME records through the answer section of the DNS
 * message buf (len bytes). On CNAME_FOUND, target (cap bytes, at least
 * CNAME_NAME_MAX + 1) holds the last link's target, lower-cased, and
 * *ttl_s the lowest TTL along the chain.
 */
enum cname_rc cname_target(const uint8_t *buf, size_t len, const char *owner,
                           char *target, size_t cap, uint32_t *ttl_s);

#endif
