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

/*
 * A policy change given as "<name> <value>..." pairs in args, each name mapped to its setting by
 * lookup (-1: refused as "unknown <what> setting '<name>' (<hint>)"), each setting once and each
 * value a string; usage is the command's, for a malformed list. The sub-commands of one part of
 * the policy ("cluster ldap config", "cluster ocsp config set") name settings their own way.
 */
void commands_submit_settings(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options, int (*lookup)(const char *name), const char *usage,
                              const char *what, const char *hint);

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
