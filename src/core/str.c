/* SPDX-License-Identifier: MIT */
/*
 * The log escaper and ASCII case folding. The escape rules are nginx's, so
 * a log line written by snirelay reads like one written by nginx's stream
 * log module with the same log_format.
 */

#include "core/str.h"


/* The longest escape of one byte: "\u001F" (JSON) is six bytes. */
#define STR_ESCAPE_SEQ_MAX 6


static size_t str_escape_byte(unsigned char ch, enum str_escape mode,
                              char seq[STR_ESCAPE_SEQ_MAX]);


static const char str_hex_upper[] = "0123456789ABCDEF";


size_t
str_escape(char *dst, size_t cap, const char *src, size_t len,
           enum str_escape mode)
{
    size_t need = 0;

    for (size_t i = 0; i < len; i++) {
        char seq[STR_ESCAPE_SEQ_MAX];
        const size_t n = str_escape_byte((unsigned char)src[i], mode, seq);

        for (size_t k = 0; k < n; k++) {
            if (need < cap) {
                dst[need] = seq[k];
            }
            need++;
        }
    }
    return need;
}


/*
 * Puts the escaped form of ch into seq and returns its length (1..6).
 */
static size_t
str_escape_byte(unsigned char ch, enum str_escape mode,
                char seq[STR_ESCAPE_SEQ_MAX])
{
    switch (mode) {
    case STR_ESCAPE_DEFAULT:
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            seq[0] = '\\';
            seq[1] = 'x';
            seq[2] = str_hex_upper[ch >> 4];
            seq[3] = str_hex_upper[ch & 0xf];
            return 4;
        }
        break;

    case STR_ESCAPE_JSON:
        if (ch == '"' || ch == '\\') {
            seq[0] = '\\';
            seq[1] = (char)ch;
            return 2;
        }
        if (ch < 0x20) {
            seq[0] = '\\';
            switch (ch) {
            case '\n':
                seq[1] = 'n';
                return 2;
            case '\r':
                seq[1] = 'r';
                return 2;
            case '\t':
                seq[1] = 't';
                return 2;
            case '\b':
                seq[1] = 'b';
                return 2;
            case '\f':
                seq[1] = 'f';
                return 2;
            default:
                seq[1] = 'u';
                seq[2] = '0';
                seq[3] = '0';
                seq[4] = str_hex_upper[ch >> 4];
                seq[5] = str_hex_upper[ch & 0xf];
                return 6;
            }
        }
        break;

    case STR_ESCAPE_NONE:
        break;
    }
    seq[0] = (char)ch;
    return 1;
}


void
str_lower(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        const unsigned char ch = (unsigned char)src[i];

        dst[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
}
