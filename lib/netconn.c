/* A non-blocking socket, plain or TLS, on a libevent loop: the one I/O layer of every service. */
#include "netconn.h"

#include "netutil.h"

#include <errno.h>
#include <openssl/err.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NETCONN_LINGER_CHUNK 4096

/* --- the socket, by its readiness ---------------------------------------------------------- */

/*
 * read() that knows the edge-triggered readiness: it makes no system call when
 * the last one found the socket drained, and clears readable when this one
 * does (a short read means drained, unless the peer has hung up: then its end
 * of stream waits behind the data and no event will come for it). Returns
 * bytes, 0 at the peer's FIN, NETCONN_AGAIN or NETCONN_ERROR.
 */
static ssize_t socket_read(struct netconn *conn, void *buf, size_t len)
{
    ssize_t n;

    if (!conn->readable) {
        conn->want_read = true;
        return NETCONN_AGAIN;
    }
    do
        n = read(conn->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        if ((size_t)n < len && !conn->hung_up)
            conn->readable = false;
        return n;
    }
    if (n == 0) {
        conn->peer_fin = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn->readable = false;
        conn->want_read = true;
        return NETCONN_AGAIN;
    }
    conn->error = errno;
    return NETCONN_ERROR;
}

/* send() likewise: a short write means the socket is full until the next event. */
static ssize_t socket_write(struct netconn *conn, const void *buf, size_t len)
{
    ssize_t n;

    if (!conn->writable) {
        conn->want_write = true;
        return NETCONN_AGAIN;
    }
    /* MSG_NOSIGNAL: a peer gone away is an error here, not a SIGPIPE. */
    do
        n = send(conn->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        if ((size_t)n < len)
            conn->writable = false;
        return n;
    }
    if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
        conn->writable = false;
        conn->want_write = true;
        return NETCONN_AGAIN;
    }
    conn->error = errno;
    return NETCONN_ERROR;
}

/* --- plain ---------------------------------------------------------------------------------- */

static int plain_handshake(struct netconn *conn)
{
    (void)conn;
    return 1;
}

static ssize_t plain_read(struct netconn *conn, void *buf, size_t len)
{
    ssize_t n;

    conn->want_read = conn->want_write = false;
    n = socket_read(conn, buf, len);
    if (n == 0)
        conn->eof = true;
    return n;
}

static ssize_t plain_write(struct netconn *conn, const void *buf, size_t len)
{
    conn->want_read = conn->want_write = false;
    return socket_write(conn, buf, len);
}

static int plain_shutdown(struct netconn *conn)
{
    /* ENOTCONN: the peer is gone already, and our end is what we would have told it. */
    if (shutdown(conn->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
        conn->error = errno;
        return NETCONN_ERROR;
    }
    return 0;
}

static const struct netconn_type plain_type = {
    .name = "plain",
    .handshake = plain_handshake,
    .read = plain_read,
    .write = plain_write,
    .shutdown = plain_shutdown,
};

/* --- the BIO that joins TLS to the socket --------------------------------------------------- */

/*
 * OpenSSL's socket BIO calls read() until EAGAIN. This one goes through the
 * connection's readiness instead: it answers "retry" without a system call
 * when the last read or write found the socket drained or full, which saves a
 * failing read() per record and per wakeup, and it records which readiness TLS
 * waits for.
 */
static int bio_read(BIO *bio, char *buf, int len)
{
    struct netconn *conn = BIO_get_data(bio);
    ssize_t n;

    BIO_clear_retry_flags(bio);
    n = socket_read(conn, buf, (size_t)len);
    if (n >= 0)
        return (int)n;
    if (n == NETCONN_AGAIN)
        BIO_set_retry_read(bio);
    return -1;
}

static int bio_write(BIO *bio, const char *buf, int len)
{
    struct netconn *conn = BIO_get_data(bio);
    ssize_t n;

    BIO_clear_retry_flags(bio);
    n = socket_write(conn, buf, (size_t)len);
    if (n >= 0)
        return (int)n;
    if (n == NETCONN_AGAIN)
        BIO_set_retry_write(bio);
    return -1;
}

static long bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    struct netconn *conn = BIO_get_data(bio);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* nothing is buffered here */
        return 1;
    case BIO_CTRL_EOF: /* tells OpenSSL that a read of 0 was the peer's end of stream */
        return conn && conn->peer_fin;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static void bio_method_create(void)
{
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "netconn");

    if (method && BIO_meth_set_read(method, bio_read) == 1 &&
        BIO_meth_set_write(method, bio_write) == 1 && BIO_meth_set_ctrl(method, bio_ctrl) == 1) {
        bio_method = method;
        return;
    }
    BIO_meth_free(method);
}

