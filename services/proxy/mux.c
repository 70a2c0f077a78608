/*
 * Shared shard connections. Each worker keeps one per database (per shard,
 * TLS context and expected host) for its multiplexed clients: their requests
 * are appended whole to its output and written with one system call per batch
 * of events; its replies are framed (lib/resp.c) and handed back in the order
 * the requests went out, which Redis keeps on a connection. A FIFO of clients
 * pairs them. Should the connection fail, every client with a request in
 * flight is closed: a reply is never given to anyone else.
 *
 * Whatever Redis holds on a connection holds every request behind it: a busy
 * script, a write during CLIENT PAUSE WRITE, a module's blocking command. So
 * a shared connection carries one batch at a time: the next batch goes out
 * once every reply of the last one is in, and requests that arrive meanwhile
 * wait in their clients' buffers, where nothing has committed them to this
 * connection. When a batch goes unanswered for MUX_STALL_MS, the connection
 * is taken out of sharing (stalled): the clients waiting on it move to
 * another one, and see what Redis shows them there (BUSY, their reads served
 * during a write pause). Only the requests of the same batch share its fate:
 * requests that reached the proxy together. A stalled connection that
 * answers again is shared again.
 */
#include "mux.h"

#include "conn.h"
#include "log.h"
#include "mbuf.h"
#include "resp.h"
#include "stats.h"
#include "worker.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

/* Requests queued and not yet written: beyond this, clients wait (their own buffers hold). */
#define MUX_OUT_MAX (1024 * 1024)
/* Requests written whose replies have not come. */
#define MUX_INFLIGHT_MAX 65536
/* What one read takes from the shard. */
#define MUX_READ_SIZE (64 * 1024)
#define MUX_CONNECT_TIMEOUT_MS 5000
/* A batch unanswered for this long stalls its connection (Redis answers in microseconds). */
#define MUX_STALL_MS 50
/*
 * Shared connections per database and worker. A stall opens another; beyond
 * this many (Redis itself is blocked, not one connection) clients wait.
 */
#define MUX_PER_KEY_MAX 4
/* A shared connection left without clients closes after this (a reload leaves old ones). */
#define MUX_IDLE_MS 30000

struct mux {
    struct worker *worker;
    struct db_counters *stats; /* the database's, for the key */
    const char *db_name;
    struct net_address address;
    SSL_CTX *ctx; /* a reference; NULL: plain */
    char host[256];
    struct netconn side; /* watched from when it opens */
    struct mbuf out;
    struct resp_framer framer;
    /* The clients whose replies are to come, in order; NULL for one that left. */
    struct conn **fifo;
    size_t head, count, cap;
    size_t batch;              /* requests at the FIFO's head written as one batch, unanswered */
    uint64_t batch_started_ms; /* when it went out */
    bool stalled;              /* the batch is overdue: no new requests go here */
    struct conn *clients;      /* attached */
    size_t n_clients, n_waiting;
    struct event timer;
    bool pending;
    struct mux *pending_next;
    struct mux *prev, *next;
};

static void mux_run(struct mux *m);

/* --- the worker's lists --------------------------------------------------------------------- */

static void defer(struct mux *m)
{
    struct worker *w = m->worker;

    if (m->pending)
        return;
    /* At the tail: the batches go out in the order their first requests came. */
    m->pending = true;
    m->pending_next = NULL;
    if (w->mux_pending_tail)
        w->mux_pending_tail->pending_next = m;
    else
        w->mux_pending = m;
    w->mux_pending_tail = m;
}

static void undefer(struct mux *m)
{
    struct worker *w = m->worker;
    struct mux **p = &w->mux_pending, *prev = NULL;

    if (!m->pending)
        return;
    while (*p && *p != m) {
        prev = *p;
        p = &(*p)->pending_next;
    }
    if (*p)
        *p = m->pending_next;
    if (w->mux_pending_tail == m)
        w->mux_pending_tail = prev;
    m->pending = false;
}

static void mux_free(struct mux *m)
{
    struct worker *w = m->worker;

    undefer(m);
    evtimer_del(&m->timer);
    netconn_close(&m->side);
    SSL_CTX_free(m->ctx);
    mbuf_free(&m->out);
    free(m->fifo);
    if (m->prev)
        m->prev->next = m->next;
    else
        w->muxes = m->next;
    if (m->next)
        m->next->prev = m->prev;
    ERR_clear_error();
    free(m);
}

