/* The REST endpoints: each turns its request into control commands and their answers into JSON. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- bodies --- */

/*
 * Checks that every member of the body is one of the names (NULL-terminated).
 * Answers 400 and returns false otherwise.
 */
static bool only_fields(struct api_call *call, json_t *object, const char *where,
                        const char *const *names)
{
    const char *key;
    json_t *value;

    json_object_foreach(object, key, value)
    {
        bool known = false;

        for (const char *const *n = names; *n && !known; n++)
            known = strcmp(*n, key) == 0;
        if (!known) {
            api_reply_error(call, 400, "unknown_field", json_pack("{s:s}", "field", key),
                            "unknown field '%s'%s%s: nothing was changed", key, where ? " in " : "",
                            where ? where : "");
            return false;
        }
    }
    return true;
}

/* The string member name of object, or NULL after answering 400 (when required or mistyped). */
static const char *string_field(struct api_call *call, json_t *object, const char *name,
                                bool required, const char *where)
{
    json_t *value = json_object_get(object, name);

    if (json_is_string(value))
        return json_string_value(value);
    if (value || required)
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", name),
                        "'%s'%s%s %s", name, where ? " in " : "", where ? where : "",
                        value ? "must be a string" : "is required");
    return NULL;
}

static bool require_body(struct api_call *call, const char *what)
{
    if (call->body)
        return true;
    api_reply_error(call, 400, "invalid_schema", NULL, "the request needs a JSON body: %s", what);
    return false;
}

/* --- certificates --- */

static void changed(struct api_call *call, json_t *reply, int unknown_status)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, unknown_status);
        return;
    }
    api_reply_json(call, 200, api_agent_result(reply));
}

/* Redis Enterprise answers 403 for a certificate name it does not know in a replacement. */
static void replaced(struct api_call *call, json_t *reply)
{
    changed(call, reply, 403);
}

static void removed_or_rotated(struct api_call *call, json_t *reply)
{
    changed(call, reply, 404);
}

/* PUT /v1/cluster/update_cert {"name", "certificate", "key"} */
static void update_cert(struct api_call *call)
{
    static const char *const fields[] = {"name", "certificate", "key", NULL};
    const char *name, *cert;
    json_t *key;

    if (!require_body(call, "{\"name\", \"certificate\", \"key\"}") ||
        !only_fields(call, call->body, NULL, fields) ||
        !(name = string_field(call, call->body, "name", true, NULL)) ||
        !(cert = string_field(call, call->body, "certificate", true, NULL)))
        return;
    key = json_object_get(call->body, "key");
    if (key && !json_is_string(key)) {
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", "key"),
                        "'key' must be a string");
        return;
    }
    /* No key: the key a CSR left in the store, or none for a CA bundle (mtls_trusted_ca). */
    api_ask(call, "cluster certificate set", json_pack("[s]", name),
            key ? json_pack("{s:O, s:O}", "certificate", json_object_get(call->body, "certificate"),
                            "key", key)
                : json_pack("{s:O}", "certificate", json_object_get(call->body, "certificate")),
            true, true, replaced);
}

/* PUT /v1/cluster/certificates {"certificates": [{"name", "certificate", "key"}, ...]} */
static void put_certificates(struct api_call *call)
{
    static const char *const fields[] = {"certificates", NULL};
    static const char *const entry_fields[] = {"name", "certificate", "key", NULL};
    json_t *list, *entry;
    size_t i;

    if (!require_body(call, "{\"certificates\": [{\"name\", \"certificate\", \"key\"}, ...]}") ||
        !only_fields(call, call->body, NULL, fields))
        return;
    list = json_object_get(call->body, "certificates");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", "certificates"),
                        "'certificates' must be a non-empty array of {\"name\", \"certificate\", "
                        "\"key\"}");
        return;
    }
    json_array_foreach(list, i, entry)
    {
        char where[48];

        snprintf(where, sizeof(where), "certificates[%zu]", i);
        if (!json_is_object(entry)) {
            api_reply_error(call, 400, "invalid_schema", NULL, "%s is not an object", where);
            return;
        }
        if (!only_fields(call, entry, where, entry_fields) ||
            !string_field(call, entry, "name", true, where) ||
            !string_field(call, entry, "certificate", true, where) ||
            (json_object_get(entry, "key") && !string_field(call, entry, "key", false, where)))
            return;
    }
    /* One request for all of them: the agent validates every one before applying any. */
    api_ask(call, "cluster certificate set-many", NULL, json_pack("{s:O}", "certificates", list),
            true, true, replaced);
}

