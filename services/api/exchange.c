/* One REST call: authentication, the JSON body, asking the agent for the REST user, answering. */
#include "api.h"

#include "json_body.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define API_MAX_PASSWORD 1024

/* Every error code the API answers with, and what it means. */
static const struct {
    const char *code;
    const char *description;
} descriptions[] = {
    {"unauthorized", "The request needs the user name and password of a REST user (HTTP Basic), "
                     "or, where certificate sign-in is enabled, a client certificate of one."},
    {"too_many_failed_sign_ins",
     "Too many failed sign-ins from this address (in all, or for this user name): wait "
     "Retry-After seconds before trying again."},
    {"sign_in_busy", "The agent checks no more sign-ins per second than its budget allows, and "
                     "it is spent for now: wait Retry-After seconds before trying again."},
    {"insufficient_permissions", "The user's role does not allow this request."},
    {"not_found", "No such endpoint."},
    {"method_not_allowed", "The endpoint does not take this method (see Allow)."},
    {"unsupported_media_type", "Request bodies are JSON: send Content-Type: application/json."},
    {"invalid_json", "The request body is not valid JSON."},
    {"invalid_schema", "The request body does not have the fields this endpoint takes."},
    {"unknown_field", "The request names a field this endpoint does not know."},
    {"invalid_query", "The query string is not valid for this endpoint."},
    {"bad_request", "The request is not valid HTTP."},
    {"request_timeout", "The request was not received in time."},
    {"length_required", "The request body needs a Content-Length."},
    {"payload_too_large", "The request body is larger than the API takes."},
    {"expectation_failed", "The only Expect the API understands is 100-continue."},
    {"header_too_large", "The request head is larger than the API takes."},
    {"http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are spoken."},
    {"invalid_certificate", "The certificate or key is not valid for that certificate name."},
    {"expired_certificate", "The certificate has expired."},
    {"unknown_certificate", "No certificate has that name."},
    {"required_certificate", "A required certificate cannot be deleted."},
    {"certificate_not_set", "That optional certificate is not set."},
    {"certificate_in_use", "The certificate is in use and cannot be deleted now."},
    {"certificate_not_generated",
     "The certificate is provided by the operator: only generated certificates are rotated."},
    {"externally_managed",
     "The certificate is kept in files named in the agent's configuration: change those files."},
    {"invalid_setting", "A TLS policy value was refused."},
    {"unknown_service", "No service has that name."},
    {"operation_failed", "A service did not reach the state the operation asked for."},
    {"invalid_service_state",
     "A service is already in a state the operation cannot start from (stop of a stopped one)."},
    {"change_rolled_back",
     "A service did not come back with the change: the previous state is in force again."},
    {"not_all_nodes_updated",
     "The change is published to the cluster, but not every node has applied it: each node "
     "catches up by itself; a retry is harmless."},
    {"cluster_conflict",
     "Another node changed the same thing first: nothing was changed; look, then try again."},
    {"not_supported_in_cluster", "This change is not kept in the cluster's store yet."},
    {"cluster_unavailable",
     "The cluster's store has no quorum or cannot be reached: nothing can change now; services "
     "keep serving the current configuration."},
    {"agent_unavailable", "certvisord cannot be reached, or is stopping."},
    {"directory_unavailable",
     "The LDAP directory that checks this user cannot be asked now (down, too slow, or a failed "
     "TLS handshake): local users still sign in."},
    {"agent_busy", "certvisord has too many of these requests waiting: try again in a moment."},
    {"ocsp_query_failed",
     "The OCSP responder could not be asked, or its answer did not verify: the answer held "
     "before stays."},
    {"read_only_field", "This field is not set here: it follows from something else."},
    {"join_refused",
     "The join token is unknown, expired, already used, or its secret is wrong: make a new one "
     "on a node of the cluster."},
    {"not_a_cluster", "This node's store is local: there is no cluster to join through it."},
    {"already_member", "This node is a node of a cluster already."},
    {"ca_mismatch",
     "The peer's cluster CA does not have the public key hash given: nothing was sent to it."},
    {"peer_unreachable", "The node to join through did not answer over TLS."},
    {"peer_refused", "The node to join through refused the join, or answered what is not one."},
    {"join_failed", "A step of the join failed, and what the join had done was undone."},
    {"not_applied",
     "The node joined, but has not applied the cluster's state yet: it keeps trying."},
    {"agent_timeout", "certvisord did not answer in time; the change may still complete."},
    {"internal_error", "The request failed for a reason the API cannot name."},
};

