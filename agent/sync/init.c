/*
 * certvisorctl cluster init (sync.h): a single node's certificates, its CA and its runtime
 * policy go into an empty store in one transaction, at their generation numbers, with every
 * private key sealed with the cluster's data key (made here when the node has none: written
 * on an offload worker, since it is fsynced). The node then follows the store like any other.
 */
#include "sync_impl.h"

#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "log.h"
#include "offload.h"
#include "policy.h"
#include "trust.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INIT_MAX_OPS 64 /* meta, CA, 9 certificates, the policy, and the trust lists */

struct sync_init {
    struct cluster_sync *sync; /* NULL once abandoned (the agent stops) */
    cluster_sync_done_fn done;
    void *data;
    struct etcd_call *call;
    /* the key job */
    char path[4200];
    unsigned char key[SEALED_KEY_BYTES];
    int result;
    char err[512];
    json_t *names;     /* what went into the store */
    bool waiting_read; /* the store's state is not known yet: a read is under way */
    bool key_job_out;  /* the data key is being made on an offload worker */
};

static void init_free(struct sync_init *init)
{
    if (init->call)
        etcd_call_cancel(init->call);
    OPENSSL_cleanse(init->key, sizeof(init->key));
    json_decref(init->names);
    free(init);
}

static void init_answer(struct sync_init *init, int exit_status, json_t *reply)
{
    cluster_sync_done_fn done = init->done;
    void *data = init->data;

    init->sync->init = NULL;
    init_free(init);
    if (done)
        done(data, exit_status, reply);
    else
        json_decref(reply);
}

/* An answer decided at once: given from the loop later, as callers expect. */
static void init_answer_later(struct sync_init *init, int exit_status, json_t *reply)
{
    struct cluster_sync *sync = init->sync;
    cluster_sync_done_fn done = init->done;
    void *data = init->data;

    sync->init = NULL;
    init_free(init);
    if (done)
        sync_answer_later(sync->agent, done, data, exit_status, reply);
    else
        json_decref(reply);
}

static void on_init_txn(void *data, const struct etcd_result *result)
{
    struct sync_init *init = data;
    struct cluster_sync *sync = init->sync;
    struct etcd_header header;
    bool succeeded = false;
    char err[512], message[1024];

    init->call = NULL;
    if (result->error || etcd_parse_txn(result->body, result->body_len, &header, &succeeded, NULL,
                                        err, sizeof(err)) < 0) {
        snprintf(message, sizeof(message), "the cluster's store did not take the cluster: %s",
                 result->error ? result->message : err);
        init_answer(init, 1, sync_refusal("cluster_unavailable", message));
        return;
    }
    if (!succeeded) {
        init_answer(init, 1,
                    sync_refusal("conflict",
                                 "another node initialised the cluster first: this node "
                                 "follows that cluster (see 'certvisorctl cluster status')"));
        sync_converge_now(sync);
        return;
    }
    log_notice("Cluster '%s': initialised from node '%s' (revision %" PRId64 ")",
               sync->agent->config->cluster.name, sync->node, header.revision);
    init_answer(init, 0,
                json_pack("{s:i, s:I, s:O, s:s}", "exit", 0, "revision",
                          (json_int_t)header.revision, "certificates", init->names, "cluster",
                          sync->agent->config->cluster.name));
    sync_converge_now(sync);
}

/* One certificate's put: its current generation, key sealed for its etcd key. */
static int put_cert(struct sync_init *init, const char *name, const char *key, char **value,
                    char *err, size_t err_len)
{
    struct certstore *store = init->sync->agent->certs->store;
    const struct cert_name *entry = cert_name_lookup(name);
    char *pem = NULL, *key_pem = NULL, origin[32] = "generated";
    size_t len = 0, key_len = 0;
    unsigned generation;
    int r = certstore_current(store, name, &generation);

    *value = NULL;
    if (r < 0)
        return 0; /* an optional certificate that is not set */
    r = certstore_read_cert(store, name, generation, &pem, &len);
    if (r == 0 && (!entry || entry->has_key))
        r = certstore_read_key(store, name, generation, &key_pem, &key_len);
    if (r == 0 && entry)
        certstore_get_origin(store, name, generation, origin, sizeof(origin));
    if (r == 0)
        *value = sync_encode_cert(init->sync, key, name, pem, len, key_pem, key_len, generation,
                                  origin, err, err_len);
    else
        snprintf(err, err_len, "cannot read '%s': %s", name, strerror(-r));
    free(pem);
    if (key_pem)
        OPENSSL_clear_free(key_pem, key_len);
    return r < 0 ? r : *value ? 1 : -ENOMEM;
}

