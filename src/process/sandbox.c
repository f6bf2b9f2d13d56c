/* SPDX-License-Identifier: MIT */
/*
 * The worker's sandbox; see sandbox.h.
 *
 * How a forbidden call reaches the master's log. The filter's default
 * action is SECCOMP_RET_TRAP, not KILL: the kernel skips the call and
 * sends SIGSYS with the call's number and architecture in siginfo. The
 * handler (async-signal-safe: getpid, stores, one tgkill) writes them into
 * this worker's record in a page shared with the master, and re-raises
 * SIGSYS, whose action SA_RESETHAND has made the default: the worker dies
 * of SIGSYS. The master reaps it, reads the record (only if the pid in it
 * is the dead worker's), names the call with libseccomp outside any
 * signal context, logs it and replaces the worker. The call itself never
 * runs, whatever the handler does. A call from another ABI (int 0x80)
 * kills at once (SCMP_ACT_KILL_PROCESS) and is logged as unknown.
 *
 * Known costs: a compromised worker can write other workers' records, so
 * it can make the master log a false call name; it gains nothing else.
 * ASan/UBSan builds keep the filter, with the few calls their run-time
 * makes in a section of the table that only they compile. A sanitizer
 * report prints whole but unsymbolized (module+offset frames): the calls
 * the symbolizer's start would make fail with EPERM there rather than
 * trap, and the memory map is read before the filter goes on.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf/parser.h"
#include "log/errlog.h"
#include "process/sandbox.h"
#include "stream/stream.h"
#include "stream/tmpl.h"


/* Rights newer than linux-libc-dev 6.1's header (Debian 12). */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif

/* Built with ASan (gcc says __SANITIZE_ADDRESS__, clang __has_feature). */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZED 1
#endif
#endif
#ifndef SANDBOX_SANITIZED
#define SANDBOX_SANITIZED 0
#endif
#if SANDBOX_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

#define SANDBOX_NCALLS(t) (sizeof(t) / sizeof((t)[0]))

/* si_code of a seccomp trap; asm-generic/siginfo.h clashes with glibc's. */
#define SANDBOX_SYS_SECCOMP 1

/* A log directory: append to its files, create new ones (reopen). */
#define SANDBOX_LOG_DIR_RIGHTS                                                 \
    (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG)


/* What a table entry allows besides the bare call. */
enum sandbox_args {
    SANDBOX_ANY,     /* any arguments */
    SANDBOX_SELF,    /* only with arg 0 == this process (signals) */
    SANDBOX_NO_EXEC, /* only with PROT_EXEC clear in arg 2 (W^X) */
    SANDBOX_REFUSED, /* not allowed, but fails with EPERM rather than
                        trapping: sanitizer builds only, so that a report
                        degrades (no symbolizer) instead of dying */
};

struct sandbox_call {
    int nr; /* SCMP_SYS(): a pseudo-number where the arch lacks it */
    enum sandbox_args args;
};


static int sandbox_landlock_abi(void);
static int sandbox_landlock(const struct stream_conf *conf, int abi);
static void sandbox_rule(int ruleset, const char *path, uint64_t rights,
                         uint64_t handled, bool is_quiet);
static void sandbox_log_path(int ruleset, const char *path, uint64_t handled);
static void sandbox_log_tmpl(int ruleset, const struct tmpl *t,
                             uint64_t handled);
static void sandbox_access_logs(int ruleset, const struct stream_access_log *al,
                                uint64_t handled);
static int sandbox_seccomp(void);
static int sandbox_allow(scmp_filter_ctx ctx, const struct sandbox_call *c);
static void sandbox_sigsys(int sig, siginfo_t *si, void *uctx);


/*
 * Every system call a worker makes once it serves, and only those. Learned
 * from the integration suite run under strace with the sandbox on: each
 * call a worker made after loading the filter is here, with the user that
 * needs it. The few not seen there are marked with why they stay. A call
 * missing here shows up as a worker killed with the call's name in the
 * master's log.
 */
