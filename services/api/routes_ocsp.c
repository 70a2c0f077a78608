/* OCSP stapling over REST, with Redis Enterprise's object and fields: GET and PUT /v1/ocsp,
 * GET /v1/ocsp/status, POST /v1/ocsp/test. The agent's "cluster ocsp ..." commands answer. */
#include "api.h"

#include <stdio.h>
#include <string.h>

/* The fields PUT takes; responder_url is the certificate's, never set. */
static const struct {
    const char *field;
    bool boolean;
    const char *setting; /* the policy setting it is */
} writable[] = {
    {"ocsp_functionality", true, "ocsp_functionality"},
    {"query_frequency", false, "ocsp_query_frequency"},
    {"response_timeout", false, "ocsp_response_timeout"},
    {"recovery_frequency", false, "ocsp_recovery_frequency"},
    {"recovery_max_tries", false, "ocsp_recovery_max_tries"},
};

#define N_WRITABLE (sizeof(writable) / sizeof(writable[0]))

static void shown_config(struct api_call *call, json_t *reply)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 404);
        return;
    }
    api_reply_json(call, 200, json_incref(json_object_get(reply, "config")));
}

void api_get_ocsp(struct api_call *call)
{
    api_ask(call, "cluster ocsp config", NULL, NULL, false, false, shown_config);
}

static void configured(struct api_call *call, json_t *reply)
{
    api_after_change(call, reply, 400, "cluster ocsp config", shown_config);
}

/* The field's value as the policy takes it, or NULL after answering 400. */
static const char *setting_value(struct api_call *call, const char *key, json_t *value, char *buf,
                                 size_t len)
{
    for (size_t i = 0; i < N_WRITABLE; i++) {
        if (strcmp(writable[i].field, key) != 0)
            continue;
        if (writable[i].boolean && json_is_boolean(value))
            return json_is_true(value) ? "enabled" : "disabled";
        if (!writable[i].boolean && json_is_integer(value)) {
            snprintf(buf, len, "%lld", (long long)json_integer_value(value));
            return buf;
        }
        api_reply_error(call, 400, "invalid_setting", json_pack("{s:s}", "field", key),
                        "'%s' takes %s: nothing was changed", key,
                        writable[i].boolean ? "a boolean" : "a whole number of seconds (tries)");
        return NULL;
    }
    if (strcmp(key, "responder_url") == 0)
        api_reply_error(call, 400, "read_only_field", json_pack("{s:s}", "field", key),
                        "responder_url is the one the proxy certificate names (its Authority "
                        "Information Access); replace the certificate to change it: nothing was "
                        "changed");
    else
        api_reply_error(call, 400, "unknown_field", json_pack("{s:s}", "field", key),
                        "unknown field '%s' (ocsp_functionality, query_frequency, "
                        "response_timeout, recovery_frequency, recovery_max_tries): nothing was "
                        "changed",
                        key);
    return NULL;
}

/* PUT /v1/ocsp {"ocsp_functionality": true, "query_frequency": 3600, ...}: all or nothing. */
void api_put_ocsp(struct api_call *call)
{
    json_t *args, *value;
    const char *key;

    if (!call->body || json_object_size(call->body) == 0) {
        api_reply_error(call, 400, "invalid_schema", NULL,
                        "the request needs a JSON object with the OCSP settings to change");
        return;
    }
    args = json_array();
    json_object_foreach(call->body, key, value)
    {
        char buf[32];
        const char *text = setting_value(call, key, value, buf, sizeof(buf));

        if (!text) {
            json_decref(args);
            return;
        }
        for (size_t i = 0; i < N_WRITABLE; i++)
            if (strcmp(writable[i].field, key) == 0)
                json_array_append_new(args, json_string(writable[i].setting));
        json_array_append_new(args, json_string(text));
    }
    /* The agent checks the ranges; a value out of one refuses them all. */
    api_ask(call, "cluster config", args, NULL, true, true, configured);
}

/* The status object alone: the agent's own counters stay in certvisorctl's --json. */
static json_t *status_object(json_t *reply)
{
    json_t *status = json_deep_copy(json_object_get(reply, "status"));

    json_object_del(status, "queries");
    json_object_del(status, "failures");
    return status;
}

static void shown_status(struct api_call *call, json_t *reply)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 404);
        return;
    }
    api_reply_json(call, 200, status_object(reply));
}

void api_get_ocsp_status(struct api_call *call)
{
    api_ask(call, "cluster ocsp status", NULL, NULL, false, false, shown_status);
}

/* POST /v1/ocsp/test: asks the responder now; a failure names it (502: the responder's). */
void api_test_ocsp(struct api_call *call)
{
    if (call->body && json_object_size(call->body)) {
        api_reply_error(call, 400, "invalid_schema", NULL, "POST /v1/ocsp/test takes no fields");
        return;
    }
    api_ask(call, "cluster ocsp test", NULL, NULL, false, true, shown_status);
}
