/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for net/pipe_pool: real pipes, the bound, reuse of empty
 * pipes only, and closing. Each test sets its bound and frees the pool.
 */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/pipe_pool.h"

static int
is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static void
test_get_gives_a_working_nonblocking_cloexec_pipe(void **state)
{
    struct pipe_pool_pipe p;
    char buf[4];

    (void)state;
    pipe_pool_init(4);
    assert_int_equal(pipe_pool_get(&p), 0);
    assert_true(p.cap >= 4096);
    assert_true(fcntl(p.rd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(p.wr, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(p.rd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(write(p.wr, "abc", 3), 3);
    assert_int_equal(read(p.rd, buf, sizeof(buf)), 3);
    /* Empty and non-blocking: a read says EAGAIN. */
    assert_int_equal(read(p.rd, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(pipe_pool_open_count(), 1);
    pipe_pool_put(&p);
    assert_int_equal(p.rd, -1);
    assert_int_equal(p.wr, -1);
    pipe_pool_free();
    assert_int_equal(pipe_pool_open_count(), 0);
}

static void
test_an_empty_pipe_put_back_is_reused(void **state)
{
    struct pipe_pool_pipe a;
    struct pipe_pool_pipe b;

    (void)state;
    pipe_pool_init(4);
    assert_int_equal(pipe_pool_get(&a), 0);
    const int rd = a.rd;
    const int wr = a.wr;
    pipe_pool_put(&a);
    assert_int_equal(pipe_pool_get(&b), 0);
    assert_int_equal(b.rd, rd);
    assert_int_equal(b.wr, wr);
    assert_int_equal(pipe_pool_open_count(), 1);
    pipe_pool_put(&b);
    pipe_pool_free();
}

static void
test_the_bound_counts_taken_and_idle_pipes(void **state)
{
    struct pipe_pool_pipe p[3];

    (void)state;
    pipe_pool_init(2);
    assert_int_equal(pipe_pool_get(&p[0]), 0);
    assert_int_equal(pipe_pool_get(&p[1]), 0);
    errno = 0;
    assert_int_equal(pipe_pool_get(&p[2]), -1);
    assert_int_equal(errno, EBUSY);
    pipe_pool_put(&p[0]);
    /* The idle one goes out again; no new pipe is made. */
    assert_int_equal(pipe_pool_get(&p[2]), 0);
    assert_int_equal(pipe_pool_open_count(), 2);
    pipe_pool_put(&p[1]);
    pipe_pool_put(&p[2]);
    pipe_pool_free();
    assert_int_equal(pipe_pool_open_count(), 0);
}

static void
test_a_closed_pipe_is_gone_and_frees_its_place(void **state)
{
    struct pipe_pool_pipe p;
    struct pipe_pool_pipe q;

    (void)state;
    pipe_pool_init(1);
    assert_int_equal(pipe_pool_get(&p), 0);
    const int rd = p.rd;
    const int wr = p.wr;
    assert_int_equal(write(p.wr, "left", 4), 4);
    pipe_pool_close(&p);
    assert_int_equal(p.rd, -1);
    assert_false(is_open(rd));
    assert_false(is_open(wr));
    assert_int_equal(pipe_pool_open_count(), 0);
    /* A new, empty pipe in its place. */
    assert_int_equal(pipe_pool_get(&q), 0);
    char buf[8];
    assert_int_equal(read(q.rd, buf, sizeof(buf)), -1);
    assert_int_equal(errno, EAGAIN);
    pipe_pool_put(&q);
    pipe_pool_free();
}

static void
test_a_lower_bound_closes_idle_pipes_and_refuses_zero(void **state)
{
    struct pipe_pool_pipe p[3];

    (void)state;
    pipe_pool_init(3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pipe_pool_get(&p[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pipe_pool_put(&p[i]);
    }
    assert_int_equal(pipe_pool_open_count(), 3);
    pipe_pool_init(1);
    assert_int_equal(pipe_pool_open_count(), 1);
    pipe_pool_free();
    pipe_pool_init(0);
    assert_int_equal(pipe_pool_get(&p[0]), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(pipe_pool_open_count(), 0);
}

static void
test_put_above_a_lowered_bound_closes(void **state)
{
    struct pipe_pool_pipe p[2];

    (void)state;
    pipe_pool_init(2);
    assert_int_equal(pipe_pool_get(&p[0]), 0);
    assert_int_equal(pipe_pool_get(&p[1]), 0);
    pipe_pool_init(1); /* both taken: nothing idle to close yet */
    assert_int_equal(pipe_pool_open_count(), 2);
    const int rd = p[0].rd;
    pipe_pool_put(&p[0]);
    assert_false(is_open(rd));
    assert_int_equal(pipe_pool_open_count(), 1);
    pipe_pool_put(&p[1]);
    assert_int_equal(pipe_pool_open_count(), 1);
    pipe_pool_free();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_gives_a_working_nonblocking_cloexec_pipe),
        cmocka_unit_test(test_an_empty_pipe_put_back_is_reused),
        cmocka_unit_test(test_the_bound_counts_taken_and_idle_pipes),
        cmocka_unit_test(test_a_closed_pipe_is_gone_and_frees_its_place),
        cmocka_unit_test(test_a_lower_bound_closes_idle_pipes_and_refuses_zero),
        cmocka_unit_test(test_put_above_a_lowered_bound_closes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
