/*
 * Publish: a change validated and staged on this node goes to the cluster's store as one etcd
 * transaction, and its callers wait for every node's outcome (sync.h).
 */
#include "sync_impl.h"

#include "apply.h"
#include "config.h"
#include "log.h"
#include "monitor.h"
#include "policy.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The waiting node reads status/ whenever its watch of status/ says a node wrote there, and
 * at least this often besides (a node that went down, the deadline). */
#define POLL_MS 500

struct sync_publication {
    struct cluster_sync *sync;
    struct sync_publication *next;
    cluster_sync_done_fn done;
    void *data;
    struct etcd_call *call;
    struct etcd_watch *watch; /* status/, from the revision on */
    bool read_again;          /* a node wrote while a read was under way */
    int64_t revision;         /* 0 until the transaction held */
    struct event *timer;
    struct timespec deadline;
    char what[512];
};

static void publication_free(struct sync_publication *p)
{
    struct cluster_sync *sync = p->sync;

    for (struct sync_publication **at = &sync->publications; *at; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    if (p->call)
        etcd_call_cancel(p->call);
    if (p->watch)
        etcd_watch_stop(p->watch);
    if (p->timer)
        event_free(p->timer);
    free(p);
}

static void publication_answer(struct sync_publication *p, int exit_status, json_t *reply)
{
    cluster_sync_done_fn done = p->done;
    void *data = p->data;

    publication_free(p);
    done(data, exit_status, reply);
}

/* --- waiting for the nodes --- */

static bool past(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Each configured node's outcome for the revision; true when none is still to come (or the
 * time is up, after which those become "no answer"). */
static bool evaluate(struct sync_publication *p, const struct etcd_range *statuses, bool final,
                     json_t *nodes, char *failed, size_t failed_len)
{
    const struct cluster_settings *cluster = &p->sync->agent->config->cluster;
    bool complete = true;
    size_t used = 0;

    failed[0] = '\0';
    for (size_t i = 0; i < cluster->n_members; i++) {
        const char *node = cluster->members[i].name;
        struct spec_status status = {0};
        const char *result = NULL;
        char reason[SPEC_MAX_REASON + 64] = "", key[SYNC_MAX_KEY_LEN], err[256];

        spec_key_status(key, sizeof(key), p->sync->prefix, node);
        for (size_t k = 0; k < statuses->n_kvs; k++)
            if (strcmp(statuses->kvs[k].key, key) == 0 &&
                spec_status_decode((const char *)statuses->kvs[k].value, statuses->kvs[k].value_len,
                                   &status, err, sizeof(err)) < 0)
                status.revision = 0;
        if (status.revision >= p->revision && status.result == SPEC_APPLIED) {
            result = "applied";
        } else if (status.revision >= p->revision) {
            result = "failed";
            snprintf(reason, sizeof(reason), "%s", status.reason);
        } else if (!sync_node_alive(p->sync, node)) {
            result = "down";
            snprintf(reason, sizeof(reason), "its agent is not alive in the store");
        } else if (final) {
            result = "no_answer";
            snprintf(reason, sizeof(reason), "no answer in %d s (it applied revision %" PRId64 ")",
                     SYNC_WAIT_MS / 1000, status.revision);
        } else {
            complete = false;
            continue;
        }
        json_array_append_new(
            nodes, json_pack("{s:s, s:s, s:s}", "node", node, "result", result, "reason", reason));
        if (strcmp(result, "applied") != 0 && used < failed_len) {
            int n = snprintf(failed + used, failed_len - used, "%s%s: %s%s%s", used ? "; " : "",
                             node, result, *reason ? ", " : "", reason);

            used += n > 0 ? (size_t)n : 0;
        }
    }
    return complete;
}

static void read_statuses(struct sync_publication *p);

static void poll_later(struct sync_publication *p)
{
    struct timeval delay = {0, POLL_MS * 1000};

    if (p->read_again) {
        p->read_again = false;
        read_statuses(p);
        return;
    }
    evtimer_add(p->timer, &delay);
}

static void on_statuses(void *data, const struct etcd_result *result)
{
    struct sync_publication *p = data;
    bool final = past(&p->deadline);
    struct etcd_range range = {0};
    char err[256], failed[2048], message[2600];
    json_t *nodes;

    p->call = NULL;
    if (result->error ||
        etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0) {
        if (!final) {
            poll_later(p);
            return;
        }
        memset(&range, 0, sizeof(range));
    }
    nodes = json_array();
    if (!evaluate(p, &range, final, nodes, failed, sizeof(failed))) {
        etcd_range_free(&range);
        json_decref(nodes);
        poll_later(p);
        return;
    }
    etcd_range_free(&range);
    if (!failed[0]) {
        log_info("Cluster: %s applied on every node (revision %" PRId64 ")", p->what, p->revision);
        publication_answer(p, 0,
                           json_pack("{s:i, s:I, s:o}", "exit", 0, "revision",
                                     (json_int_t)p->revision, "nodes", nodes));
        return;
    }
    snprintf(message, sizeof(message),
             "not all nodes have been updated: %s. The change is published (revision %" PRId64
             "): each node applies it by itself once it is up and can; a retry is harmless",
             failed, p->revision);
    log_warning("Cluster: %s: %s", p->what, message);
    publication_answer(p, 1,
                       json_pack("{s:i, s:s, s:s, s:I, s:o}", "exit", 1, "error", message, "reason",
                                 "not_all_nodes_updated", "revision", (json_int_t)p->revision,
                                 "nodes", nodes));
}

static void read_statuses(struct sync_publication *p)
{
    char key[200], end[200];
    size_t key_len, end_len;

    if (p->call) {
        p->read_again = true;
        return;
    }
    evtimer_del(p->timer);
    key_len = (size_t)snprintf(key, sizeof(key), "%sstatus/", p->sync->prefix);
    end_len = etcd_prefix_end(key, key_len, end);
    p->call = etcd_call(p->sync->client, "/v3/kv/range",
                        etcd_range_request(key, key_len, end, end_len, 0, false), on_statuses, p);
    if (!p->call)
        publication_answer(p, 1, sync_refusal("failed", "out of memory"));
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    read_statuses(arg);
}

static void on_status_written(void *data, enum etcd_watch_state state,
                              const struct etcd_watch_message *message, const char *why)
{
    (void)why;
    if (state == ETCD_WATCH_EVENTS && message->n_events > 0)
        read_statuses(data);
}

/* Watches status/ from now on, and reads it: each node's outcome is read when it comes. Not
 * from the change's revision: etcd serves a watch that starts in the past from a loop that
 * catches up every 100 ms, while one from now gets each event at once; what was written before
 * the watch began is in the read (and the periodic read covers the moment in between). */
static void watch_statuses(struct sync_publication *p)
{
    char key[200], end[200];
    size_t key_len, end_len;

    key_len = (size_t)snprintf(key, sizeof(key), "%sstatus/", p->sync->prefix);
    end_len = etcd_prefix_end(key, key_len, end);
    p->watch =
        etcd_watch_start(p->sync->client, key, key_len, end, end_len, 0, on_status_written, p);
    read_statuses(p);
}

/* --- the transaction --- */

static void on_txn(void *data, const struct etcd_result *result)
{
    struct sync_publication *p = data;
    struct etcd_header header;
    bool succeeded = false;
    char err[512], message[1024];

    p->call = NULL;
    if (result->error || etcd_parse_txn(result->body, result->body_len, &header, &succeeded, NULL,
                                        err, sizeof(err)) < 0) {
        snprintf(message, sizeof(message),
                 "the cluster's store did not take the change (%s): certificates and policy "
                 "cannot change now; services keep serving the current configuration",
                 result->error ? result->message : err);
        publication_answer(p, 1, sync_refusal("cluster_unavailable", message));
        return;
    }
    if (!succeeded) {
        struct cluster_sync *sync = p->sync;

        snprintf(message, sizeof(message),
                 "conflict: %s changed in the cluster since this node last applied it (another "
                 "node's change came first); nothing was changed: see 'certvisorctl cluster "
                 "status', then try again",
                 p->what);
        publication_answer(p, 1, sync_refusal("conflict", message)); /* frees p */
        sync_converge_now(sync);
        return;
    }
    p->revision = header.revision;
    log_info("Cluster: published %s (revision %" PRId64 "); waiting for every node", p->what,
             p->revision);
    clock_gettime(CLOCK_MONOTONIC, &p->deadline);
    p->deadline.tv_sec += SYNC_WAIT_MS / 1000;
    watch_statuses(p);
}

#define MAX_OPS 18

struct txn_parts {
    char keys[MAX_OPS][SYNC_MAX_KEY_LEN];
    char *values[MAX_OPS];
    struct etcd_compare compares[MAX_OPS];
    struct etcd_op ops[MAX_OPS];
    size_t n;
};

static int add_put(struct txn_parts *t, const char *key, char *value, int64_t compare)
{
    if (t->n >= MAX_OPS || !value) {
        free(value);
        return -ENOMEM;
    }
    snprintf(t->keys[t->n], SYNC_MAX_KEY_LEN, "%s", key);
    t->values[t->n] = value;
    t->compares[t->n] = (struct etcd_compare){t->keys[t->n], strlen(key), compare};
    t->ops[t->n] =
        (struct etcd_op){ETCD_OP_PUT, t->keys[t->n], strlen(key), value, strlen(value), 0};
    t->n++;
    return 0;
}

static void txn_parts_clear(struct txn_parts *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->values[i]);
    t->n = 0;
}

