/* Small TCP helpers for services: addresses, listening sockets, connecting, telling TLS from plain.
 */
#ifndef CERTVISOR_NETUTIL_H
#define CERTVISOR_NETUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Long enough for "[" IPv6 "]:" port and the NUL. */
#define NET_ADDRESS_MAX 64

struct net_address {
    struct sockaddr_storage addr;
    socklen_t len;
};

/*
 * Parses a numeric IPv4 or IPv6 address ("0.0.0.0", "::", "127.0.0.1", "::1",
 * without brackets) and a port. Returns 0, or -EINVAL when host is not one.
 */
int net_address_parse(const char *host, int port, struct net_address *ret_address);

/* Whether text is an IPv4 or IPv6 address literal (no brackets, no port). */
bool net_is_ip_literal(const char *text);

/*
 * Resolves host (a name or a numeric address) and port to the first TCP
 * address getaddrinfo() gives; it may block on DNS. Returns 0, or -EINVAL
 * with the resolver's reason in err.
 */
int net_address_resolve(const char *host, int port, struct net_address *ret_address, char *err,
                        size_t err_len);

/* Formats "1.2.3.4:5" or "[::1]:5" (always NUL-terminated). */
void net_address_format(const struct sockaddr *addr, socklen_t len, char *buf, size_t buf_len);

/* The peer of a connected socket, formatted as above ("?" when unknown). */
void net_peer_format(int fd, char *buf, size_t buf_len);

enum net_listen_flags {
    /*
     * SO_REUSEPORT: several sockets (one per worker thread) listen on the same
     * address and the kernel spreads connections among them. Only sockets
     * that all set it may share a port.
     */
    NET_LISTEN_REUSEPORT = 1 << 0,
};

/*
 * Opens a non-blocking, close-on-exec TCP socket listening on address
 * (SO_REUSEADDR, and IPV6_V6ONLY off for "::" so it takes IPv4 too).
 * Returns the descriptor or a negative errno (-EADDRINUSE, -EACCES...).
 */
int net_listen(const struct net_address *address, int flags, int backlog);

/*
 * Checks that nobody listens on address, by binding a socket without
 * SO_REUSEPORT and closing it at once. Call it before opening the first
 * NET_LISTEN_REUSEPORT socket of a group: a reuseport socket would otherwise
 * join another process's group (of the same user) silently instead of failing
 * with EADDRINUSE. Returns 0 or a negative errno.
 */
int net_probe_free(const struct net_address *address);

/*
 * Starts a non-blocking connection to address (TCP_NODELAY set). Returns the
 * descriptor (close-on-exec, non-blocking) and sets *ret_in_progress when the
 * connection completes later: wait until the socket is writable, then ask
 * net_connect_result(). Returns a negative errno when it failed at once.
 */
int net_connect(const struct net_address *address, int *ret_in_progress);

/* The outcome of a connection that was in progress: 0 or a negative errno (SO_ERROR). */
int net_connect_result(int fd);

/* Sets TCP_NODELAY: requests and replies leave at once rather than waiting for Nagle. */
int net_set_nodelay(int fd);

enum net_sniff {
    NET_SNIFF_PLAIN = 1, /* the first byte is anything else */
    NET_SNIFF_TLS = 2,   /* the first byte is 0x16, a TLS handshake record */
};

/*
 * Peeks at the first byte a client sent, without consuming it, to tell a TLS
 * ClientHello from a plain protocol on a port that serves both. Returns
 * NET_SNIFF_TLS, NET_SNIFF_PLAIN, 0 when the client closed without sending
 * anything, -EAGAIN when nothing has arrived yet, or another negative errno.
 */
int net_sniff_tls(int fd);

/*
 * Raises the soft limit on open descriptors to the hard limit, for services
 * that hold many connections. Returns the soft limit now in force, or a
 * negative errno.
 */
long net_raise_nofile_limit(void);

/*
 * True when fd is a unix socket of type (SOCK_STREAM, SOCK_DGRAM) bound to path, path still
 * names a socket, and, for a stream socket, fd listens: a socket a re-exec handed over that
 * the new binary can go on using as it is.
 */
bool net_unix_socket_at(int fd, int type, const char *path);

#endif
