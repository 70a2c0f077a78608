/*
 * The node's view of the cluster's store (issue 16), on a cluster whose store is etcd: every
 * POLL_INTERVAL it asks etcd for its status (is it reachable, does it have a leader, at which
 * revision) and for the nodes alive, and it keeps this node alive itself: alive/<node> bound
 * to a lease that it keeps alive. All of it asynchronous, on the agent's loop, with the etcd
 * client's deadlines; what the commands answer comes from the last poll, never from a call
 * made while a client waits.
 */
#ifndef CERTVISOR_CLUSTER_MONITOR_H
#define CERTVISOR_CLUSTER_MONITOR_H

#include "etcd_client.h"

#include <stdbool.h>
#include <stdint.h>

#define CLUSTER_POLL_MS 2000
/* alive/<node> outlives a node that stopped keeping it for this long. */
#define CLUSTER_ALIVE_TTL_S 10
#define CLUSTER_MAX_NODES 128

struct cluster_monitor_config {
    const char *cluster; /* keys live under /certvisor/<cluster>/ */
    const char *node;
    struct etcd_client_config etcd;
};

struct cluster_health {
    bool reachable;        /* the last status call was answered */
    bool has_leader;       /* ... and the member knew a leader (the store has quorum) */
    int64_t revision;      /* the store's revision at that answer */
    char endpoint[300];    /* the member that answered */
    char version[32];      /* etcd's version */
    uint64_t last_ok_usec; /* CLOCK_MONOTONIC of the last answer with a leader (0: never) */
    char last_error[512];  /* why the last poll failed ("" when it did not) */
    bool alive_published;  /* alive/<node> is on a lease kept alive */
    int64_t alive_lease;   /* that lease (0 while it is not published) */
    char alive[CLUSTER_MAX_NODES][64]; /* the nodes whose alive key exists, sorted */
    size_t n_alive;
    bool alive_known; /* the list was read at least once */
};

struct cluster_monitor;

int cluster_monitor_new(struct event_base *base, const struct cluster_monitor_config *config,
                        struct cluster_monitor **ret_monitor, char *err, size_t err_len);

/* Polls now and then every CLUSTER_POLL_MS. */
int cluster_monitor_start(struct cluster_monitor *monitor);

const struct cluster_health *cluster_monitor_health(const struct cluster_monitor *monitor);

/* Seconds since the last answer with a leader; -1 when there was none. */
double cluster_health_seconds_since_ok(const struct cluster_health *health);

/* The etcd key of a cluster's node list entry, etc.: "/certvisor/<cluster>/<what>". */
const char *cluster_monitor_prefix(const struct cluster_monitor *monitor);

/* The monitor's etcd client, which the node's other calls share (one set of endpoints and
 * credentials); freed with the monitor. */
struct etcd_client *cluster_monitor_client(const struct cluster_monitor *monitor);

void cluster_monitor_free(struct cluster_monitor *monitor);

#endif
