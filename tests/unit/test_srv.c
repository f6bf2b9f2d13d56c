/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/dns/srv.c: SRV answers built byte by byte (several
 * records, "." targets, compressed targets, CNAME chains with and without
 * the target's records, too many records), each copied flush against a
 * guard page so a read past the message faults.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns/srv.h"
#include "dnsmsg.h"
#include "guardpage.h"

#define Q "_http._tcp.svc.test"


/* An SRV rdata; target NULL builds a compression pointer to the question. */
static void
srv_rdata(struct msg *rd, uint16_t pri, uint16_t w, uint16_t port,
          const char *target)
{
    rd->n = 0;
    put16(rd, pri);
    put16(rd, w);
    put16(rd, port);
    if (target != NULL) {
        put_name(rd, target);
    } else {
        put16(rd, 0xC00C);
    }
}


static void
add_srv(struct msg *m, const char *owner, uint16_t pri, uint16_t w,
        uint16_t port, const char *target, uint32_t ttl)
{
    struct msg rd;
    srv_rdata(&rd, pri, w, port, target);
    add_rr(m, owner, 33, &rd, ttl);
}


static enum srv_rc
run(const struct msg *m, const char *owner, struct srv_record *out,
    size_t cap, size_t *n, char *chase, uint32_t *ttl)
{
    struct guardpage g;
    enum srv_rc rc;

    assert_int_equal(guardpage_init(&g, sizeof(m->b)), 0);
    rc = srv_records(guardpage_place(&g, m->b, m->n), m->n, owner, out, cap,
                     n, chase, ttl);
    guardpage_free(&g);
    return rc;
}


static void
test_records_in_order_lowest_ttl(void **state)
{
    struct msg m;
    struct srv_record r[4];
    char chase[DNS_NAME_MAX + 1];
    size_t n;
    uint32_t ttl = 0;

    (void)state;
    start(&m, Q, 33, 3);
    add_srv(&m, Q, 1, 5, 8080, "A.svc.test", 300);
    add_srv(&m, "other.test", 0, 0, 1, "x.test", 1); /* not ours */
    add_srv(&m, Q, 2, 0, 9090, "b.svc.test", 60);
    assert_int_equal(run(&m, Q, r, 4, &n, chase, &ttl), SRV_FOUND);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].priority, 1);
    assert_int_equal(r[0].weight, 5);
    assert_int_equal(r[0].port, 8080);
    assert_string_equal(r[0].target, "a.svc.test");
    assert_int_equal(r[1].priority, 2);
    assert_int_equal(r[1].weight, 0);
    assert_int_equal(r[1].port, 9090);
    assert_string_equal(r[1].target, "b.svc.test");
    assert_int_equal(ttl, 60);
    /* The owner is matched without regard to case. */
    assert_int_equal(run(&m, "_HTTP._tcp.SVC.test", r, 4, &n, chase, &ttl),
                     SRV_FOUND);
    /* Only cap records are kept. */
    assert_int_equal(run(&m, Q, r, 1, &n, chase, &ttl), SRV_FOUND);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].target, "a.svc.test");
}


static void
test_dot_target_and_none(void **state)
{
    struct msg m;
    struct srv_record r[4];
    char chase[DNS_NAME_MAX + 1];
    size_t n = 9;
    uint32_t ttl = 0;

    (void)state;
    /* RFC 2782: a target of "." says the service is not there. */
    start(&m, Q, 33, 1);
    add_srv(&m, Q, 0, 0, 0, "", 60);
    assert_int_equal(run(&m, Q, r, 4, &n, chase, &ttl), SRV_NONE);
    assert_int_equal(n, 0);
    /* No answer at all. */
    start(&m, Q, 33, 0);
    assert_int_equal(run(&m, Q, r, 4, &n, chase, &ttl), SRV_NONE);
}


static void
test_compressed_target(void **state)
{
    struct msg m;
    struct srv_record r[2];
    char chase[DNS_NAME_MAX + 1];
    size_t n;
    uint32_t ttl = 0;

    (void)state;
    start(&m, Q, 33, 1);
    add_srv(&m, Q, 1, 1, 443, NULL, 10); /* target: a pointer to Q */
    assert_int_equal(run(&m, Q, r, 2, &n, chase, &ttl), SRV_FOUND);
    assert_string_equal(r[0].target, Q);
}


