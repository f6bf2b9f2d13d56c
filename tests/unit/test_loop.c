/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for event/loop's edge-triggered ios, on real socket pairs:
 * an io is called again while it is ready for what it asks and has not
 * said it is drained, is called for what it starts asking for when that is
 * ready already, is not called for a peer's FIN it no longer asks about,
 * and is never called once closed, even when it was due.
 *
 * "Not called again" is shown without waiting on a clock: a 0 ms timer
 * arms a second one, which stops the loop, so one more whole turn (epoll,
 * due ios, timers) runs after the last expected call.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "event/loop.h"

struct probe {
    struct loop *loop;
    struct loop_io io;
    struct loop_io *other; /* closed on call close_at, if set */
    int close_at;
    int calls;
    uint32_t last_ev;
    int drain_at;   /* on this call: read everything, say drained */
    uint32_t after; /* interest to ask for after draining */
    struct loop_timer first;
    struct loop_timer last;
};

static void
stop_timer(struct loop_timer *t)
{
    struct probe *p = t->data;

    loop_stop(p->loop);
}

/* A whole turn later, the second timer stops the loop. */
static void
turn_timer(struct loop_timer *t)
{
    struct probe *p = t->data;

    assert_int_equal(loop_timer_set(p->loop, &p->last, 0), 0);
}

static void
end_in_two_turns(struct probe *p)
{
    assert_int_equal(loop_timer_set(p->loop, &p->first, 0), 0);
}

static void
probe_io(struct loop_io *io, uint32_t ev)
{
    struct probe *p = io->data;
    char buf[64];

    p->calls++;
    p->last_ev = ev;
    if (p->other != NULL && p->calls == p->close_at) {
        loop_io_close(p->other);
        p->other = NULL;
    }
    if (p->calls == p->drain_at) {
        ssize_t n;

        while ((n = read(io->fd, buf, sizeof(buf))) > 0) {
        }
        if (n == -1) {
            loop_io_drained(io, LOOP_READ); /* EAGAIN; an EOF stays */
        }
        assert_int_equal(loop_io_set(p->loop, io, p->after), 0);
        end_in_two_turns(p);
    }
}

static void
probe_init(struct probe *p, struct loop *l, int fd)
{
    *p = (struct probe){.loop = l};
    loop_io_init_edge(&p->io, fd, probe_io, p);
    loop_timer_init(&p->first, turn_timer, p);
    loop_timer_init(&p->last, stop_timer, p);
}

static void
pair(int sv[2])
{
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
        0);
}

static void
test_an_edge_io_is_called_while_ready_until_drained(void **state)
{
    struct loop *l = loop_new();
    struct probe p;
    int sv[2];

    (void)state;
    clock_update();
    pair(sv);
    probe_init(&p, l, sv[0]);
    p.drain_at = 3;
    p.after = LOOP_READ;
    assert_int_equal(write(sv[1], "abc", 3), 3);
    assert_int_equal(loop_io_set(l, &p.io, LOOP_READ), 0);
    assert_int_equal(loop_run(l), 0);
    /* One edge from epoll, yet three calls: the first two left it ready. */
    assert_int_equal(p.calls, 3);
    assert_true(p.last_ev & LOOP_READ);
    loop_io_close(&p.io);
    close(sv[1]);
    loop_free(l);
}

static void
test_an_edge_io_is_called_for_what_it_starts_to_ask(void **state)
{
    struct loop *l = loop_new();
    struct probe p;
    int sv[2];

    (void)state;
    clock_update();
    pair(sv);
    probe_init(&p, l, sv[0]);
    p.drain_at = 1;
    /* Registered asking for nothing; the bytes come meanwhile. */
    assert_int_equal(loop_io_set(l, &p.io, 0), 0);
    assert_int_equal(write(sv[1], "abc", 3), 3);
    end_in_two_turns(&p);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(p.calls, 0);
    /* Asked now: called at once, with no new edge from epoll. */
    assert_int_equal(loop_io_set(l, &p.io, LOOP_READ), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.last_ev & (LOOP_READ | LOOP_WRITE), LOOP_READ);
    loop_io_close(&p.io);
    close(sv[1]);
    loop_free(l);
}

static void
test_a_fin_no_one_asks_about_is_reported_once(void **state)
{
    struct loop *l = loop_new();
    struct probe p;
    int sv[2];

    (void)state;
    clock_update();
    pair(sv);
    probe_init(&p, l, sv[0]);
    p.drain_at = 1;
    p.after = 0; /* read to EOF, then ask for nothing (no epoll_ctl) */
    close(sv[1]);
    assert_int_equal(loop_io_set(l, &p.io, LOOP_READ), 0);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(p.calls, 1);
    assert_true(p.last_ev & LOOP_HUP);
    loop_io_close(&p.io);
    loop_free(l);
}

static void
test_a_closed_io_is_not_called_though_it_was_due(void **state)
{
    struct loop *l = loop_new();
    struct probe a, b;
    int sa[2], sb[2];

    (void)state;
    clock_update();
    pair(sa);
    pair(sb);
    probe_init(&a, l, sa[0]);
    probe_init(&b, l, sb[0]);
    /* Both ready, neither drains at first: both are due after turn one.
     * The first called from the due list closes the other, which must not
     * be called again. */
    a.drain_at = b.drain_at = 2;
    a.close_at = b.close_at = 2;
    a.after = b.after = 0;
    assert_int_equal(write(sa[1], "a", 1), 1);
    assert_int_equal(write(sb[1], "b", 1), 1);
    assert_int_equal(loop_io_set(l, &a.io, LOOP_READ), 0);
    assert_int_equal(loop_io_set(l, &b.io, LOOP_READ), 0);
    a.other = &b.io;
    b.other = &a.io;
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(a.calls + b.calls, 3);
    assert_true((a.calls == 2 && b.calls == 1) ||
                (a.calls == 1 && b.calls == 2));
    loop_io_close(&a.io);
    loop_io_close(&b.io);
    close(sa[1]);
    close(sb[1]);
    loop_free(l);
}

static void
test_a_full_socket_waits_for_room_once_drained(void **state)
{
    struct loop *l = loop_new();
    struct probe p;
    int sv[2];
    char block[4096] = {0};

    (void)state;
    clock_update();
    pair(sv);
    probe_init(&p, l, sv[0]);
    /* Fill the socket until EAGAIN: asking to write is then not served. */
    while (write(sv[0], block, sizeof(block)) > 0) {
    }
    loop_io_drained(&p.io, LOOP_WRITE);
    assert_int_equal(loop_io_set(l, &p.io, LOOP_WRITE), 0);
    end_in_two_turns(&p);
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(p.calls, 0);
    /* The peer reads: room again, reported by epoll. */
    p.drain_at = 1;
    p.after = 0;
    while (read(sv[1], block, sizeof(block)) > 0) {
    }
    assert_int_equal(loop_run(l), 0);
    assert_int_equal(p.calls, 1);
    assert_true(p.last_ev & LOOP_WRITE);
    loop_io_close(&p.io);
    close(sv[1]);
    loop_free(l);
}

int
main(void)
{
    /* A loop that waits for a call that never comes fails, not hangs. */
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_edge_io_is_called_while_ready_until_drained),
        cmocka_unit_test(test_an_edge_io_is_called_for_what_it_starts_to_ask),
        cmocka_unit_test(test_a_fin_no_one_asks_about_is_reported_once),
        cmocka_unit_test(test_a_closed_io_is_not_called_though_it_was_due),
        cmocka_unit_test(test_a_full_socket_waits_for_room_once_drained),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
