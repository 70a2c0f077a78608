/* A non-blocking HTTPS/1.1 client for one upstream: the REST API the console's requests go to. */
#ifndef CERTVISOR_CM_UPSTREAM_H
#define CERTVISOR_CM_UPSTREAM_H

#include <event2/event.h>
#include <stddef.h>

/* The largest answer taken from the API; anything larger fails the exchange. */
#define UPSTREAM_MAX_RESPONSE (8u * 1024 * 1024)

struct upstream;
struct upstream_exchange;

struct upstream_header {
    const char *name;
    const char *value;
};

/* The API's answer, valid during the callback only. */
struct upstream_response {
    int status;
    const char *content_type; /* NULL when absent */
    const char *retry_after;  /* NULL when absent */
    const char *allow;        /* NULL when absent */
    const char *warning;      /* NULL when absent (110: a stale answer) */
    const char *stale;        /* X-Certvisor-Stale: why, NULL when absent */
    const char *body;
    size_t body_len;
};

/*
 * Called once per exchange: with the response, or with response NULL and
 * error saying what failed; timed_out tells a timeout from other failures.
 * The exchange is over (and freed) when this returns.
 */
typedef void (*upstream_done_fn)(void *data, const struct upstream_response *response,
                                 const char *error, int timed_out);

/*
 * address is "host:port" ("127.0.0.1:9443", "[::1]:9443", "api.example:9443"),
 * resolved once here. The API's certificate must chain to a certificate of
 * ca_file, every one of which is a trust anchor, and name server_name (DNS
 * name or IP address; NULL: the host of address), which is also sent as SNI
 * when it is a DNS name. A certificate that is itself in ca_file (pinned: the
 * agent renders the api's current certificate there) needs no name: an
 * operator's certificate for the api names the node, not 127.0.0.1. Every
 * exchange is bounded by timeout_sec from its start. Returns 0, or a negative
 * errno with err.
 */
int upstream_new(struct event_base *base, const char *address, const char *server_name,
                 const char *ca_file, int timeout_sec, struct upstream **ret_upstream, char *err,
                 size_t err_len);

/*
 * Reads ca_file anew (after the api's certificate or the cluster CA changed;
 * the path may differ from the last one). Exchanges under way keep the
 * context they started with; on failure the old one stays.
 */
int upstream_reload(struct upstream *upstream, const char *ca_file, char *err, size_t err_len);

/* Ends every exchange under way without calling their callbacks, and frees. */
void upstream_free(struct upstream *upstream);

/* "host:port" as given, for messages. */
const char *upstream_address(const struct upstream *upstream);

/*
 * Starts one exchange: a new connection, the request (target is the path
 * with its query; Host, Content-Length and Connection: close are added), the
 * whole answer read. done is called from the event loop, never from here.
 * Returns 0, or -ENOMEM (done is then never called).
 */
int upstream_send(struct upstream *upstream, const char *method, const char *target,
                  const struct upstream_header *headers, size_t n_headers, const char *body,
                  size_t body_len, upstream_done_fn done, void *data,
                  struct upstream_exchange **ret_exchange);

/* Ends an exchange without calling its callback (its requester went away). */
void upstream_cancel(struct upstream_exchange *exchange);

#endif
