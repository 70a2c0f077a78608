/* certvisor-proxy's process state: what the main thread owns and drives. */
#ifndef CERTVISOR_PROXY_PROXY_H
#define CERTVISOR_PROXY_PROXY_H

#include "generation.h"
#include "stats.h"
#include "worker.h"

#include <stddef.h>

struct proxy_options {
    const char *config;     /* the rendered TLS file */
    const char *databases;  /* the rendered databases file */
    size_t threads;         /* workers; 0: one per CPU */
    unsigned idle_timeout;  /* seconds; 0: never */
    unsigned drain_timeout; /* seconds a replaced process lets its connections finish */
    int log_level;
};

struct proxy {
    struct proxy_options opt;
    struct listener_table listeners;
    struct stats stats;
    struct workers workers;
    struct generation *gen;     /* what the workers serve */
    struct generation *retired; /* the previous one, when a switch did not complete */
};

/*
 * Builds the first generation and has the workers serve it. Returns 0 (the
 * caller then signals readiness), or a negative error code, logged.
 */
int proxy_start(struct proxy *proxy);

/*
 * The reload on SIGHUP, in the notify-reload protocol: RELOADING=1, both files
 * read and every context built, then (only on full success) the workers
 * switched to the new generation and READY=1. Returns 0, or a negative error
 * code after STATUS= and ERRNO= went out: the caller exits with a failure, and
 * the agent's rollback restarts the service with the files that worked.
 */
int proxy_reload(struct proxy *proxy);

/* Stops accepting (a new process serves the same sockets): the workers drop their listeners
 * and this process closes its copies; established connections go on. */
int proxy_stop_accepting(struct proxy *proxy);

/* Stops the workers (every connection closed) and frees everything. */
void proxy_stop(struct proxy *proxy);

#endif
