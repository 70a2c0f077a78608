/* A non-blocking client for the agent's control socket, for services on a libevent loop. */
#include "control_async.h"

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

struct control_call {
    struct control_async *client;
    struct control_call *next, **pprev;
    control_async_fn fn;
    void *data;
    int fd;
    struct event *read_event, *write_event, *timer;
    int timeout_ms;
    char *out;
    size_t out_len, out_sent;
    char *in;
    size_t in_len, in_cap;
    char error[512]; /* set when the call failed before the loop ran it */
};

struct control_async {
    struct event_base *base;
    char *socket_path;
    struct control_call *calls;
};

static void call_free(struct control_call *call)
{
    *call->pprev = call->next;
    if (call->next)
        call->next->pprev = call->pprev;
    if (call->read_event)
        event_free(call->read_event);
    if (call->write_event)
        event_free(call->write_event);
    if (call->timer)
        event_free(call->timer);
    if (call->fd >= 0)
        close(call->fd);
    /* The request may carry a REST user's password: wiped, not just freed. */
    if (call->out)
        explicit_bzero(call->out, call->out_len);
    free(call->out);
    free(call->in);
    free(call);
}

/* Ends the call and tells its owner (after the call is gone: the callback may start another). */
static void complete(struct control_call *call, json_t *reply, const char *error)
{
    control_async_fn fn = call->fn;
    void *data = call->data;

    call_free(call);
    fn(data, reply, error);
}

static void fail(struct control_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct control_call *call, const char *fmt, ...)
{
    char error[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(error, sizeof(error), fmt, ap);
    va_end(ap);
    complete(call, NULL, error);
}

/* Decodes the complete lines received. Returns true when the call is over. */
static bool take_lines(struct control_call *call)
{
    char *nl, err[256];

    while ((nl = memchr(call->in, '\n', call->in_len))) {
        size_t len = (size_t)(nl - call->in);
        json_t *message;

        if (control_decode(call->in, len, &message, err, sizeof(err)) < 0) {
            fail(call, "the agent's answer is malformed: %s", err);
            return true;
        }
        if (json_object_get(message, "exit")) {
            complete(call, message, NULL);
            json_decref(message);
            return true;
        }
        json_decref(message); /* a streamed line before the answer */
        call->in_len -= len + 1;
        memmove(call->in, nl + 1, call->in_len);
    }
    return false;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct control_call *call = arg;

    (void)what;
    for (;;) {
        ssize_t n;

        if (call->in_cap - call->in_len < 4096) {
            size_t cap = call->in_cap ? call->in_cap * 2 : 16384;
            char *in;

            if (call->in_len > CONTROL_MAX_MESSAGE) {
                fail(call, "the agent's answer is longer than %d bytes", CONTROL_MAX_MESSAGE);
                return;
            }
            in = realloc(call->in, cap);
            if (!in) {
                fail(call, "out of memory");
                return;
            }
            call->in = in;
            call->in_cap = cap;
        }
        n = recv(fd, call->in + call->in_len, call->in_cap - call->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* the persistent event brings the rest */
        if (n <= 0) {
            fail(call, "the agent closed the control connection without answering%s%s",
                 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            return;
        }
        call->in_len += (size_t)n;
        if (take_lines(call))
            return;
    }
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct control_call *call = arg;

    (void)what;
    while (call->out_sent < call->out_len) {
        ssize_t n =
            send(fd, call->out + call->out_sent, call->out_len - call->out_sent, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(call->write_event, NULL);
            return;
        }
        if (n < 0) {
            fail(call, "cannot send the request to the agent: %s", strerror(errno));
            return;
        }
        call->out_sent += (size_t)n;
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct control_call *call = arg;

    (void)fd;
    (void)what;
    if (*call->error)
        fail(call, "%s", call->error);
    else
        fail(call, "the agent did not answer within %d ms", call->timeout_ms);
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

int control_async_new(struct event_base *base, const char *socket_path,
                      struct control_async **ret_client)
{
    struct control_async *client = calloc(1, sizeof(*client));

    if (!client || !(client->socket_path = strdup(socket_path))) {
        free(client);
        return -ENOMEM;
    }
    client->base = base;
    *ret_client = client;
    return 0;
}

void control_async_free(struct control_async *client)
{
    if (!client)
        return;
    while (client->calls)
        call_free(client->calls);
    free(client->socket_path);
    free(client);
}

int control_async_call(struct control_async *client, const json_t *request, int timeout_ms,
                       control_async_fn fn, void *data, struct control_call **ret_call)
{
    struct control_call *call = calloc(1, sizeof(*call));
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int fd;

    if (!call)
        return -ENOMEM;
    call->client = client;
    call->fn = fn;
    call->data = data;
    call->fd = -1;
    call->timeout_ms = timeout_ms;
    call->next = client->calls;
    if (call->next)
        call->next->pprev = &call->next;
    call->pprev = &client->calls;
    client->calls = call;
    call->out = control_encode(request, &call->out_len);
    call->timer = evtimer_new(client->base, on_timeout, call);
    if (!call->out || !call->timer) {
        call_free(call);
        return -ENOMEM;
    }
    if (ret_call)
        *ret_call = call;
    fd = connect_agent(client->socket_path);
    if (fd < 0) {
        /* Told from the loop, as every outcome is. */
        snprintf(call->error, sizeof(call->error), "cannot connect to %s: %s", client->socket_path,
                 connect_error(fd));
        event_active(call->timer, EV_TIMEOUT, 1);
        return 0;
    }
    call->fd = fd;
    call->read_event = event_new(client->base, fd, EV_READ | EV_PERSIST, on_readable, call);
    call->write_event = event_new(client->base, fd, EV_WRITE, on_writable, call);
    if (!call->read_event || !call->write_event) {
        snprintf(call->error, sizeof(call->error), "out of memory");
        event_active(call->timer, EV_TIMEOUT, 1);
        return 0;
    }
    evtimer_add(call->timer, &tv);
    event_add(call->read_event, NULL);
    event_active(call->write_event, EV_WRITE, 1);
    return 0;
}

void control_async_cancel(struct control_call *call)
{
    if (call)
        call_free(call);
}
