/*
 * The cluster section of certvisor.conf (issue 16): the cluster's name, this node's name,
 * where the shared state lives (store = local, the default, or etcd), and, for etcd, the
 * members as a static list. It is read from the main file only, before conf.d, since conf.d's
 * services refer to it: %{node}, %{etcd_client_url}, %{etcd_initial_cluster}... (expand.h),
 * and a service with `cluster_store = etcd` (the shipped etcd member) exists only where the
 * store is etcd.
 */
#ifndef CERTVISOR_CONF_CLUSTER_H
#define CERTVISOR_CONF_CLUSTER_H

#include <confuse.h>
#include <stdbool.h>
#include <stddef.h>

#define CLUSTER_NAME_MAX 63
#define CLUSTER_MAX_MEMBERS 7 /* etcd voters: more only slow every write down */
#define CLUSTER_DEFAULT_CLIENT_PORT 2379
#define CLUSTER_DEFAULT_PEER_PORT 2380

enum cluster_store { CLUSTER_STORE_LOCAL, CLUSTER_STORE_ETCD };

struct cluster_member {
    char *name;
    char *address; /* an IP address: the agent resolves no name on its loop */
    int client_port;
    int peer_port;
};

struct cluster_settings {
    char *name; /* the cluster's name: its keys in etcd live under /certvisor/<name>/ */
    char *node; /* this node's name (its etcd member's name) */
    enum cluster_store store;
    struct cluster_member *members;
    size_t n_members;
    /* Ready for expansion (expand.h): this node's URLs and etcd's --initial-cluster. */
    char *node_address;
    char *client_url;
    char *peer_url;
    char *initial_cluster;
    bool joined; /* from the membership file a join wrote: etcd's member joins an existing one */
};

extern cfg_opt_t conf_cluster_options[];

/*
 * Reads the cluster section (cfg NULL: none, the defaults: store local, this host's name as
 * the node, the loopback as its address) and checks it: names, ports, addresses, and for
 * etcd that this node is one of the members. Returns 0 or CV_ECONFIG with the problem and
 * its fix in err.
 */
int conf_cluster_read(cfg_t *cfg, const char *source_file, struct cluster_settings *out, char *err,
                      size_t err_len);

/*
 * A node that joined a running cluster (certvisorctl cluster join) keeps what it joined in
 * state_dir/membership.json (join_wire.h): when certvisor.conf's cluster section lists no
 * members (store local, the default), the cluster's name, this node's name and the members come
 * from there, with store etcd. A section that lists members and a membership file together are
 * refused. Returns 0 (no file is no change) or CV_ECONFIG with err.
 */
int conf_cluster_membership(struct cluster_settings *settings, const char *source_file,
                            const char *state_dir, char *err, size_t err_len);

/* state_dir/membership.json into buf. */
void conf_cluster_membership_path(const char *state_dir, char *buf, size_t len);

void cluster_settings_free(struct cluster_settings *settings);

/* "address:port", an IPv6 address in brackets: what URLs and etcd endpoints are made of. */
void cluster_host_port(const char *address, int port, char *buf, size_t len);

/* True when a and b say the same: name, node, store and every member alike. */
bool cluster_settings_equal(const struct cluster_settings *a, const struct cluster_settings *b);

const char *cluster_store_word(enum cluster_store store);
int cluster_store_parse(const char *word, enum cluster_store *ret_store);

#endif