/* The trust lists this node holds (state_dir/trust), at most room of them: their puts. */
static size_t put_trust_lists(struct sync_init *init, char (*keys)[SYNC_MAX_KEY_LEN], char **values,
                              size_t room)
{
    struct certstore *store = init->sync->agent->certs->trust;
    char root[PATH_MAX], err[256];
    struct dirent *entry;
    size_t n = 0;
    DIR *dir;

    snprintf(root, sizeof(root), "%s/trust", init->sync->agent->config->state_dir);
    dir = opendir(root);
    while (dir && n < room && (entry = readdir(dir))) {
        unsigned generation;
        char *pem = NULL;
        size_t len = 0;

        if (!trust_list_name_valid(entry->d_name) ||
            certstore_current(store, entry->d_name, &generation) < 0 ||
            certstore_read_cert(store, entry->d_name, generation, &pem, &len) < 0 ||
            spec_key_trust(keys[n], SYNC_MAX_KEY_LEN, init->sync->prefix, entry->d_name) < 0) {
            free(pem);
            continue;
        }
        values[n] = sync_encode_cert(init->sync, keys[n], entry->d_name, pem, len, NULL, 0,
                                     generation, "trust list", err, sizeof(err));
        free(pem);
        if (values[n])
            n++;
    }
    if (dir)
        closedir(dir);
    return n;
}

static void publish_init(struct sync_init *init)
{
    struct cluster_sync *sync = init->sync;
    static char keys[INIT_MAX_OPS][SYNC_MAX_KEY_LEN];
    char *values[INIT_MAX_OPS] = {0};
    struct etcd_op ops[INIT_MAX_OPS];
    struct etcd_compare absent;
    struct spec_meta meta = {.schema = SPEC_SCHEMA, .at = time(NULL)};
    static struct spec_policy policy;
    unsigned char uid[16];
    char err[512] = "";
    size_t n = 0;
    int r = 0;

    RAND_bytes(uid, sizeof(uid));
    for (size_t i = 0; i < sizeof(uid); i++)
        snprintf(meta.uid + 2 * i, 3, "%02x", uid[i]);
    sync_check_hex(sync->data_key, meta.check, sizeof(meta.check));
    snprintf(meta.initialised_by, sizeof(meta.initialised_by), "%s", sync->node);
    snprintf(keys[n], SYNC_MAX_KEY_LEN, "%smeta", sync->prefix);
    values[n++] = spec_meta_encode(&meta);
    snprintf(keys[n], SYNC_MAX_KEY_LEN, "%sspec/ca/current", sync->prefix);
    r = put_cert(init, CERT_CLUSTER_CA, keys[n], &values[n], err, sizeof(err));
    n += r > 0;
    for (size_t i = 0; r >= 0 && i < cert_names_count && n < INIT_MAX_OPS - 1; i++) {
        const char *name = cert_names[i].name;

        if (spec_key_cert(keys[n], SYNC_MAX_KEY_LEN, sync->prefix,
                          sync_is_node_cert(name) ? sync->node : NULL, name) < 0)
            continue;
        r = put_cert(init, name, keys[n], &values[n], err, sizeof(err));
        if (r > 0) {
            json_array_append_new(init->names, json_string(name));
            n++;
        }
    }
    if (r >= 0)
        n += put_trust_lists(init, &keys[n], &values[n], INIT_MAX_OPS - 1 - n);
    snprintf(keys[n], SYNC_MAX_KEY_LEN, "%sspec/policy", sync->prefix);
    if (r >= 0 &&
        sync_policy_of(sync, keys[n], &sync->agent->config->policy, &policy, err, sizeof(err)) < 0)
        r = -EIO;
    values[n++] = r >= 0 ? spec_policy_encode(&policy) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (!values[i])
            r = -ENOMEM;
        ops[i] = (struct etcd_op){
            ETCD_OP_PUT, keys[i], strlen(keys[i]), values[i], values[i] ? strlen(values[i]) : 0, 0};
    }
    absent = (struct etcd_compare){keys[0], strlen(keys[0]), 0};
    if (r >= 0)
        init->call = etcd_call(sync->client, "/v3/kv/txn",
                               etcd_txn_request(&absent, 1, ops, n, NULL, 0), on_init_txn, init);
    for (size_t i = 0; i < n; i++)
        free(values[i]);
    if (r < 0 || !init->call)
        init_answer(init, 1, sync_refusal("failed", *err ? err : "out of memory"));
}