static const struct sandbox_call sandbox_calls[] = {
    /* the event loop and its signalfd */
    {SCMP_SYS(epoll_wait), SANDBOX_ANY},
    {SCMP_SYS(epoll_pwait), SANDBOX_ANY}, /* epoll_wait on arm64: unseen */
    {SCMP_SYS(epoll_ctl), SANDBOX_ANY},
    {SCMP_SYS(read), SANDBOX_ANY},
    {SCMP_SYS(close), SANDBOX_ANY},
    {SCMP_SYS(fcntl), SANDBOX_ANY},
    /* sessions: accept, connect upstream (proxy_bind: bind), relay */
    {SCMP_SYS(accept4), SANDBOX_ANY},
    {SCMP_SYS(socket), SANDBOX_ANY},
    {SCMP_SYS(connect), SANDBOX_ANY},
    {SCMP_SYS(bind), SANDBOX_ANY},
    {SCMP_SYS(getsockname), SANDBOX_ANY},
    {SCMP_SYS(setsockopt), SANDBOX_ANY},
    {SCMP_SYS(getsockopt), SANDBOX_ANY},
    {SCMP_SYS(sendto), SANDBOX_ANY},
    {SCMP_SYS(recvfrom), SANDBOX_ANY},
    {SCMP_SYS(shutdown), SANDBOX_ANY},
    /* proxy_splice: pipes taken lazily from the pool, splice(); fcntl()
     * (allowed above for any command) sizes them: F_GETPIPE_SZ, and
     * F_SETPIPE_SZ for bulk (proxy_splice_pipe_size) */
    {SCMP_SYS(pipe2), SANDBOX_ANY},
    {SCMP_SYS(splice), SANDBOX_ANY},
    /* c-ares: a truncated answer asked again over TCP */
    {SCMP_SYS(writev), SANDBOX_ANY},
    /* logs: lines, access_log with variables, reopen (USR1) onto the fd */
    {SCMP_SYS(write), SANDBOX_ANY},
    {SCMP_SYS(openat), SANDBOX_ANY},
    {SCMP_SYS(dup2), SANDBOX_ANY},
    {SCMP_SYS(dup3), SANDBOX_ANY},  /* dup2 on arm64: unseen */
    {SCMP_SYS(uname), SANDBOX_ANY}, /* $hostname, syslog header */
    {SCMP_SYS(getpid), SANDBOX_ANY},
    /* memory (malloc, c-ares), never executable */
    {SCMP_SYS(brk), SANDBOX_ANY},
    {SCMP_SYS(mmap), SANDBOX_NO_EXEC},
    {SCMP_SYS(munmap), SANDBOX_ANY},
    {SCMP_SYS(mremap), SANDBOX_ANY},
    {SCMP_SYS(madvise), SANDBOX_ANY}, /* malloc_trim() after a burst */
    /* shared zones: robust process-shared mutexes */
    {SCMP_SYS(futex), SANDBOX_ANY},
    /* the clock where the vDSO falls back to the kernel: unseen here */
    {SCMP_SYS(clock_gettime), SANDBOX_ANY},
    /* returning from a handler; abort() (BUG_ON) and the SIGSYS handler
       signal only this process */
    {SCMP_SYS(rt_sigreturn), SANDBOX_ANY},
    {SCMP_SYS(rt_sigprocmask), SANDBOX_ANY},
    {SCMP_SYS(gettid), SANDBOX_ANY},
    {SCMP_SYS(tgkill), SANDBOX_SELF},
    {SCMP_SYS(exit_group), SANDBOX_ANY},
#if SANDBOX_SANITIZED
    /* the ASan/UBSan run-time (make asan); none in a release build */
    {SCMP_SYS(sigaltstack), SANDBOX_ANY}, /* at exit */
    {SCMP_SYS(ioctl), SANDBOX_ANY},       /* a report: isatty(2) */
    {SCMP_SYS(open), SANDBOX_REFUSED},    /* a report: the symbolizer's */
    {SCMP_SYS(stat), SANDBOX_REFUSED},    /* files, so it does not start */
#endif
};


