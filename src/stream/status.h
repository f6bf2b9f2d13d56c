/* SPDX-License-Identifier: MIT */
/*
 * `status;` (server context, our extension): the server's content handler
 * answers HTTP/1.x requests about the proxy itself instead of proxying:
 *
 *   /metrics      Prometheus text exposition
 *   /status.json  the same families as JSON
 *   /healthz      "ok"
 *   /             the HTML status page
 *
 * GET and HEAD only (anything else 405), 404 for another path, 400 for a
 * request head that does not parse (proto/http_req). One request per
 * connection. allow/deny apply as on any server. The handler itself,
 * status_phase(), is declared in stream/session.h.
 */
#ifndef SNIRELAY_STREAM_STATUS_H
#define SNIRELAY_STREAM_STATUS_H

struct conf_cmd;
struct conf_ctx;
struct conf_node;

/* The `status` directive. */
const char *status_directive(struct conf_ctx *cf, const struct conf_node *n,
                             const struct conf_cmd *cmd, void *conf);

#endif
