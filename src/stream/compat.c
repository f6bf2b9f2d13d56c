/* SPDX-License-Identifier: MIT */
/*
 * nginx configuration compatibility. nginx's core module has main-context
 * directives that configs copied from an nginx box carry; each is parsed
 * with the checks and messages of src/core/nginx.c. Those that mean
 * something for snirelay's workers are applied (worker_priority,
 * worker_cpu_affinity, env); the others are accepted and documented as
 * not applied. load_module accepts the stream modules snirelay has built
 * in (so the Debian modules-enabled layout loads) and refuses any other,
 * naming it. Directives of features out of scope (TLS termination, UDP,
 * njs) are refused with the reason.
 */

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

extern char **environ;

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/units.h"
#include "log/errlog.h"
#include "stream/compat.h"
#include "stream/stream.h"


#define COMPAT_MAIN(field) offsetof(struct compat_main, field)
#define COMPAT_ANYWHERE                                                        \
    (CONF_MAIN | CONF_EVENTS | CONF_STREAM | CONF_SERVER | CONF_UPSTREAM)


static struct compat_main *compat_main_of(struct conf_ctx *cf, void *conf);
static const char *compat_flag(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);
static const char *compat_msec(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);
static const char *compat_str(struct conf_ctx *cf, const struct conf_node *n,
                              const struct conf_cmd *cmd, void *conf);
static const char *compat_priority(struct conf_ctx *cf,
                                   const struct conf_node *n,
                                   const struct conf_cmd *cmd, void *conf);
static const char *compat_cpu_affinity(struct conf_ctx *cf,
                                       const struct conf_node *n,
                                       const struct conf_cmd *cmd, void *conf);
static const char *compat_env(struct conf_ctx *cf, const struct conf_node *n,
                              const struct conf_cmd *cmd, void *conf);
static const char *compat_load_module(struct conf_ctx *cf,
                                      const struct conf_node *n,
                                      const struct conf_cmd *cmd, void *conf);
static const char *compat_log_cache(struct conf_ctx *cf,
                                    const struct conf_node *n,
                                    const struct conf_cmd *cmd, void *conf);
static const char *compat_no_tls(struct conf_ctx *cf, const struct conf_node *n,
                                 const struct conf_cmd *cmd, void *conf);
static const char *compat_no_udp(struct conf_ctx *cf, const struct conf_node *n,
                                 const struct conf_cmd *cmd, void *conf);
static const char *compat_no_njs(struct conf_ctx *cf, const struct conf_node *n,
                                 const struct conf_cmd *cmd, void *conf);
static const char *compat_no_mail(struct conf_ctx *cf,
                                  const struct conf_node *n,
                                  const struct conf_cmd *cmd, void *conf);
static void compat_set_affinity(const struct compat_main *cm, int slot);
static void compat_set_env(const struct compat_main *cm);
static void compat_log_env(void);


const struct conf_cmd compat_cmds[] = {
    {"master_process", CONF_MAIN, CONF_FLAG, compat_flag,
     COMPAT_MAIN(master_process)},
    {"pcre_jit", CONF_MAIN, CONF_FLAG, compat_flag, COMPAT_MAIN(pcre_jit)},
    {"timer_resolution", CONF_MAIN, CONF_TAKE1, compat_msec,
     COMPAT_MAIN(timer_res_ms)},
    {"lock_file", CONF_MAIN, CONF_TAKE1, compat_str, COMPAT_MAIN(lock_file)},
    {"worker_priority", CONF_MAIN, CONF_TAKE1, compat_priority, 0},
    {"worker_cpu_affinity", CONF_MAIN, CONF_1MORE, compat_cpu_affinity, 0},
    {"env", CONF_MAIN, CONF_TAKE1, compat_env, 0},
    {"load_module", CONF_MAIN, CONF_TAKE1, compat_load_module, 0},
    {"open_log_file_cache", CONF_STREAM | CONF_SERVER, CONF_TAKE1234,
     compat_log_cache, 0},
    /*
     * Out of scope: refused with the reason, in any context. ssl_preread
     * (core tables, stream and server) is listed allowed nowhere so that,
     * out of place, it is "not allowed here" rather than caught by ssl_*.
     */
    {"ssl_preread", 0, CONF_REFUSE, compat_no_tls, 0},
    {"ssl_*", COMPAT_ANYWHERE, CONF_REFUSE, compat_no_tls, 0},
    {"proxy_ssl*", COMPAT_ANYWHERE, CONF_REFUSE, compat_no_tls, 0},
    {"proxy_requests", COMPAT_ANYWHERE, CONF_REFUSE, compat_no_udp, 0},
    {"proxy_responses", COMPAT_ANYWHERE, CONF_REFUSE, compat_no_udp, 0},
    {"js_*", COMPAT_ANYWHERE, CONF_REFUSE, compat_no_njs, 0},
    {"mail", COMPAT_ANYWHERE, CONF_REFUSE, compat_no_mail, 0},
    {NULL, 0, 0, NULL, 0},
};

