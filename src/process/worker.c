/* SPDX-License-Identifier: MIT */
/*
 * One process, one loop. Signals arrive through a signalfd read by the loop,
 * so no handler runs inside library code.
 */

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "event/loop.h"
#include "log/errlog.h"
#include "process/worker.h"
#include "stream/guard.h"
#include "stream/log.h"
#include "stream/resolve.h"
#include "stream/session.h"
#include "stream/stream.h"


static void worker_signal(struct loop_io *io, uint32_t events);


struct worker {
    struct loop *loop;
    struct loop_io sig;
};


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
        case SIGQUIT:
            errlog_write(NULL, ERRLOG_NOTICE, 0, "signal %u received, exiting",
                         si.ssi_signo);
            loop_stop(w->loop);
            break;
        default:
            break;
        }
    }
}


int
worker_run(struct stream_conf *conf)
{
    struct worker w = {0};
    sigset_t set;
    int sfd;
    int rc = 0;
    char err[256];

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    w.loop = loop_new();
    if (sfd == -1 || w.loop == NULL) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "event loop set-up failed (%d: %s)",
                     errno, strerror(errno));
        return 1;
    }
    session_set_loop(w.loop);
    log_start(w.loop);
    loop_io_init(&w.sig, sfd, worker_signal, &w);
    loop_io_set(w.loop, &w.sig, LOOP_READ);
    guard_init(conf);
    if (resolve_open_all(conf, w.loop, err, sizeof(err)) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "%s", err);
        rc = 1;
        goto done;
    }
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        if (session_listen_start(w.loop, ls) == -1) {
            errlog_write(NULL, ERRLOG_EMERG, 0, "listening on %s failed",
                         ls->text);
            rc = 1;
            goto done;
        }
    }
    errlog_write(NULL, ERRLOG_NOTICE, 0, "snirelay started");
    if (loop_run(w.loop) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "epoll_wait() failed (%d: %s)",
                     errno, strerror(errno));
        rc = 1;
    }
done:
    for (struct stream_listen *ls = conf->listens; ls != NULL; ls = ls->next) {
        session_listen_stop(w.loop, ls);
    }
    session_close_all();
    resolve_close_all(conf);
    log_flush_all(conf);
    loop_io_del(w.loop, &w.sig);
    close(sfd);
    loop_free(w.loop);
    log_start(NULL);
    return rc;
}
