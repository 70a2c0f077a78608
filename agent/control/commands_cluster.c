/* cluster status, cluster init and cluster token (commands_cluster.h). */
#include "commands_cluster.h"

#include "control_proto.h"

#include "config.h"
#include "join_token.h"
#include "join_wire.h"
#include "monitor.h"
#include "sync.h"

#include "service.h"

/* The cluster's nodes as certvisor.conf lists them, in order, with their addresses; a node on
 * its own (the local store) is the one member. */
static json_t *members_json(const struct cluster_settings *cluster)
{
    json_t *members = json_array();

    if (cluster->n_members == 0)
        json_array_append_new(members, json_pack("{s:s, s:s}", "name", cluster->node, "address",
                                                 cluster->node_address));
    for (size_t i = 0; i < cluster->n_members; i++)
        json_array_append_new(members, json_pack("{s:s, s:s}", "name", cluster->members[i].name,
                                                 "address", cluster->members[i].address));
    return members;
}

/* The nodes that joined and certvisor.conf does not list (the store's registry, at the last
 * poll), after the listed ones. */
static void add_registered(json_t *item, const struct agent *agent)
{
    json_t *described = json_object(), *members = json_object_get(item, "members"), *node, *m;
    size_t i, j;

    cluster_sync_describe(agent, described);
    json_array_foreach(json_object_get(described, "registered"), i, node)
    {
        bool known = false;

        json_array_foreach(members, j, m)
        {
            known = known || json_equal(json_object_get(m, "name"), json_object_get(node, "name"));
        }
        if (!known)
            json_array_append(members, node);
    }
    json_decref(described);
}

json_t *commands_cluster_json(const struct agent *agent)
{
    const struct cluster_settings *cluster = &agent->config->cluster;
    const struct cluster_health *health;
    json_t *item, *alive;

    item = json_pack("{s:s, s:s, s:s}", "cluster", cluster->name, "node", cluster->node, "store",
                     cluster_store_word(cluster->store));
    if (item)
        json_object_set_new(item, "members", members_json(cluster));
    if (!item || !agent->cluster)
        return item;
    add_registered(item, agent);
    health = cluster_monitor_health(agent->cluster);
    json_object_set_new(item, "reachable", json_boolean(health->reachable));
    json_object_set_new(item, "has_leader", json_boolean(health->has_leader));
    json_object_set_new(item, "revision", json_integer(health->revision));
    json_object_set_new(item, "endpoint", json_string(health->endpoint));
    json_object_set_new(item, "etcd_version", json_string(health->version));
    json_object_set_new(item, "alive_published", json_boolean(health->alive_published));
    if (health->last_ok_usec)
        json_object_set_new(item, "seconds_since_sync",
                            json_real(cluster_health_seconds_since_ok(health)));
    if (health->last_error[0])
        json_object_set_new(item, "last_error", json_string(health->last_error));
    cluster_sync_describe(agent, item);
    {
        char why[512];

        /* Not "stale", which marks an answer itself as read from a stale copy. */
        if (cluster_sync_staleness(agent, why, sizeof(why)) > 0)
            json_object_set_new(item, "reads_stale", json_string(why));
    }
    alive = health->alive_known ? json_array() : json_null();
    for (size_t i = 0; health->alive_known && i < health->n_alive; i++)
        json_array_append_new(alive, json_string(health->alive[i]));
    json_object_set_new(item, "alive", alive);
    return item;
}

