/* SPDX-License-Identifier: MIT */
/*
 * Access log. A line is rendered from its format's template with values
 * escaped (escape=default turns every client byte outside printable ASCII,
 * '"' and '\' into \xHH, so an SNI can never forge a line), then appended
 * to the file's buffer or written at once. Each write(2) carries whole
 * lines only; with gzip= each flush of the buffer is one gzip member
 * (RFC 1952 allows concatenated members; zcat reads them as one stream).
 *
 * A path with variables is rendered per session and the file opened for
 * that line, then closed, or kept in a small per-process cache when
 * open_log_file_cache is on (nginx's ngx_stream_log_script_write()).
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/units.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "stream/core.h"
#include "stream/log.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"


#define LOG_LINE_MAX 8192  /* longer lines are cut */
#define LOG_PATH_MAX 4096  /* a rendered path longer than this is refused */
#define LOG_CACHE_MAX 1024 /* open_log_file_cache max= is capped here */


/* One open file of the path cache (open_log_file_cache). */
struct log_cache_entry {
    char *path;        /* malloc'ed; NULL: free slot */
    int fd;            /* open for appending */
    int64_t opened_ms; /* when opened: reopened after valid= */
    int64_t used_ms;   /* last write: closed after inactive= */
};

/* nginx's stream docs name this format; used when access_log names none. */
#define LOG_DEFAULT_FORMAT                                                     \
    "$remote_addr [$time_local] $protocol $status $bytes_sent "                \
    "$bytes_received $session_time"


static void log_file_flush(struct stream_log_file *f);
static void log_file_write(struct stream_log_file *f, const char *data,
                           size_t len);
static int log_gzip_write(int fd, const char *data, size_t len, int level);
static void log_write_path(struct session *s,
                           const struct stream_access_log *al, const char *line,
                           size_t len);
static int log_cache_open(const struct stream_settings *set, const char *path,
                          bool *is_cached);
static void log_cache_close_all(void);
static const char *log_access_params(struct conf_ctx *cf,
                                     const struct conf_node *n, size_t i,
                                     struct stream_access_log *al,
                                     int64_t *buffer, int64_t *flush,
                                     int *gzip);
static void log_flush_timer(struct loop_timer *t);
static struct stream_log_format *log_format_find(struct stream_conf *conf,
                                                 const char *name);
static const char *log_format_add(struct conf_ctx *cf, struct stream_conf *conf,
                                  const char *name, enum str_escape esc,
                                  const char *text);


