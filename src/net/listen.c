/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets of one address as an fd array, and moving them from a
 * generation to the next (see listen.h).
 */

#include <unistd.h>

#include "net/listen.h"
#include "net/sock.h"


size_t
listen_nfds(bool reuseport, long workers)
{
    if (!reuseport) {
        return 1;
    }
    if (workers == 0) {
        workers = sysconf(_SC_NPROCESSORS_ONLN);
    }
    if (workers < 1) {
        return 1;
    }
    return workers > LISTEN_FDS_MAX ? LISTEN_FDS_MAX : (size_t)workers;
}


void
listen_fds_init(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fds[i] = -1;
    }
}


int
listen_fds_open(int *fds, size_t n, const struct sockaddr *sa, socklen_t len,
                const struct sock_listen_opts *o, const char **what)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            continue;
        }
        fds[i] = sock_listen(sa, len, o, what);
        if (fds[i] == -1) {
            return -1;
        }
    }
    return 0;
}


bool
listen_same(const struct sockaddr *sa, bool reuseport,
            const struct sockaddr *old_sa, bool old_reuseport)
{
    /* A unix path is bound once, whatever reuseport says. */
    return sock_addr_equal(sa, old_sa) &&
           (reuseport == old_reuseport || sa->sa_family == AF_UNIX);
}


void
listen_fds_take(int *fds, size_t n, int *old, size_t old_n)
{
    for (size_t i = 0; i < n && i < old_n; i++) {
        fds[i] = old[i];
        old[i] = -1;
    }
}


size_t
listen_fds_give_back(int *fds, size_t n, int *old, size_t old_n)
{
    size_t closed = 0;

    for (size_t i = 0; i < n; i++) {
        if (old != NULL && i < old_n && old[i] == -1) {
            old[i] = fds[i];
        } else if (fds[i] >= 0) {
            close(fds[i]);
            closed++;
        }
        fds[i] = -1;
    }
    return closed;
}


void
listen_fds_close(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
}


int
listen_fds_keep(int *fds, size_t n, size_t slot)
{
    const size_t mine = slot % n;

    for (size_t i = 0; i < n; i++) {
        if (i != mine && fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    return fds[mine];
}