/* --- clients -------------------------------------------------------------------------------- */

static void attach(struct mux *m, struct conn *c)
{
    c->mux = m;
    c->mux_prev = NULL;
    c->mux_next = m->clients;
    if (m->clients)
        m->clients->mux_prev = c;
    m->clients = c;
    if (m->n_clients++ == 0)
        evtimer_del(&m->timer);
}

static void arm(struct mux *m, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    evtimer_add(&m->timer, &tv);
}

void mux_detach(struct conn *c)
{
    struct mux *m = c->mux;

    if (!m)
        return;
    if (c->inflight) {
        for (size_t i = 0; i < m->count; i++)
            if (m->fifo[(m->head + i) % m->cap] == c)
                m->fifo[(m->head + i) % m->cap] = NULL;
        c->inflight = 0;
    }
    if (c->mux_prev)
        c->mux_prev->mux_next = c->mux_next;
    else
        m->clients = c->mux_next;
    if (c->mux_next)
        c->mux_next->mux_prev = c->mux_prev;
    if (c->mux_waiting)
        m->n_waiting--;
    c->mux_waiting = false;
    c->mux = NULL;
    if (--m->n_clients == 0 && netconn_is_ready(&m->side))
        arm(m, MUX_IDLE_MS);
}

/* Clients that waited for room run again. */
static void wake_waiting(struct mux *m)
{
    if (!m->n_waiting)
        return;
    for (struct conn *c = m->clients; c; c = c->mux_next) {
        if (c->mux_waiting) {
            c->mux_waiting = false;
            conn_defer(c);
        }
    }
    m->n_waiting = 0;
}

/* No request may be queued now: a batch is out, or the queue is at its limit. */
static bool full(const struct mux *m)
{
    return m->batch > 0 || mbuf_pending(&m->out) >= MUX_OUT_MAX || m->count >= MUX_INFLIGHT_MAX;
}

bool mux_full_wait(struct mux *m, struct conn *c)
{
    if (!full(m))
        return false;
    if (!c->mux_waiting) {
        c->mux_waiting = true;
        m->n_waiting++;
    }
    return true;
}

/*
 * The connection failed: its clients with requests in flight are closed,
 * each with a line saying why; the others go on and get a new one with their
 * next request.
 */
static void mux_fail(struct mux *m, const char *what, const char *reason)
{
    struct conn *c = m->clients, *next;
    bool any = false;

    for (; c; c = next) {
        next = c->mux_next;
        if (c->inflight) {
            any = true;
            shard_log_failure(c, what, reason);
            conn_free(c); /* detaches it */
        } else {
            mux_detach(c);
            conn_defer(c); /* its next request (maybe waiting for room) opens a new one */
        }
    }
    if (!any)
        log_debug("Database '%s': closing a shared connection to the shard: %s %s", m->db_name,
                  what, reason);
    mux_free(m);
}

/* --- the connection ------------------------------------------------------------------------- */

static void on_event(void *arg)
{
    mux_run(arg);
}

/*
 * The batch out is overdue: no new requests go on this connection. Its
 * clients without a request in it move on with their next request (they run
 * again now: they may be waiting); those with one stay until it is answered,
 * so that each client's replies keep their order.
 */
