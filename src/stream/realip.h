/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol: reading the header on `listen ... proxy_protocol`,
 * `set_real_ip_from` (the header's address becomes $remote_addr only for
 * trusted peers), and sending a header upstream (`proxy_protocol on|v2`,
 * where v2 carries the preread name in a PP2_TYPE_AUTHORITY TLV).
 */
#ifndef SNIRELAY_STREAM_REALIP_H
#define SNIRELAY_STREAM_REALIP_H

#include <stddef.h>
#include <stdint.h>

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct session;

const char *realip_from_set(struct conf_ctx *cf, const struct conf_node *n,
                            const struct conf_cmd *cmd, void *conf);
const char *realip_proxy_protocol_set(struct conf_ctx *cf,
                                      const struct conf_node *n,
                                      const struct conf_cmd *cmd, void *conf);

/*
 * Builds the header to send upstream for s into buf (cap bytes;
 * PROXY_PROTO_BUILD_MAX suffices) and sets *len to its length, 0 when the
 * server sends none. v1 gets the addresses only; v2 also the preread name
 * as an AUTHORITY TLV. Returns 0, or -1 when the header could not be
 * built: the caller must then close the session, never send the stream
 * without the header the backend expects.
 */
int realip_upstream_header(struct session *s, uint8_t *buf, size_t cap,
                           size_t *len);

#endif
