/* SPDX-License-Identifier: MIT */
/*
 * A per-process pool of pipes for splice(): the relay takes one when a
 * direction has bytes to move and gives it back once it is empty, so an
 * idle session holds none. Pipes are made on demand (non-blocking,
 * close-on-exec, the kernel's default size) up to a bound set once per
 * worker, and empty ones are kept for reuse; a pipe that still holds bytes
 * is closed instead (pipe_pool_close()), never handed to another session.
 *
 * Bulk: a pipe whose direction filled it may be enlarged (F_SETPIPE_SZ,
 * pipe_pool_grow()), never at creation. The kernel charges pipe pages per
 * user against fs.pipe-user-pages-soft and past it makes every new pipe of
 * the user with 8 KiB, so the pages of a worker's enlarged pipes are
 * bounded (pipe_pool_grow_limit()); an enlarged pipe given back above the
 * bound is shrunk to the default size, or closed.
 */
#ifndef SNIRELAY_NET_PIPE_POOL_H
#define SNIRELAY_NET_PIPE_POOL_H

#include <stddef.h>

/* One pipe: bytes written to wr come out of rd. */
struct pipe_pool_pipe {
    int rd;     /* read end */
    int wr;     /* write end */
    size_t cap; /* bytes it holds when full (F_GETPIPE_SZ) */
};

/*
 * Sets how many pipes may be open at once, taken or idle (0: none, every
 * pipe_pool_get() fails with EBUSY). Closes idle pipes above the new bound.
 */
void pipe_pool_init(size_t max);

/*
 * Gives an empty pipe: an idle one, or a new one. Returns 0, or -1 with
 * errno EBUSY when the bound is reached (a normal state under load: the
 * caller copies instead), or pipe2()'s errno (EMFILE, ENFILE, ENOMEM).
 */
int pipe_pool_get(struct pipe_pool_pipe *p);

/* Takes back p, which must be empty; p's descriptors become -1. */
void pipe_pool_put(struct pipe_pool_pipe *p);

/* Closes p, which may hold bytes; p's descriptors become -1. */
void pipe_pool_close(struct pipe_pool_pipe *p);

/*
 * Bounds the bytes the worker's enlarged pipes may hold, taken or idle,
 * counted at their full size (0: no pipe is ever enlarged).
 */
void pipe_pool_grow_limit(size_t bytes);

/*
 * Enlarges p (taken, possibly holding bytes) to size bytes when it holds
 * less and the bound leaves room. Returns 1 enlarged (p->cap updated), 0 not
 * (already that big, or the bound), -1 with fcntl()'s errno (EPERM above
 * fs.pipe-max-size, EBUSY, ENOMEM): p is unchanged and still usable.
 */
int pipe_pool_grow(struct pipe_pool_pipe *p, size_t size);

/* Bytes the enlarged pipes hold now, taken or idle (for tests, logs). */
size_t pipe_pool_grown_bytes(void);

/* Closes every idle pipe (worker exit); taken ones stay the callers'. */
void pipe_pool_free(void);

/* Pipes open now, taken or idle (for the worker's descriptor budget). */
size_t pipe_pool_open_count(void);

#endif