static void stall(struct mux *m)
{
    struct conn *c = m->clients, *next;

    m->stalled = true;
    log_debug("Database '%s': a shared connection to the shard left a batch unanswered for "
              "%d ms; its waiting clients move to another",
              m->db_name, MUX_STALL_MS);
    for (; c; c = next) {
        next = c->mux_next;
        if (!c->inflight) {
            mux_detach(c);
            conn_defer(c);
        }
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct mux *m = arg;

    (void)fd;
    (void)what;
    if (!netconn_is_ready(&m->side)) {
        mux_fail(m, "cannot connect to", "the shard did not answer within 5 s");
        return;
    }
    if (m->batch > 0 && !m->stalled) {
        uint64_t due = m->batch_started_ms + MUX_STALL_MS, now = conn_now_ms();

        if (now < due) { /* the coarse clock lags the timer by a few ms */
            arm(m, due - now);
            return;
        }
        stall(m);
        if (m->n_clients > 0)
            return;
    }
    if (m->n_clients == 0 && m->count == 0)
        mux_free(m);
    else if (m->n_clients == 0)
        arm(m, MUX_IDLE_MS); /* replies for clients that left are still to come */
}

static bool same_key(const struct mux *m, const struct conn *c)
{
    return m->stats == c->stats && m->ctx == c->shard_ctx &&
           m->address.len == c->shard_address.len &&
           memcmp(&m->address.addr, &c->shard_address.addr, c->shard_address.len) == 0 &&
           strcmp(m->host, c->shard_host) == 0;
}

static struct mux *mux_open(struct conn *c)
{
    struct worker *w = c->worker;
    struct mux *m = calloc(1, sizeof(*m));
    const char *reason = "out of memory";

    if (!w->mux_read_buf && !(w->mux_read_buf = malloc(MUX_READ_SIZE))) {
        free(m);
        m = NULL;
    }
    if (!m) {
        shard_log_failure(c, "cannot connect to", reason);
        return NULL;
    }
    m->worker = w;
    m->stats = c->stats;
    m->db_name = c->db_name;
    m->address = c->shard_address;
    snprintf(m->host, sizeof(m->host), "%s", c->shard_host);
    netconn_init(&m->side, -1, false);
    if (c->shard_ctx) {
        SSL_CTX_up_ref(c->shard_ctx);
        m->ctx = c->shard_ctx;
    }
    evtimer_assign(&m->timer, w->base, on_timer, m);
    m->next = w->muxes;
    if (w->muxes)
        w->muxes->prev = m;
    w->muxes = m;
    if (shard_side_open(&m->side, &m->address, m->ctx, m->host, &reason) < 0 ||
        netconn_watch(&m->side, w->base, on_event, m) < 0) {
        shard_log_failure(c, "cannot connect to", reason);
        mux_free(m);
        return NULL;
    }
    net_set_nodelay(netconn_fd(&m->side));
    arm(m, MUX_CONNECT_TIMEOUT_MS);
    return m;
}

struct mux *mux_get(struct conn *c)
{
    struct mux *m, *any = NULL;
    size_t n = 0;

    if (c->mux && (!c->mux->stalled || c->inflight))
        return c->mux;
    mux_detach(c); /* from a stalled one, with nothing in it */
    for (m = c->worker->muxes; m; m = m->next) {
        if (!same_key(m, c))
            continue;
        if (!m->stalled)
            break;
        any = m;
        n++;
    }
    if (!m && n >= MUX_PER_KEY_MAX)
        m = any; /* Redis itself holds them all: wait on one */
    if (!m && !(m = mux_open(c)))
        return NULL;
    attach(m, c);
    return m;
}

bool mux_hand_over(struct conn *c)
{
    struct mux *m = c->mux;
    struct conn *o, *next;

    if (!m || !netconn_is_ready(&m->side) || m->stalled || m->count > 0 ||
        mbuf_pending(&m->out) > 0)
        return false;
    /* Its event is added again by the caller; the TLS layer follows it to its new place. */
    netconn_move(&c->shard, &m->side);
    c->shard_opened_ms = conn_now_ms();
    for (o = m->clients; o; o = next) {
        next = o->mux_next;
        mux_detach(o); /* none has a request in it */
        if (o != c)
            conn_defer(o); /* a waiting one goes on, on a new shared connection */
    }
    mux_free(m);
    return true;
}

static int fifo_push(struct mux *m, struct conn *c)
{
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct conn **fifo = malloc(cap * sizeof(*fifo));

        if (!fifo)
            return -ENOMEM;
        for (size_t i = 0; i < m->count; i++)
            fifo[i] = m->fifo[(m->head + i) % m->cap];
        free(m->fifo);
        m->fifo = fifo;
        m->cap = cap;
        m->head = 0;
    }
    m->fifo[(m->head + m->count) % m->cap] = c;
    m->count++;
    return 0;
}

int mux_send(struct mux *m, struct conn *c, const char *request, size_t len)
{
    if (fifo_push(m, c) < 0)
        return -ENOMEM;
    if (mbuf_append(&m->out, request, len) < 0) {
        m->count--;
        return -ENOMEM;
    }
    c->inflight++;
    defer(m);
    return 0;
}

