/*
 * Nodes going (issue 17, sync.h): `certvisorctl cluster leave` on the node that leaves, and
 * `cluster remove <node>` on any other node for one that is gone for good. Both read etcd's
 * members first, then run a short list of store calls in order:
 *
 *   remove: the node's etcd member removed, then its registry entry (nodes/), its status and
 *           its own certificates (spec/nodecerts/<node>/) deleted;
 *   leave:  the same records deleted first, then this node's member removed (the last call
 *           this node's member answers); then, locally, the membership file and the data key
 *           removed and the configuration reloaded: the node is on its own again (store
 *           local), serving the certificates it has, and its etcd member stops.
 *
 * The voters follow the nodes (membership_target_voters()): when a voter goes and a learner
 * waits, the learner is promoted.
 */
#include "sync_impl.h"

#include "apply.h"
#include "config.h"
#include "fsutil.h"
#include "join_wire.h"
#include "log.h"
#include "monitor.h"
#include "offload.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMBERSHIP_MAX_CALLS 8

int membership_target_voters(size_t nodes)
{
    return nodes >= 5 ? 5 : nodes >= 3 ? 3 : (int)nodes;
}

struct store_call {
    const char *path;
    json_t *request;
    const char *what; /* for the log when it fails */
    bool required;    /* its failure ends the operation */
};

struct sync_membership_op {
    struct cluster_sync *sync;
    cluster_sync_done_fn done; /* NULL once its caller went away */
    void *data;
    bool leave;
    char node[SPEC_MAX_NAME];
    char who[128];
    struct etcd_call *call;
    struct store_call calls[MEMBERSHIP_MAX_CALLS];
    size_t n_calls, next;
    char notes[600]; /* what failed but did not end it */
};

static void op_free(struct sync_membership_op *op)
{
    if (op->sync->membership == op)
        op->sync->membership = NULL;
    if (op->call)
        etcd_call_cancel(op->call);
    for (size_t i = 0; i < op->n_calls; i++)
        json_decref(op->calls[i].request);
    free(op);
}

static void answer(struct sync_membership_op *op, int exit_status, json_t *reply)
{
    cluster_sync_done_fn done = op->done;
    void *data = op->data;

    op_free(op);
    sync_deliver(done, data, exit_status, reply);
}

static void refuse(struct sync_membership_op *op, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct sync_membership_op *op, const char *reason, const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    answer(op, 1, sync_refusal(reason, message));
}

static void add_call(struct sync_membership_op *op, const char *path, json_t *request,
                     const char *what, bool required)
{
    if (op->n_calls < MEMBERSHIP_MAX_CALLS)
        op->calls[op->n_calls++] = (struct store_call){path, request, what, required};
    else
        json_decref(request);
}

static json_t *delete_request(const struct cluster_sync *sync, const char *what, const char *node,
                              bool prefix)
{
    char key[SYNC_MAX_KEY_LEN], end[SYNC_MAX_KEY_LEN];
    size_t len =
        (size_t)snprintf(key, sizeof(key), "%s%s%s%s", sync->prefix, what, node, prefix ? "/" : "");

    return etcd_delete_request(key, len, prefix ? end : NULL,
                               prefix ? etcd_prefix_end(key, len, end) : 0);
}

/* --- the local half of a leave --- */

struct leave_job {
    char etcd_data[PATH_MAX];
};

static void empty_etcd_data(void *data)
{
    struct leave_job *job = data;

    fs_remove_tree(job->etcd_data); /* what stays is emptied by the next join */
}

static void free_job(void *data, bool cancelled)
{
    (void)cancelled;
    free(data);
}

/* After the reload that stopped the member: its data is another cluster's now. */
static void on_left(void *data, int exit_status, json_t *reply)
{
    struct agent *agent = data;
    struct leave_job *job = calloc(1, sizeof(*job));

    (void)exit_status;
    json_decref(reply);
    if (!job)
        return;
    sync_etcd_data_path(agent, job->etcd_data, sizeof(job->etcd_data));
    if (offload_submit(agent->offload, empty_etcd_data, free_job, job) < 0)
        free(job);
}

