/* One client connection: telling TLS from plain, the handshake, requests and replies, closing. */
#include "conn.h"

#include "commands.h"
#include "log.h"
#include "netconn.h"
#include "netutil.h"
#include "resp.h"
#include "tls_context.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A TLS client has this long to finish its handshake once it has started it. The
 * first byte has no deadline: a plain client may connect and stay quiet, as
 * Redis lets it (timeout 0), and a quiet connection holds no more than an idle one.
 */
#define HANDSHAKE_TIMEOUT_MS 10000
/* A connection being closed has this long to take its last reply... */
#define FLUSH_TIMEOUT_MS 5000
/* ...and then this long to close its side, so the reply is not lost to a reset. */
#define LINGER_TIMEOUT_MS 2000

/* Requests are answered while less than this waits to be sent; then the client must read. */
#define OUT_HIGH_WATER (64 * 1024)
/* Buffers grown past this by a large request or reply are given back once empty. */
#define BUF_KEEP (64 * 1024)
#define READ_CHUNK (16 * 1024)

/*
 * Far more than any Sentinel request needs (CLIENT SETINFO has 4 words), and
 * small enough that a connection holds at most about 70 KiB of request.
 */
static const struct resp_limits request_limits = {
    .max_args = 16,
    .max_bulk = 4096,
    .max_inline = 4096,
};

/*
 * What the port answers a client it refuses. A plain client of a TLS-only
 * port reads a Redis error, which every client shows as it is. A TLS client
 * of a plain-only port gets a fatal handshake_failure alert (TLS 1.0 record
 * header, as before any version is agreed): "the server cannot negotiate any
 * security parameters with you", which is exactly the case.
 */
#define REFUSAL_PLAIN                                                                              \
    "ERR TLS is required on this port (sentinel_tls_mode is required): connect with TLS"
static const char refusal_tls[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28};

enum conn_state {
    CONN_SNIFF,     /* waiting for the first byte: TLS or plain? */
    CONN_HANDSHAKE, /* TLS handshake */
    CONN_OPEN,      /* requests and replies */
    CONN_FLUSH,     /* closing: the last replies are sent, then our side is shut */
    CONN_DRAIN,     /* closing: reading until the client closes its side */
};

/*
 * What one step of a connection's state machine leads to. STEP_WAIT: for the
 * socket (the connection's watch runs it again) or for the state's deadline.
 */
enum step { STEP_AGAIN, STEP_WAIT, STEP_CLOSE };

struct conn {
    struct server *server;
    struct conn *prev, *next;
    struct netconn io;
    struct event *timer; /* the state's deadline */
    enum conn_state state;
    bool peer_done; /* the client has closed its side */
    struct resp_parser parser;
    struct resp_buf in, out;
    size_t out_sent;
    struct session session;
    char peer[NET_ADDRESS_MAX];
};

/* Moves to state, with ms to finish it in (0: as long as it takes). */
static void enter(struct conn *c, enum conn_state state, long ms)
{
    struct timeval timeout = {ms / 1000, (ms % 1000) * 1000};

    c->state = state;
    if (ms > 0)
        evtimer_add(c->timer, &timeout);
    else
        evtimer_del(c->timer);
}

static void conn_free(struct conn *c)
{
    struct server *server = c->server;

    if (c->prev)
        c->prev->next = c->next;
    else
        server->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->timer)
        event_free(c->timer);
    netconn_close(&c->io);
    resp_buf_free(&c->in);
    resp_buf_free(&c->out);
    session_clear(&c->session);
    free(c);
    server_conn_closed(server);
}

static enum step start_serving(struct conn *c)
{
    enter(c, CONN_OPEN, 0);
    return STEP_AGAIN;
}

/* Closing with a last message (a reply or a TLS alert) already in the output. */
static enum step close_after_output(struct conn *c)
{
    enter(c, CONN_FLUSH, FLUSH_TIMEOUT_MS);
    return STEP_AGAIN;
}