static void listed_certificates(struct api_call *call, json_t *reply)
{
    json_t *result = json_object(), *item;
    size_t i;

    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        json_decref(result);
        api_reply_refusal(call, reply, 404);
        return;
    }
    /* Certificates only: private keys never leave the agent (a difference from Redis
     * Enterprise, whose answer has <name>_key members too). */
    json_array_foreach(json_object_get(reply, "items"), i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        json_t *pem = json_object_get(item, "pem");
        char member[96];

        if (!name || !json_is_string(pem))
            continue;
        snprintf(member, sizeof(member), "%s_cert", name);
        json_object_set(result, member, pem);
    }
    api_reply_json(call, 200, result);
}

/* GET /v1/cluster/certificates */
static void get_certificates(struct api_call *call)
{
    char details[8] = "";

    if (http_query_get(http_request_query(call->request), "details", details, sizeof(details)) >
            0 &&
        strcmp(details, "true") == 0) {
        api_get_certificate_details(call);
        return;
    }
    api_ask(call, "cluster certificate list", NULL, json_pack("{s:b}", "pem", 1), false, false,
            listed_certificates);
}

/* DELETE /v1/cluster/certificates/<name> */
static void delete_certificate(struct api_call *call, const char *name)
{
    api_ask(call, "cluster certificate delete", json_pack("[s]", name), NULL, true, true,
            removed_or_rotated);
}

/* POST /v1/cluster/certificates/rotate [{"name"}] */
static void rotate(struct api_call *call)
{
    static const char *const fields[] = {"name", NULL};
    const char *name = "all";

    if (call->body) {
        if (!only_fields(call, call->body, NULL, fields))
            return;
        if (json_object_get(call->body, "name") &&
            !(name = string_field(call, call->body, "name", false, NULL)))
            return;
    }
    api_ask(call, "cluster certificate rotate", json_pack("[s]", name), NULL, true, true,
            removed_or_rotated);
}

/* --- the cluster's TLS policy --- */

/*
 * The policy as Redis Enterprise's cluster object has it: http_support and
 * mtls_certificate_authentication are booleans.
 */
static json_t *cluster_object(json_t *items)
{
    json_t *result = json_object(), *item;
    size_t i;

    json_array_foreach(items, i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        const char *value = json_string_value(json_object_get(item, "value"));

        if (!name || !value)
            continue; /* a cipher setting left to OpenSSL's default */
        if (strcmp(name, "http_support") == 0 ||
            strcmp(name, "mtls_certificate_authentication") == 0 ||
            strcmp(name, "ocsp_functionality") == 0 || strcmp(name, "ldap_authentication") == 0)
            json_object_set_new(result, name, json_boolean(strcmp(value, "enabled") == 0));
        else
            json_object_set_new(result, name, json_string(value));
    }
    return result;
}

static void shown_cluster(struct api_call *call, json_t *reply)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, 404);
        return;
    }
    api_reply_json(call, 200, cluster_object(json_object_get(reply, "items")));
}

/* GET /v1/cluster */
static void get_cluster(struct api_call *call)
{
    api_ask(call, "cluster config show", NULL, NULL, false, false, shown_cluster);
}

static void configured(struct api_call *call, json_t *reply)
{
    api_after_change(call, reply, 404, "cluster config show", shown_cluster);
}

/*
 * A value as the agent's policy takes it: strings as they are, booleans as
 * enabled/disabled (http_support, mtls_certificate_authentication), numbers as written (1.2), and
 * lists of cipher names joined with ':' (Redis Enterprise lists some as arrays). Returns a new
 * string, or NULL for another type.
 */
static char *policy_value(json_t *value)
{
    char *text = NULL;

    if (json_is_string(value))
        return strdup(json_string_value(value));
    if (json_is_boolean(value))
        return strdup(json_is_true(value) ? "enabled" : "disabled");
    if (json_is_integer(value) && asprintf(&text, "%lld", (long long)json_integer_value(value)) > 0)
        return text;
    if (json_is_real(value) && asprintf(&text, "%g", json_real_value(value)) > 0)
        return text;
    if (json_is_array(value) && json_array_size(value) > 0) {
        size_t i, len = 0;
        json_t *item;

        json_array_foreach(value, i, item)
        {
            if (!json_is_string(item) || strchr(json_string_value(item), ':'))
                return NULL;
            len += json_string_length(item) + 1;
        }
        text = calloc(1, len + 1);
        json_array_foreach(value, i, item)
        {
            if (text && i)
                strcat(text, ":");
            if (text)
                strcat(text, json_string_value(item));
        }
        return text;
    }
    return NULL;
}

