/* SPDX-License-Identifier: MIT */
/*
 * What every libFuzzer target here shares: the entry point's prototype
 * and CHECK(), which traps (a crash libFuzzer saves) when a rule of the
 * parser under test is broken.
 */
#ifndef SNIRELAY_TESTS_FUZZ_H
#define SNIRELAY_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            __builtin_trap();                                                  \
        }                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
