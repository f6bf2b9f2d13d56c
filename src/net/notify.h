/* SPDX-License-Identifier: MIT */
/*
 * The service manager's readiness protocol (sd_notify(3)), built in: one
 * datagram of "KEY=VALUE\n" lines to the unix socket named by
 * $NOTIFY_SOCKET, for a systemd unit of Type=notify. No libsystemd.
 */
#ifndef SNIRELAY_NET_NOTIFY_H
#define SNIRELAY_NET_NOTIFY_H

enum notify_rc {
    NOTIFY_SENT,      /* the datagram went out */
    NOTIFY_NO_SOCKET, /* $NOTIFY_SOCKET is unset or empty: not under a
                         service manager that asked */
    NOTIFY_FAILED,    /* it could not be sent: errno says why (EINVAL for a
                         value that is no unix socket path, ENAMETOOLONG
                         for one too long, or socket()/sendto()'s) */
};

/*
 * Sends state (e.g. "READY=1\nMAINPID=123") to $NOTIFY_SOCKET: a path, or
 * an abstract socket name written with a leading '@'. Blocks at most as
 * long as a datagram sendto() on a unix socket does (not at all while the
 * manager reads). state must be NUL-terminated.
 */
enum notify_rc notify_send(const char *state);

#endif
