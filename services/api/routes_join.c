/*
 * Joining a cluster over REST (issue 17). A joining node calls two routes before it holds any
 * credential: GET /v1/join/ca (the cluster CA, public: the joiner checks it against the hash it
 * was given before it trusts it) and POST /v1/join/admit (the join token in the body is the
 * credential; the agent checks it, admit.c). POST /v1/cluster/join is the REST form of
 * `certvisorctl cluster join` on the node that joins, for an administrator.
 */
#include "api.h"

#include "join_wire.h"

#include <stdio.h>
#include <string.h>

static void answered_ca(struct api_call *call, json_t *reply)
{
    const char *pem = json_string_value(json_object_get(reply, "pem"));

    if (json_integer_value(json_object_get(reply, "exit")) != 0 || !pem) {
        api_reply_error(call, 503, "agent_unavailable", NULL, "the cluster CA cannot be read");
        return;
    }
    api_reply_json(call, 200, json_pack("{s:s}", "pem", pem));
}

void api_get_join_ca(struct api_call *call)
{
    api_ask_anonymous(call, "cluster certificate ca", NULL, NULL, API_READ_TIMEOUT_MS, answered_ca);
}

static void admitted(struct api_call *call, json_t *reply)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 400);
        return;
    }
    api_reply_json(call, 200, json_incref(json_object_get(reply, "join")));
}

void api_post_join_admit(struct api_call *call)
{
    char source[64], *text;

    if (!call->body) {
        api_reply_error(call, 400, "invalid_schema", NULL,
                        "the join request is a JSON object (certvisorctl cluster join sends it)");
        return;
    }
    text = json_dumps(call->body, JSON_COMPACT);
    if (!text || strlen(text) > JOIN_MAX_REQUEST) {
        free(text);
        api_reply_error(call, 413, "payload_too_large", NULL, "a join request is at most %d bytes",
                        JOIN_MAX_REQUEST);
        return;
    }
    api_peer_address(call, source, sizeof(source));
    /* The agent gives a join a longer deadline than a read: it issues certificates and adds an
     * etcd member. */
    if (call->user[0]) /* an administrator's name and password instead of a token */
        api_ask(call, "cluster admit", json_pack("[s]", text), json_pack("{s:s}", "source", source),
                false, true, admitted);
    else
        api_ask_anonymous(call, "cluster admit", json_pack("[s]", text),
                          json_pack("{s:s}", "source", source), API_CHANGE_TIMEOUT_MS, admitted);
    free(text);
}

static void joined(struct api_call *call, json_t *reply)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 400);
        return;
    }
    api_reply_json(call, 200, api_agent_result(reply));
}

/* POST /v1/cluster/join {"peer", "token", "ca_cert_hash"[, "address", "client_port",
 * "peer_port"]}. */
void api_post_cluster_join(struct api_call *call)
{
    static const struct {
        const char *field;
        const char *option; /* certvisorctl's, as the agent takes it; NULL: the argument */
        bool port;
    } fields[] = {{"peer", NULL, false},
                  {"token", "token", false},
                  {"ca_cert_hash", "ca-cert-hash", false},
                  {"address", "address", false},
                  {"client_port", "client-port", true},
                  {"peer_port", "peer-port", true}};
    const size_t n_fields = sizeof(fields) / sizeof(fields[0]);
    json_t *opts = json_object(), *value;
    const char *key;

    if (!call->body || !json_is_string(json_object_get(call->body, "peer"))) {
        json_decref(opts);
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", "peer"),
                        "'peer' (the address:port of a node of the cluster), 'token' and "
                        "'ca_cert_hash' are needed");
        return;
    }
    json_object_foreach(call->body, key, value)
    {
        size_t i = 0;
        char port[16];

        while (i < n_fields && strcmp(fields[i].field, key) != 0)
            i++;
        if (i == n_fields) {
            json_decref(opts);
            api_reply_error(call, 400, "unknown_field", json_pack("{s:s}", "field", key),
                            "unknown field '%s' (peer, token, ca_cert_hash, address, "
                            "client_port, peer_port)",
                            key);
            return;
        }
        if (!fields[i].option)
            continue;
        if (fields[i].port && json_is_integer(value)) {
            snprintf(port, sizeof(port), "%lld", (long long)json_integer_value(value));
            json_object_set_new(opts, fields[i].option, json_string(port));
        } else if (!fields[i].port && json_is_string(value)) {
            json_object_set(opts, fields[i].option, value);
        } else {
            json_decref(opts);
            api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", key),
                            "'%s' takes %s", key, fields[i].port ? "a port number" : "a string");
            return;
        }
    }
    api_ask(call, "cluster join", json_pack("[O]", json_object_get(call->body, "peer")), opts,
            false, true, joined);
}