/*
 * The stream modules of nginx whose directives snirelay implements, by
 * the names their dynamic builds would have. Modules nginx only builds
 * statically are listed too: a hand-written load_module of them is as
 * harmless here.
 */
static const char *const compat_builtin_modules[] = {
    "ngx_stream_module",
    "ngx_stream_core_module",
    "ngx_stream_proxy_module",
    "ngx_stream_upstream_module",
    "ngx_stream_upstream_hash_module",
    "ngx_stream_upstream_least_conn_module",
    "ngx_stream_upstream_random_module",
    "ngx_stream_upstream_zone_module",
    "ngx_stream_map_module",
    "ngx_stream_ssl_preread_module",
    "ngx_stream_access_module",
    "ngx_stream_limit_conn_module",
    "ngx_stream_log_module",
    "ngx_stream_realip_module",
    "ngx_stream_geo_module",
    "ngx_stream_split_clients_module",
    "ngx_stream_return_module",
    "ngx_stream_set_module",
    NULL,
};


/* The generation's compat_main, made on first use (conf: stream_conf). */
static struct compat_main *
compat_main_of(struct conf_ctx *cf, void *conf)
{
    struct stream_conf *sc = conf;

    if (sc->compat == NULL) {
        struct compat_main *cm = arena_alloc(cf->arena, sizeof(*cm));

        if (cm == NULL) {
            return NULL;
        }
        memset(cm, 0, sizeof(*cm));
        cm->master_process = CONF_UNSET;
        cm->pcre_jit = CONF_UNSET;
        cm->timer_res_ms = CONF_UNSET;
        sc->compat = cm;
    }
    return sc->compat;
}


static const char *
compat_flag(struct conf_ctx *cf, const struct conf_node *n,
            const struct conf_cmd *cmd, void *conf)
{
    struct compat_main *cm = compat_main_of(cf, conf);

    return cm == NULL ? "out of memory" : conf_set_flag(cf, n, cmd, cm);
}


static const char *
compat_msec(struct conf_ctx *cf, const struct conf_node *n,
            const struct conf_cmd *cmd, void *conf)
{
    struct compat_main *cm = compat_main_of(cf, conf);

    return cm == NULL ? "out of memory" : conf_set_msec(cf, n, cmd, cm);
}


static const char *
compat_str(struct conf_ctx *cf, const struct conf_node *n,
           const struct conf_cmd *cmd, void *conf)
{
    struct compat_main *cm = compat_main_of(cf, conf);

    return cm == NULL ? "out of memory" : conf_set_str(cf, n, cmd, cm);
}


/* worker_priority [-|+]N, as nginx's ngx_set_priority(). */
static const char *
compat_priority(struct conf_ctx *cf, const struct conf_node *n,
                const struct conf_cmd *cmd, void *conf)
{
    struct compat_main *cm = compat_main_of(cf, conf);
    const char *v = n->args[1];
    const bool is_minus = v[0] == '-';
    int num;

    (void)cmd;
    if (cm == NULL) {
        return "out of memory";
    }
    /* nginx's test: a priority of 0 may be given again. */
    if (cm->worker_priority != 0) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    if (v[0] == '-' || v[0] == '+') {
        v++;
    }
    if (units_parse_int(v, strlen(v), &num) == -1) {
        return conf_msg(cf, "\"%s\" directive invalid number", n->args[0]);
    }
    cm->worker_priority = is_minus ? -num : num;
    cm->has_priority = true;
    return NULL;
}


