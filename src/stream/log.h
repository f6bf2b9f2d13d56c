/* SPDX-License-Identifier: MIT */
/*
 * The access log: log_format compiled once into a template, access_log
 * files shared by path, lines written after each session through an
 * optional buffer (buffer=, flush=).
 */
#ifndef SNIRELAY_STREAM_LOG_H
#define SNIRELAY_STREAM_LOG_H

#include <sys/types.h>

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct loop;
struct session;
struct stream_conf;

const char *log_format_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);
const char *log_access_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);

/* Gives the log writer the loop its flush= timers run on. */
void log_start(struct loop *l);

/* Writes s's access-log lines (none when access_log is off or unset). */
void log_session(struct session *s);

/* Writes out every buffered line of conf's files. */
void log_flush_all(struct stream_conf *conf);

/*
 * Reopens every access-log file at its path (SIGUSR1); a new file is given
 * to owner unless it is (uid_t)-1 (errlog_open_append()). A file that
 * cannot be reopened is logged and the old one stays in use.
 */
void log_files_reopen(struct stream_conf *conf, uid_t owner);

/* Flushes and closes conf's access-log files. */
void log_files_close(struct stream_conf *conf);

#endif
