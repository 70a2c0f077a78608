/* The node's view of the cluster's store (monitor.h). */
#include "monitor.h"

#include "log.h"
#include "spec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cluster_monitor {
    struct event_base *base;
    struct etcd_client *client;
    char node[64];
    char prefix[128];    /* /certvisor/<cluster>/ */
    char alive_key[256]; /* <prefix>alive/<node> */
    struct event *timer;
    struct etcd_call *status_call;
    struct etcd_call *alive_call;
    struct etcd_call *lease_call; /* grant, put of alive/<node>, or keepalive */
    int64_t lease_id;             /* 0: none yet, or it expired */
    bool was_reachable;           /* for one log line per change, not one per poll */
    struct cluster_health health;
};

static uint64_t monotonic_now_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void unreachable(struct cluster_monitor *m, const char *why)
{
    m->health.reachable = false;
    m->health.has_leader = false;
    snprintf(m->health.last_error, sizeof(m->health.last_error), "%s", why);
    if (m->was_reachable)
        log_warning("Cluster store: %s; services keep serving what they have", why);
    m->was_reachable = false;
}

static void on_status(void *data, const struct etcd_result *result)
{
    struct cluster_monitor *m = data;
    struct etcd_status status;
    char err[512];

    m->status_call = NULL;
    if (result->error) {
        unreachable(m, result->message);
        return;
    }
    if (etcd_parse_status(result->body, result->body_len, &status, NULL, err, sizeof(err)) < 0) {
        unreachable(m, err);
        return;
    }
    m->health.reachable = true;
    m->health.has_leader = status.leader != 0;
    m->health.revision = status.header.revision;
    snprintf(m->health.endpoint, sizeof(m->health.endpoint), "%s", result->endpoint);
    snprintf(m->health.version, sizeof(m->health.version), "%s", status.version);
    if (!m->health.has_leader) {
        snprintf(m->health.last_error, sizeof(m->health.last_error),
                 "etcd member %s knows no leader: the store has no quorum", result->endpoint);
        if (m->was_reachable)
            log_warning("Cluster store: %s", m->health.last_error);
        m->was_reachable = false;
        return;
    }
    if (!m->was_reachable)
        log_notice("Cluster store reachable through %s (etcd %s, revision %" PRId64 ")",
                   result->endpoint, status.version, status.header.revision);
    m->was_reachable = true;
    m->health.last_ok_usec = monotonic_now_usec();
    m->health.last_error[0] = '\0';
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void on_alive(void *data, const struct etcd_result *result)
{
    struct cluster_monitor *m = data;
    size_t skip = strlen(m->prefix) + strlen("alive/");
    struct etcd_range range;
    char err[512];

    m->alive_call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0)
        return; /* the status poll says why */
    m->health.n_alive = 0;
    for (size_t i = 0; i < range.n_kvs && m->health.n_alive < CLUSTER_MAX_NODES; i++) {
        const char *name = range.kvs[i].key + skip;

        if (range.kvs[i].key_len <= skip || strlen(name) >= sizeof(m->health.alive[0]))
            continue;
        snprintf(m->health.alive[m->health.n_alive++], sizeof(m->health.alive[0]), "%s", name);
    }
    qsort(m->health.alive, m->health.n_alive, sizeof(m->health.alive[0]), compare_names);
    m->health.alive_known = true;
    etcd_range_free(&range);
}

static void lease_lost(struct cluster_monitor *m)
{
    if (m->health.alive_published)
        log_warning("Cluster store: this node's alive key lost its lease; publishing it again");
    m->lease_id = 0;
    m->health.alive_published = false;
    m->health.alive_lease = 0;
}

static void on_alive_put(void *data, const struct etcd_result *result)
{
    struct cluster_monitor *m = data;
    struct etcd_header header;
    char err[512];

    m->lease_call = NULL;
    if (result->error ||
        etcd_parse_write(result->body, result->body_len, &header, NULL, err, sizeof(err)) < 0) {
        m->lease_id = 0; /* grant again next time: the lease may not be ours to keep */
        return;
    }
    if (!m->health.alive_published)
        log_info("Cluster store: %s is alive on a %d s lease", m->node, CLUSTER_ALIVE_TTL_S);
    m->health.alive_published = true;
    m->health.alive_lease = m->lease_id;
}

