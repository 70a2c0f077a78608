/*
 * Converge: this node applies the cluster's desired state (sync.h). Each pass reads meta and
 * spec/ whole (a few keys) at one revision and applies what differs from what the node serves;
 * the watch only says when to read again, so a missed or compacted event costs one read, and
 * a node that was down or cut off catches up by the same path.
 */
#include "sync_impl.h"

#include "apply.h"
#include "cert_info.h"
#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "log.h"
#include "policy.h"
#include "trust.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void start_read(struct cluster_sync *sync);

/* --- what this node serves --- */

static int local_fingerprint(struct cluster_sync *sync, const char *name, char *buf, size_t len)
{
    struct certstore *store = sync->agent->certs->store;
    unsigned generation;
    char *pem = NULL;
    size_t pem_len = 0;
    int r = certstore_current(store, name, &generation);

    buf[0] = '\0';
    if (r == 0)
        r = certstore_read_cert(store, name, generation, &pem, &pem_len);
    if (r == 0)
        r = cert_info_fingerprint(pem, pem_len, buf, len);
    free(pem);
    return r;
}

/* {"<name>": "<fingerprint>"} of every certificate this node serves, as text. */
static char *fingerprints_text(struct cluster_sync *sync)
{
    json_t *object = json_object();
    char *text;

    for (size_t i = 0; object && i < cert_names_count; i++) {
        char fingerprint[96];

        if (local_fingerprint(sync, cert_names[i].name, fingerprint, sizeof(fingerprint)) == 0)
            json_object_set_new(object, cert_names[i].name, json_string(fingerprint));
    }
    text = object ? json_dumps(object, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(object);
    return text;
}

int64_t sync_known_revision(const struct cluster_sync *sync, const char *key)
{
    for (size_t i = 0; i < sync->n_known; i++)
        if (strcmp(sync->known[i].key, key) == 0)
            return sync->known[i].mod_revision;
    return 0;
}

/* --- status/<node> --- */

static void write_status(struct cluster_sync *sync);

static void on_status_written(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;

    sync->status_call = NULL;
    if (result->error)
        log_warning("Cluster: cannot write this node's status: %s", result->message);
    if (sync->status_again) {
        sync->status_again = false;
        write_status(sync);
    }
}

static void write_status(struct cluster_sync *sync)
{
    struct spec_status status = {.revision = sync->applied_revision, .at = time(NULL)};
    char key[SYNC_MAX_KEY_LEN], *fingerprints, *text;
    int key_len;

    if (sync->status_call) {
        sync->status_again = true;
        return;
    }
    snprintf(status.node, sizeof(status.node), "%s", sync->node);
    status.result = sync->last_error[0] ? SPEC_FAILED : SPEC_APPLIED;
    snprintf(status.reason, sizeof(status.reason), "%s", sync->last_error);
    key_len = spec_key_status(key, sizeof(key), sync->prefix, sync->node);
    fingerprints = fingerprints_text(sync);
    text = spec_status_encode(&status, fingerprints);
    free(fingerprints);
    if (key_len < 0 || !text) {
        free(text);
        return;
    }
    sync->status_call = etcd_call(sync->client, "/v3/kv/put",
                                  etcd_put_request(key, (size_t)key_len, text, strlen(text), 0),
                                  on_status_written, sync);
    free(text);
}

/* --- one pass: read, compare, apply --- */

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sync_converge_now(arg);
}

static void retry_later(struct cluster_sync *sync)
{
    struct timeval delay = {sync->retry_ms / 1000, (sync->retry_ms % 1000) * 1000};

    if (!sync->retry_timer)
        sync->retry_timer = evtimer_new(sync->agent->base, on_retry, sync);
    if (sync->retry_timer && !evtimer_pending(sync->retry_timer, NULL))
        evtimer_add(sync->retry_timer, &delay);
    sync->retry_ms =
        sync->retry_ms * 2 > SYNC_RETRY_MAX_MS ? SYNC_RETRY_MAX_MS : sync->retry_ms * 2;
}

