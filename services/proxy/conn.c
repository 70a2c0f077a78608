/* The forwarding state machine: both directions, backpressure, half-close, timeouts, teardown. */
#include "conn.h"

#include "command_policy.h"
#include "generation.h"
#include "log.h"
#include "mux.h"
#include "stats.h"
#include "worker.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 5000    /* to reach the shard, its TLS handshake included */
#define HANDSHAKE_TIMEOUT_MS 10000 /* for the client's TLS handshake, from accept */
/* After the shard has closed and its last bytes are out: the client's time to close too. */
#define LINGER_TIMEOUT_MS 5000
/* Free buffers a worker keeps for the next burst. */
#define POOL_MAX 256

uint64_t conn_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- buffers -------------------------------------------------------------------------------- */

static struct buf *buf_get(struct worker *w)
{
    struct buf *b = w->free_bufs;

    if (b) {
        w->free_bufs = b->next;
        w->n_free_bufs--;
    } else {
        b = malloc(sizeof(*b));
        if (!b)
            return NULL;
    }
    b->next = NULL;
    b->start = b->end = 0;
    return b;
}

static void buf_put(struct worker *w, struct buf *b)
{
    if (!b)
        return;
    if (w->n_free_bufs >= POOL_MAX) {
        free(b);
        return;
    }
    b->next = w->free_bufs;
    w->free_bufs = b;
    w->n_free_bufs++;
}

void conn_pool_clear(struct worker *w)
{
    while (w->free_bufs) {
        struct buf *next = w->free_bufs->next;

        free(w->free_bufs);
        w->free_bufs = next;
    }
    w->n_free_bufs = 0;
}

/* --- deferred writes ----------------------------------------------------------------------- */

void conn_defer(struct conn *c)
{
    struct worker *w = c->worker;

    if (c->pending)
        return;
    /*
     * At the tail: connections write in the order they read, so that requests
     * of different clients reach the shard in the order they came (Redis
     * serves blocked clients in the order they blocked).
     */
    c->pending = true;
    c->pending_next = NULL;
    c->pending_prev = w->pending_tail;
    if (w->pending_tail)
        w->pending_tail->pending_next = c;
    else
        w->pending = c;
    w->pending_tail = c;
}

static void undefer(struct conn *c)
{
    if (!c->pending)
        return;
    if (c->pending_prev)
        c->pending_prev->pending_next = c->pending_next;
    else
        c->worker->pending = c->pending_next;
    if (c->pending_next)
        c->pending_next->pending_prev = c->pending_prev;
    else
        c->worker->pending_tail = c->pending_prev;
    c->pending = false;
}

/* --- teardown ------------------------------------------------------------------------------- */

void conn_free(struct conn *c)
{
    struct worker *w = c->worker;

    undefer(c);
    mux_detach(c);
    evtimer_del(&c->timer);
    netconn_close(&c->client);
    netconn_close(&c->shard);
    SSL_CTX_free(c->sniff_ctx);
    SSL_CTX_free(c->shard_ctx);
    buf_put(w, c->up);
    buf_put(w, c->down);
    mbuf_free(&c->in);
    mbuf_free(&c->out);
    mbuf_free(&c->refusal);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    stats_add(&c->stats->connections, (uint64_t)-1);
    /* Whatever failed left its reasons on this thread's queue; the next SSL call needs it empty. */
    ERR_clear_error();
    free(c);
}

void conn_close_all(struct worker *w)
{
    while (w->conns) {
        struct conn *c = w->conns;

        /* One try: the socket takes the close_notify now or the client sees a plain close. */
        netconn_goodbye(&c->client);
        conn_free(c);
    }
}

/* --- forwarding ----------------------------------------------------------------------------- */

/* Ends dst's stream once src's has ended and every byte of it is through. -1 on error. */
static int pass_eof(struct netconn *src, struct netconn *dst, const struct mbuf *carry,
                    const struct buf *b)
{
    if (!netconn_at_eof(src) || b || mbuf_pending(carry) || netconn_is_shut(dst) ||
        !netconn_is_ready(dst))
        return 0;
    return netconn_shutdown(dst) == NETCONN_ERROR ? -1 : 0;
}