static void on_lease(void *data, const struct etcd_result *result)
{
    struct cluster_monitor *m = data;
    int64_t id = 0, ttl = 0;
    char err[512];
    bool granting = m->lease_id == 0;

    m->lease_call = NULL;
    if (result->error ||
        etcd_parse_lease(result->body, result->body_len, &id, &ttl, NULL, err, sizeof(err)) < 0) {
        if (!granting && !result->error)
            lease_lost(m); /* etcd answered, but not with the lease: it expired */
        return;
    }
    if (ttl <= 0) {
        lease_lost(m);
        return;
    }
    if (granting) {
        m->lease_id = id;
        m->lease_call = etcd_call(
            m->client, "/v3/kv/put",
            etcd_put_request(m->alive_key, strlen(m->alive_key), m->node, strlen(m->node), id),
            on_alive_put, m);
    }
}

static void poll_store(struct cluster_monitor *m)
{
    char end[sizeof(m->prefix) + 8], alive[sizeof(m->prefix) + 8];
    size_t alive_len, end_len;

    if (!m->status_call)
        m->status_call =
            etcd_call(m->client, "/v3/maintenance/status", json_object(), on_status, m);
    alive_len = (size_t)snprintf(alive, sizeof(alive), "%salive/", m->prefix);
    end_len = etcd_prefix_end(alive, alive_len, end);
    if (!m->alive_call)
        m->alive_call =
            etcd_call(m->client, "/v3/kv/range",
                      etcd_range_request(alive, alive_len, end, end_len, 0, false), on_alive, m);
    if (!m->lease_call) {
        char number[24];

        /* A new lease, or the one held kept alive (every poll: well within its TTL). */
        if (m->lease_id == 0) {
            snprintf(number, sizeof(number), "%d", CLUSTER_ALIVE_TTL_S);
            m->lease_call = etcd_call(m->client, "/v3/lease/grant",
                                      json_pack("{s:s}", "TTL", number), on_lease, m);
        } else {
            snprintf(number, sizeof(number), "%" PRId64, m->lease_id);
            m->lease_call = etcd_call(m->client, "/v3/lease/keepalive",
                                      json_pack("{s:s}", "ID", number), on_lease, m);
        }
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cluster_monitor *m = arg;
    struct timeval interval = {CLUSTER_POLL_MS / 1000, (CLUSTER_POLL_MS % 1000) * 1000};

    (void)fd;
    (void)what;
    poll_store(m);
    evtimer_add(m->timer, &interval);
}

int cluster_monitor_new(struct event_base *base, const struct cluster_monitor_config *config,
                        struct cluster_monitor **ret_monitor, char *err, size_t err_len)
{
    struct cluster_monitor *m = calloc(1, sizeof(*m));
    int r;

    if (!m)
        return -ENOMEM;
    m->base = base;
    if (strlen(config->node) >= sizeof(m->node) ||
        spec_prefix(m->prefix, sizeof(m->prefix), config->cluster) < 0) {
        snprintf(err, err_len, "cluster: the cluster's or the node's name is too long");
        free(m);
        return -ENAMETOOLONG;
    }
    snprintf(m->node, sizeof(m->node), "%s", config->node);
    snprintf(m->alive_key, sizeof(m->alive_key), "%salive/%s", m->prefix, m->node);
    snprintf(m->health.last_error, sizeof(m->health.last_error), "not asked yet");
    r = etcd_client_new(base, &config->etcd, &m->client, err, err_len);
    if (r < 0) {
        free(m);
        return r;
    }
    m->timer = evtimer_new(base, on_timer, m);
    if (!m->timer) {
        cluster_monitor_free(m);
        return -ENOMEM;
    }
    *ret_monitor = m;
    return 0;
}

int cluster_monitor_start(struct cluster_monitor *monitor)
{
    struct timeval now = {0, 0};

    return evtimer_add(monitor->timer, &now) < 0 ? -ENOMEM : 0;
}

double cluster_health_seconds_since_ok(const struct cluster_health *health)
{
    return health->last_ok_usec ? (double)(monotonic_now_usec() - health->last_ok_usec) / 1e6
                                : -1.0;
}

const struct cluster_health *cluster_monitor_health(const struct cluster_monitor *monitor)
{
    return &monitor->health;
}

struct etcd_client *cluster_monitor_client(const struct cluster_monitor *monitor)
{
    return monitor->client;
}

const char *cluster_monitor_prefix(const struct cluster_monitor *monitor)
{
    return monitor->prefix;
}

void cluster_monitor_free(struct cluster_monitor *monitor)
{
    if (!monitor)
        return;
    /* The calls go with the client (their callbacks are not called). */
    etcd_client_free(monitor->client);
    if (monitor->timer)
        event_free(monitor->timer);
    free(monitor);
}
