/* SPDX-License-Identifier: MIT */
/*
 * The pipe pool (pipe_pool.h). Idle pipes are a stack, so the most recently
 * used (its pages likely still cached) goes out first. Pipes keep the
 * kernel's default size (64 KiB, or less once a user is over
 * fs.pipe-user-pages-soft): resizing would cost a system call per pipe for
 * no measured gain, and cap records what each one really holds.
 */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/bug.h"
#include "net/pipe_pool.h"


/* Idle pipes kept for reuse; above it, a returned pipe is closed. */
#define PIPE_POOL_IDLE_MAX 256


static struct pipe_pool_pipe pipe_pool_idle[PIPE_POOL_IDLE_MAX];
static size_t pipe_pool_nidle;
static size_t pipe_pool_open; /* taken + idle */
static size_t pipe_pool_max;


void
pipe_pool_init(size_t max)
{
    pipe_pool_max = max;
    while (pipe_pool_nidle > 0 && pipe_pool_open > pipe_pool_max) {
        pipe_pool_close(&pipe_pool_idle[--pipe_pool_nidle]);
    }
}


int
pipe_pool_get(struct pipe_pool_pipe *p)
{
    int fds[2];

    if (pipe_pool_nidle > 0) {
        *p = pipe_pool_idle[--pipe_pool_nidle];
        return 0;
    }
    if (pipe_pool_open >= pipe_pool_max) {
        errno = EBUSY;
        return -1;
    }
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) {
        return -1;
    }
    const int size = fcntl(fds[0], F_GETPIPE_SZ);
    p->rd = fds[0];
    p->wr = fds[1];
    /* Pipes have had 64 KiB by default since Linux 2.6.11. */
    p->cap = size > 0 ? (size_t)size : 65536;
    pipe_pool_open++;
    return 0;
}


void
pipe_pool_put(struct pipe_pool_pipe *p)
{
    BUG_ON(p->rd < 0);
    if (pipe_pool_nidle == PIPE_POOL_IDLE_MAX ||
        pipe_pool_open > pipe_pool_max) {
        pipe_pool_close(p);
        return;
    }
    pipe_pool_idle[pipe_pool_nidle++] = *p;
    p->rd = -1;
    p->wr = -1;
}


void
pipe_pool_close(struct pipe_pool_pipe *p)
{
    BUG_ON(p->rd < 0 || pipe_pool_open == 0);
    close(p->rd);
    close(p->wr);
    p->rd = -1;
    p->wr = -1;
    pipe_pool_open--;
}


void
pipe_pool_free(void)
{
    while (pipe_pool_nidle > 0) {
        pipe_pool_close(&pipe_pool_idle[--pipe_pool_nidle]);
    }
}


size_t
pipe_pool_open_count(void)
{
    return pipe_pool_open;
}