void handle_cluster_status(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    json_t *reply;

    (void)options;
    if (json_array_size(args) != 0) {
        control_reply_refused(conn, 2, "usage", "usage: cluster status");
        return;
    }
    reply = commands_cluster_json(agent);
    if (!reply || json_object_set_new(reply, "exit", json_integer(0)) < 0) {
        json_decref(reply);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    control_reply(conn, reply);
}

/* The answer of agent/sync to the control connection that asked (init, token). */
static void on_sync_done(void *data, int exit_status, json_t *reply)
{
    (void)exit_status;
    control_reply(data, reply);
}

static void on_init_abandoned(void *data)
{
    struct control_conn *conn = data;

    cluster_sync_forget(control_conn_agent(conn), conn);
}

void handle_cluster_init(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options)
{
    (void)options;
    if (json_array_size(args) != 0) {
        control_reply_refused(conn, 2, "usage", "usage: cluster init");
        return;
    }
    control_on_abandon(conn, on_init_abandoned, conn);
    cluster_sync_init(agent, on_sync_done, conn);
}

/* --- cluster token create|list|delete --- */

static void on_token_abandoned(void *data)
{
    struct control_conn *conn = data;

    cluster_sync_tokens_forget(control_conn_agent(conn), conn);
}

/* An optional string option, at most max bytes. Returns false after refusing the request. */
static bool string_option(struct control_conn *conn, json_t *options, const char *name, size_t max,
                          const char **ret_value)
{
    json_t *value = json_object_get(options, name);

    *ret_value = NULL;
    if (!value)
        return true;
    if (!json_is_string(value) || json_string_length(value) > max ||
        strlen(json_string_value(value)) != json_string_length(value)) {
        control_reply_refused(conn, 2, "usage", "--%s takes a text of at most %zu bytes", name,
                              max);
        return false;
    }
    *ret_value = json_string_value(value);
    return true;
}

void handle_cluster_token_create(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options)
{
    const char *ttl_text, *description, *peer;
    long ttl = JOIN_TTL_DEFAULT_S;
    char err[256], who[128];

    if (json_array_size(args) != 0) {
        control_reply_refused(conn, 2, "usage",
                              "usage: cluster token create [--ttl <lifetime>] [--description "
                              "<text>] [--peer <address:port>]");
        return;
    }
    if (!string_option(conn, options, "ttl", 16, &ttl_text) ||
        !string_option(conn, options, "description", JOIN_DESCRIPTION_MAX, &description) ||
        !string_option(conn, options, "peer", 280, &peer))
        return;
    if (ttl_text && join_ttl_parse(ttl_text, &ttl, err, sizeof(err)) < 0) {
        control_reply_refused(conn, 2, "usage", "%s", err);
        return;
    }
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    control_on_abandon(conn, on_token_abandoned, conn);
    cluster_sync_token_create(agent, ttl, description, peer, who, on_sync_done, conn);
}

void handle_cluster_token_list(struct agent *agent, struct control_conn *conn, json_t *args,
                               json_t *options)
{
    (void)options;
    if (json_array_size(args) != 0) {
        control_reply_refused(conn, 2, "usage", "usage: cluster token list");
        return;
    }
    control_on_abandon(conn, on_token_abandoned, conn);
    cluster_sync_token_list(agent, on_sync_done, conn);
}

void handle_cluster_token_delete(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options)
{
    (void)options;
    if (json_array_size(args) != 1 || !json_is_string(json_array_get(args, 0))) {
        control_reply_refused(conn, 2, "usage", "usage: cluster token delete <id>");
        return;
    }
    if (!join_token_id_valid(json_string_value(json_array_get(args, 0)))) {
        control_reply_refused(conn, 2, "usage",
                              "a token id is six lowercase letters and digits (the part before "
                              "the dot; 'certvisorctl cluster token list' shows them)");
        return;
    }
    control_on_abandon(conn, on_token_abandoned, conn);
    cluster_sync_token_delete(agent, json_string_value(json_array_get(args, 0)), on_sync_done,
                              conn);
}

/* --- cluster join (this node joins) and cluster admit (a node joins through this one) --- */

static void on_join_abandoned(void *data)
{
    struct control_conn *conn = data;

    cluster_join_forget(control_conn_agent(conn), conn);
}

/* A port option, or its default. Returns false after refusing the request. */
static bool port_option(struct control_conn *conn, json_t *options, const char *name, int fallback,
                        int *ret_port)
{
    const char *text;
    char *end;
    long port;

    *ret_port = fallback;
    if (!string_option(conn, options, name, 8, &text))
        return false;
    if (!text)
        return true;
    port = strtol(text, &end, 10);
    if (!*text || *end || port < 1 || port > 65535) {
        control_reply_refused(conn, 2, "usage", "--%s takes a port (1 to 65535), not '%s'", name,
                              text);
        return false;
    }
    *ret_port = (int)port;
    return true;
}

void handle_cluster_join(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options)
{
    struct cluster_join_args join = {.peer = json_string_value(json_array_get(args, 0))};
    char who[128];

    if (json_array_size(args) != 1) {
        control_reply_refused(conn, 2, "usage", "usage: %s",
                              control_command_table[CONTROL_CMD_cluster_join].usage);
        return;
    }
    if (!string_option(conn, options, "token", 64, &join.token) ||
        !string_option(conn, options, "user", 64, &join.user) ||
        !string_option(conn, options, "password", 1024, &join.password) ||
        !string_option(conn, options, "ca-cert-hash", 80, &join.ca_hash) ||
        !string_option(conn, options, "address", 64, &join.address) ||
        !port_option(conn, options, "client-port", 2379, &join.client_port) ||
        !port_option(conn, options, "peer-port", 2380, &join.peer_port))
        return;
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    control_on_abandon(conn, on_join_abandoned, conn);
    cluster_join(agent, &join, who, on_sync_done, conn);
}

static void on_admit_abandoned(void *data)
{
    struct control_conn *conn = data;

    cluster_sync_admit_forget(control_conn_agent(conn), conn);
}

void handle_cluster_admit(struct agent *agent, struct control_conn *conn, json_t *args,
                          json_t *options)
{
    const char *source;
    char admin[128] = "";

    if (json_array_size(args) != 1 ||
        json_string_length(json_array_get(args, 0)) > JOIN_MAX_REQUEST) {
        control_reply_refused(conn, 2, "usage",
                              "usage: cluster admit <request> (a join request of at most %d "
                              "bytes)",
                              JOIN_MAX_REQUEST);
        return;
    }
    if (!string_option(conn, options, "source", 63, &source))
        return;
    /* An administrator (a REST admin signed in with the request, or root here) needs no token:
     * as Redis Enterprise's operators join with an admin's name and password. */
    if (control_conn_peer(conn)->admin)
        control_peer_describe(control_conn_peer(conn), admin, sizeof(admin));
    control_on_abandon(conn, on_admit_abandoned, conn);
    cluster_sync_admit(agent, json_string_value(json_array_get(args, 0)), source,
                       admin[0] ? admin : NULL, on_sync_done, conn);
}

/* --- cluster leave and cluster remove --- */

static void on_membership_abandoned(void *data)
{
    struct control_conn *conn = data;

    cluster_sync_membership_forget(control_conn_agent(conn), conn);
}

void handle_cluster_leave(struct agent *agent, struct control_conn *conn, json_t *args,
                          json_t *options)
{
    char who[128];

    (void)options;
    if (json_array_size(args) != 0) {
        control_reply_refused(conn, 2, "usage", "usage: cluster leave");
        return;
    }
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    control_on_abandon(conn, on_membership_abandoned, conn);
    cluster_sync_leave(agent, who, on_sync_done, conn);
}

void handle_cluster_remove(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    char who[128];

    (void)options;
    if (json_array_size(args) != 1) {
        control_reply_refused(conn, 2, "usage", "usage: cluster remove <node>");
        return;
    }
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    control_on_abandon(conn, on_membership_abandoned, conn);
    cluster_sync_remove(agent, json_string_value(json_array_get(args, 0)), who, on_sync_done, conn);
}