/* This worker's record and pid, for the SIGSYS handler. */
static struct sandbox_report *sandbox_mine;
static pid_t sandbox_pid;

/* The kernel's lack of Landlock has been logged (master). */
static bool sandbox_said_no_landlock;


size_t
sandbox_syscall_count(void)
{
    size_t n = 0;

    for (size_t i = 0; i < SANDBOX_NCALLS(sandbox_calls); i++) {
        n += sandbox_calls[i].args != SANDBOX_REFUSED;
    }
    return n;
}


struct sandbox_report *
sandbox_reports_new(size_t n)
{
    void *p = mmap(NULL, n * sizeof(struct sandbox_report),
                   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}


void
sandbox_reports_free(struct sandbox_report *r, size_t n)
{
    if (r != NULL) {
        munmap(r, n * sizeof(*r));
    }
}


void
sandbox_report_take(struct sandbox_report *r, pid_t pid, char *buf, size_t cap)
{
    char *name = NULL;

    if (r == NULL || r->pid != (int32_t)pid) {
        snprintf(buf, cap,
                 "a forbidden system call (not recorded: "
                 "another ABI, or not the sandbox)");
        return;
    }
    name = seccomp_syscall_resolve_num_arch(r->arch, r->nr);
    snprintf(buf, cap, "forbidden system call %s (%d)",
             name != NULL ? name : "?", (int)r->nr);
    free(name);
    r->pid = 0;
}


void
sandbox_check_kernel(const struct stream_conf *conf)
{
    if (conf->sandbox != 1 || sandbox_said_no_landlock ||
        sandbox_landlock_abi() > 0) {
        return;
    }
    sandbox_said_no_landlock = true;
    errlog_write(NULL, ERRLOG_NOTICE, 0,
                 "sandbox: the kernel has no Landlock (%d: %s); workers "
                 "are sandboxed by seccomp only",
                 errno, strerror(errno));
}


int
sandbox_enter(const struct stream_conf *conf, struct sandbox_report *report)
{
    int abi;

    if (conf->sandbox != 1) {
        return 0;
    }
    abi = sandbox_landlock_abi();
#if SANDBOX_SANITIZED
    /* Reports then use the memory map read now: /proc is out of reach. */
    __sanitizer_sandbox_on_notify(NULL);
#endif
    sandbox_mine = report;
    sandbox_pid = getpid();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "sandbox: prctl(PR_SET_NO_NEW_PRIVS) failed (%d: %s)",
                     errno, strerror(errno));
        return -1;
    }
    if (abi > 0 && sandbox_landlock(conf, abi) == -1) {
        return -1;
    }
    if (sandbox_seccomp() == -1) {
        return -1;
    }
    if (abi > 0) {
        errlog_write(NULL, ERRLOG_INFO, 0,
                     "sandbox: %zu system calls allowed, Landlock ABI %d",
                     sandbox_syscall_count(), abi);
    } else {
        errlog_write(NULL, ERRLOG_INFO, 0,
                     "sandbox: %zu system calls allowed, no Landlock",
                     sandbox_syscall_count());
    }
    return 0;
}


/* The kernel's Landlock ABI version, or -1 (errno set) without one. */
static int
sandbox_landlock_abi(void)
{
    return (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
                        LANDLOCK_CREATE_RULESET_VERSION);
}


/*
 * Every file right this ABI knows is handled, so all are denied but what
 * the rules grant: writing in the log files' directories (a log is
 * reopened by name after rotation, and access_log with variables opens
 * files per session) and reading the configuration's files. The worker
 * reads nothing after start-up (a reload forks new workers from the
 * master), so the read rule only keeps the configuration within reach.
 * Network rights (ABI 4) are not restricted: upstreams may be anywhere.
 */
