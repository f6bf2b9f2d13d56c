/* SPDX-License-Identifier: MIT */
/*
 * Access control after preread. `deny_if VALUE;` ends the session with 403,
 * before any upstream is contacted, when VALUE is non-empty and not "0" (as
 * access_log's if= reads a condition). With a `map ... hostnames` whose
 * default is 1 it makes an allow-list of names: the open-proxy guard that
 * nginx's stream module has no way to say.
 */
#ifndef SNIRELAY_STREAM_ACCESS_H
#define SNIRELAY_STREAM_ACCESS_H

struct conf_cmd;
struct conf_ctx;
struct conf_node;
struct session;

const char *access_deny_if_set(struct conf_ctx *cf, const struct conf_node *n,
                               const struct conf_cmd *cmd, void *conf);

/* `allow` and `deny` (ADDR, CIDR or all), first match wins, as nginx. */
const char *access_rule_set(struct conf_ctx *cf, const struct conf_node *n,
                            const struct conf_cmd *cmd, void *conf);

/*
 * The phase handlers are declared in stream/session.h: access_phase()
 * (allow/deny, ACCESS phase, 403) and access_deny_if_phase() (deny_if, end
 * of the PREREAD phase, 403).
 */

#endif
