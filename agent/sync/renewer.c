/*
 * One node renews the certificates every node shares (sync_impl.h): the node whose name is at
 * renewer, a key put on that node's alive lease in a transaction that holds only while the key
 * is absent. When the node stops or is cut off, its lease ends, etcd deletes the key with its
 * alive key, and the next node to poll takes it. The key is read only while its holder is not
 * known to hold it (holder_still_holds()), not at every poll. Each node still renews its own
 * certificates (the internode ones). Without this, every node re-issued the shared certificates on
 * the same day and all but the first publication ended in a conflict.
 */
#include "sync_impl.h"

#include "log.h"
#include "monitor.h"
#include "renewal.h"

#include <stdio.h>
#include <string.h>

static void renewer_key(const struct cluster_sync *sync, char *key, size_t len)
{
    snprintf(key, len, "%srenewer", sync->prefix);
}

static void became(struct cluster_sync *sync, const char *holder, int64_t lease)
{
    bool was_me = strcmp(sync->renewer, sync->node) == 0;

    snprintf(sync->renewer, sizeof(sync->renewer), "%s", holder);
    sync->renewer_lease = lease;
    if (strcmp(holder, sync->node) == 0 && !was_me) {
        log_notice("Cluster: this node renews the certificates every node shares");
        if (sync->in_step)
            renewal_check(sync->agent); /* now, not at the next hourly check */
    }
}

void sync_renewer_in_step(struct cluster_sync *sync)
{
    if (sync->in_step)
        return;
    sync->in_step = true;
    renewal_check(sync->agent); /* the check made before, which skipped everything */
}

static void on_claimed(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;
    struct etcd_header header;
    bool succeeded = false;
    char err[256];

    sync->renewer_call = NULL;
    if (!result->error &&
        etcd_parse_txn(result->body, result->body_len, &header, &succeeded, NULL, err,
                       sizeof(err)) == 0 &&
        succeeded)
        became(sync, sync->node, sync->renewer_lease);
    /* Lost to another node, or no answer: the next poll reads who holds it. */
}

static void claim(struct cluster_sync *sync, int64_t lease)
{
    char key[SYNC_MAX_KEY_LEN];
    struct etcd_compare absent;
    struct etcd_op put;

    renewer_key(sync, key, sizeof(key));
    sync->renewer_lease = lease; /* the holder's once the claim holds */
    absent = (struct etcd_compare){key, strlen(key), 0};
    put = (struct etcd_op){ETCD_OP_PUT, key, strlen(key), sync->node, strlen(sync->node), lease};
    sync->renewer_call =
        etcd_call(sync->client, "/v3/kv/txn", etcd_txn_request(&absent, 1, &put, 1, NULL, 0),
                  on_claimed, sync);
}

static void on_read(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;
    const struct cluster_health *health = cluster_monitor_health(sync->agent->cluster);
    struct etcd_range range;
    char err[256], holder[SPEC_MAX_NAME] = "";
    int64_t lease = 0;

    sync->renewer_call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0)
        return;
    if (range.n_kvs > 0 && range.kvs[0].value_len < sizeof(holder)) {
        memcpy(holder, range.kvs[0].value, range.kvs[0].value_len + 1);
        lease = range.kvs[0].lease;
    }
    etcd_range_free(&range);
    if (holder[0]) {
        became(sync, holder, lease);
        return;
    }
    sync->renewer[0] = '\0'; /* nobody holds it: nobody renews until a claim holds */
    if (health->alive_published && health->alive_lease)
        claim(sync, health->alive_lease);
}

/*
 * Whether the holder known is still the holder, without asking the store: the key lives on
 * the holder's alive lease, so it is there while the holder's alive key is (the monitor reads
 * those at every poll); this node's own claim holds while its alive key is on that lease.
 */
static bool holder_still_holds(const struct cluster_sync *sync)
{
    const struct cluster_health *health = cluster_monitor_health(sync->agent->cluster);

    if (!sync->renewer[0])
        return false;
    if (strcmp(sync->renewer, sync->node) == 0)
        return health->alive_published && health->alive_lease == sync->renewer_lease;
    return health->alive_known && sync_node_alive(sync, sync->renewer);
}

void sync_renewer_poll(struct cluster_sync *sync)
{
    char key[SYNC_MAX_KEY_LEN];

    if (sync->renewer_call || sync->state != SYNC_INITIALISED || holder_still_holds(sync))
        return;
    renewer_key(sync, key, sizeof(key));
    sync->renewer_call =
        etcd_call(sync->client, "/v3/kv/range",
                  etcd_range_request(key, strlen(key), NULL, 0, 0, false), on_read, sync);
}

bool sync_may_renew(struct agent *agent, bool shared)
{
    const struct cluster_sync *sync = sync_of(agent);

    if (!sync || sync->state == SYNC_NOT_INITIALISED)
        return true; /* no cluster yet: the node renews alone, as a single node does */
    if (sync->state != SYNC_INITIALISED || !sync->in_step)
        return false; /* sync_renewer_in_step() checks again once it is */
    return !shared || strcmp(sync->renewer, sync->node) == 0;
}
