/*
 * A node of a cluster whose store is etcd (issue 16): publish, then converge.
 *
 * - Converge (converge.c): the node reads the cluster's desired state (spec/, meta) and
 *   applies what differs from what it serves through the one apply pipeline, as changes the
 *   store delivered; then it writes its outcome to status/<node>. It reads again whenever its
 *   watch says spec/ changed, and retries a failed apply with backoff.
 * - Publish (publish.c): a change validated and staged on this node is published as one etcd
 *   transaction that holds only if every key it replaces is still the revision this node last
 *   applied (a lost race is a conflict, never an overwrite); the callers wait until every
 *   node reports it applied, failed, or is down.
 * - Init (init.c): certvisorctl cluster init puts a single node's certificates and policy into
 *   an empty store.
 *
 * All of it on the agent's loop, with the etcd client's deadlines; the only slow step (writing
 * a new data key, fsync) runs on an offload worker.
 */
#ifndef CERTVISOR_SYNC_H
#define CERTVISOR_SYNC_H

#include "agent.h"

#include <jansson.h>

/* How long the node that took a change waits for the others before answering 409. */
#define SYNC_WAIT_MS 15000

/* Starts converging (agent->cluster must be running). Returns 0 or a negative errno. */
int cluster_sync_start(struct agent *agent);

/* Stops: callers still waiting for the nodes are answered that the agent is stopping. */
void cluster_sync_stop(struct agent *agent);

/* agent_hooks.publish (agent.h). */
int cluster_sync_publish(struct agent *agent, const struct apply_publication *publication,
                         void (*done)(void *data, int exit_status, json_t *reply), void *data);

typedef void (*cluster_sync_done_fn)(void *data, int exit_status, json_t *reply);

/* certvisorctl cluster init: done once, later, with {exit, ...}. */
void cluster_sync_init(struct agent *agent, cluster_sync_done_fn done, void *data);

/* Nobody waits for the init answer with this data any more. */
void cluster_sync_forget(struct agent *agent, void *data);

/*
 * Join tokens (tokens.c; issue 17), each at join/<id> on a lease of ttl seconds:
 * create answers {exit, token, id, ca_cert_hash, ttl, expires, join_command, description};
 * peer is the "address:port" the join command names (NULL: this node's cluster address and the
 * REST API's port, 9443); who is recorded as created_by. list answers {exit, items: [{id,
 * created, expires, ttl_left, created_by, description}], unreadable, count}; delete {exit, id}.
 * Refused (exit 1, with reason) when the store is local, not initialised or without quorum.
 */
void cluster_sync_token_create(struct agent *agent, long ttl, const char *description,
                               const char *peer, const char *who, cluster_sync_done_fn done,
                               void *data);
void cluster_sync_token_list(struct agent *agent, cluster_sync_done_fn done, void *data);
void cluster_sync_token_delete(struct agent *agent, const char *id, cluster_sync_done_fn done,
                               void *data);
/* Nobody waits for the token operations begun with this data any more. */
void cluster_sync_tokens_forget(struct agent *agent, void *data);

/*
 * The peer's side of a join (admit.c; issue 17): request is the joiner's JSON (join_wire.h),
 * source its address (for the log); admin: the administrator who admits it (a signed-in REST
 * admin, or root), who needs no token, else NULL and the request's token decides. Answers {"exit":
 * 0, "join": <the answer>} once the node is registered and its etcd learner added, or a refusal
 * with a reason: invalid_request, join_refused (the token), conflict, busy, cluster_unavailable,
 * not_a_cluster, failed.
 */
void cluster_sync_admit(struct agent *agent, const char *request, const char *source,
                        const char *admin, cluster_sync_done_fn done, void *data);
void cluster_sync_admit_forget(struct agent *agent, void *data);

/*
 * The joiner's side (join.c; issue 17): this node, whose store is local, joins the cluster of
 * peer ("address:port" of a node's REST API) with a join token, after checking the peer's CA
 * against ca_hash ("sha256:<hex>"). address: this node's address for the others (NULL: the
 * one it reaches the peer from); client_port and peer_port: its etcd member's. Answers once
 * the node applied the cluster's state, or a refusal naming the step that failed (what the
 * join had done is undone).
 */
struct cluster_join_args {
    const char *peer;
    const char *token;    /* or: */
    const char *user;     /* an administrator of the cluster's REST API, and */
    const char *password; /* their password (HTTP Basic to the peer, never logged) */
    const char *ca_hash;
    const char *address;
    int client_port;
    int peer_port;
};

/* Checks the arguments' forms (certvisorctl checks them before sending). 0 or -EINVAL. */
int cluster_join_check(const struct cluster_join_args *args, char *err, size_t err_len);
void cluster_join(struct agent *agent, const struct cluster_join_args *args, const char *who,
                  cluster_sync_done_fn done, void *data);
void cluster_join_forget(struct agent *agent, void *data);
/* The agent is stopping: the join under way is answered. */
void cluster_join_stop(struct agent *agent);

/*
 * Nodes going (membership.c): leave takes this node (joined with 'cluster join') out of its
 * cluster and back to a store of its own, with the certificates it has; remove takes a node
 * that is gone (not alive) out of the cluster: its etcd member, registry entry, status and own
 * certificates. A learner is promoted when a voter goes.
 */
void cluster_sync_leave(struct agent *agent, const char *who, cluster_sync_done_fn done,
                        void *data);
void cluster_sync_remove(struct agent *agent, const char *node, const char *who,
                         cluster_sync_done_fn done, void *data);
void cluster_sync_membership_forget(struct agent *agent, void *data);

/* What cluster status adds: the store's state, this node's applied revision and last error,
 * and every node's reported status (read at the last poll). */
void cluster_sync_describe(const struct agent *agent, json_t *into);

/*
 * Whether what this node answers from its own copy (certificate list, config show, trust lists)
 * may be behind the cluster's: its store is unreachable or without a leader, not read yet, or
 * unusable to it, or its last apply failed. Returns 1 with why ("the cluster's store is
 * unreachable for 12 s (...)"), or 0 (a single node, or a node in step with the store).
 */
int cluster_sync_staleness(const struct agent *agent, char *why, size_t len);

#endif
