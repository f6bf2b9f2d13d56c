/* SPDX-License-Identifier: MIT */
/*
 * One configuration generation, loaded as the command line asks: the file
 * of -c (or the embedded default), the directives of -g first, and the -e
 * error log where the configuration names none. main.c and the master's
 * reload load through here, so a reload reads exactly what start-up read.
 */
#ifndef SNIRELAY_PROCESS_CYCLE_H
#define SNIRELAY_PROCESS_CYCLE_H

struct conf_err;
struct stream_conf;

/* What the command line says about loading; strings outlive every load. */
struct cycle_opts {
    const char *conf_path; /* -c; NULL: the embedded default config */
    const char *globals;   /* -g directives, or NULL */
    const char *error_log; /* -e FILE or "stderr", or NULL */
};

/* The name the embedded default config goes by in messages. */
#define CYCLE_DEFAULT_NAME "<embedded default config>"

/*
 * Parses and builds a generation. Returns it (free with
 * stream_conf_free()), or NULL with err->msg set (nginx's text, with
 * "in FILE:LINE" where one applies).
 */
struct stream_conf *cycle_load(const struct cycle_opts *o,
                               struct conf_err *err);

/*
 * Writes an [emerg] line for a start-up failure to stderr and, with -e
 * FILE, to that file too (as nginx, whose -e log gets start-up errors).
 */
void cycle_emerg(const struct cycle_opts *o, const char *msg);

#endif
