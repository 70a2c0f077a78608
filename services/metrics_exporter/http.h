/* A small HTTPS/1.1 server for read-only endpoints: GET and HEAD, one request per connection. */
#ifndef CERTVISOR_METRICS_HTTP_H
#define CERTVISOR_METRICS_HTTP_H

#include "tls_context.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct http_server;
struct http_request;

/*
 * Called for each well-formed GET or HEAD request (the server answers
 * everything else itself: 400, 405, 431, 505). The handler answers with
 * http_respond(), at once or later from the event loop; until it does, the
 * request stays valid and its connection waits without a deadline, so the
 * handler must bound its own wait.
 */
typedef void (*http_handler_fn)(struct http_request *request, void *data);

/*
 * Listens on address:port (an IPv4 or IPv6 literal; port 0 takes a free one)
 * and serves TLS with the holder's current context (each connection keeps
 * the context it was accepted with). Returns 0, or a negative errno with a
 * message in err.
 */
int http_server_new(struct event_base *base, const char *address, unsigned port,
                    struct tls_context_holder *holder, http_handler_fn handler, void *data,
                    struct http_server **ret_server, char *err, size_t err_len);

/* The port it listens on (the one chosen when 0 was asked). */
unsigned http_server_port(const struct http_server *server);

/*
 * Closes every connection and the listening socket. Requests handed to the
 * handler and not yet answered die with it: the handler's own state must be
 * dropped first.
 */
void http_server_free(struct http_server *server);

/* The request's path, without its query string. */
const char *http_request_path(const struct http_request *request);

/*
 * Answers and ends the request: status, the media type and the body (copied;
 * not sent for HEAD). The connection closes once the answer is sent.
 */
void http_respond(struct http_request *request, int status, const char *content_type,
                  const char *body, size_t len);

#endif
