/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the address parsers of config lines: cidr_parse()
 * (src/core/cidr.c: allow, deny, set_real_ip_from, geo networks) and
 * geo_parse_range() (src/stream/geo.c: geo ranges). The input is the text,
 * copied into an exact-size heap buffer so ASan sees any read past it.
 *
 * A network parsed must have host bits clear and a prefix that fits its
 * family, print back (inet_ntop + "/prefix") to text that parses to the
 * same network, and contain its own address, also as an IPv4-mapped IPv6
 * address when it is IPv4. A range parsed must have start <= end, its two
 * ends must parse as /32 networks with the same values. The first 16 bytes
 * of the input, as raw IPv4 and IPv6 addresses, must classify without
 * surprise: an IPv4-mapped address as its IPv4 address, every embedded
 * IPv4 reading within bounds. Any broken rule traps.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "stream/geo.h"
#include "fuzz.h"


static void check_net(const struct cidr *c);
static void check_range(const char *text, size_t len);
static void check_raw(const uint8_t *data, size_t size);
static void sockaddr_of(int family, const uint8_t *addr,
                        struct sockaddr_storage *ss);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *const text = malloc(size > 0 ? size : 1);
    struct cidr c;

    CHECK(text != NULL);
    memcpy(text, data, size);
    if (cidr_parse(text, size, &c) == 0) {
        check_net(&c);
    } else {
        static const struct cidr zero;
        CHECK(memcmp(&c, &zero, sizeof(c)) == 0);
    }
    check_range(text, size);
    check_raw(data, size);
    free(text);
    return 0;
}


static void
check_net(const struct cidr *c)
{
    const size_t bytes = c->family == AF_INET ? 4 : 16;
    char buf[INET6_ADDRSTRLEN + 8];
    struct cidr again;
    struct sockaddr_storage ss;

    CHECK(c->family == AF_INET || c->family == AF_INET6);
    CHECK(c->prefix <= bytes * 8);
    for (size_t i = bytes; i < sizeof(c->addr); i++) {
        CHECK(c->addr[i] == 0);
    }
    for (unsigned bit = c->prefix; bit < bytes * 8; bit++) {
        CHECK((c->addr[bit / 8] & (0x80 >> (bit % 8))) == 0);
    }

    /* It prints back to text that parses to the same network. */
    CHECK(inet_ntop(c->family, c->addr, buf, sizeof(buf)) != NULL);
    const size_t at = strlen(buf);
    snprintf(buf + at, sizeof(buf) - at, "/%u", c->prefix);
    CHECK(cidr_parse(buf, strlen(buf), &again) == 0);
    CHECK(memcmp(&again, c, sizeof(again)) == 0);

    /* Its own address is inside it, and nothing of another family. */
    sockaddr_of(c->family, c->addr, &ss);
    CHECK(cidr_match(c, (const struct sockaddr *)&ss));
    (void)cidr_class_name(cidr_classify((const struct sockaddr *)&ss));
    if (c->family == AF_INET) {
        uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff};

        memcpy(mapped + 12, c->addr, 4);
        sockaddr_of(AF_INET6, mapped, &ss);
        CHECK(cidr_match(c, (const struct sockaddr *)&ss));
    } else {
        sockaddr_of(AF_INET, c->addr, &ss);
        CHECK(!cidr_match(c, (const struct sockaddr *)&ss));
    }
}


static void
check_range(const char *text, size_t len)
{
    uint32_t start = 0;
    uint32_t end = 0;

    if (geo_parse_range(text, len, &start, &end) == -1) {
        return;
    }
    CHECK(start <= end);
    CHECK(end != GEO_ADDR_NONE);

    const char *const dash = memchr(text, '-', len);
    struct cidr a;
    struct cidr b;

    CHECK(dash != NULL);
    CHECK(cidr_parse(text, (size_t)(dash - text), &a) == 0);
    CHECK(cidr_parse(dash + 1, len - (size_t)(dash - text) - 1, &b) == 0);
    CHECK(a.family == AF_INET && a.prefix == 32);
    CHECK(b.family == AF_INET && b.prefix == 32);
    CHECK(((uint32_t)a.addr[0] << 24 | (uint32_t)a.addr[1] << 16 |
           (uint32_t)a.addr[2] << 8 | a.addr[3]) == start);
    CHECK(((uint32_t)b.addr[0] << 24 | (uint32_t)b.addr[1] << 16 |
           (uint32_t)b.addr[2] << 8 | b.addr[3]) == end);
}


/* The first bytes as raw addresses, for the classifier. */
static void
check_raw(const uint8_t *data, size_t size)
{
    uint8_t v6[16] = {0};
    uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff};
    uint8_t out[CIDR_EMBED_MAX][4];
    struct sockaddr_storage ss;

    memcpy(v6, data, size < 16 ? size : 16);
    memcpy(mapped + 12, v6, 4);

    sockaddr_of(AF_INET, v6, &ss);
    const enum cidr_class v4class =
        cidr_classify((const struct sockaddr *)&ss);
    CHECK(strcmp(cidr_class_name(v4class), "unknown") != 0);
    CHECK(cidr_embedded_v4((const struct sockaddr *)&ss, out) == 0);

    sockaddr_of(AF_INET6, mapped, &ss);
    CHECK(cidr_classify((const struct sockaddr *)&ss) == v4class);
    const size_t nmapped = cidr_embedded_v4((const struct sockaddr *)&ss, out);
    CHECK(nmapped >= 1 && nmapped <= CIDR_EMBED_MAX);
    CHECK(memcmp(out[0], v6, 4) == 0);

    sockaddr_of(AF_INET6, v6, &ss);
    CHECK(strcmp(cidr_class_name(cidr_classify((const struct sockaddr *)&ss)),
                 "unknown") != 0);
    CHECK(cidr_embedded_v4((const struct sockaddr *)&ss, out) <=
          CIDR_EMBED_MAX);
}


static void
sockaddr_of(int family, const uint8_t *addr, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *const sin = (struct sockaddr_in *)ss;

        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, addr, 4);
    } else {
        struct sockaddr_in6 *const sin6 = (struct sockaddr_in6 *)ss;

        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, addr, 16);
    }
}