static void leave_locally(struct sync_membership_op *op)
{
    struct agent *agent = op->sync->agent;
    char path[PATH_MAX], message[900];
    struct apply_request *reload;
    const char *node = op->node;
    char cluster[CLUSTER_NAME_MAX + 1];

    snprintf(cluster, sizeof(cluster), "%s", agent->config->cluster.name);
    conf_cluster_membership_path(agent->config->state_dir, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_error("Cluster: leaving: cannot remove %s: %s", path, strerror(errno));
    sync_data_key_path(agent, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_error("Cluster: leaving: cannot remove %s: %s", path, strerror(errno));
    log_notice("Cluster: node '%s' left cluster '%s'%s%s", node, cluster, op->notes[0] ? ": " : "",
               op->notes);
    snprintf(message, sizeof(message),
             "node '%s' left cluster '%s': this node is on its own again (store local), with "
             "the certificates it has%s%s",
             node, cluster, op->notes[0] ? "; " : "", op->notes);
    answer(op, 0,
           json_pack("{s:i, s:s, s:s, s:s}", "exit", 0, "node", node, "cluster", cluster, "message",
                     message));
    /* The cluster section comes from certvisor.conf again: the member stops, sync ends. */
    reload = apply_config();
    if (reload)
        apply_submit(agent, reload, "cluster leave", false, on_left, agent);
}

/* --- running the calls --- */

static void next_call(struct sync_membership_op *op);

static void on_call(void *data, const struct etcd_result *result)
{
    struct sync_membership_op *op = data;
    struct store_call *c = &op->calls[op->next - 1];
    json_t *body = NULL;
    const char *error = NULL;

    op->call = NULL;
    if (!result->error && result->http_status != 200) {
        body = json_loadb(result->body, result->body_len, 0, NULL);
        error = json_string_value(json_object_get(body, "error"))
                    ?: json_string_value(json_object_get(body, "message"));
    }
    if (result->error || result->http_status != 200) {
        char why[400];

        snprintf(why, sizeof(why), "%s failed: %.300s", c->what,
                 result->error ? result->message
                 : error       ? error
                               : "etcd refused it");
        json_decref(body);
        if (c->required) {
            refuse(op, result->error ? "cluster_unavailable" : "failed",
                   "%s: nothing else was changed", why);
            return;
        }
        log_warning("Cluster: %s", why);
        snprintf(op->notes + strlen(op->notes), sizeof(op->notes) - strlen(op->notes), "%s%s",
                 op->notes[0] ? "; " : "", why);
    }
    json_decref(body);
    next_call(op);
}

static void next_call(struct sync_membership_op *op)
{
    struct store_call *c;

    if (op->next == op->n_calls) {
        if (op->leave) {
            leave_locally(op);
            return;
        }
        log_notice("Cluster: node '%s' removed by %s%s%s", op->node, op->who,
                   op->notes[0] ? ": " : "", op->notes);
        answer(op, 0,
               json_pack("{s:i, s:s, s:s}", "exit", 0, "node", op->node, "notes", op->notes));
        return;
    }
    c = &op->calls[op->next++];
    op->call = etcd_call(op->sync->client, c->path, c->request, on_call, op);
    c->request = NULL; /* taken */
    if (!op->call)
        refuse(op, "failed", "out of memory");
}

/* --- planning from etcd's members --- */

static void plan(struct sync_membership_op *op, const struct etcd_members *members)
{
    const struct etcd_member *gone = NULL, *learner;
    size_t voters = etcd_members_voters(members, &learner);

    for (size_t i = 0; i < members->n; i++)
        if (strcmp(members->members[i].name, op->node) == 0)
            gone = &members->members[i];
    if (op->leave && !gone) /* removed by another node already: only the local half is left */
        snprintf(op->notes, sizeof(op->notes), "its etcd member had been removed already");
    else if (!gone)
        log_notice("Cluster: removing '%s', which has no etcd member: its records only", op->node);
    if (gone && !gone->learner && voters == 1) {
        refuse(op, "conflict",
               "'%s' is the cluster's only voting etcd member: it cannot go while other nodes "
               "depend on it (remove them first)",
               op->node);
        return;
    }
    if (!op->leave && gone)
        add_call(op, "/v3/cluster/member/remove", etcd_member_id_request(gone->id),
                 "removing its etcd member", true);
    add_call(op, "/v3/kv/deleterange", delete_request(op->sync, "nodes/", op->node, false),
             "deleting its registry entry", false);
    add_call(op, "/v3/kv/deleterange", delete_request(op->sync, "status/", op->node, false),
             "deleting its status", false);
    add_call(op, "/v3/kv/deleterange", delete_request(op->sync, "spec/nodecerts/", op->node, true),
             "deleting its own certificates from the store", false);
    /* A voter going with a learner waiting: the learner votes from now on. */
    if (gone && !gone->learner && learner &&
        (int)voters - 1 < membership_target_voters(members->n - 1))
        add_call(op, "/v3/cluster/member/promote", etcd_member_id_request(learner->id),
                 "promoting the waiting learner", false);
    if (op->leave && gone)
        add_call(op, "/v3/cluster/member/remove", etcd_member_id_request(gone->id),
                 "removing this node's etcd member", true);
    next_call(op);
}

static void on_members(void *data, const struct etcd_result *result)
{
    struct sync_membership_op *op = data;
    struct etcd_members members;
    struct etcd_error etcd_err;
    char err[512];

    op->call = NULL;
    if (result->error) {
        refuse(op, "cluster_unavailable",
               "the cluster's store did not answer (%s): nothing was changed", result->message);
        return;
    }
    if (etcd_parse_members(result->body, result->body_len, &members, &etcd_err, err, sizeof(err)) <
        0) {
        refuse(op, "failed", "etcd's member list: %s",
               etcd_err.message[0] ? etcd_err.message : err);
        return;
    }
    plan(op, &members);
}

/* --- the commands --- */

static void start(struct agent *agent, bool leave, const char *node, const char *who,
                  cluster_sync_done_fn done, void *data)
{
    struct cluster_sync *sync = sync_of(agent);
    struct sync_membership_op *op;

    if (!sync || sync->state != SYNC_INITIALISED) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal(sync ? "cluster_unavailable" : "not_a_cluster",
                                       sync ? sync_unusable_why(sync)
                                            : "this node's store is local: it is in no cluster"));
        return;
    }
    if (sync->membership) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("busy", "a node is being removed already"));
        return;
    }
    op = calloc(1, sizeof(*op));
    if (!op) {
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    op->sync = sync;
    op->done = done;
    op->data = data;
    op->leave = leave;
    snprintf(op->node, sizeof(op->node), "%s", node);
    snprintf(op->who, sizeof(op->who), "%s", who ? who : "?");
    op->call = etcd_call(sync->client, "/v3/cluster/member/list", json_object(), on_members, op);
    if (!op->call) {
        free(op);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    sync->membership = op;
}

void cluster_sync_leave(struct agent *agent, const char *who, cluster_sync_done_fn done, void *data)
{
    const struct cluster_settings *cluster = &agent->config->cluster;

    if (cluster->store == CLUSTER_STORE_ETCD && !cluster->joined) {
        sync_answer_later(
            agent, done, data, 1,
            sync_refusal("conflict",
                         "this node's cluster membership is in certvisor.conf's cluster section, "
                         "not from 'cluster join': remove the section (or set store = local) and "
                         "reload; 'certvisorctl cluster remove <node>' on another node removes "
                         "it from the cluster"));
        return;
    }
    start(agent, true, cluster->node, who, done, data);
}

void cluster_sync_remove(struct agent *agent, const char *node, const char *who,
                         cluster_sync_done_fn done, void *data)
{
    struct cluster_sync *sync = sync_of(agent);
    char message[300];

    if (!join_name_valid(node)) {
        sync_answer_later(agent, done, data, 2,
                          json_pack("{s:i, s:s, s:s}", "exit", 2, "reason", "usage", "error",
                                    "a node's name is 1 to 63 letters, digits, '-', '_' or '.'"));
        return;
    }
    if (sync && strcmp(node, sync->node) == 0) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("conflict", "this is the node itself: to take it out of "
                                                   "the cluster, run 'certvisorctl cluster "
                                                   "leave' here"));
        return;
    }
    if (sync && sync->agent->cluster && cluster_monitor_health(sync->agent->cluster)->alive_known &&
        sync_node_alive(sync, node)) {
        snprintf(message, sizeof(message),
                 "node '%s' is alive: run 'certvisorctl cluster leave' on it (remove is for a "
                 "node that is gone)",
                 node);
        sync_answer_later(agent, done, data, 1, sync_refusal("conflict", message));
        return;
    }
    start(agent, false, node, who, done, data);
}

void cluster_sync_membership_forget(struct agent *agent, void *data)
{
    struct cluster_sync *sync = sync_of(agent);

    if (sync && sync->membership && sync->membership->data == data)
        sync->membership->done = NULL;
}

void sync_membership_stop(struct cluster_sync *sync)
{
    if (sync->membership)
        refuse(sync->membership, "shutting_down",
               "certvisord is stopping: the node's removal may not have completed");
}
