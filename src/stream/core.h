/* SPDX-License-Identifier: MIT */
/*
 * Building one configuration generation from a parsed tree: the main,
 * events{} and stream{} contexts, server{} and listen, and the checks and
 * merges that make the generation whole.
 */
#ifndef SNIRELAY_STREAM_CORE_H
#define SNIRELAY_STREAM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conf_cmd;
struct conf_ctx;
struct conf_err;
struct conf_tree;
struct stream_conf;
struct stream_server;
struct stream_upstream;

/* What the directive setters of all stream modules share while loading. */
struct core_state {
    struct stream_conf *conf;
    struct stream_server *server;     /* server{} being read, or NULL */
    struct stream_upstream *upstream; /* upstream{} being read, or NULL */
};

/*
 * Builds a generation from tree: every directive checked, settings merged,
 * upstream names resolved, log files opened. Takes ownership of tree (the
 * generation points into its strings and frees it). Returns the generation,
 * or NULL with err filled (tree freed too). Warnings go to the error log.
 */
struct stream_conf *stream_conf_build(struct conf_tree *tree, const char *path,
                                      struct conf_err *err);

/* Frees a generation: closes its sockets and log files. */
void stream_conf_free(struct stream_conf *conf);

/* Opens every listening socket. Returns 0, or -1 with err filled. */
int stream_conf_open_listeners(struct stream_conf *conf, struct conf_err *err);

/*
 * Reload: moves the sockets of old's listeners that conf keeps (same
 * address and kind) into conf and opens the rest. On failure everything
 * moved goes back and -1 is returned with err filled.
 */
int stream_conf_take_listeners(struct stream_conf *conf,
                               struct stream_conf *old, struct conf_err *err);

/* Undoes stream_conf_take_listeners(): a reload that is given up. */
void stream_conf_give_back_listeners(struct stream_conf *conf,
                                     struct stream_conf *old);

/* Closes conf's listening sockets (this process's copies). */
void stream_conf_close_listeners(struct stream_conf *conf);

/*
 * Master only, as nginx: closes conf's listening sockets and removes the
 * file of each unix-domain one conf still holds (one handed over to a
 * newer generation is not conf's any more, and its file stays). With log,
 * each removal is logged ("deleting socket PATH", a reload's warning).
 */
void stream_conf_retire_listeners(struct stream_conf *conf, bool log);

/*
 * Closes every descriptor conf holds (listeners, log files) without
 * flushing: a worker's copies of another generation's files.
 */
void stream_conf_close_fds(struct stream_conf *conf);

/*
 * Reopens conf's error and access log files (SIGUSR1). owner: the uid new
 * files are given to, so that workers running as `user` can reopen them
 * after the master (its call, as nginx's); (uid_t)-1 leaves them alone.
 */
void stream_conf_reopen_logs(struct stream_conf *conf, uid_t owner);

/*
 * The i-th directive table the parser dispatches on (main, events,
 * stream/server, upstream, then the nginx-compatibility table), or NULL
 * past the last: for tools/gen_man.c, which fails the build when one of
 * their entries has no row in the README's reference. Each table ends
 * with an entry whose name is NULL.
 */
const struct conf_cmd *core_directives(size_t i);

#endif
