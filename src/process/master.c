/* SPDX-License-Identifier: MIT */
/*
 * Master process. It never touches a session: it waits for signals with
 * sigtimedwait() and acts on them.
 *
 *   HUP   reload: build the new generation beside the old; if it fails the
 *         old one keeps serving. Listening sockets whose address stays are
 *         handed over as they are (the same descriptors), so no connection
 *         is refused; new workers start, then old ones are told to finish
 *         their sessions (QUIT) and exit.
 *   QUIT  graceful stop: workers finish their sessions, then all exit.
 *   TERM, INT  fast stop.
 *   USR1  reopen log files (logrotate), in the master and every worker.
 *   CHLD  a worker that exits unasked is logged and replaced; one the
 *         sandbox killed (SIGSYS) is logged with the forbidden call.
 *
 * Under a service manager that asks ($NOTIFY_SOCKET, systemd Type=notify)
 * it says READY=1 once the listeners are open and the workers started,
 * RELOADING=1 then READY=1 around each reload (failed or not), and
 * STOPPING=1 on a stop signal.
 */

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "log/errlog.h"
#include "net/notify.h"
#include "process/cycle.h"
#include "process/master.h"
#include "process/sandbox.h"
#include "process/worker.h"
#include "stream/core.h"
#include "stream/limit_conn.h"
#include "stream/stats.h"
#include "stream/upstream_zone.h"
#include "stream/log.h"
#include "stream/stream.h"
#include "stream/upstream.h"


#define MASTER_MAX_WORKERS 256
#define MASTER_STOP_GRACE_MS 10000   /* fast stop: then SIGKILL */
#define MASTER_RESPAWN_DELAY_MS 1000 /* a worker that died young waits */


struct master_worker {
    pid_t pid;                /* 0: free slot */
    int slot;                 /* index in its generation */
    struct stream_conf *conf; /* generation it serves */
    bool retiring;            /* told to quit (reload or stop) */
    int64_t started_ms;
    int64_t respawn_at_ms; /* >0: slot waits to be respawned */
};

struct master {
    const struct cycle_opts *opts; /* how to load a generation (reload) */
    struct stream_conf *conf;      /* current generation */
    struct stream_conf *old[16];   /* generations still draining */
    size_t nold;
    struct master_worker workers[MASTER_MAX_WORKERS];
    struct sandbox_report *reports; /* shared; one per workers[] entry */
    bool stopping;
    int stop_signal;
    int64_t stop_deadline_ms;
};


static int master_spawn(struct master *m, struct master_worker *w,
                        struct stream_conf *conf, int slot);
static void master_start_workers(struct master *m);
static void master_reap_shared(struct master *m, pid_t pid);
static void master_reap(struct master *m);
static void master_log_exit(struct master *m, struct master_worker *w,
                            pid_t pid, int status);
static void master_reload(struct master *m);
static int master_reload_generation(struct master *m);
static void master_notify(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void master_signal_workers(struct master *m, int sig, bool all);
static int master_live_workers(const struct master *m);
static void master_release_old(struct master *m);
static int master_worker_count(const struct stream_conf *conf);
static uid_t master_log_owner(const struct stream_conf *conf);


static int
master_worker_count(const struct stream_conf *conf)
{
    int n = conf->worker_processes;

    if (n == 0) {
        const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (int)cpus : 1;
    }
    return n > MASTER_MAX_WORKERS ? MASTER_MAX_WORKERS : n;
}


/*
 * Who log files reopened by the master belong to: `user`, when workers
 * switch to it (the master is root), so that they can reopen the files
 * after it; otherwise (uid_t)-1, as they are.
 */
static uid_t
master_log_owner(const struct stream_conf *conf)
{
    const struct passwd *pw;

    if (conf->user == NULL || geteuid() != 0) {
        return (uid_t)-1;
    }
    pw = getpwnam(conf->user);
    if (pw == NULL) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "getpwnam(\"%s\") failed: reopened logs stay root's",
                     conf->user);
        return (uid_t)-1;
    }
    return pw->pw_uid;
}


static int
master_spawn(struct master *m, struct master_worker *w,
             struct stream_conf *conf, int slot)
{
    const pid_t master_pid = getpid(); /* the worker checks it is ours */
    struct sandbox_report *report = &m->reports[w - m->workers];
    pid_t pid;

