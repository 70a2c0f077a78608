/* This node's part in a cluster whose store is etcd: watching the store (agent/cluster/monitor.h)
 * from start-up, and again with the new settings when a reload changed the cluster section. */
#ifndef CERTVISOR_CLUSTER_NODE_H
#define CERTVISOR_CLUSTER_NODE_H

#include "agent.h"

/* Starts watching the store when the configuration's store is etcd (nothing otherwise). */
void cluster_node_start(struct agent *agent);

/* After a configuration reload (struct agent_hooks): a changed cluster section restarts the
 * watch with the new settings, or ends it when the store is local now. */
void cluster_node_reconfigured(struct agent *agent, const struct agent_config *old);

void cluster_node_stop(struct agent *agent);

#endif
