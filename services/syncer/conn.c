/* One socket of the syncer, plain or TLS, non-blocking, behind one small set of operations. */
#include "conn.h"

#include <errno.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

void sconn_init_plain(struct sconn *conn, int fd)
{
    *conn = (struct sconn){.fd = fd};
}

int sconn_init_tls_client(struct sconn *conn, int fd, SSL_CTX *ctx)
{
    *conn = (struct sconn){.fd = fd};
    conn->ssl = SSL_new(ctx);
    if (!conn->ssl || SSL_set_fd(conn->ssl, fd) != 1) {
        SSL_free(conn->ssl);
        conn->ssl = NULL;
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_connect_state(conn->ssl);
    /* A write may resume from a moved buffer: the syncer compacts its buffers. */
    SSL_set_mode(conn->ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    return 0;
}

/* Sorts an SSL call's failure: CONN_AGAIN with what it waits for, 0 at a clean end, or CONN_ERROR.
 */
static int ssl_outcome(struct sconn *conn, int ret, bool *wants_read, bool *wants_write)
{
    switch (SSL_get_error(conn->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        *wants_read = true;
        return CONN_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *wants_write = true;
        return CONN_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        conn->error = errno ? errno : ECONNRESET;
        return CONN_ERROR;
    default:
        conn->error = 0;
        return CONN_ERROR;
    }
}

int sconn_handshake(struct sconn *conn)
{
    int ret;

    conn->handshake_wants_read = conn->handshake_wants_write = false;
    if (!conn->ssl)
        return 1;
    ERR_clear_error();
    errno = 0;
    ret = SSL_do_handshake(conn->ssl);
    if (ret == 1)
        return 1;
    ret = ssl_outcome(conn, ret, &conn->handshake_wants_read, &conn->handshake_wants_write);
    if (ret == 0) { /* a close_notify before the handshake completed */
        conn->error = ECONNRESET;
        return CONN_ERROR;
    }
    return ret;
}

ssize_t sconn_read(struct sconn *conn, void *buf, size_t len)
{
    ssize_t n;

    conn->read_wants_read = conn->read_wants_write = false;
    if (!conn->ssl) {
        n = read(conn->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            conn->read_wants_read = true;
            return CONN_AGAIN;
        }
        conn->error = errno;
        return CONN_ERROR;
    }
    ERR_clear_error();
    errno = 0;
    n = SSL_read(conn->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (n > 0)
        return n;
    return ssl_outcome(conn, (int)n, &conn->read_wants_read, &conn->read_wants_write);
}

ssize_t sconn_write(struct sconn *conn, const void *buf, size_t len)
{
    ssize_t n;

    conn->write_wants_read = conn->write_wants_write = false;
    if (!conn->ssl) {
        n = send(conn->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            conn->write_wants_write = true;
            return CONN_AGAIN;
        }
        conn->error = errno;
        return CONN_ERROR;
    }
    ERR_clear_error();
    errno = 0;
    n = SSL_write(conn->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
    if (n > 0)
        return n;
    n = ssl_outcome(conn, (int)n, &conn->write_wants_read, &conn->write_wants_write);
    return n == 0 ? CONN_ERROR : n;
}

bool sconn_wants_read(const struct sconn *conn)
{
    return conn->read_wants_read || conn->write_wants_read || conn->handshake_wants_read;
}

bool sconn_wants_write(const struct sconn *conn)
{
    return conn->read_wants_write || conn->write_wants_write || conn->handshake_wants_write;
}

void sconn_close(struct sconn *conn)
{
    if (conn->ssl) {
        if (SSL_is_init_finished(conn->ssl))
            SSL_shutdown(conn->ssl);
        SSL_free(conn->ssl);
        ERR_clear_error();
    }
    if (conn->fd >= 0)
        close(conn->fd);
    conn->ssl = NULL;
    conn->fd = -1;
}