/* The pass at sync->reconcile_at is over: record it, report it, and go on. */
static void pass_done(struct cluster_sync *sync)
{
    sync->applied_revision = sync->reconcile_at;
    sync->applied_at = time(NULL);
    if (sync->reconcile_failed) {
        snprintf(sync->last_error, sizeof(sync->last_error), "%s", sync->reconcile_reason);
        log_warning("Cluster: revision %" PRId64 " not applied here: %s; trying again in %d s",
                    sync->reconcile_at, sync->last_error, sync->retry_ms / 1000);
        retry_later(sync);
    } else {
        if (sync->last_error[0])
            log_notice("Cluster: this node serves the cluster's revision %" PRId64 " again",
                       sync->reconcile_at);
        sync->last_error[0] = '\0';
        sync->retry_ms = SYNC_RETRY_MIN_MS;
        memcpy(sync->known, sync->planned, sync->n_planned * sizeof(sync->planned[0]));
        sync->n_known = sync->n_planned;
        sync_renewer_in_step(sync);
    }
    write_status(sync);
    if (sync->dirty) {
        sync->dirty = false;
        start_read(sync);
    }
}

static void fail_pass(struct cluster_sync *sync, const char *why)
{
    if (sync->reconcile_failed)
        return; /* the first reason is the one reported */
    sync->reconcile_failed = true;
    snprintf(sync->reconcile_reason, sizeof(sync->reconcile_reason), "%s", why);
}

static void on_applied(void *data, int exit_status, json_t *reply)
{
    struct cluster_sync *sync = data;

    if (exit_status != 0)
        fail_pass(sync,
                  json_string_value(json_object_get(reply, "error")) ?: "the change failed here");
    json_decref(reply);
    if (--sync->applies_out == 0)
        pass_done(sync);
}

static void submit(struct cluster_sync *sync, struct apply_request *request)
{
    char who[128];

    if (!request) {
        fail_pass(sync, "out of memory");
        return;
    }
    snprintf(who, sizeof(who), "cluster (revision %" PRId64 ")", sync->reconcile_at);
    apply_request_from_cluster(request);
    sync->applies_out++;
    apply_submit(sync->agent, request, who, false, on_applied, sync);
}

static const struct etcd_kv *find_kv(const struct etcd_range *range, const char *key)
{
    for (size_t i = 0; i < range->n_kvs; i++)
        if (strcmp(range->kvs[i].key, key) == 0)
            return &range->kvs[i];
    return NULL;
}

static void plan_key(struct cluster_sync *sync, const struct etcd_kv *kv)
{
    if (sync->n_planned >= SYNC_MAX_KEYS || strlen(kv->key) >= SYNC_MAX_KEY_LEN)
        return;
    snprintf(sync->planned[sync->n_planned].key, SYNC_MAX_KEY_LEN, "%s", kv->key);
    sync->planned[sync->n_planned++].mod_revision = kv->mod_revision;
}

/* A certificate of spec/: submitted when this node serves another one. */
static void converge_cert(struct cluster_sync *sync, const char *name, const struct etcd_kv *kv)
{
    struct spec_cert cert;
    unsigned char *key = NULL;
    size_t key_len = 0;
    char err[512], local[96];
    bool serving = local_fingerprint(sync, name, local, sizeof(local)) == 0;

    plan_key(sync, kv);
    if (spec_cert_decode((const char *)kv->value, kv->value_len, &cert, err, sizeof(err)) < 0) {
        fail_pass(sync, err);
        return;
    }
    if (cert.removed) {
        if (serving)
            submit(sync, apply_delete(name));
    } else if (!serving || strcmp(local, cert.fingerprint) != 0) {
        if (cert.sealed_key &&
            sealed_open(sync->data_key, kv->key, strlen(kv->key), cert.sealed_key, cert.sealed_len,
                        &key, &key_len, err, sizeof(err)) < 0) {
            fail_pass(sync, err);
        } else {
            submit(sync, apply_certificate(name, cert.cert_pem, cert.cert_len, (char *)key, key_len,
                                           cert.origin[0] ? cert.origin : "cluster"));
        }
        if (key)
            sealed_free(key, key_len);
    }
    spec_cert_clear(&cert);
}

