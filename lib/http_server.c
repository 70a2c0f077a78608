/* A small HTTP/1.1 server on libevent for certvisor's services: TLS or plain, keep-alive, limits.
 */
#include "http_server.h"

#include "http_head.h"
#include "netconn.h"
#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_LINGER_TIMEOUT 2 /* seconds to wait for the client to close after a last answer */
#define HTTP_ACCEPT_PAUSE 1   /* seconds without accepting when out of descriptors */
#define HTTP_READ_CHUNK 16384
/* Connections accepted per event, so that a flood of them cannot hog the loop. */
#define HTTP_ACCEPT_BATCH 64
#define HTTP_MAX_RESPONSE_HEADERS 16

enum conn_phase {
    PHASE_HANDSHAKE,
    PHASE_HEAD,     /* reading the request line and headers */
    PHASE_CONTINUE, /* sending "100 Continue" */
    PHASE_BODY,     /* reading Content-Length bytes */
    PHASE_PENDING,  /* with the handler: no I/O, no deadline */
    PHASE_WRITING,  /* the answer */
    PHASE_CLOSING,  /* close_notify, then half-closed */
    PHASE_LINGER,   /* reading until the client closes */
};

/*
 * The parsed head: pointers into the connection's copy of the head (head_text),
 * which never moves, unlike the input buffer, which grows while the body is read.
 */
struct parsed_head {
    struct http_head head; /* its header array is the connection's (limits.max_headers slots) */
    struct http_request_line line;
    size_t content_length;
    bool has_body;
    bool keep_alive;
    bool expect_continue;
};

struct http_request {
    struct http_conn *conn;
    struct parsed_head head;
    const char *body;
    size_t body_len;
    char *response_headers[HTTP_MAX_RESPONSE_HEADERS]; /* "Name: value" */
    unsigned n_response_headers;
    void (*abandon_fn)(void *data);
    void *abandon_data;
};

struct http_listener {
    struct http_server *server;
    struct http_listener *next, **pprev;
    int fd;
    unsigned port;
    struct tls_context_holder *holder; /* NULL: plain */
    struct event *accept_event;
};

/*
 * Whom a connection counts against for max_conns_per_address: an IPv4 address
 * (also when mapped into IPv6), or the /64 prefix of an IPv6 address.
 */
struct addr_key {
    int family;
    unsigned char bytes[8];
};

struct http_conn {
    struct http_server *server;
    struct http_conn *next, **pprev;
    struct http_listener *listener; /* NULL once it was closed */
    /* Plain or TLS (holding a reference to the context it was accepted with); watched for good. */
    struct netconn io;
    enum conn_phase phase;
    bool close_after; /* no further request on this connection */
    struct event *timer;
    /*
     * The request head, its body, then whatever the client pipelined. It is
     * reallocated as it fills, so nothing may point into it across a read; the
     * body pointer handed to the handler is taken once nothing more is read.
     */
    char *in;
    size_t in_len, in_cap;
    size_t head_len; /* of the request being read, once its head is complete */
    char *head_text; /* that head, copied out and parsed in place; NULL before */
    size_t head_text_len;
    struct addr_key peer;
    long long waiting_since_ms; /* since the connection waits for its next request */
    long long request_start_ms; /* the current request's first byte */
    char saved_byte; /* the input byte after the body, while the body is NUL-terminated */
    char *out;
    size_t out_len, out_sent;
    struct http_request request;
    struct http_header *headers; /* limits.max_headers slots */
};

struct http_server {
    struct event_base *base;
    struct http_limits limits;
    struct http_callbacks callbacks;
    struct http_listener *listeners;
    struct http_conn *conns;
    unsigned n_conns;
    struct event *pause_timer; /* accepting again after running out of descriptors */
    bool paused;
    bool accepting; /* the listeners' accept events are armed */
};

void http_limits_default(struct http_limits *ret_limits)
{
    *ret_limits = (struct http_limits){
        .max_head = 8192,
        .max_headers = 64,
        .max_body = 0,
        .max_conns = 64,
        .max_conns_per_address = HTTP_DEFAULT_MAX_CONNS_PER_ADDRESS,
        .handshake_timeout = HTTP_DEFAULT_HANDSHAKE_TIMEOUT,
        .first_byte_timeout = HTTP_DEFAULT_FIRST_BYTE_TIMEOUT,
        .head_timeout = HTTP_DEFAULT_HEAD_TIMEOUT,
        .request_timeout = 10,
        .idle_timeout = 15,
        .write_timeout = 30,
    };
}

const char *http_reason_phrase(int status)
{
    static const struct {
        int status;
        const char *phrase;
    } phrases[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };

    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (phrases[i].status == status)
            return phrases[i].phrase;
    return "Unknown";
}