/* Every reply of the batch is in: the next may go, on a connection shared again. */
static void batch_answered(struct mux *m)
{
    m->stalled = false;
    if (m->n_clients > 0)
        evtimer_del(&m->timer);
    else
        arm(m, MUX_IDLE_MS);
}

/*
 * Hands replies out: the bytes of the reply at the front go to its client as
 * they arrive. Returns 0, or -1 when the shard sent what no request asked for
 * (bytes without a request, an out-of-band push) or what is not RESP.
 */
static int route(struct mux *m, const char *p, size_t n)
{
    while (n > 0) {
        struct conn *c;
        size_t used;
        int r;

        if (m->count == 0)
            return -1;
        c = m->fifo[m->head];
        r = resp_framer_feed(&m->framer, p, n, &used);
        if (r < 0 || m->framer.first == '>')
            return -1;
        if (c && mbuf_append(&c->out, p, used) < 0) {
            stats_add(&c->stats->errors, 1);
            conn_free(c); /* clears its places in the FIFO */
            c = NULL;
        }
        if (c)
            conn_defer(c);
        if (r == 1) {
            m->head = (m->head + 1) % m->cap;
            m->count--;
            if (c)
                c->inflight--;
            if (m->batch > 0 && --m->batch == 0)
                batch_answered(m);
        }
        p += used;
        n -= used;
    }
    return 0;
}

/*
 * Writes the queued requests: they become the batch out, if none is. Returns
 * 0, or -1 when the connection failed.
 */
static int write_out(struct mux *m)
{
    if (m->batch == 0) {
        if (m->count == 0)
            return 0;
        m->batch = m->count;
        m->batch_started_ms = conn_now_ms();
        arm(m, MUX_STALL_MS);
    }
    while (mbuf_pending(&m->out) > 0) {
        ssize_t n = netconn_write(&m->side, mbuf_head(&m->out), mbuf_pending(&m->out));

        if (n == NETCONN_AGAIN)
            return 0;
        if (n < 0)
            return -1;
        mbuf_consume(&m->out, (size_t)n);
    }
    return 0;
}

/* Reads replies until the socket is drained. Returns 0, or -1 with what and reason. */
static int read_in(struct mux *m, const char **what, const char **reason)
{
    for (;;) {
        ssize_t n = netconn_read(&m->side, m->worker->mux_read_buf, MUX_READ_SIZE);

        if (n == NETCONN_AGAIN)
            return 0;
        *what = "lost the connection to";
        if (n == 0) {
            *reason = "the shard closed it";
            return -1;
        }
        if (n < 0) {
            *reason =
                netconn_errno(&m->side) ? strerror(netconn_errno(&m->side)) : "broken connection";
            return -1;
        }
        if (route(m, m->worker->mux_read_buf, (size_t)n) < 0) {
            *reason = "a reply that answers no request";
            return -1;
        }
    }
}

static void mux_run(struct mux *m)
{
    const char *what = "lost the connection to", *reason = "broken connection";
    char why[512];

    if (!netconn_is_ready(&m->side)) {
        int r = shard_side_progress(&m->side, &what, why, sizeof(why));

        if (r < 0) {
            mux_fail(m, what, why);
            return;
        }
        if (r == 0)
            return;
        evtimer_del(&m->timer);
        if (m->n_clients == 0)
            arm(m, MUX_IDLE_MS);
    }
    if (mbuf_pending(&m->out) > 0) {
        if (m->worker->batching)
            defer(m);
        else if (write_out(m) < 0) {
            mux_fail(m, what, netconn_errno(&m->side) ? strerror(netconn_errno(&m->side)) : reason);
            return;
        }
    }
    if (read_in(m, &what, &reason) < 0) {
        mux_fail(m, what, reason);
        return;
    }
    if (!full(m))
        wake_waiting(m);
}

size_t mux_flush_pending(struct worker *w)
{
    size_t n = 0;

    for (; w->mux_pending; n++) {
        struct mux *m = w->mux_pending;

        w->mux_pending = m->pending_next;
        if (!w->mux_pending)
            w->mux_pending_tail = NULL;
        m->pending = false;
        mux_run(m); /* may free m */
    }
    return n;
}

void mux_close_all(struct worker *w)
{
    while (w->muxes)
        mux_free(w->muxes);
    free(w->mux_read_buf);
    w->mux_read_buf = NULL;
}
