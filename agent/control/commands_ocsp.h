/* The handlers of "cluster ocsp ...": OCSP stapling's settings, status and test. */
#ifndef CERTVISOR_COMMANDS_OCSP_H
#define CERTVISOR_COMMANDS_OCSP_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

/* {"exit": 0, "config": {ocsp_functionality (bool), responder_url, query_frequency,
 * response_timeout, recovery_frequency, recovery_max_tries (numbers)}}: the REST API's shape. */
void handle_cluster_ocsp_config(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options);

/* enable|disable: ocsp_functionality, through the apply pipeline like any policy change. */
void handle_cluster_ocsp_config_proxy(struct agent *agent, struct control_conn *conn, json_t *args,
                                      json_t *options);

/* One or more "<name> <value>" pairs, the names without their ocsp_ prefix. */
void handle_cluster_ocsp_config_set(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options);

/* {"exit": 0, "status": stapling_status()} */
void handle_cluster_ocsp_status(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options);

/* Asks now: {"exit": 0, "status"} or {"exit": 1, "error", "reason", "status"}. */
void handle_cluster_ocsp_test(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options);

#endif
