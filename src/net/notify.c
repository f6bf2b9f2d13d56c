/* SPDX-License-Identifier: MIT */
/*
 * sd_notify(3) without libsystemd: the protocol is one datagram of text
 * lines to an AF_UNIX socket whose name is in $NOTIFY_SOCKET
 * (systemd.io/NOTIFY; sd_notify(3) "Notes"). A name starting with '@' is
 * in the abstract namespace: the '@' becomes a NUL byte. Other forms
 * systemd may hand out (vsock:) are refused with EINVAL.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/notify.h"


enum notify_rc
notify_send(const char *state)
{
    const char *const name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    size_t len;
    socklen_t sun_len;
    int fd;
    ssize_t sent;
    int saved;

    if (name == NULL || name[0] == '\0') {
        return NOTIFY_NO_SOCKET;
    }
    len = strlen(name);
    if (name[0] != '/' && name[0] != '@') {
        errno = EINVAL;
        return NOTIFY_FAILED;
    }
    if (len >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return NOTIFY_FAILED;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, name, len);
    if (name[0] == '@') {
        sun.sun_path[0] = '\0';
    }
    /* An abstract name is exactly its bytes: no NUL is counted after it. */
    sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                          (name[0] == '/' ? 1 : 0));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return NOTIFY_FAILED;
    }
    do {
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                      (const struct sockaddr *)&sun, sun_len);
    } while (sent == -1 && errno == EINTR);
    saved = errno;
    close(fd);
    if (sent == -1) {
        errno = saved;
        return NOTIFY_FAILED;
    }
    return NOTIFY_SENT;
}