static enum step start_tls(struct conn *c)
{
    if (netconn_start_tls(&c->io, c->server->settings->ctx, true) < 0) {
        log_warning("Cannot set up TLS for the connection from %s: out of memory", c->peer);
        return STEP_CLOSE;
    }
    enter(c, CONN_HANDSHAKE, HANDSHAKE_TIMEOUT_MS);
    return STEP_AGAIN;
}

/* A client the mode does not take: it is told (see REFUSAL_PLAIN), then the connection closes. */
static enum step refuse(struct conn *c, bool tls)
{
    if (tls) {
        log_notice("Refused a TLS connection from %s: sentinel_tls_mode is disabled (plain "
                   "connections only)",
                   c->peer);
        resp_buf_append(&c->out, refusal_tls, sizeof(refusal_tls));
    } else {
        log_notice("Refused a plain connection from %s: sentinel_tls_mode is required", c->peer);
        resp_add_error(&c->out, REFUSAL_PLAIN);
    }
    return close_after_output(c);
}

/* Telling TLS from plain by the first byte, and what sentinel_tls_mode makes of it. */
static enum step step_sniff(struct conn *c)
{
    enum sentinel_tls_mode mode = c->server->settings->mode;
    int kind = netconn_sniff_tls(&c->io);
    bool tls = kind == NET_SNIFF_TLS;

    if (kind == NETCONN_AGAIN)
        return STEP_WAIT;
    if (kind <= 0)
        return STEP_CLOSE; /* gone before saying anything */
    if (tls && mode != SENTINEL_TLS_DISABLED)
        return start_tls(c);
    if (!tls && mode != SENTINEL_TLS_REQUIRED)
        return start_serving(c);
    return refuse(c, tls);
}

static enum step step_handshake(struct conn *c)
{
    char reason[512] = "";
    int r = netconn_handshake(&c->io);

    if (r == NETCONN_AGAIN)
        return STEP_WAIT;
    if (r < 0) {
        tls_error_string(reason, sizeof(reason));
        /* A system call failed without an OpenSSL reason: the client reset or left. */
        if (!*reason)
            snprintf(reason, sizeof(reason), "%s",
                     netconn_errno(&c->io) ? strerror(netconn_errno(&c->io)) : "the client closed");
        log_info("TLS handshake with %s failed: %s", c->peer, reason);
        return STEP_CLOSE;
    }
    log_debug("TLS connection from %s: %s, %s", c->peer, SSL_get_version(netconn_ssl(&c->io)),
              SSL_get_cipher_name(netconn_ssl(&c->io)));
    return start_serving(c);
}

/* After an operation that moved no bytes: wait for the socket, or close. */
static enum step wait_for(ssize_t r)
{
    if (r == NETCONN_AGAIN)
        return STEP_WAIT;
    ERR_clear_error(); /* a broken connection's reason is not reported */
    return STEP_CLOSE;
}

/* Sends what waits in the output. Returns true when it is all sent, false with *ret_step. */
static bool flush(struct conn *c, enum step *ret_step)
{
    while (c->out_sent < c->out.len) {
        ssize_t n = netconn_write(&c->io, c->out.data + c->out_sent, c->out.len - c->out_sent);

        if (n <= 0) {
            *ret_step = wait_for(n == 0 ? NETCONN_ERROR : n);
            return false;
        }
        c->out_sent += (size_t)n;
    }
    c->out.len = c->out_sent = 0;
    if (c->out.cap > BUF_KEEP)
        resp_buf_free(&c->out);
    return true;
}

/*
 * Answers the complete requests in the input while the output has room.
 * Returns true when it answered or dropped anything (or met a protocol error,
 * answered and the connection set to close), false when it needs more input.
 */
static bool answer_requests(struct conn *c)
{
    struct command_env env = {&c->server->settings->dbs, server_uptime_ms(c->server)};
    size_t start = 0;
    bool progress = false;

    while (c->out.len < OUT_HIGH_WATER && start < c->in.len) {
        const struct resp_request *req;
        char err[256];
        size_t used;
        int r = resp_parse_request(&c->parser, c->in.data + start, c->in.len - start, &req, &used,
                                   err, sizeof(err));

        if (r == 0)
            break;
        progress = true;
        if (r < 0) {
            log_info("Closing the connection from %s: %s", c->peer, err);
            resp_add_error(&c->out, "ERR %s", err);
            close_after_output(c);
            break;
        }
        if (req->argc > 0)
            commands_run(&c->session, &env, req, &c->out);
        start += used;
    }
    resp_buf_consume(&c->in, start);
    if (c->in.len == 0 && c->in.cap > BUF_KEEP)
        resp_buf_free(&c->in);
    return progress;
}