/* PUT /v1/cluster {"min_control_TLS_version": "1.3", "http_support": false, ...} */
static void put_cluster(struct api_call *call)
{
    json_t *args = json_array(), *value;
    const char *key;

    if (!require_body(call, "the cluster settings to change") || !args) {
        json_decref(args);
        return;
    }
    if (json_object_size(call->body) == 0) {
        json_decref(args);
        api_reply_error(call, 400, "invalid_schema", NULL, "no setting to change");
        return;
    }
    json_object_foreach(call->body, key, value)
    {
        char *text = policy_value(value);

        if (!text) {
            json_decref(args);
            api_reply_error(call, 400, "invalid_setting", json_pack("{s:s}", "field", key),
                            "'%s' takes a string (a boolean for http_support and "
                            "mtls_certificate_authentication): nothing was changed",
                            key);
            return;
        }
        json_array_append_new(args, json_string(key));
        json_array_append_new(args, json_string(text));
        free(text);
    }
    /* The agent knows the settings (both spellings); one it does not know refuses them all. */
    api_ask(call, "cluster config", args, NULL, true, true, configured);
}

/* --- the node's services --- */

/* "3 days, 4:05:06", as Redis Enterprise prints an uptime. */
static json_t *uptime_text(json_int_t seconds)
{
    char text[64];
    long long s = seconds < 0 ? 0 : (long long)seconds;

    if (s >= 86400)
        snprintf(text, sizeof(text), "%lld day%s, %lld:%02lld:%02lld", s / 86400,
                 s / 86400 == 1 ? "" : "s", s % 86400 / 3600, s % 3600 / 60, s % 60);
    else
        snprintf(text, sizeof(text), "%lld:%02lld:%02lld", s / 3600, s % 3600 / 60, s % 60);
    return json_string(text);
}

/* When a service that has been up for uptime seconds became ready, in ISO 8601 UTC
 * ("2024-05-13T18:38:00Z", Redis Enterprise's start_time); "" for one that is not running. */
static json_t *start_time_text(const char *status, json_int_t uptime)
{
    time_t at = time(NULL) - (time_t)uptime;
    struct tm tm;
    char text[32] = "";

    if (status && strcmp(status, "RUNNING") == 0 && gmtime_r(&at, &tm))
        strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(text);
}

/* Redis Enterprise's fields (start_time, status, uptime), then certvisor's (pid,
 * uptime_seconds, restarts). */
static void listed_services(struct api_call *call, json_t *reply)
{
    json_t *result = json_object(), *item;
    size_t i;

    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        json_decref(result);
        api_reply_refusal(call, reply, 404);
        return;
    }
    json_array_foreach(json_object_get(reply, "services"), i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        json_int_t uptime = json_integer_value(json_object_get(item, "uptime_seconds"));
        json_int_t restarts = json_integer_value(json_object_get(item, "restarts"));
        json_int_t crashes = json_integer_value(json_object_get(item, "crashes"));

        if (!name)
            continue;
        json_object_set_new(
            result, name,
            json_pack("{s:o, s:O, s:o, s:O, s:I, s:O, s:I, s:I}", "start_time",
                      start_time_text(json_string_value(json_object_get(item, "state")), uptime),
                      "status", json_object_get(item, "state"), "uptime", uptime_text(uptime),
                      "pid", json_object_get(item, "pid"), "uptime_seconds", uptime, "restarts",
                      json_object_get(item, "restarts"), "crashes", crashes, "planned_restarts",
                      restarts - crashes));
    }
    api_reply_json(call, 200, result);
}

/* GET /v1/local/services */
static void get_services(struct api_call *call)
{
    api_ask(call, "metrics", NULL, NULL, false, false, listed_services);
}

