/* SPDX-License-Identifier: MIT */
/*
 * proxy_pass: where a session goes, connecting to it, and moving on to the
 * next upstream server on failure (proxy_next_upstream*).
 */
#ifndef SNIRELAY_STREAM_PROXY_H
#define SNIRELAY_STREAM_PROXY_H

#include <stdint.h>

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct stream_conf;
struct stream_server;
struct stream_rate;

const char *proxy_pass_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);

struct resolver_result;
struct session;

/* Goes on with s once its name resolved (res->status is RESOLVER_OK). */
void proxy_resolved(struct session *s, const struct resolver_result *res);

/*
 * Stops counting s's upstream server as in use (least_conn, max_conns):
 * when the session ends, or earlier once the upstream has closed and its
 * bytes are delivered. s->peer stays set for the logs. Safe to call twice.
 */
void proxy_release(struct session *s);

/* Resolves srv's proxy_pass name to an upstream. NULL or a message. */
const char *proxy_finish(struct conf_ctx *cf, struct stream_conf *conf,
                         struct stream_server *srv);

/* proxy_upload_rate, proxy_download_rate (cmd->offset: the field). */
const char *proxy_rate_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);

/* proxy_bind ADDRESS [transparent] | VALUE | off. */
const char *proxy_bind_set(struct conf_ctx *cf, const struct conf_node *n,
                           const struct conf_cmd *cmd, void *conf);

/*
 * A rate's bytes per second for s (0: unlimited); a value that is not a
 * size is logged ("invalid size") and means unlimited, as in nginx.
 */
uint64_t proxy_rate_eval(struct session *s, const struct stream_rate *r);

#endif
