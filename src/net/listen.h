/* SPDX-License-Identifier: MIT */
/*
 * The sockets of one listening address and their hand-over across
 * configuration generations. An address has one socket shared by every
 * worker, or one per worker (reuseport); its sockets are an array of fds
 * where -1 means "not open". On reload, the sockets of an address the new
 * generation keeps (same address, same kind) move to it as the same
 * descriptors, so the kernel's accept queue is never closed; if the reload
 * is given up they move back.
 */
#ifndef SNIRELAY_NET_LISTEN_H
#define SNIRELAY_NET_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "net/sock.h"

#define LISTEN_FDS_MAX 256 /* sockets per address (workers with reuseport) */

/*
 * How many sockets an address needs: 1, or one per worker with reuseport
 * (workers 0 means one per online CPU), at most LISTEN_FDS_MAX.
 */
size_t listen_nfds(bool reuseport, long workers);

/* Sets fds[0..n) to -1 (none open). */
void listen_fds_init(int *fds, size_t n);

/*
 * Opens each socket of fds[0..n) still -1 on sa with o. Returns 0, or -1
 * with errno set and *what naming the failing call; the sockets opened so
 * far stay in fds.
 */
int listen_fds_open(int *fds, size_t n, const struct sockaddr *sa,
                    socklen_t len, const struct sock_listen_opts *o,
                    const char **what);

/*
 * Whether the sockets of an old address (old_sa, old_reuseport) may serve a
 * new one: the same address and the same kind of socket.
 */
bool listen_same(const struct sockaddr *sa, bool reuseport,
                 const struct sockaddr *old_sa, bool old_reuseport);

/*
 * Reload: moves the open sockets of old[0..old_n) into fds[0..n) (as many
 * as both have room for); old's slots become -1.
 */
void listen_fds_take(int *fds, size_t n, int *old, size_t old_n);

/*
 * Undoes listen_fds_take(): each socket goes back to old's empty slot it
 * came from (old may be NULL: nothing to give back to); the rest, opened
 * for the new generation, are closed. fds are all -1 afterwards.
 */
size_t listen_fds_give_back(int *fds, size_t n, int *old, size_t old_n);

/* Closes every open socket of fds[0..n) and sets it to -1. */
void listen_fds_close(int *fds, size_t n);

/*
 * A worker keeps one socket, fds[slot % n], and closes the others.
 * Returns the kept descriptor (or -1).
 */
int listen_fds_keep(int *fds, size_t n, size_t slot);

#endif