static struct loop *log_loop;
static struct log_cache_entry log_cache[LOG_CACHE_MAX];


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
    struct stream_log_file *file = NULL;
    struct stream_log_format *fmt = NULL;
    int64_t buffer = 0;
    int64_t flush = 0;
    int gzip = 0;
    size_t i = 2;
    const char *rv;

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
    al = arena_alloc(cf->arena, sizeof(*al));
    if (al == NULL) {
        return "out of memory";
    }
    if (n->nargs > 2 && strchr(n->args[2], '=') == NULL &&
        strcmp(n->args[2], "gzip") != 0) {
        fmt = log_format_find(st->conf, n->args[2]);
        if (fmt == NULL) {
            return conf_msg(cf, "unknown log format \"%s\"", n->args[2]);
        }
        i = 3;
    }
    if (fmt == NULL) {
        fmt = log_format_find(st->conf, "basic");
        if (fmt == NULL) {
            rv = log_format_add(cf, st->conf, "basic", STR_ESCAPE_DEFAULT,
                                LOG_DEFAULT_FORMAT);
            if (rv != NULL) {
                return rv;
            }
            fmt = st->conf->formats;
        }
    }
    rv = log_access_params(cf, n, i, al, &buffer, &flush, &gzip);
    if (rv != NULL) {
        return rv;
    }
    if (flush > 0 && buffer == 0) {
        buffer = 64 * 1024; /* nginx: flush= implies a 64k buffer */
    }
    if (strchr(n->args[1], '$') != NULL) {
        char err[256];

        if (buffer > 0) {
            return conf_msg(cf, "buffered logs cannot have variables in name");
        }
        al->path_t = arena_alloc(cf->arena, sizeof(*al->path_t));
        if (al->path_t == NULL) {
            return "out of memory";
        }
        if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]),
                         vars_resolve, st->conf, al->path_t, err,
                         sizeof(err)) != NULL) {
            return conf_msg(cf, "%s", err);
        }
    } else {
        for (file = st->conf->log_files; file != NULL; file = file->next) {
            if (strcmp(file->path, n->args[1]) == 0) {
                break;
            }
        }
    }
    if (strncmp(n->args[1], "syslog:", 7) == 0 && (buffer > 0 || gzip > 0)) {
        /* One datagram per line: nothing to buffer or compress. */
        return conf_msg(cf, "parameter \"%s\" is not supported with a "
                            "syslog: target (one datagram per line)",
                        gzip > 0 ? "gzip" : "buffer");
    }
    if (al->path_t == NULL && file == NULL &&
        strncmp(n->args[1], "syslog:", 7) == 0) {
        struct errlog target = {.fd = -1};
        char err[256];

        file = arena_alloc(cf->arena, sizeof(*file));
        if (file == NULL) {
            return "out of memory";
        }
        file->syslog = arena_alloc(cf->arena, sizeof(*file->syslog));
        if (file->syslog == NULL) {
            return "out of memory";
        }
        if (errlog_open(&target, file->syslog, n->args[1], err,
                        sizeof(err)) == -1) {
            return conf_msg(cf, "%s", err);
        }
        file->path = n->args[1];
        file->fd = target.fd;
        loop_timer_init(&file->flush_timer, log_flush_timer, file);
        file->next = st->conf->log_files;
        st->conf->log_files = file;
    }
    if (al->path_t == NULL && file == NULL) {
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
    if (buffer > 0 && file->buf != NULL &&
        (file->cap != (size_t)buffer || file->flush_ms != flush ||
         file->gzip_level != gzip)) {
        return conf_msg(cf,
                        "access_log \"%s\" already defined with conflicting "
                        "parameters",
                        n->args[1]);
    }
    if (buffer > 0 && file->buf == NULL) {
        file->buf = malloc((size_t)buffer);
        if (file->buf == NULL) {
            return "out of memory";
        }
        file->cap = (size_t)buffer;
        file->flush_ms = flush;
        file->gzip_level = gzip;
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


/*
 * The parameters of an access_log line from n->args[i] on: buffer=,
 * flush=, gzip[=LEVEL] (implies a 64k buffer, level 1 by default) and
 * if=CONDITION, with nginx's messages.
 */
static const char *
log_access_params(struct conf_ctx *cf, const struct conf_node *n, size_t i,
                  struct stream_access_log *al, int64_t *buffer, int64_t *flush,
                  int *gzip)
{
    struct core_state *st = cf->data;

    for (; i < n->nargs; i++) {
        const char *p = n->args[i];

        if (strncmp(p, "buffer=", 7) == 0) {
            if (units_parse_size(p + 7, strlen(p + 7), buffer) == -1 ||
                *buffer < 1) {
                return conf_msg(cf, "invalid buffer size \"%s\"", p + 7);
            }
        } else if (strncmp(p, "flush=", 6) == 0) {
            if (units_parse_msec(p + 6, strlen(p + 6), flush) == -1 ||
                *flush < 1) {
                return conf_msg(cf, "invalid flush time \"%s\"", p + 6);
            }
        } else if (strcmp(p, "gzip") == 0 || strncmp(p, "gzip=", 5) == 0) {
            int level = 1; /* nginx: Z_BEST_SPEED */

            if (*buffer == 0) {
                *buffer = 64 * 1024;
            }
            if (p[4] == '=' &&
                (units_parse_int(p + 5, strlen(p + 5), &level) == -1 ||
                 level < 1 || level > 9)) {
                return conf_msg(cf, "invalid compression level \"%s\"", p + 5);
            }
            *gzip = level;
        } else if (strncmp(p, "if=", 3) == 0) {
            char err[256];

            al->filter = arena_alloc(cf->arena, sizeof(*al->filter));
            if (al->filter == NULL) {
                return "out of memory";
            }
            if (tmpl_compile(cf->arena, p + 3, strlen(p + 3), vars_resolve,
                             st->conf, al->filter, err, sizeof(err)) != NULL) {
                return conf_msg(cf, "%s", err);
            }
        } else {
            return conf_msg(cf, "invalid parameter \"%s\"", p);
        }
    }
    return NULL;
}


static void
log_file_flush(struct stream_log_file *f)
{
    log_file_write(f, f->buf, f->len);
    f->len = 0;
    if (log_loop != NULL) {
        loop_timer_cancel(log_loop, &f->flush_timer);
    }
}


/* Writes len bytes of whole lines to f's file (one gzip member if gzip=). */
static void
log_file_write(struct stream_log_file *f, const char *data, size_t len)
{
    size_t done = 0;

    if (f->syslog != NULL) {
        errlog_syslog_send(f->fd, f->syslog, f->syslog->severity, data, len);
        return;
    }
    if (f->gzip_level > 0) {
        if (len > 0 && log_gzip_write(f->fd, data, len, f->gzip_level) == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "write() to \"%s\" failed "
                         "(%d: %s)",
                         f->path, errno, strerror(errno));
        }
        return;
    }
    while (done < len) {
        const ssize_t n = write(f->fd, data + done, len - done);
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
}


/*
 * Compresses data into one gzip member (deflate with a gzip wrapper:
 * windowBits 15 + 16) and writes it with one write(2). 0, or -1 with
 * errno set (ENOMEM when zlib fails).
 */
static int
log_gzip_write(int fd, const char *data, size_t len, int level)
{
    z_stream zs = {0};
    unsigned char *out;
    size_t cap;
    size_t done = 0;
    int rc;

    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        errno = ENOMEM;
        return -1;
    }
    cap = deflateBound(&zs, (uLong)len);
    out = malloc(cap);
    if (out == NULL) {
        deflateEnd(&zs);
        errno = ENOMEM;
        return -1;
    }
    zs.next_in = (unsigned char *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    rc = deflate(&zs, Z_FINISH);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        errno = ENOMEM;
        return -1;
    }
    while (done < zs.total_out) {
        const ssize_t n = write(fd, out + done, zs.total_out - done);

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            const int saved = errno;

            free(out);
            errno = saved;
            return -1;
        }
        done += (size_t)n;
    }
    free(out);
    return 0;
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
        if (al->filter != NULL) {
            const char *v = vars_eval(s, al->filter, &len);

            if (len == 0 || (len == 1 && v[0] == '0')) {
                continue;
            }
            vars_reset();
        }
        len = vars_render(s, &al->format->t, true, al->format->escape, line,
                          sizeof(line) - 1);
        line[len++] = '\n';
        if (al->path_t != NULL) {
            log_write_path(s, al, line, len);
            continue;
        }
        if (f->syslog != NULL) {
            log_file_write(f, line, len); /* one datagram per line */
            continue;
        }
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
            log_file_write(f, line, len);
            continue;
        }
        memcpy(f->buf + f->len, line, len);
        f->len += len;
        if (f->flush_ms > 0 && log_loop != NULL &&
            !loop_timer_armed(&f->flush_timer) &&
            loop_timer_set(log_loop, &f->flush_timer, f->flush_ms) == -1) {
            /* No line waits longer than flush=: without the timer, now. */
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "adding a timer failed (%d: %s): \"%s\" is "
                         "written now",
                         errno, strerror(errno), f->path);
            log_file_flush(f);
        }
    }
}