/* One certificate's or trust list's put (value NULL: the key or the value could not be made),
 * and its words in what ("certificate 'proxy', trust list 'peers'"). */
static int put_value(struct cluster_sync *sync, struct txn_parts *t, const char *kind,
                     const char *name, char *value, const char *key, char *what, size_t what_len,
                     size_t *used, char *err, size_t err_len)
{
    int n;

    if (!value) {
        if (!*err)
            snprintf(err, err_len,
                     "%s '%s' cannot be put in the store (name too long, or out "
                     "of memory)",
                     kind, name);
        return -ENOMEM;
    }
    n = snprintf(what + *used, what_len - *used, "%s%s '%s'", *used ? ", " : "", kind, name);
    *used += n > 0 && (size_t)n < what_len - *used ? (size_t)n : 0;
    return add_put(t, key, value, sync_known_revision(sync, key));
}

static int build_txn(struct cluster_sync *sync, const struct apply_publication *publication,
                     struct txn_parts *t, char *what, size_t what_len, char *err, size_t err_len)
{
    char key[SYNC_MAX_KEY_LEN];
    static struct spec_policy policy;
    size_t used = 0;
    int r = 0;

    what[0] = '\0';
    for (size_t i = 0; r == 0 && i < publication->n_certs; i++) {
        const struct apply_published_cert *cert = &publication->certs[i];
        const char *node = sync_is_node_cert(cert->name) ? sync->node : NULL;
        char *value = NULL;

        if (spec_key_cert(key, sizeof(key), sync->prefix, node, cert->name) >= 0)
            value = sync_encode_cert(sync, key, cert->name, cert->removed ? NULL : cert->cert_pem,
                                     cert->cert_len, cert->key_pem, cert->key_len, cert->generation,
                                     cert->origin, err, err_len);
        r = put_value(sync, t, "certificate", cert->name, value, key, what, what_len, &used, err,
                      err_len);
    }
    for (size_t i = 0; r == 0 && i < publication->n_trust; i++) {
        const struct apply_published_trust *trust = &publication->trust[i];
        char *value = NULL;

        if (spec_key_trust(key, sizeof(key), sync->prefix, trust->list) >= 0)
            value = sync_encode_cert(sync, key, trust->list, trust->pem, trust->len, NULL, 0, 0,
                                     "trust list", err, err_len);
        r = put_value(sync, t, "trust list", trust->list, value, key, what, what_len, &used, err,
                      err_len);
    }
    if (r == 0 && publication->policy) {
        snprintf(key, sizeof(key), "%sspec/policy", sync->prefix);
        r = sync_policy_of(sync, key, publication->policy, &policy, err, err_len);
        if (r == 0)
            r = add_put(t, key, spec_policy_encode(&policy), sync_known_revision(sync, key));
        snprintf(what + used, what_len - used, "%sthe policy", used ? " and " : "");
    }
    if (r < 0 && !*err)
        snprintf(err, err_len, "too many changes for one transaction, or out of memory");
    return r;
}

