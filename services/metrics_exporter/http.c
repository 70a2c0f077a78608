/* A small HTTPS/1.1 server for read-only endpoints: GET and HEAD, one request per connection. */
#include "http.h"

#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Limits that keep a misbehaving or hostile client from holding more than a
 * little memory for a little while. A scraper sends a head of a few hundred
 * bytes and reads the answer at once.
 */
#define HTTP_MAX_CONNS 64
#define HTTP_MAX_HEAD 8192    /* request line and headers, with the blank line */
#define HTTP_MAX_HEADERS 64   /* header lines */
#define HTTP_HEAD_TIMEOUT 10  /* seconds for the handshake and the whole request head */
#define HTTP_WRITE_TIMEOUT 30 /* seconds to take the answer */
#define HTTP_LINGER_TIMEOUT 2 /* seconds to wait for the client to close after the answer */
#define HTTP_ACCEPT_PAUSE 1   /* seconds without accepting when out of descriptors */

enum conn_phase {
    PHASE_HANDSHAKE,
    PHASE_READING, /* the request head */
    PHASE_PENDING, /* with the handler: no I/O, no deadline */
    PHASE_WRITING, /* the answer, then close_notify */
    PHASE_LINGER,  /* sent and half-closed: reading until the client closes */
};

struct http_request {
    struct http_conn *conn;
    bool head;        /* HEAD: the answer has no body */
    const char *path; /* inside the connection's input buffer */
};

struct http_conn {
    struct http_server *server;
    struct http_conn *next, **pprev;
    int fd;
    SSL *ssl; /* holds a reference to the context it was accepted with */
    enum conn_phase phase;
    struct event *read_event, *write_event, *timer;
    char *out;
    size_t out_len, out_sent;
    struct http_request request;
    size_t in_len;
    char in[HTTP_MAX_HEAD + 1]; /* + 1: room to terminate the head */
};

struct http_server {
    struct event_base *base;
    int fd;
    unsigned port;
    struct event *accept_event;
    struct event *pause_timer; /* accepting again after running out of descriptors */
    bool accepting;
    struct tls_context_holder *holder;
    http_handler_fn handler;
    void *data;
    struct http_conn *conns;
    size_t n_conns;
};

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

static void set_accepting(struct http_server *server, bool on)
{
    if (on == server->accepting)
        return;
    server->accepting = on;
    if (on)
        event_add(server->accept_event, NULL);
    else
        event_del(server->accept_event);
}

static void arm_timer(struct http_conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};

    evtimer_add(c->timer, &tv);
}

static void conn_close(struct http_conn *c)
{
    struct http_server *server = c->server;

    event_free(c->read_event);
    event_free(c->write_event);
    event_free(c->timer);
    SSL_free(c->ssl);
    close(c->fd);
    free(c->out);
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    free(c);
    server->n_conns--;
    if (!event_pending(server->pause_timer, EV_TIMEOUT, NULL))
        set_accepting(server, true);
}

/* What a step of a connection leaves it doing. */
enum step {
    STEP_GO_ON, /* made progress: run again */
    STEP_WAIT,  /* waits for its socket (an event is armed) or for the handler */
    STEP_CLOSE, /* over */
};

/* After an SSL call that did not complete: arm the event it waits for, or close. */
static enum step conn_wait(struct http_conn *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        event_del(c->write_event);
        event_add(c->read_event, NULL);
        return STEP_WAIT;
    case SSL_ERROR_WANT_WRITE:
        event_del(c->read_event);
        event_add(c->write_event, NULL);
        return STEP_WAIT;
    default: /* the peer closed, reset, or failed the handshake: nothing to answer */
        ERR_clear_error();
        return STEP_CLOSE;
    }
}

/*
 * Sets the answer and moves to writing. Never runs the connection itself (the
 * caller may be inside it): the write event does, from the loop.
 */
static void conn_respond(struct http_conn *c, int status, const char *content_type,
                         const char *body, size_t len, bool with_body)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "Cache-Control: no-store\r\n"
                     "Connection: close\r\n"
                     "\r\n",
                     status, reason_phrase(status), content_type, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t total = (size_t)n + (with_body ? len : 0);

    free(c->out);
    c->out = malloc(total);
    if (!c->out) {
        c->out_len = c->out_sent = 0; /* closes at once: nothing better to do without memory */
    } else {
        memcpy(c->out, head, (size_t)n);
        if (with_body && len)
            memcpy(c->out + n, body, len);
        c->out_len = total;
        c->out_sent = 0;
    }
    c->phase = PHASE_WRITING;
    event_del(c->read_event);
    arm_timer(c, HTTP_WRITE_TIMEOUT);
    event_active(c->write_event, EV_WRITE, 1);
}

static void respond_error(struct http_conn *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%s\n", reason_phrase(status));

    conn_respond(c, status, "text/plain; charset=utf-8", body, (size_t)n, true);
}

/* The length of a complete head (through its blank line) at the start of buf, or 0. */
static size_t head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* RFC 9110's tchar: what a method or a header name is made of. */
static bool is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (!(ch > 0x20 && ch < 0x7f) || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return false;
    }
    return true;
}

