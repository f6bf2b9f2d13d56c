/* SPDX-License-Identifier: MIT */
/*
 * The error log: nginx's levels and line format,
 *   2026/11/26 14:00:00 [error] 1234#0: *5 message
 * Before a config is loaded, and when none names a file, lines go to
 * stderr.
 */
#ifndef SNIRELAY_LOG_ERRLOG_H
#define SNIRELAY_LOG_ERRLOG_H

#include <stdint.h>

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

struct errlog {
    int fd;                  /* open with O_APPEND; 2 means stderr */
    enum errlog_level level; /* lines above this level are dropped */
    const char *path;        /* for messages and reopen; "stderr" */
    struct errlog *next;     /* the owner's list of logs it opened */
};

/* Parses an nginx level name ("warn", "error", ...); -1 when unknown. */
int errlog_level_parse(const char *name);

/* Sets the log that errlog_write(NULL, ...) uses; NULL means stderr. */
void errlog_set_default(struct errlog *log);

/*
 * Writes one line at level to log (NULL: the default log) when the level
 * is enabled. conn_id > 0 adds nginx's "*N " session prefix.
 */
void errlog_write(struct errlog *log, enum errlog_level level, uint64_t conn_id,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* True when log (NULL: default) would write a line at level. */
int errlog_enabled(const struct errlog *log, enum errlog_level level);

/*
 * Reopens log's file at its path onto the same descriptor (SIGUSR1, after
 * logrotate renamed it). Returns 0, or -1 (logged to the old file).
 */
int errlog_reopen(struct errlog *log);

#endif
