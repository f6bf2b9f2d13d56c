/* SPDX-License-Identifier: MIT */
/*
 * The configuration of one generation, as the stream modules fill it from
 * the parsed tree. Everything here lives in the generation's arena (owned by
 * struct stream_conf) except the descriptors, the access-log buffers and the
 * hostmatch/balancer objects, which stream_conf_free() releases.
 */
#ifndef SNIRELAY_STREAM_STREAM_H
#define SNIRELAY_STREAM_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/str.h"
#include "dns/resolver.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "net/sock.h"
#include "stream/upstream/balance.h"
#include "stream/tmpl.h"

struct arena;
struct conf_node;
struct conf_err;
struct conf_tree;
struct cidr;
struct hostmatch;
struct stream_server;
struct shm_zone;
struct stream_set_cmd;
struct upstream_build;
struct errlog_syslog;
struct limit_conn_zone;

/* One listening address, shared by every server{} that names it. */
struct stream_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[SOCK_ADDR_TEXT_MAX]; /* "127.0.0.1:8443" */
    struct sock_listen_opts opts;
    struct stream_server *default_server; /* default_server, else the first */
    struct hostmatch *names;              /* server_name → server, or NULL */
    bool has_default_flag; /* some listen line said default_server */
    bool has_opts;         /* some listen line set socket options */
    bool has_nameless;     /* a server here has no server_name (or "") */
    bool proxy_protocol;   /* clients send a PROXY header */
    int *fds;              /* nfds sockets, -1 until opened:
                              one per worker with reuseport,
                              else one shared by all */
    size_t nfds;
    int fd;                   /* the one this worker accepts on */
    struct loop_io io;        /* accept events */
    struct stream_conf *conf; /* generation it belongs to */
    uint32_t metrics;         /* its series (stream/stats.c) */
    struct stream_listen *next;
};

/*
 * A `server NAME:PORT resolve` line, or `server NAME service=S resolve`
 * (SRV): its addresses fill fixed runs of the upstream's peers (the
 * unused ones are down) and are looked up again in each worker whenever
 * the answer's TTL runs out. The latest answer is kept in a shared zone: a
 * worker started later (a respawn, or a reload's new generation, which
 * takes the zone over) begins with it (upstream_resolve.c).
 */
struct upstream_srv_target;

struct upstream_resolve {
    const char *host;    /* the name asked: validated; for SRV the whole
                            "_service._proto.name" */
    bool srv;            /* `service=`: host's SRV records give the
                            targets, ports, weights and backups */
    int port;            /* not SRV: every address's port */
    bool down;           /* the server line says `down` */
    struct stream_upstream *u;
    size_t nslots;       /* slots in all */
    size_t nfront;       /* slots [0, nfront) are u->bal.peers[first..] */
    size_t first;
    size_t first_back;   /* SRV: slots [nfront, nslots) (the records of a
                            higher priority, backups) from here */
    char (*names)[SOCK_ADDR_TEXT_MAX]; /* the slots' $upstream_addr texts */
    struct resolver_wait wait;         /* while a lookup is in flight */
    struct resolver_srv_query *srv_q;  /* SRV: while its lookup is */
    struct upstream_srv_target *targets; /* SRV: the targets' lookups */
    size_t ntargets;
    size_t targets_pending;            /* target lookups not answered */
    int64_t srv_expires_ms;            /* SRV: when its records expire */
    struct loop_timer timer;           /* the next lookup */
    struct stream_resolver *resolver;
    struct shm_zone *shared; /* the latest answer; owned by
                                this generation unless taken over */
    struct upstream_resolve *next;
};

/*
 * An upstream `zone NAME [SIZE]`: the run-time state of every upstream
 * naming it (failures, weights, active connections), shared by all
 * workers of one generation (upstream_zone.c).
 */
struct upstream_zone {
    const char *name;
    size_t size;          /* bytes; 0 while no line has given one */
    const char *file;     /* the first `zone` line naming it */
    unsigned line;
    size_t npeers;        /* servers of every upstream in it */
    struct shm_zone *shm; /* made at load, before the workers fork;
                             NULL until then */
    bool is_full_logged;  /* "no room" said once per worker */
    struct upstream_zone *next;
};

