/* The handlers behind the control protocol's command table. */
#ifndef CERTVISOR_COMMANDS_H
#define CERTVISOR_COMMANDS_H

#include "agent.h"
#include "control.h"
#include "control_proto.h"

#include <jansson.h>

/*
 * Runs a command for a connection. The handler answers with control_reply()
 * (at once, or when the operation completes). args is an array of strings;
 * options is an object or NULL.
 */
void commands_dispatch(struct agent *agent, struct control_conn *conn, enum control_command command,
                       json_t *args, json_t *options);

#endif
