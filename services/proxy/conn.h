/* A proxied connection: a client, its shard, and the bytes between them. */
#ifndef CERTVISOR_PROXY_CONN_H
#define CERTVISOR_PROXY_CONN_H

#include "mbuf.h"
#include "netutil.h"
#include "resp.h"
#include "netconn.h"

#include <event2/event_struct.h>
#include <stdbool.h>
#include <stdint.h>

struct worker;
struct proxy_db;
struct db_counters;
struct mux;

/*
 * How a client reaches its shard. A multiplexed client's requests travel on a
 * connection its worker shares among the database's clients (mux.c); a pinned
 * one has a shard connection of its own and its bytes are copied as they are
 * (conn.c). A multiplexed client is pinned, for good, by the first request
 * that gives a connection state or breaks the pairing of requests and replies
 * (mux_client.c lists them).
 */
enum conn_mode {
    CONN_PINNED,
    CONN_MUX,
};

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
    enum conn_mode mode;
    struct netconn client, shard;     /* shard: a pinned client's own connection */
    struct net_address shard_address; /* where the shard is, from the generation at accept */
    SSL_CTX *shard_ctx;               /* TLS to the shard (NULL: plain); a reference */
    char shard_host[256];             /* what the shard's certificate must name */
    struct buf *up;                   /* client to shard; NULL when empty */
    struct buf *down;                 /* shard to client; NULL when empty */
    SSL_CTX *sniff_ctx; /* replica_ssl: for a client whose first byte says TLS; a reference */
    bool sniffing;      /* replica_ssl: the first byte has not come yet */
    /*
     * Multiplexed: requests read and not yet passed on (in), replies not yet
     * written to the client (out). Once pinned, what they still hold goes
     * first, before the byte-copy buffers up and down.
     */
    struct mbuf in, out;
    struct resp_request_framer framer; /* where the request at the front of in stands */
    struct mux *mux;                   /* the shared connection it uses; NULL: none yet */
    struct conn *mux_prev, *mux_next;  /* the mux's clients */
    size_t inflight;                   /* its requests on the mux whose replies have not come */
    bool pin_wanted;                   /* the next request needs a connection of its own */
    bool pin_hand_over;                /* it blocks: take the shared one if idle (mux_hand_over) */
    bool mux_waiting;                  /* stopped by the mux's backpressure */
    /*
     * The admin-command policy (command_policy.c). Set when the client is accepted (and
     * replication_client once its TLS handshake is done): a connection outlives the generation
     * that accepted it, so these are copies of the database's settings, not pointers.
     */
    uint64_t commands_allowed; /* the database's allow_commands: a mask of lib/admin_commands.h */
    bool replication_client;   /* its TLS certificate verified against the database's trust
                                  (client_ca_file): it may SYNC, PSYNC and REPLCONF */
    /*
     * Pinned: the client's bytes are scanned as they pass (resp_scan). Of the bytes at the front
     * of up, up_seen were scanned and up_ok of those may go to the shard (the others are the
     * start of a request whose name is not known yet). A refused request's bytes are removed
     * and refusal holds the request that makes the shard answer its error in its place; while
     * it waits to go, scanning waits. up_cut: garbage inside a refused request, which the shard
     * would have refused with the request, so nothing more of the client goes to the shard.
     */
    struct resp_scanner scanner;
    uint32_t up_seen, up_ok;
    struct mbuf refusal;
    bool up_cut;
    struct event timer;
    uint64_t accepted_ms, active_ms, linger_ms; /* CLOCK_MONOTONIC_COARSE */
    uint64_t shard_opened_ms; /* when its own shard connection began (a pin comes late) */
    uint64_t armed_ms;        /* the deadline the timer is set for; 0: none */
    struct conn *prev, *next; /* the worker's list */
    bool pending;             /* in the worker's list of deferred writes */
    struct conn *pending_prev, *pending_next;
};

/* Takes the accepted socket fd of a client of db and starts its connection to the shard. */
void conn_accept(struct worker *worker, const struct proxy_db *db, int fd);

/* Runs the connection until it waits for a socket; frees it when it is over. */
void conn_run(struct conn *c);

/* Closes the connection and frees it (its shard connection too, if it has one). */
void conn_free(struct conn *c);

/* Queues c for conn_flush_pending: it runs again at the end of the worker's batch of events. */
void conn_defer(struct conn *c);

/* Activity: moves the idle deadline and sets the timer for the next one. */
void conn_touch(struct conn *c);

/*
 * Moves a multiplexed client, whose requests in flight are all answered, to a
 * shard connection of its own, and runs it. What its in and out buffers still
 * hold goes first, on the new connection and to the client.
 */
void conn_pin(struct conn *c);

/*
 * A multiplexed client (mux_client.c): passes its requests to the shared
 * connection, writes its replies, and pins it when a request needs it.
 */
void mux_client_run(struct conn *c);

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
 * The shard's side (shard.c). shard_open starts a pinned client's own
 * connection: 0, or -1 when it failed at once (counted and logged).
 * shard_progress completes the connection and TLS handshake: 0 (ready or
 * waiting) or -1.
 */
int shard_open(struct conn *c);
int shard_progress(struct conn *c);

/*
 * A connection to the shard on side (for a client or a shared one): connect,
 * and TLS with ctx (when not NULL) expecting a certificate that names host.
 * Returns 0 (the connect may still be in progress), or -1 with *ret_reason.
 */
int shard_side_open(struct netconn *side, const struct net_address *address, SSL_CTX *ctx,
                    const char *host, const char **ret_reason);

/*
 * Completes what shard_side_open started: 1 ready, 0 waiting, -1 failed with
 * *ret_what ("cannot connect to", "TLS handshake failed with") and reason.
 */
int shard_side_progress(struct netconn *side, const char **ret_what, char *reason, size_t len);

/*
 * TLS on one side of the proxy, with ctx, as the server (the client's side)
 * or the client (the shard's). Returns 0 or -ENOMEM.
 */
int conn_start_tls(struct netconn *side, SSL_CTX *ctx, bool server);

/*
 * Counts an error of c's database and logs (within the worker's rate limit)
 * "Database 'db': <what> shard <address> for client <peer>: <reason>". Returns -1.
 */
int shard_log_failure(struct conn *c, const char *what, const char *reason);

/* For log lines: the client's address ("?" when unknown). */
void conn_peer(const struct conn *c, char *buf, size_t len);

#endif
