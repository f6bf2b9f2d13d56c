/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/dns/resolv_conf.c. The input is a whole
 * resolv.conf, copied into an exact-size heap buffer so ASan sees any read
 * past it. The result must hold: at most RESOLV_CONF_MAX_SERVERS servers,
 * each AF_INET or AF_INET6 with a NUL-terminated scope (IPv6 only) and a
 * line number within the input's lines, in rising order; n_bad is zero
 * exactly when first_bad_line is; and parsing the same bytes again gives
 * the same result. Any broken rule traps.
 *
 * Build: clang -Isrc -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
 *        -fno-sanitize-recover=all tests/fuzz/fuzz_resolv_conf.c
 *        src/dns/resolv_conf.c
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns/resolv_conf.h"
#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *const in = malloc(size > 0 ? size : 1);
    struct resolv_conf rc;
    struct resolv_conf again;
    unsigned lines = 1;
    unsigned last_line = 0;

    CHECK(in != NULL);
    if (size > 0) {
        memcpy(in, data, size);
    }
    for (size_t i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }
    resolv_conf_parse(in, size, &rc);
    CHECK(rc.n <= RESOLV_CONF_MAX_SERVERS);
    CHECK((rc.n_bad == 0) == (rc.first_bad_line == 0));
    CHECK(rc.first_bad_line <= lines);
    CHECK(rc.n_past_max == 0 || rc.n == RESOLV_CONF_MAX_SERVERS);
    for (size_t i = 0; i < rc.n; i++) {
        const struct resolv_conf_server *srv = &rc.servers[i];
        const size_t scope_len = strnlen(srv->scope, sizeof(srv->scope));

        CHECK(srv->family == AF_INET || srv->family == AF_INET6);
        CHECK(scope_len < sizeof(srv->scope));
        CHECK(srv->family == AF_INET6 || scope_len == 0);
        CHECK(srv->line > last_line && srv->line <= lines);
        last_line = srv->line;
    }
    resolv_conf_parse(in, size, &again);
    CHECK(memcmp(&rc, &again, sizeof(rc)) == 0);
    free(in);
    return 0;
}