/*
 * worker_cpu_affinity MASK ... | auto [MASK], as nginx's
 * ngx_set_cpu_affinity(): each MASK is a string of 0 and 1 (spaces
 * skipped), its last character CPU 0.
 */
static const char *
compat_cpu_affinity(struct conf_ctx *cf, const struct conf_node *n,
                    const struct conf_cmd *cmd, void *conf)
{
    struct compat_main *cm = compat_main_of(cf, conf);
    cpu_set_t *masks;
    size_t first = 1;

    (void)cmd;
    if (cm == NULL) {
        return "out of memory";
    }
    if (cm->cpu_masks != NULL) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    masks = arena_alloc(cf->arena, (n->nargs - 1) * sizeof(*masks));
    if (masks == NULL) {
        return "out of memory";
    }
    if (strcmp(n->args[1], "auto") == 0) {
        const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        if (n->nargs > 3) {
            return conf_msg(cf, "invalid number of arguments in "
                                "\"worker_cpu_affinity\" directive");
        }
        cm->cpu_auto = true;
        CPU_ZERO(&masks[0]);
        for (long i = 0; i < ncpu && i < CPU_SETSIZE; i++) {
            CPU_SET(i, &masks[0]);
        }
        first = 2;
    }
    for (size_t k = first; k < n->nargs; k++) {
        const char *const v = n->args[k];
        const size_t len = strlen(v);
        int cpu = 0;

        if (len > CPU_SETSIZE) {
            return conf_msg(cf,
                            "\"worker_cpu_affinity\" supports up to %d "
                            "CPUs only",
                            CPU_SETSIZE);
        }
        CPU_ZERO(&masks[k - 1]);
        for (size_t i = len; i > 0; i--) {
            const char ch = v[i - 1];

            if (ch == ' ') {
                continue;
            }
            if (ch == '1') {
                CPU_SET(cpu, &masks[k - 1]);
            } else if (ch != '0') {
                return conf_msg(cf,
                                "invalid character \"%c\" in "
                                "\"worker_cpu_affinity\"",
                                ch);
            }
            cpu++;
        }
    }
    cm->cpu_masks = masks;
    cm->ncpu_masks = n->nargs - 1;
    return NULL;
}


/* env NAME | NAME=VALUE: kept for workers (compat_set_env()). */
static const char *
compat_env(struct conf_ctx *cf, const struct conf_node *n,
           const struct conf_cmd *cmd, void *conf)
{
    struct compat_main *cm = compat_main_of(cf, conf);

    (void)cmd;
    if (cm == NULL) {
        return "out of memory";
    }
    if (cm->nenv == cm->envcap) {
        const size_t cap = cm->envcap == 0 ? 8 : cm->envcap * 2;
        const char **grown = arena_alloc(cf->arena, cap * sizeof(*grown));

        if (grown == NULL) {
            return "out of memory";
        }
        if (cm->nenv > 0) {
            memcpy(grown, cm->env, cm->nenv * sizeof(*grown));
        }
        cm->env = grown;
        cm->envcap = cap;
    }
    cm->env[cm->nenv++] = n->args[1];
    return NULL;
}


bool
compat_module_is_builtin(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    size_t len;

    base = base != NULL ? base + 1 : path;
    len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".so") == 0) {
        len -= 3;
    }
    snprintf(out, cap, "%.*s", (int)len, base);
    for (size_t i = 0; compat_builtin_modules[i] != NULL; i++) {
        if (strlen(compat_builtin_modules[i]) == len &&
            strncmp(compat_builtin_modules[i], base, len) == 0) {
            return true;
        }
    }
    return false;
}


/*
 * load_module PATH: the file is never opened (a proxy box need not have
 * nginx's modules directory). As nginx, it must come before the first
 * block that uses modules.
 */
