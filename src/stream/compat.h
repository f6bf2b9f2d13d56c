/* SPDX-License-Identifier: MIT */
/*
 * nginx configuration compatibility: the main-context directives of nginx's
 * core that a copied nginx.conf carries (worker_priority,
 * worker_cpu_affinity, env, load_module, ...), open_log_file_cache, and
 * the directives of features snirelay deliberately lacks (TLS termination,
 * UDP, njs), refused with the reason rather than "unknown directive".
 *
 * compat_cmds is installed as the dispatcher's fallback table
 * (struct conf_ctx.fallback), so these rows stay out of the core tables.
 */
#ifndef SNIRELAY_STREAM_COMPAT_H
#define SNIRELAY_STREAM_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

struct stream_conf;

/* What the main-context directives set; one per generation, in its arena. */
struct compat_main {
    int worker_priority;   /* nice value for workers */
    bool has_priority;     /* worker_priority given */
    void *cpu_masks;       /* cpu_set_t[ncpu_masks], or NULL */
    size_t ncpu_masks;     /* worker_cpu_affinity masks */
    bool cpu_auto;         /* "auto": worker n on the nth CPU of mask 0 */
    const char **env;      /* env arguments: NAME or NAME=VALUE */
    size_t nenv;           /* entries in env */
    size_t envcap;         /* room in env */
    int master_process;    /* CONF_UNSET, 0, 1: accepted, not applied */
    int pcre_jit;          /* CONF_UNSET, 0, 1: accepted, not applied */
    int64_t timer_res_ms;  /* CONF_UNSET or ms: accepted, not applied */
    const char *lock_file; /* accepted, not applied */
};

/* The fallback directive table (ends with a NULL name). */
extern const struct conf_cmd compat_cmds[];

/*
 * Applies, in a worker numbered slot (0-based) before it drops
 * privileges, what the main directives ask of workers: the nice value
 * (setpriority), the CPU mask (sched_setaffinity) and the environment
 * (nginx's: only TZ and the variables named by env). Failures are logged
 * (alert) and the worker goes on, as nginx's.
 */
void compat_worker_init(const struct stream_conf *conf, int slot);

/*
 * The module name a load_module path names ("ngx_stream_map_module" for
 * ".../modules/ngx_stream_map_module.so"), copied into out (cap bytes).
 * Returns true when snirelay has that stream module built in.
 */
bool compat_module_is_builtin(const char *path, char *out, size_t cap);

#endif
