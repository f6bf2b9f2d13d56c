/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for log/errlog's errlog_open_append(): the file a reopen makes
 * is given to the worker user, readable and writable by it, as nginx's
 * ngx_reopen_files() does. The ownership cases need root and are skipped
 * otherwise.
 */

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "log/errlog.h"

#define OTHER_UID ((uid_t)65534) /* nobody's, on Debian and most others */

static char dir[] = "/tmp/snirelay-errlog-XXXXXX";
static char path[sizeof(dir) + 16];

static int
setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/x.log", dir);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    return 0;
}

static struct stat
stat_of(const char *p)
{
    struct stat st;

    assert_int_equal(stat(p, &st), 0);
    return st;
}

static void
test_creates_and_appends_without_owner(void **state)
{
    const char *what = NULL;
    int fd;

    (void)state;
    unlink(path);
    fd = errlog_open_append(path, (uid_t)-1, &what);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a\n", 2), 2);
    close(fd);
    fd = errlog_open_append(path, (uid_t)-1, &what);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "b\n", 2), 2);
    close(fd);
    assert_int_equal(stat_of(path).st_size, 4);
    assert_int_equal(stat_of(path).st_uid, geteuid());
}

static void
test_open_failure_names_open(void **state)
{
    char missing[sizeof(path) + 16];
    const char *what = NULL;

    (void)state;
    snprintf(missing, sizeof(missing), "%s/no/such.log", dir);
    assert_int_equal(errlog_open_append(missing, (uid_t)-1, &what), -1);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(what, "open()");
}

static void
test_new_file_is_given_to_owner(void **state)
{
    const char *what = NULL;
    int fd;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    unlink(path);
    fd = errlog_open_append(path, OTHER_UID, &what);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(stat_of(path).st_uid, OTHER_UID);
    assert_int_equal(stat_of(path).st_gid, getegid()); /* group untouched */
}

static void
test_existing_file_gets_owner_read_write(void **state)
{
    const char *what = NULL;
    int fd;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    unlink(path);
    /* What logrotate's `create 0040 root adm` would leave. */
    fd = open(path, O_WRONLY | O_CREAT, 0040);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(path, 0040), 0);
    fd = errlog_open_append(path, OTHER_UID, &what);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(stat_of(path).st_uid, OTHER_UID);
    assert_int_equal(stat_of(path).st_mode & 07777, 0640);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_creates_and_appends_without_owner),
        cmocka_unit_test(test_open_failure_names_open),
        cmocka_unit_test(test_new_file_is_given_to_owner),
        cmocka_unit_test(test_existing_file_gets_owner_read_write),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
