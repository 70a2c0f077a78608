/* Asking the agent for its "metrics" over the control socket, without blocking the event loop. */
#include "scrape.h"

#include "control_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * lib/control_client.h is blocking, which suits certvisorctl; here a stuck
 * agent must not stall the HTTPS connections the same loop serves, so the one
 * request is sent and read on non-blocking I/O, with the protocol's own
 * framing (control_encode / control_decode) and a deadline.
 */

struct waiter {
    struct waiter *next;
    scrape_fn fn;
    void *data;
};

struct query {
    int fd;
    struct event *read_event, *write_event, *timer;
    char *out;
    size_t out_len, out_sent;
    char *in;
    size_t in_len, in_cap;
};

struct scraper {
    struct event_base *base;
    char *socket_path;
    int timeout_ms;
    struct query *query; /* under way, or NULL */
    struct waiter *waiters, **waiters_tail;
};

static void query_free(struct query *query)
{
    if (!query)
        return;
    if (query->read_event)
        event_free(query->read_event);
    if (query->write_event)
        event_free(query->write_event);
    if (query->timer)
        event_free(query->timer);
    if (query->fd >= 0)
        close(query->fd);
    free(query->out);
    free(query->in);
    free(query);
}

/* Ends the query under way and answers everyone who waits for it. */
static void complete(struct scraper *scraper, json_t *reply, const char *error)
{
    struct waiter *waiters = scraper->waiters;

    /* Detached first: a callback may ask again, which starts a new query. */
    scraper->waiters = NULL;
    scraper->waiters_tail = &scraper->waiters;
    query_free(scraper->query);
    scraper->query = NULL;
    while (waiters) {
        struct waiter *next = waiters->next;

        waiters->fn(waiters->data, reply, error);
        free(waiters);
        waiters = next;
    }
}

