/* Rendering the database list (lib/db_config.h) for the services that serve databases. */
#ifndef CERTVISOR_RENDER_DATABASES_H
#define CERTVISOR_RENDER_DATABASES_H

#include "policy.h"
#include "render_files.h"

#include <stddef.h>

/*
 * Renders in's databases for service: the operator's settings, with the
 * files each needs resolved from the store (the shard's client certificate
 * data_internode_encryption and the cluster CA; the client_trust
 * certificate). Returns 0 with malloc'd text, or a negative error with a
 * message naming the database and the fix.
 */
int render_databases_text(const struct render_inputs *in, const char *service, char **ret_text,
                          char *err, size_t err_len);

/*
 * Renders, for the syncer, the databases that are replicas of another
 * cluster's (replica_of): each with its shard and its replica_ settings, the
 * file its source is verified against resolved from the store or the trust
 * lists (server_cert), and without its own clients' settings. Returns 0 with
 * malloc'd text, or a negative error with a message naming the database.
 */
int render_replicas_text(const struct render_inputs *in, const char *service, char **ret_text,
                         char *err, size_t err_len);

/*
 * Checks a rendered list the way the proxy (or the syncer) will load it: it
 * parses, each client_ca_file and replica_ca_file holds certificates (or is
 * nobody, the file an empty trust list renders to: it trusts nobody), and each
 * shard TLS client context builds. Returns 0, or CV_EINVALID_TLS with a reason.
 */
int render_databases_validate(const char *text, const struct policy *policy, const char *nobody,
                              char *reason, size_t reason_len);

#endif
