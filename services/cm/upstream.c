/* A non-blocking HTTPS/1.1 client for one upstream: the REST API the console's requests go to. */
#include "upstream.h"

#include "http_head.h"
#include "netconn.h"
#include "netutil.h"
#include "tls_context.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define UPSTREAM_HOST_MAX 256
#define UPSTREAM_MAX_HEAD (64u * 1024)
#define UPSTREAM_MAX_HEADERS 100 /* header lines of an answer */

enum phase {
    PHASE_CONNECTING, /* the TCP connection, then the TLS handshake */
    PHASE_WRITING,
    PHASE_READING,
    PHASE_FAILED, /* failed before reaching the loop: reported by the timer */
};

struct upstream {
    struct event_base *base;
    char *address; /* as given */
    char *host;    /* without brackets */
    char *server_name;
    char *ca_file;
    bool server_name_is_ip;
    struct net_address addr;
    int timeout_sec;
    SSL_CTX *ctx;
    struct upstream_exchange *exchanges;
};

struct upstream_exchange {
    struct upstream *upstream;
    struct upstream_exchange *next, **pprev;
    struct netconn io; /* TLS; watched for good once connecting */
    enum phase phase;
    struct event *timer;
    char *out;
    size_t out_len, out_sent;
    char *in;
    size_t in_len, in_cap;
    size_t body_at; /* where the body starts in `in`, once the head is complete; 0 before */
    long long content_length; /* -1: until the connection closes */
    bool head_request;        /* the answer to HEAD has no body, whatever its length says */
    int status;
    char *head_text;       /* the head, copied out of `in` and parsed in place; NULL before */
    struct http_head head; /* points into head_text */
    struct http_header headers[UPSTREAM_MAX_HEADERS];
    char error[512]; /* PHASE_FAILED: why */
    upstream_done_fn done;
    void *data;
};

/* --- the upstream --- */

/* Splits "host:port" or "[v6]:port". */
static int split_address(const char *address, char *host, size_t host_len, int *ret_port)
{
    const char *colon, *start = address, *end;
    char *stop;
    long port;

    if (address[0] == '[') {
        end = strchr(address, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        start = address + 1;
        colon = end + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon || strchr(address, ':') != colon)
            return -EINVAL; /* none, or an IPv6 address without brackets */
        end = colon;
    }
    if (end == start || (size_t)(end - start) >= host_len)
        return -EINVAL;
    errno = 0;
    port = strtol(colon + 1, &stop, 10);
    if (errno || stop == colon + 1 || *stop || port < 1 || port > 65535)
        return -EINVAL;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    *ret_port = (int)port;
    return 0;
}

/* True when the certificate is itself one of the store's anchors, byte for byte. */
static bool is_pinned(X509_STORE_CTX *store_ctx, X509 *cert)
{
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(X509_STORE_CTX_get0_store(store_ctx));

    for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
        X509 *anchor = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));

        if (anchor && X509_cmp(anchor, cert) == 0)
            return true;
    }
    return false;
}

/*
 * The one check that is waived: the name, for the very certificate the agent
 * pinned. Everything else (validity, the chain to an anchor) still applies.
 */
static int verify_api(int ok, X509_STORE_CTX *store_ctx)
{
    int error = X509_STORE_CTX_get_error(store_ctx);

    if (!ok && X509_STORE_CTX_get_error_depth(store_ctx) == 0 &&
        (error == X509_V_ERR_HOSTNAME_MISMATCH || error == X509_V_ERR_IP_ADDRESS_MISMATCH) &&
        is_pinned(store_ctx, X509_STORE_CTX_get_current_cert(store_ctx))) {
        X509_STORE_CTX_set_error(store_ctx, X509_V_OK);
        return 1;
    }
    return ok;
}

