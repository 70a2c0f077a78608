/* A proxied connection: a client, its shard, and the bytes between them. */
#ifndef CERTVISOR_PROXY_CONN_H
#define CERTVISOR_PROXY_CONN_H

#include "netutil.h"
#include "side.h"

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>

struct worker;
struct proxy_db;
struct db_counters;

/*
 * A buffer for one direction, taken from the worker's pool when bytes must
 * wait and given back as soon as it is empty: idle connections hold none.
 * 16 KiB is one TLS record; twice that lets a read take two records at once.
 */
#define CONN_BUF_SIZE (32 * 1024)

struct buf {
    struct buf *next; /* in the worker's pool */
    uint32_t start, end;
    char data[CONN_BUF_SIZE];
};

struct conn {
    struct worker *worker;
    struct db_counters *stats; /* this worker's counters for the database */
    const char *db_name;       /* the counters slot's, which outlives generations */
    struct side client, shard;
    struct net_address shard_address; /* for messages */
    struct buf *up;                   /* client to shard; NULL when empty */
    struct buf *down;                 /* shard to client; NULL when empty */
    SSL_CTX *sniff_ctx;    /* replica_ssl: for a client whose first byte says TLS; a reference */
    bool sniffing;         /* replica_ssl: the first byte has not come yet */
    bool shard_connecting; /* connect() in progress */
    bool watched;          /* both sockets' events are assigned */
    struct event timer;
    uint64_t accepted_ms, active_ms, linger_ms; /* CLOCK_MONOTONIC_COARSE */
    uint64_t armed_ms;                          /* the deadline the timer is set for; 0: none */
    struct conn *prev, *next;                   /* the worker's list */
    bool pending;                               /* in the worker's list of deferred writes */
    struct conn *pending_prev, *pending_next;
};

/* Takes the accepted socket fd of a client of db and starts its connection to the shard. */
void conn_accept(struct worker *worker, const struct proxy_db *db, int fd);

/*
 * Runs the connections whose writes waited for the end of the worker's batch
 * of events (see worker->batching). Call it with batching off. Returns how
 * many connections wrote.
 */
size_t conn_flush_pending(struct worker *worker);

/* Closes every connection of the worker: close_notify to TLS clients where the socket takes it. */
void conn_close_all(struct worker *worker);

/* Frees the worker's pool of buffers. */
void conn_pool_clear(struct worker *worker);

/* The coarse monotonic clock, in milliseconds. */
uint64_t conn_now_ms(void);

/*
 * The client's side (client.c): sniffs a replica_ssl client's first byte and
 * completes the TLS handshake. Returns 0 (ready or waiting), or -1 when the
 * connection must close (counted and logged).
 */
int client_progress(struct conn *c);

/*
 * The shard's side (shard.c). shard_open starts the connection: 0, or -1 when
 * it failed at once (counted and logged). shard_progress completes the
 * connection and TLS handshake: 0 (ready or waiting) or -1.
 */
int shard_open(struct conn *c, const struct proxy_db *db);
int shard_progress(struct conn *c);

/* For log lines: the client's address ("?" when unknown). */
void conn_peer(const struct conn *c, char *buf, size_t len);

#endif
