/* A node of a cluster on etcd: start, stop, and what the other files share (sync.h). */
#include "sync_impl.h"

#include "join_wire.h"

#include "cert_info.h"
#include "cert_names.h"
#include "config.h"
#include "log.h"
#include "monitor.h"
#include "policy.h"
#include "sealed.h"
#include "etcd_json.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The two certificates RS issues per node: each node keeps its own under spec/nodecerts/. */
bool sync_node_alive(const struct cluster_sync *sync, const char *node)
{
    const struct cluster_health *health = cluster_monitor_health(sync->agent->cluster);

    if (!health->alive_known || strcmp(node, sync->node) == 0)
        return true; /* not known yet: wait for its answer; this node is alive, being here */
    for (size_t i = 0; i < health->n_alive; i++)
        if (strcmp(health->alive[i], node) == 0)
            return true;
    return false;
}

bool sync_is_node_cert(const char *name)
{
    const struct cert_name *entry = cert_name_lookup(name);

    return entry && entry->per_node;
}

void sync_check_hex(const unsigned char key[SEALED_KEY_BYTES], char *hex, size_t len)
{
    unsigned char check[SEALED_CHECK_BYTES];

    hex[0] = '\0';
    if (len < 2 * SEALED_CHECK_BYTES + 1 || sealed_key_check_value(key, check) < 0)
        return;
    for (size_t i = 0; i < SEALED_CHECK_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", check[i]);
}

void sync_data_key_path(const struct agent *agent, char *buf, size_t len)
{
    snprintf(buf, len, "%s/cluster.key", agent->config->state_dir);
}

void sync_etcd_data_path(const struct agent *agent, char *buf, size_t len)
{
    snprintf(buf, len, "%s/etcd/data", agent->config->state_dir);
}

void sync_load_key(struct cluster_sync *sync)
{
    char path[4200], err[512];

    if (sync->has_key)
        return;
    sync_data_key_path(sync->agent, path, sizeof(path));
    if (sealed_key_read(path, sync->data_key, err, sizeof(err)) == 0)
        sync->has_key = true;
}

char *sync_encode_cert(const struct cluster_sync *sync, const char *etcd_key, const char *name,
                       const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                       unsigned generation, const char *origin, char *err, size_t err_len)
{
    struct spec_cert cert = {.generation = generation, .cert_len = cert_len};
    char *text;
    int r;

    snprintf(cert.name, sizeof(cert.name), "%s", name);
    snprintf(cert.origin, sizeof(cert.origin), "%s", origin ? origin : "");
    snprintf(cert.published_by, sizeof(cert.published_by), "%s", sync->node);
    cert.cert_pem = (char *)cert_pem;
    if (cert_pem)
        cert_info_fingerprint(cert_pem, cert_len, cert.fingerprint, sizeof(cert.fingerprint));
    cert.removed = cert_pem == NULL;
    if (key_pem) {
        r = sealed_seal(sync->data_key, etcd_key, strlen(etcd_key), key_pem, key_len,
                        &cert.sealed_key, &cert.sealed_len);
        if (r < 0) {
            snprintf(err, err_len, "cannot seal the key of '%s': %s", name, strerror(-r));
            return NULL;
        }
    }
    text = spec_cert_encode(&cert);
    free(cert.sealed_key);
    if (!text)
        snprintf(err, err_len, "out of memory");
    return text;
}

const char *sync_unusable_why(const struct cluster_sync *sync)
{
    return sync->state == SYNC_NOT_INITIALISED ? "the cluster is not initialised yet (run "
                                                 "'certvisorctl cluster init' first)"
           : sync->state == SYNC_INITIALISED   ? "the cluster store has no quorum"
           : sync->state_error[0]              ? sync->state_error
                                               : "the cluster's store cannot be read";
}

json_t *sync_refusal(const char *reason, const char *message)
{
    return json_pack("{s:i, s:s, s:s}", "exit", 1, "error", message, "reason", reason);
}

void sync_deliver(cluster_sync_done_fn done, void *data, int exit_status, json_t *reply)
{
    if (done)
        done(data, exit_status, reply);
    else
        json_decref(reply);
}

#define SEALED_VALUE_PREFIX "sealed:"

/* What a secret setting's value is sealed for: the policy's key and the setting's name. */
static void secret_aad(const char *etcd_key, const char *name, char *aad, size_t len)
{
    snprintf(aad, len, "%s#%s", etcd_key, name);
}

int sync_policy_of(const struct cluster_sync *sync, const char *etcd_key,
                   const struct policy *policy, struct spec_policy *out, char *err, size_t err_len)
{
    out->n = 0;
    for (int i = 0; i < POLICY_COUNT && out->n < SPEC_MAX_POLICY_SETTINGS; i++) {
        const char *name = policy_setting_name((enum policy_setting)i);
        const char *value = policy->values[i].value;
        unsigned char *sealed = NULL;
        size_t sealed_len = 0;
        json_t *b64;
        char aad[SYNC_MAX_KEY_LEN + 80];
        int n;

        if (!value || policy->values[i].source != POLICY_FROM_RUNTIME)
            continue;
        snprintf(out->names[out->n], sizeof(out->names[0]), "%s", name);
        if (!policy_secret((enum policy_setting)i) || !*value) {
            snprintf(out->values[out->n++], sizeof(out->values[0]), "%s", value);
            continue;
        }
        secret_aad(etcd_key, name, aad, sizeof(aad));
        if (sealed_seal(sync->data_key, aad, strlen(aad), value, strlen(value), &sealed,
                        &sealed_len) < 0 ||
            !(b64 = etcd_b64_string(sealed, sealed_len))) {
            free(sealed);
            snprintf(err, err_len, "cannot seal %s for the cluster's store", name);
            return -EIO;
        }
        n = snprintf(out->values[out->n], sizeof(out->values[0]), "%s%s", SEALED_VALUE_PREFIX,
                     json_string_value(b64));
        json_decref(b64);
        free(sealed);
        if (n < 0 || (size_t)n >= sizeof(out->values[0])) {
            snprintf(err, err_len, "%s is too long to keep sealed in the cluster's store", name);
            return -EFBIG;
        }
        out->n++;
    }
    return 0;
}

const char *sync_policy_value(const struct cluster_sync *sync, const char *etcd_key,
                              const char *name, const char *value, char *buf, size_t len, char *err,
                              size_t err_len)
{
    int setting = policy_setting_lookup(name);
    const char *b64 = value + strlen(SEALED_VALUE_PREFIX);
    unsigned char *sealed = NULL, *plain = NULL;
    size_t sealed_len = 0, plain_len = 0;
    char aad[SYNC_MAX_KEY_LEN + 80];

    if (err_len)
        err[0] = '\0';
    if (setting < 0 || !policy_secret((enum policy_setting)setting) || !*value)
        return value;
    if (strncmp(value, SEALED_VALUE_PREFIX, strlen(SEALED_VALUE_PREFIX)) != 0 ||
        etcd_b64_decode(b64, strlen(b64), SEALED_OVERHEAD + len, &sealed, &sealed_len) < 0) {
        snprintf(err, err_len, "%s in the cluster's store is not sealed: refused", name);
        return NULL;
    }
    secret_aad(etcd_key, name, aad, sizeof(aad));
    if (sealed_open(sync->data_key, aad, strlen(aad), sealed, sealed_len, &plain, &plain_len, err,
                    err_len) < 0 ||
        plain_len >= len) {
        free(sealed);
        if (plain)
            sealed_free(plain, plain_len);
        if (!*err)
            snprintf(err, err_len, "%s in the cluster's store is too long", name);
        return NULL;
    }
    memcpy(buf, plain, plain_len + 1);
    free(sealed);
    sealed_free(plain, plain_len);
    return buf;
}

/* --- answers given later --- */

struct later {
    cluster_sync_done_fn done;
    void *data;
    int exit_status;
    json_t *reply;
};

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    struct later *later = arg;

    (void)fd;
    (void)what;
    later->done(later->data, later->exit_status, later->reply);
    free(later);
}

