/* Plain and TLS socket operations for the forwarding code, and the BIO that joins TLS to a socket.
 */
#include "side.h"

#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* --- plain ---------------------------------------------------------------------------------- */

static int plain_handshake(struct side *side)
{
    (void)side;
    return 1;
}

static ssize_t plain_read(struct side *side, void *buf, size_t len)
{
    ssize_t n;

    if (!side->readable)
        return SIDE_AGAIN;
    n = read(side->fd, buf, len);
    if (n > 0) {
        /* A short read emptied the socket: edge-triggered epoll signals the next data. */
        if ((size_t)n < len && !side->hung_up)
            side->readable = false;
        return n;
    }
    if (n == 0) {
        side->peer_fin = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        side->readable = errno == EINTR;
        return SIDE_AGAIN;
    }
    side->error = errno;
    return SIDE_ERROR;
}

static ssize_t plain_write(struct side *side, const void *buf, size_t len)
{
    ssize_t n;

    if (!side->writable)
        return SIDE_AGAIN;
    n = send(side->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0) {
        if ((size_t)n < len)
            side->writable = false;
        return n > 0 ? n : SIDE_AGAIN;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        side->writable = errno == EINTR;
        return SIDE_AGAIN;
    }
    side->error = errno;
    return SIDE_ERROR;
}

static int plain_shutdown(struct side *side)
{
    /* ENOTCONN: the peer is gone already, and its own end is what we would have told it. */
    if (shutdown(side->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
        side->error = errno;
        return SIDE_ERROR;
    }
    return 0;
}

static const struct side_ops plain_ops = {
    .handshake = plain_handshake,
    .read = plain_read,
    .write = plain_write,
    .shutdown = plain_shutdown,
};

/* --- the BIO -------------------------------------------------------------------------------- */

/*
 * OpenSSL's socket BIO calls read() until EAGAIN. This one knows the side's
 * edge-triggered readiness: it answers "retry" without a system call when the
 * last read was short or the last write was, which saves one failing read()
 * per TLS record and one per wakeup.
 */
static int bio_read(BIO *bio, char *buf, int len)
{
    struct side *side = BIO_get_data(bio);
    ssize_t n;

    BIO_clear_retry_flags(bio);
    n = plain_read(side, buf, (size_t)len);
    if (n >= 0)
        return (int)n;
    if (n == SIDE_AGAIN)
        BIO_set_retry_read(bio);
    return -1;
}

static int bio_write(BIO *bio, const char *buf, int len)
{
    struct side *side = BIO_get_data(bio);
    ssize_t n;

    BIO_clear_retry_flags(bio);
    n = plain_write(side, buf, (size_t)len);
    if (n >= 0)
        return (int)n;
    if (n == SIDE_AGAIN)
        BIO_set_retry_write(bio);
    return -1;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    struct side *side = BIO_get_data(bio);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* nothing is buffered here */
        return 1;
    case BIO_CTRL_EOF: /* tells OpenSSL that a read of 0 was the peer's end of stream */
        return side && side->peer_fin;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static void bio_method_create(void)
{
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "certvisor side");

    if (method && BIO_meth_set_read(method, bio_read) == 1 &&
        BIO_meth_set_write(method, bio_write) == 1 && BIO_meth_set_ctrl(method, bio_ctrl) == 1) {
        bio_method = method;
        return;
    }
    BIO_meth_free(method);
}

/* --- TLS ------------------------------------------------------------------------------------ */

/* Maps an unfinished SSL call to SIDE_AGAIN, 0 (the peer's close_notify or EOF) or SIDE_ERROR. */
static int tls_outcome(struct side *side, int r)
{
    switch (SSL_get_error(side->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return SIDE_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return SIDE_ERROR;
    }
}

static int tls_handshake(struct side *side)
{
    int r = SSL_do_handshake(side->ssl);

    if (r == 1)
        return 1;
    r = tls_outcome(side, r);
    /* An end of stream in the middle of a handshake is a failed handshake. */
    return r == 0 ? SIDE_ERROR : r;
}

static ssize_t tls_read(struct side *side, void *buf, size_t len)
{
    size_t n;
    int r = SSL_read_ex(side->ssl, buf, len, &n);

    return r == 1 ? (ssize_t)n : tls_outcome(side, r);
}

static ssize_t tls_write(struct side *side, const void *buf, size_t len)
{
    size_t n;
    int r = SSL_write_ex(side->ssl, buf, len, &n);

    if (r == 1)
        return (ssize_t)n;
    r = tls_outcome(side, r);
    return r == 0 ? SIDE_ERROR : r; /* no writing after the peer's close_notify */
}

static int tls_shutdown(struct side *side)
{
    /* 0: our close_notify is out and the peer's has not come yet, which is all we need. */
    int r = SSL_shutdown(side->ssl);

    if (r >= 0)
        return 0;
    r = tls_outcome(side, r);
    return r == 0 ? 0 : r;
}

static const struct side_ops tls_ops = {
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
};

/* --- setup ---------------------------------------------------------------------------------- */

void side_init_plain(struct side *side, int fd)
{
    side->fd = fd;
    side->ops = &plain_ops;
}

int side_init_tls(struct side *side, int fd, SSL_CTX *ctx, bool server)
{
    SSL *ssl;
    BIO *bio;

    pthread_once(&bio_method_once, bio_method_create);
    side->fd = fd;
    ssl = bio_method ? SSL_new(ctx) : NULL;
    bio = ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, side);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio); /* one reference, taken by the SSL, for both directions */
    /*
     * Partial writes and a moving buffer let the forwarding code write what
     * it has from wherever it sits; read-ahead takes every record the socket
     * holds in one read(); idle connections give their buffers back.
     */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    SSL_set_read_ahead(ssl, 1);
    /* A peer that closes without close_notify has ended its stream, as with plain TCP. */
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    side->ssl = ssl;
    side->ops = &tls_ops;
    return 0;
}

void side_close(struct side *side)
{
    SSL_free(side->ssl); /* frees the BIO too */
    side->ssl = NULL;
    if (side->fd >= 0)
        close(side->fd);
    side->fd = -1;
}