/* A trust list of spec/: replaced whole when this node's bundle differs. */
static void converge_trust(struct cluster_sync *sync, const char *list, const struct etcd_kv *kv)
{
    struct certstore *store = sync->agent->certs->trust;
    struct spec_cert bundle;
    unsigned generation;
    char *local = NULL, err[512];
    size_t local_len = 0;
    bool same;

    plan_key(sync, kv);
    if (spec_cert_decode((const char *)kv->value, kv->value_len, &bundle, err, sizeof(err)) < 0) {
        fail_pass(sync, err);
        return;
    }
    if (certstore_current(store, list, &generation) == 0)
        certstore_read_cert(store, list, generation, &local, &local_len);
    same = bundle.removed ? local == NULL
                          : local && local_len == bundle.cert_len &&
                                memcmp(local, bundle.cert_pem, local_len) == 0;
    if (!same)
        submit(sync, apply_trust(trust_request_new(TRUST_REPLACE, list,
                                                   bundle.removed ? NULL : bundle.cert_pem,
                                                   bundle.removed ? 0 : bundle.cert_len, NULL)));
    free(local);
    spec_cert_clear(&bundle);
}

static void converge_policy(struct cluster_sync *sync, const struct etcd_kv *kv)
{
    static struct spec_policy spec; /* large; the loop is single-threaded */
    /* Secret values as they open, for the change's length (wiped once it is submitted). */
    static char opened[SPEC_MAX_POLICY_SETTINGS][SPEC_MAX_POLICY_VALUE];
    const struct policy *local = &sync->agent->config->policy;
    const char *names[SPEC_MAX_POLICY_SETTINGS], *values[SPEC_MAX_POLICY_SETTINGS];
    size_t n = 0;
    char err[512];

    plan_key(sync, kv);
    if (spec_policy_decode((const char *)kv->value, kv->value_len, &spec, err, sizeof(err)) < 0) {
        fail_pass(sync, err);
        return;
    }
    for (size_t i = 0; i < spec.n; i++) {
        int setting = policy_setting_lookup(spec.names[i]);
        const char *value = sync_policy_value(sync, kv->key, spec.names[i], spec.values[i],
                                              opened[i], sizeof(opened[i]), err, sizeof(err));
        const char *now = setting < 0 ? NULL : policy_get(local, (enum policy_setting)setting);

        if (!value) {
            OPENSSL_cleanse(opened, sizeof(opened));
            fail_pass(sync, err);
            return;
        }
        if (setting >= 0 && now && strcmp(now, value) == 0)
            continue;
        names[n] = spec.names[i];
        values[n++] = value;
    }
    if (n > 0)
        submit(sync, apply_policy(names, values, n)); /* copies the values */
    OPENSSL_cleanse(opened, sizeof(opened));
}

static bool check_meta(struct cluster_sync *sync, const struct etcd_kv *meta)
{
    char err[512], check[80];

    if (spec_meta_decode((const char *)meta->value, meta->value_len, &sync->meta, err,
                         sizeof(err)) < 0) {
        snprintf(sync->state_error, sizeof(sync->state_error), "%s", err);
        return false;
    }
    sync_load_key(sync);
    if (!sync->has_key) {
        snprintf(sync->state_error, sizeof(sync->state_error),
                 "this node has no cluster data key: copy %s/cluster.key (mode 0600) from a node "
                 "of cluster '%s' (uid %s)",
                 sync->agent->config->state_dir, sync->agent->config->cluster.name, sync->meta.uid);
        return false;
    }
    sync_check_hex(sync->data_key, check, sizeof(check));
    if (strcmp(check, sync->meta.check) != 0) {
        snprintf(sync->state_error, sizeof(sync->state_error),
                 "%s/cluster.key is not the data key of cluster '%s' (uid %s, initialised by "
                 "'%s'): copy that cluster's key",
                 sync->agent->config->state_dir, sync->agent->config->cluster.name, sync->meta.uid,
                 sync->meta.initialised_by);
        return false;
    }
    return true;
}