void sync_answer_later(struct agent *agent, cluster_sync_done_fn done, void *data, int exit_status,
                       json_t *reply)
{
    struct later *later = malloc(sizeof(*later));
    struct timeval now = {0, 0};

    if (later) {
        *later = (struct later){done, data, exit_status, reply};
        if (event_base_once(agent->base, -1, EV_TIMEOUT, on_later, later, &now) == 0)
            return;
        free(later);
    }
    /* Out of memory: answering now is better than never. */
    done(data, exit_status, reply);
}

/* --- every node's status, for cluster status --- */

static void on_nodes(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;
    struct etcd_range range;
    char err[256];
    json_t *nodes;

    sync->nodes_call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0)
        return;
    nodes = json_object();
    for (size_t i = 0; nodes && i < range.n_kvs; i++) {
        struct spec_status status;
        json_t *full;

        if (spec_status_decode((const char *)range.kvs[i].value, range.kvs[i].value_len, &status,
                               err, sizeof(err)) < 0)
            continue;
        full = json_loadb((const char *)range.kvs[i].value, range.kvs[i].value_len, 0, NULL);
        if (full)
            json_object_set_new(nodes, status.node, full);
    }
    etcd_range_free(&range);
    json_decref(sync->nodes);
    sync->nodes = nodes;
}

