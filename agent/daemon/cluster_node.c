/* This node's part in a cluster whose store is etcd (cluster_node.h). */
#include "cluster_node.h"

#include "config.h"
#include "log.h"
#include "monitor.h"
#include "sync.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/*
 * A node of a cluster on etcd watches its store (agent/cluster/monitor.h): its own member
 * first, then the others; the node's ccs_internode_encryption certificate as its client
 * certificate, read from the store's current generation at each connection. Start-up never
 * waits for etcd: the monitor only polls, from the loop.
 */
void cluster_node_start(struct agent *agent)
{
    const struct cluster_settings *cluster = &agent->config->cluster;
    struct cluster_monitor_config mc = {.cluster = cluster->name, .node = cluster->node};
    static char endpoints[CLUSTER_MAX_MEMBERS][300];
    struct etcd_node_files files;
    char err[512] = "out of memory";

    if (cluster->store != CLUSTER_STORE_ETCD)
        return;
    for (int own = 1; own >= 0; own--)
        for (size_t i = 0; i < cluster->n_members && mc.etcd.n_endpoints < ETCD_MAX_ENDPOINTS;
             i++) {
            if ((strcmp(cluster->members[i].name, cluster->node) == 0) != own)
                continue;
            cluster_host_port(cluster->members[i].address, cluster->members[i].client_port,
                              endpoints[mc.etcd.n_endpoints], sizeof(endpoints[0]));
            mc.etcd.endpoints[mc.etcd.n_endpoints] = endpoints[mc.etcd.n_endpoints];
            mc.etcd.n_endpoints++;
        }
    etcd_node_files(agent->config->state_dir, &files, &mc.etcd);
    if (cluster_monitor_new(agent->base, &mc, &agent->cluster, err, sizeof(err)) < 0 ||
        cluster_monitor_start(agent->cluster) < 0) {
        log_error("Cannot watch the cluster's store: %s; this node serves its local copy", err);
        cluster_monitor_free(agent->cluster);
        agent->cluster = NULL;
        return;
    }
    if (cluster_sync_start(agent) < 0)
        log_error("Cannot follow the cluster's store: out of memory; this node serves its local "
                  "copy");
    log_info("Cluster '%s': node '%s' on the etcd store (%zu member%s)", cluster->name,
             cluster->node, cluster->n_members, cluster->n_members == 1 ? "" : "s");
}

void cluster_node_stop(struct agent *agent)
{
    cluster_sync_stop(agent);
    cluster_monitor_free(agent->cluster);
    agent->cluster = NULL;
}

void cluster_node_reconfigured(struct agent *agent, const struct agent_config *old)
{
    if (cluster_settings_equal(&old->cluster, &agent->config->cluster))
        return;
    log_notice("Configuration reload: the cluster section changed (store %s, node '%s')",
               cluster_store_word(agent->config->cluster.store), agent->config->cluster.node);
    cluster_node_stop(agent);
    cluster_node_start(agent);
}