/* The cluster CA is not changed through the pipeline: a node whose CA differs says so. */
static void check_ca(struct cluster_sync *sync, const struct etcd_range *range)
{
    char key[SYNC_MAX_KEY_LEN], local[96], err[256];
    const struct etcd_kv *kv;
    struct spec_cert ca;

    snprintf(key, sizeof(key), "%sspec/ca/current", sync->prefix);
    kv = find_kv(range, key);
    if (!kv)
        return;
    plan_key(sync, kv);
    if (spec_cert_decode((const char *)kv->value, kv->value_len, &ca, err, sizeof(err)) < 0) {
        fail_pass(sync, err);
        return;
    }
    if (local_fingerprint(sync, CERT_CLUSTER_CA, local, sizeof(local)) < 0 ||
        strcmp(local, ca.fingerprint) != 0) {
        snprintf(err, sizeof(err), "this node's cluster CA is not the cluster's (%s)",
                 ca.fingerprint);
        fail_pass(sync, err);
    }
    spec_cert_clear(&ca);
}

static void reconcile(struct cluster_sync *sync, const struct etcd_range *range)
{
    char key[SYNC_MAX_KEY_LEN];
    const struct etcd_kv *meta, *kv;

    snprintf(key, sizeof(key), "%smeta", sync->prefix);
    meta = find_kv(range, key);
    if (!meta) {
        if (sync->state != SYNC_NOT_INITIALISED)
            log_notice("Cluster '%s': the store holds no cluster yet; this node changes alone "
                       "until 'certvisorctl cluster init'",
                       sync->agent->config->cluster.name);
        sync->state = SYNC_NOT_INITIALISED;
        snprintf(sync->state_error, sizeof(sync->state_error),
                 "the cluster's store is not initialised: run 'certvisorctl cluster init' on "
                 "the node whose certificates the cluster takes");
        return;
    }
    if (!check_meta(sync, meta)) {
        if (sync->state != SYNC_BROKEN)
            log_error("Cluster: %s", sync->state_error);
        sync->state = SYNC_BROKEN;
        retry_later(sync);
        return;
    }
    if (sync->state != SYNC_INITIALISED)
        log_notice("Cluster '%s' (uid %s): this node follows the store",
                   sync->agent->config->cluster.name, sync->meta.uid);
    sync->state = SYNC_INITIALISED;
    sync->state_error[0] = '\0';
    sync->reconcile_at = range->header.revision;
    sync->reconcile_failed = false;
    sync->n_planned = 0;
    sync->applies_out = 1; /* held until every request is submitted */
    check_ca(sync, range);
    for (size_t i = 0; i < cert_names_count; i++) {
        const char *name = cert_names[i].name;

        if (spec_key_cert(key, sizeof(key), sync->prefix,
                          sync_is_node_cert(name) ? sync->node : NULL, name) < 0)
            continue;
        kv = find_kv(range, key);
        if (kv)
            converge_cert(sync, name, kv);
    }
    for (size_t i = 0; i < range->n_kvs; i++) {
        char list[SPEC_MAX_NAME];

        if (spec_trust_list_of(range->kvs[i].key, sync->prefix, list, sizeof(list)) == 0)
            converge_trust(sync, list, &range->kvs[i]);
    }
    snprintf(key, sizeof(key), "%sspec/policy", sync->prefix);
    kv = find_kv(range, key);
    if (kv)
        converge_policy(sync, kv);
    apply_start_now(sync->agent); /* the pass's requests are all queued: one plan, at once */
    if (--sync->applies_out == 0)
        pass_done(sync);
}

