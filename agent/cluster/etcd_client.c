/*
 * The etcd client (etcd_client.h): one HTTP/1.1 connection per call, over TLS with
 * libevent's bufferevent_openssl. A connection per call costs a handshake (about a
 * millisecond on loopback) and saves what pooling would need: a reconnect of an evhttp
 * connection cannot reuse its SSL object, and a failed member must never hold a call that
 * another member could answer.
 *
 * A call's steps run from its own deferred event, never inside libevent's HTTP callbacks:
 * what the callback learns is recorded, and the connection is freed and the next endpoint
 * tried (or the caller told) from the loop.
 */
#include "etcd_client.h"

#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define WATCH_RETRY_MIN_MS 100
#define WATCH_RETRY_MAX_MS 2000

struct endpoint {
    char text[300]; /* "address:port" as configured (an IPv6 address in brackets) */
    char host[256]; /* the address, without brackets */
    int port;
};

/* What a TLS file was when it was read: a rotation renames a new file over it (a new
 * inode), an edit in place changes its mtime. */
struct file_stamp {
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
};

struct tls_files {
    struct file_stamp ca, cert, key;
};

struct etcd_client {
    struct event_base *base;
    struct endpoint endpoints[ETCD_MAX_ENDPOINTS];
    size_t n_endpoints;
    size_t preferred; /* the endpoint that answered last: tried first */
    char *ca_file, *cert_file, *key_file;
    SSL_CTX *ssl_ctx;        /* rebuilt when a file changed (a rotation) */
    struct tls_files loaded; /* what ssl_ctx was built from */
    int deadline_ms;
    struct etcd_call *calls;
    struct etcd_watch *watches;
};

struct etcd_call {
    struct etcd_client *client;
    struct etcd_call *next, **prev_next;
    char path[64];
    char *body;
    size_t body_len;
    etcd_call_fn fn;
    void *data;
    struct evhttp_connection *conn;
    struct evhttp_request *req;
    struct event *deadline; /* the call's whole deadline */
    struct event *step;     /* runs the next step from the loop */
    size_t endpoint;        /* the one being tried */
    size_t tried;
    bool answered; /* the current attempt got an HTTP answer (in answer) */
    int answer_status;
    char *answer;
    size_t answer_len;
    int failure;     /* the current attempt's error when it got none */
    char tries[384]; /* what each endpoint did, for the message */
};

struct etcd_watch {
    struct etcd_client *client;
    struct etcd_watch *next, **prev_next;
    char *key, *range_end;
    size_t key_len, range_end_len;
    int64_t next_revision;
    etcd_watch_fn fn;
    void *data;
    struct evhttp_connection *conn;
    struct evhttp_request *req;
    struct evbuffer *pending; /* a message not yet whole */
    struct event *retry;
    size_t endpoint;
    int backoff_ms;
    bool ended;     /* the stream ended: resume from the loop */
    bool compacted; /* stop: the caller resyncs */
    char why[640];
};

static bool is_ip_address(const char *host)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static int parse_endpoint(const char *text, struct endpoint *out)
{
    const char *colon;
    char *end;
    long port;
    size_t host_len;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');

        if (!close || close[1] != ':')
            return -EINVAL;
        host_len = (size_t)(close - text - 1);
        memcpy(out->host, text + 1, host_len < sizeof(out->host) ? host_len : 0);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon)
            return -EINVAL;
        host_len = (size_t)(colon - text);
        memcpy(out->host, text, host_len < sizeof(out->host) ? host_len : 0);
    }
    if (host_len == 0 || host_len >= sizeof(out->host))
        return -EINVAL;
    out->host[host_len] = '\0';
    /* An address, never a name: evhttp would resolve a name with getaddrinfo(), blocking the
     * agent's loop for as long as the resolver takes. */
    if (!is_ip_address(out->host))
        return -EINVAL;
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -EINVAL;
    out->port = (int)port;
    if (strlen(text) >= sizeof(out->text))
        return -EINVAL;
    snprintf(out->text, sizeof(out->text), "%s", text);
    return 0;
}