static int
sandbox_landlock(const struct stream_conf *conf, int abi)
{
    uint64_t handled = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1 */
    struct landlock_ruleset_attr attr;
    int ruleset;

    if (abi >= 2) {
        handled |= LANDLOCK_ACCESS_FS_REFER;
    }
    if (abi >= 3) {
        handled |= LANDLOCK_ACCESS_FS_TRUNCATE;
    }
    if (abi >= 5) {
        handled |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    }
    memset(&attr, 0, sizeof(attr));
    attr.handled_access_fs = handled;
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0);
    if (ruleset == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "sandbox: landlock_create_ruleset() failed (%d: %s)",
                     errno, strerror(errno));
        return -1;
    }
    if (conf->has_errlog && conf->errlog.syslog == NULL &&
        conf->errlog.fd > 2) {
        sandbox_log_path(ruleset, conf->errlog.path, handled);
    }
    for (const struct errlog *log = conf->errlogs; log != NULL;
         log = log->next) {
        if (log->syslog == NULL && log->fd > 2) {
            sandbox_log_path(ruleset, log->path, handled);
        }
    }
    for (const struct stream_log_file *f = conf->log_files; f != NULL;
         f = f->next) {
        if (f->syslog == NULL) {
            sandbox_log_path(ruleset, f->path, handled);
        }
    }
    sandbox_access_logs(ruleset, conf->set.access_logs, handled);
    for (const struct stream_server *srv = conf->servers; srv != NULL;
         srv = srv->next) {
        if (srv->set.access_logs != conf->set.access_logs) { /* inherited */
            sandbox_access_logs(ruleset, srv->set.access_logs, handled);
        }
    }
    for (const struct conf_file *cf = conf->tree->files; cf != NULL;
         cf = cf->next) {
        /* Quiet: the embedded config and -g have no file to grant. */
        sandbox_rule(ruleset, cf->path, LANDLOCK_ACCESS_FS_READ_FILE, handled,
                     true);
    }
    if (syscall(SYS_landlock_restrict_self, ruleset, 0) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "sandbox: landlock_restrict_self() failed (%d: %s)", errno,
                     strerror(errno));
        close(ruleset);
        return -1;
    }
    close(ruleset);
    return 0;
}


/* The access_logs with variables of one settings block. */
static void
sandbox_access_logs(int ruleset, const struct stream_access_log *al,
                    uint64_t handled)
{
    for (; al != NULL; al = al->next) {
        if (al->path_t != NULL) {
            sandbox_log_tmpl(ruleset, al->path_t, handled);
        }
    }
}


/*
 * A log file: its directory, or the file alone when it is not a regular
 * file (/dev/stderr, a FIFO): granting /dev would grant every device.
 */
static void
sandbox_log_path(int ruleset, const char *path, uint64_t handled)
{
    struct stat st;
    char dir[4096];
    const char *slash = strrchr(path, '/');

    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        sandbox_rule(ruleset, path, LANDLOCK_ACCESS_FS_WRITE_FILE, handled,
                     false);
        return;
    }
    if (slash == NULL) {
        sandbox_rule(ruleset, ".", SANDBOX_LOG_DIR_RIGHTS, handled, false);
        return;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path),
             path);
    sandbox_rule(ruleset, dir, SANDBOX_LOG_DIR_RIGHTS, handled, false);
}


/*
 * An access_log path with variables: the directory its constant start
 * names ("/var/log/$host.log": /var/log; "/logs/$host/a.log": /logs and
 * below). One that starts with a variable may name any file: "/".
 */
static void
sandbox_log_tmpl(int ruleset, const struct tmpl *t, uint64_t handled)
{
    char dir[4096];
    const char *slash = NULL;
    const char *text = "";
    size_t len = 0;

    if (t->nparts > 0 && t->parts[0].kind == TMPL_LITERAL) {
        text = t->parts[0].text;
        len = t->parts[0].len;
        slash = memrchr(text, '/', len);
    }
    if (len == 0) {
        errlog_write(NULL, ERRLOG_NOTICE, 0,
                     "sandbox: an access_log path starts with a variable: "
                     "workers may write files anywhere");
        sandbox_rule(ruleset, "/", SANDBOX_LOG_DIR_RIGHTS, handled, false);
        return;
    }
    if (slash == NULL) {
        sandbox_rule(ruleset, ".", SANDBOX_LOG_DIR_RIGHTS, handled, false);
        return;
    }
    snprintf(dir, sizeof(dir), "%.*s", slash == text ? 1 : (int)(slash - text),
             text);
    sandbox_rule(ruleset, dir, SANDBOX_LOG_DIR_RIGHTS, handled, false);
}


