/* SPDX-License-Identifier: MIT */
/*
 * The status handler: reads one request head, answers it from the metrics
 * store (stream/stats) and closes; see status.h. The head is read for at
 * most STATUS_READ_TIMEOUT_MS; the reply is sent by return_reply().
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "event/loop.h"
#include "log/errlog.h"
#include "proto/http_req.h"
#include "stream/core.h"
#include "stream/return.h"
#include "stream/session.h"
#include "stream/stats.h"
#include "stream/status.h"
#include "stream/stream.h"


#define STATUS_READ_TIMEOUT_MS 10000


static void status_read_io(struct loop_io *io, uint32_t events);
static void status_timer(struct loop_timer *t);
static void status_answer(struct session *s);
static void status_reply(struct session *s, int code, const char *type,
                         const struct stats_buf *body, const char *extra);


const char *
status_directive(struct conf_ctx *cf, const struct conf_node *n,
                 const struct conf_cmd *cmd, void *conf)
{
    struct core_state *st = cf->data;

    (void)n;
    (void)cmd;
    (void)conf;
    if (st->server->status) {
        return "\"status\" directive is duplicate";
    }
    st->server->status = true;
    return NULL;
}


/* CONTENT: a server with `status` answers one HTTP request. */
enum phase_rc
status_phase(struct session *s)
{
    if (!s->server->status) {
        return PHASE_NEXT;
    }
    s->req = malloc(sizeof(*s->req));
    if (s->req == NULL) {
        session_fail(s, "malloc()");
        return PHASE_DONE;
    }
    http_req_init(s->req);
    /* Bytes preread already holds come first. */
    if (s->pre_len > 0 &&
        http_req_feed(s->req, s->pre_buf, s->pre_len) != HTTP_REQ_NEED_MORE) {
        status_answer(s);
        return PHASE_DONE;
    }
    s->client.fn = status_read_io;
    s->timer.fn = status_timer;
    if (session_io_set(s, &s->client, LOOP_READ) == 0) {
        session_timer_set(s, &s->timer, STATUS_READ_TIMEOUT_MS);
    }
    return PHASE_DONE;
}


static void
status_read_io(struct loop_io *io, uint32_t events)
{
    struct session *s = io->data;
    unsigned char buf[2048];

    (void)events;
    /* Bounded by HTTP_REQ_HEAD_MAX: each round feeds bytes or returns. */
    for (;;) {
        const ssize_t n = recv(io->fd, buf, sizeof(buf), 0);

        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n == -1) {
            session_log(s, ERRLOG_INFO, "recv() failed (%d: %s)", errno,
                        strerror(errno));
            session_finalize(s, 200);
            return;
        }
        if (n == 0) {
            session_log(s, ERRLOG_INFO, "client closed connection");
            session_finalize(s, 200);
            return;
        }
        s->bytes_received += (uint64_t)n;
        if (http_req_feed(s->req, buf, (size_t)n) != HTTP_REQ_NEED_MORE) {
            loop_timer_cancel(s->loop, &s->timer);
            if (session_io_set(s, &s->client, 0) == 0) {
                status_answer(s);
            }
            return;
        }
    }
}


static void
status_timer(struct loop_timer *t)
{
    struct session *s = t->data;

    session_log(s, ERRLOG_INFO, "client timed out reading the request");
    session_finalize(s, 200);
}


/* The head is read (or refused): builds and sends the reply. */
static void
status_answer(struct session *s)
{
    const struct http_req *r = s->req;
    struct stats_buf body = {NULL, 0, 0, false};
    const char *type = "text/plain; charset=utf-8";
    enum stats_format f;
    size_t path_len;

    if (r->rc != HTTP_REQ_DONE) {
        session_log(s, ERRLOG_INFO, "bad status request: %s", r->reason);
        stats_buf_printf(&body, "bad request\n");
        status_reply(s, 400, type, &body, NULL);
        return;
    }
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        stats_buf_printf(&body, "method not allowed\n");
        status_reply(s, 405, type, &body, "Allow: GET, HEAD\r\n");
        return;
    }
    path_len = strcspn(r->target, "?");
    if (path_len == 8 && memcmp(r->target, "/metrics", 8) == 0) {
        f = STATS_PROMETHEUS;
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (path_len == 12 && memcmp(r->target, "/status.json", 12) == 0) {
        f = STATS_JSON;
        type = "application/json";
    } else if (path_len == 1 && r->target[0] == '/') {
        f = STATS_HTML;
        type = "text/html; charset=utf-8";
    } else if (path_len == 8 && memcmp(r->target, "/healthz", 8) == 0) {
        stats_buf_printf(&body, "ok\n");
        status_reply(s, 200, type, &body, NULL);
        return;
    } else {
        stats_buf_printf(&body, "not found\n");
        status_reply(s, 404, type, &body, NULL);
        return;
    }
    if (stats_render(&body, s->conf, f) == -1) {
        session_log(s, ERRLOG_ALERT, "status page could not be rendered");
        stats_buf_free(&body);
        stats_buf_printf(&body, "internal error\n");
        status_reply(s, 500, "text/plain; charset=utf-8", &body, NULL);
        return;
    }
    status_reply(s, 200, type, &body, NULL);
}


/* Sends the head and body (not for HEAD), then closes; frees body. */
static void
status_reply(struct session *s, int code, const char *type,
             const struct stats_buf *body, const char *extra)
{
    static const char *const texts[] = {[0] = "OK",
                                        [1] = "Bad Request",
                                        [2] = "Not Found",
                                        [3] = "Method Not Allowed",
                                        [4] = "Internal Server Error"};
    const char *text = code == 200   ? texts[0]
                       : code == 400 ? texts[1]
                       : code == 404 ? texts[2]
                       : code == 405 ? texts[3]
                                     : texts[4];
    const bool is_head =
        s->req->rc == HTTP_REQ_DONE && strcmp(s->req->method, "HEAD") == 0;
    struct stats_buf out = {NULL, 0, 0, false};
    const size_t len = body->failed ? 0 : body->len;

    stats_buf_printf(&out,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: default-src 'none'; "
                     "style-src 'unsafe-inline'\r\n%sConnection: close\r\n\r\n",
                     code, text, type, len, extra != NULL ? extra : "");
    if (!is_head && len > 0) {
        stats_buf_printf(&out, "%.*s", (int)len, body->data);
    }
    free(body->data);
    if (out.failed) {
        stats_buf_free(&out);
        session_fail(s, "malloc()");
        return;
    }
    s->ret_buf = out.data;
    s->ret_len = out.len;
    s->ret_pos = 0;
    return_reply(s);
}
