/*
 * Unit tests for lib/http_server.c: what it makes of a request head (lib/http_head.c parses
 * it, tests/unit/test_http_head.c tests that), query strings, and a live plain-HTTP server on
 * an event loop in this process (keep-alive, pipelining, bodies, 100-continue, oversized
 * bodies, a body large enough to move the input buffer, timeouts, per-address and global
 * connection caps, a listener closed under a request). The source is compiled in so that its
 * static functions can be tested as they are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "../../lib/http_server.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <time.h>

/* --- the head --- */

static struct http_header slots[65];

static int parse_text(const char *text, struct parsed_head *head, size_t max_body)
{
    static char buf[16384];
    struct http_limits limits;
    size_t len = strlen(text);

    http_limits_default(&limits);
    limits.max_body = max_body;
    memset(head, 0, sizeof(*head));
    head->head.headers = slots;
    assert_true(len < sizeof(buf));
    memcpy(buf, text, len + 1);
    assert_int_equal(http_head_length(buf, len), len);
    return parse_head(buf, len, &limits, head);
}

static void heads_are_parsed_and_checked(void **state)
{
    struct parsed_head h;

    (void)state;
    assert_int_equal(parse_text("GET /v1/x?dry_run=true HTTP/1.1\r\nHost: a\r\n"
                                "Accept:  */*  \r\n\r\n",
                                &h, 0),
                     0);
    assert_string_equal(h.line.method, "GET");
    assert_string_equal(h.line.path, "/v1/x");
    assert_string_equal(h.line.query, "dry_run=true");
    assert_string_equal(http_head_header(&h.head, "ACCEPT"), "*/*");
    assert_true(h.keep_alive);
    assert_false(h.has_body);
    assert_int_equal(parse_text("HEAD /metrics HTTP/1.0\n\n", &h, 0), 0);
    assert_false(h.keep_alive);
    assert_int_equal(parse_text("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &h, 0), 0);
    assert_true(h.keep_alive);
    assert_int_equal(parse_text("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, close\r\n\r\n", &h, 0),
                     0);
    assert_false(h.keep_alive);
    assert_int_equal(parse_text("PUT /v1/cluster HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
                                "Expect: 100-continue\r\n\r\n",
                                &h, 100),
                     0);
    assert_true(h.has_body && h.expect_continue);
    assert_int_equal(h.content_length, 12);
    assert_string_equal(h.line.query, "");
}

static void bad_heads_get_their_status(void **state)
{
    struct parsed_head h;
    static const struct {
        const char *head;
        int status;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        {"GET /metrics HTTP/1.1 x\r\nHost: a\r\n\r\n", 400},
        {"GET metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
        {"G(T /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
        {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400},
        {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413},
        {"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
        {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417},
        {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = parse_text(cases[i].head, &h, 100);

        if (status != cases[i].status)
            fail_msg("case %zu: %d, expected %d", i, status, cases[i].status);
    }
}

static void too_many_headers_are_refused(void **state)
{
    struct parsed_head h;
    char head[8192];
    size_t at = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: a\r\n");

    (void)state;
    for (int i = 0; i < 64; i++)
        at += (size_t)snprintf(head + at, sizeof(head) - at, "X-%d: y\r\n", i);
    snprintf(head + at, sizeof(head) - at, "\r\n");
    assert_int_equal(parse_text(head, &h, 0), 431);
}

static void query_values_are_found_and_decoded(void **state)
{
    char buf[16];

    (void)state;
    assert_int_equal(http_query_get("dry_run=true", "dry_run", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "true");
    assert_int_equal(http_query_get("a=1&dry_run&b=2", "dry_run", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "");
    assert_int_equal(http_query_get("a=x%20y+z", "a", buf, sizeof(buf)), 1);
    assert_string_equal(buf, "x y z");
    assert_int_equal(http_query_get("dry_runner=1", "dry_run", buf, sizeof(buf)), 0);
    assert_int_equal(http_query_get("", "a", buf, sizeof(buf)), 0);
    assert_int_equal(http_query_get("a=%2", "a", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(http_query_get("a=%zz", "a", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(http_query_get("a=0123456789abcdefgh", "a", buf, sizeof(buf)), -ENOSPC);
}

/* --- a live server --- */

struct live {
    struct event_base *base;
    struct http_server *server;
    struct http_listener *listener;
    struct http_request *held; /* a request the handler keeps unanswered */
    int handled;
    bool abandoned;
};

/* Echoes the method, path, query and body; "/hold" is kept unanswered. */
static void echo(struct http_request *request, void *data)
{
    struct live *live = data;
    char text[4096];
    size_t len;
    const char *body = http_request_body(request, &len);
    int n;

    live->handled++;
    if (strcmp(http_request_path(request), "/hold") == 0) {
        live->held = request;
        return;
    }
    if (strcmp(http_request_path(request), "/big") == 0) {
        size_t same = 0;

        while (same < len && body[same] == 'A')
            same++;
        /* Method, path, query and header are read after the body grew the input buffer. */
        n = snprintf(text, sizeof(text), "%s %s ?%s x-name=%s [%zu, %zu x A]",
                     http_request_method(request), http_request_path(request),
                     http_request_query(request), http_request_header(request, "X-Name"), len,
                     same);
        http_respond(request, 200, "text/plain", text, (size_t)n);
        return;
    }
    n = snprintf(text, sizeof(text), "%s %s ?%s [%zu:%.*s]", http_request_method(request),
                 http_request_path(request), http_request_query(request), len, (int)len, body);
    assert_int_equal(http_response_header(request, "X-Test", "yes"), 0);
    assert_int_equal(http_response_header(request, "X-Bad", "a\r\nb"), -EINVAL);
    http_respond(request, 200, "text/plain", text, (size_t)n);
}

static char *error_json(int status, const char *message, const char **ret_content_type,
                        size_t *ret_len, void *data)
{
    char *body;
    int n;

    (void)data;
    n = asprintf(&body, "{\"status\": %d, \"message\": \"%s\"}", status, message);
    if (n < 0)
        return NULL;
    *ret_content_type = "application/json";
    *ret_len = (size_t)n;
    return body;
}

static void on_abandon(void *data)
{
    ((struct live *)data)->abandoned = true;
}

/* Starts a server with these limits (http_limits_default() then max_body 64, in tests). */
static void live_start_with(struct live *live, const struct http_limits *limits)
{
    const struct http_callbacks callbacks = {echo, error_json, live};
    char err[256];

    memset(live, 0, sizeof(*live));
    live->base = event_base_new();
    assert_non_null(live->base);
    assert_int_equal(http_server_new(live->base, limits, &callbacks, &live->server), 0);
    assert_int_equal(
        http_server_listen(live->server, "127.0.0.1", 0, NULL, &live->listener, err, sizeof(err)),
        0);
}

static void test_limits(struct http_limits *limits, int request_timeout)
{
    http_limits_default(limits);
    limits->max_body = 64;
    limits->request_timeout = request_timeout;
    limits->idle_timeout = request_timeout;
}

static void live_start(struct live *live, int request_timeout)
{
    struct http_limits limits;

    test_limits(&limits, request_timeout);
    live_start_with(live, &limits);
}

static void live_stop(struct live *live)
{
    http_server_free(live->server);
    event_base_free(live->base);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects from source (a loopback address: all of 127/8 reaches the server on 127.0.0.1). */
static int live_connect_from(struct live *live, const char *source)
{
    struct sockaddr_in addr = {.sin_family = AF_INET}, from = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_port = htons((uint16_t)http_listener_port(live->listener));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(inet_pton(AF_INET, source, &from.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int live_connect(struct live *live)
{
    return live_connect_from(live, "127.0.0.1");
}

/* Runs the loop for a while (the server takes the connections made so far). */
static void live_spin(struct live *live, double seconds)
{
    for (double deadline = now_s() + seconds; now_s() < deadline;) {
        event_base_loop(live->base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static void send_all(int fd, const char *text)
{
    assert_int_equal(send(fd, text, strlen(text), MSG_NOSIGNAL), (ssize_t)strlen(text));
}

/*
 * Runs the loop and reads until the text received holds needle count times, or the client is
 * closed (when until_closed). Returns what was read (static).
 */
static const char *receive(struct live *live, int fd, const char *needle, int count,
                           bool until_closed, double seconds)
{
    static char got[65536];
    size_t len = 0;
    double deadline = now_s() + seconds;

    got[0] = '\0';
    while (now_s() < deadline) {
        ssize_t n;
        int found = 0;

        event_base_loop(live->base, EVLOOP_NONBLOCK);
        n = recv(fd, got + len, sizeof(got) - 1 - len, 0);
        if (n > 0) {
            len += (size_t)n;
            got[len] = '\0';
        } else if (n == 0 && until_closed) {
            return got;
        }
        for (const char *p = got; needle && (p = strstr(p, needle)); p++)
            found++;
        if (!until_closed && needle && found >= count)
            return got;
        usleep(1000);
    }
    if (until_closed)
        fail_msg("the server did not close the connection; got: %s", got);
    fail_msg("timed out waiting for %d x '%s'; got: %s", count, needle, got);
    return got;
}

static void keep_alive_and_pipelined_requests_are_answered_in_order(void **state)
{
    struct live live;
    const char *got;
    int fd;

    (void)state;
    live_start(&live, 5);
    fd = live_connect(&live);
    send_all(fd, "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                 "PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                 "HEAD /c HTTP/1.1\r\nHost: h\r\n\r\n");
    got = receive(&live, fd, "HTTP/1.1 200 OK", 3, false, 5);
    assert_non_null(strstr(got, "GET /a ?x=1 [0:]"));
    assert_non_null(strstr(got, "PUT /b ? [5:hello]"));
    assert_non_null(strstr(got, "X-Test: yes\r\n"));
    assert_non_null(strstr(got, "Connection: keep-alive\r\n"));
    assert_null(strstr(got, "HEAD /c")); /* HEAD: the length, not the body */
    assert_true(strstr(got, "GET /a") < strstr(got, "PUT /b"));
    /* Still open for another, which closes it. */
    send_all(fd, "GET /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_non_null(strstr(got, "Connection: close\r\n"));
    assert_non_null(strstr(got, "GET /d"));
    assert_int_equal(live.handled, 4);
    close(fd);
    live_stop(&live);
}

static void bodies_over_the_limit_and_bad_heads_get_the_error_body(void **state)
{
    struct live live;
    const char *got;
    int fd;

    (void)state;
    live_start(&live, 5);
    fd = live_connect(&live);
    /* Refused before the body is read, even when it is announced with 100-continue. */
    send_all(fd, "PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: 65\r\n"
                 "Expect: 100-continue\r\n\r\n");
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_non_null(strstr(got, "HTTP/1.1 413 Content Too Large\r\n"));
    assert_null(strstr(got, "100 Continue"));
    assert_non_null(strstr(got, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(got, "{\"status\": 413, "));
    assert_non_null(strstr(got, "request body exceeds 64 bytes (Content-Length: 65)"));
    close(fd);
    fd = live_connect(&live);
    send_all(fd, "BAD REQUEST LINE\r\n\r\n");
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_non_null(strstr(got, "HTTP/1.1 400 Bad Request\r\n"));
    close(fd);
    /* Heads too large, or with too many lines: the answer names the limit. */
    fd = live_connect(&live);
    send_all(fd, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
    for (int i = 0; i < 9; i++) {
        char pad[1025];

        memset(pad, 'p', sizeof(pad) - 1);
        pad[sizeof(pad) - 1] = '\0';
        send_all(fd, pad);
    }
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_non_null(strstr(got, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_non_null(strstr(got, "request head exceeds 8192 bytes"));
    close(fd);
    fd = live_connect(&live);
    send_all(fd, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 64; i++)
        send_all(fd, "X-Line: y\r\n");
    send_all(fd, "\r\n");
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_non_null(strstr(got, "HTTP/1.1 431 "));
    assert_non_null(strstr(got, "request head has more than 64 header lines"));
    close(fd);
    assert_int_equal(live.handled, 0);
    live_stop(&live);
}

static void expect_continue_gets_an_interim_answer(void **state)
{
    struct live live;
    const char *got;
    int fd;

    (void)state;
    live_start(&live, 5);
    fd = live_connect(&live);
    send_all(fd, "PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    got = receive(&live, fd, "HTTP/1.1 100 Continue\r\n\r\n", 1, false, 5);
    assert_null(strstr(got, "200 OK"));
    send_all(fd, "abc");
    got = receive(&live, fd, "PUT /e ? [3:abc]", 1, false, 5);
    close(fd);
    live_stop(&live);
}

static void a_request_not_complete_in_time_gets_408(void **state)
{
    struct live live;
    const char *got;
    double start;
    int fd;

    (void)state;
    live_start(&live, 1);
    fd = live_connect(&live);
    send_all(fd, "PUT /slow HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    start = now_s();
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_non_null(strstr(got, "HTTP/1.1 408 Request Timeout\r\n"));
    assert_true(now_s() - start < 3);
    close(fd);
    /* An idle connection is closed without a word. */
    fd = live_connect(&live);
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_string_equal(got, "");
    close(fd);
    assert_int_equal(live.handled, 0);
    live_stop(&live);
}

static void a_closed_listener_refuses_and_finishes_what_is_under_way(void **state)
{
    struct live live;
    const char *got;
    int busy, idle, fd;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    unsigned port;

    (void)state;
    live_start(&live, 5);
    port = http_listener_port(live.listener);
    busy = live_connect(&live);
    idle = live_connect(&live);
    send_all(busy, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    for (double deadline = now_s() + 5; !live.held && now_s() < deadline;)
        event_base_loop(live.base, EVLOOP_NONBLOCK);
    assert_non_null(live.held);
    event_base_loop(live.base, EVLOOP_NONBLOCK); /* the idle one is accepted too */
    http_listener_close(live.listener);
    live.listener = NULL;
    /* New connections are refused at once; the idle one is closed. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(fd);
    got = receive(&live, idle, NULL, 0, true, 5);
    assert_string_equal(got, "");
    /* The held request still gets its answer, then the connection closes. */
    http_respond(live.held, 200, "text/plain", "late", 4);
    got = receive(&live, busy, NULL, 0, true, 5);
    assert_non_null(strstr(got, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(got, "Connection: close\r\n"));
    assert_non_null(strstr(got, "\r\n\r\nlate"));
    close(busy);
    close(idle);
    live_stop(&live);
}

static void a_freed_server_tells_the_handler_of_abandoned_requests(void **state)
{
    struct live live;
    int fd;

    (void)state;
    live_start(&live, 5);
    fd = live_connect(&live);
    send_all(fd, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    for (double deadline = now_s() + 5; !live.held && now_s() < deadline;)
        event_base_loop(live.base, EVLOOP_NONBLOCK);
    assert_non_null(live.held);
    http_request_on_abandon(live.held, on_abandon, &live);
    live_stop(&live);
    assert_true(live.abandoned);
    close(fd);
}

/* Sends all of data, running the server's loop whenever the socket is full. */
static void send_running(struct live *live, int fd, const char *data, size_t len)
{
    size_t sent = 0;

    while (sent < len) {
        ssize_t n = send(fd, data + sent, len - sent, MSG_NOSIGNAL);

        if (n > 0)
            sent += (size_t)n;
        else
            assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        event_base_loop(live->base, EVLOOP_NONBLOCK);
    }
}

/*
 * A body large enough that the input buffer is reallocated (moved) while it is
 * read: the method, path, query and headers the handler reads afterwards must
 * still be the request's (they once pointed into the old buffer; ASan calls
 * that a heap-use-after-free).
 */
static void a_body_that_moves_the_input_buffer_leaves_the_head_intact(void **state)
{
    const size_t size = 300 * 1024;
    struct http_limits limits;
    struct live live;
    char head[256], expected[128], *body = malloc(size);
    int fd;

    (void)state;
    assert_non_null(body);
    memset(body, 'A', size);
    test_limits(&limits, 10);
    limits.max_body = 1024 * 1024;
    live_start_with(&live, &limits);
    fd = live_connect(&live);
    snprintf(head, sizeof(head),
             "PUT /big?q=1 HTTP/1.1\r\nHost: h\r\nX-Name: kept\r\nContent-Length: %zu\r\n\r\n",
             size);
    send_all(fd, head);
    send_running(&live, fd, body, size);
    snprintf(expected, sizeof(expected), "PUT /big ?q=1 x-name=kept [%zu, %zu x A]", size, size);
    receive(&live, fd, expected, 1, false, 10);
    close(fd);
    free(body);
    live_stop(&live);
}

/*
 * A client that never sends a byte is closed after first_byte_timeout, one that
 * trickles its head a line at a time gets 408 after head_timeout, however long
 * request_timeout is.
 */
static void silent_and_slow_clients_are_cut_off_by_their_own_timeouts(void **state)
{
    struct http_limits limits;
    struct live live;
    const char *got = "";
    char trickle[65536] = "";
    double start, last = 0;
    int fd;

    (void)state;
    test_limits(&limits, 30);
    limits.first_byte_timeout = 1;
    limits.head_timeout = 1;
    live_start_with(&live, &limits);
    fd = live_connect(&live);
    start = now_s();
    got = receive(&live, fd, NULL, 0, true, 5);
    assert_string_equal(got, "");
    assert_true(now_s() - start < 3);
    close(fd);
    fd = live_connect(&live);
    start = now_s();
    send_all(fd, "PUT /slow HTTP/1.1\r\n");
    for (size_t len = 0; now_s() - start < 5;) {
        ssize_t n;

        event_base_loop(live.base, EVLOOP_NONBLOCK);
        n = recv(fd, trickle + len, sizeof(trickle) - 1 - len, 0);
        if (n == 0)
            break;
        if (n > 0) {
            len += (size_t)n;
            trickle[len] = '\0';
        }
        if (now_s() - last > 0.2) { /* a header line every 0.2 s, never the blank line */
            send(fd, "X-Slow: y\r\n", 11, MSG_NOSIGNAL);
            last = now_s();
        }
        usleep(1000);
    }
    assert_non_null(strstr(trickle, "HTTP/1.1 408 Request Timeout\r\n"));
    assert_non_null(strstr(trickle, "request head not complete within 1 second of its first byte"));
    assert_true(now_s() - start < 3);
    close(fd);
    assert_int_equal(live.handled, 0);
    live_stop(&live);
}

/*
 * One address gets max_conns_per_address connections: a new one takes the
 * place of its connection that has waited longest without a request, and is
 * closed when all of them have requests under way. Another address is served
 * all along.
 */
static void one_address_cannot_take_every_connection(void **state)
{
    struct http_limits limits;
    struct live live;
    int a, b, c, d, e, f;

    (void)state;
    test_limits(&limits, 10);
    limits.max_conns_per_address = 2;
    live_start_with(&live, &limits);
    a = live_connect(&live);
    live_spin(&live, 0.05);
    b = live_connect(&live);
    live_spin(&live, 0.05);
    c = live_connect(&live);
    live_spin(&live, 0.05);
    assert_string_equal(receive(&live, a, NULL, 0, true, 3), ""); /* a gave way to c */
    assert_int_equal(live.server->n_conns, 2);
    send_all(b, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    send_all(c, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    receive(&live, c, "GET /c", 1, false, 3);
    assert_non_null(live.held);
    /* c is idle again after its answer: d takes its place, b's request is under way. */
    d = live_connect(&live);
    live_spin(&live, 0.05);
    assert_string_equal(receive(&live, c, NULL, 0, true, 3), "");
    send_all(d, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    live_spin(&live, 0.05);
    assert_int_equal(live.handled, 3);
    /* Both with requests under way: a third from that address is closed at once. */
    e = live_connect(&live);
    assert_string_equal(receive(&live, e, NULL, 0, true, 3), "");
    /* Another address is served. */
    f = live_connect_from(&live, "127.0.0.2");
    send_all(f, "GET /f HTTP/1.1\r\nHost: h\r\n\r\n");
    receive(&live, f, "GET /f", 1, false, 3);
    for (int *fd = (int[]){a, b, c, d, e, f, -1}; *fd >= 0; fd++)
        close(*fd);
    live_stop(&live);
}

/* With every connection taken, a new client takes the place of the longest-waiting idle one. */
static void a_full_server_gives_way_to_a_new_client(void **state)
{
    struct http_limits limits;
    struct live live;
    int a, b, c;

    (void)state;
    test_limits(&limits, 10);
    limits.max_conns = 2;
    limits.max_conns_per_address = 0;
    live_start_with(&live, &limits);
    a = live_connect_from(&live, "127.0.0.1");
    live_spin(&live, 0.05);
    b = live_connect_from(&live, "127.0.0.2");
    send_all(b, "GET /partial HTTP/1.1\r\n"); /* a head begun, not finished */
    live_spin(&live, 0.05);
    c = live_connect_from(&live, "127.0.0.3");
    send_all(c, "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
    receive(&live, c, "GET /c", 1, false, 3);
    assert_string_equal(receive(&live, a, NULL, 0, true, 3), "");
    assert_int_equal(live.server->n_conns, 2);
    close(a);
    close(b);
    close(c);
    live_stop(&live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heads_are_parsed_and_checked),
        cmocka_unit_test(bad_heads_get_their_status),
        cmocka_unit_test(too_many_headers_are_refused),
        cmocka_unit_test(query_values_are_found_and_decoded),
        cmocka_unit_test(keep_alive_and_pipelined_requests_are_answered_in_order),
        cmocka_unit_test(bodies_over_the_limit_and_bad_heads_get_the_error_body),
        cmocka_unit_test(expect_continue_gets_an_interim_answer),
        cmocka_unit_test(a_request_not_complete_in_time_gets_408),
        cmocka_unit_test(a_body_that_moves_the_input_buffer_leaves_the_head_intact),
        cmocka_unit_test(silent_and_slow_clients_are_cut_off_by_their_own_timeouts),
        cmocka_unit_test(one_address_cannot_take_every_connection),
        cmocka_unit_test(a_full_server_gives_way_to_a_new_client),
        cmocka_unit_test(a_closed_listener_refuses_and_finishes_what_is_under_way),
        cmocka_unit_test(a_freed_server_tells_the_handler_of_abandoned_requests),
    };
    return cmocka_run_group_tests_name("http_server", tests, NULL, NULL);
}