    report->pid = 0;
    pid = fork();
    if (pid == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0, "fork() failed (%d: %s)", errno,
                     strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /*
         * Signals stay blocked (the worker reads them from a signalfd): one
         * sent right after fork must not find the default action.
         * Only this worker's generation stays open in the child.
         */
        for (size_t i = 0; i < m->nold; i++) {
            if (m->old[i] != conf) {
                stream_conf_close_fds(m->old[i]);
            }
        }
        if (m->conf != conf) {
            stream_conf_close_fds(m->conf);
        }
        metrics_bind((unsigned)(w - m->workers), (int)getpid());
        _exit(worker_run(conf, slot, master_pid, report));
    }
    w->pid = pid;
    w->slot = slot;
    w->conf = conf;
    w->retiring = false;
    w->started_ms = clock_now_ms();
    w->respawn_at_ms = 0;
    errlog_write(NULL, ERRLOG_NOTICE, 0, "start worker process %d", (int)pid);
    return 0;
}


static void
master_start_workers(struct master *m)
{
    const int n = master_worker_count(m->conf);
    int slot = 0;

    for (size_t i = 0; i < MASTER_MAX_WORKERS && slot < n; i++) {
        if (m->workers[i].pid == 0 && m->workers[i].respawn_at_ms == 0) {
            if (master_spawn(m, &m->workers[i], m->conf, slot) == 0) {
                slot++;
            } else {
                break;
            }
        }
    }
}


static int
master_live_workers(const struct master *m)
{
    int n = 0;

    for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
        n += m->workers[i].pid != 0;
    }
    return n;
}


static void
master_signal_workers(struct master *m, int sig, bool all)
{
    for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct master_worker *w = &m->workers[i];
        if (w->pid != 0 && (all || !w->retiring)) {
            kill(w->pid, sig);
        }
    }
}


/* Frees drained generations: those no worker serves any more. */
static void
master_release_old(struct master *m)
{
    size_t kept = 0;

    for (size_t i = 0; i < m->nold; i++) {
        bool used = false;
        for (size_t k = 0; k < MASTER_MAX_WORKERS; k++) {
            used = used ||
                   (m->workers[k].pid != 0 && m->workers[k].conf == m->old[i]);
        }
        if (used) {
            m->old[kept++] = m->old[i];
        } else {
            stream_conf_free(m->old[i]);
        }
    }
    m->nold = kept;
}


/*
 * Gives back what a dead worker held in shared zones: its counts are
 * tagged with its pid, in every generation's zones (a zone taken over by
 * a newer generation is reaped through that one).
 */
static void
master_reap_shared(struct master *m, pid_t pid)
{
    uint64_t freed = limit_conn_reap(m->conf, (int)pid);
    uint64_t conns = upstream_zone_reap(m->conf, (int)pid);

    for (size_t i = 0; i < m->nold; i++) {
        freed += limit_conn_reap(m->old[i], (int)pid);
        conns += upstream_zone_reap(m->old[i], (int)pid);
    }
    if (freed > 0) {
        errlog_write(NULL, ERRLOG_NOTICE, 0,
                     "gave back %llu limit_conn count(s) held by worker "
                     "process %d",
                     (unsigned long long)freed, (int)pid);
    }
    if (conns > 0) {
        errlog_write(NULL, ERRLOG_NOTICE, 0,
                     "gave back %llu upstream connection(s) held by worker "
                     "process %d",
                     (unsigned long long)conns, (int)pid);
    }
}


static void
master_reap(struct master *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
            struct master_worker *w = &m->workers[i];
            if (w->pid != pid) {
                continue;
            }
            w->pid = 0;
            master_reap_shared(m, pid);
            metrics_fold((unsigned)i);
            master_log_exit(m, w, pid, status);
            if (!w->retiring && !m->stopping && w->conf == m->conf) {
                /* Unasked: replace it (later if it died young). */
                const int64_t now = clock_now_ms();
                metrics_master_add(METRIC_RESTARTS, 0, 1);
                if (now - w->started_ms < MASTER_RESPAWN_DELAY_MS) {
                    w->respawn_at_ms = now + MASTER_RESPAWN_DELAY_MS;
                } else if (master_spawn(m, w, m->conf, w->slot) == -1) {
                    w->respawn_at_ms = now + MASTER_RESPAWN_DELAY_MS;
                }
            }
            break;
        }
    }
    master_release_old(m);
}


