/* The control protocol shared by certvisord and its clients: the command table and framing. */
#ifndef CERTVISOR_CONTROL_PROTO_H
#define CERTVISOR_CONTROL_PROTO_H

#include <jansson.h>
#include <stddef.h>

/*
 * Messages are single-line JSON objects terminated by '\n', at most
 * CONTROL_MAX_MESSAGE bytes. A request is {"command": "...", "args": [...],
 * "options": {...}}. The agent answers with one object holding "exit" (the
 * exit status certvisorctl should use) and command-specific fields, or, for
 * streaming commands, with any number of {"line": "..."} objects first.
 */
#define CONTROL_MAX_MESSAGE (1024 * 1024)

enum control_access {
    CONTROL_ACCESS_READ,  /* anyone who can connect */
    CONTROL_ACCESS_ADMIN, /* root, the agent's own user and the admin group */
};

/*
 * The one command table. Each row: an identifier, the words an operator
 * types, who may call it, usage, and a one-line summary. The agent binds a
 * handler to every row at compile time (handle_<identifier>), and
 * certvisorctl generates its help from it and matches typed words against it.
 */
#define CONTROL_COMMANDS(X)                                                                        \
    X(status, "status", CONTROL_ACCESS_READ, "status [<name>...]",                                 \
      "Show the state of the named services, or of all of them.")                                  \
    X(start, "start", CONTROL_ACCESS_ADMIN, "start <name>...|all",                                 \
      "Start services (and what they run after); return once each is ready or has failed.")        \
    X(stop, "stop", CONTROL_ACCESS_ADMIN, "stop <name>...|all",                                    \
      "Stop services; with 'all', in reverse dependency order.")                                   \
    X(restart, "restart", CONTROL_ACCESS_ADMIN, "restart <name>...|all",                           \
      "Stop then start services; return once each is ready again or has failed.")                  \
    X(reload, "reload", CONTROL_ACCESS_ADMIN, "reload [<name>...] | reload --dry-run",             \
      "Without names: re-read the configuration, restart the services whose settings changed "     \
      "and reload those whose TLS files changed. With names: reload those services.")              \
    X(pid, "pid", CONTROL_ACCESS_READ, "pid [<name>...|all]",                                      \
      "Print the agent's pid, or the pids of the named services (0 when not running).")            \
    X(tail, "tail", CONTROL_ACCESS_READ, "tail [-f] [-n <lines>] <name> [stdout|stderr]",          \
      "Print the last output lines of a service; with -f, keep following it.")                     \
    X(avail, "avail", CONTROL_ACCESS_READ, "avail",                                                \
      "List the configured services and how they start.")                                          \
    X(version, "version", CONTROL_ACCESS_READ, "version", "Print the agent's version.")            \
    X(daemon_reexec, "daemon-reexec", CONTROL_ACCESS_ADMIN, "daemon-reexec",                       \
      "Execute the agent's binary again (the new one after an upgrade), keeping every service "    \
      "running with its pid; return once the new binary is ready.")                                \
    X(metrics, "metrics", CONTROL_ACCESS_READ, "metrics",                                          \
      "Print the agent's state for the metrics exporter, as JSON.")                                \
    X(cluster_certificate_list, "cluster certificate list", CONTROL_ACCESS_READ,                   \
      "cluster certificate list",                                                                  \
      "List the node's certificates: subject, issuer, names, expiry, key, origin, users.")         \
    X(cluster_certificate_show, "cluster certificate show", CONTROL_ACCESS_READ,                   \
      "cluster certificate show <name>",                                                           \
      "Show one certificate in detail, with its PEM (never its key).")                             \
    X(cluster_certificate_ca, "cluster certificate ca", CONTROL_ACCESS_READ,                       \
      "cluster certificate ca", "Print the cluster CA certificate clients verify the node with.")  \
    X(cluster_status, "cluster status", CONTROL_ACCESS_READ, "cluster status",                     \
      "Show the cluster's store (local, or etcd: reachable, leader, revision) and the nodes "      \
      "alive.")                                                                                    \
    X(cluster_init, "cluster init", CONTROL_ACCESS_ADMIN, "cluster init",                          \
      "Put this node's certificates, CA and policy into the cluster's empty etcd store (making "   \
      "the cluster's data key); from then on every node applies the cluster's changes.")           \
    X(cluster_token_create, "cluster token create", CONTROL_ACCESS_ADMIN,                          \
      "cluster token create [--ttl <lifetime>] [--description <text>] [--peer <address:port>]",    \
      "Make a join token (in the cluster's store, gone after --ttl, 1h by default) and print the " \
      "command a new node joins with, with the cluster CA's public key hash.")                     \
    X(cluster_token_list, "cluster token list", CONTROL_ACCESS_ADMIN, "cluster token list",        \
      "List the join tokens: id, time left, who made them (never their secrets).")                 \
    X(cluster_token_delete, "cluster token delete", CONTROL_ACCESS_ADMIN,                          \
      "cluster token delete <id>", "Delete a join token before it expires.")                       \
    X(cluster_join, "cluster join", CONTROL_ACCESS_ADMIN,                                          \
      "cluster join <address:port> (--token <id.secret> | --user <admin> [--password-file "        \
      "<file>]) [--ca-cert-hash sha256:<hex>] [--address <ip>] [--client-port <port>] "            \
      "[--peer-port <port>]",                                                                      \
      "Join a running cluster through one of its nodes: check its CA against the hash (or "        \
      "confirm it), then take a node name, internode certificates, the cluster's certificates "    \
      "and policy.")                                                                               \
    X(cluster_leave, "cluster leave", CONTROL_ACCESS_ADMIN, "cluster leave",                       \
      "Take this node out of its cluster: its etcd member removed, its store its own again, "      \
      "with the certificates it has.")                                                             \
    X(cluster_remove, "cluster remove", CONTROL_ACCESS_ADMIN, "cluster remove <node>",             \
      "Take a node that is gone out of the cluster: its etcd member, registry entry and own "      \
      "certificates.")                                                                             \
    X(cluster_admit, "cluster admit", CONTROL_ACCESS_READ, "cluster admit <request>",              \
      "Admit a node that joins through this one (what the REST API's /v1/join/admit hands "        \
      "over; the join token in the request is its credential).")                                   \
    X(cluster_config_show, "cluster config show", CONTROL_ACCESS_READ, "cluster config show",      \
      "Show every TLS policy setting in force and where its value comes from.")                    \
    X(cluster_certificate_set, "cluster certificate set", CONTROL_ACCESS_ADMIN,                    \
      "cluster certificate set <name> certificate_file <file> [key_file <file>] [--dry-run]",      \
      "Replace a certificate: validate, render, reload or restart the services that use it, "      \
      "roll back if one does not come up.")                                                        \
    X(cluster_certificate_set_many, "cluster certificate set-many", CONTROL_ACCESS_ADMIN,          \
      "cluster certificate set-many <name> certificate_file <file> [key_file <file>] "             \
      "[<name> certificate_file <file> [key_file <file>]...] [--dry-run]",                         \
      "Replace several certificates together: all are validated before any is applied, and "       \
      "all or none are.")                                                                          \
    X(cluster_certificate_rotate, "cluster certificate rotate", CONTROL_ACCESS_ADMIN,              \
      "cluster certificate rotate <name>|all [--dry-run]",                                         \
      "Re-issue generated certificates from the cluster CA and apply them.")                       \
    X(cluster_certificate_delete, "cluster certificate delete", CONTROL_ACCESS_ADMIN,              \
      "cluster certificate delete <name> [--dry-run]",                                             \
      "Remove an optional certificate (ldap_client, mtls_trusted_ca) no service uses.")            \
    X(cluster_certificate_csr, "cluster certificate csr", CONTROL_ACCESS_ADMIN,                    \
      "cluster certificate csr <name> [--subject <dn>] [--san <name>...]",                         \
      "Make a new key inside the store and print a CSR for it; 'set' without key_file pairs "      \
      "the signed certificate with that key.")                                                     \
    X(cluster_config, "cluster config", CONTROL_ACCESS_ADMIN,                                      \
      "cluster config <setting> <value> [<setting> <value>...] [--dry-run]",                       \
      "Change TLS policy settings (kept in the state file) and apply them to the services.")       \
    X(cluster_ocsp_config, "cluster ocsp config", CONTROL_ACCESS_READ, "cluster ocsp config",      \
      "Show the OCSP stapling settings and the responder the proxy certificate names.")            \
    X(cluster_ocsp_config_proxy, "cluster ocsp config proxy", CONTROL_ACCESS_ADMIN,                \
      "cluster ocsp config proxy enable|disable [--dry-run]",                                      \
      "Start or stop stapling the proxy certificate's OCSP status (ocsp_functionality).")          \
    X(cluster_ocsp_config_set, "cluster ocsp config set", CONTROL_ACCESS_ADMIN,                    \
      "cluster ocsp config set query_frequency|response_timeout|recovery_frequency|"               \
      "recovery_max_tries <value> [<name> <value>...] [--dry-run]",                                \
      "Change how often and how long the OCSP responder is asked.")                                \
    X(cluster_ocsp_status, "cluster ocsp status", CONTROL_ACCESS_READ, "cluster ocsp status",      \
      "Show the proxy certificate's OCSP status held and stapled: GOOD, REVOKED, UNKNOWN or "      \
      "NONE, with the answer's times and the last query's error.")                                 \
    X(cluster_ocsp_test, "cluster ocsp test", CONTROL_ACCESS_ADMIN, "cluster ocsp test",           \
      "Ask the OCSP responder now; a verified answer is kept (and stapled when enabled).")         \
    X(cluster_ldap_show, "cluster ldap show", CONTROL_ACCESS_ADMIN, "cluster ldap show",           \
      "Show the LDAP sign-in settings (never the bind password) and the directory's "              \
      "certificates.")                                                                             \
    X(cluster_ldap_config, "cluster ldap config", CONTROL_ACCESS_ADMIN,                            \
      "cluster ldap config <name> <value> [<name> <value>...] [--dry-run]",                        \
      "Change LDAP sign-in settings (uris, bind_dn, bind_password, user_search_base, ...), "       \
      "applied like any policy change.")                                                           \
    X(cluster_ldap_test, "cluster ldap test", CONTROL_ACCESS_ADMIN,                                \
      "cluster ldap test <user> [--password-file <file>|-]",                                       \
      "Sign a directory user in against the directory now and show the DN, groups and role "       \
      "(the password is asked for, or read from the file).")                                       \
    X(audit, "audit", CONTROL_ACCESS_READ, "audit [-n <entries>]",                                 \
      "Print the recent changes (who, what, the result), oldest first, as a log reads.")           \
    X(replica_status, "replica status", CONTROL_ACCESS_READ, "replica status [<database>...]",     \
      "Show each Replica Of link: source, TLS version and cipher, peer certificate, up or down "   \
      "and since when, bytes, offset and lag, the last error; and what sources refused.")          \
    X(replica_trust_list, "replica trust list", CONTROL_ACCESS_READ,                               \
      "replica trust list [<list>...]",                                                            \
      "List the certificates of the trust lists and the databases that use each.")                 \
    X(replica_trust_add, "replica trust add", CONTROL_ACCESS_ADMIN,                                \
      "replica trust add <list> <certificate file> [--dry-run]",                                   \
      "Trust the certificates of a PEM file (a peer cluster's CA, or a peer's own certificate) "   \
      "and reload the services that use the list.")                                                \
    X(replica_trust_remove, "replica trust remove", CONTROL_ACCESS_ADMIN,                          \
      "replica trust remove <list> <certificate file|fingerprint> [--dry-run]",                    \
      "Stop trusting certificates (by file or fingerprint); the syncer ends a link whose source "  \
      "no longer verifies; an empty list trusts nobody.")                                          \
    X(user_list, "user list", CONTROL_ACCESS_READ, "user list",                                    \
      "List the REST API's users and their roles.")                                                \
    X(user_add, "user add", CONTROL_ACCESS_ADMIN,                                                  \
      "user add <name> [--role admin|viewer] [--password-file <file>|-] "                          \
      "[--certificate-subject <subject line>]",                                                    \
      "Add a REST API user; the password is read from the file, or asked for (with a "             \
      "certificate subject, only from --password-file: without one, certificate sign-in only).")   \
    X(user_passwd, "user passwd", CONTROL_ACCESS_ADMIN,                                            \
      "user passwd <name> [--role admin|viewer] [--password-file <file>]",                         \
      "Change a REST API user's password (and role).")                                             \
    X(user_subject, "user subject", CONTROL_ACCESS_ADMIN,                                          \
      "user subject <name> <subject line>|--clear",                                                \
      "Set or clear the certificate subject a REST API user signs in with "                        \
      "(\"CN=ops, OU=Platform, O=Example\").")                                                     \
    X(user_delete, "user delete", CONTROL_ACCESS_ADMIN, "user delete <name>",                      \
      "Remove a REST API user.")

