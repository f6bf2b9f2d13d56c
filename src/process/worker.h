/* SPDX-License-Identifier: MIT */
/*
 * Serving a generation in this process: one event loop, the listeners, and
 * the stop signals. (Master and workers come with the process-model issue.)
 */
#ifndef SNIRELAY_PROCESS_WORKER_H
#define SNIRELAY_PROCESS_WORKER_H

struct stream_conf;

/*
 * Serves conf until SIGTERM, SIGINT or SIGQUIT. Listeners must be open.
 * Returns the process exit status.
 */
int worker_run(struct stream_conf *conf);

#endif
