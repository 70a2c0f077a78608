/*
 * certvisorctl cluster token create|list|delete (sync.h): join tokens in the cluster's store,
 * at join/<id>, each put on a lease of its own whose TTL is the token's lifetime, so that etcd
 * removes an expired token by itself on every member. The value holds the SHA-256 of the
 * secret, never the secret (spec.h, join_token.h).
 */
#include "sync_impl.h"

#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "join_token.h"
#include "log.h"
#include "monitor.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Tokens a list shows at most; more are counted. */
#define TOKENS_LIST_MAX 200
/* The REST API's port as conf.d ships it: where a joiner reaches this node. */
#define JOIN_DEFAULT_PORT 9443

enum token_step { TOKEN_GRANT, TOKEN_PUT, TOKEN_LIST, TOKEN_READ, TOKEN_DELETE, TOKEN_REVOKE };

struct sync_token_op {
    struct cluster_sync *sync;
    struct sync_token_op *next;
    cluster_sync_done_fn done; /* NULL once its caller went away */
    void *data;
    struct etcd_call *call;
    enum token_step step;
    char key[SYNC_MAX_KEY_LEN];
    /* create */
    struct spec_join record;
    char secret[JOIN_TOKEN_SECRET_LEN + 1];
    char ca_hash[JOIN_CA_HASH_TEXT_LEN + 1];
    char peer[300];
    long ttl;
    /* delete */
    int64_t lease;
    /* starting */
    void (*start)(struct sync_token_op *op); /* the first call, once the store is usable */
    bool read_asked; /* the store was not known initialised: it was read again for this op */
    bool waiting;    /* for that read */
    struct event *begin_ev;
};

static void op_free(struct sync_token_op *op)
{
    struct cluster_sync *sync = op->sync;

    for (struct sync_token_op **at = &sync->token_ops; *at; at = &(*at)->next)
        if (*at == op) {
            *at = op->next;
            break;
        }
    if (op->call)
        etcd_call_cancel(op->call);
    if (op->begin_ev)
        event_free(op->begin_ev);
    OPENSSL_cleanse(op, sizeof(*op));
    free(op);
}

static void op_answer(struct sync_token_op *op, int exit_status, json_t *reply)
{
    cluster_sync_done_fn done = op->done;
    void *data = op->data;

    op_free(op);
    sync_deliver(done, data, exit_status, reply);
}