/* The nodes that joined (nodes/<name>, admit.c): {"name", "address"} each, for the node list. */
static void on_registry(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;
    struct etcd_range range;
    char err[256];
    json_t *registry;

    sync->registry_call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0)
        return;
    registry = json_array();
    for (size_t i = 0; registry && i < range.n_kvs && i < 64; i++) {
        json_t *value = json_loadb((const char *)range.kvs[i].value, range.kvs[i].value_len,
                                   JSON_REJECT_DUPLICATES, NULL);
        const char *name = json_string_value(json_object_get(value, "name"));
        const char *address = json_string_value(json_object_get(value, "address"));

        if (name && address && join_name_valid(name) && strlen(address) < 64)
            json_array_append_new(registry,
                                  json_pack("{s:s, s:s}", "name", name, "address", address));
        json_decref(value);
    }
    etcd_range_free(&range);
    json_decref(sync->registry);
    sync->registry = registry;
}

static void on_promoted(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;

    sync->promote_call = NULL;
    if (!result->error && result->http_status == 200)
        log_notice("Cluster: a learner was promoted: the cluster needed its vote");
}

/*
 * The voters follow the nodes (membership_target_voters()) also when whoever should have
 * promoted a learner did not: a joiner stopped before its promotion, a voter that went. The
 * renewer (one node at a time) promotes a started learner while the cluster has fewer voters
 * than it should; etcd refuses one that has not caught up, and the next poll asks again.
 */
static void promote_if_needed(struct cluster_sync *sync, const struct etcd_members *members)
{
    const struct etcd_member *learner;
    size_t voters = etcd_members_voters(members, &learner);

    if (sync->promote_call || strcmp(sync->renewer, sync->node) != 0 || !learner ||
        !learner->name[0] || (int)voters >= membership_target_voters(members->n))
        return;
    sync->promote_call = etcd_call(sync->client, "/v3/cluster/member/promote",
                                   etcd_member_id_request(learner->id), on_promoted, sync);
}

/* etcd's members as voters and learners (names; "" for one not started yet), for the status. */
static void on_members(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;
    struct etcd_members members;
    struct etcd_error etcd_err;
    char err[256];
    json_t *voters, *learners;

    sync->members_call = NULL;
    if (result->error || etcd_parse_members(result->body, result->body_len, &members, &etcd_err,
                                            err, sizeof(err)) < 0)
        return;
    voters = json_array();
    learners = json_array();
    for (size_t i = 0; i < members.n; i++)
        json_array_append_new(members.members[i].learner ? learners : voters,
                              json_string(members.members[i].name));
    json_decref(sync->voters);
    json_decref(sync->learners);
    sync->voters = voters;
    sync->learners = learners;
    promote_if_needed(sync, &members);
}

static void on_nodes_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cluster_sync *sync = arg;
    struct timeval interval = {CLUSTER_POLL_MS / 1000, (CLUSTER_POLL_MS % 1000) * 1000};
    char key[200], end[200];
    size_t key_len, end_len;

    (void)fd;
    (void)what;
    key_len = (size_t)snprintf(key, sizeof(key), "%sstatus/", sync->prefix);
    end_len = etcd_prefix_end(key, key_len, end);
    sync_renewer_poll(sync);
    if (!sync->nodes_call && sync->state == SYNC_INITIALISED)
        sync->nodes_call =
            etcd_call(sync->client, "/v3/kv/range",
                      etcd_range_request(key, key_len, end, end_len, 0, true), on_nodes, sync);
    key_len = (size_t)snprintf(key, sizeof(key), "%snodes/", sync->prefix);
    end_len = etcd_prefix_end(key, key_len, end);
    if (!sync->registry_call && sync->state == SYNC_INITIALISED)
        sync->registry_call =
            etcd_call(sync->client, "/v3/kv/range",
                      etcd_range_request(key, key_len, end, end_len, 0, true), on_registry, sync);
    if (!sync->members_call && sync->state == SYNC_INITIALISED)
        sync->members_call =
            etcd_call(sync->client, "/v3/cluster/member/list", json_object(), on_members, sync);
    evtimer_add(sync->nodes_timer, &interval);
}

static const char *state_word(enum sync_store_state state)
{
    switch (state) {
    case SYNC_NOT_INITIALISED:
        return "not_initialised";
    case SYNC_INITIALISED:
        return "initialised";
    case SYNC_BROKEN:
        return "broken";
    default:
        return "unknown";
    }
}