struct stream_upstream {
    const char *name;     /* upstream{} name, or "host:port" if implicit */
    bool implicit;        /* made for a proxy_pass address */
    struct upstream_zone *zone; /* `zone`, or NULL: state per worker */
    struct stream_resolver *resolver; /* upstream's own `resolver`, or NULL:
                                         the stream{} one */
    int64_t resolver_timeout_ms;      /* its `resolver_timeout`, or
                                         CONF_UNSET */
    size_t zone_first;          /* its servers' first index in the zone */
    struct balancer bal;  /* peers and method */
    struct tmpl hash_key; /* `hash KEY`, when method is HASH* */
    struct upstream_build *build;      /* peers being read; NULL once built */
    struct upstream_resolve *resolves; /* `resolve` servers */
    const char *file;                  /* where defined or first used */
    unsigned line;
    uint32_t *metrics; /* per peer: its series (stream/stats.c), arena;
                          NULL until registered */
    struct stream_upstream *next;
};

enum stream_pass_kind { PASS_NONE, PASS_UPSTREAM, PASS_VALUE };

struct stream_log_file {
    const char *path;
    int fd;
    char *buf;        /* malloc'd when buffer= is set */
    size_t cap;       /* buffer size; 0 = write each line */
    size_t len;       /* bytes waiting in buf */
    int64_t flush_ms; /* flush= period; 0 = only when full */
    int gzip_level;   /* gzip=: 1..9, each flush one gzip member; 0 off */
    struct errlog_syslog *syslog; /* syslog: target (fd is its socket) */
    struct loop_timer flush_timer;
    struct stream_log_file *next;
};

struct stream_log_format {
    const char *name;
    struct tmpl t;
    enum str_escape escape;
    struct stream_log_format *next;
};

struct stream_access_log {
    struct stream_log_file *file; /* NULL when path_t is set */
    struct tmpl *path_t;          /* a path with variables, or NULL */
    struct tmpl *filter;          /* if=: skip when "" or "0"; NULL */
    struct stream_log_format *format;
    struct stream_access_log *next;
};

/*
 * proxy_upload_rate / proxy_download_rate: bytes per second, 0 unlimited.
 * A value with variables is evaluated once per session (nginx 1.19.7).
 */
struct stream_rate {
    struct tmpl value; /* has_vars: evaluated per session */
    uint64_t bytes;    /* the constant's value, when !value.has_vars */
};

/* proxy_bind: the source address of upstream connections. */
struct stream_bind {
    bool off;         /* proxy_bind off: cancels an inherited one */
    bool transparent; /* IP_TRANSPARENT: any address, even not ours */
    struct sockaddr_storage addr; /* a constant address */
    socklen_t addrlen;
    const char *text;  /* as written, for "bind(TEXT) failed" */
    struct tmpl value; /* has_vars: evaluated per session */
};

/* Settings shared by stream{} and server{}; unset is CONF_UNSET or NULL. */
struct stream_settings {
    int ssl_preread;
    int64_t preread_timeout_ms;
    int64_t preread_buffer_size;
    int64_t proxy_connect_timeout_ms;
    int64_t proxy_timeout_ms;
    int proxy_next_upstream;
    int proxy_next_upstream_tries;
    int64_t proxy_next_upstream_timeout_ms;
    int proxy_half_close;
    int tcp_nodelay;
    int64_t proxy_buffer_size;  /* relay buffer per direction, bytes */
    int proxy_splice;           /* relay by splice() where it can */
    int64_t proxy_splice_pipe_size; /* bulk pipes grow to it, bytes */
    int proxy_socket_keepalive; /* SO_KEEPALIVE on the upstream socket */
    struct stream_access_log *access_logs; /* NULL: inherit */
    bool access_log_off;                   /* access_log off */
    bool access_log_set;
    struct errlog *errlog; /* NULL: inherit */
    int http_preread;
    struct stream_resolver *resolver; /* NULL: inherit / none */
    int64_t resolver_timeout_ms;
    struct tmpl *deny_if;                /* NULL: inherit / none */
    struct access_rule *access_rules;    /* allow/deny, in order; NULL:
                                            inherit */
    struct limit_conn_rule *limit_conns; /* limit_conn; NULL: inherit */
    int limit_conn_log_level;            /* enum errlog_level */
    int limit_conn_dry_run;              /* log, never refuse */
    struct cidr *real_ip_from;           /* set_real_ip_from networks */
    size_t nreal_ip_from;
    int proxy_protocol; /* to upstream: 0, 1 (v1), 2 (v2) */
    int64_t proxy_protocol_timeout_ms;
    struct cidr *target_allow; /* proxy_target_allow networks */
    size_t ntarget_allow;
    bool target_allow_set;
    /* open_log_file_cache (stream/compat.c); all 0 until given */
    bool log_cache_set;            /* the directive is in this block */
    int log_cache_max;             /* max=; 0: off */
    int64_t log_cache_inactive_ms; /* inactive=, default 10s */
    int log_cache_min_uses;        /* min_uses=, default 1 */
    int64_t log_cache_valid_ms;    /* valid=, default 60s */
    struct stream_rate *upload_rate;   /* NULL: inherit / unlimited */
    struct stream_rate *download_rate; /* NULL: inherit / unlimited */
    struct stream_bind *proxy_bind;    /* NULL: inherit / none */
};

