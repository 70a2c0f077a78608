/* %{variable} expansion in configuration values. */
#ifndef CERTVISOR_EXPAND_H
#define CERTVISOR_EXPAND_H

#include <stddef.h>

/* The values that configuration strings may refer to as %{name}. */
struct expand_vars {
    const char *prefix;
    const char *state_dir;
    const char *run_dir;
    const char *log_dir;
    const char *conf_dir;
    const char *libexec_dir;
    const char *console_dir;    /* the admin console's static files */
    const char *control_socket; /* for services that talk to the agent */
    const char *name;           /* the service being read, or NULL outside a service */
    /* From certvisor.conf's cluster section (conf_cluster.h). */
    const char *cluster;              /* the cluster's name */
    const char *node;                 /* this node's name */
    const char *node_address;         /* its IP address */
    const char *etcd_client_url;      /* https://address:client_port */
    const char *etcd_peer_url;        /* https://address:peer_port */
    const char *etcd_initial_cluster; /* name=peer URL,... for every member */
    /* "new", or "existing" on a node that joined a running cluster (its membership file) */
    const char *etcd_initial_cluster_state;
};

/*
 * Checks that every %{...} in text names a known variable. Returns 0, or
 * -EINVAL with the offending name in err (for a message).
 */
int expand_check(const char *text, char *err, size_t err_len);

/* Expands text. Returns a malloc'd string, or NULL on an unknown name or no memory. */
char *expand_string(const char *text, const struct expand_vars *vars);

#endif
