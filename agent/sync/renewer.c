/*
 * One node renews the certificates every node shares (sync_impl.h): the node whose name is at
 * renewer, a key put on that node's alive lease in a transaction that holds only while the key
 * is absent. When the node stops or is cut off, its lease ends, etcd deletes the key with its
 * alive key, and the next node to poll takes it. Each node still renews its own certificates
 * (the internode ones). Without this, every node re-issued the shared certificates on the same
 * day and all but the first publication ended in a conflict.
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

static void became(struct cluster_sync *sync, const char *holder)
{
    bool was_me = strcmp(sync->renewer, sync->node) == 0;

    snprintf(sync->renewer, sizeof(sync->renewer), "%s", holder);
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
        became(sync, sync->node);
    /* Lost to another node, or no answer: the next poll reads who holds it. */
}

static void claim(struct cluster_sync *sync, int64_t lease)
{
    char key[SYNC_MAX_KEY_LEN];
    struct etcd_compare absent;
    struct etcd_op put;

    renewer_key(sync, key, sizeof(key));
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

    sync->renewer_call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0)
        return;
    if (range.n_kvs > 0 && range.kvs[0].value_len < sizeof(holder))
        memcpy(holder, range.kvs[0].value, range.kvs[0].value_len + 1);
    etcd_range_free(&range);
    if (holder[0])
        became(sync, holder);
    else if (health->alive_published && health->alive_lease)
        claim(sync, health->alive_lease);
}

void sync_renewer_poll(struct cluster_sync *sync)
{
    char key[SYNC_MAX_KEY_LEN];

    if (sync->renewer_call || sync->state != SYNC_INITIALISED)
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