void cluster_sync_describe(const struct agent *agent, json_t *into)
{
    const struct cluster_sync *sync = sync_of(agent);

    if (!sync)
        return;
    json_object_set_new(into, "state", json_string(state_word(sync->state)));
    if (sync->state_error[0])
        json_object_set_new(into, "state_error", json_string(sync->state_error));
    if (sync->state == SYNC_INITIALISED)
        json_object_set_new(into, "cluster_uid", json_string(sync->meta.uid));
    json_object_set_new(into, "applied_revision", json_integer(sync->applied_revision));
    if (sync->applied_at)
        json_object_set_new(into, "applied_at", json_integer(sync->applied_at));
    if (sync->last_error[0])
        json_object_set_new(into, "apply_error", json_string(sync->last_error));
    json_object_set_new(into, "nodes", sync->nodes ? json_deep_copy(sync->nodes) : json_object());
    json_object_set_new(into, "registered",
                        sync->registry ? json_deep_copy(sync->registry) : json_array());
    if (sync->voters) {
        json_object_set_new(into, "voters", json_deep_copy(sync->voters));
        json_object_set_new(into, "learners", json_deep_copy(sync->learners));
    }
}

int cluster_sync_staleness(const struct agent *agent, char *why, size_t len)
{
    const struct cluster_sync *sync = sync_of(agent);
    const struct cluster_health *health;
    char since[64] = "";
    double seconds;

    if (!sync || !agent->cluster || sync->state == SYNC_NOT_INITIALISED)
        return 0; /* a single node's copy is the truth */
    health = cluster_monitor_health(agent->cluster);
    seconds = cluster_health_seconds_since_ok(health);
    if (seconds >= 0)
        snprintf(since, sizeof(since), " for %.0f s", seconds);
    if (sync->state == SYNC_UNKNOWN)
        snprintf(why, len, "node '%s' has not read the cluster's store yet (%s)", sync->node,
                 health->last_error[0] ? health->last_error : sync->state_error);
    else if (sync->state == SYNC_BROKEN)
        snprintf(why, len, "node '%s' cannot follow the cluster's store: %s", sync->node,
                 sync->state_error);
    else if (!health->reachable)
        snprintf(why, len, "the cluster's store is unreachable%s (%s)", since,
                 health->last_error[0] ? health->last_error : "no answer");
    else if (!health->has_leader)
        snprintf(why, len, "the cluster's store has had no leader%s (no quorum)", since);
    else if (sync->last_error[0])
        snprintf(why, len, "node '%s' has not applied the cluster's latest change: %s", sync->node,
                 sync->last_error);
    else
        return 0;
    return 1;
}

int cluster_sync_start(struct agent *agent)
{
    struct cluster_sync *sync;
    struct timeval now = {0, 0};

    if (!agent->cluster)
        return 0;
    sync = calloc(1, sizeof(*sync));
    if (!sync)
        return -ENOMEM;
    sync->agent = agent;
    sync->client = cluster_monitor_client(agent->cluster);
    snprintf(sync->prefix, sizeof(sync->prefix), "%s", cluster_monitor_prefix(agent->cluster));
    snprintf(sync->node, sizeof(sync->node), "%s", agent->config->cluster.node);
    snprintf(sync->state_error, sizeof(sync->state_error),
             "the cluster's store has not been read yet");
    sync->retry_ms = SYNC_RETRY_MIN_MS;
    sync->nodes_timer = evtimer_new(agent->base, on_nodes_timer, sync);
    if (!sync->nodes_timer) {
        free(sync);
        return -ENOMEM;
    }
    sync_load_key(sync);
    agent->sync = sync;
    agent->hooks.publish = cluster_sync_publish;
    agent->hooks.may_renew = sync_may_renew;
    evtimer_add(sync->nodes_timer, &now);
    sync_converge_now(sync);
    return 0;
}

void cluster_sync_stop(struct agent *agent)
{
    struct cluster_sync *sync = sync_of(agent);

    if (!sync)
        return;
    agent->hooks.publish = NULL;
    agent->hooks.may_renew = NULL;
    sync_publications_stop(sync);
    sync_init_stop(sync);
    sync_tokens_stop(sync);
    sync_admit_stop(sync);
    sync_membership_stop(sync);
    sync_converge_stop(sync);
    if (sync->nodes_call)
        etcd_call_cancel(sync->nodes_call);
    if (sync->registry_call)
        etcd_call_cancel(sync->registry_call);
    if (sync->members_call)
        etcd_call_cancel(sync->members_call);
    if (sync->promote_call)
        etcd_call_cancel(sync->promote_call);
    json_decref(sync->registry);
    json_decref(sync->voters);
    json_decref(sync->learners);
    if (sync->renewer_call)
        etcd_call_cancel(sync->renewer_call);
    event_free(sync->nodes_timer);
    json_decref(sync->nodes);
    OPENSSL_cleanse(sync->data_key, sizeof(sync->data_key));
    free(sync);
    agent->sync = NULL;
}