static const char *
compat_load_module(struct conf_ctx *cf, const struct conf_node *n,
                   const struct conf_cmd *cmd, void *conf)
{
    const struct stream_conf *sc = conf;
    char name[256];

    (void)cmd;
    for (const struct conf_node *c = sc->tree->root; c != NULL && c != n;
         c = c->next) {
        if (c->is_block && (strcmp(c->args[0], "events") == 0 ||
                            strcmp(c->args[0], "stream") == 0 ||
                            strcmp(c->args[0], "http") == 0)) {
            return conf_msg(cf, "\"%s\" directive is specified too late",
                            n->args[0]);
        }
    }
    if (!compat_module_is_builtin(n->args[1], name, sizeof(name))) {
        return conf_msg(cf, "module \"%s\" is not supported by snirelay", name);
    }
    errlog_write(NULL, ERRLOG_NOTICE, 0,
                 "module \"%s\" is built into snirelay, \"load_module\" "
                 "ignored in %s:%u",
                 name, n->file, n->line);
    return NULL;
}


/*
 * open_log_file_cache max=N [inactive=TIME] [min_uses=N] [valid=TIME] |
 * off, with the checks of nginx's ngx_stream_log_open_file_cache().
 */
static const char *
compat_log_cache(struct conf_ctx *cf, const struct conf_node *n,
                 const struct conf_cmd *cmd, void *conf)
{
    struct stream_settings *set = conf;
    int max = 0;
    int min_uses = 1;
    int64_t inactive_ms = 10000;
    int64_t valid_ms = 60000;
    bool is_off = false;

    (void)cmd;
    if (set->log_cache_set) {
        return conf_msg(cf, "\"%s\" directive is duplicate", n->args[0]);
    }
    for (size_t i = 1; i < n->nargs; i++) {
        const char *const p = n->args[i];
        int rc;

        if (strncmp(p, "max=", 4) == 0) {
            rc = units_parse_int(p + 4, strlen(p + 4), &max);
        } else if (strncmp(p, "inactive=", 9) == 0) {
            rc = units_parse_msec(p + 9, strlen(p + 9), &inactive_ms);
        } else if (strncmp(p, "min_uses=", 9) == 0) {
            rc = units_parse_int(p + 9, strlen(p + 9), &min_uses);
        } else if (strncmp(p, "valid=", 6) == 0) {
            rc = units_parse_msec(p + 6, strlen(p + 6), &valid_ms);
        } else if (strcmp(p, "off") == 0) {
            is_off = true;
            rc = 0;
        } else {
            rc = -1;
        }
        if (rc == -1) {
            return conf_msg(cf,
                            "invalid \"open_log_file_cache\" parameter "
                            "\"%s\"",
                            p);
        }
    }
    set->log_cache_set = true;
    if (is_off) {
        return NULL;
    }
    if (max == 0) {
        return conf_msg(cf, "\"open_log_file_cache\" must have \"max\" "
                            "parameter");
    }
    set->log_cache_max = max;
    set->log_cache_inactive_ms = inactive_ms;
    set->log_cache_min_uses = min_uses;
    set->log_cache_valid_ms = valid_ms;
    return NULL;
}


static const char *
compat_no_tls(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    return conf_msg(cf,
                    "\"%s\" directive is not supported: snirelay never "
                    "terminates TLS (passthrough only)",
                    n->args[0]);
}


static const char *
compat_no_udp(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    return conf_msg(cf,
                    "\"%s\" directive is not supported: snirelay relays "
                    "TCP only (no UDP)",
                    n->args[0]);
}


static const char *
compat_no_njs(struct conf_ctx *cf, const struct conf_node *n,
              const struct conf_cmd *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    return conf_msg(cf,
                    "\"%s\" directive is not supported: snirelay has no "
                    "njs (JavaScript) module",
                    n->args[0]);
}


static const char *
compat_no_mail(struct conf_ctx *cf, const struct conf_node *n,
               const struct conf_cmd *cmd, void *conf)
{
    (void)cmd;
    (void)conf;
    return conf_msg(cf,
                    "\"%s\" directive is not supported: snirelay has no "
                    "mail proxy",
                    n->args[0]);
}