static void
master_log_exit(struct master *m, struct master_worker *w, pid_t pid,
                int status)
{
    char why[160];

    if (!WIFSIGNALED(status)) {
        errlog_write(NULL, ERRLOG_NOTICE, 0,
                     "worker process %d exited with code %d", (int)pid,
                     WEXITSTATUS(status));
        return;
    }
    if (WTERMSIG(status) == SIGSYS) {
        /* Alert even when retiring: the sandbox lacks a call. */
        sandbox_report_take(&m->reports[w - m->workers], pid, why, sizeof(why));
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "worker process %d exited on signal %d (SIGSYS): %s",
                     (int)pid, SIGSYS, why);
        return;
    }
    errlog_write(NULL, w->retiring ? ERRLOG_NOTICE : ERRLOG_ALERT, 0,
                 "worker process %d exited on signal %d", (int)pid,
                 WTERMSIG(status));
}


/*
 * A reload, framed for the service manager: RELOADING=1 with the
 * monotonic time systemd asks of it, then READY=1 whatever the outcome
 * (a refused reload leaves the old generation serving).
 */
static void
master_reload(struct master *m)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    master_notify("RELOADING=1\nMONOTONIC_USEC=%llu",
                  (unsigned long long)now.tv_sec * 1000000ULL +
                      (unsigned long long)now.tv_nsec / 1000ULL);
    if (master_reload_generation(m) == 0) {
        master_notify("READY=1\nSTATUS=serving (reloaded)");
    } else {
        master_notify("READY=1\nSTATUS=reload failed: the old configuration "
                      "keeps serving");
    }
}


/*
 * Loads the configuration again and, if it loads, hands over to it.
 * Returns 0, or -1 when the old generation stays (logged).
 */
static int
master_reload_generation(struct master *m)
{
    struct conf_err err = {{0}};
    struct stream_conf *conf;

    errlog_write(NULL, ERRLOG_NOTICE, 0, "reconfiguring");
    conf = cycle_load(m->opts, &err);
    if (conf == NULL) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "%s", err.msg);
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "reload failed: the old "
                     "configuration keeps serving");
        metrics_master_add(METRIC_RELOADS, 1, 1);
        return -1;
    }
    if (stream_conf_take_listeners(conf, m->conf, &err) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "%s", err.msg);
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "reload failed: the old "
                     "configuration keeps serving");
        metrics_master_add(METRIC_RELOADS, 1, 1);
        stream_conf_free(conf);
        return -1;
    }
    if (m->nold == sizeof(m->old) / sizeof(m->old[0])) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "too many generations draining; "
                     "reload refused");
        metrics_master_add(METRIC_RELOADS, 1, 1);
        stream_conf_give_back_listeners(conf, m->conf);
        stream_conf_free(conf);
        return -1;
    }
    /* Only an accepted generation takes the live zones (a refused one
     * would unmap them when freed). */
    limit_conn_take_zones(conf, m->conf);
    upstream_take_resolved(conf, m->conf);
    /* Old workers retire after the new ones exist: no gap in accepting. */
    for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
        if (m->workers[i].pid != 0) {
            m->workers[i].retiring = true;
        }
        m->workers[i].respawn_at_ms = 0;
    }
    m->old[m->nold++] = m->conf;
    m->conf = conf;
    errlog_set_default(&conf->errlog);
    sandbox_check_kernel(conf);
    stats_conf_register(conf);
    metrics_master_add(METRIC_RELOADS, 0, 1);
    metrics_master_add(METRIC_GENERATION, 0, 1);
    master_start_workers(m);
    for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
        struct master_worker *w = &m->workers[i];
        if (w->pid != 0 && w->retiring) {
            kill(w->pid, SIGQUIT);
        }
    }
    /*
     * The old generation's master copies of listeners that went away; a
     * unix-domain one's file goes with it, as in nginx.
     */
    stream_conf_retire_listeners(m->old[m->nold - 1], true);
    master_release_old(m);
    return 0;
}


/*
 * Tells the service manager fmt's state (sd_notify(3)); a no-op without
 * $NOTIFY_SOCKET. A failure is logged and changes nothing else: the
 * manager then decides (Type=notify times out on a missing READY=1).
 */
