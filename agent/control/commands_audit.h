/* The handler of "audit": the recent changes, for operators and the REST API. */
#ifndef CERTVISOR_COMMANDS_AUDIT_H
#define CERTVISOR_COMMANDS_AUDIT_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

void handle_audit(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options);

#endif
