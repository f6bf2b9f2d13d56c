/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/shm.c: a zone is shared across fork, and its
 * lock, when its holder dies holding it, is released and the next locker
 * is told who died (the master mends after a killed worker).
 */

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/shm.h"


static void
test_data_is_shared_across_fork(void **state)
{
    struct shm_zone *z = shm_zone_new(4096);
    pid_t pid;
    int status;

    (void)state;
    assert_non_null(z);
    assert_true(z->data_len >= 4096);
    assert_int_equal(z->data[0], 0);
    pid = fork();
    assert_true(pid != -1);
    if (pid == 0) {
        if (shm_lock(z, NULL) != SHM_LOCKED) {
            _exit(2);
        }
        memcpy(z->data, "child", 6);
        shm_unlock(z);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(shm_lock(z, NULL), SHM_LOCKED);
    assert_string_equal((char *)z->data, "child");
    assert_int_equal(z->holder, getpid());
    shm_unlock(z);
    assert_int_equal(z->holder, 0);
    shm_zone_free(z);
}


static void
test_a_holder_killed_inside_releases_the_lock(void **state)
{
    struct shm_zone *z = shm_zone_new(64);
    int32_t dead = 0;
    int pipefd[2];
    char ch;
    pid_t pid;

    (void)state;
    assert_non_null(z);
    assert_int_equal(pipe(pipefd), 0);
    pid = fork();
    assert_true(pid != -1);
    if (pid == 0) {
        shm_lock(z, NULL);
        /* Tell the parent, then wait to be killed with the lock held. */
        if (write(pipefd[1], "x", 1) != 1) {
            _exit(2);
        }
        for (;;) {
            pause();
        }
    }
    assert_int_equal(read(pipefd[0], &ch, 1), 1);
    assert_int_equal(z->holder, pid);
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(shm_lock(z, &dead), SHM_LOCKED_HOLDER_DIED);
    assert_int_equal(dead, pid);
    shm_unlock(z);
    /* Marked consistent: the next locker is not told again. */
    assert_int_equal(shm_lock(z, &dead), SHM_LOCKED);
    shm_unlock(z);
    close(pipefd[0]);
    close(pipefd[1]);
    shm_zone_free(z);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_is_shared_across_fork),
        cmocka_unit_test(test_a_holder_killed_inside_releases_the_lock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