static const char *description_of(const char *code)
{
    for (size_t i = 0; i < sizeof(descriptions) / sizeof(descriptions[0]); i++)
        if (strcmp(descriptions[i].code, code) == 0)
            return descriptions[i].description;
    return "";
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void call_free(struct api_call *call)
{
    control_async_cancel(call->pending);
    if (call->password) {
        explicit_bzero(call->password, strlen(call->password));
        free(call->password);
    }
    free(call->certificate_chain);
    json_decref(call->body);
    json_decref(call->scratch);
    free(call);
}

/* The HTTP server is going away with the request unanswered: the call goes first. */
static void on_abandon(void *data)
{
    call_free(data);
}

/* Sends the answer, logs the access line, and ends the call. */
static void finish(struct api_call *call, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char peer[64];

    http_request_peer(call->request, peer, sizeof(peer));
    log_info("%s %s %d user '%s'%s from %s (%ld ms)", http_request_method(call->request),
             http_request_path(call->request), status, *call->user ? call->user : "-",
             call->certificate_chain ? " (client certificate)" : "", peer,
             now_ms() - call->started_ms);
    if (!text) {
        static const char fallback[] = "{\"error_code\": \"internal_error\", \"description\": "
                                       "\"out of memory\", \"message\": \"out of memory\"}";

        http_respond(call->request, 500, "application/json", fallback, sizeof(fallback) - 1);
    } else {
        size_t len = strlen(text);

        text[len] = '\n'; /* the NUL goes: the length says where the body ends */
        http_respond(call->request, status, "application/json", text, len + 1);
    }
    free(text);
    json_decref(body);
    call_free(call);
}

void api_reply_json(struct api_call *call, int status, json_t *body)
{
    finish(call, status, body ? body : json_object());
}

static json_t *error_object(const char *code, json_t *extra, const char *message)
{
    json_t *body = json_pack("{s:s, s:s, s:s}", "error_code", code, "description",
                             description_of(code), "message", message);

    if (body && extra)
        json_object_update_missing(body, extra);
    json_decref(extra);
    return body;
}

void api_reply_error(struct api_call *call, int status, const char *error_code, json_t *extra,
                     const char *fmt, ...)
{
    char message[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    finish(call, status, error_object(error_code, extra, message));
}

char *api_error_body(int status, const char *message, const char **ret_content_type,
                     size_t *ret_len, void *data)
{
    const char *code = status == 408   ? "request_timeout"
                       : status == 411 ? "length_required"
                       : status == 413 ? "payload_too_large"
                       : status == 417 ? "expectation_failed"
                       : status == 431 ? "header_too_large"
                       : status == 505 ? "http_version_not_supported"
                                       : "bad_request";
    json_t *body = error_object(code, NULL, message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    (void)data;
    json_decref(body);
    if (!text)
        return NULL;
    *ret_content_type = "application/json";
    *ret_len = strlen(text);
    return text;
}

/* --- the agent --- */

/* What an agent's reason becomes over HTTP. */
static const struct {
    const char *reason;
    int status;
    const char *code;
} refusals[] = {
    {"expired", 406, "expired_certificate"},
    {"invalid_certificate", 400, "invalid_certificate"},
    {"unknown_certificate", 0, "unknown_certificate"}, /* the route's status */
    {"required_certificate", 403, "required_certificate"},
    {"not_set", 404, "certificate_not_set"},
    {"in_use", 409, "certificate_in_use"},
    {"not_generated", 403, "certificate_not_generated"},
    {"external", 409, "externally_managed"},
    {"invalid_setting", 400, "invalid_setting"},
    {"unknown_setting", 400, "unknown_field"},
    {"usage", 400, "invalid_schema"},
    {"rolled_back", 409, "change_rolled_back"},
    {"not_all_nodes_updated", 409, "not_all_nodes_updated"},
    {"conflict", 409, "cluster_conflict"},
    {"not_in_cluster", 409, "not_supported_in_cluster"},
    {"cluster_unavailable", 503, "cluster_unavailable"},
    {"shutting_down", 503, "agent_unavailable"},
    {"permission_denied", 403, "insufficient_permissions"},
    {"ocsp_query_failed", 502, "ocsp_query_failed"}, /* the responder, not the request */
    {"busy", 503, "agent_busy"},
    {"invalid_request", 400, "invalid_schema"},
    {"join_refused", 403, "join_refused"},
    {"not_a_cluster", 409, "not_a_cluster"},
    {"already_member", 409, "already_member"},
    {"ca_mismatch", 409, "ca_mismatch"},
    {"peer_unreachable", 502, "peer_unreachable"},
    {"peer_refused", 502, "peer_refused"},
    {"join_failed", 502, "join_failed"},
    {"not_applied", 504, "not_applied"},
    {"failed", 500, "internal_error"},
};

void api_reply_refusal(struct api_call *call, json_t *reply, int unknown_status)
{
    const char *reason = json_string_value(json_object_get(reply, "reason"));
    const char *message = json_string_value(json_object_get(reply, "error"));
    json_int_t exit_status = json_integer_value(json_object_get(reply, "exit"));

    if (!message)
        message = "the agent refused the request without saying why";
    for (size_t i = 0; reason && i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        if (strcmp(refusals[i].reason, reason) == 0) {
            json_t *nodes = json_object_get(reply, "nodes");

            /* A cluster's answer names each node and its outcome. */
            api_reply_error(call, refusals[i].status ? refusals[i].status : unknown_status,
                            refusals[i].code, nodes ? json_pack("{s:O}", "nodes", nodes) : NULL,
                            "%s", message);
            return;
        }
    }
    /* No reason: usage errors of the control protocol are the request's; the rest is ours. */
    if (exit_status == 2)
        api_reply_error(call, 400, "invalid_schema", NULL, "%s", message);
    else
        api_reply_error(call, 500, "internal_error", NULL, "%s", message);
}

void api_after_change(struct api_call *call, json_t *reply, int refusal_status,
                      const char *show_command, api_reply_fn shown)
{
    if (json_integer_value(json_object_get(reply, "exit")) != 0) {
        api_reply_refusal(call, reply, refusal_status);
        return;
    }
    if (call->dry_run) {
        api_reply_json(call, 200, api_agent_result(reply));
        return;
    }
    api_ask(call, show_command, NULL, NULL, false, false, shown);
}

json_t *api_agent_result(json_t *reply)
{
    json_t *result = json_deep_copy(reply);

    json_object_del(result, "exit");
    json_object_del(result, "coalesced");
    return result;
}

/*
 * A read the agent answered from its own copy while the cluster's store was out of reach:
 * HTTP's warning for a stale response (110), and certvisor's reason in a header of its own.
 * The body stays what clients parse.
 */
static void mark_stale(struct api_call *call, const char *why)
{
    char value[512];
    size_t i;

    /* The reason quotes etcd's words: nothing of it may end or quote the header. */
    for (i = 0; why[i] && i + 1 < sizeof(value); i++)
        value[i] = (unsigned char)why[i] < 0x20 || why[i] == 0x7f || why[i] == '"' ? ' ' : why[i];
    value[i] = '\0';
    http_response_header(call->request, "Warning", "110 certvisor \"Response is Stale\"");
    http_response_header(call->request, "X-Certvisor-Stale", value);
}

static void on_agent_answer(void *data, json_t *reply, const char *error)
{
    struct api_call *call = data;
    const char *auth;

    call->pending = NULL;
    if (!reply) {
        bool timeout = strstr(error, "did not answer") != NULL;

        log_warning("%s %s: %s", http_request_method(call->request),
                    http_request_path(call->request), error);
        api_reply_error(call, timeout ? 504 : 503, timeout ? "agent_timeout" : "agent_unavailable",
                        NULL, "%s", error);
        return;
    }
    auth = json_string_value(json_object_get(reply, "auth"));
    if (auth && strcmp(auth, "throttled") == 0) {
        char seconds[32];
        json_int_t retry = json_integer_value(json_object_get(reply, "retry_after"));
        const char *reason = json_string_value(json_object_get(reply, "reason"));
        bool busy = reason && strcmp(reason, "sign_in_busy") == 0;

        snprintf(seconds, sizeof(seconds), "%lld", (long long)(retry > 0 ? retry : 1));

        http_response_header(call->request, "Retry-After", seconds);
        /* A spent budget is the server's state (503), a lock-out the client's doing (429). */
        api_reply_error(call, busy ? 503 : 429, busy ? "sign_in_busy" : "too_many_failed_sign_ins",
                        json_pack("{s:I}", "retry_after", retry > 0 ? retry : 1), "%s",
                        json_string_value(json_object_get(reply, "error")) ?: "try again later");
        return;
    }
    if (auth && strcmp(auth, "unavailable") == 0) {
        /* A directory user whose directory cannot be asked: the server's state, not the
         * credentials (local users still sign in). */
        api_reply_error(call, 503, "directory_unavailable", NULL, "%s",
                        json_string_value(json_object_get(reply, "error"))
                            ?: "the LDAP "
                               "directory cannot be "
                               "asked");
        return;
    }
    if (auth) {
        http_response_header(call->request, "WWW-Authenticate",
                             "Basic realm=\"certvisor\", charset=\"UTF-8\"");
        api_reply_error(call, 401, "unauthorized", NULL, "%s",
                        json_string_value(json_object_get(reply, "error")) ?: "sign-in failed");
        return;
    }
    if (strcmp(json_string_value(json_object_get(reply, "reason")) ?: "", "permission_denied") ==
        0) {
        api_reply_refusal(call, reply, 403);
        return;
    }
    if (json_is_string(json_object_get(reply, "stale")))
        mark_stale(call, json_string_value(json_object_get(reply, "stale")));
    call->on_reply(call, reply);
}

/* Sends request (taken) to the agent; fn gets its answer, or the call is answered here. */
static void send_request(struct api_call *call, json_t *request, int timeout_ms, api_reply_fn fn)
{
    int r;

    call->on_reply = fn;
    call->timeout_ms = timeout_ms;
    r = request ? control_async_call(call->api->agent, request, call->timeout_ms, on_agent_answer,
                                     call, &call->pending)
                : -ENOMEM;
    json_decref(request);
    if (r < 0)
        api_reply_error(call, 500, "internal_error", NULL, "out of memory");
}

void api_ask_anonymous(struct api_call *call, const char *command, json_t *args, json_t *options,
                       int timeout_ms, api_reply_fn fn)
{
    send_request(call,
                 json_pack("{s:s, s:o, s:o, s:b}", "command", command, "args",
                           args ? args : json_array(), "options", options ? options : json_object(),
                           "as_anonymous", 1),
                 timeout_ms, fn);
}

void api_peer_address(struct api_call *call, char *buf, size_t len)
{
    char peer[80], *source = peer;

    http_request_peer(call->request, peer, sizeof(peer));
    if (*source == '[')
        source++;
    source[strcspn(source, *peer == '[' ? "]" : ":")] = '\0';
    snprintf(buf, len, "%s", strcmp(source, "?") ? source : "");
}

void api_ask(struct api_call *call, const char *command, json_t *args, json_t *options,
             bool dry_run_option, bool change, api_reply_fn fn)
{
    json_t *request;

    if (!options)
        options = json_object();
    if (!args)
        args = json_array();
    if (dry_run_option && call->dry_run)
        json_object_set_new(options, "dry_run", json_true());
    /* The agent maps the certificate to its user, and takes that only from this service. */
    if (call->certificate_chain)
        request = json_pack("{s:s, s:o, s:o, s:{s:s}}", "command", command, "args", args, "options",
                            options, "as_certificate", "chain", call->certificate_chain);
    else {
        /* The client's address without its port ("[::1]:5" -> "::1"): the agent limits and
         * locks out sign-ins per source address. Omitted when the peer is unknown. */
        char source[80];

        api_peer_address(call, source, sizeof(source));
        request = json_pack("{s:s, s:o, s:o, s:{s:s, s:s, s:s*}}", "command", command, "args", args,
                            "options", options, "as_user", "name", call->user, "password",
                            call->password, "source", *source ? source : NULL);
    }
    send_request(call, request, change ? API_CHANGE_TIMEOUT_MS : API_READ_TIMEOUT_MS, fn);
}

/* --- the request --- */

static int base64_value(char ch)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = ch ? strchr(alphabet, ch) : NULL;

    return p ? (int)(p - alphabet) : -1;
}

/* Decodes base64 (padded or not) into out (at least len * 3 / 4 + 1). Returns the length or -1. */
static ssize_t base64_decode(const char *text, size_t len, unsigned char *out)
{
    size_t used = 0, bits = 0;
    unsigned value = 0;

    while (len > 0 && text[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        int v = base64_value(text[i]);

        if (v < 0)
            return -1;
        value = (value << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[used++] = (unsigned char)(value >> bits);
            value &= (1u << bits) - 1;
        }
    }
    return (ssize_t)used;
}

static bool utf8_valid(const char *text)
{
    json_t *string = json_string(text); /* NULL for text that is not UTF-8 */

    json_decref(string);
    return string != NULL;
}

/* Takes the user and password of "Authorization: Basic ...". Returns 0, or -EINVAL. */
static int take_credentials(struct api_call *call, const char *header)
{
    unsigned char *decoded;
    const char *encoded;
    ssize_t len;
    char *colon;
    size_t encoded_len;

    if (!header || strncasecmp(header, "Basic ", 6) != 0)
        return -EINVAL;
    encoded = header + 6 + strspn(header + 6, " ");
    encoded_len = strlen(encoded);
    if (encoded_len > (API_MAX_PASSWORD + sizeof(call->user)) * 4 / 3 + 4)
        return -EINVAL;
    decoded = malloc(encoded_len * 3 / 4 + 2);
    if (!decoded)
        return -ENOMEM;
    len = base64_decode(encoded, encoded_len, decoded);
    if (len >= 0)
        decoded[len] = '\0';
    colon = len > 0 ? memchr(decoded, ':', (size_t)len) : NULL;
    if (!colon || memchr(decoded, '\0', (size_t)len) || colon == (char *)decoded ||
        (size_t)(colon - (char *)decoded) >= sizeof(call->user)) {
        if (len > 0)
            explicit_bzero(decoded, (size_t)len);
        free(decoded);
        return -EINVAL;
    }
    *colon = '\0';
    snprintf(call->user, sizeof(call->user), "%s", (char *)decoded);
    call->password = strdup(colon + 1);
    explicit_bzero(decoded, (size_t)len);
    free(decoded);
    if (!call->password)
        return -ENOMEM;
    /* The control protocol is JSON: names and passwords are UTF-8 text. A name is logged, by
     * the agent and here: no control character may forge a log line. */
    if (!utf8_valid(call->user) || !utf8_valid(call->password))
        return -EINVAL;
    for (const unsigned char *p = (const unsigned char *)call->user; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return -EINVAL;
    return 0;
}

/* True for application/json (with parameters, any case). */
static bool is_json_type(const char *content_type)
{
    size_t len = strcspn(content_type, "; \t");

    return len == 16 && strncasecmp(content_type, "application/json", 16) == 0;
}

/* Reads ?dry_run: true, 1 or present without a value; false or 0. Returns false when invalid. */
static bool take_dry_run(struct api_call *call)
{
    char value[16];
    int r = http_query_get(http_request_query(call->request), "dry_run", value, sizeof(value));

    if (r == 0)
        return true;
    if (r > 0 && (!*value || strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)) {
        call->dry_run = true;
        return true;
    }
    return r > 0 && (strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0);
}

/* True when the member path names that field ("key", "certificates[0].key"). */
static bool names_field(const char *path, const char *field)
{
    size_t len = strlen(path), field_len = strlen(field);

    return len >= field_len && strcmp(path + len - field_len, field) == 0 &&
           (len == field_len || path[len - field_len - 1] == '.');
}

/*
 * A body with binary data where text belongs: most likely a DER certificate or
 * key, which the API takes as PEM text only. Says how to convert it.
 */
static void refuse_binary(struct api_call *call, const struct json_body_error *error)
{
    static const char der_hint[] =
        "certificates and keys are sent as PEM text (-----BEGIN CERTIFICATE----- ...); to convert "
        "DER files: openssl x509 -inform der -in cert.der -out cert.pem, and for a key "
        "openssl pkey -inform der -in key.der -out key.pem";

    if (!*error->field) {
        /* Bytes that are not UTF-8, where jansson stopped: "unable to decode byte 0x82 ...". */
        const char *byte = strstr(error->text, "byte 0x");

        api_reply_error(call, 400, "invalid_json",
                        json_pack("{s:i, s:i, s:i}", "line", error->line, "column", error->column,
                                  "position", error->position),
                        "the body is not UTF-8 text (%.9s at line %d, column %d): %s",
                        byte ? byte : "a byte", error->line, error->column, der_hint);
    } else if (names_field(error->field, "key")) {
        api_reply_error(call, 400, "invalid_certificate", json_pack("{s:s}", "field", error->field),
                        "'%s' holds binary data (a NUL byte): the key must be PEM text "
                        "(-----BEGIN PRIVATE KEY----- ...); to convert a DER key: openssl pkey "
                        "-inform der -in key.der -out key.pem",
                        error->field);
    } else if (names_field(error->field, "certificate")) {
        api_reply_error(call, 400, "invalid_certificate", json_pack("{s:s}", "field", error->field),
                        "'%s' holds binary data (a NUL byte): the certificate must be PEM text "
                        "(-----BEGIN CERTIFICATE----- ...); to convert a DER certificate: openssl "
                        "x509 -inform der -in cert.der -out cert.pem",
                        error->field);
    } else {
        api_reply_error(call, 400, "invalid_schema", json_pack("{s:s}", "field", error->field),
                        "'%s' holds binary data (a NUL byte) where text belongs; %s", error->field,
                        der_hint);
    }
}

void api_handle(struct http_request *request, void *data)
{
    struct api_call *call = calloc(1, sizeof(*call));
    const char *content_type = http_request_header(request, "content-type");
    struct json_body_error error;
    size_t body_len;
    const char *body = http_request_body(request, &body_len);

    if (!call) {
        static const char text[] = "{\"error_code\": \"internal_error\", \"description\": "
                                   "\"out of memory\", \"message\": \"out of memory\"}\n";

        http_respond(request, 500, "application/json", text, sizeof(text) - 1);
        return;
    }
    call->api = data;
    call->request = request;
    call->started_ms = now_ms();
    http_request_on_abandon(request, on_abandon, call);
    /*
     * The API holds no users: the agent checks the credentials with every request. Basic
     * credentials come first; without them, a client certificate that verified in the
     * handshake (asked for only while certificate sign-in is enabled) is the agent's to map.
     */
    if (!http_request_header(request, "authorization") && !api_route_is_public(request))
        call->certificate_chain = http_request_peer_chain_pem(request);
    /* The join's public routes take credentials when given (an admin joins a node without a
     * token), and go without them otherwise. */
    if (!call->certificate_chain &&
        (!api_route_is_public(request) || http_request_header(request, "authorization")) &&
        take_credentials(call, http_request_header(request, "authorization")) < 0) {
        http_response_header(request, "WWW-Authenticate",
                             "Basic realm=\"certvisor\", charset=\"UTF-8\"");
        api_reply_error(call, 401, "unauthorized", NULL,
                        "sign in with HTTP Basic authentication (curl -u user:password), or with "
                        "a client certificate where certificate sign-in is enabled");
        return;
    }
    if (!take_dry_run(call)) {
        api_reply_error(call, 400, "invalid_query", NULL,
                        "dry_run takes true or false (or no value, meaning true)");
        return;
    }
    if (body_len > 0) {
        if (!content_type || !is_json_type(content_type)) {
            api_reply_error(call, 415, "unsupported_media_type", NULL,
                            "the body is sent as '%s'; send it as application/json",
                            content_type ? content_type : "(no Content-Type)");
            return;
        }
        call->body = json_body_parse(body, body_len, &error);
        if (!call->body && error.binary) {
            refuse_binary(call, &error);
            return;
        }
        if (!call->body) {
            api_reply_error(call, 400, "invalid_json",
                            json_pack("{s:i, s:i, s:i}", "line", error.line, "column", error.column,
                                      "position", error.position),
                            "invalid JSON at line %d, column %d (position %d): %s", error.line,
                            error.column, error.position, error.text);
            return;
        }
    }
    api_route(call);
}