void etcd_node_files(const char *state_dir, struct etcd_node_files *files,
                     struct etcd_client_config *config)
{
    snprintf(files->ca, sizeof(files->ca), "%s/ca.pem", state_dir);
    snprintf(files->cert, sizeof(files->cert), "%s/certs/ccs_internode_encryption/current/cert.pem",
             state_dir);
    snprintf(files->key, sizeof(files->key), "%s/certs/ccs_internode_encryption/current/key.pem",
             state_dir);
    config->ca_file = files->ca;
    config->cert_file = files->cert;
    config->key_file = files->key;
}

int etcd_client_new(struct event_base *base, const struct etcd_client_config *config,
                    struct etcd_client **ret_client, char *err, size_t err_len)
{
    struct etcd_client *client;
    bool tls = config->ca_file || config->cert_file || config->key_file;

    if (config->n_endpoints == 0 || config->n_endpoints > ETCD_MAX_ENDPOINTS) {
        snprintf(err, err_len, "etcd: between 1 and %d endpoints, not %zu", ETCD_MAX_ENDPOINTS,
                 config->n_endpoints);
        return -EINVAL;
    }
    if (tls && !(config->ca_file && config->cert_file && config->key_file)) {
        snprintf(err, err_len, "etcd: TLS needs a CA, a certificate and a key, all three");
        return -EINVAL;
    }
    client = calloc(1, sizeof(*client));
    if (!client)
        return -ENOMEM;
    client->base = base;
    client->deadline_ms = config->deadline_ms > 0 ? config->deadline_ms : ETCD_DEFAULT_DEADLINE_MS;
    for (size_t i = 0; i < config->n_endpoints; i++) {
        if (parse_endpoint(config->endpoints[i], &client->endpoints[i]) < 0) {
            snprintf(err, err_len,
                     "etcd: endpoint '%s' is not address:port (an IP address, an IPv6 one in "
                     "brackets: the agent resolves no names on its loop)",
                     config->endpoints[i]);
            free(client);
            return -EINVAL;
        }
    }
    client->n_endpoints = config->n_endpoints;
    if (tls && (!(client->ca_file = strdup(config->ca_file)) ||
                !(client->cert_file = strdup(config->cert_file)) ||
                !(client->key_file = strdup(config->key_file)))) {
        etcd_client_free(client);
        return -ENOMEM;
    }
    *ret_client = client;
    return 0;
}

/* --- TLS --- */

static int stamp_of(const char *path, struct file_stamp *out)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -errno;
    *out = (struct file_stamp){st.st_dev, st.st_ino, st.st_mtim, st.st_size};
    return 0;
}

static bool same_stamp(const struct file_stamp *a, const struct file_stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->size == b->size;
}

static bool same_files(const struct tls_files *a, const struct tls_files *b)
{
    return same_stamp(&a->ca, &b->ca) && same_stamp(&a->cert, &b->cert) &&
           same_stamp(&a->key, &b->key);
}

/* The client's SSL_CTX, built again when a file changed since it was built. */
static SSL_CTX *client_ssl_ctx(struct etcd_client *client, char *err, size_t err_len)
{
    struct tls_files now = {0};
    SSL_CTX *ctx;

    if (stamp_of(client->ca_file, &now.ca) < 0 || stamp_of(client->cert_file, &now.cert) < 0 ||
        stamp_of(client->key_file, &now.key) < 0) {
        snprintf(err, err_len, "cannot read the etcd client's TLS files (%s, %s, %s): %s",
                 client->ca_file, client->cert_file, client->key_file, strerror(errno));
        return NULL;
    }
    if (client->ssl_ctx && same_files(&now, &client->loaded))
        return client->ssl_ctx;
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
        SSL_CTX_load_verify_locations(ctx, client->ca_file, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, client->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, client->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();

        snprintf(err, err_len, "cannot set up TLS to etcd with %s and %s: %s", client->cert_file,
                 client->key_file, e ? ERR_reason_error_string(e) : "out of memory");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_free(client->ssl_ctx);
    client->ssl_ctx = ctx;
    client->loaded = now;
    return ctx;
}

/* A connection to one endpoint: TLS, verifying the member's certificate names its host. */
static struct evhttp_connection *connect_endpoint(struct etcd_client *client,
                                                  const struct endpoint *endpoint, char *err,
                                                  size_t err_len)
{
    struct evhttp_connection *conn;
    struct bufferevent *bev;
    SSL_CTX *ctx;
    SSL *ssl;

    if (!client->ca_file) {
        conn = evhttp_connection_base_new(client->base, NULL, endpoint->host,
                                          (unsigned short)endpoint->port);
        if (!conn)
            snprintf(err, err_len, "out of memory");
        return conn;
    }
    if (!(ctx = client_ssl_ctx(client, err, err_len)))
        return NULL;
    if (!(ssl = SSL_new(ctx))) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    /* Endpoints are addresses (parse_endpoint()): the member's certificate must name it. */
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), endpoint->host);
    bev = bufferevent_openssl_socket_new(client->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    conn = evhttp_connection_base_bufferevent_new(client->base, NULL, bev, endpoint->host,
                                                  (unsigned short)endpoint->port);
    if (!conn) {
        bufferevent_free(bev);
        snprintf(err, err_len, "out of memory");
    }
    return conn;
}

