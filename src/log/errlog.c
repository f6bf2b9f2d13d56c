/* SPDX-License-Identifier: MIT */
/*
 * Error-log lines in nginx's format, written with one write(2) each so that
 * lines from several processes never interleave.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "log/errlog.h"


static const char *const errlog_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

static struct errlog errlog_stderr = {2, ERRLOG_INFO, "stderr", NULL};
static struct errlog *errlog_current = &errlog_stderr;


int
errlog_level_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(errlog_names) / sizeof(errlog_names[0]);
         i++) {
        if (strcmp(name, errlog_names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}


void
errlog_set_default(struct errlog *log)
{
    errlog_current = log != NULL ? log : &errlog_stderr;
}


int
errlog_enabled(const struct errlog *log, enum errlog_level level)
{
    if (log == NULL) {
        log = errlog_current;
    }
    return level <= log->level;
}


void
errlog_write(struct errlog *log, enum errlog_level level, uint64_t conn_id,
             const char *fmt, ...)
{
    char line[2048];
    size_t len;
    int n;
    va_list ap;
    const int saved_errno = errno;

    if (log == NULL) {
        log = errlog_current;
    }
    if (level > log->level) {
        return;
    }
    if (log == &errlog_stderr) {
        /* Before a config names a log: nginx's start-up form. */
        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
        va_end(ap);
        len = n < 0 ? 0 : (size_t)n;
        if (len > sizeof(line) - 2) {
            len = sizeof(line) - 2;
        }
        line[len++] = '\n';
        dprintf(2, "snirelay: [%s] %.*s", errlog_names[level], (int)len, line);
        errno = saved_errno;
        return;
    }
    n = snprintf(line, sizeof(line), "%s [%s] %d#0: ", clock_time_errlog(),
                 errlog_names[level], (int)getpid());
    len = (size_t)n;
    if (conn_id > 0) {
        n = snprintf(line + len, sizeof(line) - len, "*%llu ",
                     (unsigned long long)conn_id);
        len += (size_t)n;
    }
    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
    va_end(ap);
    len = n < 0 ? len : len + (size_t)n;
    if (len > sizeof(line) - 2) {
        len = sizeof(line) - 2;
    }
    line[len++] = '\n';
    /* One write per line; a short or failed write has nowhere to go. */
    if (write(log->fd, line, len) == -1) {
        errno = saved_errno;
    }
    errno = saved_errno;
}


int
errlog_reopen(struct errlog *log)
{
    const int fd =
        open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    if (fd == -1) {
        errlog_write(log, ERRLOG_ALERT, 0, "open() \"%s\" failed (%d: %s)",
                     log->path, errno, strerror(errno));
        return -1;
    }
    /* Same descriptor number: every holder of it writes to the new file. */
    if (dup2(fd, log->fd) == -1) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}
