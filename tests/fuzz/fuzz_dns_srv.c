/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/dns/srv.c. The input's first byte picks the
 * owner asked about and how many records fit, the rest is the DNS message,
 * copied into an exact-size heap buffer so ASan sees any read past it.
 * Records found must have non-empty lower-case targets of at most
 * DNS_NAME_MAX bytes, never more than fit, and asking again must give the
 * same answer. Any broken rule traps.
 */

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/srv.h"
#include "fuzz.h"


static void
check_name(const char *name)
{
    size_t n = strnlen(name, DNS_NAME_MAX + 1);
    CHECK(n <= DNS_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        CHECK(!isupper((unsigned char)name[i]));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const owners[] = {"_http._tcp.svc.test", "svc.test",
                                         "a.test", ""};
    struct srv_record recs[8], again[8];
    char chase[DNS_NAME_MAX + 1], chase2[DNS_NAME_MAX + 1];
    size_t n = 0, n2 = 0, cap;
    uint32_t ttl = 0, ttl2 = 0;
    enum srv_rc rc;
    const char *owner;
    uint8_t *msg;

    if (size < 1) {
        return 0;
    }
    owner = owners[data[0] % 4];
    cap = 1 + (data[0] >> 2) % 8;
    msg = malloc(size - 1 ? size - 1 : 1);
    if (msg == NULL) {
        return 0;
    }
    memcpy(msg, data + 1, size - 1);
    rc = srv_records(msg, size - 1, owner, recs, cap, &n, chase, &ttl);
    CHECK(rc == SRV_FOUND || rc == SRV_CNAME || rc == SRV_NONE ||
          rc == SRV_BAD);
    CHECK(n <= cap);
    CHECK((rc == SRV_FOUND) == (n > 0));
    for (size_t i = 0; i < n; i++) {
        CHECK(recs[i].target[0] != '\0');
        check_name(recs[i].target);
    }
    if (rc == SRV_CNAME) {
        check_name(chase);
    }
    CHECK(srv_records(msg, size - 1, owner, again, cap, &n2, chase2, &ttl2) ==
          rc);
    CHECK(n == n2);
    for (size_t i = 0; i < n; i++) {
        CHECK(recs[i].priority == again[i].priority &&
              recs[i].weight == again[i].weight &&
              recs[i].port == again[i].port &&
              strcmp(recs[i].target, again[i].target) == 0);
    }
    if (rc == SRV_FOUND || rc == SRV_CNAME) {
        CHECK(ttl == ttl2);
    }
    if (rc == SRV_CNAME) {
        CHECK(strcmp(chase, chase2) == 0);
    }
    free(msg);
    return 0;
}