/* --- the head --- */

/* What a malformed head is answered with. */
static int status_of_head_error(int r)
{
    switch (r) {
    case -E2BIG:
        return 431;
    case -EPROTONOSUPPORT:
        return 505;
    default:
        return 400;
    }
}

/*
 * Parses a request head (len bytes of text, which holds len + 1, changed in
 * place) into *head, whose header array has limits->max_headers slots.
 * Returns 0 for a request the handler should see, or the status to answer
 * with.
 */
static int parse_head(char *text, size_t len, const struct http_limits *limits,
                      struct parsed_head *head)
{
    uint64_t length = 0;
    const char *value;
    bool http11;
    int r;

    head->content_length = 0;
    head->has_body = false;
    r = http_head_parse(text, len, head->head.headers, limits->max_headers, &head->head);
    if (r == 0)
        r = http_head_request_line(&head->head, &head->line);
    if (r < 0)
        return status_of_head_error(r);
    http11 = head->line.minor_version == 1;
    if (http11 && !http_head_header(&head->head, "host"))
        return 400;
    /* Chunked bodies are not taken: clients send Content-Length (RFC 9112, 6.3). */
    if (http_head_header(&head->head, "transfer-encoding"))
        return 411;
    if (http_head_content_length(&head->head, &length) < 0)
        return 400;
    head->content_length = (size_t)length;
    head->has_body = length > 0;
    if (length > limits->max_body)
        return 413;
    value = http_head_header(&head->head, "connection");
    head->keep_alive = http11 ? !(value && http_list_has(value, "close"))
                              : (value && http_list_has(value, "keep-alive"));
    value = http_head_header(&head->head, "expect");
    head->expect_continue = value && strcasecmp(value, "100-continue") == 0;
    if (value && !head->expect_continue)
        return 417;
    return 0;
}

/* --- connections --- */

static void set_accepting(struct http_server *server, bool on)
{
    server->accepting = on;
    for (struct http_listener *l = server->listeners; l; l = l->next) {
        if (on)
            event_add(l->accept_event, NULL);
        else
            event_del(l->accept_event);
    }
}

