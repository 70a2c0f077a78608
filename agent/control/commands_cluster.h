/* The cluster commands that are about the store itself (issues 16, 17): status, init, token. */
#ifndef CERTVISOR_COMMANDS_CLUSTER_H
#define CERTVISOR_COMMANDS_CLUSTER_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

/*
 * "cluster status": the store (local, or etcd: reachable, leader, revision, the member that
 * answered, seconds since the last answer with a leader, the last error) and the nodes alive,
 * from the cluster monitor's last poll (never a call to etcd while the client waits).
 */
void handle_cluster_status(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options);

/* What cluster status answers (without "exit"), for the metrics too: a new object, or NULL
 * when out of memory. */
json_t *commands_cluster_json(const struct agent *agent);

/* "cluster init": this node's certificates, CA and policy into the empty etcd store
 * (agent/sync/init.c); answered once the store took them, or why not. */
void handle_cluster_init(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options);

/* "cluster token create|list|delete": join tokens in the cluster's store (agent/sync/tokens.c).
 * Options of create: ttl ("1h"), description, peer ("address:port" the printed command names). */
void handle_cluster_token_create(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options);
void handle_cluster_token_list(struct agent *agent, struct control_conn *conn, json_t *args,
                               json_t *options);
void handle_cluster_token_delete(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options);

void handle_cluster_join(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options);
void handle_cluster_admit(struct agent *agent, struct control_conn *conn, json_t *args,
                          json_t *options);

void handle_cluster_leave(struct agent *agent, struct control_conn *conn, json_t *args,
                          json_t *options);
void handle_cluster_remove(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options);

#endif
