/* SPDX-License-Identifier: MIT */
/*
 * The worker's sandbox (`sandbox on`, the default): once a worker has set
 * itself up it keeps only what serving needs. no_new_privs; a seccomp
 * allow-list of system calls (libseccomp), where any other call traps and
 * the worker dies of SIGSYS after noting the call in a shared report the
 * master reads when it reaps it; and, where the kernel has Landlock, file
 * access limited to writing in the log files' directories and reading the
 * configuration's files.
 */
#ifndef SNIRELAY_PROCESS_SANDBOX_H
#define SNIRELAY_PROCESS_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct stream_conf;

/*
 * What a worker's SIGSYS handler leaves for the master: one per worker
 * slot of the master, in memory shared with every worker. pid is the
 * worker that wrote it (0: nothing written), so a stale record is never
 * taken for a later worker's.
 */
struct sandbox_report {
    volatile int32_t pid;   /* the worker that trapped; 0: none */
    volatile int32_t nr;    /* the forbidden call's number */
    volatile uint32_t arch; /* its AUDIT_ARCH_* */
};

/*
 * Maps n zeroed reports shared with the processes forked later. Returns
 * them (free with sandbox_reports_free()), or NULL with errno set.
 */
struct sandbox_report *sandbox_reports_new(size_t n);

/* Unmaps what sandbox_reports_new(n) returned; NULL is a no-op. */
void sandbox_reports_free(struct sandbox_report *r, size_t n);

/*
 * Writes into buf (cap bytes, NUL-terminated) why worker pid died of
 * SIGSYS: "forbidden system call NAME (NR)" from r when pid wrote it,
 * else a text saying the call is unknown. Clears r. Master side.
 */
void sandbox_report_take(struct sandbox_report *r, pid_t pid, char *buf,
                         size_t cap);

/*
 * Says once, at notice level, when conf asks for the sandbox and the
 * kernel has no Landlock (workers then get only seccomp). Master side,
 * on each generation.
 */
void sandbox_check_kernel(const struct stream_conf *conf);

/*
 * Enters the sandbox when conf says `sandbox on`: no_new_privs, Landlock
 * rules for conf's log directories and configuration files (when the
 * kernel has Landlock), then the seccomp allow-list. report is where this
 * worker's SIGSYS handler notes a forbidden call (may be NULL). Returns 0
 * (also for `sandbox off`), or -1 after logging why: the worker must not
 * serve unsandboxed when asked to be sandboxed.
 */
int sandbox_enter(const struct stream_conf *conf,
                  struct sandbox_report *report);

/* The number of system calls the allow-list names (for messages, tests). */
size_t sandbox_syscall_count(void);

#endif