/*
 * Writes what carry holds (bytes from before the client was pinned), then
 * what *bufp holds, to dst. Returns 1 on progress, 0 when waiting, -1 on error.
 * While the worker handles a batch of events, writes wait for the end of the batch.
 */
static int flush(struct conn *c, struct netconn *dst, struct mbuf *carry, struct buf **bufp,
                 _Atomic uint64_t *counter)
{
    struct worker *w = c->worker;
    struct buf *b = *bufp;
    ssize_t n;

    if ((!b && !mbuf_pending(carry)) || !netconn_is_ready(dst))
        return 0;
    if (w->batching) {
        conn_defer(c);
        return 0;
    }
    if (mbuf_pending(carry)) {
        n = netconn_write(dst, mbuf_head(carry), mbuf_pending(carry));
        if (n == NETCONN_AGAIN)
            return 0;
        if (n < 0)
            return -1;
        mbuf_consume(carry, (size_t)n);
        if (counter)
            stats_add(counter, (uint64_t)n);
        return 1;
    }
    n = netconn_write(dst, b->data + b->start, b->end - b->start);
    if (n == NETCONN_AGAIN)
        return 0;
    if (n < 0)
        return -1;
    b->start += (uint32_t)n;
    if (counter)
        stats_add(counter, (uint64_t)n);
    if (b->start == b->end) {
        buf_put(w, b);
        *bufp = NULL;
    }
    return 1;
}

