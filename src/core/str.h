/* SPDX-License-Identifier: MIT */
/*
 * Byte-string helpers. str_escape() is the one way network bytes reach a
 * log (STYLE rule 32): it reproduces nginx's log_format escape=default,
 * escape=json and escape=none byte for byte.
 */
#ifndef SNIRELAY_CORE_STR_H
#define SNIRELAY_CORE_STR_H

#include <stddef.h>

enum str_escape {
    STR_ESCAPE_DEFAULT, /* nginx escape=default: \xHH for unsafe bytes */
    STR_ESCAPE_JSON,    /* nginx escape=json: JSON string escapes */
    STR_ESCAPE_NONE,    /* nginx escape=none: bytes copied unchanged */
};

/*
 * Writes the len bytes of src, escaped per mode, into dst. At most cap bytes
 * are written and no NUL is added; dst may be NULL when cap is 0. When the
 * output does not fit, dst holds its first cap bytes (an escape sequence may
 * be cut, as snprintf cuts). Returns the number of bytes the whole escaped
 * output needs, so a result greater than cap means truncation.
 *
 * DEFAULT (nginx ngx_stream_log_escape): every byte below 0x20, from 0x7f
 * up, '"' and '\' becomes \xHH with uppercase hex; the rest is copied.
 * JSON (nginx ngx_escape_json): '"' and '\' get a backslash; \n \r \t \b \f
 * become their two-byte forms; other bytes below 0x20 become \u00XX with
 * uppercase hex; everything else, including bytes from 0x7f up, is copied.
 * NONE: copied.
 */
size_t str_escape(char *dst, size_t cap, const char *src, size_t len,
                  enum str_escape mode);

/*
 * Copies len bytes of src to dst with ASCII 'A'..'Z' folded to lowercase;
 * other bytes are copied unchanged. dst and src may be the same buffer.
 */
void str_lower(char *dst, const char *src, size_t len);

#endif
