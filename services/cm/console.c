/* What certvisor-cm answers: the console's static files, and /v1/ requests forwarded to the REST
 * API. */
#include "console.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TYPE "application/json"

struct forward {
    struct console *console;
    struct forward *next, **pprev;
    struct http_request *request;
    struct upstream_exchange *exchange;
};

struct console {
    struct static_files *files;
    struct upstream *upstream;
    struct forward *forwards;
    bool api_down; /* the last forward could not reach the API: said once, not at every request */
};

int console_new(struct static_files *files, struct upstream *upstream, struct console **ret_console)
{
    struct console *console = calloc(1, sizeof(*console));

    if (!console)
        return -ENOMEM;
    console->files = files;
    console->upstream = upstream;
    *ret_console = console;
    return 0;
}

static void forward_free(struct forward *f)
{
    *f->pprev = f->next;
    if (f->next)
        f->next->pprev = f->pprev;
    free(f);
}

void console_free(struct console *console)
{
    if (!console)
        return;
    while (console->forwards) {
        upstream_cancel(console->forwards->exchange);
        forward_free(console->forwards);
    }
    static_files_free(console->files);
    free(console);
}

void console_set_files(struct console *console, struct static_files *files)
{
    static_files_free(console->files);
    console->files = files;
}

/* --- answers --- */

/*
 * Headers on every answer of the handler. No Strict-Transport-Security: with
 * the self-signed certificates a node starts with, it would take away the
 * browser's "accept this certificate" exception that operators rely on.
 */
static void security_headers(struct http_request *request)
{
    http_response_header(request, "Content-Security-Policy", CONSOLE_CSP);
    http_response_header(request, "X-Content-Type-Options", "nosniff");
    http_response_header(request, "X-Frame-Options", "DENY");
    http_response_header(request, "Referrer-Policy", "no-referrer");
    http_response_header(request, "Cross-Origin-Opener-Policy", "same-origin");
    http_response_header(request, "Cross-Origin-Resource-Policy", "same-origin");
}

/* {"error_code", "description", "message"} as text (malloc'd), or NULL without memory. */
static char *error_json(const char *code, const char *description, const char *message,
                        size_t *ret_len)
{
    json_t *body = json_pack("{s:s, s:s, s:s}", "error_code", code, "description", description,
                             "message", message);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (text)
        *ret_len = strlen(text);
    return text;
}

static void respond_error(struct http_request *request, int status, const char *code,
                          const char *description, const char *message)
{
    size_t len = 0;
    char *text = error_json(code, description, message, &len);

    security_headers(request);
    if (!text) {
        static const char fallback[] = "{\"error_code\":\"internal\"}";

        http_respond(request, 500, JSON_TYPE, fallback, sizeof(fallback) - 1);
        return;
    }
    http_respond(request, status, JSON_TYPE, text, len);
    free(text);
}

char *console_error_body(int status, const char *message, const char **ret_content_type,
                         size_t *ret_len, void *data)
{
    const char *reason = http_reason_phrase(status);
    char code[64];
    size_t i = 0;

    (void)data;
    /* "Payload Too Large" -> "payload_too_large" */
    for (const char *p = reason; *p && i + 1 < sizeof(code); p++)
        code[i++] = *p == ' ' || *p == '-' ? '_' : (char)tolower((unsigned char)*p);
    code[i] = '\0';
    *ret_content_type = JSON_TYPE;
    return error_json(code, reason, message, ret_len);
}

/* --- static files --- */

static void serve_file(struct console *console, struct http_request *request)
{
    const char *method = http_request_method(request);
    const struct static_file *file;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        http_response_header(request, "Allow", "GET, HEAD");
        respond_error(request, 405, "method_not_allowed", "Method Not Allowed",
                      "the console's files are read with GET or HEAD");
        return;
    }
    file = static_files_find(console->files, http_request_path(request));
    if (!file) {
        respond_error(request, 404, "not_found", "Not Found", "no such file in the console");
        return;
    }
    /*
     * The server marks every answer Cache-Control: no-store: the page is small,
     * and a browser must never run an old app.js against a newer API after an
     * upgrade.
     */
    security_headers(request);
    http_respond(request, 200, file->content_type, file->data, file->len);
}

/* --- forwarding /v1/ to the REST API --- */

