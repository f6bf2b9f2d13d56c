/* SPDX-License-Identifier: MIT */
/*
 * A shared zone: one anonymous shared mapping that the master makes before
 * it forks the workers, with a lock that survives its holder's death.
 *
 * The lock is a robust, process-shared pthread mutex: when a process dies
 * holding it, the kernel releases it and the next locker is told so
 * (SHM_LOCKED_HOLDER_DIED) and must mend what the dead holder may have
 * left half-done before it unlocks (the zone is then marked consistent
 * again). The zone also records the holder's pid, for that log line.
 */
#ifndef SNIRELAY_CORE_SHM_H
#define SNIRELAY_CORE_SHM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct shm_zone {
    pthread_mutex_t lock; /* robust, process-shared */
    int32_t holder;       /* pid holding the lock, 0 when free */
    uint32_t pad;
    size_t size;          /* bytes of the whole mapping */
    size_t data_len;      /* bytes at data */
    _Alignas(16) unsigned char data[];
};

enum shm_lock_rc {
    SHM_LOCKED,             /* held; the data is consistent */
    SHM_LOCKED_HOLDER_DIED, /* held; the last holder died inside: mend
                               the data before shm_unlock() */
    SHM_LOCK_FAILED,        /* not held (the mutex is unusable) */
};

/*
 * Maps a zone with at least data_len bytes of zeroed data. Returns it, or
 * NULL with errno set (mmap, or the mutex set-up).
 */
struct shm_zone *shm_zone_new(size_t data_len);

/* Unmaps z in this process; NULL is a no-op. */
void shm_zone_free(struct shm_zone *z);

/* Takes z's lock; *dead_pid (may be NULL) gets the dead holder's pid. */
enum shm_lock_rc shm_lock(struct shm_zone *z, int32_t *dead_pid);

/* Releases z's lock (after mending, when shm_lock() said so). */
void shm_unlock(struct shm_zone *z);

#endif
