/* SPDX-License-Identifier: MIT */
/*
 * epoll + timer heap. Timers are a binary min-heap with a back-index in each
 * timer, so cancel and re-arm are O(log n); a session keeps one timer whose
 * deadline it moves as its state changes.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/bug.h"
#include "core/clock.h"
#include "event/loop.h"


#define LOOP_MAX_EVENTS 256


struct loop_deferred {
    loop_defer_fn fn;
    void *data;
};

struct loop {
    int epfd;                 /* epoll instance */
    int stop;                 /* set by loop_stop() */
    struct loop_timer **heap; /* min-heap by when_ms */
    size_t heap_len;
    size_t heap_cap;
    struct loop_deferred *deferred; /* run after each batch */
    size_t deferred_len;
    size_t deferred_cap;
};


static void loop_heap_swap(struct loop *l, size_t a, size_t b);
static void loop_heap_up(struct loop *l, size_t i);
static void loop_heap_down(struct loop *l, size_t i);
static int loop_next_timeout(struct loop *l);
static void loop_run_timers(struct loop *l);
static void loop_run_deferred(struct loop *l);


struct loop *
loop_new(void)
{
    struct loop *l = calloc(1, sizeof(*l));

    if (l == NULL) {
        return NULL;
    }
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd == -1) {
        free(l);
        return NULL;
    }
    return l;
}


void
loop_free(struct loop *l)
{
    if (l == NULL) {
        return;
    }
    loop_run_deferred(l);
    close(l->epfd);
    free(l->heap);
    free(l->deferred);
    free(l);
}


void
loop_io_init(struct loop_io *io, int fd, loop_io_fn fn, void *data)
{
    io->fd = fd;
    io->mask = 0;
    io->in_epoll = false;
    io->fn = fn;
    io->data = data;
}


int
loop_io_set(struct loop *l, struct loop_io *io, uint32_t mask)
{
    struct epoll_event ev = {0};

    BUG_ON(io->fd < 0);
    if (io->mask == mask && io->in_epoll == (mask != 0)) {
        return 0;
    }
    if (mask == 0) {
        if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL) == -1) {
            return -1;
        }
        io->in_epoll = false;
        io->mask = 0;
        return 0;
    }
    ev.events = (mask & LOOP_READ ? EPOLLIN | EPOLLRDHUP : 0) |
                (mask & LOOP_WRITE ? EPOLLOUT : 0);
    if (mask & LOOP_EXCLUSIVE) {
        /* EPOLLEXCLUSIVE cannot be modified: delete and add again. */
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        if (io->in_epoll) {
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
            io->in_epoll = false;
        }
    }
    ev.data.ptr = io;
    if (epoll_ctl(l->epfd, io->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd,
                  &ev) == -1) {
        return -1;
    }
    io->in_epoll = true;
    io->mask = mask;
    return 0;
}


void
loop_io_del(struct loop *l, struct loop_io *io)
{
    if (io->fd >= 0 && io->in_epoll) {
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    }
    io->fd = -1;
    io->mask = 0;
    io->in_epoll = false;
}


void
loop_io_close(struct loop_io *io)
{
    if (io->fd >= 0) {
        close(io->fd);
    }
    io->fd = -1;
    io->mask = 0;
    io->in_epoll = false;
}


void
loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *data)
{
    t->when_ms = 0;
    t->index = SIZE_MAX;
    t->fn = fn;
    t->data = data;
}


int
loop_timer_set(struct loop *l, struct loop_timer *t, int64_t delay_ms)
{
    const int64_t when = clock_now_ms() + delay_ms;

    if (t->index != SIZE_MAX) {
        const int64_t old = t->when_ms;
        t->when_ms = when;
        if (when < old) {
            loop_heap_up(l, t->index);
        } else {
            loop_heap_down(l, t->index);
        }
        return 0;
    }
    if (l->heap_len == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 256;
        struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL) {
            return -1;
        }
        l->heap = h;
        l->heap_cap = cap;
    }
    t->when_ms = when;
    t->index = l->heap_len;
    l->heap[l->heap_len++] = t;
    loop_heap_up(l, t->index);
    return 0;
}


void
loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
    size_t i = t->index;

    if (i == SIZE_MAX) {
        return;
    }
    BUG_ON(i >= l->heap_len || l->heap[i] != t);
    l->heap_len--;
    if (i != l->heap_len) {
        l->heap[i] = l->heap[l->heap_len];
        l->heap[i]->index = i;
        loop_heap_down(l, i);
        loop_heap_up(l, i);
    }
    t->index = SIZE_MAX;
}


