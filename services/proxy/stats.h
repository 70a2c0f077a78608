/* Per-database counters, one set per worker thread so that the data path takes no lock. */
#ifndef CERTVISOR_PROXY_STATS_H
#define CERTVISOR_PROXY_STATS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct generation;

/*
 * One worker's counters for one database. Only that worker writes them (plain
 * loads and stores, no locked instruction); the main thread reads them for
 * reports. A cache line each, so that workers never share one.
 */
struct db_counters {
    _Atomic uint64_t connections;        /* open now */
    _Atomic uint64_t connections_total;  /* accepted */
    _Atomic uint64_t handshakes;         /* client TLS handshakes completed */
    _Atomic uint64_t handshake_failures; /* client TLS handshakes failed, auth_failures included */
    _Atomic uint64_t auth_failures; /* clients refused for their certificate (or its absence) */
    _Atomic uint64_t bytes_in;      /* read from clients */
    _Atomic uint64_t bytes_out;     /* written to clients */
    _Atomic uint64_t errors; /* shard unreachable or refusing TLS, timeouts, broken sockets */
} __attribute__((aligned(64)));

/* Adds n (which may be -1 for the open-connections gauge): its worker is the only writer. */
static inline void stats_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/*
 * A database's counters, by name. Slots outlive generations: a database that
 * is removed and added again continues its counters, and connections still
 * open on a removed database keep a valid place to count.
 */
struct stats_slot {
    char name[64];
    struct db_counters *workers; /* one per worker */
    struct stats_slot *next;
    /*
     * The last client refused for its certificate, or that refused the proxy's
     * (replica status shows it on the source's side): rare, so under a lock.
     */
    pthread_mutex_t refusal_lock;
    char last_refusal[320];
    time_t last_refusal_at;
};

/* Records why a client was refused (any worker; "client 1.2.3.4:5: reason"). */
void stats_note_refusal(struct stats_slot *slot, const char *client, const char *reason);

/* The slot whose name is name (a conn's db_name points into its slot). */
static inline struct stats_slot *stats_slot_of_name(const char *name)
{
    return (struct stats_slot *)(name - offsetof(struct stats_slot, name));
}

struct stats {
    size_t n_workers;
    struct stats_slot *slots;
    char *last_sent; /* the last report, to send only changes */
};

void stats_init(struct stats *stats, size_t n_workers);

/* Client connections open now, over every database and worker (a draining proxy waits for 0). */
uint64_t stats_open_connections(const struct stats *stats);

/* The slot for name, created on first use. NULL when out of memory. */
struct stats_slot *stats_slot(struct stats *stats, const char *name);

/*
 * The report for the databases of gen, as one line of compact JSON
 * ({"databases":{"db1":{"connections":3,...}}}), malloc'd; NULL on no memory.
 */
char *stats_render(const struct generation *gen, size_t n_workers);

/*
 * Sends CERTVISOR_STATS=<report> over the notify socket when it differs from
 * the last one sent. Returns 1 when sent, 0 when unchanged, or a negative errno.
 */
int stats_report(struct stats *stats, const struct generation *gen);

void stats_free(struct stats *stats);

#endif