/* Accepting again after a connection closed or became idle (on_accept decides what to take). */
static void resume_accepting(struct http_server *server)
{
    if (!server->accepting && !server->paused)
        set_accepting(server, true);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void arm_timer_ms(struct http_conn *c, long long ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    evtimer_add(c->timer, &tv);
}

static void arm_timer(struct http_conn *c, int seconds)
{
    arm_timer_ms(c, (long long)seconds * 1000);
}

/* A limit in seconds, capped by request_timeout (which bounds every wait for a request). */
static int capped(const struct http_limits *limits, int seconds)
{
    return seconds < limits->request_timeout ? seconds : limits->request_timeout;
}

/* A request's first byte arrived: its head has head_timeout, the whole request request_timeout. */
static void request_begins(struct http_conn *c)
{
    const struct http_limits *limits = &c->server->limits;

    c->request_start_ms = now_ms();
    arm_timer(c, capped(limits, limits->head_timeout));
}

/* The head is complete: the body gets what is left of request_timeout, not a fresh one. */
static void arm_request_rest(struct http_conn *c)
{
    long long left =
        (long long)c->server->limits.request_timeout * 1000 - (now_ms() - c->request_start_ms);

    arm_timer_ms(c, left > 0 ? left : 0);
}

/* Frees input that may have carried a password or a key, wiping it first. */
static void wipe_free(char *p, size_t len)
{
    if (p)
        OPENSSL_cleanse(p, len);
    free(p);
}

static void drop_head_text(struct http_conn *c)
{
    wipe_free(c->head_text, c->head_text_len);
    c->head_text = NULL;
    c->head_text_len = 0;
}

static void clear_response_headers(struct http_request *request)
{
    for (unsigned i = 0; i < request->n_response_headers; i++)
        free(request->response_headers[i]);
    request->n_response_headers = 0;
}

static void conn_free(struct http_conn *c)
{
    struct http_server *server = c->server;

    if (c->phase == PHASE_PENDING && c->request.abandon_fn)
        c->request.abandon_fn(c->request.abandon_data);
    clear_response_headers(&c->request);
    event_free(c->timer);
    netconn_close(&c->io);
    wipe_free(c->in, c->in_cap); /* earlier requests' bodies lie past in_len */
    drop_head_text(c);
    free(c->out);
    free(c->headers);
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    free(c);
    server->n_conns--;
    resume_accepting(server);
}

/* Sets the bytes to send and the phase that sends them; they go from the loop, not from here. */
static void conn_send(struct http_conn *c, char *out, size_t len, enum conn_phase phase)
{
    free(c->out);
    c->out = out;
    c->out_len = out ? len : 0;
    c->out_sent = 0;
    if (!out)
        c->close_after = true; /* no memory for the answer: close at once */
    c->phase = phase;
    arm_timer(c, c->server->limits.write_timeout);
    netconn_activate(&c->io);
}

/* Builds the answer's bytes. Returns a malloc'd buffer and its length, or NULL. */
static char *build_response(struct http_conn *c, int status, const char *content_type,
                            const char *body, size_t len, bool with_body, size_t *ret_len)
{
    struct http_request *request = &c->request;
    size_t head_len = 0, total;
    char *out, *head = NULL;
    FILE *f = open_memstream(&head, &head_len);

    if (!f)
        return NULL;
    fprintf(f, "HTTP/1.1 %d %s\r\n", status, http_reason_phrase(status));
    if (content_type)
        fprintf(f, "Content-Type: %s\r\n", content_type);
    fprintf(f, "Content-Length: %zu\r\nCache-Control: no-store\r\n", len);
    for (unsigned i = 0; i < request->n_response_headers; i++)
        fprintf(f, "%s\r\n", request->response_headers[i]);
    fprintf(f, "Connection: %s\r\n\r\n", c->close_after ? "close" : "keep-alive");
    if (fclose(f) != 0) {
        free(head);
        return NULL;
    }
    total = head_len + (with_body ? len : 0);
    out = realloc(head, total ? total : 1);
    if (!out) {
        free(head);
        return NULL;
    }
    if (with_body && len)
        memcpy(out + head_len, body, len);
    *ret_len = total;
    return out;
}

static void conn_respond(struct http_conn *c, int status, const char *content_type,
                         const char *body, size_t len)
{
    bool with_body =
        !(c->phase == PHASE_PENDING && strcmp(c->request.head.line.method, "HEAD") == 0);
    size_t out_len = 0;
    char *out;

    /* A request refused before its body was read leaves the body unread: no next request. */
    if (c->phase != PHASE_PENDING || !c->listener)
        c->close_after = true;
    out = build_response(c, status, content_type, body, len, with_body, &out_len);
    clear_response_headers(&c->request);
    c->request.abandon_fn = NULL;
    conn_send(c, out, out_len, PHASE_WRITING);
}

/* An answer the server gives by itself. */
static void respond_error(struct http_conn *c, int status, const char *message)
{
    const struct http_callbacks *cb = &c->server->callbacks;
    const char *content_type = "text/plain; charset=utf-8";
    char *body = NULL, text[256];
    size_t len = 0;

    if (cb->error_body)
        body = cb->error_body(status, message, &content_type, &len, cb->data);
    if (!body) {
        int n = snprintf(text, sizeof(text), "%s: %s\n", http_reason_phrase(status), message);

        content_type = "text/plain; charset=utf-8";
        conn_respond(c, status, content_type, text, n < 0 ? 0 : (size_t)n);
        return;
    }
    conn_respond(c, status, content_type, body, len);
    free(body);
}

/* Answers a request the server refuses by itself, stating the limit it broke. */
static void refuse(struct http_conn *c, int status)
{
    const struct http_limits *limits = &c->server->limits;
    size_t length = c->request.head.content_length;
    char message[160];

    switch (status) {
    case 400:
        snprintf(message, sizeof(message), "malformed request");
        break;
    case 408:
        if (c->phase == PHASE_HEAD)
            snprintf(message, sizeof(message),
                     "request head not complete within %d second%s of its first byte",
                     capped(limits, limits->head_timeout),
                     capped(limits, limits->head_timeout) == 1 ? "" : "s");
        else
            snprintf(message, sizeof(message),
                     "request not complete within %d second%s of its first byte",
                     limits->request_timeout, limits->request_timeout == 1 ? "" : "s");
        break;
    case 411:
        snprintf(message, sizeof(message),
                 "send the body with Content-Length (chunked transfer coding is not taken)");
        break;
    case 413:
        if (limits->max_body == 0)
            snprintf(message, sizeof(message),
                     "this service takes no request body (Content-Length: %zu)", length);
        else
            snprintf(message, sizeof(message),
                     "request body exceeds %zu bytes (Content-Length: %zu)", limits->max_body,
                     length);
        break;
    case 417:
        snprintf(message, sizeof(message), "the only expectation understood is 100-continue");
        break;
    case 431:
        /* parse_head's 431 is the count of header lines; read_head's the size. */
        if (c->head_text)
            snprintf(message, sizeof(message), "request head has more than %u header lines",
                     limits->max_headers);
        else
            snprintf(message, sizeof(message),
                     "request head exceeds %zu bytes (request line and headers)", limits->max_head);
        break;
    case 505:
        snprintf(message, sizeof(message), "only HTTP/1.0 and HTTP/1.1 are spoken here");
        break;
    default:
        snprintf(message, sizeof(message), "cannot answer this request");
        break;
    }
    respond_error(c, status, message);
}

/* Makes room in the input buffer for want bytes in all. Returns false without memory. */
static bool reserve_input(struct http_conn *c, size_t want)
{
    size_t cap = c->in_cap ? c->in_cap : 4096;
    char *in;

    if (want + 1 <= c->in_cap)
        return true;
    while (cap < want + 1)
        cap *= 2;
    /* Not realloc(): the old copy may hold a password or a key, and is wiped. */
    in = malloc(cap);
    if (!in)
        return false;
    if (c->in_len)
        memcpy(in, c->in, c->in_len);
    /* in_cap, not in_len: a kept-alive connection's earlier bodies lie past in_len. */
    wipe_free(c->in, c->in_cap);
    c->in = in;
    c->in_cap = cap;
    return true;
}

/* Reads at most limit bytes in all. Returns the bytes read, 0 at the end, or NETCONN_*. */
static ssize_t read_input(struct http_conn *c, size_t limit)
{
    size_t room;
    ssize_t n;

    if (limit > c->in_len + HTTP_READ_CHUNK)
        limit = c->in_len + HTTP_READ_CHUNK;
    if (!reserve_input(c, limit))
        return NETCONN_ERROR;
    room = limit - c->in_len;
    if (room == 0)
        return 0;
    n = netconn_read(&c->io, c->in + c->in_len, room);
    if (n > 0) {
        if (c->in_len == 0 && c->phase == PHASE_HEAD)
            request_begins(c);
        c->in_len += (size_t)n;
    }
    return n;
}

/* What a step of a connection leaves it doing. */
enum step {
    STEP_GO_ON, /* made progress: run again */
    STEP_WAIT,  /* waits for its socket (its watch runs it again) or for the handler */
    STEP_CLOSE, /* over */
};

/* After an operation that moved nothing: waits for the socket, or closes. */
static enum step after_io(ssize_t n)
{
    /* Otherwise the client closed or failed: nothing to answer. */
    return n == NETCONN_AGAIN ? STEP_WAIT : STEP_CLOSE;
}

static enum step handshake(struct http_conn *c)
{
    int r = netconn_handshake(&c->io);

    if (r != 1)
        return after_io(r);
    c->phase = PHASE_HEAD;
    arm_timer(c, capped(&c->server->limits, c->server->limits.first_byte_timeout));
    return STEP_GO_ON;
}

static void hand_to_handler(struct http_conn *c)
{
    struct http_request *request = &c->request;

    request->body = c->in + c->head_len;
    request->body_len = request->head.content_length;
    /* The body is a string; the byte it covers (of a pipelined request) comes back after. */
    c->saved_byte = c->in[c->head_len + request->body_len];
    c->in[c->head_len + request->body_len] = '\0';
    c->phase = PHASE_PENDING; /* socket events find nothing to do until the answer */
    evtimer_del(c->timer);
    c->server->callbacks.handler(request, c->server->callbacks.data);
}

static enum step read_head(struct http_conn *c)
{
    const struct http_limits *limits = &c->server->limits;
    size_t len;
    ssize_t n;
    int status;

    /* Empty lines before a request are to be ignored (RFC 9112, 2.2). */
    for (len = 0; len < c->in_len && (c->in[len] == '\r' || c->in[len] == '\n'); len++)
        ;
    if (len) {
        memmove(c->in, c->in + len, c->in_len - len);
        c->in_len -= len;
    }
    len = http_head_length(c->in, c->in_len < limits->max_head ? c->in_len : limits->max_head);
    if (!len) {
        if (c->in_len >= limits->max_head) {
            refuse(c, 431);
            return STEP_GO_ON;
        }
        n = read_input(c, limits->max_head);
        return n > 0 ? STEP_GO_ON : after_io(n);
    }
    /*
     * The head is parsed in a copy of its own: the input buffer moves as the
     * body is read into it, and the method, path and headers must not.
     */
    c->head_len = len;
    c->head_text = malloc(len + 1);
    if (!c->head_text)
        return STEP_CLOSE;
    c->head_text_len = len + 1;
    memcpy(c->head_text, c->in, len);
    status = parse_head(c->head_text, len, limits, &c->request.head);
    if (status) {
        refuse(c, status);
        return STEP_GO_ON;
    }
    if (!c->request.head.keep_alive || !c->listener)
        c->close_after = true;
    if (c->request.head.expect_continue && c->in_len < len + c->request.head.content_length) {
        static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *out = malloc(sizeof(interim) - 1);

        if (out)
            memcpy(out, interim, sizeof(interim) - 1);
        conn_send(c, out, sizeof(interim) - 1, PHASE_CONTINUE);
        arm_request_rest(c);
        return STEP_WAIT;
    }
    c->phase = PHASE_BODY;
    arm_request_rest(c);
    return STEP_GO_ON;
}

static enum step read_body(struct http_conn *c)
{
    size_t total = c->head_len + c->request.head.content_length;
    ssize_t n;

    if (c->in_len >= total) {
        if (!reserve_input(c, total)) /* room for the terminating NUL */
            return STEP_CLOSE;
        hand_to_handler(c);
        return STEP_WAIT;
    }
    n = read_input(c, total);
    return n > 0 ? STEP_GO_ON : after_io(n);
}

/* The next request on a kept-alive connection: what was pipelined stays. */
static void next_request(struct http_conn *c)
{
    size_t used = c->head_len + c->request.head.content_length;

    if (used > c->in_len)
        used = c->in_len;
    if (used < c->in_len)
        c->in[used] = c->saved_byte;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    OPENSSL_cleanse(c->in + c->in_len, used); /* the request just answered */
    drop_head_text(c);
    c->head_len = 0;
    memset(&c->request.head, 0, sizeof(c->request.head));
    c->request.head.head.headers = c->headers;
    c->request.body = NULL;
    c->request.body_len = 0;
    c->phase = PHASE_HEAD;
    c->waiting_since_ms = now_ms();
    if (c->in_len)
        request_begins(c); /* pipelined */
    else
        arm_timer(c, c->server->limits.idle_timeout);
    /* Idle again, it may give way to a new connection when the server is full. */
    resume_accepting(c->server);
}

static enum step write_out(struct http_conn *c)
{
    ssize_t n;

    if (c->out_sent < c->out_len) {
        n = netconn_write(&c->io, c->out + c->out_sent, c->out_len - c->out_sent);
        if (n <= 0)
            return after_io(n);
        c->out_sent += (size_t)n;
        return STEP_GO_ON;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_sent = 0;
    if (c->phase == PHASE_CONTINUE) {
        c->phase = PHASE_BODY;
        return STEP_GO_ON;
    }
    if (!c->close_after) {
        next_request(c);
        return STEP_GO_ON;
    }
    c->phase = PHASE_CLOSING;
    return STEP_GO_ON;
}

/* TLS's close_notify (the client's is not waited for), then the lingering close. */
static enum step close_gracefully(struct http_conn *c)
{
    if (netconn_shutdown(&c->io) == NETCONN_AGAIN)
        return STEP_WAIT;
    c->phase = PHASE_LINGER;
    arm_timer(c, HTTP_LINGER_TIMEOUT);
    return STEP_GO_ON;
}

/* Reads until the client closes: closing with unread input could reset the answer in flight. */
static enum step linger(struct http_conn *c)
{
    return netconn_linger(&c->io) == NETCONN_AGAIN ? STEP_WAIT : STEP_CLOSE;
}

/* Runs the connection until it waits. Returns false when it is over and must be freed. */
static bool conn_run(struct http_conn *c)
{
    enum step step;

    do {
        ERR_clear_error();
        switch (c->phase) {
        case PHASE_HANDSHAKE:
            step = handshake(c);
            break;
        case PHASE_HEAD:
            step = read_head(c);
            break;
        case PHASE_BODY:
            step = read_body(c);
            break;
        case PHASE_PENDING:
            step = STEP_WAIT;
            break;
        case PHASE_CONTINUE:
        case PHASE_WRITING:
            step = write_out(c);
            break;
        case PHASE_CLOSING:
            step = close_gracefully(c);
            break;
        case PHASE_LINGER:
        default:
            step = linger(c);
            break;
        }
    } while (step == STEP_GO_ON);
    return step == STEP_WAIT;
}

static void on_io(void *arg)
{
    struct http_conn *c = arg;

    if (!conn_run(c))
        conn_free(c);
}

static void on_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    /* A request begun and not finished in time is told so; anything else just closes. */
    if ((c->phase == PHASE_HEAD && c->in_len > 0) || c->phase == PHASE_BODY ||
        c->phase == PHASE_CONTINUE) {
        refuse(c, 408);
        c->close_after = true;
        return;
    }
    conn_free(c);
}

static void conn_open(struct http_listener *listener, int fd, const struct addr_key *peer)
{
    struct http_server *server = listener->server;
    struct http_conn *c = calloc(1, sizeof(*c));
    SSL_CTX *ctx = NULL;

    ERR_clear_error();
    if (!c) {
        close(fd);
        return;
    }
    netconn_init(&c->io, fd, false); /* the connection owns fd from here */
    if (!(c->headers = calloc(server->limits.max_headers + 1, sizeof(*c->headers))))
        goto fail;
    if (listener->holder) {
        ctx = tls_holder_get(listener->holder);
        if (netconn_start_tls(&c->io, ctx, true) < 0)
            goto fail;
        SSL_CTX_free(ctx); /* the SSL holds its own reference */
        ctx = NULL;
    }
    if (!(c->timer = evtimer_new(server->base, on_conn_timeout, c)) ||
        netconn_watch(&c->io, server->base, on_io, c) < 0)
        goto fail;
    c->server = server;
    c->listener = listener;
    c->peer = *peer;
    c->waiting_since_ms = now_ms();
    c->request.conn = c;
    c->request.head.head.headers = c->headers;
    c->phase = PHASE_HANDSHAKE;
    c->next = server->conns;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &server->conns;
    server->conns = c;
    server->n_conns++;
    arm_timer(c, capped(&server->limits, server->limits.handshake_timeout));
    if (!conn_run(c))
        conn_free(c);
    return;
fail:
    ERR_clear_error();
    if (c->timer)
        event_free(c->timer);
    netconn_close(&c->io);
    free(c->headers);
    free(c);
    SSL_CTX_free(ctx);
}

static void addr_key_of(const struct sockaddr_storage *addr, struct addr_key *ret_key)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(ret_key, 0, sizeof(*ret_key));
    ret_key->family = addr->ss_family;
    if (addr->ss_family == AF_INET) {
        memcpy(ret_key->bytes, &((const struct sockaddr_in *)addr)->sin_addr, 4);
    } else if (addr->ss_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;

        if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
            ret_key->family = AF_INET;
            memcpy(ret_key->bytes, a + 12, 4);
        } else {
            memcpy(ret_key->bytes, a, 8); /* the /64 */
        }
    }
}

