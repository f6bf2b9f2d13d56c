/* SPDX-License-Identifier: MIT */
/*
 * return: evaluates the value once, writes it to the client and closes.
 * A client that does not read gets nginx's 5 seconds per blocked write,
 * then the session closes ("connection timed out"). An empty value closes
 * at once. Bytes the client sends are not read.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf/parser.h"
#include "core/arena.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "stream/core.h"
#include "stream/return.h"
#include "stream/session.h"
#include "stream/stream.h"
#include "stream/vars.h"


#define RETURN_SEND_TIMEOUT_MS 5000 /* nginx's, per blocked write */


static void return_write_io(struct loop_io *io, uint32_t events);
static void return_timer(struct loop_timer *t);
static void return_send(struct session *s);


const char *
return_directive(struct conf_ctx *cf, const struct conf_node *n,
                 const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;
    struct stream_server *srv = st->server;
    struct tmpl *t;
    char err[256];

    (void)cmd;
    (void)conf;
    if (srv->return_value != NULL) {
        return "\"return\" directive is duplicate";
    }
    t = arena_alloc(cf->arena, sizeof(*t));
    if (t == NULL) {
        return "out of memory";
    }
    if (tmpl_compile(cf->arena, n->args[1], strlen(n->args[1]), vars_resolve,
                     st->conf, t, err, sizeof(err)) != NULL) {
        return conf_msg(cf, "%s", err);
    }
    srv->return_value = t;
    srv->return_line = n->line;
    return NULL;
}


void
return_finish(struct stream_server *srv)
{
    if (srv->return_value == NULL || srv->pass_kind == PASS_NONE) {
        return;
    }
    /* nginx: each sets the server's handler, so the later line wins. */
    errlog_write(NULL, ERRLOG_WARN, 0,
                 "\"return\" in %s:%u and \"proxy_pass\" in %s:%u: the "
                 "server uses the later one",
                 srv->file, srv->return_line, srv->file, srv->pass_line);
    if (srv->return_line > srv->pass_line) {
        srv->pass_kind = PASS_NONE;
    } else {
        srv->return_value = NULL;
    }
}


/* CONTENT: a server with `return` sends its value and closes. */
enum phase_rc
return_phase(struct session *s)
{
    const struct tmpl *t = s->server->return_value;

    if (t == NULL) {
        return PHASE_NEXT;
    }
    s->ret_buf = vars_eval_alloc(s, t, &s->ret_len);
    vars_reset();
    if (s->ret_buf == NULL) {
        session_fail(s, "malloc()");
        return PHASE_DONE;
    }
    return_reply(s);
    return PHASE_DONE;
}


void
return_reply(struct session *s)
{
    if (s->ret_len == 0) {
        session_finalize(s, 200);
        return;
    }
    s->client.fn = return_write_io;
    s->timer.fn = return_timer;
    return_send(s);
}


/* Writes what is left; waits for room, or finalizes s. */
static void
return_send(struct session *s)
{
    /* Bounded: each round writes bytes or returns. */
    while (s->ret_pos < s->ret_len) {
        const ssize_t n = send(s->client.fd, s->ret_buf + s->ret_pos,
                               s->ret_len - s->ret_pos, MSG_NOSIGNAL);

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (session_io_set(s, &s->client, LOOP_WRITE) == 0) {
                session_timer_set(s, &s->timer, RETURN_SEND_TIMEOUT_MS);
            }
            return;
        }
        if (n == -1) {
            session_log(s, ERRLOG_INFO, "send() failed (%d: %s)", errno,
                        strerror(errno));
            session_finalize(s, 500);
            return;
        }
        s->ret_pos += (size_t)n;
        s->bytes_sent += (uint64_t)n;
    }
    session_finalize(s, 200);
}


static void
return_write_io(struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;

    (void)events;
    loop_timer_cancel(s->loop, &s->timer);
    return_send(s);
}


static void
return_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    session_log(s, ERRLOG_INFO,
                "connection timed out (110: Connection timed out)");
    session_finalize(s, 200);
}
