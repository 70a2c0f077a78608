/* The conf.d "database <name> { ... }" sections: the databases the proxy serves. */
#ifndef CERTVISOR_CONF_DATABASES_H
#define CERTVISOR_CONF_DATABASES_H

#include "conf_replicas.h"
#include "db_config.h"

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One database as the operator declared it; rendered into lib's db_config for the services. */
struct database_decl {
    char *name;
    char *listen;       /* the address the proxy binds */
    int port;           /* the endpoint's port */
    char *advertise;    /* the host clients are told (sentinel); NULL: worked out when rendering */
    char *shard;        /* "host:port" of the Redis shard */
    bool shard_tls;     /* the proxy reaches the shard over TLS, with data_internode_encryption */
    bool multiplex_off; /* multiplex = no: each client gets a shard connection of its own */
    uint64_t commands_allowed; /* allow_commands: administrative commands let through (a mask) */
    enum db_tls_mode tls_mode;
    enum tls_verify client_auth; /* client certificates */
    /*
     * What client certificates must chain to (or be): a trust reference
     * (agent/pki/trust.h): "mtls_trusted_ca", "cluster_ca", a trust list's name, or an
     * absolute path. authentication_ssl_client_certs sets it (and client_auth).
     */
    char *client_trust;
    struct replica_decl *replica; /* replica_of: a replica of another cluster's database; or NULL */
    char *source;                 /* "file:line", for messages */
};

extern cfg_opt_t conf_database_options[]; /* "database <name> { ... }", titled, multi */

/*
 * Adds the database of a parsed section from path. Returns 0, or CV_ECONFIG
 * with "path:line: database 'name': problem" in err (a bad value, a missing
 * port or shard, a name or an endpoint used twice).
 */
int conf_database_add(cfg_t *section, const char *path, struct database_decl **dbs, size_t *n,
                      char *err, size_t err_len);

void database_decls_free(struct database_decl *dbs, size_t n);

#endif
