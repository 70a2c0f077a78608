/* One socket of the syncer, plain or TLS, non-blocking, behind one small set of operations. */
#ifndef CERTVISOR_SYNCER_CONN_H
#define CERTVISOR_SYNCER_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What an operation returns besides a byte count (> 0) and the peer's end of stream (0). */
#define CONN_AGAIN (-1) /* it waits for the socket: see want_read and want_write */
#define CONN_ERROR (-2) /* broken: error (errno) or OpenSSL's queue says why */

struct sconn {
    int fd;   /* -1 when closed */
    SSL *ssl; /* NULL for plain */
    /*
     * Set by the last operation that returned CONN_AGAIN: the socket must be
     * readable (or writable) before it can go on. Level-triggered events are
     * asked for exactly these, so a connection waits for nothing else.
     */
    bool read_wants_read, read_wants_write;
    bool write_wants_read, write_wants_write;
    bool handshake_wants_read, handshake_wants_write;
    int error; /* errno of a failed system call; 0 for a TLS failure */
};

/* A plain connection on fd (non-blocking). */
void sconn_init_plain(struct sconn *conn, int fd);

/*
 * A TLS client connection on fd with ctx (which the SSL takes a reference of).
 * Returns 0, or -ENOMEM with OpenSSL's queue cleared.
 */
int sconn_init_tls_client(struct sconn *conn, int fd, SSL_CTX *ctx);

/* Completes the TLS handshake: 1 when done (or plain), CONN_AGAIN or CONN_ERROR. */
int sconn_handshake(struct sconn *conn);

/* Bytes read, 0 at the end of the peer's stream, CONN_AGAIN or CONN_ERROR. */
ssize_t sconn_read(struct sconn *conn, void *buf, size_t len);

/* Bytes written (maybe fewer than len), CONN_AGAIN or CONN_ERROR. */
ssize_t sconn_write(struct sconn *conn, const void *buf, size_t len);

/* True when the connection wants the socket readable (writable) to go on. */
bool sconn_wants_read(const struct sconn *conn);
bool sconn_wants_write(const struct sconn *conn);

/* Sends close_notify (once, without waiting), frees the TLS state and closes the socket. */
void sconn_close(struct sconn *conn);

#endif
