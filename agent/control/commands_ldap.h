/* The handlers of "cluster ldap ...": sign-in with directory accounts. */
#ifndef CERTVISOR_COMMANDS_LDAP_H
#define CERTVISOR_COMMANDS_LDAP_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

/*
 * {"exit": 0, "settings": {"authentication", "uris", "bind_dn", "bind_password" ("(set)" or
 * ""), "user_search_base", ..., "cache_seconds", "timeout"}, "certificates": {"ldap_client":
 * bool, "ldap_server_ca": bool}}: the policy's ldap_* settings, named without their prefix.
 */
void handle_cluster_ldap_show(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options);

/* "<name> <value>..." pairs (with or without the ldap_ prefix), through the apply pipeline. */
void handle_cluster_ldap_config(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options);

/*
 * Signs <user> in against the directory with options.password, on a worker, whatever the
 * setting of ldap_authentication: {"exit": 0, "user", "dn", "groups", "role"} or
 * {"exit": 1, "error", "reason": "ldap_denied"|"directory_unavailable"}. No lock-out counts it.
 */
void handle_cluster_ldap_test(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options);

#endif
