/* SPDX-License-Identifier: MIT */
/*
 * Error-log lines in nginx's format, written with one write(2) each so that
 * lines from several processes never interleave.
 */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "log/errlog.h"


static const char *const errlog_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
};

/* RFC 3164 facility names, as nginx's syslog: parameters take them. */
static const char *const errlog_facilities[] = {
    "kern",   "user",   "mail",   "daemon", "auth",   "intern",
    "lpr",    "news",   "uucp",   "clock",  "authpriv", "ftp",
    "ntp",    "audit",  "alert",  "cron",   "local0", "local1",
    "local2", "local3", "local4", "local5", "local6", "local7",
};

static struct errlog errlog_stderr = {
    .fd = 2, .level = ERRLOG_INFO, .path = "stderr"};
static struct errlog *errlog_current = &errlog_stderr;


static void errlog_emit(struct errlog *log, enum errlog_level level,
                        const char *line, size_t len);
static int errlog_open_syslog(struct errlog *log, struct errlog_syslog *sl,
                              const char *params, char *err, size_t errcap);
static int errlog_syslog_connect(const char *server, char *err,
                                 size_t errcap);


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
    for (; log != NULL; log = log->also) {
        if (level <= log->level) {
            return 1;
        }
    }
    return 0;
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
    if (!errlog_enabled(log, level)) {
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
    for (; log != NULL; log = log->also) {
        if (level <= log->level) {
            errlog_emit(log, level, line, len);
        }
    }
    errno = saved_errno;
}


/*
 * One line to one target: a write to a file or stderr, or one datagram
 * with an RFC 3164 header for syslog, as nginx's ngx_syslog_writer():
 *   <PRI>Mmm dd hh:mm:ss HOST TAG: LINE
 * A short or failed write has nowhere to go.
 */
static void
errlog_emit(struct errlog *log, enum errlog_level level, const char *line,
            size_t len)
{
    if (log->syslog == NULL) {
        if (write(log->fd, line, len) == -1) {
            return;
        }
        return;
    }
    errlog_syslog_send(log->fd, log->syslog, (unsigned)level, line, len);
}