/*
 * Writes a line to the file al's path names for s. The rendered path may
 * hold bytes a client chose (an SNI): one with ".." in it, or empty, is
 * refused, so a line never lands outside the directories the config
 * names; O_CREAT makes no directory either.
 */
static void
log_write_path(struct session *s, const struct stream_access_log *al,
               const char *line, size_t len)
{
    const struct stream_settings *set = &s->server->set;
    char path[LOG_PATH_MAX];
    size_t plen;
    bool is_cached = false;
    int fd;

    vars_reset();
    plen =
        vars_render(s, al->path_t, false, STR_ESCAPE_NONE, path, sizeof(path));
    if (plen == 0 || plen >= sizeof(path) - 1 || strstr(path, "..") != NULL ||
        memchr(path, '\0', plen) != NULL) {
        session_log(s, ERRLOG_ERR, "access_log path \"%s\" refused",
                    plen == 0 ? "" : path);
        return;
    }
    fd = log_cache_open(set, path, &is_cached);
    if (fd == -1) {
        session_log(s, ERRLOG_ERR, "open() \"%s\" failed (%d: %s)", path, errno,
                    strerror(errno));
        return;
    }
    if (write(fd, line, len) == -1) {
        session_log(s, ERRLOG_ALERT, "write() to \"%s\" failed (%d: %s)", path,
                    errno, strerror(errno));
    }
    if (!is_cached) {
        close(fd);
    }
}


