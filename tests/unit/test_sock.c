/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/net/sock.c: "unix:PATH" parsing (inputs placed flush
 * against a guard page, as they are not NUL-terminated), formatting of
 * unix-domain addresses as nginx shows them ("unix:/path", "unix:" for an
 * unbound peer), equality, that the numeric parsers never take a unix
 * path (unix-domain addresses are opt-in for config callers only), and a
 * real unix listener: its file is created 0666 and a second bind fails.
 */

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "guardpage.h"
#include "net/sock.h"


/* A string literal as (bytes, length), so embedded NULs count. */
#define S(lit) lit, sizeof(lit) - 1


static int parse_placed(struct guardpage *g, const char *text, size_t len,
                        struct sockaddr_storage *ss, socklen_t *sslen,
                        const char **err);
static void test_is_unix(void **state);
static void test_parse_unix(void **state);
static void test_parse_unix_errors(void **state);
static void test_longest_path_fits_text(void **state);
static void test_unbound_peer_text(void **state);
static void test_equal(void **state);
static void test_wildcard(void **state);
static void test_numeric_parsers_refuse_unix(void **state);
static void test_listen_creates_file(void **state);


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_unix),
        cmocka_unit_test(test_parse_unix),
        cmocka_unit_test(test_parse_unix_errors),
        cmocka_unit_test(test_longest_path_fits_text),
        cmocka_unit_test(test_unbound_peer_text),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_wildcard),
        cmocka_unit_test(test_numeric_parsers_refuse_unix),
        cmocka_unit_test(test_listen_creates_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}


/* sock_parse_unix() on a copy of text ending flush against the guard. */
static int
parse_placed(struct guardpage *g, const char *text, size_t len,
             struct sockaddr_storage *ss, socklen_t *sslen, const char **err)
{
    const uint8_t *p = guardpage_place(g, text, len);

    assert_non_null(p);
    return sock_parse_unix((const char *)p, len, ss, sslen, err);
}


static void
test_is_unix(void **state)
{
    (void)state;
    assert_true(sock_is_unix(S("unix:/a")));
    assert_true(sock_is_unix(S("unix:")));
    assert_true(sock_is_unix(S("UNIX:/a"))); /* nginx compares any case */
    assert_false(sock_is_unix(S("unix")));
    assert_false(sock_is_unix(S("unix/a")));
    assert_false(sock_is_unix(S("127.0.0.1:80")));
    assert_false(sock_is_unix(S("")));
    /* Only the prefix counts: "unix:" then anything is a unix path. */
    assert_true(sock_is_unix(S("unix:x:443")));
}


static void
test_parse_unix(void **state)
{
    struct guardpage g;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    const char *err = NULL;
    char text[SOCK_ADDR_TEXT_MAX];
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&ss;

    (void)state;
    assert_int_equal(guardpage_init(&g, 0), 0);
    assert_int_equal(parse_placed(&g, S("unix:/run/a.sock"), &ss, &sslen, &err),
                     0);
    assert_int_equal(ss.ss_family, AF_UNIX);
    assert_string_equal(sun->sun_path, "/run/a.sock");
    assert_int_equal(sslen, offsetof(struct sockaddr_un, sun_path) + 12);
    assert_string_equal(
        sock_addr_text((struct sockaddr *)&ss, text, sizeof(text)),
        "unix:/run/a.sock");
    assert_string_equal(
        sock_addr_host((struct sockaddr *)&ss, text, sizeof(text)),
        "unix:/run/a.sock");
    assert_int_equal(sock_addr_port((struct sockaddr *)&ss), 0);

    /* A relative path and a one-byte path are paths too. */
    assert_int_equal(parse_placed(&g, S("unix:s"), &ss, &sslen, &err), 0);
    assert_string_equal(sun->sun_path, "s");
    assert_int_equal(parse_placed(&g, S("unix:run/b:c"), &ss, &sslen, &err), 0);
    assert_string_equal(sun->sun_path, "run/b:c");
    guardpage_free(&g);
}


static void
test_parse_unix_errors(void **state)
{
    struct guardpage g;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    const char *err = NULL;
    char path[5 + sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

    (void)state;
    assert_int_equal(guardpage_init(&g, 0), 0);
    assert_int_equal(parse_placed(&g, S("unix:"), &ss, &sslen, &err), -1);
    assert_string_equal(err, "no path in the unix domain socket");

    /* 107 bytes fit with their NUL; 108 do not (nginx's limit). */
    memcpy(path, "unix:", 5);
    memset(path + 5, 'a', sizeof(path) - 5);
    err = NULL;
    assert_int_equal(parse_placed(&g, path, 5 + 107, &ss, &sslen, &err), 0);
    assert_null(err);
    assert_int_equal(parse_placed(&g, path, 5 + 108, &ss, &sslen, &err), -1);
    assert_string_equal(err, "too long path in the unix domain socket");

    /* A NUL inside would cut the path short: refused, not truncated. */
    err = NULL;
    assert_int_equal(parse_placed(&g, S("unix:/a\0b"), &ss, &sslen, &err), -1);
    assert_non_null(err);
    guardpage_free(&g);
}


static void
test_longest_path_fits_text(void **state)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    const char *err;
    char in[5 + 107 + 1];
    char out[SOCK_ADDR_TEXT_MAX];

    (void)state;
    memcpy(in, "unix:", 5);
    memset(in + 5, 'p', 107);
    in[5 + 107] = '\0';
    assert_int_equal(sock_parse_unix(in, strlen(in), &ss, &sslen, &err), 0);
    assert_string_equal(
        sock_addr_text((struct sockaddr *)&ss, out, sizeof(out)), in);
}


