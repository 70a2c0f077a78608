/* The read-only endpoints the console (and scripts) use beyond Redis Enterprise's: certificate
 * details, the recent audit log and the cluster's status. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_DEFAULT 50
#define AUDIT_MAX 500

static void listed_details(struct api_call *call, json_t *reply)
{
    json_t *list = json_array(), *item;
    size_t i;

    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        json_decref(list);
        api_reply_refusal(call, reply, 404);
        return;
    }
    json_array_foreach(json_object_get(reply, "items"), i, item)
    {
        json_t *copy = json_deep_copy(item);

        json_object_del(copy, "pem");
        json_array_append_new(list, copy);
    }
    api_reply_json(call, 200, json_pack("{s:o}", "certificates", list));
}

/* GET /v1/cluster/certificates?details=true: what `cluster certificate list` shows, no PEM. */
void api_get_certificate_details(struct api_call *call)
{
    api_ask(call, "cluster certificate list", NULL, NULL, false, false, listed_details);
}

static void listed_audit(struct api_call *call, json_t *reply)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 404);
        return;
    }
    api_reply_json(call, 200, json_pack("{s:O}", "entries", json_object_get(reply, "items")));
}

static void listed_cluster_status(struct api_call *call, json_t *reply)
{
    json_t *body;

    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 500);
        return;
    }
    body = json_deep_copy(reply);
    json_object_del(body, "exit");
    api_reply_json(call, 200, body);
}

/* GET /v1/cluster/status: what `certvisorctl cluster status --json` shows (the store, and on
 * etcd the node's last view of it and the nodes alive). */
void api_get_cluster_status(struct api_call *call)
{
    api_ask(call, "cluster status", NULL, NULL, false, false, listed_cluster_status);
}

/* Whether the array of names holds name. */
static bool listed(const json_t *names, const char *name)
{
    const json_t *each;
    size_t i;

    json_array_foreach(names, i, each)
    {
        if (json_is_string(each) && strcmp(json_string_value(each), name) == 0)
            return true;
    }
    return false;
}

/*
 * One node as Redis Enterprise's node object has it (uid, addr, status: "active" while its
 * agent is alive in the store, "down" once it is not, "unknown" before the store was read),
 * then certvisor's: its name, whether it is this node, and the cluster revision it last
 * reported applying (with the outcome and why, when it failed).
 */
static json_t *node_object(json_t *status, json_t *member, size_t index)
{
    const char *name = json_string_value(json_object_get(member, "name"));
    const char *self = json_string_value(json_object_get(status, "node"));
    json_t *alive = json_object_get(status, "alive"), *report, *node;
    bool this_node = name && self && strcmp(name, self) == 0;
    const char *word;

    if (this_node || !json_object_get(status, "reachable"))
        word = "active"; /* it answers: on the local store, the one node; this node, always */
    else if (!json_is_array(alive))
        word = "unknown";
    else
        word = name && listed(alive, name) ? "active" : "down";
    node = json_pack("{s:I, s:O, s:s, s:O, s:b}", "uid", (json_int_t)index + 1, "addr",
                     json_object_get(member, "address"), "status", word, "name",
                     json_object_get(member, "name"), "this_node", this_node);
    report = name ? json_object_get(json_object_get(status, "nodes"), name) : NULL;
    if (node && json_is_object(report)) {
        json_object_set(node, "applied_revision", json_object_get(report, "revision"));
        json_object_set(node, "apply_result", json_object_get(report, "result"));
        if (json_string_length(json_object_get(report, "reason")) > 0)
            json_object_set(node, "apply_reason", json_object_get(report, "reason"));
    }
    return node;
}

static void listed_nodes(struct api_call *call, json_t *reply)
{
    json_t *nodes = json_array(), *member;
    size_t i;

    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        json_decref(nodes);
        api_reply_refusal(call, reply, 500);
        return;
    }
    json_array_foreach(json_object_get(reply, "members"), i, member)
        json_array_append_new(nodes, node_object(reply, member, i));
    api_reply_json(call, 200, nodes);
}

/* GET /v1/nodes: the cluster's nodes (Redis Enterprise's node list), from the agent's last view
 * of the store. */
void api_get_nodes(struct api_call *call)
{
    api_ask(call, "cluster status", NULL, NULL, false, false, listed_nodes);
}

/* GET /v1/cluster/audit_log?limit=N: the agent's recent audit entries, newest first. */
void api_get_audit_log(struct api_call *call)
{
    char value[16] = "";
    long limit = AUDIT_DEFAULT;
    char *end;

    if (http_query_get(http_request_query(call->request), "limit", value, sizeof(value)) > 0) {
        limit = strtol(value, &end, 10);
        if (*end || limit < 1 || limit > AUDIT_MAX) {
            api_reply_error(call, 400, "invalid_query", json_pack("{s:s}", "field", "limit"),
                            "limit must be a number from 1 to %d", AUDIT_MAX);
            return;
        }
    }
    api_ask(call, "audit", NULL, json_pack("{s:I}", "lines", (json_int_t)limit), false, false,
            listed_audit);
}