void
compat_worker_init(const struct stream_conf *conf, int slot)
{
    const struct compat_main *cm = conf->compat;

    if (cm != NULL && cm->has_priority &&
        setpriority(PRIO_PROCESS, 0, cm->worker_priority) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0, "setpriority(%d) failed (%d: %s)",
                     cm->worker_priority, errno, strerror(errno));
    }
    if (cm != NULL && cm->cpu_masks != NULL) {
        compat_set_affinity(cm, slot);
    }
    compat_set_env(cm);
}


/* Worker slot's mask, as nginx's ngx_get_cpu_affinity(). */
static void
compat_set_affinity(const struct compat_main *cm, int slot)
{
    const cpu_set_t *masks = cm->cpu_masks;
    cpu_set_t set;

    if (cm->cpu_auto) {
        const cpu_set_t *all = &masks[cm->ncpu_masks - 1];
        const int count = CPU_COUNT(all);
        int want;

        if (count == 0) {
            return;
        }
        want = slot % count;
        CPU_ZERO(&set);
        for (int i = 0; i < CPU_SETSIZE; i++) {
            if (CPU_ISSET(i, all) && want-- == 0) {
                CPU_SET(i, &set);
                break;
            }
        }
    } else {
        const size_t k =
            (size_t)slot < cm->ncpu_masks ? (size_t)slot : cm->ncpu_masks - 1;
        set = masks[k];
    }
    for (int i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, &set)) {
            errlog_write(NULL, ERRLOG_NOTICE, 0,
                         "sched_setaffinity(): using cpu #%d", i);
        }
    }
    if (sched_setaffinity(0, sizeof(set), &set) == -1) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "sched_setaffinity() failed (%d: %s)", errno,
                     strerror(errno));
    }
}


/*
 * nginx's worker environment: TZ (unless env names it) and the variables
 * env names, from the master's environment or as NAME=VALUE; nothing
 * else. The strings put in stay valid: inherited ones are copied, the
 * others live in the generation's arena for the worker's life.
 */
static void
compat_set_env(const struct compat_main *cm)
{
    const size_t nenv = cm != NULL ? cm->nenv : 0;
    char **keep = calloc(nenv + 2, sizeof(*keep));
    size_t nkeep = 0;
    bool has_tz = false;

    if (keep == NULL) {
        errlog_write(NULL, ERRLOG_ALERT, 0,
                     "worker environment: out of memory");
        return;
    }
    for (size_t i = 0; i <= nenv; i++) {
        const char *const e = i < nenv ? cm->env[i] : "TZ";
        const char *const eq = strchr(e, '=');
        const size_t namelen = eq != NULL ? (size_t)(eq - e) : strlen(e);
        const char *value;

        if (i == nenv && has_tz) {
            break;
        }
        if (namelen == 2 && strncmp(e, "TZ", 2) == 0) {
            has_tz = true;
        }
        if (eq != NULL) {
            keep[nkeep++] = strdup(e);
            continue;
        }
        value = getenv(e);
        if (value != NULL) {
            char *const kv = malloc(namelen + strlen(value) + 2);

            if (kv != NULL) {
                sprintf(kv, "%s=%s", e, value);
            }
            keep[nkeep++] = kv;
        }
    }
    clearenv();
    for (size_t i = 0; i < nkeep; i++) {
        if (keep[i] == NULL || putenv(keep[i]) != 0) {
            errlog_write(NULL, ERRLOG_ALERT, 0,
                         "worker environment: out of memory");
        }
    }
    /* putenv() keeps the strings: they live as long as the worker. */
    free(keep);
    compat_log_env();
}


/*
 * Names (never values) of the worker's environment at debug level: the
 * only outside view of it, since /proc/PID/environ keeps showing the
 * block the process started with.
 */
static void
compat_log_env(void)
{
    char names[512];
    size_t len = 0;

    names[0] = '\0';
    /* clearenv() leaves environ NULL when nothing is put back. */
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const size_t n = strcspn(*e, "=");

        if (len + n + 2 >= sizeof(names)) {
            break;
        }
        names[len++] = ' ';
        memcpy(names + len, *e, n);
        len += n;
        names[len] = '\0';
    }
    errlog_write(NULL, ERRLOG_DEBUG, 0, "worker environment:%s", names);
}
