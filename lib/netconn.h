/* A non-blocking socket, plain or TLS, on a libevent loop: the one I/O layer of every service. */
#ifndef CERTVISOR_NETCONN_H
#define CERTVISOR_NETCONN_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The HTTP server, the console's client of the REST API, the proxy, the
 * syncer and the sentinel service read and write their sockets through this,
 * in the manner of Redis's connection.h: plain and TLS behind one small table
 * of operations, so that everything above it is one code path.
 *
 * Readiness is edge-triggered. netconn_watch() adds one event for good (read,
 * write and the peer's close, EV_ET), and its callback runs whenever the
 * socket becomes readable or writable. Each connection remembers what the
 * last event said and what the last call found (a short read or write, or
 * EAGAIN, means the socket is drained or full), and an operation that would
 * block returns NETCONN_AGAIN without a system call. So the contract is:
 *
 *   - Call an operation until it returns NETCONN_AGAIN (or the caller has no
 *     room or nothing to write); then the callback runs when it can go on.
 *     Whether TLS waits for the socket to be readable or writable (a read
 *     may need to write, and a write to read) is this layer's business: the
 *     callback comes on either, and the caller simply tries again.
 *   - TLS may hold plaintext that no socket event will announce: a record
 *     larger than the caller's buffer, or several records read at once
 *     (read-ahead). A read that returned data may have more without any new
 *     socket input, which is why the caller reads until NETCONN_AGAIN. A
 *     caller that stops reading for lack of room asks netconn_has_pending()
 *     when it has room again, or simply reads again then.
 *
 * A connection that is not watched (a blocking helper that polls, a test)
 * tells it what poll() said with netconn_set_ready(), and asks which
 * readiness the last NETCONN_AGAIN waits for with netconn_wants().
 *
 * OpenSSL's error queue: a call that returns NETCONN_ERROR leaves the reason
 * there, for the caller to read (tls_error_string() drains it) or clear.
 * Other calls leave it as they found it, which must be empty.
 */

/* What an operation returns besides a byte count (> 0) and the peer's end of stream (0). */
#define NETCONN_AGAIN (-1) /* waits for the socket: the watch callback comes */
#define NETCONN_ERROR (-2) /* broken: netconn_errno() or OpenSSL's queue says why */

struct netconn;

/* Called from the loop when the watched socket is ready for something, or when activated. */
typedef void (*netconn_fn)(void *arg);

/* What differs between plain and TLS. */
struct netconn_type {
    const char *name; /* "plain" or "TLS", for messages */
    int (*handshake)(struct netconn *conn);
    ssize_t (*read)(struct netconn *conn, void *buf, size_t len);
    ssize_t (*write)(struct netconn *conn, const void *buf, size_t len);
    int (*shutdown)(struct netconn *conn);
};

/*
 * Embedded in its owner (no allocation of its own); its address is what the
 * event and the TLS layer know, so it moves only with netconn_move(). The
 * fields are read by the inline functions below and written only by
 * netconn.c.
 */
struct netconn {
    const struct netconn_type *type;
    int fd;   /* -1 when closed */
    SSL *ssl; /* TLS only; owned */
    struct event ev;
    netconn_fn fn;
    void *arg;
    bool watched;
    /* Edge-triggered readiness: set by an event, cleared when a call finds the socket drained. */
    bool readable, writable;
    /*
     * The peer closed or reset (EPOLLRDHUP): a short read no longer means the
     * socket is drained, since its end of stream still waits behind the data
     * and no further event will announce it.
     */
    bool hung_up;
    bool peer_fin;              /* read() returned 0: what the TLS layer reports as EOF */
    bool want_read, want_write; /* what the last NETCONN_AGAIN waits for */
    bool connecting;            /* a connect() in progress: the handshake completes it */
    bool ready;                 /* connected, and the TLS handshake done */
    bool eof;                   /* the peer ended its stream (FIN, or close_notify) */
    bool shut;                  /* we ended ours (netconn_shutdown) */
    bool lingering;             /* netconn_linger() sent the FIN */
    int error;                  /* errno of a failed system call, for messages; 0 if none */
};

/*
 * A plain connection on fd (non-blocking; the connection owns it from here).
 * connecting: connect() is in progress, and netconn_handshake() completes it.
 */
void netconn_init(struct netconn *conn, int fd, bool connecting);

/*
 * Makes conn TLS with ctx (which the SSL takes a reference to), as the
 * server (accepting) or the client, the handshake not yet run. The SSL is
 * set for non-blocking use: partial writes from a buffer that may move, read
 * ahead, buffers given back while idle. The caller sets anything else on
 * netconn_ssl() (SNI, the name to verify, options). Returns 0, or -ENOMEM
 * with OpenSSL's queue cleared.
 */
int netconn_start_tls(struct netconn *conn, SSL_CTX *ctx, bool server);

/*
 * Adds the connection's event to base for good: fn(arg) runs from the loop
 * whenever the socket becomes ready. Returns 0 or -ENOMEM.
 */
int netconn_watch(struct netconn *conn, struct event_base *base, netconn_fn fn, void *arg);

/* Makes the watch callback run from the loop soon, without claiming any readiness. */
void netconn_activate(struct netconn *conn);

/* For a connection that is not watched: what poll() found (EV_READ, EV_WRITE). */
void netconn_set_ready(struct netconn *conn, short what);

/*
 * Completes the connection: the connect() in progress, then the TLS
 * handshake. Returns 1 when ready (at once for a plain connection already
 * connected), NETCONN_AGAIN or NETCONN_ERROR. After an error,
 * netconn_is_connecting() tells a failed connect (netconn_errno() says why)
 * from a failed handshake.
 */
int netconn_handshake(struct netconn *conn);

/* Bytes read (> 0), 0 at the peer's end of stream (netconn_at_eof() from then), AGAIN or ERROR. */
static inline ssize_t netconn_read(struct netconn *conn, void *buf, size_t len)
{
    return conn->type->read(conn, buf, len);
}

/*
 * Bytes written (> 0, maybe fewer than len), NETCONN_AGAIN or NETCONN_ERROR.
 * After NETCONN_AGAIN, TLS wants the same bytes again (they may have moved).
 */
static inline ssize_t netconn_write(struct netconn *conn, const void *buf, size_t len)
{
    return conn->type->write(conn, buf, len);
}

/*
 * Ends our half of the stream: a FIN, or a TLS close_notify (the peer's is
 * not waited for, and the socket stays open for reading). Returns 0 (and
 * netconn_is_shut() from then), NETCONN_AGAIN or NETCONN_ERROR.
 */
int netconn_shutdown(struct netconn *conn);

/*
 * One try at a TLS close_notify before closing, when the handshake is done
 * and nothing was sent after us already; nothing for plain. Never waits.
 */
void netconn_goodbye(struct netconn *conn);

/*
 * The end of a graceful close, once the last bytes are out (and netconn_shutdown
 * done for TLS): sends the FIN, then reads and discards what the peer still
 * sends until it closes, since closing with unread input would reset the
 * connection and could destroy the answer still in flight. Returns
 * NETCONN_AGAIN while the peer is still there, 0 once it has closed (or the
 * socket failed): then close. The caller bounds the wait.
 */
int netconn_linger(struct netconn *conn);

/*
 * Peeks at the first byte to tell a TLS ClientHello from a plain protocol, for
 * a port that serves both. Returns NET_SNIFF_TLS or NET_SNIFF_PLAIN
 * (netutil.h), NETCONN_AGAIN, 0 when the peer closed without a byte, or
 * NETCONN_ERROR.
 */
int netconn_sniff_tls(struct netconn *conn);

/* True when TLS holds input (plaintext or records) that a read can return without the socket. */
bool netconn_has_pending(const struct netconn *conn);

/* What the last NETCONN_AGAIN waits for: EV_READ, EV_WRITE, both or 0. */
short netconn_wants(const struct netconn *conn);

/*
 * Moves a connection to another owner: dst takes src's socket and TLS state,
 * and src is left closed. The event is removed: dst is watched again with
 * netconn_watch() by its new owner.
 */
void netconn_move(struct netconn *dst, struct netconn *src);

/* Removes the event, frees the TLS state and closes the socket; a closed conn is left alone. */
void netconn_close(struct netconn *conn);

static inline int netconn_fd(const struct netconn *conn)
{
    return conn->fd;
}

/* The TLS state (to check the peer's certificate, say), or NULL for plain. */
static inline SSL *netconn_ssl(const struct netconn *conn)
{
    return conn->ssl;
}

static inline bool netconn_is_tls(const struct netconn *conn)
{
    return conn->ssl != NULL;
}

static inline bool netconn_is_ready(const struct netconn *conn)
{
    return conn->ready;
}

static inline bool netconn_is_connecting(const struct netconn *conn)
{
    return conn->connecting;
}

static inline bool netconn_at_eof(const struct netconn *conn)
{
    return conn->eof;
}

static inline bool netconn_is_shut(const struct netconn *conn)
{
    return conn->shut;
}

/* errno of the system call that failed, or 0 (a TLS failure: see OpenSSL's queue). */
static inline int netconn_errno(const struct netconn *conn)
{
    return conn->error;
}

#endif