/* Cuts the next line off *text (without its CR LF). */
static char *next_line(char **text)
{
    char *line = *text, *nl = strchr(line, '\n');

    if (nl) {
        *nl = '\0';
        *text = nl + 1;
    } else {
        *text = line + strlen(line);
    }
    if (nl > line && nl[-1] == '\r')
        nl[-1] = '\0';
    return line;
}

/*
 * Parses the head (NUL-terminated, in c->in). Returns 0 for a GET or HEAD the
 * handler should see (c->request filled), or the status to answer with.
 */
static int parse_head(struct http_conn *c, char *text)
{
    char *line = next_line(&text), *target, *version, *query;
    size_t method_len, headers = 0;
    bool http11, has_host = false;

    target = strchr(line, ' ');
    version = target ? strchr(target + 1, ' ') : NULL;
    if (!version || strchr(version + 1, ' '))
        return 400;
    method_len = (size_t)(target - line);
    *target++ = '\0';
    *version++ = '\0';
    if (!is_token(line, method_len) || target[0] != '/')
        return 400;
    if (strncmp(version, "HTTP/", 5) != 0 || strlen(version) != 8 || version[6] != '.')
        return 400;
    if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)
        return 505;
    http11 = version[7] == '1';
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return 400;
    while (*text) {
        char *header = next_line(&text), *colon;

        if (!*header)
            break; /* the blank line */
        if (++headers > HTTP_MAX_HEADERS)
            return 431;
        colon = strchr(header, ':');
        /* No folded lines, no blanks before the colon (RFC 9112, 5.1 and 5.2). */
        if (!colon || !is_token(header, (size_t)(colon - header)))
            return 400;
        if ((size_t)(colon - header) == 4 && strncasecmp(header, "host", 4) == 0)
            has_host = true;
    }
    if (http11 && !has_host)
        return 400;
    if (strcmp(line, "GET") != 0 && strcmp(line, "HEAD") != 0)
        return 405;
    if ((query = strchr(target, '?')))
        *query = '\0';
    c->request.conn = c;
    c->request.head = strcmp(line, "HEAD") == 0;
    c->request.path = target;
    return 0;
}

/* With a complete head of len bytes in c->in: answers it or hands it to the handler. */
static void dispatch(struct http_conn *c, size_t len)
{
    int status;

    c->in[len] = '\0';
    status = memchr(c->in, '\0', len) ? 400 : parse_head(c, c->in);
    if (status) {
        log_debug("Answering %d to a malformed or unsupported request", status);
        respond_error(c, status);
        return;
    }
    c->phase = PHASE_PENDING;
    evtimer_del(c->timer);
    c->server->handler(&c->request, c->server->data);
}

static enum step handshake(struct http_conn *c)
{
    int r = SSL_accept(c->ssl);

    if (r != 1)
        return conn_wait(c, r);
    c->phase = PHASE_READING;
    return STEP_GO_ON;
}

/* Reads until the head is complete, then answers it or hands it to the handler. */
static enum step read_head(struct http_conn *c)
{
    size_t len;
    int r;

    /* Empty lines before a request are to be ignored (RFC 9112, 2.2). */
    while (c->in_len && (c->in[0] == '\r' || c->in[0] == '\n'))
        memmove(c->in, c->in + 1, --c->in_len);
    if ((len = head_length(c->in, c->in_len))) {
        dispatch(c, len);
        return STEP_GO_ON;
    }
    if (c->in_len == HTTP_MAX_HEAD) {
        respond_error(c, 431);
        return STEP_GO_ON;
    }
    r = SSL_read(c->ssl, c->in + c->in_len, (int)(HTTP_MAX_HEAD - c->in_len));
    if (r <= 0)
        return conn_wait(c, r);
    c->in_len += (size_t)r;
    return STEP_GO_ON;
}

/* Sends the answer, then close_notify, half-closes, and waits for the client to close. */
static enum step write_answer(struct http_conn *c)
{
    int r;

    if (c->out_sent < c->out_len) {
        r = SSL_write(c->ssl, c->out + c->out_sent, (int)(c->out_len - c->out_sent));
        if (r <= 0)
            return conn_wait(c, r);
        c->out_sent += (size_t)r;
        return STEP_GO_ON;
    }
    r = SSL_shutdown(c->ssl);
    if (r < 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE)
        return conn_wait(c, r);
    ERR_clear_error();
    /*
     * Closing with unread input would reset the connection, which can destroy the
     * answer still in flight; reading until the client closes avoids that.
     */
    shutdown(c->fd, SHUT_WR);
    c->phase = PHASE_LINGER;
    arm_timer(c, HTTP_LINGER_TIMEOUT);
    return STEP_GO_ON;
}

static enum step linger(struct http_conn *c)
{
    char discard[4096];
    ssize_t n = recv(c->fd, discard, sizeof(discard), 0);

    if (n > 0 || (n < 0 && errno == EINTR))
        return STEP_GO_ON;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        event_del(c->write_event);
        event_add(c->read_event, NULL);
        return STEP_WAIT;
    }
    return STEP_CLOSE;
}