static SSL_CTX *client_context(const char *ca_file, char *err, size_t err_len)
{
    SSL_CTX *ctx;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        char reason[256];

        tls_error_string(reason, sizeof(reason));
        snprintf(err, err_len, "--api-ca %s: %s", ca_file, *reason ? reason : "cannot load");
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* A pinned certificate (the api's own, which the agent renders) is an anchor by itself. */
    X509_STORE_set_flags(SSL_CTX_get_cert_store(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_api);
    /* A server that closes without close_notify after a complete answer is not an error. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

int upstream_new(struct event_base *base, const char *address, const char *server_name,
                 const char *ca_file, int timeout_sec, struct upstream **ret_upstream, char *err,
                 size_t err_len)
{
    struct upstream *u = calloc(1, sizeof(*u));
    char host[UPSTREAM_HOST_MAX], reason[256];
    int port, r;

    if (!u) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if (split_address(address, host, sizeof(host), &port) < 0) {
        snprintf(err, err_len, "--api %s: not host:port (an IPv6 address goes in brackets)",
                 address);
        r = -EINVAL;
        goto fail;
    }
    r = net_address_resolve(host, port, &u->addr, reason, sizeof(reason));
    if (r < 0) {
        snprintf(err, err_len, "--api %s: %s", address, reason);
        goto fail;
    }
    u->base = base;
    u->timeout_sec = timeout_sec;
    u->address = strdup(address);
    u->host = strdup(host);
    u->server_name = strdup(server_name ? server_name : host);
    u->ca_file = strdup(ca_file);
    if (!u->address || !u->host || !u->server_name || !u->ca_file) {
        snprintf(err, err_len, "out of memory");
        r = -ENOMEM;
        goto fail;
    }
    u->server_name_is_ip = net_is_ip_literal(u->server_name);
    u->ctx = client_context(ca_file, err, err_len);
    if (!u->ctx) {
        r = -EINVAL;
        goto fail;
    }
    *ret_upstream = u;
    return 0;
fail:
    upstream_free(u);
    return r;
}

int upstream_reload(struct upstream *upstream, const char *ca_file, char *err, size_t err_len)
{
    SSL_CTX *ctx = client_context(ca_file, err, err_len);
    char *path = ctx ? strdup(ca_file) : NULL;

    if (!path) {
        SSL_CTX_free(ctx);
        if (ctx)
            snprintf(err, err_len, "out of memory");
        return ctx ? -ENOMEM : -EINVAL;
    }
    SSL_CTX_free(upstream->ctx); /* exchanges under way hold their own reference */
    upstream->ctx = ctx;
    free(upstream->ca_file);
    upstream->ca_file = path;
    return 0;
}

const char *upstream_address(const struct upstream *upstream)
{
    return upstream->address;
}

/* --- exchanges --- */

static void exchange_free(struct upstream_exchange *x)
{
    if (x->timer)
        event_free(x->timer);
    netconn_close(&x->io);
    free(x->out);
    free(x->in);
    free(x->head_text);
    if (x->pprev) {
        *x->pprev = x->next;
        if (x->next)
            x->next->pprev = x->pprev;
    }
    free(x);
}

void upstream_cancel(struct upstream_exchange *exchange)
{
    if (exchange)
        exchange_free(exchange);
}

void upstream_free(struct upstream *upstream)
{
    if (!upstream)
        return;
    while (upstream->exchanges)
        exchange_free(upstream->exchanges);
    SSL_CTX_free(upstream->ctx);
    free(upstream->address);
    free(upstream->host);
    free(upstream->server_name);
    free(upstream->ca_file);
    free(upstream);
}

static void finish(struct upstream_exchange *x, const struct upstream_response *response,
                   const char *error, int timed_out)
{
    upstream_done_fn done = x->done;
    void *data = x->data;

    /* The callback may free the requester, which may cancel: take the exchange out first. */
    x->done = NULL;
    done(data, response, error, timed_out);
    exchange_free(x);
}

static void fail(struct upstream_exchange *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Ends the exchange with a message; its format's first %s is the API's address. */
static void fail(struct upstream_exchange *x, const char *fmt, ...)
{
    char message[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    finish(x, NULL, message, 0);
}

/* Why a handshake failed, in words: an untrusted certificate says which check refused it. */
static void handshake_failure(struct upstream_exchange *x)
{
    long verify = SSL_get_verify_result(netconn_ssl(&x->io));
    char reason[256];

    if (verify != X509_V_OK) {
        snprintf(reason, sizeof(reason), "%s (the API's certificate, checked against --api-ca)",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
    } else {
        tls_error_string(reason, sizeof(reason));
        if (!*reason)
            snprintf(reason, sizeof(reason), "the connection closed during the handshake");
    }
    fail(x, "TLS with the REST API at %s failed: %s", x->upstream->address, reason);
}

/* Fails the exchange for a head that cannot be read; r is http_head's error. */
static int bad_head(struct upstream_exchange *x, int r)
{
    if (r == -E2BIG)
        fail(x, "the REST API at %s sent an answer head with more than %u header lines",
             x->upstream->address, UPSTREAM_MAX_HEADERS);
    else
        fail(x, "the REST API at %s sent something that is not an HTTP/1.1 answer",
             x->upstream->address);
    return -1;
}

/* The body's length by the head; -1: until the connection closes. Returns 0, or -1 after failing.
 */
static int read_length(struct upstream_exchange *x)
{
    const char *te = http_head_header(&x->head, "transfer-encoding");
    uint64_t length = 0;
    int r;

    if (te && strcasecmp(te, "identity") != 0) {
        fail(x, "the REST API at %s sent a chunked answer, which is not taken",
             x->upstream->address);
        return -1;
    }
    x->content_length = -1;
    if (x->head_request || x->status == 204 || x->status == 304 || x->status < 200) {
        x->content_length = 0;
        return 0;
    }
    r = http_head_content_length(&x->head, &length);
    if (r < 0) {
        fail(x, "the REST API at %s sent a malformed Content-Length", x->upstream->address);
        return -1;
    }
    if (r > 0 && length > UPSTREAM_MAX_RESPONSE) {
        fail(x, "the REST API at %s sent an answer larger than 8 MiB", x->upstream->address);
        return -1;
    }
    if (r > 0)
        x->content_length = (long long)length;
    return 0;
}

/*
 * Once the head is complete: copies it out of the input (which moves as the
 * body comes), reads the status and the length. Returns 0, 1 while the head
 * is incomplete, or -1 after failing the exchange.
 */
static int parse_head(struct upstream_exchange *x)
{
    size_t len =
        http_head_length(x->in, x->in_len < UPSTREAM_MAX_HEAD ? x->in_len : UPSTREAM_MAX_HEAD);
    int r;

    if (!len) {
        if (x->in_len >= UPSTREAM_MAX_HEAD) {
            fail(x, "the REST API at %s sent an answer head that is too large",
                 x->upstream->address);
            return -1;
        }
        return 1;
    }
    x->head_text = malloc(len + 1);
    if (!x->head_text) {
        fail(x, "out of memory for the answer of the REST API at %s", x->upstream->address);
        return -1;
    }
    memcpy(x->head_text, x->in, len);
    r = http_head_parse(x->head_text, len, x->headers, UPSTREAM_MAX_HEADERS, &x->head);
    if (r == 0)
        r = http_head_status_line(&x->head, &x->status);
    if (r < 0)
        return bad_head(x, r);
    x->body_at = len;
    return read_length(x);
}

static void deliver(struct upstream_exchange *x)
{
    size_t body_len = x->in_len - x->body_at;
    struct upstream_response response;

    if (x->content_length >= 0 && body_len > (size_t)x->content_length)
        body_len = (size_t)x->content_length;
    response = (struct upstream_response){
        .status = x->status,
        .content_type = http_head_header(&x->head, "content-type"),
        .retry_after = http_head_header(&x->head, "retry-after"),
        .allow = http_head_header(&x->head, "allow"),
        .warning = http_head_header(&x->head, "warning"),
        .stale = http_head_header(&x->head, "x-certvisor-stale"),
        .body = x->in + x->body_at,
        .body_len = body_len,
    };
    finish(x, &response, NULL, 0);
}

/* Whether the answer is complete (head parsed and all of a known length read). */
static bool answer_complete(const struct upstream_exchange *x)
{
    return x->head_text && x->content_length >= 0 &&
           x->in_len - x->body_at >= (size_t)x->content_length;
}

/* What a step of an exchange leads to. */
enum step {
    STEP_GO_ON,
    STEP_WAIT,
    STEP_OVER, /* finished: the exchange is freed */
};

/* After a call that moved nothing (r: 0 at the end of the stream, or NETCONN_*). */
static enum step wait_for(struct upstream_exchange *x, ssize_t r)
{
    switch (r) {
    case NETCONN_AGAIN:
        return STEP_WAIT; /* the connection's watch runs it again */
    case 0:
        if (x->phase == PHASE_READING && x->head_text && x->content_length < 0) {
            deliver(x); /* an answer that ends with the connection */
            return STEP_OVER;
        }
        fail(x, "the REST API at %s closed the connection before its answer was complete",
             x->upstream->address);
        return STEP_OVER;
    default:
        if (x->phase == PHASE_CONNECTING && netconn_is_connecting(&x->io)) {
            ERR_clear_error();
            fail(x, "cannot connect to the REST API at %s: %s", x->upstream->address,
                 strerror(netconn_errno(&x->io)));
            return STEP_OVER;
        }
        if (x->phase == PHASE_CONNECTING) {
            handshake_failure(x);
            return STEP_OVER;
        }
        {
            char reason[256];

            tls_error_string(reason, sizeof(reason));
            fail(x, "the connection to the REST API at %s failed: %s", x->upstream->address,
                 *reason ? reason : "reset by the peer");
        }
        return STEP_OVER;
    }
}

static enum step step_connect(struct upstream_exchange *x)
{
    int r = netconn_handshake(&x->io);

    if (r != 1)
        return wait_for(x, r);
    x->phase = PHASE_WRITING;
    return STEP_GO_ON;
}

static enum step step_write(struct upstream_exchange *x)
{
    ssize_t r;

    if (x->out_sent == x->out_len) {
        x->phase = PHASE_READING;
        return STEP_GO_ON;
    }
    r = netconn_write(&x->io, x->out + x->out_sent, x->out_len - x->out_sent);
    if (r <= 0)
        return wait_for(x, r);
    x->out_sent += (size_t)r;
    return STEP_GO_ON;
}

static enum step step_read(struct upstream_exchange *x)
{
    ssize_t n;
    int r;

    if (x->in_cap - x->in_len < 4096) {
        size_t cap = x->in_cap ? x->in_cap * 2 : 16384;
        char *in;

        if (cap > UPSTREAM_MAX_RESPONSE + UPSTREAM_MAX_HEAD + 1) {
            fail(x, "the REST API at %s sent an answer larger than 8 MiB", x->upstream->address);
            return STEP_OVER;
        }
        in = realloc(x->in, cap);
        if (!in) {
            fail(x, "out of memory for the answer of the REST API at %s", x->upstream->address);
            return STEP_OVER;
        }
        x->in = in;
        x->in_cap = cap;
    }
    n = netconn_read(&x->io, x->in + x->in_len, x->in_cap - x->in_len - 1);
    if (n <= 0)
        return wait_for(x, n);
    x->in_len += (size_t)n;
    if (!x->head_text) {
        r = parse_head(x);
        if (r < 0)
            return STEP_OVER;
    }
    if (answer_complete(x)) {
        deliver(x);
        return STEP_OVER;
    }
    return STEP_GO_ON;
}

static void run(struct upstream_exchange *x)
{
    enum step step;

    do {
        ERR_clear_error();
        switch (x->phase) {
        case PHASE_CONNECTING:
            step = step_connect(x);
            break;
        case PHASE_WRITING:
            step = step_write(x);
            break;
        case PHASE_READING:
        default:
            step = step_read(x);
            break;
        }
    } while (step == STEP_GO_ON);
}

static void on_io(void *arg)
{
    struct upstream_exchange *x = arg;

    if (x->phase != PHASE_FAILED)
        run(x);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_exchange *x = arg;
    char message[600];

    (void)fd;
    (void)what;
    if (x->phase == PHASE_FAILED) {
        finish(x, NULL, x->error, 0);
        return;
    }
    snprintf(message, sizeof(message), "the REST API at %s did not answer within %d s",
             x->upstream->address, x->upstream->timeout_sec);
    finish(x, NULL, message, 1);
}

static char *build_request(const struct upstream *u, const char *method, const char *target,
                           const struct upstream_header *headers, size_t n_headers,
                           const char *body, size_t body_len, size_t *ret_len)
{
    size_t len = 0;
    char *out = NULL;
    FILE *f = open_memstream(&out, &len);

    if (!f)
        return NULL;
    fprintf(f, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, u->address);
    for (size_t i = 0; i < n_headers; i++)
        fprintf(f, "%s: %s\r\n", headers[i].name, headers[i].value);
    if (body_len || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0 ||
        strcmp(method, "PATCH") == 0)
        fprintf(f, "Content-Length: %zu\r\n", body_len);
    fputs("Connection: close\r\n\r\n", f);
    if (body_len)
        fwrite(body, 1, body_len, f);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    *ret_len = len;
    return out;
}

/*
 * Starts the connection and sets up TLS on it; on failure says why in
 * x->error. *ret_in_progress: the connection completes later.
 */
static int exchange_connect(struct upstream_exchange *x, int *ret_in_progress)
{
    struct upstream *u = x->upstream;
    int fd = net_connect(&u->addr, ret_in_progress);
    SSL *ssl;

    if (fd < 0) {
        snprintf(x->error, sizeof(x->error), "cannot connect to the REST API at %s: %s", u->address,
                 strerror(-fd));
        return fd;
    }
    netconn_init(&x->io, fd, *ret_in_progress); /* the exchange owns fd from here */
    ERR_clear_error();
    if (netconn_start_tls(&x->io, u->ctx, false) < 0)
        goto tls_error;
    ssl = netconn_ssl(&x->io);
    if (u->server_name_is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->server_name) != 1)
            goto tls_error;
    } else if (SSL_set1_host(ssl, u->server_name) != 1 ||
               SSL_set_tlsext_host_name(ssl, u->server_name) != 1) {
        goto tls_error;
    }
    /* Writable once connected or refused: the first event runs the exchange. */
    if (netconn_watch(&x->io, u->base, on_io, x) < 0) {
        snprintf(x->error, sizeof(x->error), "out of memory");
        return -ENOMEM;
    }
    return 0;
tls_error : {
    char reason[256];

    tls_error_string(reason, sizeof(reason));
    snprintf(x->error, sizeof(x->error), "cannot set up TLS to the REST API at %s: %s", u->address,
             reason);
    return -EINVAL;
}
}

int upstream_send(struct upstream *upstream, const char *method, const char *target,
                  const struct upstream_header *headers, size_t n_headers, const char *body,
                  size_t body_len, upstream_done_fn done, void *data,
                  struct upstream_exchange **ret_exchange)
{
    struct upstream_exchange *x = calloc(1, sizeof(*x));
    struct timeval tv = {upstream->timeout_sec, 0};
    int in_progress = 0;

    if (!x)
        return -ENOMEM;
    netconn_init(&x->io, -1, false);
    x->upstream = upstream;
    x->done = done;
    x->data = data;
    x->head_request = strcmp(method, "HEAD") == 0;
    x->timer = evtimer_new(upstream->base, on_timer, x);
    x->out =
        build_request(upstream, method, target, headers, n_headers, body, body_len, &x->out_len);
    if (!x->timer || !x->out) {
        exchange_free(x);
        return -ENOMEM;
    }
    x->next = upstream->exchanges;
    if (x->next)
        x->next->pprev = &x->next;
    x->pprev = &upstream->exchanges;
    upstream->exchanges = x;
    if (exchange_connect(x, &in_progress) < 0) {
        /* Reported from the loop, as every outcome is. */
        x->phase = PHASE_FAILED;
        event_active(x->timer, EV_TIMEOUT, 1);
    } else {
        x->phase = PHASE_CONNECTING;
        evtimer_add(x->timer, &tv);
    }
    *ret_exchange = x;
    return 0;
}
