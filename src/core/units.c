/* SPDX-License-Identifier: MIT */
/*
 * nginx time and size syntax. The time grammar follows ngx_parse_time():
 * a sequence of "<digits><unit>" steps whose units must strictly descend,
 * optionally ending in bare digits that count as seconds. Every
 * multiplication and addition is checked against INT64_MAX first.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/units.h"

#define UNITS_MS_PER_SEC INT64_C(1000)
#define UNITS_MS_PER_MIN (60 * UNITS_MS_PER_SEC)
#define UNITS_MS_PER_HOUR (60 * UNITS_MS_PER_MIN)
#define UNITS_MS_PER_DAY (24 * UNITS_MS_PER_HOUR)

/* The steps of a time value, largest first; each unit may follow only a
 * larger one. UNITS_STEP_LAST follows a bare number ended by a space. */
enum units_step {
    UNITS_STEP_START = 0,
    UNITS_STEP_YEAR,
    UNITS_STEP_MONTH,
    UNITS_STEP_WEEK,
    UNITS_STEP_DAY,
    UNITS_STEP_HOUR,
    UNITS_STEP_MIN,
    UNITS_STEP_SEC,
    UNITS_STEP_MSEC,
    UNITS_STEP_LAST
};

static int units_add_scaled(int64_t *total, int64_t value, int64_t scale);
static int units_parse_digits(const char *s, size_t len, int64_t *out);

int
units_parse_msec(const char *s, size_t len, int64_t *ms)
{
    const char *p = s;
    const char *const end = s + len;
    enum units_step step = UNITS_STEP_START;
    int64_t value = 0;
    int64_t total = 0;
    bool is_valid = false;

    while (p < end) {
        const char c = *p++;

        if (c >= '0' && c <= '9') {
            const int digit = c - '0';

            if (value > (INT64_MAX - digit) / 10) {
                return -1;
            }
            value = value * 10 + digit;
            is_valid = true;
            continue;
        }

        enum units_step next;
        int64_t scale;

        switch (c) {
        case 'y':
            next = UNITS_STEP_YEAR;
            scale = 365 * UNITS_MS_PER_DAY;
            break;
        case 'M':
            next = UNITS_STEP_MONTH;
            scale = 30 * UNITS_MS_PER_DAY;
            break;
        case 'w':
            next = UNITS_STEP_WEEK;
            scale = 7 * UNITS_MS_PER_DAY;
            break;
        case 'd':
            next = UNITS_STEP_DAY;
            scale = UNITS_MS_PER_DAY;
            break;
        case 'h':
            next = UNITS_STEP_HOUR;
            scale = UNITS_MS_PER_HOUR;
            break;
        case 'm':
            if (p < end && *p == 's') {
                p++;
                next = UNITS_STEP_MSEC;
                scale = 1;
            } else {
                next = UNITS_STEP_MIN;
                scale = UNITS_MS_PER_MIN;
            }
            break;
        case 's':
            next = UNITS_STEP_SEC;
            scale = UNITS_MS_PER_SEC;
            break;
        case ' ':
            /* "5 " is five seconds and nothing may follow but spaces. */
            if (step >= UNITS_STEP_SEC) {
                return -1;
            }
            next = UNITS_STEP_LAST;
            scale = UNITS_MS_PER_SEC;
            break;
        default:
            return -1;
        }

        if (next != UNITS_STEP_LAST && step >= next) {
            return -1;
        }
        step = next;
        if (units_add_scaled(&total, value, scale) == -1) {
            return -1;
        }
        value = 0;
        while (p < end && *p == ' ') {
            p++;
        }
    }

    if (!is_valid) {
        return -1;
    }
    if (units_add_scaled(&total, value, UNITS_MS_PER_SEC) == -1) {
        return -1;
    }
    *ms = total;
    return 0;
}

/* Adds value * scale to *total; -1 (and *total unchanged) on overflow. */
static int
units_add_scaled(int64_t *total, int64_t value, int64_t scale)
{
    if (value > INT64_MAX / scale) {
        return -1;
    }
    value *= scale;
    if (*total > INT64_MAX - value) {
        return -1;
    }
    *total += value;
    return 0;
}

int
units_parse_size(const char *s, size_t len, int64_t *bytes)
{
    int64_t scale = 1;
    int64_t value;

    if (len == 0) {
        return -1;
    }
    switch (s[len - 1]) {
    case 'k':
    case 'K':
        scale = 1024;
        len--;
        break;
    case 'm':
    case 'M':
        scale = 1024 * 1024;
        len--;
        break;
    case 'g':
    case 'G':
        scale = 1024 * 1024 * 1024;
        len--;
        break;
    default:
        break;
    }
    if (units_parse_digits(s, len, &value) == -1 || value > INT64_MAX / scale) {
        return -1;
    }
    *bytes = value * scale;
    return 0;
}

int
units_parse_int(const char *s, size_t len, int *out)
{
    int64_t value;

    if (units_parse_digits(s, len, &value) == -1 || value > INT_MAX) {
        return -1;
    }
    *out = (int)value;
    return 0;
}

/* Parses one or more decimal digits and nothing else into *out, or -1. */
static int
units_parse_digits(const char *s, size_t len, int64_t *out)
{
    int64_t value = 0;

    if (len == 0) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        const int digit = s[i] - '0';

        if (value > (INT64_MAX - digit) / 10) {
            return -1;
        }
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}
