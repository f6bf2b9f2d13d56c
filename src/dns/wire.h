/* SPDX-License-Identifier: MIT */
/*
 * Reading a DNS message's answer section, for the pure parsers of answers
 * that c-ares leaves to us (cname.c, srv.c). Names are expanded by c-ares
 * (compression pointers and their loops are its job) and lower-cased.
 */
#ifndef SNIRELAY_DNS_WIRE_H
#define SNIRELAY_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 253
#define DNS_HEADER_LEN 12
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_SRV 33
#define DNS_CLASS_IN 1

/* One resource record; rdata points into the message. */
struct dns_rr {
    char owner[DNS_NAME_MAX + 1];
    uint16_t type;
    uint16_t klass;
    uint32_t ttl;
    const uint8_t *rdata;
    uint16_t rdlen;
};

/* Big-endian 16 bits at p. */
uint16_t dns_get16(const uint8_t *p);

/*
 * Expands the name at *p of message buf (len bytes) into out (cap bytes),
 * lower-cased, and moves *p past it. Returns 0, or -1 when it is malformed
 * or does not fit.
 */
int dns_take_name(const uint8_t *buf, size_t len, const uint8_t **p, char *out,
                  size_t cap);

/* Reads the record at *p into rr and moves *p past it; 0 or -1. */
int dns_take_rr(const uint8_t *buf, size_t len, const uint8_t **p,
                struct dns_rr *rr);

/*
 * Checks the header and skips the question section: *answers is set to
 * the first answer record and *an to their count. Returns 0 or -1.
 */
int dns_answers(const uint8_t *buf, size_t len, const uint8_t **answers,
                unsigned *an);

#endif