/*
 * evhttp writes a request's head and its body as two TLS records, in two sends: with Nagle's
 * algorithm the body waits for the head's acknowledgement, which the member's kernel delays
 * (up to 40 ms) while it waits for the rest of the request. Every call paid that now and then.
 * The socket exists once evhttp_make_request() has started the connection (the endpoints are
 * addresses: nothing to resolve first).
 */
static void set_nodelay(struct evhttp_connection *conn)
{
    evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));

    if (fd >= 0 && net_set_nodelay(fd) < 0) {
        /* Only slower: the call goes on. */
    }
}

static struct evhttp_request *new_post(struct evhttp_connection *conn, const char *host,
                                       const char *path, const char *body, size_t body_len,
                                       void (*done)(struct evhttp_request *, void *), void *arg)
{
    struct evhttp_request *req = evhttp_request_new(done, arg);
    struct evkeyvalq *headers;

    if (!req)
        return NULL;
    headers = evhttp_request_get_output_headers(req);
    if (evhttp_add_header(headers, "Host", host) < 0 ||
        evhttp_add_header(headers, "Content-Type", "application/json") < 0 ||
        evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len) < 0 ||
        evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) < 0)
        return NULL; /* evhttp_make_request() frees req when it fails; else it is ours */
    set_nodelay(conn);
    return req;
}

static const char *request_error_text(enum evhttp_request_error error)
{
    switch (error) {
    case EVREQ_HTTP_TIMEOUT:
        return "timed out";
    case EVREQ_HTTP_EOF:
        return "connection closed";
    case EVREQ_HTTP_INVALID_HEADER:
        return "not an HTTP answer";
    case EVREQ_HTTP_BUFFER_ERROR:
        return "connection failed";
    case EVREQ_HTTP_REQUEST_CANCEL:
        return "cancelled";
    case EVREQ_HTTP_DATA_TOO_LONG:
        return "answer too large";
    }
    return "failed";
}

static int request_error_errno(enum evhttp_request_error error)
{
    switch (error) {
    case EVREQ_HTTP_TIMEOUT:
        return -ETIMEDOUT;
    case EVREQ_HTTP_INVALID_HEADER:
        return -EPROTO;
    case EVREQ_HTTP_DATA_TOO_LONG:
        return -EFBIG;
    case EVREQ_HTTP_EOF:
        return -ECONNRESET;
    default:
        return -ECONNREFUSED;
    }
}

/* --- calls --- */

static void call_free(struct etcd_call *call)
{
    if (call->prev_next) {
        *call->prev_next = call->next;
        if (call->next)
            call->next->prev_next = call->prev_next;
    }
    if (call->req)
        evhttp_cancel_request(call->req);
    if (call->conn)
        evhttp_connection_free(call->conn);
    if (call->deadline)
        event_free(call->deadline);
    if (call->step)
        event_free(call->step);
    free(call->answer);
    free(call->body);
    free(call);
}

static void note_try(struct etcd_call *call, const char *what)
{
    size_t used = strlen(call->tries);
    const struct endpoint *e = &call->client->endpoints[call->endpoint];

    snprintf(call->tries + used, sizeof(call->tries) - used, "%s%s %s", used ? "; " : "", e->text,
             what);
}

static void deliver(struct etcd_call *call, int error, const char *why)
{
    const struct endpoint *e = &call->client->endpoints[call->endpoint];
    struct etcd_result result = {.error = error,
                                 .http_status = call->answer_status,
                                 .body = call->answer ? call->answer : "",
                                 .body_len = call->answer_len,
                                 .endpoint = e->text};

    if (error)
        snprintf(result.message, sizeof(result.message), "%s (%s)", why, call->tries);
    else
        call->client->preferred = call->endpoint;
    call->fn(call->data, &result);
    call_free(call);
}

