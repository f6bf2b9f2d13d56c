/* SPDX-License-Identifier: MIT */
/*
 * net/listen: how many sockets an address gets, and the hand-over of
 * sockets between generations (take, give back, keep one per worker), on
 * real descriptors.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/listen.h"
#include "net/sock.h"


static bool
is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}


static int
some_fd(void)
{
    const int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    return fd;
}


static void
test_nfds(void **state)
{
    (void)state;
    assert_int_equal(listen_nfds(false, 8), 1);
    assert_int_equal(listen_nfds(true, 4), 4);
    assert_int_equal(listen_nfds(true, 100000), LISTEN_FDS_MAX);
    assert_true(listen_nfds(true, 0) >= 1); /* one per CPU */
    assert_int_equal(listen_nfds(true, -1), 1);
}


static void
test_take_then_give_back(void **state)
{
    int old[2] = {some_fd(), some_fd()};
    const int a = old[0];
    const int b = old[1];
    int fds[3];
    struct sockaddr_in sin;
    const struct sock_listen_opts o = {
        .backlog = 16, .keepalive = -1, .ipv6only = -1};
    const char *what = NULL;
    int opened;

    (void)state;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fds_init(fds, 3);
    listen_fds_take(fds, 3, old, 2);
    assert_int_equal(fds[0], a);
    assert_int_equal(fds[1], b);
    assert_int_equal(fds[2], -1);
    assert_int_equal(old[0], -1);
    assert_int_equal(old[1], -1);
    /* Only the missing socket is opened. */
    assert_int_equal(listen_fds_open(fds, 3, (struct sockaddr *)&sin,
                                     sizeof(sin), &o, &what),
                     0);
    assert_int_equal(fds[0], a);
    assert_int_equal(fds[1], b);
    opened = fds[2];
    assert_true(opened >= 0);
    /* Given up: the moved ones go back, the new one is closed. */
    listen_fds_give_back(fds, 3, old, 2);
    assert_int_equal(old[0], a);
    assert_int_equal(old[1], b);
    assert_int_equal(fds[0], -1);
    assert_int_equal(fds[2], -1);
    assert_true(is_open(a));
    assert_false(is_open(opened));
    listen_fds_close(old, 2);
    assert_false(is_open(a));
    assert_false(is_open(b));
    assert_int_equal(old[0], -1);
}


static void
test_give_back_without_old_closes_all(void **state)
{
    int fds[2] = {some_fd(), some_fd()};
    const int a = fds[0];

    (void)state;
    listen_fds_give_back(fds, 2, NULL, 0);
    assert_false(is_open(a));
    assert_int_equal(fds[0], -1);
    assert_int_equal(fds[1], -1);
}


static void
test_worker_keeps_its_own(void **state)
{
    int fds[3] = {some_fd(), some_fd(), some_fd()};
    const int a = fds[0];
    const int b = fds[1];
    const int c = fds[2];

    (void)state;
    assert_int_equal(listen_fds_keep(fds, 3, 4), b); /* slot 4 -> 1 */
    assert_false(is_open(a));
    assert_false(is_open(c));
    assert_true(is_open(b));
    listen_fds_close(fds, 3);
}


static void
test_same_address_and_kind(void **state)
{
    struct sockaddr_storage x;
    struct sockaddr_storage y;
    socklen_t len;

    (void)state;
    assert_int_equal(sock_parse_addr("127.0.0.1:80", 12, 0, &x, &len), 0);
    assert_int_equal(sock_parse_addr("127.0.0.1:81", 12, 0, &y, &len), 0);
    assert_true(listen_same((struct sockaddr *)&x, false, (struct sockaddr *)&x,
                            false));
    assert_false(
        listen_same((struct sockaddr *)&x, true, (struct sockaddr *)&x, false));
    assert_false(listen_same((struct sockaddr *)&x, false,
                             (struct sockaddr *)&y, false));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfds),
        cmocka_unit_test(test_take_then_give_back),
        cmocka_unit_test(test_give_back_without_old_closes_all),
        cmocka_unit_test(test_worker_keeps_its_own),
        cmocka_unit_test(test_same_address_and_kind),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
