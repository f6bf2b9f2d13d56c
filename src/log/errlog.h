/* SPDX-License-Identifier: MIT */
/*
 * The error log: nginx's levels and line format,
 *   2026/11/26 14:00:00 [error] 1234#0: *5 message
 * Before a config is loaded, and when none names a file, lines go to
 * stderr.
 */
#ifndef SNIRELAY_LOG_ERRLOG_H
#define SNIRELAY_LOG_ERRLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum errlog_level {
    ERRLOG_EMERG,
    ERRLOG_ALERT,
    ERRLOG_CRIT,
    ERRLOG_ERR,
    ERRLOG_WARN,
    ERRLOG_NOTICE,
    ERRLOG_INFO,
    ERRLOG_DEBUG,
};

/* Where a syslog target sends lines (nginx's syslog:server=...). */
struct errlog_syslog {
    unsigned facility;  /* 0..23; local7 (23) by default */
    unsigned severity;  /* severity=: access logs only; info (6) default */
    char tag[33];       /* "nginx" by default, as nginx */
    bool has_hostname;  /* false with nohostname */
};

/*
 * One error_log target. A context may name several: they are chained
 * through also, and a line goes to each whose level lets it through.
 */
struct errlog {
    int fd;                  /* O_APPEND file, 2 for stderr, or a
                                connected datagram socket for syslog */
    enum errlog_level level; /* lines above this level are dropped */
    const char *path;        /* for messages and reopen; "stderr" */
    struct errlog *next;     /* the owner's list of logs it opened */
    struct errlog *also;     /* the next target of the same context */
    struct errlog_syslog *syslog; /* set for a syslog: target */
};

/* Parses an nginx level name ("warn", "error", ...); -1 when unknown. */
int errlog_level_parse(const char *name);

/*
 * Opens log for an error_log target: "stderr", "syslog:server=ADDR[:PORT]
 * [,facility=F][,tag=T][,nohostname]" (ADDR may be unix:PATH; UDP port 514
 * by default) or a file path (created, appended to). log->level, also and
 * next are left alone; syslog settings go in *sl, which must live as long
 * as log. Returns 0, or -1 with a message (nginx's text) in err.
 */
int errlog_open(struct errlog *log, struct errlog_syslog *sl,
                const char *target, char *err, size_t errcap);

/*
 * Sends msg (len bytes, a trailing newline dropped) as one syslog datagram
 * on fd with sl's header and the given severity (0..7). Failures are
 * dropped: a log line has nowhere else to go.
 */
void errlog_syslog_send(int fd, const struct errlog_syslog *sl,
                        unsigned severity, const char *msg, size_t len);

/* Sets the log that errlog_write(NULL, ...) uses; NULL means stderr. */
void errlog_set_default(struct errlog *log);

/*
 * Writes one line at level to log (NULL: the default log) when the level
 * is enabled. conn_id > 0 adds nginx's "*N " session prefix.
 */
void errlog_write(struct errlog *log, enum errlog_level level, uint64_t conn_id,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* True when log (NULL: default) or a target chained to it would write a
 * line at level. */
int errlog_enabled(const struct errlog *log, enum errlog_level level);

/*
 * Opens the log file at path for appending (created 0644 when missing).
 * With owner other than (uid_t)-1 the file is given to that user, and made
 * readable and writable by it, so that workers running as `user` can open
 * it too (nginx's ngx_reopen_files() does the same). Returns the fd, or -1
 * with errno set and *what naming the call that failed: "open()",
 * "fchown()" or "fchmod()".
 */
int errlog_open_append(const char *path, uid_t owner, const char **what);

/*
 * Reopens log's file at its path (nothing to do for stderr and syslog)
 * onto the same descriptor (SIGUSR1, after logrotate renamed it), given to
 * owner as errlog_open_append() says. Returns 0, or -1 (logged to the old
 * file, which stays in use).
 */
int errlog_reopen(struct errlog *log, uid_t owner);

#endif
