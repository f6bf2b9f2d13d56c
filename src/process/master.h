/* SPDX-License-Identifier: MIT */
/*
 * The master process: owns the listening sockets and the configuration
 * generations, runs the workers, and turns signals into reloads, stops and
 * log reopening (nginx's signals: HUP, QUIT, TERM/INT, USR1).
 */
#ifndef SNIRELAY_PROCESS_MASTER_H
#define SNIRELAY_PROCESS_MASTER_H

struct stream_conf;

/*
 * Serves conf (loaded from path, listeners open) with its workers until a
 * stop signal. Takes ownership of conf. Returns the exit status.
 */
int master_run(const char *path, struct stream_conf *conf);

#endif
