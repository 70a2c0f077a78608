/* A generation: everything built from the two rendered files, complete before it is used. */
#ifndef CERTVISOR_PROXY_GENERATION_H
#define CERTVISOR_PROXY_GENERATION_H

#include "db_config.h"
#include "netutil.h"
#include "tls_config.h"

#include <openssl/ssl.h>
#include <stddef.h>

struct generation;
struct stats;
struct stats_slot;

/*
 * The listening sockets of one address, one per worker (SO_REUSEPORT), owned
 * by the table. A set lives as long as some generation serves a database on
 * its address, so a reload that keeps a port keeps its sockets and never
 * loses a connection waiting in their backlogs.
 */
struct listener_set {
    struct net_address address;
    char name[NET_ADDRESS_MAX]; /* "0.0.0.0:12000" */
    int *fds;                   /* one per worker */
    struct listener_set *next;
};

struct listener_table {
    size_t n_workers;
    struct listener_set *sets;
};

/*
 * The set listening on address: the existing one, or a new one with a socket
 * per worker. Returns 0, or a negative errno (-EADDRINUSE when another process
 * listens there; nothing is left open).
 */
int listeners_claim(struct listener_table *table, const struct net_address *address,
                    struct listener_set **ret_set);

/* The set listening on address, or NULL. */
struct listener_set *listeners_find(const struct listener_table *table,
                                    const struct net_address *address);

/* A set for address with no socket yet (every fd -1), not in the table; NULL without memory. */
struct listener_set *listener_set_new(const struct listener_table *table,
                                      const struct net_address *address);

/* Opens a socket for each worker the set has none for (SO_REUSEPORT: they join the group of
 * the others). Returns 0 or a negative errno (the sockets opened so far stay in the set). */
int listeners_open_missing(const struct listener_table *table, struct listener_set *set);

/* Closes the sets that no database of keep uses (keep NULL: all of them). */
void listeners_prune(struct listener_table *table, const struct generation *keep);

/* One database as this generation serves it. */
struct proxy_db {
    const struct db_config *config; /* in the generation's list */
    SSL_CTX *server_ctx;            /* clients' TLS (NULL when tls_mode is disabled); a reference */
    SSL_CTX *shard_ctx;             /* TLS to the shard (NULL unless shard_tls); a reference */
    struct net_address shard;       /* resolved when the generation was built */
    char shard_host[256];           /* the shard setting's host: what its certificate must name */
    struct listener_set *listener;
    struct stats_slot *stats;
};

struct generation {
    struct tls_config *tls; /* the proxy's TLS file: certificate and data-plane policy */
    SSL_CTX *base_ctx;      /* from it, without client certificates; a reference */
    struct db_list list;
    struct proxy_db *dbs; /* list.n of them, in the list's (name) order */
    size_t n;
};

/*
 * Reads both files and builds every context, address and listener a
 * generation needs. Returns 0, or a negative error code with a message in err
 * naming the file, database and setting at fault; on failure nothing it made
 * is left (new listeners are closed, counters slots may stay).
 */
int generation_build(const char *tls_path, const char *databases_path,
                     struct listener_table *listeners, struct stats *stats,
                     struct generation **ret_gen, char *err, size_t err_len);

/* Frees gen (its contexts; established connections hold references of their own). */
void generation_free(struct generation *gen);

/* The address a database listens on: its listen setting, 0.0.0.0 when unset. */
const char *generation_listen_host(const struct db_config *db);

#endif
