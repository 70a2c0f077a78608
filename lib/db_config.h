/* The rendered database list: the file certvisord writes for the proxy and sentinel_service. */
#ifndef CERTVISOR_DB_CONFIG_H
#define CERTVISOR_DB_CONFIG_H

#include "tls_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a database's endpoint speaks to its clients. */
enum db_tls_mode {
    DB_TLS_ENABLED,     /* TLS only */
    DB_TLS_DISABLED,    /* plain only */
    DB_TLS_REPLICA_SSL, /* plain for clients; TLS (with a client certificate) for replication */
};

/*
 * One database, as the proxy serves it. The file is text: a "[name]" line
 * opens each database, then "key = value" lines in this order:
 *   listen, port, advertise, shard, shard_tls, shard_cert_file, shard_key_file,
 *   shard_ca_file, tls_mode, client_verify, client_ca_file, multiplex, allow_commands,
 *   replica_source,
 *   replica_ca_file, replica_server_name, replica_verify_hostname,
 *   replica_local_port
 * Optional values are omitted when unset; the replica_ lines only come with
 * replica_source. Databases come in name order, so the same list always renders
 * to the same bytes.
 */
struct db_config {
    char *name;            /* [a-z0-9_-], at most 63 characters */
    char *listen;          /* the address the proxy binds: "0.0.0.0", "::", "127.0.0.1" */
    int port;              /* the endpoint's port */
    char *advertise;       /* the host clients are told to use (sentinel answers) */
    char *shard;           /* the Redis shard's host, as "host:port" ("[::1]:port" for IPv6) */
    bool shard_tls;        /* the proxy reaches the shard over TLS, as a client: */
    char *shard_cert_file; /* its client certificate (data_internode_encryption) */
    char *shard_key_file;
    char *shard_ca_file; /* the CAs the shard's certificate is verified against */
    enum db_tls_mode tls_mode;
    enum tls_verify client_verify; /* client certificates (TLS_VERIFY_NONE: not asked for) */
    char *client_ca_file;          /* the CAs or certificates client certificates must chain to */
    /*
     * The proxy carries clients' requests on connections shared among them
     * ("multiplex = yes", the default, not rendered); "multiplex = no" gives
     * every client a shard connection of its own.
     */
    bool multiplex_off;
    /*
     * The administrative commands (lib/admin_commands.h) the endpoint lets through anyway, as
     * a mask of the table's entries: "allow_commands = config set, debug", rendered only when
     * not 0.
     */
    uint64_t commands_allowed;
    /*
     * A replica of a database on another cluster (Replica Of), as the syncer
     * carries it; replica_source NULL for any other database.
     */
    char *replica_source;      /* the source's endpoint (its proxy), "host:port" */
    char *replica_ca_file;     /* what the source's certificate must chain to (or be) */
    char *replica_server_name; /* sent as SNI; checked when replica_verify_hostname; NULL: none */
    bool replica_verify_hostname;
    int replica_local_port; /* the syncer's plain endpoint on 127.0.0.1 for the shard; 0: any */
};

struct db_list {
    struct db_config *dbs;
    size_t n;
};

/* Renders the list as text (malloc'd). NULL when out of memory. */
char *db_list_render(const struct db_list *list);

/*
 * Parses rendered text into list (which the caller frees with
 * db_list_clear). Returns 0, or CV_EINVALID_TLS with "line N: problem" in
 * err: a key outside a database, an unknown key, a bad value, a database
 * without port or shard, a name or port used twice, shard_tls without its
 * files, client_verify without client_ca_file, a word of allow_commands that is not an
 * administrative command (the message lists them), replica_source without
 * replica_ca_file (or another replica_ setting without replica_source).
 */
int db_list_parse(const char *text, struct db_list *list, char *err, size_t err_len);

/* Reads and parses a file (at most 1 MiB). Errors name the path. */
int db_list_read(const char *path, struct db_list *list, char *err, size_t err_len);

void db_list_clear(struct db_list *list);

/* True when name is a valid database name: [a-z0-9_-], 1 to 63 characters. */
bool db_config_name_valid(const char *name);

/* Returns the database called name, or NULL. */
const struct db_config *db_list_find(const struct db_list *list, const char *name);

/* "enabled", "disabled", "replica_ssl", and back. parse returns 0 or -EINVAL. */
const char *db_tls_mode_name(enum db_tls_mode mode);
int db_tls_mode_parse(const char *text, enum db_tls_mode *ret_mode);

/*
 * Splits "host:port" or "[v6]:port" into host (written into host_buf) and
 * port. Returns 0 or -EINVAL.
 */
int db_split_address(const char *address, char *host_buf, size_t host_len, int *ret_port);

#endif
