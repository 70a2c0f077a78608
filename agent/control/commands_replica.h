/* The handlers of the "replica ..." commands: Replica Of links and the trust lists. */
#ifndef CERTVISOR_COMMANDS_REPLICA_H
#define CERTVISOR_COMMANDS_REPLICA_H

#include "agent.h"
#include "control.h"

#include <jansson.h>

/*
 * "replica status [<database>...]": for each replica database, its link as
 * the syncer reports it (CERTVISOR_STATS= "links"); for each source database
 * (replica_ssl, or client certificates checked against a trust list), what the
 * proxy reports of the replication clients it refused.
 */
void handle_replica_status(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options);

/* "replica trust list [<list>...]": each list's certificates and the databases that use it. */
void handle_replica_trust_list(struct agent *agent, struct control_conn *conn, json_t *args,
                               json_t *options);

/* "replica trust add|remove <list> ...": options "certificate" (PEM) or "fingerprint". */
void handle_replica_trust_add(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options);
void handle_replica_trust_remove(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options);

#endif
