/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/net/route.c against the running kernel: loopback
 * addresses (all of 127/8 and ::1) and every address getifaddrs() lists
 * are local; an address of a documentation network (TEST-NET-3, routed
 * away or unreachable) is not; a family other than IPv4 and IPv6 is an
 * error. Addresses added after start and `local` routes are exercised in
 * a network namespace by tests/integration/test_probes.py.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/route.h"


static enum route_rc ask(const char *text);
static void test_loopback_is_local(void **state);
static void test_interface_addresses_are_local(void **state);
static void test_documentation_address_is_not_local(void **state);
static void test_other_family_is_an_error(void **state);


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_is_local),
        cmocka_unit_test(test_interface_addresses_are_local),
        cmocka_unit_test(test_documentation_address_is_not_local),
        cmocka_unit_test(test_other_family_is_an_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}


/* route_is_local() of a numeric IPv4 or IPv6 address. */
static enum route_rc
ask(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(443); /* ignored */
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return route_is_local((struct sockaddr *)&ss);
}


static void
test_loopback_is_local(void **state)
{
    (void)state;
    assert_int_equal(ask("127.0.0.1"), ROUTE_LOCAL);
    assert_int_equal(ask("127.1.2.3"), ROUTE_LOCAL);
    assert_int_equal(ask("::1"), ROUTE_LOCAL);
}


static void
test_interface_addresses_are_local(void **state)
{
    struct ifaddrs *ifa = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(getifaddrs(&ifa), 0);
    for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || (i->ifa_flags & IFF_UP) == 0 ||
            (i->ifa_addr->sa_family != AF_INET &&
             i->ifa_addr->sa_family != AF_INET6)) {
            continue;
        }
        if (i->ifa_addr->sa_family == AF_INET6 &&
            IN6_IS_ADDR_LINKLOCAL(
                &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr)) {
            continue; /* needs the interface to be asked about */
        }
        assert_int_equal(route_is_local(i->ifa_addr), ROUTE_LOCAL);
        n++;
    }
    freeifaddrs(ifa);
    assert_true(n >= 1); /* 127.0.0.1 at least */
}


static void
test_documentation_address_is_not_local(void **state)
{
    (void)state;
    /* Routed through a gateway, or no route at all: not us either way. */
    assert_int_equal(ask("203.0.113.77"), ROUTE_NOT_LOCAL);
}


static void
test_other_family_is_an_error(void **state)
{
    struct sockaddr_un sun;

    (void)state;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    errno = 0;
    assert_int_equal(route_is_local((struct sockaddr *)&sun), ROUTE_ERROR);
    assert_int_equal(errno, EAFNOSUPPORT);
}