static bool same_peer(const struct addr_key *a, const struct addr_key *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

/* True while a connection has no request under way: in its handshake, or reading a head. */
static bool conn_waiting(const struct http_conn *c)
{
    return c->phase == PHASE_HANDSHAKE || c->phase == PHASE_HEAD;
}

/* The connection (of peer, or of anyone) that has waited longest without a request, or NULL. */
static struct http_conn *longest_waiting(struct http_server *server, const struct addr_key *peer)
{
    struct http_conn *oldest = NULL;

    for (struct http_conn *c = server->conns; c; c = c->next)
        if (conn_waiting(c) && (!peer || same_peer(&c->peer, peer)) &&
            (!oldest || c->waiting_since_ms <= oldest->waiting_since_ms))
            oldest = c;
    return oldest;
}

static unsigned conns_from(const struct http_server *server, const struct addr_key *peer)
{
    unsigned n = 0;

    for (const struct http_conn *c = server->conns; c; c = c->next)
        n += same_peer(&c->peer, peer);
    return n;
}

/*
 * Takes a new connection within the caps: over one, it replaces the connection
 * that has waited longest without a request (closed without a word, as a
 * timeout would), so that clients that never send a request cannot keep
 * others out; with no such connection, it is closed.
 */
static void admit(struct http_listener *listener, int fd, const struct sockaddr_storage *addr)
{
    struct http_server *server = listener->server;
    const struct http_limits *limits = &server->limits;
    struct http_conn *victim;
    struct addr_key peer;

    addr_key_of(addr, &peer);
    if (limits->max_conns_per_address &&
        conns_from(server, &peer) >= limits->max_conns_per_address) {
        victim = longest_waiting(server, &peer);
        if (!victim) {
            close(fd); /* all of that address's connections have requests under way */
            return;
        }
        conn_free(victim);
    }
    if (server->n_conns >= limits->max_conns) {
        victim = longest_waiting(server, NULL);
        if (!victim) {
            close(fd);
            return;
        }
        conn_free(victim);
    }
    conn_open(listener, fd, &peer);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct http_listener *listener = arg;
    struct http_server *server = listener->server;

    (void)what;
    for (int i = 0; i < HTTP_ACCEPT_BATCH; i++) {
        struct sockaddr_storage addr = {0};
        socklen_t addr_len = sizeof(addr);
        int conn_fd;

        /* Full of requests under way: new clients wait in the backlog until one is done. */
        if (server->n_conns >= server->limits.max_conns && !longest_waiting(server, NULL)) {
            set_accepting(server, false);
            return;
        }
        conn_fd = accept4(fd, (struct sockaddr *)&addr, &addr_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn_fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timeval tv = {HTTP_ACCEPT_PAUSE, 0};

                server->paused = true;
                set_accepting(server, false);
                evtimer_add(server->pause_timer, &tv);
            }
            return;
        }
        /* A response leaves as several TLS records (head, body): without this, each one after
         * the first waited for the client's delayed acknowledgement, 40 ms on Linux. */
        net_set_nodelay(conn_fd);
        admit(listener, conn_fd, &addr);
    }
}

