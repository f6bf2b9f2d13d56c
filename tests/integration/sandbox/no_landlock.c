/* SPDX-License-Identifier: MIT */
/*
 * Test-only launcher for test_sandbox.py: runs argv[1..] as on a kernel
 * without Landlock. A seccomp filter (inherited across execve, and by
 * every process snirelay forks) makes the three landlock_* calls fail
 * with ENOSYS, as they do where the kernel lacks them.
 */

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>


int
main(int argc, char **argv)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);

    if (argc < 2 || ctx == NULL) {
        fprintf(stderr, "usage: no_landlock PROGRAM [ARG...]\n");
        return 2;
    }
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
                         SCMP_SYS(landlock_create_ruleset), 0) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
                         SCMP_SYS(landlock_add_rule), 0) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
                         SCMP_SYS(landlock_restrict_self), 0) != 0 ||
        seccomp_load(ctx) != 0) {
        fprintf(stderr, "no_landlock: installing the filter failed\n");
        return 2;
    }
    seccomp_release(ctx);
    execv(argv[1], argv + 1);
    perror("no_landlock: execv");
    return 2;
}
