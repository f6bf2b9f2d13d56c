/* SPDX-License-Identifier: MIT */
/*
 * Name matching as nginx's `map` and stream `server_name` do it: exact keys
 * in a hash, "*.example.com" / ".example.com" / "www.example.*" wildcards,
 * and "~regex" keys (PCRE2) with captures, with nginx's precedence.
 */
#ifndef SNIRELAY_STREAM_HOSTMATCH_H
#define SNIRELAY_STREAM_HOSTMATCH_H

#include <stdbool.h>
#include <stddef.h>

/* Capture groups kept from a regex match, group 0 included. */
#define HOSTMATCH_MAX_CAPS 10

/* An unset group's offsets in hostmatch_caps; equals PCRE2_UNSET. */
#define HOSTMATCH_UNSET (~(size_t)0)

/*
 * A set of keys with opaque values. Owns all its storage (malloc), released
 * by hostmatch_free(); built at config time, then only read. Lookups reuse
 * one PCRE2 match-data block inside the object, so one object must not be
 * searched from two threads at once (snirelay workers are single-threaded).
 */
struct hostmatch;

/* Where a regex matched; filled by hostmatch_find(). */
struct hostmatch_caps {
    const char *subject; /* the name searched (the caller's bytes) */
    size_t count;        /* groups kept, group 0 included; 0 when no regex
                            matched; at most HOSTMATCH_MAX_CAPS */
    size_t ovector[2 * HOSTMATCH_MAX_CAPS]; /* start/end offset pairs into
                            subject; HOSTMATCH_UNSET for unset groups */
};

/*
 * Returns a new empty set, or NULL when out of memory. hostnames true gives
 * `map ... hostnames` / server_name semantics: wildcard keys are allowed and
 * one trailing dot on a looked-up name is ignored. With hostnames false
 * every key other than a regex is an exact string.
 */
struct hostmatch *hostmatch_new(bool hostnames);

/*
 * Adds key (len bytes, copied) with value, which must not be NULL. Keys:
 *   - an exact string, compared ASCII-case-insensitively;
 *   - with hostnames, also "*.example.com" (any name ending in
 *     ".example.com", not "example.com"), ".example.com" ("example.com" and
 *     every name under it) and "www.example.*" ("www.example." followed by
 *     anything);
 *   - "~regex" (PCRE2, case-sensitive) and "~*regex" (caseless), always.
 * A leading '\' is dropped, so "\~x" is the exact key "~x" (as nginx's map).
 *
 * Returns 0, or -1 with a NUL-terminated message in err (errcap bytes; err
 * may be NULL when errcap is 0):
 *   conflicting parameter "x"               the key, or one nginx sees as
 *                                           the same (".a.b" vs "a.b" or
 *                                           "*.a.b"), is already there
 *   invalid server name or wildcard "x"     a bad wildcard: "a.*.b", "*",
 *                                           "*.", "**.a", "a..b", ".*"
 *   pcre2_compile() failed: <msg> in "<re>" at "<rest>"
 *                                           a bad regex (no " at ..." when
 *                                           the error is at the very end)
 *   memory allocation failed
 */
int hostmatch_add(struct hostmatch *m, const char *key, size_t len, void *value,
                  char *err, size_t errcap);

/*
 * Returns the number of the group named by the len bytes of name in the
 * regex added last, or -1 when there is no such group or no regex was
 * added. Lets `map` resolve "$name" in a value to a capture.
 */
int hostmatch_last_group(const struct hostmatch *m, const char *name,
                         size_t len);

/*
 * Finds the value for the len bytes of name, with nginx's precedence:
 *   1. the exact key;
 *   2. the longest matching leading wildcard ("*.a.b" or ".a.b");
 *   3. the longest matching trailing wildcard ("a.b.*");
 *   4. the first matching regex, in the order added.
 * Exact and wildcard keys compare ASCII-case-insensitively; regexes run on
 * name as given (minus the trailing dot dropped in hostnames mode).
 * Wildcards never match an empty name.
 *
 * Returns the value, or NULL when nothing matches (or a regex match failed
 * with a PCRE2 error such as a match limit, as nginx stops there too).
 * caps may be NULL; otherwise its count is 0 unless a regex matched, and
 * then caps points into name. Allocates nothing.
 */
void *hostmatch_find(const struct hostmatch *m, const char *name, size_t len,
                     struct hostmatch_caps *caps);

/*
 * Sets *val and *len to capture group n of caps (a slice of caps->subject)
 * and returns 0; returns -1 when n is out of range or the group is unset.
 */
int hostmatch_cap(const struct hostmatch_caps *caps, size_t n, const char **val,
                  size_t *len);

/* Frees m and everything it owns; NULL is a no-op. */
void hostmatch_free(struct hostmatch *m);

#endif
