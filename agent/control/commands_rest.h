/* The handlers of the commands the REST API needs beyond certvisorctl's (several certificates). */
#ifndef CERTVISOR_COMMANDS_REST_H
#define CERTVISOR_COMMANDS_REST_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

/*
 * "cluster certificate set-many": options {"certificates": [{"name",
 * "certificate", "key"?}, ...]} (and "dry_run"), applied all or none through
 * apply_certificates().
 */
void handle_cluster_certificate_set_many(struct agent *agent, struct control_conn *conn,
                                         json_t *args, json_t *options);

#endif
