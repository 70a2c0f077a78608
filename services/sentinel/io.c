/* Plain and TLS reads and writes behind one interface, so the rest of a connection is one path. */
#include "io.h"

#include "tls_context.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static ssize_t plain_result(ssize_t n, int want)
{
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return want;
    return IO_ERROR;
}

static ssize_t plain_read(struct io *io, void *buf, size_t len)
{
    return plain_result(recv(io->fd, buf, len, 0), IO_WANT_READ);
}

static ssize_t plain_write(struct io *io, const void *buf, size_t len)
{
    /* MSG_NOSIGNAL: a client gone away is an error here, not a SIGPIPE. */
    return plain_result(send(io->fd, buf, len, MSG_NOSIGNAL), IO_WANT_WRITE);
}

static void plain_goodbye(struct io *io)
{
    (void)io;
}

/* After an SSL call that returned r <= 0: what to tell the caller. */
static ssize_t tls_result(struct io *io, int r)
{
    switch (SSL_get_error(io->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify */
        return 0;
    default: /* reset, EOF without close_notify, a protocol error */
        ERR_clear_error();
        return IO_ERROR;
    }
}

static ssize_t tls_read(struct io *io, void *buf, size_t len)
{
    int r;

    ERR_clear_error();
    r = SSL_read(io->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return r > 0 ? r : tls_result(io, r);
}

static ssize_t tls_write(struct io *io, const void *buf, size_t len)
{
    int r;

    ERR_clear_error();
    r = SSL_write(io->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    return r > 0 ? r : tls_result(io, r);
}

static void tls_goodbye(struct io *io)
{
    ERR_clear_error();
    SSL_shutdown(io->ssl);
    ERR_clear_error();
}

const struct io_ops io_plain_ops = {"plain", plain_read, plain_write, plain_goodbye};
const struct io_ops io_tls_ops = {"TLS", tls_read, tls_write, tls_goodbye};

int io_start_tls(struct io *io, SSL_CTX *ctx, char *err, size_t err_len)
{
    ERR_clear_error();
    io->ssl = SSL_new(ctx);
    if (!io->ssl || SSL_set_fd(io->ssl, io->fd) != 1) {
        tls_error_string(err, err_len);
        SSL_free(io->ssl);
        io->ssl = NULL;
        return IO_ERROR;
    }
    /* A write retried after WANT_WRITE may come from a buffer that has grown (and moved). */
    SSL_set_mode(io->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_accept_state(io->ssl);
    io->ops = &io_tls_ops;
    return 0;
}

int io_handshake(struct io *io, char *err, size_t err_len)
{
    int r;

    ERR_clear_error();
    errno = 0;
    r = SSL_accept(io->ssl);
    if (r == 1)
        return 1;
    switch (SSL_get_error(io->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return IO_WANT_WRITE;
    default:
        tls_error_string(err, err_len);
        /* A system call failed without an OpenSSL reason: the client reset or left. */
        if (!*err)
            snprintf(err, err_len, "%s", errno ? strerror(errno) : "the client closed");
        return IO_ERROR;
    }
}

void io_clear(struct io *io)
{
    SSL_free(io->ssl);
    io->ssl = NULL;
}
