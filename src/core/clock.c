/* SPDX-License-Identifier: MIT */
/*
 * Cached clocks and the formatted wall times the logs need. The strings are
 * rebuilt only when the second changes.
 */

#include <stdio.h>
#include <time.h>

#include "core/clock.h"


static int64_t clock_mono_ms;
static int64_t clock_real_ms;
static time_t clock_formatted_sec = -1;
static char clock_local[64];
static char clock_iso[64];
static char clock_err[64];


static void clock_format(time_t sec);


void
clock_update(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    clock_mono_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    clock_gettime(CLOCK_REALTIME, &ts);
    clock_real_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (ts.tv_sec != clock_formatted_sec) {
        clock_format(ts.tv_sec);
    }
}


static void
clock_format(time_t sec)
{
    struct tm tm;
    char zone[24];
    int off;

    localtime_r(&sec, &tm);
    off = (int)(tm.tm_gmtoff / 60) % (24 * 60);
    snprintf(zone, sizeof(zone), "%c%02d%02d", off < 0 ? '-' : '+',
             (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
    strftime(clock_local, sizeof(clock_local), "%d/%b/%Y:%H:%M:%S ", &tm);
    snprintf(clock_local + 21, sizeof(clock_local) - 21, "%s", zone);
    strftime(clock_iso, sizeof(clock_iso), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(clock_iso + 19, sizeof(clock_iso) - 19, "%c%.2s:%.2s", zone[0],
             zone + 1, zone + 3);
    strftime(clock_err, sizeof(clock_err), "%Y/%m/%d %H:%M:%S", &tm);
    clock_formatted_sec = sec;
}


int64_t
clock_now_ms(void)
{
    if (clock_formatted_sec == -1) {
        clock_update();
    }
    return clock_mono_ms;
}


int64_t
clock_wall_ms(void)
{
    if (clock_formatted_sec == -1) {
        clock_update();
    }
    return clock_real_ms;
}


const char *
clock_time_local(void)
{
    return clock_local;
}


const char *
clock_time_iso8601(void)
{
    return clock_iso;
}


const char *
clock_time_errlog(void)
{
    if (clock_formatted_sec == -1) {
        clock_update();
    }
    return clock_err;
}
