/* One way to read and write a client connection, plain or TLS (Redis's connection.h, small). */
#ifndef CERTVISOR_SENTINEL_IO_H
#define CERTVISOR_SENTINEL_IO_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <sys/types.h>

/* What read, write and handshake return besides a byte count (> 0) and end of stream (0). */
enum {
    IO_WANT_READ = -1,  /* call again once the socket is readable */
    IO_WANT_WRITE = -2, /* call again once the socket is writable */
    IO_ERROR = -3,      /* the connection is broken: close it */
};

struct io;

struct io_ops {
    const char *name; /* "plain" or "TLS", for messages */
    ssize_t (*read)(struct io *io, void *buf, size_t len);
    /* Writes some of buf (TLS: all of it); after IO_WANT_*, call again with the same bytes. */
    ssize_t (*write)(struct io *io, const void *buf, size_t len);
    /* Says goodbye in the protocol (TLS: close_notify), best effort, never waiting. */
    void (*goodbye)(struct io *io);
};

struct io {
    const struct io_ops *ops;
    int fd;
    SSL *ssl; /* TLS only; owned */
};

extern const struct io_ops io_plain_ops, io_tls_ops;

/*
 * Turns io (plain, on its socket) into a TLS server connection from ctx, the
 * handshake not yet run. Returns 0, or IO_ERROR with OpenSSL's reason in err.
 */
int io_start_tls(struct io *io, SSL_CTX *ctx, char *err, size_t err_len);

/*
 * Runs the TLS handshake: 1 when done, IO_WANT_* to wait, IO_ERROR with
 * OpenSSL's reason in err (a failed handshake has sent its alert already).
 */
int io_handshake(struct io *io, char *err, size_t err_len);

/* Frees the TLS state, if any; the socket stays open. */
void io_clear(struct io *io);

#endif
