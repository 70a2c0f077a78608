/* Worker threads: each runs its own event loop, accepts on its own sockets and owns its
 * connections.
 */
#ifndef CERTVISOR_PROXY_WORKER_H
#define CERTVISOR_PROXY_WORKER_H

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct generation;
struct proxy_db;
struct conn;
struct buf;
struct mux;

/* A database's listening socket in one worker. */
struct worker_listener {
    int fd; /* the listener set's; the set closes it */
    struct event *ev;
    const struct proxy_db *db;
    struct worker *worker;
};

struct workers;

struct worker {
    struct workers *all;
    size_t index;
    pthread_t thread;
    struct event_base *base;
    int wake_fd; /* eventfd: the main thread has posted something */
    struct event *wake_ev;
    struct event *resume_ev; /* accepting again after running out of descriptors */

    /* Posted by the main thread, under all->lock. */
    const struct generation *posted;
    const struct generation *acked; /* the generation this worker now serves */
    bool stop_posted;

    /* The worker's own, touched by its thread only. */
    const struct generation *gen;
    struct worker_listener *listeners;
    size_t n_listeners;
    struct conn *conns; /* every open connection, to close them when stopping */
    /*
     * While true (the worker is handling a batch of events), connections read
     * but do not write: they queue in pending, and write once the batch is done.
     * Reads first and writes together make bigger batches for the shard and the
     * clients, and fewer wakeups, which cost more than anything else here.
     */
    bool batching;
    struct conn *pending, *pending_tail;        /* in the order they were deferred */
    struct mux *muxes;                          /* shared shard connections (mux.c) */
    struct mux *mux_pending, *mux_pending_tail; /* those with requests to write, in order */
    char *mux_read_buf; /* where muxes read replies before handing them out */
    bool stopped;
    struct buf *free_bufs;
    size_t n_free_bufs;
    uint64_t idle_timeout_ms; /* 0: connections may idle forever */
    time_t log_second;        /* rate limit of per-connection log lines */
    unsigned log_lines;
    unsigned long log_suppressed;
};

struct workers {
    size_t n;
    struct worker *list;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* a worker acknowledged a generation */
};

/*
 * Starts n workers, serving nothing until a generation is published. Returns
 * 0, or a negative errno with a message (the started ones are stopped).
 */
int workers_start(struct workers *workers, size_t n, unsigned idle_timeout_seconds, char *err,
                  size_t err_len);

/*
 * Makes every worker serve gen: its listeners (added, kept or dropped) and its
 * contexts for new connections. Returns once all of them have switched, so
 * that the previous generation can be freed and its unused sockets closed.
 * Returns 0, or -ETIMEDOUT when a worker did not answer within 10 s.
 */
int workers_publish(struct workers *workers, const struct generation *gen);

/* Stops accepting, closes every connection (with close_notify where it can) and joins. */
void workers_stop(struct workers *workers);

/*
 * True when a per-connection log line may be written now: at most a few a
 * second per worker, so that a storm of failing clients cannot flood the log.
 * Lines held back are counted and reported with the next one allowed.
 */
bool worker_log_allowed(struct worker *worker, unsigned long *ret_suppressed);

/* " (N similar lines held back)" for a count of lines held back, "" for none. */
const char *worker_held_back(unsigned long suppressed, char *buf, size_t len);

#endif
