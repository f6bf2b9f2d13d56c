/* SPDX-License-Identifier: MIT */
/*
 * BUG_ON(): an always-on invariant check. A broken invariant means the
 * process state cannot be trusted, so it logs where and aborts, in release
 * builds too (HAProxy's include/haproxy/bug.h does the same).
 */
#ifndef SNIRELAY_CORE_BUG_H
#define SNIRELAY_CORE_BUG_H

#include <stdio.h>
#include <stdlib.h>

#define BUG_ON(cond)                                                           \
    do {                                                                       \
        if (cond) {                                                            \
            fprintf(stderr, "snirelay: BUG at %s:%d: %s\n", __FILE__,          \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
