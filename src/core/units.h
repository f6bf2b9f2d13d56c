/* SPDX-License-Identifier: MIT */
/*
 * nginx's value syntax for times, sizes and counts, as written in the
 * configuration: "30s", "1h30m", "500ms", "16k", "1m". Pure functions over
 * (pointer, length); nothing is allocated and the input need not be
 * NUL-terminated.
 */
#ifndef SNIRELAY_CORE_UNITS_H
#define SNIRELAY_CORE_UNITS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses a time as nginx's ngx_parse_time() does and stores it in *ms as
 * milliseconds. Units are y (365 days), M (30 days), w, d, h, m, s and ms;
 * they may be combined ("1h30m", "1d 12h"), each at most once and in
 * descending order. A number without a unit means seconds ("30" is 30000 ms),
 * also when it ends a combination ("1m30" is 90 s). nginx itself refuses y
 * and M where it wants milliseconds; we accept them.
 * Returns 0, or -1 when s is empty, malformed or the total exceeds INT64_MAX
 * milliseconds (*ms is then left alone).
 */
int units_parse_msec(const char *s, size_t len, int64_t *ms);

/*
 * Parses a size as nginx's ngx_parse_size() does: decimal digits and an
 * optional suffix k/K (1024), m/M (1024^2) or g/G (1024^3). Stores bytes in
 * *bytes. Returns 0, or -1 when malformed or above INT64_MAX bytes.
 */
int units_parse_size(const char *s, size_t len, int64_t *bytes);

/*
 * Parses a decimal non-negative integer no greater than INT_MAX (no sign,
 * no spaces, at least one digit) into *out. Returns 0 or -1.
 */
int units_parse_int(const char *s, size_t len, int *out);

#endif
