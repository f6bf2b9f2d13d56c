/* SPDX-License-Identifier: MIT */
/*
 * snirelay: a TLS-passthrough proxy that routes by SNI, configured in
 * nginx's stream{} syntax. Command line, config load, hand-off to serving.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "log/errlog.h"
#include "process/master.h"
#include "stream/core.h"
#include "stream/stream.h"


#define SNIRELAY_VERSION "0.1.0"


extern const char default_conf_text[];


static void main_usage(FILE *out);
static int main_write_pid(const char *path);
static int main_signal(const struct stream_conf *conf, const char *name);


static void
main_usage(FILE *out)
{
    fprintf(out, "snirelay version: snirelay/" SNIRELAY_VERSION "\n"
                 "Usage: snirelay [-hvVtT] [-s signal] [-c filename]\n\n"
                 "Options:\n"
                 "  -?,-h         : this help\n"
                 "  -v            : show version and exit\n"
                 "  -V            : show version and build options and exit\n"
                 "  -t            : test configuration and exit\n"
                 "  -T            : test configuration, dump it and exit\n"
                 "  -s signal     : send signal to the master process: stop, "
                 "quit, reopen, reload\n"
                 "  -c filename   : set configuration file (default: the "
                 "embedded default config)\n");
}


static int
main_write_pid(const char *path)
{
    char text[32];
    const int len = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    if (fd == -1 || write(fd, text, (size_t)len) != len) {
        fprintf(stderr, "snirelay: [emerg] open() \"%s\" failed (%d: %s)\n",
                path, errno, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}


/* -s reload|quit|stop|reopen: signals the master named by the pid file. */
static int
main_signal(const struct stream_conf *conf, const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {
        {"reload", SIGHUP},
        {"quit", SIGQUIT},
        {"stop", SIGTERM},
        {"reopen", SIGUSR1},
    };
    char text[32] = "";
    FILE *f;
    long pid;

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (strcmp(name, sigs[i].name) != 0) {
            continue;
        }
        if (conf->pid_path == NULL) {
            fprintf(stderr, "snirelay: [error] no \"pid\" file in the "
                            "configuration: cannot find the master\n");
            return 1;
        }
        f = fopen(conf->pid_path, "r");
        if (f == NULL || fgets(text, sizeof(text), f) == NULL) {
            fprintf(stderr,
                    "snirelay: [error] open() \"%s\" failed "
                    "(%d: %s)\n",
                    conf->pid_path, errno, strerror(errno));
            if (f != NULL) {
                fclose(f);
            }
            return 1;
        }
        fclose(f);
        pid = strtol(text, NULL, 10);
        if (pid <= 0) {
            fprintf(stderr,
                    "snirelay: [error] invalid PID number \"%s\" in "
                    "\"%s\"\n",
                    text, conf->pid_path);
            return 1;
        }
        if (kill((pid_t)pid, sigs[i].sig) == -1) {
            fprintf(stderr, "snirelay: [error] kill(%ld, %d) failed (%d: %s)\n",
                    pid, sigs[i].sig, errno, strerror(errno));
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "snirelay: invalid option: \"-s %s\"\n", name);
    return 1;
}


int
main(int argc, char **argv)
{
    const char *path = NULL;
    bool test = false;
    bool dump = false;
    const char *signal_name = NULL;
    struct conf_err err = {{0}};
    struct conf_tree *tree;
    struct stream_conf *conf;
    int rc;
    char *pid_path;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(a, "-t") == 0) {
            test = true;
        } else if (strcmp(a, "-T") == 0) {
            test = true;
            dump = true;
        } else if (strcmp(a, "-v") == 0) {
            fprintf(stderr,
                    "snirelay version: snirelay/" SNIRELAY_VERSION "\n");
            return 0;
        } else if (strcmp(a, "-V") == 0) {
            fprintf(stderr,
                    "snirelay version: snirelay/" SNIRELAY_VERSION "\n"
                    "built with %s\nconfigure arguments: none; modules: "
                    "stream core, ssl_preread, map, upstream (round-robin, "
                    "hash, least_conn, random), log\n",
                    __VERSION__);
            return 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "-?") == 0) {
            main_usage(stdout);
            return 0;
        } else if (strcmp(a, "-s") == 0 && i + 1 < argc) {
            signal_name = argv[++i];
        } else {
            fprintf(stderr, "snirelay: invalid option: \"%s\"\n", a);
            main_usage(stderr);
            return 1;
        }
    }

    if (path != NULL) {
        tree = conf_tree_load(path, &err);
    } else {
        path = "<embedded default config>";
        tree = conf_tree_load_text(path, default_conf_text,
                                   strlen(default_conf_text), &err);
    }
    conf = tree != NULL ? stream_conf_build(tree, path, &err) : NULL;
    if (conf == NULL) {
        fprintf(stderr, "snirelay: [emerg] %s\n", err.msg);
        if (test) {
            fprintf(stderr, "snirelay: configuration file %s test failed\n",
                    path);
        }
        return 1;
    }
    if (signal_name != NULL) {
        rc = main_signal(conf, signal_name);
        stream_conf_free(conf);
        return rc;
    }
    if (test) {
        fprintf(stderr,
                "snirelay: the configuration file %s syntax is ok\n"
                "snirelay: configuration file %s test is successful\n",
                path, path);
        if (dump) {
            fflush(stderr);
            conf_tree_dump(conf->tree, stdout);
        }
        stream_conf_free(conf);
        return 0;
    }

    if (stream_conf_open_listeners(conf, &err) == -1) {
        fprintf(stderr, "snirelay: [emerg] %s\n", err.msg);
        stream_conf_free(conf);
        return 1;
    }
    if (conf->daemon == 1) {
        if (daemon(1, 0) == -1) {
            fprintf(stderr, "snirelay: [emerg] daemon() failed (%d: %s)\n",
                    errno, strerror(errno));
            stream_conf_free(conf);
            return 1;
        }
    }
    if (conf->pid_path != NULL && main_write_pid(conf->pid_path) == -1) {
        stream_conf_free(conf);
        return 1;
    }
    errlog_set_default(&conf->errlog);
    /* The pid file outlives conf: the master may reload into another. */
    pid_path = conf->pid_path != NULL ? strdup(conf->pid_path) : NULL;
    rc = master_run(path, conf);
    if (pid_path != NULL) {
        unlink(pid_path);
        free(pid_path);
    }
    return rc;
}
