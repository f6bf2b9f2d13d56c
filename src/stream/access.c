/* SPDX-License-Identifier: MIT */
/*
 * deny_if: a condition evaluated once preread has set the names.
 */

#include <string.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "log/errlog.h"
#include "stream/access.h"
#include "stream/core.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"


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


bool
access_check(struct session *s)
{
    const struct tmpl *t = s->server->set.deny_if;
    const char *v;
    size_t len;

    if (t == NULL) {
        return true;
    }
    vars_reset();
    v = vars_eval(s, t, &len);
    if (v == NULL || len == 0 || (len == 1 && v[0] == '0')) {
        return true;
    }
    session_log(s, ERRLOG_INFO, 0, "access forbidden by \"deny_if\"");
    session_finalize(s, 403);
    return false;
}