static void operated(struct api_call *call, json_t *reply)
{
    json_t *result = json_object(), *item;
    bool failed = json_integer_value(json_object_get(reply, "exit")) != 0;
    bool only_conflicts = true; /* every failure is "already started" or "not running" */
    size_t i;

    json_array_foreach(json_object_get(reply, "items"), i, item)
    {
        const char *name = json_string_value(json_object_get(item, "name"));
        json_t *error = json_object_get(item, "error");
        const char *why = json_string_value(error);

        if (why && strcmp(why, "already started") != 0 && strcmp(why, "not running") != 0)
            only_conflicts = false;
        if (name)
            json_object_set_new(result, name,
                                error ? json_pack("{s:b, s:O}", "ok", 0, "error", error)
                                      : json_true());
    }
    if (failed && !json_object_get(reply, "items")) {
        json_decref(result);
        api_reply_refusal(call, reply, 404);
        return;
    }
    /* A service already in the state asked for is the request's conflict, not a server error. */
    if (failed && only_conflicts) {
        api_reply_error(call, 409, "invalid_service_state", json_pack("{s:o}", "services", result),
                        "a service is already in a state the operation cannot start from");
        return;
    }
    if (failed) {
        api_reply_error(call, 500, "operation_failed", json_pack("{s:o}", "services", result),
                        "not every service reached the state asked for");
        return;
    }
    /* Every one did: {"<service>": true}, as Redis Enterprise answers (scripts test the value). */
    api_reply_json(call, 200, result);
}

/* Every name known (status answers exit 4 otherwise): then the plan, or the operation. */
static void checked_services(struct api_call *call, json_t *reply)
{
    const char *operation = json_string_value(json_object_get(call->scratch, "operation"));
    json_t *names = json_object_get(call->scratch, "services");
    json_t *unknown = json_array(), *plan = json_array(), *item;
    size_t i;

    json_array_foreach(json_object_get(reply, "items"), i, item)
    {
        if (json_object_get(item, "error"))
            json_array_append(unknown, json_object_get(item, "name"));
        else
            json_array_append_new(
                plan, json_pack("{s:O, s:s, s:O}", "service", json_object_get(item, "name"),
                                "action", operation, "state", json_object_get(item, "state")));
    }
    if (json_array_size(unknown) > 0) {
        json_decref(plan);
        api_reply_error(call, 404, "unknown_service", json_pack("{s:o}", "services", unknown),
                        "no service named %s: nothing was done",
                        json_string_value(json_array_get(unknown, 0)));
        return;
    }
    json_decref(unknown);
    if (!json_object_get(reply, "items")) {
        json_decref(plan);
        api_reply_refusal(call, reply, 404);
        return;
    }
    if (call->dry_run) {
        api_reply_json(call, 200, json_pack("{s:b, s:o}", "dry_run", 1, "plan", plan));
        return;
    }
    json_decref(plan);
    api_ask(call, operation, json_deep_copy(names), NULL, false, true, operated);
}

/* POST /v1/local/services {"operation_type": "restart", "services": [...]} */
static void post_services(struct api_call *call)
{
    static const char *const fields[] = {"operation_type", "services", NULL};
    const char *operation;
    json_t *names, *name;
    size_t i;

    if (!require_body(call, "{\"operation_type\": \"restart\", \"services\": [...]}") ||
        !only_fields(call, call->body, NULL, fields) ||
        !(operation = string_field(call, call->body, "operation_type", true, NULL)))
        return;
    if (strcmp(operation, "restart") != 0 && strcmp(operation, "start") != 0 &&
        strcmp(operation, "stop") != 0) {
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", "operation_type"),
                        "operation_type '%s' is not restart, start or stop", operation);
        return;
    }
    names = json_object_get(call->body, "services");
    if (!json_is_array(names) || json_array_size(names) == 0) {
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", "services"),
                        "'services' must be a non-empty array of service names");
        return;
    }
    json_array_foreach(names, i, name)
    {
        if (!json_is_string(name) || strcmp(json_string_value(name), "all") == 0) {
            api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", "services"),
                            "'services' must name services (strings; 'all' is not taken)");
            return;
        }
    }
    call->scratch = json_pack("{s:s, s:O}", "operation", operation, "services", names);
    api_ask(call, "status", json_deep_copy(names), NULL, false, false, checked_services);
}

/* --- routing --- */

enum route_id {
    ROUTE_UPDATE_CERT,
    ROUTE_CERTIFICATES,
    ROUTE_ROTATE,
    ROUTE_CERTIFICATE,
    ROUTE_CLUSTER,
    ROUTE_SERVICES,
    ROUTE_AUDIT,
    ROUTE_CLUSTER_STATUS,
    ROUTE_NODES,
    ROUTE_LDAP,
    ROUTE_OCSP,
    ROUTE_OCSP_STATUS,
    ROUTE_OCSP_TEST,
    ROUTE_JOIN_CA,
    ROUTE_JOIN_ADMIT,
    ROUTE_CLUSTER_JOIN,
};

