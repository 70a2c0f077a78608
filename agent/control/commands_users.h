/* The handlers of the "user ..." commands: the REST API's users. */
#ifndef CERTVISOR_COMMANDS_USERS_H
#define CERTVISOR_COMMANDS_USERS_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

void handle_user_list(struct agent *agent, struct control_conn *conn, json_t *args,
                      json_t *options);
void handle_user_add(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options);
void handle_user_passwd(struct agent *agent, struct control_conn *conn, json_t *args,
                        json_t *options);
void handle_user_subject(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options);
void handle_user_delete(struct agent *agent, struct control_conn *conn, json_t *args,
                        json_t *options);

#endif
