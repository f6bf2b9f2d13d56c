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
#include "core/version.h"
#include "process/cycle.h"
#include "process/master.h"
#include "stream/core.h"
#include "stream/stats.h"
#include "stream/stream.h"


/* What the command line asked for. */
struct main_args {
    struct cycle_opts load; /* -c, -g, -e */
    const char *prefix;     /* -p, or NULL: the current directory */
    const char *signal;     /* -s NAME, or NULL */
    bool test;              /* -t or -T */
    bool dump;              /* -T */
    bool quiet;             /* -q */
};

/*
 * The nginx stream modules, and whether snirelay has each: -V prints
 * --with-X for an optional module it has and --without-X for a default
 * module it lacks, so tools that read nginx's -V (Test::Nginx) see the
 * truth. Optional modules it lacks are not named at all, as nginx does.
 */
static const struct {
    const char *name;
    bool is_default; /* built by nginx unless --without-NAME */
    bool has;        /* snirelay has it */
} main_modules[] = {
    {"stream_ssl_preread_module", false, true},
    {"stream_realip_module", false, true},
    {"stream_access_module", true, true},
    {"stream_geo_module", true, true},
    {"stream_limit_conn_module", true, true},
    {"stream_map_module", true, true},
    {"stream_pass_module", true, false},
    {"stream_return_module", true, true},
    {"stream_set_module", true, true},
    {"stream_split_clients_module", true, true},
    {"stream_upstream_hash_module", true, true},
    {"stream_upstream_least_conn_module", true, true},
    {"stream_upstream_random_module", true, true},
    {"stream_upstream_zone_module", true, true},
    {"stream_upstream_least_time_module", true, false}, /* NGINX Plus */
};


static int main_parse_args(int argc, char **argv, struct main_args *a);
static const char *main_prefixed(const char *prefix, const char *path);
static void main_usage(FILE *out);
static void main_version(bool build);
static int main_write_pid(const char *path);
static int main_signal(const struct stream_conf *conf, const char *name);


int
main(int argc, char **argv)
{
    struct main_args a = {{0}, NULL, NULL, false, false, false};
    struct conf_err err = {{0}};
    struct stream_conf *conf;
    const char *name;
    int rc;
    char *pid_path;

    /* The metric families as a man(7) section, for snirelay(8). */
    if (argc == 2 && strcmp(argv[1], "--metrics-man") == 0) {
        stats_man(stdout);
        return 0;
    }
    rc = main_parse_args(argc, argv, &a);
    if (rc != -1) {
        return rc;
    }
    /*
     * Relative paths in the configuration (logs, pid, includes of a
     * relative -c) are taken from the prefix, as nginx takes them from -p.
     */
    if (a.prefix != NULL && chdir(a.prefix) == -1) {
        fprintf(stderr, "snirelay: [emerg] chdir() \"%s\" failed (%d: %s)\n",
                a.prefix, errno, strerror(errno));
        return 1;
    }
    if (a.load.conf_path != NULL) {
        a.load.conf_path = main_prefixed(a.prefix, a.load.conf_path);
    }
    if (a.load.error_log != NULL && strcmp(a.load.error_log, "stderr") != 0) {
        a.load.error_log = main_prefixed(a.prefix, a.load.error_log);
    }
    name = a.load.conf_path != NULL ? a.load.conf_path : CYCLE_DEFAULT_NAME;
    conf = cycle_load(&a.load, &err);
    if (conf == NULL) {
        cycle_emerg(&a.load, err.msg);
        if (a.test) {
            fprintf(stderr, "snirelay: configuration file %s test failed\n",
                    name);
        }
        return 1;
    }
    if (a.signal != NULL) {
        rc = main_signal(conf, a.signal);
        stream_conf_free(conf);
        return rc;
    }
    if (a.test) {
        if (!a.quiet) {
            fprintf(stderr,
                    "snirelay: the configuration file %s syntax is ok\n"
                    "snirelay: configuration file %s test is successful\n",
                    name, name);
        }
        if (a.dump) {
            fflush(stderr);
            conf_tree_dump(conf->tree, stdout);
        }
        stream_conf_free(conf);
        return 0;
    }

    if (stream_conf_open_listeners(conf, &err) == -1) {
        cycle_emerg(&a.load, err.msg);
        stream_conf_free(conf);
        return 1;
    }
    if (conf->daemon == 1) {
        if (daemon(1, 0) == -1) {
            fprintf(stderr, "snirelay: [emerg] daemon() failed (%d: %s)\n",
                    errno, strerror(errno));
            stream_conf_retire_listeners(conf, false);
            stream_conf_free(conf);
            return 1;
        }
    }
    if (conf->pid_path != NULL && main_write_pid(conf->pid_path) == -1) {
        stream_conf_retire_listeners(conf, false);
        stream_conf_free(conf);
        return 1;
    }
    errlog_set_default(&conf->errlog);
    /* The pid file outlives conf: the master may reload into another. */
    pid_path = conf->pid_path != NULL ? strdup(conf->pid_path) : NULL;
    rc = master_run(&a.load, conf);
    if (pid_path != NULL) {
        unlink(pid_path);
        free(pid_path);
    }
    return rc;
}


