/* SPDX-License-Identifier: MIT */
/*
 * The pipe pool (pipe_pool.h). Idle pipes are a stack, so the most recently
 * used (its pages likely still cached) goes out first. Pipes keep the
 * kernel's default size (64 KiB, or less once a user is over
 * fs.pipe-user-pages-soft) when made, and cap records what each one really
 * holds. pipe_pool_grow() enlarges one whose direction filled it (bulk:
 * fewer splice() calls and wake-ups per byte); the bytes of enlarged pipes,
 * taken or idle, are counted in pipe_pool_grown against a bound, so a
 * worker never takes more than its share of the user's pipe pages.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "core/bug.h"
#include "net/pipe_pool.h"


/* Idle pipes kept for reuse; above it, a returned pipe is closed. */
#define PIPE_POOL_IDLE_MAX 256

/* The kernel's default pipe size; above it a pipe counts as enlarged. */
#define PIPE_POOL_DEFAULT_SIZE 65536


static struct pipe_pool_pipe pipe_pool_idle[PIPE_POOL_IDLE_MAX];
static size_t pipe_pool_nidle;
static size_t pipe_pool_open; /* taken + idle */
static size_t pipe_pool_max;
static size_t pipe_pool_grown;     /* bytes of enlarged pipes, taken + idle */
static size_t pipe_pool_grown_max; /* its bound */


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
pipe_pool_grow_limit(size_t bytes)
{
    pipe_pool_grown_max = bytes;
}


int
pipe_pool_grow(struct pipe_pool_pipe *p, size_t size)
{
    BUG_ON(p->rd < 0);
    if (size <= p->cap || size > INT_MAX) {
        return 0;
    }
    const size_t was = p->cap > PIPE_POOL_DEFAULT_SIZE ? p->cap : 0;
    if (pipe_pool_grown - was + size > pipe_pool_grown_max) {
        return 0;
    }
    const int got = fcntl(p->wr, F_SETPIPE_SZ, (int)size);
    if (got == -1) {
        return -1;
    }
    p->cap = (size_t)got;
    pipe_pool_grown -= was;
    if (p->cap > PIPE_POOL_DEFAULT_SIZE) {
        pipe_pool_grown += p->cap;
    }
    return 1;
}


size_t
pipe_pool_grown_bytes(void)
{
    return pipe_pool_grown;
}


/*
 * An enlarged pipe going idle while the enlarged pipes are above the bound
 * (lowered since) goes back to the default size. Returns -1 when the
 * kernel refuses: the caller closes it.
 */
static int
pipe_pool_shrink(struct pipe_pool_pipe *p)
{
    if (p->cap <= PIPE_POOL_DEFAULT_SIZE ||
        pipe_pool_grown <= pipe_pool_grown_max) {
        return 0;
    }
    const int got = fcntl(p->wr, F_SETPIPE_SZ, PIPE_POOL_DEFAULT_SIZE);
    if (got == -1) {
        return -1;
    }
    pipe_pool_grown -= p->cap;
    p->cap = (size_t)got;
    if (p->cap > PIPE_POOL_DEFAULT_SIZE) {
        pipe_pool_grown += p->cap;
    }
    return 0;
}


void
pipe_pool_put(struct pipe_pool_pipe *p)
{
    BUG_ON(p->rd < 0);
    if (pipe_pool_shrink(p) == -1) {
        pipe_pool_close(p);
        return;
    }
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
    if (p->cap > PIPE_POOL_DEFAULT_SIZE) {
        BUG_ON(pipe_pool_grown < p->cap);
        pipe_pool_grown -= p->cap;
    }
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
