/* SPDX-License-Identifier: MIT */
/*
 * The stream side of name resolution: the `resolver` and `resolver_timeout`
 * directives, and handing a session's name to the resolver of its server.
 */
#ifndef SNIRELAY_STREAM_RESOLVE_H
#define SNIRELAY_STREAM_RESOLVE_H

#include <stddef.h>

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct loop;
struct session;
struct stream_conf;

const char *resolve_resolver_set(struct conf_ctx *cf, const struct conf_node *n,
                                 const struct conf_cmd *cmd, void *conf);

/* Starts conf's resolvers on loop l. Returns 0, or -1 with err filled. */
int resolve_open_all(struct stream_conf *conf, struct loop *l, char *err,
                     size_t errcap);

/* Stops them. */
void resolve_close_all(struct stream_conf *conf);

/*
 * Resolves s->target (a validated name) with the server's resolver, then
 * calls proxy_resolved(); finalizes s with 500 when no resolver is defined.
 */
void resolve_start(struct session *s);

#endif