static void
test_unbound_peer_text(void **state)
{
    struct sockaddr_storage ss;
    char out[SOCK_ADDR_TEXT_MAX];

    (void)state;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX; /* what accept() gives for an unbound client */
    assert_string_equal(
        sock_addr_text((struct sockaddr *)&ss, out, sizeof(out)), "unix:");
    assert_string_equal(
        sock_addr_host((struct sockaddr *)&ss, out, sizeof(out)), "unix:");
    assert_int_equal(sock_addr_port((struct sockaddr *)&ss), 0);
    /* A short buffer cuts, never overruns. */
    assert_string_equal(sock_addr_text((struct sockaddr *)&ss, out, 3), "un");
}


static void
test_equal(void **state)
{
    struct sockaddr_storage a;
    struct sockaddr_storage b;
    struct sockaddr_storage c;
    struct sockaddr_storage in;
    socklen_t len;
    const char *err;

    (void)state;
    assert_int_equal(sock_parse_unix(S("unix:/x/a"), &a, &len, &err), 0);
    assert_int_equal(sock_parse_unix(S("unix:/x/a"), &b, &len, &err), 0);
    assert_int_equal(sock_parse_unix(S("unix:/x/ab"), &c, &len, &err), 0);
    assert_int_equal(sock_parse_addr(S("127.0.0.1:80"), 0, &in, &len), 0);
    assert_true(sock_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&b));
    assert_false(sock_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&c));
    assert_false(
        sock_addr_equal((struct sockaddr *)&a, (struct sockaddr *)&in));
    assert_false(
        sock_addr_equal((struct sockaddr *)&in, (struct sockaddr *)&a));
}


static void
test_wildcard(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *err;

    (void)state;
    assert_int_equal(sock_parse_addr(S("*:80"), 0, &ss, &len), 0);
    assert_true(sock_addr_is_wildcard((struct sockaddr *)&ss));
    assert_int_equal(sock_parse_addr(S("[::]:80"), 0, &ss, &len), 0);
    assert_true(sock_addr_is_wildcard((struct sockaddr *)&ss));
    assert_int_equal(sock_parse_addr(S("127.0.0.1:80"), 0, &ss, &len), 0);
    assert_false(sock_addr_is_wildcard((struct sockaddr *)&ss));
    assert_int_equal(sock_parse_addr(S("[::1]:80"), 0, &ss, &len), 0);
    assert_false(sock_addr_is_wildcard((struct sockaddr *)&ss));
    assert_int_equal(sock_parse_unix(S("unix:/x/a"), &ss, &len, &err), 0);
    assert_false(sock_addr_is_wildcard((struct sockaddr *)&ss));
}


/* Unix paths are opt-in: the numeric parsers never take one. */
static void
test_numeric_parsers_refuse_unix(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;

    (void)state;
    assert_int_equal(sock_parse_addr(S("unix:/x/a"), 0, &ss, &len), -1);
    assert_int_equal(sock_parse_addr(S("unix:80"), 0, &ss, &len), -1);
    assert_int_equal(sock_parse_peer(S("unix:/x/a"), &ss, &len), -1);
    assert_int_equal(sock_parse_peer(S("unix:/x/a:443"), &ss, &len), -1);
}


static void
test_listen_creates_file(void **state)
{
    char dir[] = "/tmp/snirelay-test-sock-XXXXXX";
    char text[128];
    struct sockaddr_storage ss;
    socklen_t len;
    const char *err;
    const char *what = NULL;
    const struct sock_listen_opts o = {
        .backlog = 8, .keepalive = -1, .ipv6only = -1};
    struct stat st;
    int fd;
    int fd2;
    int c;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(text, sizeof(text), "unix:%s/l.sock", dir);
    assert_int_equal(sock_parse_unix(text, strlen(text), &ss, &len, &err), 0);
    umask(022);
    fd = sock_listen((struct sockaddr *)&ss, len, &o, &what);
    assert_true(fd >= 0);
    assert_int_equal(stat(text + 5, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0666); /* as nginx, despite umask */

    /* An existing file is not replaced: bind() fails, as in nginx. */
    errno = 0;
    fd2 = sock_listen((struct sockaddr *)&ss, len, &o, &what);
    assert_int_equal(fd2, -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_string_equal(what, "bind()");
    assert_int_equal(stat(text + 5, &st), 0);

    /* It accepts connections: sock_connect() to it works at once. */
    c = sock_connect((struct sockaddr *)&ss, len, 0);
    assert_true(c >= 0);
    assert_int_equal(sock_error(c), 0);
    close(c);
    close(fd);
    assert_int_equal(unlink(text + 5), 0);
    assert_int_equal(rmdir(dir), 0);
}
