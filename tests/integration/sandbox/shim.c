/* SPDX-License-Identifier: MIT */
/*
 * Test-only LD_PRELOAD shim for test_sandbox.py; never part of snirelay.
 * Its constructor installs a SIGUSR2 handler (kept across fork, and
 * snirelay leaves SIGUSR2 alone) that does what $SNIRELAY_SHIM says (one
 * action, or several separated by '|', in turn), so a test can make a
 * running worker act on demand:
 *   forbidden     ptrace(PTRACE_PEEKDATA, 0): no effect, never allowed
 *   abort         abort(), as a failed BUG_ON() does
 *   asan-report   in an ASan build, report a bad 8-byte load (as a bug
 *                 would); elsewhere "= errno ENOSYS"
 *   read:PATH     open PATH for reading
 *   create:PATH   open PATH for writing, creating it
 * Each result goes to stderr as one line "shim: WHAT = RESULT".
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>


static const char *shim_action;


static void
shim_put(const char *s)
{
    (void)!write(2, s, strlen(s));
}


static void
shim_result(const char *what, long rc, int err)
{
    char num[24];
    char *p = num + sizeof(num);
    unsigned long v = (unsigned long)(rc == -1 ? err : rc);

    *--p = '\0';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    /* One write(): a reader must never see half a line. */
    char line[256];
    size_t len = 0;
    const char *parts[] = {"shim: ", what, rc == -1 ? " = errno " : " = ok ",
                           p, "\n"};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        for (const char *c = parts[i]; *c != '\0' && len < sizeof(line) - 1;
             c++) {
            line[len++] = *c;
        }
    }
    line[len] = '\0';
    shim_put(line);
}


static void
shim_act(const char *action)
{
    long rc;

    if (strcmp(action, "abort") == 0) {
        abort();
    } else if (strcmp(action, "asan-report") == 0) {
        static char bytes[8];
        void (*report)(uintptr_t) = (void (*)(uintptr_t))dlsym(
            RTLD_DEFAULT, "__asan_report_load8");

        if (report == NULL) {
            shim_result(action, -1, ENOSYS);
        } else {
            report((uintptr_t)bytes);
        }
    } else if (strcmp(action, "forbidden") == 0) {
        rc = syscall(SYS_ptrace, PTRACE_PEEKDATA, 0, 0, 0);
        shim_result(action, rc, errno);
    } else if (strncmp(action, "read:", 5) == 0) {
        rc = open(action + 5, O_RDONLY | O_CLOEXEC);
        shim_result(action, rc == -1 ? -1 : 0, errno);
        if (rc != -1) {
            close((int)rc);
        }
    } else if (strncmp(action, "create:", 7) == 0) {
        rc = open(action + 7, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        shim_result(action, rc == -1 ? -1 : 0, errno);
        if (rc != -1) {
            close((int)rc);
        }
    }
}


static void
shim_usr2(int sig)
{
    const int saved = errno;
    const char *p = shim_action;
    char one[4096];

    (void)sig;
    while (*p != '\0') {
        size_t len = strcspn(p, "|");

        if (len >= sizeof(one)) {
            len = sizeof(one) - 1;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        shim_act(one);
        p += strcspn(p, "|");
        p += *p == '|';
    }
    errno = saved;
}


__attribute__((constructor)) static void
shim_init(void)
{
    struct sigaction sa;

    shim_action = getenv("SNIRELAY_SHIM");
    if (shim_action == NULL) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = shim_usr2;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
