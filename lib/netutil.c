/* Small TCP helpers for services: addresses, listening sockets, connecting, telling TLS from plain.
 */
#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define TLS_HANDSHAKE_RECORD 0x16

bool net_is_ip_literal(const char *text)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1;
}

int net_address_parse(const char *host, int port, struct net_address *ret_address)
{
    struct net_address address = {0};

    if (port < 0 || port > 65535)
        return -EINVAL;
    if (strchr(host, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&address.addr;

        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return -EINVAL;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        address.len = sizeof(*in6);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&address.addr;

        if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
            return -EINVAL;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        address.len = sizeof(*in4);
    }
    *ret_address = address;
    return 0;
}

int net_address_resolve(const char *host, int port, struct net_address *ret_address, char *err,
                        size_t err_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    char service[8];
    int r;

    if (net_address_parse(host, port, ret_address) == 0)
        return 0;
    snprintf(service, sizeof(service), "%d", port);
    r = getaddrinfo(host, service, &hints, &found);
    if (r != 0 || !found || found->ai_addrlen > sizeof(ret_address->addr)) {
        snprintf(err, err_len, "cannot resolve '%s': %s", host,
                 r != 0 ? gai_strerror(r) : "no address");
        if (found)
            freeaddrinfo(found);
        return -EINVAL;
    }
    memset(ret_address, 0, sizeof(*ret_address));
    memcpy(&ret_address->addr, found->ai_addr, found->ai_addrlen);
    ret_address->len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

void net_address_format(const struct sockaddr *addr, socklen_t len, char *buf, size_t buf_len)
{
    char host[INET6_ADDRSTRLEN];

    if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)addr;

        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        snprintf(buf, buf_len, "%s:%u", host, ntohs(in4->sin_port));
    } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, buf_len, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, buf_len, "?");
    }
}

void net_peer_format(int fd, char *buf, size_t buf_len)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    if (getpeername(fd, (struct sockaddr *)&addr, &len) < 0)
        snprintf(buf, buf_len, "?");
    else
        net_address_format((struct sockaddr *)&addr, len, buf, buf_len);
}

static int close_with(int fd, int r)
{
    close(fd);
    return r;
}

int net_listen(const struct net_address *address, int flags, int backlog)
{
    int one = 1, zero = 0;
    int fd = socket(address->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return close_with(fd, -errno);
    if ((flags & NET_LISTEN_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        return close_with(fd, -errno);
    /* "::" serves IPv4 clients too, whatever net.ipv6.bindv6only says. */
    if (address->addr.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
        return close_with(fd, -errno);
    if (bind(fd, (const struct sockaddr *)&address->addr, address->len) < 0 ||
        listen(fd, backlog) < 0)
        return close_with(fd, -errno);
    return fd;
}

int net_probe_free(const struct net_address *address)
{
    int one = 1, zero = 0;
    int fd = socket(address->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    /* SO_REUSEADDR only lets the bind through connections in TIME_WAIT, never a listener. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        return close_with(fd, -errno);
    if (address->addr.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
        return close_with(fd, -errno);
    if (bind(fd, (const struct sockaddr *)&address->addr, address->len) < 0)
        return close_with(fd, -errno);
    return close_with(fd, 0);
}

int net_set_nodelay(int fd)
{
    int one = 1;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

int net_connect(const struct net_address *address, int *ret_in_progress)
{
    int fd = socket(address->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (net_set_nodelay(fd) < 0)
        return close_with(fd, -errno);
    if (connect(fd, (const struct sockaddr *)&address->addr, address->len) == 0) {
        *ret_in_progress = 0;
        return fd;
    }
    if (errno != EINPROGRESS)
        return close_with(fd, -errno);
    *ret_in_progress = 1;
    return fd;
}

int net_connect_result(int fd)
{
    int error = 0;
    socklen_t len = sizeof(error);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
        return -errno;
    return -error;
}

int net_sniff_tls(int fd)
{
    unsigned char first;
    ssize_t n;

    do {
        n = recv(fd, &first, 1, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n == 0)
        return 0;
    return first == TLS_HANDSHAKE_RECORD ? NET_SNIFF_TLS : NET_SNIFF_PLAIN;
}

long net_raise_nofile_limit(void)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        return -errno;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
            return -errno;
    }
    return limit.rlim_cur == RLIM_INFINITY ? (long)1 << 30 : (long)limit.rlim_cur;
}

bool net_unix_socket_at(int fd, int type, const char *path)
{
    struct sockaddr_un addr;
    socklen_t len = sizeof(addr);
    int value = 0;
    socklen_t value_len = sizeof(value);
    struct stat st;

    memset(&addr, 0, sizeof(addr));
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX ||
        len <= offsetof(struct sockaddr_un, sun_path) ||
        strncmp(addr.sun_path, path, sizeof(addr.sun_path)) != 0)
        return false;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &value_len) < 0 || value != type)
        return false;
    if (type == SOCK_STREAM &&
        (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &value_len) < 0 || !value))
        return false;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}
