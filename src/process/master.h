/* SPDX-License-Identifier: MIT */
/*
 * The master process: owns the listening sockets and the configuration
 * generations, runs the workers, and turns signals into reloads, stops and
 * log reopening (nginx's signals: HUP, QUIT, TERM/INT, USR1).
 */
#ifndef SNIRELAY_PROCESS_MASTER_H
#define SNIRELAY_PROCESS_MASTER_H

struct cycle_opts;
struct stream_conf;

/*
 * Serves conf (loaded as opts say, listeners open) with its workers until a
 * stop signal; reloads load through opts again. Takes ownership of conf;
 * opts must outlive the call. Returns the exit status.
 */
int master_run(const struct cycle_opts *opts, struct stream_conf *conf);

#endif
