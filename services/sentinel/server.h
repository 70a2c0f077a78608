/* The listening socket and the set of client connections of certvisor-sentinel. */
#ifndef CERTVISOR_SENTINEL_SERVER_H
#define CERTVISOR_SENTINEL_SERVER_H

#include "settings.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct conn;

struct server {
    struct event_base *base;
    const struct sentinel_settings *settings;
    struct timespec started; /* CLOCK_MONOTONIC */
    struct conn *conns;      /* every open connection; conn.c keeps the list */
    size_t n_conns, max_conns;
    unsigned long long next_id;
    int listen_fd;
    struct event *listen_ev; /* accepting, while there is room */
    struct event *resume_ev; /* a pause after the process ran out of descriptors */
    bool accepting;
    bool resting; /* in that pause */
};

/*
 * Starts accepting on listen_fd (listening and non-blocking; the server owns
 * it from here), at most max_conns connections at once: more wait in the
 * kernel's backlog. Returns 0 or -ENOMEM.
 */
int server_start(struct server *server, struct event_base *base, int listen_fd,
                 const struct sentinel_settings *settings, size_t max_conns);

/* Closes every connection (TLS ones with a close_notify) and the listening socket. */
void server_stop(struct server *server);

/* Milliseconds since server_start. */
long long server_uptime_ms(const struct server *server);

/* conn.c tells the server a connection has ended, so it can accept again. */
void server_conn_closed(struct server *server);

#endif
