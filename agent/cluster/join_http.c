/* One HTTPS request from a joiner to its peer, on the loop (join_http.h). */
#include "join_http.h"

#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct join_http {
    join_http_fn fn;
    void *data;
    SSL *ssl; /* to say why a handshake failed */
    struct evhttp_connection *conn;
    struct evhttp_request *req;
    struct event *deadline;
    struct event *step; /* the answer is delivered from here, outside libevent's callback */
    struct join_http_result result;
    char *answer;
};

int join_http_split_peer(const char *peer, int default_port, char *address, size_t len,
                         int *ret_port)
{
    const char *host = peer, *end, *colon;
    unsigned char buf[sizeof(struct in6_addr)];
    char *tail;
    long port = default_port;

    if (*host == '[') {
        host++;
        end = strchr(host, ']');
        if (!end || (end[1] && end[1] != ':'))
            return -EINVAL;
        colon = end[1] ? end + 1 : NULL;
    } else {
        colon = strchr(host, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL, end = host + strlen(host); /* a bare IPv6 address */
        else
            end = colon ? colon : host + strlen(host);
    }
    if ((size_t)(end - host) >= len || end == host)
        return -EINVAL;
    snprintf(address, len, "%.*s", (int)(end - host), host);
    if (colon) {
        errno = 0;
        port = strtol(colon + 1, &tail, 10);
        if (errno || *tail || colon[1] == '\0' || port < 1 || port > 65535)
            return -EINVAL;
    }
    if (inet_pton(AF_INET, address, buf) != 1 && inet_pton(AF_INET6, address, buf) != 1)
        return -EINVAL;
    *ret_port = (int)port;
    return 0;
}

static void request_free(struct join_http *h)
{
    if (h->req)
        evhttp_cancel_request(h->req);
    if (h->conn)
        evhttp_connection_free(h->conn);
    if (h->deadline)
        event_free(h->deadline);
    if (h->step)
        event_free(h->step);
    free(h->answer);
    free(h);
}

void join_http_cancel(struct join_http *request)
{
    if (request)
        request_free(request);
}

static void deliver(struct join_http *h)
{
    h->result.body = h->answer ? h->answer : "";
    h->fn(h->data, &h->result);
    request_free(h);
}

static void on_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deliver(arg);
}

static void fail(struct join_http *h, int error, const char *why)
{
    if (h->result.error)
        return;
    h->result.error = error;
    snprintf(h->result.message, sizeof(h->result.message), "%s", why);
}

/* Why the TLS handshake failed, when it did: the verification's reason, else OpenSSL's. */
static const char *tls_reason(struct join_http *h, char *buf, size_t len)
{
    long verify = h->ssl ? SSL_get_verify_result(h->ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();

    if (verify != X509_V_OK)
        snprintf(buf, len, "its certificate does not verify against the cluster CA (%s)",
                 X509_verify_cert_error_string(verify));
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "the connection closed");
    ERR_clear_error();
    return buf;
}

static void on_error(enum evhttp_request_error error, void *arg)
{
    struct join_http *h = arg;
    char why[256];

    switch (error) {
    case EVREQ_HTTP_TIMEOUT:
        fail(h, -ETIMEDOUT, "no answer in time");
        break;
    case EVREQ_HTTP_DATA_TOO_LONG:
        fail(h, -EFBIG, "an answer over 256 KiB");
        break;
    case EVREQ_HTTP_INVALID_HEADER:
        fail(h, -EPROTO, "not an HTTP answer");
        break;
    default:
        fail(h, -ECONNREFUSED, tls_reason(h, why, sizeof(why)));
        break;
    }
}

static int on_headers(struct evhttp_request *req, void *arg)
{
    struct join_http *h = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);

    if (fd >= 0 && getsockname(fd, (struct sockaddr *)&local, &len) == 0) {
        const void *addr = local.ss_family == AF_INET6
                               ? (const void *)&((struct sockaddr_in6 *)&local)->sin6_addr
                               : (const void *)&((struct sockaddr_in *)&local)->sin_addr;

        inet_ntop(local.ss_family, addr, h->result.local_address, sizeof(h->result.local_address));
    }
    return 0;
}