static enum step step_open(struct conn *c)
{
    enum step step;
    ssize_t n;

    /* Before sending: a reply cut short by a failed allocation must not go out. */
    if (c->in.failed || c->out.failed) {
        log_warning("Closing the connection from %s: out of memory", c->peer);
        return STEP_CLOSE;
    }
    if (!flush(c, &step))
        return step;
    if (answer_requests(c))
        return STEP_AGAIN;
    if (c->peer_done) /* every request it sent is answered */
        return close_after_output(c);
    if (!resp_buf_reserve(&c->in, READ_CHUNK))
        return STEP_AGAIN; /* in.failed: the next step closes the connection */
    n = netconn_read(&c->io, c->in.data + c->in.len, READ_CHUNK);
    if (n > 0)
        c->in.len += (size_t)n;
    else if (n == 0)
        c->peer_done = true;
    else
        return wait_for(n);
    return STEP_AGAIN;
}

static enum step step_flush(struct conn *c)
{
    enum step step;

    if (!flush(c, &step))
        return step;
    netconn_goodbye(&c->io);
    enter(c, CONN_DRAIN, LINGER_TIMEOUT_MS);
    return STEP_AGAIN;
}

/* Discards what the client still sends, until it closes: closing first could reset the reply. */
static enum step step_drain(struct conn *c)
{
    return netconn_linger(&c->io) == NETCONN_AGAIN ? STEP_WAIT : STEP_CLOSE;
}

static enum step step(struct conn *c)
{
    switch (c->state) {
    case CONN_SNIFF:
        return step_sniff(c);
    case CONN_HANDSHAKE:
        return step_handshake(c);
    case CONN_OPEN:
        return step_open(c);
    case CONN_FLUSH:
        return step_flush(c);
    case CONN_DRAIN:
    default:
        return step_drain(c);
    }
}

/* Runs the connection until it waits for its socket, or frees it when it is over. */
static void conn_run(struct conn *c)
{
    for (;;) {
        enum step s = step(c);

        if (s == STEP_AGAIN)
            continue;
        if (s == STEP_CLOSE) {
            log_debug("Connection from %s closed", c->peer);
            conn_free(c);
            return;
        }
        return; /* STEP_WAIT */
    }
}

static void on_io(void *arg)
{
    conn_run(arg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    log_info("Closing the connection from %s: timed out %s", c->peer,
             c->state == CONN_HANDSHAKE ? "in the TLS handshake" : "while closing");
    conn_free(c);
}

int conn_start(struct server *server, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (!c || !(c->timer = evtimer_new(server->base, on_timeout, c))) {
        free(c);
        close(fd);
        return -ENOMEM;
    }
    netconn_init(&c->io, fd, false);
    if (netconn_watch(&c->io, server->base, on_io, c) < 0) {
        netconn_close(&c->io);
        event_free(c->timer);
        free(c);
        return -ENOMEM;
    }
    c->server = server;
    c->session.id = ++server->next_id;
    resp_parser_init(&c->parser, &request_limits);
    net_set_nodelay(fd); /* replies are small and each is awaited */
    net_peer_format(fd, c->peer, sizeof(c->peer));
    c->next = server->conns;
    if (c->next)
        c->next->prev = c;
    server->conns = c;
    server->n_conns++;
    log_debug("Connection from %s", c->peer);
    enter(c, CONN_SNIFF, 0);
    conn_run(c);
    return 0;
}

void conn_close_all(struct server *server)
{
    while (server->conns) {
        struct conn *c = server->conns;

        if (c->state == CONN_OPEN)
            netconn_goodbye(&c->io);
        conn_free(c);
    }
}