#define CONTROL_COMMAND_ENUM(id, words, access, usage, summary) CONTROL_CMD_##id,
enum control_command { CONTROL_COMMANDS(CONTROL_COMMAND_ENUM) CONTROL_CMD_COUNT };
#undef CONTROL_COMMAND_ENUM

struct control_command_info {
    const char *word; /* the words, space-separated: "cluster certificate list" */
    enum control_access access;
    const char *usage;
    const char *summary;
};

extern const struct control_command_info control_command_table[CONTROL_CMD_COUNT];

/* Returns the command for its words ("status", "cluster certificate list"), or -1. */
int control_command_lookup(const char *words);

/*
 * Finds the command whose words begin argv (the longest match) and sets
 * *ret_consumed to how many arguments they took. Returns the command or -1.
 */
int control_command_match(int argc, char **argv, int *ret_consumed);

/* Serializes a message as one line (with its '\n'). Returns a malloc'd string or NULL. */
char *control_encode(const json_t *message, size_t *ret_len);

/*
 * Parses one line (without its '\n'). Returns 0 and a new reference in
 * *ret_message, or CV_EPROTOCOL with a description in err_buf.
 */
int control_decode(const char *line, size_t len, json_t **ret_message, char *err_buf,
                   size_t err_len);

#endif
