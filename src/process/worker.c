/* SPDX-License-Identifier: MIT */
/*
 * Worker process. Signals arrive through a signalfd read by the loop, so no
 * handler runs inside library code:
 *   TERM, INT  stop now (sessions are closed and logged);
 *   QUIT       stop accepting, finish the sessions, then exit; after
 *              worker_shutdown_timeout the rest are closed;
 *   USR1       reopen log files.
 */

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "event/loop.h"
#include "log/errlog.h"
#include "net/listen.h"
#include "net/pipe_pool.h"
#include "process/sandbox.h"
#include "process/worker.h"
#include "stream/compat.h"
#include "stream/core.h"
#include "stream/guard.h"
#include "stream/log.h"
#include "stream/resolve.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/upstream.h"


#define WORKER_FD_RESERVE 16 /* descriptors kept free of sessions */


struct worker {
    struct loop *loop;
    struct stream_conf *conf;
    struct loop_io sig;
    struct loop_timer shutdown; /* worker_shutdown_timeout */
    bool draining;
};


static void worker_signal(struct loop_io *io, uint32_t events);
static void worker_idle(void *data);
static void worker_shutdown_timer(struct loop_timer *t);
static int worker_drop_privileges(const struct stream_conf *conf);
static void worker_keep_net_raw(void);
static void worker_pick_sockets(struct stream_conf *conf, int slot);
static uint64_t worker_fd_budget(uint64_t max, uint64_t *pipes);
static void worker_pipes_init(const struct stream_conf *conf, uint64_t max,
                              uint64_t pipes);


static void
worker_idle(void *data)
{
    struct worker *w = data;

    if (w->draining) {
        loop_stop(w->loop);
    }
}


static void
worker_shutdown_timer(struct loop_timer *t)
{
    struct worker *w = t->data;

    errlog_write(NULL, ERRLOG_NOTICE, 0,
                 "worker_shutdown_timeout: closing "
                 "%llu session(s)",
                 (unsigned long long)session_count());
    loop_stop(w->loop);
}


static void
worker_signal(struct loop_io *io, uint32_t events)
{
    struct worker *w = io->data;
    struct signalfd_siginfo si;

    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            loop_stop(w->loop);
            break;
        case SIGQUIT:
            if (w->draining) {
                break;
            }
            w->draining = true;
            errlog_write(NULL, ERRLOG_NOTICE, 0, "gracefully shutting down");
            session_stop_accepting();
            stream_conf_close_listeners(w->conf);
            if (session_count() == 0) {
                loop_stop(w->loop);
            } else if (w->conf->worker_shutdown_timeout_ms > 0 &&
                       loop_timer_set(w->loop, &w->shutdown,
                                      w->conf->worker_shutdown_timeout_ms) ==
                           -1) {
                /* The stop must not outlast worker_shutdown_timeout. */
                errlog_write(NULL, ERRLOG_ALERT, 0,
                             "adding a timer failed (%d: %s): closing "
                             "%llu session(s) now",
                             errno, strerror(errno),
                             (unsigned long long)session_count());
                loop_stop(w->loop);
            }
            break;
        case SIGUSR1:
            /* The master gave new files to `user` already. */
            stream_conf_reopen_logs(w->conf, (uid_t)-1);
            break;
        default:
            break;
        }
    }
}


/* Keeps this worker's socket of each listener and closes the others. */
static void
worker_pick_sockets(struct stream_conf *conf, int slot)
{
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        ls->fd = listen_fds_keep(ls->fds, ls->nfds, (size_t)slot);
    }
}


/*
 * After setuid() with PR_SET_KEEPCAPS, keeps CAP_NET_RAW (and only it)
 * effective, for IP_TRANSPARENT (nginx does the same). A failure is
 * logged; proxy_bind ... transparent then fails per session.
 */
static void
worker_keep_net_raw(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

    memset(data, 0, sizeof(data));
    data[CAP_TO_INDEX(CAP_NET_RAW)].effective = CAP_TO_MASK(CAP_NET_RAW);
    data[CAP_TO_INDEX(CAP_NET_RAW)].permitted = CAP_TO_MASK(CAP_NET_RAW);
    if (syscall(SYS_capset, &hdr, data) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0, "capset() failed (%d: %s)", errno,
                     strerror(errno));
    }
}