static void on_call_done(struct evhttp_request *req, void *arg)
{
    struct etcd_call *call = arg;
    struct evbuffer *in;

    call->req = NULL; /* libevent frees it after this returns */
    if (req && evhttp_request_get_response_code(req) > 0) {
        in = evhttp_request_get_input_buffer(req);
        call->answer_len = evbuffer_get_length(in);
        call->answer = malloc(call->answer_len + 1);
        if (call->answer) {
            evbuffer_remove(in, call->answer, call->answer_len);
            call->answer[call->answer_len] = '\0';
            call->answered = true;
            call->answer_status = evhttp_request_get_response_code(req);
        } else {
            call->failure = -ENOMEM;
        }
    } else if (!call->failure) {
        call->failure = -ECONNREFUSED;
    }
    event_active(call->step, EV_TIMEOUT, 0);
}

static void on_call_error(enum evhttp_request_error error, void *arg)
{
    struct etcd_call *call = arg;

    call->failure = request_error_errno(error);
    note_try(call, request_error_text(error));
}

static bool attempt(struct etcd_call *call)
{
    struct etcd_client *client = call->client;
    const struct endpoint *e = &client->endpoints[call->endpoint];
    char err[256];

    call->answered = false;
    call->failure = 0;
    call->conn = connect_endpoint(client, e, err, sizeof(err));
    if (!call->conn) {
        note_try(call, err);
        return false;
    }
    evhttp_connection_set_max_body_size(call->conn, ETCD_MAX_MESSAGE);
    call->req =
        new_post(call->conn, e->text, call->path, call->body, call->body_len, on_call_done, call);
    if (!call->req) {
        note_try(call, "out of memory");
        return false;
    }
    evhttp_request_set_error_cb(call->req, on_call_error);
    return true;
}

/* After an attempt: the answer to the caller, or the next endpoint. */
static void on_call_step(evutil_socket_t fd, short what, void *arg)
{
    struct etcd_call *call = arg;

    (void)fd;
    (void)what;
    if (call->conn) {
        evhttp_connection_free(call->conn);
        call->conn = NULL;
    }
    /* A member that answers 503 has no leader (or is stopping): another may have one. */
    if (call->answered && call->answer_status != 503) {
        deliver(call, 0, NULL);
        return;
    }
    if (call->answered)
        note_try(call, "has no leader (503)");
    while (++call->tried < call->client->n_endpoints) {
        call->endpoint = (call->endpoint + 1) % call->client->n_endpoints;
        free(call->answer);
        call->answer = NULL;
        call->answer_len = 0;
        call->answer_status = 0;
        if (attempt(call))
            return;
    }
    if (call->answered) /* every member said 503: that is etcd's answer */
        deliver(call, 0, NULL);
    else
        deliver(call, call->failure ? call->failure : -ECONNREFUSED, "no etcd endpoint answered");
}

static void on_call_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct etcd_call *call = arg;
    char why[64];

    (void)fd;
    (void)what;
    note_try(call, "no answer");
    snprintf(why, sizeof(why), "etcd did not answer within %d ms", call->client->deadline_ms);
    deliver(call, -ETIMEDOUT, why);
}

struct etcd_call *etcd_call(struct etcd_client *client, const char *path, json_t *request,
                            etcd_call_fn fn, void *data)
{
    struct etcd_call *call = calloc(1, sizeof(*call));
    struct timeval deadline = {client->deadline_ms / 1000, (client->deadline_ms % 1000) * 1000};

    if (!call || !request || strlen(path) >= sizeof(call->path)) {
        json_decref(request);
        free(call);
        return NULL;
    }
    call->client = client;
    call->fn = fn;
    call->data = data;
    snprintf(call->path, sizeof(call->path), "%s", path);
    call->body = json_dumps(request, JSON_COMPACT);
    json_decref(request);
    call->body_len = call->body ? strlen(call->body) : 0;
    call->endpoint = client->preferred;
    call->deadline = evtimer_new(client->base, on_call_deadline, call);
    call->step = event_new(client->base, -1, 0, on_call_step, call);
    if (!call->body || !call->deadline || !call->step || evtimer_add(call->deadline, &deadline)) {
        call_free(call);
        return NULL;
    }
    call->next = client->calls;
    if (call->next)
        call->next->prev_next = &call->next;
    call->prev_next = &client->calls;
    client->calls = call;
    /* A first attempt that cannot even start goes on from the loop like a failed one. */
    if (!attempt(call))
        event_active(call->step, EV_TIMEOUT, 0);
    return call;
}

