/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/dns/cname.c: answers built here byte by byte (plain
 * and compressed names, chains in and out of order, loops, truncations at
 * every length), each copied flush against a guard page so a read past
 * the message faults.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dns/cname.h"
#include "dnsmsg.h"
#include "guardpage.h"


/* Runs cname_target on m copied against a guard page. */
static enum cname_rc
run(const struct msg *m, const char *owner, char *target, uint32_t *ttl)
{
    struct guardpage g;
    enum cname_rc rc;

    assert_int_equal(guardpage_init(&g, sizeof(m->b)), 0);
    rc = cname_target(guardpage_place(&g, m->b, m->n), m->n, owner, target,
                      CNAME_NAME_MAX + 1, ttl);
    guardpage_free(&g);
    return rc;
}


static void
test_one_link(void **state)
{
    struct msg m;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;

    (void)state;
    start(&m, "svc.test", 5, 1);
    add_cname(&m, "svc.test", "Real.Example.ORG", 300);
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_FOUND);
    assert_string_equal(t, "real.example.org");
    assert_int_equal(ttl, 300);
    /* The owner is compared without regard to case. */
    assert_int_equal(run(&m, "SVC.test", t, &ttl), CNAME_FOUND);
}


static void
test_chain_out_of_order_lowest_ttl(void **state)
{
    struct msg m;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;

    (void)state;
    start(&m, "a.test", 1, 3);
    add_cname(&m, "c.test", "d.test", 50);
    add_cname(&m, "a.test", "b.test", 100);
    add_cname(&m, "b.test", "c.test", 70);
    assert_int_equal(run(&m, "a.test", t, &ttl), CNAME_FOUND);
    assert_string_equal(t, "d.test");
    assert_int_equal(ttl, 50);
    /* Starting in the middle follows only the rest. */
    assert_int_equal(run(&m, "b.test", t, &ttl), CNAME_FOUND);
    assert_string_equal(t, "d.test");
}


static void
test_compressed_names(void **state)
{
    struct msg m;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;
    /* owner: pointer to the question name (offset 12); target "x" + ptr */
    static const uint8_t rr[] = {0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 9,
                                 0,    4,  1, 'x', 0xC0, 16};

    (void)state;
    start(&m, "svc.test", 1, 1);
    put(&m, rr, sizeof(rr));
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_FOUND);
    assert_string_equal(t, "x.test"); /* offset 16 is "test" */
    assert_int_equal(ttl, 9);
}


static void
test_none_and_other_types(void **state)
{
    struct msg m;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;
    static const uint8_t a_rr[] = {0xC0, 12, 0, 1, 0, 1, 0, 0,
                                   0,    9,  0, 4, 127, 0, 0, 1};

    (void)state;
    start(&m, "svc.test", 1, 0);
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_NONE);
    start(&m, "svc.test", 1, 1);
    put(&m, a_rr, sizeof(a_rr));
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_NONE);
    /* A CNAME for another name is not ours. */
    start(&m, "svc.test", 5, 1);
    add_cname(&m, "other.test", "x.test", 1);
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_NONE);
}


static void
test_loops(void **state)
{
    struct msg m;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;

    (void)state;
    start(&m, "a.test", 5, 1);
    add_cname(&m, "a.test", "a.test", 1);
    assert_int_equal(run(&m, "a.test", t, &ttl), CNAME_LOOP);
    start(&m, "a.test", 5, 2);
    add_cname(&m, "a.test", "b.test", 1);
    add_cname(&m, "b.test", "a.test", 1);
    assert_int_equal(run(&m, "a.test", t, &ttl), CNAME_LOOP);
    /* A loop that does not pass the start again is caught by the bound. */
    start(&m, "a.test", 5, 3);
    add_cname(&m, "a.test", "b.test", 1);
    add_cname(&m, "b.test", "c.test", 1);
    add_cname(&m, "c.test", "b.test", 1);
    assert_int_equal(run(&m, "a.test", t, &ttl), CNAME_LOOP);
}


static void
test_every_truncation_is_bad_never_a_fault(void **state)
{
    struct msg m, cut;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;

    (void)state;
    start(&m, "svc.test", 5, 2);
    add_cname(&m, "svc.test", "mid.test", 1);
    add_cname(&m, "mid.test", "end.test", 1);
    for (size_t n = 0; n < m.n; n++) {
        enum cname_rc rc;
        memcpy(cut.b, m.b, n);
        cut.n = n;
        rc = run(&cut, "svc.test", t, &ttl);
        assert_true(rc == CNAME_BAD);
    }
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_FOUND);
}


static void
test_bad_rdata_and_pointer_loop(void **state)
{
    struct msg m;
    char t[CNAME_NAME_MAX + 1];
    uint32_t ttl = 0;
    /* rdlength says 3, the name inside takes 6: */
    static const uint8_t short_rd[] = {0xC0, 12, 0, 5, 0,   1,   0,   0,
                                       0,    9,  0, 3, 1,   'x', 0xC0, 12};
    /* a compression pointer to itself */
    static const uint8_t self_ptr[] = {0xC0, 12, 0, 5, 0, 1, 0, 0,
                                       0,    9,  0, 2, 0xC0, 0};

    (void)state;
    start(&m, "svc.test", 5, 1);
    put(&m, short_rd, sizeof(short_rd));
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_BAD);
    start(&m, "svc.test", 5, 1);
    put(&m, self_ptr, sizeof(self_ptr));
    m.b[m.n - 1] = (uint8_t)(m.n - 2); /* points at itself */
    assert_int_equal(run(&m, "svc.test", t, &ttl), CNAME_BAD);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_link),
        cmocka_unit_test(test_chain_out_of_order_lowest_ttl),
        cmocka_unit_test(test_compressed_names),
        cmocka_unit_test(test_none_and_other_types),
        cmocka_unit_test(test_loops),
        cmocka_unit_test(test_every_truncation_is_bad_never_a_fault),
        cmocka_unit_test(test_bad_rdata_and_pointer_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
