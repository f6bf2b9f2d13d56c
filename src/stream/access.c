/* SPDX-License-Identifier: MIT */
/*
 * deny_if: a condition evaluated once preread has set the names.
 */

#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "core/cidr.h"
#include "log/errlog.h"
#include "stream/access.h"
#include "stream/core.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"
#include "stream/stats.h"


const char *
access_deny_if_set(struct conf_ctx *cf, const struct conf_node *n,
                   const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_settings *set = conf;
    struct tmpl *t;
    char err[256];

    (void)cmd;
    if (set->deny_if != NULL) {
        return "\"deny_if\" directive is duplicate";
    }
    t = arena_alloc(cf->arena, sizeof(*t));
    if (t == NULL) {
        return "out of memory";
    }
    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     st->conf, t, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    set->deny_if = t;
    return NULL;
}


/* PREREAD, after preread chose the server: deny_if. */
enum phase_rc
access_deny_if_phase(struct session *s)
{
    const struct tmpl *t = s->server->set.deny_if;
    const char *v;
    size_t len;

    if (t == NULL) {
        return PHASE_NEXT;
    }
    vars_reset();
    v = vars_eval(s, t, &len);
    if (v == NULL || len == 0 || (len == 1 && v[0] == '0')) {
        return PHASE_NEXT;
    }
    session_log(s, ERRLOG_INFO, "access forbidden by \"deny_if\"");
    stats_guard(STATS_GUARD_ALLOW_LIST);
    session_finalize(s, 403);
    return PHASE_DONE;
}


const char *
access_rule_set(struct conf_ctx *cf, const struct conf_node *n,
                const struct conf_cmd *cmd, void *conf)
{
    struct stream_settings *set = conf;
    struct access_rule *r = arena_alloc(cf->arena, sizeof(*r));
    struct access_rule **tail = &set->access_rules;
    const char *a = n->args[1];

    (void)cmd;
    if (r == NULL) {
        return "out of memory";
    }
    r->deny = n->args[0][0] == 'd';
    if (strcmp(a, "all") != 0) {
        r->net = arena_alloc(cf->arena, sizeof(*r->net));
        if (r->net == NULL) {
            return "out of memory";
        }
        if (strcmp(a, "unix:") == 0) {
            /* Every unix-domain client, as nginx (paths are not told
               apart); IP rules never match those, "all" does. */
            r->net->family = AF_UNIX;
        } else if (cidr_parse(a, strlen(a), r->net) == -1) {
            return conf_msg(cf, "invalid parameter \"%s\"", a);
        }
    }
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = r;
    return NULL;
}


/* ACCESS: allow/deny on the client's address, first match wins. */
enum phase_rc
access_phase(struct session *s)
{
    const struct sockaddr *sa = (const struct sockaddr *)&s->client_addr;

    for (const struct access_rule *r = s->server->set.access_rules; r != NULL;
         r = r->next) {
        if (r->net != NULL && !cidr_match(r->net, sa)) {
            continue;
        }
        if (!r->deny) {
            return PHASE_NEXT;
        }
        session_log(s, ERRLOG_ERR, "access forbidden by rule");
        session_finalize(s, 403);
        return PHASE_DONE;
    }
    return PHASE_NEXT;
}