void etcd_call_cancel(struct etcd_call *call)
{
    if (call)
        call_free(call);
}

/* --- watches --- */

static void watch_disconnect(struct etcd_watch *watch)
{
    if (watch->req)
        evhttp_cancel_request(watch->req);
    watch->req = NULL;
    if (watch->conn)
        evhttp_connection_free(watch->conn);
    watch->conn = NULL;
    evbuffer_drain(watch->pending, evbuffer_get_length(watch->pending));
}

static void watch_schedule(struct etcd_watch *watch, int delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

    evtimer_add(watch->retry, &tv);
}

/* One whole message of the stream. Returns false when the watch must end here. */
static bool watch_message(struct etcd_watch *watch, const char *line, size_t len)
{
    struct etcd_watch_message message;
    struct etcd_error etcd_err;
    char err[256];
    int r = etcd_parse_watch(line, len, &message, &etcd_err, err, sizeof(err));

    if (r < 0) {
        snprintf(watch->why, sizeof(watch->why), "%s", err);
        return false;
    }
    if (message.compact_revision > 0) {
        snprintf(watch->why, sizeof(watch->why),
                 "etcd compacted its history up to revision %" PRId64 " (asked from %" PRId64 ")",
                 message.compact_revision, watch->next_revision);
        watch->compacted = true;
        watch->fn(watch->data, ETCD_WATCH_COMPACTED, &message, watch->why);
        etcd_watch_message_free(&message);
        return false;
    }
    if (message.canceled) {
        snprintf(watch->why, sizeof(watch->why), "etcd cancelled the watch: %s",
                 message.cancel_reason[0] ? message.cancel_reason : "no reason given");
        etcd_watch_message_free(&message);
        return false;
    }
    watch->backoff_ms = 0; /* it works: the next loss retries at once */
    if (message.n_events)
        watch->next_revision = message.events[message.n_events - 1].kv.mod_revision + 1;
    else if (!message.created && message.header.revision >= watch->next_revision)
        watch->next_revision = message.header.revision + 1; /* a progress notification */
    if (message.n_events || !message.created)
        watch->fn(watch->data, ETCD_WATCH_EVENTS, &message, NULL);
    etcd_watch_message_free(&message);
    return true;
}

static void on_watch_chunk(struct evhttp_request *req, void *arg)
{
    struct etcd_watch *watch = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len;
    char *line;

    evbuffer_add_buffer(watch->pending, in);
    while (!watch->ended && (line = evbuffer_readln(watch->pending, &len, EVBUFFER_EOL_LF))) {
        if (len && !watch_message(watch, line, len))
            watch->ended = true;
        free(line);
    }
    if (!watch->ended && evbuffer_get_length(watch->pending) > ETCD_MAX_MESSAGE) {
        snprintf(watch->why, sizeof(watch->why), "a watch message exceeds %d bytes",
                 ETCD_MAX_MESSAGE);
        watch->ended = true;
    }
    if (watch->ended)
        watch_schedule(watch, 0); /* the connection is freed from the loop */
}

static void on_watch_done(struct evhttp_request *req, void *arg)
{
    struct etcd_watch *watch = arg;

    watch->req = NULL;
    if (!watch->ended) {
        if (!watch->why[0])
            snprintf(watch->why, sizeof(watch->why), "the watch stream ended (HTTP %d)",
                     req ? evhttp_request_get_response_code(req) : 0);
        watch->ended = true;
    }
    watch_schedule(watch, 0);
}

static void on_watch_error(enum evhttp_request_error error, void *arg)
{
    struct etcd_watch *watch = arg;

    if (!watch->why[0])
        snprintf(watch->why, sizeof(watch->why), "the watch connection %s",
                 request_error_text(error));
}

