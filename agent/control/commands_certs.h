/* The handlers of the certificate and policy commands (the "cluster ..." rows of the table). */
#ifndef CERTVISOR_COMMANDS_CERTS_H
#define CERTVISOR_COMMANDS_CERTS_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

struct apply_request;

/*
 * Hands a change to the apply pipeline; the connection gets the answer when
 * it is done (options: "dry_run"). The audit log names the caller's uid.
 */
void commands_submit_change(struct agent *agent, struct control_conn *conn,
                            struct apply_request *request, json_t *options);

void handle_cluster_certificate_list(struct agent *agent, struct control_conn *conn, json_t *args,
                                     json_t *options);
void handle_cluster_certificate_show(struct agent *agent, struct control_conn *conn, json_t *args,
                                     json_t *options);
void handle_cluster_certificate_ca(struct agent *agent, struct control_conn *conn, json_t *args,
                                   json_t *options);
void handle_cluster_certificate_set(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options);
void handle_cluster_certificate_rotate(struct agent *agent, struct control_conn *conn, json_t *args,
                                       json_t *options);
void handle_cluster_certificate_delete(struct agent *agent, struct control_conn *conn, json_t *args,
                                       json_t *options);
void handle_cluster_certificate_csr(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options);
void handle_cluster_config(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options);
void handle_cluster_config_show(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options);

#endif