static void on_pause_end(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *server = arg;

    (void)fd;
    (void)what;
    server->paused = false;
    resume_accepting(server);
}

/* --- servers and listeners --- */

int http_server_new(struct event_base *base, const struct http_limits *limits,
                    const struct http_callbacks *callbacks, struct http_server **ret_server)
{
    struct http_server *server = calloc(1, sizeof(*server));

    if (!server)
        return -ENOMEM;
    server->base = base;
    server->limits = *limits;
    if (server->limits.max_conns == 0)
        server->limits.max_conns = 1;
    /* A timeout left at 0 would close every connection at once: 0 takes the default. */
    if (server->limits.handshake_timeout <= 0)
        server->limits.handshake_timeout = HTTP_DEFAULT_HANDSHAKE_TIMEOUT;
    if (server->limits.first_byte_timeout <= 0)
        server->limits.first_byte_timeout = HTTP_DEFAULT_FIRST_BYTE_TIMEOUT;
    if (server->limits.head_timeout <= 0)
        server->limits.head_timeout = HTTP_DEFAULT_HEAD_TIMEOUT;
    server->callbacks = *callbacks;
    server->accepting = true;
    server->pause_timer = evtimer_new(base, on_pause_end, server);
    if (!server->pause_timer) {
        free(server);
        return -ENOMEM;
    }
    *ret_server = server;
    return 0;
}