/*
 * nginx's option syntax: flags may be grouped (-tq), and an option's value
 * may follow it in the same word (-cFILE) or in the next. Returns -1 to go
 * on, or the exit status (after -h, -v, -V or a usage error).
 */
static int
main_parse_args(int argc, char **argv, struct main_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *p = argv[i];

        if (*p++ != '-' || *p == '\0') {
            fprintf(stderr, "snirelay: invalid option: \"%s\"\n", argv[i]);
            return 1;
        }
        while (*p != '\0') {
            const char opt = *p++;
            const char **value = NULL;

            switch (opt) {
            case '?':
            case 'h':
                main_usage(stdout);
                return 0;
            case 'v':
                main_version(false);
                return 0;
            case 'V':
                main_version(true);
                return 0;
            case 't':
                a->test = true;
                continue;
            case 'T':
                a->test = true;
                a->dump = true;
                continue;
            case 'q':
                a->quiet = true;
                continue;
            case 'c':
                value = &a->load.conf_path;
                break;
            case 'g':
                value = &a->load.globals;
                break;
            case 'e':
                value = &a->load.error_log;
                break;
            case 'p':
                value = &a->prefix;
                break;
            case 's':
                value = &a->signal;
                break;
            default:
                fprintf(stderr, "snirelay: invalid option: \"%c\"\n", opt);
                main_usage(stderr);
                return 1;
            }
            if (*p != '\0') {
                *value = p;
            } else if (i + 1 < argc) {
                *value = argv[++i];
            } else {
                fprintf(stderr, "snirelay: option \"-%c\" requires %s\n", opt,
                        opt == 'c'   ? "file name"
                        : opt == 'g' ? "parameter"
                        : opt == 'e' ? "file name"
                        : opt == 'p' ? "directory name"
                                     : "parameter");
                return 1;
            }
            break;
        }
    }
    return -1;
}


/*
 * path as seen from the prefix: messages name the file nginx would, e.g.
 * "/tmp/t/nginx.conf" for -p /tmp/t/ -c nginx.conf. The cwd is already the
 * prefix, so relative paths open the same file either way.
 */
static const char *
main_prefixed(const char *prefix, const char *path)
{
    static char buf[2][4096];
    static int next;
    char *const out = buf[next];

    if (prefix == NULL || path[0] == '/') {
        return path;
    }

    const size_t len = strlen(prefix);
    const bool has_slash = len > 0 && prefix[len - 1] == '/';
    const int n = snprintf(out, sizeof(buf[0]), "%s%s%s", prefix,
                           has_slash ? "" : "/", path);

    if (n < 0 || (size_t)n >= sizeof(buf[0])) {
        return path;
    }
    next = (next + 1) % 2;
    return out;
}


static void
main_usage(FILE *out)
{
    fprintf(out,
            "snirelay version: snirelay/" SNIRELAY_VERSION "\n"
            "Usage: snirelay [-?hvVtTq] [-s signal] [-p prefix]\n"
            "                [-e filename] [-c filename] [-g directives]\n\n"
            "Options:\n"
            "  -?,-h         : this help\n"
            "  -v            : show version and exit\n"
            "  -V            : show version and configure options then exit\n"
            "  -t            : test configuration and exit\n"
            "  -T            : test configuration, dump it and exit\n"
            "  -q            : suppress non-error messages during "
            "configuration testing\n"
            "  -s signal     : send signal to the master process: stop, "
            "quit, reopen, reload\n"
            "  -p prefix     : set prefix path (default: the current "
            "directory)\n"
            "  -e filename   : set error log file (default: stderr)\n"
            "  -c filename   : set configuration file (default: the "
            "embedded default config)\n"
            "  -g directives : set global directives out of configuration "
            "file\n"
            "  --metrics-man : print the metric families as a man page "
            "section and exit\n");
}


/* -v, and with build, -V's build details and nginx-style module list. */
static void
main_version(bool build)
{
    fprintf(stderr, "snirelay version: snirelay/" SNIRELAY_VERSION "\n");
    if (!build) {
        return;
    }
    fprintf(stderr, "built with %s\nconfigure arguments: --with-stream",
            __VERSION__);
    for (size_t i = 0; i < sizeof(main_modules) / sizeof(main_modules[0]);
         i++) {
        if (main_modules[i].has && !main_modules[i].is_default) {
            fprintf(stderr, " --with-%s", main_modules[i].name);
        } else if (!main_modules[i].has && main_modules[i].is_default) {
            fprintf(stderr, " --without-%s", main_modules[i].name);
        }
    }
    /* No http, mail or stream TLS termination: a passthrough proxy. */
    fprintf(stderr, " --without-http --without-http-cache\n");
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