static void on_done(struct evhttp_request *req, void *arg)
{
    struct join_http *h = arg;
    struct evbuffer *in;

    h->req = NULL; /* libevent frees it */
    if (req && evhttp_request_get_response_code(req) > 0 && !h->result.error) {
        in = evhttp_request_get_input_buffer(req);
        h->result.body_len = evbuffer_get_length(in);
        h->answer = malloc(h->result.body_len + 1);
        if (!h->answer) {
            fail(h, -ENOMEM, "out of memory");
        } else {
            evbuffer_remove(in, h->answer, h->result.body_len);
            h->answer[h->result.body_len] = '\0';
            h->result.http_status = evhttp_request_get_response_code(req);
        }
    } else {
        char why[256];

        fail(h, -ECONNREFUSED, tls_reason(h, why, sizeof(why)));
    }
    event_active(h->step, EV_TIMEOUT, 0);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct join_http *h = arg;

    (void)fd;
    (void)what;
    fail(h, -ETIMEDOUT, "no answer in time");
    deliver(h);
}

static SSL_CTX *client_ctx(const char *ca_pem, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    BIO *bio = NULL;
    X509 *ca = NULL;

    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) {
        SSL_CTX_free(ctx);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (!ca_pem) {
        /* Fetching the CA itself: nothing is trusted yet, and nothing secret is sent. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    bio = BIO_new_mem_buf(ca_pem, -1);
    ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!ca || X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1) {
        X509_free(ca);
        SSL_CTX_free(ctx);
        snprintf(err, err_len, "the cluster CA cannot be read");
        return NULL;
    }
    X509_free(ca);
    /* The chain to the pinned CA is the proof: the peer's name is whatever address the
     * operator typed, which the API certificate need not hold. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

struct join_http *join_http_request(struct event_base *base, const char *peer, const char *ca_pem,
                                    const char *path, const char *body, int timeout_ms,
                                    join_http_fn fn, void *data, char *err, size_t err_len)
{
    return join_http_request_as(base, peer, ca_pem, NULL, path, body, timeout_ms, fn, data, err,
                                err_len);
}

struct join_http *join_http_request_as(struct event_base *base, const char *peer,
                                       const char *ca_pem, const char *authorization,
                                       const char *path, const char *body, int timeout_ms,
                                       join_http_fn fn, void *data, char *err, size_t err_len)
{
    struct join_http *h = calloc(1, sizeof(*h));
    struct timeval deadline = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char address[64], host[80];
    struct bufferevent *bev = NULL;
    struct evkeyvalq *headers;
    SSL_CTX *ctx = NULL;
    int port;

    if (join_http_split_peer(peer, 9443, address, sizeof(address), &port) < 0) {
        snprintf(err, err_len, "'%s' is not <IP address>:<port>", peer);
        free(h);
        return NULL;
    }
    snprintf(host, sizeof(host), strchr(address, ':') ? "[%s]:%d" : "%s:%d", address, port);
    if (!h || !(ctx = client_ctx(ca_pem, err, err_len)))
        goto fail;
    h->fn = fn;
    h->data = data;
    h->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds it */
    if (!h->ssl)
        goto oom;
    bev = bufferevent_openssl_socket_new(base, -1, h->ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(h->ssl);
        h->ssl = NULL;
        goto oom;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    h->conn =
        evhttp_connection_base_bufferevent_new(base, NULL, bev, address, (unsigned short)port);
    if (!h->conn) {
        bufferevent_free(bev);
        h->ssl = NULL;
        goto oom;
    }
    evhttp_connection_set_max_body_size(h->conn, JOIN_HTTP_MAX_BODY);
    evhttp_connection_set_timeout(h->conn, (timeout_ms + 999) / 1000);
    h->step = event_new(base, -1, 0, on_step, h);
    h->deadline = evtimer_new(base, on_deadline, h);
    h->req = evhttp_request_new(on_done, h);
    if (!h->step || !h->deadline || !h->req)
        goto oom;
    evhttp_request_set_error_cb(h->req, on_error);
    evhttp_request_set_header_cb(h->req, on_headers);
    headers = evhttp_request_get_output_headers(h->req);
    if ((authorization && ca_pem &&
         evhttp_add_header(headers, "Authorization", authorization) < 0) ||
        evhttp_add_header(headers, "Host", host) < 0 ||
        evhttp_add_header(headers, "Accept", "application/json") < 0 ||
        (body && (evhttp_add_header(headers, "Content-Type", "application/json") < 0 ||
                  evbuffer_add(evhttp_request_get_output_buffer(h->req), body, strlen(body)) < 0)))
        goto oom;
    if (evhttp_make_request(h->conn, h->req, body ? EVHTTP_REQ_POST : EVHTTP_REQ_GET, path) < 0) {
        h->req = NULL; /* freed by libevent */
        goto oom;
    }
    evtimer_add(h->deadline, &deadline);
    return h;
oom:
    snprintf(err, err_len, "out of memory");
fail:
    if (h)
        request_free(h);
    return NULL;
}