/* One `allow` or `deny` line. */
struct access_rule {
    struct cidr *net; /* NULL: `all` */
    bool deny;
    struct access_rule *next;
};

/* One `limit_conn ZONE N` line. */
struct limit_conn_rule {
    struct limit_conn_zone *zone;
    int limit;
    struct limit_conn_rule *next;
};

/* One `resolver` line; its c-ares instance exists while serving. */
struct stream_resolver {
    struct resolver_conf rc; /* rc.timeout_ms set per use */
    struct resolver *r;      /* NULL until opened */
    struct stream_resolver *next;
};

/* One `listen` line of a server{}. */
struct stream_listen_ref {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct sock_listen_opts opts;
    bool has_opts; /* a socket option was given (nginx's lsopt.set) */
    bool default_server;
    bool proxy_protocol;
    unsigned line;
    struct stream_listen_ref *next;
};

/* One `server_name` argument. */
struct stream_name {
    const char *name;
    struct stream_name *next;
};

struct stream_server {
    struct stream_settings set;
    struct stream_listen_ref *listen_refs;
    struct stream_name *names;
    enum stream_pass_kind pass_kind;
    struct stream_upstream *pass_upstream; /* PASS_UPSTREAM */
    struct tmpl pass_value;    /* PASS_VALUE: evaluated per session */
    const char *pass_text;     /* the proxy_pass argument */
    struct tmpl *return_value; /* `return VALUE`, or NULL */
    unsigned return_line;
    struct stream_set_cmd *sets; /* `set` lines, in order */
    bool pass_is_client;         /* the value can carry a name the
                                    client chose (SNI, Host) */
    unsigned pass_line;
    bool status;              /* `status`: the content handler is the
                                 status page (stream/status.c) */
    uint32_t metrics_route;   /* its server_name route series */
    uint32_t metrics_dynamic; /* PASS_VALUE: the series of the upstream
                                 servers its value names at run time */
    const char *file;
    unsigned line;
    struct stream_server *next;
};

struct stream_map;
struct compat_main;
struct stream_set_var;

struct stream_conf {
    struct conf_tree *tree; /* the parsed files; strings point here */
    struct arena *arena;    /* tree->arena */
    /* main and events{} */
    int daemon;
    const char *pid_path;
    int worker_processes; /* 0 = auto */
    const char *user;
    const char *group;
    int worker_rlimit_nofile;
    int worker_connections;
    int64_t worker_shutdown_timeout_ms; /* 0: wait for every session */
    int sandbox;                        /* CONF_UNSET, 0, 1 (default) */
    int64_t preread_budget; /* preread bytes a worker holds at once */
    struct errlog errlog;               /* main error_log */
    bool has_errlog;
    bool has_stream;
    /* stream{} */
    struct stream_settings set;
    struct stream_listen *listens;
    struct stream_server *servers;
    struct stream_upstream *upstreams;
    struct stream_map **maps; /* by variable id - VAR_BUILTIN_COUNT */
    size_t nmaps;
    struct stream_set_var *set_vars; /* every variable `set` writes */
    size_t nset_vars;
    struct stream_log_format *formats;
    struct stream_log_file *log_files;
    struct errlog *errlogs; /* stream/server error_logs, for closing */
    struct stream_resolver *resolvers;
    struct limit_conn_zone *zones;
    struct upstream_zone *upzones; /* upstream `zone`s */
    const char *conf_path;      /* the main file, for messages */
    struct compat_main *compat; /* nginx core directives; NULL: none */
    bool keep_pp_tlvs;     /* some $proxy_protocol_tlv_*: sessions keep
                              the PROXY header's TLV area */
    bool transparent;      /* some proxy_bind ... transparent: workers
                              keep CAP_NET_RAW when they drop privileges */
};

#endif
