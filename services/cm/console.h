/* What certvisor-cm answers: the console's static files, and /v1/ requests forwarded to the REST
 * API. */
#ifndef CERTVISOR_CM_CONSOLE_H
#define CERTVISOR_CM_CONSOLE_H

#include "http_server.h"
#include "static_files.h"
#include "upstream.h"

/*
 * The Content-Security-Policy of every answer: the page runs only its own
 * script and style, talks only to its own origin, and cannot be framed.
 */
#define CONSOLE_CSP                                                                                \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"

struct console;

/* Takes files (owned from now on); upstream stays the caller's and must outlive the console. */
int console_new(struct static_files *files, struct upstream *upstream,
                struct console **ret_console);

/* Forwards still under way are cancelled: free the HTTP server (which abandons them) first. */
void console_free(struct console *console);

/* Serves a new set of files from now on (owned; the old set is freed). */
void console_set_files(struct console *console, struct static_files *files);

/* The http_server handler (data: the console). */
void console_on_request(struct http_request *request, void *data);

/*
 * The http_server error body (data: the console): the REST API's error shape,
 * {"error_code", "description", "message"}, for the answers the server gives
 * by itself (413, 431...), so the page shows them like any refusal.
 */
char *console_error_body(int status, const char *message, const char **ret_content_type,
                         size_t *ret_len, void *data);

#endif