/* --- TLS ------------------------------------------------------------------------------------ */

/*
 * What an SSL call that did not complete means: NETCONN_AGAIN (the BIO set
 * want_read or want_write), 0 for the peer's close_notify, or NETCONN_ERROR.
 */
static int tls_outcome(struct netconn *conn, int r)
{
    switch (SSL_get_error(conn->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return NETCONN_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        return NETCONN_ERROR;
    }
}

static int tls_handshake(struct netconn *conn)
{
    int r = SSL_do_handshake(conn->ssl);

    if (r == 1)
        return 1;
    r = tls_outcome(conn, r);
    /* A close_notify in the middle of a handshake is a failed handshake. */
    return r == 0 ? NETCONN_ERROR : r;
}

static ssize_t tls_read(struct netconn *conn, void *buf, size_t len)
{
    size_t n;
    int r;

    conn->want_read = conn->want_write = false;
    if (SSL_read_ex(conn->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    r = tls_outcome(conn, 0);
    if (r == 0)
        conn->eof = true;
    return r;
}

static ssize_t tls_write(struct netconn *conn, const void *buf, size_t len)
{
    size_t n;
    int r;

    conn->want_read = conn->want_write = false;
    if (SSL_write_ex(conn->ssl, buf, len, &n) == 1)
        return (ssize_t)n;
    r = tls_outcome(conn, 0);
    return r == 0 ? NETCONN_ERROR : r; /* no writing after the peer's close_notify */
}

static int tls_shutdown(struct netconn *conn)
{
    /* 0: our close_notify is out and the peer's has not come yet, which is all we need. */
    int r = SSL_shutdown(conn->ssl);

    if (r >= 0)
        return 0;
    r = tls_outcome(conn, r);
    return r == 0 ? 0 : r;
}

static const struct netconn_type tls_type = {
    .name = "TLS",
    .handshake = tls_handshake,
    .read = tls_read,
    .write = tls_write,
    .shutdown = tls_shutdown,
};

/* --- setup and events ----------------------------------------------------------------------- */

void netconn_init(struct netconn *conn, int fd, bool connecting)
{
    *conn = (struct netconn){
        .type = &plain_type,
        .fd = fd,
        .connecting = connecting,
        /* An accepted or connected socket has room; readable waits for the first event. */
        .writable = !connecting,
    };
}

int netconn_start_tls(struct netconn *conn, SSL_CTX *ctx, bool server)
{
    SSL *ssl;
    BIO *bio;

    pthread_once(&bio_method_once, bio_method_create);
    ssl = bio_method ? SSL_new(ctx) : NULL;
    bio = ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, conn);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio); /* one reference, taken by the SSL, for both directions */
    /*
     * Partial writes and a moving buffer let callers write what they have from
     * wherever it sits (and compact their buffers between tries); read-ahead
     * takes every record the socket holds in one read(); idle connections give
     * their buffers back.
     */
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    SSL_set_read_ahead(ssl, 1);
    if (server)
        SSL_set_accept_state(ssl);
    else
        SSL_set_connect_state(ssl);
    conn->ssl = ssl;
    conn->type = &tls_type;
    return 0;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct netconn *conn = arg;

    (void)fd;
    if (what & EV_READ)
        conn->readable = true;
    if (what & EV_WRITE)
        conn->writable = true;
    if (what & EV_CLOSED) {
        conn->readable = true;
        conn->hung_up = true;
    }
    conn->fn(conn->arg);
}

int netconn_watch(struct netconn *conn, struct event_base *base, netconn_fn fn, void *arg)
{
    const short events = EV_READ | EV_WRITE | EV_CLOSED | EV_PERSIST | EV_ET;

    if (conn->watched)
        event_del(&conn->ev);
    conn->watched = false;
    conn->fn = fn;
    conn->arg = arg;
    if (event_assign(&conn->ev, base, conn->fd, events, on_event, conn) < 0 ||
        event_add(&conn->ev, NULL) < 0)
        return -ENOMEM;
    conn->watched = true;
    return 0;
}

void netconn_activate(struct netconn *conn)
{
    if (conn->watched)
        event_active(&conn->ev, 0, 1);
}

void netconn_set_ready(struct netconn *conn, short what)
{
    if (what & EV_READ)
        conn->readable = true;
    if (what & EV_WRITE)
        conn->writable = true;
}

/* --- operations ----------------------------------------------------------------------------- */

int netconn_handshake(struct netconn *conn)
{
    int r;

    if (conn->ready)
        return 1;
    conn->want_read = conn->want_write = false;
    if (conn->connecting) {
        /* Writable once connected or refused (an error wakes both directions). */
        if (!conn->writable) {
            conn->want_write = true;
            return NETCONN_AGAIN;
        }
        r = net_connect_result(conn->fd);
        if (r < 0) {
            conn->error = -r;
            return NETCONN_ERROR;
        }
        conn->connecting = false;
    }
    r = conn->type->handshake(conn);
    if (r == 1)
        conn->ready = true;
    return r;
}

int netconn_shutdown(struct netconn *conn)
{
    int r;

    if (conn->shut)
        return 0;
    conn->want_read = conn->want_write = false;
    r = conn->type->shutdown(conn);
    if (r == 0)
        conn->shut = true;
    return r;
}

void netconn_goodbye(struct netconn *conn)
{
    if (!conn->ssl || !conn->ready || conn->shut)
        return;
    /* One try: the socket takes the close_notify now, or the peer sees a plain close. */
    conn->writable = true;
    if (SSL_shutdown(conn->ssl) >= 0)
        conn->shut = true;
    ERR_clear_error();
}

int netconn_linger(struct netconn *conn)
{
    char discard[NETCONN_LINGER_CHUNK];
    ssize_t n;

    if (!conn->lingering) {
        shutdown(conn->fd, SHUT_WR);
        conn->lingering = true;
    }
    conn->want_read = conn->want_write = false;
    do
        n = socket_read(conn, discard, sizeof(discard));
    while (n > 0);
    return n == NETCONN_AGAIN ? NETCONN_AGAIN : 0;
}

int netconn_sniff_tls(struct netconn *conn)
{
    int r;

    conn->want_read = conn->want_write = false;
    if (!conn->readable) {
        conn->want_read = true;
        return NETCONN_AGAIN;
    }
    r = net_sniff_tls(conn->fd);
    if (r == -EAGAIN) {
        conn->readable = false;
        conn->want_read = true;
        return NETCONN_AGAIN;
    }
    if (r < 0) {
        conn->error = -r;
        return NETCONN_ERROR;
    }
    return r;
}

bool netconn_has_pending(const struct netconn *conn)
{
    return conn->ssl && SSL_has_pending(conn->ssl);
}

short netconn_wants(const struct netconn *conn)
{
    return (short)((conn->want_read ? EV_READ : 0) | (conn->want_write ? EV_WRITE : 0));
}

void netconn_move(struct netconn *dst, struct netconn *src)
{
    if (src->watched)
        event_del(&src->ev);
    *dst = *src;
    memset(&dst->ev, 0, sizeof(dst->ev));
    dst->watched = false;
    dst->fn = NULL;
    dst->arg = NULL;
    /* The BIO finds its connection by address: it must follow the move. */
    if (dst->ssl)
        BIO_set_data(SSL_get_rbio(dst->ssl), dst);
    src->fd = -1;
    src->ssl = NULL;
    src->watched = false;
}

void netconn_close(struct netconn *conn)
{
    if (conn->watched)
        event_del(&conn->ev);
    conn->watched = false;
    SSL_free(conn->ssl); /* frees the BIO too */
    conn->ssl = NULL;
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
}
