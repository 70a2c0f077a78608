/* A small HTTP/1.1 server on libevent for certvisor's services: TLS or plain, keep-alive, limits.
 */
#ifndef CERTVISOR_HTTP_SERVER_H
#define CERTVISOR_HTTP_SERVER_H

#include "tls_context.h"

#include <event2/event.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

struct http_server;
struct http_listener;
struct http_request;

/*
 * What one client may cost. A request whose head is larger than max_head is
 * answered 431, a body over max_body 413 (before it is read, and at once to an
 * "Expect: 100-continue"); both answers state the limit.
 *
 * Time: a TLS client has handshake_timeout seconds from its connection to
 * finish the handshake, then first_byte_timeout seconds to send the first byte
 * of its first request (a kept-alive connection waits idle_timeout seconds for
 * the next one); silent connections are closed without a word. From a
 * request's first byte, its head must be complete within head_timeout seconds
 * and the whole request within request_timeout seconds, however slowly the
 * bytes trickle in, or it is answered 408. request_timeout also caps the
 * other three.
 *
 * Connections: at most max_conns at once, and at most max_conns_per_address
 * from one client address (IPv4 address, or IPv6 /64 prefix, since one IPv6
 * host usually holds a whole /64). A new connection over either cap takes the
 * place of the connection (of that address, or of any) that has waited
 * longest without a request under way: one still in its handshake, or
 * waiting for (the rest of) a request head, which is closed without a word.
 * When every connection has a request under way, a new one over the
 * per-address cap is closed, and over max_conns waits in the listen backlog.
 */
struct http_limits {
    size_t max_head;                /* request line and headers, with the blank line */
    unsigned max_headers;           /* header lines */
    size_t max_body;                /* 0: requests with a body are refused with 413 */
    unsigned max_conns;             /* in all */
    unsigned max_conns_per_address; /* 0: no per-address cap */
    int handshake_timeout;          /* seconds */
    int first_byte_timeout;         /* seconds */
    int head_timeout;               /* seconds */
    int request_timeout;            /* seconds */
    int idle_timeout;               /* seconds */
    int write_timeout;              /* seconds for the client to take an answer */
};

/* The defaults http_limits_default() gives (seconds, connections). */
#define HTTP_DEFAULT_HANDSHAKE_TIMEOUT 5
#define HTTP_DEFAULT_FIRST_BYTE_TIMEOUT 5
#define HTTP_DEFAULT_HEAD_TIMEOUT 10
#define HTTP_DEFAULT_MAX_CONNS_PER_ADDRESS 16

/*
 * The limits of a read-only endpoint: 8 KiB heads, no bodies, 64 connections
 * (16 per address), 5 s handshakes, 5 s to the first byte, 10 s heads, 10 s
 * requests.
 */
void http_limits_default(struct http_limits *ret_limits);

/*
 * Called for each well-formed request (the server answers malformed ones
 * itself: 400, 408, 411, 413, 417, 431, 501, 505). The handler answers with
 * http_respond(), at once or later from the event loop; until then the
 * request stays valid and its connection waits without a deadline, so the
 * handler bounds its own wait.
 */
typedef void (*http_handler_fn)(struct http_request *request, void *data);

/*
 * Makes the body of an answer the server gives by itself: a malloc'd body
 * with *ret_len and *ret_content_type set, or NULL for the default (the
 * reason phrase and message as text/plain).
 */
typedef char *(*http_error_body_fn)(int status, const char *message, const char **ret_content_type,
                                    size_t *ret_len, void *data);

struct http_callbacks {
    http_handler_fn handler;
    http_error_body_fn error_body; /* may be NULL */
    void *data;
};

/* A server without listeners: http_server_listen() opens them. Returns 0 or -ENOMEM. */
int http_server_new(struct event_base *base, const struct http_limits *limits,
                    const struct http_callbacks *callbacks, struct http_server **ret_server);

/*
 * Closes every listener and connection. Requests handed to the handler and
 * not yet answered are dropped with their http_request_on_abandon() hooks
 * called, so that the handler's state for them can go first.
 */
void http_server_free(struct http_server *server);

/*
 * Listens on address:port (an IPv4 or IPv6 literal; port 0 takes a free one),
 * serving TLS with the holder's current context (each connection keeps the
 * context it was accepted with), or plain HTTP when holder is NULL. Returns 0
 * with the listener, or a negative errno with a message in err.
 */
int http_server_listen(struct http_server *server, const char *address, unsigned port,
                       struct tls_context_holder *holder, struct http_listener **ret_listener,
                       char *err, size_t err_len);

/* The port a listener listens on (the one chosen when 0 was asked). */
unsigned http_listener_port(const struct http_listener *listener);

/*
 * Stops listening at once (new connections are refused) and frees the
 * listener. Its connections that wait for a request are closed; one with a
 * request under way gets its answer, then is closed.
 */
void http_listener_close(struct http_listener *listener);

/* --- the request, valid until it is answered --- */

const char *http_request_method(const struct http_request *request);

/* The path, as sent (percent-encoding kept), without the query. */
const char *http_request_path(const struct http_request *request);

/* The query string after '?', or "". */
const char *http_request_query(const struct http_request *request);

/* The first header of that name (case-insensitive), its value trimmed; NULL when absent. */
const char *http_request_header(const struct http_request *request, const char *name);

/* The body (NUL-terminated, possibly holding NULs) and its length; "" without one. */
const char *http_request_body(const struct http_request *request, size_t *ret_len);

/* True when the request came over TLS. */
bool http_request_is_tls(const struct http_request *request);

/* The client's certificate when it sent one over TLS (borrowed), or NULL. */
X509 *http_request_peer_certificate(const struct http_request *request);

/*
 * The client's certificate chain as PEM, leaf first (malloc'd; certificates
 * only, never a key), when it sent one over TLS and it verified against the
 * server's CA file; NULL otherwise.
 */
char *http_request_peer_chain_pem(const struct http_request *request);

/* The client's address, "1.2.3.4:5" or "[::1]:5". */
void http_request_peer(const struct http_request *request, char *buf, size_t len);

/*
 * fn(data) is called if the request is dropped unanswered (the server is
 * freed); never after http_respond().
 */
void http_request_on_abandon(struct http_request *request, void (*fn)(void *data), void *data);

/*
 * Adds a header to the answer (before http_respond()): name and value are
 * copied; a value holding CR or LF is refused with -EINVAL.
 */
int http_response_header(struct http_request *request, const char *name, const char *value);

/*
 * Answers and ends the request: status, media type and body (copied; not
 * sent for HEAD). The connection is kept alive unless the client or the
 * server closes it. Always succeeds: without memory the connection closes.
 */
void http_respond(struct http_request *request, int status, const char *content_type,
                  const char *body, size_t len);

/* --- helpers --- */

/* The standard reason phrase of a status ("Not Found"), or "Unknown". */
const char *http_reason_phrase(int status);

/*
 * Finds name in a query string ("a=1&b=x%20y") and writes its value,
 * percent-decoded ('+' is a space), into buf. Returns 1 when found (a name
 * without '=' has the value ""), 0 when absent, -ENOSPC when the value does
 * not fit, -EINVAL for a malformed escape.
 */
int http_query_get(const char *query, const char *name, char *buf, size_t len);

#endif
