/* SPDX-License-Identifier: MIT */
/*
 * `return VALUE;` (server context), as nginx's ngx_stream_return_module:
 * the content handler that sends VALUE (text and variables, evaluated per
 * session) to the client and closes the session with status 200. The
 * handler itself, return_phase(), is declared in stream/session.h.
 */
#ifndef SNIRELAY_STREAM_RETURN_H
#define SNIRELAY_STREAM_RETURN_H

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct session;
struct stream_server;

/* The `return` directive. */
const char *return_directive(struct conf_ctx *cf, const struct conf_node *n,
                             const struct conf_cmd *cmd, void *conf);

/*
 * Once the server is read: with both `return` and `proxy_pass`, the later
 * line is the server's content handler, as in nginx (a warning names both).
 */
void return_finish(struct stream_server *srv);

/*
 * Sends s->ret_buf (s->ret_len bytes, malloc'd, freed with s) to the
 * client and finalizes s with 200 once it is sent, the client is gone, or
 * a write stays blocked for 5 seconds. An empty reply closes at once.
 */
void return_reply(struct session *s);

#endif