static void
loop_heap_swap(struct loop *l, size_t a, size_t b)
{
    struct loop_timer *t = l->heap[a];

    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->index = a;
    l->heap[b]->index = b;
}


static void
loop_heap_up(struct loop *l, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->when_ms <= l->heap[i]->when_ms) {
            break;
        }
        loop_heap_swap(l, parent, i);
        i = parent;
    }
}


static void
loop_heap_down(struct loop *l, size_t i)
{
    for (;;) {
        size_t least = i;
        const size_t left = 2 * i + 1;
        const size_t right = left + 1;

        if (left < l->heap_len &&
            l->heap[left]->when_ms < l->heap[least]->when_ms) {
            least = left;
        }
        if (right < l->heap_len &&
            l->heap[right]->when_ms < l->heap[least]->when_ms) {
            least = right;
        }
        if (least == i) {
            return;
        }
        loop_heap_swap(l, least, i);
        i = least;
    }
}


void
loop_shrink(struct loop *l)
{
    const size_t heap_cap = l->heap_len * 2 > 256 ? l->heap_len * 2 : 256;
    const size_t defer_cap =
        l->deferred_len * 2 > 64 ? l->deferred_len * 2 : 64;

    if (l->heap_cap > heap_cap) {
        struct loop_timer **h = realloc(l->heap, heap_cap * sizeof(*h));
        if (h != NULL) {
            l->heap = h;
            l->heap_cap = heap_cap;
        }
    }
    if (l->deferred_cap > defer_cap) {
        struct loop_deferred *d = realloc(l->deferred, defer_cap * sizeof(*d));
        if (d != NULL) {
            l->deferred = d;
            l->deferred_cap = defer_cap;
        }
    }
}


int
loop_defer(struct loop *l, loop_defer_fn fn, void *data)
{
    if (l->deferred_len == l->deferred_cap) {
        size_t cap = l->deferred_cap ? l->deferred_cap * 2 : 64;
        struct loop_deferred *d = realloc(l->deferred, cap * sizeof(*d));
        if (d == NULL) {
            return -1;
        }
        l->deferred = d;
        l->deferred_cap = cap;
    }
    l->deferred[l->deferred_len].fn = fn;
    l->deferred[l->deferred_len].data = data;
    l->deferred_len++;
    return 0;
}


static void
loop_run_deferred(struct loop *l)
{
    /* A deferred call may defer more; the bound is the growing length. */
    for (size_t i = 0; i < l->deferred_len; i++) {
        l->deferred[i].fn(l->deferred[i].data);
    }
    l->deferred_len = 0;
}


static int
loop_next_timeout(struct loop *l)
{
    int64_t delta;

    if (l->deferred_len > 0) {
        return 0;
    }
    if (l->heap_len == 0) {
        return -1;
    }
    delta = l->heap[0]->when_ms - clock_now_ms();
    if (delta <= 0) {
        return 0;
    }
    return delta > INT32_MAX ? INT32_MAX : (int)delta;
}


static void
loop_run_timers(struct loop *l)
{
    const int64_t now = clock_now_ms();

    /* Each fired timer leaves the heap, so this ends. */
    while (l->heap_len > 0 && l->heap[0]->when_ms <= now) {
        struct loop_timer *t = l->heap[0];
        loop_timer_cancel(l, t);
        t->fn(t);
    }
}


void
loop_stop(struct loop *l)
{
    l->stop = 1;
}


int
loop_run(struct loop *l)
{
    struct epoll_event events[LOOP_MAX_EVENTS];

    l->stop = 0;
    clock_update();
    while (!l->stop) {
        const int n =
            epoll_wait(l->epfd, events, LOOP_MAX_EVENTS, loop_next_timeout(l));
        if (n == -1 && errno != EINTR) {
            return -1;
        }
        clock_update();
        for (int i = 0; i < n; i++) {
            struct loop_io *io = events[i].data.ptr;
            uint32_t ev = 0;

            if (io->fd < 0) {
                continue;
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) {
                ev |= LOOP_READ;
            }
            if (events[i].events & (EPOLLHUP | EPOLLRDHUP)) {
                ev |= LOOP_HUP;
            }
            if (events[i].events & EPOLLOUT) {
                ev |= LOOP_WRITE;
            }
            if (events[i].events & EPOLLERR) {
                ev |= LOOP_ERROR | LOOP_READ | LOOP_WRITE;
            }
            io->fn(io, ev);
        }
        loop_run_timers(l);
        loop_run_deferred(l);
    }
    return 0;
}