/*
 * Grants rights (as far as this ABI handles them) beneath path. A path
 * that cannot be opened now gets nothing: a warning, unless is_quiet,
 * and writes there then fail with their own error lines.
 */
static void
sandbox_rule(int ruleset, const char *path, uint64_t rights, uint64_t handled,
             bool is_quiet)
{
    struct landlock_path_beneath_attr pb;
    const int fd = open(path, O_PATH | O_CLOEXEC);

    if (fd == -1) {
        if (!is_quiet) {
            errlog_write(NULL, ERRLOG_WARN, 0,
                         "sandbox: open() \"%s\" failed (%d: %s): workers "
                         "cannot use it",
                         path, errno, strerror(errno));
        }
        return;
    }
    memset(&pb, 0, sizeof(pb));
    pb.allowed_access = rights & handled;
    pb.parent_fd = fd;
    if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb,
                0) == -1) {
        errlog_write(NULL, ERRLOG_WARN, 0,
                     "sandbox: landlock_add_rule() for \"%s\" failed "
                     "(%d: %s): workers cannot use it",
                     path, errno, strerror(errno));
    }
    close(fd);
}


static int
sandbox_seccomp(void)
{
    struct sigaction sa;
    scmp_filter_ctx ctx;
    int rc = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sandbox_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) == -1) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "sandbox: sigaction(SIGSYS) failed (%d: %s)", errno,
                     strerror(errno));
        return -1;
    }
    ctx = seccomp_init(SCMP_ACT_TRAP);
    if (ctx == NULL) {
        errlog_write(NULL, ERRLOG_EMERG, 0, "sandbox: seccomp_init() failed");
        return -1;
    }
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) !=
        0) {
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL);
    }
    for (size_t i = 0; i < SANDBOX_NCALLS(sandbox_calls) && rc == 0; i++) {
        rc = sandbox_allow(ctx, &sandbox_calls[i]);
    }
    if (rc == 0) {
        rc = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    if (rc != 0) {
        errlog_write(NULL, ERRLOG_EMERG, 0,
                     "sandbox: installing the seccomp filter failed "
                     "(%d: %s)",
                     -rc, strerror(-rc));
        return -1;
    }
    return 0;
}


/* Adds c to the filter; 0, or libseccomp's negative errno. */
static int
sandbox_allow(scmp_filter_ctx ctx, const struct sandbox_call *c)
{
    switch (c->args) {
    case SANDBOX_SELF:
        return seccomp_rule_add(
            ctx, SCMP_ACT_ALLOW, c->nr, 1,
            SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sandbox_pid, 0));
    case SANDBOX_NO_EXEC:
        return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, c->nr, 1,
                                SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    case SANDBOX_REFUSED:
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), c->nr, 0);
    case SANDBOX_ANY:
        break;
    }
    return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, c->nr, 0);
}


/*
 * A call outside the table: note it for the master, then die of SIGSYS
 * (pending while this runs, delivered with the default action that
 * SA_RESETHAND restored as the handler returns). A child some library
 * forked is not the worker: it writes nothing, and its tgkill, not to
 * the worker's pid, traps again and kills it.
 */
static void
sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
    const pid_t self = (pid_t)syscall(SYS_getpid);

    (void)uctx;
    if (sandbox_mine != NULL && self == sandbox_pid &&
        si->si_code == SANDBOX_SYS_SECCOMP) {
        sandbox_mine->nr = si->si_syscall;
        sandbox_mine->arch = si->si_arch;
        sandbox_mine->pid = (int32_t)self;
    }
    syscall(SYS_tgkill, self, self, sig);
}
