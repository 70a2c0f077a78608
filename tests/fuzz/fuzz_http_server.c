/*
 * Fuzzes the HTTP server (lib/http_server.c) through its public API: the input is what one
 * client sends on a connection (request heads, bodies, pipelined requests), over loopback TCP
 * to a server on 127.0.0.1, with the limits of the REST API. The handler reads every part of
 * each request (so that ASan sees any that points at freed or moved memory) and answers at
 * once or, when the query says "defer", later from the event loop.
 */
#include "fuzz_util.h"
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection that sees no progress for this long is a stall: the server's deadlines are 2 s. */
#define FUZZ_HTTP_STALL_SECONDS 20

static struct event_base *base;

/* The client's side of the connection. */
struct client {
    int fd;
    const uint8_t *data;
    size_t size, sent;
    bool done;        /* the server closed its side */
    char first[9];    /* the first bytes of the answer */
    size_t first_len; /* how many of them came */
    struct event *read_event, *write_event;
};

/* The request answered from the event loop, when the handler deferred it. */
static struct {
    struct http_request *request;
    struct event *event;
} deferred;

static unsigned long long hash(const void *data, size_t len)
{
    unsigned long long h = 14695981039346656037ULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ULL;
    return h;
}

static void answer(struct http_request *request)
{
    static const char *const names[] = {"host",   "content-type", "authorization",
                                        "accept", "x-echo",       "content-length"};
    char peer[64], value[128], *body = NULL;
    size_t body_len = 0, len = 0;
    const char *request_body;
    FILE *f = open_memstream(&body, &len);

    FUZZ_CHECK(f);
    http_request_peer(request, peer, sizeof(peer));
    request_body = http_request_body(request, &body_len);
    FUZZ_CHECK(request_body[body_len] == '\0');
    fprintf(f, "%s %s ? %s from %s\n", http_request_method(request), http_request_path(request),
            http_request_query(request), peer);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *header = http_request_header(request, names[i]);

        fprintf(f, "%s: %s\n", names[i], header ? header : "(none)");
    }
    if (http_query_get(http_request_query(request), "name", value, sizeof(value)) == 1)
        fprintf(f, "name=%s\n", value);
    fprintf(f, "body: %zu bytes, %llx\n", body_len, hash(request_body, body_len));
    FUZZ_CHECK(!http_request_is_tls(request) && !http_request_peer_certificate(request));
    FUZZ_CHECK(!http_request_peer_chain_pem(request));
    FUZZ_CHECK(fclose(f) == 0);
    if (http_request_header(request, "x-echo"))
        (void)http_response_header(request, "X-Echo", http_request_header(request, "x-echo"));
    http_respond(request, 200, "text/plain", body, len);
    free(body);
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct http_request *request = deferred.request;

    (void)fd;
    (void)what;
    (void)arg;
    event_free(deferred.event);
    deferred.event = NULL;
    deferred.request = NULL;
    answer(request);
}

static void on_abandon(void *data)
{
    (void)data;
    event_free(deferred.event);
    deferred.event = NULL;
    deferred.request = NULL;
}

static void handle(struct http_request *request, void *data)
{
    char value[16];
    struct timeval now = {0, 0};

    (void)data;
    if (http_query_get(http_request_query(request), "defer", value, sizeof(value)) != 1) {
        answer(request);
        return;
    }
    FUZZ_CHECK(!deferred.request); /* one connection, one request at a time */
    deferred.request = request;
    deferred.event = evtimer_new(base, on_deferred, NULL);
    FUZZ_CHECK(deferred.event);
    http_request_on_abandon(request, on_abandon, NULL);
    evtimer_add(deferred.event, &now);
}

/* The API's kind of error body: JSON, malloc'd. */
static char *error_body(int status, const char *message, const char **ret_content_type,
                        size_t *ret_len, void *data)
{
    char *body = NULL;
    int n;

    (void)data;
    n = asprintf(&body, "{\"error_code\": %d, \"description\": \"%s\"}", status, message);
    FUZZ_CHECK(n > 0);
    *ret_content_type = "application/json";
    *ret_len = (size_t)n;
    return body;
}

static void on_client_write(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;

    (void)what;
    while (c->sent < c->size) {
        ssize_t n = send(fd, c->data + c->sent, c->size - c->sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the event stays armed */
        if (n < 0)
            break; /* the server reset the connection: nothing more to send */
        c->sent += (size_t)n;
    }
    c->sent = c->size;
    shutdown(fd, SHUT_WR);
    event_del(c->write_event);
}

static void on_client_read(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    char buf[65536];
    ssize_t n;

    (void)what;
    n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        c->done = true;
        return;
    }
    for (ssize_t i = 0; i < n && c->first_len < sizeof(c->first) - 1; i++)
        c->first[c->first_len++] = buf[i];
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fuzz_fail("the connection made no progress: the server stalls");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base)
        fuzz_fail("event_base_new");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The REST API's limits (services/api/main.c), with short deadlines. */
    struct http_limits limits;
    const struct http_callbacks callbacks = {handle, size % 2 ? error_body : NULL, NULL};
    struct http_server *server = NULL;
    struct http_listener *listener = NULL;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    struct client c = {.data = data, .size = size};
    const struct linger abort_on_close = {1, 0};
    struct timeval stall = {FUZZ_HTTP_STALL_SECONDS, 0};
    struct event *stall_timer;
    char err[256];

    http_limits_default(&limits);
    limits.max_head = 16 * 1024;
    limits.max_body = 1024 * 1024;
    limits.max_conns = 4;
    limits.request_timeout = limits.idle_timeout = limits.write_timeout = 2;
    if (http_server_new(base, &limits, &callbacks, &server) < 0 ||
        http_server_listen(server, "127.0.0.1", 0, NULL, &listener, err, sizeof(err)) < 0)
        fuzz_fail("cannot start the server on 127.0.0.1");
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)http_listener_port(listener));
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0 ||
        (connect(c.fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS))
        fuzz_fail("cannot connect to the server");
    c.read_event = event_new(base, c.fd, EV_READ | EV_PERSIST, on_client_read, &c);
    c.write_event = event_new(base, c.fd, EV_WRITE | EV_PERSIST, on_client_write, &c);
    stall_timer = evtimer_new(base, on_stall, NULL);
    FUZZ_CHECK(c.read_event && c.write_event && stall_timer);
    event_add(c.read_event, NULL);
    event_add(c.write_event, NULL);
    evtimer_add(stall_timer, &stall);
    while (!c.done)
        event_base_loop(base, EVLOOP_ONCE);
    /* Whatever the server answered, it answered in HTTP. */
    if (c.first_len > 0)
        FUZZ_CHECK(memcmp(c.first, "HTTP/1.1 ", c.first_len) == 0);
    event_free(stall_timer);
    event_free(c.read_event);
    event_free(c.write_event);
    /* A reset, not a FIN: no TIME_WAIT left behind for each of millions of connections. */
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
    close(c.fd);
    http_server_free(server);
    FUZZ_CHECK(!deferred.request);
    return 0;
}