static int listen_on(const char *address, unsigned port, unsigned *ret_port, char *err,
                     size_t err_len)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
                             .ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    struct addrinfo *ai = NULL;
    char service[8];
    int one = 1, fd, r;

    snprintf(service, sizeof(service), "%u", port);
    r = getaddrinfo(address, service, &hints, &ai);
    if (r != 0) {
        snprintf(err, err_len, "%s: not an IP address (%s)", address, gai_strerror(r));
        return -EINVAL;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
        r = -errno;
        snprintf(err, err_len, "cannot listen on %s port %u: %s", address, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return r;
    }
    freeaddrinfo(ai);
    *ret_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    return fd;
}

int http_server_listen(struct http_server *server, const char *address, unsigned port,
                       struct tls_context_holder *holder, struct http_listener **ret_listener,
                       char *err, size_t err_len)
{
    struct http_listener *listener = calloc(1, sizeof(*listener));
    int fd;

    if (!listener) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    fd = listen_on(address, port, &listener->port, err, err_len);
    if (fd < 0) {
        free(listener);
        return fd;
    }
    listener->fd = fd;
    listener->server = server;
    listener->holder = holder;
    listener->accept_event = event_new(server->base, fd, EV_READ | EV_PERSIST, on_accept, listener);
    if (!listener->accept_event) {
        close(fd);
        free(listener);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    listener->next = server->listeners;
    if (listener->next)
        listener->next->pprev = &listener->next;
    listener->pprev = &server->listeners;
    server->listeners = listener;
    if (server->accepting)
        event_add(listener->accept_event, NULL);
    *ret_listener = listener;
    return 0;
}

unsigned http_listener_port(const struct http_listener *listener)
{
    return listener->port;
}

/* True when the connection waits for a request and has none of it yet. */
static bool conn_idle(const struct http_conn *c)
{
    return c->phase == PHASE_HANDSHAKE || (c->phase == PHASE_HEAD && c->in_len == 0);
}

void http_listener_close(struct http_listener *listener)
{
    struct http_server *server;
    struct http_conn *c, *next;

    if (!listener)
        return;
    server = listener->server;
    event_free(listener->accept_event);
    close(listener->fd);
    *listener->pprev = listener->next;
    if (listener->next)
        listener->next->pprev = listener->pprev;
    for (c = server->conns; c; c = next) {
        next = c->next;
        if (c->listener != listener)
            continue;
        c->listener = NULL;
        c->close_after = true;
        if (conn_idle(c))
            conn_free(c);
    }
    free(listener);
}

void http_server_free(struct http_server *server)
{
    if (!server)
        return;
    while (server->listeners)
        http_listener_close(server->listeners);
    while (server->conns) {
        struct http_conn *c = server->conns;

        netconn_goodbye(&c->io);
        conn_free(c);
    }
    event_free(server->pause_timer);
    free(server);
}

/* --- requests --- */

const char *http_request_method(const struct http_request *request)
{
    return request->head.line.method;
}

const char *http_request_path(const struct http_request *request)
{
    return request->head.line.path;
}

const char *http_request_query(const struct http_request *request)
{
    return request->head.line.query;
}

const char *http_request_header(const struct http_request *request, const char *name)
{
    return http_head_header(&request->head.head, name);
}

const char *http_request_body(const struct http_request *request, size_t *ret_len)
{
    if (ret_len)
        *ret_len = request->body_len;
    return request->body ? request->body : "";
}

bool http_request_is_tls(const struct http_request *request)
{
    return netconn_is_tls(&request->conn->io);
}

X509 *http_request_peer_certificate(const struct http_request *request)
{
    SSL *ssl = netconn_ssl(&request->conn->io);

    return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

char *http_request_peer_chain_pem(const struct http_request *request)
{
    SSL *ssl = netconn_ssl(&request->conn->io);
    X509 *leaf = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    STACK_OF(X509) *chain = leaf ? SSL_get0_verified_chain(ssl) : NULL;
    BIO *bio;
    char *data, *pem = NULL;
    long len;
    bool ok;

    if (!leaf || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    bio = BIO_new(BIO_s_mem());
    if (!bio)
        return NULL;
    /* The verified chain starts with the leaf; a resumed session may only keep the leaf. */
    ok = PEM_write_bio_X509(bio, leaf) == 1;
    for (int i = 1; ok && chain && i < sk_X509_num(chain); i++)
        ok = PEM_write_bio_X509(bio, sk_X509_value(chain, i)) == 1;
    len = BIO_get_mem_data(bio, &data);
    if (ok && len > 0 && (pem = malloc((size_t)len + 1))) {
        memcpy(pem, data, (size_t)len);
        pem[len] = '\0';
    }
    BIO_free(bio);
    ERR_clear_error();
    return pem;
}

void http_request_peer(const struct http_request *request, char *buf, size_t len)
{
    struct sockaddr_storage addr = {0};
    socklen_t addr_len = sizeof(addr);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (getpeername(netconn_fd(&request->conn->io), (struct sockaddr *)&addr, &addr_len) == 0) {
        if (addr.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&addr)->sin_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
        } else if (addr.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addr)->sin6_addr, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
        }
    }
    snprintf(buf, len, addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

void http_request_on_abandon(struct http_request *request, void (*fn)(void *data), void *data)
{
    request->abandon_fn = fn;
    request->abandon_data = data;
}

int http_response_header(struct http_request *request, const char *name, const char *value)
{
    char *line;

    if (!http_is_token(name, strlen(name)) || strpbrk(value, "\r\n"))
        return -EINVAL;
    if (request->n_response_headers >= HTTP_MAX_RESPONSE_HEADERS)
        return -E2BIG;
    if (asprintf(&line, "%s: %s", name, value) < 0)
        return -ENOMEM;
    request->response_headers[request->n_response_headers++] = line;
    return 0;
}

void http_respond(struct http_request *request, int status, const char *content_type,
                  const char *body, size_t len)
{
    conn_respond(request->conn, status, content_type, body, len);
}

/* --- helpers --- */

/* Percent-decodes text[0..len) into buf. Returns 0, -ENOSPC or -EINVAL. */
static int percent_decode(const char *text, size_t len, char *buf, size_t buf_len)
{
    size_t used = 0;

    for (size_t i = 0; i < len; i++) {
        char ch = text[i];

        if (ch == '%') {
            int hi = i + 2 < len ? OPENSSL_hexchar2int((unsigned char)text[i + 1]) : -1;
            int lo = i + 2 < len ? OPENSSL_hexchar2int((unsigned char)text[i + 2]) : -1;

            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (used + 1 >= buf_len)
            return -ENOSPC;
        buf[used++] = ch;
    }
    buf[used] = '\0';
    return 0;
}

int http_query_get(const char *query, const char *name, char *buf, size_t len)
{
    size_t name_len = strlen(name);

    while (query && *query) {
        size_t pair_len = strcspn(query, "&");
        const char *eq = memchr(query, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - query) : pair_len;

        if (key_len == name_len && strncmp(query, name, name_len) == 0) {
            int r = eq ? percent_decode(eq + 1, pair_len - key_len - 1, buf, len)
                       : percent_decode("", 0, buf, len);

            return r < 0 ? r : 1;
        }
        query += pair_len;
        if (*query == '&')
            query++;
    }
    return 0;
}
