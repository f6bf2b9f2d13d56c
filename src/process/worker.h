/* SPDX-License-Identifier: MIT */
/*
 * A worker process: one event loop serving one generation's listeners
 * until the master tells it to stop (TERM: now; QUIT: after its sessions).
 */
#ifndef SNIRELAY_PROCESS_WORKER_H
#define SNIRELAY_PROCESS_WORKER_H

#include <sys/types.h>

struct sandbox_report;
struct stream_conf;

/*
 * Serves conf as worker number slot (which reuseport socket is its own).
 * master_pid is the master that forked it (getpid() before fork()): the
 * worker ends when that process does, and does not start if it is already
 * gone. Drops privileges to conf's `user` when running as root, then
 * enters the sandbox (`sandbox on`), where a forbidden system call is
 * noted in report (may be NULL) for the master. Returns the process exit
 * status.
 */
int worker_run(struct stream_conf *conf, int slot, pid_t master_pid,
               struct sandbox_report *report);

#endif
