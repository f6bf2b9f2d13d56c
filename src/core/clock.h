/* SPDX-License-Identifier: MIT */
/*
 * Cached clocks. The event loop calls clock_update() once per wake-up, so
 * every session in that batch sees the same "now" and no timestamp costs a
 * system call.
 */
#ifndef SNIRELAY_CORE_CLOCK_H
#define SNIRELAY_CORE_CLOCK_H

#include <stdint.h>

/* Re-reads the monotonic and wall clocks. */
void clock_update(void);

/* Monotonic milliseconds, as of the last clock_update(). */
int64_t clock_now_ms(void);

/* Wall-clock milliseconds since the epoch, as of the last clock_update(). */
int64_t clock_wall_ms(void);

/* "26/Nov/2026:14:00:00 +0000" ($time_local), valid until the next update. */
const char *clock_time_local(void);

/* "2026-11-26T14:00:00+00:00" ($time_iso8601). */
const char *clock_time_iso8601(void);

/* "2026/11/26 14:00:00" (error-log timestamps). */
const char *clock_time_errlog(void);

#endif