static void
master_notify(const char *fmt, ...)
{
    char state[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(state, sizeof(state), fmt, ap);
    va_end(ap);
    switch (notify_send(state)) {
    case NOTIFY_SENT:
        errlog_write(NULL, ERRLOG_DEBUG, 0, "sd_notify: %s", state);
        break;
    case NOTIFY_NO_SOCKET:
        break;
    case NOTIFY_FAILED:
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "sd_notify to \"%s\" failed (%d: %s)",
                     getenv("NOTIFY_SOCKET"), errno, strerror(errno));
        break;
    }
}


int
master_run(const struct cycle_opts *opts, struct stream_conf *conf)
{
    struct master *m = calloc(1, sizeof(*m));
    sigset_t set;
    int rc = 0;

    if (m == NULL) {
        return 1;
    }
    m->opts = opts;
    m->conf = conf;
    m->reports = sandbox_reports_new(MASTER_MAX_WORKERS);
    if (m->reports == NULL) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "mmap() failed (%d: %s)", errno,
                     strerror(errno));
        stream_conf_retire_listeners(m->conf, false);
        stream_conf_free(m->conf);
        free(m);
        return 1;
    }
    sandbox_check_kernel(conf);
    if (metrics_open() == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "mmap() failed (%d: %s): no metrics are counted", errno,
                     strerror(errno));
    }
    stats_conf_register(conf);
    metrics_master_set(METRIC_GENERATION, 1);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    clock_update();
    master_start_workers(m);
    if (master_live_workers(m) == 0) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "no worker process could start");
        stream_conf_retire_listeners(m->conf, false);
        stream_conf_free(m->conf);
        sandbox_reports_free(m->reports, MASTER_MAX_WORKERS);
        free(m);
        return 1;
    }
    master_notify("READY=1\nMAINPID=%d\nSTATUS=serving", (int)getpid());

    for (;;) {
        const struct timespec tick = {0, 200 * 1000 * 1000};
        siginfo_t si;
        const int sig = sigtimedwait(&set, &si, &tick);

        clock_update();
        switch (sig) {
        case SIGCHLD:
            master_reap(m);
            break;
        case SIGHUP:
            if (!m->stopping) {
                master_reload(m);
            }
            break;
        case SIGUSR1:
            errlog_write(NULL, ERRLOG_NOTICE, 0, "reopening logs");
            stream_conf_reopen_logs(m->conf, master_log_owner(m->conf));
            master_signal_workers(m, SIGUSR1, true);
            break;
        case SIGQUIT:
        case SIGTERM:
        case SIGINT:
            if (!m->stopping) {
                errlog_write(NULL, ERRLOG_NOTICE, 0,
                             "signal %d received, "
                             "%s",
                             sig, sig == SIGQUIT ? "shutting down" : "exiting");
                /*
                 * Stop listening at once, as nginx: nobody will accept.
                 * Unix-domain socket files are removed now, as nginx does.
                 */
                stream_conf_retire_listeners(m->conf, false);
                for (size_t i = 0; i < m->nold; i++) {
                    stream_conf_retire_listeners(m->old[i], false);
                }
                m->stopping = true;
                master_notify("STOPPING=1");
                m->stop_signal = sig;
                m->stop_deadline_ms = clock_now_ms() + MASTER_STOP_GRACE_MS;
            }
            master_signal_workers(m, sig == SIGQUIT ? SIGQUIT : SIGTERM, true);
            break;
        default:
            break;
        }
        master_reap(m);
        if (m->stopping) {
            if (master_live_workers(m) == 0) {
                break;
            }
            if (m->stop_signal != SIGQUIT &&
                clock_now_ms() > m->stop_deadline_ms) {
                master_signal_workers(m, SIGKILL, true);
            }
            continue;
        }
        /* Slots waiting after a young death. */
        for (size_t i = 0; i < MASTER_MAX_WORKERS; i++) {
            struct master_worker *w = &m->workers[i];
            if (w->pid == 0 && w->respawn_at_ms > 0 &&
                clock_now_ms() >= w->respawn_at_ms) {
                if (master_spawn(m, w, m->conf, w->slot) == -1) {
                    w->respawn_at_ms = clock_now_ms() + MASTER_RESPAWN_DELAY_MS;
                }
            }
        }
    }
    errlog_write(NULL, ERRLOG_NOTICE, 0, "exit");
    for (size_t i = 0; i < m->nold; i++) {
        stream_conf_free(m->old[i]);
    }
    errlog_set_default(NULL);
    stream_conf_free(m->conf);
    sandbox_reports_free(m->reports, MASTER_MAX_WORKERS);
    free(m);
    return rc;
}