static int
worker_drop_privileges(const struct stream_conf *conf)
{
    const struct passwd *pw;
    const struct group *gr = NULL;

    if (conf->worker_rlimit_nofile > 0) {
        const struct rlimit rl = {(rlim_t)conf->worker_rlimit_nofile,
                                  (rlim_t)conf->worker_rlimit_nofile};
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "setrlimit(RLIMIT_NOFILE, %d) "
                         "failed (%d: %s)",
                         conf->worker_rlimit_nofile, errno, strerror(errno));
        }
    }
    if (conf->user == NULL || geteuid() != 0) {
        return 0;
    }
    pw = getpwnam(conf->user);
    if (pw == NULL) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "getpwnam(\"%s\") failed",
                     conf->user);
        return -1;
    }
    if (conf->group != NULL) {
        gr = getgrnam(conf->group);
        if (gr == NULL) {
            errlog_write(NULL, ERRLOG_EMERG, 0, "getgrnam(\"%s\") failed",
                         conf->group);
            return -1;
        }
    }
    /* proxy_bind ... transparent needs CAP_NET_RAW after setuid (nginx). */
    if (conf->transparent && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "prctl(PR_SET_KEEPCAPS, 1) failed (%d: %s)", errno,
                     strerror(errno));
    }
    if (setgroups(0, NULL) == -1 ||
        setgid(gr != NULL ? gr->gr_gid : pw->pw_gid) == -1 ||
        setuid(pw->pw_uid) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "dropping privileges to \"%s\" "
                     "failed (%d: %s)",
                     conf->user, errno, strerror(errno));
        return -1;
    }
    if (setuid(0) != -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "privileges could be regained");
        return -1;
    }
    if (conf->transparent) {
        worker_keep_net_raw();
    }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    return 0;
}


/*
 * Caps max sessions so that their two descriptors each always fit under
 * RLIMIT_NOFILE: at the cap accepting pauses and clients wait in the
 * backlog, rather than being accepted and then failing for want of an
 * upstream socket. *pipes gets how many splice() pipes (two descriptors
 * each) may be open: a quarter of the sessions (HAProxy's maxpipes), out
 * of what the sessions leave, so a pipe never takes a session's descriptor.
 */
static uint64_t
worker_fd_budget(uint64_t max, uint64_t *pipes)
{
    struct rlimit rl;
    DIR *d = opendir("/proc/self/fd");
    uint64_t open_fds = 0;
    uint64_t budget;
    uint64_t spare;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY) {
        if (d != NULL) {
            closedir(d);
        }
        *pipes = max / 4 > 2 ? max / 4 : 2;
        return max;
    }
    if (d != NULL) {
        while (readdir(d) != NULL) {
            open_fds++;
        }
        closedir(d);
    }
    /* What is open now, plus room for DNS sockets and log reopening. */
    open_fds += WORKER_FD_RESERVE;
    budget = rl.rlim_cur > open_fds ? (rl.rlim_cur - open_fds) / 2 : 1;
    if (budget < max) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "%llu sessions at most: the "
                     "open files limit (%llu) is lower than "
                     "worker_connections asks for",
                     (unsigned long long)(budget > 0 ? budget : 1),
                     (unsigned long long)rl.rlim_cur);
        max = budget > 0 ? budget : 1;
    }
    *pipes = max / 4 > 2 ? max / 4 : 2;
    spare = rl.rlim_cur > open_fds + 2 * max
                ? (rl.rlim_cur - open_fds - 2 * max) / 2
                : 0;
    if (spare < *pipes) {
        *pipes = spare;
    }
    return max;
}


/*
 * The bytes a worker's enlarged pipes may hold: a quarter of the user's
 * fs.pipe-user-pages-soft shared among the workers, since past it every
 * new pipe of the user gets 8 KiB (read here, before the sandbox; the file
 * is world-readable). Unreadable: the kernel's default, 16384 pages. 0
 * (no soft limit): the same as the default, to stay modest.
 */
static size_t
worker_pipe_grow_bytes(const struct stream_conf *conf)
{
    unsigned long long pages = 16384;
    long page = sysconf(_SC_PAGESIZE);
    int workers = conf->worker_processes;
    FILE *f = fopen("/proc/sys/fs/pipe-user-pages-soft", "re");

    if (f != NULL) {
        unsigned long long v;
        if (fscanf(f, "%llu", &v) == 1 && v > 0) {
            pages = v;
        }
        fclose(f);
    }
    if (workers <= 0) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        workers = cpus > 0 ? (int)cpus : 1;
    }
    if (page <= 0) {
        page = 4096;
    }
    return (size_t)(pages / 4 / (unsigned long long)workers *
                    (unsigned long long)page);
}


