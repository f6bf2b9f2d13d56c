/* SPDX-License-Identifier: MIT */
/*
 * Shared zones with a robust lock; see shm.h.
 */

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/shm.h"


struct shm_zone *
shm_zone_new(size_t data_len)
{
    const size_t size = sizeof(struct shm_zone) + data_len;
    pthread_mutexattr_t attr;
    struct shm_zone *z;
    int rc;

    z = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
             -1, 0);
    if (z == MAP_FAILED) {
        return NULL;
    }
    z->size = size;
    z->data_len = data_len;
    rc = pthread_mutexattr_init(&attr);
    if (rc == 0) {
        rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    }
    if (rc == 0) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    if (rc == 0) {
        rc = pthread_mutex_init(&z->lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) {
        munmap(z, size);
        errno = rc;
        return NULL;
    }
    return z;
}


void
shm_zone_free(struct shm_zone *z)
{
    if (z != NULL) {
        munmap(z, z->size);
    }
}


enum shm_lock_rc
shm_lock(struct shm_zone *z, int32_t *dead_pid)
{
    const int rc = pthread_mutex_lock(&z->lock);

    if (rc == EOWNERDEAD) {
        if (dead_pid != NULL) {
            *dead_pid = z->holder;
        }
        /* Consistent again once this holder has mended the data. */
        pthread_mutex_consistent(&z->lock);
        z->holder = (int32_t)getpid();
        return SHM_LOCKED_HOLDER_DIED;
    }
    if (rc != 0) {
        return SHM_LOCK_FAILED;
    }
    z->holder = (int32_t)getpid();
    return SHM_LOCKED;
}


void
shm_unlock(struct shm_zone *z)
{
    z->holder = 0;
    pthread_mutex_unlock(&z->lock);
}