static void fail(struct scraper *scraper, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct scraper *scraper, const char *fmt, ...)
{
    char error[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(error, sizeof(error), fmt, ap);
    va_end(ap);
    complete(scraper, NULL, error);
}

/*
 * Handles one message. Returns true when it was the answer (and the query is
 * complete), false for streamed lines that come before it.
 */
static bool take_message(struct scraper *scraper, json_t *message)
{
    json_t *exit_status = json_object_get(message, "exit");
    const char *error = json_string_value(json_object_get(message, "error"));

    if (!exit_status)
        return false;
    if (!json_is_integer(exit_status) || json_integer_value(exit_status) != 0 || error)
        fail(scraper, "the agent refused the metrics command: %s",
             error ? error : "no reason given");
    else
        complete(scraper, message, NULL);
    return true;
}

/* Decodes the complete lines received. Returns true when the query is over. */
static bool take_lines(struct scraper *scraper)
{
    struct query *query = scraper->query;
    char *nl, err[256];

    while ((nl = memchr(query->in, '\n', query->in_len))) {
        size_t len = (size_t)(nl - query->in);
        json_t *message;
        bool done;

        if (control_decode(query->in, len, &message, err, sizeof(err)) < 0) {
            fail(scraper, "the agent's answer is malformed: %s", err);
            return true;
        }
        done = take_message(scraper, message);
        json_decref(message);
        if (done)
            return true;
        query->in_len -= len + 1;
        memmove(query->in, nl + 1, query->in_len);
    }
    return false;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct scraper *scraper = arg;
    struct query *query = scraper->query;

    (void)what;
    for (;;) {
        ssize_t n;

        if (query->in_cap - query->in_len < 4096) {
            size_t cap = query->in_cap ? query->in_cap * 2 : 16384;
            char *in;

            if (query->in_len > CONTROL_MAX_MESSAGE) {
                fail(scraper, "the agent's answer is longer than %d bytes", CONTROL_MAX_MESSAGE);
                return;
            }
            in = realloc(query->in, cap);
            if (!in) {
                fail(scraper, "out of memory");
                return;
            }
            query->in = in;
            query->in_cap = cap;
        }
        n = recv(fd, query->in + query->in_len, query->in_cap - query->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the persistent event brings the rest */
        if (n <= 0) {
            fail(scraper, "the agent closed the control connection without answering%s%s",
                 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            return;
        }
        query->in_len += (size_t)n;
        if (take_lines(scraper))
            return;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct scraper *scraper = arg;
    struct query *query = scraper->query;

    (void)what;
    while (query->out_sent < query->out_len) {
        ssize_t n =
            send(fd, query->out + query->out_sent, query->out_len - query->out_sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(query->write_event, NULL);
            return;
        }
        if (n < 0) {
            fail(scraper, "cannot send the metrics command to the agent: %s", strerror(errno));
            return;
        }
        query->out_sent += (size_t)n;
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct scraper *scraper = arg;

    (void)fd;
    (void)what;
    fail(scraper, "the agent did not answer within %d ms", scraper->timeout_ms);
}

/* Connects without waiting: a unix socket connects at once, or is refused at once. */
static int connect_agent(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path))
        return -ENAMETOOLONG;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int r = -errno;

        close(fd);
        return r;
    }
    return fd;
}

static const char *connect_error(int r)
{
    switch (-r) {
    case ENOENT:
    case ECONNREFUSED:
        return "certvisord is not running (nobody listens there)";
    case EAGAIN:
        return "the agent's control socket is full";
    default:
        return strerror(-r);
    }
}

static void query_start(struct scraper *scraper)
{
    struct query *query = calloc(1, sizeof(*query));
    struct timeval tv = {scraper->timeout_ms / 1000, (scraper->timeout_ms % 1000) * 1000};
    json_t *request = json_pack("{s:s, s:[], s:{}}", "command", "metrics", "args", "options");
    int fd;

    if (!query || !request) {
        free(query);
        json_decref(request);
        fail(scraper, "out of memory");
        return;
    }
    query->fd = -1;
    scraper->query = query;
    query->out = control_encode(request, &query->out_len);
    json_decref(request);
    if (!query->out) {
        fail(scraper, "out of memory");
        return;
    }
    fd = connect_agent(scraper->socket_path);
    if (fd < 0) {
        fail(scraper, "cannot connect to %s: %s", scraper->socket_path, connect_error(fd));
        return;
    }
    query->fd = fd;
    query->read_event = event_new(scraper->base, fd, EV_READ | EV_PERSIST, on_readable, scraper);
    query->write_event = event_new(scraper->base, fd, EV_WRITE, on_writable, scraper);
    query->timer = evtimer_new(scraper->base, on_timeout, scraper);
    if (!query->read_event || !query->write_event || !query->timer) {
        fail(scraper, "out of memory");
        return;
    }
    evtimer_add(query->timer, &tv);
    event_add(query->read_event, NULL);
    event_active(query->write_event, EV_WRITE, 1);
}

int scraper_new(struct event_base *base, const char *socket_path, int timeout_ms,
                struct scraper **ret_scraper)
{
    struct scraper *scraper = calloc(1, sizeof(*scraper));

    if (!scraper || !(scraper->socket_path = strdup(socket_path))) {
        free(scraper);
        return -ENOMEM;
    }
    scraper->base = base;
    scraper->timeout_ms = timeout_ms;
    scraper->waiters_tail = &scraper->waiters;
    *ret_scraper = scraper;
    return 0;
}

void scraper_free(struct scraper *scraper)
{
    if (!scraper)
        return;
    query_free(scraper->query);
    while (scraper->waiters) {
        struct waiter *next = scraper->waiters->next;

        free(scraper->waiters);
        scraper->waiters = next;
    }
    free(scraper->socket_path);
    free(scraper);
}

int scraper_request(struct scraper *scraper, scrape_fn fn, void *data)
{
    struct waiter *waiter = calloc(1, sizeof(*waiter));

    if (!waiter)
        return -ENOMEM;
    waiter->fn = fn;
    waiter->data = data;
    *scraper->waiters_tail = waiter;
    scraper->waiters_tail = &waiter->next;
    if (!scraper->query)
        query_start(scraper);
    return 0;
}