/*
 * Sizes the pipe pool: none when no server splices; a warning when some
 * would but the open files limit leaves no descriptor for a pipe.
 */
static void
worker_pipes_init(const struct stream_conf *conf, uint64_t max, uint64_t pipes)
{
    bool wanted = false;

    for (const struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        wanted = wanted || srv->set.proxy_splice;
    }
    if (!wanted) {
        pipe_pool_init(0);
        return;
    }
    if (pipes == 0) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "no descriptors left for splice() pipes next to %llu "
                     "sessions under the open files limit: relaying by copy "
                     "(raise worker_rlimit_nofile)",
                     (unsigned long long)max);
    }
    pipe_pool_init((size_t)pipes);
    pipe_pool_grow_limit(pipes > 0 ? worker_pipe_grow_bytes(conf) : 0);
}


int
worker_run(struct stream_conf *conf, int slot, pid_t master_pid,
           struct sandbox_report *report)
{
    struct worker w = {0};
    sigset_t set;
    int sfd;
    int rc = 0;
    char err[256];
    /* nginx counts both of a session's connections in worker_connections. */
    uint64_t max = conf->worker_connections > 1
                       ? (uint64_t)conf->worker_connections / 2
                       : 1;
    uint64_t pipes = 0; /* splice() pipes the descriptors leave room for */

    w.conf = conf;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "prctl(PR_SET_PDEATHSIG) failed (%d: %s)", errno,
                     strerror(errno));
        return 2;
    }
    /*
     * The signal is tied to the parent we have now: a master that died
     * between fork() and here sent none, and we were given to init.
     */
    if (getppid() != master_pid) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "master process %d exited before the worker started",
                     (int)master_pid);
        return 2;
    }
    worker_pick_sockets(conf, slot);
    /* Before the privileges go: a negative nice value needs root. */
    compat_worker_init(conf, slot);
    if (worker_drop_privileges(conf) == -1) {
        return 2;
    }
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    w.loop = loop_new();
    if (sfd == -1 || w.loop == NULL) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "event loop set-up failed (%d: %s)",
                     errno, strerror(errno));
        return 2;
    }
    log_start(w.loop);
    loop_io_init(&w.sig, sfd, worker_signal, &w);
    loop_timer_init(&w.shutdown, worker_shutdown_timer, &w);
    if (loop_io_set(w.loop, &w.sig, LOOP_READ) == -1) {
        /* A worker deaf to signals could never be stopped but by KILL. */
        errlog_write(NULL, ERRLOG_EMERG, 0, "epoll_ctl() failed (%d: %s)",
                     errno, strerror(errno));
        rc = 2;
        goto done;
    }
    session_on_idle(worker_idle, &w);
    guard_init(conf);
    if (resolve_open_all(conf, w.loop, err, sizeof(err)) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "%s", err);
        rc = 2;
        goto done;
    }
    max = worker_fd_budget(max, &pipes);
    worker_pipes_init(conf, max, pipes);
    /* Last: everything above opens files or needs rights it drops. */
    if (sandbox_enter(conf, report) == -1) {
        rc = 2;
        goto done;
    }
    if (upstream_resolve_start(conf, w.loop) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "adding the upstream resolve timers failed (%d: %s)",
                     errno, strerror(errno));
        rc = 2;
        goto done;
    }
    if (session_serve(w.loop, conf, max) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "accepting failed (%d: %s)", errno,
                     strerror(errno));
        rc = 2;
        goto done;
    }
    if (loop_run(w.loop) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "epoll_wait() failed (%d: %s)",
                     errno, strerror(errno));
        rc = 2;
    }
done:
    session_on_idle(NULL, NULL);
    session_close_all();
    pipe_pool_free();
    loop_timer_cancel(w.loop, &w.shutdown);
    upstream_resolve_stop(conf);
    resolve_close_all(conf);
    log_flush_all(conf);
    loop_io_del(w.loop, &w.sig);
    close(sfd);
    loop_free(w.loop);
    log_start(NULL);
    stream_conf_free(conf);
    return rc;
}
