/* One end of a proxied connection: a socket, plain or TLS, behind one small set of operations. */
#ifndef CERTVISOR_PROXY_SIDE_H
#define CERTVISOR_PROXY_SIDE_H

#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What an operation returns besides a byte count (0 is the peer's end of stream). */
#define SIDE_AGAIN (-1) /* it waits for the socket: an event will come */
#define SIDE_ERROR (-2) /* the connection is broken; side->error or OpenSSL's queue says why */

struct side;

/*
 * Plain and TLS sockets share the forwarding code through this table (as
 * Redis's connection.h does). No operation makes a system call that the
 * side's readiness flags say would block: they return SIDE_AGAIN instead.
 */
struct side_ops {
    /* Completes the TLS handshake: 1 when done, SIDE_AGAIN or SIDE_ERROR. */
    int (*handshake)(struct side *side);
    /* Bytes read (> 0), 0 at the peer's end of stream, SIDE_AGAIN or SIDE_ERROR. */
    ssize_t (*read)(struct side *side, void *buf, size_t len);
    /* Bytes written (> 0, maybe fewer than len), SIDE_AGAIN or SIDE_ERROR. */
    ssize_t (*write)(struct side *side, const void *buf, size_t len);
    /* Ends our half of the stream (FIN, or TLS close_notify): 0, SIDE_AGAIN or SIDE_ERROR. */
    int (*shutdown)(struct side *side);
};

struct side {
    int fd;
    SSL *ssl;                   /* NULL for plain; holds a reference to its SSL_CTX */
    const struct side_ops *ops; /* NULL until known (a replica_ssl client before its first byte) */
    struct event ev;            /* edge-triggered: read, write and close; added once */
    /*
     * Edge-triggered readiness: set by an event, cleared when a call found the
     * socket drained (a short read, a short write, EAGAIN). The kernel signals
     * again whenever new data or room arrives after that.
     */
    bool readable, writable;
    /*
     * The peer has closed or reset (EPOLLRDHUP). A short read then no longer
     * means the socket is drained: its end of stream (or error) still waits
     * behind the data, and no further event will announce it.
     */
    bool hung_up;
    bool peer_fin; /* read() returned 0 (what the TLS BIO reports as EOF) */
    bool ready;    /* usable for data: connected and the handshake done */
    bool eof;      /* the peer ended its stream: FIN or close_notify */
    bool shut;     /* we ended ours */
    int error;     /* errno of a failed system call, for messages */
};

/* A plain socket (side->ready stays the caller's: a shard's connection may be in progress). */
void side_init_plain(struct side *side, int fd);

/*
 * A TLS socket that accepts (server) or connects (client) with ctx. Returns
 * 0, or -ENOMEM with OpenSSL's queue cleared.
 */
int side_init_tls(struct side *side, int fd, SSL_CTX *ctx, bool server);

/* Frees the TLS state and closes the socket (the event must be deleted first). */
void side_close(struct side *side);

#endif