/*
 * An fd open for appending to path. With set's open_log_file_cache it is
 * kept (*is_cached): reused while used within inactive= and opened less
 * than valid= ago (so a rotated file is reopened), the least recently
 * used entry giving way when max= are open. min_uses= is accepted but
 * every file is cached from its first use. -1 with errno on failure.
 */
static int
log_cache_open(const struct stream_settings *set, const char *path,
               bool *is_cached)
{
    const int64_t now = clock_now_ms();
    const size_t max = set->log_cache_max < LOG_CACHE_MAX
                           ? (size_t)set->log_cache_max
                           : LOG_CACHE_MAX;
    struct log_cache_entry *lru = NULL;
    size_t used = 0;
    int fd;

    *is_cached = false;
    for (size_t i = 0; i < LOG_CACHE_MAX && max > 0; i++) {
        struct log_cache_entry *e = &log_cache[i];

        if (e->path == NULL) {
            continue;
        }
        if (now - e->used_ms > set->log_cache_inactive_ms ||
            now - e->opened_ms > set->log_cache_valid_ms) {
            close(e->fd);
            free(e->path);
            e->path = NULL;
            continue;
        }
        if (strcmp(e->path, path) == 0) {
            e->used_ms = now;
            *is_cached = true;
            return e->fd;
        }
        used++;
        if (lru == NULL || e->used_ms < lru->used_ms) {
            lru = e;
        }
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1 || max == 0) {
        return fd;
    }
    if (used >= max && lru != NULL) {
        close(lru->fd);
        free(lru->path);
        lru->path = NULL;
    }
    for (size_t i = 0; i < LOG_CACHE_MAX; i++) {
        struct log_cache_entry *e = &log_cache[i];

        if (e->path == NULL) {
            e->path = strdup(path);
            if (e->path == NULL) {
                return fd; /* not cached: the caller closes it */
            }
            e->fd = fd;
            e->opened_ms = now;
            e->used_ms = now;
            *is_cached = true;
            return fd;
        }
    }
    return fd;
}


/* Closes every cached file (reopen, exit): the next line reopens it. */
static void
log_cache_close_all(void)
{
    for (size_t i = 0; i < LOG_CACHE_MAX; i++) {
        if (log_cache[i].path != NULL) {
            close(log_cache[i].fd);
            free(log_cache[i].path);
            log_cache[i].path = NULL;
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
    log_cache_close_all();
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
log_files_reopen(struct stream_conf *conf, uid_t owner)
{
    log_cache_close_all();
    for (struct stream_log_file *f = conf->log_files; f != NULL; f = f->next) {
        const char *what = NULL;
        int fd;

        if (f->len > 0) {
            log_file_flush(f);
        }
        if (f->syslog != NULL) {
            continue; /* a socket: nothing to reopen */
        }
        fd = errlog_open_append(f->path, owner, &what);
        if (fd == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0, "%s \"%s\" failed (%d: %s)",
                         what, f->path, errno, strerror(errno));
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