static void watch_connect(struct etcd_watch *watch)
{
    struct etcd_client *client = watch->client;
    const struct endpoint *e = &client->endpoints[watch->endpoint];
    json_t *request = etcd_watch_request(watch->key, watch->key_len, watch->range_end,
                                         watch->range_end_len, watch->next_revision);
    char *body = request ? json_dumps(request, JSON_COMPACT) : NULL;
    char err[256];

    json_decref(request);
    watch->ended = false;
    watch->why[0] = '\0';
    watch->conn = body ? connect_endpoint(client, e, err, sizeof(err)) : NULL;
    if (watch->conn)
        watch->req =
            new_post(watch->conn, e->text, "/v3/watch", body, strlen(body), on_watch_done, watch);
    free(body);
    if (!watch->req) {
        snprintf(watch->why, sizeof(watch->why), "cannot watch through %s: %s", e->text,
                 watch->conn ? "out of memory" : err);
        watch->ended = true;
        watch_schedule(watch, 0);
        return;
    }
    evhttp_request_set_chunked_cb(watch->req, on_watch_chunk);
    evhttp_request_set_error_cb(watch->req, on_watch_error);
}

static void on_watch_retry(evutil_socket_t fd, short what, void *arg)
{
    struct etcd_watch *watch = arg;

    (void)fd;
    (void)what;
    if (watch->ended) {
        watch_disconnect(watch);
        if (watch->compacted)
            return; /* stopped: the caller resyncs */
        watch->fn(watch->data, ETCD_WATCH_LOST, NULL, watch->why);
        /* Next time through another member, after a growing pause. */
        watch->endpoint = (watch->endpoint + 1) % watch->client->n_endpoints;
        watch->backoff_ms = watch->backoff_ms ? watch->backoff_ms * 2 : WATCH_RETRY_MIN_MS;
        if (watch->backoff_ms > WATCH_RETRY_MAX_MS)
            watch->backoff_ms = WATCH_RETRY_MAX_MS;
        watch->ended = false;
        watch_schedule(watch, watch->backoff_ms);
        return;
    }
    watch_connect(watch);
}

struct etcd_watch *etcd_watch_start(struct etcd_client *client, const char *key, size_t key_len,
                                    const char *range_end, size_t range_end_len,
                                    int64_t start_revision, etcd_watch_fn fn, void *data)
{
    struct etcd_watch *watch = calloc(1, sizeof(*watch));

    if (!watch || key_len > ETCD_MAX_KEY || range_end_len > ETCD_MAX_KEY + 1) {
        free(watch);
        return NULL;
    }
    watch->client = client;
    watch->fn = fn;
    watch->data = data;
    watch->next_revision = start_revision;
    watch->endpoint = client->preferred;
    watch->key = malloc(key_len + 1);
    watch->range_end = range_end ? malloc(range_end_len + 1) : NULL;
    watch->pending = evbuffer_new();
    watch->retry = evtimer_new(client->base, on_watch_retry, watch);
    if (!watch->key || (range_end && !watch->range_end) || !watch->pending || !watch->retry) {
        etcd_watch_stop(watch);
        return NULL;
    }
    memcpy(watch->key, key, key_len);
    watch->key_len = key_len;
    if (range_end) {
        memcpy(watch->range_end, range_end, range_end_len);
        watch->range_end_len = range_end_len;
    }
    watch->next = client->watches;
    if (watch->next)
        watch->next->prev_next = &watch->next;
    watch->prev_next = &client->watches;
    client->watches = watch;
    watch_connect(watch);
    return watch;
}

void etcd_watch_stop(struct etcd_watch *watch)
{
    if (!watch)
        return;
    if (watch->prev_next) {
        *watch->prev_next = watch->next;
        if (watch->next)
            watch->next->prev_next = watch->prev_next;
    }
    if (watch->pending)
        watch_disconnect(watch);
    if (watch->pending)
        evbuffer_free(watch->pending);
    if (watch->retry)
        event_free(watch->retry);
    free(watch->key);
    free(watch->range_end);
    free(watch);
}

void etcd_client_free(struct etcd_client *client)
{
    if (!client)
        return;
    while (client->calls)
        call_free(client->calls);
    while (client->watches)
        etcd_watch_stop(client->watches);
    SSL_CTX_free(client->ssl_ctx);
    free(client->ca_file);
    free(client->cert_file);
    free(client->key_file);
    free(client);
}
