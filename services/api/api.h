/* certvisor-api: what its files share (the service, one REST call, answering it). */
#ifndef CERTVISOR_API_H
#define CERTVISOR_API_H

#include "control_async.h"
#include "http_server.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* How long the agent may take: a read, and a change (which reloads or restarts services). */
#define API_READ_TIMEOUT_MS 15000
#define API_CHANGE_TIMEOUT_MS 300000

struct api {
    struct event_base *base;
    struct control_async *agent;
};

struct api_call;

/* What a route does with a request whose body (when it takes one) parsed as a JSON object. */
typedef void (*api_route_fn)(struct api_call *call);

/* What a route does with the agent's answer (the transport, sign-in and permission are fine). */
typedef void (*api_reply_fn)(struct api_call *call, json_t *reply);

/* One REST request, from its arrival to its answer. */
struct api_call {
    struct api *api;
    struct http_request *request;
    char user[65];
    char *password;          /* wiped when the call ends */
    char *certificate_chain; /* the client's verified chain (PEM) when it signs in by one */
    json_t *body;            /* the request's JSON object, or NULL */
    bool dry_run;            /* ?dry_run=true */
    struct control_call *pending;
    api_reply_fn on_reply;
    int timeout_ms;
    json_t *scratch; /* for routes that ask the agent more than once */
    long started_ms;
};

/* The read-only extras (routes_info.c): certificate details, the audit log, the cluster's
 * status. */
void api_get_certificate_details(struct api_call *call);
void api_get_audit_log(struct api_call *call);
void api_get_cluster_status(struct api_call *call);
/* GET /v1/nodes (routes_info.c). */
void api_get_nodes(struct api_call *call);

/* OCSP stapling (routes_ocsp.c): GET and PUT /v1/ocsp, GET /v1/ocsp/status, POST
 * /v1/ocsp/test, with Redis Enterprise's fields. */
void api_get_ocsp(struct api_call *call);
void api_put_ocsp(struct api_call *call);
void api_get_ocsp_status(struct api_call *call);
void api_test_ocsp(struct api_call *call);

/* Sign-in with directory accounts (routes_ldap.c): GET and PUT /v1/cluster/ldap. */
void api_get_ldap(struct api_call *call);
void api_put_ldap(struct api_call *call);

/* Joining (routes_join.c): GET /v1/join/ca and POST /v1/join/admit, which a joining node calls
 * before it has any credential (the token in the body is one), and POST /v1/cluster/join, this
 * node joining a cluster. */
void api_get_join_ca(struct api_call *call);
void api_post_join_admit(struct api_call *call);
void api_post_cluster_join(struct api_call *call);

/* Whether the request is for one of the routes anyone may call (the join's first two): no
 * credentials are asked for, and the agent checks the join token itself. */
bool api_route_is_public(struct http_request *request);

/* The routes (routes.c): answers the call, at once or after asking the agent. */
void api_route(struct api_call *call);

/* Handles one HTTP request: authentication, body, routing (exchange.c). */
void api_handle(struct http_request *request, void *data);

/* The JSON error body of an answer the HTTP server gives by itself (413, 408, 431...). */
char *api_error_body(int status, const char *message, const char **ret_content_type,
                     size_t *ret_len, void *data);

/*
 * Sends command (args and options taken; either may be NULL) for the call's
 * REST user, with the call's dry_run when dry_run_option, and calls fn with
 * the answer. A failed transport (503, 504), sign-in (401, 429) or
 * permission (403) is answered here, and fn is not called.
 */
void api_ask(struct api_call *call, const char *command, json_t *args, json_t *options,
             bool dry_run_option, bool change, api_reply_fn fn);

/* Sends command as the API itself, for a route anyone may call: only commands every local user
 * may run, and none that trusts the caller (the join's admission checks its token). */
void api_ask_anonymous(struct api_call *call, const char *command, json_t *args, json_t *options,
                       int timeout_ms, api_reply_fn fn);

/* The client's address without its port ("" when unknown). */
void api_peer_address(struct api_call *call, char *buf, size_t len);

/* Answers with a JSON body (taken) and ends the call. */
void api_reply_json(struct api_call *call, int status, json_t *body);

/*
 * Answers {"error_code", "description", "message"} (plus the members of
 * extra, taken, when not NULL) and ends the call. description is the
 * code's fixed explanation, message this occurrence's.
 */
void api_reply_error(struct api_call *call, int status, const char *error_code, json_t *extra,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * Answers a refusal of the agent ({"exit", "error", "reason"}): the reason
 * decides the status and error code, the agent's message is the message.
 * unknown_status is the status for an unknown certificate name (403 where
 * Redis Enterprise answers 403, 404 elsewhere).
 */
void api_reply_refusal(struct api_call *call, json_t *reply, int unknown_status);

/*
 * The end of a PUT that changes settings: a refusal is answered (refusal_status for an unknown
 * name), a dry run's plan is answered, else show_command is asked and shown answers with the
 * object as it is now, as Redis Enterprise answers a PUT.
 */
void api_after_change(struct api_call *call, json_t *reply, int refusal_status,
                      const char *show_command, api_reply_fn shown);

/* The agent's successful answer without its protocol members ("exit", "coalesced"). */
json_t *api_agent_result(json_t *reply);

#endif