/* Runs the connection until it waits. Returns false when it is over and must be closed. */
static bool conn_run(struct http_conn *c)
{
    enum step step;

    do {
        ERR_clear_error();
        switch (c->phase) {
        case PHASE_HANDSHAKE:
            step = handshake(c);
            break;
        case PHASE_READING:
            step = read_head(c);
            break;
        case PHASE_PENDING:
            step = STEP_WAIT;
            break;
        case PHASE_WRITING:
            step = write_answer(c);
            break;
        case PHASE_LINGER:
        default:
            step = linger(c);
            break;
        }
    } while (step == STEP_GO_ON);
    return step == STEP_WAIT;
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    if (!conn_run(c))
        conn_close(c);
}

static void on_conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->phase != PHASE_LINGER)
        log_debug("Closing an HTTPS connection that was too slow (%s)",
                  c->phase == PHASE_WRITING ? "taking the answer" : "sending its request");
    conn_close(c);
}

static void conn_open(struct http_server *server, int fd)
{
    struct http_conn *c = calloc(1, sizeof(*c));
    SSL_CTX *ctx = tls_holder_get(server->holder);

    ERR_clear_error();
    if (!c || !(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, fd) != 1 ||
        !(c->read_event = event_new(server->base, fd, EV_READ, on_io, c)) ||
        !(c->write_event = event_new(server->base, fd, EV_WRITE, on_io, c)) ||
        !(c->timer = evtimer_new(server->base, on_conn_timeout, c))) {
        char reason[256];

        tls_error_string(reason, sizeof(reason));
        log_error("Cannot set up an HTTPS connection: %s", *reason ? reason : "out of memory");
        if (c) {
            SSL_free(c->ssl);
            if (c->read_event)
                event_free(c->read_event);
            if (c->write_event)
                event_free(c->write_event);
        }
        free(c);
        SSL_CTX_free(ctx);
        close(fd);
        return;
    }
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_accept_state(c->ssl);
    c->server = server;
    c->fd = fd;
    c->phase = PHASE_HANDSHAKE;
    c->next = server->conns;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &server->conns;
    server->conns = c;
    server->n_conns++;
    arm_timer(c, HTTP_HEAD_TIMEOUT);
    if (!conn_run(c))
        conn_close(c);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *server = arg;

    (void)what;
    while (server->n_conns < HTTP_MAX_CONNS) {
        int conn_fd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (conn_fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct timeval tv = {HTTP_ACCEPT_PAUSE, 0};

                log_warning("Cannot accept HTTPS connections: %s; pausing %ds", strerror(errno),
                            HTTP_ACCEPT_PAUSE);
                set_accepting(server, false);
                evtimer_add(server->pause_timer, &tv);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_warning("Cannot accept an HTTPS connection: %s", strerror(errno));
            }
            return;
        }
        conn_open(server, conn_fd);
    }
    /* Full: new clients wait in the backlog until a connection closes. */
    set_accepting(server, false);
}

static void on_pause_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    set_accepting(arg, true);
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
        snprintf(err, err_len, "--bind %s: not an IP address (%s)", address, gai_strerror(r));
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

int http_server_new(struct event_base *base, const char *address, unsigned port,
                    struct tls_context_holder *holder, http_handler_fn handler, void *data,
                    struct http_server **ret_server, char *err, size_t err_len)
{
    struct http_server *server = calloc(1, sizeof(*server));
    int fd;

    if (!server) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    server->fd = -1;
    fd = listen_on(address, port, &server->port, err, err_len);
    if (fd < 0) {
        free(server);
        return fd;
    }
    server->fd = fd;
    server->base = base;
    server->holder = holder;
    server->handler = handler;
    server->data = data;
    server->accept_event = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, server);
    server->pause_timer = evtimer_new(base, on_pause_end, server);
    if (!server->accept_event || !server->pause_timer) {
        snprintf(err, err_len, "out of memory");
        http_server_free(server);
        return -ENOMEM;
    }
    set_accepting(server, true);
    *ret_server = server;
    return 0;
}

unsigned http_server_port(const struct http_server *server)
{
    return server->port;
}

void http_server_free(struct http_server *server)
{
    if (!server)
        return;
    if (server->pause_timer)
        event_free(server->pause_timer);
    server->pause_timer = NULL;
    while (server->conns) {
        struct http_conn *c = server->conns;

        if (c->phase == PHASE_READING || c->phase == PHASE_WRITING)
            SSL_shutdown(c->ssl);
        ERR_clear_error();
        *c->pprev = c->next;
        if (c->next)
            c->next->pprev = c->pprev;
        event_free(c->read_event);
        event_free(c->write_event);
        event_free(c->timer);
        SSL_free(c->ssl);
        close(c->fd);
        free(c->out);
        free(c);
    }
    if (server->accept_event)
        event_free(server->accept_event);
    if (server->fd >= 0)
        close(server->fd);
    free(server);
}

const char *http_request_path(const struct http_request *request)
{
    return request->path;
}

void http_respond(struct http_request *request, int status, const char *content_type,
                  const char *body, size_t len)
{
    conn_respond(request->conn, status, content_type, body, len, !request->head);
}
