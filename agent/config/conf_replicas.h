/* The "replica_of { ... }" part of a conf.d database section: Replica Of from another cluster. */
#ifndef CERTVISOR_CONF_REPLICAS_H
#define CERTVISOR_CONF_REPLICAS_H

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * The database is a replica of a database on another cluster: the syncer
 * connects to source (that cluster's proxy endpoint) over TLS with the syncer
 * certificate, verifies it against server_cert, and the local shard replicates
 * from the syncer.
 */
struct replica_decl {
    char *source;      /* "host:port" */
    char *server_cert; /* a trust reference (agent/pki/trust.h); default: the list named after the
                          db */
    bool verify_hostname;
    char *server_name; /* SNI, and the name checked with verify_hostname; NULL: source's host */
    int local_port;    /* the syncer's plain endpoint on 127.0.0.1; 0: any free port */
};

extern cfg_opt_t conf_replica_options[]; /* inside "database <name> { ... }", CFGF_MULTI */

/*
 * Reads the replica_of section of the database called db_name (section may be
 * NULL: not a replica, *ret_decl NULL). Returns 0, or -EINVAL with the problem
 * in reason ("replica_of: source is required ..."), or -ENOMEM.
 */
int conf_replica_from_cfg(cfg_t *database, const char *db_name, struct replica_decl **ret_decl,
                          char *reason, size_t reason_len);

void replica_decl_free(struct replica_decl *decl);

#endif