/* path pattern: "*" stands for one segment (a certificate name). */
static const struct {
    enum route_id id;
    const char *pattern;
    const char *method;
    api_route_fn fn; /* NULL: the one-segment route, called with the segment */
} routes[] = {
    {ROUTE_UPDATE_CERT, "/v1/cluster/update_cert", "PUT", update_cert},
    {ROUTE_CERTIFICATES, "/v1/cluster/certificates", "GET", get_certificates},
    {ROUTE_CERTIFICATES, "/v1/cluster/certificates", "PUT", put_certificates},
    {ROUTE_ROTATE, "/v1/cluster/certificates/rotate", "POST", rotate},
    {ROUTE_CERTIFICATE, "/v1/cluster/certificates/*", "DELETE", NULL},
    {ROUTE_CLUSTER, "/v1/cluster", "GET", get_cluster},
    {ROUTE_CLUSTER, "/v1/cluster", "PUT", put_cluster},
    {ROUTE_SERVICES, "/v1/local/services", "GET", get_services},
    {ROUTE_SERVICES, "/v1/local/services", "POST", post_services},
    {ROUTE_AUDIT, "/v1/cluster/audit_log", "GET", api_get_audit_log},
    {ROUTE_CLUSTER_STATUS, "/v1/cluster/status", "GET", api_get_cluster_status},
    {ROUTE_NODES, "/v1/nodes", "GET", api_get_nodes},
    {ROUTE_LDAP, "/v1/cluster/ldap", "GET", api_get_ldap},
    {ROUTE_LDAP, "/v1/cluster/ldap", "PUT", api_put_ldap},
    {ROUTE_OCSP, "/v1/ocsp", "GET", api_get_ocsp},
    {ROUTE_OCSP, "/v1/ocsp", "PUT", api_put_ocsp},
    {ROUTE_OCSP_STATUS, "/v1/ocsp/status", "GET", api_get_ocsp_status},
    {ROUTE_OCSP_TEST, "/v1/ocsp/test", "POST", api_test_ocsp},
    {ROUTE_JOIN_CA, "/v1/join/ca", "GET", api_get_join_ca},
    {ROUTE_JOIN_ADMIT, "/v1/join/admit", "POST", api_post_join_admit},
    {ROUTE_CLUSTER_JOIN, "/v1/cluster/join", "POST", api_post_cluster_join},
};

bool api_route_is_public(struct http_request *request)
{
    const char *path = http_request_path(request);

    return strcmp(path, "/v1/join/ca") == 0 || strcmp(path, "/v1/join/admit") == 0;
}

/* True when path matches pattern; *ret_segment gets what "*" matched (path is changed). */
static bool path_matches(const char *pattern, char *path, char **ret_segment)
{
    const char *star = strchr(pattern, '*');
    size_t prefix;

    if (!star)
        return strcmp(pattern, path) == 0;
    prefix = (size_t)(star - pattern);
    if (strncmp(pattern, path, prefix) != 0 || !path[prefix] || strchr(path + prefix, '/'))
        return false;
    *ret_segment = path + prefix;
    return strcmp(*ret_segment, "rotate") != 0; /* its own route */
}

void api_route(struct api_call *call)
{
    const char *method = http_request_method(call->request);
    char path[256], allow[64] = "", *segment = NULL;
    int id = -1;

    snprintf(path, sizeof(path), "%s", http_request_path(call->request));
    if (strlen(path) > 1 && path[strlen(path) - 1] == '/')
        path[strlen(path) - 1] = '\0'; /* "/v1/cluster/" is "/v1/cluster" */
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        char *matched = NULL;
        bool get = strcmp(routes[i].method, "GET") == 0;

        if (!path_matches(routes[i].pattern, path, &matched))
            continue;
        id = (int)routes[i].id;
        snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s%s", *allow ? ", " : "",
                 routes[i].method, get ? ", HEAD" : "");
        if (strcmp(method, routes[i].method) != 0 && !(get && strcmp(method, "HEAD") == 0))
            continue;
        if (routes[i].fn) {
            routes[i].fn(call);
        } else {
            segment = matched;
            delete_certificate(call, segment);
        }
        return;
    }
    if (id < 0) {
        api_reply_error(call, 404, "not_found", NULL, "no endpoint at %s", path);
        return;
    }
    http_response_header(call->request, "Allow", allow);
    api_reply_error(call, 405, "method_not_allowed", NULL, "%s takes %s, not %s", path, allow,
                    method);
}
