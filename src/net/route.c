/* SPDX-License-Identifier: MIT */
/*
 * Route lookups over rtnetlink (RFC 3549; Linux rtnetlink(7)). One request,
 * RTM_GETROUTE with the destination as RTA_DST, on a socket opened for it
 * and closed after: the answer is one RTM_NEWROUTE (its rtm_type tells a
 * local delivery) or an NLMSG_ERROR (unreachable, prohibited, ...). The
 * answer comes from the kernel, not the network, and is still read with
 * its lengths checked.
 */

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/route.h"


/* Room for one route answer: a header, an rtmsg and a few attributes. */
#define ROUTE_ANSWER_MAX 1024


static enum route_rc route_read_answer(const uint8_t *buf, size_t len,
                                       uint32_t seq);


enum route_rc
route_is_local(const struct sockaddr *sa)
{
    static uint32_t seq;
    struct {
        struct nlmsghdr nh;
        struct rtmsg rt;
        uint8_t attrs[RTA_SPACE(16)];
    } req;
    struct sockaddr_nl kernel;
    uint8_t answer[ROUTE_ANSWER_MAX];
    const void *addr;
    size_t addr_len;
    struct rtattr *rta;
    ssize_t n;
    int fd;
    int saved;

    if (sa->sa_family == AF_INET) {
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
        addr_len = 4;
    } else if (sa->sa_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        addr_len = 16;
    } else {
        errno = EAFNOSUPPORT;
        return ROUTE_ERROR;
    }
    memset(&req, 0, sizeof(req));
    req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    req.nh.nlmsg_type = RTM_GETROUTE;
    req.nh.nlmsg_flags = NLM_F_REQUEST;
    req.nh.nlmsg_seq = ++seq;
    req.rt.rtm_family = (unsigned char)sa->sa_family;
    req.rt.rtm_dst_len = (unsigned char)(addr_len * 8);
    rta = (struct rtattr *)((uint8_t *)&req + NLMSG_ALIGN(req.nh.nlmsg_len));
    rta->rta_type = RTA_DST;
    rta->rta_len = (unsigned short)RTA_LENGTH(addr_len);
    memcpy(RTA_DATA(rta), addr, addr_len);
    req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_SPACE(addr_len);

    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd == -1) {
        return ROUTE_ERROR;
    }
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    do {
        n = sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel,
                   sizeof(kernel));
    } while (n == -1 && errno == EINTR);
    if (n == -1) {
        saved = errno;
        close(fd);
        errno = saved;
        return ROUTE_ERROR;
    }
    /* The kernel queued its answer within sendto(): nothing to wait for. */
    do {
        n = recv(fd, answer, sizeof(answer), MSG_DONTWAIT);
    } while (n == -1 && errno == EINTR);
    saved = errno;
    close(fd);
    if (n == -1) {
        errno = saved;
        return ROUTE_ERROR;
    }
    return route_read_answer(answer, (size_t)n, seq);
}


/*
 * The outcome of the answer to request seq in buf. An error answer for a
 * destination with no route, or one whose route refuses it (unreachable,
 * prohibit), is NOT_LOCAL: such a packet reaches no one, us included.
 */
static enum route_rc
route_read_answer(const uint8_t *buf, size_t len, uint32_t seq)
{
    const struct nlmsghdr *h = (const struct nlmsghdr *)buf;

    if (len < sizeof(*h) || h->nlmsg_len < sizeof(*h) || h->nlmsg_len > len ||
        h->nlmsg_seq != seq) {
        errno = EPROTO;
        return ROUTE_ERROR;
    }
    if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);

        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
            errno = EPROTO;
            return ROUTE_ERROR;
        }
        switch (-e->error) {
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EACCES:
        case EPERM:
            return ROUTE_NOT_LOCAL;
        default:
            errno = e->error < 0 ? -e->error : EPROTO;
            return ROUTE_ERROR;
        }
    }
    if (h->nlmsg_type != RTM_NEWROUTE ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg))) {
        errno = EPROTO;
        return ROUTE_ERROR;
    }
    return ((const struct rtmsg *)NLMSG_DATA(h))->rtm_type == RTN_LOCAL
               ? ROUTE_LOCAL
               : ROUTE_NOT_LOCAL;
}