static void op_fail(struct sync_token_op *op, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void op_fail(struct sync_token_op *op, const char *reason, const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    op_answer(op, 1, sync_refusal(reason, message));
}

/*
 * Starts op once the store can take it: initialised (read at least once since init: a node
 * that has just run 'cluster init' reads the store again first) and with a leader. Runs from
 * the loop, never inside the caller's call: it may answer at once.
 */
static void begin(struct sync_token_op *op)
{
    struct cluster_sync *sync = op->sync;
    char message[700];

    if (sync->state == SYNC_INITIALISED &&
        cluster_monitor_health(sync->agent->cluster)->has_leader) {
        op->start(op);
        return;
    }
    if (!op->read_asked && sync->state != SYNC_BROKEN) {
        op->read_asked = op->waiting = true;
        sync_converge_now(sync); /* sync_tokens_read_done() when it is over */
        return;
    }
    snprintf(message, sizeof(message), "join tokens cannot be used now: %s",
             sync_unusable_why(sync));
    op_fail(op, sync->state == SYNC_BROKEN ? "failed" : "cluster_unavailable", "%s", message);
}

static void on_begin(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    begin(arg);
}

void sync_tokens_read_done(struct cluster_sync *sync)
{
    struct sync_token_op *op = sync->token_ops, *next;

    /* A read begun before the change it waits for: the next one, already asked for, tells. */
    if (sync->state != SYNC_INITIALISED && sync->dirty)
        return;
    for (; op; op = next) {
        next = op->next; /* begin() may free op */
        if (op->waiting) {
            op->waiting = false;
            begin(op);
        }
    }
}

/* A node on its own has no store for tokens: refused (later, from the loop). */
static bool has_store(struct agent *agent, cluster_sync_done_fn done, void *data)
{
    if (sync_of(agent))
        return true;
    sync_answer_later(agent, done, data, 1,
                      sync_refusal("not_a_cluster",
                                   "join tokens live in the cluster's etcd store, and this "
                                   "node's store is local: set store = etcd in certvisor.conf's "
                                   "cluster section, then 'certvisorctl cluster init'"));
    return false;
}

/* A new op, started from the loop by begin(); answers "out of memory" itself when it cannot
 * be made. Returns it (to be filled in before the loop runs), or NULL. */
static struct sync_token_op *op_new(struct agent *agent, void (*start)(struct sync_token_op *),
                                    cluster_sync_done_fn done, void *data)
{
    struct cluster_sync *sync = sync_of(agent);
    struct sync_token_op *op = calloc(1, sizeof(*op));
    struct timeval now = {0, 0};

    if (op)
        op->begin_ev = evtimer_new(agent->base, on_begin, op);
    if (!op || !op->begin_ev || evtimer_add(op->begin_ev, &now) < 0) {
        if (op && op->begin_ev)
            event_free(op->begin_ev);
        free(op);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return NULL;
    }
    op->sync = sync;
    op->start = start;
    op->done = done;
    op->data = data;
    op->next = sync->token_ops;
    sync->token_ops = op;
    return op;
}

static void on_call(void *data, const struct etcd_result *result);

/* Sends request to path as the op's next step; an op that cannot is answered. */
static void op_call(struct sync_token_op *op, enum token_step step, const char *path,
                    json_t *request)
{
    op->step = step;
    op->call = request ? etcd_call(op->sync->client, path, request, on_call, op) : NULL;
    if (!op->call)
        op_fail(op, "failed", "out of memory");
}

/* --- create --- */

static json_t *created_reply(const struct sync_token_op *op)
{
    char token[JOIN_TOKEN_TEXT_LEN + 1], command[600];

    snprintf(token, sizeof(token), "%s.%s", op->record.id, op->secret);
    snprintf(command, sizeof(command), "certvisorctl cluster join %s --token %s --ca-cert-hash %s",
             op->peer, token, op->ca_hash);
    return json_pack("{s:i, s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "exit", 0, "token", token, "id",
                     op->record.id, "ca_cert_hash", op->ca_hash, "ttl", (json_int_t)op->ttl,
                     "expires", (json_int_t)op->record.expires, "join_command", command,
                     "description", op->record.description);
}

static void put_token(struct sync_token_op *op, int64_t lease)
{
    struct etcd_compare absent = {op->key, strlen(op->key), 0};
    char *value = spec_join_encode(&op->record);
    struct etcd_op put = {ETCD_OP_PUT, op->key, strlen(op->key), value, value ? strlen(value) : 0,
                          lease};

    op_call(op, TOKEN_PUT, "/v3/kv/txn",
            value ? etcd_txn_request(&absent, 1, &put, 1, NULL, 0) : NULL);
    free(value);
}

static void start_create(struct sync_token_op *op)
{
    op_call(op, TOKEN_GRANT, "/v3/lease/grant", json_pack("{s:I}", "TTL", (json_int_t)op->ttl));
}

void cluster_sync_token_create(struct agent *agent, long ttl, const char *description,
                               const char *peer, const char *who, cluster_sync_done_fn done,
                               void *data)
{
    struct certstore *store = agent->certs->store;
    struct sync_token_op *op;
    char *pem = NULL, err[256], address[300];
    const char *problem = NULL;
    size_t len = 0;
    unsigned generation;

    if (!has_store(agent, done, data) || !(op = op_new(agent, start_create, done, data)))
        return;
    if (certstore_current(store, CERT_CLUSTER_CA, &generation) < 0 ||
        certstore_read_cert(store, CERT_CLUSTER_CA, generation, &pem, &len) < 0 ||
        join_ca_cert_hash(pem, len, op->ca_hash, sizeof(op->ca_hash), err, sizeof(err)) < 0)
        problem = "the cluster CA cannot be read";
    else if (join_token_generate(op->record.id, op->secret) < 0)
        problem = "the random generator failed";
    free(pem);
    if (problem) {
        /* Answered at once; the op, already scheduled, must go without answering again. */
        op->done = NULL;
        op_free(op);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", problem));
        return;
    }
    cluster_host_port(agent->config->cluster.node_address, JOIN_DEFAULT_PORT, address,
                      sizeof(address));
    snprintf(op->peer, sizeof(op->peer), "%s", peer && *peer ? peer : address);
    join_token_secret_sha256(op->secret, op->record.secret_sha256);
    op->ttl = ttl;
    op->record.created = time(NULL);
    op->record.expires = op->record.created + ttl;
    snprintf(op->record.created_by, sizeof(op->record.created_by), "%s", who ? who : "");
    snprintf(op->record.description, sizeof(op->record.description), "%s",
             description ? description : "");
    spec_key_join(op->key, sizeof(op->key), op->sync->prefix, op->record.id);
}

/* --- list --- */

static void list_tokens(struct sync_token_op *op, const struct etcd_range *range)
{
    json_t *items = json_array();
    int64_t now = time(NULL);
    size_t unreadable = 0;

    for (size_t i = 0; i < range->n_kvs && i < TOKENS_LIST_MAX; i++) {
        struct spec_join record;
        char err[256];

        if (spec_join_decode((const char *)range->kvs[i].value, range->kvs[i].value_len, &record,
                             err, sizeof(err)) < 0) {
            unreadable++;
            continue;
        }
        json_array_append_new(
            items,
            json_pack("{s:s, s:I, s:I, s:I, s:s, s:s}", "id", record.id, "created",
                      (json_int_t)record.created, "expires", (json_int_t)record.expires, "ttl_left",
                      (json_int_t)(record.expires > now ? record.expires - now : 0), "created_by",
                      record.created_by, "description", record.description));
    }
    op_answer(op, 0,
              json_pack("{s:i, s:o, s:I, s:I}", "exit", 0, "items", items, "unreadable",
                        (json_int_t)unreadable, "count", (json_int_t)range->count));
}

static void start_list(struct sync_token_op *op)
{
    char from[200], end[200];
    size_t from_len = (size_t)snprintf(from, sizeof(from), "%sjoin/", op->sync->prefix);

    op_call(
        op, TOKEN_LIST, "/v3/kv/range",
        etcd_range_request(from, from_len, end, etcd_prefix_end(from, from_len, end), 0, false));
}

void cluster_sync_token_list(struct agent *agent, cluster_sync_done_fn done, void *data)
{
    if (has_store(agent, done, data))
        op_new(agent, start_list, done, data);
}

/* --- delete: read it (for its lease), delete it if unchanged, revoke the lease --- */

static void start_delete(struct sync_token_op *op)
{
    op_call(op, TOKEN_READ, "/v3/kv/range",
            etcd_range_request(op->key, strlen(op->key), NULL, 0, 0, false));
}

void cluster_sync_token_delete(struct agent *agent, const char *id, cluster_sync_done_fn done,
                               void *data)
{
    struct sync_token_op *op;

    if (!join_token_id_valid(id)) { /* the caller checks it: never a key of another shape */
        sync_answer_later(agent, done, data, 2,
                          json_pack("{s:i, s:s, s:s}", "exit", 2, "reason", "usage", "error",
                                    "a token id is six lowercase letters and digits"));
        return;
    }
    if (!has_store(agent, done, data) || !(op = op_new(agent, start_delete, done, data)))
        return;
    snprintf(op->record.id, sizeof(op->record.id), "%s", id);
    spec_key_join(op->key, sizeof(op->key), op->sync->prefix, id);
}

static void delete_read(struct sync_token_op *op, const struct etcd_range *range)
{
    struct etcd_compare same;
    struct etcd_op del = {ETCD_OP_DELETE, op->key, strlen(op->key), NULL, 0, 0};

    if (range->n_kvs == 0) {
        op_fail(op, "not_found",
                "no join token '%s' (it expired, was deleted, or never was): 'certvisorctl "
                "cluster token list' shows the tokens there are",
                op->record.id);
        return;
    }
    op->lease = range->kvs[0].lease;
    same = (struct etcd_compare){op->key, strlen(op->key), range->kvs[0].mod_revision};
    op_call(op, TOKEN_DELETE, "/v3/kv/txn", etcd_txn_request(&same, 1, &del, 1, NULL, 0));
}

static json_t *deleted_reply(const struct sync_token_op *op)
{
    return json_pack("{s:i, s:s}", "exit", 0, "id", op->record.id);
}

/* --- the steps' answers --- */

static void on_call(void *data, const struct etcd_result *result)
{
    struct sync_token_op *op = data;
    struct etcd_range range;
    struct etcd_header header;
    int64_t lease = 0, ttl = 0;
    bool succeeded = false;
    char err[512];

    op->call = NULL;
    if (op->step == TOKEN_REVOKE) {
        /* Best effort: a lease not revoked ends at its TTL anyway. */
        op_answer(op, 0, deleted_reply(op));
        return;
    }
    if (result->error) {
        op_fail(op, "cluster_unavailable",
                "the cluster's store did not answer (%s): no join token was changed",
                result->message);
        return;
    }
    switch (op->step) {
    case TOKEN_GRANT:
        if (etcd_parse_lease(result->body, result->body_len, &lease, &ttl, NULL, err, sizeof(err)) <
            0) {
            op_fail(op, "failed", "the cluster's store granted no lease: %s", err);
            return;
        }
        put_token(op, lease);
        return;
    case TOKEN_PUT:
        if (etcd_parse_txn(result->body, result->body_len, &header, &succeeded, NULL, err,
                           sizeof(err)) < 0) {
            op_fail(op, "failed", "the cluster's store did not take the token: %s", err);
            return;
        }
        if (!succeeded) {
            op_fail(op, "failed",
                    "the cluster's store did not take the token (its id is taken: "
                    "try again)");
            return;
        }
        log_notice("Cluster: join token '%s' created by %s, valid for %ld s", op->record.id,
                   op->record.created_by[0] ? op->record.created_by : "?", op->ttl);
        op_answer(op, 0, created_reply(op));
        return;
    case TOKEN_LIST:
    case TOKEN_READ:
        if (etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0) {
            op_fail(op, "failed", "the cluster's store answered what cannot be read: %s", err);
            return;
        }
        if (op->step == TOKEN_LIST)
            list_tokens(op, &range);
        else
            delete_read(op, &range);
        etcd_range_free(&range);
        return;
    case TOKEN_DELETE:
        if (etcd_parse_txn(result->body, result->body_len, &header, &succeeded, NULL, err,
                           sizeof(err)) < 0) {
            op_fail(op, "failed", "the cluster's store answered what cannot be read: %s", err);
            return;
        }
        if (!succeeded) {
            op_fail(op, "conflict",
                    "join token '%s' changed while it was being deleted (it expired, or another "
                    "node deleted it): see 'certvisorctl cluster token list'",
                    op->record.id);
            return;
        }
        log_notice("Cluster: join token '%s' deleted", op->record.id);
        if (op->lease)
            /* Its lease holds nothing else: give it back now rather than at its expiry. */
            op_call(op, TOKEN_REVOKE, "/v3/lease/revoke",
                    json_pack("{s:I}", "ID", (json_int_t)op->lease));
        else
            op_answer(op, 0, deleted_reply(op));
        return;
    case TOKEN_REVOKE:
        return; /* answered above */
    }
}

/* --- callers gone, the agent stopping --- */

void cluster_sync_tokens_forget(struct agent *agent, void *data)
{
    struct cluster_sync *sync = sync_of(agent);

    for (struct sync_token_op *op = sync ? sync->token_ops : NULL; op; op = op->next)
        if (op->data == data)
            op->done = NULL;
}

void sync_tokens_stop(struct cluster_sync *sync)
{
    while (sync->token_ops)
        op_fail(sync->token_ops, "shutting_down",
                "certvisord is stopping: the join token operation may not have completed");
}
