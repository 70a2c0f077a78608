/* The handlers of the certificate and policy commands (the "cluster ..." rows of the table). */
#ifndef CERTVISOR_COMMANDS_CERTS_H
#define CERTVISOR_COMMANDS_CERTS_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

void handle_cluster_certificate_list(struct agent *agent, struct control_conn *conn, json_t *args,
                                     json_t *options);
void handle_cluster_certificate_show(struct agent *agent, struct control_conn *conn, json_t *args,
                                     json_t *options);
void handle_cluster_certificate_ca(struct agent *agent, struct control_conn *conn, json_t *args,
                                   json_t *options);
void handle_cluster_certificate_set(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options);
void handle_cluster_config(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options);
void handle_cluster_config_show(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options);

#endif
