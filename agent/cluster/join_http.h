/*
 * One HTTPS request from a joining node to the node it joins through (issue 17), on the agent's
 * loop with libevent's HTTP client over OpenSSL, like the etcd client: it never blocks the loop,
 * has a deadline, and reads at most JOIN_HTTP_MAX_BODY bytes of answer.
 *
 * The first request (the cluster CA) is made before the joiner trusts anything: ca_pem NULL,
 * no verification, and nothing secret is sent. Every later one verifies the peer's chain
 * against the CA the joiner pinned by its hash (ca_pem): the token is only ever sent to a node
 * holding a certificate from that CA. The peer is an address, never a name to resolve.
 */
#ifndef CERTVISOR_CLUSTER_JOIN_HTTP_H
#define CERTVISOR_CLUSTER_JOIN_HTTP_H

#include <event2/event.h>
#include <stddef.h>

#define JOIN_HTTP_MAX_BODY (256 * 1024)

struct join_http_result {
    int error;        /* 0, or a negative errno: -ETIMEDOUT, -ECONNREFUSED, -EPROTO, -EFBIG */
    int http_status;  /* when error is 0 */
    const char *body; /* NUL-terminated; valid during the callback only */
    size_t body_len;
    char local_address[64]; /* this side's address of the connection ("" when not known) */
    char message[512];      /* what failed, when error is set */
};

typedef void (*join_http_fn)(void *data, const struct join_http_result *result);

struct join_http;

/*
 * GET (body NULL) or POST (body, JSON) path on https://peer ("address:port", IPv6 in
 * brackets), verifying the peer against ca_pem when it is not NULL, within timeout_ms. fn is
 * called once, from the loop. Returns the request (to cancel: fn is then not called), or NULL
 * with err.
 */
struct join_http *join_http_request(struct event_base *base, const char *peer, const char *ca_pem,
                                    const char *path, const char *body, int timeout_ms,
                                    join_http_fn fn, void *data, char *err, size_t err_len);

/* The same with an Authorization header (never sent without ca_pem). */
struct join_http *join_http_request_as(struct event_base *base, const char *peer,
                                       const char *ca_pem, const char *authorization,
                                       const char *path, const char *body, int timeout_ms,
                                       join_http_fn fn, void *data, char *err, size_t err_len);
void join_http_cancel(struct join_http *request);

/* "address:port" into its address (without brackets) and port; a missing port is
 * default_port. Returns 0 or -EINVAL when the address is not an IP address. */
int join_http_split_peer(const char *peer, int default_port, char *address, size_t len,
                         int *ret_port);

#endif