static void
test_cname_with_and_without_records(void **state)
{
    struct msg m;
    struct msg rd = {.n = 0};
    struct srv_record r[2];
    char chase[DNS_NAME_MAX + 1];
    size_t n;
    uint32_t ttl = 0;

    (void)state;
    put_name(&rd, "alias.svc.test");
    /* Only the CNAME: the asker must chase it. */
    start(&m, Q, 33, 1);
    add_rr(&m, Q, 5, &rd, 40);
    assert_int_equal(run(&m, Q, r, 2, &n, chase, &ttl), SRV_CNAME);
    assert_string_equal(chase, "alias.svc.test");
    assert_int_equal(ttl, 40);
    /* The chain and the target's records: those, with the lowest TTL. */
    start(&m, Q, 33, 3);
    add_srv(&m, Q, 9, 9, 9, "wrong.test", 1000); /* beside a CNAME: ignored */
    add_rr(&m, Q, 5, &rd, 40);
    add_srv(&m, "alias.svc.test", 1, 2, 8443, "svc.test", 100);
    assert_int_equal(run(&m, Q, r, 2, &n, chase, &ttl), SRV_FOUND);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].port, 8443);
    assert_int_equal(ttl, 40);
    /* A chain that comes back on itself is bad. */
    rd.n = 0;
    put_name(&rd, Q);
    start(&m, Q, 33, 1);
    add_rr(&m, Q, 5, &rd, 40);
    assert_int_equal(run(&m, Q, r, 2, &n, chase, &ttl), SRV_BAD);
}


static void
test_every_truncation_is_bad_never_a_fault(void **state)
{
    struct msg m, cut;
    struct srv_record r[2];
    char chase[DNS_NAME_MAX + 1];
    size_t n;
    uint32_t ttl = 0;

    (void)state;
    start(&m, Q, 33, 2);
    add_srv(&m, Q, 1, 5, 8080, "a.svc.test", 300);
    add_srv(&m, Q, 1, 5, 8081, NULL, 300);
    for (size_t len = 0; len < m.n; len++) {
        cut = m;
        cut.n = len;
        assert_int_equal(run(&cut, Q, r, 2, &n, chase, &ttl), SRV_BAD);
    }
}


static void
test_bad_rdata(void **state)
{
    struct msg m, rd = {.n = 0};
    struct srv_record r[2];
    char chase[DNS_NAME_MAX + 1];
    size_t n;
    uint32_t ttl = 0;

    (void)state;
    /* Too short for priority, weight, port and a name. */
    put16(&rd, 1);
    put16(&rd, 1);
    put16(&rd, 1);
    start(&m, Q, 33, 1);
    add_rr(&m, Q, 33, &rd, 1);
    assert_int_equal(run(&m, Q, r, 2, &n, chase, &ttl), SRV_BAD);
    /* A target name that ends before the rdata does. */
    srv_rdata(&rd, 1, 1, 1, "a.test");
    put16(&rd, 0xABCD);
    start(&m, Q, 33, 1);
    add_rr(&m, Q, 33, &rd, 1);
    assert_int_equal(run(&m, Q, r, 2, &n, chase, &ttl), SRV_BAD);
    /* A bad record after a good one: nothing is returned (found by
     * fuzz_dns_srv). */
    start(&m, Q, 33, 2);
    add_srv(&m, Q, 1, 5, 8080, "a.test", 60);
    add_rr(&m, Q, 33, &rd, 1);
    n = 9;
    assert_int_equal(run(&m, Q, r, 1, &n, chase, &ttl), SRV_BAD);
    assert_int_equal(n, 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_in_order_lowest_ttl),
        cmocka_unit_test(test_dot_target_and_none),
        cmocka_unit_test(test_compressed_target),
        cmocka_unit_test(test_cname_with_and_without_records),
        cmocka_unit_test(test_every_truncation_is_bad_never_a_fault),
        cmocka_unit_test(test_bad_rdata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
