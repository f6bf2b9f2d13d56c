/* SPDX-License-Identifier: MIT */
/*
 * The event loop: level-triggered epoll for descriptors and a binary min-heap
 * of timers. One loop per process; nothing in it blocks.
 *
 * Owners embed struct loop_io and struct loop_timer in their own objects.
 * An object may be freed only after its io was deleted and its timer
 * cancelled; events already fetched for a deleted io are skipped because
 * loop_io_del() sets io->fd to -1 (so free such objects after the batch:
 * loop_defer()).
 */
#ifndef SNIRELAY_EVENT_LOOP_H
#define SNIRELAY_EVENT_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct loop_timer;

typedef void (*loop_io_fn)(struct loop_io *io, uint32_t events);
typedef void (*loop_timer_fn)(struct loop_timer *t);
typedef void (*loop_defer_fn)(void *data);

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x4u /* EPOLLOUT */
#define LOOP_ERROR 0x8u /* EPOLLERR; EPOLLHUP is reported as READ */
/* Reported with READ: the peer closed its side, so an EOF is waiting. */
#define LOOP_HUP 0x20u
/* With READ: wake one of the processes waiting on a shared listener. */
#define LOOP_EXCLUSIVE 0x10u

struct loop_io {
    int fd;        /* -1 once deleted */
    uint32_t mask; /* LOOP_READ | LOOP_WRITE currently asked for */
    bool in_epoll; /* registered with epoll (only while mask != 0) */
    loop_io_fn fn; /* called with the ready events */
    void *data;    /* owner */
};

struct loop_timer {
    int64_t when_ms;  /* monotonic deadline */
    size_t index;     /* position in the heap; SIZE_MAX when not armed */
    loop_timer_fn fn; /* called once when the deadline passes */
    void *data;       /* owner */
};

/* Creates a loop; NULL with errno set on failure. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Prepares io for fd; not yet registered. */
void loop_io_init(struct loop_io *io, int fd, loop_io_fn fn, void *data);

/*
 * Sets io's interest to mask. Mask 0 takes the fd out of epoll altogether,
 * because epoll reports hang-ups and errors even with no interest, and a
 * level-triggered report nobody acts on would spin the loop. Returns 0 or
 * -1 (errno from epoll_ctl).
 */
int loop_io_set(struct loop *l, struct loop_io *io, uint32_t mask);

/* Unregisters io (the fd is not closed) and sets io->fd to -1. */
void loop_io_del(struct loop *l, struct loop_io *io);

/*
 * Closes io's fd and sets io->fd to -1, with no epoll_ctl(): closing the
 * last descriptor of a socket takes it out of epoll. Only for fds never
 * duplicated (dup, fork, SCM_RIGHTS), which a session's sockets are not.
 */
void loop_io_close(struct loop_io *io);

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *data);

/*
 * Arms t to fire delay_ms from the cached now; re-arms if armed. Returns 0,
 * or -1 (ENOMEM) when the heap had to grow and could not: t is then left
 * unarmed. Moving an armed timer never fails, nor does arming a timer from
 * its own callback before anything else is armed there (firing took it out
 * of the heap, so its slot is free).
 */
int loop_timer_set(struct loop *l, struct loop_timer *t, int64_t delay_ms);

/* Disarms t; a no-op when not armed. */
void loop_timer_cancel(struct loop *l, struct loop_timer *t);

static inline int
loop_timer_armed(const struct loop_timer *t)
{
    return t->index != SIZE_MAX;
}

/*
 * Gives back the room the timer heap and the deferred list grew to in a
 * burst, keeping twice what is in use (and their first sizes). Nothing is
 * lost if it cannot: the arrays stay as they are.
 */
void loop_shrink(struct loop *l);

/* Runs fn(data) after the current batch of events (used to free objects). */
int loop_defer(struct loop *l, loop_defer_fn fn, void *data);

/* Runs until loop_stop(); returns 0, or -1 if epoll_wait fails. */
int loop_run(struct loop *l);

/* Makes loop_run() return after the current batch. */
void loop_stop(struct loop *l);

#endif
