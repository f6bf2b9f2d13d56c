/* SPDX-License-Identifier: MIT */
/*
 * Loading one configuration generation the way the command line asked.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "log/errlog.h"
#include "process/cycle.h"
#include "stream/core.h"
#include "stream/stream.h"


/* conf/default.conf, compiled in by the Makefile. */
extern const char default_conf_text[];


static int cycle_open_default_log(const struct cycle_opts *o,
                                  struct stream_conf *conf,
                                  struct conf_err *err);


struct stream_conf *
cycle_load(const struct cycle_opts *o, struct conf_err *err)
{
    struct conf_tree *tree;
    struct stream_conf *conf;

    if (o->conf_path != NULL) {
        tree = conf_tree_load_with(o->conf_path, NULL, 0, o->globals, err);
    } else {
        tree = conf_tree_load_with(CYCLE_DEFAULT_NAME, default_conf_text,
                                   strlen(default_conf_text), o->globals,
                                   err);
    }
    if (tree == NULL) {
        return NULL;
    }
    conf = stream_conf_build(tree, o->conf_path != NULL ? o->conf_path
                                                        : CYCLE_DEFAULT_NAME,
                             err);
    if (conf == NULL) {
        return NULL;
    }
    if (cycle_open_default_log(o, conf, err) == -1) {
        stream_conf_free(conf);
        return NULL;
    }
    return conf;
}


void
cycle_emerg(const struct cycle_opts *o, const char *msg)
{
    fprintf(stderr, "snirelay: [emerg] %s\n", msg);
    if (o->error_log != NULL && strcmp(o->error_log, "stderr") != 0) {
        struct errlog log = {
            .fd = -1, .level = ERRLOG_EMERG, .path = o->error_log};

        log.fd = open(o->error_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                      0644);
        if (log.fd != -1) {
            errlog_write(&log, ERRLOG_EMERG, 0, "%s", msg);
            close(log.fd);
        }
    }
}


/*
 * With -e FILE and no main-context error_log, FILE is the main error log
 * (nginx's default log, which -e replaces).
 */
static int
cycle_open_default_log(const struct cycle_opts *o, struct stream_conf *conf,
                       struct conf_err *err)
{
    if (o->error_log == NULL || conf->has_errlog ||
        strcmp(o->error_log, "stderr") == 0) {
        return 0;
    }
    conf->errlog.fd =
        open(o->error_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (conf->errlog.fd == -1) {
        snprintf(err->msg, sizeof(err->msg), "open() \"%s\" failed (%d: %s)",
                 o->error_log, errno, strerror(errno));
        conf->errlog.fd = 2;
        return -1;
    }
    conf->errlog.path = o->error_log;
    conf->has_errlog = true;
    return 0;
}