static void on_forward_abandoned(void *data)
{
    struct forward *f = data;

    upstream_cancel(f->exchange);
    forward_free(f);
}

static void on_forward_done(void *data, const struct upstream_response *response, const char *error,
                            int timed_out)
{
    struct forward *f = data;
    struct console *console = f->console;
    struct http_request *request = f->request;

    forward_free(f); /* the exchange frees itself when this returns */
    if (!response) {
        if (!console->api_down)
            log_warning("Cannot forward to the REST API: %s", error);
        console->api_down = true;
        respond_error(request, timed_out ? 504 : 502, timed_out ? "api_timeout" : "api_unreachable",
                      timed_out ? "The REST API did not answer in time"
                                : "The console cannot reach the REST API",
                      error);
        return;
    }
    if (console->api_down)
        log_notice("The REST API answers again");
    console->api_down = false;
    /*
     * Passed on: the status, the media type, the body, and the headers a client
     * acts on. Not WWW-Authenticate: on a 401 it would make the browser open its
     * own password dialog over the console's sign-in form.
     */
    if (response->retry_after)
        http_response_header(request, "Retry-After", response->retry_after);
    if (response->allow)
        http_response_header(request, "Allow", response->allow);
    if (response->warning)
        http_response_header(request, "Warning", response->warning);
    if (response->stale)
        http_response_header(request, "X-Certvisor-Stale", response->stale);
    security_headers(request);
    http_respond(request, response->status, response->content_type, response->body,
                 response->body_len);
}

/* The address part of "1.2.3.4:5" or "[::1]:5", in place. */
static void strip_port(char *peer)
{
    char *colon = strrchr(peer, ':');

    if (peer[0] == '[') {
        char *close = strchr(peer, ']');

        if (close) {
            memmove(peer, peer + 1, (size_t)(close - peer - 1));
            peer[close - peer - 1] = '\0';
        }
        return;
    }
    if (colon)
        *colon = '\0';
}

static void forward(struct console *console, struct http_request *request)
{
    static const char *const passed[] = {"Authorization", "Content-Type", "Accept"};
    struct upstream_header headers[8];
    const char *path = http_request_path(request), *query = http_request_query(request), *body;
    char peer[96], forwarded[128], *target = NULL;
    size_t n = 0, body_len = 0;
    struct forward *f;

    for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++) {
        const char *value = http_request_header(request, passed[i]);

        if (value)
            headers[n++] = (struct upstream_header){passed[i], value};
    }
    /* For the API's logs: who is at the other end (informative; anyone can send these). */
    http_request_peer(request, peer, sizeof(peer));
    strip_port(peer);
    snprintf(forwarded, sizeof(forwarded),
             strchr(peer, ':') ? "for=\"[%s]\";proto=https" : "for=%s;proto=https", peer);
    headers[n++] = (struct upstream_header){"Forwarded", forwarded};
    headers[n++] = (struct upstream_header){"X-Forwarded-For", peer};
    headers[n++] = (struct upstream_header){"X-Forwarded-Proto", "https"};
    headers[n++] = (struct upstream_header){"User-Agent", "certvisor-cm/" CERTVISOR_VERSION};
    body = http_request_body(request, &body_len);
    f = calloc(1, sizeof(*f));
    if (!f || asprintf(&target, "%s%s%s", path, *query ? "?" : "", query) < 0) {
        free(f);
        respond_error(request, 500, "internal", "Internal Server Error", "out of memory");
        return;
    }
    f->console = console;
    f->request = request;
    if (upstream_send(console->upstream, http_request_method(request), target, headers, n, body,
                      body_len, on_forward_done, f, &f->exchange) < 0) {
        free(target);
        free(f);
        respond_error(request, 500, "internal", "Internal Server Error", "out of memory");
        return;
    }
    free(target);
    f->next = console->forwards;
    if (f->next)
        f->next->pprev = &f->next;
    f->pprev = &console->forwards;
    console->forwards = f;
    http_request_on_abandon(request, on_forward_abandoned, f);
    log_debug("Forwarding %s %s%s%s", http_request_method(request), path, *query ? "?" : "", query);
}

void console_on_request(struct http_request *request, void *data)
{
    struct console *console = data;
    const char *path = http_request_path(request);

    if (strcmp(path, "/v1") == 0 || strncmp(path, "/v1/", 4) == 0)
        forward(console, request);
    else
        serve_file(console, request);
}