void
errlog_syslog_send(int fd, const struct errlog_syslog *sl, unsigned severity,
                   const char *msg, size_t len)
{
    char dgram[2300];
    char host[256] = "";
    char stamp[32];
    struct tm tm;
    const time_t now = (time_t)(clock_wall_ms() / 1000);
    int n;

    if (sl->has_hostname) {
        if (gethostname(host, sizeof(host) - 1) == -1) {
            host[0] = '\0';
        }
        for (char *p = host; *p != '\0'; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
    }
    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    n = snprintf(dgram, sizeof(dgram), "<%u>%s %s%s%s: ",
                 sl->facility * 8 + severity, stamp, host,
                 host[0] != '\0' ? " " : "", sl->tag);
    if (n < 0 || (size_t)n >= sizeof(dgram)) {
        return;
    }
    /* The datagram carries the line without its newline. */
    if (len > 0 && msg[len - 1] == '\n') {
        len--;
    }
    if (len > sizeof(dgram) - (size_t)n) {
        len = sizeof(dgram) - (size_t)n;
    }
    memcpy(dgram + n, msg, len);
    if (send(fd, dgram, (size_t)n + len, MSG_DONTWAIT | MSG_NOSIGNAL) == -1) {
        return;
    }
}


int
errlog_open(struct errlog *log, struct errlog_syslog *sl, const char *target,
            char *err, size_t errcap)
{
    log->path = target;
    log->syslog = NULL;
    if (strcmp(target, "stderr") == 0) {
        log->fd = 2;
        return 0;
    }
    if (strncmp(target, "syslog:", 7) == 0) {
        return errlog_open_syslog(log, sl, target + 7, err, errcap);
    }
    if (strncmp(target, "memory:", 7) == 0) {
        snprintf(err, errcap,
                 "\"memory:\" error logs are not supported: they need an "
                 "nginx built --with-debug and a debugger to read");
        return -1;
    }
    log->fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (log->fd == -1) {
        snprintf(err, errcap, "open() \"%s\" failed (%d: %s)", target, errno,
                 strerror(errno));
        return -1;
    }
    return 0;
}


/*
 * syslog:server=ADDR[:PORT][,facility=F][,severity=S][,tag=T][,nohostname]
 * (nginx's ngx_syslog_process_conf(); severity= only matters for access
 * logs and is accepted here as nginx does).
 */
static int
errlog_open_syslog(struct errlog *log, struct errlog_syslog *sl,
                   const char *params, char *err, size_t errcap)
{
    char server[512] = "";

    sl->facility = 23;
    sl->severity = ERRLOG_INFO;
    snprintf(sl->tag, sizeof(sl->tag), "nginx");
    sl->has_hostname = true;
    while (*params != '\0') {
        const char *const end = params + strcspn(params, ",");
        const size_t len = (size_t)(end - params);
        char word[512];
        bool is_known = false;

        if (len >= sizeof(word)) {
            snprintf(err, errcap, "syslog parameter too long");
            return -1;
        }
        memcpy(word, params, len);
        word[len] = '\0';
        if (strncmp(word, "server=", 7) == 0) {
            snprintf(server, sizeof(server), "%s", word + 7);
            is_known = server[0] != '\0';
        } else if (strncmp(word, "facility=", 9) == 0) {
            for (size_t i = 0; i < sizeof(errlog_facilities) /
                                       sizeof(errlog_facilities[0]);
                 i++) {
                if (strcmp(word + 9, errlog_facilities[i]) == 0) {
                    sl->facility = (unsigned)i;
                    is_known = true;
                }
            }
            if (!is_known) {
                snprintf(err, errcap, "unknown syslog facility \"%s\"",
                         word + 9);
                return -1;
            }
        } else if (strncmp(word, "severity=", 9) == 0) {
            const int sev = errlog_level_parse(word + 9);

            is_known = sev != -1;
            sl->severity = is_known ? (unsigned)sev : sl->severity;
            if (!is_known) {
                snprintf(err, errcap, "unknown syslog severity \"%s\"",
                         word + 9);
                return -1;
            }
        } else if (strncmp(word, "tag=", 4) == 0) {
            const size_t tlen = strlen(word + 4);

            /* nginx: at most 32 characters of [A-Za-z0-9_]. */
            if (tlen > 32) {
                snprintf(err, errcap, "syslog tag length exceeds 32");
                return -1;
            }
            for (size_t i = 0; i < tlen; i++) {
                const unsigned char ch = (unsigned char)word[4 + i];

                if (!isalnum(ch) && ch != '_') {
                    snprintf(err, errcap,
                             "syslog \"tag\" only allows alphanumeric "
                             "characters and underscore");
                    return -1;
                }
            }
            memcpy(sl->tag, word + 4, tlen + 1);
            is_known = true;
        } else if (strcmp(word, "nohostname") == 0) {
            sl->has_hostname = false;
            is_known = true;
        }
        if (!is_known) {
            snprintf(err, errcap, "unknown syslog parameter \"%s\"", word);
            return -1;
        }
        params = *end == ',' ? end + 1 : end;
    }
    if (server[0] == '\0') {
        snprintf(err, errcap, "no syslog server specified");
        return -1;
    }
    log->fd = errlog_syslog_connect(server, err, errcap);
    if (log->fd == -1) {
        return -1;
    }
    log->syslog = sl;
    return 0;
}


/* A datagram socket connected to ADDR[:PORT] (514) or unix:PATH. */
static int
errlog_syslog_connect(const char *server, char *err, size_t errcap)
{
    struct addrinfo hints = {0};
    struct addrinfo *res = NULL;
    char host[512];
    const char *port = "514";
    int fd;

    if (strncmp(server, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        if (strlen(server + 5) >= sizeof(sun.sun_path)) {
            snprintf(err, errcap, "path \"%s\" is too long", server + 5);
            return -1;
        }
        strcpy(sun.sun_path, server + 5);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd == -1 ||
            connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
            snprintf(err, errcap, "connect() to \"%s\" failed (%d: %s)",
                     server, errno, strerror(errno));
            if (fd != -1) {
                close(fd);
            }
            return -1;
        }
        return fd;
    }
    snprintf(host, sizeof(host), "%s", server);
    if (host[0] == '[') {
        char *const close_br = strchr(host, ']');

        if (close_br == NULL) {
            snprintf(err, errcap, "invalid syslog server \"%s\"", server);
            return -1;
        }
        *close_br = '\0';
        if (close_br[1] == ':') {
            port = close_br + 2;
        }
        memmove(host, host + 1, strlen(host + 1) + 1);
    } else {
        char *const colon = strrchr(host, ':');

        if (colon != NULL) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
        snprintf(err, errcap, "host not found in syslog server \"%s\"",
                 server);
        return -1;
    }
    fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd == -1 || connect(fd, res->ai_addr, res->ai_addrlen) == -1) {
        snprintf(err, errcap, "connect() to \"%s\" failed (%d: %s)", server,
                 errno, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}


int
errlog_open_append(const char *path, uid_t owner, const char **what)
{
    struct stat st;
    const int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

    *what = "open()";
    if (fd == -1 || owner == (uid_t)-1) {
        return fd;
    }
    /* On the descriptor: the file changed is the one written to. */
    if (fstat(fd, &st) == -1) {
        *what = "fstat()";
    } else if (st.st_uid != owner && fchown(fd, owner, (gid_t)-1) == -1) {
        *what = "fchown()";
    } else if ((st.st_mode & (S_IRUSR | S_IWUSR)) != (S_IRUSR | S_IWUSR) &&
               fchmod(fd, (st.st_mode & 07777) | S_IRUSR | S_IWUSR) == -1) {
        *what = "fchmod()";
    } else {
        return fd;
    }
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
}


int
errlog_reopen(struct errlog *log, uid_t owner)
{
    const char *what = NULL;

    if (log->syslog != NULL || log->fd <= 2) {
        return 0;
    }

    const int fd = errlog_open_append(log->path, owner, &what);

    if (fd == -1) {
        errlog_write(log, ERRLOG_ALERT, 0, "%s \"%s\" failed (%d: %s)", what,
                     log->path, errno, strerror(errno));
        return -1;
    }
    /* Same descriptor number: every holder of it writes to the new file. */
    if (dup2(fd, log->fd) == -1) {
        const int err = errno;
        close(fd);
        errlog_write(log, ERRLOG_ALERT, 0, "dup2() for \"%s\" failed (%d: %s)",
                     log->path, err, strerror(err));
        return -1;
    }
    close(fd);
    return 0;
}