int cluster_sync_publish(struct agent *agent, const struct apply_publication *publication,
                         void (*done)(void *data, int exit_status, json_t *reply), void *data)
{
    struct cluster_sync *sync = sync_of(agent);
    static struct txn_parts txn;
    struct sync_publication *p;
    char err[512] = "", message[1024];
    json_t *request;

    if (!sync || sync->state == SYNC_NOT_INITIALISED ||
        (publication->n_certs == 0 && !publication->policy && publication->n_trust == 0))
        return 1; /* this node's alone, or nothing that the store keeps changes */
    if (sync->state != SYNC_INITIALISED) {
        sync_converge_now(sync); /* read again now: the next try may find it readable */
        snprintf(message, sizeof(message),
                 "%s: certificates and policy cannot change now; services keep serving the "
                 "current configuration",
                 sync->state_error);
        sync_answer_later(
            agent, done, data, 1,
            sync_refusal(sync->state == SYNC_BROKEN ? "failed" : "cluster_unavailable", message));
        return 0;
    }
    /* The monitor's view may be up to a poll old (an election a moment ago): the store itself
     * decides, within the client's deadline; without quorum the transaction fails (every member
     * answers 503, or none answers) and the change is refused as unavailable. */
    p = calloc(1, sizeof(*p));
    if (!p || build_txn(sync, publication, &txn, p->what, sizeof(p->what), err, sizeof(err)) < 0) {
        txn_parts_clear(&txn);
        free(p);
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("failed", *err ? err : "out of memory"));
        return 0;
    }
    request = etcd_txn_request(txn.compares, txn.n, txn.ops, txn.n, NULL, 0);
    txn_parts_clear(&txn);
    p->sync = sync;
    p->done = done;
    p->data = data;
    p->timer = evtimer_new(agent->base, on_poll, p);
    p->next = sync->publications;
    sync->publications = p;
    p->call = request && p->timer ? etcd_call(sync->client, "/v3/kv/txn", request, on_txn, p)
                                  : (json_decref(request), NULL);
    if (!p->call) {
        /* Answered later all the same: the caller must never be called back inside. */
        publication_free(p);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
    }
    return 0;
}

void sync_publications_stop(struct cluster_sync *sync)
{
    while (sync->publications) {
        struct sync_publication *p = sync->publications;
        char message[256];

        if (p->revision)
            snprintf(message, sizeof(message),
                     "certvisord is stopping: the change is published (revision %" PRId64
                     ") but not every node's outcome is known",
                     p->revision);
        else
            snprintf(message, sizeof(message),
                     "certvisord is stopping: the change was not published");
        publication_answer(p, 1, sync_refusal("shutting_down", message));
    }
}