/* --- a new data key, on an offload worker --- */

static void make_key(void *data)
{
    struct sync_init *init = data;

    init->result = sealed_key_generate(init->key);
    if (init->result == 0)
        init->result = sealed_key_write(init->path, init->key, init->err, sizeof(init->err));
    else
        snprintf(init->err, sizeof(init->err), "cannot make a data key");
}

static void on_key_made(void *data, bool cancelled)
{
    struct sync_init *init = data;
    struct cluster_sync *sync = init->sync;

    init->key_job_out = false;
    if (cancelled || !sync) {
        init_free(init);
        return;
    }
    if (init->result < 0) {
        init_answer(init, 1, sync_refusal("failed", init->err));
        return;
    }
    memcpy(sync->data_key, init->key, SEALED_KEY_BYTES);
    sync->has_key = true;
    log_notice("Cluster: made the cluster's data key %s (0600); the other nodes need a copy",
               init->path);
    publish_init(init);
}

static void init_go(struct sync_init *init);

void cluster_sync_init(struct agent *agent, cluster_sync_done_fn done, void *data)
{
    struct cluster_sync *sync = sync_of(agent);
    struct sync_init *init;

    if (!sync) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("not_in_cluster",
                                       "this node's store is local: set 'store = etcd', 'node' and "
                                       "the members in the cluster section of certvisor.conf, "
                                       "reload, then run 'certvisorctl cluster init'"));
        return;
    }
    if (sync->init) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("failed", "a cluster init is already under way"));
        return;
    }
    init = calloc(1, sizeof(*init));
    if (init)
        init->names = json_array();
    if (!init || !init->names) {
        free(init);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    init->sync = sync;
    init->done = done;
    init->data = data;
    sync->init = init;
    if (sync->state == SYNC_UNKNOWN) {
        /* Not read yet (etcd came up after the agent): read now, and decide on what it says. */
        init->waiting_read = true;
        sync_converge_now(sync);
        return;
    }
    init_go(init);
}

void sync_init_read_done(struct cluster_sync *sync)
{
    if (sync->init && sync->init->waiting_read) {
        sync->init->waiting_read = false;
        init_go(sync->init);
    }
}

/* Decides on the store's state: initialise it, or say why not. */
static void init_go(struct sync_init *init)
{
    struct cluster_sync *sync = init->sync;
    struct agent *agent = sync->agent;
    char message[1024];

    if (sync->state == SYNC_INITIALISED) {
        bool ours = strcmp(sync->meta.initialised_by, sync->node) == 0;

        snprintf(message, sizeof(message),
                 "the store already holds cluster '%s' (uid %s, initialised by '%s')%s",
                 agent->config->cluster.name, sync->meta.uid, sync->meta.initialised_by,
                 ours ? "" : ": this node follows it");
        init_answer_later(
            init, ours ? 0 : 1,
            ours ? json_pack("{s:i, s:b, s:s}", "exit", 0, "already", 1, "message", message)
                 : sync_refusal("already_initialised", message));
        return;
    }
    if (sync->state != SYNC_NOT_INITIALISED) {
        snprintf(message, sizeof(message), "%s", sync->state_error);
        init_answer_later(
            init, 1,
            sync_refusal(sync->state == SYNC_BROKEN ? "failed" : "cluster_unavailable", message));
        return;
    }
    sync_load_key(sync);
    if (sync->has_key) {
        publish_init(init);
        return;
    }
    sync_data_key_path(agent, init->path, sizeof(init->path));
    init->key_job_out = true;
    if (offload_submit(agent->offload, make_key, on_key_made, init) < 0) {
        init->key_job_out = false;
        init_answer(init, 1, sync_refusal("failed", "out of memory"));
    }
}

void cluster_sync_forget(struct agent *agent, void *data)
{
    struct cluster_sync *sync = sync_of(agent);

    if (sync && sync->init && sync->init->data == data)
        sync->init->done = NULL;
}

void sync_init_stop(struct cluster_sync *sync)
{
    struct sync_init *init = sync->init;

    if (!init)
        return;
    sync->init = NULL;
    if (init->done)
        init->done(init->data, 1,
                   sync_refusal("shutting_down",
                                "certvisord is stopping: the cluster was not initialised"));
    init->done = NULL;
    init->sync = NULL;
    if (!init->key_job_out) /* else the job's done callback frees it */
        init_free(init);
}