/* Reads from src into *bufp while there is room. 1 on progress, 0 when waiting, -1 on error. */
static int fill(struct worker *w, struct netconn *src, struct buf **bufp, _Atomic uint64_t *counter)
{
    struct buf *b = *bufp;
    ssize_t n;

    if (netconn_at_eof(src) || !netconn_is_ready(src))
        return 0;
    if (!b && !(b = *bufp = buf_get(w)))
        return -1;
    if (b->end == CONN_BUF_SIZE && b->start > 0) {
        /* The moving-buffer mode lets a TLS write that waits resume from the new place. */
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    if (b->end == CONN_BUF_SIZE)
        return 0; /* full: backpressure until dst takes some */
    n = netconn_read(src, b->data + b->end, CONN_BUF_SIZE - b->end);
    if (n > 0) {
        b->end += (uint32_t)n;
        if (counter)
            stats_add(counter, (uint64_t)n);
        return 1;
    }
    if (b->start == b->end) {
        buf_put(w, b);
        *bufp = NULL;
    }
    if (n == 0)
        return 1; /* the end of src's stream: netconn_at_eof() from now */
    return n == NETCONN_AGAIN ? 0 : -1;
}

/*
 * Moves bytes from src to dst until neither can go on: read as much as the
 * socket has (and the buffer takes), write as much as the peer takes.
 * Returns 1 if anything moved, 0 if not, -1 on error.
 */
static int forward(struct conn *c, struct netconn *src, struct netconn *dst, struct mbuf *carry,
                   struct buf **bufp, _Atomic uint64_t *read_counter,
                   _Atomic uint64_t *write_counter)
{
    int moved = 0, r;

    do {
        r = flush(c, dst, carry, bufp, write_counter);
        if (r < 0)
            return -1;
        moved |= r;
        r = fill(c->worker, src, bufp, read_counter);
        if (r < 0)
            return -1;
        moved |= r;
    } while (r > 0);
    /* A last flush for what the last fill brought. */
    r = flush(c, dst, carry, bufp, write_counter);
    if (r < 0 || pass_eof(src, dst, carry, *bufp) < 0)
        return -1;
    return moved | r;
}

/* --- the client's bytes in the pinned path -------------------------------------------------- */

/*
 * A pinned client's requests go to the shard as they are, but only once scanned: an
 * administrative command is refused there too (command_policy_scan_pinned), however its bytes
 * are split across reads. up_ok says how many bytes at the front of up may go.
 */

static void up_release_if_empty(struct conn *c)
{
    if (c->up && c->up->start == c->up->end) {
        buf_put(c->worker, c->up);
        c->up = NULL;
        c->up_seen = c->up_ok = 0;
    }
}

/*
 * Writes the bytes of up that may go, then the error request that takes a refused request's
 * place. 1 on progress, 0 when waiting, -1 on error. While the worker handles a batch of events,
 * writes wait for the end of the batch.
 */
static int flush_up(struct conn *c)
{
    struct buf *b = c->up;
    ssize_t n;

    if ((!(b && c->up_ok) && !mbuf_pending(&c->refusal)) || !netconn_is_ready(&c->shard))
        return 0;
    if (c->worker->batching) {
        conn_defer(c);
        return 0;
    }
    if (b && c->up_ok) {
        n = netconn_write(&c->shard, b->data + b->start, c->up_ok);
        if (n == NETCONN_AGAIN)
            return 0;
        if (n < 0)
            return -1;
        b->start += (uint32_t)n;
        c->up_ok -= (uint32_t)n;
        c->up_seen -= (uint32_t)n;
        up_release_if_empty(c);
        return 1;
    }
    n = netconn_write(&c->shard, mbuf_head(&c->refusal), mbuf_pending(&c->refusal));
    if (n == NETCONN_AGAIN)
        return 0;
    if (n < 0)
        return -1;
    mbuf_consume(&c->refusal, (size_t)n);
    return 1;
}

/*
 * Moves what a client pinned after multiplexing had read and not passed on (c->in) into up,
 * where it is scanned like what comes from the socket, and before it. 1 on progress, 0, -1.
 */
static int take_carry(struct conn *c)
{
    struct buf *b = c->up;
    size_t n;

    if (!b && !(b = c->up = buf_get(c->worker)))
        return -1;
    if (b->end == CONN_BUF_SIZE && b->start > 0) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    n = CONN_BUF_SIZE - b->end;
    if (n > mbuf_pending(&c->in))
        n = mbuf_pending(&c->in);
    if (n == 0)
        return 0;
    memcpy(b->data + b->end, mbuf_head(&c->in), n);
    b->end += (uint32_t)n;
    mbuf_consume(&c->in, n);
    return 1;
}

/* Ends the shard's stream once the client's has ended (or was cut) and all that may go is out. */
static int pass_eof_up(struct conn *c)
{
    bool ended = c->up_cut || (netconn_at_eof(&c->client) && !mbuf_pending(&c->in));

    if (!ended || c->up || mbuf_pending(&c->refusal) || netconn_is_shut(&c->shard) ||
        !netconn_is_ready(&c->shard))
        return 0;
    return netconn_shutdown(&c->shard) == NETCONN_ERROR ? -1 : 0;
}

/* forward() for the client's side of a pinned connection: 1 if anything moved, 0, or -1. */
static int forward_up(struct conn *c)
{
    int moved = 0, round, r;

    do {
        if (command_policy_scan_pinned(c) < 0)
            return -1;
        up_release_if_empty(c);
        round = flush_up(c);
        if (round < 0)
            return -1;
        r = mbuf_pending(&c->in) ? take_carry(c)
                                 : fill(c->worker, &c->client, &c->up, &c->stats->bytes_in);
        if (r < 0)
            return -1;
        round |= r;
        moved |= round;
    } while (round > 0);
    if (pass_eof_up(c) < 0)
        return -1;
    return moved;
}

/* --- timers --------------------------------------------------------------------------------- */

/* The next time something must have happened, or 0 for none. */
static uint64_t deadline(const struct conn *c)
{
    uint64_t d = 0;

    if (!netconn_is_ready(&c->client))
        d = c->accepted_ms + HANDSHAKE_TIMEOUT_MS;
    if (c->mode == CONN_PINNED && !netconn_is_ready(&c->shard))
        d = c->shard_opened_ms + CONNECT_TIMEOUT_MS; /* the client is ready, or this is earlier */
    if (d)
        return d;
    if (c->linger_ms)
        return c->linger_ms + LINGER_TIMEOUT_MS;
    if (c->worker->idle_timeout_ms)
        return c->active_ms + c->worker->idle_timeout_ms;
    return 0;
}

/*
 * Sets the timer for the next deadline. A timer already set for an earlier
 * time is left alone: when it fires it looks again (so that activity, which
 * moves the idle deadline, costs no timer operation).
 */
static void arm_timer(struct conn *c, uint64_t now)
{
    uint64_t d = deadline(c);
    struct timeval tv;

    if (d == c->armed_ms || (d && c->armed_ms && c->armed_ms < d))
        return;
    c->armed_ms = d;
    if (!d) {
        evtimer_del(&c->timer);
        return;
    }
    d = d > now ? d - now : 0;
    tv.tv_sec = (time_t)(d / 1000);
    tv.tv_usec = (suseconds_t)(d % 1000) * 1000;
    evtimer_add(&c->timer, &tv);
}

static void timed_out(struct conn *c)
{
    char peer[NET_ADDRESS_MAX];
    unsigned long suppressed;
    const char *what;

    if (c->mode == CONN_PINNED && !netconn_is_ready(&c->shard))
        what = "the shard did not answer within 5 s";
    else if (!netconn_is_ready(&c->client))
        what = "the client's TLS handshake did not complete within 10 s";
    else if (c->linger_ms)
        return; /* the shard closed; the client did not: nothing went wrong */
    else
        what = "idle timeout";
    if ((c->mode == CONN_PINNED && !netconn_is_ready(&c->shard)) || !netconn_is_ready(&c->client))
        stats_add(&c->stats->errors, 1);
    if ((c->mode != CONN_PINNED || netconn_is_ready(&c->shard)) && !netconn_is_ready(&c->client))
        stats_add(&c->stats->handshake_failures, 1);
    if (!worker_log_allowed(c->worker, &suppressed))
        return;
    conn_peer(c, peer, sizeof(peer));
    log_info("Database '%s': closing the connection of client %s: %s", c->db_name, peer, what);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    uint64_t now = conn_now_ms();

    (void)fd;
    (void)what;
    c->armed_ms = 0;
    if (now + 1 < deadline(c)) { /* activity since it was set: later */
        arm_timer(c, now);
        return;
    }
    timed_out(c);
    conn_free(c);
}

/* --- running -------------------------------------------------------------------------------- */

static bool finished(const struct conn *c)
{
    bool up_done =
        netconn_at_eof(&c->client) && !c->up && !mbuf_pending(&c->in) && netconn_is_shut(&c->shard);
    bool down_done = netconn_at_eof(&c->shard) && !c->down && !mbuf_pending(&c->out) &&
                     netconn_is_shut(&c->client);

    return up_done && down_done;
}

void conn_touch(struct conn *c)
{
    uint64_t now = conn_now_ms();

    c->active_ms = now;
    arm_timer(c, now);
}

void conn_run(struct conn *c)
{
    struct db_counters *s = c->stats;
    uint64_t now;
    int moved;

    if (!netconn_is_ready(&c->client) && client_progress(c) < 0) {
        conn_free(c);
        return;
    }
    if (c->mode == CONN_MUX) {
        if (netconn_is_ready(&c->client))
            mux_client_run(c); /* may free c */
        else
            conn_touch(c);
        return;
    }
    if (!netconn_is_ready(&c->shard) && shard_progress(c) < 0) {
        conn_free(c);
        return;
    }
    do {
        moved = forward_up(c);
        if (moved >= 0)
            moved |= forward(c, &c->shard, &c->client, &c->out, &c->down, NULL, &s->bytes_out);
    } while (moved > 0);
    if (moved < 0 || finished(c)) {
        conn_free(c);
        return;
    }
    now = conn_now_ms();
    c->active_ms = now;
    /* The shard has said all it will: the client gets a while to close its side. */
    if (netconn_at_eof(&c->shard) && !c->down && netconn_is_shut(&c->client) && !c->linger_ms)
        c->linger_ms = now;
    arm_timer(c, now);
}

/* Either socket became ready (netconn noted for which): run the connection. */
static void on_socket(void *arg)
{
    conn_run(arg);
}

size_t conn_flush_pending(struct worker *w)
{
    size_t n = 0;

    for (; w->pending; n++) {
        struct conn *c = w->pending;

        undefer(c);
        conn_run(c); /* may free c */
    }
    return n;
}

/* --- accepting ------------------------------------------------------------------------------ */

int conn_start_tls(struct netconn *side, SSL_CTX *ctx, bool server)
{
    if (netconn_start_tls(side, ctx, server) < 0)
        return -ENOMEM;
    /* A peer that closes without close_notify has ended its stream, as with plain TCP. */
    SSL_set_options(netconn_ssl(side), SSL_OP_IGNORE_UNEXPECTED_EOF);
    return 0;
}

/* The client's side by the database's tls_mode (plain until the first byte for replica_ssl). */
static int client_open(struct conn *c, const struct proxy_db *db, int fd)
{
    netconn_init(&c->client, fd, false);
    switch (db->config->tls_mode) {
    case DB_TLS_DISABLED:
        return 0;
    case DB_TLS_REPLICA_SSL:
        SSL_CTX_up_ref(db->server_ctx);
        c->sniff_ctx = db->server_ctx;
        c->sniffing = true;
        return 0;
    case DB_TLS_ENABLED:
    default:
        return conn_start_tls(&c->client, db->server_ctx, true);
    }
}

/* A socket in the event loop: edge-triggered, added once for good (netconn_watch). */
static int watch_shard(struct conn *c)
{
    return netconn_watch(&c->shard, c->worker->base, on_socket, c);
}

static int watch_client(struct conn *c)
{
    return netconn_watch(&c->client, c->worker->base, on_socket, c);
}

void conn_pin(struct conn *c)
{
    bool handed = c->pin_hand_over && mux_hand_over(c);

    mux_detach(c);
    c->mode = CONN_PINNED;
    c->pin_wanted = c->pin_hand_over = false;
    if ((!handed && shard_open(c) < 0) || watch_shard(c) < 0) {
        conn_free(c);
        return;
    }
    conn_run(c);
}

void conn_accept(struct worker *w, const struct proxy_db *db, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));

    stats_add(&db->stats->workers[w->index].connections_total, 1);
    if (!c) {
        stats_add(&db->stats->workers[w->index].errors, 1);
        close(fd);
        return;
    }
    c->worker = w;
    c->stats = &db->stats->workers[w->index];
    c->db_name = db->stats->name;
    c->mode = db->config->multiplex_off ? CONN_PINNED : CONN_MUX;
    c->commands_allowed = db->config->commands_allowed;
    resp_scanner_init(&c->scanner);
    c->shard_address = db->shard;
    snprintf(c->shard_host, sizeof(c->shard_host), "%s", db->shard_host);
    if (db->shard_ctx) {
        SSL_CTX_up_ref(db->shard_ctx);
        c->shard_ctx = db->shard_ctx;
    }
    resp_request_framer_init(&c->framer);
    c->accepted_ms = c->active_ms = conn_now_ms();
    netconn_init(&c->client, -1, false);
    netconn_init(&c->shard, -1, false);
    evtimer_assign(&c->timer, w->base, on_timer, c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    stats_add(&c->stats->connections, 1);
    net_set_nodelay(fd);
    if (client_open(c, db, fd) < 0) {
        stats_add(&c->stats->errors, 1);
        conn_free(c);
        return;
    }
    if (watch_client(c) < 0 ||
        (c->mode == CONN_PINNED && (shard_open(c) < 0 || watch_shard(c) < 0))) {
        conn_free(c);
        return;
    }
    conn_run(c);
}
