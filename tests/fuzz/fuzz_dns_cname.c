/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/dns/cname.c. The input's first byte picks the
 * owner asked about ("svc.test" or a name from the message's question),
 * the rest is the DNS message, copied into an exact-size heap buffer so
 * ASan sees any read past it. On CNAME_FOUND the target must be a
 * NUL-terminated lower-case name of at most CNAME_NAME_MAX bytes, and
 * asking again must give the same answer. Any broken rule traps.
 */

#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/cname.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const owners[] = {"svc.test", "a.test", "x", ""};
    char target[CNAME_NAME_MAX + 1], again[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0, ttl2 = 0;
    enum cname_rc rc;
    const char *owner;
    uint8_t *msg;

    if (size < 1) {
        return 0;
    }
    owner = owners[data[0] % 4];
    msg = malloc(size - 1 ? size - 1 : 1);
    if (msg == NULL) {
        return 0;
    }
    memcpy(msg, data + 1, size - 1);
    rc = cname_target(msg, size - 1, owner, target, sizeof(target), &ttl);
    CHECK(rc == CNAME_FOUND || rc == CNAME_NONE || rc == CNAME_LOOP ||
          rc == CNAME_BAD);
    if (rc == CNAME_FOUND) {
        size_t n = strnlen(target, sizeof(target));
        CHECK(n <= CNAME_NAME_MAX);
        for (size_t i = 0; i < n; i++) {
            CHECK(!isupper((unsigned char)target[i]));
        }
        CHECK(cname_target(msg, size - 1, owner, again, sizeof(again),
                           &ttl2) == CNAME_FOUND);
        CHECK(strcmp(target, again) == 0 && ttl == ttl2);
    }
    free(msg);
    return 0;
}
