/* SPDX-License-Identifier: MIT */
/*
 * Access log. A line is rendered from its format's template with values
 * escaped (escape=default turns every client byte outside printable ASCII,
 * '"' and '\' into \xHH, so an SNI can never forge a line), then appended
 * to the file's buffer or written at once. Each write(2) carries whole
 * lines only.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/units.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "stream/core.h"
#include "stream/log.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"


#define LOG_LINE_MAX 8192 /* longer lines are cut */

/* nginx's stream docs name this format; used when access_log names none. */
#define LOG_DEFAULT_FORMAT                                                     \
    "$remote_addr [$time_local] $protocol $status $bytes_sent "                \
    "$bytes_received $session_time"


static void log_file_flush(struct stream_log_file *f);
static void log_flush_timer(struct loop_timer *t);
static struct stream_log_format *log_format_find(struct stream_conf *conf,
                                                 const char *name);
static const char *log_format_add(struct conf_ctx *cf, struct stream_conf *conf,
                                  const char *name, enum str_escape esc,
                                  const char *text);


static struct loop *log_loop;


void
log_start(struct loop *l)
{
    log_loop = l;
}


static struct stream_log_format *
log_format_find(struct stream_conf *conf, const char *name)
{
    for (struct stream_log_format *f = conf->formats; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}


static const char *
log_format_add(struct conf_ctx *cf, struct stream_conf *conf, const char *name,
               enum str_escape esc, const char *text)
{
    struct stream_log_format *f = arena_alloc(cf->arena, sizeof(*f));
    char err[256];

    if (f == NULL) {
        return "out of memory";
    }
    f->name = name;
    f->escape = esc;
    if (tmpl_compile(cf->arena, text, strlen(text), vars_resolve, conf, &f->t,
                     err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    f->next = conf->formats;
    conf->formats = f;
    return NULL;
}


const char *
log_format_set(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    enum str_escape esc = STR_ESCAPE_DEFAULT;
    size_t first = 2;
    size_t total = 0;
    char *text;

    (void)cmd;
    (void)conf;
    if (log_format_find(st->conf, n->args[1]) != NULL) {
        return conf_msg(cf, "duplicate \"log_format\" name \"%s\"", n->args[1]);
    }
    if (strncmp(n->args[2], "escape=", 7) == 0) {
        const char *e = n->args[2] + 7;
        if (strcmp(e, "default") == 0) {
            esc = STR_ESCAPE_DEFAULT;
        } else if (strcmp(e, "json") == 0) {
            esc = STR_ESCAPE_JSON;
        } else if (strcmp(e, "none") == 0) {
            esc = STR_ESCAPE_NONE;
        } else {
            return conf_msg(cf, "unknown log format escaping \"%s\"", e);
        }
        first = 3;
        if (n->nargs == 3) {
            return conf_msg(cf, "invalid number of arguments in \"log_format\" "
                                "directive");
        }
    }
    /* The format is the concatenation of the remaining arguments. */
    for (size_t i = first; i < n->nargs; i++) {
        total += strlen(n->args[i]);
    }
    text = arena_alloc(cf->arena, total + 1);
    if (text == NULL) {
        return "out of memory";
    }
    for (size_t i = first, at = 0; i < n->nargs; i++) {
        const size_t len = strlen(n->args[i]);
        memcpy(text + at, n->args[i], len);
        at += len;
    }
    return log_format_add(cf, st->conf, n->args[1], esc, text);
}


const char *
log_access_set(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_settings *set = conf;
    struct stream_access_log *al;
    struct stream_access_log **tail;
    struct stream_log_file *file;
    struct stream_log_format *fmt = NULL;
    int64_t buffer = 0;
    int64_t flush = 0;
    size_t i = 2;

    (void)cmd;
    if (strcmp(n->args[1], "off") == 0) {
        if (n->nargs != 2) {
            return conf_msg(cf, "invalid parameter \"%s\"", n->args[2]);
        }
        set->access_log_off = true;
        set->access_log_set = true;
        set->access_logs = NULL;
        return NULL;
    }
    if (n->nargs > 2 && strchr(n->args[2], '=') == NULL) {
        fmt = log_format_find(st->conf, n->args[2]);
        if (fmt == NULL) {
            return conf_msg(cf, "unknown log format \"%s\"", n->args[2]);
        }
        i = 3;
    }
    if (fmt == NULL) {
        fmt = log_format_find(st->conf, "basic");
        if (fmt == NULL) {
            const char *rv = log_format_add(
                cf, st->conf, "basic", STR_ESCAPE_DEFAULT, LOG_DEFAULT_FORMAT);
            if (rv != NULL) {
                return rv;
            }
            fmt = st->conf->formats;
        }
    }
    for (; i < n->nargs; i++) {
        const char *p = n->args[i];
        if (strncmp(p, "buffer=", 7) == 0) {
            if (units_parse_size(p + 7, strlen(p + 7), &buffer) == -1 ||
                buffer < 1) {
                return conf_msg(cf, "invalid buffer size \"%s\"", p + 7);
            }
        } else if (strncmp(p, "flush=", 6) == 0) {
            if (units_parse_msec(p + 6, strlen(p + 6), &flush) == -1 ||
                flush < 1) {
                return conf_msg(cf, "invalid flush time \"%s\"", p + 6);
            }
        } else {
            return conf_msg(cf, "invalid parameter \"%s\"", p);
        }
    }
    if (flush > 0 && buffer == 0) {
        buffer = 64 * 1024; /* nginx: flush= implies a 64k buffer */
    }
    for (file = st->conf->log_files; file != NULL; file = file->next) {
        if (strcmp(file->path, n->args[1]) == 0) {
            break;
        }
    }
    if (file == NULL) {
        file = arena_alloc(cf->arena, sizeof(*file));
        if (file == NULL) {
            return "out of memory";
        }
        file->path = n->args[1];
        file->fd =
            open(file->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (file->fd == -1) {
            return conf_msg(cf, "open() \"%s\" failed (%d: %s)", file->path,
                            errno, strerror(errno));
        }
        loop_timer_init(&file->flush_timer, log_flush_timer, file);
        file->next = st->conf->log_files;
        st->conf->log_files = file;
    }
    if (buffer > 0 && file->buf == NULL) {
        file->buf = malloc((size_t)buffer);
        if (file->buf == NULL) {
            return "out of memory";
        }
        file->cap = (size_t)buffer;
        file->flush_ms = flush;
    }
    al = arena_alloc(cf->arena, sizeof(*al));
    if (al == NULL) {
        return "out of memory";
    }
    al->file = file;
    al->format = fmt;
    if (set->access_log_off) {
        return NULL; /* `off` at this level wins, as in nginx */
    }
    set->access_log_set = true;
    tail = &set->access_logs;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = al;
    return NULL;
}


static void
log_file_flush(struct stream_log_file *f)
{
    size_t done = 0;

    while (done < f->len) {
        const ssize_t n = write(f->fd, f->buf + done, f->len - done);
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "write() to \"%s\" failed "
                         "(%d: %s)",
                         f->path, errno, strerror(errno));
            break;
        }
        done += (size_t)n;
    }
    f->len = 0;
    if (log_loop != NULL) {
        loop_timer_cancel(log_loop, &f->flush_timer);
    }
}


static void
log_flush_timer(struct loop_timer *t)
{
    log_file_flush(t->data);
}


void
log_session(struct session *s)
{
    const struct stream_settings *set = &s->server->set;
    char line[LOG_LINE_MAX];

    if (set->access_log_off) {
        return;
    }
    for (const struct stream_access_log *al = set->access_logs; al != NULL;
         al = al->next) {
        struct stream_log_file *f = al->file;
        size_t len;

        vars_reset();
        len = vars_render(s, &al->format->t, true, al->format->escape, line,
                          sizeof(line) - 1);
        line[len++] = '\n';
        if (f->cap == 0) {
            if (write(f->fd, line, len) == -1) {
                errlog_write(NULL, ERRLOG_ALERT, 0,
                             "write() to \"%s\" failed "
                             "(%d: %s)",
                             f->path, errno, strerror(errno));
            }
            continue;
        }
        if (f->len + len > f->cap) {
            log_file_flush(f);
        }
        if (len > f->cap) {
            if (write(f->fd, line, len) == -1) {
                errlog_write(NULL, ERRLOG_ALERT, 0,
                             "write() to \"%s\" failed "
                             "(%d: %s)",
                             f->path, errno, strerror(errno));
            }
            continue;
        }
        memcpy(f->buf + f->len, line, len);
        f->len += len;
        if (f->flush_ms > 0 && log_loop != NULL &&
            !loop_timer_armed(&f->flush_timer)) {
            loop_timer_set(log_loop, &f->flush_timer, f->flush_ms);
        }
    }
}


void
log_flush_all(struct stream_conf *conf)
{
    for (struct stream_log_file *f = conf->log_files; f != NULL; f = f->next) {
        if (f->len > 0) {
            log_file_flush(f);
        }
    }
}


void
log_files_close(struct stream_conf *conf)
{
    log_flush_all(conf);
    for (struct stream_log_file *f = conf->log_files; f != NULL; f = f->next) {
        if (log_loop != NULL) {
            loop_timer_cancel(log_loop, &f->flush_timer);
        }
        free(f->buf);
        f->buf = NULL;
        if (f->fd >= 0) {
            close(f->fd);
            f->fd = -1;
        }
    }
}


void
log_files_reopen(struct stream_conf *conf)
{
    for (struct stream_log_file *f = conf->log_files; f != NULL; f = f->next) {
        int fd;

        if (f->len > 0) {
            log_file_flush(f);
        }
        fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0, "open() \"%s\" failed (%d: %s)",
                         f->path, errno, strerror(errno));
            continue;
        }
        /* Same descriptor number, so nothing else needs to change. */
        if (dup2(fd, f->fd) == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "dup2() for \"%s\" failed "
                         "(%d: %s)",
                         f->path, errno, strerror(errno));
        }
        close(fd);
    }
}