/* --- reading and watching --- */

static void range_bounds(const struct cluster_sync *sync, char *from, size_t *from_len, char *end,
                         size_t *end_len)
{
    char spec[200];
    size_t spec_len = (size_t)snprintf(spec, sizeof(spec), "%sspec/", sync->prefix);

    /* [meta, the end of spec/): meta, nodes/ and spec/, none of the busy keys (alive/, status/) */
    *from_len = (size_t)snprintf(from, 200, "%smeta", sync->prefix);
    *end_len = etcd_prefix_end(spec, spec_len, end);
}

static void on_watch(void *data, enum etcd_watch_state state,
                     const struct etcd_watch_message *message, const char *why)
{
    struct cluster_sync *sync = data;

    (void)why;
    if (state == ETCD_WATCH_COMPACTED) {
        etcd_watch_stop(sync->watch);
        sync->watch = NULL;
        sync_converge_now(sync);
    } else if (state == ETCD_WATCH_EVENTS && message->n_events > 0) {
        sync_converge_now(sync);
    }
}

/* A read of the store ended, however it went: what waited for one (init, tokens) goes on. */
static void read_over(struct cluster_sync *sync)
{
    sync_init_read_done(sync);
    sync_tokens_read_done(sync);
}

static void on_range(void *data, const struct etcd_result *result)
{
    struct cluster_sync *sync = data;
    struct etcd_range range;
    char err[512];

    sync->range_call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0) {
        if (sync->state == SYNC_UNKNOWN)
            snprintf(sync->state_error, sizeof(sync->state_error),
                     "the cluster's store cannot be read: %.400s",
                     result->error ? result->message : err);
        /* A read is cheap: tried again without backing off; soon while the store's state is
         * not known at all (its member is usually starting with the agent), since changes
         * are refused until it is. */
        sync->retry_ms = sync->state == SYNC_UNKNOWN ? SYNC_RETRY_UNKNOWN_MS : SYNC_RETRY_MIN_MS;
        retry_later(sync);
        read_over(sync);
        if (sync->dirty) /* what changed is read by the retry */
            sync->dirty = false;
        return;
    }
    if (!sync->watch) {
        char from[200], end[200];
        size_t from_len, end_len;

        range_bounds(sync, from, &from_len, end, &end_len);
        sync->watch = etcd_watch_start(sync->client, from, from_len, end, end_len,
                                       range.header.revision + 1, on_watch, sync);
    }
    reconcile(sync, &range);
    etcd_range_free(&range);
    read_over(sync);
    /* A pass that applied nothing (no cluster yet, or keys this node cannot open) reads again
     * at once when spec/ changed meanwhile; one that applies reads again when it is over. */
    if (sync->applies_out == 0 && sync->dirty && !sync->range_call) {
        sync->dirty = false;
        start_read(sync);
    }
}

static void start_read(struct cluster_sync *sync)
{
    char from[200], end[200];
    size_t from_len, end_len;

    range_bounds(sync, from, &from_len, end, &end_len);
    sync->range_call =
        etcd_call(sync->client, "/v3/kv/range",
                  etcd_range_request(from, from_len, end, end_len, 0, false), on_range, sync);
}

void sync_converge_now(struct cluster_sync *sync)
{
    if (sync->range_call || sync->applies_out > 0) {
        sync->dirty = true;
        return;
    }
    if (sync->retry_timer)
        evtimer_del(sync->retry_timer);
    start_read(sync);
}

void sync_converge_stop(struct cluster_sync *sync)
{
    apply_forget(sync->agent, sync);
    if (sync->range_call)
        etcd_call_cancel(sync->range_call);
    if (sync->status_call)
        etcd_call_cancel(sync->status_call);
    if (sync->watch)
        etcd_watch_stop(sync->watch);
    if (sync->retry_timer)
        event_free(sync->retry_timer);
}
