/* The listening socket and the set of client connections of certvisor-sentinel. */
#include "server.h"

#include "conn.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* After running out of descriptors, accepting waits this long rather than spinning. */
#define RESUME_AFTER_MS 1000

static void set_accepting(struct server *server, bool on)
{
    if (on == server->accepting)
        return;
    server->accepting = on;
    if (on)
        event_add(server->listen_ev, NULL);
    else
        event_del(server->listen_ev);
}

/* The process or the system is out of descriptors or memory: rest, then try again. */
static void rest(struct server *server)
{
    struct timeval pause = {RESUME_AFTER_MS / 1000, (RESUME_AFTER_MS % 1000) * 1000};

    log_warning("Cannot accept connections: %s; trying again in %d ms", strerror(errno),
                RESUME_AFTER_MS);
    set_accepting(server, false);
    server->resting = true;
    event_add(server->resume_ev, &pause);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct server *server = arg;

    (void)fd;
    (void)what;
    server->resting = false;
    set_accepting(server, server->n_conns < server->max_conns);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct server *server = arg;

    (void)what;
    while (server->n_conns < server->max_conns) {
        int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (client < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                rest(server);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                     errno != ECONNABORTED)
                log_warning("Cannot accept a connection: %s", strerror(errno));
            return;
        }
        if (conn_start(server, client) < 0)
            log_warning("Cannot serve a connection: out of memory");
    }
    /* Full: the next clients wait in the backlog until a connection ends. */
    set_accepting(server, false);
}

int server_start(struct server *server, struct event_base *base, int listen_fd,
                 const struct sentinel_settings *settings, size_t max_conns)
{
    memset(server, 0, sizeof(*server));
    server->base = base;
    server->settings = settings;
    server->listen_fd = listen_fd;
    server->max_conns = max_conns;
    clock_gettime(CLOCK_MONOTONIC, &server->started);
    server->listen_ev = event_new(base, listen_fd, EV_READ | EV_PERSIST, on_accept, server);
    server->resume_ev = evtimer_new(base, on_resume, server);
    if (!server->listen_ev || !server->resume_ev) {
        server_stop(server);
        return -ENOMEM;
    }
    set_accepting(server, true);
    return 0;
}

void server_stop(struct server *server)
{
    /* First, so that connections ending below do not start accepting again. */
    if (server->listen_ev)
        event_free(server->listen_ev);
    if (server->resume_ev)
        event_free(server->resume_ev);
    server->listen_ev = server->resume_ev = NULL;
    conn_close_all(server);
    if (server->listen_fd >= 0)
        close(server->listen_fd);
    server->listen_fd = -1;
}

long long server_uptime_ms(const struct server *server)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - server->started.tv_sec) * 1000LL +
           (t.tv_nsec - server->started.tv_nsec) / 1000000;
}

void server_conn_closed(struct server *server)
{
    server->n_conns--;
    if (!server->resting && server->listen_ev)
        set_accepting(server, server->n_conns < server->max_conns);
}
