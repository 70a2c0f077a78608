/* cluster status (commands_cluster.h). */
#include "commands_cluster.h"

#include "config.h"
#include "monitor.h"

#include <time.h>

static double seconds_since(uint64_t usec)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3 - (double)usec) / 1e6;
}

void handle_cluster_status(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    const struct cluster_settings *cluster = &agent->config->cluster;
    const struct cluster_health *health;
    json_t *reply, *alive;

    (void)options;
    if (json_array_size(args) != 0) {
        control_reply_refused(conn, 2, "usage", "usage: cluster status");
        return;
    }
    reply = json_pack("{s:i, s:s, s:s, s:s}", "exit", 0, "cluster", cluster->name, "node",
                      cluster->node, "store", cluster_store_word(cluster->store));
    if (!agent->cluster) {
        control_reply(conn, reply);
        return;
    }
    health = cluster_monitor_health(agent->cluster);
    alive = json_array();
    for (size_t i = 0; i < health->n_alive; i++)
        json_array_append_new(alive, json_string(health->alive[i]));
    json_object_set_new(reply, "reachable", json_boolean(health->reachable));
    json_object_set_new(reply, "has_leader", json_boolean(health->has_leader));
    json_object_set_new(reply, "revision", json_integer(health->revision));
    json_object_set_new(reply, "endpoint", json_string(health->endpoint));
    json_object_set_new(reply, "etcd_version", json_string(health->version));
    json_object_set_new(reply, "alive_published", json_boolean(health->alive_published));
    if (health->last_ok_usec)
        json_object_set_new(reply, "seconds_since_sync",
                            json_real(seconds_since(health->last_ok_usec)));
    if (health->last_error[0])
        json_object_set_new(reply, "last_error", json_string(health->last_error));
    json_object_set_new(reply, "alive", health->alive_known ? alive : json_null());
    if (!health->alive_known)
        json_decref(alive);
    control_reply(conn, reply);
}
